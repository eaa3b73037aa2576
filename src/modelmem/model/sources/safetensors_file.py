"""safetensors checkpoints read from their headers only: a file, a sharded folder, a Hub repo.

A safetensors file is an 8-byte little-endian header length, a JSON header naming every
tensor's dtype, shape and byte range, then the data. The reading is split the usual way:

- fetch: :func:`read_local_metadata` (local files, validated by the ``safetensors``
  library itself and parsed by ``huggingface_hub``) and the Hub reader in ``hub.py``
  (``huggingface_hub`` range requests) both give a ``SafetensorsRepoMetadata``;
- parse: :func:`quantization_from_config` reads ``quantization_config``;
- compute: :func:`checkpoint_from_metadata` turns headers into a :class:`Checkpoint`,
  counting packed tensors as the weights they hold, and :func:`compare_counts` sets the
  header count beside the config count.

Bounds: the header length is checked against the file size and a cap before anything is
read or allocated; every exception the libraries raise on a bad file becomes one
:class:`SourceError` naming the file and the problem.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from modelmem.errors import SourceError
from modelmem.model.checkpoint import Checkpoint, StoredTensor

if TYPE_CHECKING:
    from huggingface_hub.utils._safetensors import SafetensorsRepoMetadata

SINGLE_FILE: Final = "model.safetensors"
INDEX_FILE: Final = "model.safetensors.index.json"
# huggingface_hub's SAFETENSORS_MAX_HEADER_LENGTH: the largest header it will parse.
MAX_HEADER_BYTES: Final = 25_000_000
MAX_INDEX_BYTES: Final = 50_000_000  # an index of 100k tensors is about 10 MB
MAX_SHARDS: Final = 10_000
# Tensors in one file, and in a whole checkpoint. Each costs ~30 µs to validate (the JSON,
# safetensors' own check, huggingface_hub's parse, modelmem's), so the caps bound the time
# as well. Kimi K2's config (384 routed experts, 60 MoE layers) gives 384 × 3 × 60 =
# 69,120 expert matrices, twice that with their FP8 scales, spread over dozens of files.
MAX_FILE_TENSORS: Final = 1 << 16
MAX_TENSORS: Final = 1 << 19

# Bytes per element of every dtype the safetensors format defines (safetensors `Dtype`);
# sub-byte types are packed, their bytes come from the data offsets.
DTYPE_BITS: Final[dict[str, int]] = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "F64": 64,
    "I64": 64,
    "U64": 64,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "C64": 64,
}


# ------------------------------------------------------------------------ quantization


@dataclass(frozen=True, slots=True)
class Quantization:
    """What ``quantization_config`` says about how the weights are packed."""

    method: str  # gptq | awq | bitsandbytes | fp8 | compressed-tensors | mxfp4 | ...
    bits: int | None = None
    group_size: int | None = None

    @property
    def label(self) -> str:
        if self.method in ("gptq", "awq") and self.bits:
            group = f"-g{self.group_size}" if self.group_size and self.group_size > 0 else ""
            return f"{self.method}-{self.bits}bit{group}"
        if self.method == "bitsandbytes" and self.bits:
            return f"bnb-{self.bits}bit"
        return self.method

    @property
    def values_per_packed_element(self) -> dict[str, int]:
        """Stored dtype of a packed weight -> logical weights per stored element."""
        if self.method in ("gptq", "awq", "compressed-tensors") and self.bits:
            return {"I32": 32 // self.bits, "U32": 32 // self.bits}
        if self.method == "bitsandbytes" and self.bits == 4:
            return {"U8": 2}
        if self.method == "mxfp4":
            return {"U8": 2}
        return {}


# Leaf names of tensors that hold scales, zero points, indices or code tables, not weights.
_BOOKKEEPING_LEAVES: Final = frozenset(
    {
        "qzeros",
        "scales",
        "g_idx",
        "absmax",
        "quant_map",
        "nested_absmax",
        "nested_quant_map",
        "SCB",
        "weight_format",
        "weight_scale",
        "weight_scale_inv",
        "input_scale",
        "output_scale",
        "weight_zero_point",
        "weight_g_idx",
        "weight_shape",
        "k_scale",
        "v_scale",
    }
)
_PACKED_LEAVES: Final = frozenset({"qweight", "weight", "weight_packed"})


def quantization_from_config(config: dict[str, Any] | None) -> Quantization | None:
    """The packing ``config.json``'s ``quantization_config`` declares, or None."""
    q = (config or {}).get("quantization_config")
    if not isinstance(q, dict):
        return None
    method = str(q.get("quant_method", "unknown")).lower()
    bits: int | None = None
    group: int | None = None
    if method in ("gptq", "awq"):
        bits, group = (
            _int_or_none(q.get("bits", q.get("w_bit"))),
            _int_or_none(q.get("group_size", q.get("q_group_size"))),
        )
    elif method == "bitsandbytes":
        bits = 4 if q.get("load_in_4bit") else 8 if q.get("load_in_8bit") else None
    elif method == "compressed-tensors":
        bits = _compressed_tensors_bits(q)
    return Quantization(method=method, bits=bits, group_size=group)


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _compressed_tensors_bits(q: dict[str, Any]) -> int | None:
    groups = q.get("config_groups")
    if not isinstance(groups, dict):
        return None
    for group in groups.values():
        weights = group.get("weights") if isinstance(group, dict) else None
        if isinstance(weights, dict) and isinstance(weights.get("num_bits"), int):
            return int(weights["num_bits"])
    return None


def stored_params(name: str, dtype: str, shape: tuple[int, ...], q: Quantization | None) -> int:
    """Logical weights a stored tensor holds: packed ints count every value they pack,
    scales/zeros/indices count none."""
    numel = prod(shape)
    if q is None:
        return numel
    leaf = name.rsplit(".", 1)[-1]
    if leaf in _BOOKKEEPING_LEAVES or ".quant_state." in name or leaf.endswith("_scales"):
        return 0
    per_element = q.values_per_packed_element.get(dtype)
    if per_element and (leaf in _PACKED_LEAVES or leaf.endswith("_blocks")):
        return numel * per_element
    return numel


# ------------------------------------------------------------------------------ compute


def checkpoint_from_metadata(
    meta: SafetensorsRepoMetadata, origin: str, quantization: Quantization | None
) -> Checkpoint:
    """Every tensor of the headers, with its exact bytes (from the data offsets)."""
    count = sum(len(m.tensors) for m in meta.files_metadata.values())
    if count > MAX_TENSORS:
        raise SourceError(origin, f"{count:,} tensors, over the {MAX_TENSORS:,} cap")
    tensors: list[StoredTensor] = []
    for filename in sorted(meta.files_metadata):
        file_meta = meta.files_metadata[filename]
        for name in sorted(file_meta.tensors):
            info = file_meta.tensors[name]
            shape, nbytes = _checked_entry(origin, filename, name, info)
            params = stored_params(name, info.dtype, shape, quantization)
            tensors.append(StoredTensor(name, shape, info.dtype, nbytes, params))
    notes: list[str] = []
    if quantization is None and any(
        t.name.endswith((".qweight", ".weight_packed", ".absmax")) for t in tensors
    ):
        notes.append(
            "tensors look quantized (qweight/weight_packed/absmax) but config.json has no "
            "quantization_config: packed tensors are counted as stored elements"
        )
    return Checkpoint(
        origin=origin,
        file_format="safetensors",
        tensors=tuple(tensors),
        quantization=quantization.label if quantization else None,
        files=len(meta.files_metadata),
        notes=tuple(notes),
    )


def _checked_entry(origin: str, filename: str, name: str, info: Any) -> tuple[tuple[int, ...], int]:
    """Shape and byte length of one header entry, refusing what the format forbids."""
    where = f"{origin}: {filename}: tensor {name!r}"
    if info.dtype not in DTYPE_BITS:
        raise SourceError(where, f"unknown dtype {info.dtype!r}")
    shape = info.shape
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**48 for d in shape
    ):
        raise SourceError(where, f"shape {shape!r} is not a list of non-negative integers")
    offsets = info.data_offsets
    if (
        len(offsets) != 2
        or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        or not 0 <= offsets[0] <= offsets[1]
    ):
        raise SourceError(where, f"data_offsets {list(offsets)!r} are not [begin, end]")
    nbytes = offsets[1] - offsets[0]
    expected_bits = prod(shape) * DTYPE_BITS[info.dtype]
    if nbytes * 8 != expected_bits and nbytes != -(-expected_bits // 8):
        raise SourceError(
            where,
            f"data_offsets span {nbytes:,} bytes but shape {shape} of {info.dtype} needs "
            f"{-(-expected_bits // 8):,}",
        )
    return tuple(shape), nbytes


@dataclass(frozen=True, slots=True)
class CountCheck:
    """The header count beside the config count of the same model."""

    header_params: int
    config_params: int
    header_bytes: int

    @property
    def matches(self) -> bool:
        return self.header_params == self.config_params

    @property
    def difference(self) -> int:
        return self.header_params - self.config_params

    def note(self) -> str:
        if self.matches:
            return f"headers and config.json agree: {self.header_params:,} parameters"
        return (
            f"MISMATCH: headers hold {self.header_params:,} parameters, config.json describes "
            f"{self.config_params:,} ({self.difference:+,}); the weights figure uses the headers"
        )


def compare_counts(checkpoint: Checkpoint, config_params: int) -> CountCheck:
    return CountCheck(checkpoint.total_params, config_params, checkpoint.total_bytes)


# -------------------------------------------------------------------------------- fetch


def is_safetensors_path(path: Path) -> bool:
    """A .safetensors file, an index file, or a folder holding either."""
    if path.is_dir():
        return (path / SINGLE_FILE).is_file() or (path / INDEX_FILE).is_file()
    return path.name.endswith((".safetensors", ".safetensors.index.json"))


def read_local_checkpoint(path: Path, quantization: Quantization | None) -> Checkpoint:
    """A checkpoint from a local file, index file or folder; headers only."""
    return checkpoint_from_metadata(read_local_metadata(path), str(path), quantization)


def read_local_metadata(path: Path) -> SafetensorsRepoMetadata:
    """Validated headers of a safetensors file, index or folder."""
    from huggingface_hub.utils._safetensors import SafetensorsRepoMetadata

    if path.is_dir():
        if (path / INDEX_FILE).is_file():
            return read_local_metadata(path / INDEX_FILE)
        if (path / SINGLE_FILE).is_file():
            return read_local_metadata(path / SINGLE_FILE)
        raise SourceError(str(path), f"no {SINGLE_FILE} or {INDEX_FILE} in the folder")
    if path.name.endswith(".index.json"):
        shards = _index_shards(path)
        files = {}
        count = 0
        for shard in shards:
            files[shard] = _read_file_header(path.parent / shard)
            count += len(files[shard].tensors)
            if count > MAX_TENSORS:  # before reading further shards
                raise SourceError(str(path), f"over {MAX_TENSORS:,} tensors in its shards")
        return SafetensorsRepoMetadata(
            metadata=None,
            sharded=True,
            weight_map={name: shard for shard, meta in files.items() for name in meta.tensors},
            files_metadata=files,
        )
    header = _read_file_header(path)
    return SafetensorsRepoMetadata(
        metadata=None,
        sharded=False,
        weight_map=dict.fromkeys(header.tensors, path.name),
        files_metadata={path.name: header},
    )


def _index_shards(index: Path) -> list[str]:
    """The shard file names an index lists, each a plain name in the index's folder."""
    size = index.stat().st_size
    if size > MAX_INDEX_BYTES:
        raise SourceError(str(index), f"index is {size:,} bytes, over the {MAX_INDEX_BYTES:,} cap")
    try:
        data = json.loads(index.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise SourceError(str(index), "not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise SourceError(str(index), f"malformed JSON (line {e.lineno}: {e.msg})") from None
    except RecursionError:
        raise SourceError(str(index), "malformed JSON: nested too deeply") from None
    except ValueError:  # an integer of more digits than Python converts
        raise SourceError(str(index), "malformed JSON: an integer of over 4,300 digits") from None
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise SourceError(str(index), "no 'weight_map' object of tensor name -> shard file")
    if len(weight_map) > MAX_TENSORS:
        raise SourceError(
            str(index), f"weight_map of {len(weight_map):,} tensors, over the {MAX_TENSORS:,} cap"
        )
    shards = sorted({str(v) for v in weight_map.values()})
    if len(shards) > MAX_SHARDS:
        raise SourceError(str(index), f"{len(shards):,} shards, over the {MAX_SHARDS:,} cap")
    for shard in shards:
        if not shard or "/" in shard or "\\" in shard or shard in (".", ".."):
            raise SourceError(str(index), f"shard name {shard!r} is not a file in this folder")
        if not (index.parent / shard).is_file():
            raise SourceError(str(index), f"shard {shard!r} is missing")
    return shards


def _read_file_header(path: Path) -> Any:
    """One file's header: bounded pre-checks, the safetensors library's own validation
    (offsets cover the data exactly, dtypes known, UTF-8 JSON), then huggingface_hub's
    parse for the per-tensor offsets."""
    if not path.is_file():
        raise SourceError(str(path), "no such file")
    size = path.stat().st_size
    with path.open("rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise SourceError(str(path), f"{size} bytes: too short for a safetensors header")
        (header_len,) = struct.unpack("<Q", prefix)
        if header_len > size - 8:
            raise SourceError(
                str(path),
                f"header length {header_len:,} is larger than the file ({size:,} bytes): "
                "truncated or not safetensors",
            )
        if header_len > MAX_HEADER_BYTES:
            raise SourceError(
                str(path), f"header length {header_len:,} is over the {MAX_HEADER_BYTES:,} cap"
            )
        raw = f.read(header_len)
    entries = raw.count(b'"data_offsets"')  # an upper bound on the tensors, before parsing
    if entries > MAX_FILE_TENSORS:
        raise SourceError(
            str(path), f"header lists {entries:,} tensors, over the {MAX_FILE_TENSORS:,} cap"
        )
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SourceError(str(path), f"header is not UTF-8 (byte {e.start})") from None
    _validate_with_safetensors(path)
    from huggingface_hub.errors import SafetensorsParsingError

    try:
        from huggingface_hub import parse_local_safetensors_file_metadata

        return parse_local_safetensors_file_metadata(path)
    except (SafetensorsParsingError, KeyError, TypeError, ValueError) as e:
        raise SourceError(str(path), f"unreadable header: {_first_line(e)}") from None


def _validate_with_safetensors(path: Path) -> None:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy"):
            pass
    except SafetensorError as e:
        raise SourceError(str(path), f"not a valid safetensors file: {_first_line(e)}") from None
    except (OSError, ValueError, OverflowError) as e:
        raise SourceError(str(path), f"cannot be read: {_first_line(e)}") from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__

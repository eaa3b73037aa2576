"""Read a GGUF file's header: the architecture as a ModelSpec, and every tensor's bytes.

A GGUF file (llama.cpp, ``gguf-py``) is a little-endian header followed by aligned tensor
data::

    magic "GGUF" | version u32 | tensor_count u64 | kv_count u64
    kv_count × (key: string, value_type u32, value)        metadata (hparams, tokenizer)
    tensor_count × (name: string, n_dims u32, ne[n_dims] u64, ggml_type u32, offset u64)
    padding to general.alignment (32), then the tensor data

Only the header is read; tensor data is never touched, so a 400 GB file reads in the time
its tokenizer list takes to skip. The header is walked with :mod:`struct` over a read-only
memory map, with every count and length checked against the bytes left in the file before
anything is allocated: a truncated, corrupt or hostile file raises a one-line
:class:`SourceError`, never another exception, in bounded time and memory.

Why not ``gguf.GGUFReader``: it builds a numpy view for every element of every metadata
array (a 152k-token vocabulary with its merges took 33 s and 480 MB), trusts array lengths
(a crafted length loops without end), and needs the whole tensor data present. The gguf
library still supplies every table here: value types, ggml types and their block sizes
(``GGML_QUANT_SIZES``), file types, metadata keys and architecture names.

The architecture is read the way llama.cpp reads it (``src/llama-model.cpp``
``load_hparams``): the ``{arch}.*`` keys are translated into the Hugging Face config fields
they were converted from (``convert_hf_to_gguf.py``), then :func:`spec_from_config` builds
the spec, so a GGUF and the config.json it came from give the same parameter count.
"""

from __future__ import annotations

import mmap
import re
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from math import prod
from pathlib import Path
from typing import Any, Final

import gguf

from modelmem.errors import ModelMemError, SourceError
from modelmem.model.checkpoint import Checkpoint, StoredTensor
from modelmem.model.sources.hf_config import spec_from_config
from modelmem.model.spec import ModelSpec

__all__ = [
    "SUPPORTED_ARCHITECTURES",
    "GgufArray",
    "GgufModel",
    "read_gguf",
    "read_gguf_tokenizer_metadata",
]

_VT = gguf.GGUFValueType
_K = gguf.Keys
# Little-endian struct codes of the GGUF scalar value types (the format's own encoding).
_SCALARS: Final[dict[int, str]] = {
    _VT.UINT8: "<B",
    _VT.INT8: "<b",
    _VT.UINT16: "<H",
    _VT.INT16: "<h",
    _VT.UINT32: "<I",
    _VT.INT32: "<i",
    _VT.FLOAT32: "<f",
    _VT.BOOL: "<?",
    _VT.UINT64: "<Q",
    _VT.INT64: "<q",
    _VT.FLOAT64: "<d",
}
_MAGIC: Final[bytes] = struct.pack("<I", gguf.GGUF_MAGIC)  # b"GGUF"
_VERSIONS: Final[tuple[int, ...]] = (2, 3)  # gguf-py READER_SUPPORTED_VERSIONS; v1 had u32 counts
_U64: Final = struct.Struct("<Q")
_FIXED_HEADER: Final[int] = 24  # magic, version, tensor_count, kv_count

# Caps, far above any real file, that keep a hostile header from costing time or memory.
MAX_TENSORS: Final[int] = 1 << 20  # DeepSeek-V3 has 1,025 tensors
MAX_KV: Final[int] = 1 << 16  # real files have a few dozen keys
MAX_DIMS: Final[int] = 4  # GGML_MAX_DIMS
MAX_NAME_BYTES: Final[int] = 64  # GGML_MAX_NAME: llama.cpp refuses longer tensor names
MAX_KEY_BYTES: Final[int] = 1 << 16
MAX_SPLITS: Final[int] = 9999  # llama.cpp names splits -%05d-of-%05d
# llama.cpp's llama_split_path: PREFIX-00001-of-00003.gguf
_SPLIT_NAME: Final = re.compile(r"(?P<prefix>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf")
MAX_ELEMENTS: Final[int] = 1 << 48  # per tensor; 1000× the largest tensor of any model
_KEEP_ARRAY: Final[int] = 4096  # metadata arrays up to this length are kept as lists
# All kept arrays together hold at most this many elements: a flood of short arrays would
# otherwise cost ~10 × the file's size in Python objects (8-byte pointers and int objects
# per 1-byte element). Real files keep a few per-layer arrays of at most a few hundred.
_KEEP_TOTAL: Final[int] = 1 << 16
# The tokenizer's arrays (tokens, scores, token types, merges), when asked for whole: twice
# the largest vocabulary of a released model we know (Gemma 3: 262,144 tokens).
MAX_TOKENIZER_ENTRIES: Final[int] = 1 << 19
# Strings in metadata arrays, all arrays together: each is walked one by one (~0.5 µs), so
# a flood of short strings would take seconds per 10 million. A real file's are its tokens
# and merges, each under MAX_TOKENIZER_ENTRIES: this is twice their sum.
MAX_ARRAY_STRINGS: Final[int] = 4 * MAX_TOKENIZER_ENTRIES
TOKENIZER_PREFIX: Final[str] = "tokenizer."
# Smallest encodings, used to bound counts by the bytes left in the file.
_MIN_KV: Final[int] = 8 + 4 + 1  # empty key, value type, one-byte value
_MIN_TENSOR_INFO: Final[int] = 8 + 4 + 8 + 4 + 8  # empty name, n_dims, one dim, type, offset


@dataclass(frozen=True, slots=True)
class GgufArray:
    """A metadata array too long to keep (token lists, merges, scores): its type and length."""

    item_type: str  # GGUFValueType name, e.g. "STRING"
    length: int


@dataclass(frozen=True, slots=True)
class GgufModel:
    """A GGUF file as modelmem uses it."""

    spec: ModelSpec  # the architecture, as modelmem's estimators take it
    checkpoint: Checkpoint  # every tensor: ggml-order shape, ggml type, bytes, element count
    architecture: str  # general.architecture, e.g. "llama"
    context_length: int  # {arch}.context_length
    file_type: str | None  # general.file_type as a name, e.g. "MOSTLY_Q4_K_M"
    tokenizer_model: str | None  # tokenizer.ggml.model, e.g. "gpt2", "llama"
    config: dict[str, Any]  # the HF-style config mapping the spec was built from
    token_count: int | None = None  # entries of tokenizer.ggml.tokens
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    metadata: Mapping[str, object] = field(default_factory=dict)  # every key/value read


@dataclass(frozen=True, slots=True)
class _TensorInfo:
    name: str
    ne: tuple[int, ...]  # ggml order: ne[0] is the row (fastest) dimension
    ggml_type: gguf.GGMLQuantizationType
    offset: int  # from the start of the data section
    nbytes: int

    @property
    def elements(self) -> int:
        return prod(self.ne)


# ------------------------------------------------------------------------ header scanning


def _show(text: str) -> str:
    """A name from the file, safe for a one-line message."""
    return ascii(text if len(text) <= 60 else text[:57] + "...")


class _Cursor:
    """Bounds-checked little-endian reads over the mapped file."""

    def __init__(self, buf: mmap.mmap, where: str) -> None:
        self.buf, self.where, self.pos, self.end = buf, where, 0, len(buf)

    def fail(self, problem: str) -> SourceError:
        return SourceError(self.where, problem)

    def left(self) -> int:
        return self.end - self.pos

    def take(self, n: int, what: str) -> int:
        if n > self.end - self.pos:
            raise self.fail(
                f"truncated: {what} at offset {self.pos:,} needs {n:,} bytes, "
                f"the file has {self.end - self.pos:,} left"
            )
        start = self.pos
        self.pos += n
        return start

    def scalar(self, fmt: str, what: str) -> Any:
        return struct.unpack_from(fmt, self.buf, self.take(struct.calcsize(fmt), what))[0]

    def u32(self, what: str) -> int:
        value: int = self.scalar("<I", what)
        return value

    def u64(self, what: str) -> int:
        value: int = self.scalar("<Q", what)
        return value

    def string(self, what: str, limit: int | None = None) -> str:
        at = self.pos
        n = self.u64(f"length of {what}")
        if limit is not None and n > limit:
            raise self.fail(f"{what} at offset {at:,} is {n:,} bytes long (limit {limit:,})")
        start = self.take(n, what)
        try:
            return self.buf[start : start + n].decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(f"{what} at offset {at:,} is not valid UTF-8") from None

    def skip_string(self, what: str) -> None:
        self.take(self.u64(f"length of {what}"), what)

    def strings(self, n: int, what: str, decode: bool) -> list[str] | None:
        """``n`` strings in a row (an array's elements), decoded or only bounds-checked:
        the same checks as :meth:`string` in one tight loop, as a vocabulary has a
        million of them."""
        buf, pos, end = self.buf, self.pos, self.end
        unpack = _U64.unpack_from
        out: list[str] | None = [] if decode else None
        for _ in range(n):
            if end - pos < 8:
                self.pos = pos
                self.take(8, f"length of {what}")  # raises, naming the offset
            (length,) = unpack(buf, pos)
            pos += 8
            if length > end - pos:
                self.pos = pos
                self.take(length, what)  # raises
            if out is not None:
                try:
                    out.append(buf[pos : pos + length].decode("utf-8"))
                except UnicodeDecodeError:
                    raise self.fail(f"{what} at offset {pos - 8:,} is not valid UTF-8") from None
            pos += length
        self.pos = pos
        return out


def _value_type(raw: int, cur: _Cursor, key: str) -> gguf.GGUFValueType:
    try:
        return gguf.GGUFValueType(raw)
    except ValueError:
        raise cur.fail(f"metadata {_show(key)} has unknown value type {raw}") from None


class _Keep:
    """Which arrays are kept whole: those under ``prefix`` (up to MAX_TOKENIZER_ENTRIES),
    and short others until their total reaches _KEEP_TOTAL elements."""

    def __init__(self, prefix: str | None) -> None:
        self.prefix, self.left = prefix, _KEEP_TOTAL
        self.strings_left = MAX_ARRAY_STRINGS

    def strings(self, cur: _Cursor, key: str, n: int) -> None:
        """Count ``n`` more strings against MAX_ARRAY_STRINGS."""
        self.strings_left -= n
        if self.strings_left < 0:
            raise cur.fail(
                f"metadata arrays hold over {MAX_ARRAY_STRINGS:,} strings (at {_show(key)})"
            )

    def wanted(self, cur: _Cursor, key: str, n: int) -> bool:
        if self.prefix is not None and key.startswith(self.prefix):
            if n > MAX_TOKENIZER_ENTRIES:
                raise cur.fail(
                    f"array {_show(key)} has {n:,} entries (limit {MAX_TOKENIZER_ENTRIES:,})"
                )
            return True
        if n <= _KEEP_ARRAY and n <= self.left:
            self.left -= n
            return True
        return False


def _read_value(
    cur: _Cursor, vtype: gguf.GGUFValueType, key: str, keep: _Keep | None = None
) -> object:
    keep = keep or _Keep(None)
    what = f"value of {_show(key)}"
    if vtype in _SCALARS:
        return cur.scalar(_SCALARS[vtype], what)
    if vtype == _VT.STRING:
        return cur.string(what)
    # An array: element type, length, elements. Nested arrays are refused, as llama.cpp does.
    itype = _value_type(cur.u32(f"array type of {_show(key)}"), cur, key)
    n = cur.u64(f"array length of {_show(key)}")
    if itype == _VT.ARRAY:
        raise cur.fail(f"metadata {_show(key)} is a nested array (not supported)")
    if itype == _VT.STRING:
        if n > cur.left() // 8:  # every string needs at least its 8-byte length
            raise cur.fail(f"array {_show(key)} claims {n:,} strings, more than the file holds")
        keep.strings(cur, key, n)
        if keep.wanted(cur, key, n):
            return cur.strings(n, f"element of {_show(key)}", decode=True)
        cur.strings(n, f"element of {_show(key)}", decode=False)  # bounds-checked only
        return GgufArray(itype.name, n)
    fmt = _SCALARS[itype]
    size = struct.calcsize(fmt)
    if n > cur.left() // size:
        raise cur.fail(f"array {_show(key)} claims {n:,} values, more than the file holds")
    start = cur.take(n * size, what)
    if keep.wanted(cur, key, n):
        return list(struct.unpack_from(f"<{n}{fmt[1]}", cur.buf, start))
    return GgufArray(itype.name, n)


def _read_tensor_info(cur: _Cursor, index: int) -> tuple[str, tuple[int, ...], int, int]:
    name = cur.string(f"name of tensor {index}", limit=MAX_NAME_BYTES - 1)
    n_dims = cur.u32(f"n_dims of {_show(name)}")
    if not 1 <= n_dims <= MAX_DIMS:
        raise cur.fail(f"tensor {_show(name)} has {n_dims} dimensions (1 to {MAX_DIMS} allowed)")
    start = cur.take(8 * n_dims, f"shape of {_show(name)}")
    ne = struct.unpack_from(f"<{n_dims}Q", cur.buf, start)
    if min(ne) < 1 or prod(ne) > MAX_ELEMENTS:
        raise cur.fail(f"tensor {_show(name)} has an impossible shape {list(ne)}")
    raw_type = cur.u32(f"type of {_show(name)}")
    offset = cur.u64(f"offset of {_show(name)}")
    return name, tuple(ne), raw_type, offset


def _tensor(
    cur: _Cursor, name: str, ne: tuple[int, ...], raw_type: int, offset: int
) -> _TensorInfo:
    try:
        qtype = gguf.GGMLQuantizationType(raw_type)
        block, type_size = gguf.GGML_QUANT_SIZES[qtype]
    except (ValueError, KeyError):
        raise cur.fail(f"tensor {_show(name)} has unknown ggml type {raw_type}") from None
    if ne[0] % block:
        raise cur.fail(
            f"tensor {_show(name)} rows of {ne[0]} are not whole {qtype.name} blocks of {block}"
        )
    return _TensorInfo(name, ne, qtype, offset, prod(ne) // block * type_size)


@dataclass(frozen=True, slots=True)
class _Header:
    version: int
    metadata: dict[str, object]
    tensors: tuple[_TensorInfo, ...]
    data_offset: int
    file_bytes: int


def _scan(buf: mmap.mmap, where: str, keep_prefix: str | None = None) -> _Header:
    cur = _Cursor(buf, where)
    size = len(buf)
    if size < _FIXED_HEADER:
        if buf[: min(size, 4)] != _MAGIC[: min(size, 4)]:
            raise cur.fail("not a GGUF file (no 'GGUF' magic)")
        raise cur.fail(f"truncated: {size} bytes, shorter than the 24-byte GGUF header")
    magic, version, n_tensors, n_kv = struct.unpack_from("<4sIQQ", buf, 0)
    if magic != _MAGIC:
        raise cur.fail(f"not a GGUF file (starts with {magic!r}, not b'GGUF')")
    if version not in _VERSIONS:
        hint = " (a big-endian file?)" if version & 0xFFFF == 0 else ""
        raise cur.fail(f"GGUF version {version} is not supported (2 and 3 are){hint}")
    cur.pos = _FIXED_HEADER
    if n_kv > min(MAX_KV, cur.left() // _MIN_KV):
        raise cur.fail(f"header claims {n_kv:,} metadata entries, more than the file can hold")
    if n_tensors > min(MAX_TENSORS, cur.left() // _MIN_TENSOR_INFO):
        raise cur.fail(f"header claims {n_tensors:,} tensors, more than the file can hold")

    metadata: dict[str, object] = {}
    keep = _Keep(keep_prefix)
    for i in range(n_kv):
        key = cur.string(f"key of metadata entry {i}", limit=MAX_KEY_BYTES)
        if key in metadata:
            raise cur.fail(f"duplicate metadata key {_show(key)}")
        vtype = _value_type(cur.u32(f"type of {_show(key)}"), cur, key)
        metadata[key] = _read_value(cur, vtype, key, keep)

    raw = [_read_tensor_info(cur, i) for i in range(n_tensors)]
    alignment = metadata.get(_K.General.ALIGNMENT, gguf.GGUF_DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment < 1 or alignment & (alignment - 1):
        raise cur.fail(f"general.alignment={alignment!r} is not a power of two")
    data_offset = -(-cur.pos // alignment) * alignment

    tensors: list[_TensorInfo] = []
    seen: set[str] = set()
    for name, ne, raw_type, offset in raw:
        if name in seen:
            raise cur.fail(f"duplicate tensor name {_show(name)}")
        seen.add(name)
        t = _tensor(cur, name, ne, raw_type, offset)
        if offset % alignment:
            raise cur.fail(
                f"tensor {_show(name)} data offset {offset:,} is not {alignment}-aligned"
            )
        if data_offset + offset + t.nbytes > size:
            raise cur.fail(
                f"tensor {_show(name)} data ({t.nbytes:,} bytes at {data_offset + offset:,}) "
                f"runs past the end of the file ({size:,} bytes)"
            )
        tensors.append(t)
    by_offset = sorted(tensors, key=lambda t: t.offset)
    for a, b in pairwise(by_offset):
        if b.offset < a.offset + a.nbytes:
            raise cur.fail(f"tensors {_show(a.name)} and {_show(b.name)} overlap in the data")
    return _Header(version, metadata, tuple(tensors), data_offset, size)


def _open_and_scan(path: Path, keep_prefix: str | None = None) -> _Header:
    where = str(path)
    if path.is_dir():
        raise SourceError(where, "is a folder, not a GGUF file")
    if path.exists() and not path.is_file():  # a FIFO or device would block or never end
        raise SourceError(where, "is not a regular file")
    try:
        with path.open("rb") as f:
            size = path.stat().st_size
            if size == 0:
                raise SourceError(where, "empty file, not a GGUF file")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                return _scan(buf, where, keep_prefix)
    except OSError as e:
        raise SourceError(where, f"cannot read: {e.strerror or e}") from None


# ---------------------------------------------------------------- metadata -> HF config


class _Meta:
    """Typed access to the ``{arch}.*`` keys; every error names the GGUF key."""

    def __init__(self, metadata: Mapping[str, object], arch: str, where: str) -> None:
        self.metadata, self.arch, self.where = metadata, arch, where

    def key(self, template: str) -> str:
        return template.format(arch=self.arch)

    def has(self, template: str) -> bool:
        return self.key(template) in self.metadata

    def integer(self, template: str, default: int | None = None, minimum: int = 1) -> int:
        value = self.opt_integer(template, minimum=minimum)
        if value is not None:
            return value
        if default is None:
            raise SourceError(self.where, f"metadata {self.key(template)} is missing")
        return default

    def opt_integer(self, template: str, minimum: int = 1) -> int | None:
        key = self.key(template)
        value = self.metadata.get(key)
        if value is None:
            return None
        if isinstance(value, list):
            if value and all(v == value[0] for v in value):
                value = value[0]  # a per-layer array that is the same in every layer
            else:
                raise SourceError(self.where, f"metadata {key} varies by layer (not supported)")
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise SourceError(
                self.where, f"metadata {key}={value!r} must be an integer ≥ {minimum}"
            )
        return value

    def number(self, template: str) -> float | None:
        value = self.metadata.get(self.key(template))
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return float(value)


@dataclass(frozen=True, slots=True)
class _Arch:
    model_type: str
    translate: Callable[[_Meta, dict[str, _TensorInfo], dict[str, Any]], None]
    note: str = ""


def _has(tensors: Mapping[str, _TensorInfo], name: str) -> bool:
    return name in tensors


def _llama(m: _Meta, t: dict[str, _TensorInfo], c: dict[str, Any]) -> None:
    """llama: Llama 1-3, Mistral, Mixtral (with experts), and other llama-arch files."""
    c["attention_bias"] = _has(t, "blk.0.attn_q.bias")
    c["mlp_bias"] = _has(t, "blk.0.ffn_up.bias") or _has(t, "blk.0.ffn_down.bias")
    experts = m.opt_integer(_K.LLM.EXPERT_COUNT, minimum=0)
    if experts:
        c["model_type"] = "mixtral"
        c["num_local_experts"] = experts
        c["num_experts_per_tok"] = m.integer(_K.LLM.EXPERT_USED_COUNT)
        # Mixtral's intermediate_size is the expert width, which the converter writes as
        # feed_forward_length (newer files may state expert_feed_forward_length as well).
        width = m.opt_integer(_K.LLM.EXPERT_FEED_FORWARD_LENGTH)
        c["intermediate_size"] = width or m.integer(_K.LLM.FEED_FORWARD_LENGTH)
        return
    c["intermediate_size"] = m.integer(_K.LLM.FEED_FORWARD_LENGTH)


def _qwen_dense(m: _Meta, t: dict[str, _TensorInfo], c: dict[str, Any]) -> None:
    c["intermediate_size"] = m.integer(_K.LLM.FEED_FORWARD_LENGTH)
    c["use_sliding_window"] = False  # llama.cpp's qwen2/qwen3 attend over the full context


def _qwen_moe(m: _Meta, t: dict[str, _TensorInfo], c: dict[str, Any]) -> None:
    c["num_experts"] = m.integer(_K.LLM.EXPERT_COUNT)
    c["num_experts_per_tok"] = m.integer(_K.LLM.EXPERT_USED_COUNT)
    c["moe_intermediate_size"] = m.integer(_K.LLM.EXPERT_FEED_FORWARD_LENGTH)
    c["decoder_sparse_step"], c["mlp_only_layers"] = 1, []  # llama.cpp: every layer MoE
    c["use_sliding_window"] = False
    ffn = m.opt_integer(_K.LLM.FEED_FORWARD_LENGTH)
    if ffn is not None:
        c["intermediate_size"] = ffn
    if c["model_type"] == "qwen2_moe":
        c["qkv_bias"] = _has(t, "blk.0.attn_q.bias")
        shared = m.opt_integer(_K.LLM.EXPERT_SHARED_FEED_FORWARD_LENGTH)
        up = t.get("blk.0.ffn_up_shexp.weight")
        if shared is None and up is not None and len(up.ne) >= 2:
            shared = up.ne[1]  # older files: the width of the shared expert's up projection
        c["shared_expert_intermediate_size"] = shared or 0


def _gemma(m: _Meta, t: dict[str, _TensorInfo], c: dict[str, Any]) -> None:
    c["intermediate_size"] = m.integer(_K.LLM.FEED_FORWARD_LENGTH)
    c["hidden_activation"] = "gelu_pytorch_tanh"
    window = m.opt_integer(_K.Attention.SLIDING_WINDOW)
    if window is not None:
        c["sliding_window"] = window
    for template, name in (
        (_K.LLM.ATTN_LOGIT_SOFTCAPPING, "attn_logit_softcapping"),
        (_K.LLM.FINAL_LOGIT_SOFTCAPPING, "final_logit_softcapping"),
    ):
        value = m.number(template)
        if value is not None:
            c[name] = value
    if c["model_type"] == "gemma3_text":
        pattern = m.metadata.get(m.key(_K.Attention.SLIDING_WINDOW_PATTERN))
        layers = c["num_hidden_layers"]
        if not window:  # llama.cpp's gemma3.cpp: no window key (or 0) -> no SWA at all
            c["layer_types"] = ["full_attention"] * layers
        elif isinstance(pattern, list) and len(pattern) == layers:  # per-layer: True = sliding
            c["layer_types"] = ["sliding_attention" if p else "full_attention" for p in pattern]
        elif isinstance(pattern, int) and not isinstance(pattern, bool) and pattern > 0:
            c["sliding_window_pattern"] = pattern
        else:
            c["sliding_window_pattern"] = 6  # llama.cpp LLM_ARCH_GEMMA3: set_swa_pattern(6)


def _phi3(m: _Meta, t: dict[str, _TensorInfo], c: dict[str, Any]) -> None:
    c["intermediate_size"] = m.integer(_K.LLM.FEED_FORWARD_LENGTH)
    window = m.opt_integer(_K.Attention.SLIDING_WINDOW)
    if window is not None:
        # Phi-4 files state 0: no window (llama.cpp turns Phi-3's window off as well)
        c["sliding_window"] = window or None


def _deepseek2(m: _Meta, t: dict[str, _TensorInfo], c: dict[str, Any]) -> None:
    """DeepSeek V2/V3 (MLA + DeepSeekMoE). Files converted for absorbed MLA (llama.cpp
    2025+) state the MLA head dims as key_length_mla/value_length_mla and the latent ones
    (kv_lora_rank + rope, kv_lora_rank) as key_length/value_length; older files state the
    head dims as key_length/value_length."""
    gating = m.opt_integer(_K.LLM.EXPERT_GATING_FUNC, minimum=0)
    v3 = (
        gating == gguf.ExpertGatingFuncType.SIGMOID
        or _has(t, "blk.0.exp_probs_b.bias")
        or any(name.endswith(".exp_probs_b.bias") for name in t)
    )
    c["model_type"] = "deepseek_v3" if v3 else "deepseek_v2"
    rope = m.integer(_K.Rope.DIMENSION_COUNT)
    if m.has(_K.Attention.KEY_LENGTH_MLA):
        qk, v = m.integer(_K.Attention.KEY_LENGTH_MLA), m.integer(_K.Attention.VALUE_LENGTH_MLA)
    else:
        qk, v = m.integer(_K.Attention.KEY_LENGTH), m.integer(_K.Attention.VALUE_LENGTH)
    if qk <= rope:
        raise SourceError(m.where, f"MLA key length {qk} must exceed the rope dimension {rope}")
    c.pop("head_dim", None)
    c["num_key_value_heads"] = c["num_attention_heads"]
    c["qk_rope_head_dim"], c["qk_nope_head_dim"], c["v_head_dim"] = rope, qk - rope, v
    c["q_lora_rank"] = m.opt_integer(_K.Attention.Q_LORA_RANK, minimum=0) or None
    c["kv_lora_rank"] = m.integer(_K.Attention.KV_LORA_RANK)
    c["first_k_dense_replace"] = m.integer(_K.LLM.LEADING_DENSE_BLOCK_COUNT, default=0, minimum=0)
    c["n_routed_experts"] = m.integer(_K.LLM.EXPERT_COUNT)
    c["num_experts_per_tok"] = m.integer(_K.LLM.EXPERT_USED_COUNT)
    c["moe_intermediate_size"] = m.integer(_K.LLM.EXPERT_FEED_FORWARD_LENGTH)
    c["n_shared_experts"] = m.integer(_K.LLM.EXPERT_SHARED_COUNT, default=0, minimum=0)
    c["intermediate_size"] = m.integer(_K.LLM.FEED_FORWARD_LENGTH)


def _gpt_oss(m: _Meta, t: dict[str, _TensorInfo], c: dict[str, Any]) -> None:
    c["num_local_experts"] = m.integer(_K.LLM.EXPERT_COUNT)
    c["num_experts_per_tok"] = m.integer(_K.LLM.EXPERT_USED_COUNT)
    # HF's intermediate_size is the expert width; gpt-oss has no dense MLP.
    width = m.opt_integer(_K.LLM.EXPERT_FEED_FORWARD_LENGTH)
    c["intermediate_size"] = width or m.integer(_K.LLM.FEED_FORWARD_LENGTH)
    c["attention_bias"] = _has(t, "blk.0.attn_q.bias")
    c["sliding_window"] = m.integer(_K.Attention.SLIDING_WINDOW, default=128)


def _gpt2(m: _Meta, t: dict[str, _TensorInfo], c: dict[str, Any]) -> None:
    c["n_embd"], c["n_layer"] = c.pop("hidden_size"), c.pop("num_hidden_layers")
    c["n_head"] = c.pop("num_attention_heads")
    c["n_positions"] = c.pop("max_position_embeddings")
    c["n_inner"] = m.integer(_K.LLM.FEED_FORWARD_LENGTH)
    c.pop("head_dim", None)
    c.pop("num_key_value_heads", None)
    # GPT-2 ties its head to wte; the converter writes the tied matrix again as output.weight.
    c["tie_word_embeddings"] = True


_ARCHES: Final[dict[str, _Arch]] = {
    gguf.MODEL_ARCH_NAMES[arch]: spec
    for arch, spec in (
        (gguf.MODEL_ARCH.LLAMA, _Arch("llama", _llama)),
        (gguf.MODEL_ARCH.QWEN2, _Arch("qwen2", _qwen_dense)),
        (gguf.MODEL_ARCH.QWEN3, _Arch("qwen3", _qwen_dense)),
        (gguf.MODEL_ARCH.QWEN2MOE, _Arch("qwen2_moe", _qwen_moe)),
        (gguf.MODEL_ARCH.QWEN3MOE, _Arch("qwen3_moe", _qwen_moe)),
        (gguf.MODEL_ARCH.GEMMA, _Arch("gemma", _gemma)),
        (gguf.MODEL_ARCH.GEMMA2, _Arch("gemma2", _gemma)),
        (
            gguf.MODEL_ARCH.GEMMA3,
            _Arch(
                "gemma3_text",
                _gemma,
                "Gemma 3: the text model only; llama.cpp keeps a vision tower in a separate "
                "mmproj file",
            ),
        ),
        (gguf.MODEL_ARCH.PHI3, _Arch("phi3", _phi3)),
        (gguf.MODEL_ARCH.DEEPSEEK2, _Arch("deepseek_v3", _deepseek2)),
        (gguf.MODEL_ARCH.GPT_OSS, _Arch("gpt_oss", _gpt_oss)),
        (gguf.MODEL_ARCH.GPT2, _Arch("gpt2", _gpt2)),
    )
}
SUPPORTED_ARCHITECTURES: Final[tuple[str, ...]] = tuple(sorted(_ARCHES))


def _vocab_size(m: _Meta, tensors: Mapping[str, _TensorInfo]) -> int:
    """Rows of the token embedding (ne[1]); else {arch}.vocab_size; else the token list."""
    embd = tensors.get("token_embd.weight")
    if embd is not None and len(embd.ne) >= 2:
        return embd.ne[1]
    stated = m.opt_integer(_K.LLM.VOCAB_SIZE)
    if stated is not None:
        return stated
    tokens = m.metadata.get(_K.Tokenizer.LIST)
    if isinstance(tokens, (list, GgufArray)):
        n = tokens.length if isinstance(tokens, GgufArray) else len(tokens)
        if n > 0:
            return n
    raise SourceError(m.where, "no token_embd.weight, vocab_size or token list: vocabulary unknown")


def _config(arch: str, m: _Meta, tensors: dict[str, _TensorInfo]) -> dict[str, Any]:
    """The HF-style config the ``{arch}.*`` keys were converted from."""
    a = _ARCHES[arch]
    hidden = m.integer(_K.LLM.EMBEDDING_LENGTH)
    heads = m.integer(_K.Attention.HEAD_COUNT)
    config: dict[str, Any] = {
        "model_type": a.model_type,
        "vocab_size": _vocab_size(m, tensors),
        "hidden_size": hidden,
        "num_hidden_layers": m.integer(_K.LLM.BLOCK_COUNT),
        "max_position_embeddings": m.integer(_K.LLM.CONTEXT_LENGTH),
        "num_attention_heads": heads,
        "num_key_value_heads": m.integer(_K.Attention.HEAD_COUNT_KV, default=heads),
        "tie_word_embeddings": "output.weight" not in tensors,
    }
    # llama.cpp: n_embd_head_k = key_length if stated, else n_embd / n_head.
    key_length = m.opt_integer(_K.Attention.KEY_LENGTH)
    value_length = m.opt_integer(_K.Attention.VALUE_LENGTH)
    config["head_dim"] = key_length if key_length is not None else hidden // heads
    if arch != gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.DEEPSEEK2] and value_length not in (
        None,
        config["head_dim"],
    ):
        raise SourceError(
            m.where,
            f"metadata {m.key(_K.Attention.VALUE_LENGTH)}={value_length} differs from the key "
            f"length {config['head_dim']} (not supported for {arch})",
        )
    for template, name in (
        (_K.Rope.FREQ_BASE, "rope_theta"),
        (_K.Attention.LAYERNORM_RMS_EPS, "rms_norm_eps"),
        (_K.Attention.LAYERNORM_EPS, "layer_norm_epsilon"),
    ):
        value = m.number(template)
        if value is not None:
            config[name] = value
    a.translate(m, tensors, config)
    return config


# ------------------------------------------------------------------------------ the file


def _text(metadata: Mapping[str, object], key: str) -> str | None:
    value = metadata.get(key)
    return value if isinstance(value, str) else None


def _int(metadata: Mapping[str, object], key: str) -> int | None:
    value = metadata.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _file_type(metadata: Mapping[str, object]) -> str | None:
    value = _int(metadata, _K.General.FILE_TYPE)
    if value is None:
        return None
    guessed = gguf.LlamaFileType.GUESSED
    base = value & ~guessed if value != guessed else value
    try:
        name = gguf.LlamaFileType(base).name
    except ValueError:
        return f"UNKNOWN_{value}"
    return name + ("_GUESSED" if base != value else "")


def _notes(arch: str, names: set[str], tensors: tuple[_TensorInfo, ...], note: str) -> list[str]:
    """What the file holds beyond (or besides) the transformers parameters."""
    notes = [note] if note else []
    extra = {
        "rope_freqs.weight": "precomputed RoPE frequency factors (llama3 rope scaling)",
        "rope_factors_long.weight": "LongRoPE factors (a config value, not a weight)",
        "rope_factors_short.weight": "LongRoPE factors (a config value, not a weight)",
    }
    for name, what in extra.items():
        if name in names:
            n = next(t.elements for t in tensors if t.name == name)
            notes.append(f"{name} ({n:,} values) holds {what}, not trained parameters")
    probs = [t for t in tensors if t.name.endswith(".exp_probs_b.bias")]
    if probs:
        n = sum(t.elements for t in probs)
        notes.append(
            f"exp_probs_b ({n:,} values) is DeepSeek-V3's e_score_correction_bias, a buffer in "
            "transformers, not a parameter"
        )
    if "blk.0.attn_k_b.weight" in names:
        notes.append("MLA kv_b_proj is stored split into attn_k_b and attn_v_b (same count)")
    if arch == gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.GPT2] and "output.weight" in names:
        notes.append("GPT-2: output.weight is the tied token embedding written a second time")
    if arch.startswith("gemma"):
        notes.append("Gemma norm weights are stored as 1 + w (same count and bytes)")
    return notes


def _split_paths(path: Path, metadata: Mapping[str, object]) -> list[Path]:
    """Every file of a split model (gguf-split / llama.cpp), or [] for a single file."""
    count = metadata.get(_K.Split.LLM_KV_SPLIT_COUNT)
    if count is None or count == 1:
        return []
    if not isinstance(count, int) or not 1 <= count <= MAX_SPLITS:
        raise SourceError(str(path), f"split.count={count!r} is not a count of files")
    named = _SPLIT_NAME.fullmatch(path.name)
    if named is None or int(named["count"]) != count:
        raise SourceError(
            str(path), f"split.count={count} but the name is not PREFIX-0000k-of-{count:05d}.gguf"
        )
    return [
        path.with_name(f"{named['prefix']}-{i:05d}-of-{count:05d}.gguf")
        for i in range(1, count + 1)
    ]


def _join_splits(path: Path, header: _Header, shards: list[Path]) -> _Header:
    """The first split's metadata with every split's tensors (each split scanned alone)."""
    headers = []
    for i, shard in enumerate(shards):
        if not shard.is_file():
            raise SourceError(str(path), f"split {i + 1} of {len(shards)} is missing: {shard.name}")
        headers.append(header if shard == path else _open_and_scan(shard))
        number = headers[-1].metadata.get(_K.Split.LLM_KV_SPLIT_NO)
        if number != i:
            raise SourceError(str(shard), f"split.no={number!r}, expected {i}")
    tensors = tuple(t for h in headers for t in h.tensors)
    names = [t.name for t in tensors]
    if len(set(names)) != len(names):
        raise SourceError(str(path), "the splits hold a tensor twice")
    expected = headers[0].metadata.get(_K.Split.LLM_KV_SPLIT_TENSORS_COUNT)
    if expected is not None and expected != len(tensors):
        raise SourceError(
            str(path), f"split.tensors.count={expected!r} but the splits hold {len(tensors):,}"
        )
    first = headers[0]
    return _Header(
        first.version,
        first.metadata,
        tensors,
        first.data_offset,
        sum(h.file_bytes for h in headers),
    )


def read_gguf_tokenizer_metadata(path: Path) -> dict[str, object]:
    """Every metadata entry of a GGUF file, with the ``tokenizer.*`` arrays (tokens, scores,
    token types, merges) read whole, up to MAX_TOKENIZER_ENTRIES entries each: what a
    tokenizer is rebuilt from, through the same bounds-checked scan as :func:`read_gguf`."""
    return _open_and_scan(Path(path), TOKENIZER_PREFIX).metadata


def read_gguf(path: Path) -> GgufModel:
    """Read a GGUF file's header into a ModelSpec and a Checkpoint of its tensors.

    Raises :class:`SourceError` for a file that is not a well-formed GGUF header, and for an
    architecture this reader does not translate (the message lists the supported ones).
    """
    path = Path(path)
    where = str(path)
    header = _open_and_scan(path)
    shards = _split_paths(path, header.metadata)
    if shards:
        header = _join_splits(path, header, shards)
    metadata = header.metadata
    arch = metadata.get(_K.General.ARCHITECTURE)
    if not isinstance(arch, str):
        raise SourceError(where, "metadata general.architecture is missing")
    if arch not in _ARCHES:
        raise SourceError(
            where,
            f"GGUF architecture {_show(arch)} is not supported; supported: "
            + ", ".join(SUPPORTED_ARCHITECTURES),
        )
    tensors = {t.name: t for t in header.tensors}
    m = _Meta(metadata, arch, where)
    config = _config(arch, m, tensors)
    name = _text(metadata, _K.General.NAME) or path.stem
    try:
        spec = spec_from_config(config, name=name, where=where)
    except ModelMemError as e:
        raise SourceError(where, f"architecture metadata rejected: {e}") from None

    file_type = _file_type(metadata)
    quantization = None
    if file_type is not None:
        quantization = file_type.removeprefix("MOSTLY_").removeprefix("ALL_")
    stored = tuple(
        StoredTensor(t.name, t.ne, t.ggml_type.name, t.nbytes, t.elements) for t in header.tensors
    )
    checkpoint = Checkpoint(
        origin=where,
        file_format="gguf",
        tensors=stored,
        quantization=quantization,
        files=len(shards) or 1,
        notes=tuple(_notes(arch, set(tensors), header.tensors, _ARCHES[arch].note)),
    )
    tokens = metadata.get(_K.Tokenizer.LIST)
    token_count = (
        tokens.length
        if isinstance(tokens, GgufArray)
        else (len(tokens) if isinstance(tokens, list) else None)
    )
    return GgufModel(
        spec=spec,
        checkpoint=checkpoint,
        architecture=arch,
        context_length=m.integer(_K.LLM.CONTEXT_LENGTH),
        file_type=file_type,
        tokenizer_model=_text(metadata, _K.Tokenizer.MODEL),
        config=config,
        token_count=token_count,
        bos_token_id=_int(metadata, _K.Tokenizer.BOS_ID),
        eos_token_id=_int(metadata, _K.Tokenizer.EOS_ID),
        metadata=metadata,
    )

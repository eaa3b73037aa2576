"""Number formats and quantization schemes, with the exact bytes a tensor takes in each.

The catalogue is data (``data/formats.json``): every entry states how many bytes a block of
values takes and cites where that figure was read. This module loads it (lazily, once),
looks names up, and turns a tensor shape into exact storage.

Shape convention: PyTorch order. A Linear weight is ``[out_features, in_features]``; its last
dimension is the contiguous one (ggml's ``ne0``), and quantization blocks and groups run
along it, i.e. over input features.

How a whole tensor is stored depends on the entry's ``layout``:

============  ===============================================================================
layout        bytes of a tensor with ``numel`` values
============  ===============================================================================
elementwise   ``numel · bytes_per_block`` (fp32 4, fp16/bf16 2, fp8/int8 1, ...)
packed        ``ceil(numel / block_size) · bytes_per_block`` (int4: two values per byte)
ggml          ``numel / block_size · bytes_per_block``; each row (last dimension) must be a
              whole number of blocks, as ggml requires (``ne0 % blck_size == 0``)
bnb4          bitsandbytes 4-bit: ``ceil(numel/2)`` code bytes + one fp32 absmax per 64 values,
              or with double quantization one uint8 absmax per 64 values + one fp32 per 256
              absmaxes; plus ``per_tensor_bytes`` of constants (code tables, offset)
llm-int8      ``[out, in]``: int8 ``CB`` (out·in bytes) + fp32 row scales ``SCB`` (out·4)
gptq          ``[out, in]``: qweight int32 ``[in·b/32, out]`` + qzeros int32
              ``[ceil(in/g), out·b/32]`` + scales fp16 ``[ceil(in/g), out]`` + g_idx int32 ``[in]``
awq           ``[out, in]``: qweight int32 ``[in, out·b/32]`` + qzeros int32 ``[in/g, out·b/32]``
              + scales fp16 ``[in/g, out]``
============  ===============================================================================

Sources: modelmem reference formulas E.1-E.4 and B.1; bitsandbytes ``functional.py``
``quantize_4bit``; AutoGPTQ ``qlinear_cuda.py``; AutoAWQ ``gemm.py``; ggml ``ggml-common.h``.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType
from typing import Any, Final

from modelmem.datafiles import read_data
from modelmem.errors import InvalidValueError, SourceError, UnknownNameError

__all__ = [
    "FAMILIES",
    "GROUPED_BITS",
    "GROUPED_GROUP_SIZES",
    "LAYOUTS",
    "NumberFormat",
    "all_formats",
    "get_format",
]

FAMILIES: Final[tuple[str, ...]] = (
    "float",
    "int",
    "bitsandbytes",
    "gptq",
    "awq",
    "ggml",
    "microscaling",
)
LAYOUTS: Final[tuple[str, ...]] = (
    "elementwise",
    "packed",
    "ggml",
    "bnb4",
    "llm-int8",
    "gptq",
    "awq",
)

GROUPED_BITS: Final[tuple[int, ...]] = (2, 3, 4, 8)
"""Bit widths accepted in ``gptq-<b>bit-g<g>`` / ``awq-<b>bit-g<g>`` (AutoGPTQ: 2, 3, 4, 8)."""
GROUPED_GROUP_SIZES: Final[tuple[int, ...]] = (32, 64, 128, 256)
"""Group sizes accepted in ``gptq-<b>bit-g<g>`` / ``awq-<b>bit-g<g>``."""

# Storage widths fixed by the libraries, not by the catalogue entry.
_INT32_BYTES: Final[int] = 4  # GPTQ/AWQ pack codes and zeros into int32 words; g_idx is int32
_FP16_BYTES: Final[int] = 2  # GPTQ/AWQ scales
_FP32_BYTES: Final[int] = 4  # bnb absmax without double quant; LLM.int8 SCB
_BNB_NESTED_BLOCK: Final[int] = 256  # quantize_4bit: quantize_blockwise(absmax, blocksize=256)
_BNB_NESTED_ABSMAX_BYTES: Final[int] = 1  # double-quantized absmax is uint8

_DATA_FILE: Final[str] = "formats.json"
_PARAMETRIC_RE: Final[re.Pattern[str]] = re.compile(r"(gptq|awq)[-_](\d+)bit[-_]g(\d+)")


@dataclass(frozen=True, kw_only=True, slots=True)
class NumberFormat:
    """One number format or quantization scheme and its exact storage.

    ``block_size`` values take ``bytes_per_block`` bytes, which gives the nominal
    :attr:`bits_per_value` including block overhead (scales, mins, zero points). Costs that
    depend on the tensor's shape (LLM.int8 row scales, GPTQ ``g_idx``) or are fixed per tensor
    (bitsandbytes code tables) are counted by :meth:`tensor_bytes` only.
    """

    name: str
    """Canonical lower-case name, e.g. ``"bf16"``, ``"nf4-dq"``, ``"q4_k"``."""
    family: str
    """One of :data:`FAMILIES`."""
    layout: str
    """How a whole tensor is stored; one of :data:`LAYOUTS` (see the module docstring)."""
    block_size: int
    """Values per block."""
    bytes_per_block: int
    """Bytes one block takes, including its scales."""
    description: str
    source: str
    """Where the figures were read: paper, specification, repository file and symbol."""
    aliases: tuple[str, ...] = ()
    """Other lower-case names accepted by :func:`get_format`."""
    ggml_type: str | None = None
    """The GGML type name (``"Q4_K"``, ``"F16"``) when GGUF can store this format."""
    bits: int | None = None
    """Code width in bits for GPTQ/AWQ."""
    group_size: int | None = None
    """Values sharing one scale: the GPTQ/AWQ group or the bitsandbytes absmax block."""
    double_quant: bool = False
    """bitsandbytes 4-bit with the absmax values quantized again (QLoRA)."""
    per_row_bytes: int = 0
    """Bytes per output row on top of the blocks (LLM.int8's fp32 SCB)."""
    per_tensor_bytes: int = 0
    """Fixed bytes per tensor (bitsandbytes code tables and offset)."""

    def __post_init__(self) -> None:
        field = f"format {self.name!r}"
        if not self.name or self.name != self.name.strip().lower():
            raise InvalidValueError("format.name", self.name, "must be non-empty lower case")
        if self.family not in FAMILIES:
            raise UnknownNameError(f"{field}.family", self.family, FAMILIES)
        if self.layout not in LAYOUTS:
            raise UnknownNameError(f"{field}.layout", self.layout, LAYOUTS)
        for attr in ("block_size", "bytes_per_block"):
            value = getattr(self, attr)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidValueError(f"{field}.{attr}", value, "must be an int >= 1")
        for attr in ("per_row_bytes", "per_tensor_bytes"):
            value = getattr(self, attr)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidValueError(f"{field}.{attr}", value, "must be an int >= 0")
        if not self.source.strip():
            raise InvalidValueError(f"{field}.source", self.source, "must cite a source")
        if self.layout in ("gptq", "awq"):
            if self.bits not in GROUPED_BITS:
                raise InvalidValueError(f"{field}.bits", self.bits, f"must be in {GROUPED_BITS}")
            if self.group_size is None or self.group_size < 1:
                raise InvalidValueError(f"{field}.group_size", self.group_size, "must be >= 1")
        if self.layout == "bnb4" and (self.group_size is None or self.group_size < 1):
            raise InvalidValueError(f"{field}.group_size", self.group_size, "must be >= 1")

    @property
    def bits_per_value(self) -> Fraction:
        """Nominal bits per value including block overhead, exact: q4_k 144·8/256 = 9/2.

        For GPTQ this is ``b + (16 + b)/g`` without the shape-dependent ``g_idx`` term
        (32/out bits); for LLM.int8 it is 8 without the row scales (32/in bits).
        """
        return Fraction(8 * self.bytes_per_block, self.block_size)

    @property
    def bytes_per_value(self) -> Fraction:
        """Nominal bytes per value, exact: fp32 4, int4 1/2, q8_0 17/16."""
        return Fraction(self.bytes_per_block, self.block_size)

    def tensor_bytes(self, shape: tuple[int, ...]) -> int:
        """Exact bytes of one tensor of logical ``shape`` stored in this format.

        ``shape`` is in PyTorch order; for Linear weights ``[out_features, in_features]``.
        Raises :class:`InvalidValueError` (field ``shape``) for a malformed shape or one the
        format cannot store (a ggml row that is not whole blocks, a GPTQ weight that is not
        2-D or whose dimensions are not multiples of 32, ...).
        """
        dims = _check_shape(shape)
        return _LAYOUT_BYTES[self.layout](self, dims)


# --- storage per layout -----------------------------------------------------------------------


def _check_shape(shape: object) -> tuple[int, ...]:
    if not isinstance(shape, tuple | list):
        raise InvalidValueError("shape", shape, "must be a tuple of ints")
    for dim in shape:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 0:
            raise InvalidValueError("shape", shape, "dimensions must be ints >= 0")
    return tuple(shape)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _elementwise_bytes(fmt: NumberFormat, shape: tuple[int, ...]) -> int:
    return math.prod(shape) * fmt.bytes_per_block // fmt.block_size


def _packed_bytes(fmt: NumberFormat, shape: tuple[int, ...]) -> int:
    return _ceil_div(math.prod(shape), fmt.block_size) * fmt.bytes_per_block


def _ggml_bytes(fmt: NumberFormat, shape: tuple[int, ...]) -> int:
    # ggml_nbytes: rows of ne0 values are split into blocks; ggml asserts ne0 % blck_size == 0.
    row = shape[-1] if shape else 1
    if row % fmt.block_size:
        raise InvalidValueError(
            "shape",
            shape,
            f"{fmt.name} stores rows in blocks of {fmt.block_size} values; "
            f"the last dimension {row} is not a multiple of {fmt.block_size}",
        )
    return math.prod(shape) // fmt.block_size * fmt.bytes_per_block


def _bnb4_bytes(fmt: NumberFormat, shape: tuple[int, ...]) -> int:
    # bitsandbytes quantize_4bit on the flattened tensor: (n + 1) // 2 uint8 codes and
    # ceil(n / blocksize) absmax values; with compress_statistics the absmax values become
    # uint8 with one fp32 absmax per 256 of them (quantize_blockwise(blocksize=256)).
    assert fmt.group_size is not None  # checked in __post_init__
    numel = math.prod(shape)
    blocks = _ceil_div(numel, fmt.group_size)
    if fmt.double_quant:
        stats = blocks * _BNB_NESTED_ABSMAX_BYTES + (
            _ceil_div(blocks, _BNB_NESTED_BLOCK) * _FP32_BYTES
        )
    else:
        stats = blocks * _FP32_BYTES
    return _ceil_div(numel, 2) + stats + fmt.per_tensor_bytes


def _linear_dims(fmt: NumberFormat, shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) != 2:
        raise InvalidValueError(
            "shape", shape, f"{fmt.name} stores 2-D Linear weights [out_features, in_features]"
        )
    return shape[0], shape[1]


def _llm_int8_bytes(fmt: NumberFormat, shape: tuple[int, ...]) -> int:
    out_features, in_features = _linear_dims(fmt, shape)
    return out_features * in_features * fmt.bytes_per_block + out_features * fmt.per_row_bytes


def _gptq_bytes(fmt: NumberFormat, shape: tuple[int, ...]) -> int:
    # AutoGPTQ QuantLinear: qweight int32 [in // 32 * b, out], qzeros int32
    # [ceil(in / g), out // 32 * b], scales fp16 [ceil(in / g), out], g_idx int32 [in].
    out_features, in_features = _linear_dims(fmt, shape)
    assert fmt.bits is not None and fmt.group_size is not None  # checked in __post_init__
    b, g = fmt.bits, fmt.group_size
    if in_features % 32 or out_features % 32:
        raise InvalidValueError(
            "shape",
            shape,
            f"{fmt.name} packs 32 values per b int32 words along both dimensions; "
            "in_features and out_features must be multiples of 32",
        )
    groups = _ceil_div(in_features, g)
    qweight = in_features // 32 * b * out_features * _INT32_BYTES
    qzeros = groups * (out_features // 32 * b) * _INT32_BYTES
    scales = groups * out_features * _FP16_BYTES
    g_idx = in_features * _INT32_BYTES
    return qweight + qzeros + scales + g_idx


def _awq_bytes(fmt: NumberFormat, shape: tuple[int, ...]) -> int:
    # AutoAWQ WQLinear_GEMM: qweight int32 [in, out // (32 // b)], qzeros int32
    # [in // g, out // (32 // b)], scales fp16 [in // g, out]; it asserts in % g == 0.
    out_features, in_features = _linear_dims(fmt, shape)
    assert fmt.bits is not None and fmt.group_size is not None  # checked in __post_init__
    b, g = fmt.bits, fmt.group_size
    if in_features % g or (out_features * b) % 32:
        raise InvalidValueError(
            "shape",
            shape,
            f"{fmt.name} needs in_features a multiple of the group size {g} and "
            f"out_features·{b} a multiple of 32 (whole int32 words)",
        )
    words_per_row = out_features * b // 32
    groups = in_features // g
    qweight = in_features * words_per_row * _INT32_BYTES
    qzeros = groups * words_per_row * _INT32_BYTES
    scales = groups * out_features * _FP16_BYTES
    return qweight + qzeros + scales


_LAYOUT_BYTES: Final[Mapping[str, Callable[[NumberFormat, tuple[int, ...]], int]]] = (
    MappingProxyType(
        {
            "elementwise": _elementwise_bytes,
            "packed": _packed_bytes,
            "ggml": _ggml_bytes,
            "bnb4": _bnb4_bytes,
            "llm-int8": _llm_int8_bytes,
            "gptq": _gptq_bytes,
            "awq": _awq_bytes,
        }
    )
)


# --- catalogue --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Catalogue:
    formats: tuple[NumberFormat, ...]
    by_name: Mapping[str, NumberFormat]


def _require(entry: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in entry:
        raise SourceError(_DATA_FILE, f"{where}: missing {key!r}")
    value = entry[key]
    if isinstance(value, bool) and kind is not bool:
        raise SourceError(_DATA_FILE, f"{where}: {key!r} must be {kind.__name__}")
    if not isinstance(value, kind):
        raise SourceError(_DATA_FILE, f"{where}: {key!r} must be {kind.__name__}")
    return value


def _optional(entry: Mapping[str, Any], key: str, kind: type, default: Any, where: str) -> Any:
    return _require(entry, key, kind, where) if key in entry else default


def _format_from_json(entry: object, index: int) -> NumberFormat:
    if not isinstance(entry, dict):
        raise SourceError(_DATA_FILE, f"formats[{index}] is not an object")
    where = f"formats[{index}] ({entry.get('name')!r})"
    aliases = _optional(entry, "aliases", list, [], where)
    if not all(isinstance(alias, str) and alias == alias.lower() for alias in aliases):
        raise SourceError(_DATA_FILE, f"{where}: aliases must be lower-case strings")
    try:
        return NumberFormat(
            name=_require(entry, "name", str, where),
            family=_require(entry, "family", str, where),
            layout=_require(entry, "layout", str, where),
            block_size=_require(entry, "block_size", int, where),
            bytes_per_block=_require(entry, "bytes_per_block", int, where),
            description=_require(entry, "description", str, where),
            source=_require(entry, "source", str, where),
            aliases=tuple(aliases),
            ggml_type=_optional(entry, "ggml_type", str, None, where),
            bits=_optional(entry, "bits", int, None, where),
            group_size=_optional(entry, "group_size", int, None, where),
            double_quant=_optional(entry, "double_quant", bool, False, where),
            per_row_bytes=_optional(entry, "per_row_bytes", int, 0, where),
            per_tensor_bytes=_optional(entry, "per_tensor_bytes", int, 0, where),
        )
    except InvalidValueError as error:
        raise SourceError(_DATA_FILE, f"{where}: {error}") from error


@functools.cache
def _catalogue() -> _Catalogue:
    """Read ``data/formats.json`` once, on first use."""
    text = read_data(_DATA_FILE)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise SourceError(_DATA_FILE, f"not valid JSON: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("formats"), list):
        raise SourceError(_DATA_FILE, "expected an object with a 'formats' list")
    formats = tuple(
        _format_from_json(entry, index) for index, entry in enumerate(document["formats"])
    )
    by_name: dict[str, NumberFormat] = {}
    for fmt in formats:
        for key in (fmt.name, *fmt.aliases):
            if key in by_name:
                raise SourceError(
                    _DATA_FILE, f"name {key!r} used by both {by_name[key].name} and {fmt.name}"
                )
            by_name[key] = fmt
    return _Catalogue(formats=formats, by_name=MappingProxyType(by_name))


def all_formats() -> tuple[NumberFormat, ...]:
    """Every format in the catalogue, in file order (parametric GPTQ/AWQ variants excluded)."""
    return _catalogue().formats


def _grouped_format(key: str, original: str) -> NumberFormat | None:
    """Build ``gptq-<b>bit-g<g>`` / ``awq-<b>bit-g<g>`` from the listed 4-bit g128 entry."""
    match = _PARAMETRIC_RE.fullmatch(key)
    if match is None:
        return None
    scheme, bits, group = match[1], int(match[2]), int(match[3])
    if bits not in GROUPED_BITS or group not in GROUPED_GROUP_SIZES:
        raise InvalidValueError(
            "format",
            original,
            f"{scheme} bits must be one of {GROUPED_BITS} and group size one of "
            f"{GROUPED_GROUP_SIZES}",
        )
    name = f"{scheme}-{bits}bit-g{group}"
    listed = _catalogue().by_name.get(name)
    if listed is not None:
        return listed
    template = next(f for f in _catalogue().formats if f.layout == scheme)
    # One block = g input rows x 8 output columns: 8·g·b code bits (g·b bytes), 8 zero points
    # of b bits (b bytes) and 8 fp16 scales (16 bytes).
    return NumberFormat(
        name=name,
        family=template.family,
        layout=template.layout,
        block_size=8 * group,
        bytes_per_block=group * bits + bits + 8 * _FP16_BYTES,
        bits=bits,
        group_size=group,
        description=f"{scheme.upper()} {bits}-bit, group size {group}: b + (16 + b)/g bits per "
        "value; same buffers as " + template.name + ".",
        source=template.source,
    )


def get_format(name: str) -> NumberFormat:
    """Look a format up by name or alias, case-insensitively: ``"BF16"``, ``"fp8"``, ``"Q4_K"``.

    ``gptq-<b>bit-g<g>`` and ``awq-<b>bit-g<g>`` are built on demand for b in 2, 3, 4, 8 and
    g in 32, 64, 128, 256. An unknown name raises :class:`UnknownNameError` listing the
    known ones; no format is ever guessed.
    """
    if not isinstance(name, str):
        raise InvalidValueError("format", name, "must be a string")
    key = name.strip().lower()
    found = _catalogue().by_name.get(key) or _grouped_format(key, name)
    if found is None:
        raise UnknownNameError("format", name, (f.name for f in _catalogue().formats))
    return found

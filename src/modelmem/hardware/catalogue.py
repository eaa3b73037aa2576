"""The accelerator catalogue: one row per device as one process sees it.

The rows are data (``data/devices.json``), each with the datasheet it was read from.
Memory is the vendor's capacity read in binary units (vendors size HBM, GDDR and Apple
unified memory in powers of two: an "80 GB" H100 has 80 GiB = 85,899,345,920 bytes);
``usable_memory_bytes`` is what the driver or the OS leaves to a job where a source
quotes it (nvidia-smi's total; the GPU's share of Apple unified memory). Throughput is
dense (no 2:4 sparsity) matrix FLOP/s, per number format: ``bf16_flops`` only where the
hardware has BF16 (Turing, Volta and Pascal do not), ``fp16_flops`` where FP16 runs at a
rate of its own and no BF16 figure applies, ``fp8_flops`` where there is an FP8 matrix unit.

Every filter on memory (``devices_matching``, and with it ``devices --min-memory``)
compares :attr:`Accelerator.budget_bytes`, the figure fit verdicts use: the usable memory
where a source quotes it, else the capacity.

Names match case-insensitively, ignoring ``-``, ``_`` and spaces: ``H100-80GB``, ``h100``,
``rtx4090`` and ``RTX 4090`` are all found.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from modelmem.datafiles import read_data
from modelmem.errors import InvalidValueError, SourceError, UnknownNameError

__all__ = [
    "KINDS",
    "MATMUL_DTYPES",
    "Accelerator",
    "all_devices",
    "devices_matching",
    "find_device",
    "get_device",
]

KINDS: tuple[str, ...] = ("datacenter", "workstation", "consumer", "edge", "apple", "tpu")
MATMUL_DTYPES: tuple[str, ...] = ("bf16", "fp16", "fp8")
_CATALOGUE = "devices.json"


@dataclass(frozen=True, kw_only=True, slots=True)
class Accelerator:
    """One accelerator: capacity in bytes, bandwidth in bytes/s, dense FLOP/s."""

    name: str
    aliases: tuple[str, ...]
    vendor: str
    kind: str  # one of KINDS
    memory_bytes: int
    usable_memory_bytes: int | None  # what the driver/OS leaves usable, where a source says
    bandwidth_bytes_per_s: int
    bf16_flops: int | None  # dense BF16 FLOP/s; None where the hardware has no BF16
    fp8_flops: int | None  # dense FP8 FLOP/s; None without an FP8 matrix unit
    fp16_flops: int | None = None  # dense FP16 FLOP/s, given where no BF16 figure applies
    source: str
    usable_source: str | None = None
    memory_type: str | None = None
    notes: str = ""

    @property
    def budget_bytes(self) -> int:
        """The memory a job can count on: the usable figure where known, else the capacity."""
        return (
            self.usable_memory_bytes if self.usable_memory_bytes is not None else self.memory_bytes
        )

    @property
    def matmul_flops(self) -> int | None:
        """The dense 16-bit matrix peak: BF16 where the hardware has it, else FP16; None
        where it has neither at a usable rate (Tesla P40 runs FP16 at 1/64 of FP32)."""
        return self.bf16_flops if self.bf16_flops is not None else self.fp16_flops

    def flops(self, dtype: str) -> int | None:
        """The dense matrix peak for ``dtype`` (one of MATMUL_DTYPES); None where the
        device has no such unit. FP16 falls back to the BF16 figure: every device with
        BF16 tensor units runs FP16 (FP32 accumulate) at the same rate."""
        if dtype not in MATMUL_DTYPES:
            raise UnknownNameError("compute_dtype", dtype, MATMUL_DTYPES)
        if dtype == "fp8":
            return self.fp8_flops
        if dtype == "fp16":
            return self.fp16_flops if self.fp16_flops is not None else self.bf16_flops
        return self.bf16_flops

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "aliases": list(self.aliases),
            "vendor": self.vendor,
            "kind": self.kind,
            "memory_bytes": self.memory_bytes,
            "usable_memory_bytes": self.usable_memory_bytes,
            "budget_bytes": self.budget_bytes,
            "memory_type": self.memory_type,
            "bandwidth_bytes_per_s": self.bandwidth_bytes_per_s,
            "bf16_flops": self.bf16_flops,
            "fp16_flops": self.fp16_flops,
            "matmul_flops": self.matmul_flops,
            "fp8_flops": self.fp8_flops,
            "source": self.source,
            "usable_source": self.usable_source,
            "notes": self.notes,
        }


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name.strip().lower())


def _int(row: dict[str, Any], field: str, where: str, optional: bool = False) -> int | None:
    value = row.get(field)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise SourceError(where, f"{field} must be a positive integer, not {value!r}")
    return value


def _device(row: dict[str, Any], index: int) -> Accelerator:
    where = f"{_CATALOGUE} row {index} ({row.get('name', '?')})"
    for field in ("name", "vendor", "kind", "source"):
        if not isinstance(row.get(field), str) or not row[field].strip():
            raise SourceError(where, f"{field} must be a non-empty string")
    if row["kind"] not in KINDS:
        raise SourceError(where, f"kind {row['kind']!r} is not one of {', '.join(KINDS)}")
    memory = _int(row, "memory_bytes", where)
    bandwidth = _int(row, "bandwidth_bytes_per_s", where)
    assert memory is not None and bandwidth is not None
    bf16 = _int(row, "bf16_flops", where, optional=True)
    fp16 = _int(row, "fp16_flops", where, optional=True)
    if bf16 is None and fp16 is None and not row.get("notes"):
        raise SourceError(where, "no bf16_flops or fp16_flops: notes must say why")
    usable = _int(row, "usable_memory_bytes", where, optional=True)
    if usable is not None and usable > memory:
        raise SourceError(where, "usable_memory_bytes exceeds memory_bytes")
    if usable is not None and not row.get("usable_source"):
        raise SourceError(where, "usable_memory_bytes needs a usable_source")
    return Accelerator(
        name=row["name"],
        aliases=tuple(row.get("aliases", ())),
        vendor=row["vendor"],
        kind=row["kind"],
        memory_bytes=memory,
        usable_memory_bytes=usable,
        bandwidth_bytes_per_s=bandwidth,
        bf16_flops=bf16,
        fp8_flops=_int(row, "fp8_flops", where, optional=True),
        fp16_flops=fp16,
        source=row["source"],
        usable_source=row.get("usable_source"),
        memory_type=row.get("memory_type"),
        notes=row.get("notes", ""),
    )


@lru_cache(maxsize=1)
def all_devices() -> tuple[Accelerator, ...]:
    """Every catalogue row, in the file's order."""
    text = read_data(_CATALOGUE)
    data = json.loads(text)
    return tuple(_device(row, i) for i, row in enumerate(data["devices"]))


@lru_cache(maxsize=1)
def _index() -> dict[str, Accelerator]:
    index: dict[str, Accelerator] = {}
    for device in all_devices():
        for name in (device.name, *device.aliases):
            key = _key(name)
            other = index.get(key)
            if other is not None and other is not device:
                raise SourceError(
                    _CATALOGUE, f"name {name!r} of {device.name} is also {other.name}'s"
                )
            index[key] = device
    return index


def find_device(name: str) -> Accelerator | None:
    """The device called ``name`` (or an alias), or None."""
    return _index().get(_key(name))


def devices_matching(
    kind: str | None = None, vendor: str | None = None, min_memory_bytes: int | None = None
) -> list[Accelerator]:
    """Catalogue rows of ``kind`` (one of KINDS) and ``vendor`` (case-insensitive) whose
    memory a job can count on, :attr:`Accelerator.budget_bytes`, is at least
    ``min_memory_bytes``: the same usable figure for every device, the one fit uses."""
    if kind is not None and kind not in KINDS:
        raise UnknownNameError("kind", kind, KINDS)
    if min_memory_bytes is not None and (
        isinstance(min_memory_bytes, bool)
        or not isinstance(min_memory_bytes, int)
        or min_memory_bytes < 0
    ):
        raise InvalidValueError("min_memory", min_memory_bytes, "must be a byte count >= 0")
    wanted_vendor = vendor.strip().lower() if vendor is not None else None
    floor = min_memory_bytes or 0
    return [
        d
        for d in all_devices()
        if (kind is None or d.kind == kind)
        and (wanted_vendor is None or d.vendor.lower() == wanted_vendor)
        and d.budget_bytes >= floor
    ]


def get_device(name: str) -> Accelerator:
    """The device called ``name`` (case-insensitive; ``-``, ``_`` and spaces ignored)."""
    device = find_device(name) if isinstance(name, str) else None
    if device is None:
        raise UnknownNameError("device", name, [d.name for d in all_devices()])
    return device

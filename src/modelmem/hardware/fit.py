"""Fit verdicts: does a per-device memory estimate fit a device, and by how much.

A verdict compares the estimate's peak *per device* (weights, cache, gradients and states
already sharded by tensor parallelism or ZeRO/FSDP) with one device's memory less a
safety reserve. Devices are never added up: eight 80 GB GPUs do not make one 640 GB
device, and a breakdown for ``N`` devices must say so (``MemoryBreakdown.devices``).

The safety reserve is stated with every verdict. It covers what the estimate does not:
fragmentation beyond the caching allocator's slack, other processes, library workspaces.
Its default, 5 % of the device's memory, is an assumption, overridable (``--reserve``).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import ceil
from typing import Any

from modelmem.errors import InvalidValueError
from modelmem.hardware.catalogue import Accelerator
from modelmem.memory.breakdown import MemoryBreakdown, MemoryComponent

__all__ = ["DEFAULT_RESERVE", "MAX_DEVICES", "FitVerdict", "check_fit", "fit_budget", "fit_bytes"]

from modelmem.vocabulary import DEFAULT_RESERVE

MAX_DEVICES = 4096


def check_count(count: int) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_DEVICES:
        raise InvalidValueError("count", count, f"must be an integer in [1, {MAX_DEVICES}]")
    return count


def check_reserve(reserve: Fraction) -> Fraction:
    if not 0 <= reserve < 1:
        raise InvalidValueError("reserve", float(reserve), "must be in [0, 1)")
    return reserve


def fit_budget(device_bytes: int, reserve: Fraction = DEFAULT_RESERVE) -> int:
    """Bytes an estimate may take on a device of ``device_bytes``: all but the reserve."""
    check_reserve(reserve)
    return device_bytes - ceil(device_bytes * reserve)


@dataclass(frozen=True, slots=True)
class FitVerdict:
    """Whether a per-device peak fits one device, with the margin and what dominates."""

    device: str
    count: int
    device_bytes: int  # the device's memory a job can count on (usable where known)
    reserve: Fraction
    reserve_bytes: int
    total_bytes: int  # the estimate's peak per device
    dominant: MemoryComponent
    breakdown: MemoryBreakdown
    notes: tuple[str, ...] = ()

    @property
    def budget_bytes(self) -> int:
        return self.device_bytes - self.reserve_bytes

    @property
    def fits(self) -> bool:
        return self.total_bytes <= self.budget_bytes

    @property
    def margin_bytes(self) -> int:
        """Budget left (negative: bytes missing), after the safety reserve."""
        return self.budget_bytes - self.total_bytes

    @property
    def margin_percent(self) -> float:
        """The margin as a percentage of the device's memory."""
        return 100 * self.margin_bytes / self.device_bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "count": self.count,
            "fits": self.fits,
            "device_bytes": self.device_bytes,
            "reserve": float(self.reserve),
            "reserve_bytes": self.reserve_bytes,
            "budget_bytes": self.budget_bytes,
            "total_bytes": self.total_bytes,
            "margin_bytes": self.margin_bytes,
            "margin_percent": round(self.margin_percent, 3),
            "dominant": self.dominant.to_dict(),
            "notes": list(self.notes),
        }


def fit_bytes(
    breakdown: MemoryBreakdown,
    device_bytes: int,
    *,
    device: str,
    count: int = 1,
    reserve: Fraction = DEFAULT_RESERVE,
    notes: tuple[str, ...] = (),
) -> FitVerdict:
    """Verdict for ``breakdown`` (the peak on each of ``count`` devices) on a device with
    ``device_bytes`` of memory."""
    check_count(count)
    check_reserve(reserve)
    if isinstance(device_bytes, bool) or not isinstance(device_bytes, int) or device_bytes <= 0:
        raise InvalidValueError("device_memory", device_bytes, "must be a positive integer")
    if breakdown.devices != count:
        raise InvalidValueError(
            "count",
            count,
            f"the estimate is per device for {breakdown.devices} device(s); estimate it for "
            f"{count} (tensor parallel or ZeRO/FSDP) instead of adding memory up",
        )
    if not breakdown.components:
        raise InvalidValueError("breakdown", breakdown, "has no components")
    return FitVerdict(
        device=device,
        count=count,
        device_bytes=device_bytes,
        reserve=reserve,
        reserve_bytes=ceil(device_bytes * reserve),
        total_bytes=breakdown.total_bytes,
        dominant=breakdown.dominant(),
        breakdown=breakdown,
        notes=notes,
    )


def check_fit(
    breakdown: MemoryBreakdown,
    device: Accelerator,
    count: int = 1,
    reserve: Fraction = DEFAULT_RESERVE,
) -> FitVerdict:
    """Verdict for ``breakdown`` on ``count`` catalogue devices (memory per device)."""
    notes: list[str] = []
    if device.usable_memory_bytes is None:
        notes.append(
            f"{device.name}: no source quotes what the driver leaves usable; the whole "
            "stated capacity is counted"
        )
    if device.kind == "apple":
        notes.append(
            f"{device.name}: the GPU may wire {device.usable_memory_bytes:,} B of unified "
            "memory by default (sysctl iogpu.wired_limit_mb raises it)"
        )
    return fit_bytes(
        breakdown,
        device.budget_bytes,
        device=device.name,
        count=count,
        reserve=reserve,
        notes=tuple(notes),
    )

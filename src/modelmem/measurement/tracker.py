"""Exact live-tensor accounting with a dispatch mode.

Every aten op's output storage is recorded once, with its size in bytes, and released
through a ``weakref.finalize`` on the storage when PyTorch frees it. The running total
is the live tensor memory a caching allocator would have to hold (before its own
rounding, which is tracked separately). It works the same on real and on fake tensors,
so a fake run can be checked against a real CPU run to the byte.

Each allocation keeps the step phase in which it was made; categories (gradients,
optimizer state, ...) are assigned after the fact, so the composition of the peak is
computed from the allocations alive at the peak's sequence number.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

# The CUDA caching allocator hands out blocks in multiples of 512 bytes
# (c10/cuda/CUDACachingAllocator.cpp, kMinBlockSize); reported beside the exact figure.
CUDA_BLOCK_BYTES = 512
_NEVER = 1 << 62


def round_up(nbytes: int, block: int = CUDA_BLOCK_BYTES) -> int:
    return -(-nbytes // block) * block


@dataclass(slots=True)
class Allocation:
    seq: int  # event number of its creation (every allocation and free is one event)
    nbytes: int
    phase: str
    op: str
    freed_seq: int = _NEVER
    category: str = ""


@dataclass(slots=True)
class Peak:
    bytes: int = 0
    rounded_bytes: int = 0
    seq: int = -1
    phase: str = ""
    op: str = ""


class StorageTracker(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """Records live storage while active (``with tracker:``)."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.allocations: dict[int, Allocation] = {}
        self.live_bytes = 0
        self.live_rounded = 0
        self.seq = 0  # event counter: every allocation and every free is one event
        self.ops = 0
        self.phase = "setup"
        self.peak = Peak()
        self.phase_peaks: dict[str, Peak] = {}
        self._ids = itertools.count(1)

    # --- recording ----------------------------------------------------------------

    def adopt(self, tensors: Iterable[torch.Tensor], phase: str, category: str) -> None:
        """Count storages that already exist (parameters, buffers, inputs)."""
        for t in tensors:
            self._record(t, phase, "adopt", category)

    def _record(self, t: torch.Tensor, phase: str, op: str, category: str = "") -> None:
        storage = t.untyped_storage()
        if getattr(storage, "_modelmem_id", None) is not None:
            return
        nbytes = int(storage.nbytes())
        key = next(self._ids)
        storage._modelmem_id = key  # type: ignore[attr-defined]
        self.seq += 1
        self.allocations[key] = Allocation(self.seq, nbytes, phase, op, category=category)
        self.live_bytes += nbytes
        self.live_rounded += round_up(nbytes)
        weakref.finalize(storage, self._free, key)
        self._update_peak(op)

    def _free(self, key: int) -> None:
        record = self.allocations.get(key)
        if record is None or record.freed_seq != _NEVER:
            return
        self.seq += 1
        record.freed_seq = self.seq
        self.live_bytes -= record.nbytes
        self.live_rounded -= round_up(record.nbytes)

    def _update_peak(self, op: str) -> None:
        if self.live_bytes > self.peak.bytes:
            self.peak = Peak(self.live_bytes, self.live_rounded, self.seq, self.phase, op)
        phase_peak = self.phase_peaks.get(self.phase)
        if phase_peak is None or self.live_bytes > phase_peak.bytes:
            self.phase_peaks[self.phase] = Peak(
                self.live_bytes, self.live_rounded, self.seq, self.phase, op
            )

    def __torch_dispatch__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        out = func(*args, **(kwargs or {}))
        self.ops += 1
        name = func.__name__ if hasattr(func, "__name__") else str(func)
        for leaf in tree_leaves(out):
            if isinstance(leaf, torch.Tensor):
                self._record(leaf, self.phase, name)
        return out

    # --- after the run --------------------------------------------------------------

    def set_phase(self, phase: str) -> None:
        self.phase = phase

    def categorize(self, tensors: Iterable[torch.Tensor], category: str) -> None:
        """Give the storages of ``tensors`` a final category (gradients, states, ...)."""
        for t in tensors:
            key = getattr(t.untyped_storage(), "_modelmem_id", None)
            if key is not None and key in self.allocations:
                self.allocations[key].category = category

    def composition(self, peak: Peak, default: Callable[[Allocation], str]) -> dict[str, int]:
        """Bytes by category of every storage alive at ``peak``."""
        parts: dict[str, int] = {}
        for a in self.allocations.values():
            if a.seq <= peak.seq < a.freed_seq:
                name = a.category or default(a)
                parts[name] = parts.get(name, 0) + a.nbytes
        return parts

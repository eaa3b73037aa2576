"""A checkpoint as its file headers describe it: tensors, their stored types and bytes.

safetensors and GGUF readers both return a :class:`Checkpoint`. It is the ground truth
for the weights of a model that exists on disk or on the Hub: its byte total is what the
file's tensor data occupies, and its parameter count is the logical number of weights
(a GPTQ ``qweight`` of int32 holding eight 4-bit values counts eight parameters per
element; a GGUF tensor's shape is already the logical one).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class StoredTensor:
    """One tensor as stored in a file."""

    name: str  # the file's own name: ``model.layers.0.mlp.up_proj.weight``, ``blk.0.attn_q.weight``
    shape: tuple[int, ...]  # as the file states it (GGUF: ggml order, fastest dimension first)
    dtype: str  # the file's type name: ``BF16``, ``F32``, ``I32``, ``U8``, ``Q4_K``, ...
    nbytes: int  # bytes of tensor data in the file
    params: int  # logical weights it holds; 0 for bookkeeping tensors (scales, zeros, g_idx)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Every tensor of one model's weight files, read from headers only."""

    origin: str  # the file, folder or Hub id it was read from
    file_format: str  # "safetensors" | "gguf"
    tensors: tuple[StoredTensor, ...]
    quantization: str | None = None  # e.g. "gptq-4bit-g128", "bnb-nf4", "fp8", "Q4_K_M"
    files: int = 1
    notes: tuple[str, ...] = field(default=())

    @property
    def total_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    @property
    def total_params(self) -> int:
        return sum(t.params for t in self.tensors)

    def bytes_by_dtype(self) -> tuple[tuple[str, int], ...]:
        """Stored type -> bytes, largest first."""
        totals: dict[str, int] = {}
        for t in self.tensors:
            totals[t.dtype] = totals.get(t.dtype, 0) + t.nbytes
        return tuple(sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])))

"""The types of a serving estimate, shared by every engine's model.

:mod:`modelmem.memory.inference` (transformers and the dispatch) and
:mod:`modelmem.memory.engines` (vLLM, llama.cpp) both build on these, so neither imports
the other's internals: the dependency runs one way, inference -> engines -> serving.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from modelmem.errors import InvalidValueError, check_choices, check_positive_ints
from modelmem.memory.breakdown import MemoryBreakdown
from modelmem.memory.kvcache import CacheLayout
from modelmem.memory.weights import WeightsEstimate, estimate_weights
from modelmem.model.spec import ModelSpec
from modelmem.vocabulary import (
    ATTENTIONS,
    DEFAULT_ALLOCATOR_RESERVE,
    DEFAULT_CUDA_CONTEXT_BYTES,
    DEFAULT_GPU_MEMORY_UTILIZATION,
    DEFAULT_MAX_NUM_BATCHED_TOKENS,
    DEFAULT_UBATCH,
    DEFAULT_VLLM_VERSION,
    ENGINES,
    LLAMA_CPP_SPLIT_MODES,
    MIB,
)

__all__ = [
    "DEFAULT_CUDA_GRAPH_BYTES",
    "EngineSettings",
    "InferenceEstimate",
    "InferenceWorkload",
    "activation_bytes",
    "weights_of",
]

# Memory CUDA graphs take in vLLM; logs show 0.11–0.96 GiB captured. Overridable.
DEFAULT_CUDA_GRAPH_BYTES = 512 * MIB


@dataclass(frozen=True, kw_only=True, slots=True)
class InferenceWorkload:
    batch: int = 1
    context: int = 4096  # tokens cached per sequence at the end (prompt + generated)
    prompt: int | None = None  # prefill length; defaults to the whole context
    dtype: str = "bf16"  # weight scheme (see memory.weights)
    kv_dtype: str | None = None  # default: the activation dtype
    engine: str = "transformers"  # one of ENGINES, checked below
    attention: str = "sdpa"  # sdpa | eager, checked below
    tp: int = 1
    # The weights as a checkpoint stores them (safetensors/GGUF headers); None: estimated
    # from ``dtype``, which then names only the compute (activation) format.
    stored_weights: WeightsEstimate | None = None
    cuda_context_bytes: int = DEFAULT_CUDA_CONTEXT_BYTES
    allocator_reserve: Fraction = DEFAULT_ALLOCATOR_RESERVE
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        check_positive_ints(self, ("batch", "context", "tp"), 2**26)
        if self.prompt is not None and not 1 <= self.prompt <= self.context:
            raise InvalidValueError(
                "prompt", self.prompt, f"must be in [1, context={self.context}]"
            )
        check_choices(self, (("engine", ENGINES), ("attention", ATTENTIONS)))
        if self.cuda_context_bytes < 0:
            raise InvalidValueError("cuda_context", self.cuda_context_bytes, "must be >= 0")
        if not 0 <= self.allocator_reserve <= 1:
            raise InvalidValueError(
                "allocator_reserve", float(self.allocator_reserve), "must be in [0, 1]"
            )

    @property
    def prompt_tokens(self) -> int:
        return self.prompt if self.prompt is not None else self.context


@dataclass(frozen=True, slots=True)
class InferenceEstimate:
    breakdown: MemoryBreakdown
    weights: WeightsEstimate
    cache: CacheLayout
    tensor_peak_bytes: int  # weights + cache + transients, before runtime overheads
    peak_phase: str
    # what an engine itself would report or decide (vLLM's KV pool, llama.cpp's offload
    # and per-device split), copied as is into the JSON answer
    engine_facts: dict[str, Any] = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return self.breakdown.total_bytes


def activation_bytes(dtype: str) -> int:
    """Bytes of one activation: fp32 models compute in fp32, everything else in 16 bit."""
    return 4 if dtype.lower() in ("fp32", "float32", "f32") else 2


def weights_of(spec: ModelSpec, workload: InferenceWorkload) -> WeightsEstimate:
    """The checkpoint's stored weights where given, else the estimate for ``dtype``."""
    return workload.stored_weights or estimate_weights(spec, workload.dtype)


@dataclass(frozen=True, kw_only=True, slots=True)
class EngineSettings:
    """Knobs of the engines (their defaults in current releases)."""

    device_memory_bytes: int | None = None
    gpu_memory_utilization: float = (
        DEFAULT_GPU_MEMORY_UTILIZATION  # vLLM default (0.92 in the newest CacheConfig)
    )
    max_num_batched_tokens: int = DEFAULT_MAX_NUM_BATCHED_TOKENS  # vLLM V1 chunked-prefill budget
    # vLLM --max-num-seqs; None: the release's default for the device (V1: 1,024 on a
    # device of 70 GiB or more, else 256; V0: 256)
    max_num_seqs: int | None = None
    vllm_version: str = DEFAULT_VLLM_VERSION
    cuda_graph_bytes: int = DEFAULT_CUDA_GRAPH_BYTES
    n_ubatch: int = DEFAULT_UBATCH  # llama.cpp physical batch
    flash_attention: bool = True  # llama.cpp -fa
    gpu_layers: int | None = None  # llama.cpp -ngl; None = as many as fit (or all)
    devices: int = 1  # llama.cpp: devices the model is split over
    split_mode: str = "layer"  # llama.cpp -sm layer | row
    tensor_split: tuple[float, ...] | None = None  # llama.cpp -ts; None: equal shares
    mmap: bool = True  # llama.cpp --no-mmap reads the weights into buffers

    def __post_init__(self) -> None:
        if not 0 < self.gpu_memory_utilization <= 1:
            raise InvalidValueError(
                "gpu_memory_utilization", self.gpu_memory_utilization, "must be in (0, 1]"
            )
        for name in ("max_num_batched_tokens", "n_ubatch", "devices"):
            if getattr(self, name) < 1:
                raise InvalidValueError(name, getattr(self, name), "must be >= 1")
        if self.max_num_seqs is not None and self.max_num_seqs < 1:
            raise InvalidValueError("max_num_seqs", self.max_num_seqs, "must be >= 1")
        check_choices(self, (("split_mode", LLAMA_CPP_SPLIT_MODES),))
        if self.tensor_split is not None:
            if len(self.tensor_split) != self.devices:
                raise InvalidValueError(
                    "tensor_split",
                    ",".join(f"{r:g}" for r in self.tensor_split),
                    f"must give one share per device ({self.devices})",
                )
            if any(r < 0 for r in self.tensor_split) or sum(self.tensor_split) <= 0:
                raise InvalidValueError(
                    "tensor_split",
                    ",".join(f"{r:g}" for r in self.tensor_split),
                    "shares must be >= 0 and not all 0",
                )

"""The names and defaults every layer shares, in one place.

Light on purpose (no imports beyond the standard library): the core estimators, the
application layer and the doors (command line, web API, Python API) all read their lists
of choices and their defaults from here, so a name or a default written once cannot drift.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Final

MIB: Final = 2**20

# ------------------------------------------------------------------------------ inference
ENGINES: Final[tuple[str, ...]] = ("transformers", "vllm", "llama.cpp")
ATTENTIONS: Final[tuple[str, ...]] = ("sdpa", "eager")
DEFAULT_DTYPE: Final = "bf16"  # weights of a model with no checkpoint and no shipped format
DEFAULT_INFERENCE_CONTEXT_CAP: Final = 8192  # default context: the model's, capped here
# PyTorch's CUDA context with lazy module loading (CUDA >= 11.7): "around 300-400 MB"
# (PyTorch issues #107667, #109888; PR #86509 measured 287,047,680 B). Overridable.
DEFAULT_CUDA_CONTEXT_BYTES: Final = 400 * MIB
DEFAULT_CUDA_CONTEXT: Final = "400MiB"  # the same, as options spell it
# Caching-allocator slack above the tensor peak (reserved − allocated); torchtune PR #527
# measured 14 % in training; inference with few sizes sits lower. Overridable.
DEFAULT_ALLOCATOR_RESERVE: Final = Fraction(5, 100)
DEFAULT_GPU_MEMORY_UTILIZATION: Final = 0.9  # vLLM's --gpu-memory-utilization
DEFAULT_MAX_NUM_BATCHED_TOKENS: Final = 8192  # vLLM's profile run (chunked prefill budget)
DEFAULT_UBATCH: Final = 512  # llama.cpp's -ub
# vLLM release whose memory profile is priced by default: the newest on PyPI (2026-11).
DEFAULT_VLLM_VERSION: Final = "0.33.0"
LLAMA_CPP_SPLIT_MODES: Final[tuple[str, ...]] = ("layer", "row")  # llama.cpp's -sm

# ------------------------------------------------------------------------------- training
METHODS: Final[tuple[str, ...]] = ("full", "lora", "qlora")
# fp32; autocast (amp-*); all 16 bit (pure-*); 16-bit + fp32 master (mixed-bf16, DeepSpeed)
RECIPES: Final[tuple[str, ...]] = (
    "fp32",
    "amp-bf16",
    "amp-fp16",
    "pure-bf16",
    "pure-fp16",
    "mixed-bf16",
)
OPTIMIZERS: Final[tuple[str, ...]] = (
    "adamw",
    "adam",
    "adamw-8bit",
    "sgd",
    "sgd-momentum",
    "adagrad",
    "rmsprop",
    "lion",
    "adafactor",
)
OPTIMIZER_IMPLS: Final[tuple[str, ...]] = ("foreach", "fused", "for-loop")
LOSS_MODES: Final[tuple[str, ...]] = ("full", "chunked", "fused")
FSDP_TO_ZERO: Final[dict[str, int]] = {"no-shard": 0, "shard-grad-op": 2, "full-shard": 3}
FSDP_MODES: Final[tuple[str, ...]] = tuple(FSDP_TO_ZERO)
OFFLOAD_DEVICES: Final[tuple[str, ...]] = ("none", "cpu", "nvme")
DEFAULT_TRAIN_SEQ: Final = 2048
DEFAULT_LORA_RANK: Final = 16
DEFAULT_QLORA_SCHEME: Final = "bnb-nf4-dq"  # QLoRA's NF4 with double quantization
DEFAULT_LOSS_CHUNKS: Final = 8  # torchtune's chunked cross-entropy
# bitsandbytes' current release (PyPI, 2026-11); what QLoRA's saved activations follow
DEFAULT_BNB_VERSION: Final = "0.50.2"
BNB_STOPPED_SAVING_INPUTS: Final = (0, 43, 2)  # bitsandbytes PR #1270, released in 0.43.2

# --------------------------------------------------------------------------- fit and plan
MODES: Final[tuple[str, ...]] = ("inference", "train")
GOALS: Final[tuple[str, ...]] = ("inference", "train", "lora", "qlora")
OBJECTIVES: Final[tuple[str, ...]] = ("context", "batch", "devices", "quality")
DEFAULT_RESERVE: Final = Fraction(5, 100)  # safety reserve of a fit verdict

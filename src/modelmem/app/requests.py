"""The questions modelmem answers, as typed requests: one field per option, declared once.

Every door builds one of these from what the user gave: the command line from its options
(generated from these fields, :mod:`modelmem.cli.options`), the web API from its JSON
body (a model generated from the same fields), the Python API from keyword arguments.
``given`` records which options the user set, so that a planner searches only the rest
and a refusal can tell an option the user chose from a default.

Defaults live here (or in :mod:`modelmem.vocabulary` when the core needs them too);
policies that depend on the model — the engine for a GGUF file, the format a checkpoint
ships in, the recipe for a sharded run — are decided in :mod:`modelmem.app.inference`
and :mod:`modelmem.app.training`, once, from these requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from modelmem.app.fields import OptionSpec, check_value, option, option_specs
from modelmem.errors import InvalidValueError
from modelmem.vocabulary import (
    ATTENTIONS,
    DEFAULT_ALLOCATOR_RESERVE,
    DEFAULT_BNB_VERSION,
    DEFAULT_CUDA_CONTEXT,
    DEFAULT_GPU_MEMORY_UTILIZATION,
    DEFAULT_INFERENCE_CONTEXT_CAP,
    DEFAULT_LORA_RANK,
    DEFAULT_LOSS_CHUNKS,
    DEFAULT_MAX_NUM_BATCHED_TOKENS,
    DEFAULT_QLORA_SCHEME,
    DEFAULT_RESERVE,
    DEFAULT_TRAIN_SEQ,
    DEFAULT_UBATCH,
    DEFAULT_VLLM_VERSION,
    ENGINES,
    FSDP_MODES,
    GOALS,
    LLAMA_CPP_SPLIT_MODES,
    LOSS_MODES,
    METHODS,
    MODES,
    OBJECTIVES,
    OFFLOAD_DEVICES,
    OPTIMIZER_IMPLS,
    OPTIMIZERS,
    RECIPES,
)

__all__ = [
    "DeviceRequest",
    "FitRequest",
    "InferenceRequest",
    "PlanRequestOptions",
    "Request",
    "TrainRequest",
    "workload_specs",
]

MAX_TOKENS = 2**26  # 67M tokens: past every model's context, small enough to price quickly
MAX_BATCH = 2**20
MAX_PARALLEL = 4096


@dataclass(frozen=True, kw_only=True)
class Request:
    """Options common to every memory question; ``given``: the names the user set."""

    given: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    kind: ClassVar[str] = ""

    batch: int = option(
        1,
        "Concurrent sequences (inference) or micro-batch size (training).",
        minimum=1,
        maximum=MAX_BATCH,
    )
    attention: str = option(
        "sdpa",
        "transformers attention: sdpa/flash keeps no scores; eager keeps the b·heads·s² softmax.",
        choices=ATTENTIONS,
    )
    tp: int = option(1, "Tensor-parallel devices.", minimum=1, maximum=MAX_PARALLEL)
    memory: str | None = option(
        None,
        "Device memory budget to check against, e.g. 24GiB or 80GB.",
        kind=str,
        metavar="SIZE",
    )
    cuda_context: str = option(
        DEFAULT_CUDA_CONTEXT,
        "CUDA context and kernels per device (e.g. 400MiB; 0 for none).",
        metavar="SIZE",
    )
    allocator_reserve: float = option(
        float(DEFAULT_ALLOCATOR_RESERVE),
        "Caching-allocator slack, as a fraction of the tensor peak.",
        minimum=0,
        maximum=1,
    )

    def __post_init__(self) -> None:
        for spec in self.specs():
            object.__setattr__(self, spec.name, check_value(spec, getattr(self, spec.name)))

    @classmethod
    def specs(cls) -> tuple[OptionSpec, ...]:
        return option_specs(cls)

    @classmethod
    def from_options(cls, options: Mapping[str, Any], given: frozenset[str] | None = None) -> Any:
        """A request from options by name; names it does not know are refused."""
        known = {s.name for s in cls.specs()}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InvalidValueError(
                unknown[0], options[unknown[0]], f"is not an option of {cls.kind or 'this'}"
            )
        chosen = frozenset(options) if given is None else given
        return cls(**options, given=chosen)

    def options(self) -> dict[str, Any]:
        """Every option by name, defaults included."""
        return {s.name: getattr(self, s.name) for s in self.specs()}

    def is_given(self, name: str) -> bool:
        return name in self.given


@dataclass(frozen=True, kw_only=True)
class InferenceRequest(Request):
    """`modelmem inference`: the memory to serve a model."""

    kind: ClassVar[str] = "inference"

    dtype: str | None = option(
        None,
        "Weight format or scheme: bf16, fp8, int8, int4, nf4, bnb-nf4-dq, gptq-4bit-g128, "
        "gguf-q4_k_m, ... (`modelmem formats`). Default: the checkpoint's own tensors, "
        "else the format the model ships in, else bf16.",
        kind=str,
    )
    kv_dtype: str | None = option(
        None,
        "KV cache format: bf16, fp8 (transformers, vLLM), q8_0, q4_0 (llama.cpp). Default: "
        "the model's compute dtype (llama.cpp: f16).",
        kind=str,
    )
    context: int | None = option(
        None,
        f"Tokens cached per sequence (prompt + output); default: the model's, capped at "
        f"{DEFAULT_INFERENCE_CONTEXT_CAP:,}.",
        kind=int,
        minimum=1,
        maximum=MAX_TOKENS,
    )
    prompt: int | None = option(
        None, "Prefill length (default: the context).", kind=int, minimum=1, maximum=MAX_TOKENS
    )
    engine: str | None = option(
        None,
        "Whose memory accounting to follow (default: llama.cpp for a GGUF file, else "
        "transformers).",
        kind=str,
        choices=ENGINES,
    )
    gpu_memory_utilization: float = option(
        DEFAULT_GPU_MEMORY_UTILIZATION,
        "vLLM: fraction of device memory it takes.",
        minimum=0.01,
        maximum=1,
    )
    max_num_batched_tokens: int = option(
        DEFAULT_MAX_NUM_BATCHED_TOKENS,
        "vLLM: tokens of the profile run (chunked-prefill budget).",
        minimum=1,
        maximum=MAX_TOKENS,
    )
    max_num_seqs: int | None = option(
        None,
        "vLLM: --max-num-seqs, sequences of the sampler's profile run (default: the "
        "release's, 1,024 in V1 on a device of 70 GiB or more, else 256).",
        kind=int,
        minimum=1,
        maximum=MAX_BATCH,
    )
    vllm_version: str = option(
        DEFAULT_VLLM_VERSION,
        "vLLM: the release whose start-up profile to price (V1 engine from 0.8, V0 before).",
    )
    ubatch: int = option(DEFAULT_UBATCH, "llama.cpp: -ub.", minimum=1, maximum=MAX_TOKENS)
    no_flash_attention: bool = option(False, "llama.cpp: without -fa (materializes KQ).")
    gpu_layers: int | None = option(
        None,
        "llama.cpp: -ngl, layers on the device (default: what fits).",
        kind=int,
        minimum=0,
        maximum=100_000,
    )
    split_mode: str = option(
        "layer",
        "llama.cpp: -sm, how devices share the model: whole layers, or rows of every matrix "
        "(KV cache and results on the first device).",
        choices=LLAMA_CPP_SPLIT_MODES,
    )
    tensor_split: str | None = option(
        None,
        "llama.cpp: -ts, each device's share, e.g. 3,1 (one per device; default: equal "
        "shares of --count devices).",
        kind=str,
        metavar="SHARES",
    )
    no_mmap: bool = option(
        False, "llama.cpp: --no-mmap, weights read into buffers (a tied head is a second copy)."
    )

    # options that only one engine has: a user who sets one for another engine is told
    ENGINE_ONLY: ClassVar[dict[str, str]] = {
        "gpu_memory_utilization": "vllm",
        "max_num_batched_tokens": "vllm",
        "max_num_seqs": "vllm",
        "vllm_version": "vllm",
        "ubatch": "llama.cpp",
        "no_flash_attention": "llama.cpp",
        "gpu_layers": "llama.cpp",
        "split_mode": "llama.cpp",
        "tensor_split": "llama.cpp",
        "no_mmap": "llama.cpp",
        "attention": "transformers",
    }


@dataclass(frozen=True, kw_only=True)
class TrainRequest(Request):
    """`modelmem train`: the peak of a training step."""

    kind: ClassVar[str] = "train"

    method: str | None = option(
        None,
        "full fine-tuning, LoRA on a 16-bit base, or QLoRA on a 4-bit base (default: lora for "
        "an adapter SOURCE or when a LoRA option is given, else full).",
        kind=str,
        choices=METHODS,
    )
    recipe: str | None = option(
        None,
        "fp32; autocast (amp-*); all 16 bit (pure-*); 16-bit + fp32 master (mixed-bf16). "
        "Default: amp-bf16; mixed-bf16 with ZeRO/FSDP/offload (DeepSpeed's bf16 mode); "
        "pure-bf16 (a bf16 base) for LoRA/QLoRA.",
        kind=str,
        choices=RECIPES,
    )
    optimizer: str = option(
        "adamw", "Optimizer (state bytes per parameter follow it).", choices=OPTIMIZERS
    )
    optimizer_impl: str = option(
        "foreach",
        "foreach holds about a copy of the parameters at the step; fused none.",
        choices=OPTIMIZER_IMPLS,
    )
    seq: int = option(DEFAULT_TRAIN_SEQ, "Sequence length.", minimum=1, maximum=MAX_TOKENS)
    checkpointing: bool = option(
        False, "Per-layer gradient (activation) checkpointing.", negatable=True
    )
    selective_checkpointing: bool = option(
        False,
        "Selective recomputation (Korthikanti et al. 2022): only the attention core "
        "(QKᵀ, softmax, ·V) is recomputed.",
    )
    grad_accumulation: int = option(
        1, "Micro-batches per step (adds no activations).", minimum=1, maximum=MAX_BATCH
    )
    dropout: float | None = option(
        None,
        "Dropout probability at every site (0 disables; default: the config's). Each "
        "dropout keeps a 1-byte mask per element for backward.",
        kind=float,
        minimum=0,
        maximum=0.999,
    )
    lora_rank: int | None = option(
        None,
        f"LoRA rank r (default: the adapter's, else {DEFAULT_LORA_RANK}).",
        kind=int,
        minimum=1,
        maximum=65_536,
    )
    lora_targets: str | None = option(
        None,
        "Comma-separated module names or all-linear (default: the adapter's, else PEFT's "
        "for the family).",
        kind=str,
    )
    dora: bool = option(False, "DoRA: adds a magnitude vector per adapted layer.")
    qlora_scheme: str = option(
        DEFAULT_QLORA_SCHEME, "Frozen base format of QLoRA (bnb-nf4-dq, bnb-nf4, bnb-fp4, ...)."
    )
    bnb_version: str = option(
        DEFAULT_BNB_VERSION,
        "bitsandbytes release QLoRA runs on: before 0.43.2 each 4-bit Linear kept its input "
        "for backward (more activations).",
        metavar="X.Y.Z",
    )
    zero: int = option(
        0,
        "ZeRO stage: 1 shards optimizer states, 2 also gradients, 3 also parameters.",
        minimum=0,
        maximum=3,
    )
    fsdp: str | None = option(
        None,
        "FSDP sharding (same model-state sharding as ZeRO 0 / 2 / 3).",
        kind=str,
        choices=FSDP_MODES,
    )
    devices: int = option(1, "Data-parallel ranks.", minimum=1, maximum=1 << 16)
    offload_optimizer: str = option(
        "none",
        "ZeRO-Offload: optimizer states (and fp32 gradients) on the CPU or NVMe (ZeRO 1-3).",
        choices=OFFLOAD_DEVICES,
    )
    offload_param: str = option(
        "none",
        "ZeRO-3 parameter offload: the parameter partition on the CPU or NVMe.",
        choices=OFFLOAD_DEVICES,
    )
    fsdp_offload: bool = option(
        False,
        "FSDP CPUOffload(offload_params=True) with --fsdp full-shard: parameters, gradients "
        "and optimizer states on the CPU.",
    )
    nodes: int = option(1, "Hosts (host memory is per node).", minimum=1, maximum=1 << 16)
    zero_init: bool = option(
        True,
        "Model built under deepspeed.zero.Init (DeepSpeed's ZeRO-3 estimator only).",
        negatable=True,
    )
    pp: int = option(1, "Pipeline-parallel stages.", minimum=1, maximum=MAX_PARALLEL)
    device_map: str | None = option(
        None,
        "LoRA/QLoRA with transformers' device_map: auto splits the layers over --devices "
        "(or fit's --count) GPUs, one busy at a time.",
        kind=str,
        choices=("auto",),
    )
    sp: bool = option(False, "Sequence parallelism (Megatron, needs --tp > 1).")
    paged_optimizer: bool = option(
        False,
        "bitsandbytes paged optimizer: states in CUDA unified memory, counted off-device.",
    )
    optimizer_in_backward: bool = option(
        False, "Step each parameter in its gradient hook: no full gradient buffer."
    )
    loss: str | None = option(
        None,
        "full fp32 logits (transformers), chunked (torchtune) or fused linear cross-entropy "
        "(Liger). Default: full, or chunked with --loss-chunks.",
        kind=str,
        choices=LOSS_MODES,
    )
    loss_chunks: int | None = option(
        None,
        f"Chunks of the chunked loss ({DEFAULT_LOSS_CHUNKS}).",
        kind=int,
        minimum=1,
        maximum=1 << 16,
    )
    # the command line takes a path (read by the app layer); the web and Python APIs take the
    # parsed object as well
    deepspeed: Any = option(  # noqa: RUF009
        None,
        "Read ZeRO stage, offload, bf16/fp16, micro-batch, accumulation, optimizer from a "
        'DeepSpeed config ("auto" keeps the option given here).',
        kind=object,
        metavar="DS_CONFIG.json",
    )

    LORA_OPTIONS: ClassVar[tuple[str, ...]] = ("lora_rank", "lora_targets", "dora")


@dataclass(frozen=True, kw_only=True)
class DeviceRequest:
    """The device side of `fit` and `plan`: what to compare the workload against."""

    device: str = option(
        "",
        "Catalogue device or alias (`modelmem devices`), or `local` for this machine's "
        "accelerator and its free memory (plan: `all` for every catalogue device).",
        required=True,
    )
    count: int = option(1, "Devices of that kind.", minimum=1, maximum=4096)
    reserve: float = option(
        float(DEFAULT_RESERVE),
        "Safety reserve kept free, as a fraction of each device's memory.",
        minimum=0,
        maximum=0.99,
    )

    def __post_init__(self) -> None:
        for spec in option_specs(type(self)):
            object.__setattr__(self, spec.name, check_value(spec, getattr(self, spec.name)))
        if not self.device.strip():
            raise InvalidValueError("device", self.device, "give a catalogue device or local")


@dataclass(frozen=True, kw_only=True)
class FitRequest:
    """`modelmem fit`: serve or train; the workload options are inference's and train's."""

    mode: str | None = option(
        None,
        "Serve the model or train it (default: train when --method or another training "
        "option is given, else inference).",
        kind=str,
        choices=MODES,
    )


@dataclass(frozen=True, kw_only=True)
class PlanRequestOptions:
    """`modelmem plan`: what to search for; workload options given are fixed, the rest
    searched."""

    goal: str = option(
        "inference", "Serve, train fully, or fine-tune with LoRA / QLoRA.", choices=GOALS
    )
    objective: str | None = option(
        None,
        "Rank by the largest context, largest batch, fewest devices or least quality loss "
        "(default: context for inference, batch for training).",
        kind=str,
        choices=OBJECTIVES,
    )
    top: int = option(5, "Configurations to show.", minimum=1, maximum=100)
    no_offload: bool = option(
        False, "Do not search ZeRO-Offload of optimizer states (and parameters) to CPU."
    )


def workload_specs() -> tuple[OptionSpec, ...]:
    """The union of inference's and train's options, each once (shared ones are declared
    once, on :class:`Request`): the workload vocabulary of `fit` and `plan`."""
    seen: dict[str, OptionSpec] = {}
    for cls in (InferenceRequest, TrainRequest):
        for spec in cls.specs():
            seen.setdefault(spec.name, spec)
    return tuple(seen.values())


def split_workload(options: Mapping[str, Any], given: frozenset[str]) -> dict[str, dict[str, Any]]:
    """Workload options by the request kind they belong to (shared ones to both)."""
    names = {cls.kind: {s.name for s in cls.specs()} for cls in (InferenceRequest, TrainRequest)}
    return {kind: {k: v for k, v in options.items() if k in own} for kind, own in names.items()}


def _unused_field_names() -> tuple[str, ...]:
    return tuple(f.name for f in fields(Request))

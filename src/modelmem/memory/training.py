"""Training memory: the peak of a training step, from what the code keeps alive.

A step's peak is the largest of a few moments, not a sum of everything (measured with
fake tensors, ``modelmem measure``; see the project's measurement notes):

- the loss: parameters + optimizer state + every saved activation + the logits, their
  fp32 copy and the fp32 log-softmax that transformers' loss keeps;
- the start of backward: the same without the 16-bit logits, plus two fp32
  ``b·s·V`` gradient buffers of the loss;
- the end of backward: parameters + state + every gradient (+ the embedding gradient a
  tied head adds to);
- the optimizer step: parameters + gradients + state + the step's temporaries
  (``foreach`` holds about one copy of the parameters, ``fused`` none);
- the backward of the first decoder layer, the last backward reaches: every later
  gradient, that layer's activations (recomputed under checkpointing) and its backward's
  temporaries. A deep model with a short batch, or any checkpointed one, peaks here.

Step 0 has no optimizer state before its optimizer step, so a later step is the peak.

Saved activations per layer and token, for Llama-style blocks (pre-norm RMSNorm, gated
MLP, rotary attention with SDPA); fitted to the integer from measurements of
randomized configurations, then checked on real ones (``tests/measure``)::

    pure 16-bit   16h + 8I + 4·n_h·d + 4·n_kv·d + 4·n_h + 8
    fp32          24h + 16I + 8·n_h·d + 8·n_kv·d + 4·n_h + 8
    autocast      26h + 8I + 4·n_h·d + 4·n_kv·d + 4·n_h + 8   (+ 2 B per Linear weight:
                                                                the autocast weight cache)
    checkpointed  2h (16-bit) or 4h (fp32 and autocast): only the layer input is kept
    selective     as not checkpointed, without the attention core's saved tensors
                  (SDPA: the 4·n_h fp32 log-sum-exp; eager: the scores and repeated K/V)

Layers of other shapes (GPT-2, BERT, fused Phi-3 projections, Gemma 2, Mamba) carry
their own fitted coefficients (:data:`FITTED_LAYERS` and beside it). Dropout (from the
config, or ``--dropout``) keeps a 1-byte mask per element at each site for backward, as
CUDA's ``native_dropout`` does: 2h per layer and token at the residual dropouts, h at the
embedding, and under eager attention one byte per score (SDPA's flash and
memory-efficient kernels regenerate theirs).

Eager attention replaces SDPA's saved log-sum-exp by the ``[b, n_h, s, s]`` fp32 softmax
(and its 16-bit cast) and keeps K and V repeated to every query head. Korthikanti et al.
2022 (arXiv:2205.05198), ``sbh(34 + 5as/h)`` per GPT layer, is the reference form; its
selective recomputation (§5) recomputes the attention core (QKᵀ, softmax, softmax
dropout, attention over V) in backward and so drops the ``5as/h`` term: the eager
scores go, and SDPA/flash, which saves no scores, only loses its log-sum-exp.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction
from math import ceil
from typing import Any

from modelmem.errors import InvalidValueError, check_choices, check_positive_ints
from modelmem.memory.breakdown import MemoryBreakdown, MemoryComponent
from modelmem.memory.parallel import (
    PipelineStage,
    check_model_parallel,
    estimate_zero2_model_states_mem_needs,
    estimate_zero3_model_states_mem_needs,
    largest_module_params,
    pipeline_stages,
    shard,
    zero_model_states,
)
from modelmem.model.params import ParamTensor, tensor_inventory
from modelmem.model.spec import ModelSpec
from modelmem.vocabulary import (
    DEFAULT_ALLOCATOR_RESERVE,
    DEFAULT_CUDA_CONTEXT_BYTES,
    LOSS_MODES,
    MIB,
    OFFLOAD_DEVICES,
    OPTIMIZER_IMPLS,
    OPTIMIZERS,
    RECIPES,
)

# mixed-bf16: DeepSpeed/Megatron mixed precision — 16-bit parameters and gradients, an
# fp32 master copy and fp32 optimizer states (ZeRO paper: K = 12 bytes per parameter).
# Optimizer state per trainable parameter, in copies of the parameter (torch allocates
# each state like the parameter: `zeros_like`), plus a scalar step counter per tensor.
STATE_COPIES: dict[str, int] = {
    "adamw": 2,
    "adam": 2,
    "sgd-momentum": 1,
    "sgd": 0,
    "adagrad": 1,
    "rmsprop": 1,
    "lion": 1,
}
# bitsandbytes' paged optimizers (PagedAdamW, PagedAdamW8bit, PagedLion)
PAGED_OPTIMIZERS = ("adamw", "adam", "adamw-8bit", "lion")


# Config keys of dropout probabilities, by where the dropout sits (transformers' names:
# Llama-style, GPT-2, BERT, OPT/Falcon).
DROPOUT_KEYS: dict[str, tuple[str, ...]] = {
    "attention": ("attention_dropout", "attn_pdrop", "attention_probs_dropout_prob"),
    "hidden": ("hidden_dropout", "resid_pdrop", "hidden_dropout_prob", "dropout"),
    "embedding": ("embd_pdrop", "hidden_dropout_prob"),
}


@dataclass(frozen=True, slots=True)
class Dropout:
    """Dropout probabilities of a model in training. Only p > 0 matters for memory: each
    dropout saves a 1-byte mask per element for backward (CUDA's ``native_dropout``)."""

    attention: float = 0.0  # on the attention probabilities (eager attention only)
    hidden: float = 0.0  # on the attention and MLP outputs before each residual add
    embedding: float = 0.0  # on the embeddings

    def __post_init__(self) -> None:
        for name in ("attention", "hidden", "embedding"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise InvalidValueError(f"dropout.{name}", value, "must be in [0, 1)")


def dropout_of(config: dict[str, Any] | None, override: float | None = None) -> Dropout:
    """The dropout a config trains with (its text config for a multimodal one), or
    ``override`` at every site (0 disables dropout)."""
    if override is not None:
        if not 0.0 <= override < 1.0:
            raise InvalidValueError("dropout", override, "must be in [0, 1)")
        return Dropout(override, override, override)
    text = (config or {}).get("text_config") or config or {}

    def rate(site: str) -> float:
        values = [text.get(k) for k in DROPOUT_KEYS[site]]
        return max((float(v) for v in values if isinstance(v, int | float)), default=0.0)

    return Dropout(rate("attention"), rate("hidden"), rate("embedding"))


@dataclass(frozen=True, kw_only=True, slots=True)
class TrainingWorkload:
    batch: int = 1  # micro-batch
    seq: int = 2048
    recipe: str = "amp-bf16"
    optimizer: str = "adamw"
    optimizer_impl: str = "foreach"
    checkpointing: bool = False  # per layer ("full" recomputation)
    selective_checkpointing: bool = False  # the attention core only (Korthikanti et al. §5)
    attention: str = "sdpa"
    grad_accumulation: int = 1  # does not add activations; keeps gradients between micro-batches
    method: str = "full"  # full | lora | qlora
    lora_rank: int = 16
    lora_targets: tuple[str, ...] | str | None = None  # None: PEFT's default for the family
    dora: bool = False
    qlora_scheme: str = "bnb-nf4-dq"  # frozen 4-bit base of QLoRA (memory.weights scheme)
    zero: int = 0  # ZeRO stage (FSDP: no-shard 0, shard-grad-op 2, full-shard 3)
    devices: int = 1  # data-parallel ranks the model states are sharded over
    fsdp: bool = False  # the sharding (and its offload) is FSDP's rather than DeepSpeed's
    offload_optimizer: str = "none"  # none | cpu | nvme (ZeRO-Offload / ZeRO-Infinity)
    offload_param: str = "none"  # none | cpu | nvme (ZeRO-3 only)
    nodes: int = 1  # hosts the devices are spread over (host memory is per node)
    zero_init: bool = True  # DeepSpeed's estimator: model built under zero.Init
    tp: int = 1  # tensor-parallel size
    pp: int = 1  # pipeline-parallel stages
    sp: bool = False  # Megatron sequence parallelism (needs tp > 1)
    paged_optimizer: bool = False  # bitsandbytes Paged* optimizer: states in unified memory
    optimizer_in_backward: bool = False  # step each parameter in its grad hook
    loss: str = "full"  # full | chunked | fused
    loss_chunks: int = 8  # chunks of the chunked loss
    # bitsandbytes before 0.43.2 (PR #1270) saved each 4-bit Linear's input for backward
    # (MatMul4Bit ctx.tensors = (A, B)); later releases save (None, B)
    bnb_saves_inputs: bool = False
    # transformers' device_map="auto" (naive model parallelism): the layers split over pp
    # devices like pipeline stages, but one micro-batch runs through them at a time
    naive_pipeline: bool = False
    dropout: Dropout = field(default_factory=Dropout)  # from the config (dropout_of)
    cuda_context_bytes: int = DEFAULT_CUDA_CONTEXT_BYTES
    allocator_reserve: Fraction = DEFAULT_ALLOCATOR_RESERVE

    def __post_init__(self) -> None:
        if self.zero not in (0, 1, 2, 3):
            raise InvalidValueError("zero", self.zero, "must be 0, 1, 2 or 3")
        check_positive_ints(
            self,
            ("batch", "seq", "grad_accumulation", "devices", "nodes", "tp", "pp", "loss_chunks"),
            2**24,
        )
        self._check_parallel()
        from modelmem.model.limits import MAX_LORA_RANK

        if not 1 <= self.lora_rank <= MAX_LORA_RANK:
            raise InvalidValueError(
                "lora_rank", self.lora_rank, f"must be in [1, {MAX_LORA_RANK:,}]"
            )
        if self.checkpointing and self.selective_checkpointing:
            raise InvalidValueError(
                "selective_checkpointing",
                True,
                "per-layer checkpointing already recomputes the attention core; choose one",
            )
        if self.method != "full" and self.recipe.startswith("amp"):
            # measured: the adapters' autocast path keeps less than this model assumes
            raise InvalidValueError(
                "recipe",
                self.recipe,
                "LoRA under autocast is not modelled yet (over 10 % off measurement); use "
                "pure-bf16 (a bf16 base, the usual setup) or fp32, or measure it "
                "(`modelmem measure --lora-rank`)",
            )
        check_choices(
            self,
            (
                ("method", ("full", "lora", "qlora")),
                ("recipe", RECIPES),
                ("optimizer", OPTIMIZERS),
                ("optimizer_impl", OPTIMIZER_IMPLS),
                ("attention", ("sdpa", "eager")),
                ("offload_optimizer", OFFLOAD_DEVICES),
                ("offload_param", OFFLOAD_DEVICES),
                ("loss", LOSS_MODES),
            ),
        )
        self._check_options()

    @property
    def total_devices(self) -> int:
        """Data-parallel ranks × tensor-parallel × pipeline-parallel size."""
        return self.devices * self.tp * self.pp

    def _check_parallel(self) -> None:
        if self.total_devices % self.nodes:
            raise InvalidValueError(
                "nodes", self.nodes, f"must divide the {self.total_devices} devices"
            )
        if self.sp and self.tp == 1:
            raise InvalidValueError("sp", True, "sequence parallelism needs tp > 1")
        if self.method != "full" and self.tp > 1:
            raise InvalidValueError("tp", self.tp, "tensor-parallel LoRA is not modelled")
        if self.loss != "full" and self.tp > 1:
            raise InvalidValueError(
                "loss", self.loss, "with tp > 1 the loss is Megatron's vocab-parallel one: full"
            )

    def _check_options(self) -> None:
        offloaded = self.offload_optimizer != "none" or self.offload_param != "none"
        if self.offload_optimizer != "none" and self.zero == 0:
            raise InvalidValueError(
                "offload_optimizer",
                self.offload_optimizer,
                "needs ZeRO stage 1, 2 or 3 (or FSDP sharding)",
            )
        if self.offload_param != "none" and self.zero != 3:
            raise InvalidValueError(
                "offload_param",
                self.offload_param,
                f"needs ZeRO stage 3 (FSDP full-shard), not stage {self.zero}",
            )
        if (
            self.fsdp
            and offloaded
            and (self.offload_param != "cpu" or self.offload_optimizer != "cpu")
        ):
            raise InvalidValueError(
                "offload_param",
                self.offload_param,
                "FSDP's CPUOffload moves parameters, gradients and optimizer states to the "
                "CPU together (full-shard)",
            )
        if offloaded and self.method != "full":
            raise InvalidValueError(
                "offload_optimizer", self.offload_optimizer, "offload with LoRA is not modelled"
            )
        if offloaded and (self.tp > 1 or self.pp > 1):
            raise InvalidValueError(
                "offload_optimizer",
                self.offload_optimizer,
                "offload with tensor/pipeline parallelism is not modelled",
            )
        if self.paged_optimizer:
            if self.optimizer not in PAGED_OPTIMIZERS:
                raise InvalidValueError(
                    "optimizer",
                    self.optimizer,
                    f"bitsandbytes has no paged version; paged: {', '.join(PAGED_OPTIMIZERS)}",
                )
            if offloaded:
                raise InvalidValueError(
                    "paged_optimizer", True, "the states are offloaded already; choose one"
                )
        if self.optimizer_in_backward:
            if self.grad_accumulation > 1:
                raise InvalidValueError(
                    "optimizer_in_backward",
                    True,
                    f"cannot accumulate gradients (grad_accumulation={self.grad_accumulation}):"
                    " each gradient is freed by its optimizer step",
                )
            if self.zero or self.tp > 1 or self.pp > 1:
                raise InvalidValueError(
                    "optimizer_in_backward", True, "with ZeRO/FSDP or tp/pp is not modelled"
                )

    @property
    def checkpoint_mode(self) -> str:
        """none | full (per layer) | selective (the attention core)."""
        if self.checkpointing:
            return "full"
        return "selective" if self.selective_checkpointing else "none"

    @property
    def param_bytes(self) -> int:
        return 2 if self.recipe.startswith(("pure", "mixed")) else 4

    @property
    def act_bytes(self) -> int:
        return 4 if self.recipe == "fp32" else 2

    @property
    def autocast(self) -> bool:
        return self.recipe.startswith("amp")


@dataclass(frozen=True, slots=True)
class OffloadedPart:
    """Model state kept off the device: ``bytes`` per device (per rank), and where."""

    name: str
    bytes: int
    where: str  # cpu | nvme
    how: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "bytes": self.bytes, "where": self.where, "how": self.how}


@dataclass(frozen=True, slots=True)
class TrainingEstimate:
    breakdown: MemoryBreakdown
    tensor_peak_bytes: int
    peak_moment: str
    moments: dict[str, int]
    trainable_params: int
    offloaded: tuple[OffloadedPart, ...] = ()
    stage: str = "all"  # the pipeline stage priced: all | first | last
    stage_peaks: dict[str, int] = field(default_factory=dict)
    deepspeed_estimator: dict[str, Any] | None = None
    total_devices: int = 1
    nodes: int = 1

    def off_device_bytes(self, where: str) -> int:
        """Bytes one device's rank keeps in host memory (``cpu``) or on ``nvme``."""
        return sum(o.bytes for o in self.offloaded if o.where == where)

    def per_node_bytes(self, where: str) -> int:
        """Host memory (or NVMe) one node needs for the ranks it runs."""
        return self.off_device_bytes(where) * (self.total_devices // self.nodes)


def _state_bytes(tensors: tuple[ParamTensor, ...], workload: TrainingWorkload) -> tuple[int, str]:
    """Exact optimizer state of every trainable tensor."""
    p = workload.param_bytes
    opt = workload.optimizer
    total = 0
    if opt == "adamw-8bit":
        # bitsandbytes: uint8 m and v + fp32 absmax per 256-value block; tensors under
        # 4096 values keep 32-bit state (optim/optimizer.py, min_8bit_size, blocksize 256)
        for t in tensors:
            n = t.numel_each
            each = 2 * (n + 4 * ceil(n / 256)) if n >= 4096 else 8 * n
            total += each * t.copies
        return total, "8-bit AdamW: 2 × (1 B + 4 B/256) per value; tensors < 4096 values 2 × 4 B"
    if opt == "adafactor":
        # factored second moment: a row and a column vector per matrix, full for vectors
        for t in tensors:
            if len(t.shape) >= 2:
                rows = t.numel_each // t.shape[-1]
                each = (rows + t.shape[-1]) * p
            else:
                each = t.numel_each * p
            total += each * t.copies
        return total, f"Adafactor: row + column second moments per matrix ({p} B)"
    copies = STATE_COPIES[opt]
    count = sum(t.numel for t in tensors)
    steps = 4 * sum(t.copies for t in tensors) if opt in ("adamw", "adam") else 0
    if workload.recipe == "mixed-bf16":
        # fp32 master weights + fp32 states (ZeRO paper's K = 12 for Adam)
        how = f"fp32 master + {copies} fp32 state(s) per parameter + step counters"
        return (4 + 4 * copies) * count + steps, how
    return (
        copies * count * p + steps,
        f"{opt}: {copies} state(s) per parameter × {p} B + step counters",
    )


def _layer_activation_per_token(spec: ModelSpec, w: TrainingWorkload) -> tuple[Fraction, str]:
    """Saved activations of one decoder layer per token on one device (module docstring).

    With tensor parallelism (Korthikanti et al. 2022, arXiv:2205.05198, Table 2) the
    terms inside attention and the MLP (those in I, n_h·d, n_kv·d, n_h and the eager
    scores) are split over the t devices, as in ``sbh(10 + 24/t + 5as/(ht))``; the terms
    in h (norm inputs and outputs, the residual stream) stay whole unless sequence
    parallelism splits them too, as in ``sbh(34/t + 5as/(ht))``. A checkpointed layer
    keeps its input whole, or ÷ t with sequence parallelism ("2sbhL/t").
    """
    a = spec.attention
    h = spec.hidden_size
    t = w.tp
    whole = Fraction(1, t) if w.sp else Fraction(1)
    if w.checkpointing:
        k = 2 if w.param_bytes == 2 else 4
        cut = f" ÷ {t} (sequence parallel)" if w.sp else ""
        return k * h * whole, f"checkpointed: layer input {k}h{cut}"
    if spec.ssm is not None:
        return _mamba_layer_per_token(spec, w)
    width = 0
    if spec.mlp is not None:
        width = spec.mlp.intermediate_size
    if spec.moe is not None and spec.is_moe:
        width = max(width, spec.moe.experts_per_token * spec.moe.expert_intermediate_size * 3 // 2)
    q = a.num_heads * a.head_dim if a is not None else 0
    kv = a.num_kv_heads * a.head_dim if a is not None else 0
    n_h = a.num_heads if a is not None else 0
    coef, const, extra = _coefficients(spec, w)
    replicated = coef[0] * h + const
    split = coef[1] * width + coef[2] * q + coef[4] * n_h
    how = f"{coef[0]}h + {coef[1]}I + {coef[2]}·n_h·d + {coef[3]}·n_kv·d + {coef[4]}·n_h + {const}"
    how += extra
    if w.dropout.hidden:
        # a 1-byte mask per element at each residual dropout (after attention, after MLP)
        replicated += 2 * h
        how += f" + 2h (dropout masks, p={w.dropout.hidden:g})"
    if w.selective_checkpointing and a is not None:
        # the attention core runs under checkpoint: only its inputs q, k, v are kept;
        # SDPA's 4·n_h log-sum-exp, or eager's scores and repeated K/V, are recomputed.
        # Under autocast the inputs are the fp32 rotated q and k, not the 16-bit casts
        # the kernel would have saved: +2 B each (measured)
        split -= 4 * n_h
        how += " − 4·n_h (selective recomputation of the attention core: "
        how += (
            "the eager b·n_h·s² scores and repeated K/V are not kept)"
            if _attention(spec, w) == "eager"
            else "SDPA/flash keeps no scores anyway, so only its log-sum-exp goes: ≈ none)"
        )
        if w.autocast:
            split += 2 * q
            coef[3] += 2
            how += " + 2·n_h·d + 2·n_kv·d (autocast: fp32 q, k kept as the core's inputs)"
    elif _attention(spec, w) == "eager" and a is not None:
        score, score_how = _score_bytes(spec, w)
        repeated = 2 * w.act_bytes * (n_h - a.num_kv_heads) * a.head_dim
        split += score * n_h * w.seq + repeated - 4 * n_h
        how += f" + eager: {score}·n_h·s scores ({score_how}) + repeated K/V"
    # KV heads are split over t, or replicated one per device when t exceeds them
    kv_share = Fraction(1, min(t, a.num_kv_heads)) if a is not None else Fraction(1)
    per = replicated * whole + Fraction(split, t) + coef[3] * kv * kv_share
    if t > 1:
        how += f"; tp={t}: attention/MLP terms ÷ {t}, h terms " + (
            f"÷ {t} (sequence parallel)" if w.sp else "whole (no sequence parallelism)"
        )
    return per, how


# Mamba mixer on transformers' PyTorch path (``torch_forward``: the reference selective
# scan and convolution, what runs without the mamba-ssm/causal-conv1d CUDA kernels):
# per token, coefficients of I·N, I, h, N, R (time-step rank) and a constant; per layer
# (independent of the tokens), of I·N and I, plus under autocast the 16-bit weight copies
# and the fp32 A = −exp(A_log) (I·(6h + 10N + 4R + 16) in all). Fitted to the integer on
# measured inventories (h, I, N, R and s varied; mamba-130m's shape). Falcon-Mamba's extra
# RMS norms on B, C and Δ are within 1 % of a layer (measured on a shrunken config).
MAMBA_TOKEN: dict[str, tuple[int, int, int, int, int, int]] = {
    "fp32": (12, 36, 12, 8, 4, 4),
    "pure": (14, 24, 8, 8, 2, 4),
    "amp": (14, 26, 10, 8, 2, 4),
}
MAMBA_LAYER: dict[str, tuple[int, int]] = {"fp32": (12, 12), "pure": (6, 10), "amp": (0, 0)}
MAMBA_FAMILIES = ("mamba", "falcon_mamba")


def _mamba_layer_per_token(spec: ModelSpec, w: TrainingWorkload) -> tuple[Fraction, str]:
    """Saved activations of one Mamba layer per token (fitted, :data:`MAMBA_TOKEN`); other
    state-space mixers are refused rather than priced as nothing."""
    ssm = spec.ssm
    assert ssm is not None
    if spec.family not in MAMBA_FAMILIES or w.tp > 1 or w.selective_checkpointing:
        raise InvalidValueError(
            "model",
            spec.family,
            "training activations of this state-space mixer are not modelled (only Mamba "
            "on one device); run `modelmem measure` with the same options",
        )
    if w.checkpointing:
        return Fraction(4 * spec.hidden_size), "checkpointed: layer input and fp32 residual"
    kind = _recipe_kind(w)
    i, n, h, r = ssm.inner_size, ssm.state_size, spec.hidden_size, ssm.time_step_rank
    a, b, c, d, e, f = MAMBA_TOKEN[kind]
    per = a * i * n + b * i + c * h + d * n + e * r + f
    la, lb = MAMBA_LAYER[kind]
    layer = la * i * n + lb * i
    if kind == "amp":
        layer = i * (6 * h + 10 * n + 4 * r + 16)
    how = (
        f"Mamba on transformers' PyTorch path (reference scan, no CUDA kernels): {a}·I·N + "
        f"{b}I + {c}h + {d}N + {e}R + {f} per token, + {layer:,} B per layer (fitted)"
    )
    return per + Fraction(layer, w.batch * w.seq), how


# Layers of another shape than Llama's, fitted to the integer on measured configurations
# (h, I and heads varied; SDPA, dropout on and off): coefficients of h, I, n_h·d, n_kv·d, n_h and
# the constant, per recipe kind. GPT-2: LayerNorm (input, output, fp32 mean and rstd),
# Conv1D with bias, tanh-approximated GELU (its tanh and products kept: 10 B per I).
FITTED_LAYERS: dict[str, dict[str, tuple[list[int], int]]] = {
    "gpt2": {
        "pure": ([8, 10, 4, 4, 4], 8),
        "fp32": ([16, 20, 8, 8, 4], 16),
        "amp": ([12, 10, 4, 4, 4], 16),
    },
    # OPT: pre-norm LayerNorm, ReLU fc1/fc2 with biases
    "opt": {
        "pure": ([8, 2, 4, 4, 4], 8),
        "fp32": ([16, 4, 8, 8, 4], 16),
        "amp": ([16, 2, 4, 4, 4], 16),
    },
    # BERT: post-norm LayerNorm, exact GELU, separate q/k/v with biases
    "bert": {
        "pure": ([8, 4, 4, 4, 4], 8),
        "fp32": ([16, 8, 8, 8, 4], 16),
        "amp": ([16, 4, 4, 4, 4], 16),
    },
}
# The same for what is saved outside the layers (final norm, positions): h coefficient and
# constant per token.
FITTED_FINAL: dict[str, dict[str, tuple[int, int]]] = {
    "gpt2": {"pure": (4, 38), "fp32": (8, 42), "amp": (8, 38)},
    "opt": {"pure": (4, 44), "fp32": (8, 48), "amp": (6, 48)},
    # BERT's masked-LM head: dense, GELU and LayerNorm before the tied decoder
    "bert": {"pure": (10, 42), "fp32": (20, 58), "amp": (12, 56)},
}
# Eager attention that takes the softmax in the scores' dtype (``softmax(w, dim=-1)``),
# not in fp32 as Llama-style code does (``softmax(..., dtype=torch.float32)``).
SOFTMAX_IN_SCORE_DTYPE = ("gpt2", "bert")
# Attention logit soft-capping (``tanh(w / cap) · cap``) in the eager path: Gemma 2.
SOFTCAPPED_FAMILIES = ("gemma2",)


def _recipe_kind(w: TrainingWorkload) -> str:
    return "fp32" if w.recipe == "fp32" else "amp" if w.autocast else "pure"


def _coefficients(spec: ModelSpec, w: TrainingWorkload) -> tuple[list[int], int, str]:
    """Per-token coefficients of h, I, n_h·d, n_kv·d and n_h, the constant, and what was
    added to the Llama form (module docstring)."""
    fitted = FITTED_LAYERS.get(spec.family)
    if fitted is not None:
        coef, const = fitted[_recipe_kind(w)]
        return list(coef), const, f" (fitted on {spec.family} layers)"
    coef = {"fp32": [24, 16, 8, 8, 4], "amp": [26, 8, 4, 4, 4], "pure": [16, 8, 4, 4, 4]}[
        _recipe_kind(w)
    ]
    extra = ""
    a = spec.attention
    if a is not None and a.qk_norm:
        # per-head RMSNorm on q and k (Qwen3, Gemma 3): its fp32 copy and outputs, fitted
        qk = 8 if w.recipe == "fp32" else 6
        coef[2] += qk
        coef[3] += qk
        coef[4] += 4
        extra = " (+ q/k norms)"
    const = 8
    if spec.layout == "phi3":
        # fused qkv_proj: SDPA's v is a view that keeps the whole q|k|v output alive beside
        # the rotated q and k; fitted on phi3 (heads and KV heads varied)
        q_add, kv_add = {"pure": (4, 2), "fp32": (8, 4), "amp": (-2, 2)}[_recipe_kind(w)]
        coef[2] += q_add
        coef[3] += kv_add
        extra += " (+ fused q|k|v kept)"
    if spec.norms_per_layer == 4:
        # Gemma's sandwich norms around attention and MLP output; fitted on gemma3_text
        coef[0] += 20
        extra += " (+ sandwich norms)"
        if spec.family == "gemma2":
            # fitted on gemma2 (h, I, heads varied): outside pure 16 bit the norms keep
            # 4h less; an fp32 rsqrt per norm
            coef[0] -= 0 if _recipe_kind(w) == "pure" else 4
            const += 8
    return coef, const, extra


def _attention(spec: ModelSpec, w: TrainingWorkload) -> str:
    """The attention path transformers runs: eager where it has no SDPA path."""
    from modelmem.memory.inference import EAGER_ONLY_FAMILIES

    return "eager" if spec.family in EAGER_ONLY_FAMILIES else w.attention


def _score_bytes(spec: ModelSpec, w: TrainingWorkload) -> tuple[int, str]:
    """Bytes per attention score that eager attention saves for backward: the softmax
    output (fp32, or the scores' dtype in GPT-2/BERT code outside autocast), the
    probabilities cast to V's dtype for ·V when the dtypes differ, or with attention
    dropout its 1-byte mask and output instead (the cast is then freed); soft-capping
    adds its tanh output."""
    act = w.act_bytes
    # BERT's scores stay 16 bit under autocast as well (measured: 2 + 1 + 2 B with its
    # attention dropout); GPT-2's softmax is autocast to fp32
    low = spec.family in SOFTMAX_IN_SCORE_DTYPE and (not w.autocast or spec.family == "bert")
    soft = act if low else 4
    parts = [f"softmax {soft} B"]
    probs = 0 if soft == act else act
    if w.dropout.attention:
        probs = 1 + act
        parts.append(f"dropout mask 1 B + output {act} B")
    elif probs:
        parts.append(f"cast {act} B")
    cap = act if spec.family in SOFTCAPPED_FAMILIES else 0
    if cap:
        parts.append(f"soft-capping tanh {act} B")
    return soft + probs + cap, ", ".join(parts)


def _linear_weights(tensors: tuple[ParamTensor, ...]) -> int:
    """Values autocast casts to 16 bit and caches: Linear weights and their biases."""
    return sum(t.numel for t in tensors if t.role in ("linear", "expert", "bias"))


# Which saved input a LoRA adapter of a module reads (modules sharing an input share it).
_ATTN_IN = {
    "q_proj",
    "k_proj",
    "v_proj",
    "qkv_proj",
    "query_key_value",
    "c_attn",
    "query",
    "key",
    "value",
}
_MLP_OUT = {"down_proj", "dense_4h_to_h", "fc2"}
_ATTN_OUT = {"o_proj", "dense", "out_proj"}


def _adapters(
    spec: ModelSpec, w: TrainingWorkload
) -> tuple[tuple[ParamTensor, ...], tuple[ParamTensor, ...]]:
    """(targeted base weights, adapter tensors A [r, in] and B [out, r] per target)."""
    from modelmem.memory.finetune import (
        PEFT_DEFAULT_TARGETS,
        _linear_dims,
        lora_param_targets,
        lora_targets,
    )

    targets = (
        w.lora_targets if w.lora_targets is not None else PEFT_DEFAULT_TARGETS.get(spec.family)
    )
    if targets is None:
        raise InvalidValueError(
            "lora_targets", None, f"no PEFT default for {spec.family}; name them"
        )
    chosen = lora_targets(spec, targets)
    adapters: list[ParamTensor] = []
    for t in chosen:
        d_in, d_out = _linear_dims(t)
        r = w.lora_rank
        adapters.append(
            ParamTensor(f"{t.module}.lora_A.weight", (r, d_in), "lora", "linear", t.layers)
        )
        adapters.append(
            ParamTensor(f"{t.module}.lora_B.weight", (d_out, r), "lora", "linear", t.layers)
        )
        if w.dora:
            adapters.append(
                ParamTensor(f"{t.module}.lora_magnitude", (d_out,), "lora", "other", t.layers)
            )
    # PEFT wraps MoE expert stacks (and converted routers) as parameters: A is r·E × d_in
    # and B is d_out × r·E, with r doubled on a fused gate_up_proj.
    wrapped = lora_param_targets(spec, targets)
    if wrapped and w.dora:
        raise InvalidValueError("dora", True, "PEFT's ParamWrapper (MoE experts) refuses DoRA")
    for t, factor in wrapped:
        experts, d1, d2 = t.shape if len(t.shape) == 3 else (1, *t.shape)
        rank = factor * w.lora_rank * experts
        adapters.append(ParamTensor(f"{t.name}.lora_A", (rank, d2), "lora", "linear", t.layers))
        adapters.append(ParamTensor(f"{t.name}.lora_B", (d1, rank), "lora", "linear", t.layers))
    return chosen, tuple(adapters)


def _bnb_saved_inputs(spec: ModelSpec, w: TrainingWorkload, layers: int) -> int:
    """Per token, over all layers: what bitsandbytes before 0.43.2 kept for each 4-bit
    Linear's backward — its input A (ctx.tensors = (A, B), bitsandbytes PR #1270 removed
    it). Distinct tensors per layer: the normed input of q/k/v (h), the normed input of the
    gated MLP's gate/up (h) and the down projection's input (I); o_proj's input is the
    attention output SDPA saves anyway. MoE experts are not bitsandbytes Linears."""
    width = spec.mlp.intermediate_size if spec.mlp is not None else 0
    return layers * w.act_bytes * (2 * spec.hidden_size + width)


def _lora_activation_change(
    spec: ModelSpec,
    targets: tuple[ParamTensor, ...],
    w: TrainingWorkload,
    layers: int | None = None,
) -> int:
    """Per token, over all layers: what a frozen base stops saving and what adapters add.

    A frozen Linear keeps no input for a weight gradient, so the down projection's input
    and the norms' outputs are no longer saved (B·(I + 4h) per layer, B the activation
    bytes). Each adapter keeps its input in fp32 (PEFT's fp32 adapters): a cast copy per
    module in 16-bit recipes, the shared tensor itself in fp32 (the attention output is
    already saved by SDPA), and its rank-r output. Measured exact for Llama-style layers."""
    from modelmem.memory.finetune import _linear_dims

    b = w.act_bytes
    width = spec.mlp.intermediate_size if spec.mlp is not None else 0
    n = spec.num_layers if layers is None else layers  # a pipeline stage: its layers
    change = -n * b * (width + 4 * spec.hidden_size)
    shared: set[tuple[str, int]] = set()
    for t in targets:
        d_in, _ = _linear_dims(t)
        leaf = t.module.rsplit(".", 1)[-1]
        for layer in t.layers or (0,):
            change += 4 * w.lora_rank
            if b != 4:
                change += 4 * d_in
            elif leaf in _ATTN_OUT:
                continue
            else:
                group = "attn" if leaf in _ATTN_IN else "out" if leaf in _MLP_OUT else "mlp"
                if (group, layer) not in shared:
                    shared.add((group, layer))
                    change += 4 * d_in
    return change


def estimate_training(spec: ModelSpec, workload: TrainingWorkload) -> TrainingEstimate:
    """Peak memory of a training step of ``spec`` on the most loaded device.

    With pipeline parallelism the first and the last stage are both priced and the larger
    is reported (``stage_peaks`` has both)."""
    w = workload
    tensors = tensor_inventory(spec)
    if w.tp > 1 or w.pp > 1:
        check_model_parallel(spec, w.tp, w.pp)
    in_flight = 1 if w.naive_pipeline else w.grad_accumulation
    stages = pipeline_stages(tensors, spec.num_layers, w.tp, w.pp, in_flight)
    results = [_estimate_stage(spec, w, stage) for stage in stages]
    best = max(range(len(results)), key=lambda i: results[i].breakdown.total_bytes)
    est = results[best]
    peaks = {s.name: r.breakdown.total_bytes for s, r in zip(stages, results, strict=True)}
    notes = est.breakdown.notes
    if w.pp > 1:
        other = stages[1 - best]
        notes += (
            f"pipeline: the {stages[best].name} stage is the most loaded "
            f"({peaks[stages[best].name]:,} B against {peaks[other.name]:,} B on the "
            f"{other.name}); layers ⌈L/p⌉ = {stages[0].layers} on the first stage with the "
            f"embedding, ⌊L/p⌋ = {stages[1].layers} on the last with the final norm and "
            "output layer; middle stages hold less",
        )
    breakdown = replace(est.breakdown, notes=notes)
    return replace(
        est,
        breakdown=breakdown,
        stage=stages[best].name,
        stage_peaks=peaks,
        deepspeed_estimator=_deepspeed_estimator(tensors, w),
        total_devices=w.total_devices,
        nodes=w.nodes,
    )


def _deepspeed_estimator(
    tensors: tuple[ParamTensor, ...], w: TrainingWorkload
) -> dict[str, Any] | None:
    """DeepSpeed's own model-state estimate for this ZeRO-2/3 setup, for comparison
    (model states only, Adam in mixed precision; CPU per node with its 1.5 buffer
    factor). None where its estimators do not apply."""
    offloads = (w.offload_optimizer, w.offload_param)
    if w.method != "full" or w.zero not in (2, 3) or w.fsdp or w.tp > 1 or w.pp > 1:
        return None
    if "nvme" in offloads or (w.offload_param != "none" and w.offload_optimizer == "none"):
        return None
    total = sum(t.numel for t in tensors)
    per_node = w.devices // w.nodes
    cpu_offload = w.offload_optimizer == "cpu"
    data: dict[str, Any] = {
        "stage": w.zero,
        "total_params": total,
        "num_gpus_per_node": per_node,
        "num_nodes": w.nodes,
        "cpu_offload": cpu_offload,
        "additional_buffer_factor": 1.5,
    }
    if w.zero == 2:
        cpu, gpu = estimate_zero2_model_states_mem_needs(total, per_node, w.nodes, cpu_offload)
        data["function"] = "estimate_zero2_model_states_mem_needs"
    else:
        largest = largest_module_params(tensors)
        params_off = w.offload_param == "cpu"
        cpu, gpu, _ = estimate_zero3_model_states_mem_needs(
            total, largest, per_node, w.nodes, cpu_offload, params_off, w.zero_init
        )
        data.update(
            function="estimate_zero3_model_states_mem_needs",
            largest_layer_params=largest,
            cpu_offload_params=params_off,
            zero_init=w.zero_init,
        )
    data.update(cpu_bytes=cpu, gpu_bytes=gpu)
    return data


def _loss_terms(
    w: TrainingWorkload, bs: int, v: int, h: int, head_grad: int
) -> tuple[int, int, str]:
    """Bytes the loss adds at the loss and at the start of backward, and how.

    full: transformers' ``ForCausalLMLoss`` — b·s·V logits, their fp32 copy, the fp32
    log-softmax, then two fp32 b·s·V gradient buffers (measured). chunked N: the fp32
    copy, log-softmax and gradients of ⌈b·s/N⌉ tokens at a time; the 16-bit logits of
    all tokens stay (torchtune's ``CEWithChunkedOutputLoss``); N = 1 equals full.
    fused (Liger's ``LigerFusedLinearCrossEntropy``): the logits of one chunk of
    ``next_pow2(⌈b·s / ⌈V/h⌉⌉)`` tokens, the input gradient b·s·h and the head's weight
    gradient, computed during the forward; no b·s·V tensor at all.
    """
    act = w.act_bytes
    if v == 0:
        return 0, 0, "no output layer on this pipeline stage"
    if w.loss == "fused":
        chunk = min(bs, 1 << max(0, ceil(bs / ceil(v / h)) - 1).bit_length())
        logits = chunk * v * act
        held = bs * h * act + head_grad
        how = (
            f"fused linear cross-entropy: logits of {chunk:,} tokens at a time × V × {act} B, "
            "input gradient b·s·h and head weight gradient (computed in forward)"
        )
        return logits + held, held, how
    if w.loss == "chunked":
        chunk = ceil(bs / w.loss_chunks)
        out = bs * v * act
        loss = out + chunk * v * 4 * (2 if act != 4 else 1)
        backward = out - chunk * v * act + 3 * chunk * v * 4
        how = (
            f"chunked loss ({w.loss_chunks} chunks): b·s·V logits × {act} B kept; fp32 copy, "
            f"log-softmax and gradients of {chunk:,} tokens at a time (assumes each chunk's "
            "fp32 buffers are freed before the next)"
        )
        return loss, backward, how
    logits16 = bs * v * act if act != 4 else 0
    logits32 = bs * v * 4
    return (
        logits16 + logits32 + bs * v * 4,
        logits32 + 2 * bs * v * 4,
        "b·s·V logits: fp32 copy, log-softmax, gradients",
    )


@dataclass(kw_only=True, slots=True)
class _DeviceStates:
    """What one device holds between steps for the trainable and frozen parameters: the
    weights, gradients and optimizer states with how each was priced, and what went off
    the device. Built by :func:`_full_states` or :func:`_adapter_states`."""

    weights: int
    weights_how: str
    grads: int
    grads_how: str
    states: int
    states_how: str
    temporaries: int  # the optimizer step's transient tensors
    trainable: int
    grad_bytes: int  # bytes of one gradient value (the head's gradient at the loss)
    offloaded: list[OffloadedPart] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra_activations: int = 0  # LoRA: adapter inputs saved instead of the base's
    activation_how: str = ""


def _paged(states: int, states_how: str) -> OffloadedPart:
    return OffloadedPart(
        "optimizer_states",
        states,
        "cpu",
        f"{states_how}; bitsandbytes paged: CUDA unified memory, evicted to the host under "
        "memory pressure — counted off the device",
    )


def _full_states(w: TrainingWorkload, stage: PipelineStage) -> _DeviceStates:
    """Full fine-tuning: ZeRO-sharded model states (Rajbhandari et al. 2020, K = 12 for
    mixed precision), then whatever ZeRO-Offload, paging or an in-backward step moves."""
    tensors, p = stage.tensors, w.param_bytes
    params = sum(t.numel for t in tensors)
    states, states_how = _state_bytes(tensors, w)
    weights, grads, states = zero_model_states(params * p, params * p, states, w.zero, w.devices)
    d = _DeviceStates(
        weights=weights,
        weights_how=_weights_how(w, stage, params),
        grads=grads,
        grads_how=f"one gradient per trainable parameter × {p} B",
        states=states,
        states_how=states_how,
        temporaries=shard(_optimizer_temporaries(tensors, w), w.devices if w.zero else 1),
        trainable=params,
        grad_bytes=p,
    )
    gathered = largest_module_params(tensors) * p
    if w.offload_optimizer != "none":
        _offload_optimizer(d, w, params, gathered)
    if w.offload_param != "none":
        _offload_params(d, w, params, gathered)
    if w.paged_optimizer:
        d.offloaded.append(_paged(d.states, d.states_how))
        d.states, d.temporaries = 0, 0  # bitsandbytes steps one tensor per fused kernel
    if w.optimizer_in_backward:
        largest = max(tensors, key=lambda t: t.numel_each)
        d.grads = largest.numel_each * p
        d.grads_how = (
            f"optimizer in backward: one parameter's gradient at a time (the largest, "
            f"{largest.name}, {largest.numel_each:,} × {p} B), no full gradient buffer"
        )
        d.temporaries = _optimizer_temporaries((replace(largest, layers=()),), w)
    return d


def _weights_how(w: TrainingWorkload, stage: PipelineStage, params: int) -> str:
    p = w.param_bytes
    if w.tp == 1 and w.pp == 1:
        return f"{params:,} params × {p} B ({w.recipe})"
    return (
        f"{params:,} params on this device × {p} B ({w.recipe}; tp={w.tp}: Linear and "
        f"vocabulary weights ÷ {w.tp}, norms and biases whole; pp={w.pp}: "
        f"{stage.name} stage, {stage.layers} layers)"
    )


def _offload_optimizer(d: _DeviceStates, w: TrainingWorkload, params: int, gathered: int) -> None:
    """ZeRO-Offload: optimizer states and the gradient partition live on the host, stepped
    there (DeepSpeed's CPU Adam keeps fp32 gradients; FSDP's CPUOffload the 16-bit ones)."""
    p = w.param_bytes
    ranks = f" ÷ {w.devices} ranks" if w.devices > 1 else ""
    d.offloaded.append(
        OffloadedPart(
            "optimizer_states",
            d.states,
            w.offload_optimizer,
            f"{d.states_how}{ranks}; stepped on the CPU",
        )
    )
    grad_b = p if w.fsdp else 4
    d.offloaded.append(
        OffloadedPart(
            "gradients",
            shard(params * grad_b, w.devices),
            w.offload_optimizer,
            f"{grad_b} B gradient partition per parameter{ranks} "
            + ("(FSDP CPUOffload)" if w.fsdp else "(fp32, for DeepSpeed's CPU Adam)"),
        )
    )
    d.states, d.temporaries = 0, 0
    if w.zero >= 2:
        d.grads = gathered
        d.grads_how = (
            f"one module's gradient at a time (the largest, {gathered // p:,} params "
            f"× {p} B) before it is reduced and copied off; reduce buckets not counted"
        )


def _offload_params(d: _DeviceStates, w: TrainingWorkload, params: int, gathered: int) -> None:
    """ZeRO-3 parameter offload: the partition on the host, one module gathered at a time."""
    p = w.param_bytes
    ranks = f" ÷ {w.devices} ranks" if w.devices > 1 else ""
    d.offloaded.append(
        OffloadedPart(
            "weights",
            d.weights,
            w.offload_param,
            f"{params:,} params × {p} B{ranks} (parameter partition)",
        )
    )
    d.weights = gathered
    d.weights_how = (
        f"one gathered module at a time (the largest, {gathered // p:,} params × {p} B)"
        "; prefetch buffers not counted"
    )


def _on_stage(tensors: tuple[ParamTensor, ...], stage: PipelineStage) -> tuple[ParamTensor, ...]:
    """The part of per-layer tensors on ``stage``'s layers; others on the last stage."""
    layers = {i for t in stage.tensors for i in t.layers}
    kept: list[ParamTensor] = []
    for t in tensors:
        if t.layers:
            mine = tuple(i for i in t.layers if i in layers)
            if mine:
                kept.append(replace(t, layers=mine))
        elif stage.head:
            kept.append(t)
    return tuple(kept)


def _adapter_states(spec: ModelSpec, w: TrainingWorkload, stage: PipelineStage) -> _DeviceStates:
    """LoRA/QLoRA/DoRA: a frozen base (16-bit, or 4-bit for QLoRA) and fp32 adapters with
    their gradients and optimizer states, as PEFT keeps them."""
    from modelmem.memory.weights import estimate_weights

    targets, adapters = _adapters(spec, w)
    if w.pp > 1:  # pipeline stages or device_map="auto": this device's layers only
        targets, adapters = _on_stage(targets, stage), _on_stage(adapters, stage)
    trainable = sum(t.numel for t in adapters)
    base_scheme = (
        w.qlora_scheme if w.method == "qlora" else ("fp32" if w.param_bytes == 4 else "bf16")
    )
    fp32 = replace(w, recipe="fp32")  # PEFT keeps adapters, their grads and states fp32
    states, states_how = _state_bytes(adapters, fp32)
    adapter_weights, grads, states = zero_model_states(
        4 * trainable, 4 * trainable, states, w.zero, w.devices
    )
    base, base_how = _frozen_base(estimate_weights(spec, base_scheme), w, stage)
    d = _DeviceStates(
        weights=base + adapter_weights,
        weights_how=f"{base_how} + {trainable:,} adapter params × 4 B "
        f"(LoRA r={w.lora_rank}, {len(targets)} target tensors)",
        grads=grads,
        grads_how="one gradient per trainable parameter × 4 B",
        states=states,
        states_how=states_how,
        temporaries=shard(_optimizer_temporaries(adapters, fp32), w.devices if w.zero else 1),
        trainable=trainable,
        grad_bytes=4,
    )
    if not w.checkpointing:
        # over this device's layers (all of them unless the layers are split over stages)
        d.extra_activations = _lora_activation_change(spec, targets, w, stage.layers)
        d.activation_how = " − frozen-base inputs + fp32 adapter inputs"
        if w.method == "qlora" and w.bnb_saves_inputs:
            d.extra_activations += _bnb_saved_inputs(spec, w, stage.layers)
            d.activation_how += " + the 4-bit Linears' inputs (bitsandbytes < 0.43.2)"
    if w.paged_optimizer:
        d.offloaded.append(_paged(d.states, d.states_how))
        d.states = 0
    if w.optimizer_in_backward:
        largest = max(adapters, key=lambda t: t.numel_each)
        d.grads = largest.numel_each * 4
        d.grads_how = "optimizer in backward: one adapter's gradient at a time"
        d.temporaries = _optimizer_temporaries((replace(largest, layers=()),), fp32)
    if w.method == "qlora":
        d.notes.append(
            f"QLoRA base in {w.qlora_scheme} is estimated, not measured: bitsandbytes 4-bit "
            "layers do not run on fake tensors; one layer is dequantized at a time "
            "(not counted)"
        )
    return d


def _stage_bytes(base: Any, stage: PipelineStage) -> int:
    """The stored bytes of the base tensors ``stage`` holds (its layers' share of each)."""
    held = {t.name: len(t.layers) if t.layers else 1 for t in stage.tensors}
    return sum(t.bytes_each * min(t.copies, held[t.name]) for t in base.tensors if t.name in held)


def _frozen_base(base: Any, w: TrainingWorkload, stage: PipelineStage) -> tuple[int, str]:
    """The frozen base on one device. Replicated under data parallelism; under FSDP
    full-shard (FSDP-QLoRA, Answer.AI 2024) and DeepSpeed ZeRO-3 sharded over the ranks like
    any parameter, with one wrapped unit — a decoder layer, or the embedding — all-gathered
    at a time for its forward and backward (prefetching the next one is not counted)."""
    scheme = base.scheme
    if w.pp > 1:
        return _stage_bytes(base, stage), (
            f"frozen base ({scheme}), {stage.name} of {w.pp} stages ({stage.layers} layers)"
        )
    if w.zero < 3 or w.devices == 1:
        return base.total_bytes, f"frozen base ({scheme})"
    per_layer = sum(t.bytes_each for t in base.tensors if "{i}" in t.name)
    outside = max((t.bytes for t in base.tensors if "{i}" not in t.name), default=0)
    gathered = max(per_layer, outside)
    return (
        shard(base.total_bytes, w.devices) + gathered,
        f"frozen base ({scheme}) ÷ {w.devices} ranks + one gathered unit "
        f"({gathered:,} B: the larger of a decoder layer and the embedding)",
    )


@dataclass(frozen=True, slots=True)
class _Saved:
    """Activations autograd keeps until the backward pass, on this device."""

    layers: int  # the decoder layers' saved tensors (all micro-batches in flight)
    layers_how: str
    final_norm: int
    autocast_cache: int  # 16-bit copies of the Linear weights under autocast
    embedding_mask: int = 0  # the embedding dropout's 1-byte mask

    @property
    def total(self) -> int:
        return self.layers + self.final_norm + self.autocast_cache + self.embedding_mask


def _saved_activations(
    spec: ModelSpec, w: TrainingWorkload, stage: PipelineStage, d: _DeviceStates
) -> _Saved:
    """Korthikanti et al. 2022 per-layer terms (:func:`_layer_activation_per_token`) over
    b·s tokens, plus the final norm and autocast's weight cache (outside the layers)."""
    bs, h = w.batch * w.seq, spec.hidden_size
    per_layer, layer_how = _layer_activation_per_token(spec, w)
    layers = ceil(bs * stage.layers * stage.in_flight * per_layer) + bs * d.extra_activations
    norm_share = Fraction(1, w.tp) if w.sp else Fraction(1)
    per_token = 4 * h + 2 * w.act_bytes * h + 4
    if spec.family in FITTED_FINAL:
        # LayerNorm keeps its input and output, not an fp32 copy; with the position ids
        h_coef, const = FITTED_FINAL[spec.family][_recipe_kind(w)]
        per_token = h_coef * h + const
    final_norm = ceil(bs * per_token * norm_share) if stage.head else 0
    autocast_cache = 0
    if w.autocast:
        autocast_cache = 2 * _linear_weights(stage.tensors)
        if spec.tie_word_embeddings and stage.head:
            # the output layer reads the embedding matrix: its 16-bit copy is cached too
            autocast_cache += 2 * ceil(spec.vocab_size / w.tp) * h
    mask = bs * h * stage.in_flight if w.dropout.embedding and stage.embedding else 0
    return _Saved(layers, layer_how + d.activation_how, final_norm, autocast_cache, mask)


def _moments(
    spec: ModelSpec, w: TrainingWorkload, stage: PipelineStage, d: _DeviceStates, saved: _Saved
) -> tuple[dict[str, int], str]:
    """The tensor peak at each moment of a step (loss, start and end of the backward
    pass, optimizer step, and with checkpointing the last layer's recomputation), and how
    the loss was priced."""
    bs, h, p = w.batch * w.seq, spec.hidden_size, d.grad_bytes
    v = ceil(spec.vocab_size / w.tp) if stage.head else 0
    head_grad = v * h * p if w.method == "full" and stage.head else 0
    loss_extra, backward_extra, loss_how = _loss_terms(w, bs, v, h, head_grad)
    persistent = d.weights + d.states
    tie = 2 * v * h * p if spec.tie_word_embeddings and w.method == "full" and w.pp == 1 else 0
    if spec.ssm is not None and spec.family in MAMBA_FAMILIES and not w.checkpointing:
        # the reference scan's backward in the last layer: gradients of its [b, I, s, N]
        # discretized A and B·x (measured 16.5 B per I·N and token with fp32 scans, 3.8 in
        # pure 16 bit; Falcon-Mamba's scan stays fp32 in pure 16 bit too; rounded up)
        pure_mamba = _recipe_kind(w) == "pure" and spec.family == "mamba"
        scan = 4 if pure_mamba else 17
        backward_extra += bs * spec.ssm.inner_size * spec.ssm.state_size * scan
    if spec.family in SOFTCAPPED_FAMILIES and v and w.loss == "full":
        # final logit soft-capping (tanh(x / cap) · cap) keeps its tanh output for backward
        loss_extra += bs * v * w.act_bytes
        backward_extra += bs * v * w.act_bytes
        loss_how += " + soft-capping tanh b·s·V"
    moments = {
        "loss": persistent + saved.total + loss_extra,
        # leaving autocast frees its weight cache unless autograd saved the copies, which
        # a checkpointed layer does not
        "backward start": persistent
        + saved.total
        - (saved.autocast_cache if w.checkpointing else 0)
        + backward_extra,
        "backward end": persistent + d.grads + tie,
        "optimizer step": persistent + d.grads + d.temporaries,
    }
    if w.checkpointing:
        # the last layer is recomputed after the loss buffers are gone: its full
        # activations come back beside the head's gradient and the gradient of its output
        plain = TrainingWorkload(
            batch=w.batch,
            seq=w.seq,
            recipe=w.recipe,
            attention=w.attention,
            tp=w.tp,
            sp=w.sp,
            dropout=w.dropout,
        )
        full = _layer_activation_per_token(spec, plain)[0]
        norm_share = Fraction(1, w.tp) if w.sp else Fraction(1)
        moments["layer recompute"] = (
            persistent
            + saved.total
            + ceil(bs * full)
            + head_grad
            + ceil(bs * h * w.act_bytes * norm_share)
        )
    first = _first_layer_backward(spec, w, stage, d)
    if first is not None:
        moments["first layer backward"] = persistent + first
    if w.tp > 1:
        loss_how += f"; vocabulary-parallel: V/t = {v:,} per device (Korthikanti 4sbv/t)"
    return moments, loss_how


def _first_layer_backward(
    spec: ModelSpec, w: TrainingWorkload, stage: PipelineStage, d: _DeviceStates
) -> int | None:
    """Beyond the model states, what is live in the backward of the first decoder layer,
    the last one backward runs through: every gradient but that layer's (its MLP output
    projection's excepted, the first it computes) and the input embedding's, the layer's
    full activations (recomputed under checkpointing) and its backward's temporaries
    (fitted on Llama-style layers: 4I + 2h per token in 16 bit, 8I in fp32; under
    autocast also the layer's 16-bit weight copies). Gradients grow and saved activations
    shrink as backward goes down the layers, so a deep model with a short batch peaks here.
    Priced for one unsharded device with full fine-tuning."""
    if w.method != "full" or w.zero or w.tp > 1 or w.pp > 1 or d.offloaded:
        return None
    if w.optimizer_in_backward or spec.mlp is None or not stage.layers:
        return None
    p, h, bs = d.grad_bytes, spec.hidden_size, w.batch * w.seq
    layer = [t for t in stage.tensors if t.layers and min(t.layers) == 0]
    own = sum(t.numel_each for t in layer) * p
    down = max((t.numel_each for t in layer if t.role == "linear"), default=0) * p
    down = min(down, spec.mlp.intermediate_size * h * p)
    embed = 0 if spec.tie_word_embeddings else spec.vocab_size * _embedding_width(spec) * p
    # what the layer saved (selective recomputation: the attention core comes back only in
    # the attention's own backward, after the MLP's)
    full = _layer_activation_per_token(spec, replace(w, checkpointing=False))[0]
    width = spec.mlp.intermediate_size
    temps = {"pure": 4 * width + 2 * h, "fp32": 8 * width, "amp": 4 * width + 2 * h}
    cache = 2 * sum(t.numel_each for t in layer if t.role in ("linear", "bias"))
    kept = ceil(bs * _layer_activation_per_token(spec, w)[0]) if w.checkpointing else 0
    return (
        d.grads
        - own
        + down
        - embed
        + kept
        + ceil(bs * full)
        + bs * temps[_recipe_kind(w)]
        + (cache if w.autocast else 0)
    )


def _embedding_width(spec: ModelSpec) -> int:
    return spec.embedding_dim or spec.hidden_size


def _components(
    w: TrainingWorkload,
    stage: PipelineStage,
    d: _DeviceStates,
    saved: _Saved,
    moment: str,
    peak: int,
    loss_how: str,
) -> list[MemoryComponent]:
    """The peak split into named parts; what is not a named part is the moment's own."""
    sharded_weights = w.zero == 3 and w.offload_param == "none"
    parts = [
        MemoryComponent(
            "weights",
            d.weights,
            d.weights_how + (f" ÷ {w.devices} ranks" if sharded_weights else ""),
        )
    ]
    if moment in ("backward end", "optimizer step"):
        parts.append(MemoryComponent("gradients", d.grads, d.grads_how))
    if d.states or not d.offloaded:
        parts.append(MemoryComponent("optimizer_states", d.states, d.states_how))
    if moment in ("loss", "backward start", "layer recompute"):
        flight = (
            f" × {stage.in_flight} micro-batches in flight (1F1B)" if stage.in_flight > 1 else ""
        )
        parts.append(
            MemoryComponent(
                "activations",
                saved.layers + saved.final_norm + saved.embedding_mask,
                f"{w.batch}×{w.seq} tokens × {stage.layers} layers{flight} × ({saved.layers_how})"
                + (" + final norm" if saved.final_norm else "")
                + (" + embedding dropout mask (h B per token)" if saved.embedding_mask else ""),
            )
        )
        cache_alive = moment != "backward start" or not w.checkpointing
        if saved.autocast_cache and cache_alive:
            parts.append(
                MemoryComponent(
                    "autocast_weight_cache", saved.autocast_cache, "2 B per Linear weight"
                )
            )
        if moment == "layer recompute":
            name, how = "recompute", "one layer's full activations, head and output gradients"
        else:
            name, how = "logits_and_loss", f"{loss_how} ({moment})"
    elif moment == "optimizer step":
        name, how = "optimizer_temporaries", f"{w.optimizer_impl} step temporaries"
    elif moment == "first layer backward":
        name, how = (
            "first_layer_backward",
            "gradients of the later layers and the head, the first layer's activations"
            + (" (recomputed) and its checkpointed input" if w.checkpointing else "")
            + " and its backward temporaries",
        )
    else:
        name, how = "backward_temporaries", "tied embedding gradient sum"
    rest = peak - sum(c.bytes for c in parts)
    if rest or (name == "recompute") or (name == "logits_and_loss" and stage.head):
        parts.append(MemoryComponent(name, rest, how))
    return [*parts, *_overheads(w, peak)]


def _overheads(w: TrainingWorkload, peak: int) -> tuple[MemoryComponent, MemoryComponent]:
    return (
        MemoryComponent(
            "cuda_context",
            w.cuda_context_bytes,
            f"assumed CUDA context {w.cuda_context_bytes / MIB:.0f} MiB",
        ),
        MemoryComponent(
            "allocator_reserve",
            ceil(peak * w.allocator_reserve),
            f"assumed caching-allocator slack {float(w.allocator_reserve):.0%} of the tensor peak",
        ),
    )


def _stage_notes(w: TrainingWorkload, d: _DeviceStates, moment: str) -> tuple[str, ...]:
    notes: list[str] = [f"peak at the {moment}", *d.notes]
    if w.zero and w.devices > 1:
        sharded = {1: "optimizer states", 2: "gradients and optimizer states"}.get(
            w.zero, "parameters, gradients and optimizer states"
        )
        # full training's gathered layer is not counted; a frozen base's gathered unit is
        gathers = w.zero == 3 and w.offload_param == "none" and w.method == "full"
        notes.append(
            f"ZeRO-{w.zero} over {w.devices} ranks: each holds 1/{w.devices} of the {sharded}"
            + (
                "; stage 3 also gathers one layer's parameters at a time (not counted)"
                if gathers
                else ""
            )
        )
    if d.offloaded:
        notes.append(
            "offloaded (off the device, in host_bytes/nvme_bytes): "
            + ", ".join(f"{o.name} → {o.where}" for o in d.offloaded)
        )
    if w.tp > 1 or w.pp > 1:
        notes.append(
            f"model parallel: {w.devices} data × {w.tp} tensor × {w.pp} pipeline = "
            f"{w.total_devices} devices; tensor-parallel communication buffers not counted"
        )
    return tuple(notes)


def _estimate_stage(spec: ModelSpec, w: TrainingWorkload, stage: PipelineStage) -> TrainingEstimate:
    """The peak of one device holding ``stage`` (the whole model when tp = pp = 1): its model
    states, the activations saved for the backward pass, and the largest moment of a step."""
    d = _full_states(w, stage) if w.method == "full" else _adapter_states(spec, w, stage)
    saved = _saved_activations(spec, w, stage, d)
    moments, loss_how = _moments(spec, w, stage, d, saved)
    moment = max(moments, key=lambda m: moments[m])
    peak = moments[moment]
    parts = _components(w, stage, d, saved, moment, peak, loss_how)
    breakdown = MemoryBreakdown(
        tuple(parts), devices=w.total_devices, notes=_stage_notes(w, d, moment)
    )
    return TrainingEstimate(
        breakdown, peak, moment, moments, d.trainable, offloaded=tuple(d.offloaded)
    )


def _optimizer_temporaries(tensors: tuple[ParamTensor, ...], w: TrainingWorkload) -> int:
    """foreach: about one copy of all parameters (torch docs: "~ sizeof(params) more peak
    memory"); for-loop: two of the largest tensor; fused: none. bitsandbytes' 8-bit AdamW
    updates each tensor in place in one kernel: none (measured)."""
    if w.optimizer_impl == "fused" or w.optimizer in ("sgd", "adamw-8bit"):
        return 0
    p = w.param_bytes
    if w.optimizer_impl == "for-loop":
        return 2 * max(t.numel_each for t in tensors) * p
    return sum(t.numel for t in tensors) * p

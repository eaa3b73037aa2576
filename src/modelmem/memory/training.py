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
  (``foreach`` holds about one copy of the parameters, ``fused`` none).

Step 0 has no optimizer state before its optimizer step, so a later step is the peak.

Saved activations per layer and token, for Llama-style blocks (pre-norm RMSNorm, gated
MLP, rotary attention with SDPA); fitted to the integer from measurements of
randomized configurations, then checked on real ones (``tests/measure``)::

    pure 16-bit   16h + 8I + 4·n_h·d + 4·n_kv·d + 4·n_h + 8
    fp32          24h + 16I + 8·n_h·d + 8·n_kv·d + 4·n_h + 8
    autocast      26h + 8I + 4·n_h·d + 4·n_kv·d + 4·n_h + 8   (+ 2 B per Linear weight:
                                                                the autocast weight cache)
    checkpointed  2h (16-bit) or 4h (fp32 and autocast): only the layer input is kept

Eager attention replaces SDPA's saved log-sum-exp by the ``[b, n_h, s, s]`` fp32 softmax
(and its 16-bit cast) and keeps K and V repeated to every query head. Korthikanti et al.
2022 (arXiv:2205.05198), ``sbh(34 + 5as/h)`` per GPT layer, is the reference form.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import ceil

from modelmem.errors import InvalidValueError, check_choices, check_positive_ints
from modelmem.memory.breakdown import MemoryBreakdown, MemoryComponent
from modelmem.memory.inference import DEFAULT_ALLOCATOR_RESERVE, DEFAULT_CUDA_CONTEXT_BYTES, MIB
from modelmem.memory.parallel import shard, zero_model_states
from modelmem.model.params import ParamTensor, count_params, tensor_inventory
from modelmem.model.spec import ModelSpec

# mixed-bf16: DeepSpeed/Megatron mixed precision — 16-bit parameters and gradients, an
# fp32 master copy and fp32 optimizer states (ZeRO paper: K = 12 bytes per parameter).
RECIPES = ("fp32", "amp-bf16", "amp-fp16", "pure-bf16", "pure-fp16", "mixed-bf16")
OPTIMIZER_IMPLS = ("foreach", "fused", "for-loop")
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
OPTIMIZERS = (*STATE_COPIES, "adafactor", "adamw-8bit")


@dataclass(frozen=True, kw_only=True, slots=True)
class TrainingWorkload:
    batch: int = 1  # micro-batch
    seq: int = 2048
    recipe: str = "amp-bf16"
    optimizer: str = "adamw"
    optimizer_impl: str = "foreach"
    checkpointing: bool = False
    attention: str = "sdpa"
    grad_accumulation: int = 1  # does not add activations; keeps gradients between micro-batches
    method: str = "full"  # full | lora | qlora
    lora_rank: int = 16
    lora_targets: tuple[str, ...] | str | None = None  # None: PEFT's default for the family
    dora: bool = False
    qlora_scheme: str = "bnb-nf4-dq"  # frozen 4-bit base of QLoRA (memory.weights scheme)
    zero: int = 0  # ZeRO stage (FSDP: no-shard 0, shard-grad-op 2, full-shard 3)
    devices: int = 1  # data-parallel ranks the model states are sharded over
    cuda_context_bytes: int = DEFAULT_CUDA_CONTEXT_BYTES
    allocator_reserve: Fraction = DEFAULT_ALLOCATOR_RESERVE

    def __post_init__(self) -> None:
        if self.zero not in (0, 1, 2, 3):
            raise InvalidValueError("zero", self.zero, "must be 0, 1, 2 or 3")
        check_positive_ints(self, ("batch", "seq", "grad_accumulation", "devices"), 2**24)
        if self.lora_rank < 1:
            raise InvalidValueError("lora_rank", self.lora_rank, "must be >= 1")
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
            ),
        )

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
class TrainingEstimate:
    breakdown: MemoryBreakdown
    tensor_peak_bytes: int
    peak_moment: str
    moments: dict[str, int]
    trainable_params: int


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


def _layer_activation_per_token(spec: ModelSpec, w: TrainingWorkload) -> tuple[int, str]:
    """Saved activations of one decoder layer per token (see the module docstring)."""
    a = spec.attention
    h = spec.hidden_size
    if w.checkpointing:
        k = 2 if w.param_bytes == 2 else 4
        return k * h, f"checkpointed: layer input {k}h"
    width = 0
    if spec.mlp is not None:
        width = spec.mlp.intermediate_size
    if spec.moe is not None and spec.is_moe:
        width = max(width, spec.moe.experts_per_token * spec.moe.expert_intermediate_size * 3 // 2)
    q = a.num_heads * a.head_dim if a is not None else 0
    kv = a.num_kv_heads * a.head_dim if a is not None else 0
    n_h = a.num_heads if a is not None else 0
    if w.recipe == "fp32":
        coef = [24, 16, 8, 8, 4]
    elif w.autocast:
        coef = [26, 8, 4, 4, 4]
    else:
        coef = [16, 8, 4, 4, 4]
    extra = ""
    if a is not None and a.qk_norm:
        # per-head RMSNorm on q and k (Qwen3, Gemma 3): its fp32 copy and outputs, fitted
        qk = 8 if w.recipe == "fp32" else 6
        coef[2] += qk
        coef[3] += qk
        coef[4] += 4
        extra = " (+ q/k norms)"
    if spec.norms_per_layer == 4:
        # Gemma's sandwich norms around attention and MLP output; fitted on gemma3_text
        coef[0] += 20 if w.recipe != "amp" else 16
        extra += " (+ sandwich norms)"
    per = coef[0] * h + coef[1] * width + coef[2] * q + coef[3] * kv + coef[4] * n_h + 8
    how = f"{coef[0]}h + {coef[1]}I + {coef[2]}·n_h·d + {coef[3]}·n_kv·d + {coef[4]}·n_h + 8{extra}"
    if w.attention == "eager" and a is not None:
        score = 4 + (w.act_bytes if w.act_bytes != 4 else 0)
        repeated = 2 * w.act_bytes * (n_h - a.num_kv_heads) * a.head_dim
        per += score * n_h * w.seq + repeated - 4 * n_h
        how += f" + eager: {score}·n_h·s scores + repeated K/V"
    return per, how


def _linear_weights(tensors: tuple[ParamTensor, ...]) -> int:
    return sum(t.numel for t in tensors if t.role in ("linear", "expert"))


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
    from modelmem.memory.finetune import PEFT_DEFAULT_TARGETS, _linear_dims, lora_targets

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
    return chosen, tuple(adapters)


def _lora_activation_change(
    spec: ModelSpec, targets: tuple[ParamTensor, ...], w: TrainingWorkload
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
    change = -spec.num_layers * b * (width + 4 * spec.hidden_size)
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
    """Peak memory of a full training step of ``spec`` on one device."""
    tensors = tensor_inventory(spec)
    params = count_params(spec).total
    w = workload
    p, act = w.param_bytes, w.act_bytes
    bs = w.batch * w.seq
    v = spec.vocab_size
    per_layer, layer_how = _layer_activation_per_token(spec, w)
    layers = bs * spec.num_layers * per_layer
    trainable = params
    notes_extra: list[str] = []
    weights_how = f"{params:,} params × {p} B ({w.recipe})"
    if w.method == "full":
        states, states_how = _state_bytes(tensors, w)
        weights, grads, states = zero_model_states(
            params * p, params * p, states, w.zero, w.devices
        )
        step_tensors, step_workload = tensors, w
    else:
        from dataclasses import replace as _replace

        from modelmem.memory.weights import estimate_weights

        targets, adapters = _adapters(spec, w)
        trainable = sum(t.numel for t in adapters)
        base_scheme = w.qlora_scheme if w.method == "qlora" else ("fp32" if p == 4 else "bf16")
        base = estimate_weights(spec, base_scheme).total_bytes
        fp32 = _replace(w, recipe="fp32")  # PEFT keeps adapters, their grads and states fp32
        states, states_how = _state_bytes(adapters, fp32)
        weights, grads = base + 4 * trainable, 4 * trainable
        weights_how = (
            f"frozen base ({base_scheme}) + {trainable:,} adapter params × 4 B "
            f"(LoRA r={w.lora_rank}, {len(targets)} target tensors)"
        )
        if not w.checkpointing:
            layers += bs * _lora_activation_change(spec, targets, w)
            layer_how += " − frozen-base inputs + fp32 adapter inputs"
        step_tensors, step_workload = adapters, fp32
        p = 4
        if w.method == "qlora":
            notes_extra.append(
                f"QLoRA base in {w.qlora_scheme} is estimated, not measured: bitsandbytes 4-bit "
                "layers do not run on fake tensors; one layer is dequantized at a time "
                "(not counted)"
            )
    # outside the layers: final norm as a layer's norms, the 16-bit autocast weight cache
    final_norm = bs * (4 * spec.hidden_size + 2 * act * spec.hidden_size + 4)
    autocast_cache = 2 * _linear_weights(tensors) if w.autocast else 0
    saved = layers + final_norm + autocast_cache
    logits16 = bs * v * act if act != 4 else 0
    logits32 = bs * v * 4
    persistent = weights + states
    moments = {
        "loss": persistent + saved + logits16 + logits32 + bs * v * 4,
        # leaving autocast frees its weight cache unless autograd saved the copies, which
        # a checkpointed layer does not
        "backward start": persistent
        + saved
        - (autocast_cache if w.checkpointing else 0)
        + logits32
        + 2 * bs * v * 4,
        "backward end": persistent
        + grads
        + (2 * v * spec.hidden_size * p if spec.tie_word_embeddings and w.method == "full" else 0),
        "optimizer step": persistent
        + grads
        + shard(_optimizer_temporaries(step_tensors, step_workload), w.devices if w.zero else 1),
    }
    if w.checkpointing:
        # the last layer is recomputed after the loss buffers are gone: its full
        # activations come back beside the head's gradient and the gradient of its output
        full = _layer_activation_per_token(
            spec, TrainingWorkload(batch=w.batch, seq=w.seq, recipe=w.recipe, attention=w.attention)
        )[0]
        head_grad = v * spec.hidden_size * p if w.method == "full" else 0
        moments["layer recompute"] = (
            persistent + saved + bs * full + head_grad + bs * spec.hidden_size * act
        )
    moment = max(moments, key=lambda m: moments[m])
    peak = moments[moment]
    parts: list[MemoryComponent] = [
        MemoryComponent(
            "weights",
            weights,
            weights_how + (f" ÷ {w.devices} ranks" if w.zero == 3 else ""),
        ),
    ]
    if moment in ("backward end", "optimizer step"):
        parts.append(
            MemoryComponent("gradients", grads, f"one gradient per trainable parameter × {p} B")
        )
    parts.append(MemoryComponent("optimizer_states", states, states_how))
    if moment in ("loss", "backward start", "layer recompute"):
        parts.append(
            MemoryComponent(
                "activations",
                layers + final_norm,
                f"{w.batch}×{w.seq} tokens × {spec.num_layers} layers × ({layer_how}) + final norm",
            )
        )
        cache_alive = moment != "backward start" or not w.checkpointing
        if autocast_cache and cache_alive:
            parts.append(
                MemoryComponent("autocast_weight_cache", autocast_cache, "2 B per Linear weight")
            )
        rest = peak - sum(c.bytes for c in parts)
        if moment == "layer recompute":
            name, how = "recompute", "one layer's full activations, head and output gradients"
        else:
            name, how = (
                "logits_and_loss",
                f"b·s·V logits: fp32 copy, log-softmax, gradients ({moment})",
            )
        parts.append(MemoryComponent(name, rest, how))
    else:
        rest = peak - sum(c.bytes for c in parts)
        name = "optimizer_temporaries" if moment == "optimizer step" else "backward_temporaries"
        how = (
            f"{w.optimizer_impl} step temporaries"
            if moment == "optimizer step"
            else "tied embedding gradient sum"
        )
        if rest:
            parts.append(MemoryComponent(name, rest, how))
    parts.append(
        MemoryComponent(
            "cuda_context",
            w.cuda_context_bytes,
            f"assumed CUDA context {w.cuda_context_bytes / MIB:.0f} MiB",
        )
    )
    parts.append(
        MemoryComponent(
            "allocator_reserve",
            ceil(peak * w.allocator_reserve),
            f"assumed caching-allocator slack {float(w.allocator_reserve):.0%} of the tensor peak",
        )
    )
    notes: tuple[str, ...] = (f"peak at the {moment}", *notes_extra)
    if w.zero and w.devices > 1:
        sharded = {1: "optimizer states", 2: "gradients and optimizer states"}.get(
            w.zero, "parameters, gradients and optimizer states"
        )
        notes += (
            f"ZeRO-{w.zero} over {w.devices} ranks: each holds 1/{w.devices} of the {sharded}; "
            "stage 3 also gathers one layer's parameters at a time (not counted)",
        )
    breakdown = MemoryBreakdown(tuple(parts), devices=w.devices, notes=notes)
    return TrainingEstimate(breakdown, peak, moment, moments, trainable)


def _optimizer_temporaries(tensors: tuple[ParamTensor, ...], w: TrainingWorkload) -> int:
    """foreach: about one copy of all parameters (torch docs: "~ sizeof(params) more peak
    memory"); for-loop: two of the largest tensor; fused: none."""
    if w.optimizer_impl == "fused" or w.optimizer == "sgd":
        return 0
    p = w.param_bytes
    if w.optimizer_impl == "for-loop":
        return 2 * max(t.numel_each for t in tensors) * p
    return sum(t.numel for t in tensors) * p

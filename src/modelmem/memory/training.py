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

from modelmem.errors import InvalidValueError, UnknownNameError
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
    zero: int = 0  # ZeRO stage (FSDP: no-shard 0, shard-grad-op 2, full-shard 3)
    devices: int = 1  # data-parallel ranks the model states are sharded over
    cuda_context_bytes: int = DEFAULT_CUDA_CONTEXT_BYTES
    allocator_reserve: Fraction = DEFAULT_ALLOCATOR_RESERVE

    def __post_init__(self) -> None:
        if self.zero not in (0, 1, 2, 3):
            raise InvalidValueError("zero", self.zero, "must be 0, 1, 2 or 3")
        for name in ("batch", "seq", "grad_accumulation", "devices"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**24:
                raise InvalidValueError(name, value, "must be an integer in [1, 16777216]")
        for name, allowed in (
            ("recipe", RECIPES),
            ("optimizer", OPTIMIZERS),
            ("optimizer_impl", OPTIMIZER_IMPLS),
            ("attention", ("sdpa", "eager")),
        ):
            if getattr(self, name) not in allowed:
                raise UnknownNameError(name, getattr(self, name), allowed)

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


def estimate_training(spec: ModelSpec, workload: TrainingWorkload) -> TrainingEstimate:
    """Peak memory of a full training step of ``spec`` on one device."""
    tensors = tensor_inventory(spec)
    params = count_params(spec).total
    w = workload
    p, act = w.param_bytes, w.act_bytes
    bs = w.batch * w.seq
    v = spec.vocab_size
    states, states_how = _state_bytes(tensors, w)
    weights, grads, states = zero_model_states(params * p, params * p, states, w.zero, w.devices)
    per_layer, layer_how = _layer_activation_per_token(spec, w)
    layers = bs * spec.num_layers * per_layer
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
        + (2 * v * spec.hidden_size * p if spec.tie_word_embeddings else 0),
        "optimizer step": persistent
        + grads
        + shard(_optimizer_temporaries(tensors, w), w.devices if w.zero else 1),
    }
    if w.checkpointing:
        # the last layer is recomputed after the loss buffers are gone: its full
        # activations come back beside the head's gradient and the gradient of its output
        full = _layer_activation_per_token(
            spec, TrainingWorkload(batch=w.batch, seq=w.seq, recipe=w.recipe, attention=w.attention)
        )[0]
        head_grad = v * spec.hidden_size * p
        moments["layer recompute"] = (
            persistent + saved + bs * full + head_grad + bs * spec.hidden_size * act
        )
    moment = max(moments, key=lambda m: moments[m])
    peak = moments[moment]
    parts: list[MemoryComponent] = [
        MemoryComponent(
            "weights",
            weights,
            f"{params:,} params × {p} B ({w.recipe})"
            + (f" ÷ {w.devices} ranks" if w.zero == 3 else ""),
        ),
    ]
    if moment in ("backward end", "optimizer step"):
        parts.append(MemoryComponent("gradients", grads, f"one gradient per parameter × {p} B"))
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
    notes: tuple[str, ...] = (f"peak at the {moment}",)
    if w.zero and w.devices > 1:
        sharded = {1: "optimizer states", 2: "gradients and optimizer states"}.get(
            w.zero, "parameters, gradients and optimizer states"
        )
        notes += (
            f"ZeRO-{w.zero} over {w.devices} ranks: each holds 1/{w.devices} of the {sharded}; "
            "stage 3 also gathers one layer's parameters at a time (not counted)",
        )
    breakdown = MemoryBreakdown(tuple(parts), devices=w.devices, notes=notes)
    return TrainingEstimate(breakdown, peak, moment, moments, params)


def _optimizer_temporaries(tensors: tuple[ParamTensor, ...], w: TrainingWorkload) -> int:
    """foreach: about one copy of all parameters (torch docs: "~ sizeof(params) more peak
    memory"); for-loop: two of the largest tensor; fused: none."""
    if w.optimizer_impl == "fused" or w.optimizer == "sgd":
        return 0
    p = w.param_bytes
    if w.optimizer_impl == "for-loop":
        return 2 * max(t.numel_each for t in tensors) * p
    return sum(t.numel for t in tensors) * p

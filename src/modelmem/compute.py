"""What a token costs in compute and time: FLOPs, prefill/decode time, training time.

Pure functions of a :class:`ModelSpec` and plain device rates (FLOP/s, bytes/s); no
device catalogue, file or clock. Symbols follow Kaplan et al. 2020 (arXiv:2001.08361,
Table 1) and Korthikanti et al. 2022 (arXiv:2205.05198, Appendix A):

    forward FLOPs per token = 2·N_mm + Σ_layers 2·n_h·(d_qk + d_v)·keys(layer)

- ``N_mm`` (:func:`matmul_params`): weights multiplied per token — every linear of the
  text model, the routed experts a token uses (k of E), the router, and the LM head (the
  embedding matrix again when tied). Embedding lookups, norms, biases and elementwise
  work are not FLOPs of a matmul and are left out (they are ~0.1 % of the total); this is
  the ``2·N`` of the literature with N counted exactly.
- attention: QKᵀ costs 2·n_h·d_qk and AV 2·n_h·d_v per key; a token at position t
  attends ``keys = t`` keys, or ``min(t, W)`` in a sliding-window layer. MLA (DeepSeek)
  is counted as transformers runs it: per-head keys of d_qk = qk_nope + qk_rope and
  values of d_v after ``kv_b_proj`` (the absorbed form of vLLM/SGLang is not modelled).
- Only "full" and "sliding" layers attend to keys. The recurrent layer kinds (see
  ``ModelSpec.attention_layers``) cost their projections (in ``N_mm``), their depthwise
  short convolutions (2·C·kernel per token: Mamba 1/2, gated delta-net, RG-LRU, LFM2)
  and: a Mamba-1 scan its output contraction y = C·h (2·D·N per token; the state update
  is elementwise), RG-LRU its block-diagonal gates (in ``N_mm``). The chunk-internal
  matmuls of Mamba-2's SSD, the gated delta-net and lightning attention are not priced:
  transformers' PyTorch path pads each to a whole chunk (a fixed cost per sequence).
- Routed experts count k of E whether stacked into one [E, ...] parameter or stored one
  module per expert; a router counts in full, whether an nn.Linear or its own module.

Training is forward + backward = 3× forward (the backward of a matmul computes the
gradients of its input and of its weight, 2× the forward), i.e. 6·N_mm per token plus
3× the attention term; full activation recomputation adds one forward: 4× (8·N_mm).

Time (roofline, reference formulas §I): prefill is compute-bound,
``t = FLOPs / (peak · MFU)``; a decode step reads the weights once (MoE: the experts the
batch touches) plus every sequence's KV cache, ``t_mem = bytes / (bandwidth · MBU)``, and
takes ``max(t_compute, t_mem)``. MFU (model FLOPs utilization) and MBU (bandwidth
utilization) are assumptions the caller states; the defaults are 0.5 and 0.8.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from math import ceil, isfinite
from typing import Any

from modelmem.errors import InvalidValueError
from modelmem.formats import get_format
from modelmem.memory.kvcache import cache_layout
from modelmem.memory.weights import estimate_weights
from modelmem.model.limits import LIMITS
from modelmem.model.params import (
    EXPERTS,
    POOLER,
    PROJECTOR,
    ROUTER,
    SSM,
    VISION,
    count_params,
    tensor_inventory,
)
from modelmem.model.spec import ModelSpec, ParamTensor

__all__ = [
    "DEFAULT_MBU",
    "DEFAULT_MFU",
    "DecodeStep",
    "InferenceCost",
    "TrainingCost",
    "attention_flops_per_token",
    "causal_keys",
    "expert_touch_fraction",
    "forward_flops",
    "inference_cost",
    "matmul_params",
    "training_cost",
    "training_flops",
]

DEFAULT_MFU = 0.5  # share of peak FLOP/s a well-tuned prefill or training step reaches
DEFAULT_MBU = 0.8  # share of peak memory bandwidth a decode step reaches

_NOT_PER_TOKEN = (VISION, PROJECTOR, POOLER)  # image tower; BERT pooler runs once a sequence


# ----------------------------------------------------------------------------- FLOPs


def matmul_params(spec: ModelSpec) -> int:
    """N_mm: weights one text token is multiplied with (see the module docstring)."""
    moe = spec.moe
    n = 0
    for t in tensor_inventory(spec):
        if t.component in _NOT_PER_TOKEN:
            continue
        if t.component == EXPERTS and moe is not None and _one_expert(t):
            # one module per expert: a token goes through k of the E
            n += t.numel * moe.experts_per_token // moe.num_experts
        elif t.role == "linear" or (t.component == ROUTER and t.role == "other"):
            n += t.numel  # (a router is a matmul, whether nn.Linear or its own module)
        elif t.component == EXPERTS and len(t.shape) == 3 and moe is not None:
            # [E, out, in] per layer (E its own leading dimension): k of the E experts
            n += t.numel // t.shape[0] * moe.experts_per_token
        elif _block_diagonal(t):
            n += t.numel  # RG-LRU's gates: one [b, b] matmul per head
    if spec.lm_head and spec.tie_word_embeddings:
        n += spec.vocab_size * spec.token_embedding_dim  # the tied head is a matmul too
    return n


# An expert's own module in the path (``experts.3.w1``, ``experts.expert_3.wi``): experts
# stored one module each, not stacked into one [E, ...] parameter.
_ONE_EXPERT = re.compile(r"\.experts\.(expert_)?\d+\.")


def _block_diagonal(t: ParamTensor) -> bool:
    """A [heads, b_in, b_out] weight of a recurrent mixer, applied per head as a batched
    matmul (RecurrentGemma's input and recurrence gates); not a depthwise conv [C, 1, k]."""
    return t.component == SSM and t.role == "other" and len(t.shape) == 3 and t.shape[1] > 1


def _one_expert(t: ParamTensor) -> bool:
    return t.role == "linear" and _ONE_EXPERT.search(t.name) is not None


def _recurrent_flops_per_token(spec: ModelSpec) -> int:
    """Per-token matmul work of the recurrent kinds beyond their projections: a Mamba-1
    layer's output contraction y = C·h over its state (2·D·N; the state update itself is
    elementwise) and the short convolutions."""
    s = spec.ssm
    scan = 0
    if s is not None and not s.num_heads:
        scan = 2 * s.inner_size * s.state_size * spec.attention_layers.count("ssm")
        if not spec.attention_layers:  # attention-free: every layer is a mixer
            scan = 2 * s.inner_size * s.state_size * spec.num_layers
    return scan + _conv_flops_per_token(spec)


def _conv_flops_per_token(spec: ModelSpec) -> int:
    """Depthwise short convolutions (Mamba 1/2 mixers, gated delta-net, RG-LRU, LFM2's
    short conv): a [C, 1, kernel] weight costs 2·C·kernel per token in each layer."""
    return sum(
        2 * t.shape[0] * t.shape[2] * t.copies
        for t in tensor_inventory(spec)
        if len(t.shape) == 3 and t.shape[1] == 1 and t.component != EXPERTS
    )


def causal_keys(tokens: int, window: int | None = None) -> int:
    """Σ_{t=1..tokens} min(t, W): keys attended by ``tokens`` causal queries."""
    if window is None or tokens <= window:
        return tokens * (tokens + 1) // 2
    return window * (window + 1) // 2 + (tokens - window) * window


def _layer_windows(spec: ModelSpec) -> list[int | None]:
    """The attention layers' windows (None: full). Only "full" and "sliding" layers attend
    to keys; the recurrent kinds (linear attention, SSM, RG-LRU, short conv) and
    MLP-only layers have no per-key cost (their projections are in N_mm)."""
    return [
        spec.sliding_window if k == "sliding" else None
        for k in spec.attention_layers
        if k in ("full", "sliding")
    ]


def _per_key(spec: ModelSpec) -> int:
    """FLOPs per (query, key) pair in one layer: 2·n_h·d_qk (QKᵀ) + 2·n_h·d_v (AV)."""
    a = spec.attention
    return 0 if a is None else 2 * a.num_heads * (a.head_dim + a.v_head_dim)


def attention_flops_per_token(spec: ModelSpec, context: int) -> int:
    """Attention FLOPs of one token that sees ``context`` tokens (itself included)."""
    _check_int("context", context, minimum=1, maximum=_MAX_TOKENS)
    per_key = _per_key(spec)
    return sum(per_key * (context if w is None else min(context, w)) for w in _layer_windows(spec))


def forward_flops(spec: ModelSpec, tokens: int, *, past: int = 0, causal: bool = True) -> int:
    """FLOPs of one forward pass over ``tokens`` new tokens of one sequence that already
    has ``past`` tokens cached (prefill: past = 0; a decode step: tokens = 1).

    ``causal=True`` counts the keys each query really attends (what flash attention
    computes); ``causal=False`` counts every (query, key) pair of the score matrix, as
    mask-based attention (eager, SDPA math) computes it and ``FlopCounterMode`` counts it
    — windows then cut nothing either.
    """
    _check_int("tokens", tokens, minimum=1, maximum=_MAX_TOKENS)
    _check_int("past", past, minimum=0, maximum=_MAX_TOKENS)
    per_key = _per_key(spec)
    keys = 0
    for w in _layer_windows(spec):
        if causal:
            keys += causal_keys(past + tokens, w) - causal_keys(past, w)
        else:
            keys += tokens * (past + tokens)
    linear = tokens * (2 * matmul_params(spec) + _recurrent_flops_per_token(spec))
    return linear + per_key * keys


def training_flops(
    spec: ModelSpec, seq: int, *, recompute: bool = False, causal: bool = True
) -> int:
    """FLOPs of a training step on one sequence of ``seq`` tokens: forward + backward
    (3× forward), or 4× with full activation recomputation."""
    return (4 if recompute else 3) * forward_flops(spec, seq, causal=causal)


# ------------------------------------------------------------------------------ time


# A context, prompt or token count: the bound on a model's context window (model/limits.py).
_MAX_TOKENS = LIMITS["context"].maximum


def _check_int(name: str, value: object, *, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidValueError(name, value, f"must be an integer ≥ {minimum}")
    if maximum is not None and value > maximum:
        raise InvalidValueError(name, value, f"over the limit of {maximum:,} tokens")
    return value


def _check_rate(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidValueError(name, value, "must be a number")
    if not isfinite(value) or value <= 0:
        raise InvalidValueError(name, value, "must be a positive finite number")
    return float(value)


def _check_share(name: str, value: object) -> float:
    share = _check_rate(name, value)
    if share > 1:
        raise InvalidValueError(name, value, "must be in (0, 1]")
    return share


def expert_touch_fraction(spec: ModelSpec, batch: int) -> float:
    """Expected share of a MoE layer's experts that ``batch`` tokens route to, with
    uniform routing: 1 − (1 − k/E)^B (1 for a dense model)."""
    if spec.moe is None or not spec.is_moe:
        return 1.0
    k, e = spec.moe.experts_per_token, spec.moe.num_experts
    return float(1 - (1 - k / e) ** batch)


def _decode_weight_bytes(spec: ModelSpec, weights_dtype: str, batch: int) -> tuple[int, int]:
    """(weights stored, weights read by one decode step of ``batch`` tokens): every text
    weight once, experts in the share the batch touches; an untied embedding table is
    only gathered (B rows, not counted) and an image tower is not used."""
    stored = estimate_weights(spec, weights_dtype)
    skip = {
        t.name
        for t in tensor_inventory(spec)
        if t.component in _NOT_PER_TOKEN
        or (t.role == "embedding" and not (spec.tie_word_embeddings and spec.lm_head))
    }
    share = expert_touch_fraction(spec, batch)
    read = 0.0
    for t in stored.tensors:
        if t.name in skip:
            continue
        read += t.bytes * share if ".experts." in t.name else t.bytes
    return stored.total_bytes, ceil(read)


@dataclass(frozen=True, slots=True)
class DecodeStep:
    """One decode step of a batch: compute time, memory time, and which bounds it."""

    flops: int
    bytes_read: int
    compute_s: float
    memory_s: float

    @property
    def seconds(self) -> float:
        return max(self.compute_s, self.memory_s)

    @property
    def bound(self) -> str:
        return "compute" if self.compute_s >= self.memory_s else "memory bandwidth"


@dataclass(frozen=True, slots=True)
class InferenceCost:
    """Prefill and decode of ``batch`` sequences on one device."""

    flops_per_s: float
    bandwidth_bytes_per_s: float
    mfu: float
    mbu: float
    batch: int
    prompt_tokens: int
    context: int
    active_params: int
    matmul_params: int
    weights_bytes: int
    prefill_flops: int  # one sequence
    prefill_s: float  # the whole batch
    decode_flops_per_token: int  # at ``context``
    weights_read_bytes: int
    kv_read_bytes: int  # the batch's KV cache at ``context``
    step: DecodeStep
    price_per_hour: float | None = None

    @property
    def prefill_tokens_per_s(self) -> float:
        return self.batch * self.prompt_tokens / self.prefill_s

    @property
    def decode_tokens_per_s_per_stream(self) -> float:
        return 1 / self.step.seconds

    @property
    def decode_tokens_per_s(self) -> float:
        return self.batch / self.step.seconds

    def _per_million(self, tokens_per_s: float) -> float | None:
        if self.price_per_hour is None:
            return None
        return self.price_per_hour / 3600 * 1e6 / tokens_per_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "device_flops_per_s": self.flops_per_s,
            "device_bandwidth_bytes_per_s": self.bandwidth_bytes_per_s,
            "mfu": self.mfu,
            "mbu": self.mbu,
            "batch": self.batch,
            "prompt_tokens": self.prompt_tokens,
            "context": self.context,
            "active_params": self.active_params,
            "matmul_params": self.matmul_params,
            "weights_bytes": self.weights_bytes,
            "prefill": {
                "flops_per_sequence": self.prefill_flops,
                "flops_per_token": self.prefill_flops / self.prompt_tokens,
                "seconds": self.prefill_s,
                "tokens_per_s": self.prefill_tokens_per_s,
                "cost_per_million_tokens": self._per_million(self.prefill_tokens_per_s),
            },
            "decode": {
                "flops_per_token": self.decode_flops_per_token,
                "step_flops": self.step.flops,
                "weights_read_bytes": self.weights_read_bytes,
                "kv_read_bytes": self.kv_read_bytes,
                "step_bytes": self.step.bytes_read,
                "compute_s": self.step.compute_s,
                "memory_s": self.step.memory_s,
                "step_s": self.step.seconds,
                "bound": self.step.bound,
                "tokens_per_s_per_stream": self.decode_tokens_per_s_per_stream,
                "tokens_per_s": self.decode_tokens_per_s,
                "cost_per_million_tokens": self._per_million(self.decode_tokens_per_s),
            },
            "price_per_hour": self.price_per_hour,
        }


def inference_cost(
    spec: ModelSpec,
    *,
    flops_per_s: float,
    bandwidth_bytes_per_s: float,
    prompt_tokens: int,
    context: int | None = None,
    batch: int = 1,
    mfu: float = DEFAULT_MFU,
    mbu: float = DEFAULT_MBU,
    weights_dtype: str = "bf16",
    kv_dtype: str = "bf16",
    price_per_hour: float | None = None,
) -> InferenceCost:
    """Prefill of ``prompt_tokens`` and one decode step at ``context`` cached tokens
    (default: the prompt) for ``batch`` sequences on a device of ``flops_per_s`` peak and
    ``bandwidth_bytes_per_s``; ``price_per_hour`` (per device) prices a million tokens."""
    peak = _check_rate("flops_per_s", flops_per_s)
    bandwidth = _check_rate("bandwidth_bytes_per_s", bandwidth_bytes_per_s)
    mfu, mbu = _check_share("mfu", mfu), _check_share("mbu", mbu)
    prompt = _check_int("prompt", prompt_tokens, minimum=1, maximum=_MAX_TOKENS)
    ctx = (
        prompt
        if context is None
        else _check_int("context", context, minimum=1, maximum=_MAX_TOKENS)
    )
    b = _check_int("batch", batch, minimum=1)
    price = None if price_per_hour is None else _check_rate("price_per_hour", price_per_hour)
    prefill = forward_flops(spec, prompt)
    per_token = forward_flops(spec, 1, past=ctx - 1)
    stored, weights_read = _decode_weight_bytes(spec, weights_dtype, b)
    layout = cache_layout(spec, get_format(kv_dtype))
    kv_read = layout.bytes(ctx, b, window_tokens=spec.sliding_window)
    step = DecodeStep(
        flops=b * per_token,
        bytes_read=weights_read + kv_read,
        compute_s=b * per_token / (peak * mfu),
        memory_s=(weights_read + kv_read) / (bandwidth * mbu),
    )
    return InferenceCost(
        flops_per_s=peak,
        bandwidth_bytes_per_s=bandwidth,
        mfu=mfu,
        mbu=mbu,
        batch=b,
        prompt_tokens=prompt,
        context=ctx,
        active_params=count_params(spec).active,
        matmul_params=matmul_params(spec),
        weights_bytes=stored,
        prefill_flops=prefill,
        prefill_s=b * prefill / (peak * mfu),
        decode_flops_per_token=per_token,
        weights_read_bytes=weights_read,
        kv_read_bytes=kv_read,
        step=step,
        price_per_hour=price,
    )


@dataclass(frozen=True, slots=True)
class TrainingCost:
    """Training on ``tokens`` tokens in sequences of ``seq`` on ``devices`` devices."""

    tokens: int
    seq: int
    devices: int
    flops_per_s: float  # per device
    mfu: float
    recompute: bool
    flops_per_token: float
    total_flops: float
    seconds: float
    price_per_hour: float | None = None  # per device

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds

    @property
    def cost(self) -> float | None:
        if self.price_per_hour is None:
            return None
        return self.price_per_hour * self.devices * self.seconds / 3600

    def to_dict(self) -> dict[str, Any]:
        cost = self.cost
        return {
            "tokens": self.tokens,
            "seq": self.seq,
            "devices": self.devices,
            "mfu": self.mfu,
            "recompute": self.recompute,
            "flops_per_token": self.flops_per_token,
            "total_flops": self.total_flops,
            "seconds": self.seconds,
            "hours": self.seconds / 3600,
            "tokens_per_s": self.tokens_per_s,
            "cost": cost,
            "cost_per_million_tokens": None if cost is None else cost / self.tokens * 1e6,
        }


def training_cost(
    spec: ModelSpec,
    *,
    tokens: int,
    seq: int,
    flops_per_s: float,
    devices: int = 1,
    mfu: float = DEFAULT_MFU,
    recompute: bool = False,
    price_per_hour: float | None = None,
) -> TrainingCost:
    """Time to train on ``tokens`` tokens: tokens × FLOPs per token / (devices · peak ·
    MFU), FLOPs per token from :func:`training_flops` at sequence length ``seq``."""
    n = _check_int("train_tokens", tokens, minimum=1)
    s = _check_int("seq", seq, minimum=1)
    k = _check_int("devices", devices, minimum=1)
    peak = _check_rate("flops_per_s", flops_per_s)
    mfu = _check_share("mfu", mfu)
    price = None if price_per_hour is None else _check_rate("price_per_hour", price_per_hour)
    per_token = training_flops(spec, s, recompute=recompute) / s
    total = per_token * n
    return TrainingCost(
        tokens=n,
        seq=s,
        devices=k,
        flops_per_s=peak,
        mfu=mfu,
        recompute=recompute,
        flops_per_token=per_token,
        total_flops=total,
        seconds=total / (k * peak * mfu),
        price_per_hour=price,
    )

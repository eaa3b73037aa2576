"""Inference memory: weights + cache + prefill workspace + named runtime overheads.

The transformers engine is modelled on what its code keeps alive, as measured with fake
tensors (``modelmem measure --mode inference``): the peak is in the last layer of the
prefill, where every earlier layer's cache is written and the layer's own transients are
live, or in a decode step, where the dynamic cache copies one layer's K/V to append a
token. Symbols: ``b`` batch, ``s`` prompt tokens, ``h`` hidden, ``I`` MLP width,
``B`` bytes per activation value.
"""

from __future__ import annotations

from math import ceil
from typing import Literal

from modelmem.formats import get_format
from modelmem.memory.breakdown import MemoryBreakdown, MemoryComponent
from modelmem.memory.engines import estimate_engine
from modelmem.memory.kvcache import cache_layout, default_kv_format
from modelmem.memory.serving import (
    EngineSettings,
    InferenceEstimate,
    InferenceWorkload,
    activation_bytes,
    weights_of,
)
from modelmem.model.spec import ModelSpec
from modelmem.vocabulary import (
    MIB,
)

__all__ = [
    "EAGER_ONLY_FAMILIES",
    "EngineSettings",
    "InferenceEstimate",
    "InferenceWorkload",
    "activation_bytes",
    "estimate_inference",
    "largest_fitting",
    "prefill_workspace",
    "weights_of",
]

Engine = Literal["transformers", "vllm", "llama.cpp"]


def _kv_format(spec: ModelSpec, workload: InferenceWorkload) -> str:
    if workload.kv_dtype:
        return workload.kv_dtype
    return default_kv_format(workload.engine, activation_bytes(workload.dtype))


# Activations transformers computes as several PyTorch ops (each output stays alive until
# the expression ends): the tanh GELU of GPT-2 keeps its input, x³ and two products.
_COMPOSITE_ACTIVATIONS = ("gelu_new", "gelu_fast", "quick_gelu")
# transformers has no SDPA path for these families (logit softcapping, attention sinks,
# MLA's split head dims): they run eager attention.
EAGER_ONLY_FAMILIES = ("gemma2", "gpt_oss", "deepseek_v2", "deepseek_v3")


def _mlp_values_per_token(spec: ModelSpec) -> tuple[int, str]:
    """Values per token live at the MLP's peak, beyond the residual stream."""
    mlp, what = 0, ""
    if spec.mlp is not None and "dense" in spec.mlp_layers:
        width = spec.mlp.intermediate_size
        if spec.mlp.gated:
            # gate act, up, product; Phi-3's fused gate_up output is 2I before the split
            mlp = (4 if spec.layout == "phi3" else 3) * width
            what = f"{mlp // width}·I gated MLP"
        else:
            n = 4 if spec.mlp.activation in _COMPOSITE_ACTIVATIONS else 2
            mlp, what = n * width, f"{n}·I MLP ({spec.mlp.activation})"
    if spec.moe is not None and spec.is_moe:
        # grouped-mm experts: routed token copies, expert outputs and weighted sum (4·k·h)
        routed = 4 * spec.moe.experts_per_token * spec.hidden_size
        shared = 3 * spec.moe.shared_intermediate_size
        if routed + shared > mlp:
            mlp, what = (
                routed + shared,
                "4·k·h routed experts" + (" + 3·I shared" if shared else ""),
            )
    if spec.ssm is not None:
        mlp, what = 4 * spec.ssm.inner_size, "4·D mixer (fused kernels)"
    return mlp, what


def prefill_workspace(
    spec: ModelSpec, batch: int, tokens: int, act: int, attention: str, tp: int = 1
) -> tuple[int, str]:
    """Bytes live in the worst layer of a transformers prefill (no grad), beyond weights
    and cache: the residual stream keeps 4 [b, s, h] tensors (embedding output, layer
    input, residual sum, normed input); the MLP adds its intermediates; SDPA attention its
    q, k, v and output; eager attention the [b, n_h, s, s] scores (matmul + mask in the
    activation dtype, their fp32 copy and fp32 softmax), an additive [b, 1, s, s] mask and
    the K/V repeated to every query head.

    Tensor parallelism (Megatron, vLLM, transformers' tp_plan) splits what is per head and
    the MLP's intermediate width over ``tp`` devices (column-parallel outputs); the residual
    stream and the masks stay whole on every device (Korthikanti et al. 2022, §4.2.1)."""
    h, bs = spec.hidden_size, batch * tokens
    stream = 4 * h
    mlp, mlp_what = _mlp_values_per_token(spec)
    mlp, mlp_what = ceil(mlp / tp), mlp_what + (f" ÷ tp {tp}" if tp > 1 else "")
    mlp_peak = bs * act * (stream + mlp)
    a = spec.attention
    if a is None:
        return mlp_peak, f"{act} B × {batch}×{tokens} tokens × (4h + {mlp_what})"
    heads, kv_heads = ceil(a.num_heads / tp), max(1, a.num_kv_heads // tp)
    per_device = f" (heads ÷ tp {tp})" if tp > 1 else ""
    if attention == "eager":
        score_bytes = act + 4 + (4 if act != 4 else 0)
        repeated = 2 * heads * a.head_dim if kv_heads < heads else 0
        attn_peak = (
            bs * act * (stream + repeated)
            + batch * heads * tokens * tokens * score_bytes
            + batch * tokens * tokens * act
        )
        attn_what = f"eager scores b·n_h·s²·{score_bytes} B + mask b·s²·{act} B{per_device}"
    else:
        attn_values = 3 * heads * a.head_dim + 2 * kv_heads * a.v_head_dim
        attn_peak = bs * act * (stream + attn_values)
        # a sliding-window layer needs an explicit [1, 1, s, s] boolean mask under SDPA
        if "sliding" in spec.attention_layers:
            attn_peak += tokens * tokens
            mlp_peak += tokens * tokens
        attn_what = f"q, k, v and output{per_device}"
    if attn_peak > mlp_peak:
        return attn_peak, f"attention peak of {batch}×{tokens} tokens: 4h stream + {attn_what}"
    return mlp_peak, f"MLP peak of {batch}×{tokens} tokens: {act} B × (4h stream + {mlp_what})"


def estimate_inference(
    spec: ModelSpec, workload: InferenceWorkload, engine: EngineSettings | None = None
) -> InferenceEstimate:
    """Peak memory per device of serving ``spec`` for ``workload`` (``engine`` holds the
    vLLM / llama.cpp knobs)."""
    if workload.engine != "transformers":
        return estimate_engine(spec, workload, engine)
    weights = weights_of(spec, workload)
    act = activation_bytes(workload.dtype)
    kv_fmt = get_format(_kv_format(spec, workload))
    # transformers 5 caches DeepSeek MLA as the compressed latent (+ rope key)
    layout = cache_layout(spec, kv_fmt, tp=workload.tp)
    b, s, ctx = workload.batch, workload.prompt_tokens, workload.context
    weight_bytes = ceil(weights.total_bytes / workload.tp)

    attention = workload.attention
    notes = list(weights.notes)
    if attention == "sdpa" and spec.family in EAGER_ONLY_FAMILIES:
        attention = "eager"
        notes.append(f"transformers runs {spec.family} with eager attention (no SDPA path)")
    prefill_transient, how_prefill = prefill_workspace(spec, b, s, act, attention, workload.tp)
    logits = b * spec.vocab_size * act  # logits_to_keep=1: the last position only
    # At the prefill peak the dynamic cache holds the whole prompt in every layer.
    prefill_cache = layout.bytes(s, b, window_tokens=s)
    # In decode the sliding layers hold the window; appending copies one layer's K/V.
    decode_cache = layout.bytes(ctx, b, window_tokens=spec.sliding_window)
    layers = max(1, spec.num_layers)
    decode_transient = ceil(decode_cache / layers) + logits
    prefill_peak = prefill_cache + prefill_transient + logits
    decode_peak = decode_cache + decode_transient
    if prefill_peak >= decode_peak:
        cache, transient, phase = prefill_cache, prefill_transient + logits, "prefill"
        how_transient = f"{how_prefill}; + logits of the last position"
    else:
        cache, transient, phase = decode_cache, decode_transient, "decode"
        how_transient = (
            "decode: the dynamic cache copies one layer's K/V to append a token; + logits"
        )
    tensor_peak = weight_bytes + cache + transient
    components = [
        MemoryComponent(
            "weights",
            weight_bytes,
            weights.how + (f" ÷ tp {workload.tp}" if workload.tp > 1 else ""),
        ),
        MemoryComponent(
            "kv_cache",
            cache,
            f"{layout.how}; {b} seq × {s if phase == 'prefill' else ctx} tokens "
            f"({layout.bytes_per_token:,} B/token)",
        ),
        MemoryComponent("activations", transient, how_transient),
        MemoryComponent(
            "cuda_context",
            workload.cuda_context_bytes,
            f"assumed CUDA context {workload.cuda_context_bytes / MIB:.0f} MiB (--cuda-context)",
        ),
        MemoryComponent(
            "allocator_reserve",
            ceil(tensor_peak * workload.allocator_reserve),
            f"assumed caching-allocator slack {float(workload.allocator_reserve):.0%} of the "
            "tensor peak (--allocator-reserve)",
        ),
    ]
    return InferenceEstimate(
        breakdown=MemoryBreakdown(tuple(components), devices=workload.tp, notes=tuple(notes)),
        weights=weights,
        cache=layout,
        tensor_peak_bytes=tensor_peak,
        peak_phase=phase,
    )


def _fits(
    spec: ModelSpec, workload: InferenceWorkload, budget: int, engine: EngineSettings | None
) -> bool:
    est = estimate_inference(spec, workload, engine)
    # an engine's own verdict counts too: llama.cpp with layers on the host does not fit
    return est.total_bytes <= budget and est.engine_facts.get("fits", True) is not False


def largest_fitting(
    spec: ModelSpec,
    workload: InferenceWorkload,
    budget_bytes: int,
    knob: Literal["context", "batch"],
    engine: EngineSettings | None = None,
    upper: int | None = None,
) -> int:
    """The largest context (at the workload's batch) or batch (at its context) whose
    estimate fits in ``budget_bytes``; 0 if even 1 does not. Memory grows with both, so
    a binary search is exact."""
    from dataclasses import replace

    limit = upper or (spec.context_length if knob == "context" else 2**16)

    def at(value: int) -> InferenceWorkload:
        if knob == "context":
            prompt = None if workload.prompt is None else min(workload.prompt, value)
            return replace(workload, context=value, prompt=prompt)
        return replace(workload, batch=value)

    if not _fits(spec, at(1), budget_bytes, engine):
        return 0
    low, high = 1, limit
    if _fits(spec, at(high), budget_bytes, engine):
        return high
    while high - low > 1:
        mid = (low + high) // 2
        if _fits(spec, at(mid), budget_bytes, engine):
            low = mid
        else:
            high = mid
    return low

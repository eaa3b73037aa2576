"""Invariants of the estimators over random catalogue models and workloads (Hypothesis).

The unit tests hold these for one model (Llama-3.1-8B) or synthetic configs; here the model
is drawn from the whole catalogue: totals are the sum of their components, memory never
falls when batch, context, LoRA rank or bits grow, a GQA cache never exceeds the same model
with one KV head per query head, and QLoRA <= LoRA <= full training.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelmem.errors import ModelMemError
from modelmem.memory.inference import InferenceWorkload, estimate_inference
from modelmem.memory.training import TrainingWorkload, estimate_training
from modelmem.memory.weights import estimate_weights
from modelmem.model.sources import resolve
from modelmem.model.sources.catalogue import load_catalogue
from modelmem.model.spec import ModelSpec

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@cache
def _spec(name: str) -> ModelSpec:
    spec = resolve(name).spec
    assert spec is not None
    return spec


def _estimable(name: str, train: bool) -> bool:
    try:
        estimate_inference(_spec(name), InferenceWorkload(context=64))
        if train:
            estimate_training(
                _spec(name), TrainingWorkload(seq=64, method="lora", recipe="pure-bf16")
            )
    except ModelMemError:
        return False
    return True


NAMES = sorted(load_catalogue())
INFERENCE_MODELS = [n for n in NAMES if _estimable(n, train=False)]
TRAINING_MODELS = [n for n in INFERENCE_MODELS if _estimable(n, train=True)]
ATTENTION_MODELS = [
    n
    for n in INFERENCE_MODELS
    if (a := _spec(n).attention) is not None and a.num_kv_heads < a.num_heads
]

ENGINES = ("transformers", "vllm", "llama.cpp")


def _engine_supports(name: str, engine: str) -> bool:
    """llama.cpp has no GGUF converter for some families (OPT, ...): refused, not estimated."""
    try:
        estimate_inference(_spec(name), InferenceWorkload(context=64, engine=engine))
    except ModelMemError:
        return False
    return True


ENGINE_PAIRS = [(n, e) for n in INFERENCE_MODELS for e in ENGINES if _engine_supports(n, e)]

batches = st.integers(1, 32)
contexts = st.integers(1, 32768)


def test_the_catalogue_is_mostly_estimable() -> None:
    # guards the strategies below against silently drawing from a near-empty list
    assert len(INFERENCE_MODELS) >= 0.8 * len(NAMES)
    assert len(TRAINING_MODELS) >= 0.6 * len(NAMES)
    assert len(ATTENTION_MODELS) >= 10


@SETTINGS
@given(pair=st.sampled_from(ENGINE_PAIRS), batch=batches, context=contexts)
def test_inference_total_is_the_sum_of_components(
    pair: tuple[str, str], batch: int, context: int
) -> None:
    name, engine = pair
    est = estimate_inference(
        _spec(name), InferenceWorkload(batch=batch, context=context, engine=engine)
    )
    parts = [c.bytes for c in est.breakdown.components]
    assert all(p >= 0 for p in parts)
    assert est.total_bytes == sum(parts)


@SETTINGS
@given(
    name=st.sampled_from(INFERENCE_MODELS),
    batch=batches,
    context=contexts,
    more=st.integers(1, 4096),
)
def test_inference_never_decreases_with_batch_or_context(
    name: str, batch: int, context: int, more: int
) -> None:
    spec = _spec(name)
    base = estimate_inference(spec, InferenceWorkload(batch=batch, context=context)).total_bytes
    wider = InferenceWorkload(batch=batch + more, context=context)
    longer = InferenceWorkload(batch=batch, context=context + more)
    assert estimate_inference(spec, wider).total_bytes >= base
    assert estimate_inference(spec, longer).total_bytes >= base


@SETTINGS
@given(name=st.sampled_from(INFERENCE_MODELS), batch=batches, context=contexts)
def test_more_bits_never_cost_less(name: str, batch: int, context: int) -> None:
    spec = _spec(name)
    weights = [estimate_weights(spec, s).total_bytes for s in ("fp8", "bf16", "fp32")]
    assert weights == sorted(weights)
    # the KV cache format alone (fp8 <= bf16 <= fp32), everything else fixed
    caches = [
        estimate_inference(
            spec, InferenceWorkload(batch=batch, context=context, kv_dtype=kv)
        ).total_bytes
        for kv in ("fp8", "bf16", "fp32")
    ]
    assert caches == sorted(caches)


@SETTINGS
@given(name=st.sampled_from(ATTENTION_MODELS), batch=batches, context=contexts)
def test_gqa_cache_never_exceeds_mha(name: str, batch: int, context: int) -> None:
    spec = _spec(name)
    assert spec.attention is not None
    mha = replace(spec, attention=replace(spec.attention, num_kv_heads=spec.attention.num_heads))
    workload = InferenceWorkload(batch=batch, context=context)
    gqa_est, mha_est = estimate_inference(spec, workload), estimate_inference(mha, workload)
    assert gqa_est.cache.bytes_per_token <= mha_est.cache.bytes_per_token
    kv = {c.name: c.bytes for c in gqa_est.breakdown.components}["kv_cache"]
    assert kv <= {c.name: c.bytes for c in mha_est.breakdown.components}["kv_cache"]


@SETTINGS
@given(
    name=st.sampled_from(TRAINING_MODELS),
    batch=st.integers(1, 8),
    seq=st.integers(1, 4096),
    rank=st.sampled_from([1, 4, 8, 16, 64, 256]),
    checkpointing=st.booleans(),
)
def test_qlora_le_lora_le_full_and_rank_never_lowers_memory(
    name: str, batch: int, seq: int, rank: int, checkpointing: bool
) -> None:
    spec = _spec(name)

    def peak(**options: object) -> int:
        workload = TrainingWorkload(
            batch=batch, seq=seq, recipe="pure-bf16", checkpointing=checkpointing, **options
        )
        est = estimate_training(spec, workload)
        assert est.breakdown.total_bytes == sum(c.bytes for c in est.breakdown.components)
        return est.breakdown.total_bytes

    full = peak()
    lora = peak(method="lora", lora_rank=rank)
    qlora = peak(method="qlora", lora_rank=rank)
    assert qlora <= lora <= full
    assert peak(method="lora", lora_rank=2 * rank) >= lora


@pytest.mark.parametrize("recipe", ["fp32", "amp-bf16", "pure-bf16"])
@SETTINGS
@given(name=st.sampled_from(TRAINING_MODELS), batch=st.integers(1, 8), seq=st.integers(1, 4096))
def test_training_never_decreases_with_batch_or_sequence(
    recipe: str, name: str, batch: int, seq: int
) -> None:
    spec = _spec(name)

    def total(b: int, s: int) -> int:
        return estimate_training(
            spec, TrainingWorkload(batch=b, seq=s, recipe=recipe)
        ).breakdown.total_bytes

    base = total(batch, seq)
    assert total(batch + 1, seq) >= base
    assert total(batch, 2 * seq) >= base

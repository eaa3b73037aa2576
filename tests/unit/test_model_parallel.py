"""Tensor, pipeline and sequence parallelism: what one device holds (Korthikanti et al.
2022, arXiv:2205.05198; Narayanan et al. 2021, arXiv:2104.04473)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from modelmem.errors import InvalidValueError
from modelmem.memory.parallel import pipeline_stages
from modelmem.memory.training import (
    TrainingWorkload,
    _layer_activation_per_token,
    estimate_training,
)
from modelmem.model.params import tensor_inventory
from modelmem.model.sources.hf_config import spec_from_config

from ..conftest import load_fixture

LLAMA8B = spec_from_config(load_fixture("meta-llama/Llama-3.1-8B"))
H, FFN, V, L = 4096, 14336, 128256, 32
# one layer's Linear weights: q, o 4096², k, v 1024·4096, gate/up/down 3·14336·4096
LAYER_LINEAR = 4096 * (4096 + 1024 + 1024 + 4096) + 3 * FFN * H  # 218,103,808
LAYER_NORMS = 2 * H


def test_tp8_pp4_stage_parameters_by_hand() -> None:
    first, last = pipeline_stages(tensor_inventory(LLAMA8B), L, tp=8, pp=4, micro_batches=8)
    # first: vocab-parallel embedding V·h/8 + 8 layers × (Linear/8 + two norms whole)
    assert sum(t.numel for t in first.tensors) == V * H // 8 + 8 * (LAYER_LINEAR // 8 + LAYER_NORMS)
    assert sum(t.numel for t in first.tensors) == 283_836_416
    # last: 8 layers + final norm + vocab-parallel head
    assert sum(t.numel for t in last.tensors) == 8 * (LAYER_LINEAR // 8 + LAYER_NORMS) + H + (
        V * H // 8
    )
    assert (first.layers, first.in_flight, first.head) == (8, 4, False)
    assert (last.layers, last.in_flight, last.head) == (8, 1, True)


def test_uneven_layers_put_the_extra_on_the_first_stage() -> None:
    first, last = pipeline_stages(tensor_inventory(LLAMA8B), L, tp=1, pp=5, micro_batches=1)
    assert (first.layers, last.layers, first.in_flight) == (7, 6, 1)  # ⌈32/5⌉, ⌊32/5⌋, min(p, m)


def per_token(**kw: object) -> Fraction:
    return _layer_activation_per_token(LLAMA8B, TrainingWorkload(recipe="pure-bf16", **kw))[0]  # type: ignore[arg-type]


def test_layer_activations_under_tensor_and_sequence_parallelism() -> None:
    # pure bf16: 16h + 8I + 4·n_h·d + 4·n_kv·d + 4·n_h + 8
    #   = 65,536 + 114,688 + 16,384 + 4,096 + 128 + 8 = 200,840 B per token
    assert per_token() == 200_840
    # tp = 8 with sequence parallelism: everything ÷ 8 (Korthikanti Eq. 4, (sbh/t)(34 + 5as/h))
    assert per_token(tp=8, sp=True) == 25_105
    # tp = 8 without: the h terms (16h + 8 = 65,544) stay whole, the rest ÷ 8 (Eq. 2 form)
    #   65,544 + (200,840 − 65,544)/8 = 65,544 + 16,912
    assert per_token(tp=8) == 82_456
    # checkpointed input 2h, ÷ t only with sequence parallelism ("2sbhL/t")
    assert per_token(tp=8, checkpointing=True) == 2 * H
    assert per_token(tp=8, sp=True, checkpointing=True) == 2 * H // 8


def test_kv_heads_replicated_when_tp_exceeds_them() -> None:
    # tp = 16 > 8 KV heads: each device keeps one KV head (4·n_kv·d / 8), the rest ÷ 16
    expected = 65_544 + Fraction(114_688 + 16_384 + 128, 16) + Fraction(4_096, 8)
    assert per_token(tp=16) == expected


def test_1f1b_first_stage_holds_all_layers_worth_of_activations() -> None:
    # Korthikanti Eq. 5: p micro-batches × L/p layers = L layers of activations, whatever p
    w = TrainingWorkload(recipe="pure-bf16", seq=4096, tp=8, sp=True, pp=4, grad_accumulation=8)
    est = estimate_training(LLAMA8B, w)
    assert est.stage == "first"
    acts = est.breakdown.get("activations").bytes
    assert acts == 4096 * L * 25_105  # 4 in flight × 8 layers × 4096 tokens × 25,105 B
    # with fewer micro-batches than stages only m are in flight
    few = estimate_training(LLAMA8B, TrainingWorkload(**{**_kw(w), "grad_accumulation": 2}))
    assert few.stage_peaks["first"] < est.stage_peaks["first"]


def _kw(w: TrainingWorkload) -> dict[str, object]:
    return {"recipe": w.recipe, "seq": w.seq, "tp": w.tp, "sp": w.sp, "pp": w.pp}


def test_total_devices_and_vocab_parallel_logits() -> None:
    w = TrainingWorkload(recipe="pure-bf16", seq=2048, tp=8, devices=4, optimizer_impl="fused")
    est = estimate_training(LLAMA8B, w)
    assert est.total_devices == est.breakdown.devices == 32
    full = estimate_training(LLAMA8B, TrainingWorkload(recipe="pure-bf16", seq=2048))
    # logits 2 + 4 + 4 B per token × V/8 at the loss (Korthikanti: 4sbv/t for the fp32 copy)
    loss_tp = est.moments["loss"] - est.moments["backward end"]
    assert est.moments["loss"] < full.moments["loss"] and loss_tp > 0
    assert all("tp=8" in c.how for c in est.breakdown.components if c.name == "weights")


def test_tp1_pp1_is_unchanged() -> None:
    a = estimate_training(LLAMA8B, TrainingWorkload(seq=512))
    b = estimate_training(LLAMA8B, TrainingWorkload(seq=512, tp=1, pp=1))
    assert a.moments == b.moments and a.stage == "all"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"tp": 3}, "tp"),  # 32 heads
        ({"tp": 64}, "tp"),  # 32 heads
        ({"pp": 33}, "pp"),  # 32 layers
    ],
)
def test_bad_model_parallel_names_the_field(kwargs: dict[str, int], field: str) -> None:
    with pytest.raises(InvalidValueError, match=field):
        estimate_training(LLAMA8B, TrainingWorkload(**kwargs))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"sp": True}, "sp"),
        ({"tp": 2, "method": "lora", "recipe": "pure-bf16"}, "tp"),
        ({"tp": 0}, "tp"),
        ({"tp": 2, "loss": "fused"}, "loss"),
        ({"tp": 2, "nodes": 3}, "nodes"),
    ],
)
def test_bad_workloads_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidValueError, match=field):
        TrainingWorkload(**kwargs)  # type: ignore[arg-type]

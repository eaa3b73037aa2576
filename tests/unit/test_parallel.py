"""ZeRO sharding and DeepSpeed's own estimators, reproduced exactly."""

from __future__ import annotations

import pytest

from modelmem.memory.parallel import (
    estimate_zero2_model_states_mem_needs,
    estimate_zero3_model_states_mem_needs,
    zero_model_states,
)
from modelmem.memory.training import TrainingWorkload, estimate_training
from modelmem.model.sources.hf_config import spec_from_config

from ..conftest import load_fixture

GIB = 2**30
# bigscience/T0_3B as in the transformers DeepSpeed docs: 2783M params, largest layer 65M
T0_PARAMS, T0_LARGEST = 2_783_959_040, 32128 * 2048


def gib(n: float) -> str:
    return f"{n / GIB:.2f}"


@pytest.mark.parametrize(
    ("kwargs", "cpu", "gpu"),
    [
        ({"cpu_offload": True, "cpu_offload_params": True}, "70.00", "0.25"),
        ({"cpu_offload": True, "cpu_offload_params": False}, "62.23", "5.43"),
        ({"cpu_offload": False, "zero_init": True}, "0.37", "46.91"),
        ({"cpu_offload": False, "zero_init": False}, "15.56", "46.91"),
    ],
)
def test_deepspeed_zero3_estimator_matches_the_docs(
    kwargs: dict[str, bool], cpu: str, gpu: str
) -> None:
    # the docs print "GB" for these GiB figures
    c, g, _ = estimate_zero3_model_states_mem_needs(T0_PARAMS, T0_LARGEST, **kwargs)
    assert (gib(c), gib(g)) == (cpu, gpu)


def test_deepspeed_zero2_estimator_llama2_7b_8_gpus() -> None:
    # 2Ψ + 18Ψ/8 per GPU without offload: 26.67 GiB; with offload 12.55 GiB GPU
    params = 6_738_415_616
    assert gib(estimate_zero2_model_states_mem_needs(params, 8, cpu_offload=False)[1]) == "26.67"
    assert gib(estimate_zero2_model_states_mem_needs(params, 8, cpu_offload=True)[1]) == "12.55"


@pytest.mark.parametrize(("stage", "per_gpu_gb"), [(0, 120.0), (1, 31.4), (2, 16.6), (3, 1.9)])
def test_zero_paper_figure_1(stage: int, per_gpu_gb: float) -> None:
    # 7.5B parameters, K = 12, N_d = 64: (2 + 2 + 12)Ψ → 120 GB, 31.4, 16.6, 1.9 GB
    psi = 7_500_000_000
    w, g, s = zero_model_states(2 * psi, 2 * psi, 12 * psi, stage, 64)
    assert round((w + g + s) / 1e9, 1) == per_gpu_gb


def test_training_estimate_shards_model_states() -> None:
    spec = spec_from_config(load_fixture("meta-llama/Llama-3.1-8B"))
    base = {"recipe": "mixed-bf16", "seq": 16, "optimizer_impl": "fused"}
    one = estimate_training(spec, TrainingWorkload(**base))  # type: ignore[arg-type]
    z3 = estimate_training(spec, TrainingWorkload(zero=3, devices=8, **base))  # type: ignore[arg-type]
    params = 8_030_261_248
    # mixed precision: 2 + 2 + 12 bytes per parameter (+ 4-byte step counters)
    assert one.moments["optimizer step"] == pytest.approx(16 * params, rel=1e-6)
    assert z3.moments["optimizer step"] == pytest.approx(16 * params / 8, rel=1e-6)

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


@pytest.mark.parametrize(
    ("kwargs", "cpu", "gpu"),
    [
        # offload params + optimizer: GPU 4·largest; CPU Ψ·18·1.5 = 27Ψ
        ({"cpu_offload": True, "cpu_offload_params": True}, 75_166_894_080, 263_192_576),
        # offload optimizer: GPU 4·largest + 2Ψ; CPU Ψ·16·1.5 = 24Ψ
        ({"cpu_offload": True, "cpu_offload_params": False}, 66_815_016_960, 5_831_110_656),
        # no offload, zero_init: GPU 4·largest + 18Ψ; CPU largest·4·1.5
        ({"cpu_offload": False, "zero_init": True}, 394_788_864, 50_374_455_296),
        # no offload, no zero_init: CPU Ψ·4·1.5 = 6Ψ
        ({"cpu_offload": False, "zero_init": False}, 16_703_754_240, 50_374_455_296),
    ],
)
def test_deepspeed_zero3_estimator_exact_integers(
    kwargs: dict[str, bool], cpu: int, gpu: int
) -> None:
    assert T0_LARGEST == 65_798_144
    c, g, largest = estimate_zero3_model_states_mem_needs(T0_PARAMS, T0_LARGEST, **kwargs)
    assert (c, g, largest) == (cpu, gpu, 4 * T0_LARGEST)


def test_deepspeed_zero2_estimator_exact_integers() -> None:
    # Llama-2-7B on 8 GPUs of one node. Offload: GPU 2Ψ; CPU Ψ·max(4·8, 16)·1.5 = 48Ψ.
    # No offload: GPU 2Ψ + int(18Ψ/8); CPU Ψ·4·8·1.5 = 48Ψ.
    psi = 6_738_415_616
    assert estimate_zero2_model_states_mem_needs(psi, 8, cpu_offload=True) == (
        323_443_949_568,
        13_476_831_232,
    )
    assert estimate_zero2_model_states_mem_needs(psi, 8, cpu_offload=False) == (
        323_443_949_568,
        13_476_831_232 + 15_161_435_136,
    )


LLAMA8B_PARAMS = 8_030_261_248
LLAMA8B_EMBED = 128_256 * 4096  # 525,336,576: the largest module (DeepSpeed's largest layer)


def test_training_estimate_reports_deepspeeds_own_figure() -> None:
    spec = spec_from_config(load_fixture("meta-llama/Llama-3.1-8B"))
    w = TrainingWorkload(
        recipe="mixed-bf16",
        zero=3,
        devices=8,
        offload_optimizer="cpu",
        offload_param="cpu",
        seq=16,
    )
    ds = estimate_training(spec, w).deepspeed_estimator
    assert ds is not None
    assert (ds["cpu_bytes"], ds["gpu_bytes"]) == estimate_zero3_model_states_mem_needs(
        LLAMA8B_PARAMS, LLAMA8B_EMBED, 8, 1, True, True, True
    )[:2]
    # 4 × 525,336,576 on the GPU; 8,030,261,248 × 18 × 1.5 on the CPU of the node
    assert (ds["gpu_bytes"], ds["cpu_bytes"]) == (2_101_346_304, 216_817_053_696)
    two = estimate_training(spec, TrainingWorkload(recipe="mixed-bf16", zero=2, devices=8, seq=16))
    assert two.deepspeed_estimator is not None
    assert two.deepspeed_estimator["gpu_bytes"] == 2 * LLAMA8B_PARAMS + 18 * LLAMA8B_PARAMS // 8
    assert estimate_training(spec, TrainingWorkload(seq=16)).deepspeed_estimator is None


def test_zero3_offload_moves_states_to_the_host_by_hand() -> None:
    spec = spec_from_config(load_fixture("meta-llama/Llama-3.1-8B"))
    from modelmem.model.params import tensor_inventory

    tensors = len(tensor_inventory(spec)) + 31 * 9  # tensors, for the 4-byte step counters
    w = TrainingWorkload(
        recipe="mixed-bf16",
        zero=3,
        devices=8,
        offload_optimizer="cpu",
        offload_param="cpu",
        seq=16,
    )
    est = estimate_training(spec, w)
    off = {o.name: o.bytes for o in est.offloaded}
    # per rank: fp32 master + m + v = 12 B/param (+ step counters), fp32 gradients 4 B,
    # 16-bit parameters 2 B — each ÷ 8 ranks: DeepSpeed's "18" per parameter
    assert off == {
        "optimizer_states": -(-(12 * LLAMA8B_PARAMS + 4 * tensors) // 8),
        "gradients": 4 * LLAMA8B_PARAMS // 8,
        "weights": 2 * LLAMA8B_PARAMS // 8,
    }
    assert est.per_node_bytes("cpu") == 8 * sum(off.values())
    assert est.per_node_bytes("nvme") == 0
    # on the device: one gathered module (the embedding) and its gradient, no states
    assert est.moments["backward end"] == 2 * LLAMA8B_EMBED + 2 * LLAMA8B_EMBED
    assert "optimizer_states" not in {c.name for c in est.breakdown.components}


def test_zero2_offload_keeps_16_bit_parameters_on_the_device() -> None:
    spec = spec_from_config(load_fixture("meta-llama/Llama-3.1-8B"))
    w = TrainingWorkload(recipe="mixed-bf16", zero=2, devices=4, offload_optimizer="nvme", seq=16)
    est = estimate_training(spec, w)
    # DeepSpeed's ZeRO-2 offload GPU figure is 2Ψ; here 2Ψ + one module's gradient
    assert est.moments["optimizer step"] == 2 * LLAMA8B_PARAMS + 2 * LLAMA8B_EMBED
    assert est.off_device_bytes("nvme") > 0 == est.off_device_bytes("cpu")
    assert est.deepspeed_estimator is None  # its estimators know no NVMe


def test_fsdp_cpu_offload_puts_params_grads_and_states_on_the_cpu() -> None:
    spec = spec_from_config(load_fixture("meta-llama/Llama-3.1-8B"))
    w = TrainingWorkload(
        recipe="pure-bf16",
        zero=3,
        fsdp=True,
        devices=8,
        offload_optimizer="cpu",
        offload_param="cpu",
        seq=16,
    )
    est = estimate_training(spec, w)
    off = {o.name: o.bytes for o in est.offloaded}
    # FSDP keeps gradients in the parameter dtype (2 B), not DeepSpeed's fp32 copy
    assert off["gradients"] == off["weights"] == 2 * LLAMA8B_PARAMS // 8
    assert est.deepspeed_estimator is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"offload_optimizer": "cpu"}, "offload_optimizer"),  # no ZeRO
        ({"offload_param": "cpu", "zero": 2}, "offload_param"),
        ({"offload_optimizer": "disk", "zero": 2}, "offload_optimizer"),
        (
            {"offload_optimizer": "nvme", "offload_param": "nvme", "zero": 3, "fsdp": True},
            "offload_param",
        ),
        ({"offload_optimizer": "cpu", "zero": 2, "tp": 2}, "offload_optimizer"),
    ],
)
def test_bad_offload_names_the_field(kwargs: dict[str, object], field: str) -> None:
    from modelmem.errors import InvalidValueError

    with pytest.raises(InvalidValueError, match=field):
        TrainingWorkload(**kwargs)  # type: ignore[arg-type]

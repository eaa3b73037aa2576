"""Fit verdicts: per-device memory, the safety reserve, margins, the dominant component."""

from __future__ import annotations

from fractions import Fraction

import pytest

from modelmem.errors import InvalidValueError
from modelmem.hardware.catalogue import get_device
from modelmem.hardware.fit import check_fit, fit_budget, fit_bytes
from modelmem.memory.breakdown import MemoryBreakdown, MemoryComponent
from modelmem.memory.inference import InferenceWorkload, estimate_inference
from modelmem.memory.training import TrainingWorkload, estimate_training
from modelmem.model.sources import resolve
from modelmem.model.spec import ModelSpec

GIB = 2**30


def _spec(name: str) -> ModelSpec:
    spec = resolve(name).spec
    assert spec is not None
    return spec


def _breakdown(*parts: tuple[str, int], devices: int = 1) -> MemoryBreakdown:
    return MemoryBreakdown(tuple(MemoryComponent(n, b, "test") for n, b in parts), devices=devices)


def test_budget_keeps_the_stated_reserve() -> None:
    # 100 GiB less 5 % rounded up: 107,374,182,400 − 5,368,709,120
    assert fit_budget(100 * GIB) == 102_005_473_280
    assert fit_budget(100 * GIB, Fraction(0)) == 100 * GIB


def test_margin_bytes_percent_and_dominant() -> None:
    b = _breakdown(("weights", 60 * GIB), ("kv_cache", 10 * GIB))
    v = fit_bytes(b, 80 * GIB, device="X", reserve=Fraction(0))
    assert v.fits and v.margin_bytes == 10 * GIB
    assert v.margin_percent == pytest.approx(12.5)
    assert v.dominant.name == "weights"
    tight = fit_bytes(b, 72 * GIB, device="X", reserve=Fraction(1, 20))
    # budget 72 GiB − ceil(3.6 GiB) = 68.4 GiB < 70 GiB
    assert not tight.fits and tight.margin_bytes == 72 * GIB - (-(-72 * GIB // 20)) - 70 * GIB
    assert tight.to_dict()["fits"] is False and tight.to_dict()["reserve"] == 0.05


def test_exactly_at_the_budget_fits_one_byte_more_does_not() -> None:
    budget = fit_budget(80 * GIB)
    assert fit_bytes(_breakdown(("w", budget)), 80 * GIB, device="X").fits
    assert not fit_bytes(_breakdown(("w", budget + 1)), 80 * GIB, device="X").fits


def test_count_must_match_the_estimate() -> None:
    b = _breakdown(("weights", GIB), devices=1)
    with pytest.raises(InvalidValueError) as info:
        fit_bytes(b, 80 * GIB, device="X", count=8)
    assert info.value.field == "count"
    for bad in (0, -1, True):
        with pytest.raises(InvalidValueError):
            fit_bytes(b, 80 * GIB, device="X", count=bad)
    with pytest.raises(InvalidValueError):
        fit_bytes(b, 80 * GIB, device="X", reserve=Fraction(1))


def test_catalogue_device_uses_the_driver_figure() -> None:
    h100 = get_device("h100")
    b = _breakdown(("weights", 80 * GIB))
    v = check_fit(b, h100)
    assert v.device_bytes == 81559 * 2**20  # not 80 GiB
    assert not v.fits  # 80 GiB of weights never fit an "80 GB" GPU
    rtx = get_device("rtx4090")
    assert any("no source" in n for n in check_fit(b, rtx).notes)


def test_llama_8b_inference_fits_h100_not_rtx3060() -> None:
    spec = _spec("llama-3.1-8b")
    est = estimate_inference(spec, InferenceWorkload(context=8192)).breakdown
    assert check_fit(est, get_device("h100")).fits
    small = check_fit(est, get_device("rtx3060"))
    assert not small.fits and small.dominant.name == "weights" and small.margin_bytes < 0


def test_tensor_parallel_fit_is_per_device_not_a_sum() -> None:
    spec = _spec("llama-3.1-70b")
    one = estimate_inference(spec, InferenceWorkload(context=8192)).breakdown
    four = estimate_inference(spec, InferenceWorkload(context=8192, tp=4)).breakdown
    h100 = get_device("h100")
    assert not check_fit(one, h100).fits
    # 4 × 80 GB hold 320 GB, more than the 1-device peak, but each device holds its share
    assert one.total_bytes < 4 * h100.budget_bytes
    v4 = check_fit(four, h100, count=4)
    assert v4.fits and v4.total_bytes < one.total_bytes
    with pytest.raises(InvalidValueError):
        check_fit(one, h100, count=4)  # a 1-device estimate is not spread over 4 by summing


def test_zero3_over_8_devices_fits_where_1_does_not() -> None:
    spec = _spec("llama-3.1-8b")
    base = dict(batch=1, seq=2048, checkpointing=True, recipe="mixed-bf16")
    one = estimate_training(spec, TrainingWorkload(**base)).breakdown  # type: ignore[arg-type]
    eight = estimate_training(
        spec,
        TrainingWorkload(**base, zero=3, devices=8),  # type: ignore[arg-type]
    ).breakdown
    h100 = get_device("h100")
    assert not check_fit(one, h100).fits  # 16 B/param × 8.03 B params = 128 GB
    v = check_fit(eight, h100, count=8)
    assert v.fits
    assert eight.get("weights").bytes * 8 >= one.get("weights").bytes  # sharded, not copied
    assert eight.get("optimizer_states").bytes < one.get("optimizer_states").bytes // 7

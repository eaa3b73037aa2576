"""The planner: its top configuration is re-checked with the estimators directly; it must
fit, and one step larger must not."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from fractions import Fraction

import pytest

from modelmem.errors import InvalidValueError, UnknownNameError
from modelmem.hardware.catalogue import all_devices, get_device
from modelmem.hardware.fit import fit_budget
from modelmem.memory.inference import InferenceWorkload, estimate_inference
from modelmem.memory.training import TrainingWorkload, estimate_training
from modelmem.model.params import count_params
from modelmem.model.sources import ResolvedModel, resolve
from modelmem.model.sources.catalogue import load_catalogue, spec_from_entry
from modelmem.model.spec import ModelSpec
from modelmem.planner import (
    Config,
    Planner,
    PlanRequest,
    _Curve,
    largest_model,
    plan,
    plan_devices,
    workload,
)


def _spec(name: str) -> ModelSpec:
    spec = resolve(name).spec
    assert spec is not None
    return spec


def _req(
    spec: ModelSpec,
    goal: str = "inference",
    *,
    objective: str | None = None,
    max_devices: int = 1,
    top: int = 5,
    offload: bool = True,
    length: int | None = None,
    **options: object,
) -> PlanRequest:
    """A plan request as the application layer builds it from these options (the ones
    given are fixed, the rest searched)."""
    from modelmem.app.fitting import build_workload_request
    from modelmem.app.planning import plan_request_for

    model = ResolvedModel(
        label=spec.name, kind="config", spec=spec, params=count_params(spec), origin="test"
    )
    if length is not None:
        options["context" if goal == "inference" else "seq"] = length
    kind = "inference" if goal == "inference" else "train"
    request = build_workload_request(kind, options, frozenset(options), None)
    return plan_request_for(
        model,
        request,
        goal,
        max_devices=max_devices,
        reserve=Fraction(5, 100),
        objective=objective,
        top=top,
        offload=offload,
    )


def _peak(spec: ModelSpec, config: Config, request: PlanRequest) -> int:
    """The estimator itself, not the planner's memo."""
    w = workload(config, request)
    if isinstance(w, InferenceWorkload):
        return estimate_inference(spec, w, request.settings).total_bytes
    assert isinstance(w, TrainingWorkload)
    return estimate_training(spec, w).breakdown.total_bytes


def test_inference_largest_context_fits_and_one_more_token_does_not() -> None:
    spec = _spec("llama-3.1-8b")
    device = get_device("rtx4090")
    request = _req(spec, goal="inference", objective="context")
    best = plan(spec, device, request).best
    assert best is not None
    budget = fit_budget(device.budget_bytes)
    c = best.config
    assert c.length < spec.context_length
    assert _peak(spec, c, request) <= budget
    assert _peak(spec, replace(c, length=c.length + 1), request) > budget
    # and the same for the next larger weight format at that context
    wider = replace(c, dtype="bf16", kv_dtype="bf16")
    assert _peak(spec, wider, request) > budget


def test_inference_largest_batch_fits_and_batch_plus_one_does_not() -> None:
    spec = _spec("qwen2.5-7b")
    device = get_device("l40s")
    request = _req(spec, goal="inference", objective="batch", length=4096, dtype="bf16")
    best = plan(spec, device, request).best
    assert best is not None and best.config.dtype == "bf16"
    budget = fit_budget(device.budget_bytes)
    assert _peak(spec, best.config, request) <= budget
    assert _peak(spec, replace(best.config, batch=best.config.batch + 1), request) > budget


@pytest.mark.parametrize("goal", ["train", "lora", "qlora"])
def test_training_goals_largest_batch_is_exact(goal: str) -> None:
    spec = _spec("llama-3.2-1b")
    device = get_device("rtx3090")
    request = _req(spec, goal=goal, objective="batch", length=1024)
    result = plan(spec, device, request)
    best = result.best
    assert best is not None
    budget = fit_budget(device.budget_bytes)
    assert _peak(spec, best.config, request) <= budget
    assert _peak(spec, replace(best.config, batch=best.config.batch + 1), request) > budget
    assert best.verdict.fits and best.verdict.breakdown.total_bytes == _peak(
        spec, best.config, request
    )
    if goal != "train":
        assert best.config.lora_rank == 64  # ties on batch go to the higher rank


def test_qlora_plan_beats_lora_on_batch() -> None:
    spec = _spec("llama-3.1-8b")
    device = get_device("a100-40gb")
    lora = plan(spec, device, _req(spec, goal="lora", checkpointing=True)).best
    qlora = plan(spec, device, _req(spec, goal="qlora", checkpointing=True)).best
    assert lora is not None and qlora is not None
    assert qlora.config.batch >= lora.config.batch


def test_fewest_devices_and_one_fewer_does_not_fit() -> None:
    spec = _spec("llama-3.1-70b")
    device = get_device("h100")
    request = _req(
        spec, goal="inference", objective="devices", max_devices=8, dtype="bf16", length=8192
    )
    best = plan(spec, device, request).best
    assert best is not None and best.config.devices == 2
    budget = fit_budget(device.budget_bytes)
    assert _peak(spec, best.config, request) <= budget
    assert _peak(spec, replace(best.config, devices=1), request) > budget


def test_offloading_fits_full_training_on_one_device() -> None:
    spec = _spec("llama-3.1-8b")
    device = get_device("h100")
    request = _req(spec, goal="train", objective="devices", max_devices=8, optimizer="adamw")
    best = plan(spec, device, request).best
    assert best is not None and best.config.devices == 1 and best.config.offload != "none"
    budget = fit_budget(device.budget_bytes)
    assert _peak(spec, best.config, request) <= budget
    # the same device without offload does not hold AdamW's fp32 states for 8B
    kept = replace(best.config, zero=0, offload="none")
    assert _peak(spec, kept, request) > budget


def test_full_training_needs_zero_sharding_on_many_devices() -> None:
    spec = _spec("llama-3.1-8b")
    device = get_device("h100")
    request = _req(
        spec, goal="train", objective="devices", max_devices=8, optimizer="adamw", offload=False
    )
    result = plan(spec, device, request)
    best = result.best
    assert best is not None and best.config.devices > 1 and best.config.zero >= 1
    budget = fit_budget(device.budget_bytes)
    assert _peak(spec, best.config, request) <= budget
    fewer = replace(best.config, devices=best.config.devices // 2)
    if fewer.devices == 1:
        fewer = replace(fewer, zero=0)
    for ckpt in (False, True):
        assert _peak(spec, replace(fewer, checkpointing=ckpt), request) > budget


def test_quality_objective_prefers_the_widest_format_that_fits() -> None:
    spec = _spec("llama-3.1-8b")
    request = _req(spec, goal="inference", objective="quality", length=4096)
    big = plan(spec, get_device("h100"), request).best
    assert big is not None and big.config.dtype == "bf16" and big.config.kv_dtype == "bf16"
    small = plan(spec, get_device("rtx4060ti-16gb"), request).best
    assert small is not None and small.config.dtype != "bf16"
    budget = fit_budget(get_device("rtx4060ti-16gb").budget_bytes)
    assert _peak(spec, replace(small.config, dtype="bf16"), request) > budget


def test_fp8_is_not_searched_on_devices_without_fp8() -> None:
    spec = _spec("llama-3.1-8b")
    result = plan(spec, get_device("a100"), _req(spec, top=50))
    assert result.options
    assert all(o.config.dtype != "fp8" and o.config.kv_dtype != "fp8" for o in result.options)
    assert any("fp8" in n for n in result.notes)


def test_nothing_fits_is_an_empty_plan_with_a_note() -> None:
    spec = _spec("llama-3.1-405b")
    result = plan(spec, get_device("rtx3060"), _req(spec))
    assert result.options == () and result.best is None
    assert "nothing searched fits" in result.notes[-1]


def test_plan_over_the_whole_device_catalogue_shares_estimates() -> None:
    spec = _spec("llama-3.1-8b")
    plans = plan_devices(spec, all_devices(), _req(spec))
    assert len(plans) == len(all_devices())
    for p in plans:
        if p.best is not None:
            assert p.best.verdict.fits


def test_largest_catalogue_model_on_a_device() -> None:
    models = []
    for entry in load_catalogue().values():
        spec = spec_from_entry(entry)
        models.append((entry.name, spec, count_params(spec).total))
    found = largest_model(models, get_device("rtx4090"), lambda _, spec: _req(spec))
    assert found is not None
    name, result = found
    assert result.best is not None and result.best.verdict.fits
    fitted = {n: p for n, _, p in models}[name]
    # no larger catalogue model fits at all, in any searched format
    for _, spec, params in models:
        if params > fitted:
            with contextlib.suppress(InvalidValueError, UnknownNameError):
                quality = _req(spec, objective="quality")
                assert Planner(spec).plan(get_device("rtx4090"), quality).best is None


def test_curve_search_is_exact_on_a_kinked_function() -> None:
    def f(x: int) -> int:
        return 10 * x if x < 500 else 5000 + 37 * (x - 500) + (x * x) // 1000

    curve = _Curve(f)
    for budget in (0, 9, 10, 4999, 5000, 20_000, 10**9):
        best = curve.largest(budget, 2000)
        brute = max((x for x in range(1, 2001) if f(x) <= budget), default=0)
        assert best == brute, budget
    assert len(curve.points) < 200  # far fewer than the 2000 values


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("goal", {"goal": "pretrain"}),
        ("objective", {"objective": "speed"}),
        ("count", {"max_devices": 0}),
        ("batch", {"batch": 0}),
        ("zero", {"goal": "train", "zero": 4}),
    ],
)
def test_bad_requests_name_the_field(field: str, kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidValueError) as info:
        _req(_spec("llama-3.2-1b"), **kwargs)  # type: ignore[arg-type]
    assert info.value.field == field

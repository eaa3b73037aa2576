"""The application layer's entry points: every door (the command line, the web API, the
Python API) calls these with a SOURCE and options by name, and gets the JSON document
that `modelmem <command> --json` prints.

``given`` names the options the user set (the rest are defaults): a planner searches only
what was not given, and an option that does not apply is refused only when it was given.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from modelmem.app.models import adapter_json, checkpoint_json, resolve_model
from modelmem.app.requests import (
    DeviceRequest,
    InferenceRequest,
    PlanRequestOptions,
    Request,
    TrainRequest,
)
from modelmem.errors import InvalidValueError

__all__ = [
    "Component",
    "Result",
    "fit_data",
    "inference_data",
    "measure_data",
    "params_data",
    "plan_data",
    "train_data",
]


def _given(options: Mapping[str, Any], given: frozenset[str] | None) -> frozenset[str]:
    return frozenset(options) if given is None else given


def inference_data(
    source: Any, options: Mapping[str, Any] | None = None, given: frozenset[str] | None = None
) -> dict[str, Any]:
    from modelmem.app.inference import inference_json, prepare_inference

    options = dict(options or {})
    request = InferenceRequest.from_options(options, _given(options, given))
    return inference_json(prepare_inference(resolve_model(source), request))


def train_data(
    source: Any, options: Mapping[str, Any] | None = None, given: frozenset[str] | None = None
) -> dict[str, Any]:
    from modelmem.app.training import prepare_training, train_json

    options = dict(options or {})
    request = TrainRequest.from_options(options, _given(options, given))
    return train_json(prepare_training(resolve_model(source), request))


def _device(device: str, count: int, reserve: float) -> DeviceRequest:
    return DeviceRequest(device=device, count=count, reserve=reserve)


def fit_data(
    source: Any,
    options: Mapping[str, Any] | None = None,
    given: frozenset[str] | None = None,
    *,
    device: str,
    count: int = 1,
    reserve: float = 0.05,
    mode: str | None = None,
) -> dict[str, Any]:
    """`fit SOURCE --device D --json`: the `inference`/`train` estimate of the same
    options, with the verdict on COUNT × DEVICE."""
    from modelmem.app.fitting import build_workload_request, fit_json, mode_of

    options = dict(options or {})
    chosen = _given(options, given)
    target = _device(device, count, reserve)
    kind = mode_of(mode, options, chosen)
    request = build_workload_request(kind, options, chosen, count)
    return fit_json(resolve_model(source), request, target)


def fit_catalogue(
    options: Mapping[str, Any],
    given: frozenset[str],
    *,
    device: str,
    count: int = 1,
    reserve: float = 0.05,
    mode: str | None = None,
) -> list[dict[str, Any]]:
    """`fit --device D` without SOURCE: every catalogue model against the device."""
    from modelmem.app.fitting import build_workload_request, fit_json, mode_of
    from modelmem.errors import ModelMemError
    from modelmem.model.sources.catalogue import load_catalogue

    rows: list[dict[str, Any]] = []
    target = _device(device, count, reserve)
    kind = mode_of(mode, options, given)
    request = build_workload_request(kind, options, given, count)
    for entry in load_catalogue().values():
        try:
            row = fit_json(resolve_model(entry.name), request, target)
        except ModelMemError as e:  # the estimator cannot describe this model for the goal
            rows.append({"source": entry.name, "fits": None, "error": str(e)})
            continue
        row["total_params"] = entry.params_transformers
        rows.append(row)
    return rows


def _plan_options(goal: str, objective: str | None, top: int, no_offload: bool) -> Any:
    return PlanRequestOptions(goal=goal, objective=objective, top=top, no_offload=no_offload)


def _planned(model: Any, request: Any, plan_options: Any, count: int, reserve: float) -> Any:
    """The planner's request for ``model``: the workload of the options, the open knobs."""
    from fractions import Fraction

    from modelmem.app.planning import plan_request_for

    return plan_request_for(
        model,
        request,
        plan_options.goal,
        max_devices=count,
        reserve=Fraction(reserve).limit_denominator(10_000),
        objective=plan_options.objective,
        top=plan_options.top,
        offload=not plan_options.no_offload,
    )


def plan_data(
    source: Any,
    options: Mapping[str, Any] | None = None,
    given: frozenset[str] | None = None,
    *,
    device: str,
    count: int = 1,
    reserve: float = 0.05,
    goal: str = "inference",
    objective: str | None = None,
    top: int = 5,
    no_offload: bool = False,
) -> dict[str, Any]:
    """`plan SOURCE --device D --json` for one device."""
    from modelmem.app.devices import Target
    from modelmem.app.fitting import build_workload_request
    from modelmem.app.planning import plan_json

    options = dict(options or {})
    plan_options = _plan_options(goal, objective, top, no_offload)
    target = Target(_device(device, count, reserve).device, count)
    request = build_workload_request(_goal_kind(goal), options, _given(options, given), None)
    model = resolve_model(source)
    return plan_json(model, _planned(model, request, plan_options, count, reserve), target)


def _goal_kind(goal: str) -> str:
    return "inference" if goal == "inference" else "train"


def plan_all_devices(
    source: Any,
    options: Mapping[str, Any],
    given: frozenset[str],
    *,
    count: int = 1,
    reserve: float = 0.05,
    goal: str = "inference",
    objective: str | None = None,
    top: int = 5,
    no_offload: bool = False,
) -> dict[str, Any]:
    """`plan SOURCE --device all`: the best configuration on every catalogue device."""
    from modelmem.app.fitting import build_workload_request
    from modelmem.hardware.catalogue import all_devices
    from modelmem.planner import plan_devices

    plan_options = _plan_options(goal, objective, top, no_offload)
    _device("all", count, reserve)  # validates count and reserve
    request = build_workload_request(_goal_kind(goal), options, given, None)
    model = resolve_model(source)
    plan_req = _planned(model, request, plan_options, count, reserve)
    plans = plan_devices(model.spec, all_devices(), plan_req, model.label)
    rows = [
        {
            "device": p.device,
            "fits": bool(p.options),
            "best": p.best.to_dict() if p.best else None,
            "notes": list(p.notes),
        }
        for p in plans
    ]
    return {
        "model": model.label,
        "goal": goal,
        "objective": plan_req.chosen_objective,
        "max_devices": count,
        "devices": rows,
    }


def plan_largest(
    options: Mapping[str, Any],
    given: frozenset[str],
    *,
    device: str,
    count: int = 1,
    reserve: float = 0.05,
    goal: str = "inference",
    objective: str | None = None,
    top: int = 5,
    no_offload: bool = False,
) -> dict[str, Any]:
    """`plan --device D` without SOURCE: the largest catalogue model that fits."""
    from modelmem.app.devices import Target
    from modelmem.app.fitting import build_workload_request
    from modelmem.model.params import count_params
    from modelmem.model.sources.catalogue import load_catalogue, spec_from_entry
    from modelmem.planner import largest_model

    plan_options = _plan_options(goal, objective, top, no_offload)
    target_req = _device(device, count, reserve)
    target = Target(target_req.device, count)
    request = build_workload_request(_goal_kind(goal), options, given, None)
    entries = load_catalogue()
    models = []
    for entry in entries.values():
        spec = spec_from_entry(entry)
        models.append((entry.name, spec, count_params(spec).total))

    def request_for(label: str, spec: Any) -> Any:
        return _planned(resolve_model(label), request, plan_options, count, reserve)

    found = largest_model(models, target.accelerator, request_for, target.device_bytes, target.name)
    return {
        "device": target.name,
        "count": count,
        "goal": goal,
        "largest_model": found[0] if found else None,
        "plan": found[1].to_dict() if found else None,
        "notes": target.notes,
    }


def measure_data(
    source: Any,
    options: Mapping[str, Any] | None = None,
    given: frozenset[str] | None = None,
    *,
    mode: str | None = None,
    steps: int = 2,
    decode_steps: int | None = None,
    whole: bool = False,
    real: bool = False,
) -> dict[str, Any]:
    """`measure SOURCE --json`: the same options as `train`/`inference`, measured."""
    from modelmem.app.fitting import build_workload_request
    from modelmem.app.measuring import measure_json

    options = dict(options or {})
    chosen = _given(options, given)
    # measure's default is a training step; an option only inference has implies inference
    shared = {s.name for s in Request.specs()}
    inference_only = {s.name for s in InferenceRequest.specs()} - shared
    kind = mode or ("inference" if chosen & inference_only else "train")
    request = build_workload_request(kind, options, chosen, None)
    return measure_json(
        resolve_model(source),
        request,
        steps=steps,
        decode_steps=decode_steps,
        whole=whole,
        real=real,
    )


def params_data(
    source: Any,
    *,
    dtype: str | None = None,
    optimizer: str = "adamw",
    train_factor: float | None = None,
) -> dict[str, Any]:
    """`params SOURCE --json`: the parameter count and the rule of thumb."""
    from modelmem.app.formats import weights_scheme
    from modelmem.formats import get_format
    from modelmem.memory.rules import MIXED_PRECISION_ADAMW_BYTES_PER_PARAM, rule_of_thumb

    model = resolve_model(source, architecture=False)
    notes: list[str] = []
    scheme = None
    if dtype is not None:
        resolved = weights_scheme(dtype)
        scheme = resolved.name
        if resolved.note:
            notes.append(resolved.note)
    fmt = get_format(_element_of(scheme) if scheme else "bf16")
    rule = rule_of_thumb(model.params.total, fmt, optimizer, train_factor)
    p = model.params
    data: dict[str, Any] = {
        "source": model.label,
        "kind": model.kind,
        "origin": model.origin,
        "family": model.spec.family if model.spec else None,
        "total_params": p.total,
        "active_params": p.active,
        "text_params": p.text,
        "components": [{"name": n, "params": c} for n, c in p.components],
        "context_length": model.context_length,
        "tokenizer": model.tokenizer,
        "weights_format": rule.format.name,
        "weights_bytes": rule.inference_bytes,
        "rule_of_thumb": rule.to_dict(),
        # the training budget of the usual recipe, beside the rule (which keeps the states in
        # the weights' format: 8 B/parameter for bf16 is no AdamW training budget)
        "mixed_precision_training_bytes": MIXED_PRECISION_ADAMW_BYTES_PER_PARAM * p.total,
        "notes": [*model.notes, *notes],
    }
    if scheme is not None and model.spec is not None:
        from modelmem.memory.weights import estimate_weights

        exact = estimate_weights(model.spec, scheme)
        data["weights_scheme"] = scheme
        data["weights_bytes"] = exact.total_bytes
    if model.checkpoint is not None and dtype is None:
        data["checkpoint"] = checkpoint_json(model.checkpoint)
        data["weights_format"] = "checkpoint"
        data["weights_bytes"] = model.checkpoint.total_bytes
    if model.adapter is not None and model.spec is not None:
        data["adapter"] = adapter_json(model)
    return data


def _element_of(scheme: str) -> str:
    """The element format whose bits per value the rule of thumb multiplies by."""
    from modelmem.memory.weights import scheme_element

    return scheme_element(scheme)


# ------------------------------------------------------------------------------ Python API


@dataclass(frozen=True, slots=True)
class Component:
    name: str
    bytes: int
    how: str


class Result(Mapping[str, Any]):
    """A command's answer: its ``--json`` document, with the common fields as attributes."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = dict(data)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        total = self._data.get("total_bytes")
        return f"Result(total_bytes={total!r}, keys={sorted(self._data)[:6]}...)"

    @property
    def total_bytes(self) -> int | None:
        return self._data.get("total_bytes")

    @property
    def components(self) -> tuple[Component, ...]:
        return tuple(
            Component(c["name"], c.get("bytes", c.get("params", 0)), c.get("how", ""))
            for c in self._data.get("components", ())
        )

    @property
    def fits(self) -> bool | None:
        return self._data.get("fits")

    @property
    def notes(self) -> tuple[str, ...]:
        return tuple(self._data.get("notes", ()))

    def to_dict(self) -> dict[str, Any]:
        import copy

        return copy.deepcopy(self._data)


def _refuse_source_kwargs(options: Mapping[str, Any]) -> None:
    if "source" in options:
        raise InvalidValueError("source", options["source"], "give it as the first argument")

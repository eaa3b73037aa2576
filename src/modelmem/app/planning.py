"""`plan`: a workload request plus devices, with the knobs the user left open searched.

The planner starts from the very workload `inference`/`train` would evaluate for the given
options (:func:`prepare_inference`, :func:`prepare_training`) and varies only the knobs the
user did not set, so a plan whose knobs are all given evaluates exactly that workload.
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from typing import Any

from modelmem.app.devices import Target
from modelmem.app.inference import prepare_inference
from modelmem.app.requests import InferenceRequest, TrainRequest
from modelmem.app.training import prepare_training
from modelmem.errors import InvalidValueError, UnknownNameError
from modelmem.vocabulary import GOALS

__all__ = ["fixed_knobs", "plan_json", "plan_request_for", "workload_for_goal"]

# plan knob -> the request options that fix it
_KNOBS: dict[str, tuple[str, ...]] = {
    "dtype": ("dtype",),
    "kv_dtype": ("kv_dtype",),
    "tp": ("tp",),
    "recipe": ("recipe",),
    "optimizer": ("optimizer",),
    "checkpointing": ("checkpointing", "selective_checkpointing"),
    "zero": ("zero", "fsdp", "deepspeed"),
    "offload": ("offload_optimizer", "offload_param", "fsdp_offload"),
    "lora_rank": ("lora_rank",),
    "devices": ("devices",),
}


def fixed_knobs(given: frozenset[str]) -> frozenset[str]:
    return frozenset(k for k, names in _KNOBS.items() if any(n in given for n in names))


def workload_for_goal(
    goal: str, request: InferenceRequest | TrainRequest
) -> InferenceRequest | TrainRequest:
    """The request a goal asks: inference for ``inference``, train with the goal's method."""
    if goal == "inference":
        return request
    assert isinstance(request, TrainRequest)
    method = "full" if goal == "train" else goal
    if request.is_given("method") and request.method != method:
        raise InvalidValueError("method", request.method, f"differs from --goal {goal}")
    return replace(request, method=method)


def plan_request_for(
    model: Any,
    request: InferenceRequest | TrainRequest,
    goal: str,
    *,
    max_devices: int,
    reserve: Fraction,
    objective: str | None,
    top: int,
    offload: bool,
) -> Any:
    """The planner's request for ``model``: the base workload and the knobs left open."""
    from modelmem.planner import PlanRequest

    if goal not in GOALS:
        raise UnknownNameError("goal", goal, GOALS)
    request = workload_for_goal(goal, request)
    if isinstance(request, InferenceRequest):
        prepared = prepare_inference(model, request)
        base, settings = prepared.workload, prepared.settings
    else:
        base, settings = prepare_training(model, request).workload, None
    return PlanRequest(
        goal=goal,
        base=base,
        settings=settings,
        fixed=fixed_knobs(request.given),
        objective=objective,
        max_devices=max_devices,
        offload=offload,
        reserve=reserve,
        top=top,
    )


def plan_json(model: Any, plan_req: Any, target: Target) -> dict[str, Any]:
    """What `plan SOURCE --device D --json` prints for one device."""
    from modelmem.planner import Planner

    result = Planner(model.spec, model.label).plan(
        target.accelerator, plan_req, target.device_bytes, target.name
    )
    data = {**result.to_dict(), "notes": [*target.notes, *result.notes]}
    if result.best is not None:  # the best configuration's figures, as every result has
        data["total_bytes"] = result.best.verdict.total_bytes
        data["components"] = result.best.to_dict()["breakdown"]["components"]
    return data

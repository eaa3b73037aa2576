"""`fit`: a workload request plus devices. The workload is exactly the one `inference` or
`train` evaluates for the same options; the devices add the budget and the verdict."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from fractions import Fraction
from typing import Any

from modelmem.app.devices import Target
from modelmem.app.inference import (
    engine_verdict,
    inference_changes,
    inference_json,
    prepare_inference,
)
from modelmem.app.requests import (
    DeviceRequest,
    InferenceRequest,
    TrainRequest,
)
from modelmem.app.training import prepare_training, train_json, training_changes
from modelmem.errors import InvalidValueError

__all__ = ["build_workload_request", "fit_json", "mode_of"]


def mode_of(mode: str | None, options: Mapping[str, Any], given: frozenset[str]) -> str:
    """inference or train: the mode asked, else train when a training-only option is given."""
    if mode is not None:
        return mode
    inference = {s.name for s in InferenceRequest.specs()}
    return "train" if any(n not in inference for n in given if n in options) else "inference"


def build_workload_request(
    kind: str, options: Mapping[str, Any], given: frozenset[str], count: int | None
) -> InferenceRequest | TrainRequest:
    """The inference or train request of a `fit`/`plan` command line: its own options; an
    option of the other kind that the user set is refused, not ignored. ``count`` devices
    become the tensor-parallel degree (inference) or the data-parallel ranks (training)
    unless those are given, and must agree with them when they are; None (a plan) leaves
    them to the search."""
    cls = InferenceRequest if kind == "inference" else TrainRequest
    own = {s.name for s in cls.specs()}
    for name in sorted(given):
        if name in options and name not in own:
            other = "training" if kind == "inference" else "inference"
            raise InvalidValueError(
                name, options[name], f"is a {other} option; this is a {kind} question"
            )
    chosen = {k: v for k, v in options.items() if k in own}
    request: InferenceRequest | TrainRequest = cls.from_options(
        chosen, given=frozenset(n for n in given if n in own)
    )
    if count is None:  # a plan: the devices are searched up to its --count
        return request
    if isinstance(request, InferenceRequest):
        return _inference_devices(request, count)
    return _training_devices(request, count)


def _inference_devices(request: InferenceRequest, count: int) -> InferenceRequest:
    if not request.is_given("tp"):
        return replace(request, tp=count) if count > 1 else request
    if request.tp != count:
        raise InvalidValueError(
            "tp", request.tp, f"differs from --count {count}: tensor parallelism uses them all"
        )
    return request


def _training_devices(request: TrainRequest, count: int) -> TrainRequest:
    per_replica = request.tp * request.pp
    if not request.is_given("devices"):
        if count % per_replica:
            raise InvalidValueError(
                "count", count, f"must be a multiple of tp × pp = {per_replica}"
            )
        dp = count // per_replica
        return replace(request, devices=dp) if dp != request.devices else request
    if request.devices * per_replica != count:
        raise InvalidValueError(
            "count",
            count,
            f"differs from devices {request.devices} × tp {request.tp} × pp {request.pp}",
        )
    return request


def fit_json(
    model: Any, request: InferenceRequest | TrainRequest, device: DeviceRequest
) -> dict[str, Any]:
    """What `fit SOURCE --json` prints: the estimate, and the verdict on the devices."""
    if request.memory is not None:
        raise InvalidValueError("memory", request.memory, "fit takes the memory of --device")
    target = Target(device.device, device.count)
    reserve = Fraction(device.reserve).limit_denominator(10_000)
    from modelmem.hardware.fit import fit_budget

    budget = fit_budget(target.memory_bytes, reserve)
    if isinstance(request, InferenceRequest):
        prepared: Any = prepare_inference(model, request, device.count)
        data = inference_json(prepared, budget_bytes=budget)
        mode = "inference"
    else:
        prepared = prepare_training(model, request)
        data = train_json(prepared, budget_bytes=budget)
        mode = "train"
    from modelmem.memory.breakdown import MemoryBreakdown, MemoryComponent

    breakdown = MemoryBreakdown(
        tuple(MemoryComponent(c["name"], c["bytes"], c["how"]) for c in data["components"]),
        devices=device.count,
    )
    verdict = target.verdict(breakdown, reserve)
    notes = [*target.notes, *verdict.notes, *data.pop("notes")]
    if mode == "train" and device.count > 1 and prepared.workload.zero == 0:
        notes.append(
            f"ZeRO 0 (DDP): each of the {device.count} devices holds every model state; "
            "--zero 1-3 or --fsdp shards them"
        )
    for key in ("memory_bytes", "margin_bytes", "fits", "changes"):
        data.pop(key, None)
    if not verdict.fits:
        data["changes"] = (
            inference_changes(prepared, budget, device.count)
            if mode == "inference"
            else training_changes(prepared, budget)
        )
    result_fits = verdict.fits
    if mode == "inference":
        # the engine's own verdict on these devices (vLLM refusing to start, llama.cpp
        # keeping layers on the host) beside the memory the workload needs
        facts = engine_verdict(prepared, target.memory_bytes)
        engine_fits = facts.pop("fits", None)
        data.update({k: v for k, v in facts.items() if k not in data or k in _ENGINE_KEYS})
        if engine_fits is False and result_fits:
            result_fits = False
            notes.append(
                f"{prepared.workload.engine} itself would not run this on "
                f"{device.count} × {target.name}: "
                + str(facts.get("offload_verdict") or "see the engine's notes")
            )
        if "notes" in facts:
            notes.extend(n for n in facts["notes"] if n not in notes)
    config = _config(prepared.workload, mode, device.count)
    return {
        **data,
        "mode": mode,
        "config": config,
        **verdict.to_dict(),
        "fits": result_fits,
        "notes": notes,
    }


# engine facts that replace the estimate's own values of the same name in a fit
_ENGINE_KEYS = frozenset(
    {"kv_pool_tokens", "max_concurrency", "max_context", "gpu_layers", "host_layers"}
)


def _config(w: Any, mode: str, count: int) -> dict[str, Any]:
    """The workload's knobs as the planner names them (a fit is one configuration)."""
    if mode == "inference":
        return {
            "goal": "inference",
            "devices": count,
            "engine": w.engine,
            "batch": w.batch,
            "context": w.context,
            "dtype": "checkpoint" if w.stored_weights is not None else w.dtype,
            "kv_dtype": w.kv_dtype,
            "tp": w.tp,
        }
    data = {
        "goal": "train" if w.method == "full" else w.method,
        "devices": count,
        "batch": w.batch,
        "seq": w.seq,
        "recipe": w.recipe,
        "optimizer": w.optimizer,
        "checkpointing": w.checkpointing,
        "zero": w.zero,
        "offload": {"optimizer": w.offload_optimizer, "param": w.offload_param},
    }
    if w.method != "full":
        data["lora_rank"] = w.lora_rank
    return data

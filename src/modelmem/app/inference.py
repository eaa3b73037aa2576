"""Inference questions: a request and a model in, the estimate's JSON out.

Every default that depends on the model is decided here, once: the engine (llama.cpp for a
GGUF file), the weights (the checkpoint's own tensors, else the format the model ships in,
else bf16), the KV cache format (by engine and weights), the context (the model's, capped).
`inference`, `fit`, `plan`, the web API and the Python API all go through
:func:`prepare_inference`, so the same options give the same workload everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

from modelmem.app.formats import cache_format, weights_scheme
from modelmem.app.models import shipped_dtype
from modelmem.app.requests import InferenceRequest
from modelmem.errors import InvalidValueError
from modelmem.vocabulary import DEFAULT_DTYPE, DEFAULT_INFERENCE_CONTEXT_CAP

__all__ = ["PreparedInference", "inference_json", "prepare_inference"]


@dataclass(frozen=True, slots=True)
class PreparedInference:
    """A request made concrete for one model: the estimator's inputs and what was decided."""

    model: Any
    request: InferenceRequest
    workload: Any  # InferenceWorkload
    settings: Any  # EngineSettings
    budget_bytes: int | None
    notes: tuple[str, ...]


def _size(value: str | None, field: str) -> int | None:
    from modelmem.units import parse_bytes

    return None if value is None else parse_bytes(value, field=field)


def default_engine(model: Any) -> str:
    """llama.cpp for a GGUF file (that is what reads it), else transformers."""
    return "llama.cpp" if model.kind == "gguf" else "transformers"


def _compute_dtype(checkpoint: Any) -> str:
    """The activation format a checkpoint implies: its widest float tensors' format."""
    stored = {d for d, _ in checkpoint.bytes_by_dtype()}
    if stored == {"F32"}:
        return "fp32"
    return "fp16" if "F16" in stored and "BF16" not in stored else DEFAULT_DTYPE


def _check_engine_options(request: InferenceRequest, engine: str, count: int) -> None:
    """Options another engine has are refused, never ignored."""
    for name, owner in InferenceRequest.ENGINE_ONLY.items():
        if request.is_given(name) and owner != engine:
            raise InvalidValueError(
                name, getattr(request, name), f"is a {owner} option (engine is {engine})"
            )
    if engine == "llama.cpp" and request.tp > 1 and (request.is_given("tp") or count == 1):
        raise InvalidValueError(
            "tp",
            request.tp,
            "llama.cpp splits layers over devices, it has no tensor parallelism: give "
            "--tensor-split with one share per device (or fit --count N)",
        )


def _llama_cpp_devices(
    request: InferenceRequest, count: int
) -> tuple[int, tuple[float, ...] | None]:
    """Devices llama.cpp splits the model over and their -ts shares: one share per
    device given, else ``count`` (fit/plan --count) equal shares."""
    if request.tensor_split is None:
        return count, None
    try:
        shares = tuple(float(x) for x in request.tensor_split.split(","))
    except ValueError:
        raise InvalidValueError(
            "tensor_split", request.tensor_split, "must be numbers separated by commas, e.g. 3,1"
        ) from None
    if count > 1 and len(shares) != count:
        raise InvalidValueError(
            "tensor_split", request.tensor_split, f"must give one share per device ({count})"
        )
    return len(shares), shares


def _check_tp(spec: Any, tp: int) -> None:
    """Tensor parallelism splits attention heads: tp must divide them (vLLM, Megatron);
    KV heads are replicated when tp exceeds them, so tp must divide or be divided by them."""
    a = spec.attention
    if tp == 1 or a is None:
        return
    if a.num_heads % tp:
        raise InvalidValueError(
            "tp", tp, f"must divide the {a.num_heads} attention heads of {spec.name}"
        )
    if a.num_kv_heads % tp and tp % a.num_kv_heads:
        raise InvalidValueError(
            "tp",
            tp,
            f"must divide the {a.num_kv_heads} KV heads or be a multiple of them (each replicated)",
        )


def resolve_weights(model: Any, request: InferenceRequest) -> tuple[str, Any, list[str]]:
    """(weights scheme or compute dtype, stored weights or None, notes)."""
    from modelmem.memory.weights import checkpoint_weights

    notes: list[str] = []
    if request.dtype is not None:
        resolved = weights_scheme(request.dtype)
        if resolved.note:
            notes.append(resolved.note)
        return resolved.name, None, notes
    if model.checkpoint is not None:
        return _compute_dtype(model.checkpoint), checkpoint_weights(model.checkpoint), notes
    shipped, note = shipped_dtype(model)
    if shipped is not None:
        notes.append(f"{note} (--dtype to price another format)")
        return shipped, None, notes
    return DEFAULT_DTYPE, None, notes


def resolve_kv(request: InferenceRequest, engine: str, dtype: str) -> str:
    """The cache format: the one asked for, else the engine's default for these weights."""
    from modelmem.memory.kvcache import default_kv_format
    from modelmem.memory.serving import activation_bytes

    if request.kv_dtype is not None:
        return cache_format(request.kv_dtype, engine).name
    return default_kv_format(engine, activation_bytes(dtype))


def prepare_inference(model: Any, request: InferenceRequest, count: int = 1) -> PreparedInference:
    """The workload and engine settings ``request`` asks of ``model``."""
    from modelmem.memory.inference import EngineSettings, InferenceWorkload

    spec = model.spec
    engine = request.engine or default_engine(model)
    _check_engine_options(request, engine, count)
    devices, shares = 1, None
    if engine == "llama.cpp":
        devices, shares = _llama_cpp_devices(request, count)
        request = replace(request, tp=1)  # fit --count N: N devices for the layer split
    _check_tp(spec, request.tp)
    context = request.context or min(spec.context_length, DEFAULT_INFERENCE_CONTEXT_CAP)
    dtype, stored, notes = resolve_weights(model, request)
    kv_dtype = resolve_kv(request, engine, dtype)
    if request.context and request.context > spec.context_length:
        notes.append(f"context {request.context:,} exceeds the model's {spec.context_length:,}")
    budget = _size(request.memory, "memory")
    workload = InferenceWorkload(
        batch=request.batch,
        context=context,
        prompt=request.prompt,
        dtype=dtype,
        kv_dtype=kv_dtype,
        engine=engine,
        attention=request.attention,
        tp=request.tp,
        stored_weights=stored,
        cuda_context_bytes=_size(request.cuda_context, "cuda_context") or 0,
        allocator_reserve=Fraction(request.allocator_reserve).limit_denominator(10_000),
    )
    settings = EngineSettings(
        device_memory_bytes=budget,
        gpu_memory_utilization=request.gpu_memory_utilization,
        max_num_batched_tokens=request.max_num_batched_tokens,
        max_num_seqs=request.max_num_seqs,
        vllm_version=request.vllm_version,
        n_ubatch=request.ubatch,
        flash_attention=not request.no_flash_attention,
        gpu_layers=request.gpu_layers,
        devices=devices,
        split_mode=request.split_mode,
        tensor_split=shares,
        mmap=not request.no_mmap,
    )
    return PreparedInference(model, request, workload, settings, budget, tuple(notes))


def rule_format_name(dtype: str) -> str:
    """The element format of the rule of thumb for a weights scheme (params × its bytes)."""
    plain = dtype.lower().removeprefix("gguf-")
    return plain if plain in ("fp32", "fp16", "bf16", "f16") else "bf16"


def inference_json(prepared: PreparedInference, budget_bytes: int | None = None) -> dict[str, Any]:
    """What `inference --json` prints. ``budget_bytes`` (fit) overrides the request's
    ``--memory`` as the budget of the verdict fields."""
    from modelmem.formats import get_format
    from modelmem.memory.inference import estimate_inference, largest_fitting
    from modelmem.memory.rules import rule_of_thumb

    model, workload, settings = prepared.model, prepared.workload, prepared.settings
    spec = model.spec
    est = estimate_inference(spec, workload, settings)
    rule = rule_of_thumb(model.params.total, get_format(rule_format_name(workload.dtype)))
    data: dict[str, Any] = {
        "source": model.label,
        "engine": workload.engine,
        **est.breakdown.to_dict(),
        "peak_phase": est.peak_phase,
        "dtype": "checkpoint" if workload.stored_weights is not None else workload.dtype,
        "kv_dtype": workload.kv_dtype,
        "weights_bytes": est.weights.total_bytes,
        "weights_by_format": [{"format": f, "bytes": b} for f, b in est.weights.by_format],
        "kv_cache_bytes_per_token": est.cache.bytes_per_token,
        "batch": workload.batch,
        "context": workload.context,
        "tp": workload.tp,
        "rule_of_thumb": {
            "inference_bytes": rule.inference_bytes,
            "training_bytes": rule.training_bytes,
            "format": rule.format.name,
        },
    }
    data["notes"][:0] = [*model.notes, *prepared.notes]
    budget = budget_bytes if budget_bytes is not None else prepared.budget_bytes
    if budget is not None and workload.engine != "vllm":
        data["memory_bytes"] = budget
        data["fits"] = est.total_bytes <= budget
        data["margin_bytes"] = budget - est.total_bytes
        data["max_context"] = largest_fitting(spec, workload, budget, "context", settings)
        data["max_batch"] = largest_fitting(spec, workload, budget, "batch", settings)
    # what the engine itself decides: vLLM's pool, max_context and fits; llama.cpp's
    # offload verdict and per-device loads (the estimate's own figures win)
    data.update(est.engine_facts)
    if budget is not None and data.get("fits") is False:
        data["changes"] = inference_changes(prepared, budget)
    return data


def engine_verdict(prepared: PreparedInference, device_bytes: int) -> dict[str, Any]:
    """What vLLM or llama.cpp itself decides on devices of ``device_bytes``: vLLM's KV
    pool, concurrency, largest max_model_len and whether it starts; llama.cpp's layers on
    the device and on the host. Empty for transformers."""
    from modelmem.memory.inference import estimate_inference

    if prepared.workload.engine == "transformers":
        return {}
    settings = replace(prepared.settings, device_memory_bytes=device_bytes)
    est = estimate_inference(prepared.model.spec, prepared.workload, settings)
    return {**est.engine_facts, "notes": list(est.breakdown.notes)}


def inference_price(model: Any, settings: Any, count: int = 1) -> Any:
    """A request's peak bytes per device, as :func:`inference_json` prices it."""
    from modelmem.memory.inference import estimate_inference

    def price(request: InferenceRequest) -> int:
        workload = prepare_inference(model, request, count).workload
        return estimate_inference(model.spec, workload, settings).total_bytes

    return price


def inference_changes(prepared: PreparedInference, budget: int, count: int = 1) -> Any:
    """The single changes that make this workload fit ``budget`` (see app/changes)."""
    from modelmem.app.changes import changes_for

    request = prepared.request
    if not request.is_given("context"):  # the default context is a change like any other
        request = replace(request, context=prepared.workload.context)
    price = inference_price(prepared.model, prepared.settings, count)
    return changes_for(request, price, budget, engine=prepared.workload.engine, count=count)

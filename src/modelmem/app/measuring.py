"""`measure`: the command line of an estimate, run for real on fake tensors.

It takes the same options as `train` and `inference`, builds the same request and the same
workload (:func:`prepare_training`, :func:`prepare_inference`: same defaults), and runs the
transformers implementation of that workload. What transformers on one device cannot run
is refused, one option at a time, with the reason; nothing is silently dropped.
"""

from __future__ import annotations

from typing import Any

from modelmem.app.inference import prepare_inference
from modelmem.app.requests import InferenceRequest, TrainRequest
from modelmem.app.training import prepare_training
from modelmem.errors import InvalidValueError

__all__ = ["MAX_DECODE_STEPS", "measure_json", "measure_settings"]

MAX_DECODE_STEPS = 64  # each decode step runs: keep a measurement short
_ONE_DEVICE = "measure runs one device"
# options an estimate takes that measure cannot run, with the reason
_REFUSED: dict[str, str] = {
    "memory": "measure reports the tensor peak; --memory is for the estimate's verdict",
    "cuda_context": "measure reports the tensor peak, without the CUDA context",
    "allocator_reserve": "measure reports the tensor peak, without allocator slack",
    "tp": _ONE_DEVICE,
    "pp": _ONE_DEVICE,
    "sp": _ONE_DEVICE,
    "zero": _ONE_DEVICE,
    "fsdp": _ONE_DEVICE,
    "devices": _ONE_DEVICE,
    "nodes": _ONE_DEVICE,
    "offload_optimizer": _ONE_DEVICE + ", without offload",
    "offload_param": _ONE_DEVICE + ", without offload",
    "fsdp_offload": _ONE_DEVICE + ", without offload",
    "deepspeed": _ONE_DEVICE + ", without DeepSpeed",
    "paged_optimizer": "paged optimizers need CUDA unified memory",
    "optimizer_in_backward": "measure steps the optimizer after the backward pass",
    "loss": "measure runs transformers' own loss (full logits)",
    "loss_chunks": "measure runs transformers' own loss (full logits)",
    "grad_accumulation": "measure runs one micro-batch per step",
    "dora": "DoRA is estimated only",
    "zero_init": _ONE_DEVICE,
    "gpu_memory_utilization": "measure runs the transformers implementation",
    "max_num_batched_tokens": "measure runs the transformers implementation",
    "ubatch": "measure runs the transformers implementation",
    "no_flash_attention": "measure runs the transformers implementation",
    "gpu_layers": "measure runs the transformers implementation",
}
# weights the measurement can hold (fake tensors of a torch dtype) -> its recipe
_INFERENCE_RECIPES = {"fp32": "fp32", "bf16": "pure-bf16", "fp16": "pure-fp16"}


def _refuse_given(request: InferenceRequest | TrainRequest) -> None:
    for name in sorted(request.given):
        if name in _REFUSED and getattr(request, name) != _default(type(request), name):
            raise InvalidValueError(name, getattr(request, name), _REFUSED[name])


def _default(cls: type, name: str) -> Any:
    return next(s.default for s in cls.specs() if s.name == name)  # type: ignore[attr-defined]


def measure_settings(
    model: Any,
    request: InferenceRequest | TrainRequest,
    *,
    steps: int = 2,
    decode_steps: int | None = None,
    real: bool = False,
) -> dict[str, Any]:
    """The MeasureSettings arguments that run ``request``'s workload."""
    _refuse_given(request)
    if isinstance(request, InferenceRequest):
        return _inference_settings(model, request, decode_steps, real)
    if decode_steps is not None:
        raise InvalidValueError("decode_steps", decode_steps, "is an inference option")
    w = prepare_training(model, request).workload
    if w.method == "qlora":
        raise InvalidValueError(
            "method", "qlora", "bitsandbytes 4-bit layers do not run on fake tensors"
        )
    if w.recipe == "mixed-bf16":
        raise InvalidValueError(
            "recipe", w.recipe, "DeepSpeed's bf16 mode is estimated only (its optimizer wrapper)"
        )
    return {
        "mode": "train",
        "batch": w.batch,
        "seq": w.seq,
        "recipe": w.recipe,
        "optimizer": w.optimizer,
        "optimizer_impl": w.optimizer_impl,
        "checkpointing": w.checkpointing,
        "selective_checkpointing": w.selective_checkpointing,
        "attention": w.attention,
        "lora_rank": w.lora_rank if w.method == "lora" else None,
        "lora_targets": w.lora_targets if w.method == "lora" else None,
        "dropout": request.dropout,
        "steps": steps,
        "fake": not real,
    }


def _inference_settings(
    model: Any, request: InferenceRequest, decode_steps: int | None, real: bool
) -> dict[str, Any]:
    w = prepare_inference(model, request).workload
    if w.engine != "transformers":
        raise InvalidValueError(
            "engine",
            w.engine,
            f"measure runs the transformers implementation; {w.engine} is estimated only",
        )
    if w.stored_weights is not None:
        raise InvalidValueError(
            "source", model.label, "measure builds the architecture; give --dtype for weights"
        )
    recipe = _INFERENCE_RECIPES.get(w.dtype)
    if recipe is None:
        raise InvalidValueError(
            "dtype", w.dtype, "measure runs 16- and 32-bit weights; quantized ones are estimated"
        )
    kv_default = "fp32" if w.dtype == "fp32" else "bf16"
    if w.kv_dtype not in (kv_default, w.dtype):
        raise InvalidValueError("kv_dtype", w.kv_dtype, "measure runs the model's own cache dtype")
    if w.prompt is not None:
        decode = w.context - w.prompt
        if decode_steps is not None and decode_steps != decode:
            raise InvalidValueError(
                "decode_steps", decode_steps, f"context - prompt = {decode} already"
            )
    else:
        # no prompt: the estimate prefills the whole context, and so does the measurement
        decode = 0 if decode_steps is None else decode_steps
    if not 0 <= decode <= MAX_DECODE_STEPS or decode >= w.context:
        raise InvalidValueError(
            "decode_steps", decode, f"must be in [0, {MAX_DECODE_STEPS}] and below the context"
        )
    return {
        "mode": "inference",
        "batch": w.batch,
        "seq": w.context - decode,
        "decode_steps": decode,
        "recipe": recipe,
        "attention": w.attention,
        "fake": not real,
    }


def measure_json(
    model: Any,
    request: InferenceRequest | TrainRequest,
    *,
    steps: int = 2,
    decode_steps: int | None = None,
    whole: bool = False,
    real: bool = False,
) -> dict[str, Any]:
    """What `measure --json` prints."""
    from modelmem.measurement import load_measure

    if model.config is None:
        raise InvalidValueError(
            "source", model.label, "measure needs an architecture (config.json or catalogue)"
        )
    settings = measure_settings(model, request, steps=steps, decode_steps=decode_steps, real=real)
    run, settings_cls = load_measure()
    result = run(model.config, model.spec, settings_cls(**settings), whole=whole or real)
    return {"source": model.label, **result.to_dict()}

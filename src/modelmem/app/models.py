"""Models as the application sees them: resolved from a SOURCE, and their JSON parts."""

from __future__ import annotations

from typing import Any

from modelmem.errors import InvalidValueError, ModelMemError

__all__ = [
    "adapter_json",
    "checkpoint_json",
    "require_architecture",
    "resolve_model",
    "shipped_dtype",
]


def resolve_model(source: Any, *, architecture: bool = True) -> Any:
    """A resolved model from a SOURCE string (or an already resolved model)."""
    from modelmem.model.sources import ResolvedModel, resolve

    if isinstance(source, ResolvedModel):
        model = source
    elif isinstance(source, str):
        model = resolve(source)
    else:
        raise InvalidValueError("source", source, "must be a model name, path, Hub id or size")
    return require_architecture(model, model.label) if architecture else model


def require_architecture(model: Any, source: str) -> Any:
    """A resolved model with an architecture; a plain size is refused."""
    if model.spec is None:
        raise ModelMemError(
            f"source={source!r}: a plain size has no architecture; give a config.json or a "
            f"catalogue model (the rule of thumb is in `modelmem params {source}`)"
        )
    return model


# A config's torch_dtype is how the file stores plain floats, not how people run them: a
# float32 Gemma-2 or Mamba checkpoint is served in bf16. Only a quantized release (gpt-oss's
# MXFP4 experts, DeepSeek's block-scaled FP8) changes the default.
_PLAIN_FLOATS = frozenset({"fp32", "fp16", "bf16"})


def shipped_dtype(model: Any) -> tuple[str | None, str | None]:
    """The quantized weights scheme a model ships in, and the note that says so."""
    scheme = getattr(model, "shipped_dtype", None)
    if not scheme or scheme in _PLAIN_FLOATS:
        return None, None
    note = getattr(model, "shipped_note", None) or f"priced as shipped: {scheme}"
    return scheme, note


def checkpoint_json(checkpoint: Any) -> dict[str, Any]:
    return {
        "file_format": checkpoint.file_format,
        "origin": checkpoint.origin,
        "files": checkpoint.files,
        "tensors": len(checkpoint.tensors),
        "params": checkpoint.total_params,
        "bytes": checkpoint.total_bytes,
        "quantization": checkpoint.quantization,
        "bytes_by_dtype": [{"dtype": d, "bytes": b} for d, b in checkpoint.bytes_by_dtype()],
    }


def adapter_json(model: Any) -> dict[str, Any]:
    from modelmem.memory.finetune import adapter_trainable_params

    a = model.adapter
    return {
        "origin": a.origin,
        "rank": a.rank,
        "alpha": a.alpha,
        "targets": a.targets if isinstance(a.targets, str) else list(a.targets),
        "dora": a.dora,
        "trainable_params": adapter_trainable_params(model.spec, a),
    }

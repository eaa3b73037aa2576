"""The catalogues as the doors list them: models, number formats and schemes, devices."""

from __future__ import annotations

from typing import Any

from modelmem.errors import UnknownNameError

__all__ = ["devices_data", "formats_data", "models_data", "schemes_data"]


def _check_family(family: str | None, known: set[str]) -> None:
    """A filter that names no family is a typo, not an empty catalogue."""
    if family is not None and family not in known:
        raise UnknownNameError("family", family, known)


def models_data(family: str | None = None) -> list[dict[str, Any]]:
    """What `models --json` prints."""
    from modelmem.model.sources.catalogue import load_catalogue

    catalogue = load_catalogue().values()
    _check_family(family, {e.family for e in catalogue})
    return [
        {
            "name": e.name,
            "hub_id": e.hub_id,
            "family": e.family,
            "total_params": e.params_transformers,
            "context_length": e.context_length,
            "tokenizer": e.tokenizer,
            "shipped_dtype": getattr(e, "shipped_dtype", None),
            "source": e.source,
        }
        for e in catalogue
        if family is None or e.family == family
    ]


def schemes_data() -> list[dict[str, Any]]:
    """The weight schemes every ``--dtype`` takes, with the element format most weights are
    stored in (the parametric GPTQ/AWQ variants are listed by their g128 4-bit names; float
    aliases such as bfloat16 are the formats' aliases)."""
    from modelmem.memory.weights import scheme_element, weight_schemes

    names = dict.fromkeys(
        s
        for s in weight_schemes()
        if not s.startswith(("gptq-", "awq-")) or s.endswith("4bit-g128")
    )
    floats = {"fp32", "fp16", "bf16"}
    listed = [s for s in names if scheme_element(s) not in floats or s in floats]
    return [
        {"name": s, "kind": "scheme", "element": scheme_element(s), "source": _scheme_source(s)}
        for s in listed
    ]


# where each kind of scheme's storage layout is defined (the estimate follows it)
_SCHEME_SOURCES: dict[str, str] = {
    "bnb-": "bitsandbytes Linear8bitLt / Linear4bit (transformers BitsAndBytesConfig)",
    "gptq-": "GPTQ QuantLinear buffers (qweight, qzeros, scales, g_idx; gptqmodel)",
    "awq-": "AWQ WQLinear buffers (qweight, qzeros, scales; AutoAWQ)",
    "gguf-": "llama.cpp src/llama-quant.cpp llama_tensor_get_type (GGUF file types)",
    "fp8": "transformers FP8 / compressed-tensors checkpoints (weight + scales)",
    "mxfp4": "OCP Microscaling Formats (MX) v1.0; gpt-oss checkpoints",
    "nvfp4": "NVIDIA TensorRT Model Optimizer NVFP4 checkpoints",
}


def _scheme_source(scheme: str) -> str:
    for prefix, source in _SCHEME_SOURCES.items():
        if scheme.startswith(prefix):
            return source
    return "PyTorch dtype sizes (torch.finfo)"


def formats_data(family: str | None = None) -> list[dict[str, Any]]:
    """What `formats --json` prints: number formats (``kind`` format), then weight schemes
    (``kind`` scheme, family ``scheme``)."""
    from modelmem.formats import all_formats

    _check_family(family, {f.family for f in all_formats()} | {"scheme"})
    rows: list[dict[str, Any]] = [
        {
            "name": f.name,
            "kind": "format",
            "family": f.family,
            "block_size": f.block_size,
            "bytes_per_block": f.bytes_per_block,
            "bits_per_value": float(f.bits_per_value),
            "aliases": list(f.aliases),
            "source": f.source,
            **_uses(f.name),
        }
        for f in all_formats()
        if family is None or f.family == family
    ]
    if family in (None, "scheme"):
        rows += [
            {**s, "family": "scheme", "weights_scheme": s["name"], "cache_engines": []}
            for s in schemes_data()
        ]
    return rows


def _uses(name: str) -> dict[str, Any]:
    """What a format name means to ``--dtype`` (the scheme, or None when refused) and which
    engines take it as ``--kv-dtype``: the same resolver every door uses."""
    from modelmem.app.formats import cache_format, weights_scheme
    from modelmem.errors import ModelMemError
    from modelmem.vocabulary import ENGINES

    try:
        scheme: str | None = weights_scheme(name).name
    except ModelMemError:
        scheme = None
    engines = []
    for engine in ENGINES:
        try:
            cache_format(name, engine)
        except ModelMemError:
            continue
        engines.append(engine)
    return {"weights_scheme": scheme, "cache_engines": engines}


def devices_data(
    kind: str | None = None, vendor: str | None = None, min_memory: str | None = None
) -> list[dict[str, Any]]:
    """What `devices --json` prints (the catalogue; not --local)."""
    return [d.to_dict() for d in chosen_devices(kind, vendor, min_memory)]


def chosen_devices(kind: str | None, vendor: str | None, min_memory: str | None) -> list[Any]:
    """Catalogue devices of a kind and vendor with at least ``min_memory`` of the figure a
    fit compares against (usable memory where a source quotes it, else capacity)."""
    from modelmem.hardware.catalogue import devices_matching
    from modelmem.units import parse_bytes

    floor = None if min_memory is None else parse_bytes(min_memory, field="min_memory")
    return list(devices_matching(kind=kind, vendor=vendor, min_memory_bytes=floor))

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
    stored in (the parametric GPTQ/AWQ variants are listed by their g128 4-bit names)."""
    from modelmem.memory.weights import scheme_element, weight_schemes

    listed = [
        s
        for s in weight_schemes()
        if not s.startswith(("gptq-", "awq-")) or s.endswith("4bit-g128")
    ]
    return [{"name": s, "kind": "scheme", "element": scheme_element(s)} for s in listed]


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
        }
        for f in all_formats()
        if family is None or f.family == family
    ]
    if family in (None, "scheme"):
        rows += [{**s, "family": "scheme"} for s in schemes_data()]
    return rows


def devices_data(
    kind: str | None = None, vendor: str | None = None, min_memory: str | None = None
) -> list[dict[str, Any]]:
    """What `devices --json` prints (the catalogue; not --local)."""
    return [d.to_dict() for d in chosen_devices(kind, vendor, min_memory)]


def chosen_devices(kind: str | None, vendor: str | None, min_memory: str | None) -> list[Any]:
    from modelmem.hardware.catalogue import all_devices
    from modelmem.units import parse_bytes

    floor = 0 if min_memory is None else parse_bytes(min_memory, field="min_memory")
    return [
        d
        for d in all_devices()
        if (kind is None or d.kind == kind)
        and (vendor is None or d.vendor.lower() == vendor.lower())
        and d.budget_bytes >= floor
    ]

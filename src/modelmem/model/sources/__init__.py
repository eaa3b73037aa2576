"""Where a model comes from: a catalogue name, a config.json file or folder, or a size.

``resolve(text)`` tries, in order: an existing path, a catalogue name (or alias or Hub id
in the catalogue), then a plain parameter count such as ``7B``. Anything else is an error
that says what SOURCE may be.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelmem.errors import InvalidValueError, ModelMemError, SourceError
from modelmem.model.params import ParamCount, count_params
from modelmem.model.sources.catalogue import find_entry, spec_from_entry
from modelmem.model.sources.hf_config import read_config_file, spec_from_config
from modelmem.model.spec import ModelSpec
from modelmem.units import parse_count


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """A model as the commands see it: an architecture if known, and its counts."""

    label: str
    kind: str  # "catalogue" | "config" | "size"
    spec: ModelSpec | None  # None for a plain size: no architecture is known
    params: ParamCount
    origin: str  # where the description came from
    context_length: int | None = None
    tokenizer: str | None = None
    config: dict[str, Any] | None = None  # the config.json mapping the spec was read from


def _from_spec(
    spec: ModelSpec, kind: str, origin: str, tokenizer: str | None, config: dict[str, Any]
) -> ResolvedModel:
    return ResolvedModel(
        label=spec.name,
        kind=kind,
        spec=spec,
        params=count_params(spec),
        origin=origin,
        context_length=spec.context_length if spec.attention is not None else None,
        tokenizer=tokenizer,
        config=config,
    )


def size_only(total: int, label: str) -> ResolvedModel:
    """A plain parameter count: enough for rules of thumb, not for a breakdown."""
    params = ParamCount(total=total, active=total, components=(("total", total),), text=total)
    return ResolvedModel(label=label, kind="size", spec=None, params=params, origin=label)


def resolve(source: str) -> ResolvedModel:
    """Resolve SOURCE text to a model."""
    text = source.strip()
    if not text:
        raise InvalidValueError("source", source, "empty")
    path = Path(text).expanduser()
    if path.exists():
        config = read_config_file(path)
        name = path.name if path.is_dir() else path.parent.name
        spec = spec_from_config(config, name=name or "model", where=str(path))
        return _from_spec(spec, "config", str(path), None, config)
    entry = find_entry(text)
    if entry is not None:
        return _from_spec(
            spec_from_entry(entry), "catalogue", entry.source, entry.tokenizer, entry.config
        )
    if any(sep in text for sep in ("/", "\\")) or text.endswith(".json"):
        raise SourceError(text, "no such file or folder, and not a catalogue model")
    try:
        return size_only(parse_count(text, field="source"), text)
    except ModelMemError:
        raise InvalidValueError(
            "source",
            text,
            "not a config.json, model folder, catalogue model (see `modelmem models`) "
            "or size such as 7B",
        ) from None

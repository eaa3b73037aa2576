"""The built-in model catalogue: real config.json files of popular open models.

Each entry is a data file ``data/models/<name>.json`` holding the model's config.json
verbatim, where it came from, its context length, its tokenizer, and the parameter count
transformers reports for it (regenerated only by ``scripts/verify_catalogue.py --write``).
Entries go through the same config reader as a user's file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from importlib import resources
from typing import Any

from modelmem.errors import SourceError, UnknownNameError
from modelmem.model.sources.hf_config import spec_from_config
from modelmem.model.spec import ModelSpec


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    name: str
    hub_id: str
    aliases: tuple[str, ...]
    family: str
    context_length: int
    tokenizer: str
    source: str
    params_transformers: int
    published_params: str
    config: dict[str, Any]


def _entry(data: dict[str, Any], file: str) -> CatalogueEntry:
    try:
        return CatalogueEntry(
            name=data["name"],
            hub_id=data["hub_id"],
            aliases=tuple(data.get("aliases", ())),
            family=data["family"],
            context_length=int(data["context_length"]),
            tokenizer=data["tokenizer"],
            source=data["source"],
            params_transformers=int(data["params_transformers"]),
            published_params=str(data.get("published_params", "")),
            config=data["config"],
        )
    except KeyError as e:  # a packaging error, not user input
        raise SourceError(f"catalogue/{file}", f"missing field {e.args[0]}") from None


@lru_cache(maxsize=1)
def load_catalogue() -> dict[str, CatalogueEntry]:
    """All entries by name (lower case)."""
    folder = resources.files("modelmem") / "data" / "models"
    entries: dict[str, CatalogueEntry] = {}
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if item.name.endswith(".json"):
            entry = _entry(json.loads(item.read_text(encoding="utf-8")), item.name)
            entries[entry.name.lower()] = entry
    return entries


@lru_cache(maxsize=1)
def _index() -> dict[str, str]:
    """Every name, alias and Hub id (lower case) -> catalogue name."""
    index: dict[str, str] = {}
    for name, entry in load_catalogue().items():
        for key in (name, entry.hub_id, *entry.aliases):
            index[key.lower()] = name
    return index


def find_entry(name: str) -> CatalogueEntry | None:
    key = _index().get(name.strip().lower())
    return load_catalogue()[key] if key else None


def get_entry(name: str) -> CatalogueEntry:
    entry = find_entry(name)
    if entry is None:
        raise UnknownNameError("model", name, load_catalogue())
    return entry


def spec_from_entry(entry: CatalogueEntry) -> ModelSpec:
    """The entry's ModelSpec, with the catalogue's (documented) context length."""
    return _spec_of(entry.name)


@cache
def _spec_of(name: str) -> ModelSpec:
    """Built once per catalogue entry (the catalogue is read-only package data)."""
    entry = load_catalogue()[name]
    spec = spec_from_config(entry.config, name=entry.name, where=f"catalogue:{entry.name}")
    return replace(spec, context_length=entry.context_length)

"""The built-in model catalogue: real config.json files of popular open models.

Each entry is a data file ``data/models/<name>.json`` holding the model's config.json
verbatim, where it came from, its context length, its tokenizer, and the parameter count
transformers reports for it (regenerated only by ``scripts/verify_catalogue.py --write``).
Entries go through the same config reader as a user's file.

Each entry also names the weight scheme it ships in (``shipped_dtype``, a name
``memory.weights.estimate_weights`` accepts): stated in the entry's ``shipped`` field, with
its source, for a quantized release (gpt-oss: ``mxfp4``; DeepSeek-V3/R1: ``fp8-block128``),
else read from the config's ``torch_dtype`` (``dtype`` in transformers 5), else None. A
config with a ``quantization_config`` must state its scheme: pricing it in the config's
dtype would miss the quantization.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from typing import Any

from modelmem.datafiles import data_names, has_data, read_data
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
    shipped_dtype: str | None = None  # the weight scheme the release ships in, where stated
    shipped_source: str | None = None
    shipped_text: str = ""

    @property
    def shipped_note(self) -> str | None:
        """One line for the output: the scheme the weights ship in and where that is read."""
        if self.shipped_dtype is None:
            return None
        what = self.shipped_text or f"ships in {self.shipped_dtype}"
        return (
            f"priced as shipped: {self.name} {what} (dtype {self.shipped_dtype}; --dtype "
            f"overrides); source: {self.shipped_source}"
        )


# config.json torch_dtype -> weight scheme name
_TORCH_DTYPES: dict[str, str] = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}


def _shipped(data: dict[str, Any], file: str) -> tuple[str | None, str | None, str]:
    """(scheme, source, text) of the weights as released."""
    where = f"catalogue/{file}"
    stated = data.get("shipped")
    config = data["config"]
    if stated is not None:
        if not isinstance(stated, dict) or not all(
            isinstance(stated.get(k), str) and stated[k].strip() for k in ("dtype", "source")
        ):
            raise SourceError(where, "shipped needs a dtype and a source")
        return stated["dtype"], stated["source"], str(stated.get("note", ""))
    if isinstance(config.get("quantization_config"), dict):
        raise SourceError(where, "a quantization_config needs a shipped dtype with its source")
    dtype = config.get("torch_dtype") or config.get("dtype")
    text = config.get("text_config")
    if dtype is None and isinstance(text, dict):
        dtype = text.get("torch_dtype") or text.get("dtype")
    scheme = _TORCH_DTYPES.get(dtype) if isinstance(dtype, str) else None
    if scheme is None:
        return None, None, ""
    return scheme, f"{data['source']} torch_dtype {dtype}", ""


def _entry(data: dict[str, Any], file: str) -> CatalogueEntry:
    try:
        shipped, shipped_source, shipped_text = _shipped(data, file)
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
            shipped_dtype=shipped,
            shipped_source=shipped_source,
            shipped_text=shipped_text,
        )
    except KeyError as e:  # a packaging error, not user input
        raise SourceError(f"catalogue/{file}", f"missing field {e.args[0]}") from None


@lru_cache(maxsize=1)
def load_catalogue() -> dict[str, CatalogueEntry]:
    """All entries by name (lower case)."""
    entries: dict[str, CatalogueEntry] = {}
    for name in data_names("models"):
        if name.endswith(".json"):
            entry = _entry(json.loads(read_data("models", name)), name)
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
    key = name.strip().lower()
    direct = _entry_file(key)
    if direct is not None:
        return direct
    found = _index().get(key)
    return load_catalogue()[found] if found else None


@lru_cache(maxsize=64)
def _entry_file(key: str) -> CatalogueEntry | None:
    """The entry stored as ``<name>.json`` when ``key`` is its name: one file read instead
    of the whole catalogue (the common case, and the command line's start-up)."""
    if not key or not all(c.isalnum() or c in "-._" for c in key) or key.startswith("."):
        return None
    name = f"{key}.json"
    if not has_data("models", name):
        return None
    entry = _entry(json.loads(read_data("models", name)), name)
    return entry if entry.name.lower() == key else None


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

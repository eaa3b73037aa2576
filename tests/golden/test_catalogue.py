"""The built-in catalogue: every entry loads, cites its source, and counts exactly what
transformers counts (the pinned figure is regenerated only by
``scripts/verify_catalogue.py --write``)."""

from __future__ import annotations

import pytest

from modelmem.model.params import count_params
from modelmem.model.sources import resolve
from modelmem.model.sources.catalogue import load_catalogue, spec_from_entry

ENTRIES = sorted(load_catalogue().values(), key=lambda e: e.name)


def test_catalogue_is_large_enough_and_covers_the_families() -> None:
    assert len(ENTRIES) >= 40
    families = {e.family for e in ENTRIES}
    assert families >= {
        "llama",
        "mistral",
        "mixtral",
        "qwen2",
        "qwen3",
        "qwen3_moe",
        "gemma2",
        "gemma3",
        "phi3",
        "deepseek_v2",
        "deepseek_v3",
        "gpt_oss",
        "gpt2",
        "bert",
        "falcon",
        "opt",
        "gpt_neox",
        "falcon_mamba",
    }


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_entry_counts_exactly_and_cites_sources(entry) -> None:  # type: ignore[no-untyped-def]
    assert entry.source.startswith("https://huggingface.co/")
    assert entry.tokenizer and entry.context_length > 0
    spec = spec_from_entry(entry)
    assert spec.family == entry.family == entry.config["model_type"]
    assert count_params(spec).total == entry.params_transformers


@pytest.mark.parametrize("name", ["LLAMA-3.1-8B", "meta-llama/Llama-3.1-8B", "llama3.1-8b"])
def test_lookup_by_name_alias_or_hub_id(name: str) -> None:
    model = resolve(name)
    assert model.kind == "catalogue" and model.label == "llama-3.1-8b"
    assert model.params.total == 8_030_261_248

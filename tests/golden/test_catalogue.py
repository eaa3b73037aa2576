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
    assert len(ENTRIES) >= 90
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
        "olmo2",
        "cohere",
        "starcoder2",
        "stablelm",
        "qwen3_next",
        "qwen3_5",
        "qwen3_5_moe",
        "deepseek_v32",
        "glm_moe_dsa",
        "nemotron_h",
        "gemma4",
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


# --- the weight scheme each release ships in ------------------------------------------------


@pytest.mark.parametrize(
    ("name", "scheme"),
    [
        ("gpt-oss-20b", "mxfp4"),
        ("gpt-oss-120b", "mxfp4"),
        ("deepseek-v3", "fp8-block128"),
        ("deepseek-r1", "fp8-block128"),
        ("llama-3.1-8b", "bf16"),  # config.json torch_dtype bfloat16
        ("llama-2-7b", "fp16"),  # torch_dtype float16
        ("gemma-2-9b", "fp32"),  # torch_dtype float32: the release is fp32
        ("gpt2", None),  # the config states no dtype
    ],
)
def test_shipped_dtype(name: str, scheme: str | None) -> None:
    model = resolve(name)
    assert model.shipped_dtype == scheme
    if scheme is None:
        assert model.shipped_note is None
    else:
        assert model.shipped_note is not None and f"dtype {scheme}" in model.shipped_note


def test_every_stated_scheme_is_a_weight_scheme_and_quantized_configs_state_one() -> None:
    from modelmem.memory.weights import weight_schemes

    known = set(weight_schemes())
    for entry in ENTRIES:
        if "quantization_config" in entry.config:
            assert entry.shipped_dtype not in (None, "bf16", "fp16", "fp32"), entry.name
            assert entry.shipped_source and entry.shipped_source.startswith("https://")
        assert entry.shipped_dtype is None or entry.shipped_dtype in known, entry.name


def test_gpt_oss_as_shipped_is_a_third_of_bf16() -> None:
    from modelmem.memory.weights import estimate_weights

    model = resolve("gpt-oss-20b")
    assert model.spec is not None and model.shipped_dtype is not None
    shipped = estimate_weights(model.spec, model.shipped_dtype).total_bytes
    bf16 = estimate_weights(model.spec, "bf16").total_bytes
    assert shipped == 13_761_264_768  # the checkpoint's index total_size
    assert bf16 == 2 * model.params.total and shipped < bf16 / 3


def test_a_quantized_config_without_a_stated_scheme_is_refused() -> None:
    from modelmem.errors import SourceError
    from modelmem.model.sources.catalogue import _entry

    data = {
        "name": "x",
        "hub_id": "o/x",
        "family": "llama",
        "context_length": 8,
        "tokenizer": "t",
        "source": "https://huggingface.co/o/x/blob/main/config.json",
        "params_transformers": 1,
        "config": {"model_type": "llama", "quantization_config": {"quant_method": "fp8"}},
    }
    with pytest.raises(SourceError):
        _entry(data, "x.json")
    ok = _entry({**data, "shipped": {"dtype": "fp8-block128", "source": "s"}}, "x.json")
    assert ok.shipped_dtype == "fp8-block128"

"""Parameter counts derived by hand from the reference formulas (formulas.md A.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelmem.model.params import count_params, tensor_inventory
from modelmem.model.sources.hf_config import spec_from_config

from ..conftest import load_fixture


def test_llama2_7b_closed_form() -> None:
    # V·h (embed) + V·h (untied head) + L·(4h² attention + 3hI MLP + 2h norms) + h
    v, h, i, layers = 32000, 4096, 11008, 32
    expected = 2 * v * h + layers * (4 * h * h + 3 * h * i + 2 * h) + h
    assert expected == 6_738_415_616
    assert (
        count_params(spec_from_config(load_fixture("meta-llama/Llama-2-7b-hf"))).total == expected
    )


def test_llama31_8b_gqa_breakdown() -> None:
    # GQA 32/8 heads of 128: q,o 4096², k,v 4096·1024 each.
    p = count_params(spec_from_config(load_fixture("meta-llama/Llama-3.1-8B")))
    assert p.total == 8_030_261_248
    assert p.component("attention") == 32 * (2 * 4096 * 4096 + 2 * 4096 * 1024)
    assert p.component("mlp") == 32 * 3 * 4096 * 14336
    assert p.component("embedding") == p.component("lm_head") == 128256 * 4096


def test_tied_embedding_counted_once() -> None:
    # Llama-3.2-1B ties lm_head to the embedding: V·h appears once.
    p = count_params(spec_from_config(load_fixture("meta-llama/Llama-3.2-1B-Instruct")))
    assert p.total == 1_235_814_400
    assert p.component("lm_head") == 0


def test_mixtral_active_params() -> None:
    # active = total − L·(E − k)·3·h·I_moe = 46,702,792,704 − 32·6·3·4096·14336
    p = count_params(spec_from_config(load_fixture("mistralai/Mixtral-8x7B-v0.1")))
    assert p.total == 46_702_792_704
    assert p.active == 46_702_792_704 - 32 * 6 * 3 * 4096 * 14336 == 12_879_925_248


def test_deepseek_v3_dense_first_layers_and_shared_expert() -> None:
    spec = spec_from_config(load_fixture("deepseek-ai/DeepSeek-V3"))
    assert spec.mlp_layers[:3] == ("dense",) * 3 and spec.num_moe_layers == 58
    p = count_params(spec)
    assert p.total == 671_026_404_352
    # one shared expert of width 2048 in each of 58 MoE layers: 3·h·2048
    assert p.component("moe/shared_experts") == 58 * 3 * 7168 * 2048
    # MLA: kv_a 7168·576, kv_b 512·128·(128+128), q_a 7168·1536, q_b 1536·128·192, o 128·128·7168
    per_layer = 7168 * 576 + 512 * 128 * 256 + 7168 * 1536 + 1536 * 128 * 192 + 128 * 128 * 7168
    assert p.component("attention") == 61 * per_layer


def test_gemma3_multimodal_reports_text_separately() -> None:
    p = count_params(spec_from_config(load_fixture("google/gemma-3-4b-it")))
    assert p.total == 4_300_079_472
    vision = p.component("vision_tower") + p.component("projector")
    assert p.text == p.total - vision and vision > 0


def test_mamba_has_no_attention() -> None:
    spec = spec_from_config(load_fixture("tiiuae/falcon-mamba-7b"))
    assert spec.attention is None and not spec.has_kv_cache
    assert count_params(spec).total == 7_272_665_088


def test_bert_pooler_and_token_types() -> None:
    # BertModel: V·h + P·h + types·h + 2h + L·(4h² + 9h + 2hI + I + 4h... ) + h² + h
    v, p_, t, h, i, layers = 30522, 512, 2, 768, 3072, 12
    per_layer = 4 * (h * h + h) + 2 * (2 * h) + (h * i + i) + (i * h + h)
    expected = v * h + p_ * h + t * h + 2 * h + layers * per_layer + h * h + h
    config = {**load_fixture("google-bert/bert-base-uncased"), "architectures": ["BertModel"]}
    p = count_params(spec_from_config(config))
    assert p.total == expected == 109_482_240


def test_bert_masked_lm_counts_the_named_class() -> None:
    # BertForMaskedLM (the class bert-base-uncased's config names): no pooler (h² + h);
    # a head of transform dense (h² + h), its LayerNorm (2h) and a decoder bias (V), the
    # decoder weight tied to the word embeddings.
    v, h = 30522, 768
    config = load_fixture("google-bert/bert-base-uncased")
    assert config["architectures"] == ["BertForMaskedLM"]
    p = count_params(spec_from_config(config))
    assert p.total == 109_482_240 - (h * h + h) + (h * h + h) + 2 * h + v == 109_514_298


def test_gpt2_closed_form() -> None:
    # V·h + n_positions·h + L·(12h² + 13h) + 2h
    v, n, h, layers = 50257, 1024, 768, 12
    expected = v * h + n * h + layers * (12 * h * h + 13 * h) + 2 * h
    assert count_params(spec_from_config(load_fixture("openai-community/gpt2"))).total == expected


@given(
    layers=st.integers(1, 8),
    kv=st.sampled_from([1, 2, 4]),
    groups=st.integers(1, 4),
    d=st.sampled_from([8, 16]),
    inter=st.integers(8, 64),
)
def test_totals_equal_sum_of_components(
    layers: int, kv: int, groups: int, d: int, inter: int
) -> None:
    cfg = {
        "model_type": "llama",
        "vocab_size": 100,
        "hidden_size": kv * groups * d,
        "num_hidden_layers": layers,
        "num_attention_heads": kv * groups,
        "num_key_value_heads": kv,
        "intermediate_size": inter,
    }
    spec = spec_from_config(cfg)
    p = count_params(spec)
    assert (
        p.total == sum(n for _, n in p.components) == sum(t.numel for t in tensor_inventory(spec))
    )


@given(kv=st.sampled_from([1, 2, 4, 8]))
def test_gqa_never_has_more_params_than_mha(kv: int) -> None:
    base = {
        "model_type": "llama",
        "vocab_size": 100,
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 8,
        "intermediate_size": 96,
    }
    mha = count_params(spec_from_config(base)).total
    gqa = count_params(spec_from_config({**base, "num_key_value_heads": kv})).total
    assert gqa <= mha
    assert (gqa == mha) == (kv == 8)


@pytest.mark.parametrize("model_type", ["llama", "qwen3_moe", "deepseek_v3", "gpt2", "mamba"])
def test_inventory_names_are_unique(model_type: str) -> None:
    cfg = {
        "model_type": model_type,
        "vocab_size": 50,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 40,
        "moe_intermediate_size": 8,
        "num_experts": 4,
        "n_routed_experts": 4,
        "num_experts_per_tok": 2,
        "n_embd": 32,
        "n_layer": 2,
        "n_head": 4,
    }
    names = [t.name for t in tensor_inventory(spec_from_config(cfg))]
    assert len(names) == len(set(names))


def test_public_api_resolves_lazily() -> None:
    import modelmem

    for name in modelmem.__all__:
        assert getattr(modelmem, name) is not None
    assert modelmem.resolve("gpt2").params.total == 124_439_808

"""Reading config.json: normalized fields, and a clear error for every bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from modelmem.errors import InvalidValueError, MissingFieldError, SourceError, UnknownNameError
from modelmem.model.sources.hf_config import spec_from_config, spec_from_path

from ..conftest import load_fixture

LLAMA = {
    "model_type": "llama",
    "vocab_size": 100,
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,
    "intermediate_size": 96,
}


def test_gqa_and_head_dim() -> None:
    a = spec_from_config(load_fixture("Qwen/Qwen3-8B")).attention
    assert a is not None
    assert (a.num_heads, a.num_kv_heads, a.head_dim, a.qk_norm) == (32, 8, 128, True)


def test_gemma2_alternates_sliding_and_full_layers() -> None:
    spec = spec_from_config(load_fixture("google/gemma-2-9b"))
    assert spec.attention_layers[:4] == ("sliding", "full", "sliding", "full")
    assert spec.sliding_window == 4096 and spec.norms_per_layer == 4


def test_gemma3_pattern_five_local_one_global() -> None:
    spec = spec_from_config(load_fixture("google/gemma-3-1b-it"))
    assert spec.attention_layers[:6] == ("sliding",) * 5 + ("full",)
    assert spec.sliding_window == 512


def test_gpt_oss_layer_types_and_quantization() -> None:
    spec = spec_from_config(load_fixture("openai/gpt-oss-20b"))
    assert spec.attention_layers.count("sliding") == 12 and spec.sliding_window == 128
    assert spec.quantization == "mxfp4"
    assert spec.moe is not None and spec.moe.num_experts == 32 and spec.moe.experts_per_token == 4


def test_deepseek_mla_ranks() -> None:
    a = spec_from_config(load_fixture("deepseek-ai/DeepSeek-V3")).attention
    assert a is not None and a.is_mla
    assert (a.q_lora_rank, a.kv_lora_rank, a.qk_rope_head_dim, a.head_dim, a.v_head_dim) == (
        1536,
        512,
        64,
        192,
        128,
    )
    lite = spec_from_config(load_fixture("deepseek-ai/DeepSeek-V2-Lite")).attention
    assert lite is not None and lite.q_lora_rank is None


def test_mistral_v03_has_no_window_but_default_is_4096() -> None:
    assert (
        spec_from_config(load_fixture("mistralai/Mistral-7B-Instruct-v0.3")).sliding_window is None
    )
    assert spec_from_config({**LLAMA, "model_type": "mistral"}).sliding_window == 4096


def test_falcon_multi_query() -> None:
    cfg = {
        "model_type": "falcon",
        "vocab_size": 100,
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 8,
        "multi_query": True,
    }
    a = spec_from_config(cfg).attention
    assert a is not None and a.num_kv_heads == 1
    new = spec_from_config({**cfg, "new_decoder_architecture": True, "num_kv_heads": 2}).attention
    assert new is not None and new.num_kv_heads == 2


def test_folder_and_file_paths(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(LLAMA))
    assert spec_from_path(tmp_path) == spec_from_path(tmp_path / "config.json")


@pytest.mark.parametrize(
    ("change", "error", "field"),
    [
        ({"model_type": "not_a_model"}, UnknownNameError, "model_type"),
        ({"hidden_size": 0}, InvalidValueError, "hidden_size"),
        ({"hidden_size": -64}, InvalidValueError, "hidden_size"),
        ({"hidden_size": math.nan}, InvalidValueError, "hidden_size"),
        ({"hidden_size": "64"}, InvalidValueError, "hidden_size"),
        ({"hidden_size": 10**12}, InvalidValueError, "hidden_size"),
        ({"num_hidden_layers": True}, InvalidValueError, "num_hidden_layers"),
        ({"num_key_value_heads": 3}, InvalidValueError, "num_key_value_heads"),
        ({"tie_word_embeddings": "yes"}, InvalidValueError, "tie_word_embeddings"),
        ({"num_attention_heads": 128}, InvalidValueError, "num_attention_heads"),
    ],
)
def test_bad_values_name_the_field(
    change: dict[str, Any], error: type[Exception], field: str
) -> None:
    with pytest.raises(error) as info:
        spec_from_config({**LLAMA, **change})
    assert field in str(info.value)


@pytest.mark.parametrize(
    "missing", ["model_type", "hidden_size", "num_hidden_layers", "vocab_size"]
)
def test_missing_required_field(missing: str) -> None:
    cfg = {k: v for k, v in LLAMA.items() if k != missing}
    with pytest.raises(MissingFieldError) as info:
        spec_from_config(cfg)
    assert missing in str(info.value)


def test_moe_more_active_than_total_experts() -> None:
    cfg = {**LLAMA, "model_type": "mixtral", "num_local_experts": 2, "num_experts_per_tok": 3}
    with pytest.raises(InvalidValueError, match="num_experts_per_tok"):
        spec_from_config(cfg)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"{not json", "malformed JSON"),
        (b"[1, 2]", "JSON object"),
        (b"\xff\xfe\x00garbage", "UTF-8"),
        (b'{"model_type": "llama"', "malformed JSON"),
    ],
)
def test_bad_files(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(content)
    with pytest.raises(SourceError, match=problem):
        spec_from_path(path)


def test_folder_without_config(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"no config\.json"):
        spec_from_path(tmp_path)


def test_oversized_config_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    with path.open("wb") as f:
        f.truncate(5 * 2**20)
    with pytest.raises(SourceError, match="too large"):
        spec_from_path(path)

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


# ------------------------------------------------------- paths, defaults and classes


def test_native_count_says_so_and_needs_no_torch() -> None:
    # A native family is read without importing torch (CLI start-up time).
    code = (
        "import sys, json; from modelmem.model.sources.hf_config import spec_from_config; "
        f"s = spec_from_config(json.loads({json.dumps(json.dumps(LLAMA))})); "
        "assert s.count_path == 'native', s.count_path; "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    )
    import subprocess
    import sys

    src = str(Path(__file__).resolve().parents[2] / "src")
    done = subprocess.run(
        [sys.executable, "-c", code], env={"PYTHONPATH": src}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "count path: native (exact)" in spec_from_config(LLAMA).notes


def test_type_only_the_reference_path_knows_is_refused_without_torch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from modelmem.model.sources import reference

    monkeypatch.setattr(reference, "reference_available", lambda: False)
    with pytest.raises(InvalidValueError) as e:
        spec_from_config({"model_type": "jamba", "hidden_size": 64})
    assert e.value.field == "model_type"
    assert "pip install 'modelmem[measure]'" in str(e.value) and "\n" not in str(e.value)


def test_other_class_without_torch_counts_the_language_model_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from modelmem.model.sources import reference

    monkeypatch.setattr(reference, "reference_available", lambda: False)
    spec = spec_from_config({**LLAMA, "architectures": ["LlamaForSequenceClassification"]})
    assert spec.count_path == "native"
    assert any("LlamaForSequenceClassification" in n and "measure" in n for n in spec.notes)


def test_deepseek_v2_without_experts_per_token_is_counted_and_says_active_is_unknown() -> None:
    config = {**load_fixture("deepseek-ai/DeepSeek-V2-Lite"), "num_experts_per_tok": None}
    spec = spec_from_config(config)
    assert spec.moe is not None and spec.moe.experts_per_token == spec.moe.num_experts
    assert any("active parameter count cannot be computed" in n for n in spec.notes)
    k = load_fixture("deepseek-ai/DeepSeek-V2-Lite")["num_experts_per_tok"]
    from modelmem.model.params import count_params

    assert (
        count_params(spec).total
        == count_params(spec_from_config({**config, "num_experts_per_tok": k})).total
    )


def test_qwen2_moe_ignores_a_zero_window_it_does_not_use() -> None:
    config = {
        **LLAMA,
        "model_type": "qwen2_moe",
        "num_experts": 4,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 32,
        "shared_expert_intermediate_size": 64,
        "sliding_window": 0,
        "use_sliding_window": False,
    }
    spec = spec_from_config(config)
    assert spec.sliding_window is None and set(spec.attention_layers) == {"full"}
    with pytest.raises(InvalidValueError, match="sliding_window"):
        spec_from_config({**config, "use_sliding_window": True})


def test_family_table_reads_cohere_parallel_block_and_qk_norm() -> None:
    spec = spec_from_config({**LLAMA, "model_type": "cohere", "use_qk_norm": True})
    a = spec.attention
    assert a is not None and a.qk_norm and a.qk_norm_shape == "matrix"
    assert spec.norms_per_layer == 1 and spec.parallel_residual and spec.tie_word_embeddings
    assert (spec.norm, spec.norm_bias) == ("layernorm", False)


def test_family_table_starcoder2_default_kv_heads_and_window() -> None:
    config = {k: v for k, v in LLAMA.items() if k != "num_key_value_heads"}
    spec = spec_from_config({**config, "model_type": "starcoder2", "sliding_window": 16})
    assert spec.attention is not None and spec.attention.num_kv_heads == 2  # class default
    assert set(spec.attention_layers) == {"sliding"} and spec.sliding_window == 16
    assert spec.mlp is not None and not spec.mlp.gated and spec.mlp.bias


def test_exaone4_letter_pattern() -> None:
    config = {**LLAMA, "model_type": "exaone4", "num_hidden_layers": 4}
    spec = spec_from_config({**config, "sliding_window": 8, "sliding_window_pattern": "LLLG"})
    assert spec.attention_layers == ("sliding", "sliding", "sliding", "full")


@pytest.mark.oracle
def test_reference_path_fills_the_fields_estimates_need() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    config = {
        "model_type": "jamba",
        "vocab_size": 128,
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "num_experts": 4,
        "num_experts_per_tok": 2,
        "attn_layer_period": 2,
        "attn_layer_offset": 1,
        "expert_layer_period": 2,
        "expert_layer_offset": 1,
        "pad_token_id": 0,
    }
    spec = spec_from_config(config)
    assert spec.count_path == "reference" and spec.architecture == "JambaForCausalLM"
    assert spec.attention_layers == ("ssm", "full", "ssm", "full")
    a = spec.attention
    assert a is not None and (a.num_heads, a.num_kv_heads, a.head_dim) == (4, 2, 8)
    assert spec.moe is not None and spec.mlp_layers == ("dense", "moe", "dense", "moe")
    assert any("count path: reference" in n for n in spec.notes)
    with pytest.raises(UnknownNameError):
        spec_from_config({"model_type": "no_such_model_type"})
    remote = {"model_type": "no_such_model_type", "auto_map": {"AutoConfig": "x.Config"}}
    with pytest.raises(InvalidValueError, match="never runs Hub code"):
        spec_from_config(remote)


def test_coverage_table_lists_every_native_family() -> None:
    from modelmem.model.sources.hf_config import SUPPORTED_MODEL_TYPES

    table = (Path(__file__).resolve().parents[2] / "docs" / "coverage.md").read_text()
    missing = [
        t for t in SUPPORTED_MODEL_TYPES if t != "bert" and f"| `{t}` | native |" not in table
    ]
    assert not missing, missing

"""Trainable parameters from an adapter_config.json equal what PEFT builds from it."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from modelmem.memory.finetune import adapter_trainable_params
from modelmem.model.sources.adapter import read_adapter_file
from modelmem.model.sources.hf_config import spec_from_config

from ..conftest import load_fixture
from .reference import build_on_meta

peft = pytest.importorskip("peft", reason="adapter oracle needs peft (the 'measure' extra)")

pytestmark = pytest.mark.oracle

CASES: list[tuple[str, dict[str, Any]]] = [
    ("meta-llama/Llama-3.1-8B", {"r": 16, "target_modules": ["q_proj", "v_proj"]}),
    ("meta-llama/Llama-3.1-8B", {"r": 8, "target_modules": "all-linear", "use_dora": True}),
    # one regex over whole module paths: attention projections of the first ten layers
    (
        "meta-llama/Llama-3.1-8B",
        {"r": 8, "target_modules": r"model\.layers\.\d\.self_attn\.(q|k|v|o)_proj"},
    ),
    # per-module ranks and a subset of layers
    (
        "Qwen/Qwen2.5-7B",
        {
            "r": 8,
            "target_modules": ["q_proj", "k_proj", "v_proj", "down_proj"],
            "rank_pattern": {"down_proj": 32, r"model\.layers\.0\.self_attn\.q_proj": 64},
            "layers_to_transform": [0, 1, 2, 5],
        },
    ),
    # trainable copies of the embeddings and the head, LoRA biases, excluded modules
    (
        "meta-llama/Llama-3.1-8B",
        {
            "r": 4,
            "target_modules": ["q_proj", "v_proj", "up_proj"],
            "modules_to_save": ["lm_head", "embed_tokens"],
            "exclude_modules": r"model\.layers\.(1|2)\..*",
            "lora_bias": True,
        },
    ),
    ("openai-community/gpt2", {"r": 4, "target_modules": ["c_attn"], "bias": "lora_only"}),
    ("openai-community/gpt2", {"r": 4, "target_modules": ["c_attn", "c_fc"], "bias": "all"}),
    ("google/gemma-2-9b", {"r": 8}),  # PEFT's default targets for the family
    # MoE: stacked experts wrapped as parameters, with a per-module rank pattern elsewhere
    ("mistralai/Mixtral-8x7B-v0.1", {"r": 8, "target_modules": "all-linear"}),
    (
        "deepseek-ai/DeepSeek-V2-Lite",
        {
            "r": 8,
            "target_modules": ["q_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
            "rank_pattern": {"o_proj": 16},
        },
    ),
]


def peft_trainable(config: dict[str, Any], adapter: dict[str, Any]) -> int:
    model = build_on_meta(config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wrapped = peft.get_peft_model(model, peft.LoraConfig(**adapter))
    return sum(p.numel() for p in wrapped.parameters() if p.requires_grad)


@pytest.mark.parametrize(("hub_id", "adapter"), CASES)
def test_adapter_count_equals_peft(hub_id: str, adapter: dict[str, Any], tmp_path: Path) -> None:
    config = load_fixture(hub_id)
    spec = spec_from_config(config)
    # the adapter_config.json PEFT itself writes for the same LoraConfig
    peft.LoraConfig(**adapter).save_pretrained(str(tmp_path))
    ours = adapter_trainable_params(spec, read_adapter_file(tmp_path))
    assert ours == peft_trainable(config, adapter)

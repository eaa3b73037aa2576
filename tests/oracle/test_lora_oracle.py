"""LoRA trainable parameters equal what PEFT builds on the same model (meta device)."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from modelmem.memory.finetune import lora_trainable_params
from modelmem.model.sources.hf_config import spec_from_config

from ..conftest import load_fixture
from .reference import build_on_meta

peft = pytest.importorskip("peft", reason="LoRA oracle needs peft (the 'measure' extra)")

pytestmark = pytest.mark.oracle

CASES = [
    ("meta-llama/Llama-2-7b-hf", 8, None, False),
    ("meta-llama/Llama-3.1-8B", 16, "all-linear", False),
    ("meta-llama/Llama-3.1-8B", 16, "all-linear", True),
    ("Qwen/Qwen2.5-7B", 32, ["q_proj", "k_proj", "v_proj", "o_proj"], False),
    ("openai-community/gpt2", 4, None, False),
    ("mistralai/Mixtral-8x7B-v0.1", 8, ["q_proj", "v_proj", "gate"], False),
    # PEFT >= 0.21 wraps transformers 5's stacked expert parameters (ParamWrapper, rank 2r
    # on the fused gate_up_proj); routers are not nn.Linear; DeepSeek's dense and shared
    # MLPs lose gate_proj/up_proj/down_proj to the experts' mapping
    ("mistralai/Mixtral-8x7B-v0.1", 8, "all-linear", False),
    ("mistralai/Mixtral-8x7B-v0.1", 4, ["w1", "w2", "w3"], False),
    ("Qwen/Qwen3-30B-A3B", 8, "all-linear", False),
    ("Qwen/Qwen3-30B-A3B", 16, ["q_proj", "gate_proj", "up_proj", "down_proj"], False),
    ("deepseek-ai/DeepSeek-V2-Lite", 8, "all-linear", False),
    ("deepseek-ai/DeepSeek-V3", 4, "all-linear", False),
    ("openai/gpt-oss-20b", 8, "all-linear", False),
    ("microsoft/Phi-3-mini-4k-instruct", 8, ["qkv_proj", "gate_up_proj"], False),
    ("google/gemma-2-9b", 8, None, False),
]


def peft_trainable(config: dict[str, Any], rank: int, targets: Any, dora: bool) -> int:
    model = build_on_meta(config)
    lora = peft.LoraConfig(r=rank, target_modules=targets, use_dora=dora)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wrapped = peft.get_peft_model(model, lora)
    return sum(p.numel() for p in wrapped.parameters() if p.requires_grad)


@pytest.mark.parametrize(("hub_id", "rank", "targets", "dora"), CASES)
def test_lora_count_equals_peft(hub_id: str, rank: int, targets: Any, dora: bool) -> None:
    config = load_fixture(hub_id)
    spec = spec_from_config(config)
    ours = lora_trainable_params(spec, rank, targets, dora=dora)
    assert ours == peft_trainable(config, rank, targets, dora)


# The dense families of the native family table, on shrunken copies of their default
# configs. (The MoE ones — olmoe, glm4_moe, qwen3_next, llama4_text — need PEFT's
# stacked-expert conversion for their family in memory/finetune.py first.)
TABLE_DENSE = (
    "cohere",
    "cohere2",
    "olmo2",
    "granite",
    "granitemoe",
    "starcoder2",
    "phi",
    "stablelm",
    "gptj",
    "glm4",
    "smollm3",
    "exaone4",
)
SHRUNK = {
    "vocab_size": 128,
    "hidden_size": 64,
    "n_embd": 64,
    "num_hidden_layers": 3,
    "n_layer": 3,
    "num_attention_heads": 4,
    "n_head": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 96,
    "num_local_experts": 4,
    "num_experts_per_tok": 2,
    "pad_token_id": 0,
}


def shrunk_default(model_type: str) -> dict[str, Any]:
    from .reference import transformers

    config = transformers.CONFIG_MAPPING[model_type]().to_dict()
    config.pop("layer_types", None)  # re-derived for the shrunken layer count
    config.update({k: v for k, v in SHRUNK.items() if k in config}, model_type=model_type)
    return config


@pytest.mark.parametrize("model_type", TABLE_DENSE)
def test_lora_all_linear_equals_peft_on_table_families(model_type: str) -> None:
    config = shrunk_default(model_type)
    ours = lora_trainable_params(spec_from_config(config), 8, "all-linear")
    assert ours == peft_trainable(config, 8, "all-linear", False)

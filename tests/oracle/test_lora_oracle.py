"""LoRA trainable parameters equal what PEFT builds on the same model (meta device)."""

from __future__ import annotations

import random
import warnings
from typing import Any

import pytest

from modelmem.errors import InvalidValueError
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
    # BertForMaskedLM: the prediction head's transform is adapted, its decoder is not
    ("google-bert/bert-base-uncased", 8, "all-linear", False),
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


# Shrunken copies of the default configs: the native family table and the reference path
# (the model built on the meta device), dense, MoE, hybrid and attention-free.
TABLE_DENSE = (
    "cohere",
    "cohere2",
    "olmo2",
    "granite",
    "starcoder2",
    "phi",
    "stablelm",
    "gptj",
    "glm4",
    "smollm3",
    "exaone4",
)
# PEFT >= 0.21 converts the targets of the types transformers 5 converts with its qwen2_moe
# and mixtral patterns (experts wrapped as parameters); the others keep plain modules.
MOE = (
    "olmoe",
    "glm4_moe",
    "qwen3_next",
    "llama4_text",
    "granitemoe",
    "minimax",
    "flex_olmo",
    "ernie4_5_moe",
    "exaone_moe",
    "cohere2_moe",
    "jetmoe",
    "jamba",
    "nemotron_h",
)
REFERENCE_DENSE = ("roberta", "roberta-prelayernorm", "rwkv", "git", "blt")
SHRUNK: dict[str, Any] = {
    "vocab_size": 128,
    "hidden_size": 64,
    "n_embd": 64,
    "num_hidden_layers": 4,  # Qwen3-Next: three linear-attention layers, one full
    "n_layer": 4,
    "num_attention_heads": 4,
    "n_head": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "intermediate_size": 96,
    "num_local_experts": 4,
    "num_experts": 4,
    "n_routed_experts": 4,
    "num_experts_per_tok": 2,
    "moe_intermediate_size": 32,
    "shared_expert_intermediate_size": 48,
    "first_k_dense_replace": 1,
    "n_group": 1,
    "topk_group": 1,
    "linear_num_key_heads": 2,
    "linear_num_value_heads": 4,
    "linear_key_head_dim": 16,
    "linear_value_head_dim": 16,
    "state_size": 8,
    "mamba_d_state": 8,
    "ssm_state_size": 8,
    "mamba_n_heads": 8,
    "mamba_d_head": 16,
    "n_groups": 1,
    "num_heads": 8,
    "time_step_rank": 8,
    "pad_token_id": 0,
    "max_position_embeddings": 256,
}
# per-layer lists of the full-size default, re-derived by the class for the shrunken count
PER_LAYER = ("layer_types", "no_rope_layers", "moe_layers", "mlp_layer_types")


def shrunk_default(model_type: str, changes: dict[str, Any] | None = None) -> dict[str, Any]:
    from .reference import transformers

    config = transformers.CONFIG_MAPPING[model_type]().to_dict()
    for key in PER_LAYER:
        config.pop(key, None)
    wanted = {**SHRUNK, **(changes or {})}
    config.update({k: v for k, v in wanted.items() if k in config}, model_type=model_type)
    return config


def randomised(model_type: str, seed: int) -> dict[str, Any]:
    """The shrunken default with other widths, head and expert counts (seeded)."""
    rng = random.Random(f"{model_type}/{seed}")
    heads = rng.choice((2, 4))
    return shrunk_default(
        model_type,
        {
            "hidden_size": heads * rng.choice((8, 16)),
            "n_embd": heads * 16,
            "num_attention_heads": heads,
            "n_head": heads,
            "num_key_value_heads": rng.choice([k for k in (1, 2, 4) if heads % k == 0]),
            "head_dim": rng.choice((8, 16)),
            "intermediate_size": rng.choice((40, 72)),
            "moe_intermediate_size": rng.choice((24, 48)),
            "shared_expert_intermediate_size": rng.choice((16, 56)),
            "num_local_experts": rng.choice((3, 6)),
            "num_experts": rng.choice((3, 6)),
            "n_routed_experts": rng.choice((3, 6)),
            "num_hidden_layers": rng.choice((4, 5)),
        },
    )


TARGET_LISTS: tuple[Any, ...] = (
    "all-linear",
    ["q_proj", "gate_proj", "up_proj", "down_proj"],  # experts in the converted types
    ["q_proj", "v_proj", "gate"],  # the router: a Linear, a parameter, or refused
    ["in_proj", "x_proj"],  # Mamba mixers
)


def assert_same_as_peft(config: dict[str, Any], rank: int, targets: Any) -> None:
    """The same count as PEFT where it builds the adapters, a one-line refusal where it
    refuses."""
    spec = spec_from_config(config)
    try:
        expected = peft_trainable(config, rank, targets, False)
    except ValueError:
        with pytest.raises(InvalidValueError) as refused:
            lora_trainable_params(spec, rank, targets)
        assert "\n" not in str(refused.value)
        return
    assert lora_trainable_params(spec, rank, targets) == expected


@pytest.mark.parametrize("model_type", TABLE_DENSE + REFERENCE_DENSE)
def test_lora_all_linear_equals_peft_on_dense_families(model_type: str) -> None:
    assert_same_as_peft(shrunk_default(model_type), 8, "all-linear")


@pytest.mark.parametrize("targets", TARGET_LISTS, ids=lambda t: "+".join(t) if t else "")
@pytest.mark.parametrize("model_type", MOE)
def test_lora_equals_peft_on_moe_and_hybrid_families(model_type: str, targets: Any) -> None:
    assert_same_as_peft(shrunk_default(model_type), 8, targets)


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("model_type", MOE[:10])
def test_lora_equals_peft_on_randomised_moe_configs(model_type: str, seed: int) -> None:
    config = randomised(model_type, seed)
    for targets in TARGET_LISTS[:2]:
        assert_same_as_peft(config, 4, targets)


def default_config(model_type: str) -> dict[str, Any]:
    from .reference import transformers

    config: dict[str, Any] = transformers.CONFIG_MAPPING[model_type]().to_dict()
    config["model_type"] = model_type
    return config


@pytest.mark.parametrize(
    "model_type", ["mamba", "mamba2", "falcon_mamba", "nemotron_h", "falcon_h1"]
)
def test_mamba_out_proj_is_refused_as_peft_refuses(model_type: str) -> None:
    # (falcon_h1's mixer widths must agree with each other: its default config, unshrunk)
    config = default_config(model_type) if model_type == "falcon_h1" else shrunk_default(model_type)
    with pytest.raises(ValueError, match="out_proj"):
        peft_trainable(config, 8, "all-linear", False)
    with pytest.raises(InvalidValueError, match="out_proj") as refused:
        lora_trainable_params(spec_from_config(config), 8, "all-linear")
    assert "\n" not in str(refused.value) and "in_proj" in str(refused.value)

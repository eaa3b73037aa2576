"""FLOP formulas against PyTorch's own count (torch.utils.flop_counter.FlopCounterMode) on
tiny transformers models built from config dicts, on CPU.

Models run with eager attention and eager experts: FlopCounterMode counts matmuls
(mm/addmm/bmm) but has no formula for the CPU SDPA kernel nor for grouped_mm, which would
drop the attention or the experts from its count. Eager attention computes the whole s×s
score matrix and masks it, so prefill is compared with ``causal=False``. With these
settings the counts agree exactly, not within a tolerance.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from modelmem.compute import forward_flops, matmul_params, training_flops
from modelmem.model.sources.hf_config import spec_from_config

torch = pytest.importorskip("torch", reason="oracle tests need the 'measure' extra (torch)")
transformers = pytest.importorskip(
    "transformers", reason="oracle tests need the 'measure' extra (transformers)"
)
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

pytestmark = pytest.mark.oracle

CONFIGS: dict[str, dict[str, Any]] = {
    "llama-gqa": {
        "model_type": "llama",
        "vocab_size": 512,
        "hidden_size": 64,
        "intermediate_size": 160,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 256,
    },
    "gpt2": {
        "model_type": "gpt2",
        "vocab_size": 500,
        "n_embd": 64,
        "n_layer": 2,
        "n_head": 4,
        "n_positions": 128,
        "bos_token_id": 0,
        "eos_token_id": 0,
    },
    "mixtral-moe": {
        "model_type": "mixtral",
        "vocab_size": 512,
        "hidden_size": 64,
        "intermediate_size": 96,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "num_local_experts": 4,
        "num_experts_per_tok": 2,
        "max_position_embeddings": 256,
    },
    "mistral-sliding": {
        "model_type": "mistral",
        "vocab_size": 512,
        "hidden_size": 64,
        "intermediate_size": 160,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "sliding_window": 8,
        "max_position_embeddings": 256,
    },
    "deepseek-v3-mla-moe": {
        "model_type": "deepseek_v3",
        "vocab_size": 512,
        "hidden_size": 64,
        "intermediate_size": 128,
        "moe_intermediate_size": 32,
        "num_hidden_layers": 2,
        "first_k_dense_replace": 1,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "n_routed_experts": 8,
        "num_experts_per_tok": 2,
        "n_shared_experts": 1,
        "n_group": 1,
        "topk_group": 1,
        "q_lora_rank": 32,
        "kv_lora_rank": 16,
        "qk_nope_head_dim": 16,
        "qk_rope_head_dim": 8,
        "v_head_dim": 16,
        "max_position_embeddings": 256,
    },
    "qwen2-moe-shared-expert": {
        "model_type": "qwen2_moe",
        "vocab_size": 512,
        "hidden_size": 64,
        "intermediate_size": 128,
        "moe_intermediate_size": 32,
        "shared_expert_intermediate_size": 48,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "num_experts": 4,
        "num_experts_per_tok": 2,
        "max_position_embeddings": 256,
    },
}


def build(config: dict[str, Any]) -> Any:
    cfg_dict = dict(config)
    model_type = cfg_dict.pop("model_type")
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cfg = transformers.AutoConfig.for_model(model_type, **cfg_dict)
        return transformers.AutoModelForCausalLM.from_config(
            cfg, attn_implementation="eager", experts_implementation="eager"
        )


def counted(fn: Any) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_prefill_forward_flops_equal_the_formula(name: str) -> None:
    config = CONFIGS[name]
    model = build(config).eval()
    spec = spec_from_config(config, name=name)
    s = 16
    ids = torch.randint(0, 100, (1, s))
    with torch.no_grad():
        measured = counted(lambda: model(ids))
    assert measured == forward_flops(spec, s, causal=False)
    # the linear part alone is 2·N_mm per token: attention is the rest
    assert measured > 2 * s * matmul_params(spec)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_training_step_is_three_forwards(name: str) -> None:
    config = CONFIGS[name]
    model = build(config).train()
    spec = spec_from_config(config, name=name)
    s = 12
    ids = torch.randint(0, 100, (1, s))

    def step() -> None:
        model(ids, labels=ids).loss.backward()

    assert counted(step) == training_flops(spec, s, causal=False)


@pytest.mark.parametrize("name", ["llama-gqa", "mistral-sliding", "mixtral-moe"])
def test_decode_step_flops_equal_the_formula(name: str) -> None:
    """One new token after 20 cached: full layers attend 21 keys; transformers' sliding
    cache keeps the window, so a sliding layer attends min(21, W) — the causal count."""
    config = CONFIGS[name]
    model = build(config).eval()
    spec = spec_from_config(config, name=name)
    past = 20
    ids = torch.randint(0, 100, (1, past + 1))
    with torch.no_grad():
        cache = model(ids[:, :past], use_cache=True).past_key_values
        measured = counted(lambda: model(ids[:, past:], past_key_values=cache, use_cache=True))
    assert measured == forward_flops(spec, 1, past=past)


def test_mla_decode_reexpands_the_cached_latent_in_transformers() -> None:
    """transformers caches DeepSeek's compressed latent and runs kv_b_proj over every
    cached token at each step: 2·r_kv·n_h·(d_nope + d_v) FLOPs per cached token and layer
    on top of the formula (engines that implement MLA absorb kv_b_proj instead)."""
    config = CONFIGS["deepseek-v3-mla-moe"]
    model = build(config).eval()
    spec = spec_from_config(config, name="mla")
    past = 20
    ids = torch.randint(0, 100, (1, past + 1))
    with torch.no_grad():
        cache = model(ids[:, :past], use_cache=True).past_key_values
        measured = counted(lambda: model(ids[:, past:], past_key_values=cache, use_cache=True))
    # 2 · 16 · 4 · (16 + 16) = 4,096 per cached token and layer; 20 tokens × 2 layers
    reexpand = 2 * 16 * 4 * (16 + 16) * past * 2
    assert measured == forward_flops(spec, 1, past=past) + reexpand


# ------------------------------------------------ recurrent, hybrid and MoE layer kinds


def _shrunk(model_type: str) -> dict[str, Any]:
    from .test_lora_oracle import shrunk_default

    return shrunk_default(model_type)


def _conv_padding(spec: Any) -> int:
    """FlopCounterMode counts a causal depthwise conv over its padded output: k − 1 more
    positions than tokens, which the mixer then cuts off (2·C·k per position and layer)."""
    from modelmem.model.params import tensor_inventory

    return sum(
        2 * t.shape[0] * t.shape[2] * (t.shape[2] - 1) * t.copies
        for t in tensor_inventory(spec)
        if len(t.shape) == 3 and t.shape[1] == 1
    )


def _prefill(config: dict[str, Any], s: int) -> int:
    model = build(config).eval()
    ids = torch.randint(0, 100, (1, s))
    with torch.no_grad():
        return counted(lambda: model(ids, use_cache=False))


# Mamba-1 mixers (the scan's y = C·h contraction), Jamba's SSM + MoE hybrid (a router that
# is its own module), RG-LRU + sliding attention, and MoE types of both paths.
EXACT_KINDS = ("mamba", "falcon_mamba", "jamba", "recurrent_gemma", "olmoe", "flex_olmo")


@pytest.mark.parametrize("model_type", EXACT_KINDS)
def test_recurrent_and_moe_layer_kinds_equal_the_formula(model_type: str) -> None:
    config = _shrunk(model_type)
    spec = spec_from_config(config)
    for s in (8, 16):
        expected = forward_flops(spec, s, causal=False) + _conv_padding(spec)
        assert _prefill(config, s) == expected, s


@pytest.mark.parametrize("model_type", ["mamba2", "qwen3_next"])
def test_chunked_mixers_cost_what_the_formula_says_per_token(model_type: str) -> None:
    """Mamba-2's SSD and the gated delta-net run in chunks (256 and 64 tokens) that
    transformers' PyTorch path pads whole, so their chunk matmuls cost the same at 8 and 16
    tokens: every per-token term — projections, full-attention layers, convolutions — is
    the difference, and no recurrent layer is priced as attention."""
    config = _shrunk(model_type)
    spec = spec_from_config(config)
    grown = _prefill(config, 16) - _prefill(config, 8)
    assert grown == forward_flops(spec, 16, causal=False) - forward_flops(spec, 8, causal=False)


@pytest.mark.parametrize("model_type", ["mamba", "jamba", "olmoe"])
def test_recurrent_training_step_is_three_forwards_but_for_the_conv(model_type: str) -> None:
    """Forward + backward = 3× forward for every matmul, the Mamba scan's included. The
    depthwise convolution is left out of both sides: FlopCounterMode prices its backward as
    if it were a dense convolution (it ignores the groups)."""
    from modelmem.model.params import tensor_inventory

    config = _shrunk(model_type)
    spec = spec_from_config(config)
    model = build(config).train()
    s = 12
    ids = torch.randint(0, 100, (1, s))
    with FlopCounterMode(display=False) as counter:
        model(ids, labels=ids, use_cache=False).loss.backward()
    by_op = {str(op): n for op, n in counter.get_flop_counts()["Global"].items()}
    measured = sum(n for op, n in by_op.items() if "convolution" not in op)
    conv_per_token = sum(
        2 * t.shape[0] * t.shape[2] * t.copies
        for t in tensor_inventory(spec)
        if len(t.shape) == 3 and t.shape[1] == 1
    )
    assert measured == training_flops(spec, s, causal=False) - 3 * s * conv_per_token

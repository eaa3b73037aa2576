"""FLOPs and time per token: hand-derived values on tiny configs (derivations in comments)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from modelmem.compute import (
    attention_flops_per_token,
    causal_keys,
    expert_touch_fraction,
    forward_flops,
    inference_cost,
    matmul_params,
    training_cost,
    training_flops,
)
from modelmem.errors import InvalidValueError
from modelmem.model.sources import resolve
from modelmem.model.sources.hf_config import spec_from_config
from modelmem.model.spec import ModelSpec

# h=64, I=160, L=2, n_h=4, n_kv=2, d=16, V=512, untied head
TINY_LLAMA: dict[str, Any] = {
    "model_type": "llama",
    "vocab_size": 512,
    "hidden_size": 64,
    "intermediate_size": 160,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 256,
}
# per layer: q 64·64 + k 64·32 + v 64·32 + o 64·64 = 12,288; MLP 3·64·160 = 30,720
# → 43,008 × 2 layers = 86,016; lm_head 512·64 = 32,768 → N_mm = 118,784
TINY_LLAMA_NMM = 118_784
# attention per (query, key) and layer: 2·n_h·(d_qk + d_v) = 2·4·32 = 256
PER_KEY = 256


def tiny(**overrides: Any) -> ModelSpec:
    return spec_from_config({**TINY_LLAMA, **overrides}, name="tiny")


def test_matmul_params_dense() -> None:
    assert matmul_params(tiny()) == TINY_LLAMA_NMM


def test_matmul_params_tied_head_counts_the_embedding_matmul() -> None:
    # tying removes no matmul: the head still multiplies by the 512×64 matrix
    assert matmul_params(tiny(tie_word_embeddings=True)) == TINY_LLAMA_NMM


def test_matmul_params_moe_counts_k_of_e_experts() -> None:
    spec = spec_from_config(
        {
            **TINY_LLAMA,
            "model_type": "mixtral",
            "intermediate_size": 96,
            "num_local_experts": 4,
            "num_experts_per_tok": 2,
        }
    )
    # per layer: attention 12,288 + router 64·4 = 256 + 2 experts × 3·64·96 = 36,864
    # = 49,408 × 2 = 98,816; + lm_head 32,768 = 131,584
    assert matmul_params(spec) == 131_584


def test_causal_keys() -> None:
    assert causal_keys(16) == 136  # 16·17/2
    assert causal_keys(8, 8) == 36  # window not yet full
    assert causal_keys(20, 8) == 36 + 12 * 8  # then 8 keys per query


def test_forward_flops_prefill() -> None:
    spec = tiny()
    linear = 16 * 2 * TINY_LLAMA_NMM  # 3,801,088
    # causal: Σ_{t=1..16} t = 136 keys per layer; full square: 16·16 = 256
    assert forward_flops(spec, 16) == linear + 2 * PER_KEY * 136
    assert forward_flops(spec, 16, causal=False) == linear + 2 * PER_KEY * 256


def test_decode_step_attends_the_whole_context_or_the_window() -> None:
    assert forward_flops(tiny(), 1, past=20) == 2 * TINY_LLAMA_NMM + 2 * PER_KEY * 21
    assert attention_flops_per_token(tiny(), 21) == 2 * PER_KEY * 21
    windowed = tiny(model_type="mistral", sliding_window=8)
    assert attention_flops_per_token(windowed, 21) == 2 * PER_KEY * 8
    assert attention_flops_per_token(windowed, 5) == 2 * PER_KEY * 5


def test_mla_attention_uses_qk_and_v_head_dims() -> None:
    spec = resolve("deepseek-v3").spec
    assert spec is not None and spec.attention is not None
    a = spec.attention
    # DeepSeek-V3: 128 heads, d_qk = 128 + 64 = 192, d_v = 128, 61 layers
    assert (a.num_heads, a.head_dim, a.v_head_dim, spec.num_layers) == (128, 192, 128, 61)
    assert attention_flops_per_token(spec, 1000) == 61 * 2 * 128 * (192 + 128) * 1000


def test_training_is_three_forwards_four_with_recompute() -> None:
    spec = tiny()
    assert training_flops(spec, 16) == 3 * forward_flops(spec, 16)
    assert training_flops(spec, 16, recompute=True) == 4 * forward_flops(spec, 16)


def test_expert_touch_fraction() -> None:
    spec = resolve("mixtral-8x7b").spec
    assert spec is not None
    assert expert_touch_fraction(spec, 1) == pytest.approx(2 / 8)
    assert expert_touch_fraction(spec, 2) == pytest.approx(1 - 0.75**2)
    assert expert_touch_fraction(tiny(), 7) == 1.0


def test_inference_cost_hand_derived() -> None:
    cost = inference_cost(
        tiny(),
        flops_per_s=1e6,
        bandwidth_bytes_per_s=1e5,
        prompt_tokens=16,
        batch=2,
        mfu=0.5,
        mbu=1.0,
    )
    # weights read per step (bf16): all params but the untied embedding table:
    # 86,016 + lm_head 32,768 + norms (2·2·64 + 64 = 320) = 119,104 params × 2 B
    assert cost.weights_read_bytes == 238_208
    # KV at context 16 for 2 sequences: 2 layers × (K+V) 2 × 2 kv heads × 16 × 2 B = 256 B
    # per token → 16 × 2 × 256
    assert cost.kv_read_bytes == 8_192
    assert cost.step.memory_s == pytest.approx((238_208 + 8_192) / 1e5)
    # compute per token at context 16: 2·118,784 + 2·256·16 = 245,760; × batch 2
    assert cost.decode_flops_per_token == 245_760
    assert cost.step.compute_s == pytest.approx(2 * 245_760 / 0.5e6)
    assert cost.step.bound == "memory bandwidth"
    assert cost.decode_tokens_per_s == pytest.approx(2 / 2.464)
    # prefill: 16·2·118,784 + 2 layers·256·136 = 3,870,720 per sequence, 2 sequences
    assert cost.prefill_flops == 3_870_720
    assert cost.prefill_s == pytest.approx(2 * 3_870_720 / 0.5e6)


def test_decode_becomes_compute_bound_with_a_large_batch() -> None:
    # context 1: a step reads 238,208 B of weights + 256 B of KV per sequence and
    # computes 238,080 FLOPs per sequence; at 1e12 FLOP/s × 0.5 and 1e9 B/s × 0.8 one
    # sequence is memory-bound, 4096 are compute-bound (1.95 ms vs 1.61 ms)
    kwargs: dict[str, Any] = {
        "flops_per_s": 1e12,
        "bandwidth_bytes_per_s": 1e9,
        "prompt_tokens": 1,
    }
    assert inference_cost(tiny(), **kwargs).step.bound == "memory bandwidth"
    big = inference_cost(tiny(), batch=4096, **kwargs)
    assert big.step.bound == "compute"
    assert big.step.seconds == big.step.compute_s


def test_price_per_million_tokens() -> None:
    cost = inference_cost(
        tiny(), flops_per_s=1e6, bandwidth_bytes_per_s=1e5, prompt_tokens=16, price_per_hour=3.6
    )
    decode = cost.to_dict()["decode"]
    # $3.6/h = $0.001/s; a million tokens at r tokens/s take 1e6/r s
    assert decode["cost_per_million_tokens"] == pytest.approx(1e3 / cost.decode_tokens_per_s)


def test_training_cost_hand_derived() -> None:
    result = training_cost(
        tiny(), tokens=1000, seq=16, flops_per_s=1e6, devices=2, mfu=0.5, price_per_hour=3.6
    )
    # per token 3 × 3,870,720 / 16 = 725,760; × 1000 tokens / (2 × 1e6 × 0.5)
    assert result.flops_per_token == pytest.approx(725_760)
    assert result.seconds == pytest.approx(725.76)
    assert result.cost == pytest.approx(3.6 * 2 * 725.76 / 3600)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"mfu": 0}, "mfu"),
        ({"mfu": 1.5}, "mfu"),
        ({"mbu": math.nan}, "mbu"),
        ({"batch": 0}, "batch"),
        ({"prompt_tokens": 0}, "prompt"),
        ({"flops_per_s": -1.0}, "flops_per_s"),
        ({"price_per_hour": 0.0}, "price_per_hour"),
    ],
)
def test_bad_inputs_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {"flops_per_s": 1e6, "bandwidth_bytes_per_s": 1e5, "prompt_tokens": 16}
    with pytest.raises(InvalidValueError) as info:
        inference_cost(tiny(), **{**args, **kwargs})
    assert info.value.field == field


def test_training_cost_refuses_zero_tokens() -> None:
    with pytest.raises(InvalidValueError, match="train_tokens"):
        training_cost(tiny(), tokens=0, seq=16, flops_per_s=1e6)


def test_recurrent_layers_have_no_attention_term() -> None:
    # Qwen3-Next: three gated delta-net layers to one full-attention layer; only the full
    # layer attends to keys: 2·n_h·(d + d) = 2·4·32 = 256 FLOPs per key, one layer
    spec = spec_from_config(
        {
            "model_type": "qwen3_next",
            "vocab_size": 128,
            "hidden_size": 64,
            "intermediate_size": 96,
            "num_hidden_layers": 4,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "num_experts": 4,
            "num_experts_per_tok": 2,
            "moe_intermediate_size": 32,
            "shared_expert_intermediate_size": 48,
            "linear_num_key_heads": 2,
            "linear_num_value_heads": 4,
            "linear_key_head_dim": 16,
            "linear_value_head_dim": 16,
        },
        name="tiny-next",
    )
    assert spec.attention_layers.count("full") == 1 and "linear" in spec.attention_layers
    assert attention_flops_per_token(spec, 100) == 256 * 100
    # the depthwise conv of each linear layer over q, k, v: 2·(2·32 + 64)·kernel per token
    la = spec.linear_attention
    assert la is not None
    conv = 3 * 2 * (2 * la.key_dim + la.value_dim) * la.conv_kernel
    assert forward_flops(spec, 1) == 2 * matmul_params(spec) + 256 + conv


def test_experts_stored_one_module_each_count_k_of_e() -> None:
    # a reference-path inventory with 4 experts as their own Linear modules, 2 per token:
    # each expert's 2·(64·96) weights count 2/4 — as one stacked [4, 96, 64] tensor does
    from dataclasses import replace

    from modelmem.model.spec import MoeSpec, ParamTensor

    base = tiny()
    experts = tuple(
        ParamTensor(
            f"model.layers.{{i}}.mlp.experts.{j}.{w}.weight", shape, "moe/experts", "linear", (0, 1)
        )
        for j in range(4)
        for w, shape in (("w1", (96, 64)), ("w2", (64, 96)))
    )
    stacked = (
        ParamTensor(
            "model.layers.{i}.mlp.experts.gate_up", (4, 96, 64), "moe/experts", "expert", (0, 1)
        ),
        ParamTensor(
            "model.layers.{i}.mlp.experts.down", (4, 64, 96), "moe/experts", "expert", (0, 1)
        ),
    )
    moe = MoeSpec(num_experts=4, experts_per_token=2, expert_intermediate_size=96)
    one_each = replace(base, count_path="reference", moe=moe, inventory=experts)
    as_stack = replace(base, count_path="reference", moe=moe, inventory=stacked)
    assert matmul_params(one_each) == matmul_params(as_stack) == 2 * 2 * 2 * 64 * 96

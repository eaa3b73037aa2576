"""LoRA trainable parameters: r·(d_in + d_out) per adapted Linear, PEFT's module matching."""

from __future__ import annotations

import pytest

from modelmem.errors import InvalidValueError
from modelmem.memory.finetune import lora_linear_params, lora_trainable_params
from modelmem.model.sources.hf_config import spec_from_config

from ..conftest import load_fixture


def test_worked_example_1024_by_512_rank_8() -> None:
    # A: 8 × 1024, B: 512 × 8 -> 8192 + 4096 = 12,288
    assert lora_linear_params(1024, 512, 8) == 1024 * 8 + 512 * 8 == 12_288


def test_llama2_7b_peft_default_q_v_rank_8() -> None:
    # 32 layers × 2 modules × 8 × (4096 + 4096) = 4,194,304 (PEFT print_trainable_parameters)
    spec = spec_from_config(load_fixture("meta-llama/Llama-2-7b-hf"))
    assert lora_trainable_params(spec, 8) == 4_194_304


def test_llama3_8b_all_linear_rank_16_and_dora() -> None:
    spec = spec_from_config(load_fixture("meta-llama/Llama-3.1-8B"))
    assert lora_trainable_params(spec, 16, "all-linear") == 41_943_040
    # DoRA adds Σ d_out per adapted layer: 32 · (4096+1024+1024+4096+14336+14336+4096)
    assert lora_trainable_params(spec, 16, "all-linear", dora=True) == 41_943_040 + 1_376_256


def test_gpt2_conv1d_targets() -> None:
    # c_attn is Conv1D(768 -> 2304): r·(768 + 2304) per layer
    spec = spec_from_config(load_fixture("openai-community/gpt2"))
    assert lora_trainable_params(spec, 4) == 12 * 4 * (768 + 2304)


def test_unknown_target_module() -> None:
    spec = spec_from_config(load_fixture("meta-llama/Llama-2-7b-hf"))
    with pytest.raises(InvalidValueError, match="lora_targets='qkv'"):
        lora_trainable_params(spec, 8, ["qkv"])
    # PEFT passes over a name that matches nothing when another one matches
    assert lora_trainable_params(spec, 8, ["q_proj", "qkv"]) == lora_trainable_params(
        spec, 8, ["q_proj"]
    )


def test_a_module_lora_cannot_wrap_is_refused() -> None:
    # gpt-oss's router is a custom module, "mlp" a whole block: PEFT refuses both, and norms
    spec = spec_from_config(load_fixture("openai/gpt-oss-20b"))
    for target in ("router", "mlp", "self_attn", "input_layernorm"):
        with pytest.raises(InvalidValueError, match=f"lora_targets='{target}'.*cannot wrap"):
            lora_trainable_params(spec, 8, ["q_proj", target])


def test_lora_on_an_embedding_is_refused_as_not_counted() -> None:
    spec = spec_from_config(load_fixture("meta-llama/Llama-2-7b-hf"))
    with pytest.raises(InvalidValueError, match=r"embed_tokens.*not counted"):
        lora_trainable_params(spec, 8, ["q_proj", "embed_tokens"])


def test_mamba_out_proj_refused_and_the_rest_counted() -> None:
    spec = spec_from_config(load_fixture("tiiuae/falcon-mamba-7b"))
    for targets in ("all-linear", ["in_proj", "out_proj"], ["conv1d"]):
        with pytest.raises(InvalidValueError, match="PEFT refuses LoRA on out_proj/conv1d"):
            lora_trainable_params(spec, 8, targets)
    # in_proj h -> 2·inner, x_proj inner -> dt_rank + 2N, dt_proj dt_rank -> inner, per layer
    ssm = spec.ssm
    assert ssm is not None
    h, inner, dt, n = spec.hidden_size, ssm.inner_size, ssm.time_step_rank, ssm.state_size
    per_layer = 8 * ((h + 2 * inner) + (inner + dt + 2 * n) + (dt + inner))
    assert lora_trainable_params(spec, 8, ["in_proj", "x_proj", "dt_proj"]) == (
        spec.num_layers * per_layer
    )


@pytest.mark.parametrize("rank", [0, -1])
def test_bad_rank(rank: int) -> None:
    with pytest.raises(InvalidValueError, match="lora_rank"):
        lora_linear_params(10, 10, rank)


def test_olmoe_experts_are_wrapped_as_parameters_as_peft_converts_them() -> None:
    # PEFT >= 0.21 converts olmoe's targets (transformers' qwen2_moe pattern): the router
    # gate.weight [E, h] and the stacked experts become ParamWrapper targets, rank 2r on
    # the fused gate_up_proj. h = 64, E = 4, I = 32, r = 8, two layers:
    spec = spec_from_config(
        {
            "model_type": "olmoe",
            "vocab_size": 128,
            "hidden_size": 64,
            "intermediate_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 4,
            "num_experts": 4,
            "num_experts_per_tok": 2,
        }
    )
    r, h, e, i = 8, 64, 4, 32
    attention = 4 * r * (h + h)  # q, k, v, o: Linear modules
    router = r * (e + h)  # gate.weight [E, h], one "expert"
    gate_up = 2 * r * e * (2 * i + h)  # [E, 2I, h] at rank 2r
    down = r * e * (h + i)  # [E, h, I]
    assert lora_trainable_params(spec, r, "all-linear") == 2 * (attention + router + gate_up + down)
    # naming the experts' old Linear names targets the stacked parameters
    experts = lora_trainable_params(spec, r, ["gate_proj", "up_proj", "down_proj"])
    assert experts == 2 * (gate_up + down)
    with pytest.raises(InvalidValueError, match="fuses gate_proj"):
        lora_trainable_params(spec, r, ["gate_proj", "down_proj"])

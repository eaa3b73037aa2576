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
    with pytest.raises(InvalidValueError, match="lora_targets"):
        lora_trainable_params(spec, 8, ["q_proj", "qkv"])


@pytest.mark.parametrize("rank", [0, -1])
def test_bad_rank(rank: int) -> None:
    with pytest.raises(InvalidValueError, match="lora_rank"):
        lora_linear_params(10, 10, rank)

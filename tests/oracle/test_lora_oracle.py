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
    # PEFT >= 0.21 also wraps 3-D expert parameters under all-linear (not counted yet);
    # the attention projections and the router are Linear layers
    ("mistralai/Mixtral-8x7B-v0.1", 8, ["q_proj", "v_proj", "gate"], False),
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

"""Every causal LM transformers knows: modelmem's count (native or reference path) equals
the meta-device count of the model transformers builds from the type's default config
(as ``to_dict`` writes it), and a type transformers cannot build is refused in one line."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from modelmem.errors import ModelMemError
from modelmem.model.params import count_params
from modelmem.model.sources.hf_config import SUPPORTED_MODEL_TYPES, spec_from_config

from .reference import torch, transformers

pytestmark = [pytest.mark.oracle, pytest.mark.slow]

from transformers.models.auto.modeling_auto import (  # noqa: E402
    MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
)

ZOO = sorted(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)


def default_config(model_type: str) -> dict[str, Any] | None:
    """The default config as a config.json holds it; None where transformers cannot even
    make its own default (a validator rejects it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            config = transformers.CONFIG_MAPPING[model_type]().to_dict()
        except Exception:  # nothing to count
            return None
    config["model_type"] = model_type
    # The causal LM is the class counted, as a config.json saved from it would say.
    config["architectures"] = [MODEL_FOR_CAUSAL_LM_MAPPING_NAMES[model_type]]
    return config


def meta_count(model_type: str) -> int | None:
    """What transformers builds for the default config, or None where it cannot."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            cfg = transformers.CONFIG_MAPPING[model_type]()
            with torch.device("meta"):
                model = transformers.AutoModelForCausalLM.from_config(cfg)
        except Exception:  # transformers' own failure is the expected refusal
            return None
    return sum(p.numel() for p in model.parameters())


def test_zoo_counts_equal_the_meta_device_count() -> None:
    mismatched: list[str] = []
    refused_badly: list[str] = []
    built = 0
    for model_type in ZOO:
        expected = meta_count(model_type)
        config = default_config(model_type)
        if config is None:
            assert expected is None, model_type
            continue
        try:
            spec = spec_from_config(config, name=model_type)
        except ModelMemError as e:
            if expected is not None or "\n" in str(e):
                refused_badly.append(f"{model_type}: {e}")
            continue
        if expected is None:
            refused_badly.append(f"{model_type}: counted, but transformers cannot build it")
            continue
        built += 1
        got = count_params(spec).total
        if got != expected:
            mismatched.append(f"{model_type} ({spec.count_path}): {got} != {expected}")
        if model_type in SUPPORTED_MODEL_TYPES and model_type != "bert":  # BertLMHeadModel
            assert spec.count_path == "native", model_type
        assert any(f"count path: {spec.count_path}" in n for n in spec.notes), model_type
    assert not mismatched, mismatched
    assert not refused_badly, refused_badly
    assert built >= 150  # the pinned transformers builds 173 of its 189 causal LMs


ENCODERS = (
    ("bert", "BertForMaskedLM"),
    ("bert", "BertForSequenceClassification"),
    ("roberta", "RobertaForMaskedLM"),
    ("xlm-roberta", "XLMRobertaForMaskedLM"),
    ("xlm-roberta", "XLMRobertaForTokenClassification"),
    ("deberta-v2", "DebertaV2ForMaskedLM"),
    ("modernbert", "ModernBertForMaskedLM"),
)


@pytest.mark.parametrize(("model_type", "architecture"), ENCODERS)
def test_encoders_count_the_class_architectures_names(model_type: str, architecture: str) -> None:
    config = transformers.CONFIG_MAPPING[model_type]().to_dict()
    config.update(model_type=model_type, architectures=[architecture])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cls = getattr(transformers, architecture)
        with torch.device("meta"):
            model = cls(transformers.CONFIG_MAPPING[model_type]())
    spec = spec_from_config(config)
    assert spec.architecture == architecture
    assert count_params(spec).total == sum(p.numel() for p in model.parameters())
    assert not spec.has_kv_cache  # an encoder keeps no cache


@pytest.mark.parametrize(
    ("model_type", "architecture"),
    [("llava", "LlavaForConditionalGeneration"), ("mistral3", "Mistral3ForConditionalGeneration")],
)
def test_multimodal_towers_are_reported_apart(model_type: str, architecture: str) -> None:
    config = transformers.CONFIG_MAPPING[model_type]().to_dict()
    config.update(model_type=model_type, architectures=[architecture])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.device("meta"):
            model = getattr(transformers, architecture)(transformers.CONFIG_MAPPING[model_type]())

    def size(module: Any) -> int:
        return sum(p.numel() for p in module.parameters())

    counted = count_params(spec_from_config(config))
    assert counted.component("vision_tower") == size(model.model.vision_tower)
    assert counted.component("projector") == size(model.model.multi_modal_projector)
    # (the language model and its head, tied weights once)
    towers = size(model.model.vision_tower) + size(model.model.multi_modal_projector)
    assert counted.text == size(model) - towers > size(model.model.language_model) // 2

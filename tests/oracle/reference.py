"""transformers as the exact reference: build a config's model on the meta device (no
memory, no weights, no Hub code) and count its parameters the way PyTorch does."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

torch = pytest.importorskip("torch", reason="oracle tests need the 'measure' extra (torch)")
transformers = pytest.importorskip(
    "transformers", reason="oracle tests need the 'measure' extra (transformers)"
)


def build_on_meta(config: dict[str, Any]) -> Any:
    """The transformers model for ``config``: the class ``architectures`` names when it is
    a transformers class, else the causal LM, BertModel for BERT (incl. the pooler) and
    the image-text-to-text model for multimodal Gemma 3."""
    cfg_dict = dict(config)
    model_type = cfg_dict.pop("model_type")
    names = cfg_dict.get("architectures") or []
    named = getattr(transformers, names[0], None) if names else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cfg = transformers.AutoConfig.for_model(model_type, **cfg_dict)
        with torch.device("meta"):
            if named is not None and isinstance(cfg, named.config_class):
                return named(cfg)
            if model_type == "bert":
                return transformers.AutoModel.from_config(cfg)
            if model_type == "gemma3":
                return transformers.Gemma3ForConditionalGeneration(cfg)
            return transformers.AutoModelForCausalLM.from_config(cfg)


def reference_param_count(config: dict[str, Any]) -> int:
    """Unique parameters (tied weights once), as ``model.parameters()`` yields them."""
    model = build_on_meta(config)
    return sum(p.numel() for p in model.parameters())


def reference_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Parameter name -> shape, for pinpointing a mismatch."""
    model = build_on_meta(config)
    return {name: tuple(p.shape) for name, p in model.named_parameters()}

"""modelmem: how much memory a large language model needs, and whether it fits.

The public API, light to import (everything loads on first use)::

    import modelmem
    r = modelmem.inference("llama-3.1-8b", context=8192)    # = `modelmem inference ... --json`
    r.total_bytes, r.components, r.to_dict()
    modelmem.train("llama-3.1-8b", zero=3, devices=8)
    modelmem.fit("llama-3.1-8b", device="RTX4090", method="qlora", checkpointing=True)
    modelmem.plan("llama-3.1-70b", device="H100-SXM", count=8, goal="train")
    modelmem.tokens("Hello", tokenizer="cl100k_base")
    modelmem.resolve("llama-3.1-8b").params.total            # 8_030_261_248
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> module. Resolved on first use, so that `import modelmem` (and the CLI's
# start-up) stays cheap; see PEP 562.
_EXPORTS: dict[str, str] = {
    "inference": "modelmem.api",
    "train": "modelmem.api",
    "fit": "modelmem.api",
    "plan": "modelmem.api",
    "measure": "modelmem.api",
    "tokens": "modelmem.api",
    "params": "modelmem.api",
    "Result": "modelmem.app.entry",
    "InvalidValueError": "modelmem.errors",
    "MissingFieldError": "modelmem.errors",
    "ModelMemError": "modelmem.errors",
    "SourceError": "modelmem.errors",
    "UnknownNameError": "modelmem.errors",
    "NumberFormat": "modelmem.formats",
    "all_formats": "modelmem.formats",
    "get_format": "modelmem.formats",
    "MemoryBreakdown": "modelmem.memory.breakdown",
    "MemoryComponent": "modelmem.memory.breakdown",
    "lora_linear_params": "modelmem.memory.finetune",
    "lora_trainable_params": "modelmem.memory.finetune",
    "RuleOfThumb": "modelmem.memory.rules",
    "rule_of_thumb": "modelmem.memory.rules",
    "ParamCount": "modelmem.model.params",
    "ParamTensor": "modelmem.model.params",
    "count_params": "modelmem.model.params",
    "tensor_inventory": "modelmem.model.params",
    "ResolvedModel": "modelmem.model.sources",
    "resolve": "modelmem.model.sources",
    "spec_from_config": "modelmem.model.sources.hf_config",
    "spec_from_path": "modelmem.model.sources.hf_config",
    "ModelSpec": "modelmem.model.spec",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'modelmem' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from modelmem.api import fit, inference, measure, params, plan, tokens, train
    from modelmem.app.entry import Result
    from modelmem.errors import (
        InvalidValueError,
        MissingFieldError,
        ModelMemError,
        SourceError,
        UnknownNameError,
    )
    from modelmem.formats import NumberFormat, all_formats, get_format
    from modelmem.memory.breakdown import MemoryBreakdown, MemoryComponent
    from modelmem.memory.finetune import lora_linear_params, lora_trainable_params
    from modelmem.memory.rules import RuleOfThumb, rule_of_thumb
    from modelmem.model.params import ParamCount, ParamTensor, count_params, tensor_inventory
    from modelmem.model.sources import ResolvedModel, resolve
    from modelmem.model.sources.hf_config import spec_from_config, spec_from_path
    from modelmem.model.spec import ModelSpec

__all__ = [
    "InvalidValueError",
    "MemoryBreakdown",
    "MemoryComponent",
    "MissingFieldError",
    "ModelMemError",
    "ModelSpec",
    "NumberFormat",
    "ParamCount",
    "ParamTensor",
    "ResolvedModel",
    "Result",
    "RuleOfThumb",
    "SourceError",
    "UnknownNameError",
    "__version__",
    "all_formats",
    "count_params",
    "fit",
    "get_format",
    "inference",
    "lora_linear_params",
    "lora_trainable_params",
    "measure",
    "params",
    "plan",
    "resolve",
    "rule_of_thumb",
    "spec_from_config",
    "spec_from_path",
    "tensor_inventory",
    "tokens",
    "train",
]

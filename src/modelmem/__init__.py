"""modelmem: how much memory a large language model needs, and whether it fits.

The public API, all pure and light to import::

    from modelmem import resolve, count_params, get_format, rule_of_thumb
    model = resolve("llama-3.1-8b")          # catalogue name, config.json path or "7B"
    model.params.total                       # 8_030_261_248
"""

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

__version__ = "0.1.0"

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
    "RuleOfThumb",
    "SourceError",
    "UnknownNameError",
    "__version__",
    "all_formats",
    "count_params",
    "get_format",
    "lora_linear_params",
    "lora_trainable_params",
    "resolve",
    "rule_of_thumb",
    "spec_from_config",
    "spec_from_path",
    "tensor_inventory",
]

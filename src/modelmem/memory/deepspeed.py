"""A DeepSpeed config (``ds_config.json``) read into training options.

Pure: the caller reads the file and passes the parsed JSON object. Only the keys that
change memory are read; every other key is ignored. A value ``"auto"`` (the Hugging Face
Trainer's placeholder) leaves the option as the caller had it. A value that is present but
not understood raises :class:`~modelmem.errors.InvalidValueError` naming the key.

Keys read (DeepSpeed config reference, https://www.deepspeed.ai/docs/config-json/)::

    zero_optimization.stage                          0-3            → zero
    zero_optimization.offload_optimizer.device       none|cpu|nvme  → offload_optimizer
    zero_optimization.offload_param.device           none|cpu|nvme  → offload_param (stage 3)
    bf16.enabled / fp16.enabled                      bool           → recipe mixed-bf16
                                                                      (fp32 when neither)
    train_micro_batch_size_per_gpu                   int ≥ 1        → batch
    gradient_accumulation_steps                      int ≥ 1        → grad_accumulation
    train_batch_size                                 int ≥ 1        checked = micro × accum × dp
    optimizer.type                                   Adam|AdamW|Lion|Adagrad → optimizer
    gradient_checkpointing                           bool           → checkpointing
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelmem.errors import InvalidValueError
from modelmem.vocabulary import OFFLOAD_DEVICES

_OPTIMIZERS = {
    "adam": "adamw",
    "adamw": "adamw",
    "cpuadam": "adamw",
    "fusedadam": "adamw",
    "lion": "lion",
    "adagrad": "adagrad",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class DeepSpeedSettings:
    """The options a config sets; ``None`` where it says nothing or ``"auto"``."""

    zero: int | None = None
    offload_optimizer: str | None = None
    offload_param: str | None = None
    recipe: str | None = None
    batch: int | None = None
    grad_accumulation: int | None = None
    train_batch_size: int | None = None
    optimizer: str | None = None
    checkpointing: bool | None = None
    notes: tuple[str, ...] = field(default=())

    def options(self) -> dict[str, Any]:
        """The settings the config fixes, as training-option keyword arguments."""
        names = (
            "zero",
            "offload_optimizer",
            "offload_param",
            "recipe",
            "batch",
            "grad_accumulation",
            "optimizer",
            "checkpointing",
        )
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


def _auto(value: object) -> bool:
    return isinstance(value, str) and value.strip().lower() == "auto"


def _section(config: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = config.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidValueError(key, value, "must be an object")
    return value


def _int(value: object, key: str, low: int, high: int) -> int | None:
    if value is None or _auto(value):
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidValueError(key, value, f'must be an integer in [{low}, {high}] or "auto"')
    return value


def _bool(value: object, key: str) -> bool | None:
    if value is None or _auto(value):
        return None
    if not isinstance(value, bool):
        raise InvalidValueError(key, value, 'must be true, false or "auto"')
    return value


def _offload(zero: Mapping[str, Any], key: str) -> str | None:
    section = _section(zero, key)
    if not section:
        return None
    device = section.get("device", "none")
    if _auto(device):
        return None
    if not isinstance(device, str) or device.lower() not in OFFLOAD_DEVICES:
        raise InvalidValueError(
            f"zero_optimization.{key}.device", device, "must be none, cpu or nvme"
        )
    return device.lower()


def parse_deepspeed_config(config: object, *, data_parallel: int = 1) -> DeepSpeedSettings:
    """The memory-relevant settings of a DeepSpeed config object (see the module docstring).

    ``data_parallel`` is the number of data-parallel ranks, used only to check
    ``train_batch_size`` = micro-batch × accumulation × ranks when all three are numbers.
    """
    if not isinstance(config, Mapping):
        raise InvalidValueError("deepspeed config", type(config).__name__, "must be an object")
    zero_section = _section(config, "zero_optimization")
    stage = _int(zero_section.get("stage"), "zero_optimization.stage", 0, 3)
    offload_optimizer = _offload(zero_section, "offload_optimizer")
    offload_param = _offload(zero_section, "offload_param")
    if offload_param not in (None, "none") and stage is not None and stage != 3:
        raise InvalidValueError(
            "zero_optimization.offload_param.device",
            offload_param,
            f"offload_param needs stage 3, the config has stage {stage}",
        )
    if offload_optimizer not in (None, "none") and stage == 0:
        raise InvalidValueError(
            "zero_optimization.offload_optimizer.device",
            offload_optimizer,
            "offload_optimizer needs stage 1, 2 or 3, the config has stage 0",
        )
    notes: list[str] = []
    bf16 = _bool(_section(config, "bf16").get("enabled"), "bf16.enabled")
    if bf16 is None and "bfloat16" in config:
        bf16 = _bool(_section(config, "bfloat16").get("enabled"), "bfloat16.enabled")
    fp16 = _bool(_section(config, "fp16").get("enabled"), "fp16.enabled")
    recipe: str | None = None
    if bf16 and fp16:
        raise InvalidValueError("fp16.enabled", True, "bf16.enabled is true too; choose one")
    if bf16 or fp16:
        recipe = "mixed-bf16"
        if fp16:
            notes.append(
                "fp16 enabled: priced as mixed-bf16 (the same bytes: 16-bit parameters and "
                "gradients, fp32 master weights and optimizer states)"
            )
    elif bf16 is False and fp16 is False:
        recipe = "fp32"
    batch = _int(
        config.get("train_micro_batch_size_per_gpu"), "train_micro_batch_size_per_gpu", 1, 2**24
    )
    accumulation = _int(
        config.get("gradient_accumulation_steps"), "gradient_accumulation_steps", 1, 2**24
    )
    total = _int(config.get("train_batch_size"), "train_batch_size", 1, 2**40)
    if total is not None and batch is not None and accumulation is not None:
        if total != batch * accumulation * data_parallel:
            raise InvalidValueError(
                "train_batch_size",
                total,
                f"must equal train_micro_batch_size_per_gpu {batch} × "
                f"gradient_accumulation_steps {accumulation} × {data_parallel} data-parallel "
                "ranks",
            )
    elif total is not None and batch is not None and accumulation is None:
        if total % (batch * data_parallel):
            raise InvalidValueError(
                "train_batch_size",
                total,
                f"not a multiple of micro-batch {batch} × {data_parallel} ranks",
            )
        accumulation = total // (batch * data_parallel)
    optimizer: str | None = None
    opt_section = _section(config, "optimizer")
    if opt_section:
        kind = opt_section.get("type")
        if not _auto(kind):
            if not isinstance(kind, str) or kind.lower() not in _OPTIMIZERS:
                raise InvalidValueError(
                    "optimizer.type", kind, "modelled: Adam, AdamW, Lion, Adagrad"
                )
            optimizer = _OPTIMIZERS[kind.lower()]
    checkpointing = _bool(config.get("gradient_checkpointing"), "gradient_checkpointing")
    return DeepSpeedSettings(
        zero=stage,
        offload_optimizer=offload_optimizer,
        offload_param=offload_param,
        recipe=recipe,
        batch=batch,
        grad_accumulation=accumulation,
        train_batch_size=total,
        optimizer=optimizer,
        checkpointing=checkpointing,
        notes=tuple(notes),
    )

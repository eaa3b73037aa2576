"""PEFT LoRA adapters: ``adapter_config.json`` read into an :class:`AdapterConfig`.

The fields are PEFT's ``LoraConfig`` (peft/tuners/lora/config.py): ``r``, ``lora_alpha``,
``target_modules`` (a list of names, ``"all-linear"``, or one regular expression matched
against whole module paths), ``rank_pattern`` (regex -> rank), ``layers_to_transform``,
``exclude_modules``, ``use_dora``, ``lora_bias``, ``bias`` and ``modules_to_save``. The
base model is ``base_model_name_or_path``. Only LoRA-family adapters (LoRA, DoRA) are
read; other PEFT methods are refused by name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from modelmem.errors import InvalidValueError, SourceError
from modelmem.model.adapter import AdapterConfig
from modelmem.model.limits import MAX_LORA_RANK
from modelmem.model.patterns import (
    MAX_LIST_ENTRIES,
    MAX_PATTERNS,
    module_regex,
    tail_pattern,
)
from modelmem.model.sources import ADAPTER_FILE

MAX_ADAPTER_CONFIG_BYTES: Final = 5_000_000


def read_adapter_file(path: Path) -> AdapterConfig:
    """An ``adapter_config.json`` file, or a folder holding one."""
    file = path / ADAPTER_FILE if path.is_dir() else path
    if not file.is_file():
        raise SourceError(str(path), f"no {ADAPTER_FILE}")
    if file.stat().st_size > MAX_ADAPTER_CONFIG_BYTES:
        raise SourceError(str(file), f"over the {MAX_ADAPTER_CONFIG_BYTES:,}-byte cap")
    try:
        data = json.loads(file.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise SourceError(str(file), "not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise SourceError(str(file), f"malformed JSON (line {e.lineno}: {e.msg})") from None
    except RecursionError:
        raise SourceError(str(file), "malformed JSON: nested too deeply") from None
    except ValueError:  # an integer of more digits than Python converts (4,300)
        raise SourceError(str(file), "malformed JSON: an integer of over 4,300 digits") from None
    if not isinstance(data, dict):
        raise SourceError(str(file), "not a JSON object")
    return adapter_from_dict(data, origin=str(file))


def is_adapter_config(data: dict[str, Any]) -> bool:
    return "peft_type" in data or ("target_modules" in data and "r" in data)


def adapter_from_dict(data: dict[str, Any], origin: str = "adapter_config.json") -> AdapterConfig:
    """PEFT's LoraConfig fields, checked; PEFT's defaults where a field is absent."""
    peft_type = str(data.get("peft_type", "LORA")).upper()
    if peft_type != "LORA":
        raise InvalidValueError(
            "peft_type", data.get("peft_type"), f"only LoRA/DoRA adapters are read ({origin})"
        )
    rank = _positive_int(data.get("r", 8), "r")
    alpha = data.get("lora_alpha", 8)
    if isinstance(alpha, bool) or not isinstance(alpha, int | float):
        raise InvalidValueError("lora_alpha", alpha, "must be a number")
    raw_targets = data.get("target_modules")
    targets: tuple[str, ...] | str
    regex = False
    if raw_targets is None:
        targets = ()  # PEFT's default for the base model's family
    elif isinstance(raw_targets, str):
        targets, regex = raw_targets, raw_targets.lower() != "all-linear"
        if not regex:
            targets = "all-linear"
    elif isinstance(raw_targets, list) and all(isinstance(t, str) for t in raw_targets):
        targets = tuple(raw_targets)
    else:
        raise InvalidValueError(
            "target_modules", raw_targets, "must be a list of names or a string"
        )
    pattern = data.get("rank_pattern") or {}
    if not isinstance(pattern, dict):
        raise InvalidValueError("rank_pattern", pattern, "must be an object of pattern -> rank")
    layers = data.get("layers_to_transform") or ()
    if isinstance(layers, int) and not isinstance(layers, bool):
        layers = (layers,)
    if not isinstance(layers, list | tuple) or not all(
        isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in layers
    ):
        raise InvalidValueError("layers_to_transform", layers, "must be layer indices")
    exclude = data.get("exclude_modules")
    if exclude is not None and not isinstance(exclude, str):
        if not isinstance(exclude, list) or not all(isinstance(e, str) for e in exclude):
            raise InvalidValueError("exclude_modules", exclude, "must be a list or a string")
        exclude = tuple(exclude)
    bias = str(data.get("bias", "none"))
    if bias not in ("none", "all", "lora_only"):
        raise InvalidValueError("bias", bias, "must be none, all or lora_only")
    to_save = data.get("modules_to_save") or ()
    if not isinstance(to_save, list | tuple) or not all(isinstance(m, str) for m in to_save):
        raise InvalidValueError("modules_to_save", to_save, "must be a list of module names")
    alpha_pattern = data.get("alpha_pattern") or {}
    if not isinstance(alpha_pattern, dict):
        raise InvalidValueError(
            "alpha_pattern", alpha_pattern, "must be an object of pattern -> alpha"
        )
    # Every regex is compiled now, so a bad or runaway one is refused by name before use.
    if regex:
        module_regex("target_modules", str(targets))
    if isinstance(exclude, str):
        module_regex("exclude_modules", exclude)
    for name, patterns in (("rank_pattern", pattern), ("alpha_pattern", alpha_pattern)):
        if len(patterns) > MAX_PATTERNS:
            raise InvalidValueError(
                name, f"{{{len(patterns):,} patterns}}", f"over the limit of {MAX_PATTERNS:,}"
            )
        for key in patterns:
            module_regex(name, str(key))
            module_regex(name, tail_pattern(str(key)))
    for name, entries in (
        ("target_modules", targets),
        ("exclude_modules", exclude),
        ("modules_to_save", to_save),
        ("layers_to_transform", layers),
    ):
        if isinstance(entries, list | tuple) and len(entries) > MAX_LIST_ENTRIES:
            raise InvalidValueError(
                name, f"[{len(entries):,} entries]", f"over the limit of {MAX_LIST_ENTRIES:,}"
            )
    notes = []
    if data.get("target_parameters"):
        notes.append("target_parameters (LoRA on 3-D expert parameters) is not counted")
    base = data.get("base_model_name_or_path")
    return AdapterConfig(
        rank=rank,
        alpha=float(alpha),
        targets=targets,
        targets_regex=regex,
        base_model=base if isinstance(base, str) and base else None,
        dora=bool(data.get("use_dora", False)),
        lora_bias=bool(data.get("lora_bias", False)),
        bias=bias,
        rank_pattern=tuple(
            (str(k), _positive_int(v, f"rank_pattern[{k}]")) for k, v in pattern.items()
        ),
        layers_to_transform=tuple(layers),
        exclude_modules=exclude,
        modules_to_save=tuple(to_save),
        origin=origin,
        notes=tuple(notes),
    )


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LORA_RANK:
        raise InvalidValueError(name, value, f"must be an integer in [1, {MAX_LORA_RANK:,}]")
    return value

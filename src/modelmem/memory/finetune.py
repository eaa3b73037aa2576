"""Trainable parameters of LoRA adapters (Hu et al. 2021, arXiv:2106.09685), as PEFT
builds them.

For a Linear ``d_in -> d_out`` LoRA adds ``A: r × d_in`` and ``B: d_out × r``, so
``r · (d_in + d_out)`` parameters (+ ``d_out`` with a LoRA bias); DoRA (Liu et al. 2024,
arXiv:2402.09353) adds a magnitude vector of ``d_out`` per adapted layer. Targets match
module names the way PEFT does (the last name component, or the whole path);
``all-linear`` is every Linear/Conv1D except the output head.

Not yet counted: PEFT >= 0.21 also wraps MoE experts stored as 3-D parameters
(``ParamWrapper``) when ``all-linear`` is asked for; on MoE models the count here covers
the Linear layers (attention, routers, shared experts) only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from modelmem.errors import InvalidValueError
from modelmem.model.params import ParamTensor, tensor_inventory
from modelmem.model.spec import ModelSpec

if TYPE_CHECKING:
    from modelmem.model.sources.adapter import AdapterConfig

ALL_LINEAR = "all-linear"

# PEFT's TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING (peft/utils/constants.py).
PEFT_DEFAULT_TARGETS: dict[str, tuple[str, ...]] = {
    "llama": ("q_proj", "v_proj"),
    "mistral": ("q_proj", "v_proj"),
    "mixtral": ("q_proj", "v_proj"),
    "qwen2": ("q_proj", "v_proj"),
    "qwen2_moe": ("q_proj", "v_proj"),
    "qwen3": ("q_proj", "v_proj"),
    "qwen3_moe": ("q_proj", "v_proj"),
    "gemma": ("q_proj", "v_proj"),
    "gemma2": ("q_proj", "v_proj"),
    "gemma3_text": ("q_proj", "v_proj"),
    "phi3": ("qkv_proj",),
    "gpt2": ("c_attn",),
    "gpt_neox": ("query_key_value",),
    "falcon": ("query_key_value",),
    "opt": ("q_proj", "v_proj"),
    "bert": ("query", "value"),
}


def lora_linear_params(
    d_in: int, d_out: int, rank: int, *, bias: bool = False, dora: bool = False
) -> int:
    """r·(d_in + d_out) (+ d_out for a LoRA bias, + d_out for DoRA's magnitude)."""
    for name, value in (("d_in", d_in), ("d_out", d_out), ("lora_rank", rank)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise InvalidValueError(name, value, "must be a positive integer")
    return rank * (d_in + d_out) + (d_out if bias else 0) + (d_out if dora else 0)


def _linear_dims(t: ParamTensor) -> tuple[int, int]:
    """(d_in, d_out) of a linear weight; GPT-2's Conv1D stores [in, out]."""
    d0, d1 = t.shape
    return (
        (d0, d1) if ".c_attn." in t.name or ".c_fc." in t.name or ".c_proj." in t.name else (d1, d0)
    )


def lora_targets(spec: ModelSpec, targets: Iterable[str] | str) -> tuple[ParamTensor, ...]:
    """The linear weights LoRA adapts for ``targets`` (names, or ``all-linear``)."""
    linears = [
        t for t in tensor_inventory(spec) if t.role == "linear" and t.name.endswith(".weight")
    ]
    if targets == ALL_LINEAR:
        return tuple(t for t in linears if not t.module.startswith("lm_head"))
    wanted = {targets} if isinstance(targets, str) else set(targets)
    chosen = tuple(
        t for t in linears if t.module.rsplit(".", 1)[-1] in wanted or t.module in wanted
    )
    matched = {t.module.rsplit(".", 1)[-1] for t in chosen}
    missing = sorted(
        w for w in wanted if w not in matched and not any(t.module == w for t in chosen)
    )
    if missing:
        raise InvalidValueError(
            "lora_targets", ",".join(missing), f"no such Linear module in {spec.name}"
        )
    return chosen


def lora_trainable_params(
    spec: ModelSpec,
    rank: int,
    targets: Iterable[str] | str | None = None,
    *,
    dora: bool = False,
) -> int:
    """Exact trainable parameters of LoRA (or DoRA) at ``rank`` on ``targets`` (PEFT's
    default targets for the family when None)."""
    if targets is None:
        if spec.family not in PEFT_DEFAULT_TARGETS:
            raise InvalidValueError(
                "lora_targets", None, f"no PEFT default for {spec.family}; name them"
            )
        targets = PEFT_DEFAULT_TARGETS[spec.family]
    total = 0
    for t in lora_targets(spec, targets):
        d_in, d_out = _linear_dims(t)
        total += lora_linear_params(d_in, d_out, rank, dora=dora) * t.copies
    return total


# ----------------------------------------------------------------- from adapter_config.json


def adapter_trainable_params(spec: ModelSpec, adapter: AdapterConfig) -> int:
    """Exact trainable parameters of a PEFT LoRA adapter config on ``spec``.

    Matches modules as PEFT does (peft/tuners/tuners_utils.py ``check_target_module_exists``,
    peft/utils/other.py ``get_pattern_key``): a list target matches the whole module path or
    its last components; a string target is one regex over the whole path;
    ``layers_to_transform`` keeps list targets in those layers; ``exclude_modules`` and
    ``modules_to_save`` are never adapted; ``rank_pattern`` picks a rank per module.
    ``modules_to_save`` train a full copy of their parameters; ``bias='all'`` trains every
    bias, ``'lora_only'`` the biases of adapted modules.
    """
    inventory = tensor_inventory(spec)
    linears = [t for t in inventory if t.role == "linear" and t.name.endswith(".weight")]
    if adapter.targets == ALL_LINEAR:
        wanted: set[str] | str = {
            _module_at(t, i)
            for t in linears
            if not t.module.startswith("lm_head")
            for i in t.layers or (None,)
        }
    elif adapter.targets_regex:
        wanted = str(adapter.targets)
    elif adapter.targets:
        wanted = set(adapter.targets)
    elif spec.family in PEFT_DEFAULT_TARGETS:
        wanted = set(PEFT_DEFAULT_TARGETS[spec.family])
    else:
        raise InvalidValueError("target_modules", None, f"no PEFT default for {spec.family}")
    total = 0
    adapted: set[str] = set()
    for t in linears:
        d_in, d_out = _linear_dims(t)
        for i in t.layers or (None,):
            key = _module_at(t, i)
            if not _peft_targets(adapter, wanted, key, i):
                continue
            rank = dict(adapter.rank_pattern).get(
                _pattern_key([p for p, _ in adapter.rank_pattern], key), adapter.rank
            )
            total += lora_linear_params(
                d_in, d_out, rank, bias=adapter.lora_bias, dora=adapter.dora
            )
            adapted.add(key)
    if not adapted:
        raise InvalidValueError(
            "target_modules", adapter.targets, f"matches no Linear module of {spec.name}"
        )
    for t in inventory:
        for i in t.layers or (None,):
            if _trains_whole(adapter, t, _module_at(t, i), adapted):
                total += t.numel_each
    return total


def _trains_whole(adapter: AdapterConfig, t: ParamTensor, key: str, adapted: set[str]) -> bool:
    """A base tensor that trains as it is: in a module to save, or a bias PEFT unfreezes."""
    if any(key.endswith(m) for m in adapter.modules_to_save):
        return True
    if not t.name.endswith(".bias"):
        return False
    return adapter.bias == "all" or (adapter.bias == "lora_only" and key in adapted)


def _module_at(t: ParamTensor, layer: int | None) -> str:
    return t.module if layer is None else t.module.replace("{i}", str(layer))


def _peft_targets(
    adapter: AdapterConfig, wanted: set[str] | str, key: str, layer: int | None
) -> bool:
    exclude = adapter.exclude_modules
    if exclude:
        if isinstance(exclude, str):
            if re.fullmatch(exclude, key):
                return False
        elif key in exclude or any(key.endswith(f".{e}") for e in exclude):
            return False
    if any(re.match(rf"(^|.*\.){re.escape(m)}($|\..*)", key) for m in adapter.modules_to_save):
        return False
    if isinstance(wanted, str):
        return re.fullmatch(wanted, key) is not None
    if key in wanted:
        return True
    found = any(key.endswith(f".{w}") for w in wanted)
    if found and adapter.layers_to_transform:
        return layer is not None and layer in adapter.layers_to_transform
    return found


def _pattern_key(patterns: list[str], key: str) -> str:
    """PEFT's get_pattern_key: the first pattern matching the path's tail."""
    return next((p for p in patterns if re.match(rf"(.*\.)?({p})$", key)), key)

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

from collections.abc import Iterable

from modelmem.errors import InvalidValueError
from modelmem.model.params import ParamTensor, tensor_inventory
from modelmem.model.spec import ModelSpec

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

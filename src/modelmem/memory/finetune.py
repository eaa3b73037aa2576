"""Trainable parameters of LoRA adapters (Hu et al. 2021, arXiv:2106.09685), as PEFT
builds them.

For a Linear ``d_in -> d_out`` LoRA adds ``A: r × d_in`` and ``B: d_out × r``, so
``r · (d_in + d_out)`` parameters (+ ``d_out`` with a LoRA bias); DoRA (Liu et al. 2024,
arXiv:2402.09353) adds a magnitude vector of ``d_out`` per adapted layer. Targets match
module names the way PEFT does (a name matches a module path that ends with it; names
that match nothing are passed over, a list that matches no Linear is refused, and so is
a name that matches a module LoRA cannot wrap); ``all-linear`` is every Linear/Conv1D
except the output embedding. On Mamba-based model types PEFT refuses ``out_proj`` and
``conv1d``, ``all-linear`` included; so does this module, in one line.

MoE models follow PEFT >= 0.21 on transformers 5: stacked expert parameters are wrapped
directly (``lora.ParamWrapper``: r·E·(d_in + d_out), rank doubled on a fused
``gate_up_proj``), routers are not ``nn.Linear`` and so not in ``all-linear``, and for the
families PEFT converts, names such as ``gate_proj`` mean the experts (checked equal to
PEFT on every MoE type transformers builds, native or reference path).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelmem.errors import InvalidValueError
from modelmem.model.params import ParamTensor, tensor_inventory
from modelmem.model.patterns import module_regex, tail_pattern
from modelmem.model.spec import ModelSpec

if TYPE_CHECKING:
    from modelmem.model.adapter import AdapterConfig

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


# PEFT >= 0.21 on transformers 5 (peft/utils/transformers_weight_conversion.py,
# _MOE_TARGET_MODULE_MAPPING / _MOE_FUSED_TARGETS / _MODEL_TO_CONVERSION_PATTERN): for these
# MoE families the per-expert Linear layers of the transformers-4 layout became stacked 3-D
# parameters, so target names that meant them become parameter targets (lora.ParamWrapper),
# and a fused gate_up_proj gets rank 2r. Names so mapped no longer target any Linear module
# (so DeepSeek's dense and shared-expert MLPs are not adapted under those names).
_QWEN2_MOE_MAP: dict[str, str] = {
    "gate": "gate.weight",
    "gate_proj": "gate_up_proj",
    "up_proj": "gate_up_proj",
    "down_proj": "down_proj",
}
_MIXTRAL_MAP: dict[str, str] = {
    "gate": "gate.weight",
    "w1": "gate_up_proj",
    "w3": "gate_up_proj",
    "w2": "down_proj",
}
_Rule = tuple[dict[str, str], dict[str, tuple[str, ...]]]
_QWEN2_MOE_RULE: _Rule = (_QWEN2_MOE_MAP, {"gate_up_proj": ("gate_proj", "up_proj")})
_MIXTRAL_RULE: _Rule = (_MIXTRAL_MAP, {"gate_up_proj": ("w1", "w3")})
# The model types transformers 5.23 converts with the qwen2_moe and mixtral patterns
# (transformers/conversion_mapping.py _MODEL_TO_CONVERSION_PATTERN; PEFT adds mixtral
# itself). qwen2_moe itself is not converted: its model type maps to no pattern.
_QWEN2_MOE_PATTERN = (
    "afmoe", "beam", "cohere2_moe", "deepseek_v2", "deepseek_v3", "deepseek_v32", "dots1",
    "ernie4_5_moe", "exaone_moe", "flex_olmo", "glm4_moe", "glm4_moe_lite", "glm4v_moe",
    "glm_moe_dsa", "hunyuan_v1_moe", "longcat_flash", "mellum", "olmoe", "qwen3_moe",
    "qwen3_next", "qwen3_omni_moe", "qwen3_omni_moe_text", "qwen3_omni_moe_thinker",
    "solar_open",
)  # fmt: skip
_MIXTRAL_PATTERN = ("mixtral", "minimax", "minimax_m2")
PEFT_MOE_CONVERSION: dict[str, _Rule] = {
    **dict.fromkeys(_QWEN2_MOE_PATTERN, _QWEN2_MOE_RULE),
    **dict.fromkeys(_MIXTRAL_PATTERN, _MIXTRAL_RULE),
}
# transformers 5 routers are mostly custom modules holding a parameter, not nn.Linear, so
# "all-linear" does not reach them; Phi-MoE's and Llama 4's subclass nn.Linear. (On the
# reference path the module's own type decides.)
_LINEAR_ROUTER_FAMILIES = frozenset({"phimoe", "llama4", "llama4_text"})
# PEFT refuses LoRA on these module names of Mamba-based models
# (peft/tuners/tuners_utils.py _check_lora_target_modules_mamba).
PEFT_MAMBA_TYPES = frozenset({"falcon_h1", "mamba", "mamba2", "falcon_mamba", "nemotron_h"})
PEFT_MAMBA_REFUSED = ("out_proj", "conv1d")


def _is_linear_module(spec: ModelSpec, t: ParamTensor) -> bool:
    """An nn.Linear (or GPT-2 Conv1D) weight: what ``all-linear`` and module targets reach."""
    if t.role != "linear" or not t.name.endswith(".weight"):
        return False
    # the reference inventory's role is the module's own type; the native one marks routers
    return (
        spec.count_path == "reference"
        or t.component != "moe/router"
        or spec.family in _LINEAR_ROUTER_FAMILIES
    )


def _output_module(spec: ModelSpec) -> str | None:
    """The output embedding, which PEFT leaves out of ``all-linear`` (get_output_embeddings):
    ``lm_head``, else the outermost Linear outside the layers that maps to the vocabulary
    (RWKV's ``head``, GIT's ``output``, BERT's ``cls.predictions.decoder``). A head's
    transform (RoBERTa's ``lm_head.dense``) and inner heads (BLT's patcher) are adapted."""
    heads = [
        t.module
        for t in tensor_inventory(spec)
        if _is_linear_module(spec, t) and not t.layers and t.shape[0] == spec.vocab_size
    ]
    if "lm_head" in heads:
        return "lm_head"
    return min(heads, key=lambda m: m.count("."), default=None)


def _all_linear(spec: ModelSpec) -> list[ParamTensor]:
    output = _output_module(spec)
    return [t for t in tensor_inventory(spec) if _is_linear_module(spec, t) and t.module != output]


def _refuse_mamba(spec: ModelSpec, modules: Iterable[str]) -> None:
    """PEFT refuses LoRA on a Mamba mixer's ``out_proj`` (and ``conv1d``), whichever way
    the target list reaches it, ``all-linear`` included."""
    if spec.family not in PEFT_MAMBA_TYPES:
        return
    hit = sorted({m.rsplit(".", 1)[-1] for m in modules} & set(PEFT_MAMBA_REFUSED))
    if hit:
        allowed = sorted(
            {t.module.rsplit(".", 1)[-1] for t in _all_linear(spec)} - set(PEFT_MAMBA_REFUSED)
        )
        raise InvalidValueError(
            "lora_targets",
            ",".join(hit),
            f"PEFT refuses LoRA on {'/'.join(PEFT_MAMBA_REFUSED)} of {spec.family} models; "
            f"name the targets instead, e.g. {','.join(allowed)}",
        )


def _converted(
    spec: ModelSpec, targets: Iterable[str] | str
) -> tuple[Iterable[str] | str, tuple[tuple[str, int], ...]]:
    """PEFT's conversion for the family: (the module targets left, parameter targets with
    their rank factor). Other families: the targets unchanged and no parameter target."""
    if spec.family not in PEFT_MOE_CONVERSION or (
        isinstance(targets, str) and targets != ALL_LINEAR
    ):
        return targets, ()
    mapping, fused = PEFT_MOE_CONVERSION[spec.family]
    if targets == ALL_LINEAR:
        names = {t.module.rsplit(".", 1)[-1] for t in _all_linear(spec)} | set(mapping)
    else:
        names = set(targets)
    remaining: set[str] = set()
    params: dict[str, int] = {}
    present: dict[str, set[str]] = {new: set() for new in fused}
    for name in names:
        old = next((o for o in mapping if name == o or name.endswith(f".{o}")), None)
        if old is None:
            remaining.add(name)
            continue
        params.setdefault(mapping[old], 1)
        if mapping[old] in fused:
            present[mapping[old]].add(old)
    for new, required in fused.items():
        if 0 < len(present[new]) < len(required):
            raise InvalidValueError(
                "lora_targets",
                ",".join(sorted(present[new])),
                f"PEFT fuses {'+'.join(required)} into {new}: target all of them or none",
            )
        if len(present[new]) == len(required) > 1:
            params[new] = len(required)  # PEFT's rank_pattern: r × the fused count
    return remaining, tuple(sorted(params.items()))


def lora_targets(spec: ModelSpec, targets: Iterable[str] | str) -> tuple[ParamTensor, ...]:
    """The Linear weights LoRA adapts for ``targets`` (names, or ``all-linear``)."""
    return _module_targets(spec, _converted(spec, targets)[0])


def lora_param_targets(
    spec: ModelSpec, targets: Iterable[str] | str
) -> tuple[tuple[ParamTensor, int], ...]:
    """The parameters PEFT wraps directly (MoE experts, routers) and their rank factor."""
    wanted = dict(_converted(spec, targets)[1])
    return tuple(
        (t, wanted[key])
        for t in tensor_inventory(spec)
        for key in wanted
        if t.name.endswith(f".{key}") and len(t.shape) in (2, 3)
    )


def lora_param_params(t: ParamTensor, rank: int, factor: int) -> int:
    """lora.ParamWrapper on a [E, d1, d2] (or [d1, d2]) parameter: A is r·E × d_in and B is
    d_out × r·E, so r·E·(d1 + d2) per copy (peft/tuners/lora/layer.py ParamWrapper)."""
    experts, d1, d2 = t.shape if len(t.shape) == 3 else (1, *t.shape)
    return factor * rank * experts * (d1 + d2) * t.copies


def _module_targets(spec: ModelSpec, targets: Iterable[str] | str) -> tuple[ParamTensor, ...]:
    """PEFT's matching of a target list (peft/tuners/tuners_utils.py inject_adapter): a name
    matches a module whose path ends with it; a name that matches nothing is passed over,
    but a list that matches no module at all is refused, and so is a match on a module
    LoRA cannot wrap (a router, a norm, a whole block)."""
    if targets == ALL_LINEAR:
        every = tuple(_all_linear(spec))
        _refuse_mamba(spec, (t.module for t in every))
        return every
    wanted = {targets} if isinstance(targets, str) else set(targets)
    if not wanted:
        return ()  # every name went to PEFT's parameter targets (MoE experts)
    _refuse_mamba(spec, wanted)
    chosen: list[ParamTensor] = []
    for t in tensor_inventory(spec):
        if t.role == "bias":
            continue
        linear, tails = _is_linear_module(spec, t), _dot_tails(t.module)
        unwrappable = wanted & (_container_tails(t.module) | (set() if linear else tails))
        if unwrappable:
            # PEFT has LoRA layers for embeddings and convolutions too; not counted here
            peft_wraps = unwrappable <= tails and (t.role == "embedding" or len(t.shape) == 3)
            raise InvalidValueError(
                "lora_targets",
                ",".join(sorted(unwrappable)),
                f"is not a Linear module of {spec.name}: "
                + ("LoRA on it is not counted" if peft_wraps else "PEFT cannot wrap it"),
            )
        if linear and not wanted.isdisjoint(tails):
            chosen.append(t)
    if not chosen:
        raise InvalidValueError(
            "lora_targets", ",".join(sorted(wanted)), f"no such Linear module in {spec.name}"
        )
    return tuple(chosen)


def _container_tails(module: str) -> set[str]:
    """The tails of every module that contains ``module`` (``mlp`` of ``...mlp.up_proj``)."""
    parts = module.split(".")
    return {".".join(parts[i:j]) for j in range(1, len(parts)) for i in range(j)}


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
    wrapped = lora_param_targets(spec, targets)
    if wrapped and dora:
        raise InvalidValueError("dora", True, "PEFT's ParamWrapper (MoE experts) refuses DoRA")
    return total + sum(lora_param_params(t, rank, factor) for t, factor in wrapped)


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
    linears = [t for t in inventory if _is_linear_module(spec, t)]
    named: Iterable[str] | str
    if adapter.targets_regex:
        named = str(adapter.targets)
    elif adapter.targets:
        named = adapter.targets
    elif spec.family in PEFT_DEFAULT_TARGETS:
        named = PEFT_DEFAULT_TARGETS[spec.family]
    else:
        raise InvalidValueError("target_modules", None, f"no PEFT default for {spec.family}")
    wrapped: tuple[tuple[ParamTensor, int], ...] = ()
    if not adapter.targets_regex:
        wrapped = lora_param_targets(spec, named)
        named, _ = _converted(spec, named)
    if named == ALL_LINEAR:
        output = _output_module(spec)
        wanted: set[str] | str = {
            _module_at(t, i) for t in linears if t.module != output for i in t.layers or (None,)
        }
    else:
        wanted = named if isinstance(named, str) else set(named)
    if wrapped and adapter.dora:
        raise InvalidValueError("use_dora", True, "PEFT's ParamWrapper (MoE experts) refuses DoRA")
    total = sum(lora_param_params(t, adapter.rank, factor) for t, factor in wrapped)
    sets = _NameSets.of(adapter)
    keys = sum(len(t.layers) or 1 for t in linears)
    if len(adapter.rank_pattern) * keys > MAX_PATTERN_MATCHES:
        raise InvalidValueError(
            "rank_pattern",
            f"[{len(adapter.rank_pattern):,} patterns]",
            f"× {keys:,} modules of {spec.name} is over {MAX_PATTERN_MATCHES:,} regex matches",
        )
    adapted: set[str] = set()
    for t in linears:
        d_in, d_out = _linear_dims(t)
        for i in t.layers or (None,):
            key = _module_at(t, i)
            if not _peft_targets(adapter, sets, wanted, key, i):
                continue
            rank = dict(adapter.rank_pattern).get(
                _pattern_key([p for p, _ in adapter.rank_pattern], key), adapter.rank
            )
            total += lora_linear_params(
                d_in, d_out, rank, bias=adapter.lora_bias, dora=adapter.dora
            )
            adapted.add(key)
    _refuse_mamba(spec, adapted)
    if not adapted and not wrapped:
        raise InvalidValueError(
            "target_modules", adapter.targets, f"matches no Linear module of {spec.name}"
        )
    for t in inventory:
        for i in t.layers or (None,):
            if _trains_whole(adapter, sets, t, _module_at(t, i), adapted):
                total += t.numel_each
    return total


# rank_pattern: each pattern is tried on each module path (PEFT's get_pattern_key); a
# pattern per module of a 126-layer model (7 Linear modules a layer) is under a million.
MAX_PATTERN_MATCHES = 1 << 20


@dataclass(frozen=True, slots=True)
class _NameSets:
    """An adapter's name lists as sets: each module path is then matched by looking up its
    few tails and spans, not by scanning lists an adapter file may make huge."""

    targets: frozenset[str]
    exclude: frozenset[str]
    to_save: frozenset[str]

    @staticmethod
    def of(adapter: AdapterConfig) -> _NameSets:
        exclude = adapter.exclude_modules
        return _NameSets(
            frozenset(adapter.targets) if isinstance(adapter.targets, tuple) else frozenset(),
            frozenset(exclude) if isinstance(exclude, tuple) else frozenset(),
            frozenset(adapter.modules_to_save),
        )


def _dot_tails(key: str) -> set[str]:
    """``key`` and every tail of it after a dot: ``w`` is among them exactly when
    ``key == w or key.endswith("." + w)``."""
    parts = key.split(".")
    return {".".join(parts[i:]) for i in range(len(parts))}


def _dot_spans(key: str) -> set[str]:
    r"""Every run of whole components of ``key``: ``m`` is among them exactly when
    ``re.match(rf"(^|.*\.){re.escape(m)}($|\..*)", key)`` (PEFT's modules_to_save test)."""
    parts = key.split(".")
    n = len(parts)
    return {".".join(parts[i:j]) for i in range(n) for j in range(i + 1, n + 1)}


def _trains_whole(
    adapter: AdapterConfig, sets: _NameSets, t: ParamTensor, key: str, adapted: set[str]
) -> bool:
    """A base tensor that trains as it is: in a module to save, or a bias PEFT unfreezes."""
    if sets.to_save and any(key[i:] in sets.to_save for i in range(len(key) + 1)):
        return True  # key.endswith(m) for some m
    if not t.name.endswith(".bias"):
        return False
    return adapter.bias == "all" or (adapter.bias == "lora_only" and key in adapted)


def _module_at(t: ParamTensor, layer: int | None) -> str:
    return t.module if layer is None else t.module.replace("{i}", str(layer))


def _peft_targets(
    adapter: AdapterConfig, sets: _NameSets, wanted: set[str] | str, key: str, layer: int | None
) -> bool:
    exclude = adapter.exclude_modules
    if isinstance(exclude, str):
        if module_regex("exclude_modules", exclude).fullmatch(key):
            return False
    elif sets.exclude and not sets.exclude.isdisjoint(_dot_tails(key)):
        return False
    if sets.to_save and not sets.to_save.isdisjoint(_dot_spans(key)):
        return False
    if isinstance(wanted, str):
        return module_regex("target_modules", wanted).fullmatch(key) is not None
    if key in wanted:
        return True
    found = not wanted.isdisjoint(_dot_tails(key))
    if found and adapter.layers_to_transform:
        return layer is not None and layer in adapter.layers_to_transform
    return found


def _pattern_key(patterns: list[str], key: str) -> str:
    """PEFT's get_pattern_key: the first pattern matching the path's tail."""
    return next(
        (p for p in patterns if module_regex("rank_pattern", tail_pattern(p)).match(key)), key
    )

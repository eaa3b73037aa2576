"""The reference path: count any architecture transformers knows by building it.

A config whose ``model_type`` has no native reader (``hf_config``) is built with the
transformers class of its ``model_type`` (``CONFIG_MAPPING``, never ``trust_remote_code``,
never code from the Hub) on PyTorch's meta device: no memory is allocated and no weights
are read. The tensor inventory is read from the module tree, tied weights once, so the
count is exactly what ``sum(p.numel() for p in model.parameters())`` gives. The fields the
memory estimates need (layers, widths, heads, per-layer kind) come from the config object
transformers filled with its class defaults.

torch and transformers (the ``measure`` extra) are imported here only, when a config needs
them: the CLI starts without them.
"""

from __future__ import annotations

import importlib.util
import json
import re
import warnings
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from modelmem.errors import InvalidValueError, SourceError, UnknownNameError
from modelmem.model import params as P
from modelmem.model.spec import (
    AttentionLayer,
    AttentionSpec,
    MlpLayer,
    MlpSpec,
    ModelSpec,
    MoeSpec,
    ParamTensor,
    Role,
    SsmSpec,
)

MEASURE_INSTALL = "pip install 'modelmem[measure]'"
# Fields transformers ignores when building from a config (and a few it must not see:
# quantization is applied only when loading weights; the count is the logical one).
_DROPPED_FIELDS = ("model_type", "quantization_config", "auto_map", "_name_or_path")
# layer_types values of transformers configs, by the cache each layer keeps.
_LAYER_KINDS: dict[str, AttentionLayer] = {
    "full_attention": "full",
    "attention": "full",
    "global_attention": "full",
    "full": "full",
    "sliding_attention": "sliding",
    "sliding": "sliding",
    "local_attention": "sliding",
    "chunked_attention": "sliding",  # Llama 4: attends within a chunk, caches at most one
    "linear_attention": "linear",
    "gated_deltanet": "linear",
    "mamba": "ssm",
    "mamba2": "ssm",
    "ssm": "ssm",
    "recurrent": "ssm",
    "conv": "conv",
    "short_conv": "conv",
}
_MULTIMODAL_PARTS = (
    (("audio",), P.AUDIO),
    (("vision", "visual", "image_encoder", "vpm."), P.VISION),
    (("projector", "mm_proj", "multi_modal", "connector", "merger", "adapter."), P.PROJECTOR),
)


def reference_available() -> bool:
    """Whether torch and transformers can be imported (without importing them)."""
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))


def needs_measure(model_type: str) -> InvalidValueError:
    """The one-line refusal of a type only the reference path counts, without torch."""
    return InvalidValueError(
        "model_type",
        model_type,
        f"no native reader; counting it builds the transformers model: {MEASURE_INSTALL}",
    )


def spec_from_reference(
    config: Mapping[str, Any], name: str, where: str, *, architecture: str | None = None
) -> ModelSpec:
    """The ModelSpec of ``config`` with its inventory read from the module tree."""
    key = json.dumps(config, sort_keys=True, default=str)
    return _cached_spec(key, name, where, architecture)


@lru_cache(maxsize=64)
def _cached_spec(key: str, name: str, where: str, architecture: str | None) -> ModelSpec:
    config = json.loads(key)
    model_type = config["model_type"]
    try:
        import torch
        import transformers
    except ImportError:
        raise needs_measure(model_type) from None
    from transformers import CONFIG_MAPPING

    if model_type not in CONFIG_MAPPING:
        if config.get("auto_map"):  # the architecture is code in its Hub repo
            raise InvalidValueError(
                "model_type",
                model_type,
                f"unknown to transformers {transformers.__version__}; its repo's own model "
                "code (auto_map) would define it, and modelmem never runs Hub code",
            )
        # unknown to this package and to transformers: list what transformers knows
        raise UnknownNameError("model_type", model_type, CONFIG_MAPPING.keys())
    fields = {k: v for k, v in config.items() if k not in _DROPPED_FIELDS}
    version = transformers.__version__
    verbosity = transformers.logging.get_verbosity()
    # transformers' warnings about a config's values are not the user's concern here
    transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, cfg, cls, notes = _build(
                torch, transformers, fields, model_type, where, architecture
            )
    finally:
        transformers.logging.set_verbosity(verbosity)
    return _spec(model, cfg, name, model_type, cls.__name__, notes, version)


def _build(
    torch: Any,
    transformers: Any,
    fields: dict[str, Any],
    model_type: str,
    where: str,
    architecture: str | None,
) -> tuple[Any, Any, Any, tuple[str, ...]]:
    """The config object and the model built on the meta device, or a one-line refusal."""
    from transformers import CONFIG_MAPPING

    version = transformers.__version__
    try:
        cfg = CONFIG_MAPPING[model_type](**fields)
    except Exception as e:  # any config error is the user's input
        raise SourceError(where, f"transformers {version} rejects it: {_one_line(e)}") from None
    cls, notes = _model_class(transformers, cfg, model_type, architecture)
    if _text_class(cfg) is cls.config_class:  # a composite's text-only class
        cfg = cfg.get_text_config()
    try:
        with torch.device("meta"):
            model = cls._from_config(cfg)
    except Exception as e:  # transformers cannot build this config
        raise SourceError(
            where, f"transformers {version} cannot build {cls.__name__}: {_one_line(e)}"
        ) from None
    return model, cfg, cls, notes


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text[:200]


def _model_class(
    transformers: Any, cfg: Any, model_type: str, architecture: str | None
) -> tuple[Any, tuple[str, ...]]:
    """The class ``architectures`` names when transformers has it for this config, else
    the causal LM, the image-text-to-text model or the bare model of the type."""
    from transformers import PreTrainedModel
    from transformers.models.auto import modeling_auto as auto

    notes: tuple[str, ...] = ()
    if architecture:
        try:
            cls = getattr(transformers, architecture, None)
        except Exception:  # a class whose optional backend is missing
            cls = None
        if (
            isinstance(cls, type)
            and issubclass(cls, PreTrainedModel)
            and cls.config_class is not None
            and (isinstance(cfg, cls.config_class) or _text_class(cfg) is cls.config_class)
        ):
            return cls, notes
        notes = (f"architectures names {architecture!r}, not a transformers class for this type",)
    for mapping in (
        auto.MODEL_FOR_CAUSAL_LM_MAPPING,
        auto.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING,
        auto.MODEL_MAPPING,
    ):
        if type(cfg) in mapping:
            found = mapping[type(cfg)]
            return (found[0] if isinstance(found, (list, tuple)) else found), notes
    raise InvalidValueError("model_type", model_type, "transformers has no model class for it")


def _text_class(cfg: Any) -> Any:
    """The text sub-config class of a composite config (what its causal LM is built from,
    as AutoModelForCausalLM does), or None."""
    sub = getattr(cfg, "sub_configs", None)
    return sub.get("text_config") if isinstance(sub, Mapping) else None


# ----------------------------------------------------------------- the module tree


def _decoder_layers(model: Any, num_layers: int | None) -> str | None:
    """Path of the ModuleList holding the text decoder's layers: the largest list of
    ``num_layers`` blocks outside the vision/audio towers."""
    import torch

    best, best_size = None, -1
    for path, module in model.named_modules():
        if not isinstance(module, torch.nn.ModuleList) or len(module) == 0:
            continue
        if num_layers is not None and len(module) != num_layers:
            continue
        if _tower(path) is not None:
            continue
        size = sum(p.numel() for p in module.parameters())
        if size > best_size:
            best, best_size = path, size
    return best


def _tower(name: str) -> str | None:
    lowered = name.lower()
    for keys, component in _MULTIMODAL_PARTS:
        if any(k in lowered for k in keys):
            return component
    return None


def _component(name: str) -> str:
    """Breakdown key of a parameter, from its module path (the naming conventions of
    transformers' implementations)."""
    tower = _tower(name)
    if tower is not None:
        return tower
    n = name.lower()
    parts = n.split(".")
    if parts[0] in ("lm_head", "embed_out", "output_layer", "cls") or "lm_head" in parts:
        return P.LM_HEAD
    if "pooler" in parts:
        return P.POOLER
    if "shared_expert" in n or "shared_mlp" in n:
        return P.SHARED_EXPERTS
    if "experts" in parts or ".experts." in n:
        return P.EXPERTS
    if "router" in n or re.search(r"(mlp|moe|feed_forward|block_sparse_moe)\.gate\.", n):
        return P.ROUTER
    if "norm" in n or re.search(r"(^|\.)ln", n):
        return P.NORMS
    if "position" in n or "wpe" in parts:
        return P.POSITIONS
    if "embed" in n or "wte" in parts:
        return P.EMBEDDING
    if any(k in n for k in ("mixer", "mamba", "ssm", "linear_attn", "conv", "temporal")):
        return P.SSM
    if any(k in n for k in ("attn", "attention", "q_proj", "k_proj", "v_proj", "o_proj")):
        return P.ATTENTION
    if any(k in n for k in ("mlp", "ffn", "feed_forward", "fc", "dense", "intermediate")):
        return P.MLP
    return P.OTHER


def _role(module: Any, leaf: str, shape: tuple[int, ...], component: str) -> Role:
    import torch

    kind = type(module).__name__
    if isinstance(module, torch.nn.Embedding):
        return "embedding"
    # (before the name test: a Linear under a path that says "norm" is still a Linear,
    # e.g. RoBERTa-PreLayerNorm's whole model)
    if isinstance(module, torch.nn.Linear) or kind == "Conv1D":
        return "bias" if leaf == "bias" else "linear"
    if "Norm" in kind or component == P.NORMS:
        return "norm"
    if component == P.EXPERTS and len(shape) == 3:
        return "expert"
    return "bias" if leaf.endswith("bias") else "other"


def _inventory(model: Any, container: str | None) -> tuple[ParamTensor, ...]:
    """Unique parameters (tied once), the decoder's layers folded to ``{i}`` templates."""
    modules = dict(model.named_modules())
    layer = re.compile(rf"^{re.escape(container)}\.(\d+)\.(.+)$") if container else None
    grouped: dict[tuple[str, tuple[int, ...], str, Role], list[int]] = {}
    for name, param in model.named_parameters():
        shape = tuple(int(d) for d in param.shape)
        module_path, _, leaf = name.rpartition(".")
        component = _component(name)
        role = _role(modules.get(module_path), leaf, shape, component)
        match = layer.match(name) if layer is not None else None
        if match is None:
            grouped.setdefault((name, shape, component, role), [])
        else:
            template = f"{container}.{{i}}.{match.group(2)}"
            grouped.setdefault((template, shape, component, role), []).append(int(match[1]))
    return tuple(
        ParamTensor(name, shape, component, role, tuple(layers))
        for (name, shape, component, role), layers in grouped.items()
    )


# ------------------------------------------------------------------- the spec fields


def _get(cfg: Any, name: str, default: Any = None) -> Any:
    """An attribute of a transformers config; per-layer attributes of heterogeneous
    configs refuse global access, and read as absent."""
    try:
        return getattr(cfg, name, default)
    except Exception:  # transformers' AmbiguousGlobalPerLayerAttributeError and kin
        return default


def _first(cfg: Any, *names: str) -> Any:
    for n in names:
        value = _get(cfg, n)
        if value is not None and not isinstance(value, bool):
            return value
    return None


def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


# Parameters of an attention block, by the module names transformers' implementations use.
_ATTENTION_NAMES = re.compile(
    r"(^|[ .])(self_attn|self_attention|attention|attn|multi_head_attention|"
    r"q_proj|k_proj|qkv_proj|query_key_value|c_attn|Wqkv|wqkv|Wq|query)\."
)


def _layer_kinds(
    text: Any, inventory: tuple[ParamTensor, ...], num_layers: int, window: int | None
) -> tuple[AttentionLayer, ...]:
    """Each layer's token mixer, read from its parameters (an attention's projections, a
    Mamba mixer's ``A_log``, a gated delta-net's ``linear_attn``, an RG-LRU, a short
    convolution); the config's ``layer_types`` tells sliding from full attention.
    transformers labels every recurrent layer "linear_attention", so its label alone
    cannot tell a Mamba layer from a linear attention."""
    declared = _get(text, "layer_types")
    if not (isinstance(declared, (list, tuple)) and len(declared) == num_layers):
        declared = None
    per_layer: list[list[str]] = [[] for _ in range(num_layers)]
    for t in inventory:
        for i in t.layers:
            if i < num_layers:
                per_layer[i].append(t.name.split("{i}.", 1)[-1])
    kinds: list[AttentionLayer] = []
    for i, names in enumerate(per_layer):
        joined = " ".join(names)
        label = _LAYER_KINDS.get(str(declared[i])) if declared is not None else None
        recurrent = "A_log" in joined or "mamba" in joined
        if "linear_attn" in joined or (label == "linear" and not recurrent):
            kinds.append("linear")  # gated delta-net, lightning attention, RG-LRU
        elif label not in ("linear", "ssm", "conv") and _ATTENTION_NAMES.search(joined):
            # (a hybrid layer with an SSM beside its attention keeps a KV cache too)
            sliding = label == "sliding" if label in ("full", "sliding") else bool(window)
            kinds.append("sliding" if sliding else "full")
        elif recurrent:
            kinds.append("ssm")
        elif "rg_lru" in joined or "recurrent" in joined or "temporal" in joined:
            kinds.append("linear")
        elif "conv" in joined:
            kinds.append("conv")
        else:
            kinds.append("none")
    return tuple(kinds)


def _attention(text: Any, hidden: int) -> AttentionSpec | None:
    n_h = _positive(_first(text, "num_attention_heads", "n_head", "num_heads"))
    if n_h is None:
        return None
    n_kv = _positive(_first(text, "num_key_value_heads", "num_kv_heads", "n_head_kv")) or n_h
    kv_rank = _positive(_get(text, "kv_lora_rank"))
    rope = _positive(_get(text, "qk_rope_head_dim")) or 0
    if kv_rank is not None:  # multi-head latent attention
        nope = _positive(_get(text, "qk_nope_head_dim")) or 0
        d = nope + rope
        v = _positive(_get(text, "v_head_dim")) or d
        return AttentionSpec(
            num_heads=n_h,
            num_kv_heads=n_h,
            head_dim=d,
            v_head_dim=v,
            q_lora_rank=_positive(_get(text, "q_lora_rank")),
            kv_lora_rank=kv_rank,
            qk_rope_head_dim=rope,
        )
    d = _positive(_get(text, "head_dim")) or max(hidden // n_h, 1)
    return AttentionSpec(num_heads=n_h, num_kv_heads=n_kv, head_dim=d, v_head_dim=d)


def _moe(
    text: Any, inventory: tuple[ParamTensor, ...], notes: list[str]
) -> tuple[MoeSpec | None, frozenset[int]]:
    """Routed experts (for the active count) and the layers that hold them."""
    expert_layers = frozenset(i for t in inventory if t.component == P.EXPERTS for i in t.layers)
    if not expert_layers:
        return None, expert_layers
    e = _positive(
        _first(text, "num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")
    )
    k = _positive(_first(text, "num_experts_per_tok", "experts_per_token", "moe_topk", "top_k"))
    total = sum(t.numel for t in inventory if t.component == P.EXPERTS)
    if e is None or k is None or k > e or total % e:
        notes.append("experts per token unknown: the active parameter count is not computed")
        return None, expert_layers
    width = _positive(_first(text, "moe_intermediate_size", "expert_intermediate_size"))
    width = width or _positive(_first(text, "intermediate_size")) or 1
    return MoeSpec(num_experts=e, experts_per_token=k, expert_intermediate_size=width), (
        expert_layers
    )


def _ssm(text: Any, hidden: int) -> SsmSpec | None:
    n = _positive(_first(text, "state_size", "mamba_d_state", "ssm_state_size"))
    if n is None:
        return None
    kernel = _positive(_first(text, "conv_kernel", "mamba_d_conv", "conv_L_cache")) or 4
    expand = _first(text, "expand", "mamba_expand")
    inner = _positive(_first(text, "mamba_d_ssm", "intermediate_size"))
    if isinstance(expand, (int, float)) and not isinstance(expand, bool):
        inner = int(expand * hidden)
    rank = _first(text, "time_step_rank", "mamba_dt_rank")
    return SsmSpec(
        state_size=n,
        conv_kernel=kernel,
        inner_size=inner or 2 * hidden,
        time_step_rank=rank if isinstance(rank, int) else max(hidden // 16, 1),
    )


def _spec(
    model: Any,
    cfg: Any,
    name: str,
    model_type: str,
    class_name: str,
    notes_in: tuple[str, ...],
    version: str,
) -> ModelSpec:
    text = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
    num_layers = _positive(_first(text, "num_hidden_layers", "n_layer", "num_layers"))
    container = _decoder_layers(model, num_layers)
    inventory = _inventory(model, container)
    if num_layers is None:
        num_layers = max((i + 1 for t in inventory for i in t.layers), default=1)
    embeddings = [t for t in inventory if t.component == P.EMBEDDING and t.role == "embedding"]
    hidden = _positive(_first(text, "hidden_size", "n_embd", "d_model", "dim"))
    vocab = _positive(_first(text, "vocab_size"))
    if hidden is None or vocab is None:
        widest = max(embeddings, key=lambda t: t.numel, default=None)
        hidden = hidden or (widest.shape[-1] if widest else 1)
        vocab = vocab or (widest.shape[0] if widest else 1)
    notes = [
        f"count path: reference ({class_name} built by transformers {version} on the meta "
        "device; exact)",
        *notes_in,
    ]
    context = _positive(
        _first(text, "max_position_embeddings", "n_positions", "max_seq_len", "seq_length")
    )
    if context is None:
        notes.append("the config states no context length")
    window = _positive(_first(text, "sliding_window", "attention_chunk_size"))
    if _get(text, "use_sliding_window", True) is False:
        window = None
    attention = _attention(text, hidden)
    causal = bool(getattr(model, "can_generate", lambda: True)())
    kinds = _layer_kinds(text, inventory, num_layers, window)
    if not any(k in ("full", "sliding") for k in kinds):
        attention = None
    stateful = sum(k in ("linear", "ssm", "conv") for k in kinds)
    if stateful and attention is not None:
        notes.append(
            f"cache: the KV of the attention layers only; the fixed recurrent state of "
            f"{stateful} linear-attention/SSM/convolution layers is not priced"
        )
    elif stateful:
        notes.append(
            "cache: recurrent state priced as Mamba-1's (conv inner×kernel + SSM inner×state "
            "per layer); other recurrent layouts differ"
        )
    moe, expert_layers = _moe(text, inventory, notes)
    width = _positive(_first(text, "intermediate_size", "n_inner", "ffn_dim", "ffn_hidden_size"))
    gated = any(
        t.name.endswith(("gate_proj.weight", "gate_up_proj.weight", "w3.weight", "w1.weight"))
        for t in inventory
        if t.component == P.MLP
    )
    mlp = MlpSpec(intermediate_size=width, gated=gated) if width else None
    mlp_layers: tuple[MlpLayer, ...] = ()
    if moe is not None and (mlp is not None or len(expert_layers) == num_layers):
        mlp_layers = tuple("moe" if i in expert_layers else "dense" for i in range(num_layers))
    return ModelSpec(
        name=name,
        family=model_type,
        layout="reference",
        vocab_size=vocab,
        hidden_size=hidden,
        num_layers=num_layers,
        context_length=context or 2**20,
        attention=attention,
        attention_layers=kinds if attention is not None else (),
        sliding_window=window if "sliding" in kinds else None,
        mlp=mlp,
        mlp_layers=mlp_layers,
        moe=moe,
        ssm=_ssm(text, hidden) if "ssm" in kinds and attention is None else None,
        tie_word_embeddings=bool(_get(text, "tie_word_embeddings", False)),
        lm_head=causal or any(t.component == P.LM_HEAD for t in inventory),
        causal=causal,
        count_path="reference",
        architecture=class_name,
        inventory=inventory,
        notes=tuple(notes),
    )

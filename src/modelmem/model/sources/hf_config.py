"""Build a ModelSpec from a Hugging Face ``config.json``.

Each native ``model_type`` has a reader that takes the fields its transformers
implementation uses, with the defaults of that implementation's config class where a
field may be absent (``_CLASS_DEFAULTS``; transformers 5.x, ``configuration_<model>.py``).
Most decoders are a row of the family table (``_FAMILIES``) over one reader. The fields
that fix a model's size (hidden size, layers, heads, vocabulary) are required: a config
without them is an error, never a silent guess. No model code is imported or executed.

Every other type transformers knows, and every class ``architectures`` names that the
native readers do not count, goes to the reference path (``reference.py``: the model is
built by transformers on the meta device) when the ``measure`` extra is installed, and is
refused in one line naming it otherwise.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from modelmem.errors import InvalidValueError, MissingFieldError, SourceError, UnknownNameError
from modelmem.model.limits import check_config
from modelmem.model.spec import (
    AttentionLayer,
    AttentionSpec,
    LinearAttentionSpec,
    MlpLayer,
    MlpSpec,
    ModelSpec,
    MoeSpec,
    NormKind,
    QkNormShape,
    RecurrentSpec,
    SsmSpec,
    VisionSpec,
)

# A config.json is a few kB; a cap keeps a wrong path (a weights file) from being read whole.
MAX_CONFIG_BYTES = 4 * 2**20
_MAX_DIM = 2**24  # larger than any real width, layer count or vocabulary
_MISSING = object()


class ConfigFields:
    """Typed, validated access to one config mapping; every error names the field."""

    def __init__(self, config: Mapping[str, Any], where: str, prefix: str = "") -> None:
        self.config = config
        self.where = where
        self.prefix = prefix

    def _raw(self, names: tuple[str, ...], default: object) -> tuple[str, object]:
        for name in names:
            if name in self.config and self.config[name] is not None:
                return name, self.config[name]
        if default is _MISSING:
            raise MissingFieldError(self.prefix + names[0], self.where)
        return names[0], default

    def integer(self, *names: str, default: object = _MISSING, minimum: int = 1) -> int:
        name, value = self._raw(names, default)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidValueError(self.prefix + name, value, "must be an integer")
        if value < minimum or value > _MAX_DIM:
            raise InvalidValueError(
                self.prefix + name, value, f"must be in [{minimum}, {_MAX_DIM}]"
            )
        return value

    def opt_integer(self, *names: str, minimum: int = 1) -> int | None:
        if all(self.config.get(n) is None for n in names):
            return None
        return self.integer(*names, minimum=minimum)

    def flag(self, name: str, default: bool) -> bool:
        value = self.config.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise InvalidValueError(self.prefix + name, value, "must be true or false")
        return value

    def text(self, name: str, default: str) -> str:
        value = self.config.get(name)
        if value is None:
            return default
        if not isinstance(value, str):
            raise InvalidValueError(self.prefix + name, value, "must be a string")
        return value

    def int_list(self, name: str) -> list[int]:
        value = self.config.get(name)
        if value is None:
            return []
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise InvalidValueError(self.prefix + name, value, "must be a list of integers")
        return value

    def layer_types(self, num_layers: int) -> tuple[AttentionLayer, ...] | None:
        """``layer_types`` as "full"/"sliding" per layer, or None if absent."""
        value = self.config.get("layer_types")
        if value is None:
            return None
        kinds = {"full_attention": "full", "sliding_attention": "sliding"}
        if not isinstance(value, list) or len(value) != num_layers:
            raise InvalidValueError(
                self.prefix + "layer_types", value, f"must list {num_layers} layer types"
            )
        unknown = [v for v in value if v not in kinds]
        if unknown:
            raise UnknownNameError(self.prefix + "layer_types", unknown[0], kinds)
        return tuple(kinds[v] for v in value)  # type: ignore[misc]


def _heads(
    f: ConfigFields, hidden: int, *, head_dim_default: int | None = None
) -> tuple[int, int, int]:
    """(n_h, n_kv, d): n_kv defaults to n_h (MHA); d to an explicit ``head_dim`` or h / n_h."""
    n_h = f.integer("num_attention_heads")
    n_kv = f.integer("num_key_value_heads", default=n_h)
    if n_kv > n_h or n_h % n_kv:
        raise InvalidValueError(
            f.prefix + "num_key_value_heads", n_kv, f"must divide num_attention_heads={n_h}"
        )
    default = head_dim_default if head_dim_default is not None else hidden // n_h
    if default == 0 and f.config.get("head_dim") is None:
        raise InvalidValueError(
            f.prefix + "num_attention_heads", n_h, f"exceeds hidden_size={hidden}"
        )
    return n_h, n_kv, f.integer("head_dim", default=default)


def _sliding_or_full(sliding: bool) -> AttentionLayer:
    return "sliding" if sliding else "full"


def _moe_or_dense(moe: bool) -> MlpLayer:
    return "moe" if moe else "dense"


def _all_full(num_layers: int) -> tuple[AttentionLayer, ...]:
    return _all_attention("full", num_layers)


def _all_attention(kind: AttentionLayer, num_layers: int) -> tuple[AttentionLayer, ...]:
    return (kind,) * num_layers


def _all_mlp(kind: MlpLayer, num_layers: int) -> tuple[MlpLayer, ...]:
    return (kind,) * num_layers


def _window_layers(
    f: ConfigFields,
    num_layers: int,
    window: int | None,
    pattern: Callable[[int], bool] | None = None,
) -> tuple[tuple[AttentionLayer, ...], int | None]:
    """Per-layer attention kinds: explicit ``layer_types`` win; otherwise ``pattern(i)``
    marks sliding layers, or every layer slides when a window is set."""
    explicit = f.layer_types(num_layers)
    kinds: tuple[AttentionLayer, ...]
    if explicit is not None:
        kinds = explicit
    elif window is None:
        kinds = _all_full(num_layers)
    elif pattern is None:
        kinds = _all_attention("sliding", num_layers)
    else:
        kinds = tuple(_sliding_or_full(pattern(i)) for i in range(num_layers))
    if "sliding" in kinds and window is None:
        raise MissingFieldError(f.prefix + "sliding_window", f.where)
    return kinds, (window if "sliding" in kinds else None)


def _common(f: ConfigFields, name: str, family: str, *, tie_default: bool) -> dict[str, Any]:
    return {
        "name": name,
        "family": family,
        "vocab_size": f.integer("vocab_size"),
        "hidden_size": f.integer("hidden_size"),
        "num_layers": f.integer("num_hidden_layers"),
        "context_length": f.integer("max_position_embeddings", default=2048),
        "tie_word_embeddings": f.flag("tie_word_embeddings", tie_default),
    }


# ------------------------------------------------------------------- llama family


def _llama_like(f: ConfigFields, name: str, family: str) -> ModelSpec:
    """Llama, Mistral, Mixtral, Qwen2/3 (+MoE), Gemma 1/2/3, Phi-3, Phi-MoE, gpt-oss."""
    c = _common(f, name, family, tie_default=family in ("gemma", "gemma2", "gemma3_text"))
    h, num_layers = c["hidden_size"], c["num_layers"]
    n_h, n_kv, d = _heads(f, h)  # head_dim defaults: _CLASS_DEFAULTS

    bias = f.flag("attention_bias", family == "gpt_oss")
    q_bias = kv_bias = o_bias = bias
    if family == "qwen2":  # Qwen2Attention: bias on q, k, v only
        q_bias, kv_bias, o_bias = True, True, False
    elif family == "qwen2_moe":
        q_bias = kv_bias = f.flag("qkv_bias", True)
        o_bias = False
    elif family == "phi3":
        q_bias = kv_bias = o_bias = False
    attention = AttentionSpec(
        num_heads=n_h,
        num_kv_heads=n_kv,
        head_dim=d,
        v_head_dim=d,
        q_bias=q_bias,
        kv_bias=kv_bias,
        o_bias=o_bias,
        qk_norm=family in ("qwen3", "qwen3_moe", "gemma3_text"),
        sinks=family == "gpt_oss",
    )

    # Sliding windows, as each config class resolves them.
    # Qwen configs ignore sliding_window (often 0 or null) unless use_sliding_window is set.
    qwen = family in ("qwen2", "qwen3", "qwen3_moe", "qwen2_moe")
    uses_window = f.flag("use_sliding_window", False) if qwen else True
    window = f.opt_integer("sliding_window") if uses_window else None
    pattern: Callable[[int], bool] | None = None
    if family in ("qwen2", "qwen3", "qwen3_moe"):
        first = f.integer("max_window_layers", default=28, minimum=0)
        pattern = None if family == "qwen3_moe" else (lambda i: i >= first)
    elif family == "qwen2_moe":
        last = f.integer("max_window_layers", default=28, minimum=0)
        pattern = lambda i: bool((i + 1) % 2) and i < last  # noqa: E731
    elif family in ("gemma2", "gpt_oss"):
        window = f.integer("sliding_window", default=4096 if family == "gemma2" else 128)
        pattern = lambda i: bool((i + 1) % 2)  # noqa: E731
    elif family == "gemma3_text":
        window = f.integer("sliding_window", default=4096)
        every = f.integer("sliding_window_pattern", default=6)
        pattern = lambda i: bool((i + 1) % every)  # noqa: E731
    elif family in ("llama", "gemma"):
        window = None
    attention_layers, window = _window_layers(f, num_layers, window, pattern)

    mlp_layers, moe = _moe_layout(f, family, h, num_layers)
    mlp = None
    if "dense" in mlp_layers:
        mlp = MlpSpec(
            intermediate_size=f.integer("intermediate_size"),
            gated=True,
            bias=f.flag("mlp_bias", False) if family == "llama" else False,
            activation=f.text("hidden_activation", f.text("hidden_act", "silu")),
        )
    phimoe = family == "phimoe"
    return ModelSpec(
        **c,
        layout="phi3" if family == "phi3" else "llama",
        attention=attention,
        attention_layers=attention_layers,
        sliding_window=window,
        mlp=mlp,
        mlp_layers=mlp_layers,
        moe=moe,
        norm="layernorm" if phimoe else "rmsnorm",
        norm_bias=phimoe,
        norms_per_layer=4 if family in ("gemma2", "gemma3_text") else 2,
        lm_head_bias=f.flag("lm_head_bias", False) if phimoe else False,
    )


def _moe_layout(
    f: ConfigFields, family: str, h: int, num_layers: int
) -> tuple[tuple[MlpLayer, ...], MoeSpec | None]:
    """Which layers are MoE and the shape of their experts."""
    if family in ("mixtral", "phimoe", "gpt_oss"):
        moe = MoeSpec(
            num_experts=f.integer("num_local_experts", "num_experts"),
            experts_per_token=f.integer("num_experts_per_tok", "experts_per_token"),
            expert_intermediate_size=f.integer("intermediate_size"),
            router_bias=family == "gpt_oss",
            expert_bias=family == "gpt_oss",
        )
        return _all_mlp("moe", num_layers), _checked_moe(f, moe)
    if family in ("qwen2_moe", "qwen3_moe", "qwen3_next"):
        e = f.integer("num_experts", "num_local_experts", default=0, minimum=0)
        step = f.integer("decoder_sparse_step", default=1)
        dense_only = set(f.int_list("mlp_only_layers"))
        kinds: tuple[MlpLayer, ...] = tuple(
            _moe_or_dense(e > 0 and i not in dense_only and (i + 1) % step == 0)
            for i in range(num_layers)
        )
        if "moe" not in kinds:
            return kinds, None
        shared = f.integer("shared_expert_intermediate_size", default=0, minimum=0)
        moe = MoeSpec(
            num_experts=e,
            experts_per_token=f.integer("num_experts_per_tok"),
            expert_intermediate_size=f.integer("moe_intermediate_size"),
            shared_intermediate_size=0 if family == "qwen3_moe" else shared,
            shared_expert_gate=family != "qwen3_moe" and shared > 0,
        )
        return kinds, _checked_moe(f, moe)
    return _all_mlp("dense", num_layers), None


def _checked_moe(f: ConfigFields, moe: MoeSpec) -> MoeSpec:
    if moe.experts_per_token > moe.num_experts:
        raise InvalidValueError(
            f.prefix + "num_experts_per_tok",
            moe.experts_per_token,
            f"exceeds the number of experts ({moe.num_experts})",
        )
    return moe


def _deepseek(f: ConfigFields, name: str, family: str) -> ModelSpec:
    """DeepSeek V2/V3: multi-head latent attention and DeepSeekMoE with shared experts;
    the first ``first_k_dense_replace`` layers are dense (transformers ignores
    ``moe_layer_freq``, and does not build V3's multi-token-prediction layer)."""
    c = _common(f, name, family, tie_default=False)
    n_h = f.integer("num_attention_heads")
    rope, nope = f.integer("qk_rope_head_dim"), f.integer("qk_nope_head_dim")
    bias = f.flag("attention_bias", False)
    attention = AttentionSpec(
        num_heads=n_h,
        num_kv_heads=n_h,
        head_dim=nope + rope,
        v_head_dim=f.integer("v_head_dim"),
        kv_bias=bias,  # on q_a_proj and kv_a_proj_with_mqa
        o_bias=bias,
        q_lora_rank=f.opt_integer("q_lora_rank"),  # null: queries without a low-rank step
        kv_lora_rank=f.integer("kv_lora_rank"),
        qk_rope_head_dim=rope,
    )
    first_dense = f.integer("first_k_dense_replace", minimum=0)
    e = f.integer("n_routed_experts")
    kinds: tuple[MlpLayer, ...] = tuple(
        _moe_or_dense(i >= first_dense) for i in range(c["num_layers"])
    )
    expert_width = f.integer("moe_intermediate_size")
    # DeepseekV2Config's default leaves num_experts_per_tok null: the model still builds and
    # the count does not depend on it; the active count does, and says so.
    k = f.opt_integer("num_experts_per_tok")
    notes: tuple[str, ...] = ()
    if k is None:
        notes = (
            "num_experts_per_tok is null: the active parameter count cannot be computed; "
            "estimates assume every expert active",
        )
    moe = MoeSpec(
        num_experts=e,
        experts_per_token=e if k is None else k,
        expert_intermediate_size=expert_width,
        shared_intermediate_size=expert_width * f.integer("n_shared_experts", minimum=0),
    )
    mlp = MlpSpec(intermediate_size=f.integer("intermediate_size"), gated=True)
    return ModelSpec(
        **c,
        layout="deepseek",
        attention=attention,
        attention_layers=_all_full(c["num_layers"]),
        mlp=mlp if "dense" in kinds else None,
        mlp_layers=kinds,
        moe=_checked_moe(f, moe),
        notes=notes,
    )


# ------------------------------------------------------------------ legacy layouts


def _legacy_attention(
    h: int, n_h: int, *, bias: bool, num_kv_heads: int | None = None
) -> AttentionSpec:
    """Attention of the pre-Llama layouts: head dim h / n_h, one bias flag for all
    projections."""
    d = h // n_h
    n_kv = n_h if num_kv_heads is None else num_kv_heads
    return AttentionSpec(
        num_heads=n_h,
        num_kv_heads=n_kv,
        head_dim=d,
        v_head_dim=d,
        q_bias=bias,
        kv_bias=bias,
        o_bias=bias,
    )


def _gpt2(f: ConfigFields, name: str, family: str) -> ModelSpec:
    if f.flag("add_cross_attention", False):
        raise InvalidValueError(
            "add_cross_attention", True, "encoder-decoder GPT-2 is not supported"
        )
    h, n_h = f.integer("n_embd", "hidden_size"), f.integer("n_head", "num_attention_heads")
    num_layers, positions = (
        f.integer("n_layer", "num_hidden_layers"),
        f.integer("n_positions", default=1024),
    )
    return ModelSpec(
        name=name,
        family=family,
        layout="gpt2",
        vocab_size=f.integer("vocab_size"),
        hidden_size=h,
        num_layers=num_layers,
        context_length=positions,
        tie_word_embeddings=f.flag("tie_word_embeddings", True),
        attention=_legacy_attention(h, n_h, bias=True),
        attention_layers=_all_full(num_layers),
        mlp=MlpSpec(
            intermediate_size=f.integer("n_inner", default=4 * h),
            gated=False,
            bias=True,
            activation=f.text("activation_function", "gelu_new"),
        ),
        mlp_layers=_all_mlp("dense", num_layers),
        norm="layernorm",
        norm_bias=True,
        learned_positions=positions,
    )


def _gpt_neox(f: ConfigFields, name: str, family: str) -> ModelSpec:
    c = _common(f, name, family, tie_default=False)
    h, n_h = c["hidden_size"], f.integer("num_attention_heads")
    bias = f.flag("attention_bias", True)
    return ModelSpec(
        **c,
        layout="gpt_neox",
        attention=_legacy_attention(h, n_h, bias=bias),
        attention_layers=_all_full(c["num_layers"]),
        mlp=MlpSpec(
            intermediate_size=f.integer("intermediate_size"),
            gated=False,
            bias=True,
            activation=f.text("hidden_act", "gelu"),
        ),
        mlp_layers=_all_mlp("dense", c["num_layers"]),
        norm="layernorm",
        norm_bias=True,
        parallel_residual=f.flag("use_parallel_residual", True),
    )


def _falcon(f: ConfigFields, name: str, family: str) -> ModelSpec:
    """Falcon: MHA, multi-query (7B) or grouped KV with ``new_decoder_architecture`` (40B)."""
    h = f.integer("hidden_size", "n_embed")
    n_h = f.integer("num_attention_heads", "n_head")
    num_layers = f.integer("num_hidden_layers", "n_layer")
    new_arch = f.flag("new_decoder_architecture", False)
    multi_query = f.flag("multi_query", True)
    # grouped KV with the new architecture, else one shared KV head (MQA) or full MHA
    n_kv = f.integer("num_kv_heads", default=n_h) if new_arch else (1 if multi_query else n_h)
    parallel = f.flag("parallel_attn", True)
    ln_parallel = f.opt_integer("num_ln_in_parallel_attn") or (2 if new_arch else 1)
    bias = f.flag("bias", False)
    if f.flag("alibi", False):
        notes: tuple[str, ...] = ("ALiBi positions",)
    else:
        notes = ()
    return ModelSpec(
        name=name,
        family=family,
        layout="falcon",
        vocab_size=f.integer("vocab_size"),
        hidden_size=h,
        num_layers=num_layers,
        context_length=f.integer("max_position_embeddings", default=2048),
        tie_word_embeddings=f.flag("tie_word_embeddings", True),
        attention=_legacy_attention(h, n_h, bias=bias, num_kv_heads=n_kv),
        attention_layers=_all_full(num_layers),
        mlp=MlpSpec(
            intermediate_size=f.integer("ffn_hidden_size", default=4 * h),
            gated=False,
            bias=bias,
            activation=f.text("activation", "gelu"),
        ),
        mlp_layers=_all_mlp("dense", num_layers),
        norm="layernorm",
        norm_bias=True,
        norms_per_layer=2 if (not parallel or ln_parallel == 2) else 1,
        parallel_residual=parallel,
        notes=notes,
    )


def _opt(f: ConfigFields, name: str, family: str) -> ModelSpec:
    c = _common(f, name, family, tie_default=True)
    h, n_h = c["hidden_size"], f.integer("num_attention_heads")
    bias = f.flag("enable_bias", True)
    affine = f.flag("layer_norm_elementwise_affine", True)
    before = f.flag("do_layer_norm_before", True)
    return ModelSpec(
        **c,
        layout="opt",
        attention=_legacy_attention(h, n_h, bias=bias),
        attention_layers=_all_full(c["num_layers"]),
        mlp=MlpSpec(
            intermediate_size=f.integer("ffn_dim"),
            gated=False,
            bias=bias,
            activation=f.text("activation_function", "relu"),
        ),
        mlp_layers=_all_mlp("dense", c["num_layers"]),
        norm="layernorm",
        norm_bias=True,
        norms_per_layer=2 if affine else 0,
        final_norm=affine and before and not f.flag("_remove_final_layer_norm", False),
        embedding_dim=f.integer("word_embed_proj_dim", default=h),
        # OPTLearnedPositionalEmbedding keeps 2 extra rows (an offset from fairseq).
        learned_positions=c["context_length"] + 2,
    )


def _bert(f: ConfigFields, name: str, family: str) -> ModelSpec:
    if f.flag("add_cross_attention", False) or f.flag("is_decoder", False):
        raise InvalidValueError("is_decoder", True, "only the BERT encoder is supported")
    c = _common(f, name, family, tie_default=True)
    h, n_h = c["hidden_size"], f.integer("num_attention_heads")
    mlm = _architecture(f.config) == "BertForMaskedLM"
    return ModelSpec(
        **c,
        layout="bert",
        attention=_legacy_attention(h, n_h, bias=True),
        attention_layers=_all_full(c["num_layers"]),
        mlp=MlpSpec(
            intermediate_size=f.integer("intermediate_size"),
            gated=False,
            bias=True,
            activation=f.text("hidden_act", "gelu"),
        ),
        mlp_layers=_all_mlp("dense", c["num_layers"]),
        norm="layernorm",
        norm_bias=True,
        final_norm=False,
        learned_positions=c["context_length"],
        token_types=f.integer("type_vocab_size", default=2),
        embedding_norm=True,
        pooler=not mlm,
        lm_head=False,
        causal=False,
        mlm_head=mlm,
        architecture="BertForMaskedLM" if mlm else "BertModel",
    )


def _mamba(f: ConfigFields, name: str, family: str) -> ModelSpec:
    h = f.integer("hidden_size")
    rank = f.config.get("time_step_rank", "auto")
    time_step_rank = math.ceil(h / 16) if rank in ("auto", None) else f.integer("time_step_rank")
    ssm = SsmSpec(
        state_size=f.integer("state_size", default=16),
        conv_kernel=f.integer("conv_kernel", default=4),
        inner_size=f.integer("intermediate_size", default=f.integer("expand", default=2) * h),
        time_step_rank=time_step_rank,
        conv_bias=f.flag("use_conv_bias", True),
        proj_bias=f.flag("use_bias", False),
    )
    num_layers = f.integer("num_hidden_layers")
    return ModelSpec(
        name=name,
        family=family,
        layout="mamba",
        vocab_size=f.integer("vocab_size"),
        hidden_size=h,
        num_layers=num_layers,
        # A recurrent model has no positional limit; report the trained length if stated.
        context_length=f.integer("max_position_embeddings", default=2**20),
        tie_word_embeddings=f.flag("tie_word_embeddings", True),
        attention=None,
        mlp=None,
        ssm=ssm,
        norms_per_layer=1,
    )


def _mamba2(f: ConfigFields, name: str, family: str) -> ModelSpec:
    """Mamba-2 with the defaults of Mamba2Config; D = expand · h."""
    h = f.integer("hidden_size", default=4096)
    expand = f.config.get("expand", 2)
    if not isinstance(expand, (int, float)) or isinstance(expand, bool) or expand <= 0:
        raise InvalidValueError(f.prefix + "expand", expand, "must be a positive number")
    heads = f.integer("num_heads", default=128)
    ssm = SsmSpec(
        state_size=f.integer("state_size", default=128),
        conv_kernel=f.integer("conv_kernel", default=4),
        inner_size=int(expand * h),
        time_step_rank=math.ceil(h / 16),  # not a tensor dimension in Mamba-2
        conv_bias=f.flag("use_conv_bias", True),
        proj_bias=f.flag("use_bias", False),
        num_heads=heads,
        n_groups=f.integer("n_groups", default=8),
    )
    num_layers = f.integer("num_hidden_layers", default=64)
    return ModelSpec(
        name=name,
        family=family,
        layout="mamba",
        vocab_size=f.integer("vocab_size", default=32768),
        hidden_size=h,
        num_layers=num_layers,
        context_length=f.integer("max_position_embeddings", default=2**20),
        tie_word_embeddings=f.flag("tie_word_embeddings", False),
        attention=None,
        mlp=None,
        ssm=ssm,
        norms_per_layer=1,
        notes=(
            f"cache: the convolution state is priced over x ({ssm.inner_size} channels); "
            f"Mamba-2's also holds B and C ({ssm.conv_channels - ssm.inner_size} more)",
        ),
    )


def _qwen3_next(f: ConfigFields, name: str, family: str) -> ModelSpec:
    """Qwen3-Next: every ``full_attention_interval``-th layer gated full attention (q_proj
    also yields an output gate; q/k norms), the rest gated delta-net linear attention;
    Qwen2-MoE style experts with a gated shared expert (or a dense MLP where listed)."""
    c = _common(f, name, family, tie_default=False)
    h, num_layers = c["hidden_size"], c["num_layers"]
    n_h, n_kv, d = _heads(f, h)
    bias = f.flag("attention_bias", False)
    attention = AttentionSpec(
        num_heads=n_h,
        num_kv_heads=n_kv,
        head_dim=d,
        v_head_dim=d,
        q_bias=bias,
        kv_bias=bias,
        o_bias=bias,
        qk_norm=True,
        output_gate=True,
    )
    declared = f.config.get("layer_types")
    if declared is None:
        every = f.integer("full_attention_interval", default=4)
        declared = [
            "linear_attention" if (i + 1) % every else "full_attention" for i in range(num_layers)
        ]
    if not isinstance(declared, list) or len(declared) != num_layers:
        raise InvalidValueError(
            f.prefix + "layer_types", declared, f"must list {num_layers} layer types"
        )
    mixers: dict[str, AttentionLayer] = {"full_attention": "full", "linear_attention": "linear"}
    unknown = [k for k in declared if k not in mixers]
    if unknown:
        raise UnknownNameError(f.prefix + "layer_types", unknown[0], mixers)
    kinds = tuple(mixers[k] for k in declared)
    linear = LinearAttentionSpec(
        num_key_heads=f.integer("linear_num_key_heads"),
        num_value_heads=f.integer("linear_num_value_heads"),
        key_head_dim=f.integer("linear_key_head_dim"),
        value_head_dim=f.integer("linear_value_head_dim"),
        conv_kernel=f.integer("linear_conv_kernel_dim"),
    )
    mlp_layers, moe = _moe_layout(f, family, h, num_layers)
    mlp = None
    if "dense" in mlp_layers:
        mlp = MlpSpec(intermediate_size=f.integer("intermediate_size"), gated=True)
    notes: tuple[str, ...] = ()
    if "linear" in kinds:
        notes = (
            f"cache: the KV of the {kinds.count('full')} full-attention layers; the fixed "
            f"delta-net state of {kinds.count('linear')} linear-attention layers is not priced",
        )
    return ModelSpec(
        **c,
        layout="llama",
        attention=attention,
        attention_layers=kinds,
        mlp=mlp,
        mlp_layers=mlp_layers,
        moe=moe,
        linear_attention=linear if "linear" in kinds else None,
        notes=notes,
    )


def _recurrent_gemma(f: ConfigFields, name: str, family: str) -> ModelSpec:
    """RecurrentGemma: ``block_types`` repeats over the layers ("recurrent": an RG-LRU
    block, "attention": local attention over ``attention_window_size`` tokens); the MLP
    is intermediate_size / 2 wide (RecurrentGemmaMlp)."""
    c = _common(f, name, family, tie_default=True)
    # local attention and a recurrence: no positional limit; the trained length if stated
    c["context_length"] = f.integer("max_position_embeddings", default=2**20)
    h, num_layers = c["hidden_size"], c["num_layers"]
    n_h, n_kv, d = _heads(f, h)
    raw = f.config.get("block_types", ["recurrent", "recurrent", "attention"])
    blocks: dict[str, AttentionLayer] = {"recurrent": "linear", "attention": "sliding"}
    if not isinstance(raw, list) or not raw or any(b not in blocks for b in raw):
        raise UnknownNameError(f.prefix + "block_types", raw, blocks)
    kinds = tuple(blocks[raw[i % len(raw)]] for i in range(num_layers))
    bias = f.flag("attention_bias", False)
    attention = AttentionSpec(
        num_heads=n_h,
        num_kv_heads=n_kv,
        head_dim=d,
        v_head_dim=d,
        q_bias=bias,
        kv_bias=bias,
        o_bias=True,
    )
    lru = f.integer("lru_width", default=h)
    if lru % n_h:
        raise InvalidValueError(
            f.prefix + "lru_width", lru, f"must divide into num_attention_heads={n_h} blocks"
        )
    window = f.integer("attention_window_size")
    return ModelSpec(
        **c,
        layout="recurrent_gemma",
        attention=attention,
        attention_layers=kinds,
        sliding_window=window if "sliding" in kinds else None,
        mlp=MlpSpec(
            intermediate_size=f.integer("intermediate_size") // 2,
            gated=True,
            bias=True,
            activation=f.text("hidden_activation", "gelu_pytorch_tanh"),
        ),
        mlp_layers=_all_mlp("dense", num_layers),
        recurrent=RecurrentSpec(
            lru_width=lru, num_heads=n_h, conv_kernel=f.integer("conv1d_width")
        ),
        notes=(
            f"cache: the KV of the {kinds.count('sliding')} local-attention layers; the "
            f"fixed RG-LRU and convolution state of {kinds.count('linear')} recurrent "
            "layers is not priced",
        )
        if "linear" in kinds
        else (),
    )


# Defaults of Gemma3TextConfig, applied to a gemma3 config's (often sparse) text_config.
# Inside a gemma3 config transformers builds the text model from Gemma3TextConfig with all
# its defaults, sizes included (beside _CLASS_DEFAULTS["gemma3_text"]).
_GEMMA3_TEXT_DEFAULTS: dict[str, Any] = {
    "vocab_size": 262_208,
    "hidden_size": 2304,
    "num_hidden_layers": 26,
    "num_attention_heads": 8,
    "sliding_window": 4096,
    "hidden_activation": "gelu_pytorch_tanh",
}
_SIGLIP_DEFAULTS: dict[str, Any] = {
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "num_channels": 3,
    "image_size": 224,
    "patch_size": 16,
}


def _gemma3(f: ConfigFields, name: str, family: str) -> ModelSpec:
    """Gemma 3 multimodal: the gemma3_text decoder, a SigLIP vision tower and a projector.
    transformers fills the nested configs from their class defaults; so does this."""
    text_raw, vision_raw = f.config.get("text_config"), f.config.get("vision_config")
    if not isinstance(text_raw, Mapping):
        raise MissingFieldError("text_config", f.where)
    if not isinstance(vision_raw, Mapping):
        raise MissingFieldError("vision_config", f.where)
    text_cfg = with_class_defaults("gemma3_text", {**_GEMMA3_TEXT_DEFAULTS, **text_raw})
    text_cfg.setdefault("tie_word_embeddings", f.flag("tie_word_embeddings", True))
    text = _llama_like(ConfigFields(text_cfg, f.where, "text_config."), name, "gemma3_text")
    v = ConfigFields({**_SIGLIP_DEFAULTS, **vision_raw}, f.where, "vision_config.")
    vision = VisionSpec(
        hidden_size=v.integer("hidden_size"),
        num_layers=v.integer("num_hidden_layers"),
        num_heads=v.integer("num_attention_heads"),
        intermediate_size=v.integer("intermediate_size"),
        image_size=v.integer("image_size"),
        patch_size=v.integer("patch_size"),
        num_channels=v.integer("num_channels"),
        projector_dim=text.hidden_size,
        tokens_per_image=f.integer("mm_tokens_per_image", default=256),
        pooling_head=v.flag("vision_use_head", True),
    )
    return replace(text, family=family, vision=vision)


# The field defaults of each native family's transformers config class (transformers
# 5.23.0, ``configuration_<model>.py``, the declared defaults), for the fields a config.json
# may omit. Merged under the config before it is read, as transformers fills them; the
# fields that fix a model's size (hidden size, layers, heads, vocabulary) stay required.
# Checked against the classes by tests/oracle/test_params_oracle.py.
_M = "max_position_embeddings"
_I = "intermediate_size"
_KV = "num_key_value_heads"
_CLASS_DEFAULTS: dict[str, dict[str, Any]] = {
    "bert": {_I: 3072, _M: 512, "type_vocab_size": 2},
    "cohere": {_I: 22528, _M: 8192},
    "cohere2": {_I: 22528, _M: 8192, "sliding_window": 4096},
    "deepseek_v2": {
        _I: 11008,
        _M: 2048,
        "moe_intermediate_size": 1407,
        "n_routed_experts": 64,
        "n_shared_experts": 2,
        "first_k_dense_replace": 0,
        "q_lora_rank": 1536,
        "kv_lora_rank": 512,
        "qk_rope_head_dim": 64,
        "qk_nope_head_dim": 128,
        "v_head_dim": 128,
    },
    "deepseek_v3": {
        _I: 18432,
        _M: 4096,
        "moe_intermediate_size": 2048,
        "num_experts_per_tok": 8,
        "n_routed_experts": 256,
        "n_shared_experts": 1,
        "first_k_dense_replace": 3,
        "q_lora_rank": 1536,
        "kv_lora_rank": 512,
        "qk_rope_head_dim": 64,
        "qk_nope_head_dim": 128,
        "v_head_dim": 128,
    },
    "exaone4": {_I: 16384, _KV: 32, _M: 2048, "sliding_window": 4096},
    "falcon": {_M: 2048},
    "gemma": {_I: 24576, _KV: 16, "head_dim": 256, _M: 8192},
    "gemma2": {_I: 9216, _KV: 4, "head_dim": 256, _M: 8192},
    "gemma3_text": {_I: 9216, _KV: 4, "head_dim": 256, _M: 131072},
    "glm4": {_I: 13696, _KV: 2, "head_dim": 128, _M: 131072},
    "glm4_moe": {
        _I: 10944,
        _KV: 8,
        _M: 131072,
        "moe_intermediate_size": 1408,
        "num_experts_per_tok": 8,
        "n_routed_experts": 128,
        "n_shared_experts": 1,
        "first_k_dense_replace": 1,
    },
    "gpt_neox": {_I: 24576, _M: 2048},
    "gpt_oss": {
        _I: 2880,
        _KV: 8,
        "head_dim": 64,
        _M: 131072,
        "num_local_experts": 128,
        "num_experts_per_tok": 4,
    },
    "granite": {_I: 11008, _M: 2048},
    "granitemoe": {_I: 11008, _M: 2048, "num_local_experts": 8, "num_experts_per_tok": 2},
    "llama": {_I: 11008, _M: 2048},
    "llama4_text": {
        _I: 8192,
        "intermediate_size_mlp": 16384,
        _KV: 8,
        "head_dim": 128,
        _M: 131072,
        "num_local_experts": 16,
        "num_experts_per_tok": 1,
        "attention_chunk_size": 8192,
    },
    "mistral": {_I: 14336, _KV: 8, _M: 131072, "sliding_window": 4096},
    "mixtral": {_I: 14336, _KV: 8, _M: 131072, "num_local_experts": 8, "num_experts_per_tok": 2},
    "olmo2": {_I: 11008, _M: 2048},
    "olmoe": {_I: 2048, _M: 4096, "num_experts": 64, "num_experts_per_tok": 8},
    "opt": {_M: 2048, "ffn_dim": 3072},
    "phi": {_I: 8192, _M: 2048},
    "phi3": {_I: 8192, _M: 4096},
    "phimoe": {_I: 6400, _KV: 8, _M: 131072, "num_local_experts": 16, "num_experts_per_tok": 2},
    "qwen2": {_I: 22016, _KV: 32, _M: 32768},
    "qwen2_moe": {
        _I: 5632,
        _KV: 16,
        _M: 32768,
        "moe_intermediate_size": 1408,
        "num_experts": 60,
        "num_experts_per_tok": 4,
        "shared_expert_intermediate_size": 5632,
    },
    "qwen3": {_I: 22016, _KV: 32, "head_dim": 128, _M: 32768},
    "qwen3_moe": {
        _I: 6144,
        _KV: 4,
        _M: 32768,
        "moe_intermediate_size": 768,
        "num_experts": 128,
        "num_experts_per_tok": 8,
    },
    "smollm3": {_I: 11008, _KV: 4, _M: 32768},
    "recurrent_gemma": {_I: 3 * 2560, "attention_window_size": 2048, "conv1d_width": 4},
    "qwen3_next": {
        _I: 5632,
        _KV: 2,
        "head_dim": 256,
        _M: 32768,
        "linear_conv_kernel_dim": 4,
        "linear_key_head_dim": 128,
        "linear_value_head_dim": 128,
        "linear_num_key_heads": 16,
        "linear_num_value_heads": 32,
        "moe_intermediate_size": 512,
        "shared_expert_intermediate_size": 512,
        "num_experts_per_tok": 10,
        "num_experts": 512,
    },
    "stablelm": {_I: 6912, _KV: 32, _M: 4096},
    "starcoder2": {_I: 12288, _KV: 2, _M: 4096},
}


def with_class_defaults(model_type: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` over its class's field defaults (an explicit null stays null: the class
    resolves it, e.g. num_key_value_heads null means as many as the query heads)."""
    return {**_CLASS_DEFAULTS.get(model_type, {}), **config}


# ----------------------------------------------------------- the family table


@dataclass(frozen=True, slots=True)
class Family:
    """How one decoder family's config.json reads: the defaults of its transformers config
    class for the fields it may omit, and the options its implementation applies. Module
    names live in ``params.Naming``; a new family is a row here, a row there and a test."""

    tie: bool = False  # tie_word_embeddings default
    bias_field: str = "attention_bias"  # flag for biases on the attention projections
    bias_default: bool = False
    o_bias: bool | None = None  # bias on the output projection; None: as q/k/v
    qk_norm: str | bool = False  # the config flag that turns q/k norms on, or always/never
    qk_norm_shape: QkNormShape = "head"
    norm: NormKind = "rmsnorm"
    norm_bias: bool = False
    norms: int = 2  # per-layer norms
    parallel_field: str | None = None  # flag that makes one norm per layer (parallel block)
    gated: bool = True
    mlp_bias_field: str | None = None  # flag for MLP biases; None: no biases
    mlp_bias_default: bool = False
    lm_head_bias: bool = False
    # Sliding windows: "none"; "all" layers when sliding_window is set; "pattern": every
    # ``sliding_window_pattern``-th layer is full (layer_types, where given, win).
    window: str = "none"
    pattern_default: int = 4
    # MoE layers: "" none; "all"; "first_dense" (the first ``first_k_dense_replace``
    # layers dense); "listed" (``moe_layers``, else every ``interleave_moe_layer_step``-th)
    moe: str = ""
    experts_field: str = "num_local_experts"
    expert_width_field: str = "intermediate_size"
    dense_width_field: str = "intermediate_size"
    # Shared expert: "" none; "n_shared" (n_shared_experts × the expert width, DeepSeek
    # style); "one" (one MLP of the expert width, Llama 4)
    shared: str = ""


_FAMILIES: dict[str, Family] = {
    "cohere": Family(
        tie=True, qk_norm="use_qk_norm", qk_norm_shape="matrix", norm="layernorm", norms=1
    ),
    "cohere2": Family(tie=True, norm="layernorm", norms=1, window="pattern"),
    "olmo2": Family(qk_norm=True, qk_norm_shape="full"),
    "olmoe": Family(
        qk_norm=True,
        qk_norm_shape="full",
        moe="all",
        experts_field="num_experts",
    ),
    "granite": Family(mlp_bias_field="mlp_bias"),
    "granitemoe": Family(moe="all"),
    "glm4_moe": Family(
        o_bias=False,
        qk_norm="use_qk_norm",
        moe="first_dense",
        experts_field="n_routed_experts",
        expert_width_field="moe_intermediate_size",
        shared="n_shared",
    ),
    "llama4_text": Family(
        window="llama4",
        moe="listed",
        dense_width_field="intermediate_size_mlp",
        shared="one",
    ),
    "starcoder2": Family(
        tie=True,
        bias_field="use_bias",
        bias_default=True,
        norm="layernorm",
        norm_bias=True,
        gated=False,
        mlp_bias_field="use_bias",
        mlp_bias_default=True,
        window="all",
    ),
    "phi": Family(
        bias_field="",
        bias_default=True,
        qk_norm="qk_layernorm",
        norm="layernorm",
        norm_bias=True,
        norms=1,
        gated=False,
        mlp_bias_default=True,
        mlp_bias_field="",
        lm_head_bias=True,
    ),
    "stablelm": Family(
        bias_field="use_qkv_bias",
        o_bias=False,
        qk_norm="qk_layernorm",
        qk_norm_shape="per_head",
        norm="layernorm",
        norm_bias=True,
        parallel_field="use_parallel_residual",
    ),
    "gptj": Family(
        bias_field="",
        norm="layernorm",
        norm_bias=True,
        norms=1,
        gated=False,
        mlp_bias_field="",
        mlp_bias_default=True,
        lm_head_bias=True,
    ),
    "glm4": Family(bias_default=True, o_bias=False, norms=4),
    "smollm3": Family(tie=True, mlp_bias_field="mlp_bias", window="smollm3"),
    "exaone4": Family(qk_norm=True, window="pattern"),
}


_CHUNKED = {"chunked_attention": "sliding_attention"}


def _flag(f: ConfigFields, name: str | None, default: bool) -> bool:
    """A family option: read from ``name`` ("" or None: fixed at ``default``)."""
    return f.flag(name, default) if name else default


def _family_windows(
    f: ConfigFields, fam: Family, num_layers: int
) -> tuple[tuple[AttentionLayer, ...], int | None]:
    if fam.window == "none":
        return _all_full(num_layers), None
    if fam.window == "llama4":  # chunked attention, every no_rope_layer_interval-th full
        chunk = f.opt_integer("attention_chunk_size")
        if "layer_types" in f.config:
            raw = f.config["layer_types"]
            if isinstance(raw, list):  # chunked attention caches at most one chunk
                f = ConfigFields(
                    {**f.config, "layer_types": [_CHUNKED.get(k, k) for k in raw]},
                    f.where,
                    f.prefix,
                )
            return _window_layers(f, num_layers, chunk)
        no_rope = f.int_list("no_rope_layers")
        if not no_rope:
            every = f.integer("no_rope_layer_interval", default=4)
            no_rope = [int((i + 1) % every != 0) for i in range(num_layers)]
        kinds = tuple(_sliding_or_full(bool(chunk) and bool(n)) for n in no_rope[:num_layers])
        if len(kinds) != num_layers:
            raise InvalidValueError(f.prefix + "no_rope_layers", no_rope, f"must list {num_layers}")
        return kinds, (chunk if "sliding" in kinds else None)
    if fam.window == "smollm3":  # sliding only where use_sliding_window (and layer_types)
        window = f.opt_integer("sliding_window") if f.flag("use_sliding_window", False) else None
        explicit = f.layer_types(num_layers)
        if explicit is not None:
            return _window_layers(f, num_layers, window)
        return _all_full(num_layers), None
    window = f.opt_integer("sliding_window")
    if fam.window == "all":
        return _window_layers(f, num_layers, window)
    raw = f.config.get("sliding_window_pattern", fam.pattern_default)
    if isinstance(raw, str) and raw and set(raw) <= {"L", "G"}:  # EXAONE 4: "LLLG"
        text = raw
        pattern: Callable[[int], bool] = lambda i: text[i % len(text)] == "L"  # noqa: E731
    else:
        every = f.integer("sliding_window_pattern", default=fam.pattern_default)
        pattern = lambda i: bool((i + 1) % every)  # noqa: E731
    return _window_layers(f, num_layers, window, pattern)


def _family_moe(
    f: ConfigFields, fam: Family, num_layers: int
) -> tuple[tuple[MlpLayer, ...], MoeSpec | None]:
    """Which layers of a table family are MoE, and their experts."""
    if not fam.moe:
        return _all_mlp("dense", num_layers), None
    if fam.moe == "first_dense":
        first = f.integer("first_k_dense_replace", minimum=0)
        kinds = tuple(_moe_or_dense(i >= first) for i in range(num_layers))
    elif fam.moe == "listed":  # Llama4TextConfig: moe_layers, else every step-th layer
        listed = set(f.int_list("moe_layers"))
        if f.config.get("moe_layers") is None:
            step = f.integer("interleave_moe_layer_step", default=1)
            listed = set(range(step - 1, num_layers, step))
        kinds = tuple(_moe_or_dense(i in listed) for i in range(num_layers))
    else:
        kinds = _all_mlp("moe", num_layers)
    if "moe" not in kinds:
        return kinds, None
    width = f.integer(fam.expert_width_field)
    shared = 0
    if fam.shared == "n_shared":
        shared = width * f.integer("n_shared_experts", default=1, minimum=0)
    elif fam.shared == "one":
        shared = width
    moe = MoeSpec(
        num_experts=f.integer(fam.experts_field),
        experts_per_token=f.integer("num_experts_per_tok"),
        expert_intermediate_size=width,
        shared_intermediate_size=shared,
    )
    return kinds, _checked_moe(f, moe)


def _table_family(f: ConfigFields, name: str, family: str) -> ModelSpec:
    """A decoder family of the table: Cohere 1/2, OLMo 2, OLMoE, Granite (+MoE),
    StarCoder2, Phi (1/1.5/2), StableLM, GPT-J, GLM-4, SmolLM3, EXAONE 4."""
    fam = _FAMILIES[family]
    c: dict[str, Any]
    if family == "gptj":  # GPTJConfig's GPT-2 style names
        c = {
            "name": name,
            "family": family,
            "vocab_size": f.integer("vocab_size", default=50400),
            "hidden_size": f.integer("n_embd", "hidden_size", default=4096),
            "num_layers": f.integer("n_layer", "num_hidden_layers", default=28),
            "context_length": f.integer("n_positions", "max_position_embeddings", default=2048),
            "tie_word_embeddings": f.flag("tie_word_embeddings", fam.tie),
        }
        n_h = f.integer("n_head", "num_attention_heads", default=16)
        n_kv, d = n_h, c["hidden_size"] // n_h
        width = f.integer("n_inner", default=4 * c["hidden_size"])
    else:
        c = _common(f, name, family, tie_default=fam.tie)
        n_h, n_kv, d = _heads(f, c["hidden_size"])
        width = 0
    num_layers = c["num_layers"]
    bias = _flag(f, fam.bias_field, fam.bias_default)
    qk_norm = fam.qk_norm if isinstance(fam.qk_norm, bool) else f.flag(fam.qk_norm, False)
    attention = AttentionSpec(
        num_heads=n_h,
        num_kv_heads=n_kv,
        head_dim=d,
        v_head_dim=d,
        q_bias=bias,
        kv_bias=bias,
        o_bias=bias if fam.o_bias is None else fam.o_bias,
        qk_norm=qk_norm,
        qk_norm_shape=fam.qk_norm_shape,
    )
    attention_layers, window = _family_windows(f, fam, num_layers)
    mlp_layers, moe = _family_moe(f, fam, num_layers)
    mlp = None
    if "dense" in mlp_layers:
        mlp = MlpSpec(
            intermediate_size=width or f.integer(fam.dense_width_field),
            gated=fam.gated,
            bias=_flag(f, fam.mlp_bias_field, fam.mlp_bias_default),
            activation=f.text("hidden_act", f.text("activation_function", "silu")),
        )
    parallel = bool(fam.parallel_field) and f.flag(fam.parallel_field or "", False)
    return ModelSpec(
        **c,
        layout="llama",
        attention=attention,
        attention_layers=attention_layers,
        sliding_window=window,
        mlp=mlp,
        mlp_layers=mlp_layers,
        moe=moe,
        norm=fam.norm,
        norm_bias=fam.norm_bias,
        norms_per_layer=1 if parallel else fam.norms,
        parallel_residual=parallel or fam.norms == 1,
        lm_head_bias=fam.lm_head_bias,
    )


_READERS: dict[str, Callable[[ConfigFields, str, str], ModelSpec]] = {
    **{
        t: _llama_like
        for t in (
            "llama",
            "mistral",
            "mixtral",
            "qwen2",
            "qwen2_moe",
            "qwen3",
            "qwen3_moe",
            "gemma",
            "gemma2",
            "gemma3_text",
            "phi3",
            "phimoe",
            "gpt_oss",
        )
    },
    "deepseek_v2": _deepseek,
    "deepseek_v3": _deepseek,
    "gemma3": _gemma3,
    "gpt2": _gpt2,
    "gpt_neox": _gpt_neox,
    "falcon": _falcon,
    "opt": _opt,
    "bert": _bert,
    "mamba": _mamba,
    "falcon_mamba": _mamba,
    "mamba2": _mamba2,
    "qwen3_next": _qwen3_next,
    "recurrent_gemma": _recurrent_gemma,
    **{t: _table_family for t in _FAMILIES},
}

SUPPORTED_MODEL_TYPES: tuple[str, ...] = tuple(sorted(_READERS))


# The classes the native readers count: each family's causal LM (or, for Gemma 3, the
# image-text-to-text model); for BERT the bare encoder and the masked-LM model.
_NATIVE_SUFFIXES = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")
_NATIVE_BERT = ("BertModel", "BertForMaskedLM")


def _architecture(config: Mapping[str, Any]) -> str | None:
    """The class ``architectures`` names (its first entry), if any."""
    names = config.get("architectures")
    if isinstance(names, list) and names and isinstance(names[0], str):
        return names[0]
    return None


def _native_counts(model_type: str, architecture: str | None) -> bool:
    if architecture is None:
        return True
    if model_type == "bert":
        return architecture in _NATIVE_BERT
    return architecture.endswith(_NATIVE_SUFFIXES)


def spec_from_config(
    config: Mapping[str, Any], name: str = "model", where: str = "config"
) -> ModelSpec:
    """The ModelSpec of a parsed config.json mapping: native where a family reader exists
    for the class ``architectures`` names, else built by transformers (reference path)."""
    from modelmem.model.sources import reference

    if not isinstance(config, Mapping):
        raise SourceError(where, "config must be a JSON object")
    model_type = config.get("model_type")
    if model_type is None:
        raise MissingFieldError("model_type", where)
    if not isinstance(model_type, str):
        raise InvalidValueError("model_type", model_type, "must be a string")
    reader = _READERS.get(model_type)
    arch = _architecture(config)
    notes: tuple[str, ...] = ()
    if reader is not None and not _native_counts(model_type, arch):
        if reference.reference_available():
            reader = None
        else:
            notes = (
                f"architectures names {arch}; counted the {model_type} language model instead "
                f"(for {arch} itself: {reference.MEASURE_INSTALL})",
            )
    if reader is None:
        # sizes within model/limits.py before anything is built; the head split is the
        # class's business (transformers fills in its own head_dim defaults)
        check_config(config, heads=False)
        if not reference.reference_available():
            raise reference.needs_measure(model_type)
        spec = reference.spec_from_reference(config, name, where, architecture=arch)
    else:
        filled = with_class_defaults(model_type, config)
        check_config(filled)  # sizes within model/limits.py before any per-layer table
        spec = reader(ConfigFields(filled, where), name, model_type)
        # (the class is recorded where it changes the count, as for BERT's heads: a spec
        # equals the one read from the same model's GGUF header)
        spec = replace(spec, notes=(*spec.notes, *notes, "count path: native (exact)"))
    quant = config.get("quantization_config")
    if isinstance(quant, Mapping) and isinstance(quant.get("quant_method"), str):
        spec = replace(spec, quantization=quant["quant_method"])
    return spec


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a config.json (or the one in a model folder), with a size cap."""
    file = path / "config.json" if path.is_dir() else path
    if not file.is_file():
        raise SourceError(str(path), "no config.json found")
    size = file.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise SourceError(str(file), f"{size} bytes is too large for a config.json")
    try:
        data = json.loads(file.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise SourceError(str(file), f"not UTF-8 text ({e.reason})") from None
    except json.JSONDecodeError as e:
        raise SourceError(str(file), f"malformed JSON: {e.msg} at line {e.lineno}") from None
    except RecursionError:
        raise SourceError(str(file), "malformed JSON: nested too deeply") from None
    except ValueError:  # an integer of more digits than Python converts (4,300)
        raise SourceError(str(file), "malformed JSON: an integer of over 4,300 digits") from None
    if not isinstance(data, dict):
        raise SourceError(str(file), "config must be a JSON object")
    return data


def spec_from_path(path: Path, name: str | None = None) -> ModelSpec:
    """The ModelSpec of a config.json file or a model folder containing one."""
    config = read_config_file(path)
    label = name or (path.name if path.is_dir() else path.parent.name) or "model"
    return spec_from_config(config, name=label, where=str(path))

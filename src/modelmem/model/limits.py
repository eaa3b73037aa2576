"""Upper bounds on the sizes a model description may claim, checked where it comes in.

A config.json, a GGUF header or a pasted config is input like any other: 2^24 layers would
make the readers build per-layer tables of gigabytes before any estimate runs. Each bound
is far above every published model (the ``seen`` column: the largest real value known,
with its source) and far below what costs time or memory, so a real model never meets
one and a hostile one is refused in one line naming the field, its value and the bound.

The bounds are data here, in one place; :func:`check_config` applies them to the fields of
a Hugging Face config mapping (and its nested ``text_config``, ``vision_config``, ...)
before a spec is built from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from modelmem.errors import InvalidValueError

__all__ = ["CONFIG_FIELDS", "LIMITS", "MAX_LORA_RANK", "Limit", "check_config", "check_size"]


@dataclass(frozen=True, slots=True)
class Limit:
    """The largest value accepted for one kind of size, and the largest seen in a real model."""

    maximum: int
    seen: int
    seen_in: str  # the model and the config field where ``seen`` was read


LIMITS: Final[dict[str, Limit]] = {
    "layers": Limit(4_096, 126, "Llama-3.1-405B config.json num_hidden_layers"),
    "experts": Limit(16_384, 512, "Qwen3-Next-80B-A3B config.json num_experts"),
    "vocab": Limit(1 << 23, 262_208, "Gemma 3 config.json vocab_size (262,144 + specials)"),
    "width": Limit(1 << 18, 18_432, "PaLM 540B d_model (Chowdhery et al. 2022, Table 1)"),
    "intermediate": Limit(1 << 21, 73_728, "PaLM 540B feed-forward width (4 × 18,432)"),
    "heads": Limit(1 << 14, 128, "Llama-3.1-405B config.json num_attention_heads"),
    "context": Limit(1 << 30, 10_485_760, "Llama 4 Scout config.json max_position_embeddings"),
    "rank": Limit(1 << 16, 1_536, "DeepSeek-V3 config.json q_lora_rank"),
    "small": Limit(1 << 16, 4, "Mamba config.json conv_kernel"),
}

# A LoRA rank (an adapter's r, --lora-rank) beyond the width of any model (a rank above
# the width of the matrix adapted gives it no more freedom).
MAX_LORA_RANK: Final[int] = LIMITS["width"].maximum

# Hugging Face config fields, by the kind of size they hold (every reader in
# model/sources/hf_config.py and the GGUF translation write these names).
CONFIG_FIELDS: Final[dict[str, str]] = {
    **dict.fromkeys(
        ("num_hidden_layers", "num_layers", "n_layer", "n_layers", "first_k_dense_replace"),
        "layers",
    ),
    **dict.fromkeys(
        (
            "num_experts",
            "num_local_experts",
            "n_routed_experts",
            "n_shared_experts",
            "num_experts_per_tok",
            "experts_per_token",
        ),
        "experts",
    ),
    **dict.fromkeys(("vocab_size", "type_vocab_size"), "vocab"),
    **dict.fromkeys(
        (
            "hidden_size",
            "n_embd",
            "n_embed",
            "d_model",
            "word_embed_proj_dim",
            "head_dim",
            "v_head_dim",
            "qk_nope_head_dim",
            "qk_rope_head_dim",
            "state_size",
            "image_size",
        ),
        "width",
    ),
    **dict.fromkeys(
        (
            "intermediate_size",
            "n_inner",
            "ffn_dim",
            "ffn_hidden_size",
            "moe_intermediate_size",
            "shared_expert_intermediate_size",
        ),
        "intermediate",
    ),
    **dict.fromkeys(
        (
            "num_attention_heads",
            "num_key_value_heads",
            "n_head",
            "num_kv_heads",
            "num_heads",
        ),
        "heads",
    ),
    **dict.fromkeys(
        (
            "max_position_embeddings",
            "n_positions",
            "n_ctx",
            "context_length",
            "sliding_window",
            "max_window_layers",
        ),
        "context",
    ),
    **dict.fromkeys(("q_lora_rank", "kv_lora_rank", "time_step_rank"), "rank"),
    **dict.fromkeys(
        (
            "conv_kernel",
            "expand",
            "num_channels",
            "patch_size",
            "decoder_sparse_step",
            "sliding_window_pattern",
            "mm_tokens_per_image",
        ),
        "small",
    ),
}

# Per-layer lists (layer_types, mlp_only_layers) hold at most one entry per layer.
_LIST_FIELDS: Final[tuple[str, ...]] = ("layer_types", "mlp_only_layers")
_MAX_DEPTH: Final = 4  # text_config inside a multimodal config, and a little more


def check_size(field_name: str, value: object, kind: str) -> None:
    """Refuse an integer ``value`` above the bound for ``kind`` (others pass: the reader
    that uses the field says what is wrong with a string or a negative number)."""
    limit = LIMITS[kind]
    if isinstance(value, int) and not isinstance(value, bool) and value > limit.maximum:
        raise InvalidValueError(
            field_name,
            value,
            f"over the limit of {limit.maximum:,} (the largest real model has "
            f"{limit.seen:,}: {limit.seen_in})",
        )


_WIDTH_FIELDS: Final = ("hidden_size", "n_embd", "n_embed", "d_model")
_HEAD_FIELDS: Final = ("num_attention_heads", "n_head", "num_heads")


# Families whose transformers attention refuses a width the heads do not divide (GPT-2's,
# OPT's, Falcon's, BERT's … "embed_dim must be divisible by num_heads"); Llama-style
# classes take head_dim = width // heads instead, and GLM-4-MoE's default config (96
# heads over 4,096) builds that way.
_DIVISIBLE_WIDTH_FAMILIES: Final = frozenset(
    {"gpt2", "opt", "falcon", "bert", "roberta", "xlm-roberta", "gpt_neox", "gptj", "phi"}
)


def _check_heads_divide(config: Mapping[str, Any], prefix: str) -> None:
    """For the families whose attention requires it, a width the heads do not divide has
    no model (without an explicit ``head_dim``)."""
    if "head_dim" in config or config.get("model_type") not in _DIVISIBLE_WIDTH_FAMILIES:
        return
    width = next((config[k] for k in _WIDTH_FIELDS if k in config), None)
    field, heads = next(((k, config[k]) for k in _HEAD_FIELDS if k in config), ("", None))
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (width, heads)):
        return
    assert isinstance(width, int) and isinstance(heads, int)
    if width % heads:
        raise InvalidValueError(
            f"{prefix}{field}", heads, f"does not divide the width {width:,} into whole heads"
        )


def check_config(
    config: Mapping[str, Any], prefix: str = "", depth: int = 0, *, heads: bool = True
) -> None:
    """Every size field of a config mapping, and of the mappings nested in it, within
    :data:`LIMITS`; with ``heads``, the width splits into whole heads (for a family whose
    head_dim, when the file omits it, is width // heads — not for a class whose own default
    head_dim transformers fills in, as GLM-4-MoE's)."""
    if depth > _MAX_DEPTH:
        return
    if heads:
        _check_heads_divide(config, prefix)
    for key, value in config.items():
        name = f"{prefix}{key}"
        kind = CONFIG_FIELDS.get(key) if isinstance(key, str) else None
        if kind is not None:
            check_size(name, value, kind)
        elif key in _LIST_FIELDS and isinstance(value, list):
            if len(value) > LIMITS["layers"].maximum:
                raise InvalidValueError(
                    name,
                    f"[{len(value):,} entries]",
                    f"more entries than the limit of {LIMITS['layers'].maximum:,} layers",
                )
        elif isinstance(value, Mapping):
            check_config(value, f"{name}.", depth + 1, heads=heads)

"""Parameter counts equal what transformers builds, to the integer and tensor by tensor.

Two kinds of evidence: every real config.json in the fixtures, and randomized small
configs of every supported family (Hypothesis), which exercise the options real
checkpoints rarely combine (biases, tied heads, MQA/GQA, sliding layouts, dense-first
MoE layers, projections, pooling heads)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelmem.model.params import count_params, tensor_inventory
from modelmem.model.sources.hf_config import SUPPORTED_MODEL_TYPES, spec_from_config

from .reference import reference_param_count, reference_shapes

pytestmark = pytest.mark.oracle

FIXTURES = Path(__file__).parent.parent / "fixtures" / "hf-configs"
FIXTURE_DIRS = sorted(p for p in FIXTURES.iterdir() if (p / "config.json").is_file())


def our_numels(config: dict[str, Any]) -> dict[str, int]:
    spec = spec_from_config(config)
    out: dict[str, int] = {}
    for t in tensor_inventory(spec):
        for i in t.layers or (None,):
            name = t.name if i is None else t.name.replace("{i}", str(i))
            assert name not in out, f"duplicate tensor {name}"
            out[name] = t.numel_each
    return out


def assert_matches_reference(config: dict[str, Any]) -> None:
    ours = our_numels(config)
    ref = {n: int(torch_numel(s)) for n, s in reference_shapes(config).items()}
    missing = sorted(set(ref) - set(ours))[:5]
    extra = sorted(set(ours) - set(ref))[:5]
    wrong = sorted(n for n in set(ref) & set(ours) if ref[n] != ours[n])[:5]
    assert not (missing or extra or wrong), f"missing={missing} extra={extra} wrong={wrong}"
    assert count_params(spec_from_config(config)).total == sum(ref.values())


def torch_numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


@pytest.mark.parametrize("folder", FIXTURE_DIRS, ids=[p.name for p in FIXTURE_DIRS])
def test_real_config_matches_transformers(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    spec = spec_from_config(config)
    assert count_params(spec).total == reference_param_count(config)
    assert_matches_reference(config)


# ------------------------------------------------------------ random small configs


@st.composite
def heads(draw: st.DrawFn, *, gqa: bool = True, explicit_head_dim: bool = False) -> dict[str, Any]:
    n_kv = draw(st.integers(1, 4))
    n_h = n_kv * (draw(st.integers(1, 3)) if gqa else 1)
    d = draw(st.sampled_from([4, 8, 16]))
    hidden = n_h * d
    cfg: dict[str, Any] = {"num_attention_heads": n_h, "hidden_size": hidden}
    if gqa:
        cfg["num_key_value_heads"] = n_kv
    if explicit_head_dim:
        cfg["head_dim"] = draw(st.sampled_from([4, 8, 12]))
    return cfg


def base(draw: st.DrawFn, model_type: str, **head_opts: bool) -> dict[str, Any]:
    return {
        "model_type": model_type,
        "vocab_size": draw(st.integers(16, 300)),
        "num_hidden_layers": draw(st.integers(1, 4)),
        "intermediate_size": draw(st.integers(8, 96)),
        "max_position_embeddings": draw(st.sampled_from([64, 128, 512])),
        "tie_word_embeddings": draw(st.booleans()),
        "pad_token_id": 0,  # some classes default to an id beyond a tiny vocabulary
        **draw(heads(**head_opts)),
    }


@st.composite
def llama_like(draw: st.DrawFn, model_type: str) -> dict[str, Any]:
    explicit = model_type in (
        "llama",
        "mistral",
        "qwen3",
        "gemma",
        "gemma2",
        "gemma3_text",
        "gpt_oss",
    )
    cfg = base(draw, model_type, explicit_head_dim=explicit and draw(st.booleans()))
    if model_type in (
        "llama",
        "qwen3",
        "qwen3_moe",
        "gemma",
        "gemma2",
        "gemma3_text",
        "phimoe",
        "gpt_oss",
    ):
        cfg["attention_bias"] = draw(st.booleans())
    if model_type == "llama":
        cfg["mlp_bias"] = draw(st.booleans())
    if model_type in ("mistral", "mixtral", "gemma2", "gemma3_text", "phi3"):
        cfg["sliding_window"] = draw(st.sampled_from([None, 16, 32]))
    if model_type in ("qwen2", "qwen3"):
        cfg["use_sliding_window"] = draw(st.booleans())
        cfg["sliding_window"] = 32
    if model_type in ("mixtral", "phimoe", "gpt_oss"):
        e = draw(st.integers(2, 4))
        cfg["num_local_experts"] = e
        cfg["num_experts_per_tok"] = draw(st.integers(1, e))
    if model_type in ("qwen2_moe", "qwen3_moe"):
        e = draw(st.integers(1, 4))
        cfg["num_experts"] = e
        cfg["num_experts_per_tok"] = draw(st.integers(1, e))
        cfg["moe_intermediate_size"] = draw(st.integers(4, 32))
        cfg["decoder_sparse_step"] = draw(st.integers(1, 2))
        cfg["mlp_only_layers"] = draw(st.lists(st.integers(0, 3), max_size=2, unique=True))
    if model_type == "qwen2_moe":
        cfg["shared_expert_intermediate_size"] = draw(st.integers(4, 32))
        cfg["qkv_bias"] = draw(st.booleans())
    if model_type == "phimoe":
        cfg["lm_head_bias"] = draw(st.booleans())
    if model_type == "gemma3_text":
        cfg["sliding_window_pattern"] = draw(st.integers(1, 3))
    return cfg


@st.composite
def deepseek(draw: st.DrawFn, model_type: str) -> dict[str, Any]:
    cfg = base(draw, model_type)
    cfg.pop("num_key_value_heads")
    e = draw(st.integers(1, 4))
    cfg.update(
        q_lora_rank=draw(st.sampled_from([None, 8, 12])),
        kv_lora_rank=draw(st.sampled_from([4, 8])),
        qk_rope_head_dim=draw(st.sampled_from([2, 4])),
        qk_nope_head_dim=draw(st.sampled_from([4, 8])),
        v_head_dim=draw(st.sampled_from([4, 6])),
        n_routed_experts=e,
        num_experts_per_tok=draw(st.integers(1, e)),
        n_shared_experts=draw(st.integers(1, 2)),
        moe_intermediate_size=draw(st.integers(4, 16)),
        first_k_dense_replace=draw(st.integers(0, 2)),
        attention_bias=draw(st.booleans()),
    )
    if model_type == "deepseek_v3":
        cfg.update(n_group=1, topk_group=1)
    return cfg


@st.composite
def gemma3(draw: st.DrawFn, model_type: str) -> dict[str, Any]:
    text = draw(llama_like("gemma3_text"))
    text.pop("model_type")
    tie = text.pop("tie_word_embeddings")
    patch = draw(st.sampled_from([2, 4]))
    vh = draw(st.sampled_from([8, 16]))
    vision = {
        "model_type": "siglip_vision_model",
        "hidden_size": vh,
        "intermediate_size": draw(st.integers(8, 32)),
        "num_hidden_layers": draw(st.integers(1, 2)),
        "num_attention_heads": draw(st.sampled_from([1, 2])),
        "patch_size": patch,
        "image_size": patch * 4,
        "vision_use_head": draw(st.booleans()),
    }
    return {
        "model_type": "gemma3",
        "text_config": text,
        "vision_config": vision,
        "mm_tokens_per_image": 4,
        "tie_word_embeddings": tie,
    }


@st.composite
def gpt2(draw: st.DrawFn, model_type: str) -> dict[str, Any]:
    n_h, d = draw(st.integers(1, 4)), draw(st.sampled_from([4, 8]))
    return {
        "model_type": "gpt2",
        "vocab_size": draw(st.integers(16, 300)),
        "n_embd": n_h * d,
        "n_head": n_h,
        "n_layer": draw(st.integers(1, 3)),
        "n_positions": draw(st.sampled_from([32, 64])),
        "n_inner": draw(st.sampled_from([None, 24, 40])),
        "tie_word_embeddings": draw(st.booleans()),
    }


@st.composite
def gpt_neox(draw: st.DrawFn, model_type: str) -> dict[str, Any]:
    cfg = base(draw, model_type, gqa=False)
    cfg["attention_bias"] = draw(st.booleans())
    return cfg


@st.composite
def falcon(draw: st.DrawFn, model_type: str) -> dict[str, Any]:
    cfg = base(draw, model_type, gqa=False)
    cfg.pop("intermediate_size")
    n_h = cfg["num_attention_heads"]
    new_arch = draw(st.booleans())
    cfg.update(
        new_decoder_architecture=new_arch,
        multi_query=draw(st.booleans()),
        parallel_attn=draw(st.booleans()),
        bias=draw(st.booleans()),
        alibi=draw(st.booleans()),
        ffn_hidden_size=draw(st.sampled_from([None, 20, 36])),
        num_ln_in_parallel_attn=draw(st.sampled_from([None, 1, 2])),
    )
    if new_arch:
        cfg["num_kv_heads"] = draw(st.sampled_from([k for k in range(1, n_h + 1) if n_h % k == 0]))
    return cfg


@st.composite
def opt(draw: st.DrawFn, model_type: str) -> dict[str, Any]:
    cfg = base(draw, model_type, gqa=False)
    cfg["ffn_dim"] = cfg.pop("intermediate_size")
    cfg.update(
        word_embed_proj_dim=draw(st.sampled_from([None, 8, 12])),
        do_layer_norm_before=draw(st.booleans()),
        enable_bias=draw(st.booleans()),
        layer_norm_elementwise_affine=draw(st.booleans()),
    )
    return cfg


@st.composite
def bert(draw: st.DrawFn, model_type: str) -> dict[str, Any]:
    cfg = base(draw, model_type, gqa=False)
    cfg["type_vocab_size"] = draw(st.integers(1, 3))
    return cfg


@st.composite
def mamba(draw: st.DrawFn, model_type: str) -> dict[str, Any]:
    hidden = draw(st.sampled_from([8, 16, 40]))
    cfg: dict[str, Any] = {
        "model_type": model_type,
        "vocab_size": draw(st.integers(16, 300)),
        "hidden_size": hidden,
        "num_hidden_layers": draw(st.integers(1, 3)),
        "state_size": draw(st.sampled_from([4, 16])),
        "conv_kernel": draw(st.sampled_from([2, 4])),
        "expand": draw(st.sampled_from([1, 2])),
        "time_step_rank": draw(st.sampled_from(["auto", 3, 5])),
        "use_bias": draw(st.booleans()),
        "use_conv_bias": draw(st.booleans()),
        "tie_word_embeddings": draw(st.booleans()),
    }
    if draw(st.booleans()):
        cfg["intermediate_size"] = draw(st.sampled_from([12, 24]))
    return cfg


@st.composite
def table_family(draw: st.DrawFn, model_type: str) -> dict[str, Any]:
    """The decoder families of the native family table, every option they read."""
    if model_type == "gptj":
        n_h, d = draw(st.integers(1, 4)), draw(st.sampled_from([4, 8]))
        return {
            "model_type": "gptj",
            "vocab_size": draw(st.integers(16, 300)),
            "n_embd": n_h * d,
            "n_head": n_h,
            "n_layer": draw(st.integers(1, 3)),
            "n_positions": draw(st.sampled_from([32, 64])),
            "n_inner": draw(st.sampled_from([None, 24, 40])),
            "rotary_dim": 2,
            "tie_word_embeddings": draw(st.booleans()),
            "pad_token_id": 0,
        }
    explicit = model_type in (
        "cohere2",
        "olmo2",
        "glm4",
        "glm4_moe",
        "llama4_text",
        "smollm3",
        "exaone4",
        "granite",
    )
    cfg = base(draw, model_type, explicit_head_dim=explicit and draw(st.booleans()))
    flags = {
        "cohere": ("attention_bias", "use_qk_norm"),
        "cohere2": ("attention_bias",),
        "olmo2": ("attention_bias",),
        "olmoe": ("attention_bias",),
        "granite": ("attention_bias", "mlp_bias"),
        "granitemoe": ("attention_bias",),
        "starcoder2": ("use_bias",),
        "phi": ("qk_layernorm",),
        "stablelm": ("use_qkv_bias", "qk_layernorm", "use_parallel_residual"),
        "glm4": ("attention_bias",),
        "glm4_moe": ("attention_bias",),
        "llama4_text": ("attention_bias",),
        "smollm3": ("attention_bias", "mlp_bias", "use_sliding_window"),
        "exaone4": (),
    }[model_type]
    for flag in flags:
        cfg[flag] = draw(st.booleans())
    if model_type in ("starcoder2", "cohere2", "exaone4", "smollm3"):
        cfg["sliding_window"] = draw(st.sampled_from([None, 16, 32]))
    if model_type in ("cohere2", "exaone4"):
        cfg["sliding_window_pattern"] = draw(st.integers(1, 3))
    if model_type == "exaone4" and cfg["sliding_window"] is None:
        # Exaone4Config cannot derive layer_types without a window (modulo by zero)
        cfg["layer_types"] = ["full_attention"] * cfg["num_hidden_layers"]
    if model_type in ("olmoe", "granitemoe"):
        e = draw(st.integers(1, 4))
        cfg["num_local_experts" if model_type == "granitemoe" else "num_experts"] = e
        cfg["num_experts_per_tok"] = draw(st.integers(1, e))
    if model_type == "phi":
        cfg["partial_rotary_factor"] = 0.5
    if model_type == "glm4_moe":
        e = draw(st.integers(1, 4))
        cfg.update(
            n_routed_experts=e,
            num_experts_per_tok=draw(st.integers(1, e)),
            n_shared_experts=draw(st.integers(1, 2)),
            moe_intermediate_size=draw(st.integers(4, 16)),
            first_k_dense_replace=draw(st.integers(0, 2)),
            use_qk_norm=draw(st.booleans()),
            n_group=1,
            topk_group=1,
        )
    if model_type == "llama4_text":
        e = draw(st.integers(1, 4))
        cfg.update(
            intermediate_size_mlp=draw(st.integers(8, 64)),
            num_local_experts=e,
            num_experts_per_tok=draw(st.integers(1, e)),
            interleave_moe_layer_step=draw(st.integers(1, 3)),
            attention_chunk_size=draw(st.sampled_from([16, 64])),
            no_rope_layer_interval=draw(st.integers(1, 4)),
            use_qk_norm=draw(st.booleans()),
        )
        if draw(st.booleans()):
            layers = cfg["num_hidden_layers"]
            cfg["moe_layers"] = draw(st.lists(st.integers(0, layers - 1), max_size=3, unique=True))
    return cfg


TABLE_FAMILIES = (
    "cohere",
    "cohere2",
    "olmo2",
    "olmoe",
    "granite",
    "granitemoe",
    "starcoder2",
    "phi",
    "stablelm",
    "gptj",
    "glm4",
    "glm4_moe",
    "llama4_text",
    "smollm3",
    "exaone4",
)


@st.composite
def qwen3_next(draw: st.DrawFn, model_type: str) -> dict[str, Any]:
    cfg = base(draw, model_type, explicit_head_dim=True)
    e = draw(st.integers(1, 4))
    cfg.update(
        attention_bias=draw(st.booleans()),
        linear_num_key_heads=draw(st.integers(1, 2)),
        linear_num_value_heads=draw(st.sampled_from([2, 4])),
        linear_key_head_dim=draw(st.sampled_from([4, 8])),
        linear_value_head_dim=draw(st.sampled_from([4, 8])),
        linear_conv_kernel_dim=draw(st.sampled_from([2, 4])),
        num_experts=e,
        num_experts_per_tok=draw(st.integers(1, e)),
        moe_intermediate_size=draw(st.integers(4, 16)),
        shared_expert_intermediate_size=draw(st.integers(4, 16)),
        decoder_sparse_step=draw(st.integers(1, 2)),
        mlp_only_layers=draw(st.lists(st.integers(0, 3), max_size=2, unique=True)),
        full_attention_interval=draw(st.integers(1, 3)),
    )
    return cfg


@st.composite
def recurrent_gemma(draw: st.DrawFn, model_type: str) -> dict[str, Any]:
    cfg = base(draw, model_type)
    n_h = cfg["num_attention_heads"]
    cfg.update(
        intermediate_size=2 * draw(st.integers(4, 48)),
        lru_width=n_h * draw(st.sampled_from([2, 4, 6])),
        conv1d_width=draw(st.sampled_from([2, 4])),
        attention_window_size=draw(st.sampled_from([16, 64])),
        attention_bias=draw(st.booleans()),
        block_types=draw(
            st.sampled_from([["recurrent", "recurrent", "attention"], ["attention"], ["recurrent"]])
        ),
    )
    return cfg


@st.composite
def mamba2(draw: st.DrawFn, model_type: str) -> dict[str, Any]:
    hidden = draw(st.sampled_from([8, 16, 24]))
    expand = draw(st.sampled_from([1, 2]))
    head_dim = draw(st.sampled_from([4, 8]))
    groups = draw(st.sampled_from([1, 2]))
    return {
        "model_type": model_type,
        "vocab_size": draw(st.integers(16, 300)),
        "hidden_size": hidden,
        "num_hidden_layers": draw(st.integers(1, 3)),
        "expand": expand,
        "head_dim": head_dim,
        "num_heads": expand * hidden // head_dim,
        "n_groups": groups,
        "state_size": draw(st.sampled_from([4, 16])),
        "conv_kernel": draw(st.sampled_from([2, 4])),
        "use_bias": draw(st.booleans()),
        "use_conv_bias": draw(st.booleans()),
        "tie_word_embeddings": draw(st.booleans()),
        "pad_token_id": 0,
    }


STRATEGIES = {
    **{t: table_family for t in TABLE_FAMILIES},
    **{
        t: llama_like
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
    "deepseek_v2": deepseek,
    "deepseek_v3": deepseek,
    "gemma3": gemma3,
    "gpt2": gpt2,
    "gpt_neox": gpt_neox,
    "falcon": falcon,
    "opt": opt,
    "bert": bert,
    "mamba": mamba,
    "falcon_mamba": mamba,
    "mamba2": mamba2,
    "qwen3_next": qwen3_next,
    "recurrent_gemma": recurrent_gemma,
}


def test_every_supported_family_has_a_strategy() -> None:
    assert set(STRATEGIES) == set(SUPPORTED_MODEL_TYPES)


@pytest.mark.slow
@pytest.mark.parametrize("model_type", sorted(STRATEGIES))
def test_random_config_matches_transformers(model_type: str) -> None:
    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        derandomize=True,
    )
    @given(STRATEGIES[model_type](model_type))
    def check(config: dict[str, Any]) -> None:
        assert_matches_reference(config)

    check()


# Fields every config.json of these families states; the rest fall back to defaults.
# The fields that fix a model's size, required by the readers (GPT-2 style names too).
SIZE_FIELDS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "n_embd",
    "n_head",
    "n_layer",
    "n_embed",
)


@pytest.mark.parametrize("model_type", sorted(STRATEGIES))
def test_family_defaults_are_the_config_class_defaults(model_type: str) -> None:
    """A config that states only the size fields reads as transformers fills in the rest
    (kv heads, head dim, MLP and expert widths, expert counts, position tables, windows)."""
    from .reference import transformers

    if model_type == "gemma3":  # nested configs, filled from their classes entirely
        sparse: dict[str, Any] = {"model_type": "gemma3", "text_config": {}, "vision_config": {}}
    else:
        full = transformers.CONFIG_MAPPING[model_type]().to_dict()
        sparse = {"model_type": model_type, **{k: full[k] for k in SIZE_FIELDS if k in full}}
    assert_matches_reference(sparse)

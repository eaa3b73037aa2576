"""Exact parameter counts from a ModelSpec.

The count is built as a *tensor inventory*: every parameter tensor the reference
implementation (Hugging Face transformers) creates, with its module path, shape, the
component it belongs to and the layers it repeats over. Totals are sums over the
inventory, so the same inventory later prices weights per tensor (quantizers leave some
tensors in 16-bit) and finds LoRA target shapes by module name.

Counting convention (what ``sum(p.numel() for p in model.parameters())`` gives): unique
parameters, tied embeddings once; buffers (rotary ``inv_freq``, DeepSeek-V3's
``e_score_correction_bias``) are not parameters; a ``quantization_config`` does not change
the logical count; DeepSeek-V3's multi-token-prediction layer is not built by transformers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from modelmem.model.spec import AttentionSpec, ModelSpec, MoeSpec, ParamTensor, Role, VisionSpec

__all__ = ["ParamCount", "ParamTensor", "Role", "count_params", "tensor_inventory"]

# Breakdown keys, hierarchical like the reference formulas (component/sub-component).
EMBEDDING = "embedding"
POSITIONS = "embedding/positions"
ATTENTION = "attention"
MLP = "mlp"
EXPERTS = "moe/experts"
SHARED_EXPERTS = "moe/shared_experts"
ROUTER = "moe/router"
NORMS = "norms"
SSM = "ssm"
LM_HEAD = "lm_head"
POOLER = "pooler"
VISION = "vision_tower"
AUDIO = "audio_tower"
PROJECTOR = "projector"
OTHER = "other"  # reference-path tensors no rule below places (counted, shown apart)
# Components outside the text model: towers of multimodal models and their projectors.
NON_TEXT = (VISION, AUDIO, PROJECTOR)


@dataclass(frozen=True, slots=True)
class ParamCount:
    """Total, active-per-token and per-component parameter counts."""

    total: int
    active: int
    components: tuple[tuple[str, int], ...]
    text: int  # everything but a vision tower and its projector

    def component(self, name: str) -> int:
        return sum(n for key, n in self.components if key == name or key.startswith(name + "/"))


# --------------------------------------------------------------------------- helpers


def _linear(
    module: str, d_in: int, d_out: int, component: str, layers: tuple[int, ...], bias: bool
) -> Iterator[ParamTensor]:
    """nn.Linear(d_in, d_out): weight [d_out, d_in] (+ bias [d_out])."""
    yield ParamTensor(f"{module}.weight", (d_out, d_in), component, "linear", layers)
    if bias:
        yield ParamTensor(f"{module}.bias", (d_out,), component, "bias", layers)


def _norm(
    module: str, width: int, spec: ModelSpec, layers: tuple[int, ...], component: str = NORMS
) -> Iterator[ParamTensor]:
    """RMSNorm has a weight; LayerNorm a weight and (usually) a bias."""
    yield ParamTensor(f"{module}.weight", (width,), component, "norm", layers)
    if spec.norm == "layernorm" and spec.norm_bias:
        yield ParamTensor(f"{module}.bias", (width,), component, "norm", layers)


def _attention_indices(spec: ModelSpec) -> tuple[int, ...]:
    """Layers with self-attention (all of them, but in hybrids)."""
    return tuple(i for i, k in enumerate(spec.attention_layers) if k in ("full", "sliding"))


def _layer_indices(spec: ModelSpec, kind: str | None = None) -> tuple[int, ...]:
    if kind is None:
        return tuple(range(spec.num_layers))
    return tuple(i for i, k in enumerate(spec.mlp_layers) if k == kind)


def _lm_head(spec: ModelSpec) -> Iterator[ParamTensor]:
    # A tied head shares the embedding matrix and adds no parameters (counted once).
    if spec.lm_head and not spec.tie_word_embeddings:
        yield from _linear(
            "lm_head", spec.token_embedding_dim, spec.vocab_size, LM_HEAD, (), spec.lm_head_bias
        )
    elif spec.lm_head and spec.lm_head_bias:
        yield ParamTensor("lm_head.bias", (spec.vocab_size,), LM_HEAD, "bias")


# --------------------------------------------------------------------- llama-style


@dataclass(frozen=True, slots=True)
class Naming:
    """Module names of a llama-style family in its transformers implementation. The
    numbers (widths, biases, which norms) live in the spec; this says only what the
    tensors are called, so that a new family is a row of data."""

    base: str = "model"
    layers: str = "layers"
    embed: str = "embed_tokens"
    attn: str = "self_attn"
    o_proj: str = "o_proj"
    qk_norms: tuple[str, str] = ("q_norm", "k_norm")
    # Per-layer norms, the first ``spec.norms_per_layer`` of them.
    layer_norms: tuple[str, ...] = ("input_layernorm", "post_attention_layernorm")
    mlp: str = "mlp"  # the dense feed-forward module
    plain_mlp: tuple[str, str] = ("c_fc", "c_proj")  # up, down of a non-gated MLP
    moe: str = "mlp"  # the module holding router and experts
    router: str = "gate"
    shared: str = "shared_expert"  # the always-active shared expert MLP
    experts_transposed: bool = False  # experts stored [E, h, 2I] and [E, I, h]
    final_norm: str = "norm"


_GEMMA_NORMS = (
    "input_layernorm",
    "post_attention_layernorm",
    "pre_feedforward_layernorm",
    "post_feedforward_layernorm",
)
_POST_NORMS = ("post_attention_layernorm", "post_feedforward_layernorm")
_NAMING: dict[str, Naming] = {
    "gemma2": Naming(layer_norms=_GEMMA_NORMS),
    "gemma3_text": Naming(layer_norms=_GEMMA_NORMS),
    "gemma3": Naming(layer_norms=_GEMMA_NORMS),
    "gpt_oss": Naming(router="router", experts_transposed=True),
    "deepseek_v2": Naming(shared="shared_experts"),
    "deepseek_v3": Naming(shared="shared_experts"),
    "glm4_moe": Naming(shared="shared_experts"),
    "llama4_text": Naming(
        mlp="feed_forward", moe="feed_forward", router="router", experts_transposed=True
    ),
    "phimoe": Naming(router="router"),
    "granitemoe": Naming(moe="block_sparse_moe", router="router"),
    "olmo2": Naming(layer_norms=_POST_NORMS),
    "exaone4": Naming(layer_norms=_POST_NORMS),
    "glm4": Naming(
        layer_norms=(
            "input_layernorm",
            "post_attention_layernorm",
            "post_self_attn_layernorm",
            "post_mlp_layernorm",
        )
    ),
    "phi": Naming(
        o_proj="dense",
        qk_norms=("q_layernorm", "k_layernorm"),
        plain_mlp=("fc1", "fc2"),
        final_norm="final_layernorm",
    ),
    "stablelm": Naming(qk_norms=("q_layernorm", "k_layernorm")),
    "gptj": Naming(
        base="transformer",
        layers="h",
        embed="wte",
        attn="attn",
        o_proj="out_proj",
        layer_norms=("ln_1",),
        plain_mlp=("fc_in", "fc_out"),
        final_norm="ln_f",
    ),
}
_DEFAULT_NAMING = Naming()


def _naming(spec: ModelSpec) -> Naming:
    return _NAMING.get(spec.family, _DEFAULT_NAMING)


def _qk_norms(
    att: str, spec: ModelSpec, a: AttentionSpec, names: tuple[str, str], layers: tuple[int, ...]
) -> Iterator[ParamTensor]:
    """Norms on q and k, in the shape the family uses (see ``AttentionSpec.qk_norm_shape``)."""
    d = a.head_dim
    for name, heads in zip(names, (a.num_heads, a.num_kv_heads), strict=True):
        if a.qk_norm_shape == "head":
            yield from _norm(f"{att}.{name}", d, spec, layers)
        elif a.qk_norm_shape == "full":
            yield ParamTensor(f"{att}.{name}.weight", (heads * d,), NORMS, "norm", layers)
        elif a.qk_norm_shape == "matrix":
            yield ParamTensor(f"{att}.{name}.weight", (heads, d), NORMS, "norm", layers)
        else:  # one LayerNorm (no bias) per head
            for j in range(heads):
                yield ParamTensor(f"{att}.{name}.norms.{j}.weight", (d,), NORMS, "norm", layers)


def _attention_llama(prefix: str, spec: ModelSpec, a: AttentionSpec) -> Iterator[ParamTensor]:
    """q/k/v/o projections (separate, or fused qkv_proj for Phi-3), q/k norms, sinks."""
    h, layers, names = spec.hidden_size, _attention_indices(spec), _naming(spec)
    q_out, kv_out = a.num_heads * a.head_dim, a.num_kv_heads * a.head_dim
    if a.output_gate:  # queries and their per-head gates from one projection
        q_out *= 2
    att = f"{prefix}.{names.attn}"
    if spec.layout == "phi3":
        yield from _linear(f"{att}.qkv_proj", h, q_out + 2 * kv_out, ATTENTION, layers, a.q_bias)
    else:
        yield from _linear(f"{att}.q_proj", h, q_out, ATTENTION, layers, a.q_bias)
        yield from _linear(f"{att}.k_proj", h, kv_out, ATTENTION, layers, a.kv_bias)
        yield from _linear(f"{att}.v_proj", h, kv_out, ATTENTION, layers, a.kv_bias)
    o_in = a.num_heads * a.v_head_dim
    yield from _linear(f"{att}.{names.o_proj}", o_in, h, ATTENTION, layers, a.o_bias)
    if a.qk_norm:
        yield from _qk_norms(att, spec, a, names.qk_norms, layers)
    if a.sinks:
        yield ParamTensor(f"{att}.sinks", (a.num_heads,), ATTENTION, "other", layers)


def _gated_delta_net(prefix: str, spec: ModelSpec) -> Iterator[ParamTensor]:
    """Qwen3-Next's gated delta-net layers: in_proj_qkvz h -> (2·key + 2·value dims),
    in_proj_ba h -> 2 per value head, a depthwise conv over q, k, v, per-head dt_bias and
    A_log, a gated RMSNorm over the value head dim, out_proj value dim -> h."""
    la = spec.linear_attention
    assert la is not None
    h, layers = (
        spec.hidden_size,
        tuple(i for i, k in enumerate(spec.attention_layers) if k == "linear"),
    )
    lin = f"{prefix}.linear_attn"
    conv = 2 * la.key_dim + la.value_dim
    yield ParamTensor(f"{lin}.dt_bias", (la.num_value_heads,), SSM, "other", layers)
    yield ParamTensor(f"{lin}.A_log", (la.num_value_heads,), SSM, "other", layers)
    yield ParamTensor(f"{lin}.conv1d.weight", (conv, 1, la.conv_kernel), SSM, "other", layers)
    qkvz = 2 * la.key_dim + 2 * la.value_dim
    yield from _linear(f"{lin}.in_proj_qkvz", h, qkvz, SSM, layers, False)
    yield from _linear(f"{lin}.in_proj_ba", h, 2 * la.num_value_heads, SSM, layers, False)
    yield ParamTensor(f"{lin}.norm.weight", (la.value_head_dim,), NORMS, "norm", layers)
    yield from _linear(f"{lin}.out_proj", la.value_dim, h, SSM, layers, False)


def _attention_mla(prefix: str, spec: ModelSpec, a: AttentionSpec) -> Iterator[ParamTensor]:
    """DeepSeek multi-head latent attention (DeepSeek-V2 paper, arXiv:2405.04434, §2.1)."""
    h, layers = spec.hidden_size, _layer_indices(spec)
    att = f"{prefix}.self_attn"
    assert a.kv_lora_rank is not None
    q_out = a.num_heads * a.head_dim
    if a.q_lora_rank is None:
        yield from _linear(f"{att}.q_proj", h, q_out, ATTENTION, layers, False)
    else:
        yield from _linear(f"{att}.q_a_proj", h, a.q_lora_rank, ATTENTION, layers, a.kv_bias)
        yield ParamTensor(f"{att}.q_a_layernorm.weight", (a.q_lora_rank,), NORMS, "norm", layers)
        yield from _linear(f"{att}.q_b_proj", a.q_lora_rank, q_out, ATTENTION, layers, False)
    kv_a_out = a.kv_lora_rank + a.qk_rope_head_dim
    yield from _linear(f"{att}.kv_a_proj_with_mqa", h, kv_a_out, ATTENTION, layers, a.kv_bias)
    yield ParamTensor(f"{att}.kv_a_layernorm.weight", (a.kv_lora_rank,), NORMS, "norm", layers)
    kv_b_out = a.num_heads * (a.qk_nope_head_dim + a.v_head_dim)
    yield from _linear(f"{att}.kv_b_proj", a.kv_lora_rank, kv_b_out, ATTENTION, layers, False)
    yield from _linear(f"{att}.o_proj", a.num_heads * a.v_head_dim, h, ATTENTION, layers, a.o_bias)


def _gated_mlp(
    module: str,
    h: int,
    width: int,
    component: str,
    layers: tuple[int, ...],
    bias: bool,
    fused: bool,
) -> Iterator[ParamTensor]:
    """SwiGLU/GeGLU: gate_proj, up_proj (h -> I), down_proj (I -> h); Phi-3 fuses gate+up."""
    if fused:
        yield from _linear(f"{module}.gate_up_proj", h, 2 * width, component, layers, bias)
    else:
        yield from _linear(f"{module}.gate_proj", h, width, component, layers, bias)
        yield from _linear(f"{module}.up_proj", h, width, component, layers, bias)
    yield from _linear(f"{module}.down_proj", width, h, component, layers, bias)


def _moe(prefix: str, spec: ModelSpec, moe: MoeSpec) -> Iterator[ParamTensor]:
    """Routed experts stored as 3-D tensors [E, 2I, h] and [E, h, I], a router h -> E, and
    the optional shared expert (DeepSeek: one MLP of width n_shared * I_moe; Qwen2-MoE: an
    MLP plus a scalar gate h -> 1)."""
    h, layers, e, width = (
        spec.hidden_size,
        _layer_indices(spec, "moe"),
        moe.num_experts,
        moe.expert_intermediate_size,
    )
    names = _naming(spec)
    mlp = f"{prefix}.{names.moe}"
    yield from _linear(f"{mlp}.{names.router}", h, e, ROUTER, layers, moe.router_bias)
    if names.experts_transposed:  # gpt-oss, Llama 4: [E, h, 2I] and [E, I, h]
        up_shape, down_shape = (e, h, 2 * width), (e, width, h)
    else:
        up_shape, down_shape = (e, 2 * width, h), (e, h, width)
    yield ParamTensor(f"{mlp}.experts.gate_up_proj", up_shape, EXPERTS, "expert", layers)
    if moe.expert_bias:
        yield ParamTensor(
            f"{mlp}.experts.gate_up_proj_bias", (e, 2 * width), EXPERTS, "expert", layers
        )
    yield ParamTensor(f"{mlp}.experts.down_proj", down_shape, EXPERTS, "expert", layers)
    if moe.expert_bias:
        yield ParamTensor(f"{mlp}.experts.down_proj_bias", (e, h), EXPERTS, "expert", layers)
    if moe.shared_intermediate_size:
        yield from _gated_mlp(
            f"{mlp}.{names.shared}",
            h,
            moe.shared_intermediate_size,
            SHARED_EXPERTS,
            layers,
            False,
            False,
        )
    if moe.shared_expert_gate:
        yield from _linear(f"{mlp}.shared_expert_gate", h, 1, SHARED_EXPERTS, layers, False)


def _llama_style(spec: ModelSpec) -> Iterator[ParamTensor]:
    """Llama, Mistral, Mixtral, Qwen 2/2.5/3 (+MoE), Gemma 1/2/3, Phi-3, Phi-MoE, DeepSeek
    V2/V3, gpt-oss and the families of the naming table (Cohere, OLMo 2, OLMoE, Granite,
    StarCoder2, Phi, StableLM, GPT-J, GLM-4, SmolLM3, EXAONE 4): decoder blocks of
    attention and a gated, plain or MoE MLP, with the family's norms."""
    names = _naming(spec)
    base = "model.language_model" if spec.vision is not None else names.base
    prefix = f"{base}.{names.layers}.{{i}}"
    h, all_layers = spec.hidden_size, _layer_indices(spec)
    yield ParamTensor(f"{base}.{names.embed}.weight", (spec.vocab_size, h), EMBEDDING, "embedding")
    a = spec.attention
    assert a is not None
    if _attention_indices(spec):  # (a hybrid may have none; an empty list means "once")
        yield from (_attention_mla if a.is_mla else _attention_llama)(prefix, spec, a)
    if spec.linear_attention is not None:
        yield from _gated_delta_net(prefix, spec)
    m = spec.mlp
    if m is not None and "dense" in spec.mlp_layers:
        dense = _layer_indices(spec, "dense")
        if m.gated:
            fused = spec.layout == "phi3" or spec.family == "glm4"
            mlp = f"{prefix}.{names.mlp}"
            yield from _gated_mlp(mlp, h, m.intermediate_size, MLP, dense, m.bias, fused)
        else:
            up, down = (f"{prefix}.{names.mlp}.{n}" for n in names.plain_mlp)
            yield from _linear(up, h, m.intermediate_size, MLP, dense, m.bias)
            yield from _linear(down, m.intermediate_size, h, MLP, dense, m.bias)
    if spec.moe is not None and spec.is_moe:
        yield from _moe(prefix, spec, spec.moe)
    for norm in names.layer_norms[: spec.norms_per_layer]:
        yield from _norm(f"{prefix}.{norm}", h, spec, all_layers)
    yield from _norm(f"{base}.{names.final_norm}", h, spec, ())
    yield from _lm_head(spec)


# ------------------------------------------------------------------ legacy layouts


def _gpt2(spec: ModelSpec) -> Iterator[ParamTensor]:
    """GPT-2: learned positions, LayerNorm with bias, Conv1D layers with bias, tied head."""
    h, layers, p = spec.hidden_size, _layer_indices(spec), "transformer.h.{i}"
    assert spec.mlp is not None
    inner = spec.mlp.intermediate_size
    yield ParamTensor("transformer.wte.weight", (spec.vocab_size, h), EMBEDDING, "embedding")
    yield ParamTensor("transformer.wpe.weight", (spec.learned_positions, h), POSITIONS, "embedding")
    yield from _norm(f"{p}.ln_1", h, spec, layers)
    # Conv1D stores weight as [in, out]; the count is the same as a Linear.
    yield ParamTensor(f"{p}.attn.c_attn.weight", (h, 3 * h), ATTENTION, "linear", layers)
    yield ParamTensor(f"{p}.attn.c_attn.bias", (3 * h,), ATTENTION, "bias", layers)
    yield ParamTensor(f"{p}.attn.c_proj.weight", (h, h), ATTENTION, "linear", layers)
    yield ParamTensor(f"{p}.attn.c_proj.bias", (h,), ATTENTION, "bias", layers)
    yield from _norm(f"{p}.ln_2", h, spec, layers)
    yield ParamTensor(f"{p}.mlp.c_fc.weight", (h, inner), MLP, "linear", layers)
    yield ParamTensor(f"{p}.mlp.c_fc.bias", (inner,), MLP, "bias", layers)
    yield ParamTensor(f"{p}.mlp.c_proj.weight", (inner, h), MLP, "linear", layers)
    yield ParamTensor(f"{p}.mlp.c_proj.bias", (h,), MLP, "bias", layers)
    yield from _norm("transformer.ln_f", h, spec, ())
    yield from _lm_head(spec)


def _gpt_neox(spec: ModelSpec) -> Iterator[ParamTensor]:
    """GPT-NeoX / Pythia: fused query_key_value, LayerNorm with bias, untied embed_out."""
    h, layers, p = spec.hidden_size, _layer_indices(spec), "gpt_neox.layers.{i}"
    a, m = spec.attention, spec.mlp
    assert a is not None and m is not None
    yield ParamTensor("gpt_neox.embed_in.weight", (spec.vocab_size, h), EMBEDDING, "embedding")
    yield from _norm(f"{p}.input_layernorm", h, spec, layers)
    yield from _norm(f"{p}.post_attention_layernorm", h, spec, layers)
    yield from _linear(f"{p}.attention.query_key_value", h, 3 * h, ATTENTION, layers, a.q_bias)
    yield from _linear(f"{p}.attention.dense", h, h, ATTENTION, layers, a.o_bias)
    yield from _linear(f"{p}.mlp.dense_h_to_4h", h, m.intermediate_size, MLP, layers, m.bias)
    yield from _linear(f"{p}.mlp.dense_4h_to_h", m.intermediate_size, h, MLP, layers, m.bias)
    yield from _norm("gpt_neox.final_layer_norm", h, spec, ())
    yield from _lm_head(spec)


def _falcon(spec: ModelSpec) -> Iterator[ParamTensor]:
    """Falcon: fused query_key_value sized for MHA, MQA (7B) or grouped KV (40B/180B,
    new_decoder_architecture); one or two LayerNorms per layer."""
    h, layers, p = spec.hidden_size, _layer_indices(spec), "transformer.h.{i}"
    a, m = spec.attention, spec.mlp
    assert a is not None and m is not None
    qkv_out = (a.num_heads + 2 * a.num_kv_heads) * a.head_dim
    yield ParamTensor(
        "transformer.word_embeddings.weight", (spec.vocab_size, h), EMBEDDING, "embedding"
    )
    att = f"{p}.self_attention"
    yield from _linear(f"{att}.query_key_value", h, qkv_out, ATTENTION, layers, a.q_bias)
    yield from _linear(f"{att}.dense", h, h, ATTENTION, layers, a.o_bias)
    yield from _linear(f"{p}.mlp.dense_h_to_4h", h, m.intermediate_size, MLP, layers, m.bias)
    yield from _linear(f"{p}.mlp.dense_4h_to_h", m.intermediate_size, h, MLP, layers, m.bias)
    names = (
        ("ln_attn", "ln_mlp")
        if spec.norms_per_layer == 2 and spec.parallel_residual
        else (
            ("input_layernorm", "post_attention_layernorm")
            if spec.norms_per_layer == 2
            else ("input_layernorm",)
        )
    )
    for norm in names:
        yield from _norm(f"{p}.{norm}", h, spec, layers)
    yield from _norm("transformer.ln_f", h, spec, ())
    yield from _lm_head(spec)


def _opt(spec: ModelSpec) -> Iterator[ParamTensor]:
    """OPT: learned positions with an offset of 2 rows, optional project_in/out when the
    word embedding is narrower than the model (OPT-350m)."""
    h, layers, p = spec.hidden_size, _layer_indices(spec), "model.decoder.layers.{i}"
    a, m = spec.attention, spec.mlp
    assert a is not None and m is not None
    e = spec.token_embedding_dim
    dec = "model.decoder"
    yield ParamTensor(f"{dec}.embed_tokens.weight", (spec.vocab_size, e), EMBEDDING, "embedding")
    yield ParamTensor(
        f"{dec}.embed_positions.weight", (spec.learned_positions, h), POSITIONS, "embedding"
    )
    if e != h:
        yield from _linear(f"{dec}.project_out", h, e, EMBEDDING, (), False)
        yield from _linear(f"{dec}.project_in", e, h, EMBEDDING, (), False)
    for proj in ("k_proj", "v_proj", "q_proj", "out_proj"):
        bias = a.o_bias if proj == "out_proj" else a.q_bias
        yield from _linear(f"{p}.self_attn.{proj}", h, h, ATTENTION, layers, bias)
    yield from _linear(f"{p}.fc1", h, m.intermediate_size, MLP, layers, m.bias)
    yield from _linear(f"{p}.fc2", m.intermediate_size, h, MLP, layers, m.bias)
    if spec.norms_per_layer:
        yield from _norm(f"{p}.self_attn_layer_norm", h, spec, layers)
        yield from _norm(f"{p}.final_layer_norm", h, spec, layers)
    if spec.final_norm:
        yield from _norm(f"{dec}.final_layer_norm", h, spec, ())
    yield from _lm_head(spec)


def _bert(spec: ModelSpec) -> Iterator[ParamTensor]:
    """BERT encoder (BertModel): word + position + token-type embeddings and their
    LayerNorm, post-norm layers with biased linears, and the pooler."""
    root = "bert." if spec.mlm_head else ""  # BertForMaskedLM wraps BertModel as .bert
    h, layers, p = spec.hidden_size, _layer_indices(spec), f"{root}encoder.layer.{{i}}"
    m = spec.mlp
    assert m is not None
    emb = f"{root}embeddings"
    yield ParamTensor(f"{emb}.word_embeddings.weight", (spec.vocab_size, h), EMBEDDING, "embedding")
    yield ParamTensor(
        f"{emb}.position_embeddings.weight", (spec.learned_positions, h), POSITIONS, "embedding"
    )
    yield ParamTensor(
        f"{emb}.token_type_embeddings.weight", (spec.token_types, h), POSITIONS, "embedding"
    )
    yield from _norm(f"{emb}.LayerNorm", h, spec, ())
    for proj in ("query", "key", "value"):
        yield from _linear(f"{p}.attention.self.{proj}", h, h, ATTENTION, layers, True)
    yield from _linear(f"{p}.attention.output.dense", h, h, ATTENTION, layers, True)
    yield from _norm(f"{p}.attention.output.LayerNorm", h, spec, layers)
    yield from _linear(f"{p}.intermediate.dense", h, m.intermediate_size, MLP, layers, True)
    yield from _linear(f"{p}.output.dense", m.intermediate_size, h, MLP, layers, True)
    yield from _norm(f"{p}.output.LayerNorm", h, spec, layers)
    if spec.pooler:
        yield from _linear("pooler.dense", h, h, POOLER, (), True)
    if spec.mlm_head:  # BertForMaskedLM: dense + LayerNorm transform, decoder tied or not
        head = "cls.predictions"
        yield ParamTensor(f"{head}.bias", (spec.vocab_size,), LM_HEAD, "bias")
        yield from _linear(f"{head}.transform.dense", h, h, LM_HEAD, (), True)
        yield from _norm(f"{head}.transform.LayerNorm", h, spec, (), LM_HEAD)
        if not spec.tie_word_embeddings:  # an untied decoder also keeps its own bias
            yield from _linear(f"{head}.decoder", h, spec.vocab_size, LM_HEAD, (), True)


def _mamba(spec: ModelSpec) -> Iterator[ParamTensor]:
    """Mamba 1 / Falcon-Mamba: per layer an RMSNorm and a selective-SSM mixer
    (Gu & Dao 2023, arXiv:2312.00752): in_proj h -> 2·D, depthwise conv, x_proj
    D -> R + 2N, dt_proj R -> D, A_log [D, N], D [D], out_proj D -> h."""
    h, layers, p = spec.hidden_size, _layer_indices(spec), "backbone.layers.{i}"
    s = spec.ssm
    assert s is not None
    d, n, r = s.inner_size, s.state_size, s.time_step_rank
    mix = f"{p}.mixer"
    yield ParamTensor("backbone.embeddings.weight", (spec.vocab_size, h), EMBEDDING, "embedding")
    yield from _norm(f"{p}.norm", h, spec, layers)
    if s.num_heads:
        yield from _mamba2_mixer(mix, spec, layers)
        yield from _norm("backbone.norm_f", h, spec, ())
        yield from _lm_head(spec)
        return
    yield ParamTensor(f"{mix}.A_log", (d, n), SSM, "other", layers)
    yield ParamTensor(f"{mix}.D", (d,), SSM, "other", layers)
    yield ParamTensor(f"{mix}.conv1d.weight", (d, 1, s.conv_kernel), SSM, "other", layers)
    if s.conv_bias:
        yield ParamTensor(f"{mix}.conv1d.bias", (d,), SSM, "bias", layers)
    yield from _linear(f"{mix}.in_proj", h, 2 * d, SSM, layers, s.proj_bias)
    yield from _linear(f"{mix}.x_proj", d, r + 2 * n, SSM, layers, False)
    yield from _linear(f"{mix}.dt_proj", r, d, SSM, layers, True)
    yield from _linear(f"{mix}.out_proj", d, h, SSM, layers, s.proj_bias)
    yield from _norm("backbone.norm_f", h, spec, ())
    yield from _lm_head(spec)


def _recurrent_gemma(spec: ModelSpec) -> Iterator[ParamTensor]:
    """RecurrentGemma (Griffin): per layer a temporal block — local attention (q/k/v
    without bias, o_proj with) or the recurrent block — and a gated GeLU MLP with biases,
    each behind an RMSNorm; tied embeddings."""
    h, all_layers, base = spec.hidden_size, _layer_indices(spec), "model"
    p = f"{base}.layers.{{i}}"
    a, m, r = spec.attention, spec.mlp, spec.recurrent
    assert a is not None and m is not None and r is not None
    yield ParamTensor(f"{base}.embed_tokens.weight", (spec.vocab_size, h), EMBEDDING, "embedding")
    yield from _norm(f"{p}.temporal_pre_norm", h, spec, all_layers)
    attn = _attention_indices(spec)
    if attn:
        t = f"{p}.temporal_block"
        q_out, kv_out = a.num_heads * a.head_dim, a.num_kv_heads * a.head_dim
        yield from _linear(f"{t}.q_proj", h, q_out, ATTENTION, attn, a.q_bias)
        yield from _linear(f"{t}.k_proj", h, kv_out, ATTENTION, attn, a.kv_bias)
        yield from _linear(f"{t}.v_proj", h, kv_out, ATTENTION, attn, a.kv_bias)
        yield from _linear(f"{t}.o_proj", q_out, h, ATTENTION, attn, a.o_bias)
    rec = tuple(i for i, k in enumerate(spec.attention_layers) if k == "linear")
    if rec:
        t, w, heads = f"{p}.temporal_block", r.lru_width, r.num_heads
        block = w // heads
        yield from _linear(f"{t}.linear_y", h, w, SSM, rec, True)
        yield from _linear(f"{t}.linear_x", h, w, SSM, rec, True)
        yield from _linear(f"{t}.linear_out", w, h, SSM, rec, True)
        yield ParamTensor(f"{t}.conv_1d.weight", (w, 1, r.conv_kernel), SSM, "other", rec)
        yield ParamTensor(f"{t}.conv_1d.bias", (w,), SSM, "bias", rec)
        lru = f"{t}.rg_lru"
        yield ParamTensor(f"{lru}.recurrent_param", (w,), SSM, "other", rec)
        for gate in ("input_gate", "recurrent_gate"):
            yield ParamTensor(f"{lru}.{gate}_weight", (heads, block, block), SSM, "other", rec)
            yield ParamTensor(f"{lru}.{gate}_bias", (heads, block), SSM, "bias", rec)
    yield from _norm(f"{p}.channel_pre_norm", h, spec, all_layers)
    yield from _gated_mlp(f"{p}.mlp_block", h, m.intermediate_size, MLP, all_layers, True, False)
    yield from _norm(f"{base}.final_norm", h, spec, ())
    yield from _lm_head(spec)


def _mamba2_mixer(mix: str, spec: ModelSpec, layers: tuple[int, ...]) -> Iterator[ParamTensor]:
    """Mamba-2 mixer (arXiv:2405.21060): in_proj h -> z, x, B, C, dt (D + conv + heads),
    depthwise conv over x, B, C, per-head dt_bias, A_log and D, a gated RMSNorm over D and
    out_proj D -> h."""
    s = spec.ssm
    assert s is not None
    d, heads, conv = s.inner_size, s.num_heads, s.conv_channels
    yield ParamTensor(f"{mix}.dt_bias", (heads,), SSM, "other", layers)
    yield ParamTensor(f"{mix}.A_log", (heads,), SSM, "other", layers)
    yield ParamTensor(f"{mix}.D", (heads,), SSM, "other", layers)
    yield ParamTensor(f"{mix}.conv1d.weight", (conv, 1, s.conv_kernel), SSM, "other", layers)
    if s.conv_bias:
        yield ParamTensor(f"{mix}.conv1d.bias", (conv,), SSM, "bias", layers)
    yield from _linear(
        f"{mix}.in_proj", spec.hidden_size, d + conv + heads, SSM, layers, s.proj_bias
    )
    yield ParamTensor(f"{mix}.norm.weight", (d,), NORMS, "norm", layers)
    yield from _linear(f"{mix}.out_proj", d, spec.hidden_size, SSM, layers, s.proj_bias)


def _vision(v: VisionSpec) -> Iterator[ParamTensor]:
    """SigLIP vision tower (no pooling head) and the Gemma 3 projector."""
    h, i = v.hidden_size, v.intermediate_size
    layers = tuple(range(v.num_layers))
    t, p = "model.vision_tower", "model.vision_tower.encoder.layers.{i}"
    patches = (v.image_size // v.patch_size) ** 2
    shape = (h, v.num_channels, v.patch_size, v.patch_size)
    yield ParamTensor(f"{t}.embeddings.patch_embedding.weight", shape, VISION, "other")
    yield ParamTensor(f"{t}.embeddings.patch_embedding.bias", (h,), VISION, "bias")
    yield ParamTensor(
        f"{t}.embeddings.position_embedding.weight", (patches, h), VISION, "embedding"
    )
    for norm in ("layer_norm1", "layer_norm2"):
        yield ParamTensor(f"{p}.{norm}.weight", (h,), VISION, "norm", layers)
        yield ParamTensor(f"{p}.{norm}.bias", (h,), VISION, "norm", layers)
    for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
        yield from _linear(f"{p}.self_attn.{proj}", h, h, VISION, layers, True)
    yield from _linear(f"{p}.mlp.fc1", h, i, VISION, layers, True)
    yield from _linear(f"{p}.mlp.fc2", i, h, VISION, layers, True)
    yield ParamTensor(f"{t}.post_layernorm.weight", (h,), VISION, "norm")
    yield ParamTensor(f"{t}.post_layernorm.bias", (h,), VISION, "norm")
    if v.pooling_head:  # SiglipMultiheadAttentionPoolingHead: probe, attention, norm, MLP
        head = f"{t}.head"
        yield ParamTensor(f"{head}.probe", (1, 1, h), VISION, "other")
        yield ParamTensor(f"{head}.attention.in_proj_weight", (3 * h, h), VISION, "other")
        yield ParamTensor(f"{head}.attention.in_proj_bias", (3 * h,), VISION, "bias")
        yield from _linear(f"{head}.attention.out_proj", h, h, VISION, (), True)
        yield ParamTensor(f"{head}.layernorm.weight", (h,), VISION, "norm")
        yield ParamTensor(f"{head}.layernorm.bias", (h,), VISION, "norm")
        yield from _linear(f"{head}.mlp.fc1", h, i, VISION, (), True)
        yield from _linear(f"{head}.mlp.fc2", i, h, VISION, (), True)
    proj = "model.multi_modal_projector"
    yield ParamTensor(
        f"{proj}.mm_input_projection_weight", (h, v.projector_dim), PROJECTOR, "other"
    )
    yield ParamTensor(f"{proj}.mm_soft_emb_norm.weight", (h,), PROJECTOR, "norm")


_BUILDERS = {
    "llama": _llama_style,
    "phi3": _llama_style,
    "deepseek": _llama_style,
    "gpt2": _gpt2,
    "gpt_neox": _gpt_neox,
    "falcon": _falcon,
    "opt": _opt,
    "bert": _bert,
    "mamba": _mamba,
    "recurrent_gemma": _recurrent_gemma,
}


# Pure functions of a frozen, hashable spec returning immutable results: cached, since
# every estimate starts from the inventory (a planner sweep asks for it thousands of times).
@lru_cache(maxsize=512)
def tensor_inventory(spec: ModelSpec) -> tuple[ParamTensor, ...]:
    """Every parameter tensor of the model, tied weights once."""
    if spec.inventory:  # read from the module tree (reference path)
        return spec.inventory
    tensors = list(_BUILDERS[spec.layout](spec))
    if spec.vision is not None:
        tensors.extend(_vision(spec.vision))
    return tuple(tensors)


# Display order of the breakdown: input side, blocks, output side, other towers.
COMPONENT_ORDER = (
    EMBEDDING,
    POSITIONS,
    ATTENTION,
    MLP,
    ROUTER,
    EXPERTS,
    SHARED_EXPERTS,
    SSM,
    NORMS,
    LM_HEAD,
    POOLER,
    VISION,
    AUDIO,
    PROJECTOR,
    OTHER,
)


def _sum_by_component(tensors: Iterable[ParamTensor]) -> tuple[tuple[str, int], ...]:
    totals: dict[str, int] = {}
    for t in tensors:
        totals[t.component] = totals.get(t.component, 0) + t.numel
    return tuple((name, totals[name]) for name in COMPONENT_ORDER if name in totals)


def inactive_expert_params(spec: ModelSpec, tensors: Iterable[ParamTensor]) -> int:
    """Routed-expert parameters a token does not use: (E - k) / E of all expert tensors.
    Their sum is E equal experts per MoE layer (stacked [E, ...] tensors, or one module per
    expert), so the division is exact."""
    if spec.moe is None:
        return 0
    e, k = spec.moe.num_experts, spec.moe.experts_per_token
    return sum(t.numel for t in tensors if t.component == EXPERTS) // e * (e - k)


@lru_cache(maxsize=512)
def count_params(spec: ModelSpec) -> ParamCount:
    """Exact parameter count and breakdown of ``spec``."""
    tensors = tensor_inventory(spec)
    total = sum(t.numel for t in tensors)
    vision = sum(t.numel for t in tensors if t.component in NON_TEXT)
    return ParamCount(
        total=total,
        active=total - inactive_expert_params(spec, tensors),
        components=_sum_by_component(tensors),
        text=total - vision,
    )

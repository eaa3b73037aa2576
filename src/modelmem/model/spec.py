"""ModelSpec: one frozen, normalized description of a model architecture.

Every source (a Hugging Face ``config.json``, a safetensors header, a GGUF header, the
built-in catalogue, a plain size such as ``7B``) is turned into a :class:`ModelSpec`, and
every estimator reads only this object. It carries every field that changes the
parameter count or the size of the inference cache, and nothing about file formats.

Symbols used in comments follow the reference formulas: ``V`` vocabulary, ``h`` hidden
size, ``L`` layers, ``n_h`` query heads, ``n_kv`` key/value heads, ``d`` head dim,
``I`` MLP width, ``E`` routed experts, ``k`` experts per token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod
from typing import Literal

from modelmem.errors import InvalidValueError

NormKind = Literal["rmsnorm", "layernorm"]
QkNormShape = Literal["head", "full", "matrix", "per_head"]
# Per-layer token mixer. Only "full" and "sliding" layers hold a KV cache; "linear"
# (linear attention, gated delta-net, RG-LRU), "ssm" (Mamba 1/2) and "conv" (short
# convolutions) hold a fixed recurrent state instead; "none" layers mix no tokens (the
# MLP-only layers of Nemotron-H).
AttentionLayer = Literal["full", "sliding", "linear", "ssm", "conv", "none"]
MlpLayer = Literal["dense", "moe"]
# How the blocks of the implementation are laid out. It decides module names (which
# LoRA targets refer to) and a few legacy shapes; the numbers live in the fields below.
# "reference": the inventory was read from the transformers module tree (see ``inventory``).
Layout = Literal[
    "llama",
    "phi3",
    "deepseek",
    "gpt2",
    "gpt_neox",
    "falcon",
    "opt",
    "bert",
    "mamba",
    "recurrent_gemma",
    "reference",
]
# Which path produced the parameter count: this package's own family readers ("native",
# torch-free) or the transformers model built on the meta device ("reference").
CountPath = Literal["native", "reference"]
Role = Literal["linear", "bias", "norm", "embedding", "expert", "other"]


@dataclass(frozen=True, slots=True)
class ParamTensor:
    """One parameter tensor, possibly repeated in several layers.

    ``name`` is the module path of the reference implementation with ``{i}`` standing for
    the layer index, e.g. ``model.layers.{i}.self_attn.q_proj.weight``.
    """

    name: str
    shape: tuple[int, ...]
    component: str
    role: Role
    layers: tuple[int, ...] = ()

    @property
    def numel_each(self) -> int:
        return prod(self.shape)

    @property
    def copies(self) -> int:
        return len(self.layers) if self.layers else 1

    @property
    def numel(self) -> int:
        return self.numel_each * self.copies

    @property
    def module(self) -> str:
        """Module path without the parameter name (``...q_proj``)."""
        return self.name.rsplit(".", 1)[0]


@dataclass(frozen=True, kw_only=True, slots=True)
class AttentionSpec:
    """Self-attention of one decoder layer (the same in every layer of a model)."""

    num_heads: int
    num_kv_heads: int  # n_kv: = n_h for MHA, 1 for MQA, in between for GQA
    head_dim: int  # d of queries and keys (MLA: qk_nope_head_dim + qk_rope_head_dim)
    v_head_dim: int  # d of values (differs from head_dim only for MLA)
    q_bias: bool = False
    kv_bias: bool = False
    o_bias: bool = False
    qk_norm: bool = False  # norms on q and k (Qwen3, Gemma 3, OLMo 2, Cohere ...)
    # Shape of those norms: one of width d ("head": Qwen3, Gemma 3, Phi), over all heads
    # ("full": n_h·d and n_kv·d, OLMo 2 / OLMoE), one [heads, d] weight ("matrix": Cohere),
    # or one LayerNorm of width d per head ("per_head": StableLM).
    qk_norm_shape: QkNormShape = "head"
    sinks: bool = False  # learned per-head attention sink logits (gpt-oss)
    output_gate: bool = False  # q_proj also yields a sigmoid gate per head (Qwen3-Next)
    # Multi-head latent attention (DeepSeek V2/V3); None/0 for every other model.
    q_lora_rank: int | None = None
    kv_lora_rank: int | None = None
    qk_rope_head_dim: int = 0

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank is not None

    @property
    def qk_nope_head_dim(self) -> int:
        return self.head_dim - self.qk_rope_head_dim


@dataclass(frozen=True, kw_only=True, slots=True)
class MlpSpec:
    """Dense feed-forward block: gated (SwiGLU/GeGLU, three matrices) or plain (two)."""

    intermediate_size: int  # I
    gated: bool
    bias: bool = False
    activation: str = "silu"


@dataclass(frozen=True, kw_only=True, slots=True)
class MoeSpec:
    """Mixture-of-experts feed-forward block, used in the layers marked "moe"."""

    num_experts: int  # E routed experts
    experts_per_token: int  # k
    expert_intermediate_size: int  # I_moe, width of one routed expert
    shared_intermediate_size: int = 0  # total width of the always-active shared expert MLP
    shared_expert_gate: bool = False  # Qwen2-MoE scalar gate h -> 1 on the shared expert
    router_bias: bool = False
    expert_bias: bool = False  # biases inside experts (gpt-oss)


@dataclass(frozen=True, kw_only=True, slots=True)
class SsmSpec:
    """Selective state-space mixer (Mamba 1 or 2): no KV cache, a fixed recurrent state."""

    state_size: int  # N, SSM state per channel
    conv_kernel: int
    inner_size: int  # expand * h
    time_step_rank: int
    conv_bias: bool = True
    proj_bias: bool = False
    # Mamba-2 (Dao & Gu 2024, arXiv:2405.21060): scalar decay per head, B and C shared by
    # ``n_groups`` groups; 0 heads means Mamba 1.
    num_heads: int = 0
    n_groups: int = 1

    @property
    def conv_channels(self) -> int:
        """Channels of the depthwise convolution (Mamba-2 convolves x, B and C)."""
        return self.inner_size + (2 * self.n_groups * self.state_size if self.num_heads else 0)


@dataclass(frozen=True, kw_only=True, slots=True)
class LinearAttentionSpec:
    """Gated delta-net linear attention (Qwen3-Next, arXiv:2412.06464) of the layers marked
    "linear": a fixed state of value_heads × key_head_dim × value_head_dim per sequence
    instead of a KV cache, and a short convolution over q, k and v."""

    num_key_heads: int
    num_value_heads: int
    key_head_dim: int
    value_head_dim: int
    conv_kernel: int

    @property
    def key_dim(self) -> int:
        return self.num_key_heads * self.key_head_dim

    @property
    def value_dim(self) -> int:
        return self.num_value_heads * self.value_head_dim


@dataclass(frozen=True, kw_only=True, slots=True)
class RecurrentSpec:
    """Griffin's recurrent block (RecurrentGemma, arXiv:2402.19427) of the layers marked
    "linear": x and y branches h -> lru_width, a short convolution, the RG-LRU with
    block-diagonal input and recurrence gates (one block per head), out lru_width -> h."""

    lru_width: int
    num_heads: int
    conv_kernel: int


@dataclass(frozen=True, kw_only=True, slots=True)
class VisionSpec:
    """A ViT-style vision tower (SigLIP for Gemma 3) and its projector into the text model."""

    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    image_size: int
    patch_size: int
    num_channels: int = 3
    projector_dim: int = 0  # output width of the projector (= text hidden size)
    tokens_per_image: int = 0
    pooling_head: bool = False  # SigLIP multi-head attention pooling head


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelSpec:
    """A normalized, frozen description of one model architecture."""

    name: str
    family: str  # the config's model_type, e.g. "llama", "deepseek_v3"
    layout: Layout
    vocab_size: int
    hidden_size: int
    num_layers: int
    context_length: int
    attention: AttentionSpec | None  # None for attention-free (state-space) models
    mlp: MlpSpec | None  # None when every layer is MoE, or for state-space models
    attention_layers: tuple[AttentionLayer, ...] = ()  # per layer; empty if no attention
    mlp_layers: tuple[MlpLayer, ...] = ()  # per layer
    moe: MoeSpec | None = None
    ssm: SsmSpec | None = None
    linear_attention: LinearAttentionSpec | None = None  # the layers marked "linear"
    recurrent: RecurrentSpec | None = None  # RG-LRU layers (marked "linear")
    vision: VisionSpec | None = None
    sliding_window: int | None = None
    norm: NormKind = "rmsnorm"
    norm_bias: bool = False
    norms_per_layer: int = 2
    final_norm: bool = True
    tie_word_embeddings: bool = False
    embedding_dim: int = 0  # width of the token embedding when it differs from h (OPT-350m)
    learned_positions: int = 0  # rows of a learned position table (GPT-2, OPT, BERT)
    token_types: int = 0  # BERT segment embeddings
    embedding_norm: bool = False  # LayerNorm after the embeddings (BERT)
    pooler: bool = False  # BERT pooler dense h -> h
    lm_head: bool = True  # False for encoders counted without a task head
    causal: bool = True  # False for encoders (no KV cache), e.g. a masked-LM head
    mlm_head: bool = False  # BertForMaskedLM's prediction head (transform + decoder bias)
    lm_head_bias: bool = False
    parallel_residual: bool = False
    quantization: str | None = None  # quant_method of a checkpoint's quantization_config
    count_path: CountPath = "native"
    architecture: str | None = None  # the class counted (config.json ``architectures``)
    # The tensor inventory read from the module tree (count_path "reference"); empty when
    # the native builders derive it from the fields above.
    inventory: tuple[ParamTensor, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for name in ("vocab_size", "hidden_size", "num_layers", "context_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise InvalidValueError(name, value, "must be a positive integer")
        if self.attention is not None and len(self.attention_layers) != self.num_layers:
            raise InvalidValueError(
                "attention_layers",
                len(self.attention_layers),
                f"must list {self.num_layers} layers",
            )
        if self.mlp_layers and len(self.mlp_layers) != self.num_layers:
            raise InvalidValueError(
                "mlp_layers", len(self.mlp_layers), f"must list {self.num_layers} layers"
            )
        if "moe" in self.mlp_layers and self.moe is None:
            raise InvalidValueError("moe", None, "MoE layers need a MoeSpec")
        if "dense" in self.mlp_layers and self.mlp is None:
            raise InvalidValueError("mlp", None, "dense layers need an MlpSpec")

    @property
    def token_embedding_dim(self) -> int:
        return self.embedding_dim or self.hidden_size

    @property
    def is_moe(self) -> bool:
        return "moe" in self.mlp_layers

    @property
    def num_moe_layers(self) -> int:
        return self.mlp_layers.count("moe")

    @property
    def has_kv_cache(self) -> bool:
        return self.attention is not None and self.causal and self.layout != "bert"

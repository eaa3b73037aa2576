"""Weight memory per tensor, as real quantizers store a model.

Quantizers never store a whole model in one format: they leave embeddings, the output head,
norms, biases and routers in a wider type, and llama.cpp mixes several block formats in one
file. This module walks the tensor inventory (``model/params.py``) once and prices every
tensor in the format its quantizer actually gives it, with exact byte counts from
``formats.py``.

Schemes and the rules they follow (sources in each estimate's ``how``):

==================  ========================================================================
scheme              rule
==================  ========================================================================
fp32, fp16, bf16    every tensor in that dtype
fp8 (fp8-e4m3)      vLLM / compressed-tensors per-tensor FP8: decoder-block Linear weights
                    (attention, MLP, routed and shared experts) 1 byte per value + one fp32
                    ``weight_scale`` per checkpoint tensor; routers (vLLM builds MoE gates
                    with ``quant_config=None``), embeddings, lm_head, norms, biases in bf16
bnb-int8            transformers ``BitsAndBytesConfig(load_in_8bit=True)``: every
                    ``nn.Linear``/``Conv1D`` except the output embedding becomes
                    ``Linear8bitLt`` (int8 ``CB`` + fp32 row scales ``SCB``)
bnb-fp4, bnb-nf4    ``load_in_4bit=True`` with the default FP4 or QLoRA's NF4, ``-dq`` with
(+ ``-dq``)         double quantization; same module selection as bnb-int8. transformers 5
                    stores MoE experts as 3-D ``nn.Parameter`` and routers as ``TopKRouter``
                    modules: neither is an ``nn.Linear``, so both stay bf16
gptq-/awq-<b>bit-   decoder-block Linear weights as GPTQ/AWQ ``QuantLinear`` buffers (one per
g<g>                expert and projection for MoE); everything else fp16
mxfp4               the gpt-oss checkpoint (transformers ``Mxfp4Config``): MoE expert
                    matrices MXFP4, 32 E2M1 codes + one E8M0 scale byte per block of 32
                    input features (4.25 bits); everything else bf16. Dense models refused
fp8-block128        DeepSeek-V3/R1 and Qwen3-FP8 checkpoints (``weight_block_size``
                    [128, 128]): decoder-block Linear weights FP8 E4M3 + one fp32
                    ``weight_scale_inv`` per 128 × 128 block; routers, embeddings, lm_head,
                    norms in bf16
nvfp4               NVIDIA ModelOpt NVFP4: decoder-block Linear weights E2M1 + one FP8 E4M3
                    scale per 16 input features (4.5 bits) + one fp32 ``weight_scale_2``
                    per Linear; routers, embeddings, lm_head, norms in bf16
gguf-<ftype>        llama.cpp ``llama_tensor_get_type`` (``src/llama-quant.cpp``): a default
                    type per file type, ``output.weight`` -> Q6_K, ``attn_v``/``ffn_down``
                    upgraded by layer, 1-D tensors F32, block fallbacks for odd row lengths
==================  ========================================================================

Shapes are PyTorch order (``[out_features, in_features]``); GGUF rows are the last dimension
(ggml ``ne0``). Totals are exact integers; ``how`` and ``notes`` say what was assumed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Final

from modelmem.errors import InvalidValueError, UnknownNameError
from modelmem.formats import GROUPED_BITS, GROUPED_GROUP_SIZES, NumberFormat, get_format
from modelmem.model.params import (
    ATTENTION,
    EXPERTS,
    LM_HEAD,
    MLP,
    POSITIONS,
    PROJECTOR,
    ROUTER,
    SHARED_EXPERTS,
    SSM,
    VISION,
    ParamTensor,
    tensor_inventory,
)
from modelmem.model.spec import ModelSpec

if TYPE_CHECKING:
    from modelmem.model.checkpoint import Checkpoint

__all__ = [
    "TensorStorage",
    "WeightsEstimate",
    "checkpoint_weights",
    "estimate_weights",
    "is_weight_scheme",
    "scheme_element",
    "weight_schemes",
]


@dataclass(frozen=True, slots=True)
class TensorStorage:
    """One inventory tensor as stored: ``copies`` identical tensors of ``bytes_each``.

    ``name`` and ``shape`` are the inventory's (transformers module path with ``{i}`` for
    the layer). A tensor whose format depends on the layer (GGUF ``attn_v``/``ffn_down``)
    appears once per format, and llama.cpp's split of MLA ``kv_b_proj`` into ``attn_k_b``
    and ``attn_v_b`` appears as two entries with the stored shapes.
    """

    name: str
    shape: tuple[int, ...]
    format: str
    bytes_each: int
    copies: int

    @property
    def bytes(self) -> int:
        return self.bytes_each * self.copies


@dataclass(frozen=True, slots=True)
class WeightsEstimate:
    """Weight bytes of one model under one storage scheme, tensor by tensor."""

    scheme: str
    total_bytes: int
    tensors: tuple[TensorStorage, ...]
    by_format: tuple[tuple[str, int], ...]  # format name -> bytes, descending
    how: str
    notes: tuple[str, ...]


# --------------------------------------------------------------------------- scheme names

_FLOAT_SCHEMES: Final[dict[str, str]] = {
    "fp32": "fp32",
    "f32": "fp32",
    "float32": "fp32",
    "fp16": "fp16",
    "f16": "fp16",
    "float16": "fp16",
    "bf16": "bf16",
    "bfloat16": "bf16",
}
_FP8_SCHEMES: Final[dict[str, str]] = {"fp8": "fp8-e4m3", "fp8-e4m3": "fp8-e4m3"}
# Block-scaled FP8: scheme -> the side of the square weight block sharing one fp32 scale.
_FP8_BLOCK_SCHEMES: Final[dict[str, int]] = {"fp8-block128": 128, "fp8-e4m3-block128": 128}
_MXFP4_SCHEME: Final[str] = "mxfp4"
_NVFP4_SCHEME: Final[str] = "nvfp4"
# scheme -> (formats.py name, BitsAndBytesConfig that produces it)
_BNB_SCHEMES: Final[dict[str, tuple[str, str]]] = {
    "bnb-int8": ("llm-int8", "load_in_8bit=True (LLM.int8, Dettmers et al. 2022)"),
    "bnb-fp4": (
        "fp4",
        "load_in_4bit=True with its defaults bnb_4bit_quant_type='fp4', "
        "bnb_4bit_use_double_quant=False (FP4, no double quantization)",
    ),
    "bnb-fp4-dq": ("fp4-dq", "load_in_4bit=True, quant_type='fp4', use_double_quant=True"),
    "bnb-nf4": ("nf4", "load_in_4bit=True, bnb_4bit_quant_type='nf4' (QLoRA NF4, no DQ)"),
    "bnb-nf4-dq": (
        "nf4-dq",
        "load_in_4bit=True, quant_type='nf4', use_double_quant=True (QLoRA, Dettmers et al. 2023)",
    ),
}
_GROUPED_RE: Final[re.Pattern[str]] = re.compile(r"(gptq|awq)-(\d+)bit-g(\d+)")

# GGUF file type -> its default ggml type (llama-quant.cpp llama_ftype_get_default_type).
_GGUF_FTYPES: Final[dict[str, str]] = {
    "f32": "F32",
    "f16": "F16",
    "bf16": "BF16",
    "q8_0": "Q8_0",
    "q6_k": "Q6_K",
    "q5_k_m": "Q5_K",
    "q5_k_s": "Q5_K",
    "q5_1": "Q5_1",
    "q5_0": "Q5_0",
    "q4_k_m": "Q4_K",
    "q4_k_s": "Q4_K",
    "q4_1": "Q4_1",
    "q4_0": "Q4_0",
    "q3_k_l": "Q3_K",
    "q3_k_m": "Q3_K",
    "q3_k_s": "Q3_K",
    "q2_k": "Q2_K",
}
_GGUF_FLOAT_FTYPES: Final[frozenset[str]] = frozenset({"f32", "f16", "bf16"})


def weight_schemes() -> tuple[str, ...]:
    """Every accepted scheme name (matching is case-insensitive)."""
    grouped = tuple(
        f"{kind}-{bits}bit-g{group}"
        for kind in ("gptq", "awq")
        for bits in GROUPED_BITS
        for group in GROUPED_GROUP_SIZES
    )
    gguf = tuple(f"gguf-{ftype}" for ftype in _GGUF_FTYPES)
    return (
        *_FLOAT_SCHEMES,
        *_FP8_SCHEMES,
        *_FP8_BLOCK_SCHEMES,
        _MXFP4_SCHEME,
        _NVFP4_SCHEME,
        *_BNB_SCHEMES,
        *grouped,
        *gguf,
    )


def checkpoint_weights(checkpoint: Checkpoint) -> WeightsEstimate:
    """The weights of a checkpoint as the estimators take them: exactly its tensors' data
    (safetensors or GGUF headers)."""
    stored = tuple(TensorStorage(t.name, t.shape, t.dtype, t.nbytes, 1) for t in checkpoint.tensors)
    kind = (
        f"{checkpoint.file_format} ({checkpoint.quantization})"
        if checkpoint.quantization
        else checkpoint.file_format
    )
    return WeightsEstimate(
        scheme="checkpoint",
        total_bytes=checkpoint.total_bytes,
        tensors=stored,
        by_format=checkpoint.bytes_by_dtype(),
        how=f"sum of the {len(stored):,} tensors' data in the {kind} header of {checkpoint.origin}",
        notes=checkpoint.notes,
    )


def scheme_element(scheme: str) -> str:
    """The number format most of a scheme's weights are stored in (formats.py name): the
    format a rule of thumb multiplies the parameter count by."""
    key = scheme.strip().lower()
    if key in _FLOAT_SCHEMES:
        return _FLOAT_SCHEMES[key]
    if key in _FP8_SCHEMES:
        return _FP8_SCHEMES[key]
    if key in _BNB_SCHEMES:
        return _BNB_SCHEMES[key][0]
    if key.startswith("gguf-") and key[5:] in _GGUF_FTYPES:
        return _GGUF_FTYPES[key[5:]].lower()
    if key in _FP8_BLOCK_SCHEMES:
        return "fp8-e4m3"
    if key == _NVFP4_SCHEME:
        return "nvfp4-b16"  # ModelOpt's 16-value blocks
    return key  # gptq-/awq- and MXFP4 schemes are format names themselves


def is_weight_scheme(name: str) -> bool:
    """Whether ``name`` is a scheme :func:`estimate_weights` prices (parametric GPTQ/AWQ
    included), case-insensitively."""
    key = name.strip().lower()
    if key in _FLOAT_SCHEMES or key in _FP8_SCHEMES or key in _BNB_SCHEMES:
        return True
    if key in _FP8_BLOCK_SCHEMES or key in (_MXFP4_SCHEME, _NVFP4_SCHEME):
        return True
    grouped = _GROUPED_RE.fullmatch(key)
    if grouped is not None:
        return int(grouped[2]) in GROUPED_BITS and int(grouped[3]) in GROUPED_GROUP_SIZES
    return key.startswith("gguf-") and key[5:] in _GGUF_FTYPES


def estimate_weights(spec: ModelSpec, scheme: str) -> WeightsEstimate:
    """Exact weight bytes of ``spec`` under ``scheme`` (cached: a pure function of a frozen
    spec and a name, asked for by every estimate and many times by a plan sweep)."""
    if not isinstance(scheme, str):
        raise InvalidValueError("dtype", scheme, "must be a string")
    return _estimate_weights(spec, scheme)


@lru_cache(maxsize=1024)
def _estimate_weights(spec: ModelSpec, scheme: str) -> WeightsEstimate:
    """Exact weight bytes of ``spec`` stored under ``scheme``, tensor by tensor.

    Raises :class:`UnknownNameError` (field ``dtype``) for an unknown scheme, and
    :class:`InvalidValueError` where the real tool refuses the model (llama.cpp has no
    converter for the layout, or a row length fits no GGUF block).
    """
    key = scheme.strip().lower()
    inventory = tensor_inventory(spec)
    if key in _FLOAT_SCHEMES:
        return _float(spec, inventory, key, _FLOAT_SCHEMES[key])
    if key in _FP8_SCHEMES:
        return _fp8(spec, inventory, key)
    if key in _FP8_BLOCK_SCHEMES:
        return _fp8_block(spec, inventory, key, _FP8_BLOCK_SCHEMES[key])
    if key == _MXFP4_SCHEME:
        return _mxfp4(spec, inventory, key)
    if key == _NVFP4_SCHEME:
        return _nvfp4(spec, inventory, key)
    if key in _BNB_SCHEMES:
        return _bnb(spec, inventory, key)
    grouped = _GROUPED_RE.fullmatch(key)
    if (
        grouped is not None
        and int(grouped[2]) in GROUPED_BITS
        and int(grouped[3]) in GROUPED_GROUP_SIZES
    ):
        return _grouped(spec, inventory, key, get_format(key))
    if key.startswith("gguf-") and key[5:] in _GGUF_FTYPES:
        return _gguf(spec, inventory, key, key[5:])
    raise UnknownNameError("dtype", scheme, weight_schemes(), listed_by="modelmem formats")


# --------------------------------------------------------------------------- shared helpers


def _estimate(
    scheme: str, stored: Iterable[TensorStorage], how: str, notes: Iterable[str]
) -> WeightsEstimate:
    tensors = tuple(stored)
    per_format: dict[str, int] = {}
    for t in tensors:
        per_format[t.format] = per_format.get(t.format, 0) + t.bytes
    by_format = tuple(sorted(per_format.items(), key=lambda kv: (-kv[1], kv[0])))
    return WeightsEstimate(
        scheme=scheme,
        total_bytes=sum(t.bytes for t in tensors),
        tensors=tensors,
        by_format=by_format,
        how=how,
        notes=tuple(notes),
    )


def _as(t: ParamTensor, fmt: NumberFormat) -> TensorStorage:
    """The whole tensor, in every layer, in one format."""
    return TensorStorage(t.name, t.shape, fmt.name, fmt.tensor_bytes(t.shape), t.copies)


def _is_matrix(t: ParamTensor) -> bool:
    """A 2-D Linear (or GPT-2 Conv1D) weight."""
    return t.role == "linear" and t.name.endswith(".weight") and len(t.shape) == 2


def _is_expert_matrix(t: ParamTensor) -> bool:
    """A stacked 3-D expert weight ``experts.gate_up_proj`` / ``experts.down_proj``."""
    return t.component == EXPERTS and len(t.shape) == 3 and not t.name.endswith("_bias")


def _in_out(spec: ModelSpec, t: ParamTensor) -> tuple[int, int]:
    """(in_features, out_features) of a 2-D weight; GPT-2's Conv1D stores ``[in, out]``."""
    if spec.layout == "gpt2":
        return t.shape[0], t.shape[1]
    return t.shape[1], t.shape[0]


def _expert_linears(spec: ModelSpec, t: ParamTensor) -> tuple[tuple[int, int], int]:
    """The per-expert Linear a stacked expert tensor holds, as ``((out, in), count)``.

    A checkpoint stores each expert's gate, up and down projection as its own Linear:
    ``gate_up_proj`` is 2·E Linears ``h -> I``, ``down_proj`` is E Linears ``I -> h``
    (gpt-oss stores the stacks transposed; the Linears are the same).
    """
    if spec.moe is not None:
        e, h, width = spec.moe.num_experts, spec.hidden_size, spec.moe.expert_intermediate_size
    else:  # a type read on the meta device: the stack's own shape (E, ·, ·) says it
        e, h = t.shape[0], spec.hidden_size
        other = t.shape[2] if t.shape[1] == h else t.shape[1]
        width = other // 2 if t.name.endswith("gate_up_proj") else other
    if t.name.endswith("gate_up_proj"):
        return (width, h), 2 * e
    return (h, width), e


def _is_block_linear(t: ParamTensor) -> bool:
    """Linear weights inside the decoder blocks, the ones weight-only quantizers convert:
    attention and MLP projections, shared experts, SSM projections. Routers and
    Qwen2-MoE's 1-wide ``shared_expert_gate`` are left alone."""
    return (
        _is_matrix(t)
        and t.component in (ATTENTION, MLP, SHARED_EXPERTS, SSM)
        and not t.name.endswith("shared_expert_gate.weight")
    )


def _kept_note(kept: Iterable[ParamTensor], fmt: str) -> str:
    """A short list of what stayed in ``fmt``."""
    kinds: dict[str, None] = {}
    for t in kept:
        if t.component in (VISION, PROJECTOR):
            kinds["vision tower " + ("Linears" if _is_matrix(t) else "non-Linear parts")] = None
        elif t.component == ROUTER:
            kinds["routers"] = None
        elif t.component == EXPERTS and _is_expert_matrix(t):
            kinds["MoE experts"] = None
        elif _is_block_linear(t):
            kinds["attention and MLP Linears"] = None
        elif t.role == "embedding":
            kinds["embeddings"] = None
        elif t.component == LM_HEAD and t.role == "linear":
            kinds["lm_head"] = None
        elif t.role == "norm":
            kinds["norms"] = None
        elif t.role == "bias" or t.name.endswith("_bias"):
            kinds["biases"] = None
        else:
            kinds["other non-Linear parameters"] = None
    return f"kept in {fmt}: " + ", ".join(kinds) if kinds else f"nothing kept in {fmt}"


# --------------------------------------------------------------------------- plain floats


def _float(
    spec: ModelSpec, inventory: tuple[ParamTensor, ...], scheme: str, name: str
) -> WeightsEstimate:
    fmt = get_format(name)
    how = (
        f"every parameter tensor in {name}: {fmt.bytes_per_value} bytes × parameters "
        "(PyTorch dtype size; tied embeddings counted once)"
    )
    return _estimate(scheme, (_as(t, fmt) for t in inventory), how, ())


# --------------------------------------------------------------------------- FP8


def _fp8(spec: ModelSpec, inventory: tuple[ParamTensor, ...], scheme: str) -> WeightsEstimate:
    fp8, scale, bf16 = get_format("fp8-e4m3"), get_format("fp32"), get_format("bf16")
    stored: list[TensorStorage] = []
    kept: list[ParamTensor] = []
    for t in inventory:
        if _is_block_linear(t):
            scales = 1
        elif _is_expert_matrix(t):
            scales = _expert_linears(spec, t)[1]
        else:
            stored.append(_as(t, bf16))
            kept.append(t)
            continue
        each = fp8.tensor_bytes(t.shape) + scales * scale.tensor_bytes((1,))
        stored.append(TensorStorage(t.name, t.shape, fp8.name, each, t.copies))
    how = (
        "vLLM / compressed-tensors per-tensor FP8 E4M3: decoder-block Linear weights "
        "(attention, MLP, routed and shared experts) 1 byte per value + one fp32 weight_scale "
        "per checkpoint tensor (per expert and projection for MoE); routers stay 16-bit "
        "(vLLM model files build MoE gates as ReplicatedLinear(..., quant_config=None)), as "
        "do embeddings, lm_head (ignored by Fp8Config / llm-compressor recipes), norms and "
        "biases"
    )
    notes = [
        _kept_note(kept, "bf16"),
        "a static-activation checkpoint adds one fp32 input_scale per Linear (4 bytes, not "
        "counted); vLLM may merge q/k/v and gate/up scales into one per fused module",
    ]
    return _estimate(scheme, stored, how, notes)


def _linears(spec: ModelSpec, t: ParamTensor) -> tuple[tuple[int, int], int] | None:
    """The Linears a quantized checkpoint converts, as ``((out, in), count)``: decoder-block
    Linear weights and stacked routed experts (one Linear per expert and projection); None
    for what stays 16-bit (routers, embeddings, lm_head, norms, biases, vision tower)."""
    if _is_block_linear(t):
        d_in, d_out = _in_out(spec, t)
        return (d_out, d_in), 1
    if _is_expert_matrix(t):
        return _expert_linears(spec, t)
    return None


def _fp8_block(
    spec: ModelSpec, inventory: tuple[ParamTensor, ...], scheme: str, block: int
) -> WeightsEstimate:
    fp8, scale, bf16 = get_format("fp8-e4m3"), get_format("fp32"), get_format("bf16")
    stored: list[TensorStorage] = []
    kept: list[ParamTensor] = []
    for t in inventory:
        found = _linears(spec, t)
        if found is None:
            stored.append(_as(t, bf16))
            kept.append(t)
            continue
        (out, d_in), count = found
        # weight_scale_inv is fp32 [ceil(out/b), ceil(in/b)]: a partial edge block has a
        # scale of its own (DeepSeek-V3 kv_a_proj_with_mqa: out 576 -> 5 block rows).
        scales = -(-out // block) * -(-d_in // block)
        each = fp8.tensor_bytes(t.shape) + count * scales * scale.tensor_bytes((1,))
        stored.append(TensorStorage(t.name, t.shape, fp8.name, each, t.copies))
    how = (
        f"block-scaled FP8 E4M3 as DeepSeek-V3/R1 and Qwen3-FP8 ship it (quantization_config "
        f"quant_method fp8, weight_block_size [{block}, {block}]): decoder-block Linear "
        f"weights (attention, MLP, routed and shared experts) 1 byte per value + one fp32 "
        f"weight_scale_inv per {block} × {block} block of every Linear; routers "
        "(mlp.gate), embeddings, lm_head, norms and biases in bf16"
    )
    notes = [
        _kept_note(kept, "bf16"),
        "DeepSeek-V3/R1 files also hold the multi-token-prediction layer and the fp32 "
        "e_score_correction_bias buffers, which transformers does not load (not counted)",
    ]
    return _estimate(scheme, stored, how, notes)


def _mxfp4(spec: ModelSpec, inventory: tuple[ParamTensor, ...], scheme: str) -> WeightsEstimate:
    mx, bf16 = get_format("mxfp4"), get_format("bf16")
    if not any(_is_expert_matrix(t) for t in inventory):
        raise InvalidValueError(
            "dtype",
            scheme,
            f"{spec.name} has no MoE expert matrices, the only tensors the mxfp4 (gpt-oss) "
            "layout quantizes; nvfp4 or fp8-block128 quantize dense Linears",
        )
    stored: list[TensorStorage] = []
    kept: list[ParamTensor] = []
    for t in inventory:
        if not _is_expert_matrix(t):
            stored.append(_as(t, bf16))
            kept.append(t)
            continue
        (out, d_in), count = _expert_linears(spec, t)
        # *_blocks uint8 [E, out, in/32, 16] + *_scales uint8 [E, out, in/32]: blocks run
        # along the input features, so in_features must be whole blocks of 32.
        each = mx.tensor_bytes((count, out, d_in))
        stored.append(TensorStorage(t.name, t.shape, mx.name, each, t.copies))
    how = (
        "MXFP4 as gpt-oss ships it (quantization_config quant_method mxfp4; transformers "
        "Mxfp4Config): MoE expert matrices in blocks of 32 input features, 16 bytes of E2M1 "
        "codes + one E8M0 scale byte (4.25 bits per weight, OCP MX v1.0); attention, "
        "routers, expert biases, embeddings, lm_head, norms and sinks in bf16 "
        "(modules_to_not_convert)"
    )
    notes = [
        _kept_note(kept, "bf16"),
        "kernels without MXFP4 support (before Hopper, or without triton kernels) dequantize "
        "the experts to bf16 at load time: price those runs with --dtype bf16",
    ]
    return _estimate(scheme, stored, how, notes)


def _nvfp4(spec: ModelSpec, inventory: tuple[ParamTensor, ...], scheme: str) -> WeightsEstimate:
    fp4, scale, bf16 = get_format("nvfp4-b16"), get_format("fp32"), get_format("bf16")
    stored: list[TensorStorage] = []
    kept: list[ParamTensor] = []
    for t in inventory:
        found = _linears(spec, t)
        if found is None:
            stored.append(_as(t, bf16))
            kept.append(t)
            continue
        (out, d_in), count = found
        # weight uint8 [out, in/2] + weight_scale fp8 [out, in/16] (one block of 16 input
        # features per scale) + weight_scale_2 fp32 scalar, per Linear.
        each = fp4.tensor_bytes((count, out, d_in)) + count * scale.tensor_bytes((1,))
        stored.append(TensorStorage(t.name, t.shape, "nvfp4", each, t.copies))
    how = (
        "NVFP4 as NVIDIA ModelOpt checkpoints store it (quant_algo NVFP4): decoder-block "
        "Linear weights (attention, MLP, routed and shared experts) as E2M1 codes, two per "
        "byte, + one FP8 E4M3 weight_scale per 16 input features (4.5 bits per weight) + one "
        "fp32 weight_scale_2 per Linear; routers, embeddings, lm_head, norms and biases in "
        "bf16"
    )
    notes = [
        _kept_note(kept, "bf16"),
        "a W4A4 checkpoint adds one fp32 input_scale per Linear (4 bytes, not counted)",
    ]
    return _estimate(scheme, stored, how, notes)


# --------------------------------------------------------------------------- bitsandbytes


def _bnb_converts(t: ParamTensor) -> bool:
    """Whether transformers' ``replace_with_bnb_linear`` turns this weight into a bnb layer.

    It replaces modules with ``type(module) is nn.Linear`` or ``Conv1D`` that are not in
    ``get_keys_to_not_convert`` (the output embedding ``lm_head``, tied weights, the last
    parameter's module). Routers are ``TopKRouter`` modules holding an ``nn.Parameter``
    (Phi-MoE's subclasses ``nn.Linear``, which the ``type(...) is`` test rejects), MoE
    experts are 3-D ``nn.Parameter``: none of them is converted. SigLIP's pooling-head
    ``out_proj`` is ``NonDynamicallyQuantizableLinear`` and is rejected the same way.
    """
    return (
        _is_matrix(t)
        and t.component not in (LM_HEAD, ROUTER)
        and ".head.attention.out_proj" not in t.name
    )


def _bnb(spec: ModelSpec, inventory: tuple[ParamTensor, ...], scheme: str) -> WeightsEstimate:
    fmt_name, config = _BNB_SCHEMES[scheme]
    fmt, bf16 = get_format(fmt_name), get_format("bf16")
    stored: list[TensorStorage] = []
    kept: list[ParamTensor] = []
    for t in inventory:
        if _bnb_converts(t):
            d_in, d_out = _in_out(spec, t)
            stored.append(
                TensorStorage(t.name, t.shape, fmt.name, fmt.tensor_bytes((d_out, d_in)), t.copies)
            )
        else:
            stored.append(_as(t, bf16))
            kept.append(t)
    if scheme == "bnb-int8":
        storage = "int8 weight CB [out, in] + fp32 row scale SCB [out] (Linear8bitLt)"
    elif fmt.double_quant:
        storage = (
            f"{fmt.name} Params4bit: n/2 bytes of 4-bit codes + one uint8 absmax per 64 values "
            f"+ one fp32 per 256 absmaxes + {fmt.per_tensor_bytes} B of code tables"
        )
    else:
        storage = (
            f"{fmt.name} Params4bit: n/2 bytes of 4-bit codes + one fp32 absmax per 64 values "
            f"+ a {fmt.per_tensor_bytes} B code table"
        )
    how = (
        f"transformers BitsAndBytesConfig({config}): every nn.Linear/Conv1D except the "
        f"output embedding becomes a bitsandbytes layer, {storage}; every other tensor keeps "
        "the load dtype (transformers quantizers/base.py get_keys_to_not_convert, "
        "integrations/bitsandbytes.py replace_with_bnb_linear; bitsandbytes quantize_4bit)"
    )
    notes = [_kept_note(kept, "bf16 (the assumed torch_dtype; fp16 is the same size)")]
    if any(_is_expert_matrix(t) for t in inventory):
        notes.append(
            "MoE experts stay bf16: transformers 5 stores them as 3-D nn.Parameter in an "
            "Experts module, which replace_with_bnb_linear does not convert (bitsandbytes "
            "issue #1849)"
        )
    return _estimate(scheme, stored, how, notes)


# --------------------------------------------------------------------------- GPTQ / AWQ


def _grouped(
    spec: ModelSpec, inventory: tuple[ParamTensor, ...], scheme: str, fmt: NumberFormat
) -> WeightsEstimate:
    fp16 = get_format("fp16")
    stored: list[TensorStorage] = []
    kept: list[ParamTensor] = []
    unpackable: list[str] = []
    for t in inventory:
        if _is_block_linear(t):
            d_in, d_out = _in_out(spec, t)
            linear, count = (d_out, d_in), 1
        elif _is_expert_matrix(t):
            linear, count = _expert_linears(spec, t)
        else:
            stored.append(_as(t, fp16))
            kept.append(t)
            continue
        try:
            each = count * fmt.tensor_bytes(linear)
        except InvalidValueError:
            # The packed int32 layout needs both dimensions in multiples of 32; quantizers
            # skip such a layer, so it stays in fp16 (and is named in the notes).
            stored.append(_as(t, fp16))
            unpackable.append(t.name)
            continue
        stored.append(TensorStorage(t.name, t.shape, fmt.name, each, t.copies))
    b, g = fmt.bits, fmt.group_size
    if fmt.layout == "gptq":
        buffers = (
            f"qweight int32 [in·{b}/32, out] + qzeros int32 [in/{g}, out·{b}/32] + scales fp16 "
            f"[in/{g}, out] + g_idx int32 [in] (AutoGPTQ/GPTQModel QuantLinear)"
        )
    else:
        buffers = (
            f"qweight int32 [in, out·{b}/32] + qzeros int32 [in/{g}, out·{b}/32] + scales fp16 "
            f"[in/{g}, out] (AutoAWQ WQLinear_GEMM)"
        )
    how = (
        f"{fmt.layout.upper()} {b}-bit, group {g}: each decoder-block Linear (and each expert's "
        f"gate/up/down Linear) as {buffers}; embeddings, lm_head, routers, norms and biases "
        "stay fp16"
    )
    notes = [_kept_note(kept, "fp16")]
    if unpackable:
        notes.append(
            "kept in fp16 because a dimension is not a multiple of 32 (cannot be packed): "
            + ", ".join(unpackable)
        )
    return _estimate(scheme, stored, how, notes)


# --------------------------------------------------------------------------- GGUF

# GGUF tensor roles (llama.cpp tensor_get_category), plus the fixed cases.
_OUTPUT, _TOKEN_EMBD = "output", "token_embd"
_ATTN_Q, _ATTN_K, _ATTN_V, _ATTN_QKV, _ATTN_OUT = (
    "attn_q",
    "attn_k",
    "attn_v",
    "attn_qkv",
    "attn_output",
)
_FFN_UP, _FFN_GATE, _FFN_DOWN = "ffn_up", "ffn_gate", "ffn_down"
_OTHER = "other"  # quantizable, no rule of its own: the file type's default type
_F32 = "f32"  # never quantized and written F32 by convert_hf_to_gguf.py
_MMPROJ = "mmproj"  # vision tower: a separate mmproj file, F16 (1-D and positions F32)

# Last module-name component -> GGUF role (convert_hf_to_gguf.py / gguf-py tensor_mapping).
_GGUF_LEAF: Final[dict[str, str]] = {
    "q_proj": _ATTN_Q,
    "k_proj": _ATTN_K,
    "v_proj": _ATTN_V,
    "o_proj": _ATTN_OUT,
    "qkv_proj": _ATTN_QKV,
    "query_key_value": _ATTN_QKV,
    "c_attn": _ATTN_QKV,
    "query": _ATTN_Q,
    "key": _ATTN_K,
    "value": _ATTN_V,
    "q_a_proj": _OTHER,  # attn_q_a
    "q_b_proj": _OTHER,  # attn_q_b
    "kv_a_proj_with_mqa": _OTHER,  # attn_kv_a_mqa
    "gate_proj": _FFN_GATE,
    "up_proj": _FFN_UP,
    "gate_up_proj": _FFN_UP,  # Phi-3 keeps gate+up fused as ffn_up; experts split, same rules
    "down_proj": _FFN_DOWN,
    "c_fc": _FFN_UP,
    "fc1": _FFN_UP,
    "dense_h_to_4h": _FFN_UP,
    "fc2": _FFN_DOWN,
    "dense_4h_to_h": _FFN_DOWN,
    "in_proj": _OTHER,  # ssm_in
    "x_proj": _OTHER,  # ssm_x
    "dt_proj": _OTHER,  # ssm_dt
    "out_proj": _OTHER,  # ssm_out
}

_FALLBACK: Final[dict[str, str]] = {  # tensor_type_fallback, for rows not in whole blocks
    "Q2_K": "Q4_0",
    "Q3_K": "Q4_0",
    "Q4_K": "Q5_0",
    "Q5_K": "Q5_1",
    "Q6_K": "Q8_0",
}

_GGUF_HOW: Final[dict[str, str]] = {
    "f32": "all tensors F32",
    "f16": "2-D weights F16 (convert_hf_to_gguf.py --outtype f16)",
    "bf16": "2-D weights BF16 (convert_hf_to_gguf.py --outtype bf16)",
    "q8_0": "Q8_0 everywhere, output.weight too",
    "q6_k": "Q6_K everywhere",
    "q5_k_m": "Q5_K; output Q6_K; attn_v and ffn_down Q6_K where use_more_bits(i, n); "
    "fused attn_qkv Q6_K",
    "q5_k_s": "Q5_K; output Q6_K",
    "q5_1": "Q5_1; output Q6_K",
    "q5_0": "Q5_0; output Q6_K",
    "q4_k_m": "Q4_K; output Q6_K; attn_v and ffn_down Q6_K where use_more_bits(i, n) = "
    "i < n/8 or i >= 7n/8 or (i - n/8) % 3 == 2; fused attn_qkv Q5_K",
    "q4_k_s": "Q4_K; output Q6_K; attn_v Q5_K in the first 4 layers, ffn_down Q5_K in the "
    "first n/8",
    "q4_1": "Q4_1; output Q6_K",
    "q4_0": "Q4_0; output Q6_K",
    "q3_k_l": "Q3_K; output Q6_K; attn_v, attn_output, ffn_down Q5_K; attn_qkv Q4_K",
    "q3_k_m": "Q3_K; output Q6_K; attn_v Q5_K in the first 2 layers then Q4_K; "
    "attn_output and attn_qkv Q4_K; ffn_down Q5_K in the first n/16 layers then Q4_K",
    "q3_k_s": "Q3_K; output Q6_K",
    "q2_k": "Q2_K; output Q6_K; attn_v Q4_K if n_head/n_head_kv >= 4 else Q3_K; "
    "attn_output and ffn_down Q3_K",
}


@dataclass(frozen=True, slots=True)
class _Piece:
    """One GGUF tensor family: a stored shape (torch order, row = last dim) and its role."""

    name: str
    shape: tuple[int, ...]
    role: str
    layers: tuple[int, ...]

    @property
    def copies(self) -> int:
        return len(self.layers) if self.layers else 1


@dataclass(frozen=True, slots=True)
class _Gguf:
    """What llama_tensor_get_type reads besides the tensor: file type, arch and hparams."""

    ftype: str
    default: str  # the file type's default ggml type
    arch: str  # "llama", "falcon" or another llama.cpp arch
    n_gqa: int  # n_head / n_head_kv
    n_expert: int
    is_70b: bool  # LLM_TYPE_70B: arch llama, 80 layers, n_head != n_head_kv
    n_layer: int
    n_attention_wv: int
    tied: bool  # no output.weight in the file


def _gguf_role(spec: ModelSpec, t: ParamTensor) -> str:
    """The GGUF role of an inventory tensor (llama.cpp's tensor_get_category, plus F32)."""
    if t.component in (VISION, PROJECTOR):
        return _MMPROJ
    if len(t.shape) <= 1 or t.role in ("norm", "bias") or t.name.endswith("_bias"):
        return _F32  # 1-D tensors and norms are F32 in convert_hf_to_gguf.py
    if t.component in (ROUTER, POSITIONS) or t.name.endswith("shared_expert_gate.weight"):
        return _F32  # FFN_GATE_INP(_SHEXP), POS_EMBD, TOKEN_TYPES: always F32, never quantized
    if t.role == "embedding":
        return _TOKEN_EMBD
    if t.component == LM_HEAD:
        return _OUTPUT
    if t.role == "other" or not t.name.endswith(("weight", "_proj")):
        return _F32  # SSM A_log/conv1d, sinks: not a ".weight" or in the always-F32 list
    parts = t.module.split(".") if t.role != "expert" else t.name.split(".")
    leaf = parts[-1]
    if leaf == "c_proj":  # GPT-2: attn.c_proj / mlp.c_proj
        return _ATTN_OUT if parts[-2] == "attn" else _FFN_DOWN
    if leaf == "dense":  # NeoX/Falcon attention.dense; BERT attention.output / output
        if "intermediate" in parts:
            return _FFN_UP
        return _ATTN_OUT if ("attention" in parts or "self_attention" in parts) else _FFN_DOWN
    if leaf == "out_proj" and spec.layout != "mamba":
        return _ATTN_OUT
    return _GGUF_LEAF.get(leaf, _OTHER)


def _gguf_pieces(spec: ModelSpec, inventory: tuple[ParamTensor, ...]) -> Iterator[_Piece]:
    """The tensors of the GGUF file, in stored shapes (torch order, ggml ne0 last)."""
    a = spec.attention
    for t in inventory:
        role = _gguf_role(spec, t)
        if spec.layout == "bert" and t.component == "pooler":
            continue  # convert_hf_to_gguf.py drops BERT's pooler
        if t.name.endswith("kv_b_proj.weight") and a is not None and a.kv_lora_rank is not None:
            # convert_hf_to_gguf.py splits MLA kv_b into k_b [n_h, r_kv, d_nope] (transposed)
            # and v_b [n_h, d_v, r_kv] for the absorbed attention; both default-typed.
            n_h, r_kv = a.num_heads, a.kv_lora_rank
            k_b = (n_h, r_kv, a.qk_nope_head_dim)
            v_b = (n_h, a.v_head_dim, r_kv)
            yield _Piece(t.name + " (attn_k_b)", k_b, _OTHER, t.layers)
            yield _Piece(t.name + " (attn_v_b)", v_b, _OTHER, t.layers)
            continue
        if role in (_F32, _MMPROJ):
            shape = t.shape
        elif _is_expert_matrix(t):
            (out, d_in), _ = _expert_linears(spec, t)
            rows = out * (2 if t.name.endswith("gate_up_proj") else 1)
            shape = (t.shape[0], rows, d_in)  # ffn_{gate,up,down}_exps: ne0 = in; E first
        elif len(t.shape) == 2 and t.role == "linear":
            d_in, d_out = _in_out(spec, t)
            shape = (d_out, d_in)  # GPT-2 Conv1D is transposed by the converter
        else:
            shape = t.shape
        yield _Piece(t.name, shape, role, t.layers)
        if role == _TOKEN_EMBD and spec.layout == "gpt2" and spec.tie_word_embeddings:
            # The GPT-2 converter writes the tied wte again as output.weight.
            yield _Piece("lm_head.weight", shape, _OUTPUT, ())


def _use_more_bits(i_layer: int, n_layers: int) -> bool:
    """llama-quant.cpp: i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2 (C integer division)."""
    return (
        i_layer < n_layers // 8
        or i_layer >= 7 * n_layers // 8
        or (i_layer - n_layers // 8) % 3 == 2
    )


def _gguf_rule(g: _Gguf, role: str, row: int, i: int) -> str:
    """llama_tensor_get_type_impl for the supported file types: the ggml type of one tensor
    before the block fallback. ``i`` is the layer (for attn_v: its index among attn_v)."""
    ft, new = g.ftype, g.default
    if role == _OUTPUT or (g.tied and role == _TOKEN_EMBD):
        # tied embeddings: token_embd is also the output matrix and takes the output rule
        if g.arch == "falcon" or row % get_format(g.default).block_size:
            return "Q8_0"
        return new if new == "Q8_0" else "Q6_K"
    if role == _ATTN_V:
        if ft == "q2_k":
            new = "Q4_K" if g.n_gqa >= 4 else "Q3_K"
        elif ft == "q3_k_m":
            new = "Q5_K" if i < 2 else "Q4_K"
        elif ft == "q3_k_l":
            new = "Q5_K"
        elif ft in ("q4_k_m", "q5_k_m") and _use_more_bits(i, g.n_attention_wv):
            new = "Q6_K"
        elif ft == "q4_k_s" and i < 4:
            new = "Q5_K"
        if g.is_70b and new in ("Q3_K", "Q4_K"):
            new = "Q5_K"  # 70B: attn_v is 8x smaller than attn_q, so more bits are cheap
        return "Q8_0" if g.n_expert == 8 else new
    if role == _ATTN_K:
        return "Q8_0" if g.n_expert == 8 else new
    if role == _FFN_DOWN:
        n = g.n_layer
        if ft == "q2_k":
            return "Q3_K"
        if ft == "q3_k_m":
            if i < n // 16:
                return "Q5_K"
            return "Q4_K" if g.arch != "falcon" or _use_more_bits(i, n) else "Q3_K"
        if ft == "q3_k_l":
            return "Q4_K" if g.arch == "falcon" else "Q5_K"
        if ft == "q4_k_m":
            if g.arch == "falcon":
                return "Q6_K" if i < n // 16 else ("Q5_K" if _use_more_bits(i, n) else "Q4_K")
            return "Q6_K" if _use_more_bits(i, n) else new
        if ft == "q5_k_m" and _use_more_bits(i, n):
            return "Q6_K"
        if ft == "q4_k_s" and g.arch != "falcon" and i < n // 8:
            return "Q5_K"
        return new
    if role == _ATTN_OUT:
        if g.arch == "falcon":
            return "Q4_K" if ft == "q3_k_l" else new
        if g.n_expert == 8:
            return "Q5_K" if ft in ("q2_k", "q3_k_s", "q3_k_m", "q4_k_s", "q4_k_m") else new
        return {"q2_k": "Q3_K", "q3_k_m": "Q4_K", "q3_k_l": "Q5_K"}.get(ft, new)
    if role == _ATTN_QKV:
        return {"q3_k_m": "Q4_K", "q3_k_l": "Q4_K", "q4_k_m": "Q5_K", "q5_k_m": "Q6_K"}.get(ft, new)
    return new  # attn_q, ffn_gate, ffn_up, token_embd (untied) and the rest


def _gguf_fallback(ggml_type: str, shape: tuple[int, ...], name: str) -> str:
    """tensor_type_fallback: a row that is not whole blocks takes a 32-block type, or F16."""
    row = shape[-1]
    if row % get_format(ggml_type).block_size == 0:
        return ggml_type
    if ggml_type not in _FALLBACK:
        raise InvalidValueError(
            "shape",
            shape,
            f"{name}: row length {row} is not a multiple of the {ggml_type} block and "
            f"llama.cpp defines no fallback for {ggml_type}",
        )
    fallback = _FALLBACK[ggml_type]
    return fallback if row % get_format(fallback).block_size == 0 else "F16"


def _gguf_model(spec: ModelSpec, ftype: str, pieces: tuple[_Piece, ...]) -> _Gguf:
    a = spec.attention
    arch = {"llama": "llama", "mistral": "llama", "mixtral": "llama", "falcon": "falcon"}.get(
        spec.family, spec.family
    )
    n_gqa = a.num_heads // a.num_kv_heads if a is not None else 1
    return _Gguf(
        ftype=ftype,
        default=_GGUF_FTYPES[ftype],
        arch=arch,
        n_gqa=n_gqa,
        n_expert=spec.moe.num_experts if spec.moe is not None and spec.is_moe else 0,
        is_70b=arch == "llama" and spec.num_layers == 80 and n_gqa != 1,
        n_layer=spec.num_layers,
        n_attention_wv=sum(p.copies for p in pieces if p.role in (_ATTN_V, _ATTN_QKV)),
        tied=not any(p.role == _OUTPUT for p in pieces),
    )


def _gguf(
    spec: ModelSpec, inventory: tuple[ParamTensor, ...], scheme: str, ftype: str
) -> WeightsEstimate:
    if spec.layout == "opt":
        raise InvalidValueError("dtype", scheme, "llama.cpp has no GGUF converter for OPT")
    pieces = tuple(_gguf_pieces(spec, inventory))
    g = _gguf_model(spec, ftype, pieces)
    fp32, fp16 = get_format("fp32"), get_format("fp16")
    stored: list[TensorStorage] = []
    fallbacks: dict[str, None] = {}
    for p in pieces:
        if p.role == _F32 or g.default == "F32":
            stored.append(
                TensorStorage(p.name, p.shape, "fp32", fp32.tensor_bytes(p.shape), p.copies)
            )
            continue
        if p.role == _MMPROJ:
            fmt = fp32 if len(p.shape) <= 1 or "position_embedding" in p.name else fp16
            stored.append(
                TensorStorage(p.name, p.shape, fmt.name, fmt.tensor_bytes(p.shape), p.copies)
            )
            continue
        if ftype in _GGUF_FLOAT_FTYPES:
            fmt = get_format(g.default.lower())
            stored.append(
                TensorStorage(p.name, p.shape, fmt.name, fmt.tensor_bytes(p.shape), p.copies)
            )
            continue
        row = p.shape[-1]
        # attn_v is indexed by its position among attn_v tensors, ffn_down by its layer; both
        # equal the layer index when every layer has one (weights are sorted by block).
        by_layer = p.role in (_ATTN_V, _FFN_DOWN) and bool(p.layers)
        per_type: dict[str, int] = {}
        for i in range(len(p.layers)) if by_layer else (0,):
            index = i if p.role == _ATTN_V else (p.layers[i] if by_layer else 0)
            chosen = _gguf_rule(g, p.role, row, index)
            final = _gguf_fallback(chosen, p.shape, p.name)
            if final != chosen:
                fallbacks[f"{p.name} {chosen} -> {final} (row {row})"] = None
            per_type[final] = per_type.get(final, 0) + 1
        for ggml_type, count in per_type.items():
            fmt = get_format(ggml_type.lower())
            copies = count if by_layer else p.copies
            stored.append(
                TensorStorage(p.name, p.shape, fmt.name, fmt.tensor_bytes(p.shape), copies)
            )
    how = (
        f"llama.cpp GGUF {ftype.upper()}: {_GGUF_HOW[ftype]}; 1-D tensors, norms, routers "
        "(ffn_gate_inp) and position embeddings F32 (llama.cpp src/llama-quant.cpp "
        "llama_tensor_get_type, tensor_type_fallback; convert_hf_to_gguf.py)"
    )
    return _estimate(scheme, stored, how, _gguf_notes(spec, g, pieces, fallbacks))


def _gguf_notes(
    spec: ModelSpec, g: _Gguf, pieces: tuple[_Piece, ...], fallbacks: Iterable[str]
) -> list[str]:
    notes = [
        "tensor data only: the .gguf file adds metadata (tokenizer, hparams) and aligns each "
        "tensor to 32 bytes",
        "F32 (never quantized): norms, biases, routers, position embeddings, SSM A/D/conv",
    ]
    quantized = g.ftype not in _GGUF_FLOAT_FTYPES
    if quantized and g.tied:
        notes.append(
            "no output.weight (tied embeddings): llama.cpp quantizes token_embd with the "
            "output.weight rule"
        )
    if quantized:
        notes.append(
            "no importance matrix assumed (with one, Q4_0/Q5_0 files keep the first n/8 "
            "ffn_down in Q4_1/Q5_1)"
        )
    if quantized and any(p.role == _ATTN_QKV for p in pieces):
        notes.append(
            "fused attn_qkv follows llama.cpp's long-standing attn_qkv rule (Q4_K_M -> Q5_K, "
            "Q5_K_M -> Q6_K); the newest llama-quant.cpp (tensor_category refactor) sends "
            "attn_qkv through the attn_v rule instead"
        )
    if quantized and g.n_expert == 8:
        notes.append("8-expert model: attn_v and attn_k Q8_0 (llama-quant.cpp n_expert == 8)")
    if quantized and g.is_70b:
        notes.append("70B llama: attn_v Q3_K/Q4_K raised to Q5_K (llama-quant.cpp LLM_TYPE_70B)")
    if any(p.name.endswith("(attn_k_b)") for p in pieces):
        notes.append("MLA kv_b_proj is stored split into attn_k_b and attn_v_b, as converted")
    if spec.layout == "gpt2" and spec.tie_word_embeddings:
        notes.append("GPT-2: the converter duplicates the tied wte as output.weight")
    if spec.layout == "bert":
        notes.append("BERT: the converter drops the pooler")
    if any(p.role == _MMPROJ for p in pieces):
        notes.append("vision tower and projector: a separate mmproj file, F16 (1-D F32)")
    listed = list(fallbacks)
    if listed:
        notes.append("block fallback (tensor_type_fallback): " + "; ".join(listed))
    return notes

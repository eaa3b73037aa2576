"""Write GGUF files the way llama.cpp's ``convert_hf_to_gguf.py`` lays them out, for tests.

``gguf_layout(config)`` lists the tensors (llama.cpp names, shapes, ggml types) and the
metadata the converter writes for a Hugging Face config; ``write_gguf`` writes them with
``gguf.GGUFWriter``. Large models cost no disk: only the header is written, and the file is
then extended to its full size with ``truncate``, which makes a *sparse* file whose tensor
data reads as zeros (``GGUFReader``'s memory map and modelmem's bounds checks both see a
complete file). ``write_small_gguf`` writes a tiny model with real tensor data.

The tensor layout here is written from llama.cpp's converter and ``llama-model.cpp``, not
from modelmem's tensor inventory, so that comparing the two is a real check. Hyperparameter
*values* come from modelmem's ModelSpec (it applies each config class's defaults).

Names are built from ``gguf.TENSOR_NAMES`` and checked against ``gguf.MODEL_TENSORS`` of
the architecture, so a tensor llama.cpp does not know for that architecture fails loudly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from math import prod
from pathlib import Path
from typing import Any

import gguf
import numpy as np

from modelmem.model.sources.hf_config import spec_from_config
from modelmem.model.spec import ModelSpec

T = gguf.MODEL_TENSOR
Q = gguf.GGMLQuantizationType

# HF model_type -> llama.cpp architecture (convert_hf_to_gguf.py model classes).
ARCH_OF: dict[str, gguf.MODEL_ARCH] = {
    "llama": gguf.MODEL_ARCH.LLAMA,
    "mistral": gguf.MODEL_ARCH.LLAMA,  # MistralForCausalLM converts as llama
    "mixtral": gguf.MODEL_ARCH.LLAMA,  # experts in llama-arch files
    "qwen2": gguf.MODEL_ARCH.QWEN2,
    "qwen3": gguf.MODEL_ARCH.QWEN3,
    "qwen2_moe": gguf.MODEL_ARCH.QWEN2MOE,
    "qwen3_moe": gguf.MODEL_ARCH.QWEN3MOE,
    "gemma2": gguf.MODEL_ARCH.GEMMA2,
    "gemma3": gguf.MODEL_ARCH.GEMMA3,
    "gemma3_text": gguf.MODEL_ARCH.GEMMA3,
    "phi3": gguf.MODEL_ARCH.PHI3,
    "deepseek_v2": gguf.MODEL_ARCH.DEEPSEEK2,
    "deepseek_v3": gguf.MODEL_ARCH.DEEPSEEK2,
    "gpt_oss": gguf.MODEL_ARCH.GPT_OSS,
    "gpt2": gguf.MODEL_ARCH.GPT2,
}


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple[int, ...]  # torch order (outermost first), as the converter's numpy array
    qtype: gguf.GGMLQuantizationType = Q.BF16

    @property
    def ne(self) -> tuple[int, ...]:
        """ggml order, as the file states it."""
        return tuple(reversed(self.shape))

    @property
    def nbytes(self) -> int:
        block, size = gguf.GGML_QUANT_SIZES[self.qtype]
        return prod(self.shape) // block * size


@dataclass
class Layout:
    arch: gguf.MODEL_ARCH
    spec: ModelSpec
    tensors: list[Tensor]
    # (GGUFWriter method name, value), in the order the converter calls them
    kv: list[tuple[str, Any]] = field(default_factory=list)
    file_type: gguf.LlamaFileType = gguf.LlamaFileType.MOSTLY_BF16

    @property
    def arch_name(self) -> str:
        return gguf.MODEL_ARCH_NAMES[self.arch]

    @property
    def total_elements(self) -> int:
        return sum(prod(t.shape) for t in self.tensors)

    @property
    def total_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)


# Types the converter gives tensors with --outtype bf16: 1-D tensors, anything not named
# ".weight" (biases, gpt-oss expert biases included), routers and position embeddings F32;
# every other tensor BF16 (convert_hf_to_gguf.py ModelBase.prepare_tensors).
def bf16_types(t: Tensor, layer: int | None) -> gguf.GGMLQuantizationType:
    if (
        len(t.shape) == 1
        or not t.name.endswith(".weight")
        or ".ffn_gate_inp" in t.name
        or t.name.startswith("position_embd")
    ):
        return Q.F32
    return Q.BF16


def _use_more_bits(i: int, n: int) -> bool:
    """llama-quant.cpp use_more_bits (C integer division)."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def q4_k_m_types(n_layers: int) -> Callable[[Tensor, int | None], gguf.GGMLQuantizationType]:
    """llama-quant.cpp llama_tensor_get_type for LLAMA_FTYPE_MOSTLY_Q4_K_M on a dense model
    with every row a multiple of 256: output Q6_K; attn_v and ffn_down Q6_K in the layers
    where use_more_bits holds; other matrices Q4_K; 1-D tensors F32."""

    def pick(t: Tensor, layer: int | None) -> gguf.GGMLQuantizationType:
        if len(t.shape) == 1:
            return Q.F32
        if t.name == "output.weight":
            return Q.Q6_K
        if layer is not None and t.name.endswith(("attn_v.weight", "ffn_down.weight")):
            return Q.Q6_K if _use_more_bits(layer, n_layers) else Q.Q4_K
        return Q.Q4_K

    return pick


def gguf_layout(
    config: Mapping[str, Any],
    *,
    types: Callable[[Tensor, int | None], gguf.GGMLQuantizationType] = bf16_types,
    file_type: gguf.LlamaFileType = gguf.LlamaFileType.MOSTLY_BF16,
    mla_split: bool = True,
    tokens: int = 16,
) -> Layout:
    """The tensors and metadata convert_hf_to_gguf.py writes for ``config``."""
    spec = spec_from_config(config)
    model_type = config["model_type"]
    arch = ARCH_OF[model_type]
    text = config.get("text_config") or config  # gemma3: only the text model is converted
    allowed = set(gguf.MODEL_TENSORS[arch])
    tensors: list[Tensor] = []

    def add(
        kind: gguf.MODEL_TENSOR,
        shape: tuple[int, ...],
        bid: int | None = None,
        suffix: str = "weight",
    ) -> None:
        assert kind in allowed, f"{kind.name} is not a {arch.name} tensor"
        name = gguf.TENSOR_NAMES[kind].format(bid=bid) + "." + suffix
        t = Tensor(name, shape)
        tensors.append(Tensor(name, shape, types(t, bid)))

    if arch == gguf.MODEL_ARCH.DEEPSEEK2:
        _deepseek_tensors(spec, add, mla_split)
    elif arch == gguf.MODEL_ARCH.GPT2:
        _gpt2_tensors(spec, add)
    else:
        _decoder_tensors(spec, config, arch, add)
    layout = Layout(arch, spec, tensors, file_type=file_type)
    layout.kv = list(_metadata(spec, config, text, arch, mla_split, tokens, file_type))
    return layout


def _decoder_tensors(
    spec: ModelSpec,
    config: Mapping[str, Any],
    arch: gguf.MODEL_ARCH,
    add: Callable[..., None],
) -> None:
    """Llama-style decoders: llama (+Mixtral), qwen2/3 (+MoE), gemma2/3, phi3, gpt-oss."""
    a = spec.attention
    assert a is not None
    h, v, n_h, n_kv, d = spec.hidden_size, spec.vocab_size, a.num_heads, a.num_kv_heads, a.head_dim
    rope = config.get("rope_scaling") or {}
    if arch == gguf.MODEL_ARCH.LLAMA and rope.get("rope_type") == "llama3":
        add(T.ROPE_FREQS, (d // 2,))  # LlamaModel.generate_extra_tensors
    add(T.TOKEN_EMBD, (v, h))
    if not spec.tie_word_embeddings:
        add(T.OUTPUT, (v, h))
    add(T.OUTPUT_NORM, (h,))
    gemma = arch in (gguf.MODEL_ARCH.GEMMA2, gguf.MODEL_ARCH.GEMMA3)
    oss = arch == gguf.MODEL_ARCH.GPT_OSS
    for i in range(spec.num_layers):
        add(T.ATTN_NORM, (h,), i)
        if arch == gguf.MODEL_ARCH.PHI3:
            add(T.ATTN_QKV, ((n_h + 2 * n_kv) * d, h), i)
        else:
            for kind, rows, bias in (
                (T.ATTN_Q, n_h * d, a.q_bias),
                (T.ATTN_K, n_kv * d, a.kv_bias),
                (T.ATTN_V, n_kv * d, a.kv_bias),
            ):
                add(kind, (rows, h), i)
                if bias:
                    add(kind, (rows,), i, "bias")
        add(T.ATTN_OUT, (h, n_h * d), i)
        if a.o_bias:
            add(T.ATTN_OUT, (h,), i, "bias")
        if a.qk_norm:
            add(T.ATTN_Q_NORM, (d,), i)
            add(T.ATTN_K_NORM, (d,), i)
        if oss:
            add(T.ATTN_SINKS, (n_h,), i)
            add(T.ATTN_POST_NORM, (h,), i)  # gpt-oss: post_attention_layernorm
        elif gemma:
            add(T.ATTN_POST_NORM, (h,), i)
            add(T.FFN_PRE_NORM, (h,), i)
            add(T.FFN_POST_NORM, (h,), i)
        else:
            add(T.FFN_NORM, (h,), i)
        if spec.mlp_layers[i] == "dense":
            assert spec.mlp is not None
            width = spec.mlp.intermediate_size
            if arch == gguf.MODEL_ARCH.PHI3:
                add(T.FFN_UP, (2 * width, h), i)  # gate_up_proj kept fused
            else:
                add(T.FFN_GATE, (width, h), i)
                add(T.FFN_UP, (width, h), i)
            add(T.FFN_DOWN, (h, width), i)
            continue
        moe = spec.moe
        assert moe is not None
        e, width = moe.num_experts, moe.expert_intermediate_size
        add(T.FFN_GATE_INP, (e, h), i)
        if oss:
            add(T.FFN_GATE_INP, (e,), i, "bias")
        # convert_hf_to_gguf.py stacks (or, gpt-oss, splits gate_up into) per-expert matrices
        add(T.FFN_GATE_EXP, (e, width, h), i)
        add(T.FFN_UP_EXP, (e, width, h), i)
        add(T.FFN_DOWN_EXP, (e, h, width), i)
        if oss:
            add(T.FFN_GATE_EXP, (e, width), i, "bias")
            add(T.FFN_UP_EXP, (e, width), i, "bias")
            add(T.FFN_DOWN_EXP, (e, h), i, "bias")
        if moe.shared_intermediate_size:
            s = moe.shared_intermediate_size
            add(T.FFN_GATE_INP_SHEXP, (1, h), i)
            add(T.FFN_GATE_SHEXP, (s, h), i)
            add(T.FFN_UP_SHEXP, (s, h), i)
            add(T.FFN_DOWN_SHEXP, (h, s), i)


def _deepseek_tensors(spec: ModelSpec, add: Callable[..., None], mla_split: bool) -> None:
    """DeepseekV2Model: MLA (kv_b split into k_b, transposed, and v_b for absorbed
    attention), leading dense layers, routed + shared experts, V3's exp_probs_b."""
    a, moe, mlp = spec.attention, spec.moe, spec.mlp
    assert a is not None and moe is not None and mlp is not None and a.kv_lora_rank
    h, v, n_h = spec.hidden_size, spec.vocab_size, a.num_heads
    r_kv, rope, nope, dv = a.kv_lora_rank, a.qk_rope_head_dim, a.qk_nope_head_dim, a.v_head_dim
    add(T.TOKEN_EMBD, (v, h))
    add(T.OUTPUT_NORM, (h,))
    add(T.OUTPUT, (v, h))
    e, width = moe.num_experts, moe.expert_intermediate_size
    for i in range(spec.num_layers):
        add(T.ATTN_NORM, (h,), i)
        if a.q_lora_rank is None:
            add(T.ATTN_Q, (n_h * (nope + rope), h), i)
        else:
            add(T.ATTN_Q_A, (a.q_lora_rank, h), i)
            add(T.ATTN_Q_A_NORM, (a.q_lora_rank,), i)
            add(T.ATTN_Q_B, (n_h * (nope + rope), a.q_lora_rank), i)
        add(T.ATTN_KV_A_MQA, (r_kv + rope, h), i)
        add(T.ATTN_KV_A_NORM, (r_kv,), i)
        if mla_split:
            add(T.ATTN_K_B, (n_h, r_kv, nope), i)  # k_b transposed: [n_h, r_kv, nope]
            add(T.ATTN_V_B, (n_h, dv, r_kv), i)
        else:
            add(T.ATTN_KV_B, (n_h * (nope + dv), r_kv), i)
        add(T.ATTN_OUT, (h, n_h * dv), i)
        add(T.FFN_NORM, (h,), i)
        if spec.mlp_layers[i] == "dense":
            add(T.FFN_GATE, (mlp.intermediate_size, h), i)
            add(T.FFN_UP, (mlp.intermediate_size, h), i)
            add(T.FFN_DOWN, (h, mlp.intermediate_size), i)
            continue
        add(T.FFN_GATE_INP, (e, h), i)
        if spec.family == "deepseek_v3":
            add(T.FFN_EXP_PROBS_B, (e,), i, "bias")  # e_score_correction_bias
        add(T.FFN_GATE_EXP, (e, width, h), i)
        add(T.FFN_UP_EXP, (e, width, h), i)
        add(T.FFN_DOWN_EXP, (e, h, width), i)
        s = moe.shared_intermediate_size
        add(T.FFN_GATE_SHEXP, (s, h), i)
        add(T.FFN_UP_SHEXP, (s, h), i)
        add(T.FFN_DOWN_SHEXP, (h, s), i)


def _gpt2_tensors(spec: ModelSpec, add: Callable[..., None]) -> None:
    """GPT2Model: Conv1D weights transposed to Linear order; the tied wte written twice."""
    assert spec.mlp is not None
    h, v, inner = spec.hidden_size, spec.vocab_size, spec.mlp.intermediate_size
    add(T.TOKEN_EMBD, (v, h))
    add(T.POS_EMBD, (spec.learned_positions, h))
    add(T.OUTPUT_NORM, (h,))
    add(T.OUTPUT_NORM, (h,), None, "bias")
    add(T.OUTPUT, (v, h))
    for i in range(spec.num_layers):
        for kind, shape in (
            (T.ATTN_NORM, (h,)),
            (T.ATTN_QKV, (3 * h, h)),
            (T.ATTN_OUT, (h, h)),
            (T.FFN_NORM, (h,)),
            (T.FFN_UP, (inner, h)),
            (T.FFN_DOWN, (h, inner)),
        ):
            add(kind, shape, i)
            add(kind, (shape[0],), i, "bias")


def _metadata(
    spec: ModelSpec,
    config: Mapping[str, Any],
    text: Mapping[str, Any],
    arch: gguf.MODEL_ARCH,
    mla_split: bool,
    tokens: int,
    file_type: gguf.LlamaFileType,
) -> Iterator[tuple[str, Any]]:
    a = spec.attention
    assert a is not None
    yield "add_name", spec.name
    yield "add_block_count", spec.num_layers
    yield "add_context_length", spec.context_length
    yield "add_embedding_length", spec.hidden_size
    yield "add_head_count", a.num_heads
    if arch == gguf.MODEL_ARCH.GPT2:
        assert spec.mlp is not None
        yield "add_feed_forward_length", spec.mlp.intermediate_size
        yield "add_layer_norm_eps", 1e-5
    else:
        yield "add_rope_freq_base", float(text.get("rope_theta", 10000.0))
        yield "add_layer_norm_rms_eps", float(text.get("rms_norm_eps", 1e-6))
    if arch == gguf.MODEL_ARCH.DEEPSEEK2:
        assert spec.moe is not None and spec.mlp is not None and a.kv_lora_rank
        yield "add_vocab_size", spec.vocab_size
        yield "add_feed_forward_length", spec.mlp.intermediate_size
        if a.q_lora_rank is not None:
            yield "add_q_lora_rank", a.q_lora_rank
        yield "add_kv_lora_rank", a.kv_lora_rank
        if mla_split:  # absorbed MLA: one latent "KV head" of width kv_lora_rank + rope
            yield "add_head_count_kv", 1
            yield "add_key_length", a.kv_lora_rank + a.qk_rope_head_dim
            yield "add_value_length", a.kv_lora_rank
            yield "add_key_length_mla", a.head_dim
            yield "add_value_length_mla", a.v_head_dim
        else:
            yield "add_head_count_kv", a.num_heads
            yield "add_key_length", a.head_dim
            yield "add_value_length", a.v_head_dim
        yield "add_rope_dimension_count", a.qk_rope_head_dim
        yield "add_leading_dense_block_count", spec.mlp_layers.count("dense")
        yield "add_expert_feed_forward_length", spec.moe.expert_intermediate_size
        yield "add_expert_count", spec.moe.num_experts
        yield (
            "add_expert_shared_count",
            (spec.moe.shared_intermediate_size // spec.moe.expert_intermediate_size),
        )
        yield "add_expert_used_count", spec.moe.experts_per_token
        v3 = spec.family == "deepseek_v3"
        yield "add_expert_weights_norm", v3
        yield (
            "add_expert_gating_func",
            (gguf.ExpertGatingFuncType.SIGMOID if v3 else gguf.ExpertGatingFuncType.SOFTMAX),
        )
    else:
        yield "add_head_count_kv", a.num_kv_heads
        if spec.mlp is not None and arch != gguf.MODEL_ARCH.GPT2:
            yield "add_feed_forward_length", spec.mlp.intermediate_size
        elif arch == gguf.MODEL_ARCH.LLAMA and spec.moe is not None:
            yield "add_feed_forward_length", spec.moe.expert_intermediate_size  # Mixtral
        if "head_dim" in text or arch in (
            gguf.MODEL_ARCH.GEMMA2,
            gguf.MODEL_ARCH.GEMMA3,
            gguf.MODEL_ARCH.GPT_OSS,
        ):
            yield "add_key_length", a.head_dim
            yield "add_value_length", a.v_head_dim
        if arch != gguf.MODEL_ARCH.GPT2:
            yield "add_rope_dimension_count", a.head_dim
        if spec.moe is not None and spec.is_moe:
            yield "add_expert_count", spec.moe.num_experts
            yield "add_expert_used_count", spec.moe.experts_per_token
            if arch != gguf.MODEL_ARCH.LLAMA:
                yield "add_expert_feed_forward_length", spec.moe.expert_intermediate_size
            if spec.moe.shared_intermediate_size:
                yield "add_expert_shared_feed_forward_length", spec.moe.shared_intermediate_size
        if spec.sliding_window is not None and arch in (
            gguf.MODEL_ARCH.GEMMA2,
            gguf.MODEL_ARCH.GEMMA3,
            gguf.MODEL_ARCH.PHI3,
            gguf.MODEL_ARCH.GPT_OSS,
        ):
            yield "add_sliding_window", spec.sliding_window
        for key in ("attn_logit_softcapping", "final_logit_softcapping"):
            if text.get(key) is not None:
                yield f"add_{key}", float(text[key])
    yield "add_file_type", int(file_type)
    yield "add_tokenizer_model", "gpt2"
    yield "add_token_list", [f"<t{i}>" for i in range(tokens)]
    yield "add_bos_token_id", 1
    yield "add_eos_token_id", 2


def _writer(path: Path, layout: Layout) -> gguf.GGUFWriter:
    w = gguf.GGUFWriter(str(path), layout.arch_name)
    for method, value in layout.kv:
        getattr(w, method)(value)
    return w


def write_gguf(path: Path, layout: Layout, *, extend: bool = True) -> Path:
    """Write ``layout``'s header with GGUFWriter and extend the file, sparse, to its size
    (``extend=False``: leave the header alone, its tensor data missing)."""
    w = _writer(path, layout)
    for t in layout.tensors:
        w.add_tensor_info(t.name, t.shape, np.dtype(np.float32), t.nbytes, raw_dtype=t.qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    if not extend:
        return path
    align = gguf.GGUF_DEFAULT_ALIGNMENT
    header = path.stat().st_size
    data = sum(gguf.GGUFWriter.ggml_pad(t.nbytes, align) for t in layout.tensors)
    with path.open("r+b") as f:
        f.truncate(gguf.GGUFWriter.ggml_pad(header, align) + data)
    return path


def write_split_gguf(folder: Path, stem: str, layout: Layout, splits: int) -> list[Path]:
    """``layout`` as gguf-split writes it: STEM-0000k-of-0000n.gguf, the metadata in the
    first split, split.no / split.count / split.tensors.count in each, tensors shared out."""
    paths = []
    n = len(layout.tensors)
    for k in range(splits):
        part = layout.tensors[k * n // splits : (k + 1) * n // splits]
        kv = layout.kv if k == 0 else []
        split_kv = [
            ("add_uint16", ("split.no", k)),
            ("add_uint16", ("split.count", splits)),
            ("add_int32", ("split.tensors.count", n)),
        ]
        shard = Layout(layout.arch, layout.spec, list(part), kv, layout.file_type)
        path = folder / f"{stem}-{k + 1:05d}-of-{splits:05d}.gguf"
        w = _writer(path, shard)
        for method, (key, value) in split_kv:
            getattr(w, method)(key, value)
        for t in part:
            w.add_tensor_info(t.name, t.shape, np.dtype(np.float32), t.nbytes, raw_dtype=t.qtype)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        w.close()
        align = gguf.GGUF_DEFAULT_ALIGNMENT
        data = sum(gguf.GGUFWriter.ggml_pad(t.nbytes, align) for t in part)
        with path.open("r+b") as f:
            f.truncate(gguf.GGUFWriter.ggml_pad(path.stat().st_size, align) + data)
        paths.append(path)
    return paths


SMALL_LLAMA: dict[str, Any] = {
    "model_type": "llama",
    "vocab_size": 256,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "tie_word_embeddings": False,
}


def write_small_gguf(path: Path, config: Mapping[str, Any] = SMALL_LLAMA) -> Path:
    """A tiny model with real tensor data: F32 norms, Q8_0 matrices (quantized by gguf-py),
    an F16 output head."""
    layout = gguf_layout(
        config, tokens=config["vocab_size"], file_type=gguf.LlamaFileType.MOSTLY_Q8_0
    )
    w = _writer(path, layout)
    rng = np.random.default_rng(0)
    for t in layout.tensors:
        values = rng.standard_normal(t.shape).astype(np.float32)
        if len(t.shape) == 1:
            w.add_tensor(t.name, values)
        elif t.name == "output.weight":
            w.add_tensor(t.name, values.astype(np.float16))
        else:
            q = gguf.quants.quantize(values, Q.Q8_0)
            w.add_tensor(t.name, q, raw_dtype=Q.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path

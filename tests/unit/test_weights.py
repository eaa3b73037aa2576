"""Weight memory per tensor: hand-derived exact bytes (derivations in comments) and the
published llama.cpp buffer sizes of formulas.md E.4."""

from __future__ import annotations

from math import ceil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelmem.errors import InvalidValueError, UnknownNameError
from modelmem.memory.weights import WeightsEstimate, estimate_weights, weight_schemes
from modelmem.model.params import count_params
from modelmem.model.sources.hf_config import spec_from_config, spec_from_path
from modelmem.model.spec import ModelSpec

from ..conftest import FIXTURES


def _fixture(hub_id: str) -> ModelSpec:
    return spec_from_path(FIXTURES / hub_id.replace("/", "__"))


def _formats(e: WeightsEstimate, name: str) -> dict[str, int]:
    """format -> copies for one inventory tensor."""
    return {t.format: t.copies for t in e.tensors if t.name == name}


LLAMA2_7B = "meta-llama/Llama-2-7b-hf"


# --- GGUF: published llama.cpp buffers ------------------------------------------------------

# Llama-2-7B: V=32000, h=4096, I=11008, L=32, MHA. Per layer q,k,v,o 4h² = 67,108,864 and
# gate,up,down 3hI = 135,266,304 values; 2h norms in F32. ggml blocks: Q4_0 18 B/32,
# Q4_K 144 B/256, Q6_K 210 B/256 (formulas.md E.4).
#
# Q4_0: token_embd Q4_0 (V·h·18/32 = 73,728,000), output Q6_K (V·h·210/256 = 107,520,000),
#   32 × (202,375,168·18/32 + 32,768) = 3,643,801,600, final norm 16,384
#   = 3,825,065,984 B = 3647.87 MiB, the "CPU buffer size" of published llama.cpp logs.
# Q4_K_M: token_embd Q4_K 73,728,000, output Q6_K 107,520,000; every layer q,k,o Q4_K
#   (28,311,552), gate,up Q4_K (50,724,864), norms 32,768; attn_v and ffn_down Q6_K
#   (13,762,560 + 36,986,880) in the 16 layers where use_more_bits(i, 32) holds
#   (i < 4, i >= 28, (i - 4) % 3 == 2), Q4_K (9,437,184 + 25,362,432) in the other 16;
#   = 4,080,263,168 B = 3891.24 MiB, again the published buffer.
# Published files: TheBloke's llama-2-7b(-chat).Q4_K_M.gguf is 4,081,004,224 B and
#   llama-2-7b-chat.Q8_0.gguf 7,161,089,728 B; both exceed our tensor data (4,080,263,168 and
#   7,160,348,672, below) by the same 741,056 B: the GGUF header, tokenizer and hparams.


def test_llama2_7b_gguf_q4_0_matches_published_buffer(fixtures_dir: Path) -> None:
    spec = spec_from_path(fixtures_dir / "meta-llama__Llama-2-7b-hf")
    e = estimate_weights(spec, "gguf-q4_0")
    assert e.total_bytes == 3_825_065_984
    assert dict(e.by_format) == {"q4_0": 3_716_481_024, "q6_k": 107_520_000, "fp32": 1_064_960}


def test_llama2_7b_gguf_q4_k_m_matches_published_buffer(fixtures_dir: Path) -> None:
    spec = spec_from_path(fixtures_dir / "meta-llama__Llama-2-7b-hf")
    e = estimate_weights(spec, "gguf-q4_k_m")
    assert e.total_bytes == 4_080_263_168
    for name in (
        "model.layers.{i}.self_attn.v_proj.weight",
        "model.layers.{i}.mlp.down_proj.weight",
    ):
        assert _formats(e, name) == {"q6_k": 16, "q4_k": 16}
    assert _formats(e, "lm_head.weight") == {"q6_k": 1}
    assert _formats(e, "model.embed_tokens.weight") == {"q4_k": 1}
    assert _formats(e, "model.norm.weight") == {"fp32": 1}


def test_llama2_7b_gguf_q8_0_keeps_output_in_q8_0() -> None:
    # Every 2-D tensor Q8_0 (34 B/32), output too: 6,738,149,376·34/32 = 7,159,283,712
    # + 65 norms of 4096 F32 (1,064,960) = 7,160,348,672 (file 7,161,089,728, see above).
    e = estimate_weights(_fixture(LLAMA2_7B), "gguf-q8_0")
    assert e.total_bytes == 7_160_348_672
    assert _formats(e, "lm_head.weight") == {"q8_0": 1}


def test_gguf_sizes_agree_with_gguf_py() -> None:
    """Every stored GGUF tensor priced again with gguf-py's GGML_QUANT_SIZES."""
    gguf = pytest.importorskip("gguf", reason="gguf not installed (optional oracle)")
    for scheme in ("gguf-q4_k_m", "gguf-q3_k_m", "gguf-q2_k", "gguf-q5_k_m", "gguf-f16"):
        e = estimate_weights(_fixture("deepseek-ai/DeepSeek-V2-Lite"), scheme)
        for t in e.tensors:
            qtype = gguf.GGMLQuantizationType[t.format.upper().replace("FP", "F")]
            block, type_size = gguf.GGML_QUANT_SIZES[qtype]
            numel = 1
            for d in t.shape:
                numel *= d
            assert t.bytes_each == numel // block * type_size, (scheme, t)


def test_tied_embeddings_take_the_output_rule() -> None:
    # Llama-3.2-1B (V=128256, h=2048, I=8192, L=16, 32/8 heads of 64) ties lm_head: the GGUF
    # has no output.weight, so llama.cpp quantizes token_embd with the output rule -> Q6_K:
    #   token_embd 262,668,288·210/256 = 215,470,080
    #   per layer Q4_K: q 2,359,296, k 589,824, v 589,824, o 2,359,296, gate+up 18,874,368,
    #   down 9,437,184, 2 norms 16,384 -> 34,226,176 × 16 = 547,618,816
    #   use_more_bits(i, 16) for i in {0, 1, 4, 7, 10, 13, 14, 15}: v and down Q6_K there,
    #   +(860,160 - 589,824) + (13,762,560 - 9,437,184) = 4,595,712 × 8 = 36,765,696
    #   final norm 8,192 -> 799,862,784.
    # bartowski's Llama-3.2-1B-Instruct-Q4_K_M.gguf is 807,694,464 B: 7,831,680 B of metadata,
    # the size of a Llama-3 tokenizer; with a Q4_K token_embd it would have to be ~75 MB.
    e = estimate_weights(_fixture("meta-llama/Llama-3.2-1B-Instruct"), "gguf-q4_k_m")
    assert e.total_bytes == 799_862_784
    assert _formats(e, "model.embed_tokens.weight") == {"q6_k": 1}
    assert any("tied" in note for note in e.notes)
    q8 = estimate_weights(_fixture("meta-llama/Llama-3.2-1B-Instruct"), "gguf-q8_0")
    assert _formats(q8, "model.embed_tokens.weight") == {"q8_0": 1}


def test_gguf_block_fallback_for_odd_rows() -> None:
    # Gemma-3-1B: h = 1152 is not a multiple of 256. Output rule: 1152 % 256 != 0 -> Q8_0
    # (tied token_embd). Q4_K rows of 1152 fall back to Q5_0, Q6_K to Q8_0
    # (tensor_type_fallback); o_proj (rows of 1024) and down_proj (rows of 6912) keep K types.
    e = estimate_weights(_fixture("google/gemma-3-1b-it"), "gguf-q4_k_m")
    assert _formats(e, "model.embed_tokens.weight") == {"q8_0": 1}
    assert _formats(e, "model.layers.{i}.self_attn.q_proj.weight") == {"q5_0": 26}
    assert _formats(e, "model.layers.{i}.self_attn.v_proj.weight") == {"q8_0": 13, "q5_0": 13}
    assert _formats(e, "model.layers.{i}.self_attn.o_proj.weight") == {"q4_k": 26}
    assert _formats(e, "model.layers.{i}.mlp.down_proj.weight") == {"q6_k": 13, "q4_k": 13}
    assert any("fallback" in note for note in e.notes)


def test_gguf_without_any_fallback_refuses() -> None:
    # Rows of 48 values fit no 32-value block, and llama.cpp defines no fallback for Q4_0.
    with pytest.raises(InvalidValueError) as info:
        estimate_weights(spec_from_config(_small_llama(hidden=48, heads=2)), "gguf-q4_0")
    assert info.value.field == "shape"


def test_mixtral_eight_expert_rules() -> None:
    # n_expert == 8: attn_v and attn_k Q8_0, attn_output Q5_K for Q4_K_M; the router
    # (ffn_gate_inp) is never quantized and stays F32; ffn_down_exps follow use_more_bits.
    e = estimate_weights(_fixture("mistralai/Mixtral-8x7B-v0.1"), "gguf-q4_k_m")
    assert _formats(e, "model.layers.{i}.self_attn.v_proj.weight") == {"q8_0": 32}
    assert _formats(e, "model.layers.{i}.self_attn.k_proj.weight") == {"q8_0": 32}
    assert _formats(e, "model.layers.{i}.self_attn.o_proj.weight") == {"q5_k": 32}
    assert _formats(e, "model.layers.{i}.mlp.gate.weight") == {"fp32": 32}
    assert _formats(e, "model.layers.{i}.mlp.experts.down_proj") == {"q6_k": 16, "q4_k": 16}


def test_llama_70b_raises_attn_v() -> None:
    # LLM_TYPE_70B (llama arch, 80 layers, GQA): Q4_K attn_v becomes Q5_K outside the
    # use_more_bits layers (which are Q6_K already).
    e = estimate_weights(_fixture("meta-llama/Llama-2-70b-hf"), "gguf-q4_k_m")
    assert _formats(e, "model.layers.{i}.self_attn.v_proj.weight") == {"q6_k": 40, "q5_k": 40}


def test_gguf_f16_keeps_norms_f32() -> None:
    spec = _fixture(LLAMA2_7B)
    e = estimate_weights(spec, "gguf-f16")
    norms = (2 * 32 + 1) * 4096
    assert e.total_bytes == 2 * (count_params(spec).total - norms) + 4 * norms


# --- plain floats, bitsandbytes, GPTQ, FP8 --------------------------------------------------


@pytest.mark.parametrize(
    "hub_id", [LLAMA2_7B, "meta-llama/Llama-3.2-1B-Instruct", "mistralai/Mixtral-8x7B-v0.1"]
)
def test_bf16_is_two_bytes_per_parameter(hub_id: str) -> None:
    spec = _fixture(hub_id)
    params = count_params(spec).total
    assert estimate_weights(spec, "bf16").total_bytes == 2 * params
    assert estimate_weights(spec, "FP32").total_bytes == 4 * params


def _nf4(n: int) -> int:
    # bitsandbytes quantize_4bit: n/2 bytes of 4-bit codes, one fp32 absmax per 64 values,
    # the 16-entry fp32 code table (64 B).
    return ceil(n / 2) + ceil(n / 64) * 4 + 64


def test_bnb_nf4_llama31_8b_by_hand() -> None:
    # Llama-3.1-8B: h=4096, I=14336, L=32, 32/8 heads of 128, V=128256, untied.
    # Linear weights in NF4 per layer: q, o 4096² (9,437,248 each), k, v 1024·4096
    # (2,359,360 each), gate, up, down 14336·4096 (33,030,208 each) = 122,683,840; × 32.
    # bf16: embed_tokens and lm_head (output embedding, kept by get_keys_to_not_convert)
    # 2 × V·h·2 and 65 RMSNorm weights of h.
    h, i, v, layers = 4096, 14336, 128256, 32
    linear = 2 * _nf4(h * h) + 2 * _nf4(1024 * h) + 3 * _nf4(h * i)
    assert linear == 122_683_840
    expected = layers * linear + 2 * (2 * v * h) + 2 * (2 * layers + 1) * h
    assert expected == 6_027_761_664
    e = estimate_weights(_fixture("meta-llama/Llama-3.1-8B"), "bnb-nf4")
    assert e.total_bytes == expected
    assert _formats(e, "lm_head.weight") == {"bf16": 1}


def test_bnb_fp4_is_the_transformers_default_without_double_quant() -> None:
    spec = _fixture("meta-llama/Llama-3.1-8B")
    fp4 = estimate_weights(spec, "bnb-fp4")
    assert "bnb_4bit_use_double_quant=False" in fp4.how and "'fp4'" in fp4.how
    assert fp4.total_bytes == estimate_weights(spec, "bnb-nf4").total_bytes  # same layout
    assert estimate_weights(spec, "bnb-nf4-dq").total_bytes < fp4.total_bytes


def test_bnb_leaves_moe_experts_and_routers_in_bf16() -> None:
    # transformers 5 stores experts as 3-D nn.Parameter and routers as TopKRouter modules:
    # replace_with_bnb_linear converts only nn.Linear / Conv1D.
    e = estimate_weights(_fixture("mistralai/Mixtral-8x7B-v0.1"), "bnb-nf4")
    assert _formats(e, "model.layers.{i}.mlp.experts.gate_up_proj") == {"bf16": 32}
    assert _formats(e, "model.layers.{i}.mlp.gate.weight") == {"bf16": 32}
    assert _formats(e, "model.layers.{i}.self_attn.q_proj.weight") == {"nf4": 32}
    assert any("experts" in note for note in e.notes)


def test_bnb_int8_row_scales() -> None:
    # LLM.int8: int8 [out, in] + fp32 SCB [out]; q_proj of Llama-2-7B 4096² + 4·4096.
    e = estimate_weights(_fixture(LLAMA2_7B), "bnb-int8")
    (q,) = (t for t in e.tensors if t.name == "model.layers.{i}.self_attn.q_proj.weight")
    assert (q.format, q.bytes_each, q.copies) == ("llm-int8", 4096 * 4096 + 4 * 4096, 32)


def test_gptq_on_a_llama_layer() -> None:
    # GPTQ 4-bit g128 QuantLinear for q_proj 4096 -> 4096: qweight int32 [4096·4/32, 4096]
    # 8,388,608 B + qzeros int32 [32, 4096·4/32] 65,536 B + scales fp16 [32, 4096] 262,144 B
    # + g_idx int32 [4096] 16,384 B = 8,732,672. down_proj 11008 -> 4096: qweight
    # 22,544,384 + qzeros 86·512·4 = 176,128 + scales 86·4096·2 = 704,512 + g_idx 44,032
    # = 23,469,056. lm_head and embeddings stay fp16.
    e = estimate_weights(_fixture(LLAMA2_7B), "gptq-4bit-g128")
    by_name = {t.name: t for t in e.tensors}
    q = by_name["model.layers.{i}.self_attn.q_proj.weight"]
    assert (q.format, q.bytes_each, q.copies) == ("gptq-4bit-g128", 8_732_672, 32)
    assert by_name["model.layers.{i}.mlp.down_proj.weight"].bytes_each == 23_469_056
    assert by_name["lm_head.weight"].format == "fp16"
    assert by_name["lm_head.weight"].bytes_each == 2 * 32000 * 4096


def test_gptq_splits_experts_into_per_expert_linears() -> None:
    # Mixtral: gate_up_proj [8, 2·14336, 4096] is 16 Linears 4096 -> 14336 in a checkpoint.
    from modelmem.formats import get_format

    e = estimate_weights(_fixture("mistralai/Mixtral-8x7B-v0.1"), "gptq-4bit-g128")
    (gate_up,) = (t for t in e.tensors if t.name.endswith("experts.gate_up_proj"))
    assert gate_up.bytes_each == 16 * get_format("gptq-4bit-g128").tensor_bytes((14336, 4096))


def test_fp8_one_scale_per_tensor() -> None:
    spec = _fixture(LLAMA2_7B)
    e = estimate_weights(spec, "fp8")
    assert estimate_weights(spec, "FP8-E4M3").tensors == e.tensors
    (q,) = (t for t in e.tensors if t.name == "model.layers.{i}.self_attn.q_proj.weight")
    assert (q.format, q.bytes_each) == ("fp8-e4m3", 4096 * 4096 + 4)
    # 7 Linears × 32 layers in FP8 with a scale each; embed, lm_head, norms in bf16.
    linear = 32 * (4 * 4096 * 4096 + 3 * 4096 * 11008)
    assert e.total_bytes == linear + 7 * 32 * 4 + 2 * (2 * 32000 * 4096 + 65 * 4096)


def test_fp8_keeps_routers_16_bit() -> None:
    e = estimate_weights(_fixture("Qwen/Qwen3-30B-A3B"), "fp8")
    assert {t.format for t in e.tensors if ".mlp.gate." in t.name} == {"bf16"}
    (down,) = (t for t in e.tensors if t.name.endswith("experts.down_proj"))
    assert down.bytes_each == 128 * 2048 * 768 + 128 * 4  # E Linears, one fp32 scale each


# --- shipped layouts: MXFP4 (gpt-oss), block-scaled FP8 (DeepSeek), NVFP4 ----------------

# gpt-oss: the checkpoint stores each expert stack as *_blocks uint8 [E, out, in/32, 16] and
# *_scales uint8 [E, out, in/32] (17 bytes per 32 weights); every other tensor is bf16.
# model.safetensors.index.json "metadata": {"total_size": ...} of the Hub repos
# openai/gpt-oss-20b (13,761,264,768) and openai/gpt-oss-120b (65,248,815,744).
GPT_OSS_TOTAL_SIZE = {"gpt-oss-20b": 13_761_264_768, "gpt-oss-120b": 65_248_815_744}


@pytest.mark.parametrize("name", sorted(GPT_OSS_TOTAL_SIZE))
def test_mxfp4_matches_the_gpt_oss_checkpoint_to_the_byte(name: str) -> None:
    from modelmem.model.sources.catalogue import get_entry, spec_from_entry

    e = estimate_weights(spec_from_entry(get_entry(name)), "mxfp4")
    assert e.total_bytes == GPT_OSS_TOTAL_SIZE[name]


def test_mxfp4_by_hand_on_gpt_oss_20b() -> None:
    spec = _fixture("openai/gpt-oss-20b")
    e = estimate_weights(spec, "MXFP4")
    h, e_, width, layers = 2880, 32, 2880, 24
    experts = layers * e_ * (2 * width * h + h * width) * 17 // 32
    assert dict(e.by_format)["mxfp4"] == experts
    params = count_params(spec).total
    assert dict(e.by_format)["bf16"] == 2 * (params - layers * e_ * 3 * width * h)
    assert {t.format for t in e.tensors if "router" in t.name or "bias" in t.name} == {"bf16"}


def test_mxfp4_refuses_a_dense_model() -> None:
    with pytest.raises(InvalidValueError) as info:
        estimate_weights(_fixture(LLAMA2_7B), "mxfp4")
    assert info.value.field == "dtype" and "expert" in str(info.value)


# DeepSeek-V3/R1: the 163 safetensors files of deepseek-ai/DeepSeek-R1 (same layout as V3)
# hold these tensors (shape, bytes per value, copies), read from their safetensors headers.
# They include the multi-token-prediction layer 61 and the fp32 e_score_correction_bias
# buffers, neither of which transformers loads. Their sum, 688,574,839,360 B, is the 688,586,
# 727,753 B of the files less 11,888,393 B of safetensors JSON headers.
_DSV3_ATTN = [  # per layer, 62 layers (0-60 and the MTP layer 61)
    ((576, 7168), 1), ((5, 56), 4), ((32768, 512), 1), ((256, 4), 4), ((7168, 16384), 1),
    ((56, 128), 4), ((1536, 7168), 1), ((12, 56), 4), ((24576, 1536), 1), ((192, 12), 4),
    ((7168,), 2), ((7168,), 2), ((512,), 2), ((1536,), 2),
]  # fmt: skip
_DSV3_DENSE = [((18432, 7168), 1), ((144, 56), 4)] * 3  # layers 0-2: gate, up, down + scales
_DSV3_MOE = (  # layers 3-61: 256 + 1 shared experts × 3 projections, router weight
    [((2048, 7168), 1), ((16, 56), 4)] * 3 * 257 + [((256, 7168), 2)]
)
_DSV3_BIAS = ((256,), 4)  # e_score_correction_bias, layers 3-61
_DSV3_MTP_EXTRA = [
    ((7168, 14336), 2),
    ((7168,), 2),
    ((7168,), 2),
    ((129280, 7168), 2),
    ((129280, 7168), 2),
    ((7168,), 2),
]  # eh_proj, enorm, hnorm, embed, head, norm
_DSV3_TOP = [((129280, 7168), 2), ((129280, 7168), 2), ((7168,), 2)]  # embed, lm_head, norm


def _nbytes(rows: list[tuple[tuple[int, ...], int]]) -> int:
    total = 0
    for shape, size in rows:
        n = size
        for d in shape:
            n *= d
        total += n
    return total


def test_fp8_block128_matches_the_deepseek_checkpoint_to_the_byte() -> None:
    files = (
        _nbytes(_DSV3_TOP) + 62 * _nbytes(_DSV3_ATTN) + 3 * _nbytes(_DSV3_DENSE)
        + 59 * (_nbytes(_DSV3_MOE) + _nbytes([_DSV3_BIAS])) + _nbytes(_DSV3_MTP_EXTRA)
    )  # fmt: skip
    assert files == 688_574_839_360
    not_loaded = (
        _nbytes(_DSV3_ATTN) + _nbytes(_DSV3_MOE) + _nbytes(_DSV3_MTP_EXTRA)
        + 59 * _nbytes([_DSV3_BIAS])
    )  # fmt: skip
    e = estimate_weights(_fixture("deepseek-ai/DeepSeek-V3"), "fp8-block128")
    assert e.total_bytes == files - not_loaded == 673_150_552_416


def test_fp8_block_scales_round_partial_blocks_up() -> None:
    spec = _fixture("deepseek-ai/DeepSeek-V3")
    e = estimate_weights(spec, "fp8-e4m3-block128")
    (kv_a,) = (t for t in e.tensors if t.name.endswith("kv_a_proj_with_mqa.weight"))
    assert kv_a.bytes_each == 576 * 7168 + ceil(576 / 128) * ceil(7168 / 128) * 4
    assert {t.format for t in e.tensors if t.name.endswith("mlp.gate.weight")} == {"bf16"}


def test_nvfp4_by_hand_on_llama2_7b() -> None:
    spec = _fixture(LLAMA2_7B)
    e = estimate_weights(spec, "nvfp4")
    (q,) = (t for t in e.tensors if t.name == "model.layers.{i}.self_attn.q_proj.weight")
    # codes 4096·4096/2 + E4M3 scales 4096·4096/16 + weight_scale_2 fp32
    assert (q.format, q.bytes_each) == ("nvfp4", 4096 * 4096 * 9 // 16 + 4)
    linear = 32 * (4 * 4096 * 4096 + 3 * 4096 * 11008)
    assert e.total_bytes == linear * 9 // 16 + 7 * 32 * 4 + 2 * (2 * 32000 * 4096 + 65 * 4096)
    bf16, fp8 = (estimate_weights(spec, s).total_bytes for s in ("bf16", "fp8-block128"))
    assert e.total_bytes < fp8 < bf16


def test_nvfp4_experts_one_global_scale_per_expert_linear() -> None:
    e = estimate_weights(_fixture("Qwen/Qwen3-30B-A3B"), "nvfp4")
    (down,) = (t for t in e.tensors if t.name.endswith("experts.down_proj"))
    assert down.bytes_each == 128 * 2048 * 768 * 9 // 16 + 128 * 4


# --- names and invariants -------------------------------------------------------------------


def test_unknown_scheme_names_dtype() -> None:
    spec = _fixture(LLAMA2_7B)
    for bad in ("int3", "gguf-q7_k", "gptq-5bit-g128"):
        with pytest.raises(UnknownNameError) as info:
            estimate_weights(spec, bad)
        assert info.value.field == "dtype"
        assert "gguf-q4_k_m" in info.value.known


def test_scheme_names_are_case_insensitive() -> None:
    spec = _fixture(LLAMA2_7B)
    assert (
        estimate_weights(spec, "GGUF-Q4_K_M").total_bytes
        == estimate_weights(spec, "gguf-q4_k_m").total_bytes
    )


@pytest.mark.parametrize(
    "hub_id",
    [
        LLAMA2_7B,
        "Qwen/Qwen3-30B-A3B",
        "deepseek-ai/DeepSeek-V3",
        "google/gemma-3-4b-it",
        "openai-community/gpt2",
        "google-bert/bert-base-uncased",
        "tiiuae/falcon-mamba-7b",
        "microsoft/Phi-3-mini-4k-instruct",
        "openai/gpt-oss-20b",
    ],
)
def test_every_scheme_adds_up(hub_id: str) -> None:
    spec = _fixture(hub_id)
    for scheme in weight_schemes():
        if scheme == "mxfp4" and not spec.is_moe:
            continue  # refused: the gpt-oss layout quantizes experts only (tested below)
        e = estimate_weights(spec, scheme)
        assert e.total_bytes == sum(t.bytes for t in e.tensors) == sum(b for _, b in e.by_format)
        assert [b for _, b in e.by_format] == sorted((b for _, b in e.by_format), reverse=True)
        assert e.how and all(t.copies >= 1 and t.bytes_each > 0 for t in e.tensors)


def _small_llama(
    hidden: int, heads: int, kv: int = 1, inter: int = 96, layers: int = 2
) -> dict[str, object]:
    return {
        "model_type": "llama",
        "vocab_size": 1000,
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
        "intermediate_size": inter,
    }


@settings(max_examples=40, deadline=None)
@given(
    layers=st.integers(1, 16),
    kv=st.sampled_from([1, 2, 4]),
    groups=st.sampled_from([1, 2, 4]),
    d=st.sampled_from([32, 64, 128]),
    inter_blocks=st.integers(1, 24),
    tied=st.booleans(),
)
def test_wider_formats_never_store_less(
    layers: int, kv: int, groups: int, d: int, inter_blocks: int, tied: bool
) -> None:
    cfg = {
        **_small_llama(kv * groups * d, kv * groups, kv, 32 * inter_blocks, layers),
        "tie_word_embeddings": tied,
    }
    spec = spec_from_config(cfg)
    totals = [
        estimate_weights(spec, s).total_bytes
        for s in ("fp32", "bf16", "gguf-q8_0", "gguf-q4_k_m", "gguf-q2_k")
    ]
    assert totals == sorted(totals, reverse=True)


def test_nvfp4_tensor_layout_matches_a_modelopt_checkpoint() -> None:
    # nvidia/DeepSeek-R1-FP4 safetensors headers, layer 0 (dense MLP, in 18,432, out 7,168):
    # mlp.down_proj.weight U8 [7168, 9216], weight_scale F8_E4M3 [7168, 1152],
    # weight_scale_2 F32 [] (and input_scale F32 [], not counted).
    e = estimate_weights(_fixture("deepseek-ai/DeepSeek-V3"), "nvfp4")
    (down,) = (t for t in e.tensors if t.name == "model.layers.{i}.mlp.down_proj.weight")
    assert down.shape == (7168, 18432) and down.copies == 3
    assert down.bytes_each == 7168 * 9216 + 7168 * 1152 + 4


def test_fp8_experts_of_a_type_read_on_the_meta_device_count_one_scale_per_linear() -> None:
    """Gemma-4 26B-A4B has no native MoE description: the stacked expert tensors
    (E, 2I, h) and (E, h, I) still hold 2·E and E per-expert Linears, one fp32 scale each."""
    from modelmem.model.sources import resolve

    spec = resolve("gemma-4-26b-a4b").spec
    assert spec is not None and spec.moe is None
    stored = {t.name.rsplit(".", 1)[-1]: t for t in estimate_weights(spec, "fp8").tensors}
    gate_up, down = stored["gate_up_proj"], stored["down_proj"]
    e = gate_up.shape[0]
    assert gate_up.bytes_each == gate_up.shape[0] * gate_up.shape[1] * gate_up.shape[2] + 2 * e * 4
    assert down.bytes_each == down.shape[0] * down.shape[1] * down.shape[2] + e * 4

"""Unit tests for modelmem.formats: exact storage of number formats and quantization schemes.

Every figure below is derived by hand in a comment from the layout of the format (formulas.md
sections E and B.1 of the project's reference notes; ggml-common.h; bitsandbytes, AutoGPTQ and
AutoAWQ buffer shapes).
"""

from __future__ import annotations

import re
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelmem.errors import InvalidValueError, UnknownNameError
from modelmem.formats import (
    FAMILIES,
    GROUPED_BITS,
    GROUPED_GROUP_SIZES,
    LAYOUTS,
    NumberFormat,
    all_formats,
    get_format,
)
from modelmem.units import format_bytes, format_bytes_binary, parse_count

REQUIRED_NAMES = [
    "fp32",
    "fp16",
    "bf16",
    "fp8-e4m3",
    "fp8-e5m2",
    "int8",
    "int4",
    "nf4",
    "nf4-dq",
    "fp4",
    "fp4-dq",
    "llm-int8",
    "gptq-4bit-g128",
    "awq-4bit-g128",
    "mxfp4",
    "nvfp4",
    "nvfp4-b16",
    "q4_0",
    "q4_1",
    "q5_0",
    "q5_1",
    "q8_0",
    "q8_1",
    "q2_k",
    "q3_k",
    "q4_k",
    "q5_k",
    "q6_k",
    "q8_k",
    "iq1_s",
    "iq1_m",
    "iq2_xxs",
    "iq2_xs",
    "iq2_s",
    "iq3_xxs",
    "iq3_s",
    "iq4_nl",
    "iq4_xs",
    "tq1_0",
    "tq2_0",
    "q1_0",
]

# gguf-py's GGML_QUANT_SIZES still describes block_q8_1 with float d and s (4 + 4 + 32 = 40 bytes);
# ggml-common.h now stores two ggml_half and static_asserts 2*sizeof(ggml_half) + 32 = 36, which
# is what ggml.c's type_traits report. Q8_1 is a dot-product intermediate, never stored in files.
KNOWN_GGUF_PY_DIFFERENCES = {"Q8_1": ((32, 40), (32, 36))}


# --- worked figures ---------------------------------------------------------------------------


def test_one_billion_params_in_bf16() -> None:
    # 1e9 values x 2 bytes = 2,000,000,000 bytes = 2.00 GB = 1.86 GiB.
    n = parse_count("1B")
    weight_bytes = get_format("bf16").tensor_bytes((n,))
    assert weight_bytes == 2_000_000_000
    assert format_bytes(weight_bytes) == "2.00 GB"
    assert format_bytes_binary(weight_bytes) == "1.86 GiB"


@pytest.mark.parametrize(
    ("name", "per_value"),
    [
        ("fp32", Fraction(4)),
        ("fp16", Fraction(2)),
        ("bf16", Fraction(2)),
        ("fp8", Fraction(1)),
        ("int8", Fraction(1)),
        ("int4", Fraction(1, 2)),
        ("fp64", Fraction(8)),
    ],
)
def test_plain_bytes_per_value(name: str, per_value: Fraction) -> None:
    fmt = get_format(name)
    assert fmt.bytes_per_value == per_value
    assert fmt.bits_per_value == 8 * per_value
    # a 1000-value tensor takes exactly 1000 x bytes per value
    assert fmt.tensor_bytes((10, 100)) == 1000 * per_value


def test_int4_rounds_up_to_whole_bytes() -> None:
    # two values per byte: 7 values need ceil(7/2) = 4 bytes
    assert get_format("int4").tensor_bytes((7,)) == 4
    assert get_format("int4").tensor_bytes((4096, 4096)) == 8_388_608


@pytest.mark.parametrize(
    ("name", "block", "nbytes", "bits"),
    [
        ("q4_0", 32, 18, Fraction(9, 2)),  # fp16 d + 16 B nibbles = 18 B per 32
        ("q8_0", 32, 34, Fraction(17, 2)),  # fp16 d + 32 int8 = 34 B per 32
        ("q4_k", 256, 144, Fraction(9, 2)),  # 2 fp16 + 12 B scales + 128 B nibbles = 144 per 256
        ("q6_k", 256, 210, Fraction(105, 16)),  # 128 + 64 + 16 + 2 = 210 B per 256 -> 6.5625
        ("q2_k", 256, 84, Fraction(21, 8)),  # 16 + 64 + 4 = 84 -> 2.625
        ("q3_k", 256, 110, Fraction(55, 16)),  # 32 + 64 + 12 + 2 = 110 -> 3.4375
        ("q5_k", 256, 176, Fraction(11, 2)),  # 4 + 12 + 32 + 128 = 176 -> 5.5
        ("iq4_xs", 256, 136, Fraction(17, 4)),  # 2 + 2 + 4 + 128 = 136 -> 4.25
        ("mxfp4", 32, 17, Fraction(17, 4)),  # 1 E8M0 scale + 16 B of E2M1 -> 4.25
        ("nvfp4", 64, 36, Fraction(9, 2)),  # 4 UE4M3 scales + 32 B of E2M1 -> 4.5
        ("nvfp4-b16", 16, 9, Fraction(9, 2)),  # ModelOpt: 1 E4M3 scale + 8 B of E2M1 -> 4.5
        ("q1_0", 128, 18, Fraction(9, 8)),  # fp16 d + 16 B of bits -> 1.125
    ],
)
def test_ggml_blocks(name: str, block: int, nbytes: int, bits: Fraction) -> None:
    fmt = get_format(name)
    assert (fmt.block_size, fmt.bytes_per_block) == (block, nbytes)
    assert fmt.bits_per_value == bits
    assert fmt.tensor_bytes((block,)) == nbytes
    # 4096 x 4096 weight: 4096 rows of 4096/block blocks
    assert fmt.tensor_bytes((4096, 4096)) == 4096 * (4096 // block) * nbytes


def test_nvfp4_checkpoint_blocks_are_16_wide() -> None:
    # A row of 16·k values that is not whole 64-value ggml blocks still stores in ModelOpt's
    # layout (weight [out, in/2] + weight_scale [out, in/16]); ggml's packing refuses it.
    assert get_format("nvfp4-modelopt").tensor_bytes((8, 48)) == 8 * 48 // 2 + 8 * 48 // 16
    with pytest.raises(InvalidValueError):
        get_format("nvfp4").tensor_bytes((8, 48))


def test_ggml_row_must_be_whole_blocks() -> None:
    with pytest.raises(InvalidValueError, match="shape=") as info:
        get_format("q4_k").tensor_bytes((4096, 4000))  # 4000 % 256 != 0
    assert "256" in str(info.value)
    # the same values arranged with 4096 per row are fine
    assert get_format("q4_k").tensor_bytes((4000, 4096)) == 4000 * 16 * 144


def test_kv_cache_formats_b1() -> None:
    # llama.cpp -ctk/-ctv bytes per element: f16 2, q8_0 34/32, q5_1 24/32, q5_0 22/32,
    # q4_1 20/32, q4_0 18/32, iq4_nl 18/32; vLLM fp8 / fp8_e4m3 / fp8_e5m2: 1.
    expected = {
        "f16": Fraction(2),
        "q8_0": Fraction(34, 32),
        "q5_1": Fraction(24, 32),
        "q5_0": Fraction(22, 32),
        "q4_1": Fraction(20, 32),
        "q4_0": Fraction(18, 32),
        "iq4_nl": Fraction(18, 32),
        "fp8": Fraction(1),
        "fp8_e4m3": Fraction(1),
        "fp8_e5m2": Fraction(1),
    }
    assert {name: get_format(name).bytes_per_value for name in expected} == expected
    # llama.cpp log "K (q8_0): 51.00 MiB": 8192 cells x 12 layers x 512 values x 34/32 bytes
    k_cache = get_format("q8_0").tensor_bytes((8192 * 12, 512))
    assert k_cache == 51 * 2**20
    # Llama-2-7B f16 cache, 4096 tokens x 32 layers x (K and V) x 4096: 2048.00 MiB
    assert get_format("f16").tensor_bytes((4096, 32, 2, 4096)) == 2048 * 2**20


def test_llama2_7b_gguf_files_e4() -> None:
    # Llama-2-7B (V 32000, h 4096, I 11008, L 32) as ggml stores it; the totals equal the
    # "CPU buffer size" lines of published llama.cpp logs (formulas.md E.4).
    vocab, h, inter, layers = 32_000, 4_096, 11_008, 32
    f32, q4_0, q4_k, q6_k = (get_format(n) for n in ("f32", "q4_0", "q4_k", "q6_k"))
    norms = (2 * layers + 1) * f32.tensor_bytes((h,))
    output = q6_k.tensor_bytes((vocab, h))  # output.weight is Q6_K in both files

    def layer(attn_v: NumberFormat, ffn_down: NumberFormat, base: NumberFormat) -> int:
        return (
            3 * base.tensor_bytes((h, h))  # q, k, o
            + attn_v.tensor_bytes((h, h))
            + 2 * base.tensor_bytes((inter, h))  # gate, up
            + ffn_down.tensor_bytes((h, inter))
        )

    q4_0_file = q4_0.tensor_bytes((vocab, h)) + layers * layer(q4_0, q4_0, q4_0) + output + norms
    assert q4_0_file == 3_825_065_984
    assert format_bytes_binary(q4_0_file, "MiB") == "3647.87 MiB"

    def more_bits(i: int) -> bool:  # llama-quant.cpp use_more_bits: 16 of 32 layers
        return i < layers // 8 or i >= 7 * layers // 8 or (i - layers // 8) % 3 == 2

    q4_k_m = q4_k.tensor_bytes((vocab, h)) + output + norms
    q4_k_m += sum(
        layer(q6_k, q6_k, q4_k) if more_bits(i) else layer(q4_k, q4_k, q4_k) for i in range(layers)
    )
    assert q4_k_m == 4_080_263_168
    assert format_bytes_binary(q4_k_m, "MiB") == "3891.24 MiB"


# --- bitsandbytes -----------------------------------------------------------------------------


def test_nf4_bits() -> None:
    # QLoRA: 4-bit codes + fp32 absmax per 64 values = 4 + 32/64 = 4.5 bits;
    # double quantization: 4 + 8/64 + 32/(64*256) = 4.126953125 ("4.127") bits.
    assert get_format("nf4").bits_per_value == Fraction(9, 2)
    assert get_format("fp4").bits_per_value == Fraction(9, 2)
    nf4_dq = get_format("nf4-dq").bits_per_value
    assert nf4_dq == 4 + Fraction(8, 64) + Fraction(32, 64 * 256)
    assert nf4_dq - 4 == Fraction(65, 512)
    assert round(float(nf4_dq - 4), 3) == 0.127
    assert get_format("fp4-dq").bits_per_value == nf4_dq


def test_nf4_tensor_bytes_4096_square() -> None:
    # n = 4096*4096 = 16,777,216 values.
    # nf4: codes n/2 = 8,388,608 + absmax fp32 (n/64 = 262,144 blocks) x 4 = 1,048,576
    #      + 16-entry fp32 code table 64 = 9,437,248.
    assert get_format("nf4").tensor_bytes((4096, 4096)) == 9_437_248
    # nf4-dq: codes 8,388,608 + uint8 absmax 262,144 + fp32 per 256 absmax (1,024) x 4 = 4,096
    #         + code table 64 + 256-entry fp32 dynamic code 1,024 + fp32 offset 4 = 8,655,940.
    assert get_format("nf4-dq").tensor_bytes((4096, 4096)) == 8_655_940


def test_bnb_partial_blocks_round_up() -> None:
    # 3 x 5 = 15 values: ceil(15/2) = 8 code bytes, 1 absmax block.
    assert get_format("nf4").tensor_bytes((3, 5)) == 8 + 4 + 64
    assert get_format("nf4-dq").tensor_bytes((3, 5)) == 8 + 1 + 4 + 64 + 1024 + 4


def test_llm_int8() -> None:
    # int8 CB [out, in] + fp32 SCB [out]: 4096*4096 + 4096*4 = 16,793,600
    assert get_format("llm-int8").tensor_bytes((4096, 4096)) == 16_793_600
    assert get_format("llm-int8").bits_per_value == 8
    with pytest.raises(InvalidValueError, match="2-D"):
        get_format("llm-int8").tensor_bytes((4096,))


@pytest.mark.oracle
def test_bnb4_against_bitsandbytes() -> None:
    """Quantize real tensors with bitsandbytes on CPU and add up every tensor it keeps."""
    torch = pytest.importorskip("torch", reason="torch not installed")
    functional = pytest.importorskip(
        "bitsandbytes.functional", reason="bitsandbytes not installed (optional oracle)"
    )
    for shape in [(100, 70), (256, 64), (3, 5), (11008, 64)]:
        for double_quant in (False, True):
            weight = torch.randn(*shape)
            try:
                codes, state = functional.quantize_4bit(
                    weight, blocksize=64, compress_statistics=double_quant, quant_type="nf4"
                )
            except (RuntimeError, NotImplementedError) as error:  # no CPU kernel in this build
                pytest.skip(f"bitsandbytes cannot quantize on CPU here: {error}")
            held = [codes, state.absmax, state.code]
            if double_quant:
                held += [state.offset, state.state2.absmax, state.state2.code]
            measured = sum(t.numel() * t.element_size() for t in held)
            name = "nf4-dq" if double_quant else "nf4"
            assert get_format(name).tensor_bytes(shape) == measured, (shape, name)


# --- GPTQ / AWQ -------------------------------------------------------------------------------


def test_gptq_4bit_g128_on_4096_square() -> None:
    # shape [out, in] = [4096, 4096], b = 4, g = 128, groups = 4096/128 = 32
    # qweight int32 [in*b/32, out] = [512, 4096]  -> 512*4096*4  = 8,388,608
    # qzeros  int32 [groups, out*b/32] = [32, 512] -> 32*512*4   =    65,536
    # scales  fp16  [groups, out] = [32, 4096]     -> 32*4096*2  =   262,144
    # g_idx   int32 [in] = [4096]                  -> 4096*4     =    16,384
    # total                                                       = 8,732,672
    fmt = get_format("gptq-4bit-g128")
    assert fmt.tensor_bytes((4096, 4096)) == 8_732_672
    # nominal b + (16 + b)/g = 4 + 20/128 = 4.15625 bits, without g_idx
    assert fmt.bits_per_value == Fraction(133, 32)
    assert fmt.tensor_bytes((4096, 4096)) == 4096 * 4096 * fmt.bits_per_value / 8 + 4096 * 4


def test_awq_4bit_g128_on_4096_square() -> None:
    # qweight int32 [in, out/8] = 4096*512*4 = 8,388,608; qzeros [32, 512]*4 = 65,536;
    # scales fp16 [32, 4096]*2 = 262,144; no g_idx: 8,716,288
    assert get_format("awq").tensor_bytes((4096, 4096)) == 8_716_288


def test_gptq_ragged_groups_round_up() -> None:
    # [out, in] = [4096, 4160]; 4160 = 32*130 is packable, but 4160/128 = 32.5, so there are
    # ceil(4160/128) = 33 groups (the last holds 64 rows):
    # qweight 4160/32*4 = 520 rows x 4096 x 4 B = 8,519,680; qzeros 33 x 512 x 4 B = 67,584;
    # scales 33 x 4096 x 2 B = 270,336; g_idx 4160 x 4 B = 16,640; total 8,874,240.
    fmt = get_format("gptq-4bit-g128")
    expected = 8_519_680 + 67_584 + 270_336 + 16_640
    assert expected == 8_874_240
    assert fmt.tensor_bytes((4096, 4160)) == expected


def test_grouped_formats_reject_bad_shapes() -> None:
    with pytest.raises(InvalidValueError, match="multiples of 32"):
        get_format("gptq").tensor_bytes((4096, 100))
    with pytest.raises(InvalidValueError, match="2-D"):
        get_format("gptq").tensor_bytes((4096, 4096, 2))
    with pytest.raises(InvalidValueError, match="group size 128"):
        get_format("awq").tensor_bytes((4096, 4160))


def test_parametric_grouped_formats() -> None:
    g32 = get_format("gptq-3bit-g32")
    assert (g32.bits, g32.group_size, g32.layout) == (3, 32, "gptq")
    assert g32.bits_per_value == 3 + Fraction(16 + 3, 32)
    awq = get_format("AWQ_8bit_g64")
    assert awq.name == "awq-8bit-g64"
    assert awq.bits_per_value == 8 + Fraction(24, 64)
    assert awq.source == get_format("awq-4bit-g128").source
    # the listed entry agrees with the rule that builds the others
    listed = get_format("gptq-4bit-g128")
    assert (listed.block_size, listed.bytes_per_block) == (8 * 128, 128 * 4 + 4 + 16)


@pytest.mark.parametrize("name", ["gptq-5bit-g128", "gptq-4bit-g100", "awq-4bit-g512"])
def test_parametric_out_of_range(name: str) -> None:
    with pytest.raises(InvalidValueError, match="format=") as info:
        get_format(name)
    assert not isinstance(info.value, UnknownNameError)


@given(
    st.sampled_from(GROUPED_BITS),
    st.sampled_from(GROUPED_GROUP_SIZES),
    st.integers(min_value=1, max_value=64),
    st.integers(min_value=1, max_value=16),
)
def test_gptq_equals_nominal_plus_g_idx(bits: int, group: int, out_32: int, in_groups: int) -> None:
    # When g divides in: bytes = numel * (b + (16 + b)/g) / 8 + 4 * in (g_idx), exactly.
    fmt = get_format(f"gptq-{bits}bit-g{group}")
    out_features, in_features = 32 * out_32, group * in_groups
    numel = out_features * in_features
    assert fmt.tensor_bytes((out_features, in_features)) == (
        numel * fmt.bytes_per_value + 4 * in_features
    )
    awq = get_format(f"awq-{bits}bit-g{group}")
    assert awq.tensor_bytes((out_features, in_features)) == numel * awq.bytes_per_value


# --- lookup -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("FP32", "fp32"),
        ("f32", "fp32"),
        ("float32", "fp32"),
        ("F16", "fp16"),
        ("float16", "fp16"),
        ("half", "fp16"),
        ("bfloat16", "bf16"),
        ("BF16", "bf16"),
        ("fp8", "fp8-e4m3"),
        ("e4m3", "fp8-e4m3"),
        ("float8_e4m3fn", "fp8-e4m3"),
        ("e5m2", "fp8-e5m2"),
        ("i8", "int8"),
        ("Q4_K", "q4_k"),
        ("IQ2_XXS", "iq2_xxs"),
        ("  nf4  ", "nf4"),
        ("bnb-nf4-dq", "nf4-dq"),
        ("gptq", "gptq-4bit-g128"),
        ("llm.int8", "llm-int8"),
        ("MXFP4", "mxfp4"),
    ],
)
def test_get_format_aliases(alias: str, name: str) -> None:
    assert get_format(alias).name == name


def test_unknown_format_names_field_and_value() -> None:
    with pytest.raises(UnknownNameError) as info:
        get_format("q9_9")
    assert info.value.field == "format"
    assert "format='q9_9'" in str(info.value)
    assert "bf16" in info.value.known
    with pytest.raises(InvalidValueError, match="format="):
        get_format(4)  # type: ignore[arg-type]


@pytest.mark.parametrize("shape", [(-1, 4), (2.0, 4), (True, 4), "4096", None])
def test_bad_shapes(shape: object) -> None:
    with pytest.raises(InvalidValueError, match="shape="):
        get_format("bf16").tensor_bytes(shape)  # type: ignore[arg-type]


def test_number_format_validates_itself() -> None:
    with pytest.raises(InvalidValueError, match="source"):
        NumberFormat(
            name="x",
            family="float",
            layout="elementwise",
            block_size=1,
            bytes_per_block=1,
            description="",
            source=" ",
        )
    with pytest.raises(UnknownNameError, match="family"):
        NumberFormat(
            name="x",
            family="posit",
            layout="elementwise",
            block_size=1,
            bytes_per_block=1,
            description="",
            source="s",
        )
    with pytest.raises(InvalidValueError, match="block_size"):
        NumberFormat(
            name="x",
            family="float",
            layout="elementwise",
            block_size=0,
            bytes_per_block=1,
            description="",
            source="s",
        )


# --- catalogue --------------------------------------------------------------------------------


def test_catalogue_rows_load_and_cite_sources() -> None:
    formats = all_formats()
    names = [f.name for f in formats]
    assert len(names) == len(set(names))
    assert set(REQUIRED_NAMES) <= set(names)
    for fmt in formats:
        assert fmt.source.strip(), fmt.name
        assert fmt.description.strip(), fmt.name
        assert fmt.family in FAMILIES and fmt.layout in LAYOUTS, fmt.name
        assert re.fullmatch(r"[a-z0-9][a-z0-9_.\-]*", fmt.name), fmt.name
        assert get_format(fmt.name) is fmt
        for alias in fmt.aliases:
            assert get_format(alias) is fmt, alias


def test_every_ggml_entry_is_named_after_its_type() -> None:
    for fmt in all_formats():
        if fmt.family == "ggml":
            assert fmt.ggml_type == fmt.name.upper()
        if fmt.ggml_type is not None:
            assert get_format(fmt.ggml_type.lower()) is fmt


def test_ggml_sizes_match_gguf_py() -> None:
    gguf_constants = pytest.importorskip(
        "gguf.constants", reason="gguf-py not installed; cannot cross-check GGML_QUANT_SIZES"
    )
    sizes = gguf_constants.GGML_QUANT_SIZES
    ours = {f.ggml_type: f for f in all_formats() if f.ggml_type is not None}
    gguf_names = {t.name for t in gguf_constants.GGMLQuantizationType}
    # every storage type gguf knows is in the catalogue, and nothing claims a type gguf lacks
    assert set(ours) == gguf_names
    for qtype in gguf_constants.GGMLQuantizationType:
        fmt = ours[qtype.name]
        mine = (fmt.block_size, fmt.bytes_per_block)
        if qtype.name in KNOWN_GGUF_PY_DIFFERENCES:
            theirs, expected = KNOWN_GGUF_PY_DIFFERENCES[qtype.name]
            assert tuple(sizes[qtype]) == theirs, f"gguf-py changed {qtype.name}; revisit"
            assert mine == expected
        else:
            assert mine == tuple(sizes[qtype]), qtype.name


# --- properties -------------------------------------------------------------------------------

_UNSHAPED = [f for f in all_formats() if f.layout in ("elementwise", "packed", "bnb4")]
_BLOCKED = [f for f in all_formats() if f.layout == "ggml"]


@given(st.sampled_from(_UNSHAPED), st.integers(0, 10**7), st.integers(0, 10**7))
def test_tensor_bytes_monotone_in_numel(fmt: NumberFormat, a: int, b: int) -> None:
    small, large = sorted((a, b))
    assert fmt.tensor_bytes((small,)) <= fmt.tensor_bytes((large,))
    # and never below the nominal bits per value
    assert fmt.tensor_bytes((large,)) >= large * fmt.bytes_per_value


@given(st.sampled_from(_BLOCKED), st.integers(0, 4096), st.integers(0, 4096), st.integers(1, 64))
def test_ggml_monotone_and_exact(fmt: NumberFormat, a: int, b: int, blocks: int) -> None:
    row = blocks * fmt.block_size
    small, large = sorted((a, b))
    assert fmt.tensor_bytes((small, row)) <= fmt.tensor_bytes((large, row))
    assert fmt.tensor_bytes((large, row)) == large * row * fmt.bytes_per_value


@given(st.sampled_from([f for f in _UNSHAPED if f.layout == "bnb4"]), st.integers(1, 64))
def test_bnb4_whole_blocks_equal_nominal(fmt: NumberFormat, blocks: int) -> None:
    numel = blocks * fmt.block_size
    assert fmt.tensor_bytes((numel,)) == numel * fmt.bytes_per_value + fmt.per_tensor_bytes

"""GGUF headers -> ModelSpec and Checkpoint.

Every real config in the fixtures is written as the GGUF file llama.cpp's converter makes
of it (llama.cpp tensor names and shapes, its metadata keys; ``tests/gguf_builder.py``) and
read back. Large files are sparse: only the header is written, then the file is extended to
its full size, so a 671B model costs a few kB of disk. gguf-py's own GGUFReader is the
oracle for every tensor's bytes.
"""

from __future__ import annotations

import struct
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from modelmem.errors import SourceError
from modelmem.memory.weights import checkpoint_weights, estimate_weights
from modelmem.model.params import count_params
from modelmem.model.sources.gguf_file import SUPPORTED_ARCHITECTURES, GgufModel, read_gguf
from modelmem.model.sources.hf_config import spec_from_config
from modelmem.model.spec import ModelSpec

from ..conftest import load_fixture
from ..gguf_builder import (
    Layout,
    Tensor,
    bf16_types,
    gguf_layout,
    q4_k_m_types,
    write_gguf,
    write_small_gguf,
)

gguf = pytest.importorskip("gguf")


def _oracle(path: Path) -> dict[str, tuple[tuple[int, ...], str, int, int]]:
    """name -> (ggml shape, type name, bytes, elements) as gguf-py's GGUFReader reads it."""
    return {
        t.name: (
            tuple(int(x) for x in t.shape),
            t.tensor_type.name,
            int(t.n_bytes),
            int(t.n_elements),
        )
        for t in gguf.GGUFReader(path).tensors
    }


def _read(tmp_path: Path, layout: Layout, name: str = "model.gguf") -> GgufModel:
    return read_gguf(write_gguf(tmp_path / name, layout))


# ------------------------------------------------------------- counts equal the config's

# Hub id -> what the GGUF file holds beyond (+) or short of (-) the transformers count:
#   llama3 rope scaling: rope_freqs.weight, d/2 precomputed frequency factors (not weights)
#     Llama-3.1 (d=128): +64; Llama-3.2-1B (d=64): +32; Llama-3.2-3B (d=128): +64
#   DeepSeek-V3: exp_probs_b.bias = e_score_correction_bias, a buffer in transformers,
#     E=256 per MoE layer × 58 MoE layers (61 - 3 dense) = +14,848
#   GPT-2: the converter writes the tied wte again as output.weight: +V·h
#     gpt2 50,257 × 768 = +38,597,376; gpt2-medium 50,257 × 1024 = +51,463,168
#   Gemma-3-4B: the vision tower and projector go to a separate mmproj file: -(vision)
#   DeepSeek: kv_b_proj split into attn_k_b and attn_v_b keeps its n_h·r·(d_nope + d_v)
#     values; Gemma's norms stored as 1 + w keep their count: both 0.
EXTRA_PARAMS: dict[str, int] = {
    "meta-llama/Llama-2-7b-hf": 0,
    "meta-llama/Llama-2-13b-hf": 0,
    "meta-llama/Llama-2-70b-hf": 0,
    "meta-llama/Llama-3.1-8B": 64,
    "meta-llama/Llama-3.1-70B": 64,
    "meta-llama/Llama-3.1-405B": 64,
    "meta-llama/Llama-3.2-1B-Instruct": 32,
    "meta-llama/Llama-3.2-3B-Instruct": 64,
    "mistralai/Mistral-7B-Instruct-v0.3": 0,
    "mistralai/Mixtral-8x7B-v0.1": 0,
    "mistralai/Mixtral-8x22B-v0.1": 0,
    "Qwen/Qwen2.5-1.5B": 0,
    "Qwen/Qwen2.5-7B": 0,
    "Qwen/Qwen3-0.6B": 0,
    "Qwen/Qwen3-8B": 0,
    "Qwen/Qwen3-30B-A3B": 0,
    "google/gemma-2-9b": 0,
    "google/gemma-2-27b-it": 0,
    "google/gemma-3-1b-it": 0,
    "google/gemma-3-4b-it": -419_816_304,  # = count_params(...).total - .text, checked below
    "microsoft/Phi-3-mini-4k-instruct": 0,
    "deepseek-ai/DeepSeek-V2-Lite": 0,
    "deepseek-ai/DeepSeek-V3": 14_848,
    "openai/gpt-oss-20b": 0,
    "openai-community/gpt2": 38_597_376,
    "openai-community/gpt2-medium": 51_463_168,
}

# The GGUF architecture, and the model_type the reader gives, per config model_type.
EXPECTED_FAMILY = {"mistral": "llama", "gemma3": "gemma3_text"}


def _comparable(spec: ModelSpec, config: dict[str, Any]) -> ModelSpec:
    """The config's spec as a GGUF can state it: no name, no quantization_config, and for
    Gemma 3 multimodal the text model only (llama.cpp puts vision in the mmproj file)."""
    family = EXPECTED_FAMILY.get(spec.family, spec.family)
    return replace(spec, name="m", family=family, quantization=None, vision=None)


@pytest.mark.parametrize("hub_id", sorted(EXTRA_PARAMS))
def test_counts_from_gguf_equal_counts_from_config(tmp_path: Path, hub_id: str) -> None:
    config = load_fixture(hub_id)
    layout = gguf_layout(config)
    model = _read(tmp_path, layout)
    from_config = spec_from_config(config)
    want = count_params(from_config)

    # (a) the architecture: the same ModelSpec, so the same count, active count, breakdown
    assert replace(model.spec, name="m") == _comparable(from_config, config)
    got = count_params(model.spec)
    assert got.total == want.text  # .text: all but a vision tower (== .total without one)
    assert got.active == want.active - (want.total - want.text)
    assert got.components == tuple(
        (k, n) for k, n in want.components if "vision" not in k and k != "projector"
    )

    # (b) the file's tensors: the count plus the documented differences
    assert model.checkpoint.total_params == want.total + EXTRA_PARAMS[hub_id]
    assert model.checkpoint.total_params == layout.total_elements

    # every tensor as gguf-py reads it: names, ggml shapes, types, bytes, elements
    oracle = _oracle(Path(model.checkpoint.origin))
    assert {
        t.name: (t.shape, t.dtype, t.nbytes, t.params) for t in model.checkpoint.tensors
    } == oracle
    assert model.checkpoint.total_bytes == sum(v[2] for v in oracle.values())
    assert checkpoint_weights(model.checkpoint).total_bytes == model.checkpoint.total_bytes
    assert model.architecture == layout.arch_name
    assert model.context_length == from_config.context_length
    assert model.file_type == "MOSTLY_BF16"
    assert model.checkpoint.quantization == "BF16"


def test_gemma3_4b_difference_is_the_vision_tower() -> None:
    want = count_params(spec_from_config(load_fixture("google/gemma-3-4b-it")))
    assert want.text - want.total == EXTRA_PARAMS["google/gemma-3-4b-it"]


# Extra bytes of a BF16 file over modelmem's "gguf-bf16" estimate: only the non-parameter
# tensors, all F32 (4 bytes): rope_freqs d/2 × 4; DeepSeek-V3 exp_probs_b 14,848 × 4.
BF16_EXTRA_BYTES = {
    "meta-llama/Llama-3.1-8B": 256,
    "meta-llama/Llama-3.2-1B-Instruct": 128,
    "deepseek-ai/DeepSeek-V3": 59_392,
    "deepseek-ai/DeepSeek-V2-Lite": 0,
    "Qwen/Qwen3-30B-A3B": 0,
    "google/gemma-2-9b": 0,
    "google/gemma-3-4b-it": 0,
    "microsoft/Phi-3-mini-4k-instruct": 0,
    "mistralai/Mixtral-8x7B-v0.1": 0,
    "openai/gpt-oss-20b": 0,
    "openai-community/gpt2": 0,
}


@pytest.mark.parametrize("hub_id", sorted(BF16_EXTRA_BYTES))
def test_bf16_file_bytes_equal_the_gguf_bf16_estimate(tmp_path: Path, hub_id: str) -> None:
    """The converter's --outtype bf16 file, tensor by tensor, against weights.py's estimate
    of the same file (its separate mmproj file left out for Gemma 3)."""
    config = load_fixture(hub_id)
    model = _read(tmp_path, gguf_layout(config))
    estimate = estimate_weights(spec_from_config(config), "gguf-bf16")
    text_bytes = sum(
        t.bytes
        for t in estimate.tensors
        if not t.name.startswith(("model.vision_tower", "model.multi_modal_projector"))
    )
    assert model.checkpoint.total_bytes == text_bytes + BF16_EXTRA_BYTES[hub_id]


# ---------------------------------------------------------------- quantized files


def test_llama2_7b_q4_k_m_bytes_equal_the_estimate_and_the_published_buffer(
    tmp_path: Path,
) -> None:
    """A Q4_K_M file with the per-tensor types llama-quant.cpp picks (gguf_builder
    q4_k_m_types): its tensor data is 4,080,263,168 B, the CPU buffer llama.cpp reports for
    TheBloke's llama-2-7b.Q4_K_M.gguf, and exactly weights.py's gguf-q4_k_m estimate.
    Q6_K: output 107,520,000 + 16 layers × (attn_v 13,762,560 + ffn_down 36,986,880)
    = 919,511,040; F32: 65 norms × 4096 × 4 = 1,064,960; Q4_K: the rest, 3,159,687,168."""
    config = load_fixture("meta-llama/Llama-2-7b-hf")
    layout = gguf_layout(
        config,
        types=q4_k_m_types(32),
        file_type=gguf.LlamaFileType.MOSTLY_Q4_K_M,
    )
    model = _read(tmp_path, layout)
    estimate = estimate_weights(spec_from_config(config), "gguf-q4_k_m")
    oracle = _oracle(Path(model.checkpoint.origin))
    assert model.checkpoint.total_bytes == 4_080_263_168
    assert model.checkpoint.total_bytes == estimate.total_bytes
    assert model.checkpoint.total_bytes == sum(v[2] for v in oracle.values())
    by_type = dict(model.checkpoint.bytes_by_dtype())
    assert by_type == {"Q4_K": 3_159_687_168, "Q6_K": 919_511_040, "F32": 1_064_960}
    assert by_type == {k.upper().replace("FP32", "F32"): v for k, v in estimate.by_format}
    assert model.file_type == "MOSTLY_Q4_K_M"
    assert model.checkpoint.quantization == "Q4_K_M"
    assert model.checkpoint.total_params == count_params(model.spec).total == 6_738_415_616


def test_gpt_oss_mxfp4_experts(tmp_path: Path) -> None:
    """gpt-oss as published in GGUF: routed experts MXFP4 (17 B per 32 values), the rest
    BF16/F32. Experts: 24 layers × 3 matrices × E=32 × 2880 × 2880 = 19,110,297,600
    values -> × 17/32 = 10,152,345,600 B."""
    config = load_fixture("openai/gpt-oss-20b")

    def types(t: Tensor, layer: int | None) -> Any:
        if t.name.endswith("_exps.weight"):
            return gguf.GGMLQuantizationType.MXFP4
        return bf16_types(t, layer)

    mxfp4 = gguf_layout(config, types=types, file_type=gguf.LlamaFileType.MOSTLY_MXFP4_MOE)
    model = _read(tmp_path, mxfp4)
    experts = [t for t in model.checkpoint.tensors if t.dtype == "MXFP4"]
    assert len(experts) == 72
    assert sum(t.params for t in experts) == 19_110_297_600
    assert sum(t.nbytes for t in experts) == 10_152_345_600
    assert model.checkpoint.total_bytes == sum(
        v[2] for v in _oracle(Path(model.checkpoint.origin)).values()
    )
    assert model.file_type == "MOSTLY_MXFP4_MOE"
    assert count_params(model.spec).total == 20_914_757_184


def test_deepseek_file_from_before_absorbed_mla(tmp_path: Path) -> None:
    """Files converted before llama.cpp's absorbed MLA keep attn_kv_b whole and state the
    head dims in key_length/value_length (192/128) with head_count_kv = n_h."""
    config = load_fixture("deepseek-ai/DeepSeek-V2-Lite")
    model = _read(tmp_path, gguf_layout(config, mla_split=False))
    names = {t.name for t in model.checkpoint.tensors}
    assert "blk.0.attn_kv_b.weight" in names and "blk.0.attn_k_b.weight" not in names
    assert model.spec == replace(spec_from_config(config), name=model.spec.name)
    assert model.checkpoint.total_params == 15_706_484_224
    assert model.config["q_lora_rank"] is None


# Qwen1.5-MoE-A2.7B's published config.json (no fixture): 60 experts of 1408, a shared
# expert of 5632 with its sigmoid gate, q/k/v biases.
QWEN2_MOE = {
    "model_type": "qwen2_moe",
    "vocab_size": 151936,
    "hidden_size": 2048,
    "intermediate_size": 5632,
    "moe_intermediate_size": 1408,
    "shared_expert_intermediate_size": 5632,
    "num_experts": 60,
    "num_experts_per_tok": 4,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "num_key_value_heads": 16,
    "max_position_embeddings": 8192,
    "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": False,
    "use_sliding_window": False,
}


def test_qwen2_moe_with_shared_expert(tmp_path: Path) -> None:
    model = _read(tmp_path, gguf_layout(QWEN2_MOE))
    want = count_params(spec_from_config(QWEN2_MOE))
    assert count_params(model.spec) == want
    assert model.checkpoint.total_params == want.total == 14_315_784_192
    moe = model.spec.moe
    assert moe is not None and moe.shared_intermediate_size == 5632 and moe.shared_expert_gate


# ---------------------------------------------------------------- a real small file


def test_small_file_with_real_data(tmp_path: Path) -> None:
    """A tiny llama written by GGUFWriter with real data (Q8_0 quantized by gguf-py)."""
    path = write_small_gguf(tmp_path / "small.gguf")
    model = read_gguf(path)
    oracle = _oracle(path)
    assert {t.name: (t.shape, t.dtype, t.nbytes, t.params) for t in model.checkpoint.tensors} == (
        oracle
    )
    # V=256, h=64, I=128, L=2, 4 heads / 2 KV heads of 16: embed 16,384 + head 16,384
    # + per layer (q 4,096 + k 2,048 + v 2,048 + o 4,096 + 3 × 8,192 + 2 norms 128)
    # = 36,992 × 2 + final norm 64 = 106,816.
    assert count_params(model.spec).total == model.checkpoint.total_params == 106_816
    # Q8_0, 34 B per 32 values: embed 17,408 + 2 layers × 36,864 values (39,168 B);
    # output F16 32,768; norms F32 5 × 64 × 4 = 1,280.
    assert model.checkpoint.total_bytes == 17_408 + 2 * 39_168 + 32_768 + 1_280 == 129_792
    assert model.checkpoint.bytes_by_dtype() == (
        ("Q8_0", 95_744),
        ("F16", 32_768),
        ("F32", 1_280),
    )
    assert model.architecture == "llama"
    assert model.context_length == 512
    assert model.file_type == "MOSTLY_Q8_0"
    assert model.tokenizer_model == "gpt2"
    assert (model.token_count, model.bos_token_id, model.eos_token_id) == (256, 1, 2)
    assert model.config["num_key_value_heads"] == 2 and model.config["head_dim"] == 16
    assert model.spec.name == "model"  # general.name, from the spec the builder wrote


# ---------------------------------------------------------------- metadata and errors


def test_large_vocabulary_is_skipped_not_decoded(tmp_path: Path) -> None:
    """A 152k-token vocabulary with 150k merges: gguf-py's GGUFReader takes tens of seconds
    and hundreds of MB on such a header; the bounded scanner records the arrays' type and
    length only (its time is in benchmarks/bench_sources.py, not asserted here)."""
    layout = gguf_layout(load_fixture("Qwen/Qwen2.5-1.5B"), tokens=151_936)
    layout.kv.append(("add_token_merges", [f"a{i} b{i}" for i in range(150_000)]))
    path = write_gguf(tmp_path / "vocab.gguf", layout)
    model = read_gguf(path)
    assert model.token_count == 151_936
    merges = model.metadata["tokenizer.ggml.merges"]
    assert getattr(merges, "length", None) == 150_000


def _header_only(path: Path, arch: str, kv: list[tuple[str, Any]]) -> Path:
    w = gguf.GGUFWriter(str(path), arch)
    for method, value in kv:
        getattr(w, method)(value)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    return path


def test_unknown_architecture_lists_the_supported_ones(tmp_path: Path) -> None:
    path = _header_only(tmp_path / "rwkv.gguf", "rwkv6", [("add_block_count", 24)])
    with pytest.raises(SourceError) as info:
        read_gguf(path)
    message = str(info.value)
    assert "'rwkv6' is not supported" in message
    for arch in ("llama", "qwen3moe", "deepseek2", "gpt-oss", "gemma3"):
        assert arch in message and arch in SUPPORTED_ARCHITECTURES
    assert "\n" not in message


def test_missing_metadata_names_the_gguf_key(tmp_path: Path) -> None:
    layout = gguf_layout(load_fixture("meta-llama/Llama-3.1-8B"))
    layout.kv = [(m, v) for m, v in layout.kv if m != "add_block_count"]
    with pytest.raises(SourceError, match=r"llama\.block_count is missing"):
        _read(tmp_path, layout)


def test_inconsistent_metadata_is_a_source_error(tmp_path: Path) -> None:
    layout = gguf_layout(load_fixture("meta-llama/Llama-3.1-8B"))
    layout.kv = [(m, 7 if m == "add_head_count_kv" else v) for m, v in layout.kv]
    with pytest.raises(SourceError, match="architecture metadata rejected"):
        _read(tmp_path, layout)


def test_header_without_tensor_data_is_refused(tmp_path: Path) -> None:
    """Data offsets past the end of the file: the header alone is not a model file."""
    layout = gguf_layout(load_fixture("Qwen/Qwen3-0.6B"))
    path = write_gguf(tmp_path / "header.gguf", layout, extend=False)
    with pytest.raises(SourceError, match=r"'token_embd\.weight' data .* runs past the end"):
        read_gguf(path)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "empty file"),
        (b"GGU", "truncated"),
        (b"PK\x03\x04" + bytes(40), "not a GGUF file"),
        (b"GGUF" + struct.pack("<IQQ", 1, 0, 0), "version 1 is not supported"),
        (b"GGUF" + struct.pack(">IQQ", 3, 0, 0), "big-endian"),
        (b"GGUF" + struct.pack("<IQQ", 3, 2**63, 0), "claims 9,223,372,036,854,775,808 tensors"),
        (b"GGUF" + struct.pack("<IQQ", 3, 0, 2**40), "metadata entries"),
        (b"GGUF" + struct.pack("<IQQ", 3, 1, 0) + bytes(40), "dimensions"),
    ],
)
def test_bad_fixed_headers(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    with pytest.raises(SourceError, match=problem):
        read_gguf(path)


def test_folder_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="is a folder"):
        read_gguf(tmp_path)
    with pytest.raises(SourceError, match="cannot read"):
        read_gguf(tmp_path / "absent.gguf")


# ------------------------------------------------------------------------- split files


def test_split_files_read_as_one_model(tmp_path: Path) -> None:
    from ..gguf_builder import write_split_gguf

    config = load_fixture("meta-llama/Llama-3.1-8B")
    layout = gguf_layout(config)
    paths = write_split_gguf(tmp_path, "llama-3.1-8b-bf16", layout, 3)
    whole = read_gguf(write_gguf(tmp_path / "whole.gguf", layout))
    for path in (paths[0], paths[2]):  # any split names the whole model
        model = read_gguf(path)
        assert model.checkpoint.files == 3
        assert model.checkpoint.total_bytes == whole.checkpoint.total_bytes == layout.total_bytes
        assert model.checkpoint.total_params == whole.checkpoint.total_params
        assert model.spec == whole.spec


def test_a_missing_split_is_named(tmp_path: Path) -> None:
    from ..gguf_builder import write_split_gguf

    paths = write_split_gguf(tmp_path, "m", gguf_layout(load_fixture("Qwen/Qwen3-0.6B")), 3)
    paths[1].unlink()
    with pytest.raises(SourceError, match=r"split 2 of 3 is missing: m-00002-of-00003\.gguf"):
        read_gguf(paths[0])
    paths[0].rename(tmp_path / "renamed.gguf")
    with pytest.raises(SourceError, match="name is not PREFIX"):
        read_gguf(tmp_path / "renamed.gguf")


# ------------------------------------------------------------- bounded metadata memory


def _short_arrays_file(path: Path, count: int) -> None:
    def key(k: bytes) -> bytes:
        return struct.pack("<Q", len(k)) + k

    body = struct.pack("<I", 9) + struct.pack("<I", 0) + struct.pack("<Q", 4096) + b"\1" * 4096
    kvs = [key(b"general.architecture") + struct.pack("<I", 8) + struct.pack("<Q", 5) + b"llama"]
    kvs += [key(b"k%d" % i) + body for i in range(count)]
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs)) + b"".join(kvs))


def test_a_flood_of_short_arrays_is_kept_only_up_to_a_budget(tmp_path: Path) -> None:
    """Short metadata arrays are kept as lists until their total reaches a budget; the
    rest are summarised, so memory stays near the file's size, not ten times it."""
    from modelmem.model.sources import gguf_file

    _short_arrays_file(tmp_path / "f.gguf", 64)
    metadata = gguf_file._open_and_scan(tmp_path / "f.gguf").metadata
    kept = [v for k, v in metadata.items() if k.startswith("k") and isinstance(v, list)]
    summarised = [v for v in metadata.values() if isinstance(v, gguf_file.GgufArray)]
    assert sum(map(len, kept)) <= gguf_file._KEEP_TOTAL
    assert len(kept) == gguf_file._KEEP_TOTAL // 4096 and len(summarised) == 64 - len(kept)

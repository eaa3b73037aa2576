"""safetensors checkpoints: counts and bytes from headers equal counts and bytes from
configs; quantized packings are counted as the weights they hold; mismatches are said."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelmem.errors import SourceError
from modelmem.memory.inference import InferenceWorkload, estimate_inference
from modelmem.memory.weights import checkpoint_weights, estimate_weights
from modelmem.model.params import count_params
from modelmem.model.sources import resolve
from modelmem.model.sources.hf_config import spec_from_config
from modelmem.model.sources.safetensors_file import (
    Quantization,
    quantization_from_config,
    stored_params,
)

from ..conftest import load_fixture
from ..safetensors_builder import (
    checkpoint_tensors,
    gptq_tensors,
    write_sharded,
    write_sparse_safetensors,
)

np = pytest.importorskip("numpy")
pytest.importorskip("safetensors")
pytest.importorskip("huggingface_hub")

TINY_LLAMA: dict[str, Any] = {
    "model_type": "llama",
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 256,
    "max_position_embeddings": 512,
    "tie_word_embeddings": False,
}


def model_folder(tmp_path: Path, config: dict[str, Any]) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_real_file_with_data_equals_the_config(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    folder = model_folder(tmp_path, TINY_LLAMA)
    spec = spec_from_config(TINY_LLAMA)
    arrays = {
        name: np.zeros(shape, dtype=np.float16)
        for name, (_, shape) in checkpoint_tensors(spec).items()
    }
    save_file(arrays, str(folder / "model.safetensors"))
    model = resolve(str(folder))
    assert model.checkpoint is not None
    assert model.checkpoint.total_params == count_params(spec).total
    # F16 data: exactly the fp16 estimate of the same architecture
    assert model.checkpoint.total_bytes == estimate_weights(spec, "fp16").total_bytes
    assert model.checkpoint.bytes_by_dtype() == (("F16", model.checkpoint.total_bytes),)
    assert any("agree" in n for n in model.notes)


@pytest.mark.parametrize(
    ("hub_id", "expected_params"),
    [
        # published counts (transformers, meta device): see tests/oracle
        ("meta-llama/Llama-3.1-8B", 8_030_261_248),
        ("Qwen/Qwen2.5-7B", 7_615_616_512),
        ("google/gemma-2-9b", 9_241_705_984),
    ],
)
def test_sharded_large_shapes_equal_config(
    tmp_path: Path, hub_id: str, expected_params: int
) -> None:
    config = load_fixture(hub_id)
    folder = model_folder(tmp_path, config)
    spec = spec_from_config(config)
    write_sharded(folder, checkpoint_tensors(spec, "BF16"), shards=4)
    model = resolve(str(folder))
    assert model.checkpoint is not None
    assert model.checkpoint.files == 4
    assert model.checkpoint.total_params == expected_params == model.params.total
    assert model.checkpoint.total_bytes == 2 * expected_params
    assert model.checkpoint.total_bytes == estimate_weights(spec, "bf16").total_bytes
    # the index file itself is a source too
    by_index = resolve(str(folder / "model.safetensors.index.json"))
    assert by_index.checkpoint is not None
    assert by_index.checkpoint.total_bytes == model.checkpoint.total_bytes


def test_a_missing_tensor_is_reported_not_hidden(tmp_path: Path) -> None:
    folder = model_folder(tmp_path, TINY_LLAMA)
    spec = spec_from_config(TINY_LLAMA)
    tensors = checkpoint_tensors(spec)
    dropped = tensors.pop("lm_head.weight")
    write_sparse_safetensors(folder / "model.safetensors", tensors)
    model = resolve(str(folder))
    missing = dropped[1][0] * dropped[1][1]  # 256 × 128
    (note,) = [n for n in model.notes if "MISMATCH" in n]
    assert f"{-missing:+,}" in note
    assert model.checkpoint is not None
    assert model.checkpoint.total_params == model.params.total - missing


def test_gptq_checkpoint_counts_packed_weights_and_equals_the_gptq_estimate(tmp_path: Path) -> None:
    config = {
        **TINY_LLAMA,
        "quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 128},
    }
    folder = model_folder(tmp_path, config)
    spec = spec_from_config(config)
    linears = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    write_sparse_safetensors(folder / "model.safetensors", gptq_tensors(spec, 4, 128, linears))
    model = resolve(str(folder))
    assert model.checkpoint is not None
    assert model.checkpoint.quantization == "gptq-4bit-g128"
    assert model.checkpoint.total_params == count_params(spec).total
    assert model.checkpoint.total_bytes == estimate_weights(spec, "gptq-4bit-g128").total_bytes


def test_inference_uses_the_checkpoint_bytes(tmp_path: Path) -> None:
    config = {
        **TINY_LLAMA,
        "quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 128},
    }
    folder = model_folder(tmp_path, config)
    spec = spec_from_config(config)
    write_sparse_safetensors(
        folder / "model.safetensors", gptq_tensors(spec, 4, 128, ("q_proj", "v_proj"))
    )
    model = resolve(str(folder))
    assert model.checkpoint is not None
    stored = checkpoint_weights(model.checkpoint)
    est = estimate_inference(
        spec, InferenceWorkload(context=64, dtype="fp16", stored_weights=stored)
    )
    assert est.breakdown.get("weights").bytes == model.checkpoint.total_bytes
    assert est.weights.scheme == "checkpoint"


@pytest.mark.parametrize(
    ("name", "dtype", "shape", "quant", "expected"),
    [
        # GPTQ 4-bit: eight values per int32
        ("m.q_proj.qweight", "I32", (16, 128), Quantization("gptq", 4, 128), 16 * 128 * 8),
        ("m.q_proj.qzeros", "I32", (1, 16), Quantization("gptq", 4, 128), 0),
        ("m.q_proj.scales", "F16", (1, 128), Quantization("gptq", 4, 128), 0),
        ("m.q_proj.g_idx", "I32", (128,), Quantization("gptq", 4, 128), 0),
        # GPTQ 8-bit: four per int32
        ("m.q_proj.qweight", "I32", (32, 128), Quantization("gptq", 8, 128), 32 * 128 * 4),
        # bitsandbytes 4-bit: two codes per byte, bookkeeping tensors hold none
        ("m.q_proj.weight", "U8", (8192, 1), Quantization("bitsandbytes", 4), 16384),
        ("m.q_proj.weight.absmax", "F32", (256,), Quantization("bitsandbytes", 4), 0),
        (
            "m.q_proj.weight.quant_state.bitsandbytes__nf4",
            "U8",
            (60,),
            Quantization("bitsandbytes", 4),
            0,
        ),
        # LLM.int8: one per byte, SCB row scales none
        ("m.q_proj.weight", "I8", (64, 128), Quantization("bitsandbytes", 8), 8192),
        ("m.q_proj.SCB", "F32", (64,), Quantization("bitsandbytes", 8), 0),
        # fp8 block scales (DeepSeek-V3 style)
        ("m.q_proj.weight", "F8_E4M3", (256, 128), Quantization("fp8"), 32768),
        ("m.q_proj.weight_scale_inv", "F32", (2, 1), Quantization("fp8"), 0),
        # MXFP4 experts (gpt-oss): 16 bytes of 32 codes per block
        ("m.experts.down_proj_blocks", "U8", (4, 90, 16), Quantization("mxfp4"), 4 * 90 * 32),
        ("m.experts.down_proj_scales", "U8", (4, 90), Quantization("mxfp4"), 0),
        # an unquantized checkpoint counts elements
        ("m.q_proj.weight", "BF16", (64, 128), None, 8192),
    ],
)
def test_stored_params_of_packings(
    name: str, dtype: str, shape: tuple[int, ...], quant: Quantization | None, expected: int
) -> None:
    assert stored_params(name, dtype, shape, quant) == expected


@pytest.mark.parametrize(
    ("qconfig", "label"),
    [
        ({"quant_method": "gptq", "bits": 4, "group_size": 128}, "gptq-4bit-g128"),
        ({"quant_method": "awq", "bits": 4, "group_size": 64}, "awq-4bit-g64"),
        ({"quant_method": "bitsandbytes", "load_in_4bit": True}, "bnb-4bit"),
        ({"quant_method": "bitsandbytes", "load_in_8bit": True}, "bnb-8bit"),
        ({"quant_method": "fp8", "weight_block_size": [128, 128]}, "fp8"),
        (
            {
                "quant_method": "compressed-tensors",
                "config_groups": {"group_0": {"weights": {"num_bits": 4}}},
            },
            "compressed-tensors",
        ),
    ],
)
def test_quantization_config_is_read(qconfig: dict[str, Any], label: str) -> None:
    q = quantization_from_config({"quantization_config": qconfig})
    assert q is not None and q.label == label
    assert quantization_from_config({}) is None


def test_safetensors_file_without_config_gives_header_counts(tmp_path: Path) -> None:
    spec = spec_from_config(TINY_LLAMA)
    write_sparse_safetensors(tmp_path / "weights.safetensors", checkpoint_tensors(spec))
    model = resolve(str(tmp_path / "weights.safetensors"))
    assert model.spec is None
    assert model.params.total == count_params(spec).total
    assert model.kind == "safetensors"


# --------------------------------------------------------------------------- bad files


def _header(entries: dict[str, Any]) -> bytes:
    raw = json.dumps(entries).encode()
    return len(raw).to_bytes(8, "little") + raw


GOOD = {"w": {"dtype": "F16", "shape": [2, 2], "data_offsets": [0, 8]}}
BAD_FILES: dict[str, bytes] = {
    "empty": b"",
    "shorter than the length prefix": b"\x01\x02\x03",
    "header length past the end": (10**6).to_bytes(8, "little") + b"{}",
    "header length past the cap": (2**62).to_bytes(8, "little") + b"{}",
    "non-UTF-8 header": (4).to_bytes(8, "little") + b"\xff\xfe{}",
    "JSON not an object": _header([1, 2]) + b"",  # type: ignore[arg-type]
    "malformed JSON": (5).to_bytes(8, "little") + b'{"w":',
    "unknown dtype": _header({"w": {"dtype": "Q9", "shape": [2], "data_offsets": [0, 2]}})
    + b"\0\0",
    "data truncated": _header(GOOD) + b"\0" * 5,
    "data too long": _header(GOOD) + b"\0" * 9,
    "offsets disagree with shape": _header(
        {"w": {"dtype": "F16", "shape": [2, 2], "data_offsets": [0, 6]}}
    )
    + b"\0" * 6,
    "negative dimension": _header({"w": {"dtype": "F16", "shape": [-2, 2], "data_offsets": [0, 8]}})
    + b"\0" * 8,
    "absurd shape": _header(
        {"w": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 8]}}
    )
    + b"\0" * 8,
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_is_one_clear_error(tmp_path: Path, case: str) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(BAD_FILES[case])
    with pytest.raises(SourceError) as info:
        resolve(str(path))
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("index", "problem"),
    [
        ("{not json", "malformed JSON"),
        ('{"weight_map": {}}', "weight_map"),
        ('{"weight_map": {"w": "missing.safetensors"}}', "missing"),
        ('{"weight_map": {"w": "../outside.safetensors"}}', "not a file in this folder"),
        ('["a list"]', "weight_map"),
    ],
)
def test_bad_index_is_one_clear_error(tmp_path: Path, index: str, problem: str) -> None:
    folder = model_folder(tmp_path, TINY_LLAMA)
    (folder / "model.safetensors.index.json").write_text(index)
    with pytest.raises(SourceError, match=problem):
        resolve(str(folder))

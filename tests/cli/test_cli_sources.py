"""The estimate commands accept weight files and adapters as SOURCE."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelmem.cli import main
from modelmem.memory.finetune import adapter_trainable_params
from modelmem.model.sources.adapter import adapter_from_dict
from modelmem.model.sources.hf_config import spec_from_config

from ..safetensors_builder import checkpoint_tensors, gptq_tensors, write_sparse_safetensors
from ..unit.test_safetensors_source import TINY_LLAMA

pytest.importorskip("safetensors")
pytest.importorskip("huggingface_hub")


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main([*args, "--json"]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


@pytest.fixture
def gptq_folder(tmp_path: Path) -> Path:
    config = {
        **TINY_LLAMA,
        "quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 128},
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    spec = spec_from_config(config)
    linears = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    write_sparse_safetensors(tmp_path / "model.safetensors", gptq_tensors(spec, 4, 128, linears))
    return tmp_path


def test_params_reports_the_headers(gptq_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(capsys, "params", str(gptq_folder))
    ck = data["checkpoint"]
    assert ck["params"] == data["total_params"]
    assert ck["quantization"] == "gptq-4bit-g128"
    assert data["weights_bytes"] == ck["bytes"] == sum(d["bytes"] for d in ck["bytes_by_dtype"])
    assert any("agree" in n for n in data["notes"])


def test_inference_defaults_to_the_checkpoint_weights(
    gptq_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stored = run_json(capsys, "inference", str(gptq_folder), "--context", "128")
    weights = next(c for c in stored["components"] if c["name"] == "weights")
    ck = run_json(capsys, "params", str(gptq_folder))["checkpoint"]
    assert weights["bytes"] == stored["weights_bytes"] == ck["bytes"]
    # an explicit --dtype estimates that scheme instead
    bf16 = run_json(capsys, "inference", str(gptq_folder), "--context", "128", "--dtype", "bf16")
    assert bf16["weights_bytes"] > stored["weights_bytes"]


def test_train_from_an_adapter_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    adapter = {
        "peft_type": "LORA",
        "r": 32,
        "lora_alpha": 64,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
        "base_model_name_or_path": "llama-3.1-8b",
    }
    (tmp_path / "adapter_config.json").write_text(json.dumps(adapter))
    data = run_json(capsys, "train", str(tmp_path), "--seq", "512")
    from modelmem.model.sources import resolve

    spec = resolve("llama-3.1-8b").spec
    assert spec is not None
    expected = adapter_trainable_params(spec, adapter_from_dict(adapter))
    assert data["trainable_params"] == data["trainable_params_adapter"] == expected
    # 32 layers × r·(in+out) over q (4096→4096), k, v (4096→1024), o (4096→4096)
    assert expected == 32 * 32 * ((4096 + 4096) * 2 + (4096 + 1024) * 2)
    params = run_json(capsys, "params", str(tmp_path / "adapter_config.json"))
    assert params["adapter"]["rank"] == 32 and params["total_params"] == 8_030_261_248


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("model.safetensors", b"\x00" * 4, "too short"),
        ("model.safetensors", (2**40).to_bytes(8, "little") + b"{}", "larger than the file"),
        ("adapter_config.json", b'{"peft_type": "IA3"}', "only LoRA"),
        ("adapter_config.json", b'{"r": 8, "target_modules": ["q_proj"]}', "base_model"),
    ],
)
def test_bad_sources_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes, problem: str
) -> None:
    (tmp_path / name).write_bytes(content)
    assert main(["params", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and problem in err and "Traceback" not in err


def test_header_only_safetensors_without_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_sparse_safetensors(
        tmp_path / "w.safetensors", checkpoint_tensors(spec_from_config(TINY_LLAMA))
    )
    data = run_json(capsys, "params", str(tmp_path / "w.safetensors"))
    assert data["kind"] == "safetensors" and data["total_params"] == data["checkpoint"]["params"]
    assert main(["inference", str(tmp_path / "w.safetensors")]) == 2  # no architecture


# --------------------------------------------------------------------------------- GGUF


def test_gguf_source_in_params_inference_and_train(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gguf = pytest.importorskip("gguf")
    from modelmem.memory.weights import estimate_weights

    from ..conftest import load_fixture
    from ..gguf_builder import gguf_layout, q4_k_m_types, write_gguf

    config = load_fixture("meta-llama/Llama-2-7b-hf")
    path = write_gguf(
        tmp_path / "llama-2-7b.Q4_K_M.gguf",
        gguf_layout(
            config,
            types=q4_k_m_types(config["num_hidden_layers"]),
            file_type=gguf.LlamaFileType.MOSTLY_Q4_K_M,
        ),
    )
    params = run_json(capsys, "params", str(path))
    assert params["kind"] == "gguf"
    assert params["total_params"] == 6_738_415_616  # = the config count (tests/oracle)
    # the file's tensors = llama.cpp's Q4_K_M rule as modelmem estimates it, to the byte
    expected = estimate_weights(spec_from_config(config), "gguf-q4_k_m").total_bytes
    assert params["checkpoint"]["bytes"] == params["weights_bytes"] == expected == 4_080_263_168
    served = run_json(capsys, "inference", str(path), "--context", "4096")
    assert served["engine"] == "llama.cpp"
    assert served["weights_bytes"] == expected
    trained = run_json(capsys, "train", str(path), "--method", "lora", "--seq", "256")
    assert trained["trainable_params"] > 0


def test_bad_gguf_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("gguf")
    path = tmp_path / "model.gguf"
    path.write_bytes(
        b"GGUF" + (3).to_bytes(4, "little") + (2**60).to_bytes(8, "little") + b"\0" * 8
    )
    assert main(["params", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err

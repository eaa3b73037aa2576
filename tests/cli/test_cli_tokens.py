"""`modelmem tokens` and `modelmem cost` as scripts use them: exit codes, JSON, errors."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from modelmem.cli import main

from ..conftest import FIXTURES
from ..unit.test_compute import TINY_LLAMA, TINY_LLAMA_NMM
from ..unit.test_tokens import (
    CORPUS,
    needs_cl100k,
    sample_text,
    train_tiny_bpe,
    write_gguf_from_tokenizer_json,
)


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def run_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> Any:
    code, out, err = run([*args, "--json"], capsys)
    assert code == 0, err
    return json.loads(out)


def bad(args: list[str], capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    code, out, err = run(args, capsys)
    assert code == 2, (out, err)
    assert err.startswith("modelmem: error:") and len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


# --------------------------------------------------------------------------------- tokens


@needs_cl100k
def test_tokens_cl100k_json(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(
        ["tokens", "The evil that men do lives after them", "--tokenizer", "cl100k_base"], capsys
    )
    assert data["ids"] == [791, 14289, 430, 3026, 656, 6439, 1306, 1124]
    assert data["count"] == 8


@needs_cl100k
def test_tokens_table_prints_the_count_and_pieces(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["tokens", "Hello world", "--tokenizer", "cl100k_base", "--pieces"], capsys)
    assert code == 0
    assert "2 tokens" in out and "' world'" in out


def test_tokens_tiny_bpe_exact_ids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reference = train_tiny_bpe(tmp_path / "tokenizer.json")
    text = CORPUS[1]
    data = run_json(["tokens", text, "--tokenizer", str(tmp_path / "tokenizer.json")], capsys)
    assert data["ids"] == reference.encode(text).ids
    assert data["count"] == len(data["ids"])
    write_gguf_from_tokenizer_json(tmp_path / "tokenizer.json", tmp_path / "m.gguf")
    via_gguf = run_json(["tokens", text, "--tokenizer", str(tmp_path / "m.gguf")], capsys)
    assert via_gguf["ids"] == data["ids"]


def test_tokens_file_and_stdin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    train_tiny_bpe(tmp_path / "tokenizer.json")
    tok = str(tmp_path / "tokenizer.json")
    text = sample_text(5, 800)
    (tmp_path / "in.txt").write_text(text, encoding="utf-8")
    whole = run_json(["tokens", text, "--tokenizer", tok], capsys)["count"]
    streamed = run_json(["tokens", "--file", str(tmp_path / "in.txt"), "--tokenizer", tok], capsys)
    assert streamed["count"] == whole and streamed["ids"] is None
    assert streamed["stream"]["bytes"] == len(text.encode())
    with_ids = run_json(
        ["tokens", "--file", str(tmp_path / "in.txt"), "--tokenizer", tok, "--ids"], capsys
    )
    assert len(with_ids["ids"]) == whole
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    assert run_json(["tokens", "-", "--tokenizer", tok], capsys)["count"] == whole


def test_tokens_with_a_model_folder_uses_its_tokenizer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "config.json").write_text(json.dumps(TINY_LLAMA))
    reference = train_tiny_bpe(tmp_path / "tokenizer.json")
    data = run_json(["tokens", CORPUS[0], "--model", str(tmp_path), "--completion", "100"], capsys)
    n = len(reference.encode(CORPUS[0]).ids)
    assert data["count"] == n
    assert data["context_length"] == 256
    assert data["fits"] is (n + 100 <= 256)
    assert data["remaining_tokens"] == 256 - n - 100
    # 2 layers × (K+V) 2 × 2 kv heads × 16 dims × 2 B = 256 B per token
    assert data["kv_cache_bytes_per_token"] == 256
    assert data["kv_cache_bytes"] == 256 * (n + 100)
    over = run_json(["tokens", CORPUS[0], "--model", str(tmp_path), "--completion", "300"], capsys)
    assert over["fits"] is False and over["remaining_tokens"] < 0


@needs_cl100k
def test_tokens_with_catalogue_model_and_explicit_tokenizer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = run_json(
        ["tokens", "hi", "--tokenizer", "cl100k_base", "--model", "llama-3.1-8b"], capsys
    )
    assert data["context_length"] == 131_072 and data["fits"] is True
    assert data["kv_cache_bytes"] == 131_072 * data["count"]


def test_tokens_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train_tiny_bpe(tmp_path / "tokenizer.json")
    tok = str(tmp_path / "tokenizer.json")
    bad(["tokens", "x", "--tokenizer", "no_such_encoding"], capsys, "no_such_encoding")
    bad(["tokens", "", "--tokenizer", tok], capsys, "text", "empty")
    bad(["tokens", "--tokenizer", tok], capsys, "TEXT")
    bad(["tokens", "--file", str(tmp_path / "missing.txt"), "--tokenizer", tok], capsys, "missing")
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))
    bad(["tokens", "--file", str(tmp_path / "latin1.txt"), "--tokenizer", tok], capsys, "UTF-8")
    bad(["tokens", "x", "--tokenizer", tok, "--completion", "5"], capsys, "--model")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(json.dumps(TINY_LLAMA))
    bad(["tokens", "x", "--tokenizer", tok, "--model", str(tmp_path / "m"), "--completion", "-3"],
        capsys, "completion", "-3")  # fmt: skip
    bad(["tokens", "x", "--tokenizer", tok, "--model", "7B"], capsys, "plain size")


def test_tokens_without_a_tokenizer_use_cl100k_and_say_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["tokens", "The evil that men do lives after them", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    assert data["tokenizer"] == "cl100k_base"
    assert data["ids"] == [791, 14289, 430, 3026, 656, 6439, 1306, 1124]
    assert any("cl100k_base" in n and "default" in n for n in data["notes"])


def test_tokens_model_without_tokenizer_asks_for_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "mixtral"
    shutil.copytree(FIXTURES / "mistralai__Mixtral-8x7B-v0.1", folder)
    (folder / "tokenizer.json").unlink(missing_ok=True)
    bad(["tokens", "x", "--model", str(folder)], capsys, "--tokenizer is needed")


# ----------------------------------------------------------------------------------- cost


def test_cost_explicit_rates_hand_derived(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "config.json").write_text(json.dumps(TINY_LLAMA))
    data = run_json(
        ["cost", str(tmp_path), "--tflops", "1e-6", "--bandwidth", "100kB/s",
         "--prompt", "16", "--batch", "2", "--mbu", "1", "--price-per-hour", "3.6",
         "--train-tokens", "1000", "--devices", "2"],
        capsys,
    )  # fmt: skip
    # 1e-6 TFLOP/s = 1e6 FLOP/s; see tests/unit/test_compute.py for the derivations
    assert data["device"]["flops_per_s"] == pytest.approx(1e6)
    assert data["matmul_params"] == TINY_LLAMA_NMM
    assert data["prefill"]["flops_per_sequence"] == 3_870_720
    assert data["decode"]["flops_per_token"] == 245_760
    assert data["decode"]["step_bytes"] == 238_208 + 8_192
    assert data["decode"]["step_s"] == pytest.approx(2.464)
    assert data["decode"]["bound"] == "memory bandwidth"
    assert data["decode"]["cost_per_million_tokens"] == pytest.approx(1e3 * 2.464 / 2)
    assert data["training"]["seconds"] == pytest.approx(725.76)
    assert data["training"]["cost"] == pytest.approx(3.6 * 2 * 725.76 / 3600)


def test_cost_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        ["cost", "llama-3.1-8b", "--tflops", "989", "--bandwidth", "3.35TB/s"], capsys
    )
    assert code == 0 and "decode tokens/s" in out and "MFU 0.5" in out


def test_cost_with_a_catalogue_device(capsys: pytest.CaptureFixture[str]) -> None:
    hardware = pytest.importorskip("modelmem.hardware", reason="device catalogue not present")
    device = hardware.get_device("h100-sxm")
    data = run_json(["cost", "llama-3.1-8b", "--device", "h100-sxm"], capsys)
    assert data["device"]["flops_per_s"] == device.bf16_flops
    assert data["device"]["bandwidth_bytes_per_s"] == device.bandwidth_bytes_per_s
    assert data["decode"]["memory_s"] == pytest.approx(
        data["decode"]["step_bytes"] / (device.bandwidth_bytes_per_s * 0.8)
    )
    assert data["fits_one_device"] is True  # 16 GB of weights on an 80 GB device


def test_cost_errors(capsys: pytest.CaptureFixture[str]) -> None:
    bad(["cost", "llama-3.1-8b"], capsys, "--device")
    bad(["cost", "llama-3.1-8b", "--tflops", "989"], capsys, "--bandwidth")
    args = ["cost", "llama-3.1-8b", "--tflops", "989", "--bandwidth", "3.35TB/s"]
    bad([*args, "--mfu", "2"], capsys, "mfu")
    bad([*args, "--batch", "0"], capsys, "batch")
    bad([*args, "--bandwidth", "fast"], capsys, "bandwidth")
    bad([*args, "--train-tokens", "-5"], capsys, "train_tokens")
    bad([*args, "--devices", "8"], capsys, "--train-tokens")
    bad(["cost", "7B", "--tflops", "1", "--bandwidth", "1TB/s"], capsys, "plain size")

"""Every entry point answers bad input with one clear line: exit code 2 on the command line,
a 4xx with a one-line ``{"error": ...}`` body from the HTTP API, never a traceback.

The cases are data (``corpus.py``). A few run again as subprocesses under an address-space
limit, to show that refusing them does not allocate what the input claims; the subprocess
timeout is only a guard against a hang, not a speed assertion.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modelmem.cli import main

from .corpus import (
    ADAPTER_CASES,
    API_CASES,
    CLI_CASES,
    CONFIG_CASES,
    GGUF_CASES,
    SAFETENSORS_CASES,
)

EXIT_BAD_INPUT = 2


def _ids(cases: list[Any]) -> list[str]:
    return [case[0] for case in cases]


def assert_one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = main(argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == EXIT_BAD_INPUT, f"exit {code}: {err.strip()!r}"
    assert len(lines) == 1, err
    assert lines[0].startswith("modelmem: error: "), lines[0]
    assert "Traceback" not in err and "internal error" not in err
    assert len(lines[0]) < 2000, "the one line should stay readable"
    assert out == ""
    return lines[0]


@pytest.mark.parametrize(("name", "argv"), CLI_CASES, ids=_ids(CLI_CASES))
def test_cli_options(name: str, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_line_error(argv, capsys)


@pytest.mark.parametrize(("name", "content"), CONFIG_CASES, ids=_ids(CONFIG_CASES))
@pytest.mark.parametrize("command", ["params", "inference"])
def test_config_json(
    name: str, content: bytes, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(content)
    assert_one_line_error([command, str(path)], capsys)


@pytest.mark.parametrize(
    ("name", "file", "content"), SAFETENSORS_CASES, ids=_ids(SAFETENSORS_CASES)
)
def test_safetensors(
    name: str, file: str, content: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / file
    path.write_bytes(content)
    assert_one_line_error(["params", str(path)], capsys)


@pytest.mark.parametrize(("name", "content"), GGUF_CASES, ids=_ids(GGUF_CASES))
def test_gguf(
    name: str, content: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("gguf")
    path = tmp_path / "model.gguf"
    path.write_bytes(content)
    assert_one_line_error(["params", str(path)], capsys)


@pytest.mark.parametrize(("name", "content"), ADAPTER_CASES, ids=_ids(ADAPTER_CASES))
def test_adapter_config(
    name: str, content: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "adapter_config.json").write_bytes(content)
    assert_one_line_error(["train", str(tmp_path), "--recipe", "pure-bf16"], capsys)


def test_lora_rank_zero_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["train", "llama-3.1-8b", "--method", "lora", "--recipe", "pure-bf16"]
    assert_one_line_error([*argv, "--lora-rank", "0"], capsys)


def test_a_good_adapter_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # control for the adapter cases: the same folder with a valid file gives an answer
    from .corpus import _adapter

    (tmp_path / "adapter_config.json").write_bytes(_adapter())
    assert main(["train", str(tmp_path), "--recipe", "pure-bf16", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["trainable_params"] > 0


# ------------------------------------------------------------------------------- HTTP API


@pytest.fixture(scope="module")
def client() -> Any:
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from modelmem.web.app import create_app

    return TestClient(create_app(), raise_server_exceptions=False)


@pytest.mark.parametrize(("name", "method", "path", "body"), API_CASES, ids=_ids(API_CASES))
def test_api(name: str, method: str, path: str, body: Any, client: Any) -> None:
    if isinstance(body, bytes):
        response = client.request(
            method, path, content=body, headers={"content-type": "application/json"}
        )
    elif body is None:
        response = client.request(method, path)
    else:
        response = client.request(method, path, json=body)
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    error = response.json()["error"]
    assert isinstance(error, str) and error and "\n" not in error
    assert "Traceback" not in response.text


# ------------------------------------------------------------- subprocesses, bounded memory

# Headers that claim huge sizes: refusing them must not try to allocate what they claim.
LIMIT_BYTES = 1536 * 2**20
BOUNDED: list[tuple[str, str, bytes]] = [
    (
        "safetensors-length-absurd",
        "model.safetensors",
        dict((c[0], c[2]) for c in SAFETENSORS_CASES)["length-absurd"],
    ),
    (
        "safetensors-absurd-shape",
        "model.safetensors",
        dict((c[0], c[2]) for c in SAFETENSORS_CASES)["absurd-shape"],
    ),
    ("gguf-string-length-absurd", "model.gguf", dict(GGUF_CASES)["string-length-absurd"]),
    ("gguf-array-length-absurd", "model.gguf", dict(GGUF_CASES)["array-length-absurd"]),
    ("gguf-kv-count-absurd", "model.gguf", dict(GGUF_CASES)["kv-count-absurd"]),
    ("config-deep-nesting", "config.json", dict(CONFIG_CASES)["deep-nesting"]),
    ("config-layers-absurd", "config.json", dict(CONFIG_CASES)["layers-absurd"]),
]


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT_BYTES, LIMIT_BYTES))


def _run_limited(argv: list[str]) -> subprocess.CompletedProcess[str]:
    code = "import sys; from modelmem.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {k: v for k, v in os.environ.items() if k != "MODELMEM_DEBUG"}
    return subprocess.run(
        [sys.executable, "-c", code, *argv],
        capture_output=True,
        text=True,
        preexec_fn=_limit_memory,  # the child runs no threads before exec
        timeout=120,  # a hang guard only
        env=env,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS semantics")
def test_control_a_good_estimate_runs_under_the_limit() -> None:
    done = _run_limited(["inference", "llama-3.1-8b", "--json"])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["total_bytes"] > 0


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS semantics")
@pytest.mark.parametrize(("name", "file", "content"), BOUNDED, ids=_ids(BOUNDED))
def test_bounded_memory_in_a_subprocess(
    name: str, file: str, content: bytes, tmp_path: Path
) -> None:
    path = tmp_path / file
    path.write_bytes(content)
    done = _run_limited(["params", str(path)])
    lines = done.stderr.strip().splitlines()
    assert done.returncode == EXIT_BAD_INPUT, done.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("modelmem: error: "), done.stderr[-2000:]
    assert "MemoryError" not in done.stderr

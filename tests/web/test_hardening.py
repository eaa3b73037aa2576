"""The web server against hostile requests: one clear 4xx, never a 500, nothing of the
server's files revealed, bounded concurrency."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from modelmem.cli import main
from modelmem.web.app import ConcurrencyLimit, create_app

ENDPOINTS = ["params", "inference", "train", "fit", "plan", "tokens", "inference/sweep",
             "train/sweep"]  # fmt: skip


@pytest.fixture
def client() -> TestClient:
    return TestClient(create_app())


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("length", [256, 300, 5000])
def test_an_over_long_source_is_a_4xx_on_every_endpoint(
    client: TestClient, endpoint: str, length: int
) -> None:
    body: dict[str, Any] = {"source": "a" * length, "device": "h100", "text": "hi",
                            "values": [1]}  # fmt: skip
    allowed = {
        "params": {"source"},
        "inference": {"source"},
        "train": {"source"},
        "fit": {"source", "device"},
        "plan": {"source", "device"},
        "tokens": {"source", "text"},
        "inference/sweep": {"source", "values"},
        "train/sweep": {"source", "values"},
    }[endpoint]
    response = client.post(f"/api/{endpoint}", json={k: body[k] for k in allowed})
    assert 400 <= response.status_code < 500, response.text
    assert "source" in response.json()["error"]
    # and the connection still answers the next request
    assert client.get("/api/devices").status_code == 200


def test_files_of_the_server_are_never_read_nor_revealed(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secret-model").mkdir()
    (tmp_path / "secret-model" / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (tmp_path / "pasted config.json").mkdir()
    (tmp_path / "tokenizer.json").write_text("{not a tokenizer")
    present = client.post("/api/params", json={"source": "secret-model"})
    absent = client.post("/api/params", json={"source": "other-model"})
    # the same answer whether the folder exists or not: nothing was looked up on disk
    assert present.status_code == absent.status_code == 404
    assert present.json()["error"].replace("secret", "other") == absent.json()["error"]
    config = {"model_type": "gpt2", "n_layer": 2, "n_embd": 64, "n_head": 2,
              "vocab_size": 100, "n_positions": 128}  # fmt: skip
    response = client.post("/api/tokens", json={"text": "hi", "source": config})
    # a pasted config names no tokenizer: the answer says so; ./tokenizer.json is not read
    assert response.status_code == 400 and "tokenizer" in response.json()["error"]
    assert "not a tokenizer" not in response.text


def test_requests_over_the_concurrency_limit_wait_then_get_429() -> None:
    started: list[int] = []
    release = asyncio.Event()

    async def slow_app(scope: Any, receive: Any, send: Any) -> None:
        started.append(1)
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def run() -> list[int]:
        limited = ConcurrencyLimit(slow_app, limit=2, wait_s=0.2)
        transport = httpx.ASGITransport(app=limited)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            calls = [asyncio.create_task(c.post("/api/x")) for _ in range(3)]
            await asyncio.sleep(0.5)  # the third waited its 0.2 s and was refused
            release.set()
            return [r.status_code for r in await asyncio.gather(*calls)]

    codes = asyncio.run(run())
    assert sorted(codes) == [200, 200, 429] and len(started) == 2


@pytest.mark.parametrize("host", ["300.1.1.1", "a b", "-bad-", "x" * 300])
def test_serve_refuses_a_bad_host_in_one_line(
    host: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--host", host]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "host=" in err


def test_serve_warns_when_it_listens_beyond_this_machine(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)
    assert main(["serve", "--host", "0.0.0.0", "--port", "0"]) == 0
    assert "no authentication" in capsys.readouterr().err
    assert os.environ.get("MODELMEM_DEBUG") is None

"""Hub repo ids through huggingface_hub, against an injected fake Hub (never the live one).

The fake answers the three kinds of request huggingface_hub makes here: HEAD and GET of
``/{repo}/resolve/{revision}/{file}`` (with ``Range`` for safetensors headers), and the
error codes the Hub sends for gated, missing and private repos.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelmem.cli import main
from modelmem.errors import SourceError
from modelmem.model.params import count_params
from modelmem.model.sources import hub as hub_module
from modelmem.model.sources import resolve
from modelmem.model.sources.hf_config import spec_from_config
from modelmem.model.sources.hub import parse_hub_ref

from ..safetensors_builder import checkpoint_tensors, write_sparse_safetensors
from .test_safetensors_source import TINY_LLAMA

hub = pytest.importorskip("huggingface_hub")
httpx = pytest.importorskip("httpx2")

COMMIT = "0123456789abcdef0123456789abcdef01234567"
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")


class FakeHub:
    """Repos as files in memory; a few repo names stand for the Hub's error answers."""

    def __init__(self) -> None:
        self.repos: dict[str, dict[str, bytes]] = {}
        self.requests: list[str] = []

    def handle(self, request: Any) -> Any:
        self.requests.append(f"{request.method} {request.url.path}")
        match = _RESOLVE.match(request.url.path)
        if match is None:
            return httpx.Response(404, json={"error": "not found"})
        repo, name = match["repo"], match["file"]
        if repo == "org/gated":
            return httpx.Response(
                403, headers={"X-Error-Code": "GatedRepo"}, json={"error": "gated"}
            )
        if repo == "org/offline":
            raise httpx.ConnectError("no route to host", request=request)
        if repo not in self.repos:
            return httpx.Response(
                401, headers={"X-Error-Code": "RepoNotFound"}, json={"error": "not found"}
            )
        if match["rev"] not in ("main", COMMIT):
            return httpx.Response(
                404, headers={"X-Error-Code": "RevisionNotFound"}, json={"error": "revision"}
            )
        files = self.repos[repo]
        if name not in files:
            return httpx.Response(
                404, headers={"X-Error-Code": "EntryNotFound"}, json={"error": "entry"}
            )
        body = files[name]
        headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{len(body)}-{hash(body) & 0xFFFF}"'}
        ranged = request.headers.get("range")
        if ranged:
            start, _, end = ranged.removeprefix("bytes=").partition("-")
            body = body[int(start) : int(end) + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{len(files[name])}"
        headers["Content-Length"] = str(len(body))
        return httpx.Response(
            206 if ranged else 200,
            headers=headers,
            content=b"" if request.method == "HEAD" else body,
        )


@pytest.fixture
def fake_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    from huggingface_hub import constants
    from huggingface_hub.utils import _http

    fake = FakeHub()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    # the fake answers for the Hub's host, so the name lookup must not decide
    monkeypatch.setattr(hub_module, "endpoint_unreachable", lambda: None)
    monkeypatch.setattr(_http.time, "sleep", lambda _s: None)  # no real back-off waits
    hub_module.use_hub_transport(httpx.MockTransport(fake.handle))
    yield fake
    hub_module.use_hub_transport()
    hub.close_session()


def _safetensors_bytes(tmp_path: Path, config: dict[str, Any]) -> bytes:
    """A full small safetensors file (header and zero data) for the config."""
    path = tmp_path / "model.safetensors"
    write_sparse_safetensors(path, checkpoint_tensors(spec_from_config(config), "BF16"))
    return path.read_bytes()


def test_repo_id_reads_config_and_headers(fake_hub: FakeHub, tmp_path: Path) -> None:
    fake_hub.repos["org/tiny"] = {
        "config.json": json.dumps(TINY_LLAMA).encode(),
        "model.safetensors": _safetensors_bytes(tmp_path, TINY_LLAMA),
    }
    model = resolve("org/tiny")
    assert model.kind == "hub"
    assert model.checkpoint is not None
    expected = count_params(spec_from_config(TINY_LLAMA)).total
    assert model.params.total == model.checkpoint.total_params == expected
    # headers only: every GET of the weights file asked for a byte range
    weight_gets = [r for r in fake_hub.requests if r.endswith("model.safetensors")]
    assert weight_gets and all(r.startswith(("GET", "HEAD")) for r in weight_gets)
    # the config is now in the standard cache: offline, the same source still resolves
    from huggingface_hub import constants

    offline = pytest.MonkeyPatch()
    offline.setattr(constants, "HF_HUB_OFFLINE", True)
    offline.setattr(constants, "is_offline_mode", lambda: True)
    try:
        again = resolve("org/tiny")
    finally:
        offline.undo()
    assert again.params.total == expected
    assert any("HF_HUB_OFFLINE" in n for n in again.notes)


def test_revision_and_prefix(fake_hub: FakeHub, tmp_path: Path) -> None:
    fake_hub.repos["org/tiny"] = {"config.json": json.dumps(TINY_LLAMA).encode()}
    model = resolve(f"hf://org/tiny@{COMMIT}")
    assert model.spec is not None and model.spec.num_layers == 2
    assert any("no safetensors" in n for n in model.notes)
    with pytest.raises(SourceError, match="no such revision"):
        resolve("org/tiny@v9")


def test_adapter_repo_resolves_its_base(fake_hub: FakeHub) -> None:
    fake_hub.repos["org/adapter"] = {
        "adapter_config.json": json.dumps(
            {
                "peft_type": "LORA",
                "r": 8,
                "target_modules": ["q_proj", "v_proj"],
                "base_model_name_or_path": "meta-llama/Llama-3.1-8B",
            }
        ).encode()
    }
    model = resolve("org/adapter")
    assert model.adapter is not None and model.adapter.rank == 8
    assert model.params.total == 8_030_261_248  # the catalogue's base model


@pytest.mark.parametrize(
    ("repo", "message"),
    [
        ("org/gated", "gated repo: accept its licence"),
        ("org/private-or-missing", "no such repo, or it is private"),
        ("org/offline", "cannot reach huggingface.co"),
    ],
)
def test_hub_failures_are_one_clear_line(fake_hub: FakeHub, repo: str, message: str) -> None:
    with pytest.raises(SourceError, match=message) as info:
        resolve(repo)
    assert "\n" not in str(info.value)


def test_repo_without_config(fake_hub: FakeHub) -> None:
    fake_hub.repos["org/empty"] = {"README.md": b"hello"}
    with pytest.raises(SourceError, match=r"neither config\.json nor adapter_config\.json"):
        resolve("org/empty")


def test_cli_exit_code_for_a_gated_repo(
    fake_hub: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["params", "org/gated"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "HF_TOKEN" in err


def test_hub_access_can_be_refused() -> None:
    with pytest.raises(SourceError, match="Hub access is off"):
        resolve("org/anything", allow_hub=False)


@pytest.mark.parametrize(
    ("text", "repo", "revision"),
    [
        ("meta-llama/Llama-3.1-8B", "meta-llama/Llama-3.1-8B", None),
        ("hf://Qwen/Qwen3-8B@main", "Qwen/Qwen3-8B", "main"),
        ("org/name@0123abc", "org/name", "0123abc"),
    ],
)
def test_parse_hub_ref(text: str, repo: str, revision: str | None) -> None:
    ref = parse_hub_ref(text)
    assert ref is not None and (ref.repo_id, ref.revision) == (repo, revision)


@pytest.mark.parametrize("text", ["a/b/c", "../etc", "org/..", "/abs/path", "org/name@bad rev"])
def test_not_hub_refs(text: str) -> None:
    assert parse_hub_ref(text) is None


def test_no_network_is_said_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed name lookup of the Hub's host ends the request before huggingface_hub's
    retries; nothing is sent."""
    import socket

    from huggingface_hub import constants

    def no_resolver(*_args: Any, **_kwargs: Any) -> Any:
        raise socket.gaierror(-2, "Name or service not known")

    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(socket, "getaddrinfo", no_resolver)
    sent: list[str] = []
    hub_module.use_hub_transport(
        httpx.MockTransport(lambda r: sent.append(str(r.url)) or httpx.Response(500))
    )
    try:
        with pytest.raises(SourceError, match="cannot be resolved") as info:
            resolve("org/anything")
    finally:
        hub_module.use_hub_transport()
        hub.close_session()
    assert "HF_HUB_OFFLINE" in str(info.value) and "\n" not in str(info.value)
    assert not [url for url in sent if "/resolve/" in url]


def test_a_proxy_skips_the_name_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def no_resolver(*_args: Any, **_kwargs: Any) -> Any:
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_resolver)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    assert hub_module.endpoint_unreachable() is None
    monkeypatch.delenv("HTTPS_PROXY")
    for name in ("https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert "cannot be resolved" in (hub_module.endpoint_unreachable() or "")


# ---------------------------------------------------------------- timeouts, no retries


@pytest.fixture
def failing_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """A Hub whose every request fails as the test says; real back-off sleeps would
    show in the elapsed time, so they are left in."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setattr(hub_module, "endpoint_unreachable", lambda: None)
    sent: list[str] = []
    yield sent
    hub_module.use_hub_transport()
    hub.close_session()


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (lambda r: httpx.ConnectError("connection refused", request=r), "cannot reach"),
        (lambda r: httpx.ProxyError("proxy refused", request=r), "cannot reach"),
        (lambda r: httpx.ReadTimeout("no answer", request=r), "no answer from"),
        (lambda r: httpx.ConnectTimeout("no answer", request=r), "no answer from"),
    ],
)
def test_a_network_failure_is_one_line_at_once(
    failing_hub: list[str], failure: Any, message: str
) -> None:
    import time

    def handle(request: Any) -> Any:
        failing_hub.append(str(request.url))
        raise failure(request)

    hub_module.use_hub_transport(httpx.MockTransport(handle))
    started = time.monotonic()
    with pytest.raises(SourceError, match=message) as info:
        resolve("org/anything")
    assert time.monotonic() - started < 2, "no back-off retries"
    assert len(failing_hub) == 1, failing_hub
    assert "\n" not in str(info.value) and "org/anything" in str(info.value)


def test_requests_carry_the_bounded_timeouts(failing_hub: list[str]) -> None:
    seen: list[dict[str, float]] = []

    def handle(request: Any) -> Any:
        seen.append(request.extensions["timeout"])
        raise httpx.ConnectError("refused", request=request)

    hub_module.use_hub_transport(httpx.MockTransport(handle))
    with pytest.raises(SourceError):
        resolve("org/anything")
    assert seen and seen[0]["connect"] == hub_module.HUB_CONNECT_TIMEOUT_S
    assert seen[0]["read"] == hub_module.HUB_READ_TIMEOUT_S


def test_a_repo_read_stops_at_its_deadline(
    failing_hub: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a Hub that answers 503 forever: huggingface_hub retries it; the deadline ends it
    from huggingface_hub.utils import _http

    clock = [0.0]
    monkeypatch.setattr(hub_module.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(_http.time, "sleep", lambda s: clock.__setitem__(0, clock[0] + s))

    def handle(request: Any) -> Any:
        failing_hub.append(str(request.url))
        clock[0] += hub_module.HUB_READ_TIMEOUT_S
        return httpx.Response(503)

    hub_module.use_hub_transport(httpx.MockTransport(handle))
    with pytest.raises(SourceError, match="no complete answer within") as info:
        resolve("org/anything")
    assert clock[0] <= hub_module.HUB_DEADLINE_S + 2 * hub_module.HUB_READ_TIMEOUT_S
    assert "\n" not in str(info.value)


def test_a_resolver_that_never_answers_costs_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket
    import threading
    import time

    release = threading.Event()

    def stuck_resolver(*_args: Any, **_kwargs: Any) -> Any:
        release.wait(30)
        raise socket.gaierror(-3, "Temporary failure in name resolution")

    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(socket, "getaddrinfo", stuck_resolver)
    monkeypatch.setattr(hub_module, "HUB_CONNECT_TIMEOUT_S", 0.2)
    started = time.monotonic()
    try:
        assert "did not resolve within" in (hub_module.endpoint_unreachable() or "")
    finally:
        release.set()
    assert time.monotonic() - started < 2

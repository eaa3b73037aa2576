"""The HTTP API as a script uses it: the same JSON as the command line, one-line errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

from modelmem.cli import main
from modelmem.web.app import create_app

from ..conftest import FIXTURES, load_fixture


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app())


def cli_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> Any:
    code = main([*args, "--json"])
    out, err = capsys.readouterr()
    data = json.loads(out)
    # fit's exit code is its verdict (1: does not fit); every other answer exits 0
    assert code == (1 if args[0] == "fit" and data.get("fits") is False else 0), err
    return data


# Each case: endpoint, body, the command line with the same options.
SAME_AS_CLI: list[tuple[str, dict[str, Any], list[str]]] = [
    ("/api/params", {"source": "llama-3.1-8b"}, ["params", "llama-3.1-8b"]),
    (
        "/api/params",
        {"source": "7B", "dtype": "fp32", "optimizer": "sgd"},
        ["params", "7B", "--dtype", "fp32", "--optimizer", "sgd"],
    ),
    ("/api/inference", {"source": "llama-3.1-8b"}, ["inference", "llama-3.1-8b"]),
    (
        "/api/inference",
        {
            "source": "qwen2.5-7b",
            "dtype": "awq-4bit-g128",
            "kv_dtype": "fp8",
            "batch": 8,
            "context": 32768,
            "memory": "24GiB",
        },
        [
            "inference",
            "qwen2.5-7b",
            "--dtype",
            "awq-4bit-g128",
            "--kv-dtype",
            "fp8",
            "--batch",
            "8",
            "--context",
            "32768",
            "--memory",
            "24GiB",
        ],
    ),
    (
        "/api/inference",
        {"source": "llama-3.1-8b", "engine": "vllm", "memory": "80GB"},
        ["inference", "llama-3.1-8b", "--engine", "vllm", "--memory", "80GB"],
    ),
    ("/api/train", {"source": "llama-3.1-8b"}, ["train", "llama-3.1-8b"]),
    (
        "/api/train",
        {
            "source": "llama-3.1-8b",
            "method": "qlora",
            "lora_rank": 64,
            "batch": 4,
            "seq": 4096,
            "checkpointing": True,
            "optimizer": "adamw-8bit",
            "memory": "24GiB",
        },
        [
            "train",
            "llama-3.1-8b",
            "--method",
            "qlora",
            "--lora-rank",
            "64",
            "--batch",
            "4",
            "--seq",
            "4096",
            "--checkpointing",
            "--optimizer",
            "adamw-8bit",
            "--memory",
            "24GiB",
        ],
    ),
    (
        "/api/train",
        {"source": "llama-3.1-8b", "zero": 3, "devices": 8, "recipe": "mixed-bf16"},
        ["train", "llama-3.1-8b", "--zero", "3", "--devices", "8", "--recipe", "mixed-bf16"],
    ),
    (
        "/api/fit",
        {"source": "llama-3.1-70b", "device": "h100", "count": 4},
        ["fit", "llama-3.1-70b", "--device", "h100", "--count", "4"],
    ),
    (
        "/api/fit",
        {"source": "llama-3.1-8b", "device": "rtx-4090", "method": "lora", "seq": 1024},
        ["fit", "llama-3.1-8b", "--device", "rtx-4090", "--method", "lora", "--seq", "1024"],
    ),
    (
        "/api/plan",
        {"source": "llama-3.1-8b", "device": "rtx-4090"},
        ["plan", "llama-3.1-8b", "--device", "rtx-4090"],
    ),
    (
        "/api/plan",
        {"source": "llama-3.1-8b", "device": "a100-80gb", "goal": "qlora", "top": 3},
        ["plan", "llama-3.1-8b", "--device", "a100-80gb", "--goal", "qlora", "--top", "3"],
    ),
]


@pytest.mark.parametrize(
    ("path", "body", "args"), SAME_AS_CLI, ids=[" ".join(c[2]) for c in SAME_AS_CLI]
)
def test_endpoint_answers_with_the_cli_json(
    client: TestClient,
    path: str,
    body: dict[str, Any],
    args: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == cli_json(args, capsys)


@pytest.mark.parametrize(
    ("path", "args"),
    [
        ("/api/devices", ["devices"]),
        (
            "/api/devices?kind=consumer&min_memory=20GB",
            ["devices", "--kind", "consumer", "--min-memory", "20GB"],
        ),
        ("/api/models", ["models"]),
        ("/api/models?family=qwen2", ["models", "--family", "qwen2"]),
        ("/api/formats", ["formats"]),
        ("/api/formats?family=ggml", ["formats", "--family", "ggml"]),
    ],
)
def test_catalogues_answer_with_the_cli_json(
    client: TestClient, path: str, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    response = client.get(path)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data == cli_json(args, capsys)
    assert len(data) > 0


def test_pasted_config_equals_the_config_file(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    hub_id = "mistralai/Mixtral-8x7B-v0.1"
    config = load_fixture(hub_id)
    folder = FIXTURES / hub_id.replace("/", "__")
    pasted = client.post("/api/params", json={"source": config}).json()
    from_file = cli_json(["params", str(folder / "config.json")], capsys)
    assert pasted["total_params"] == from_file["total_params"] == 46_702_792_704
    assert pasted["components"] == from_file["components"]
    answer = client.post("/api/inference", json={"source": config, "batch": 2, "context": 4096})
    cli = cli_json(["inference", str(folder), "--batch", "2", "--context", "4096"], capsys)
    assert answer.status_code == 200
    data = answer.json()
    assert data["total_bytes"] == cli["total_bytes"]
    assert data["components"] == cli["components"]
    assert data["kv_cache_bytes_per_token"] == cli["kv_cache_bytes_per_token"]


def test_sweep_points_equal_single_estimates(client: TestClient) -> None:
    values = [512, 2048, 8192]
    sweep = client.post(
        "/api/inference/sweep",
        json={"source": "llama-3.1-8b", "batch": 2, "axis": "context", "values": values},
    ).json()
    assert [p["value"] for p in sweep["points"]] == values
    totals = [p["total_bytes"] for p in sweep["points"]]
    for value, total in zip(values, totals, strict=True):
        one = client.post(
            "/api/inference", json={"source": "llama-3.1-8b", "batch": 2, "context": value}
        ).json()
        assert total == one["total_bytes"]
    assert totals == sorted(totals) and totals[0] < totals[-1]
    train = client.post(
        "/api/train/sweep",
        json={"source": "llama-3.1-8b", "method": "lora", "axis": "batch", "values": [1, 4]},
    ).json()
    one = client.post(
        "/api/train", json={"source": "llama-3.1-8b", "method": "lora", "batch": 4}
    ).json()
    assert train["points"][1]["total_bytes"] == one["total_bytes"]
    assert train["points"][0]["total_bytes"] < one["total_bytes"]


# ------------------------------------------------------------------------- bad input


def assert_one_line_error(response: Any, status: int, *words: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    message: str = body["error"]
    assert message and "\n" not in message and "Traceback" not in message
    for word in words:
        assert word in message
    return message


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        ("/api/inference", {"source": "no-such-model"}, 404, ["no-such-model"]),
        ("/api/inference", {"source": "org/some-repo"}, 404, ["Hub"]),
        ("/api/fit", {"source": "llama-3.1-8b", "device": "abacus"}, 404, ["device", "abacus"]),
        ("/api/inference", {"source": "7B"}, 400, ["plain size"]),
        ("/api/inference", {"source": "llama-3.1-8b", "dtype": "fp7"}, 400, ["fp7"]),
        ("/api/inference", {"source": "llama-3.1-8b", "memory": "lots"}, 400, ["memory"]),
        ("/api/fit", {"source": "llama-3.1-8b", "device": "local"}, 400, ["device"]),
        ("/api/plan", {"source": "llama-3.1-8b", "device": "all"}, 400, ["device"]),
        ("/api/inference", {"source": {"model_type": "llama"}}, 400, ["pasted config.json"]),
        ("/api/inference", {"source": {"model_type": "no-such-arch"}}, 400, ["model_type"]),
        ("/api/inference", {"source": "/etc/hostname"}, 400, ["reads no files"]),
        ("/api/inference", {"source": "../config.json"}, 400, ["reads no files"]),
        ("/api/inference", {"source": "llama-3.1-8b", "batch": 0}, 422, ["batch"]),
        ("/api/inference", {"source": "llama-3.1-8b", "batch": -3}, 422, ["batch"]),
        ("/api/inference", {"source": "llama-3.1-8b", "batch": "many"}, 422, ["batch"]),
        ("/api/inference", {"source": "llama-3.1-8b", "engine": "ollama"}, 422, ["engine"]),
        ("/api/train", {"source": "llama-3.1-8b", "optimizer": "adam2"}, 422, ["optimizer"]),
        ("/api/train", {"source": "llama-3.1-8b", "seq": 2**40}, 422, ["seq"]),
        ("/api/train", {"source": "llama-3.1-8b", "surprise": 1}, 422, ["surprise"]),
        ("/api/inference", {"batch": 1}, 422, ["source"]),
        ("/api/inference", {"source": "llama-3.1-8b", "allocator_reserve": 1.5}, 422, []),
        ("/api/inference/sweep", {"source": "llama-3.1-8b", "values": []}, 422, ["values"]),
        ("/api/inference/sweep", {"source": "llama-3.1-8b", "values": [1] * 100}, 422, []),
    ],
)
def test_bad_bodies_get_one_line_4xx(
    client: TestClient, path: str, body: Any, status: int, words: list[str]
) -> None:
    assert_one_line_error(client.post(path, json=body), status, *words)


def test_malformed_json_and_non_object_bodies(client: TestClient) -> None:
    headers = {"content-type": "application/json"}
    for raw in (b"{", b"[1, 2]", b"null", b'"llama"', b"\xff\xfe"):
        response = client.post("/api/inference", content=raw, headers=headers)
        assert_one_line_error(response, 422)
    assert_one_line_error(client.post("/api/inference"), 422)


def test_nan_and_infinity_are_refused(client: TestClient) -> None:
    headers = {"content-type": "application/json"}
    for path, raw in (
        ("/api/inference", b'{"source": "llama-3.1-8b", "allocator_reserve": NaN}'),
        ("/api/inference", b'{"source": "llama-3.1-8b", "gpu_memory_utilization": Infinity}'),
        ("/api/params", b'{"source": "7B", "train_factor": 1e309}'),
    ):
        response = client.post(path, content=raw, headers=headers)
        assert_one_line_error(response, 422)


def test_oversize_body_is_413(client: TestClient) -> None:
    big = {"source": {"model_type": "llama", "padding": "x" * 1_100_000}}
    assert_one_line_error(client.post("/api/params", json=big), 413, "too large")


def test_streamed_oversize_body_without_length_is_413() -> None:
    client = TestClient(create_app(max_body_bytes=2048))

    def chunks() -> Any:
        yield b'{"source": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    response = client.post(
        "/api/params", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert_one_line_error(response, 413, "2,048")


def test_unknown_path_and_method_are_one_line(client: TestClient) -> None:
    assert_one_line_error(client.get("/api/nothing"), 404)
    assert_one_line_error(client.get("/api/inference"), 405)


def test_hub_ids_only_when_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """With allow_hub the id reaches the Hub reader; without, it never does."""
    import modelmem.model.sources as sources

    calls: list[str] = []

    def fake_hub(ref: Any) -> Any:
        calls.append(str(ref))
        from modelmem.errors import SourceError

        raise SourceError("hub", "offline in this test")

    monkeypatch.setattr(sources, "_from_hub", fake_hub)
    closed = TestClient(create_app()).post("/api/params", json={"source": "org/model"})
    assert closed.status_code == 404 and calls == []
    opened = TestClient(create_app(allow_hub=True)).post(
        "/api/params", json={"source": "org/model"}
    )
    assert opened.status_code == 404 and "offline in this test" in opened.json()["error"]
    assert len(calls) == 1


def test_trusted_hosts_refuse_other_host_headers() -> None:
    client = TestClient(create_app(trusted_hosts=["127.0.0.1", "localhost"]))
    ok = client.get("/api/formats", headers={"host": "127.0.0.1:8000"})
    assert ok.status_code == 200
    bad = client.get("/api/formats", headers={"host": "evil.example"})
    assert bad.status_code == 400


def test_openapi_schema_lists_every_endpoint(client: TestClient) -> None:
    schema = client.get("/api/openapi.json").json()
    paths = set(schema["paths"])
    assert paths >= {
        "/api/params",
        "/api/inference",
        "/api/train",
        "/api/fit",
        "/api/plan",
        "/api/inference/sweep",
        "/api/train/sweep",
        "/api/devices",
        "/api/models",
        "/api/formats",
    }
    batch = schema["components"]["schemas"]["InferenceBody"]["properties"]["batch"]
    assert batch["minimum"] == 1


def test_page_and_static_files_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert 'src="/static/app.js"' in page.text
    for name, kind in (("app.js", "javascript"), ("style.css", "css")):
        response = client.get(f"/static/{name}")
        assert response.status_code == 200 and kind in response.headers["content-type"]
    assert client.get("/static/../app.py").status_code == 404
    # offline: the page pulls nothing from another origin
    for name in ("/", "/static/app.js", "/static/style.css"):
        assert "http://" not in client.get(name).text.replace("http://www.w3.org", "")
        assert "https://" not in client.get(name).text


def test_cli_import_does_not_import_fastapi() -> None:
    import subprocess
    import sys

    code = (
        "import sys, modelmem.cli; "
        "print(any(m.split('.')[0] in ('fastapi', 'uvicorn', 'matplotlib', 'starlette') "
        "for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_serve_is_a_documented_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--host" in out and "--port" in out and "--allow-hub" in out


# ------------------------------------------------------------------------------ tokens


@pytest.mark.parametrize(
    ("body", "args"),
    [
        (
            {"text": "The evil that men do lives after them", "tokenizer": "cl100k_base"},
            ["tokens", "The evil that men do lives after them", "--tokenizer", "cl100k_base"],
        ),
        (
            {
                "text": "hello world",
                "tokenizer": "cl100k_base",
                "source": "llama-3.1-8b",
                "completion": 1000,
                "kv_dtype": "fp8",
                "pieces": True,
            },
            [
                "tokens",
                "hello world",
                "--tokenizer",
                "cl100k_base",
                "--model",
                "llama-3.1-8b",
                "--completion",
                "1000",
                "--kv-dtype",
                "fp8",
                "--pieces",
            ],
        ),
    ],
)
def test_tokens_endpoint_answers_with_the_cli_json(
    client: TestClient, capsys: pytest.CaptureFixture[str], body: dict[str, Any], args: list[str]
) -> None:
    pytest.importorskip("tiktoken")
    response = client.post("/api/tokens", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == cli_json(args, capsys)
    if body["text"].startswith("The evil"):
        assert response.json()["ids"] == [791, 14289, 430, 3026, 656, 6439, 1306, 1124]


@pytest.mark.parametrize(
    ("body", "status", "word"),
    [
        ({"text": "hi", "tokenizer": "/etc/passwd"}, 400, "reads no files"),
        ({"text": "hi", "tokenizer": "../tokenizer.json"}, 400, "reads no files"),
        ({"text": "", "tokenizer": "cl100k_base"}, 422, "text"),
        ({"text": "hi", "tokenizer": "cl100k_base", "completion": 5}, 400, "completion"),
    ],
)
def test_tokens_bad_bodies(
    client: TestClient, body: dict[str, Any], status: int, word: str
) -> None:
    assert_one_line_error(client.post("/api/tokens", json=body), status, word)

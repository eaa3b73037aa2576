"""One question, one answer: the same workload through every door — `inference`/`train`,
`fit` and `plan` with the same configuration, the web API and the Python API — gives the
same total, to the byte."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

import modelmem
from modelmem.cli import main
from modelmem.web.app import create_app

DEVICE = "MI355X"  # 288 GB: every workload below fits one, so plan finds it too

# (command, source, options by name): inference on every engine, training with ZeRO, FSDP,
# TP/PP/SP and offload, LoRA, QLoRA and DoRA, quantized and shipped formats.
WORKLOADS: list[tuple[str, str, dict[str, Any]]] = [
    ("inference", "llama-3.1-8b", {}),
    ("inference", "llama-3.1-8b", {"context": 8192, "kv_dtype": "fp8"}),
    ("inference", "llama-3.1-8b", {"dtype": "bnb-nf4", "batch": 4, "context": 4096}),
    ("inference", "llama-3.1-8b", {"dtype": "int4", "context": 2048}),
    ("inference", "qwen2.5-7b", {"engine": "vllm", "context": 32768}),
    ("inference", "qwen2.5-7b", {"engine": "vllm", "tp": 2, "batch": 8, "context": 8192}),
    ("inference", "llama-3.1-70b", {"tp": 4, "dtype": "fp8", "context": 16384}),
    ("inference", "llama-3.1-8b", {"engine": "llama.cpp", "dtype": "gguf-q4_k_m"}),
    (
        "inference",
        "mistral-7b-v0.3",
        {"engine": "llama.cpp", "dtype": "gguf-q8_0", "kv_dtype": "q8_0", "context": 32768},
    ),
    ("inference", "mixtral-8x7b", {"tp": 2, "dtype": "awq-4bit-g128"}),
    ("inference", "gemma-2-9b", {"attention": "eager", "batch": 2}),
    ("inference", "deepseek-v2-lite", {"context": 8192}),
    ("inference", "gpt-oss-20b", {}),
    ("inference", "phi-3-mini-4k", {"batch": 16, "context": 4096}),
    ("inference", "qwen3-30b-a3b", {"engine": "vllm", "kv_dtype": "fp8"}),
    ("train", "llama-3.2-1b", {}),
    ("train", "llama-3.1-8b", {"zero": 3, "devices": 8}),
    ("train", "llama-3.1-8b", {"zero": 2, "devices": 4, "checkpointing": True, "batch": 4}),
    ("train", "llama-3.1-8b", {"fsdp": "full-shard", "devices": 8, "checkpointing": True}),
    ("train", "llama-3.1-8b", {"zero": 2, "offload_optimizer": "cpu"}),
    (
        "train",
        "llama-3.1-8b",
        {"zero": 3, "offload_optimizer": "cpu", "offload_param": "cpu", "devices": 2},
    ),
    ("train", "llama-3.1-70b", {"fsdp": "full-shard", "devices": 8, "checkpointing": True}),
    ("train", "llama-3.1-8b", {"tp": 2, "pp": 2, "devices": 2, "checkpointing": True}),
    ("train", "llama-3.1-8b", {"tp": 4, "sp": True, "devices": 2}),
    ("train", "llama-3.1-8b", {"method": "lora", "lora_rank": 16, "lora_targets": "all-linear"}),
    ("train", "llama-3.1-8b", {"method": "qlora", "checkpointing": True}),
    (
        "train",
        "mistral-7b-v0.3",
        {"method": "qlora", "lora_rank": 16, "lora_targets": "all-linear", "checkpointing": True},
    ),
    ("train", "qwen3-0.6b", {"optimizer": "adamw-8bit", "recipe": "pure-bf16"}),
    ("train", "llama-3.1-8b", {"optimizer": "adafactor", "checkpointing": True, "batch": 2}),
    ("train", "mixtral-8x7b", {"method": "lora", "checkpointing": True}),
    ("train", "llama-3.1-8b", {"loss": "chunked", "seq": 8192, "checkpointing": True}),
    ("train", "llama-3.1-8b", {"selective_checkpointing": True, "batch": 4}),
    ("train", "llama-3.1-8b", {"method": "lora", "dora": True}),
    ("train", "qwen2.5-7b", {"lora_rank": 8}),  # a LoRA option alone means LoRA
    ("train", "llama-2-70b", {"method": "qlora", "device_map": "auto", "devices": 2}),
    ("train", "llama-3.1-70b", {"method": "qlora", "fsdp": "full-shard", "devices": 2}),
]


def _flags(options: dict[str, Any]) -> list[str]:
    args: list[str] = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            args.append(flag)
        elif value is False:
            args.append("--no-" + flag[2:])
        else:
            args += [flag, str(value)]
    return args


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code = main([*args, "--json"])
    out, err = capsys.readouterr()
    assert code in (0, 1), err
    data: dict[str, Any] = json.loads(out)
    return data


def _plan_knobs(command: str, data: dict[str, Any]) -> tuple[dict[str, Any], int, str]:
    """The estimate's configuration written out knob by knob, so that the planner searches
    nothing: (options, device count, goal)."""
    if command == "inference":
        knobs = {"dtype": data["dtype"], "kv_dtype": data["kv_dtype"], "tp": data["tp"]}
        return knobs, data["tp"], "inference"
    knobs = {
        "recipe": data["recipe"],
        "optimizer": data["optimizer"],
        "checkpointing": data["checkpointing"],
        "zero": data["zero"],
        "devices": data["parallel"]["dp"],
        "offload_optimizer": "cpu" if data["host_bytes"] else "none",
    }
    if data["method"] != "full":
        knobs["lora_rank"] = data["lora_rank"]
    goal = "train" if data["method"] == "full" else data["method"]
    return knobs, data["total_devices"], goal


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app())


@pytest.mark.parametrize(
    ("command", "source", "options"),
    WORKLOADS,
    ids=[f"{c} {s} {' '.join(_flags(o))}" for c, s, o in WORKLOADS],
)
def test_every_door_gives_the_same_total(
    command: str,
    source: str,
    options: dict[str, Any],
    client: TestClient,
    capsys: pytest.CaptureFixture[str],
) -> None:
    estimate = _cli([command, source, *_flags(options)], capsys)
    total = estimate["total_bytes"]
    assert total == sum(c["bytes"] for c in estimate["components"])

    # the Python API
    api = modelmem.inference if command == "inference" else modelmem.train
    result = api(source, **options)
    assert result.total_bytes == total and result.to_dict() == estimate

    # the web API
    response = client.post(f"/api/{command}", json={"source": source, **options})
    assert response.status_code == 200, response.text
    assert response.json() == estimate

    # fit: the same request on the devices it runs on
    knobs, count, goal = _plan_knobs(command, estimate)
    mode = ["--mode", "train"] if command == "train" else []
    fitted = _cli(
        ["fit", source, "--device", DEVICE, "--count", str(count), *mode, *_flags(options)],
        capsys,
    )
    assert fitted["total_bytes"] == total and fitted["components"] == estimate["components"]
    body = {"source": source, "device": DEVICE, "count": count, **options}
    if command == "train":
        body["mode"] = "train"
    assert client.post("/api/fit", json=body).json()["total_bytes"] == total
    fit_api = modelmem.fit(source, device=DEVICE, count=count, mode=command, **options)
    assert fit_api.total_bytes == total

    # plan: the same configuration, every knob given, so nothing is searched
    fixed = {**knobs, **options}
    planned = _cli(
        [
            "plan",
            source,
            "--device",
            DEVICE,
            "--count",
            str(count),
            "--goal",
            goal,
            "--objective",
            "quality",
            *_flags(fixed),
        ],
        capsys,
    )
    assert planned["options"], planned["notes"]
    assert planned["options"][0]["total_bytes"] == total
    assert planned["searched"] == 1
    plan_api = modelmem.plan(
        source, device=DEVICE, count=count, goal=goal, objective="quality", **fixed
    )
    assert plan_api.total_bytes == total

"""One format vocabulary: every name and alias `modelmem formats` lists, and every weight
scheme, means the same to every --dtype and --kv-dtype of every command (and the web API),
or is refused with a reason of its own — never "unknown" for a listed name."""

from __future__ import annotations

import json
from typing import Any

import click
import pytest
from fastapi.testclient import TestClient

from modelmem.app.catalogues import formats_data
from modelmem.app.fields import option_specs
from modelmem.app.formats import cache_format, weights_scheme
from modelmem.app.requests import (
    DeviceRequest,
    FitRequest,
    InferenceRequest,
    PlanRequestOptions,
    TrainRequest,
    workload_specs,
)
from modelmem.cli import cli, main
from modelmem.errors import ModelMemError
from modelmem.web.app import FitBody, InferenceBody, PlanBody, TrainBody, create_app

MODEL = "llama-3.2-1b"


def _names() -> list[str]:
    names: list[str] = []
    for row in formats_data():
        names.append(row["name"])
        names.extend(row.get("aliases", []))
    return sorted(set(names))


NAMES = _names()


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, Any, str]:
    code = main([*args, "--json"])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err.strip()


def _outcome(resolve: Any, name: str, *args: Any) -> tuple[str | None, str | None]:
    try:
        return resolve(name, *args).name, None
    except ModelMemError as e:
        return None, str(e)


def test_every_listed_name_is_known() -> None:
    assert len(NAMES) > 80
    for name in NAMES:
        for outcome in (
            _outcome(weights_scheme, name),
            *(_outcome(cache_format, name, e) for e in ("transformers", "vllm", "llama.cpp")),
        ):
            error = outcome[1]
            assert error is None or "unknown" not in error, (name, error)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_a_name_means_the_same_to_every_dtype(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    scheme, refusal = _outcome(weights_scheme, name)
    commands = {
        "inference": ["inference", MODEL, "--context", "1024", "--dtype", name],
        "fit": ["fit", MODEL, "--device", "B200", "--context", "1024", "--dtype", name],
        "plan": ["plan", MODEL, "--device", "B200", "--context", "1024", "--dtype", name],
        "params": ["params", MODEL, "--dtype", name],
        "cost": ["cost", MODEL, "--device", "B200", "--weights-dtype", name],
    }
    for command, args in commands.items():
        code, data, err = _run(args, capsys)
        if refusal is not None:
            assert code == 2 and err.count("\n") == 0, (command, name, err)
            assert refusal.split(": ", 1)[1] in err, (command, name, err)
            continue
        if code == 2:  # the estimator refuses this model in this scheme: its own reason
            assert "unknown" not in err, (command, err)
            continue
        assert code in (0, 1), (command, name, err)
        if command in ("inference", "fit"):
            assert data["dtype"] == scheme, (command, name)
        if command == "plan":
            assert data["options"][0]["config"]["dtype"] == scheme
        if command == "params":
            assert data["weights_scheme"] == scheme


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_a_name_means_the_same_to_every_kv_dtype(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for engine in ("transformers", "vllm", "llama.cpp"):
        fmt, refusal = _outcome(cache_format, name, engine)
        base = [MODEL, "--context", "1024", "--engine", engine, "--kv-dtype", name]
        commands = {
            "inference": ["inference", *base],
            "fit": ["fit", *base[:1], "--device", "B200", *base[1:]],
        }
        if engine == "transformers":
            commands["tokens"] = [
                "tokens",
                "hello",
                "--tokenizer",
                "cl100k_base",
                "--model",
                MODEL,
                "--kv-dtype",
                name,
            ]
            commands["cost"] = ["cost", MODEL, "--device", "B200", "--kv-dtype", name]
        for command, args in commands.items():
            code, data, err = _run(args, capsys)
            if refusal is not None:
                assert code == 2 and refusal.split(": ", 1)[1] in err, (command, name, err)
                continue
            assert code in (0, 1), (command, engine, name, err)
            if command in ("inference", "fit"):
                assert data["kv_dtype"] == fmt


def test_element_formats_map_to_the_scheme_people_mean_and_say_so() -> None:
    assert weights_scheme("int4").name == "awq-4bit-g128"
    assert weights_scheme("nf4").name == "bnb-nf4"
    assert weights_scheme("fp8").name == "fp8"
    assert weights_scheme("int8").name == "bnb-int8"
    assert "awq-4bit-g128" in (weights_scheme("int4").note or "")
    with pytest.raises(ModelMemError, match="gguf-q8_0"):
        weights_scheme("q8_0")
    with pytest.raises(ModelMemError, match="weights scheme; for the cache use q8_0"):
        cache_format("gguf-q8_0", "llama.cpp")
    with pytest.raises(ModelMemError, match=r"llama\.cpp cache format"):
        cache_format("q8_0", "vllm")


@pytest.mark.parametrize(
    ("args", "suggestion", "lister"),
    [
        (["inference", "llama-3.1-9b"], "llama-3.1-8b", "modelmem models"),
        (["inference", "llama-3.1-8b", "--dtype", "q4km"], "gguf-q4_k_m", "modelmem formats"),
        (["fit", "llama-3.1-8b", "--device", "rtx4095"], "RTX4090", "modelmem devices"),
        (["inference", "llama-3.1-8b", "--dtype", "bf61"], "bf16", "modelmem formats"),
    ],
)
def test_unknown_names_get_did_you_mean(
    args: list[str], suggestion: str, lister: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(args, capsys)
    assert code == 2 and "did you mean" in err and suggestion in err, err
    if lister:
        assert lister in err


def _click_options(name: str) -> dict[str, click.Option]:
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    return {p.name: p for p in command.params if isinstance(p, click.Option) and p.name}


@pytest.mark.parametrize(
    ("command", "specs", "body"),
    [
        ("inference", InferenceRequest.specs(), InferenceBody),
        ("train", TrainRequest.specs(), TrainBody),
        (
            "fit",
            (*option_specs(DeviceRequest), *option_specs(FitRequest), *workload_specs()),
            FitBody,
        ),
        (
            "plan",
            (*option_specs(DeviceRequest), *option_specs(PlanRequestOptions), *workload_specs()),
            PlanBody,
        ),
    ],
)
def test_command_line_and_web_bodies_agree_field_by_field(
    command: str, specs: tuple[Any, ...], body: Any
) -> None:
    options = _click_options(command)
    fields = body.model_fields
    for spec in specs:
        option = options[spec.name]
        assert option.opts[0] == spec.flag
        if not spec.required:
            assert option.default == spec.default, spec.name
        if spec.choices is not None:
            assert tuple(option.type.choices) == spec.choices  # type: ignore[attr-defined]
        field = fields[spec.name]
        if spec.required:
            assert field.is_required()
        else:
            assert field.default == spec.default, spec.name
    # the workload vocabulary of fit and plan is inference's and train's, whole
    every = {s.name for s in (*InferenceRequest.specs(), *TrainRequest.specs())}
    if command in ("fit", "plan"):
        assert every <= set(options) and every <= set(fields)


def test_web_refuses_what_the_command_line_refuses() -> None:
    client = TestClient(create_app())
    response = client.post("/api/inference", json={"source": MODEL, "dtype": "q8_0"})
    assert response.status_code == 400 and "gguf-q8_0" in response.json()["error"]

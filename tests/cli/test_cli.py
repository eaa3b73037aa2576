"""The command line as scripts use it: exit codes, JSON keys, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest

from modelmem.cli import cli, main

from ..conftest import FIXTURES


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def run_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> Any:
    code, out, err = run([*args, "--json"], capsys)
    assert code == 0, err
    return json.loads(out)


def test_params_json_keys_for_catalogue_model(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(["params", "llama-3.1-8b"], capsys)
    assert data["total_params"] == 8_030_261_248 == data["active_params"]
    assert isinstance(data["total_params"], int)
    assert sum(c["params"] for c in data["components"]) == data["total_params"]
    assert {c["name"] for c in data["components"]} >= {"embedding", "attention", "mlp", "lm_head"}
    assert data["context_length"] == 131072
    assert data["weights_bytes"] == 2 * 8_030_261_248
    assert data["rule_of_thumb"]["inference_bytes"] == 2 * 8_030_261_248
    assert data["rule_of_thumb"]["training_bytes"] == 8 * 8_030_261_248


def test_params_of_a_config_folder_matches_file(capsys: pytest.CaptureFixture[str]) -> None:
    folder = FIXTURES / "mistralai__Mixtral-8x7B-v0.1"
    a = run_json(["params", str(folder)], capsys)
    b = run_json(["params", str(folder / "config.json")], capsys)
    assert a["total_params"] == b["total_params"] == 46_702_792_704
    assert a["active_params"] == 12_879_925_248


@pytest.mark.parametrize(
    ("size", "params"),
    [("7B", 7 * 10**9), ("1.5b", 1_500_000_000), ("124M", 124 * 10**6), ("70e9", 70 * 10**9)],
)
def test_params_of_a_plain_size(size: str, params: int, capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(["params", size, "--dtype", "fp32"], capsys)
    assert data["total_params"] == params and data["kind"] == "size"
    assert data["rule_of_thumb"]["inference_bytes"] == 4 * params
    assert data["rule_of_thumb"]["training_bytes"] == 16 * params


def test_params_table_shows_both_units(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["params", "1B"], capsys)
    assert code == 0
    assert "2,000,000,000 bytes = 2.00 GB (1.86 GiB)" in out


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.json"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["params", "{bad}"], "malformed JSON"),
        (["params", "{unknown}"], "model_type='not_a_model'"),
        (["params", "0B"], "source"),
        (["params", "--", "-7B"], "source"),
        (["params", "-7B"], "-7"),
        (["params", "nan"], "source"),
        (["params", "no-such-model"], "source='no-such-model'"),
        (["params", "7B", "--dtype", "fp7"], "dtype='fp7'"),
        (["params", "7B", "--train-factor", "9"], "training_factor"),
        (["params", "7B", "--optimizer", "adamx"], "adamx"),
        (["params", "{folder}"], "no config.json"),
        (["params", "./missing/config.json"], "no such file"),
        (["params", "7B", "--no-such-option"], "no-such-option"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    subst = {
        "{bad}": write(tmp_path, "{not json"),
        "{folder}": str(tmp_path / "empty"),
    }
    (tmp_path / "empty").mkdir()
    if "{unknown}" in args:
        other = tmp_path / "other"
        other.mkdir()
        (other / "config.json").write_text(json.dumps({"model_type": "not_a_model"}))
        subst["{unknown}"] = str(other)
    code, out, err = run([subst.get(a, a) for a in args], capsys)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert needle in lines[0] and "Traceback" not in err


def test_models_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    rows = run_json(["models"], capsys)
    assert len(rows) >= 40
    names = {r["name"] for r in rows}
    assert {"llama-3.1-8b", "mixtral-8x7b", "deepseek-v3", "gpt2"} <= names
    assert all(r["source"] and r["context_length"] > 0 and r["tokenizer"] for r in rows)


def test_formats_listing(capsys: pytest.CaptureFixture[str]) -> None:
    listed = run_json(["formats"], capsys)
    rows = {r["name"]: r for r in listed if r["kind"] == "format"}
    schemes = {r["name"]: r for r in listed if r["kind"] == "scheme"}
    assert {"gguf-q4_k_m", "bnb-nf4-dq", "gptq-4bit-g128", "fp8"} <= set(schemes)
    assert schemes["gguf-q4_k_m"]["element"] == "q4_k" and all(r["source"] for r in listed)
    assert rows["q4_k"]["bits_per_value"] == 4.5
    assert rows["bf16"]["bits_per_value"] == 16
    assert all(r["source"] for r in rows.values())


def test_every_command_and_option_is_documented() -> None:
    ctx = click.Context(cli)
    names = cli.list_commands(ctx)
    assert {"params", "inference", "train", "tokens", "fit", "plan", "serve"} <= set(names)
    for name in names:
        command = cli.get_command(ctx, name)
        assert command is not None and command.help, f"{name} has no help"
        for param in command.params:
            if param.param_type_name == "option":
                assert getattr(param, "help", None), f"{name} {param.name} has no help"


def test_help_and_version_exit_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--help"], capsys)
    assert code == 0 and "params" in out
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and "modelmem" in out


def test_inference_json_keys(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(["inference", "llama-3.1-8b", "--batch", "2", "--context", "4096"], capsys)
    assert isinstance(data["total_bytes"], int)
    assert data["total_bytes"] == sum(c["bytes"] for c in data["components"])
    assert all({"name", "bytes", "how"} <= set(c) for c in data["components"])
    assert data["kv_cache_bytes_per_token"] == 131_072
    assert data["weights_bytes"] == 2 * 8_030_261_248
    assert data["rule_of_thumb"]["inference_bytes"] == 2 * 8_030_261_248


def test_inference_fit_and_limits(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(["inference", "llama-3.1-8b", "--memory", "24GiB", "--context", "8192"], capsys)
    assert data["fits"] is True and data["margin_bytes"] > 0
    assert data["max_context"] >= 8192 and data["max_batch"] >= 1
    small = run_json(["inference", "llama-3.1-8b", "--memory", "8GB"], capsys)
    assert small["fits"] is False and small["margin_bytes"] < 0


def test_inference_engines(capsys: pytest.CaptureFixture[str]) -> None:
    gguf = run_json(
        [
            "inference",
            "llama-2-7b",
            "--engine",
            "llama.cpp",
            "--dtype",
            "gguf-q4_0",
            "--context",
            "4096",
        ],
        capsys,
    )
    parts = {c["name"]: c["bytes"] for c in gguf["components"]}
    # the file's tensors less token_embd (73,728,000 B of q4_0), which stays in host memory
    assert parts["weights"] == 3_825_065_984 - 73_728_000 and parts["kv_cache"] == 2048 * 2**20
    vllm = run_json(["inference", "llama-3.1-8b", "--engine", "vllm", "--memory", "80GB"], capsys)
    graphs = next(c["bytes"] for c in vllm["components"] if c["name"] == "cuda_graphs")
    assert vllm["total_bytes"] - graphs <= 72 * 10**9  # CUDA graphs come on top of the share
    assert vllm["fits"] is True and vllm["kv_pool_tokens"] > 0


def test_train_json_keys(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(
        ["train", "qwen3-0.6b", "--batch", "4", "--seq", "2048", "--memory", "80GB"], capsys
    )
    assert data["total_bytes"] == sum(c["bytes"] for c in data["components"])
    assert data["trainable_params"] == data["rule_of_thumb"]["inference_bytes"] // 4
    assert data["peak_moment"] in data["moments"]
    assert isinstance(data["fits"], bool)


def test_train_deepspeed_config_sets_the_workload(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {
        "bf16": {"enabled": "auto"},
        "zero_optimization": {
            "stage": 3,
            "offload_optimizer": {"device": "cpu"},
            "offload_param": {"device": "cpu"},
        },
        "train_micro_batch_size_per_gpu": 2,
        "gradient_accumulation_steps": "auto",
    }
    path = tmp_path / "ds_config.json"
    path.write_text(json.dumps(config))
    args = ["train", "llama-3.1-8b", "--deepspeed", str(path), "--devices", "8", "--seq", "16"]
    data = run_json([*args, "--recipe", "mixed-bf16", "--grad-accumulation", "4"], capsys)
    # stage, offload and micro-batch from the file; recipe and accumulation ("auto") from here
    assert (data["zero"], data["batch"], data["grad_accumulation"]) == (3, 2, 4)
    assert data["recipe"] == "mixed-bf16"
    assert {o["name"] for o in data["offloaded"]} == {"optimizer_states", "gradients", "weights"}
    assert data["host_bytes"] == 8 * data["host_bytes_per_device"] > 0
    assert data["nvme_bytes"] == 0
    ds = data["deepspeed_estimator"]
    assert ds["function"] == "estimate_zero3_model_states_mem_needs"
    assert (ds["gpu_bytes"], ds["cpu_bytes"]) == (2_101_346_304, 216_817_053_696)
    assert any("DeepSpeed config" in n for n in data["notes"])


def test_train_model_parallel_json(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train", "llama-3.1-8b", "--tp", "8", "--pp", "4", "--sp", "--devices", "2"]
    data = run_json([*args, "--grad-accumulation", "8"], capsys)
    assert data["total_devices"] == data["devices"] == 64
    assert data["parallel"] == {"dp": 2, "tp": 8, "pp": 4, "sp": True, "nodes": 1}
    assert set(data["stage_peaks"]) == {"first", "last"}
    assert data["total_bytes"] == max(data["stage_peaks"].values())


def test_train_step_options_json(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["train", "qwen3-0.6b", "--recipe", "pure-bf16", "--batch", "4"]
    full = run_json(base, capsys)
    chunked = run_json([*base, "--loss-chunks", "4"], capsys)
    fused = run_json([*base, "--loss", "fused"], capsys)
    assert (chunked["loss"], chunked["loss_chunks"], fused["loss"]) == ("chunked", 4, "fused")
    assert fused["moments"]["loss"] < chunked["moments"]["loss"] < full["moments"]["loss"]
    paged = run_json([*base, "--optimizer", "adamw-8bit", "--paged-optimizer"], capsys)
    assert paged["offloaded"][0]["where"] == "cpu" and paged["host_bytes"] > 0
    in_bwd = run_json([*base, "--optimizer-in-backward"], capsys)
    assert in_bwd["moments"]["backward end"] < full["moments"]["backward end"]


def test_train_table_shows_offload_and_parallel(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        ["train", "qwen3-0.6b", "--zero", "2", "--devices", "2", "--offload-optimizer", "cpu"],
        capsys,
    )
    assert code == 0 and "off the device (cpu)" in out and "host memory per node" in out
    assert "estimate_zero2_model_states_mem_needs" in out


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ('{"zero_optimization": {"stage": 7}}', "zero_optimization.stage"),
        ('{"zero_optimization": {"offload_param": {"device": "ssd"}}}', "offload_param.device"),
        ('{"train_micro_batch_size_per_gpu": "four"}', "train_micro_batch_size_per_gpu"),
        ("{not json", "not JSON"),
    ],
)
def test_train_bad_deepspeed_config(
    config: str, needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ds.json"
    path.write_text(config)
    code, out, err = run(["train", "qwen3-0.6b", "--deepspeed", str(path)], capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and needle in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--tp", "3"], "tp=3"),
        (["--pp", "1000"], "pp=1000"),
        (["--sp"], "sp=True"),
        (["--offload-optimizer", "cpu"], "offload_optimizer='cpu'"),
        (["--zero", "2", "--offload-param", "cpu"], "offload_param='cpu'"),
        (["--fsdp", "shard-grad-op", "--fsdp-offload"], "fsdp_offload"),
        (["--optimizer-in-backward", "--grad-accumulation", "2"], "optimizer_in_backward"),
        (["--deepspeed", "missing-ds.json"], "missing-ds.json"),
    ],
)
def test_train_rejects_bad_parallel_options(
    args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["train", "qwen3-0.6b", *args], capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and needle in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["inference", "7B"], "plain size"),
        (["train", "7B"], "plain size"),
        (["inference", "gpt2", "--dtype", "fp7"], "dtype='fp7'"),
        (["inference", "gpt2", "--memory", "lots"], "memory"),
        (["inference", "gpt2", "--batch", "0"], "batch"),
        (["train", "gpt2", "--seq", "-5"], "seq"),
        (["measure", "7B"], "architecture"),
    ],
)
def test_estimate_commands_reject_bad_input(
    args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(args, capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and needle in err


@pytest.mark.parametrize("command", ["models", "formats"])
def test_an_unknown_family_filter_is_an_error(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run([command, "--family", "nosuch"], capsys)
    assert code == 2 and "family='nosuch'" in err and err.count("\n") == 1

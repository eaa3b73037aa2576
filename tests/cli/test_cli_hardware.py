"""`modelmem devices`, `fit` and `plan`: exit codes, JSON keys, one-line errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelmem.cli import main


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def run_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> Any:
    code, out, err = run([*args, "--json"], capsys)
    data = json.loads(out)
    # fit's exit code is its verdict: 0 fits, 1 does not fit
    does_not_fit = args[0] == "fit" and isinstance(data, dict) and data.get("fits") is False
    assert code == (1 if does_not_fit else 0), err
    return data


def test_devices_lists_and_filters(capsys: pytest.CaptureFixture[str]) -> None:
    rows = run_json(["devices"], capsys)
    assert len(rows) >= 40 and all(r["source"] for r in rows)
    apple = run_json(["devices", "--kind", "apple"], capsys)
    assert apple and all(r["kind"] == "apple" for r in apple)
    big = run_json(["devices", "--min-memory", "150GB"], capsys)
    assert big and all(r["budget_bytes"] >= 150 * 10**9 for r in big)
    code, out, _ = run(["devices", "--vendor", "amd"], capsys)
    assert code == 0 and "MI300X" in out


@pytest.mark.parametrize(
    ("args", "fits"),
    [
        (["llama-3.1-8b", "--device", "H100-80GB"], True),
        (["llama-3.1-8b", "--device", "rtx3060"], False),
        (["llama-3.1-8b", "--device", "rtx3060", "--dtype", "bnb-nf4", "--context", "2048"], True),
        (["llama-3.1-70b", "--device", "h100", "--count", "4"], True),
        (["llama-3.1-8b", "--device", "h100", "--method", "full"], False),
        (["llama-3.1-8b", "--device", "h100", "--method", "full", "--count", "8", "--zero", "3",
          "--recipe", "mixed-bf16", "--checkpointing"], True),
        (["llama-3.1-8b", "--device", "rtx4090", "--method", "lora", "--checkpointing"], True),
        (["llama-3.1-8b", "--device", "rtx4090", "--method", "qlora", "--lora-rank", "64"], True),
    ],
)  # fmt: skip
def test_fit_json(args: list[str], fits: bool, capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(["fit", *args], capsys)
    assert data["fits"] is fits
    assert data["margin_bytes"] == data["budget_bytes"] - data["total_bytes"]
    assert data["total_bytes"] == sum(c["bytes"] for c in data["components"])
    assert data["reserve"] == 0.05 and data["reserve_bytes"] > 0
    assert data["dominant"]["name"] in {c["name"] for c in data["components"]}


def test_fit_multi_device_is_per_device(capsys: pytest.CaptureFixture[str]) -> None:
    one = run_json(["fit", "llama-3.1-70b", "--device", "h100"], capsys)
    four = run_json(["fit", "llama-3.1-70b", "--device", "h100", "--count", "4"], capsys)
    assert not one["fits"] and four["fits"]
    assert four["device_bytes"] == one["device_bytes"]  # per device, never summed
    assert four["total_bytes"] < one["total_bytes"]


def test_fit_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["fit", "llama-3.1-8b", "--device", "rtx3060"], capsys)
    assert code == 1 and "DOES NOT FIT" in out and "safety reserve" in out and "dominant" in out


def test_fit_every_catalogue_model(capsys: pytest.CaptureFixture[str]) -> None:
    rows = run_json(["fit", "--device", "h100"], capsys)
    by_name = {r["source"]: r for r in rows}
    assert by_name["llama-3.1-8b"]["fits"] is True
    assert by_name["llama-3.1-405b"]["fits"] is False


@pytest.mark.parametrize("goal", ["inference", "train", "lora", "qlora"])
def test_plan_json_every_goal(goal: str, capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(["plan", "llama-3.2-1b", "--device", "rtx4090", "--goal", goal], capsys)
    assert data["goal"] == goal and data["options"]
    best = data["options"][0]
    assert best["fits"] and best["total_bytes"] <= data["budget_bytes"]
    assert best["breakdown"]["total_bytes"] == best["total_bytes"]


def test_plan_table_and_objectives(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["plan", "llama-3.1-8b", "--device", "rtx4090", "--goal", "qlora"], capsys)
    assert code == 0 and "best:" in out and "qlora" in out
    data = run_json(
        ["plan", "llama-3.1-70b", "--device", "h100", "--count", "8", "--objective", "devices"],
        capsys,
    )
    assert data["options"][0]["config"]["devices"] == 1  # a 4-bit format fits one H100


def test_plan_all_devices_and_largest_model(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(["plan", "llama-3.1-8b", "--device", "all"], capsys)
    assert len(data["devices"]) >= 40
    largest = run_json(["plan", "--device", "rtx4090"], capsys)
    assert largest["largest_model"] and largest["plan"]["options"]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["fit", "llama-3.1-8b", "--device", "h1000"], "device='h1000'"),
        (["fit", "llama-3.1-8b", "--device", "h100", "--count", "0"], "count=0"),
        (["plan", "llama-3.1-8b", "--device", "h100", "--count", "-2"], "count=-2"),
        (["fit", "llama-3.1-8b", "--device", "h100", "--reserve", "1.5"], "reserve=1.5"),
        (["plan", "--device", "all"], "device='all'"),
        (["fit", "llama-3.1-8b", "--device", "h100", "--dtype", "fp7"], "dtype='fp7'"),
        (["fit", "llama-3.1-8b", "--device", "h100", "--batch", "0"], "batch=0"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    args: list[str], field: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(args, capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("modelmem: error: ") and field in err


def test_local_device_none_found_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    if shutil.which("nvidia-smi"):
        pytest.skip("this machine has nvidia-smi; the none-found path is unit-tested")
    try:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a CUDA device")
    except ImportError:
        pass
    code, _, err = run(["fit", "llama-3.1-8b", "--device", "local"], capsys)
    assert code == 2 and "no accelerator found" in err and err.count("\n") == 1

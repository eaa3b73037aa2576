"""--plot on inference, train and plan: a real PNG/SVG with the breakdown, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelmem.cli import main

pytest.importorskip("matplotlib")


def test_inference_plot_svg_has_a_bar_per_component_and_the_sweep(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "inference.svg"
    code = main(["inference", "llama-3.1-8b", "--context", "4096", "--plot", str(target), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)  # --json still prints only the JSON
    svg = target.read_text()
    assert svg.startswith("<?xml") and "<svg" in svg
    for c in data["components"]:
        if c["bytes"] > 0:
            assert c["name"] in svg  # legend entry per component
    assert "memory against context (tokens)" in svg


def test_train_plot_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "train.png"
    code = main(["train", "llama-3.1-8b", "--method", "qlora", "--plot", str(target)])
    assert code == 0, capsys.readouterr().err
    head = target.read_bytes()[:8]
    assert head == b"\x89PNG\r\n\x1a\n" and target.stat().st_size > 10_000


def test_plan_plot_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "plan.png"
    code = main(["plan", "llama-3.1-8b", "--device", "rtx-4090", "--plot", str(target)])
    assert code == 0, capsys.readouterr().err
    assert target.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "args",
    [
        ["inference", "llama-3.1-8b", "--plot", "chart.pdf"],
        ["train", "llama-3.1-8b", "--plot", "chart"],
        ["plan", "--device", "rtx-4090", "--plot", "chart.png"],
    ],
)
def test_bad_plot_targets_are_one_line_errors(
    args: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "plot=" in err
    assert list(tmp_path.iterdir()) == []


def test_missing_matplotlib_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name: str, *args: object, **kwargs: object) -> object:
        if name.split(".")[0] == "matplotlib":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    assert main(["inference", "llama-3.1-8b", "--plot", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "modelmem[plot]" in err and err.count("\n") == 1

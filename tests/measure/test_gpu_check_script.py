"""scripts/gpu_check.py without a GPU: ``--device cpu --tiny`` runs the real side on real
CPU tensors through modelmem's own tracker, which must equal the fake measurement."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("torch", reason="the GPU check needs the 'measure' extra (torch)")
pytest.importorskip("transformers", reason="the GPU check needs the 'measure' extra")

pytestmark = pytest.mark.oracle

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up while defined
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("gpu_check", None)


def _tiny_names(gpu_check: ModuleType) -> list[str]:
    """Two cheap rows: a training step extrapolated from shallow copies, and MoE inference
    (prefill + 8 decode steps)."""
    rows = [gpu_check.tiny_row(r) for r in gpu_check.GRID]
    train = next(
        r for r in rows if r.model == "llama-3.2-1b" and r.mode == "train" and "pure" in r.recipe
    )
    infer = next(r for r in rows if r.model == "qwen3-30b-a3b" and r.mode == "inference")
    return [train.name, infer.name]


def test_tiny_cpu_rows_real_equals_fake_and_files_are_written(
    gpu_check: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = _tiny_names(gpu_check)
    csv_path, json_path = tmp_path / "check.csv", tmp_path / "check.json"
    argv = ["--device", "cpu", "--tiny", "--out", str(csv_path), "--out", str(json_path)]
    for name in names:
        argv += ["--only", name]

    assert gpu_check.main(argv) == 0

    printed = capsys.readouterr().out
    assert "torch " in printed and "transformers " in printed
    assert all(name in printed for name in names)
    assert "2 ok, 0 error, 0 skipped" in printed

    with csv_path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == gpu_check.COLUMNS
        table = list(reader)
    assert [r["name"] for r in table] == names
    for r in table:
        assert r["status"] == "ok" and r["error"] == ""
        assert int(r["fake_bytes"]) > 0
        assert int(r["real_bytes"]) == int(r["fake_bytes"])  # real CPU tracker == fake
        assert int(r["diff_bytes"]) == 0 and float(r["diff_pct"]) == 0.0
        assert r["compared_to"] == "fake_bytes"
        assert r["real_peak_phase"] == r["fake_peak_phase"]
        assert int(r["fake_rounded_bytes"]) >= int(r["fake_bytes"])
        assert r["real_reserved_bytes"] == "" and r["device_used_bytes"] == ""
        # modelmem's estimate of the row's command line sits beside the run
        assert r["command"].startswith(("modelmem train ", "modelmem inference "))
        assert int(r["estimate_bytes"]) > 0
        assert int(r["estimate_reserved_bytes"]) > int(r["estimate_bytes"])
        assert int(r["estimate_device_bytes"]) > int(r["estimate_reserved_bytes"])
        assert r["est_vs_allocated_pct"] != "" and r["est_vs_reserved_pct"] == ""
    assert table[0]["layers"] == "5" and table[1]["layers"] == "2"
    assert table[1]["decode_steps"] == "8"

    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert data["columns"] == list(gpu_check.COLUMNS)
    env = data["environment"]
    assert env["device"] == "cpu" and env["tiny"] is True and env["gpu"] is None
    assert {"torch", "transformers", "pytorch_cuda_alloc_conf", "elapsed_s"} <= env.keys()
    assert [r["name"] for r in data["rows"]] == names
    for row, line in zip(data["rows"], table, strict=True):
        assert set(gpu_check.COLUMNS) <= row.keys()
        assert row["real_bytes"] == row["fake_bytes"] == int(line["fake_bytes"])
        assert row["real_phase_peaks"] == row["fake_phase_peaks"]  # every phase, to the byte
    # Extrapolated from 1, 2 and 3 layers, as the CLI does, and still equal to the whole run.
    assert any("extrapolated" in n for n in data["rows"][0]["fake_notes"])


def test_spent_budget_skips_every_row(gpu_check: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "skipped.csv"
    rc = gpu_check.main(["--device", "cpu", "--tiny", "--budget", "0", "--out", str(out)])
    assert rc == 0  # skipped rows are reported, not failures
    with out.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(gpu_check.GRID)
    assert all(r["status"] == "skipped" and "budget" in r["error"] for r in rows)
    assert all(r["fake_bytes"] == "" and r["real_bytes"] == "" for r in rows)


def test_deadline_interrupts_a_running_row(gpu_check: ModuleType) -> None:
    give_up = time.monotonic() + 10
    with pytest.raises(gpu_check.BudgetExceeded), gpu_check._deadline(0.05):
        while time.monotonic() < give_up:
            pass


def test_a_failing_row_is_recorded_as_one_line(gpu_check: ModuleType) -> None:
    bad = gpu_check.Row(model="no-such-model", tiny=True)
    good_after = gpu_check.Row(model="no-such-model-either", tiny=True)
    records = gpu_check.run_grid([bad, good_after], "cpu", budget_s=60)
    assert [r["status"] for r in records] == ["error", "error"]
    assert all(r["error"] and "\n" not in r["error"] for r in records)


def test_grid_covers_the_families_and_steps(gpu_check: ModuleType) -> None:
    grid = gpu_check.GRID
    assert len({r.name for r in grid}) == len(grid)
    assert {"llama-3.2-1b", "qwen3-0.6b", "qwen2.5-1.5b", "qwen3-30b-a3b", "gemma-3-1b"} == {
        r.model for r in grid
    }
    assert {r.recipe for r in grid if r.mode == "train"} == {"amp-bf16", "pure-bf16"}
    assert any(r.checkpointing for r in grid) and not all(r.checkpointing for r in grid)
    assert all(r.layers == 2 for r in grid if r.model == "qwen3-30b-a3b")
    infer = [r for r in grid if r.mode == "inference"]
    assert infer and all((r.seq, r.decode_steps, r.recipe) == (2048, 8, "pure-bf16") for r in infer)


@pytest.mark.parametrize(
    "argv",
    [["--device", "cpu"], ["--device", "cpu", "--tiny", "--out", "table.txt"]],
    ids=["cpu-needs-tiny", "out-suffix"],
)
def test_bad_arguments_exit_with_usage_error(gpu_check: ModuleType, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as e:
        gpu_check.main(argv)
    assert e.value.code == 2

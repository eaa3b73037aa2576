"""Timings of modelmem's commands: figures to compare with targets, not assertions.

    python benchmarks/run.py            # every row (a few minutes on a laptop)
    python benchmarks/run.py --quick    # skip the slow rows (imports of torch, measure)

Each command row is a fresh subprocess timed by wall clock from start to exit, so it
includes the interpreter's start-up and every import; see benchmarks/README.md for what
each row means. The exit status is 0 unless a timed command failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import timeit
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL_8B = "llama-3.1-8b"
MODEL_70B = "llama-3.1-70b"
MEASURE_ARGS = ("--batch", "1", "--seq", "2048", "--json")  # default recipe: amp-bf16, AdamW


@dataclass
class Result:
    name: str
    unit: str  # "ms", "µs" or "s"
    values: list[float] = field(default_factory=list)  # in ``unit``
    target: float | None = None  # the median should stay below this, in ``unit``
    note: str = ""
    failed: str = ""
    peak_bytes: int | None = None  # measure rows: the peak the command reported

    @property
    def minimum(self) -> float | None:
        return min(self.values) if self.values else None

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None


def _modelmem_command() -> list[str]:
    """The installed console script beside this interpreter, else the CLI's main()."""
    script = Path(sys.executable).with_name("modelmem")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from modelmem.cli import main; sys.exit(main())"]


# As an installed package runs: with its bytecode cached. A PYTHONDONTWRITEBYTECODE=1 in
# the caller's environment would make every run recompile modelmem from source.
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _timed(command: Sequence[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(
        list(command), capture_output=True, text=True, cwd=ROOT, check=False, env=_ENV
    )
    return time.perf_counter() - started, done


def subprocess_row(
    name: str,
    command: Sequence[str],
    runs: int,
    unit: str,
    target: float | None = None,
    measure: bool = False,
) -> Result:
    """Wall time of ``runs`` fresh processes of ``command``; for ``modelmem measure --json``
    the peak it reports goes into the note."""
    scale = {"ms": 1e3, "s": 1.0}[unit]
    result = Result(name, unit, target=target)
    if unit == "ms":
        _timed(command)  # untimed warm-up: writes the bytecode cache, as an install does
    for _ in range(runs):
        seconds, done = _timed(command)
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            result.failed = f"exit {done.returncode}: {lines[-1] if lines else ''}"
            break
        result.values.append(seconds * scale)
        if measure and result.peak_bytes is None:
            result.peak_bytes, result.note = _peak(done.stdout)
    return result


PEER_CONFIG = (
    ROOT / "tests" / "fixtures" / "hf-configs" / "meta-llama__Llama-3.1-8B" / "config.json"
)


def peer_rows(cli: Sequence[str]) -> list[Result]:
    """Start-up against the lightest peer, vramcalc (a dev extra), on the same config.json
    and context, interleaved run by run so that both see the same load on the machine."""
    peer = Path(sys.executable).with_name("vramcalc")
    ours_cmd = [*cli, "inference", str(PEER_CONFIG), "--context", "8192", "--json"]
    ours = Result("CLI cold start: modelmem inference CONFIG --context 8192 --json", "ms")
    if not peer.exists():
        ours.note = "vramcalc not installed (pip install vramcalc): no ratio"
        return [subprocess_row(ours.name, ours_cmd, 7, "ms")]
    theirs_cmd = [str(peer), "estimate", str(PEER_CONFIG), "--seq", "8192", "--json"]
    theirs = Result("peer: vramcalc estimate CONFIG --seq 8192 --json", "ms")
    _timed(ours_cmd), _timed(theirs_cmd)  # warm-up: bytecode caches written
    for _ in range(9):
        for row, command in ((ours, ours_cmd), (theirs, theirs_cmd)):
            seconds, done = _timed(command)
            if done.returncode != 0:
                row.failed = f"exit {done.returncode}"
                break
            row.values.append(seconds * 1e3)
    if ours.median and theirs.median:
        ours.note = (
            f"median {ours.median / theirs.median:.2f} × vramcalc's, min "
            f"{(ours.minimum or 0) / (theirs.minimum or 1):.2f} × (target <= 1)"
        )
    return [ours, theirs]


def in_process_row() -> list[Result]:
    """resolve + count_params + rule_of_thumb in this process: the first call (which loads
    the catalogue) and the steady state (timeit, per call)."""
    from modelmem.formats import get_format
    from modelmem.memory.rules import rule_of_thumb
    from modelmem.model.params import count_params
    from modelmem.model.sources import resolve

    fmt = get_format("bf16")

    def once() -> None:
        model = resolve(MODEL_8B)
        assert model.spec is not None
        count_params(model.spec)
        rule_of_thumb(model.params.total, fmt)

    started = time.perf_counter()
    once()
    first = Result(
        f"in-process resolve+count_params+rule_of_thumb ({MODEL_8B}), 1st call",
        "µs",
        [(time.perf_counter() - started) * 1e6],
        note="loads the catalogue (cached afterwards)",
    )
    timer = timeit.Timer(once)
    number, _ = timer.autorange()
    per_call = [t / number * 1e6 for t in timer.repeat(repeat=5, number=number)]
    steady = Result(
        f"in-process resolve+count_params+rule_of_thumb ({MODEL_8B})",
        "µs",
        per_call,
        note=f"timeit: 5 repeats × {number} calls",
    )
    return [first, steady]


def _per_call(name: str, once: Callable[[], object], note: str) -> Result:
    timer = timeit.Timer(once)
    number, _ = timer.autorange()
    per_call = [t / number * 1e6 for t in timer.repeat(repeat=5, number=number)]
    return Result(name, "µs", per_call, note=f"timeit: 5 repeats × {number} calls; {note}")


def estimator_rows() -> list[Result]:
    """One estimate in this process, per call, from a resolved spec: the pure estimators
    alone (target: tens of µs)."""
    from modelmem.memory.inference import InferenceWorkload, estimate_inference
    from modelmem.memory.training import TrainingWorkload, estimate_training
    from modelmem.model.sources import resolve

    spec = resolve(MODEL_8B).spec
    assert spec is not None
    inference = InferenceWorkload(batch=1, context=8192)
    training = TrainingWorkload(batch=1, seq=2048)
    estimate_inference(spec, inference)  # first calls fill the per-spec caches
    estimate_training(spec, training)
    return [
        _per_call(
            f"in-process estimate_inference ({MODEL_8B}, b1, ctx 8192)",
            lambda: estimate_inference(spec, inference),
            "bf16, transformers engine",
        ),
        _per_call(
            f"in-process estimate_training ({MODEL_8B}, b1, seq 2048)",
            lambda: estimate_training(spec, training),
            "amp-bf16, AdamW",
        ),
    ]


def _peak(stdout: str) -> tuple[int | None, str]:
    try:
        data = json.loads(stdout)
        peak = int(data["total_bytes"])
    except (ValueError, KeyError, TypeError):
        return None, "no peak in the output"
    from modelmem.units import format_bytes_binary

    return peak, f"peak {peak:,} B ({format_bytes_binary(peak)}) at {data['peak_phase']}"


def run(quick: bool) -> list[Result]:
    python = sys.executable
    cli = _modelmem_command()
    results = [
        subprocess_row(
            "python -c pass (interpreter start-up, the floor)", [python, "-c", "pass"], 5, "ms"
        ),
    ]
    results.append(
        subprocess_row(
            f"CLI cold start: modelmem params {MODEL_8B} --json",
            [*cli, "params", MODEL_8B, "--json"],
            5,
            "ms",
            target=150,
        )
    )
    results.append(
        subprocess_row(
            f"CLI cold start: modelmem inference {MODEL_8B} --json",
            [*cli, "inference", MODEL_8B, "--json"],
            5,
            "ms",
            target=150,
        )
    )
    results.extend(peer_rows(cli))
    results.extend(in_process_row())
    results.extend(estimator_rows())
    if quick:
        return results
    results.append(
        subprocess_row(
            "import torch, transformers",
            [python, "-c", "import torch, transformers"],
            3,
            "s",
        )
    )
    results.append(
        subprocess_row(
            "import torch, transformers + LlamaForCausalLM (lazy module)",
            [python, "-c", "import torch, transformers; transformers.LlamaForCausalLM"],
            3,
            "s",
        )
    )
    measured: dict[str, Result] = {}
    # the target for an 8B-shaped training step: under 30 s on 2 cores
    for model, target in ((MODEL_8B, 30.0), (MODEL_70B, 15.0)):
        measured[model] = subprocess_row(
            f"modelmem measure {model} (b1, s2048, amp-bf16)",
            [*cli, "measure", model, *MEASURE_ARGS],
            3,
            "s",
            target=target,
            measure=True,
        )
        results.append(measured[model])
    whole = subprocess_row(
        f"modelmem measure {MODEL_8B} --whole (every layer, once)",
        [*cli, "measure", MODEL_8B, *MEASURE_ARGS, "--whole"],
        1,
        "s",
        measure=True,
    )
    sampled = measured[MODEL_8B].peak_bytes
    if whole.peak_bytes is not None and sampled is not None:
        same = "the same peak" if whole.peak_bytes == sampled else "NOT the extrapolated peak"
        whole.note += f"; {same}"
    results.append(whole)
    return results


# ---------------------------------------------------------------------------- printing


def _figure(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "ms":
        return f"{value:.0f} ms"
    return f"{value:.1f} µs"


def _versions() -> str:
    parts = [f"Python {platform.python_version()}"]
    for package in ("modelmem", "torch", "transformers"):
        try:
            parts.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{package} (not installed)")
    parts.append(f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs")
    return ", ".join(parts)


def format_table(results: Sequence[Result]) -> str:
    headers = ("benchmark", "runs", "min", "median", "target", "vs target", "note")
    rows: list[tuple[str, ...]] = []
    for r in results:
        if r.failed:
            verdict = "failed"
        elif r.target is None or r.median is None:
            verdict = ""
        else:
            verdict = "met" if r.median < r.target else "missed"
        target = f"< {_figure(r.target, r.unit)}" if r.target is not None else ""
        rows.append(
            (
                r.name,
                str(len(r.values)),
                _figure(r.minimum, r.unit),
                _figure(r.median, r.unit),
                target,
                verdict,
                r.failed or r.note,
            )
        )
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    lines = [
        "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return "\n".join(lines)


def extra_rows(quick: bool) -> list[tuple[str, float, str]]:
    """In-process figures of the planner, header readers and token counting (each module
    also runs on its own: benchmarks/bench_plan.py, bench_sources.py, bench_tokens.py)."""
    sys.path.insert(0, str(ROOT))
    from benchmarks import bench_plan, bench_sources, bench_tokens

    rows = bench_plan.run() + bench_sources.run()
    rows += bench_tokens.run(size_mb=10 if quick else 100)
    return rows


def format_extra(rows: Sequence[tuple[str, float, str]]) -> str:
    width = max(len(name) for name, _, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value:>12,.1f}  {note}" for name, value, note in rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time modelmem's commands (figures only).")
    parser.add_argument(
        "--quick", action="store_true", help="Skip the slow rows (torch imports, measure)."
    )
    args = parser.parse_args(argv)
    print(_versions(), flush=True)
    started = time.perf_counter()
    results = run(args.quick)
    print()
    print(format_table(results))
    print("\nin-process figures (ms unless the name says otherwise)")
    print(format_extra(extra_rows(args.quick)))
    print(f"\n{time.perf_counter() - started:.0f} s in all")
    return 1 if any(r.failed for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())

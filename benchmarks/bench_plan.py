"""Timings of the planner and of fit over catalogues: figures, not assertions.

    python benchmarks/bench_plan.py

Rows (in-process, after the catalogues are loaded; median of 5 runs, each with a fresh
planner so no estimate is reused between runs):

- a plan of one model for every device of the accelerator catalogue (inference, default
  objective: the largest context), with the number of estimator calls it made;
- the same for QLoRA (objective: the largest batch);
- a plan of full training on up to 8 × H100 (ZeRO stages, optimizers, checkpointing);
- a fit of every catalogue model against one device (inference, context 8192).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

MODEL = "llama-3.1-8b"
RUNS = 5


def _median_ms(work: Callable[[], str]) -> tuple[float, str]:
    times: list[float] = []
    note = ""
    for _ in range(RUNS):
        started = time.perf_counter()
        note = work()
        times.append((time.perf_counter() - started) * 1e3)
    return statistics.median(times), note


def run() -> list[tuple[str, float, str]]:
    """(name, milliseconds, note) rows."""
    from fractions import Fraction

    from modelmem.app.entry import fit_catalogue
    from modelmem.app.fitting import build_workload_request
    from modelmem.app.models import resolve_model
    from modelmem.app.planning import plan_request_for
    from modelmem.hardware.catalogue import all_devices, get_device
    from modelmem.model.sources.catalogue import load_catalogue
    from modelmem.planner import Planner

    model = resolve_model(MODEL)
    spec = model.spec

    def request(goal: str, max_devices: int = 1) -> object:
        kind = "inference" if goal == "inference" else "train"
        workload = build_workload_request(kind, {}, frozenset(), None)
        return plan_request_for(
            model,
            workload,
            goal,
            max_devices=max_devices,
            reserve=Fraction(5, 100),
            objective=None,
            top=5,
            offload=True,
        )

    devices = all_devices()
    entries = list(load_catalogue().values())
    rows: list[tuple[str, float, str]] = []

    def all_devices_plan(goal: str) -> Callable[[], str]:
        def work() -> str:
            planner = Planner(spec)
            plan_request = request(goal)
            plans = [planner.plan(d, plan_request) for d in devices]  # type: ignore[arg-type]
            fitting = sum(1 for p in plans if p.options)
            return f"{len(devices)} devices, {fitting} with a fit, {planner.estimates} estimates"

        return work

    for goal in ("inference", "qlora"):
        ms, note = _median_ms(all_devices_plan(goal))
        rows.append((f"plan {MODEL} ({goal}) on every catalogue device", ms, note))

    def train_plan() -> str:
        planner = Planner(spec)
        result = planner.plan(get_device("h100"), request("train", 8))  # type: ignore[arg-type]
        return f"{result.searched} configurations, {planner.estimates} estimates"

    ms, note = _median_ms(train_plan)
    rows.append((f"plan {MODEL} (train) on up to 8 × H100", ms, note))

    def fit_all() -> str:
        rows = fit_catalogue({"context": 8192}, frozenset({"context"}), device="h100")
        fits = sum(1 for r in rows if r["fits"])
        return f"{len(entries)} models, {fits} fit (the fit command's own path)"

    ms, note = _median_ms(fit_all)
    rows.append(("fit every catalogue model on H100 (inference, context ≤ 8192)", ms, note))
    return rows


def main() -> int:
    rows = run()
    width = max(len(name) for name, _, _ in rows)
    print(f"{'benchmark'.ljust(width)}  {'median':>10}  note")
    print(f"{'-' * width}  {'-' * 10}  ----")
    for name, ms, note in rows:
        print(f"{name.ljust(width)}  {ms:>7.1f} ms  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

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
    from modelmem.errors import ModelMemError
    from modelmem.hardware.catalogue import all_devices, get_device
    from modelmem.hardware.fit import check_fit
    from modelmem.model.sources import resolve
    from modelmem.model.sources.catalogue import load_catalogue, spec_from_entry
    from modelmem.planner import Config, Planner, PlanRequest, estimate

    spec = resolve(MODEL).spec
    assert spec is not None
    devices = all_devices()
    entries = list(load_catalogue().values())
    rows: list[tuple[str, float, str]] = []

    def all_devices_plan(goal: str) -> Callable[[], str]:
        def work() -> str:
            planner = Planner(spec)
            plans = [planner.plan(d, PlanRequest(goal=goal)) for d in devices]
            fitting = sum(1 for p in plans if p.options)
            return f"{len(devices)} devices, {fitting} with a fit, {planner.estimates} estimates"

        return work

    for goal in ("inference", "qlora"):
        ms, note = _median_ms(all_devices_plan(goal))
        rows.append((f"plan {MODEL} ({goal}) on every catalogue device", ms, note))

    def train_plan() -> str:
        planner = Planner(spec)
        result = planner.plan(get_device("h100"), PlanRequest(goal="train", max_devices=8))
        return f"{result.searched} configurations, {planner.estimates} estimates"

    ms, note = _median_ms(train_plan)
    rows.append((f"plan {MODEL} (train) on up to 8 × H100", ms, note))

    specs = [spec_from_entry(e) for e in entries]
    h100 = get_device("h100")
    request = PlanRequest()

    def fit_all() -> str:
        fits = 0
        for s in specs:
            config = Config(
                goal="inference",
                devices=1,
                batch=1,
                length=min(s.context_length, 8192),
                dtype="bf16",
            )
            try:
                fits += check_fit(estimate(s, config, request), h100).fits
            except ModelMemError:  # the estimator cannot describe this model
                continue
        return f"{len(specs)} models, {fits} fit"

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

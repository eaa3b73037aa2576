"""A small load on the web API over loopback, memory-heavy requests in the mix: no 5xx,
no transport error.
Latency is printed (pytest -s), never asserted: speed is the benchmark's job
(benchmarks/load_test.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.load_test import run_load, serving


@pytest.mark.slow
def test_300_requests_at_30_concurrent_no_5xx() -> None:
    with serving() as base:
        result = run_load(base, 300, 30)
    print(result.summary())
    assert result.failures == []
    # 429 is the bounded queue's "retry": allowed; anything else must be a 200
    assert set(result.statuses) <= {200, 429} and result.statuses[200] >= 270
    assert len(result.latencies_ms) == 300
    assert set(result.by_kind) == {"cheap", "estimate", "heavy"}

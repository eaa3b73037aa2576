"""Load test of the web API on loopback: figures, not assertions.

    python benchmarks/load_test.py                       # 2,000 requests, 50 concurrent
    python benchmarks/load_test.py --requests 300 --concurrency 30

Starts the app under uvicorn in a thread on a free loopback port, sends a mix of endpoints
from an httpx async client — cheap requests (catalogues, params), estimates (inference,
train, fit, sweeps) and memory-heavy ones (a large pasted config, a million-token context,
a training plan over 64 devices, a fit of every catalogue model) — and prints the count of
errors (any 5xx or transport error; a 429 is the server's bounded queue saying "retry"),
the latency percentiles of each kind and the growth of the process's peak memory.
tests/robustness/test_load.py runs a smaller load and asserts only that no answer is a 5xx.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

MODEL = "llama-3.1-8b"

# A large but legal pasted config: 126 layers, a 262k vocabulary, 16k wide (Llama-405B-like
# with Gemma's vocabulary), as a client may paste.
BIG_CONFIG: dict[str, Any] = {
    "model_type": "llama",
    "hidden_size": 16384,
    "intermediate_size": 53248,
    "num_hidden_layers": 126,
    "num_attention_heads": 128,
    "num_key_value_heads": 8,
    "vocab_size": 262144,
    "max_position_embeddings": 131072,
}

# (kind, method, path, JSON body): the mix, cycled through in order
MIX: list[tuple[str, str, str, dict[str, Any] | None]] = [
    ("cheap", "GET", "/api/models", None),
    ("cheap", "GET", "/api/devices", None),
    ("cheap", "GET", "/api/formats", None),
    ("cheap", "POST", "/api/params", {"source": MODEL}),
    ("estimate", "POST", "/api/inference", {"source": MODEL, "batch": 4, "context": 8192}),
    ("estimate", "POST", "/api/inference", {"source": "qwen2.5-7b", "engine": "vllm"}),
    ("estimate", "POST", "/api/train", {"source": MODEL, "batch": 2, "seq": 4096}),
    ("estimate", "POST", "/api/train", {"source": "llama-3.2-1b", "method": "lora"}),
    ("estimate", "POST", "/api/fit", {"source": MODEL, "device": "rtx-4090", "context": 8192}),
    ("estimate", "POST", "/api/inference/sweep", {"source": MODEL, "values": [1024, 16384]}),
    ("heavy", "POST", "/api/inference", {"source": BIG_CONFIG, "context": 1_000_000}),
    ("heavy", "POST", "/api/train", {"source": BIG_CONFIG, "zero": 3, "devices": 64}),
    ("heavy", "POST", "/api/plan", {"source": MODEL, "device": "h100", "goal": "qlora"}),
    (
        "heavy",
        "POST",
        "/api/plan",
        {"source": "llama-3.1-70b", "device": "h100", "count": 64, "goal": "train"},
    ),
    ("heavy", "POST", "/api/fit", {"source": "llama-3.1-405b", "device": "h100", "count": 8}),
]
KINDS = ("cheap", "estimate", "heavy")


@dataclass
class LoadResult:
    requests: int
    concurrency: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    by_kind: dict[str, list[float]] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)  # transport errors and 5xx answers
    peak_rss_growth_mib: float = 0.0

    @property
    def errors(self) -> int:
        return len(self.failures)

    @staticmethod
    def _percentile(values: list[float], p: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    def percentile(self, p: float) -> float:
        return self._percentile(self.latencies_ms, p)

    def summary(self) -> str:
        lines = [
            f"{self.requests} requests, {self.concurrency} concurrent, {self.seconds:.2f} s "
            f"({self.requests / self.seconds:.0f} req/s); errors {self.errors}; statuses "
            f"{dict(sorted(self.statuses.items()))}; latency p50 {self.percentile(50):.1f} ms, "
            f"p90 {self.percentile(90):.1f} ms, p99 {self.percentile(99):.1f} ms, max "
            f"{max(self.latencies_ms):.1f} ms, mean {statistics.fmean(self.latencies_ms):.1f} ms; "
            f"peak RSS grew {self.peak_rss_growth_mib:.0f} MiB"
        ]
        for kind in KINDS:
            values = self.by_kind.get(kind)
            if values:
                lines.append(
                    f"  {kind:<8} {len(values):>5} answers: p50 "
                    f"{self._percentile(values, 50):.1f} ms, p99 "
                    f"{self._percentile(values, 99):.1f} ms"
                )
        return "\n".join(lines)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(port: int | None = None) -> Iterator[str]:
    """The app under uvicorn in a daemon thread on loopback; yields its base URL."""
    import uvicorn

    from modelmem.web.app import create_app

    port = port or free_port()
    config = uvicorn.Config(
        create_app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30  # start-up guard, not a measurement
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


async def _load(base: str, requests: int, concurrency: int) -> LoadResult:
    import httpx

    result = LoadResult(requests, concurrency, 0.0)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:

        async def worker() -> None:
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                kind, method, path, body = MIX[i % len(MIX)]
                started = time.perf_counter()
                try:
                    response = await client.request(method, path, json=body)
                except httpx.HTTPError as e:
                    result.failures.append(f"{method} {path}: {type(e).__name__}: {e}")
                    continue
                elapsed = (time.perf_counter() - started) * 1e3
                result.latencies_ms.append(elapsed)
                result.by_kind.setdefault(kind, []).append(elapsed)
                result.statuses[response.status_code] += 1
                if response.status_code >= 500:
                    result.failures.append(
                        f"{method} {path}: {response.status_code} {response.text[:200]}"
                    )

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.seconds = time.perf_counter() - started
    return result


def _peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_load(base: str, requests: int, concurrency: int) -> LoadResult:
    before = _peak_rss_mib()
    result = asyncio.run(_load(base, requests, concurrency))
    result.peak_rss_growth_mib = _peak_rss_mib() - before
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Load test of the web API on loopback.")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args(argv)
    with serving() as base:
        run_load(base, min(len(MIX), args.requests), 1)  # warm the caches once
        result = run_load(base, args.requests, args.concurrency)
    print(result.summary())
    for failure in result.failures[:10]:
        print("  " + failure)
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())

"""Load test of the web API on loopback: figures, not assertions.

    python benchmarks/load_test.py                       # 2,000 requests, 50 concurrent
    python benchmarks/load_test.py --requests 300 --concurrency 30

Starts the app under uvicorn in a thread on a free loopback port, sends a mix of endpoints
(params, inference, train, fit, plan, the sweeps and the catalogues) from an httpx async
client, and prints the count of errors (anything but 200) and the latency percentiles.
tests/robustness/test_load.py runs a smaller load and asserts only that every answer is 200.
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

# (method, path, JSON body): the mix, cycled through in order
MIX: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/api/params", {"source": MODEL}),
    ("POST", "/api/inference", {"source": MODEL, "batch": 4, "context": 8192}),
    ("POST", "/api/inference", {"source": "qwen2.5-7b", "engine": "vllm", "memory": "80GB"}),
    ("POST", "/api/train", {"source": MODEL, "batch": 2, "seq": 4096, "checkpointing": True}),
    ("POST", "/api/train", {"source": "llama-3.2-1b", "method": "lora", "recipe": "pure-bf16"}),
    ("POST", "/api/fit", {"source": MODEL, "device": "rtx-4090", "context": 8192}),
    ("POST", "/api/plan", {"source": MODEL, "device": "h100", "goal": "qlora"}),
    ("POST", "/api/inference/sweep", {"source": MODEL, "values": [1024, 4096, 16384]}),
    ("GET", "/api/models", None),
    ("GET", "/api/devices", None),
    ("GET", "/api/formats", None),
]


@dataclass
class LoadResult:
    requests: int
    concurrency: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)  # transport errors and non-200 answers

    @property
    def errors(self) -> int:
        return len(self.failures)

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    def summary(self) -> str:
        return (
            f"{self.requests} requests, {self.concurrency} concurrent, {self.seconds:.2f} s "
            f"({self.requests / self.seconds:.0f} req/s); errors {self.errors}; statuses "
            f"{dict(sorted(self.statuses.items()))}; latency p50 {self.percentile(50):.1f} ms, "
            f"p90 {self.percentile(90):.1f} ms, p99 {self.percentile(99):.1f} ms, max "
            f"{max(self.latencies_ms):.1f} ms, mean {statistics.fmean(self.latencies_ms):.1f} ms"
        )


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
                method, path, body = MIX[i % len(MIX)]
                started = time.perf_counter()
                try:
                    response = await client.request(method, path, json=body)
                except httpx.HTTPError as e:
                    result.failures.append(f"{method} {path}: {type(e).__name__}: {e}")
                    continue
                result.latencies_ms.append((time.perf_counter() - started) * 1e3)
                result.statuses[response.status_code] += 1
                if response.status_code != 200:
                    result.failures.append(
                        f"{method} {path}: {response.status_code} {response.text[:200]}"
                    )

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.seconds = time.perf_counter() - started
    return result


def run_load(base: str, requests: int, concurrency: int) -> LoadResult:
    return asyncio.run(_load(base, requests, concurrency))


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

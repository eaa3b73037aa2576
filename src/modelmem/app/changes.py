"""What to change: the smallest single changes that make a workload fit its budget.

Each candidate changes one thing the user can change — a flag, a format, the batch or
the length, the devices — and is priced by the same estimator as the request itself, so
its total is exact for that configuration. Candidates are tried in order of how much they
cost the user (recomputation before precision, precision before a smaller workload, a
smaller workload before more hardware); the list keeps the ones that fit first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from modelmem.app.requests import InferenceRequest, TrainRequest
from modelmem.errors import ModelMemError

__all__ = ["changes_for"]

Price = Callable[[Any], int]  # a request -> peak bytes per device


def _with(request: Any, **changes: Any) -> Any:
    return replace(request, **changes, given=request.given | frozenset(changes))


def _largest(price: Price, request: Any, name: str, budget: int) -> int:
    """The largest value of ``name`` below the request's whose price fits (0: none)."""
    current = getattr(request, name)
    if current is None or current <= 1:
        return 0
    low, high = 0, current  # price(high) does not fit
    while high - low > 1:
        mid = (low + high) // 2
        if price(_with(request, **{name: mid})) <= budget:
            low = mid
        else:
            high = mid
    return low


def _inference_candidates(
    request: InferenceRequest, engine: str, budget: int, price: Price, count: int
) -> Iterator[tuple[str, Any]]:
    cache = "q8_0" if engine == "llama.cpp" else "fp8"
    if request.kv_dtype is None or request.kv_dtype.lower() not in (cache, "fp8-e4m3", "q4_0"):
        yield f"--kv-dtype {cache}", _with(request, kv_dtype=cache)
    formats = ("gguf-q8_0", "gguf-q4_k_m") if engine == "llama.cpp" else ("fp8", "awq-4bit-g128")
    for dtype in formats:
        if request.dtype != dtype:
            yield f"--dtype {dtype}", _with(request, dtype=dtype)
    context = _largest(price, request, "context", budget) if request.context else 0
    if context:
        yield f"--context {context}", _with(request, context=context)
    batch = _largest(price, request, "batch", budget)
    if batch:
        yield f"--batch {batch}", _with(request, batch=batch)
    if engine != "llama.cpp":
        yield f"--count {2 * count} (tensor parallel)", _with(request, tp=2 * request.tp)


def _training_candidates(
    request: TrainRequest, method: str, budget: int, price: Price, count: int
) -> Iterator[tuple[str, Any]]:
    if not request.checkpointing:
        yield "--checkpointing", _with(request, checkpointing=True, selective_checkpointing=False)
    if request.optimizer in ("adamw", "adam"):
        yield "--optimizer adamw-8bit", _with(request, optimizer="adamw-8bit")
    batch = _largest(price, request, "batch", budget)
    if batch:
        accumulate = -(-request.batch * request.grad_accumulation // batch)
        yield (
            f"--batch {batch} --grad-accumulation {accumulate}",
            _with(request, batch=batch, grad_accumulation=accumulate),
        )
    seq = _largest(price, request, "seq", budget)
    if seq:
        yield f"--seq {seq}", _with(request, seq=seq)
    if method == "full":
        if request.offload_optimizer == "none" and request.tp == 1 and request.pp == 1:
            yield (
                "--zero 2 --offload-optimizer cpu",
                _with(request, zero=max(2, request.zero), offload_optimizer="cpu"),
            )
        yield "--method lora", _with(request, method="lora")
    if method != "qlora":
        yield "--method qlora", _with(request, method="qlora")
    if method == "full" and request.fsdp is None:
        devices = 2 * request.devices
        yield (
            f"--count {2 * count} --zero 3",
            _with(request, zero=3, devices=devices),
        )


def changes_for(
    request: InferenceRequest | TrainRequest,
    price: Price,
    budget: int,
    *,
    engine: str = "transformers",
    method: str = "full",
    count: int = 1,
) -> list[dict[str, Any]]:
    """``[{change, total_bytes, fits}]`` for single changes of ``request`` that lower its
    peak: those that fit first (in the order tried), then the rest; a change the estimator
    refuses is left out."""
    current = price(request)
    if isinstance(request, InferenceRequest):
        candidates = _inference_candidates(request, engine, budget, price, count)
    else:
        candidates = _training_candidates(request, method, budget, price, count)
    rows: list[dict[str, Any]] = []
    for change, changed in candidates:
        try:
            total = price(changed)
        except ModelMemError:  # not a configuration this model or engine can run
            continue
        if total < current:
            rows.append({"change": change, "total_bytes": total, "fits": total <= budget})
    return [r for r in rows if r["fits"]] + [r for r in rows if not r["fits"]]

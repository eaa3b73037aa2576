"""Estimates against published figures whose settings are known.

``data/published.json`` holds memory figures that engines, papers and docs printed —
llama.cpp KV and weight buffers, GGUF file sizes, the vLLM paper's KV bytes per token,
SGLang's KV pool, DeepSpeed's ZeRO-3 estimator, the ZeRO paper's model states — each with
its source, the settings behind it, the assumptions that map it onto modelmem, and a
tolerance. :func:`compare_published` recomputes modelmem's figure for every row; no torch,
no file other than the data, no network.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from importlib import resources
from typing import Any

from modelmem.errors import InvalidValueError

_UNITS: dict[str, int] = {
    "B": 1,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "kB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
}


@dataclass(frozen=True, kw_only=True, slots=True)
class PublishedRow:
    id: str
    what: str
    figure: str  # as published, with its unit corrected where a tool prints GB for GiB
    kind: str
    model: str | None
    config: Mapping[str, Any] | None
    settings: Mapping[str, Any]
    tolerance: float  # largest |error| accepted, a fraction
    source: str
    url: str
    assumptions: str

    @property
    def published_bytes(self) -> Fraction:
        """The figure in bytes, exact (a rounded figure stays fractional)."""
        number, _, unit = self.figure.partition(" ")
        if unit not in _UNITS:
            raise InvalidValueError(f"published[{self.id}].figure", self.figure, "unknown unit")
        return Fraction(number) * _UNITS[unit]


@dataclass(frozen=True, slots=True)
class PublishedResult:
    row: PublishedRow
    estimate_bytes: int

    @property
    def error(self) -> float:
        """(estimate − published) / published."""
        published = self.row.published_bytes
        return float((self.estimate_bytes - published) / published)

    @property
    def passed(self) -> bool:
        return abs(self.error) <= self.row.tolerance


@cache
def load_published() -> tuple[PublishedRow, ...]:
    text = resources.files("modelmem").joinpath("data/published.json").read_text("utf-8")
    return tuple(
        PublishedRow(
            id=r["id"],
            what=r["what"],
            figure=r["figure"],
            kind=r["kind"],
            model=r.get("model"),
            config=r.get("config"),
            settings=r.get("settings", {}),
            tolerance=float(r["tolerance"]),
            source=r["source"],
            url=r["url"],
            assumptions=r["assumptions"],
        )
        for r in json.loads(text)["rows"]
    )


def _spec(row: PublishedRow) -> Any:
    if row.config is not None:
        from modelmem.model.sources.hf_config import spec_from_config

        return spec_from_config(dict(row.config))
    from modelmem.model.sources import resolve

    spec = resolve(str(row.model)).spec
    if spec is None:
        raise InvalidValueError(f"published[{row.id}].model", row.model, "has no architecture")
    return spec


def _llama_cpp(row: PublishedRow, component: str) -> int:
    from modelmem.memory.inference import InferenceWorkload, estimate_inference
    from modelmem.memory.serving import EngineSettings

    s = row.settings
    workload = InferenceWorkload(
        batch=int(s.get("batch", 1)),
        context=int(s["context"]),
        engine="llama.cpp",
        kv_dtype=s.get("kv_dtype"),
    )
    engine = EngineSettings(
        n_ubatch=int(s.get("n_ubatch", 512)),
        flash_attention=bool(s.get("flash_attention", True)),
    )
    breakdown = estimate_inference(_spec(row), workload, engine).breakdown
    return next(c.bytes for c in breakdown.components if c.name == component)


def _k_full_layers(row: PublishedRow) -> int:
    from modelmem.formats import get_format
    from modelmem.memory.kvcache import cache_layout

    layout = cache_layout(_spec(row), get_format(row.settings["kv_dtype"]))
    return int(row.settings["cells"]) * layout.full_row_bytes // 2


def _gguf_weights(row: PublishedRow) -> int:
    from modelmem.memory.weights import estimate_weights

    return estimate_weights(_spec(row), row.settings["scheme"]).total_bytes


def _kv_per_token(row: PublishedRow) -> int:
    from modelmem.formats import get_format
    from modelmem.memory.kvcache import cache_layout

    s = row.settings
    return cache_layout(
        _spec(row), get_format(s["kv_dtype"]), tp=int(s.get("tp", 1))
    ).bytes_per_token


def _kv_pool_k(row: PublishedRow) -> int:
    return int(row.settings["tokens"]) * _kv_per_token(row) // 2


def _deepspeed_zero3(row: PublishedRow) -> int:
    from modelmem.memory.parallel import estimate_zero3_model_states_mem_needs

    s = dict(row.settings)
    side = s.pop("side")
    cpu, gpu, _ = estimate_zero3_model_states_mem_needs(
        int(s.pop("total_params")), int(s.pop("largest_layer_params")), **s
    )
    return gpu if side == "gpu" else cpu


def _zero_model_states(row: PublishedRow) -> int:
    from modelmem.memory.parallel import zero_model_states

    s = row.settings
    psi = int(s["params"])  # fp16 weights 2Ψ, fp16 gradients 2Ψ, fp32 master + Adam 12Ψ
    return sum(zero_model_states(2 * psi, 2 * psi, 12 * psi, int(s["stage"]), int(s["devices"])))


def _training_model_states(row: PublishedRow) -> int:
    from modelmem.memory.training import TrainingWorkload, estimate_training

    workload = TrainingWorkload(**dict(row.settings))
    breakdown = estimate_training(_spec(row), workload).breakdown
    states = ("weights", "gradients", "optimizer_states")
    return sum(c.bytes for c in breakdown.components if c.name in states)


_KINDS: dict[str, Callable[[PublishedRow], int]] = {
    "llama_cpp_kv": lambda row: _llama_cpp(row, "kv_cache"),
    "llama_cpp_compute": lambda row: _llama_cpp(row, "compute_buffer"),
    "llama_cpp_k_full_layers": _k_full_layers,
    "gguf_weights": _gguf_weights,
    "weights": _gguf_weights,
    "kv_per_token": _kv_per_token,
    "kv_pool_k": _kv_pool_k,
    "deepspeed_zero3": _deepspeed_zero3,
    "zero_model_states": _zero_model_states,
    "training_model_states": _training_model_states,
}

KINDS: tuple[str, ...] = tuple(_KINDS)


def estimate_published(row: PublishedRow) -> PublishedResult:
    """modelmem's figure for ``row``."""
    compute = _KINDS.get(row.kind)
    if compute is None:
        raise InvalidValueError(f"published[{row.id}].kind", row.kind, f"one of {KINDS}")
    return PublishedResult(row, compute(row))


def compare_published() -> list[PublishedResult]:
    return [estimate_published(row) for row in load_published()]

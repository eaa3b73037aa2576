"""Estimates against published figures whose settings are known.

``data/published.json`` holds memory figures that engines, papers, docs and model cards
printed — llama.cpp KV, weight and compute buffers, GGUF and safetensors file sizes, vLLM
weight and KV-pool lines, SGLang's KV pool, training peaks, DeepSpeed's ZeRO-3 estimator,
the ZeRO paper's model states — each with its source, the settings behind it, what the
figure includes (allocated, reserved or nvidia-smi; GiB or GB) and the modelmem command
line that prices the same quantity. :func:`compare_published` runs every command line
through the application layer (the same path as the CLI's) and reads the named parts of
its answer; no torch, no network.

Each kind of figure has one band (:data:`BANDS`); a figure printed with few digits is
also allowed its own rounding. A row outside its band stays in the suite with its cause
(``outside``), so the doc says why instead of dropping it.
"""

from __future__ import annotations

import json
import shlex
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import cache
from importlib import resources
from pathlib import Path
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

# The largest |error| each kind of figure may have, and why it is not 0.
BANDS: dict[str, float] = {
    # file and buffer sizes are exact sums of tensor sizes; the band covers a file's
    # header, vocabulary and 32-byte alignment, and a figure rounded to 0.01 GB
    "gguf_file": 0.005,
    "llama_cpp_weights": 0.005,
    "safetensors_total": 0.005,
    "vllm_weights": 0.005,
    # KV caches are exact (cells × row bytes); the band covers rounding of the log line
    "llama_cpp_kv": 0.005,
    "kv_per_token": 0.005,
    "sglang_kv": 0.005,
    # a pool is what is left of the device after weights, profile peak and graphs:
    # version-dependent profile terms move it by a few percent of the pool
    "vllm_kv_pool": 0.05,
    # ggml's graph allocator is modelled, not replayed
    "llama_cpp_compute": 0.10,
    # peaks read with max_memory_allocated/reserved or nvidia-smi after real steps
    "training_peak": 0.10,
    "qlora_peak": 0.10,
    # estimators and papers: closed formulas of the parameter count
    "deepspeed_estimator": 0.005,
    "paper_model_states": 0.05,
}


@dataclass(frozen=True, kw_only=True, slots=True)
class PublishedRow:
    id: str
    kind: str
    what: str
    figure: str  # as published, with its unit corrected where a tool prints GB for GiB
    includes: str  # allocated / reserved / nvidia-smi / file bytes, and the unit printed
    command: str | None  # the modelmem command line that prices the same quantity
    read: str  # which parts of the command's JSON answer make the figure
    config: Mapping[str, Any] | None  # a config.json the command's SOURCE names
    settings: Mapping[str, Any]  # the published run's settings, as published
    source: str
    url: str
    assumptions: str
    outside: str | None  # why the row is outside its band: the cause and the issue item

    @property
    def published_bytes(self) -> Fraction:
        """The figure in bytes, exact (a rounded figure stays fractional)."""
        number, _, unit = self.figure.partition(" ")
        if unit not in _UNITS:
            raise InvalidValueError(f"published[{self.id}].figure", self.figure, "unknown unit")
        return Fraction(number) * _UNITS[unit]

    @property
    def rounding(self) -> float:
        """Half a unit of the figure's last printed digit, relative to the figure."""
        number = Decimal(self.figure.partition(" ")[0])
        exponent = number.as_tuple().exponent
        half = Fraction(1, 2) * Fraction(10) ** int(exponent)
        return float(half / Fraction(number))

    @property
    def band(self) -> float:
        return max(BANDS[self.kind], self.rounding)


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
        return abs(self.error) <= self.row.band


def _row(r: Mapping[str, Any]) -> PublishedRow:
    kind = str(r["kind"])
    if kind not in BANDS:
        raise InvalidValueError(f"published[{r['id']}].kind", kind, f"one of {tuple(BANDS)}")
    return PublishedRow(
        id=r["id"],
        kind=kind,
        what=r["what"],
        figure=r["figure"],
        includes=r["includes"],
        command=r.get("command"),
        read=r["read"],
        config=r.get("config"),
        settings=r.get("settings", {}),
        source=r["source"],
        url=r["url"],
        assumptions=r["assumptions"],
        outside=r.get("outside"),
    )


@cache
def load_published() -> tuple[PublishedRow, ...]:
    text = resources.files("modelmem").joinpath("data/published.json").read_text("utf-8")
    return tuple(_row(r) for r in json.loads(text)["rows"])


def parse_command(row: PublishedRow) -> tuple[str, str, dict[str, Any]]:
    """(``inference`` | ``train``, SOURCE, options) of the row's command line, parsed by
    the CLI's own parser of the estimate commands."""
    from modelmem.app.requests import InferenceRequest, TrainRequest
    from modelmem.cli.fast import parse

    words = shlex.split(row.command or "")
    if len(words) < 3 or words[0] != "modelmem" or words[1] not in ("inference", "train"):
        raise InvalidValueError(f"published[{row.id}].command", row.command, "not an estimate")
    cls = InferenceRequest if words[1] == "inference" else TrainRequest
    parsed = parse(words[2:], cls.specs())
    if parsed is None:
        raise InvalidValueError(f"published[{row.id}].command", row.command, "not parsed")
    source, options, _ = parsed
    return words[1], source, options


def _answer(row: PublishedRow) -> dict[str, Any]:
    """The JSON answer of the row's command line."""
    from modelmem.app.entry import inference_data, train_data

    command, source, options = parse_command(row)
    run = inference_data if command == "inference" else train_data
    if row.config is None:
        return run(source, options)
    # SOURCE names a config.json given inline: write it where the command expects it
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / Path(source).parent.name / "config.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(dict(row.config)))
        return run(str(path), options)


def _value(answer: Mapping[str, Any], term: str) -> int:
    """One term of a ``read`` expression: a component's bytes, ``total`` (total_bytes)
    or ``@key.sub`` (a value of the answer)."""
    if term == "total":
        return int(answer["total_bytes"])
    if term.startswith("@"):
        value: Any = answer
        for key in term[1:].split("."):
            value = value[key]
        return int(value)
    for c in answer["components"]:
        if c["name"] == term:
            return int(c["bytes"])
    return 0  # a component the answer does not have (e.g. no sampler) holds nothing


def read_answer(answer: Mapping[str, Any], read: str) -> int:
    """``read`` is ``a + b - c`` of terms, optionally ``/ n`` at the end (e.g. K alone is
    ``kv_cache / 2``)."""
    expression, _, divisor = read.partition("/")
    total, sign = 0, 1
    for word in expression.split():
        if word in "+-":
            sign = 1 if word == "+" else -1
            continue
        total += sign * _value(answer, word)
    return total // int(divisor) if divisor.strip() else total


# Figures no command line can price: a model outside the catalogue's architectures (T5)
# or a bare parameter count (the ZeRO paper); the Python API prices them.
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


def _k_full_layers(row: PublishedRow) -> int:
    from modelmem.app.models import resolve_model
    from modelmem.formats import get_format
    from modelmem.memory.kvcache import cache_layout

    spec = resolve_model(str(row.settings["model"])).spec
    layout = cache_layout(spec, get_format(row.settings["kv_dtype"]))
    return int(row.settings["cells"]) * layout.full_row_bytes // 2


_API: dict[str, Callable[[PublishedRow], int]] = {
    "api:estimate_zero3_model_states_mem_needs": _deepspeed_zero3,
    "api:zero_model_states": _zero_model_states,
    "api:k_full_layers": _k_full_layers,
}


def estimate_published(row: PublishedRow) -> PublishedResult:
    """modelmem's figure for ``row``."""
    if row.command is None:
        compute = _API.get(row.read)
        if compute is None:
            raise InvalidValueError(f"published[{row.id}].read", row.read, f"one of {tuple(_API)}")
        return PublishedResult(row, compute(row))
    return PublishedResult(row, read_answer(_answer(row), row.read))


def compare_published() -> list[PublishedResult]:
    return [estimate_published(row) for row in load_published()]

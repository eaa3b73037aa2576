"""Check modelmem's fake-tensor peaks against a real CUDA run of the same step.

For a small grid of catalogue models (no weights: each model is built from modelmem's
built-in config.json with random initialization, directly on the GPU) this runs the step
that ``modelmem measure`` runs, records what the CUDA caching allocator saw, and puts it
beside modelmem's fake measurement of the same settings (made in this script, on the CPU,
through ``run_measurement``, so deep models are extrapolated exactly from shallow copies as
the CLI does):

* training: forward (under autocast for ``amp-*``), loss via ``model.loss_function``,
  backward, ``optimizer.step()`` (AdamW, foreach), ``zero_grad(set_to_none=True)``;
  2 steps;
* inference: no grad, a prefill with ``logits_to_keep=1`` and the cache, then decode
  steps of one token each with that cache.

The model, optimizer and checkpointing are set up by the same helpers modelmem's
measurement uses (``modelmem.measurement.run``), so the comparison isolates the accounting:
fake CPU tensors with CUDA emulated versus CUDA itself. On the CUDA side no emulation
patch is applied; transformers and PyTorch choose their CUDA paths themselves.

Columns (one row per grid entry; bytes are integers):

* ``fake_bytes`` / ``fake_rounded_bytes``: modelmem's exact live-tensor peak, and the
  same with each storage rounded up to the allocator's 512-byte blocks;
* ``real_bytes``: ``torch.cuda.max_memory_allocated()`` over the step, less what was
  allocated before the row began (``real_base_bytes``: the cuBLAS workspaces made by a
  warm-up at start-up, and anything an earlier row left); with ``--device cpu`` the
  peak of modelmem's own tracker on real CPU tensors (``MeasureSettings(fake=False)``,
  the whole model);
* ``real_reserved_bytes``: ``torch.cuda.max_memory_reserved()`` over the step;
* ``device_used_bytes``: total − free from ``torch.cuda.mem_get_info()`` at the end of the
  step, less the baseline taken at start-up (through NVML before CUDA is initialized
  where possible, else just after; the header says which): the CUDA context, the
  allocator's reserved segments and whatever libraries allocate outside it;
* ``diff_bytes`` / ``diff_pct``: ``real_bytes`` minus ``fake_rounded_bytes`` on CUDA (the
  allocator counts rounded blocks), minus ``fake_bytes`` on the CPU (the tracker is exact);
  ``compared_to`` names which;
* ``fake_peak_phase`` / ``real_peak_phase``: where each peak happened (``step1.backward``,
  ``prefill``, ...); the JSON output has every phase's peak on both sides;
* ``command``: the ``modelmem inference|train`` command line of the row (for a shallow copy,
  the config is the first ``layers`` layers of the named model);
* ``estimate_bytes`` / ``estimate_reserved_bytes`` / ``estimate_device_bytes``: modelmem's
  *estimate* of that command line: its tensor peak (total less the assumed CUDA context and
  allocator slack), the tensor peak plus the assumed slack (5 % by default: what
  ``max_memory_reserved`` should be), and the whole total with the assumed CUDA context
  (400 MiB by default: what nvidia-smi should show for the process);
* ``est_vs_allocated_pct`` / ``est_vs_reserved_pct`` / ``est_vs_device_pct``: each estimate
  against ``real_bytes`` (``max_memory_allocated``), ``real_reserved_bytes``
  (``max_memory_reserved``) and ``device_used_bytes`` (nvidia-smi's view), in percent;
* ``measured_slack_pct`` / ``measured_context_bytes``: what the run says the two assumed
  terms are: reserved ÷ allocated − 1, and device used − reserved (context, cuBLAS
  workspaces and anything outside the allocator).

One short GPU session (``python scripts/gpu_check.py --out gpu_check.json``, about 5 minutes
on one H100) therefore confirms or corrects the allocator-slack and CUDA-context terms.

Unattended and bounded: rows run one by one, each in its own try/except (an error is
recorded as one line and the next row runs); once the time budget (``--budget``, default
540 s) is spent the row in progress is interrupted and the remaining rows are reported as
skipped. Nothing is downloaded (configs come from the catalogue; the Hub is set offline)
and no remote code is ever trusted. ``PYTORCH_CUDA_ALLOC_CONF`` is used as given.

    python scripts/gpu_check.py --out gpu_check.csv --out gpu_check.json
    python scripts/gpu_check.py --tiny --only llama          # a quick smoke test on the GPU
    python scripts/gpu_check.py --device cpu --tiny          # no GPU: real CPU vs fake
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import csv
import gc
import json
import os
import platform
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

DEFAULT_BUDGET_S = 540.0

COLUMNS: tuple[str, ...] = (
    "name",
    "model",
    "layers",
    "mode",
    "recipe",
    "checkpointing",
    "batch",
    "seq",
    "decode_steps",
    "status",
    "error",
    "fake_bytes",
    "fake_rounded_bytes",
    "fake_peak_phase",
    "real_bytes",
    "real_base_bytes",
    "real_reserved_bytes",
    "device_used_bytes",
    "real_peak_phase",
    "compared_to",
    "diff_bytes",
    "diff_pct",
    "fake_seconds",
    "real_seconds",
    "command",
    "estimate_bytes",
    "estimate_reserved_bytes",
    "estimate_device_bytes",
    "est_vs_allocated_pct",
    "est_vs_reserved_pct",
    "est_vs_device_pct",
    "measured_slack_pct",
    "measured_context_bytes",
)


@dataclass(frozen=True, kw_only=True)
class Row:
    """One grid entry: a catalogue model and the step to run on it."""

    model: str  # catalogue name
    mode: str = "train"
    recipe: str = "amp-bf16"
    batch: int = 1
    seq: int = 2048  # training sequence, or prompt length
    checkpointing: bool = False
    decode_steps: int = 8
    layers: int | None = None  # keep only the first layers (a shallow copy of a big model)
    tiny: bool = False
    tiny_layers: int = 5  # layers of the --tiny version (5: deep enough to extrapolate)

    @property
    def name(self) -> str:
        model = f"{'tiny-' if self.tiny else ''}{self.model}"
        if self.layers is not None:
            model += f"[{self.layers}L]"
        step = "train" if self.mode == "train" else "infer"
        ckpt = "+ckpt" if self.checkpointing and self.mode == "train" else ""
        decode = f"+{self.decode_steps}" if self.mode == "inference" else ""
        return f"{model}/{step}/{self.recipe}{ckpt}/b{self.batch}/s{self.seq}{decode}"


def _train(model: str, **kw: Any) -> Row:
    return Row(model=model, mode="train", **kw)


def _infer(model: str, **kw: Any) -> Row:
    # Inference in bf16 weights: a prefill of 2048 tokens, then 8 decode steps.
    return Row(model=model, mode="inference", recipe="pure-bf16", decode_steps=8, **kw)


MOE: dict[str, Any] = {"layers": 2, "tiny_layers": 2}  # qwen3-30b-a3b cut to 2 layers
GEMMA: dict[str, Any] = {"tiny_layers": 7}  # tiny: 5 sliding + 1 full + 1 sliding layers

GRID: tuple[Row, ...] = (
    _train("llama-3.2-1b", batch=1, seq=2048),
    _train("llama-3.2-1b", batch=2, seq=2048, checkpointing=True),
    _train("llama-3.2-1b", recipe="pure-bf16", batch=2, seq=1024),
    _infer("llama-3.2-1b"),
    _train("qwen3-0.6b", batch=2, seq=1024),
    _train("qwen3-0.6b", recipe="pure-bf16", batch=1, seq=2048, checkpointing=True),
    _infer("qwen3-0.6b"),
    _train("qwen2.5-1.5b", batch=1, seq=512),
    _train("qwen2.5-1.5b", recipe="pure-bf16", batch=2, seq=2048, checkpointing=True),
    _infer("qwen2.5-1.5b"),
    _train("qwen3-30b-a3b", recipe="pure-bf16", batch=1, seq=1024, **MOE),
    _train("qwen3-30b-a3b", batch=1, seq=512, **MOE),
    _infer("qwen3-30b-a3b", **MOE),
    _train("gemma-3-1b", batch=1, seq=2048, **GEMMA),
    _train("gemma-3-1b", recipe="pure-bf16", batch=2, seq=1024, checkpointing=True, **GEMMA),
    _infer("gemma-3-1b", **GEMMA),
)

# --tiny: the same architectures, shrunk (only keys the config already has are replaced).
TINY_SIZES: dict[str, int] = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "moe_intermediate_size": 32,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "vocab_size": 256,
    "num_experts": 4,
    "num_experts_per_tok": 2,
    "sliding_window": 8,
    "query_pre_attn_scalar": 16,
}
TOKEN_IDS = ("bos_token_id", "eos_token_id", "pad_token_id")


def tiny_config(config: dict[str, Any]) -> dict[str, Any]:
    """A small config of the same architecture (special token ids kept inside the vocab)."""
    cfg = copy.deepcopy(config)
    for key, value in TINY_SIZES.items():
        if key in cfg:
            cfg[key] = value
    for key in TOKEN_IDS:
        ids = cfg.get(key)
        if isinstance(ids, int) and ids >= TINY_SIZES["vocab_size"]:
            cfg[key] = TINY_SIZES["vocab_size"] - 1
        elif isinstance(ids, list):
            cfg[key] = [min(i, TINY_SIZES["vocab_size"] - 1) for i in ids]
    return cfg


def tiny_row(row: Row) -> Row:
    """The row on a shrunk config: sequence / 64 (at least 16, twice the tiny window)."""
    return replace(row, tiny=True, seq=max(16, row.seq // 64), layers=row.tiny_layers)


# --------------------------------------------------------------------------- time budget


class BudgetExceeded(Exception):
    """The time budget ran out while a row was running."""


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Interrupt the body after ``seconds`` (SIGALRM; only on the main thread of Unix)."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise BudgetExceeded("time budget reached during the row")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------------------- the steps


def _settings(row: Row, fake: bool) -> Any:
    from modelmem.measurement.run import MeasureSettings

    return MeasureSettings(
        mode=row.mode,
        batch=row.batch,
        seq=row.seq,
        decode_steps=row.decode_steps,
        recipe=row.recipe,
        optimizer="adamw",
        optimizer_impl="foreach",
        checkpointing=row.checkpointing,
        attention="sdpa",
        steps=2,
        fake=fake,
    )


def _config_of(row: Row) -> dict[str, Any]:
    from modelmem.measurement.extrapolate import truncated_config
    from modelmem.model.sources import resolve

    resolved = resolve(row.model)
    if resolved.config is None:
        raise ValueError(f"{row.model} has no config.json in the catalogue")
    config = tiny_config(resolved.config) if row.tiny else copy.deepcopy(resolved.config)
    return truncated_config(config, row.layers) if row.layers is not None else config


def fake_side(row: Row, config: dict[str, Any]) -> Any:
    """modelmem's fake measurement, as the CLI makes it (extrapolated where exact)."""
    from modelmem.measurement.extrapolate import run_measurement
    from modelmem.model.sources.hf_config import spec_from_config

    spec = spec_from_config(config, name=row.model)
    return run_measurement(config, spec, _settings(row, fake=True))


def row_options(row: Row) -> dict[str, Any]:
    """The estimate command's options for the row (the same names as the CLI's)."""
    if row.mode == "inference":
        # a prefill of seq tokens, then decode_steps tokens: the cache holds both
        return {
            "batch": row.batch,
            "context": row.seq + row.decode_steps,
            "prompt": row.seq,
            "dtype": "bf16",
        }
    options: dict[str, Any] = {"batch": row.batch, "seq": row.seq, "recipe": row.recipe}
    if row.checkpointing:
        options["checkpointing"] = True
    return options


def command_line(row: Row) -> str:
    """``modelmem <mode> MODEL --option value ...`` for the row."""
    words = ["modelmem", "train" if row.mode == "train" else "inference", row.model]
    for name, value in row_options(row).items():
        flag = "--" + name.replace("_", "-")
        words += [flag] if value is True else [flag, str(value)]
    return " ".join(words)


def estimate_side(row: Row, config: dict[str, Any]) -> tuple[int, int, int]:
    """modelmem's estimate of the row's step on the row's own config: (tensor peak, tensor
    peak + assumed allocator slack, total with the assumed CUDA context)."""
    import tempfile

    from modelmem.app.entry import inference_data, train_data

    run = train_data if row.mode == "train" else inference_data
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.json"
        path.write_text(json.dumps(config), encoding="utf-8")
        data = run(str(path), row_options(row))
    parts = {c["name"]: int(c["bytes"]) for c in data["components"]}
    total = int(data["total_bytes"])
    context = parts.get("cuda_context", 0)
    return total - context - parts.get("allocator_reserve", 0), total - context, total


def _pct(estimate: int | None, measured: int | None) -> float | None:
    if estimate is None or not measured:
        return None
    return round(100 * (estimate - measured) / measured, 3)


def _estimate_columns(record: dict[str, Any], row: Row, config: dict[str, Any]) -> None:
    record["command"] = command_line(row)
    tensor, reserved, device = estimate_side(row, config)
    record.update(
        estimate_bytes=tensor, estimate_reserved_bytes=reserved, estimate_device_bytes=device
    )
    allocated, held, used = (
        record["real_bytes"],
        record["real_reserved_bytes"],
        record["device_used_bytes"],
    )
    record["est_vs_allocated_pct"] = _pct(tensor, allocated)
    record["est_vs_reserved_pct"] = _pct(reserved, held)
    record["est_vs_device_pct"] = _pct(device, used)
    if held is not None and allocated:
        record["measured_slack_pct"] = round(100 * (held - allocated) / allocated, 3)
    if used is not None and held is not None:
        record["measured_context_bytes"] = used - held


@dataclass
class RealResult:
    peak_bytes: int
    base_bytes: int = 0
    reserved_bytes: int | None = None
    device_used_bytes: int | None = None
    peak_phase: str = ""
    phase_peaks: dict[str, int] | None = None


def cpu_side(row: Row, config: dict[str, Any]) -> RealResult:
    """Real CPU tensors through modelmem's own tracker (the whole model, no extrapolation)."""
    from modelmem.measurement.run import measure

    m = measure(config, _settings(row, fake=False))
    return RealResult(
        peak_bytes=m.breakdown.total_bytes, peak_phase=m.peak_phase, phase_peaks=m.phase_peaks
    )


class _CudaPhases:
    """Peak allocated and reserved bytes per phase, from the allocator's peak counters."""

    def __init__(self) -> None:
        import torch

        self.torch = torch
        self.current = ""
        self.allocated: dict[str, int] = {}
        self.reserved: dict[str, int] = {}

    def set(self, phase: str) -> None:
        self.close()
        self.current = phase

    def close(self) -> None:
        if self.current:
            cuda = self.torch.cuda
            cuda.synchronize()
            name = self.current
            self.allocated[name] = max(self.allocated.get(name, 0), cuda.max_memory_allocated())
            self.reserved[name] = max(self.reserved.get(name, 0), cuda.max_memory_reserved())
            cuda.reset_peak_memory_stats()
        self.current = ""


def _free_cuda() -> None:
    import torch

    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()


def cuda_side(row: Row, config: dict[str, Any], baseline_used: int) -> RealResult:
    """The same step on the GPU: a randomly initialized model built directly on CUDA."""
    import torch

    from modelmem.measurement import run as mm

    settings = _settings(row, fake=False)
    if config["model_type"] in mm.ENCODERS:
        raise ValueError("the CUDA check runs decoder steps only")
    _free_cuda()
    base = torch.cuda.memory_allocated()
    notes: list[str] = []
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = mm._build_model(config, settings, notes)
    phases = _CudaPhases()
    try:
        if settings.mode == "inference":
            model.requires_grad_(False)
        if settings.checkpointing and settings.mode == "train":
            mm._enable_checkpointing(model)
        gc.collect()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        phases.set("setup")
        if settings.mode == "train":
            _cuda_train(model, settings, phases)
        else:
            _cuda_infer(model, settings, phases)
        phases.close()
        free, total = torch.cuda.mem_get_info()
    finally:
        with contextlib.suppress(Exception):  # keep the step's own error, if any
            phases.close()
        del model
    top = max(phases.allocated, key=lambda p: phases.allocated[p])
    return RealResult(
        peak_bytes=phases.allocated[top] - base,
        base_bytes=base,
        reserved_bytes=max(phases.reserved.values()),
        device_used_bytes=total - free - baseline_used,
        peak_phase=top,
        phase_peaks={k: v - base for k, v in phases.allocated.items()},
    )


def _cuda_autocast(recipe: str) -> contextlib.AbstractContextManager[Any]:
    import torch

    if recipe == "amp-bf16":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if recipe == "amp-fp16":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def _cuda_train(model: Any, settings: Any, phases: _CudaPhases) -> None:
    """modelmem.measurement.run._train on CUDA (same order of calls and deletions)."""
    import torch

    from modelmem.measurement import run as mm

    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = mm._optimizer(trainable, settings)
    ids = torch.zeros(settings.batch, settings.seq, dtype=torch.long, device="cuda")
    labels = torch.zeros(settings.batch, settings.seq, dtype=torch.long, device="cuda")
    vocab = model.config.get_text_config().vocab_size
    model.train()
    for step in range(settings.steps):
        phases.set(f"step{step}.forward")
        with _cuda_autocast(settings.recipe):
            logits = model(input_ids=ids, use_cache=False).logits
            phases.set(f"step{step}.loss")
            loss = model.loss_function(logits=logits, labels=labels, vocab_size=vocab)
        del logits
        phases.set(f"step{step}.backward")
        loss.backward()
        del loss
        phases.set(f"step{step}.optimizer")
        optimizer.step()
        phases.set(f"step{step}.zero_grad")
        optimizer.zero_grad(set_to_none=True)
    phases.close()


def _cuda_infer(model: Any, settings: Any, phases: _CudaPhases) -> None:
    """modelmem.measurement.run._infer on CUDA: prefill with the cache, then decode steps."""
    import torch

    from modelmem.measurement import run as mm

    prompt = torch.zeros(settings.batch, settings.seq, dtype=torch.long, device="cuda")
    token = torch.zeros(settings.batch, 1, dtype=torch.long, device="cuda")
    model.eval()
    with torch.no_grad(), _cuda_autocast(settings.recipe):
        phases.set("prefill")
        out = model(input_ids=prompt, use_cache=True, logits_to_keep=1)
        cache_key, cache = mm._cache_of(out)
        del out
        for _ in range(settings.decode_steps):
            phases.set("decode")
            out = model(input_ids=token, use_cache=True, logits_to_keep=1, **{cache_key: cache})
            cache_key, cache = mm._cache_of(out)
            del out
    phases.close()
    del cache


# ---------------------------------------------------------------------------- the grid


def _one_line(e: BaseException) -> str:
    text = str(e).strip()
    first = text.splitlines()[0] if text else ""
    line = f"{type(e).__name__}: {first}" if first else type(e).__name__
    return line if len(line) <= 300 else line[:297] + "..."


def _blank(row: Row) -> dict[str, Any]:
    record: dict[str, Any] = dict.fromkeys(COLUMNS)
    record.update(
        name=row.name,
        model=row.model,
        layers=row.layers,
        mode=row.mode,
        recipe=row.recipe,
        checkpointing=row.checkpointing,
        batch=row.batch,
        seq=row.seq,
        decode_steps=row.decode_steps if row.mode == "inference" else None,
        status="skipped",
        error="",
        fake_phase_peaks=None,
        real_phase_peaks=None,
        fake_notes=None,
    )
    return record


def run_row(row: Row, device: str, baseline_used: int = 0) -> dict[str, Any]:
    """Measure one row on both sides; raises on failure (the caller records it)."""
    record = _blank(row)
    config = _config_of(row)
    if record["layers"] is None:
        record["layers"] = config.get("num_hidden_layers", config.get("n_layer"))
    started = time.perf_counter()
    fake = fake_side(row, config)
    record["fake_seconds"] = round(time.perf_counter() - started, 3)
    record["fake_bytes"] = fake.breakdown.total_bytes
    record["fake_rounded_bytes"] = fake.peak_rounded_bytes
    record["fake_peak_phase"] = fake.peak_phase
    record["fake_phase_peaks"] = dict(fake.phase_peaks)
    record["fake_notes"] = list(fake.notes)
    started = time.perf_counter()
    real = cuda_side(row, config, baseline_used) if device == "cuda" else cpu_side(row, config)
    record["real_seconds"] = round(time.perf_counter() - started, 3)
    record["real_bytes"] = real.peak_bytes
    record["real_base_bytes"] = real.base_bytes
    record["real_reserved_bytes"] = real.reserved_bytes
    record["device_used_bytes"] = real.device_used_bytes
    record["real_peak_phase"] = real.peak_phase
    record["real_phase_peaks"] = real.phase_peaks
    reference = record["fake_rounded_bytes"] if device == "cuda" else record["fake_bytes"]
    record["compared_to"] = "fake_rounded_bytes" if device == "cuda" else "fake_bytes"
    record["diff_bytes"] = real.peak_bytes - reference
    record["diff_pct"] = round(100 * (real.peak_bytes - reference) / reference, 3)
    _estimate_columns(record, row, config)
    record["status"] = "ok"
    return record


def run_grid(
    rows: Sequence[Row],
    device: str,
    budget_s: float,
    baseline_used: int = 0,
    started: float | None = None,
) -> list[dict[str, Any]]:
    """Every row, in order, within ``budget_s`` seconds of ``started`` (monotonic; now)."""
    started = time.monotonic() if started is None else started
    records: list[dict[str, Any]] = []
    for row in rows:
        left = budget_s - (time.monotonic() - started)
        record = _blank(row)
        if left <= 0:
            record["error"] = "time budget reached before the row"
        else:
            try:
                with _deadline(left):
                    record = run_row(row, device, baseline_used)
            except BudgetExceeded as e:
                record["error"] = str(e)
            except Exception as e:
                record.update(status="error", error=_one_line(e))
            finally:
                gc.collect()
                if device == "cuda":
                    with contextlib.suppress(Exception):
                        _free_cuda()
        records.append(record)
        print(_progress(record, time.monotonic() - started), flush=True)
    return records


# ---------------------------------------------------------------------------- reporting


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    from modelmem.units import format_bytes_binary

    return format_bytes_binary(n)


def _progress(record: dict[str, Any], elapsed: float) -> str:
    detail = record["error"] or f"diff {record['diff_bytes']:+,} B ({record['diff_pct']:+.3f}%)"
    return f"[{elapsed:6.1f}s] {record['status']:<7} {record['name']}: {detail}"


def format_table(records: Sequence[dict[str, Any]]) -> str:
    headers = (
        "row",
        "layers",
        "status",
        "fake",
        "fake (512 B)",
        "real",
        "reserved",
        "device used",
        "diff",
        "diff %",
        "fake phase",
        "real phase",
    )
    lines: list[list[str]] = []
    for r in records:
        ok = r["status"] == "ok"
        lines.append(
            [
                r["name"],
                str(r["layers"] if r["layers"] is not None else "-"),
                r["status"],
                _size(r["fake_bytes"]),
                _size(r["fake_rounded_bytes"]),
                _size(r["real_bytes"]),
                _size(r["real_reserved_bytes"]),
                _size(r["device_used_bytes"]),
                f"{r['diff_bytes']:+,} B" if ok else "-",
                f"{r['diff_pct']:+.3f}" if ok else "-",
                r["fake_peak_phase"] or "-",
                r["real_peak_phase"] or "-",
            ]
        )
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    text = [
        "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    for r, line in zip(records, lines, strict=True):
        text.append("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
        if r["error"]:
            text.append(f"    {r['status']}: {r['error']}")
    return "\n".join(text)


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


def format_estimate_table(records: Sequence[dict[str, Any]]) -> str:
    """Estimate against max_memory_allocated / max_memory_reserved / the device's used
    memory, and the slack and context the run measured."""
    headers = (
        "row",
        "estimate",
        "allocated",
        "err %",
        "est+slack",
        "reserved",
        "err %",
        "est+slack+ctx",
        "device used",
        "err %",
        "slack %",
        "context",
    )
    lines = [
        [
            r["name"],
            _size(r["estimate_bytes"]),
            _size(r["real_bytes"]),
            _signed(r["est_vs_allocated_pct"]),
            _size(r["estimate_reserved_bytes"]),
            _size(r["real_reserved_bytes"]),
            _signed(r["est_vs_reserved_pct"]),
            _size(r["estimate_device_bytes"]),
            _size(r["device_used_bytes"]),
            _signed(r["est_vs_device_pct"]),
            _signed(r["measured_slack_pct"]),
            _size(r["measured_context_bytes"]),
        ]
        for r in records
        if r["status"] == "ok"
    ]
    if not lines:
        return "no row to compare"
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    text = [
        "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    text += ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    return "\n".join(line.rstrip() for line in text)


def write_csv(path: Path, records: Sequence[dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(COLUMNS), extrasaction="ignore")
        writer.writeheader()
        for r in records:
            writer.writerow({k: "" if r[k] is None else r[k] for k in COLUMNS})


def write_json(path: Path, environment: dict[str, Any], records: Sequence[dict[str, Any]]) -> None:
    data = {"environment": environment, "columns": list(COLUMNS), "rows": list(records)}
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------- environment


def _nvml_used_before_init() -> int | None:
    """Device memory in use (total − free, as NVML sees it) before this process touches
    CUDA, or None where NVML (the ``pynvml`` module) is not there or the device is named
    by UUID in CUDA_VISIBLE_DEVICES."""
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    if visible and not visible.isdigit():
        return None
    try:
        pynvml.nvmlInit()
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(int(visible or 0))
            info = pynvml.nvmlDeviceGetMemoryInfo(handle)
            return int(info.total) - int(info.free)
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        return None


def _warm_up() -> int:
    """Run a matmul and its backward in fp32 and bf16 once, so that the cuBLAS workspaces
    (kept by the caching allocator per thread and stream) exist before the first row and
    count in every row's ``real_base_bytes`` alike; returns what stays allocated."""
    import torch

    for dtype in (torch.float32, torch.bfloat16):
        a = torch.ones(64, 64, device="cuda", dtype=dtype, requires_grad=True)
        torch.autograd.backward((a @ a).sum())
        del a
    _free_cuda()
    return int(torch.cuda.memory_allocated())


def environment(device: str, tiny: bool, budget_s: float) -> dict[str, Any]:
    import torch
    import transformers

    import modelmem

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "modelmem": modelmem.__version__,
        "device": device,
        "tiny": tiny,
        "budget_s": budget_s,
        "pytorch_cuda_alloc_conf": os.environ.get("PYTORCH_CUDA_ALLOC_CONF"),
        "gpu": None,
        "cuda": torch.version.cuda,
        "baseline_used_bytes": 0,
        "baseline_source": None,
    }
    if device == "cuda":
        before = _nvml_used_before_init()
        free, total = torch.cuda.mem_get_info()  # initializes CUDA and creates the context
        after = int(total - free)
        if before is not None:
            env["baseline_used_bytes"] = before
            env["baseline_source"] = "NVML, before CUDA was initialized"
            env["context_bytes"] = after - before
        else:
            env["baseline_used_bytes"] = after
            env["baseline_source"] = "mem_get_info, just after CUDA was initialized"
        env["warm_up_allocated_bytes"] = _warm_up()
        props = torch.cuda.get_device_properties(0)
        env["gpu"] = torch.cuda.get_device_name(0)
        env["gpu_capability"] = f"{props.major}.{props.minor}"
        env["gpu_total_bytes"] = int(total)
    return env


def _header(env: dict[str, Any]) -> str:
    lines = [
        f"torch {env['torch']} (CUDA {env['cuda']}), transformers {env['transformers']}, "
        f"modelmem {env['modelmem']}, Python {env['python']}",
        f"device: {env['device']}"
        + (f", GPU: {env['gpu']} (sm {env['gpu_capability']})" if env["gpu"] else "")
        + (", tiny configs" if env["tiny"] else ""),
        f"PYTORCH_CUDA_ALLOC_CONF={env['pytorch_cuda_alloc_conf'] or '(unset)'}",
    ]
    if env["baseline_source"]:
        context = env.get("context_bytes")
        lines.append(
            f"device memory baseline: {_size(env['baseline_used_bytes'])} "
            f"({env['baseline_source']})"
            + (f"; CUDA context: {_size(context)}" if context is not None else "")
        )
        lines.append(
            f"allocated after the warm-up (cuBLAS workspaces): "
            f"{_size(env['warm_up_allocated_bytes'])}, subtracted from every row"
        )
    lines.append(f"time budget: {env['budget_s']:g} s")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- main


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Compare modelmem's fake-tensor peaks with a real CUDA (or CPU) run.",
    )
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument(
        "--tiny", action="store_true", help="Shrunk configs of the same architectures."
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=DEFAULT_BUDGET_S,
        help="Total seconds; rows after it are skipped (default: %(default)s).",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="TEXT",
        help="Only rows whose name contains TEXT (repeatable).",
    )
    parser.add_argument(
        "--out",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="Write the rows to FILE.csv or FILE.json (repeatable).",
    )
    parser.add_argument("--list", action="store_true", help="List the grid and exit.")
    args = parser.parse_args(argv)
    for out in args.out:
        if out.suffix.lower() not in (".csv", ".json"):
            parser.error(f"--out {out.name}: the name must end in .csv or .json")
    if args.device == "cpu" and not args.tiny:
        parser.error("--device cpu runs real CPU tensors: use it with --tiny")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the grid; 0 when no row failed (skipped rows are not failures), else 1."""
    started = time.monotonic()
    args = _parse(argv)
    rows = [tiny_row(r) for r in GRID] if args.tiny else list(GRID)
    rows = [r for r in rows if not args.only or any(t in r.name for t in args.only)]
    if args.list:
        for r in rows:
            print(r.name)
        return 0
    if not rows:
        print("no row matches --only", file=sys.stderr)
        return 2
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: use --device cpu --tiny to test the script", file=sys.stderr)
        return 2
    env = environment(args.device, args.tiny, args.budget)
    print(_header(env), flush=True)
    records = run_grid(rows, args.device, args.budget, env["baseline_used_bytes"], started)
    env["elapsed_s"] = round(time.monotonic() - started, 1)
    print()
    print(format_table(records))
    print("\nmodelmem's estimate of each row's command line against the run:")
    print(format_estimate_table(records))
    counts = {s: sum(r["status"] == s for r in records) for s in ("ok", "error", "skipped")}
    print(
        f"\n{counts['ok']} ok, {counts['error']} error, {counts['skipped']} skipped "
        f"in {env['elapsed_s']} s"
    )
    for out in args.out:
        if out.suffix.lower() == ".csv":
            write_csv(out, records)
        else:
            write_json(out, env, records)
    return 1 if counts["error"] else 0


if __name__ == "__main__":
    # Nothing is fetched: configs come from the catalogue, and the Hub stays offline.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    sys.exit(main())

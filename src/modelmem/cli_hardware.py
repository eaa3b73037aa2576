"""Commands about hardware: ``devices``, ``fit`` and ``plan``.

Imported at the end of :mod:`modelmem.cli`; imports only click and that module's helpers
at import time, so ``modelmem --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from modelmem.cli import (
    _console,
    _emit_json,
    _print_breakdown,
    _print_rows,
    _size,
    _targets,
    _with_architecture,
    runtime_overhead_options,
)

F = TypeVar("F", bound=Callable[..., Any])

RECIPES = ["fp32", "amp-bf16", "amp-fp16", "pure-bf16", "pure-fp16", "mixed-bf16"]
OPTIMIZERS = [
    "adamw",
    "adam",
    "adamw-8bit",
    "sgd",
    "sgd-momentum",
    "adagrad",
    "rmsprop",
    "lion",
    "adafactor",
]


# The workload options of `fit` and `plan` with their defaults, for callers that are not
# the command line (the web API): the same names as the options.
WORKLOAD_DEFAULTS: dict[str, Any] = {
    "dtype": None,
    "kv_dtype": None,
    "batch": 1,
    "context": None,
    "seq": None,
    "attention": "sdpa",
    "recipe": None,
    "optimizer": None,
    "optimizer_impl": "foreach",
    "lora_rank": None,
    "lora_targets": None,
    "qlora_scheme": "bnb-nf4-dq",
    "zero": None,
    "fsdp": None,
    "cuda_context": "400MiB",
    "allocator_reserve": 0.05,
}


def _device_options(command: F) -> F:
    for option in reversed(
        (
            click.option(
                "--device",
                required=True,
                help="Catalogue device or alias (`modelmem devices`), or `local` for this "
                "machine's accelerator and its free memory.",
            ),
            click.option(
                "--count", type=int, default=1, show_default=True, help="Devices of that kind."
            ),
            click.option(
                "--reserve",
                type=float,
                default=0.05,
                show_default=True,
                help="Safety reserve kept free, as a fraction of each device's memory.",
            ),
        )
    ):
        command = option(command)
    return command


def _workload_options(command: F) -> F:
    """The inference and train options the estimate commands take, same names."""
    for option in reversed(
        (
            click.option("--dtype", default=None, help="Inference weight format (bf16, fp8, ...)."),
            click.option("--kv-dtype", default=None, help="KV cache format (bf16, fp8, ...)."),
            click.option("--batch", type=int, default=1, show_default=True, help="Batch size."),
            click.option(
                "--context",
                type=int,
                default=None,
                help="Inference: tokens per sequence (default: the model's, capped at 8192).",
            ),
            click.option(
                "--seq", type=int, default=None, help="Training sequence length (default 2048)."
            ),
            click.option(
                "--attention",
                type=click.Choice(["sdpa", "eager"]),
                default="sdpa",
                show_default=True,
                help="Attention implementation.",
            ),
            click.option(
                "--recipe",
                type=click.Choice(RECIPES),
                default=None,
                help="Training precision (default amp-bf16; pure-bf16 for LoRA/QLoRA).",
            ),
            click.option(
                "--optimizer",
                type=click.Choice(OPTIMIZERS),
                default=None,
                help="Training optimizer (fit default adamw; plan searches when not given).",
            ),
            click.option(
                "--optimizer-impl",
                type=click.Choice(["foreach", "fused", "for-loop"]),
                default="foreach",
                show_default=True,
                help="foreach holds about a copy of the parameters at the step; fused none.",
            ),
            click.option("--lora-rank", type=int, default=None, help="LoRA rank r."),
            click.option(
                "--lora-targets",
                default=None,
                help="Comma-separated module names or all-linear (default: PEFT's).",
            ),
            click.option(
                "--qlora-scheme",
                default="bnb-nf4-dq",
                show_default=True,
                help="Frozen base format of QLoRA.",
            ),
            click.option("--zero", type=click.IntRange(0, 3), default=None, help="ZeRO stage 0-3."),
            click.option(
                "--fsdp",
                type=click.Choice(["no-shard", "shard-grad-op", "full-shard"]),
                default=None,
                help="FSDP sharding (ZeRO 0 / 2 / 3).",
            ),
            *runtime_overhead_options(),
        )
    ):
        command = option(command)
    return command


def _fraction(value: float, field: str) -> Any:
    from fractions import Fraction
    from math import isfinite

    from modelmem.errors import InvalidValueError

    if not isfinite(value) or not 0 <= value < 1:
        raise InvalidValueError(field, value, "must be a fraction in [0, 1)")
    return Fraction(value).limit_denominator(10_000)


class _Target:
    """The device a command is about: a catalogue row or this machine's accelerator."""

    def __init__(self, name: str, count: int) -> None:
        from modelmem.errors import InvalidValueError
        from modelmem.hardware.catalogue import get_device
        from modelmem.hardware.fit import check_count

        check_count(count)
        self.count = count
        self.notes: list[str] = []
        self.device_bytes: int | None = None
        if name.strip().lower() == "local":
            from modelmem.hardware.local import detect

            found = detect()
            if count > len(found):
                raise InvalidValueError(
                    "count", count, f"only {len(found)} accelerator(s) found on this machine"
                )
            used = found[:count]
            self.accelerator = used[0].catalogue
            self.name = f"local:{used[0].name}"
            self.device_bytes = min(d.budget_bytes for d in used)
            self.notes.append(f"this machine: {used[0].name}, budget = {used[0].budget_how}")
        else:
            self.accelerator = get_device(name)
            self.name = self.accelerator.name

    @property
    def budget_source(self) -> int:
        if self.device_bytes is not None:
            return self.device_bytes
        assert self.accelerator is not None
        return self.accelerator.budget_bytes


# ---------------------------------------------------------------------------- devices


@click.command()
@click.option(
    "--kind",
    type=click.Choice(["datacenter", "consumer", "apple", "tpu"]),
    default=None,
    help="Only devices of this kind.",
)
@click.option("--vendor", default=None, help="Only this vendor (NVIDIA, AMD, Intel, ...).")
@click.option("--min-memory", default=None, help="Only devices with at least this, e.g. 40GB.")
@click.option("--local", "local", is_flag=True, help="Detect this machine's accelerators.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def devices(
    kind: str | None, vendor: str | None, min_memory: str | None, local: bool, as_json: bool
) -> None:
    """The accelerator catalogue: memory, bandwidth, dense bf16/fp8 throughput, sources."""
    from modelmem.units import format_bytes_both

    if local:
        from modelmem.hardware.local import detect

        found = [d.to_dict() for d in detect()]
        if as_json:
            _emit_json(found)
            return
        _print_rows(
            f"{len(found)} local accelerator(s)",
            ("index", "name", "memory", "free", "budget", "catalogue"),
            [
                (
                    str(d["index"]),
                    d["name"],
                    format_bytes_both(d["memory_bytes"]),
                    format_bytes_both(d["free_bytes"]) if d["free_bytes"] is not None else "-",
                    format_bytes_both(d["budget_bytes"]),
                    d["catalogue"] or "-",
                )
                for d in found
            ],
            right=("memory", "free", "budget"),
        )
        return
    chosen = _chosen_devices(kind, vendor, min_memory)
    if as_json:
        _emit_json([d.to_dict() for d in chosen])
        return
    _print_rows(
        f"{len(chosen)} devices (memory: vendor GB read as GiB; usable: what the driver/OS "
        "leaves, where a source says)",
        ("name", "vendor", "kind", "memory", "usable", "bandwidth", "bf16|fp16", "fp8"),
        [
            (
                d.name,
                d.vendor,
                d.kind,
                format_bytes_both(d.memory_bytes),
                format_bytes_both(d.usable_memory_bytes) if d.usable_memory_bytes else "-",
                f"{d.bandwidth_bytes_per_s / 1e9:,.0f} GB/s",
                f"{d.matmul_flops / 1e12:,.1f} TFLOP/s" if d.matmul_flops else "-",
                f"{d.fp8_flops / 1e12:,.1f} TFLOP/s" if d.fp8_flops else "-",
            )
            for d in chosen
        ],
        right=("memory", "usable", "bandwidth", "bf16|fp16", "fp8"),
    )


def _chosen_devices(kind: str | None, vendor: str | None, min_memory: str | None) -> list[Any]:
    from modelmem.hardware.catalogue import all_devices

    floor = _size(min_memory, "min_memory") or 0
    return [
        d
        for d in all_devices()
        if (kind is None or d.kind == kind)
        and (vendor is None or d.vendor.lower() == vendor.lower())
        and d.budget_bytes >= floor
    ]


def devices_data(
    kind: str | None = None, vendor: str | None = None, min_memory: str | None = None
) -> list[dict[str, Any]]:
    """What `devices --json` prints (the catalogue; not --local)."""
    return [d.to_dict() for d in _chosen_devices(kind, vendor, min_memory)]


# -------------------------------------------------------------------------------- fit


def _goal(mode: str, method: str | None) -> str:
    if method in ("lora", "qlora"):
        return method
    return "train" if mode == "train" or method == "full" else "inference"


def _request(goal: str, opts: dict[str, Any], count: int, **extra: Any) -> Any:
    """A PlanRequest from the workload options (fixed knobs stay None when not given)."""
    from modelmem.memory.parallel import FSDP_TO_ZERO
    from modelmem.plan import PlanRequest

    length = opts["context"] if goal == "inference" else opts["seq"]
    zero = FSDP_TO_ZERO[opts["fsdp"]] if opts["fsdp"] else opts["zero"]
    return PlanRequest(
        goal=goal,
        max_devices=count,
        batch=opts["batch"],
        length=length,
        dtype=opts["dtype"],
        kv_dtype=opts["kv_dtype"],
        recipe=opts["recipe"],
        optimizer=opts["optimizer"],
        optimizer_impl=opts["optimizer_impl"],
        zero=zero,
        lora_rank=opts["lora_rank"],
        lora_targets=_targets(opts["lora_targets"]),
        qlora_scheme=opts["qlora_scheme"],
        attention=opts["attention"],
        cuda_context_bytes=_size(opts["cuda_context"], "cuda_context") or 0,
        allocator_reserve=_fraction(opts["allocator_reserve"], "allocator_reserve"),
        reserve=_fraction(opts["reserve"], "reserve"),
        **extra,
    )


def _fit_config(spec: Any, request: Any, count: int) -> Any:
    """The one configuration `fit` checks: the request's knobs, defaults for the rest."""
    from modelmem.plan import Config

    goal = request.goal
    length = request.default_length(spec)
    if goal == "inference":
        return Config(
            goal=goal,
            devices=count,
            batch=request.batch,
            length=length,
            dtype=request.dtype or "bf16",
            kv_dtype=request.kv_dtype,
        )
    return Config(
        goal=goal,
        devices=count,
        batch=request.batch,
        length=length,
        recipe=request.recipe or ("amp-bf16" if goal == "train" else "pure-bf16"),
        optimizer=request.optimizer or "adamw",
        checkpointing=bool(request.checkpointing),
        zero=request.zero or 0,
        lora_rank=(request.lora_rank or 16) if goal != "train" else None,
    )


def _fit_one(spec: Any, label: str, target: _Target, request: Any) -> dict[str, Any]:
    from modelmem.hardware.fit import fit_bytes
    from modelmem.plan import estimate

    config = _fit_config(spec, request, target.count)
    breakdown = estimate(spec, config, request)
    notes = list(target.notes)
    if config.goal == "train" and target.count > 1 and config.zero == 0:
        notes.append(
            f"ZeRO 0 (DDP): each of the {target.count} devices holds every model state; "
            "--zero 1-3 or --fsdp shards them"
        )
    if target.accelerator is not None and target.device_bytes is None:
        from modelmem.hardware.fit import check_fit

        verdict = check_fit(breakdown, target.accelerator, target.count, request.reserve)
    else:
        verdict = fit_bytes(
            breakdown,
            target.budget_source,
            device=target.name,
            count=target.count,
            reserve=request.reserve,
        )
    return {
        "source": label,
        "config": config.to_dict(),
        **verdict.to_dict(),
        "notes": [*notes, *verdict.notes, *breakdown.notes],
        "components": [c.to_dict() for c in breakdown.components],
    }


@click.command()
@click.argument("source", required=False)
@_device_options
@click.option(
    "--mode",
    type=click.Choice(["inference", "train"]),
    default="inference",
    show_default=True,
    help="Serve the model or train it (train is implied by --method).",
)
@click.option(
    "--method",
    type=click.Choice(["full", "lora", "qlora"]),
    default=None,
    help="Training method: full fine-tuning, LoRA, QLoRA.",
)
@click.option("--checkpointing", is_flag=True, help="Per-layer gradient checkpointing.")
@_workload_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def fit(
    source: str | None,
    device: str,
    count: int,
    reserve: float,
    mode: str,
    method: str | None,
    checkpointing: bool,
    as_json: bool,
    **opts: Any,
) -> None:
    """Does SOURCE fit COUNT × DEVICE: the verdict, margin and what dominates.

    Memory is compared per device, after tensor parallelism (inference) or ZeRO/FSDP
    (training) shards it; without SOURCE, every catalogue model is checked.
    """
    request, target = _fit_setup(device, count, reserve, mode, method, checkpointing, opts)
    if source is None:
        _fit_catalogue(target, request, as_json)
        return
    model = _with_architecture(source)
    data = _fit_one(model.spec, model.label, target, request)
    if as_json:
        _emit_json(data)
        return
    _render_fit(data)


def _fit_setup(
    device: str,
    count: int,
    reserve: float,
    mode: str,
    method: str | None,
    checkpointing: bool,
    opts: dict[str, Any],
) -> tuple[Any, _Target]:
    goal = _goal(mode, method)
    request = _request(goal, {**opts, "reserve": reserve}, count, checkpointing=checkpointing)
    return request, _Target(device, count)


def _check_workload_options(opts: dict[str, Any]) -> None:
    """The JSON builders take the workload options by name; a misspelt one is a bug."""
    unknown = set(opts) - set(WORKLOAD_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown workload options: {sorted(unknown)}")


def fit_data(
    model: Any,
    *,
    device: str,
    count: int = 1,
    reserve: float = 0.05,
    mode: str = "inference",
    method: str | None = None,
    checkpointing: bool = False,
    **opts: Any,
) -> dict[str, Any]:
    """What `fit SOURCE --json` prints for a resolved model with an architecture.

    ``opts`` are the workload options by name (:data:`WORKLOAD_DEFAULTS` fills the rest).
    """
    _check_workload_options(opts)
    request, target = _fit_setup(
        device, count, reserve, mode, method, checkpointing, {**WORKLOAD_DEFAULTS, **opts}
    )
    return _fit_one(model.spec, model.label, target, request)


def _fit_catalogue(target: _Target, request: Any, as_json: bool) -> None:
    from modelmem.errors import ModelMemError
    from modelmem.model.sources.catalogue import load_catalogue, spec_from_entry

    rows: list[dict[str, Any]] = []
    for entry in load_catalogue().values():
        try:
            spec = spec_from_entry(entry)
            row = _fit_one(spec, entry.name, target, request)
        except ModelMemError as e:  # the estimator cannot describe this model for the goal
            rows.append({"source": entry.name, "fits": None, "error": str(e)})
            continue
        row["total_params"] = entry.params_transformers
        rows.append(row)
    if as_json:
        _emit_json(rows)
        return
    from modelmem.units import format_bytes_both

    _print_rows(
        f"catalogue models on {target.count} × {target.name} ({request.goal})",
        ("model", "verdict", "peak per device", "margin", "dominant"),
        [
            (
                r["source"],
                "-" if r["fits"] is None else "fits" if r["fits"] else "does not fit",
                format_bytes_both(r["total_bytes"]) if "total_bytes" in r else r["error"],
                f"{r['margin_percent']:+.1f}%" if "margin_percent" in r else "",
                r["dominant"]["name"] if "dominant" in r else "",
            )
            for r in rows
        ],
        right=("peak per device", "margin"),
    )


def _render_fit(data: dict[str, Any]) -> None:
    from modelmem.units import format_bytes_both

    title = f"{data['source']} on {data['count']} × {data['device']}: {data['config']['goal']}"
    console = _print_breakdown(title, data)
    verdict = "FITS" if data["fits"] else "DOES NOT FIT"
    console.print(
        f"{verdict}: peak per device {format_bytes_both(data['total_bytes'])} of "
        f"{format_bytes_both(data['device_bytes'])}, keeping a safety reserve of "
        f"{data['reserve']:.0%} ({format_bytes_both(data['reserve_bytes'])}); margin "
        f"{data['margin_bytes']:+,} B ({data['margin_percent']:+.2f}%)"
    )
    dom = data["dominant"]
    console.print(
        f"dominant: {dom['name']} {format_bytes_both(dom['bytes'])} "
        f"({100 * dom['bytes'] / data['total_bytes']:.0f}% of the peak)"
    )
    for note in data["notes"]:
        console.print(f"note: {note}")


# ------------------------------------------------------------------------------- plan


@click.command()
@click.argument("source", required=False)
@_device_options
@click.option(
    "--goal",
    type=click.Choice(["inference", "train", "lora", "qlora"]),
    default="inference",
    show_default=True,
    help="Serve, train fully, or fine-tune with LoRA / QLoRA.",
)
@click.option(
    "--objective",
    type=click.Choice(["context", "batch", "devices", "quality"]),
    default=None,
    help="Rank by the largest context, largest batch, fewest devices or least quality "
    "loss (default: context for inference, batch for training).",
)
@click.option(
    "--checkpointing/--no-checkpointing",
    default=None,
    help="Fix gradient checkpointing (default: searched).",
)
@click.option("--top", type=int, default=5, show_default=True, help="Configurations to show.")
@click.option(
    "--no-offload",
    "no_offload",
    is_flag=True,
    help="Do not search ZeRO-Offload of optimizer states (and parameters) to CPU.",
)
@_workload_options
@click.option(
    "--plot",
    "plot_path",
    default=None,
    metavar="FILE",
    help="Also write the best configuration's breakdown against the budget to FILE.png or "
    "FILE.svg (one SOURCE and device; needs the plot extra: matplotlib).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plan(
    source: str | None,
    device: str,
    count: int,
    reserve: float,
    goal: str,
    objective: str | None,
    checkpointing: bool | None,
    top: int,
    no_offload: bool,
    plot_path: str | None,
    as_json: bool,
    **opts: Any,
) -> None:
    """Search the settings that matter for configurations of SOURCE that fit.

    Knobs not given are searched: weight and KV formats, batch, context, LoRA rank,
    checkpointing, optimizer, ZeRO stage and the number of devices (up to --count).
    --device all plans for every catalogue device; without SOURCE the answer is the
    largest catalogue model that fits.
    """
    if plot_path and (source is None or device.strip().lower() == "all"):
        from modelmem.errors import InvalidValueError

        raise InvalidValueError("plot", plot_path, "needs one SOURCE and one --device")
    request = _request(
        goal,
        {**opts, "reserve": reserve},
        count,
        objective=objective,
        checkpointing=checkpointing,
        top=top,
        offload=not no_offload,
    )
    if device.strip().lower() == "all":
        _plan_all(source, request, as_json)
        return
    target = _Target(device, count)
    if source is None:
        _plan_largest(target, request, as_json)
        return
    if plot_path:
        from modelmem.plots import check_plot_path

        check_plot_path(plot_path)
    model = _with_architecture(source)
    data = _plan_one(model, target, request)
    if plot_path and data["options"]:
        from modelmem.plots import write_plot

        best = data["options"][0]
        write_plot(
            plot_path,
            f"{data['model']} on {data['device']}: {best['label']}",
            best["breakdown"]["components"],
            budget_bytes=data["budget_bytes"],
        )
    if as_json:
        _emit_json(data)
        return
    _render_plan(data)


def _plan_one(model: Any, target: _Target, request: Any) -> dict[str, Any]:
    from modelmem.plan import Planner

    result = Planner(model.spec, model.label).plan(
        target.accelerator, request, target.device_bytes, target.name
    )
    return {**result.to_dict(), "notes": [*target.notes, *result.notes]}


def plan_data(
    model: Any,
    *,
    device: str,
    count: int = 1,
    reserve: float = 0.05,
    goal: str = "inference",
    objective: str | None = None,
    checkpointing: bool | None = None,
    top: int = 5,
    offload: bool = True,
    **opts: Any,
) -> dict[str, Any]:
    """What `plan SOURCE --device NAME --json` prints for one device (not `all`).

    ``opts`` are the workload options by name (:data:`WORKLOAD_DEFAULTS` fills the rest).
    """
    _check_workload_options(opts)
    request = _request(
        goal,
        {**WORKLOAD_DEFAULTS, **opts, "reserve": reserve},
        count,
        objective=objective,
        checkpointing=checkpointing,
        top=top,
        offload=offload,
    )
    return _plan_one(model, _Target(device, count), request)


def _plan_all(source: str | None, request: Any, as_json: bool) -> None:
    from modelmem.errors import InvalidValueError
    from modelmem.hardware.catalogue import all_devices
    from modelmem.plan import plan_devices

    if source is None:
        raise InvalidValueError("device", "all", "needs a SOURCE model to plan for")
    model = _with_architecture(source)
    plans = plan_devices(model.spec, all_devices(), request, model.label)
    rows: list[dict[str, Any]] = [
        {
            "device": p.device,
            "fits": bool(p.options),
            "best": p.best.to_dict() if p.best else None,
            "notes": list(p.notes),
        }
        for p in plans
    ]
    if as_json:
        _emit_json({"model": model.label, "goal": request.goal, "devices": rows})
        return
    from modelmem.units import format_bytes_both

    _print_rows(
        f"{model.label}: best {request.goal} configuration per device "
        f"(objective: {request.chosen_objective}, up to {request.max_devices} each)",
        ("device", "best configuration", "peak per device", "margin"),
        [
            (
                r["device"],
                r["best"]["label"] if r["best"] else "nothing fits",
                format_bytes_both(r["best"]["total_bytes"]) if r["best"] else "",
                f"{r['best']['margin_percent']:+.1f}%" if r["best"] else "",
            )
            for r in rows
        ],
        right=("peak per device", "margin"),
    )


def _plan_largest(target: _Target, request: Any, as_json: bool) -> None:
    from modelmem.model.params import count_params
    from modelmem.model.sources.catalogue import load_catalogue, spec_from_entry
    from modelmem.plan import largest_model

    models = []
    for entry in load_catalogue().values():
        spec = spec_from_entry(entry)
        models.append((entry.name, spec, count_params(spec).total))
    found = largest_model(models, target.accelerator, request, target.device_bytes, target.name)
    data: dict[str, Any] = {
        "device": target.name,
        "count": target.count,
        "goal": request.goal,
        "largest_model": found[0] if found else None,
        "plan": found[1].to_dict() if found else None,
        "notes": target.notes,
    }
    if as_json:
        _emit_json(data)
        return
    console = _console()
    if found is None:
        console.print(f"no catalogue model fits {target.count} × {target.name} ({request.goal})")
        return
    console.print(
        f"largest catalogue model that fits {target.count} × {target.name} "
        f"({request.goal}): {found[0]}"
    )
    _render_plan(data["plan"])


def _render_plan(data: dict[str, Any]) -> None:
    from modelmem.units import format_bytes_both

    console = _console()
    if not data["options"]:
        console.print(
            f"{data['model']}: nothing fits {data['max_devices']} × {data['device']} "
            f"for {data['goal']} ({data['searched']} configurations searched)"
        )
    rows = [
        (
            str(i),
            o["label"],
            format_bytes_both(o["total_bytes"]),
            f"{o['margin_bytes']:,}",
            f"{o['margin_percent']:+.1f}%",
            o["dominant"]["name"],
        )
        for i, o in enumerate(data["options"], 1)
    ]
    if rows:
        _print_rows(
            f"{data['model']} on up to {data['max_devices']} × {data['device']}: {data['goal']}, "
            f"objective {data['objective']} ({data['searched']} configurations searched)",
            ("#", "configuration", "peak per device", "margin B", "margin", "dominant"),
            rows,
            right=("peak per device", "margin B", "margin"),
        )
        best = data["options"][0]
        _print_breakdown(f"best: {best['label']}", best["breakdown"])
        console.print(
            f"budget per device {format_bytes_both(data['budget_bytes'])} = "
            f"{format_bytes_both(data['device_bytes'])} less the safety reserve "
            f"({best['reserve']:.0%})"
        )
    for note in data["notes"]:
        console.print(f"note: {note}")

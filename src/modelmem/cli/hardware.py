"""`devices`, `fit` and `plan`: a workload against hardware.

`fit` and `plan` take the whole workload vocabulary of `inference` and `train` (the same
generated options, the same defaults) plus the devices; `fit` evaluates exactly the
request `inference`/`train` would for the same options.
"""

from __future__ import annotations

from typing import Any

import click

from modelmem.app.fields import option_specs
from modelmem.app.requests import DeviceRequest, FitRequest, PlanRequestOptions, workload_specs
from modelmem.cli.options import given_options, options_from, split_options
from modelmem.hardware.catalogue import KINDS


@click.command()
@click.option(
    "--kind",
    type=click.Choice(KINDS),
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
    from modelmem.app.catalogues import chosen_devices
    from modelmem.cli.render import emit_json, print_rows
    from modelmem.units import format_bytes_both

    if local:
        from modelmem.hardware.local import detect

        found = [d.to_dict() for d in detect()]
        if as_json:
            emit_json(found)
            return
        print_rows(
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
    chosen = chosen_devices(kind, vendor, min_memory)
    if as_json:
        emit_json([d.to_dict() for d in chosen])
        return
    print_rows(
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


DEVICE_SPECS = option_specs(DeviceRequest)


@click.command()
@click.argument("source", required=False)
@options_from(DEVICE_SPECS)
@options_from(option_specs(FitRequest))
@options_from(workload_specs())
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def fit(
    ctx: click.Context, /, source: str | None, mode: str | None, as_json: bool, **options: Any
) -> None:
    """Does SOURCE fit COUNT × DEVICE: the verdict, margin and what dominates.

    Takes every option of `inference` (or, with --mode train or a training option, of
    `train`) and evaluates exactly that workload; memory is compared per device, after
    tensor parallelism (inference) or ZeRO/FSDP (training) shards it. Without SOURCE,
    every catalogue model is checked. Exit code 0: fits; 1: does not fit; 2: bad input.
    """
    from modelmem.app.entry import fit_catalogue, fit_data
    from modelmem.cli.render import emit_json, render_fit, render_fit_catalogue

    device = split_options(options, DEVICE_SPECS)
    given = given_options(ctx, options)
    if source is None:
        rows = fit_catalogue(options, given, mode=mode, **device)
        if as_json:
            emit_json(rows)
        else:
            render_fit_catalogue(rows)
        return
    data = fit_data(source, options, given, mode=mode, **device)
    if as_json:
        emit_json(data)
    else:
        render_fit(data)
    if not data["fits"]:
        raise click.exceptions.Exit(1)


@click.command()
@click.argument("source", required=False)
@options_from(DEVICE_SPECS)
@options_from(option_specs(PlanRequestOptions))
@options_from(workload_specs())
@click.option(
    "--plot",
    "plot_path",
    default=None,
    metavar="FILE",
    help="Also write the best configuration's breakdown against the budget to FILE.png or "
    "FILE.svg (one SOURCE and device; needs the plot extra: matplotlib).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def plan(
    ctx: click.Context,
    /,
    source: str | None,
    plot_path: str | None,
    as_json: bool,
    **options: Any,
) -> None:
    """Search the settings that matter for configurations of SOURCE that fit.

    Workload options given (the same as `inference`/`train`) are fixed; the knobs left
    open are searched: weight and KV formats, tensor-parallel degree, batch or context,
    precision recipe, optimizer, checkpointing, ZeRO stage and offload, LoRA rank and the
    number of devices (up to --count). --device all plans for every catalogue device;
    without SOURCE the answer is the largest catalogue model that fits.
    """
    from modelmem.app.entry import plan_all_devices, plan_data, plan_largest
    from modelmem.cli.render import emit_json, render_plan, render_plan_all, render_plan_largest
    from modelmem.errors import InvalidValueError

    device = split_options(options, DEVICE_SPECS)
    search = split_options(options, option_specs(PlanRequestOptions))
    given = given_options(ctx, options)
    every = device["device"].strip().lower() == "all"
    if plot_path and (source is None or every):
        raise InvalidValueError("plot", plot_path, "needs one SOURCE and one --device")
    if every:
        if source is None:
            raise InvalidValueError("device", "all", "needs a SOURCE model to plan for")
        device.pop("device")
        data = plan_all_devices(source, options, given, **device, **search)
        emit_json(data) if as_json else render_plan_all(data)
        return
    if source is None:
        data = plan_largest(options, given, **device, **search)
        emit_json(data) if as_json else render_plan_largest(data)
        return
    if plot_path:
        from modelmem.plots import check_plot_path

        check_plot_path(plot_path)
    data = plan_data(source, options, given, **device, **search)
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
        emit_json(data)
        return
    render_plan(data)

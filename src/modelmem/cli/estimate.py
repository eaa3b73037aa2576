"""`params`, `inference` and `train`: the estimate commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from modelmem.app.requests import InferenceRequest, TrainRequest
from modelmem.cli.options import given_options, options_from, split_options
from modelmem.vocabulary import DEFAULT_DTYPE

PLOT_HELP = (
    "Also write the breakdown and memory against {axis} to FILE.png or FILE.svg (needs the "
    "plot extra: matplotlib)."
)


@click.command()
@click.argument("source")
@click.option(
    "--dtype",
    default=None,
    help="Weights format or scheme for the rule of thumb and the exact weights "
    f"(`modelmem formats`; default {DEFAULT_DTYPE}).",
)
@click.option(
    "--optimizer",
    default="adamw",
    show_default=True,
    type=click.Choice(["adamw", "adam", "sgd-momentum", "sgd"]),
    help="Optimizer of the training rule of thumb (states: AdamW 2×, SGD+momentum 1×, SGD 0).",
)
@click.option(
    "--train-factor",
    type=float,
    default=None,
    help="Override the training factor (2–4 × inference); default follows the optimizer.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def params(
    source: str, dtype: str | None, optimizer: str, train_factor: float | None, as_json: bool
) -> None:
    """Parameter count and breakdown of SOURCE, with the rule-of-thumb memory."""
    import math

    from modelmem.app.entry import params_data
    from modelmem.cli.render import emit_json, render_params
    from modelmem.errors import InvalidValueError

    if train_factor is not None and not math.isfinite(train_factor):
        raise InvalidValueError("train_factor", train_factor, "must be a finite number")
    data = params_data(source, dtype=dtype, optimizer=optimizer, train_factor=train_factor)
    if as_json:
        emit_json(data)
    else:
        render_params(data)


def _check_plot(plot_path: str | None) -> None:
    if plot_path:
        from modelmem.plots import check_plot_path

        check_plot_path(plot_path)


def plot_sweep(
    plot_path: str,
    title: str,
    data: dict[str, Any],
    at: Callable[[int], dict[str, Any]],
    axis: str,
    model_context: int,
) -> None:
    """Write --plot: the breakdown of ``data`` and its total at each length of a sweep."""
    from modelmem.plots import context_points, write_plot

    points = context_points(data[axis], model_context)
    sweep = [(c, data["total_bytes"] if c == data[axis] else at(c)["total_bytes"]) for c in points]
    label = "context (tokens)" if axis == "context" else "sequence length (tokens)"
    write_plot(plot_path, title, data["components"], sweep, label, data.get("memory_bytes"))


def plot_option(axis: str) -> Callable[[Any], Any]:
    return click.option(
        "--plot", "plot_path", default=None, metavar="FILE", help=PLOT_HELP.format(axis=axis)
    )


@click.command()
@click.argument("source")
@options_from(InferenceRequest.specs())
@plot_option("context")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def inference(
    ctx: click.Context, /, source: str, plot_path: str | None, as_json: bool, **options: Any
) -> None:
    """Memory to serve SOURCE: weights + KV cache + activations + runtime overheads."""
    from modelmem.app.entry import inference_data
    from modelmem.app.models import resolve_model
    from modelmem.cli.render import emit_json, render_memory

    _check_plot(plot_path)
    given = given_options(ctx, options)
    model = resolve_model(source)
    data = inference_data(model, options, given)
    if plot_path:
        plot_sweep(
            plot_path,
            f"{model.label}: inference b={data['batch']} context={data['context']:,}",
            data,
            lambda c: inference_data(
                model, {**options, "context": c, "memory": None}, given | {"context"}
            ),
            "context",
            model.spec.context_length,
        )
    if as_json:
        emit_json(data)
        return
    render_memory(model.label, data)


@click.command()
@click.argument("source")
@options_from(TrainRequest.specs())
@plot_option("sequence length")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def train(
    ctx: click.Context, /, source: str, plot_path: str | None, as_json: bool, **options: Any
) -> None:
    """Peak memory of a training step of SOURCE on the most loaded device, with every term."""
    from modelmem.app.entry import train_data
    from modelmem.app.models import resolve_model
    from modelmem.cli.render import emit_json, render_training

    _check_plot(plot_path)
    given = given_options(ctx, options)
    model = resolve_model(source)
    data = train_data(model, options, given)
    if plot_path:
        plot_sweep(
            plot_path,
            f"{model.label}: training step b={data['batch']} seq={data['seq']:,}",
            data,
            lambda s: train_data(model, {**options, "seq": s, "memory": None}, given | {"seq"}),
            "seq",
            min(model.spec.context_length, 32_768),
        )
    if as_json:
        emit_json(data)
        return
    render_training(model.label, data)


__all__ = ["inference", "params", "plot_sweep", "split_options", "train"]

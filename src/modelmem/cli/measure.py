"""`measure` (an estimate's own command line, run on fake tensors) and `validate`."""

from __future__ import annotations

from typing import Any

import click

from modelmem.app.requests import workload_specs
from modelmem.cli.options import given_options, options_from
from modelmem.vocabulary import MODES


@click.command()
@click.argument("source")
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default=None,
    help="A training step (forward, loss, backward, optimizer) or prefill + decode "
    "(default: train, or inference when an inference option such as --context is given).",
)
@options_from(workload_specs())
@click.option(
    "--decode-steps",
    type=int,
    default=None,
    help="Inference: decode steps after the prefill (default: context - prompt, or 0).",
)
@click.option("--steps", type=int, default=2, show_default=True, help="Training steps to run.")
@click.option(
    "--whole",
    is_flag=True,
    help="Measure every layer instead of extrapolating exactly from three shallow copies.",
)
@click.option(
    "--real", is_flag=True, help="Use real CPU tensors instead of fake ones (small models only)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def measure(
    ctx: click.Context,
    /,
    source: str,
    mode: str | None,
    decode_steps: int | None,
    steps: int,
    whole: bool,
    real: bool,
    as_json: bool,
    **options: Any,
) -> None:
    """Measure the exact tensor peak of a real step of SOURCE with fake tensors.

    Takes the options of `train` and `inference`: put `measure` in front of an estimate's
    command line and it runs that workload — with the same defaults — in the installed
    transformers implementation on PyTorch fake tensors (no weights, no GPU, no model code
    from the Hub), recording every tensor allocation. Options transformers on one device
    cannot run are refused with the reason. Needs the `measure` extra.
    """
    from modelmem.app.entry import measure_data
    from modelmem.cli.render import emit_json, render_measure

    given = given_options(ctx, options)
    data = measure_data(
        source,
        options,
        given,
        mode=mode,
        steps=steps,
        decode_steps=decode_steps,
        whole=whole,
        real=real,
    )
    if as_json:
        emit_json(data)
        return
    render_measure(data["source"], data)


@click.command()
@click.option("--quick", is_flag=True, help="Only the three-row grid the test suite runs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def validate(quick: bool, as_json: bool) -> None:
    """Run each grid row's estimate command line and `measure` with the same options; print
    the errors.

    Exits with 1 when a row is outside its tolerance. Needs the `measure` extra.
    """
    from modelmem.measurement import load_measure

    load_measure()  # a clear error when torch/transformers are missing
    from modelmem.cli.render import console, emit_json
    from modelmem.measurement.validate import FULL_GRID, QUICK_GRID
    from modelmem.measurement.validate import validate as run_grid

    rows = run_grid(QUICK_GRID if quick else FULL_GRID)
    if as_json:
        emit_json([r.to_dict() for r in rows])
    else:
        from rich.table import Table

        from modelmem.units import format_bytes_binary

        table = Table(title="estimate vs fake-tensor measurement (tensor peak)")
        for col in ("command line", "estimate", "measured", "error", "within"):
            table.add_column(
                col, justify="right" if col in ("estimate", "measured", "error") else "left"
            )
        for r in rows:
            table.add_row(
                " ".join(r.case.command_line()),
                format_bytes_binary(r.estimate_bytes),
                format_bytes_binary(r.measured_bytes),
                f"{r.error:+.2%}",
                f"{'yes' if r.passed else 'NO'} (±{r.case.tolerance:.0%})",
            )
        console().print(table)
    if not all(r.passed for r in rows):
        raise click.exceptions.Exit(1)

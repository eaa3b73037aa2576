"""Each validate row is an estimate's command line, and measure takes it unchanged."""

from __future__ import annotations

import click
import pytest

from modelmem.app.fitting import build_workload_request
from modelmem.app.measuring import measure_settings
from modelmem.app.models import resolve_model
from modelmem.cli.group import cli
from modelmem.cli.options import given_options
from modelmem.measurement.validate import FULL_GRID


@pytest.mark.parametrize("case", FULL_GRID, ids=lambda c: " ".join(c.command_line()))
def test_the_row_is_a_command_line_and_measure_runs_it(case: object) -> None:
    args = case.command_line()  # type: ignore[attr-defined]
    command = cli.get_command(click.Context(cli), args[0])
    assert command is not None
    ctx = command.make_context(args[0], args[1:])  # parses exactly as the CLI does
    given = given_options(ctx, [n for n in ctx.params if n != "source"])
    parsed = {name: ctx.params[name] for name in given}
    assert parsed == case.options()  # type: ignore[attr-defined]
    # measure builds its run from the same options, with the estimate's defaults
    model = resolve_model(case.model)  # type: ignore[attr-defined]
    request = build_workload_request(case.mode, parsed, given, None)  # type: ignore[attr-defined]
    settings = measure_settings(model, request)
    assert settings["batch"] == case.batch and settings["mode"] == case.mode  # type: ignore[attr-defined]
    if case.mode == "inference":  # type: ignore[attr-defined]
        assert settings["seq"] == case.seq and settings["decode_steps"] == 2  # type: ignore[attr-defined]
    else:
        assert settings["seq"] == case.seq and settings["recipe"] == case.recipe  # type: ignore[attr-defined]

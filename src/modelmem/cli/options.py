"""Click options generated from the request fields (:mod:`modelmem.app.requests`): the
command line cannot name, default or constrain an option differently from the web and
Python APIs, because it has no option of its own to get wrong."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from modelmem.app.fields import OptionSpec

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["given_options", "options_from", "split_options"]


def _finite(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """Refuse "nan" and "inf", which click's float type accepts."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value!r} is not a finite number", ctx, param)
    return value


def click_option(spec: OptionSpec) -> Callable[[F], F]:
    """One click option for one request field."""
    kwargs: dict[str, Any] = {"help": spec.help, "default": spec.default}
    if spec.metavar:
        kwargs["metavar"] = spec.metavar
    if spec.kind is bool:
        flag = spec.flag
        decls = [f"{flag}/--no-{flag[2:]}" if spec.negatable else flag, spec.name]
        if spec.negatable:
            return click.option(*decls, show_default=True, **kwargs)
        return click.option(*decls, is_flag=True, **kwargs)
    if spec.choices is not None:
        kwargs["type"] = click.Choice(spec.choices)
    elif spec.kind is int:
        kwargs["type"] = int
    elif spec.kind is float:
        kwargs["type"] = float
        kwargs["callback"] = _finite
    kwargs["show_default"] = spec.default not in (None, "")
    if spec.required:
        kwargs["required"] = True
        del kwargs["default"]
    return click.option(spec.flag, spec.name, **kwargs)


def options_from(specs: Iterable[OptionSpec]) -> Callable[[F], F]:
    """A decorator adding every CLI option of ``specs``, in order."""
    chosen = [s for s in specs if s.cli]

    def decorate(command: F) -> F:
        for spec in reversed(chosen):
            command = click_option(spec)(command)
        return command

    return decorate


def given_options(ctx: click.Context, names: Iterable[str]) -> frozenset[str]:
    """The options the user set on the command line (not left at their defaults)."""
    return frozenset(
        n for n in names if ctx.get_parameter_source(n) not in (None, ParameterSource.DEFAULT)
    )


def split_options(options: dict[str, Any], specs: Iterable[OptionSpec]) -> dict[str, Any]:
    """The values of ``specs`` taken out of a command's keyword arguments."""
    return {s.name: options.pop(s.name) for s in specs if s.name in options}

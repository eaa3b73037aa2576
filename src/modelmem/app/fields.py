"""Option fields: one declaration per workload option, read by every door.

A request class (:mod:`modelmem.app.requests`) declares each option once with
:func:`option`: its default, its kind, its choices, its bounds and its help. The command
line generates its click options from these fields, the web API its body models, and the
Python API takes them as keyword arguments, so a name, a default or a list of choices
cannot differ between doors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from modelmem.errors import InvalidValueError, UnknownNameError

__all__ = ["OptionSpec", "check_value", "option", "option_specs"]


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """What a door needs to know about one option."""

    name: str  # the Python name; the command line's is ``--`` + name with ``_`` -> ``-``
    default: Any
    kind: type  # int, float, str or bool
    help: str
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    negatable: bool = False  # --x/--no-x on the command line (bool options)
    cli_name: str | None = None  # a different command-line spelling (e.g. --deepspeed for a path)
    cli: bool = True  # offered on the command line
    metavar: str | None = None
    required: bool = False

    @property
    def flag(self) -> str:
        return "--" + (self.cli_name or self.name.replace("_", "-"))


def option(
    default: Any,
    help: str,
    *,
    kind: type | None = None,
    choices: Iterable[str] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    negatable: bool = False,
    cli_name: str | None = None,
    cli: bool = True,
    metavar: str | None = None,
    required: bool = False,
) -> Any:
    """A dataclass field carrying its :class:`OptionSpec` (the name is filled in later)."""
    spec = OptionSpec(
        name="",
        default=default,
        kind=kind or type(default),
        help=help,
        choices=tuple(choices) if choices is not None else None,
        minimum=minimum,
        maximum=maximum,
        negatable=negatable,
        cli_name=cli_name,
        cli=cli,
        metavar=metavar,
        required=required,
    )
    return dataclasses.field(default=default, metadata={"option": spec})


def option_specs(cls: type) -> tuple[OptionSpec, ...]:
    """The options a request class declares, in declaration order."""
    return tuple(
        dataclasses.replace(f.metadata["option"], name=f.name)
        for f in dataclasses.fields(cls)
        if "option" in f.metadata
    )


def check_value(spec: OptionSpec, value: Any) -> Any:
    """``value`` checked against its option's kind, choices and bounds (None passes when the
    default is None). Errors name the option as the user wrote it."""
    if value is None:
        if spec.default is None:
            return None
        raise InvalidValueError(spec.name, value, "must be given")
    if spec.kind is bool:
        if not isinstance(value, bool):
            raise InvalidValueError(spec.name, value, "must be true or false")
        return value
    if spec.kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidValueError(spec.name, value, "must be an integer")
    elif spec.kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidValueError(spec.name, value, "must be a number")
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidValueError(spec.name, value, "must be a finite number")
        value = float(value)
    elif spec.kind is str and not isinstance(value, str):
        raise InvalidValueError(spec.name, value, "must be a string")
    if spec.choices is not None and value not in spec.choices:
        raise UnknownNameError(spec.name, value, spec.choices)
    if spec.minimum is not None and value < spec.minimum:
        raise InvalidValueError(spec.name, value, f"must be >= {_num(spec.minimum)}")
    if spec.maximum is not None and value > spec.maximum:
        raise InvalidValueError(spec.name, value, f"must be <= {_num(spec.maximum)}")
    return value


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def unknown_options(given: Mapping[str, Any], known: Iterable[str]) -> list[str]:
    return sorted(set(given) - set(known))

"""Command-line interface: thin commands over the application layer, and one renderer.

Each command turns its options into a request (the options themselves are generated from
the request fields, :mod:`modelmem.cli.options`), calls :mod:`modelmem.app`, and prints the
answer as JSON (``--json``) or as tables (:mod:`modelmem.cli.render`). Errors from the
library are caught once, in :func:`main`: one line on stderr and exit code 2.

Exit codes: 0 an answer (and, for ``fit``, it fits); 1 ``fit``: does not fit (or an
internal error); 2 bad input; 130 interrupted.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from modelmem.errors import ModelMemError

__all__ = ["EXIT_BAD_INPUT", "EXIT_DOES_NOT_FIT", "EXIT_INTERNAL", "main"]

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 1
EXIT_DOES_NOT_FIT = 1


def __getattr__(name: str) -> Any:
    """``cli`` (the click group) loads with click, only when asked for: the estimate
    commands' fast path answers without importing click at all."""
    if name == "cli":
        from modelmem.cli.group import cli

        return cli
    raise AttributeError(f"module 'modelmem.cli' has no attribute {name!r}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; bad input is one line on stderr and exit code 2, never a traceback."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv) or ["--help"]  # bare: the help
    try:
        _check_arguments(args)
        from modelmem.cli.fast import run_fast

        if run_fast(args):  # a plain estimate command line: answered without click
            return 0
        from modelmem.cli.group import cli

        # standalone_mode=False: click returns a command's Exit code instead of exiting
        code = cli.main(args=args, prog_name="modelmem", standalone_mode=False)
    except ModelMemError as e:
        _say(f"modelmem: error: {e}")
        return EXIT_BAD_INPUT
    except Exception as e:
        return _failure(e)
    return code if isinstance(code, int) else 0


def _check_arguments(args: Sequence[str]) -> None:
    """Arguments that are not UTF-8 (undecodable bytes arrive as lone surrogates, PEP 383)
    are refused in one line before any command sees them."""
    for arg in args:
        if not arg.isascii():
            try:
                arg.encode("utf-8")
            except UnicodeEncodeError:
                from modelmem.errors import InvalidValueError

                raise InvalidValueError("argument", arg, "not valid UTF-8") from None


def _say(line: str) -> None:
    import sys

    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _failure(e: Exception) -> int:
    """Exit code and one line for anything but the library's own errors."""
    import click

    if isinstance(e, click.exceptions.Abort):
        _say("modelmem: aborted")
        return 130
    if isinstance(e, click.exceptions.ClickException):  # usage: unknown option, bad choice
        import re

        from modelmem.errors import MAX_SHOWN_CHARS, shown

        # a 5,000-digit --batch is echoed by click: cut each overlong word to a readable size
        message = re.sub(rf"\S{{{MAX_SHOWN_CHARS},}}", lambda m: shown(m[0]), e.format_message())
        _say(f"modelmem: error: {message}")
        return EXIT_BAD_INPUT
    if isinstance(e, OSError):
        from modelmem.errors import shown

        _say(f"modelmem: error: {shown(str(e.filename or ''))}: {e.strerror}")
        return EXIT_BAD_INPUT
    if os.environ.get("MODELMEM_DEBUG"):  # a bug or a library failure: one line, unless debugging
        raise e
    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    _say(f"modelmem: internal error: {type(e).__name__}: {first} (MODELMEM_DEBUG=1 shows more)")
    return EXIT_INTERNAL

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
from typing import ClassVar

import click

from modelmem import __version__
from modelmem.errors import ModelMemError

__all__ = ["EXIT_BAD_INPUT", "EXIT_DOES_NOT_FIT", "EXIT_INTERNAL", "cli", "main"]

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 1
EXIT_DOES_NOT_FIT = 1


class LazyGroup(click.Group):
    """A group whose commands are imported only when one is run (or listed by --help):
    each command module costs milliseconds of click option set-up, and the estimate
    commands must start fast."""

    lazy: ClassVar[dict[str, str]] = {
        "params": "modelmem.cli.estimate:params",
        "inference": "modelmem.cli.estimate:inference",
        "train": "modelmem.cli.estimate:train",
        "measure": "modelmem.cli.measure:measure",
        "validate": "modelmem.cli.measure:validate",
        "fit": "modelmem.cli.hardware:fit",
        "plan": "modelmem.cli.hardware:plan",
        "devices": "modelmem.cli.hardware:devices",
        "tokens": "modelmem.cli.tokens:tokens",
        "cost": "modelmem.cli.tokens:cost",
        "models": "modelmem.cli.catalogue:models",
        "formats": "modelmem.cli.catalogue:formats",
        "serve": "modelmem.cli.web:serve",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            from importlib import import_module

            module, _, attribute = self.lazy[cmd_name].partition(":")
            self.add_command(getattr(import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="modelmem")
def cli() -> None:
    """How much memory a large language model needs, and whether it fits.

    SOURCE is a catalogue model (`modelmem models`), a config.json file or model folder,
    a safetensors or GGUF file, a PEFT adapter, a Hub repo id, or a plain size such as
    7B, 1.5b, 124M or 70e9. Exit codes: 0 answered (fit: fits), 1 fit: does not fit,
    2 bad input.
    """


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; bad input is one line on stderr and exit code 2, never a traceback."""
    try:
        # standalone_mode=False: click returns a command's Exit code instead of exiting
        code = cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except ModelMemError as e:
        click.echo(f"modelmem: error: {e}", err=True)
        return EXIT_BAD_INPUT
    except click.exceptions.Abort:
        click.echo("modelmem: aborted", err=True)
        return 130
    except click.exceptions.ClickException as e:  # usage errors: unknown option, bad choice
        click.echo(f"modelmem: error: {e.format_message()}", err=True)
        return EXIT_BAD_INPUT
    except OSError as e:
        click.echo(f"modelmem: error: {e.filename or ''}: {e.strerror}", err=True)
        return EXIT_BAD_INPUT
    except Exception as e:  # a bug or a library failure: still one line, unless debugging
        if os.environ.get("MODELMEM_DEBUG"):
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        click.echo(
            f"modelmem: internal error: {type(e).__name__}: {first} (MODELMEM_DEBUG=1 shows more)",
            err=True,
        )
        return EXIT_INTERNAL
    return code if isinstance(code, int) else 0

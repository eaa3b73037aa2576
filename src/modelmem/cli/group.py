"""The click group of the command line: its commands load lazily."""

from __future__ import annotations

from typing import ClassVar

import click

from modelmem import __version__

__all__ = ["LazyGroup", "cli"]


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

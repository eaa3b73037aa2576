"""The estimate commands' fast path: `inference`/`train` without click.

click and its option set-up cost about as much as the whole estimate, and an estimate's
answer is wanted in well under a second, often from scripts. For a plain command line of
`inference` or `train` (options from the request fields, `--json` or a table), this parses
the arguments with the same field declarations the click options are generated from. Any
argument it does not recognise — help, a typo, a bad value, `--plot` — returns None and
the command goes through click, which gives the usual usage errors. Both paths call the
same application-layer function with the same options, so they answer the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["run_fast"]

_COMMANDS = ("inference", "train")


def parse(args: Sequence[str], specs: Sequence[Any]) -> tuple[str, dict[str, Any], bool] | None:
    """(SOURCE, options given, --json) or None when click should handle the line."""
    by_flag = {s.flag: s for s in specs if s.cli}
    negated = {"--no-" + s.flag[2:]: s for s in specs if s.cli and s.negatable}
    source: str | None = None
    options: dict[str, Any] = {}
    as_json = False
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--json":
            as_json = True
            continue
        if not arg.startswith("-"):
            if source is not None:
                return None
            source = arg
            continue
        flag, eq, inline = arg.partition("=")
        if flag in negated and not eq:
            options[negated[flag].name] = False
            continue
        spec = by_flag.get(flag)
        if spec is None or spec.name in options:
            return None
        if spec.kind is bool:
            if eq:
                return None
            options[spec.name] = True
            continue
        if eq:
            text = inline
        elif i < len(args):
            text, i = args[i], i + 1
        else:
            return None
        value = _convert(spec, text)
        if value is None:
            return None
        options[spec.name] = value
    return (source, options, as_json) if source is not None else None


def _convert(spec: Any, text: str) -> Any:
    if spec.choices is not None and text not in spec.choices:
        return None
    if spec.kind is int:
        try:
            return int(text, 10)
        except ValueError:
            return None
    if spec.kind is float:
        try:
            value = float(text)
        except ValueError:
            return None
        return value if value == value and abs(value) != float("inf") else None
    return text


def run_fast(argv: Sequence[str]) -> bool:
    """Answer ``argv`` without click when it is a plain estimate command line; False when
    click should handle it."""
    if not argv or argv[0] not in _COMMANDS:
        return False
    from modelmem.app.requests import InferenceRequest, TrainRequest

    command = argv[0]
    cls = InferenceRequest if command == "inference" else TrainRequest
    parsed = parse(argv[1:], cls.specs())
    if parsed is None:
        return False
    source, options, as_json = parsed
    from modelmem.app.models import resolve_model

    model = resolve_model(source)
    request = cls.from_options(options)  # given: exactly the options on the line
    if command == "inference":
        from modelmem.app.inference import inference_json, prepare_inference

        data = inference_json(prepare_inference(model, request))
    else:
        from modelmem.app.training import prepare_training, train_json

        data = train_json(prepare_training(model, request))
    if as_json:
        import json
        import sys

        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return True
    from modelmem.cli import render

    (render.render_memory if command == "inference" else render.render_training)(model.label, data)
    return True

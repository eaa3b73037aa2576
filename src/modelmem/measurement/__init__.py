"""Fake-tensor measurement of real transformers steps (optional extra ``measure``).

Importing this package is cheap; torch and transformers load in :func:`load_measure`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modelmem.errors import ModelMemError


class MeasureUnavailableError(ModelMemError):
    def __init__(self, missing: str) -> None:
        super().__init__(
            f"measure needs {missing}: install the extra with `pip install 'modelmem[measure]'`"
        )


def load_measure() -> tuple[Callable[..., Any], type]:
    """(run, MeasureSettings), importing torch and transformers now."""
    for module in ("torch", "transformers"):
        try:
            __import__(module)
        except ImportError:
            raise MeasureUnavailableError(module) from None
    from modelmem.measurement.extrapolate import run_measurement
    from modelmem.measurement.run import MeasureSettings

    return run_measurement, MeasureSettings

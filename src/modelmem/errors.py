"""Errors raised by modelmem.

Every error the library raises on bad input derives from :class:`ModelMemError`, so the
command line and the web API catch one type and print one line::

    ModelMemError
    ├── InvalidValueError       a field has a value that is out of range or malformed
    │   └── UnknownNameError    a name (format, model, device, model_type) is not known
    ├── MissingFieldError       a required field is absent from a config or header
    └── SourceError             a file or folder cannot be read as what it claims to be

Each error stores its fields and builds its message in one place, so the message always
names the field and the offending value.
"""

from __future__ import annotations

from collections.abc import Iterable


class ModelMemError(Exception):
    """Base class of every error raised on bad input."""


# A value or source echoed in a message is cut to this many characters: a 5,000-character
# argument or a 300-digit number still gives a line a person can read.
MAX_SHOWN_CHARS = 200


def shown(text: str) -> str:
    """``text`` cut to MAX_SHOWN_CHARS, saying how long it was."""
    if len(text) <= MAX_SHOWN_CHARS:
        return text
    return f"{text[: MAX_SHOWN_CHARS - 40]}...({len(text):,} characters)"


class InvalidValueError(ModelMemError, ValueError):
    """A field holds a value that cannot be used."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field}={shown(repr(value))}: {reason}")


# The command that lists every name of a field, said when a name is unknown.
LISTED_BY: dict[str, str] = {
    "dtype": "modelmem formats",
    "kv_dtype": "modelmem formats",
    "qlora_scheme": "modelmem formats",
    "weights_dtype": "modelmem formats",
    "format": "modelmem formats",
    "device": "modelmem devices",
    "model": "modelmem models",
    "source": "modelmem models",
    "model_type": "modelmem models",
}


class UnknownNameError(InvalidValueError):
    """A name that is not in the relevant catalogue; the message suggests the closest known
    names ("did you mean") and, for a catalogue, the command that lists them all."""

    def __init__(
        self, field: str, value: object, known: Iterable[str], listed_by: str | None = None
    ) -> None:
        choices = sorted(set(known))
        listed_by = listed_by or LISTED_BY.get(field)
        close = closest_names(value, choices)
        if len(choices) <= 12 and listed_by is None:
            reason = f"unknown; known: {', '.join(choices)}"
            if close:
                reason = f"unknown; did you mean {' or '.join(close)}? known: {', '.join(choices)}"
        else:
            reason = "unknown"
            if close:
                reason += f"; did you mean {', '.join(close[:-1])}"
                reason += f" or {close[-1]}?" if len(close) > 1 else f"{close[-1]}?"
            if listed_by:
                reason += f" (`{listed_by}` lists them all)"
            else:
                reason += f"; known: {', '.join(choices[:12])}, ..."
        super().__init__(field, value, reason)
        self.known = tuple(choices)


def did_you_mean(close: list[str]) -> str:
    """ "did you mean a, b or c?" (empty when nothing is close)."""
    if not close:
        return ""
    names = close[-1] if len(close) == 1 else f"{', '.join(close[:-1])} or {close[-1]}"
    return f"did you mean {names}?"


def closest_names(value: object, choices: list[str]) -> list[str]:
    """Up to three known names closest to ``value`` (difflib's ratio, case-insensitive)."""
    import difflib

    if not isinstance(value, str) or not value:
        return []

    def plain(text: str) -> str:
        return "".join(ch for ch in text.lower() if ch.isalnum())

    key = plain(value[:200])
    by_lower = {c.lower(): c for c in choices}
    found = [
        by_lower[f]
        for f in difflib.get_close_matches(value.strip().lower()[:200], by_lower, n=3, cutoff=0.6)
    ]
    # a name the user wrote without its punctuation or prefix: q4km -> gguf-q4_k_m
    contained = [c for c in choices if key and len(key) >= 3 and key in plain(c)]
    return list(dict.fromkeys([*found, *sorted(contained, key=len)]))[:3]


class MissingFieldError(ModelMemError, KeyError):
    """A required field is missing from a config or header."""

    def __init__(self, field: str, where: str) -> None:
        self.field = field
        self.where = where
        super().__init__(field)

    def __str__(self) -> str:
        return f"{self.field}: required field missing in {self.where}"


class SourceError(ModelMemError):
    """A file, folder or other source cannot be read as a model description."""

    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        self.problem = problem
        super().__init__(f"{shown(source)}: {problem}")


def check_positive_ints(owner: object, names: Iterable[str], maximum: int) -> None:
    """Every named attribute of ``owner`` is an int in [1, maximum] (bools refused)."""
    for name in names:
        value = getattr(owner, name)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
            raise InvalidValueError(name, value, f"must be an integer in [1, {maximum}]")


def check_choices(owner: object, choices: Iterable[tuple[str, Iterable[str]]]) -> None:
    """Every named attribute of ``owner`` is one of its allowed names."""
    for name, allowed in choices:
        allowed = tuple(allowed)
        if getattr(owner, name) not in allowed:
            raise UnknownNameError(name, getattr(owner, name), allowed)

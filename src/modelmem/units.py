"""Sizes as exact integers: parsing "7B", "80GB", "24GiB" and printing them back.

Byte counts and parameter counts stay exact ``int`` inside modelmem; only this module turns
them into text and back. Decimal units (kB = 10^3 … TB = 10^12) and binary units
(KiB = 2^10 … TiB = 2^40) are kept apart as data, side by side, so a size is never divided
by 2^30 and labelled "GB".

Parsing goes through :class:`fractions.Fraction`, never ``float``: ``"1.5b"`` is exactly
1,500,000,000 and ``"0.1GB"`` exactly 100,000,000. Bad input raises
:class:`~modelmem.errors.InvalidValueError` naming the field and the value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from fractions import Fraction
from types import MappingProxyType
from typing import Final

from modelmem.errors import InvalidValueError, UnknownNameError

__all__ = [
    "BINARY_BYTE_UNITS",
    "COUNT_SUFFIXES",
    "DECIMAL_BYTE_UNITS",
    "MAX_BYTES",
    "MAX_COUNT",
    "format_bytes",
    "format_bytes_binary",
    "format_bytes_both",
    "format_count",
    "parse_bytes",
    "parse_count",
]

# --- prefixes, as data ------------------------------------------------------------------------
# Decimal (SI) and binary (IEC 80000-13) byte units side by side. The order is the display order.

DECIMAL_BYTE_UNITS: Final[Mapping[str, int]] = MappingProxyType(
    {"B": 1, "kB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15}
)
BINARY_BYTE_UNITS: Final[Mapping[str, int]] = MappingProxyType(
    {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40, "PiB": 2**50}
)

# Suffixes accepted by parse_bytes, matched case-insensitively. "KB" is accepted for kB. A bare
# "K"/"M"/"G"/"T"/"P" (no "B") and the Kubernetes-style "Ki"/"Mi"/"Gi"/"Ti"/"Pi" are BINARY,
# because that is what nvidia-smi, llama.cpp ("4.58G") and `free -g` mean by them.
_BYTE_SUFFIXES: Final[Mapping[str, int]] = MappingProxyType(
    {
        "": 1,
        "b": 1,
        "byte": 1,
        "bytes": 1,
        **{unit.lower(): size for unit, size in DECIMAL_BYTE_UNITS.items()},
        **{unit.lower(): size for unit, size in BINARY_BYTE_UNITS.items()},
        **{unit[0].lower(): size for unit, size in BINARY_BYTE_UNITS.items() if unit != "B"},
        **{unit[:2].lower(): size for unit, size in BINARY_BYTE_UNITS.items() if unit != "B"},
    }
)

# Parameter counts: K/M/B/T are thousand, million, billion, trillion (B is a count, not bytes).
COUNT_SUFFIXES: Final[Mapping[str, int]] = MappingProxyType(
    {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}
)
_COUNT_DISPLAY: Final[tuple[tuple[str, int], ...]] = (
    ("T", 10**12),
    ("B", 10**9),
    ("M", 10**6),
    ("K", 10**3),
)

MAX_COUNT: Final[int] = 10**15
"""Largest parameter count accepted: far above any model, small enough to catch typos."""
MAX_BYTES: Final[int] = 2**60
"""Largest byte count accepted (1 EiB): far above any machine, small enough to catch typos."""

_MAX_TEXT_LENGTH: Final[int] = 64
_MAX_EXPONENT: Final[int] = 30

# A number: optional sign, digits (optionally grouped with commas), optional fraction, optional
# exponent; then an optional alphabetic unit. Whitespace is allowed around and between.
_NUMBER_RE: Final[re.Pattern[str]] = re.compile(
    r"""
    \s*
    (?P<sign>[+-])?
    (?P<int>\d{1,3}(?:,\d{3})+|\d*)
    (?:\.(?P<frac>\d*))?
    (?:[eE](?P<exp>[+-]?\d+))?
    \s*
    (?P<unit>[A-Za-z]*)
    \s*
    """,
    re.VERBOSE,
)


def _number_and_unit(text: str, field: str) -> tuple[Fraction, str]:
    """Split ``text`` into an exact number and its unit suffix (as written)."""
    if text.strip().lower().lstrip("+-") in {"nan", "inf", "infinity"}:
        raise InvalidValueError(field, text, "must be a finite number")
    if len(text) > _MAX_TEXT_LENGTH:
        raise InvalidValueError(field, text, f"longer than {_MAX_TEXT_LENGTH} characters")
    match = _NUMBER_RE.fullmatch(text)
    if match is None:
        raise InvalidValueError(field, text, "not a number with an optional unit")
    int_part = match["int"].replace(",", "")
    frac_part = match["frac"] or ""
    if not int_part and not frac_part:
        reason = "empty" if not text.strip() else "not a number with an optional unit"
        raise InvalidValueError(field, text, reason)
    exponent = int(match["exp"] or "0")
    if abs(exponent) > _MAX_EXPONENT:
        raise InvalidValueError(field, text, f"exponent beyond ±{_MAX_EXPONENT}")
    digits = int((int_part or "0") + frac_part)
    value = Fraction(digits) * Fraction(10) ** (exponent - len(frac_part))
    if match["sign"] == "-":
        value = -value
    return value, match["unit"]


def _check_range(value: Fraction, field: str, original: object, maximum: int, what: str) -> int:
    """Return ``value`` as an int, or raise if it is not a whole positive number within range."""
    if value <= 0:
        raise InvalidValueError(field, original, "must be positive" if value else "must not be 0")
    if value.denominator != 1:
        raise InvalidValueError(
            field, original, f"is not a whole number of {what} ({float(value):.12g})"
        )
    if value > maximum:
        raise InvalidValueError(field, original, f"absurdly large (more than {maximum:,} {what})")
    return value.numerator


def _exact_number(value: object, field: str) -> Fraction:
    """An int or finite float as an exact Fraction; anything else is an error."""
    if isinstance(value, bool):
        raise InvalidValueError(field, value, "must be a number or a string, not a bool")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidValueError(field, value, "must be finite")
        return Fraction(value)
    raise InvalidValueError(
        field, value, f"must be a string or a number, not {type(value).__name__}"
    )


def parse_count(text: str | int | float, field: str = "size") -> int:
    """Parse a parameter count such as ``"7B"``, ``"1.5b"``, ``"124M"``, ``"70e9"``, ``"350k"``.

    Suffixes K, M, B, T (any case) mean thousand, million, billion, trillion; ``B`` is a
    count here, not bytes. Plain digits (``"8030261248"``, ``"8,030,261,248"``), ints and
    floats are accepted too. Decimal strings are parsed exactly, so ``"1.5b"`` is exactly
    1,500,000,000.

    Raises :class:`InvalidValueError` (naming ``field``) for empty or malformed text, unknown
    suffixes, zero, negative, NaN, infinite, fractional (``"1.5"``) or absurd
    (> 10^15) counts.
    """
    if isinstance(text, str):
        number, suffix = _number_and_unit(text, field)
        multiplier = COUNT_SUFFIXES.get(suffix.upper())
        if multiplier is None:
            raise InvalidValueError(
                field, text, f"unknown suffix {suffix!r}; use K, M, B or T (thousand … trillion)"
            )
        number *= multiplier
    else:
        number = _exact_number(text, field)
    return _check_range(number, field, text, MAX_COUNT, "parameters")


def parse_bytes(text: str | int, field: str = "memory") -> int:
    """Parse a memory size such as ``"80GB"``, ``"80 GiB"``, ``"24G"``, ``"512MiB"``, ``"1024"``.

    - ``kB``/``KB``, ``MB``, ``GB``, ``TB``, ``PB`` are decimal: ``"80GB"`` is 80·10^9 bytes.
    - ``KiB``, ``MiB``, ``GiB``, ``TiB``, ``PiB`` are binary: ``"80GiB"`` is 80·2^30 bytes.
    - A bare ``K``, ``M``, ``G``, ``T``, ``P`` (no ``B``), and ``Ki``/``Mi``/``Gi``/…, are
      **binary**: ``"24G"`` is 24·2^30 bytes, as nvidia-smi, llama.cpp and ``free -g`` use it.
    - No unit (or ``B``) means bytes. Units are case-insensitive and always mean bytes, never
      bits. Commas group thousands (``"2,000,000,000"``); spaces may surround the unit.

    The result is exact. Raises :class:`InvalidValueError` (naming ``field``) for empty or
    malformed text, unknown units, zero, negative, NaN, a fractional number of bytes
    (``"0.1GiB"``) or an absurd size (> 2^60 bytes).
    """
    if isinstance(text, str):
        number, suffix = _number_and_unit(text, field)
        multiplier = _BYTE_SUFFIXES.get(suffix.lower())
        if multiplier is None:
            raise InvalidValueError(
                field, text, f"unknown unit {suffix!r}; use B, kB, MB, GB, TB or KiB … TiB"
            )
        number *= multiplier
    elif isinstance(text, int) and not isinstance(text, bool):
        number = Fraction(text)
    else:
        raise InvalidValueError(
            field, text, f"must be a string or an int, not {type(text).__name__}"
        )
    return _check_range(number, field, text, MAX_BYTES, "bytes")


# --- formatting -------------------------------------------------------------------------------


def _check_int(n: object, field: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise InvalidValueError(field, n, "must be an int")
    return n


def _round_half_away(value: Fraction, places: int) -> int:
    """``value`` · 10^places rounded to the nearest int, halves away from zero (exact)."""
    factor: int = 10**places
    rounded = math.floor(abs(value) * factor + Fraction(1, 2))
    return -rounded if value < 0 else rounded


def _fixed(value: Fraction, places: int = 2) -> str:
    """Exact fixed-point text with ``places`` decimals, e.g. Fraction(15, 10) -> "1.50"."""
    cents = _round_half_away(value, places)
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 10**places)
    return f"{sign}{whole}.{part:0{places}d}"


def _format_in_units(n: int, units: Mapping[str, int], unit: str | None) -> str:
    """Render ``n`` bytes in ``unit`` (or the largest unit that keeps the number ≥ 1)."""
    if unit is not None:
        if not isinstance(unit, str):
            raise InvalidValueError("unit", unit, "must be a string such as 'GB' or 'GiB'")
        lookup = {name.lower(): name for name in units}
        canonical = lookup.get(unit.lower())
        if canonical is None:
            raise UnknownNameError("unit", unit, units)
        chosen = canonical
    else:
        ordered = sorted(units.items(), key=lambda item: item[1])
        chosen = ordered[0][0]
        for index, (name, size) in enumerate(ordered):
            if abs(n) < size:
                break
            chosen = name
            # A value that rounds up to 1000.00 (or 1024.00) reads better in the next unit.
            next_size = ordered[index + 1][1] if index + 1 < len(ordered) else None
            if (
                next_size is not None
                and abs(_round_half_away(Fraction(n, size), 2)) >= (next_size // size) * 100
            ):
                chosen = ordered[index + 1][0]
    size = units[chosen]
    if size == 1:
        return f"{n} B"
    return f"{_fixed(Fraction(n, size))} {chosen}"


def format_bytes(n: int, unit: str | None = None) -> str:
    """Render a byte count in decimal units with two decimals: 2_000_000_000 -> "2.00 GB".

    ``unit`` forces one of B, kB, MB, GB, TB, PB (case-insensitive); by default the largest
    unit that keeps the number at least 1 is chosen. Negative values (margins) keep their
    sign: "-1.50 GB". Byte counts below 1 kB print as whole bytes: "512 B". Rounding is
    exact, halves away from zero.
    """
    return _format_in_units(_check_int(n, "bytes"), DECIMAL_BYTE_UNITS, unit)


def format_bytes_binary(n: int, unit: str | None = None) -> str:
    """Render a byte count in binary units with two decimals: 2_000_000_000 -> "1.86 GiB".

    ``unit`` forces one of B, KiB, MiB, GiB, TiB, PiB (case-insensitive); otherwise the
    largest unit that keeps the number at least 1 is chosen.
    """
    return _format_in_units(_check_int(n, "bytes"), BINARY_BYTE_UNITS, unit)


def format_bytes_both(n: int) -> str:
    """Decimal and binary side by side, for comparing with tools that print either:
    2_000_000_000 -> "2.00 GB (1.86 GiB)". Small counts print once: "512 B"."""
    decimal = format_bytes(n)
    binary = format_bytes_binary(n)
    return decimal if decimal == binary else f"{decimal} ({binary})"


def format_count(n: int) -> str:
    """Render a parameter count: 8_030_261_248 -> "8.03B", 124_439_808 -> "124.44M",
    12_288 -> "12.29K"; below 1,000 the plain integer ("768").

    K, M, B, T are thousand, million, billion, trillion, matching :func:`parse_count`, so
    ``parse_count(format_count(n))`` is ``n`` to within the rounding of the last digit.
    """
    n = _check_int(n, "count")
    for index, (suffix, size) in enumerate(_COUNT_DISPLAY):
        if abs(n) < size:
            continue
        # 999_999_999 rounds to "1000.00M"; show it as "1.00B" instead.
        if index > 0 and abs(_round_half_away(Fraction(n, size), 2)) >= 1000 * 100:
            suffix, size = _COUNT_DISPLAY[index - 1]
        return f"{_fixed(Fraction(n, size))}{suffix}"
    return str(n)

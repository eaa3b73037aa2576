"""Unit tests for modelmem.units: exact parsing and formatting of sizes and counts."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelmem.errors import InvalidValueError, UnknownNameError
from modelmem.units import (
    BINARY_BYTE_UNITS,
    COUNT_SUFFIXES,
    DECIMAL_BYTE_UNITS,
    MAX_BYTES,
    MAX_COUNT,
    format_bytes,
    format_bytes_binary,
    format_bytes_both,
    format_count,
    parse_bytes,
    parse_count,
)

# --- prefixes as data -------------------------------------------------------------------------


def test_decimal_and_binary_units_side_by_side() -> None:
    assert DECIMAL_BYTE_UNITS["kB"] == 1_000
    assert DECIMAL_BYTE_UNITS["GB"] == 1_000_000_000
    assert DECIMAL_BYTE_UNITS["TB"] == 10**12
    assert BINARY_BYTE_UNITS["KiB"] == 1_024
    assert BINARY_BYTE_UNITS["GiB"] == 1_073_741_824
    assert BINARY_BYTE_UNITS["TiB"] == 2**40
    assert COUNT_SUFFIXES["B"] == 10**9


# --- parse_count ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7B", 7_000_000_000),
        ("7b", 7_000_000_000),
        ("1.5b", 1_500_000_000),  # exact, not float(1.5) * 1e9
        ("124M", 124_000_000),
        ("124m", 124_000_000),
        ("70e9", 70_000_000_000),
        ("350k", 350_000),
        ("350K", 350_000),
        ("1T", 1_000_000_000_000),
        ("8030261248", 8_030_261_248),
        ("8,030,261,248", 8_030_261_248),
        (" 7 B ", 7_000_000_000),
        ("0.5B", 500_000_000),
        ("1.235814400B", 1_235_814_400),  # Llama-3.2-1B written with all its digits
        (".5K", 500),
        (8_030_261_248, 8_030_261_248),
        (7e9, 7_000_000_000),
    ],
)
def test_parse_count_exact(text: str | int | float, expected: int) -> None:
    assert parse_count(text) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "seven",
        "1.5",
        "0",
        "0B",
        "-7B",
        "7X",
        "7GB",
        "nan",
        "inf",
        "-inf",
        "2e15",
        "1e31",
        "1,23",
        "B",
        "1e999999999",
    ],
)
def test_parse_count_rejects_with_field_name(bad: str) -> None:
    with pytest.raises(InvalidValueError) as info:
        parse_count(bad, field="params")
    assert info.value.field == "params"
    assert "params" in str(info.value)
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize("bad", [0, -1, 1.5, float("nan"), float("inf"), True, 10**15 + 1])
def test_parse_count_rejects_numbers(bad: object) -> None:
    with pytest.raises(InvalidValueError, match="size="):
        parse_count(bad)  # type: ignore[arg-type]


def test_parse_count_limit_is_inclusive() -> None:
    assert parse_count(MAX_COUNT) == 10**15
    assert parse_count("1000T") == 10**15


# --- parse_bytes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("80GB", 80 * 10**9),
        ("80GiB", 80 * 2**30),
        ("80 GB", 80_000_000_000),
        ("80gb", 80_000_000_000),
        ("24G", 24 * 2**30),  # bare G is binary, as in nvidia-smi / llama.cpp / free -g
        ("24g", 24 * 2**30),
        ("24Gi", 24 * 2**30),
        ("512MiB", 512 * 2**20),
        ("512M", 512 * 2**20),
        ("1.5TB", 1_500_000_000_000),
        ("1.5TiB", 3 * 2**39),
        ("1024", 1024),
        ("1024B", 1024),
        ("2,000,000,000", 2_000_000_000),
        ("16 kB", 16_000),
        ("16KB", 16_000),
        ("16K", 16_384),
        ("0.5GiB", 2**29),
        ("1e9", 1_000_000_000),
        (4096, 4096),
    ],
)
def test_parse_bytes_exact(text: str | int, expected: int) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "GB",
        "eighty GB",
        "0",
        "0GB",
        "-1GB",
        "nan",
        "NaN GB",
        "inf",
        "80 XB",
        "80 Gbit",
        "0.1GiB",
        "1.5",
        "2000PB",
        "1e30",
        "80 GB GB",
        "9" * 80,
    ],
)
def test_parse_bytes_rejects_with_field_name(bad: str) -> None:
    with pytest.raises(InvalidValueError) as info:
        parse_bytes(bad, field="gpu_memory")
    assert info.value.field == "gpu_memory"
    assert "gpu_memory" in str(info.value)


@pytest.mark.parametrize("bad", [0, -5, True, 1.5, None, 2**60 + 1])
def test_parse_bytes_rejects_non_strings(bad: object) -> None:
    with pytest.raises(InvalidValueError, match="memory="):
        parse_bytes(bad)  # type: ignore[arg-type]


def test_parse_bytes_fraction_message_names_the_remainder() -> None:
    # 0.1 GiB = 107,374,182.4 bytes: not a whole number, so refused rather than rounded.
    with pytest.raises(InvalidValueError, match=r"107374182\.4"):
        parse_bytes("0.1GiB")


def test_parse_bytes_limit() -> None:
    assert parse_bytes(MAX_BYTES) == 2**60
    assert parse_bytes("1024PiB") == 2**60


# --- formatting -------------------------------------------------------------------------------


def test_worked_figure_two_billion_bytes() -> None:
    # 1B params in bf16 = 2,000,000,000 bytes = 2.00 GB = 1.86 GiB (2e9 / 2^30 = 1.8626...).
    assert format_bytes(2_000_000_000) == "2.00 GB"
    assert format_bytes_binary(2_000_000_000) == "1.86 GiB"
    assert format_bytes_both(2_000_000_000) == "2.00 GB (1.86 GiB)"


@pytest.mark.parametrize(
    ("n", "decimal", "binary"),
    [
        (0, "0 B", "0 B"),
        (512, "512 B", "512 B"),
        (1_000, "1.00 kB", "1000 B"),
        (1_024, "1.02 kB", "1.00 KiB"),
        (80 * 2**30, "85.90 GB", "80.00 GiB"),
        (999_999_999, "1.00 GB", "953.67 MiB"),  # 999.999999 MB rounds to 1000.00 -> 1.00 GB
        (2**20 - 1, "1.05 MB", "1.00 MiB"),  # 1023.999 KiB rounds to 1024.00 -> 1.00 MiB
        (1_005_000, "1.01 MB", "981.45 KiB"),  # exact half rounds away from zero
        (-1_500_000_000, "-1.50 GB", "-1.40 GiB"),
        (3_825_065_984, "3.83 GB", "3.56 GiB"),
    ],
)
def test_format_bytes(n: int, decimal: str, binary: str) -> None:
    assert format_bytes(n) == decimal
    assert format_bytes_binary(n) == binary


def test_format_bytes_fixed_unit() -> None:
    assert format_bytes(2_000_000_000, "MB") == "2000.00 MB"
    assert format_bytes(2_000_000_000, "gb") == "2.00 GB"
    assert format_bytes_binary(3_825_065_984, "MiB") == "3647.87 MiB"  # llama.cpp log figure
    assert format_bytes(1_500, "B") == "1500 B"


def test_format_bytes_unit_from_the_other_system_is_refused() -> None:
    with pytest.raises(UnknownNameError, match="unit='GiB'"):
        format_bytes(10, "GiB")
    with pytest.raises(UnknownNameError, match="unit='GB'"):
        format_bytes_binary(10, "GB")


@pytest.mark.parametrize("bad", [True, 1.5, "12", None])
def test_format_bytes_rejects_non_ints(bad: object) -> None:
    with pytest.raises(InvalidValueError, match="bytes="):
        format_bytes(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError, match="count="):
        format_count(bad)  # type: ignore[arg-type]


def test_format_bytes_unit_must_be_a_string() -> None:
    with pytest.raises(InvalidValueError, match="unit=9"):
        format_bytes(10, 9)  # type: ignore[arg-type]


def test_format_bytes_both_small_prints_once() -> None:
    assert format_bytes_both(512) == "512 B"


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (8_030_261_248, "8.03B"),
        (124_439_808, "124.44M"),
        (12_288, "12.29K"),
        (768, "768"),
        (1, "1"),
        (999_999, "1.00M"),
        (671_026_404_352, "671.03B"),
        (2_000_000_000_000, "2.00T"),
        (-1_500, "-1.50K"),
    ],
)
def test_format_count(n: int, text: str) -> None:
    assert format_count(n) == text


# --- properties -------------------------------------------------------------------------------


@given(st.integers(min_value=1, max_value=2**30))
def test_gib_suffix_is_exact(n: int) -> None:
    assert parse_bytes(f"{n}GiB") == n * 2**30
    assert parse_bytes(f"{n} G") == n * 2**30


@given(st.integers(min_value=1, max_value=10**6))
def test_gb_suffix_is_exact(n: int) -> None:
    assert parse_bytes(f"{n}GB") == n * 10**9


@given(st.integers(min_value=1, max_value=MAX_COUNT))
def test_count_plain_and_grouped_digits(n: int) -> None:
    assert parse_count(str(n)) == n
    assert parse_count(f"{n:,}") == n


@given(st.integers(min_value=0, max_value=999_999), st.integers(min_value=0, max_value=99))
def test_decimal_count_is_exact(whole: int, cents: int) -> None:
    value = whole * 10**9 + cents * 10**7
    if value:
        assert parse_count(f"{whole}.{cents:02d}B") == value


@given(st.integers(min_value=1, max_value=MAX_COUNT))
def test_format_count_round_trip(n: int) -> None:
    text = format_count(n)
    suffix = text[-1] if text[-1].isalpha() else ""
    unit = COUNT_SUFFIXES[suffix]
    # two decimals: the printed value is within half a hundredth of the unit
    assert 200 * abs(parse_count(text) - n) <= unit


@given(st.integers(min_value=1, max_value=MAX_BYTES))
def test_format_bytes_round_trip(n: int) -> None:
    text = format_bytes(n)
    unit = DECIMAL_BYTE_UNITS[text.split()[1]]
    assert 200 * abs(parse_bytes(text) - n) <= unit


@given(st.integers(min_value=1, max_value=MAX_BYTES))
def test_format_bytes_binary_within_rounding(n: int) -> None:
    number, unit = format_bytes_binary(n).split()
    size = BINARY_BYTE_UNITS[unit]
    assert 200 * abs(Fraction(number) * size - n) <= size
    if unit != "B":
        assert Fraction(1) <= Fraction(number) <= 1024


@given(st.integers(min_value=1, max_value=MAX_BYTES))
def test_format_bytes_negative_mirrors_positive(n: int) -> None:
    assert format_bytes(-n) == "-" + format_bytes(n)
    assert format_bytes_binary(-n) == "-" + format_bytes_binary(n)

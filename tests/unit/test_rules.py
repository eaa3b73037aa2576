"""The classic rules of thumb, reproduced with the worked figures people quote."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelmem.errors import InvalidValueError, UnknownNameError
from modelmem.formats import get_format
from modelmem.memory.rules import rule_of_thumb
from modelmem.units import format_bytes, format_bytes_binary

BILLION = 10**9


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [("fp32", 4 * BILLION), ("bf16", 2 * BILLION), ("int8", BILLION), ("int4", BILLION // 2)],
)
def test_inference_one_billion_params(fmt: str, expected: int) -> None:
    assert rule_of_thumb(BILLION, get_format(fmt)).inference_bytes == expected


def test_bf16_display_both_units() -> None:
    b = rule_of_thumb(BILLION, get_format("bf16")).inference_bytes
    assert b == 2_000_000_000
    assert format_bytes(b) == "2.00 GB" and format_bytes_binary(b) == "1.86 GiB"


def test_training_fp32_adamw_is_16_gb_per_billion() -> None:
    rule = rule_of_thumb(BILLION, get_format("fp32"), "adamw")
    assert rule.training_bytes == 16 * BILLION
    parts = {c.name: c.bytes for c in rule.training.components}
    assert parts == {
        "weights": 4 * BILLION,
        "gradients": 4 * BILLION,
        "optimizer_states": 8 * BILLION,
    }
    assert rule.training_factor == 4


@pytest.mark.parametrize(("optimizer", "factor"), [("sgd-momentum", 3), ("sgd", 2), ("adam", 4)])
def test_training_factor_follows_optimizer(optimizer: str, factor: int) -> None:
    rule = rule_of_thumb(BILLION, get_format("fp32"), optimizer)
    assert rule.training_bytes == factor * 4 * BILLION


def test_training_factor_override() -> None:
    rule = rule_of_thumb(BILLION, get_format("fp32"), training_factor=3.5)
    assert rule.training_factor == Fraction(7, 2)
    assert rule.training_bytes == 14 * BILLION


@pytest.mark.parametrize("factor", [1.9, 4.5, -1])
def test_training_factor_out_of_range(factor: float) -> None:
    with pytest.raises(InvalidValueError, match="training_factor"):
        rule_of_thumb(BILLION, get_format("fp32"), training_factor=factor)


def test_unknown_optimizer() -> None:
    with pytest.raises(UnknownNameError, match="optimizer"):
        rule_of_thumb(BILLION, get_format("fp32"), "adagrad-x")


@pytest.mark.parametrize("params", [0, -5, True])
def test_bad_param_count(params: int) -> None:
    with pytest.raises(InvalidValueError, match="params"):
        rule_of_thumb(params, get_format("fp32"))


@given(st.integers(1, 10**13), st.sampled_from(["fp32", "bf16", "int8", "int4", "q4_k", "nf4"]))
def test_training_is_sum_of_parts_and_monotone_in_bits(params: int, name: str) -> None:
    fmt = get_format(name)
    rule = rule_of_thumb(params, fmt)
    assert rule.training_bytes == sum(c.bytes for c in rule.training.components)
    assert rule.inference_bytes <= rule_of_thumb(params, get_format("fp32")).inference_bytes

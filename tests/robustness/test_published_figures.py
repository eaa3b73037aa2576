"""Estimates against published figures (src/modelmem/data/published.json): each row's error
must stay within its stated tolerance, so a change that moves an estimate away from what an
engine, a paper or a doc printed fails here."""

from __future__ import annotations

from dataclasses import replace

import pytest

from modelmem.measurement.published import (
    KINDS,
    PublishedResult,
    PublishedRow,
    estimate_published,
    load_published,
)

ROWS = load_published()


def test_every_row_names_its_source_settings_and_assumptions() -> None:
    assert len(ROWS) >= 30
    assert len({r.id for r in ROWS}) == len(ROWS)
    for r in ROWS:
        assert r.source and r.url.startswith("https://") and r.assumptions and r.what, r.id
        assert r.kind in KINDS, r.id
        assert (r.model is None) != (r.config is None) or r.kind in (
            "deepspeed_zero3",
            "zero_model_states",
        ), r.id
        assert 0 <= r.tolerance <= 0.1, r.id
        assert r.published_bytes > 0, r.id
    # engine logs, GGUF files, DeepSpeed, papers: every family of figure is present
    assert {r.kind for r in ROWS} == set(KINDS)


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_estimate_is_within_the_stated_tolerance(row: PublishedRow) -> None:
    result = estimate_published(row)
    assert result.passed, (
        f"{result.row.what}: published {result.row.figure}, estimate "
        f"{result.estimate_bytes:,} B, error {result.error:+.4%} "
        f"(tolerance ±{result.row.tolerance:.2%})"
    )


def test_exact_rows_are_exact() -> None:
    # a tolerance of 0 means to the byte: the llama.cpp cache rows and the vLLM paper figure
    exact = [r for r in ROWS if r.tolerance == 0]
    assert len(exact) >= 7
    for r in exact:
        assert estimate_published(r).estimate_bytes == r.published_bytes, r.id


def test_a_regression_would_fail() -> None:
    # the check is not vacuous: one byte off an exact row, or 1 % off a 0.5 % row, fails
    exact = next(r for r in ROWS if r.tolerance == 0)
    good = estimate_published(exact)
    assert not PublishedResult(exact, good.estimate_bytes + 1).passed
    loose = next(r for r in ROWS if r.tolerance == 0.005)
    assert not PublishedResult(loose, round(float(loose.published_bytes) * 1.01)).passed
    assert not estimate_published(replace(exact, figure="2049.00 MiB")).passed

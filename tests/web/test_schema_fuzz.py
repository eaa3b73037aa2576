"""Property-based run over the OpenAPI schema: generated bodies and queries, valid and not,
never get a 5xx, and every refusal is a one-line ``{"error": ...}``."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("fastapi")
schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402

from modelmem.web.app import create_app  # noqa: E402

schema = schemathesis.openapi.from_asgi("/api/openapi.json", create_app())
# valid bodies (estimates) and invalid ones (wrong types, out-of-range numbers, extra keys)
schema.config.generation.update(
    modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
)


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_5xx_and_errors_are_one_line(case: Any) -> None:
    response = case.call()
    assert response.status_code < 500, (case.path, case.body, response.text[:300])
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"} and "\n" not in body["error"], body

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "hf-configs"


def load_fixture(hub_id: str) -> dict[str, Any]:
    folder = FIXTURES / hub_id.replace("/", "__")
    data: dict[str, Any] = json.loads((folder / "config.json").read_text())
    return data


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES

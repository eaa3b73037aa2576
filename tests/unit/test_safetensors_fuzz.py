"""Fuzzing the safetensors reader: whatever the bytes, one SourceError or a result —
never another exception, never unbounded work."""

from __future__ import annotations

import json
import struct
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelmem.errors import ModelMemError
from modelmem.model.sources.safetensors_file import read_local_checkpoint

from ..safetensors_builder import checkpoint_tensors, write_sparse_safetensors
from .test_safetensors_source import TINY_LLAMA

pytest.importorskip("safetensors")
pytest.importorskip("huggingface_hub")

pytestmark = pytest.mark.slow


def _valid_small_file() -> bytes:
    from modelmem.model.sources.hf_config import spec_from_config

    config = {
        **TINY_LLAMA,
        "hidden_size": 8,
        "intermediate_size": 16,
        "vocab_size": 16,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.safetensors"
        write_sparse_safetensors(path, checkpoint_tensors(spec_from_config(config), "F16"))
        return path.read_bytes()


VALID = _valid_small_file()
_DIR = Path(tempfile.mkdtemp(prefix="st-fuzz-"))


def read_bytes(blob: bytes) -> None:
    path = _DIR / "model.safetensors"
    path.write_bytes(blob)
    try:
        checkpoint = read_local_checkpoint(path, None)
    except ModelMemError as e:
        assert "\n" not in str(e)
        return
    assert checkpoint.total_bytes <= len(blob)


def test_the_seed_file_is_valid() -> None:
    checkpoint = read_local_checkpoint(_write(VALID), None)
    assert checkpoint.total_params > 0


def _write(blob: bytes) -> Path:
    path = _DIR / "seed.safetensors"
    path.write_bytes(blob)
    return path


def test_truncated_at_every_length() -> None:
    for end in range(len(VALID)):
        with pytest.raises(ModelMemError):
            read_local_checkpoint(_write(VALID[:end]), None)


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1, max_size=8)
)
def test_mutated_bytes(edits: list[tuple[int, int]]) -> None:
    blob = bytearray(VALID)
    for position, value in edits:
        blob[position] = value
    read_bytes(bytes(blob))


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=8)
)
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
_entry = st.fixed_dictionaries(
    {
        "dtype": st.sampled_from(["F16", "F32", "BF16", "I32", "U8", "Q4", "", "F8_E4M3"]),
        "shape": st.lists(st.integers(-2, 2**40), max_size=4) | _json,
        "data_offsets": st.lists(st.integers(-4, 2**40), max_size=3) | _json,
    }
)


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.dictionaries(st.text(max_size=10), _entry | _json, max_size=5),
    st.binary(max_size=64),
)
def test_random_headers(header: dict[str, Any], data: bytes) -> None:
    raw = json.dumps(header).encode()
    read_bytes(struct.pack("<Q", len(raw)) + raw + data)

"""Bad GGUF files stay harmless: only SourceError, in bounded time and memory.

Inputs: every truncation of a small valid file, random byte mutations of it (header
region and anywhere), random fixed headers followed by random bytes, and structured
headers whose counts, lengths, dimensions, types and offsets lie. The property is the same
for all: ``read_gguf`` returns a model or raises :class:`SourceError`, never another
exception, quickly.
"""

from __future__ import annotations

import struct
import tempfile
import tracemalloc
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelmem.errors import SourceError
from modelmem.model.sources.gguf_file import GgufModel, read_gguf

from ..gguf_builder import write_small_gguf

pytest.importorskip("gguf")

# A tiny valid file: V=32, h=32, I=32, one layer; its header is most of its bytes.
TINY = {
    "model_type": "llama",
    "vocab_size": 32,
    "hidden_size": 32,
    "intermediate_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "max_position_embeddings": 64,
    "tie_word_embeddings": False,
}


@pytest.fixture(scope="module")
def valid() -> Iterator[bytes]:
    with tempfile.TemporaryDirectory() as folder:
        path = write_small_gguf(Path(folder) / "tiny.gguf", TINY)
        read_gguf(path)  # valid as written
        yield path.read_bytes()


@pytest.fixture(scope="module")
def header_end(valid: bytes) -> int:
    """Where the tensor data starts (GGUFReader's data_offset)."""
    import gguf

    return int(gguf.GGUFReader(_as_file(valid)).data_offset)


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder) / "fuzz.gguf"


def _harmless(path: Path, content: bytes) -> GgufModel | None:
    """Read ``content``; only a model or a SourceError with a one-line message may come."""
    path.write_bytes(content)
    try:
        model = read_gguf(path)
    except SourceError as e:
        assert "\n" not in str(e)
        assert str(e).startswith(str(path) + ": ")
        model = None
    return model


def _data_end(content: bytes) -> int:
    """Where the last tensor's data ends (the file's tail after it is padding)."""
    import gguf

    reader = gguf.GGUFReader(_as_file(content))
    return max(t.data_offset + int(t.n_bytes) for t in reader.tensors)


def _as_file(content: bytes) -> Path:
    folder = Path(tempfile.mkdtemp())
    path = folder / "copy.gguf"
    path.write_bytes(content)
    return path


@pytest.mark.slow
def test_every_truncation(valid: bytes, scratch: Path) -> None:
    """All prefixes of the file: shorter than its data, always SourceError."""
    end = _data_end(valid)
    assert len(valid) < 20_000  # keeps this test to a few thousand reads
    for n in range(len(valid) + 1):
        model = _harmless(scratch, valid[:n])
        assert (model is not None) == (n >= end), n


@pytest.mark.slow
@settings(
    max_examples=2500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_mutated_bytes(valid: bytes, header_end: int, scratch: Path, data: st.DataObject) -> None:
    """1-8 bytes of the file overwritten, mostly in the header, sometimes anywhere."""
    content = bytearray(valid)
    header = header_end
    for _ in range(data.draw(st.integers(1, 8))):
        limit = header if data.draw(st.booleans()) else len(content)
        at = data.draw(st.integers(0, limit - 1))
        content[at] = data.draw(st.integers(0, 255))
    _harmless(scratch, bytes(content))


@settings(
    max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    version=st.sampled_from([0, 1, 2, 3, 4, 2**31]),
    n_tensors=st.one_of(st.integers(0, 8), st.integers(0, 2**64 - 1)),
    n_kv=st.one_of(st.integers(0, 8), st.integers(0, 2**64 - 1)),
    tail=st.binary(max_size=512),
)
def test_random_headers(
    scratch: Path, version: int, n_tensors: int, n_kv: int, tail: bytes
) -> None:
    assert (
        _harmless(scratch, b"GGUF" + struct.pack("<IQQ", version, n_tensors, n_kv) + tail) is None
    )


# ------------------------------------------------------------ structured lies


def _s(text: bytes) -> bytes:
    return struct.pack("<Q", len(text)) + text


def _kv(key: bytes, vtype: int, payload: bytes) -> bytes:
    return _s(key) + struct.pack("<I", vtype) + payload


_ARCH = _kv(b"general.architecture", 8, _s(b"llama"))


def _file(kvs: Sequence[bytes], infos: Sequence[bytes] = (), pad: int = 0) -> bytes:
    head = b"GGUF" + struct.pack("<IQQ", 3, len(infos), len(kvs))
    return head + b"".join(kvs) + b"".join(infos) + bytes(pad)


def _info(name: bytes, dims: list[int], ggml_type: int = 0, offset: int = 0) -> bytes:
    return (
        _s(name)
        + struct.pack("<I", len(dims))
        + b"".join(struct.pack("<Q", d) for d in dims)
        + struct.pack("<IQ", ggml_type, offset)
    )


CASES = {
    "string longer than the file": (
        [_s(b"k") + struct.pack("<I", 8) + struct.pack("<Q", 2**62)],
        [],
        "needs 4,611,686,018,427,387,904 bytes",
    ),
    "array of 2**62 bytes (GGUFReader loops on this)": (
        [_kv(b"k", 9, struct.pack("<IQ", 0, 2**62))],
        [],
        "claims 4,611,686,018,427,387,904 values",
    ),
    "array of 2**62 strings": (
        [_kv(b"k", 9, struct.pack("<IQ", 8, 2**62))],
        [],
        "claims 4,611,686,018,427,387,904 strings",
    ),
    "nested array": ([_kv(b"k", 9, struct.pack("<IQ", 9, 1))], [], "nested array"),
    "unknown value type": ([_kv(b"k", 77, b"")], [], "unknown value type 77"),
    "non-UTF-8 key": ([_kv(b"\xff\xfe", 4, b"\0" * 4)], [], "not valid UTF-8"),
    "non-UTF-8 string value": ([_kv(b"k", 8, _s(b"\xc3\x28"))], [], "not valid UTF-8"),
    "duplicate key": ([_ARCH, _ARCH], [], "duplicate metadata key"),
    "five dimensions": ([_ARCH], [_info(b"t", [1, 1, 1, 1, 1])], "5 dimensions"),
    "zero dimensions": ([_ARCH], [_info(b"t", [])], "0 dimensions"),
    "absurd shape": ([_ARCH], [_info(b"t", [2**40, 2**40])], "impossible shape"),
    "zero-sized dimension": ([_ARCH], [_info(b"t", [0, 4])], "impossible shape"),
    "tensor name too long": ([_ARCH], [_info(b"t" * 64, [4])], "limit 63"),
    "unknown ggml type": ([_ARCH], [_info(b"t", [32], ggml_type=5)], "unknown ggml type 5"),
    "rows not whole blocks": ([_ARCH], [_info(b"t", [33], ggml_type=8)], "not whole Q8_0"),
    "data offset past the end": (
        [_ARCH],
        [_info(b"t", [8], offset=2**40)],
        "runs past the end",
    ),
    "unaligned offset": ([_ARCH], [_info(b"t", [8], offset=3)], "not 32-aligned"),
    "overlapping tensors": (
        [_ARCH],
        [_info(b"a", [16]), _info(b"b", [16], offset=32)],
        "overlap",
    ),
    "duplicate tensor": ([_ARCH], [_info(b"t", [8]), _info(b"t", [8], offset=32)], "duplicate"),
    "alignment not a power of two": (
        [_ARCH, _kv(b"general.alignment", 4, struct.pack("<I", 48))],
        [],
        "not a power of two",
    ),
    "no architecture": ([], [], "general.architecture is missing"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_structured_lies(scratch: Path, case: str) -> None:
    kvs, infos, problem = CASES[case]
    content = _file(kvs, infos, pad=256)
    scratch.write_bytes(content)
    tracemalloc.start()
    try:
        with pytest.raises(SourceError, match=problem):
            read_gguf(scratch)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000  # nothing sized by the lie was allocated


@settings(
    max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kvs=st.lists(
        st.tuples(
            st.binary(max_size=12),
            st.integers(0, 13),
            st.binary(max_size=24),
        ),
        max_size=4,
    ),
    infos=st.lists(
        st.tuples(
            st.binary(max_size=8),
            st.lists(st.one_of(st.integers(0, 64), st.integers(0, 2**64 - 1)), max_size=5),
            st.integers(0, 45),
            st.one_of(st.sampled_from([0, 32, 64]), st.integers(0, 2**64 - 1)),
        ),
        max_size=3,
    ),
    pad=st.integers(0, 512),
)
def test_random_structured_headers(
    scratch: Path,
    kvs: list[tuple[bytes, int, bytes]],
    infos: list[tuple[bytes, list[int], int, int]],
    pad: int,
) -> None:
    """Well-framed headers with arbitrary keys, value types, payloads, shapes, types and
    offsets: the reader refuses (or, rarely, reads) them, never crashes."""
    content = _file(
        [_ARCH] + [_kv(k, t, p) for k, t, p in kvs],
        [_info(n, d, g, o) for n, d, g, o in infos],
        pad=pad,
    )
    _harmless(scratch, content)

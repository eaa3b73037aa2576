"""Hypothesis fuzzing of the parsers that had none: adapter configs and their regexes,
DeepSpeed config files, the architecture limits, GGUF tokenizer metadata and the text
chunker. Each either gives its answer or raises one ModelMemError; nothing else escapes.
(GGUF headers, safetensors headers and the web schemas have their own fuzz tests.)"""

from __future__ import annotations

import io
import json
import struct
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelmem.errors import ModelMemError
from modelmem.model import limits
from modelmem.model import patterns as patterns_module
from modelmem.model.sources.adapter import adapter_from_dict, module_regex
from modelmem.model.sources.deepspeed_file import read_deepspeed_config
from modelmem.tokenization import TextChunks

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
regex_text = st.text(alphabet="()[]{}*+?|.^$\\aqv_proj0-9,:!=<", max_size=40)


@FUZZ
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "peft_type": st.sampled_from(["LORA", "lora", "IA3", 5]),
            "r": json_values,
            "lora_alpha": json_values,
            "target_modules": st.one_of(json_values, regex_text, st.lists(regex_text, max_size=3)),
            "rank_pattern": st.one_of(
                json_values, st.dictionaries(regex_text, json_values, max_size=3)
            ),
            "alpha_pattern": st.one_of(
                json_values, st.dictionaries(regex_text, json_values, max_size=3)
            ),
            "exclude_modules": st.one_of(json_values, regex_text),
            "layers_to_transform": json_values,
            "modules_to_save": json_values,
            "bias": json_values,
        },
    )
)
def test_adapter_from_dict_answers_or_refuses(data: dict[str, Any]) -> None:
    try:
        adapter_from_dict(data)
    except ModelMemError as e:
        assert "\n" not in str(e)


@FUZZ
@given(regex_text, st.text(alphabet="a._qvprojz0123456789", max_size=200))
def test_module_regex_is_fast_with_either_engine(pattern: str, key: str) -> None:
    for engine in (patterns_module._re2, lambda: None):
        module_regex.cache_clear()
        saved = patterns_module._re2
        patterns_module._re2 = engine  # type: ignore[assignment]
        try:
            try:
                compiled = module_regex("target_modules", pattern)
            except ModelMemError as e:
                assert "\n" not in str(e)
                continue
            started = time.perf_counter()
            compiled.fullmatch(key)
            assert time.perf_counter() - started < 0.5, pattern
        finally:
            patterns_module._re2 = saved
            module_regex.cache_clear()


@pytest.mark.parametrize("pattern", ["(.*)*z", "(a+)+$", "((a*)*)*b", "(x+x+)+y"])
def test_without_re2_nested_repeats_are_refused(
    pattern: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    module_regex.cache_clear()
    monkeypatch.setattr(patterns_module, "_re2", lambda: None)
    with pytest.raises(ModelMemError, match="nested repeats"):
        module_regex("rank_pattern", pattern)
    module_regex.cache_clear()


def test_re2_runs_a_catastrophic_pattern_in_linear_time() -> None:
    pytest.importorskip("re2")
    module_regex.cache_clear()
    started = time.perf_counter()
    assert module_regex("target_modules", "(.*)*z").fullmatch("a" * 100_000) is None
    assert time.perf_counter() - started < 0.5


def test_a_real_peft_regex_still_matches() -> None:
    pattern = r".*\.(q_proj|v_proj)"
    assert module_regex("target_modules", pattern).fullmatch("model.layers.3.self_attn.q_proj")
    assert not module_regex("target_modules", pattern).fullmatch("model.layers.3.mlp.up_proj")


@FUZZ
@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_read_deepspeed_config_answers_or_refuses(tmp_path_factory: Any, content: bytes) -> None:
    path = tmp_path_factory.mktemp("ds") / "ds.json"
    path.write_bytes(content)
    try:
        assert isinstance(read_deepspeed_config(path), dict)
    except ModelMemError as e:
        assert "\n" not in str(e)


def test_read_deepspeed_config_never_waits_on_a_fifo(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "ds.json")
    with pytest.raises(ModelMemError, match="not a regular file"):
        read_deepspeed_config(tmp_path / "ds.json")


@FUZZ
@given(st.dictionaries(st.sampled_from(sorted(limits.CONFIG_FIELDS)), st.integers(), max_size=6))
def test_limits_refuse_exactly_what_is_over(config: dict[str, int]) -> None:
    over = [k for k, v in config.items() if v > limits.LIMITS[limits.CONFIG_FIELDS[k]].maximum]
    try:
        limits.check_config(config)
    except ModelMemError as e:
        assert over or "whole heads" in str(e), str(e)
        assert "\n" not in str(e)
    else:
        assert not over


def test_every_limit_is_above_the_largest_real_value() -> None:
    for kind, limit in limits.LIMITS.items():
        assert limit.seen < limit.maximum, kind
        assert limit.seen_in, kind


def _gguf_tokenizer_file(kvs: list[tuple[bytes, int, bytes]]) -> bytes:
    body = b"".join(struct.pack("<Q", len(k)) + k + struct.pack("<I", t) + v for k, t, v in kvs)
    return b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs)) + body


@FUZZ
@given(st.binary(min_size=0, max_size=200), st.integers(0, 2**64 - 1))
def test_gguf_tokenizer_metadata_answers_or_refuses(
    tmp_path_factory: Any, tail: bytes, n: int
) -> None:
    from modelmem.model.sources.gguf_file import read_gguf_tokenizer_metadata

    array = struct.pack("<I", 8) + struct.pack("<Q", n) + tail  # an array of n strings
    path = tmp_path_factory.mktemp("g") / "t.gguf"
    path.write_bytes(_gguf_tokenizer_file([(b"tokenizer.ggml.tokens", 9, array)]))
    try:
        metadata = read_gguf_tokenizer_metadata(path)
    except ModelMemError as e:
        assert "\n" not in str(e)
    else:
        tokens = metadata["tokenizer.ggml.tokens"]
        assert isinstance(tokens, list) and len(tokens) == n


@FUZZ
@given(
    st.text(st.characters(exclude_characters="\0", exclude_categories=("Cs",)), max_size=3000),
    st.integers(1, 64),
)
def test_text_chunks_rebuild_the_text(text: str, chunk_bytes: int) -> None:
    pieces = list(TextChunks(io.BytesIO(text.encode()), chunk_bytes=chunk_bytes))
    assert "".join(pieces) == text
    assert all(pieces)


def test_text_chunks_bound_a_stretch_with_no_place_to_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    import modelmem.tokenization as tokens

    monkeypatch.setattr(tokens, "FORCED_CUT_CHARS", 1000)
    chunks = TextChunks(io.BytesIO(b"a" * 50_000), chunk_bytes=4096)
    pieces = list(chunks)
    assert "".join(pieces) == "a" * 50_000
    assert chunks.forced and max(map(len, pieces)) <= 1000 + 4096


def test_text_chunks_refuse_nul_and_an_endless_stream() -> None:
    with pytest.raises(ModelMemError, match="NUL byte at offset 3"):
        list(TextChunks(io.BytesIO(b"abc\0def")))
    with pytest.raises(ModelMemError, match="limit on a stream"):
        list(TextChunks(io.BytesIO(b"ab " * 1000), chunk_bytes=100, max_bytes=500))


config_values = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.none(),
    st.booleans(),
    st.text(max_size=12),
    st.lists(st.integers(-5, 5000) | st.text(max_size=16), max_size=6),
)


@FUZZ
@given(
    st.sampled_from(["llama", "gpt2", "mixtral", "qwen3_moe", "deepseek_v3", "gemma3", "mamba"]),
    st.dictionaries(
        st.sampled_from([*limits.CONFIG_FIELDS, "layer_types", "text_config", "hidden_act"]),
        config_values,
        max_size=10,
    ),
)
def test_spec_from_config_answers_or_refuses(model_type: str, fields: dict[str, Any]) -> None:
    from modelmem.model.sources.hf_config import spec_from_config

    try:
        spec = spec_from_config({"model_type": model_type, **fields})
    except ModelMemError as e:
        assert "\n" not in str(e) and len(str(e)) < 1000
    else:
        assert spec.num_layers <= limits.LIMITS["layers"].maximum


@FUZZ
@given(st.text(max_size=400))
def test_parse_hub_ref_is_total(text: str) -> None:
    from modelmem.model.sources.hub import parse_hub_ref

    ref = parse_hub_ref(text)
    if ref is not None:
        assert "/" in ref.repo_id and ".." not in ref.repo_id and len(ref.repo_id) <= 193


names = st.text(alphabet="ab.q_", max_size=12)


@FUZZ
@given(names, names)
def test_name_sets_match_as_peft_does(key: str, name: str) -> None:
    """The set lookups that replace scanning an adapter's name lists give PEFT's answers:
    ``key == w or key.endswith("." + w)`` for targets and exclusions, and PEFT's
    modules_to_save regex."""
    import re

    from modelmem.memory.finetune import _dot_spans, _dot_tails

    assert (name in _dot_tails(key)) == (key == name or key.endswith(f".{name}"))
    spans = bool(re.match(rf"(^|.*\.){re.escape(name)}($|\..*)", key))
    assert (name in _dot_spans(key)) == spans

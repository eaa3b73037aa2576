"""Reading weight-file headers: a 100-shard safetensors index of Llama-3.1-405B shapes
(sparse files: real headers, no data on disk) and a GGUF header, each in-process.

    python benchmarks/bench_sources.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the tests' file builders

SHARDS = 100


def _median_ms(action: Callable[[], object], repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1e3)
    return statistics.median(times)


def run() -> list[tuple[str, float, str]]:
    from tests.conftest import load_fixture
    from tests.safetensors_builder import checkpoint_tensors, write_sharded

    from modelmem.model.sources import resolve
    from modelmem.model.sources.hf_config import spec_from_config

    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = load_fixture("meta-llama/Llama-3.1-405B")
        (folder / "config.json").write_text(__import__("json").dumps(config))
        tensors = checkpoint_tensors(spec_from_config(config), "BF16")
        write_sharded(folder, tensors, SHARDS)
        model = resolve(str(folder))
        assert model.checkpoint is not None and model.checkpoint.files == SHARDS
        ms = _median_ms(lambda: resolve(str(folder)))
        rows.append(
            (
                f"read a {SHARDS}-shard safetensors index "
                f"(Llama-3.1-405B, {len(tensors):,} tensors)",
                ms,
                f"ms, median of 5; {model.checkpoint.total_params:,} params from headers",
            )
        )
        gguf_row = _gguf_row(folder)
        if gguf_row is not None:
            rows.append(gguf_row)
    return rows


def _gguf_row(folder: Path) -> tuple[str, float, str] | None:
    try:
        import gguf
    except ImportError:
        return None
    from tests.conftest import load_fixture
    from tests.gguf_builder import gguf_layout, q4_k_m_types, write_gguf

    from modelmem.model.sources.gguf_file import read_gguf

    config = load_fixture("meta-llama/Llama-3.1-8B")
    layout = gguf_layout(
        config,
        types=q4_k_m_types(config["num_hidden_layers"]),
        file_type=gguf.LlamaFileType.MOSTLY_Q4_K_M,
        tokens=config["vocab_size"],
    )
    path = write_gguf(folder / "llama-3.1-8b.Q4_K_M.gguf", layout)
    model = read_gguf(path)
    ms = _median_ms(lambda: read_gguf(path))
    return (
        f"read a GGUF header (Llama-3.1-8B Q4_K_M, {len(model.checkpoint.tensors)} tensors, "
        f"{config['vocab_size']:,}-token vocabulary)",
        ms,
        "ms, median of 5",
    )


if __name__ == "__main__":
    for name, value, note in run():
        print(f"{name}: {value:.1f} {note}")

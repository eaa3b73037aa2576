"""KV cache sizes, exact: the per-token figures of the reference notes and the buffer
sizes llama.cpp prints in its logs."""

from __future__ import annotations

import pytest

from modelmem.formats import get_format
from modelmem.memory.kvcache import cache_layout, kv_heads_per_device
from modelmem.model.sources import resolve
from modelmem.model.sources.hf_config import spec_from_config

from ..conftest import load_fixture

MIB = 2**20
BF16 = get_format("bf16")


@pytest.mark.parametrize(
    ("hub_id", "per_token"),
    [
        ("meta-llama/Llama-2-7b-hf", 512 * 1024),  # 2·32·4096·2 (MHA)
        ("meta-llama/Llama-3.1-8B", 128 * 1024),  # 2·32·8·128·2 (GQA 32/8)
        ("meta-llama/Llama-3.1-70B", 320 * 1024),  # 2·80·8·128·2
        ("Qwen/Qwen2.5-7B", 56 * 1024),  # 2·28·4·128·2
        ("deepseek-ai/DeepSeek-V3", 61 * 576 * 2),  # MLA latent 512 + rope 64, 70,272 B
    ],
)
def test_bytes_per_token(hub_id: str, per_token: int) -> None:
    layout = cache_layout(spec_from_config(load_fixture(hub_id)), BF16)
    assert layout.bytes_per_token == per_token


def test_opt_13b_vllm_paper_figure() -> None:
    # vLLM paper §3: 2 (K,V) × 5120 × 40 layers × 2 B = 800 KB per token (MHA)
    spec = spec_from_config(
        {
            "model_type": "opt",
            "vocab_size": 50272,
            "hidden_size": 5120,
            "num_hidden_layers": 40,
            "num_attention_heads": 40,
            "ffn_dim": 20480,
        }
    )
    assert cache_layout(spec, BF16).bytes_per_token == 819_200


def test_mla_expanded_would_be_far_larger() -> None:
    spec = spec_from_config(load_fixture("deepseek-ai/DeepSeek-V3"))
    expanded = cache_layout(spec, BF16, mla_latent=False).bytes_per_token
    assert expanded == 61 * 128 * (192 + 128) * 2 == 4_997_120


def test_sliding_window_layers_keep_only_the_window() -> None:
    spec = spec_from_config(load_fixture("google/gemma-2-9b"))
    layout = cache_layout(spec, BF16)
    row = 2 * 8 * 256 * 2  # K+V, 8 kv heads × 256 dims, bf16
    assert layout.full_row_bytes == layout.window_row_bytes == 21 * row
    assert layout.bytes(32768, 1) == 32768 * 21 * row + 4096 * 21 * row


def test_tensor_parallel_splits_then_replicates_kv_heads() -> None:
    assert [kv_heads_per_device(8, tp) for tp in (1, 2, 4, 8, 16)] == [8, 4, 2, 1, 1]
    spec = spec_from_config(load_fixture("meta-llama/Llama-3.1-70B"))
    assert cache_layout(spec, BF16, tp=8).bytes_per_token == 320 * 1024 // 8
    assert cache_layout(spec, BF16, tp=16).bytes_per_token == 320 * 1024 // 8


def test_block_formats_and_fp8() -> None:
    spec = spec_from_config(load_fixture("meta-llama/Llama-3.1-8B"))
    row = 8 * 128  # one token's K (or V) values in a layer
    assert cache_layout(spec, get_format("fp8-e4m3")).bytes_per_token == 2 * 32 * row
    assert cache_layout(spec, get_format("q8_0")).bytes_per_token == 2 * 32 * row * 34 // 32
    assert cache_layout(spec, get_format("q4_0")).bytes_per_token == 2 * 32 * row * 18 // 32


def test_mamba_state_is_independent_of_tokens() -> None:
    spec = spec_from_config(load_fixture("tiiuae/falcon-mamba-7b"))
    layout = cache_layout(spec, BF16)
    assert layout.bytes_per_token == 0
    # 64 layers × (conv 8192×4 + ssm 8192×16) × 2 B
    assert layout.bytes(10, 2) == layout.bytes(100_000, 2) == 2 * 64 * (8192 * 4 + 8192 * 16) * 2


def test_llama_cpp_logged_buffers() -> None:
    from modelmem.memory.engines import LLAMA_CPP_CELL_PAD

    # "KV self size = 2048.00 MiB" for Llama-2-7B at n_ctx 4096, f16
    llama2 = cache_layout(
        spec_from_config(load_fixture("meta-llama/Llama-2-7b-hf")), get_format("f16")
    )
    assert 4096 * llama2.full_row_bytes == 2048 * MIB
    # Llama-3.1-8B at 16384 cells: 2048.00 MiB
    llama3 = cache_layout(
        spec_from_config(load_fixture("meta-llama/Llama-3.1-8B")), get_format("f16")
    )
    assert 16384 * llama3.full_row_bytes == 2048 * MIB
    # gpt-oss-20b, -c 131072 -ub 2048: base 3072 MiB (12 full layers), SWA 2304 cells = 54 MiB
    oss = cache_layout(resolve("gpt-oss-20b").spec, get_format("f16"))  # type: ignore[arg-type]
    assert 131072 * oss.full_row_bytes == 3072 * MIB
    swa_cells = -(-(128 + 2048) // LLAMA_CPP_CELL_PAD) * LLAMA_CPP_CELL_PAD
    assert swa_cells * oss.window_row_bytes == 54 * MIB
    # K in q8_0 over 8192 cells: "K (q8_0): 51.00 MiB" (12 full layers, 512 values a row)
    assert 8192 * 12 * get_format("q8_0").tensor_bytes((512,)) == 51 * MIB

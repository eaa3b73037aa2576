"""The serving engines as they allocate: llama.cpp's graph buffer, cache, placement and
offload; vLLM's start-up profile by release. Figures come from llama.cpp's own logs (its
CPU backend, through llama-cpp-python 0.3.36, on GGUF files of each model's shape), from
llama.cpp's source and from vLLM's; each test names its source."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from modelmem.app.inference import inference_json, prepare_inference
from modelmem.app.requests import InferenceRequest
from modelmem.errors import InvalidValueError, UnknownNameError
from modelmem.formats import get_format
from modelmem.memory.engines import (
    GIB,
    VLLM_NON_TORCH_BYTES,
    VLLM_TP_COMM_BYTES,
    gguf_parts,
    llama_cpp_compute_phases,
    llama_cpp_placement,
    llama_cpp_view,
    parse_vllm_version,
)
from modelmem.memory.inference import estimate_inference
from modelmem.memory.kvcache import cache_layout
from modelmem.memory.serving import EngineSettings, InferenceEstimate, InferenceWorkload
from modelmem.memory.weights import estimate_weights
from modelmem.model.sources import resolve
from modelmem.model.spec import ModelSpec
from modelmem.vocabulary import MIB


def _spec(name: str) -> ModelSpec:
    spec = resolve(name).spec
    assert spec is not None
    return spec


def _llama_cpp(name: str, engine: EngineSettings | None = None, **work: Any) -> InferenceEstimate:
    workload = InferenceWorkload(engine="llama.cpp", **work)
    return estimate_inference(_spec(name), workload, engine or EngineSettings())


def _vllm(name: str, engine: EngineSettings, **work: Any) -> InferenceEstimate:
    workload = InferenceWorkload(engine="vllm", **work)
    return estimate_inference(_spec(name), workload, engine)


# ----------------------------------------------------------------- llama.cpp compute buffer


def test_compute_buffer_is_the_largest_live_set_not_the_sum() -> None:
    # Llama-2-7B shape, n_ctx 4096, ubatch 512, no flash attention: llama.cpp logs "CPU
    # compute buffer size = 320.01 MiB"; the logits (62.5 MiB) and the KQ scores (256 MiB)
    # are never live together, so their sum (the old model, 318.5 + FFN) overshoots.
    spec = _spec("llama-2-7b")
    layer, output, _ = llama_cpp_compute_phases(spec, 4096, 512, 512, flash_attention=False)
    assert max(layer, output) == 320 * MIB
    logits, kq = 512 * 32000 * 4, 4096 * 512 * 32 * 4
    assert max(layer, output) < logits + kq + 8 * MIB
    # with flash attention the KQ scores are gone: 100.51 MiB logged (gate, up, GLU product)
    layer, output, _ = llama_cpp_compute_phases(spec, 4096, 512, 512, flash_attention=True)
    assert max(layer, output) == round(100.5 * MIB)


def test_the_estimate_carries_the_compute_buffer_of_the_whole_device() -> None:
    # Llama-3.1-8B, n_ctx 16384, ubatch 1024, flash attention: 533.00 MiB logged
    est = _llama_cpp(
        "llama-3.1-8b", EngineSettings(n_ubatch=1024, flash_attention=True), context=16384
    )
    assert est.breakdown.get("compute_buffer").bytes == 533 * MIB


def test_a_short_context_caps_the_micro_batch() -> None:
    # llama.cpp clamps n_ubatch to n_ctx: Qwen2.5-7B shape at n_ctx 1024, -ub 2048 reserves
    # the graph of 1024 tokens (as the CPU run of a 32000-vocab shape logged: 129.00 MiB
    # for 1024 tokens, not 2048)
    short = _llama_cpp("qwen2.5-7b", EngineSettings(n_ubatch=2048), context=1024)
    same = _llama_cpp("qwen2.5-7b", EngineSettings(n_ubatch=1024), context=1024)
    assert short.breakdown.get("compute_buffer").bytes == same.breakdown.get("compute_buffer").bytes


# ------------------------------------------------------------------- sliding windows by arch


@pytest.mark.parametrize(
    ("name", "context", "mib"),
    [
        # llama-arch files carry no window key: n_swa = 0, full cache (32 × 8 × 128 × 2 × 2 B)
        ("mistral-7b-v0.1", 32768, 4096),
        # phi3.cpp: "Phi SWA is currently disabled" (llama.cpp PR #13676): 32 × 3072 × 2 × 2
        ("phi-3-mini-4k", 4096, 1536),
    ],
)
def test_llama_cpp_caches_the_full_context_where_its_graph_has_no_window(
    name: str, context: int, mib: int
) -> None:
    spec = _spec(name)
    assert spec.sliding_window is not None  # the Hugging Face config states a window
    est = _llama_cpp(name, context=context)
    assert est.breakdown.get("kv_cache").bytes == mib * MIB
    assert any("full-context cache" in n for n in est.breakdown.notes)


def test_architectures_with_swa_in_llama_cpp_keep_it() -> None:
    for name in ("gemma-2-9b", "gpt-oss-20b"):
        spec = _spec(name)
        assert llama_cpp_view(spec) == (spec, None)


def test_gguf_window_keys(tmp_path: Path) -> None:
    from ..gguf_builder import gguf_layout, write_gguf

    gemma3 = {
        "model_type": "gemma3_text",
        "vocab_size": 256,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 6,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "max_position_embeddings": 4096,
        "sliding_window": 512,
    }
    layout = gguf_layout(gemma3)
    # without the window key llama.cpp's gemma3.cpp sets no SWA at all
    layout.kv[:] = [kv for kv in layout.kv if kv[0] != "add_sliding_window"]
    spec = resolve(str(write_gguf(tmp_path / "g.gguf", layout))).spec
    assert spec is not None and "sliding" not in spec.attention_layers


# ------------------------------------------------------------------ weights, host and device


def test_tied_head_is_a_second_copy_only_on_the_device() -> None:
    # Llama-3.2-1B ties its head: the converter writes no output.weight and llama.cpp
    # duplicates token_embd for it. Offloaded, the device holds the copy and the host the
    # embedding; on the host alone one buffer serves both (the CPU run with --no-mmap of a
    # 2-layer Llama-3.2-1B shape logged 733.04 MiB: the embedding once plus 2 layers).
    spec = _spec("llama-3.2-1b")
    weights = estimate_weights(spec, "gguf-q8_0")
    parts = gguf_parts(spec, weights)
    embd = next(t.bytes for t in weights.tensors if "embed_tokens" in t.name)
    assert parts.tied and parts.tied_copy_bytes == embd
    assert parts.input_bytes + sum(parts.layer_bytes) + parts.output_bytes == (
        weights.total_bytes + embd
    )
    full = _llama_cpp("llama-3.2-1b", dtype="gguf-q8_0", context=4096)
    assert full.breakdown.get("weights").bytes == weights.total_bytes  # layers + head copy
    host_only = _llama_cpp(
        "llama-3.2-1b", EngineSettings(gpu_layers=0, mmap=False), dtype="gguf-q8_0"
    )
    assert host_only.breakdown.get("weights").bytes == 0
    logits = spec.vocab_size * 4
    kv = full.engine_facts["kv_cache_bytes"]
    assert host_only.engine_facts["host_bytes"] == weights.total_bytes + kv + logits


def test_partial_offload_is_its_own_verdict_and_stages_host_weights() -> None:
    spec = _spec("llama-2-7b")
    budget = 3 * GIB
    est = _llama_cpp("llama-2-7b", EngineSettings(device_memory_bytes=budget), dtype="gguf-q4_k_m")
    facts = est.engine_facts
    assert est.total_bytes <= budget and 0 < facts["host_layers"] < spec.num_layers
    assert facts["fits"] is False
    assert facts["offload_verdict"] == (
        f"fits with {facts['host_layers']} layers on the host, "
        f"{facts['host_bytes'] / 1e9:.2f} GB of host memory"
    )
    # the GPU runs a host layer's products for batches of 32+ tokens: its weights are
    # copied into the compute buffer, which is that much larger than with every layer on
    full = _llama_cpp("llama-2-7b", dtype="gguf-q4_k_m")
    staged = est.breakdown.get("compute_buffer").bytes - full.breakdown.get("compute_buffer").bytes
    layer = max(gguf_parts(spec, estimate_weights(spec, "gguf-q4_k_m")).layer_bytes)
    assert staged == layer


def test_layer_split_follows_llama_cpp_placement() -> None:
    # llama-model.cpp: the last -ngl of the n_layer + 1 slots are offloaded, device =
    # upper_bound(cumulative shares, il / offloaded); the output slot goes last
    placed = llama_cpp_placement(80, 81, (1.0, 1.0))
    assert placed.count(0) == 41 and placed.count(1) == 40 and placed[80] == 1
    assert llama_cpp_placement(32, 10, (1.0,)) == (None,) * 23 + (0,) * 10
    three_to_one = llama_cpp_placement(32, 33, (3.0, 1.0))
    assert three_to_one.count(0) == 25


def test_two_devices_report_the_most_loaded_and_every_device() -> None:
    engine = EngineSettings(devices=2)
    work = {"dtype": "gguf-q4_k_m", "context": 8192}
    one = _llama_cpp("llama-3.1-70b", **work)
    two = _llama_cpp("llama-3.1-70b", engine, **work)
    loads = two.engine_facts["device_loads"]
    assert len(loads) == 2 and two.breakdown.devices == 2
    assert two.total_bytes == max(d["total_bytes"] for d in loads)
    assert sum(d["weights"] for d in loads) == one.breakdown.get("weights").bytes
    assert sum(d["kv_cache"] for d in loads) == one.breakdown.get("kv_cache").bytes
    assert sum(d["layers"] for d in loads) == 80
    # every device holding layers has its own compute buffer and context; with every slot
    # offloaded the scheduler runs a pipeline and keeps 4 copies of each device's inputs
    # (the f16 KQ mask and the f32 hidden state: ggml-backend.cpp GGML_SCHED_MAX_COPIES)
    assert all(d["compute_buffer"] > 0 and d["cuda_context"] > 0 for d in loads)
    inputs = 8192 * 512 * 2 + 512 * 8192 * 4
    assert loads[1]["compute_buffer"] == one.breakdown.get("compute_buffer").bytes + 4 * inputs
    # row split: matrices by rows everywhere, the cache on the first device
    rows = _llama_cpp("llama-3.1-70b", replace(engine, split_mode="row"), **work)
    row_loads = rows.engine_facts["device_loads"]
    assert row_loads[1]["kv_cache"] == 0
    assert row_loads[0]["kv_cache"] == one.breakdown.get("kv_cache").bytes


def test_bad_split_settings_name_the_field() -> None:
    with pytest.raises(InvalidValueError, match="tensor_split"):
        EngineSettings(devices=2, tensor_split=(1.0,))
    with pytest.raises(InvalidValueError, match="tensor_split"):
        EngineSettings(devices=2, tensor_split=(0.0, 0.0))
    with pytest.raises(UnknownNameError, match="split_mode"):
        EngineSettings(split_mode="tensor")


# ------------------------------------------------------------------------------------- vLLM


def test_vllm_versions_and_their_profiles() -> None:
    assert parse_vllm_version("0.6.3.post1") == (0, 6)
    assert parse_vllm_version("v0.11") == (0, 11)
    with pytest.raises(InvalidValueError, match="vllm_version"):
        parse_vllm_version("latest")
    engine = EngineSettings(device_memory_bytes=80 * GIB)
    v1 = _vllm("llama-3.1-8b", engine, context=8192)
    v0 = _vllm("llama-3.1-8b", replace(engine, vllm_version="0.6.3"), context=8192)
    assert (v1.engine_facts["vllm_engine"], v0.engine_facts["vllm_engine"]) == ("V1", "V0")
    # V1 `vllm serve` on a device of 70 GiB or more profiles 1,024 sequences
    # (vllm/engine/arg_utils.py), V0 256; the V1 sampler keeps ~15 B per logit
    vocab = 128256
    assert v1.breakdown.get("sampler").bytes == 1024 * vocab * 15
    assert v0.breakdown.get("sampler").bytes == 256 * vocab * 4
    assert v1.breakdown.get("non_torch").bytes == VLLM_NON_TORCH_BYTES
    small = _vllm("llama-3.1-8b", EngineSettings(device_memory_bytes=24 * GIB), context=8192)
    assert small.engine_facts["max_num_seqs"] == 256
    given = _vllm("llama-3.1-8b", replace(engine, max_num_seqs=64), context=8192)
    assert given.breakdown.get("sampler").bytes == 64 * vocab * 15
    # the pool is sized before CUDA graphs are captured: graphs do not shrink it
    more_graphs = _vllm("llama-3.1-8b", replace(engine, cuda_graph_bytes=2 * GIB), context=8192)
    assert more_graphs.engine_facts["kv_pool_tokens"] == v1.engine_facts["kv_pool_tokens"]


def test_vllm_tensor_parallel_pays_communication_buffers_per_gpu() -> None:
    engine = EngineSettings(device_memory_bytes=80 * GIB)
    tp2 = _vllm("llama-3.1-70b", engine, context=8192, tp=2)
    assert tp2.breakdown.get("comm_buffers").bytes == VLLM_TP_COMM_BYTES
    with pytest.raises(KeyError):
        _vllm("llama-3.1-8b", engine, context=8192).breakdown.get("comm_buffers")
    # V0 0.7 at tp 2 logged only "non_torch_memory takes 0.25GiB" (vllm issue #13061)
    v0 = _vllm("llama-3.1-70b", replace(engine, vllm_version="0.7.2"), context=8192, tp=2)
    with pytest.raises(KeyError):
        v0.breakdown.get("comm_buffers")
    assert v0.breakdown.get("non_torch").bytes == GIB // 4


def test_vllm_moe_models_add_the_fused_moe_workspace() -> None:
    engine = EngineSettings(device_memory_bytes=80 * GIB, max_num_batched_tokens=8192)
    est = _vllm("qwen3-30b-a3b", engine, context=8192)
    spec = _spec("qwen3-30b-a3b")
    assert spec.moe is not None
    k, width = spec.moe.experts_per_token, spec.moe.expert_intermediate_size
    assert est.breakdown.get("moe_workspace").bytes == 8192 * k * (3 * width + spec.hidden_size) * 2


def test_vllm_refuses_to_start_when_one_sequence_does_not_fit() -> None:
    # issue 16: Qwen2.5-7B at 131,072 tokens on 24 GiB: the pool holds ~0.8 of one sequence
    est = _vllm("qwen2.5-7b", EngineSettings(device_memory_bytes=24 * GIB), context=131072)
    facts = est.engine_facts
    assert facts["fits"] is False and facts["max_concurrency"] < 1
    assert any(n.startswith("vLLM would refuse to start") for n in est.breakdown.notes)
    layout = cache_layout(_spec("qwen2.5-7b"), get_format("bf16"))
    pool = facts["kv_pool_blocks"] * 16 * layout.bytes_per_token
    # max_context: the largest max_model_len whose blocks fit the pool, to the block
    assert facts["max_context"] == facts["kv_pool_tokens"]
    assert layout.bytes(facts["max_context"], 1) <= pool
    ok = _vllm(
        "qwen2.5-7b", EngineSettings(device_memory_bytes=24 * GIB), context=facts["max_context"]
    )
    assert ok.engine_facts["fits"] is True


# ------------------------------------------------------------------------------ the requests


def test_requests_carry_the_engine_options_into_the_json() -> None:
    model = resolve("qwen2.5-7b")
    request = InferenceRequest.from_options(
        {
            "engine": "vllm",
            "memory": "24GiB",
            "context": 131072,
            "vllm_version": "0.6.3",
            "max_num_seqs": 128,
        }
    )
    data = inference_json(prepare_inference(model, request))
    assert data["fits"] is False and data["vllm_engine"] == "V0" and data["max_num_seqs"] == 128
    assert {"kv_pool_tokens", "max_concurrency", "max_context"} <= set(data)
    assert any("vLLM 0.6.3" in n for n in data["notes"])


def test_llama_cpp_devices_come_from_tensor_split_or_count() -> None:
    model = resolve("llama-3.1-70b")
    options = {"engine": "llama.cpp", "dtype": "gguf-q4_k_m", "context": 8192}
    split = InferenceRequest.from_options({**options, "tensor_split": "3,1"})
    prepared = prepare_inference(model, split)
    assert prepared.settings.devices == 2 and prepared.settings.tensor_split == (3.0, 1.0)
    data = inference_json(prepared)
    assert len(data["device_loads"]) == 2
    # fit --count 2 sets tp 2 for the request: llama.cpp splits layers over the 2 instead
    counted = InferenceRequest.from_options({**options, "tp": 2}, given=frozenset(options))
    assert prepare_inference(model, counted, 2).settings.devices == 2
    with pytest.raises(InvalidValueError, match="tensor-split"):
        prepare_inference(model, InferenceRequest.from_options({**options, "tp": 2}))
    with pytest.raises(InvalidValueError, match="tensor_split"):
        prepare_inference(model, InferenceRequest.from_options({**options, "tensor_split": "a,b"}))
    with pytest.raises(InvalidValueError, match=r"llama\.cpp option"):
        prepare_inference(
            model, InferenceRequest.from_options({"engine": "vllm", "split_mode": "row"})
        )

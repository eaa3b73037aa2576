"""Serving engines that account memory their own way: vLLM and llama.cpp.

vLLM (``vllm/v1/worker/gpu_worker.py`` ``determine_available_memory``,
``vllm/v1/kv_cache_interface.py``): it takes ``gpu_memory_utilization × total device
memory``; weights, the activation peak of a profile run over ``max_num_batched_tokens``
tokens, non-torch memory and CUDA graphs come off the top, and the rest becomes a pool of
paged KV blocks of 16 tokens. The pool, in tokens, and the concurrency it allows at the
model length are the answer; without a device size, the memory that would hold the
requested batch × context is reported instead.

llama.cpp (``src/llama-kv-cache.cpp``, ``llama-kv-cache-iswa.cpp``, published logs):
weights as stored in the GGUF file, a KV cache of ``n_ctx`` cells padded to 256 in the
K/V types of ``-ctk/-ctv`` (sliding-window layers keep
``pad(min(n_ctx, n_swa·n_seq + n_ubatch), 256)`` cells), a compute buffer that grows with
``n_ubatch`` and the output buffer of the logits.
"""

from __future__ import annotations

from math import ceil

from modelmem.formats import get_format
from modelmem.memory.breakdown import MemoryBreakdown, MemoryComponent
from modelmem.memory.kvcache import cache_layout, default_kv_format
from modelmem.memory.serving import (
    EngineSettings,
    InferenceEstimate,
    InferenceWorkload,
    activation_bytes,
    weights_of,
)
from modelmem.memory.weights import estimate_weights
from modelmem.model.spec import ModelSpec

VLLM_BLOCK_TOKENS = 16  # CacheConfig.DEFAULT_BLOCK_SIZE
LLAMA_CPP_CELL_PAD = 256


def _pad(n: int, to: int) -> int:
    return -(-n // to) * to


def vllm_activation_per_token(spec: ModelSpec, act: int) -> int:
    """Profile-run activations per batched token with vLLM's fused kernels: hidden and
    residual, the fused qkv output, the fused gate_up output and the SiLU·mul result."""
    h = spec.hidden_size
    mlp = 0
    if spec.mlp is not None:
        mlp = 3 * spec.mlp.intermediate_size
    if spec.moe is not None and spec.is_moe:
        mlp = max(
            mlp,
            3 * spec.moe.experts_per_token * spec.moe.expert_intermediate_size
            + spec.moe.num_experts,
        )
    a = spec.attention
    qkv = (a.num_heads + 2 * a.num_kv_heads) * a.head_dim if a is not None else 0
    return act * (2 * h + max(mlp, qkv))


def estimate_vllm(
    spec: ModelSpec, workload: InferenceWorkload, engine: EngineSettings
) -> InferenceEstimate:
    weights = weights_of(spec, workload)
    act = activation_bytes(workload.dtype)
    kv_fmt = get_format(workload.kv_dtype or default_kv_format("vllm", act))
    layout = cache_layout(spec, kv_fmt, tp=workload.tp)
    weight_bytes = ceil(weights.total_bytes / workload.tp)
    profile = engine.max_num_batched_tokens * vllm_activation_per_token(spec, act)
    sampler = engine.max_num_seqs * spec.vocab_size * 4  # fp32 logits of the dummy sampler run
    fixed = weight_bytes + profile + sampler + workload.cuda_context_bytes + engine.cuda_graph_bytes
    per_block = VLLM_BLOCK_TOKENS * layout.bytes_per_token
    blocks_needed = workload.batch * ceil(workload.context / VLLM_BLOCK_TOKENS)
    notes = [*weights.notes]
    if engine.device_memory_bytes is not None:
        requested = ceil(engine.device_memory_bytes * engine.gpu_memory_utilization)
        pool = requested - fixed
        if pool < per_block:
            notes.append(
                "no room for a single KV block: the model does not fit at this utilization"
            )
            pool = max(pool, 0)
        blocks = pool // per_block if per_block else 0
        kv_bytes = blocks * per_block
        tokens = blocks * VLLM_BLOCK_TOKENS
        notes.append(
            f"KV pool {tokens:,} tokens in {blocks:,} blocks; max concurrency at "
            f"{workload.context:,} tokens: {tokens / workload.context:.2f}"
        )
        kv_how = f"pool = {engine.gpu_memory_utilization:.0%} × device − the rest; {layout.how}"
        total_note = "vLLM reserves gpu_memory_utilization × device memory up front"
    else:
        kv_bytes = blocks_needed * per_block
        kv_how = f"{blocks_needed:,} blocks of {VLLM_BLOCK_TOKENS} tokens; {layout.how}"
        total_note = "memory needed for the batch; vLLM would reserve it ÷ gpu_memory_utilization"
    components = [
        MemoryComponent("weights", weight_bytes, weights.how),
        MemoryComponent("kv_cache", kv_bytes, kv_how),
        MemoryComponent(
            "activations",
            profile,
            f"profile run: {engine.max_num_batched_tokens:,} batched tokens × "
            f"{vllm_activation_per_token(spec, act):,} B (fused kernels)",
        ),
        MemoryComponent(
            "sampler", sampler, f"fp32 logits of {engine.max_num_seqs} dummy sequences"
        ),
        MemoryComponent(
            "cuda_context", workload.cuda_context_bytes, "assumed CUDA context and non-torch memory"
        ),
        MemoryComponent(
            "cuda_graphs", engine.cuda_graph_bytes, "assumed CUDA graph memory (0.1–1 GiB in logs)"
        ),
    ]
    if engine.device_memory_bytes is not None:
        used = sum(c.bytes for c in components)
        unused = ceil(engine.device_memory_bytes * engine.gpu_memory_utilization) - used
        if unused > 0:
            components.append(MemoryComponent("kv_pool_remainder", unused, "less than one block"))
    notes.append(total_note)
    breakdown = MemoryBreakdown(tuple(components), devices=workload.tp, notes=tuple(notes))
    return InferenceEstimate(breakdown, weights, layout, breakdown.total_bytes, "serving")


def llama_cpp_compute_buffer(
    spec: ModelSpec, cells: int, engine: EngineSettings
) -> tuple[int, str]:
    """Graph compute buffer: fp32 logits of a micro-batch, the FFN intermediates and,
    without flash attention, the fp32 KQ matrix. Approximate: it reproduces published
    buffer sizes within ~8 % (296 MiB for a 7B at n_ctx 4096, ubatch 512, no FA)."""
    u = engine.n_ubatch
    width = 0
    if spec.mlp is not None:
        width = spec.mlp.intermediate_size
    if spec.moe is not None and spec.is_moe:
        width = max(width, spec.moe.experts_per_token * spec.moe.expert_intermediate_size)
    size = u * 4 * (spec.vocab_size + 2 * width)
    how = f"≈ n_ubatch {u} × 4 B × (vocab + 2·FFN width)"
    if not engine.flash_attention and spec.attention is not None:
        size += u * cells * spec.attention.num_heads * 4
        how += " + KQ n_ubatch × n_ctx × n_head × 4 B (no flash attention)"
    return size, how


def estimate_llama_cpp(
    spec: ModelSpec, workload: InferenceWorkload, engine: EngineSettings
) -> InferenceEstimate:
    scheme = (
        workload.dtype if workload.dtype.lower().startswith("gguf-") else f"gguf-{workload.dtype}"
    )
    weights = workload.stored_weights or estimate_weights(
        spec, scheme if workload.dtype.lower() not in ("bf16", "fp16", "f16") else "gguf-f16"
    )
    kv_fmt = get_format(workload.kv_dtype or default_kv_format("llama.cpp", 2))
    layout = cache_layout(spec, kv_fmt)
    cells = _pad(workload.context * workload.batch, LLAMA_CPP_CELL_PAD)
    kv = cells * layout.full_row_bytes + workload.batch * layout.state_bytes_per_sequence
    kv_how = f"{cells:,} cells (context × sequences, padded to 256); {layout.how}"
    if layout.window is not None:
        swa_cells = _pad(
            min(cells, layout.window * workload.batch + engine.n_ubatch), LLAMA_CPP_CELL_PAD
        )
        kv += swa_cells * layout.window_row_bytes
        kv_how += f"; sliding layers {swa_cells:,} cells (n_swa·n_seq + n_ubatch, padded)"
    compute, compute_how = llama_cpp_compute_buffer(spec, cells, engine)
    output = spec.vocab_size * workload.batch * 4
    layers = spec.num_layers
    per_layer = (weights.total_bytes + kv) / layers
    gpu_layers = layers if engine.gpu_layers is None else min(engine.gpu_layers, layers)
    notes = [
        *weights.notes,
        f"output buffer {output:,} B (fp32 logits, vocab × sequences) in host memory",
    ]
    if engine.device_memory_bytes is not None and engine.gpu_layers is None:
        budget = engine.device_memory_bytes - compute - workload.cuda_context_bytes
        gpu_layers = max(0, min(layers, int(budget // per_layer))) if per_layer else layers
        notes.append(f"{gpu_layers} of {layers} layers fit on the device (-ngl {gpu_layers})")
    share = gpu_layers / layers
    components = [
        MemoryComponent(
            "weights",
            ceil(weights.total_bytes * share),
            f"{weights.how}; {gpu_layers}/{layers} layers on the device",
        ),
        MemoryComponent("kv_cache", ceil(kv * share), kv_how),
        MemoryComponent("compute_buffer", compute, compute_how),
        MemoryComponent("cuda_context", workload.cuda_context_bytes, "assumed CUDA context"),
    ]
    if gpu_layers < layers:
        notes.append(
            f"on the host: {ceil(weights.total_bytes * (1 - share)):,} B of weights and "
            f"{ceil(kv * (1 - share)):,} B of KV cache"
        )
    breakdown = MemoryBreakdown(tuple(components), notes=tuple(notes))
    return InferenceEstimate(breakdown, weights, layout, breakdown.total_bytes, "serving")


def estimate_engine(
    spec: ModelSpec, workload: InferenceWorkload, engine: EngineSettings | None = None
) -> InferenceEstimate:
    engine = engine or EngineSettings()
    if workload.engine == "vllm":
        return estimate_vllm(spec, workload, engine)
    return estimate_llama_cpp(spec, workload, engine)

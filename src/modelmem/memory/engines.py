"""Serving engines that account memory their own way: vLLM and llama.cpp.

vLLM (``vllm/v1/worker/gpu_worker.py`` ``determine_available_memory``,
``vllm/v1/kv_cache_interface.py``), priced for one release (``--vllm-version``; V1 from
0.8, V0 before): it takes ``gpu_memory_utilization × device memory``; weights, the peak of a
profile run (activations over ``max_num_batched_tokens`` tokens, the sampler over
``max_num_seqs`` sequences, the fused-MoE workspace), non-torch memory and, under tensor
parallelism in V1, the communication buffers come off the top, and the rest becomes a
pool of paged KV blocks of 16 tokens. CUDA graphs are captured after the pool is sized
and come on top. The pool in tokens, the concurrency at the model length, the largest
``max_model_len`` vLLM would accept and whether it would start at all are the engine's
facts; without a device size, the memory that would hold the requested batch × context
is reported instead.

llama.cpp (``src/llama-model.cpp``, ``src/llama-kv-cache.cpp``, ``ggml/src/ggml-alloc.c``):
weights as stored in the GGUF file, placed as llama.cpp places them (the input embeddings
in host memory; the last ``-ngl`` of the n_layer + 1 slots on the devices, split by layer
at the ``-ts`` shares or by rows); a KV cache of ``n_ctx`` cells padded to 256 in the K/V
types of ``-ctk/-ctv``, with sliding-window layers only where llama.cpp's graph for the
architecture has them; per device a compute buffer, the largest set of graph tensors live
at once (ggml-alloc reuses freed memory), plus the weights of a host layer staged for op
offload when layers stay on the host.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, replace
from math import ceil
from typing import Any

from modelmem.errors import InvalidValueError
from modelmem.formats import get_format
from modelmem.memory.breakdown import MemoryBreakdown, MemoryComponent
from modelmem.memory.kvcache import CacheLayout, cache_layout, default_kv_format
from modelmem.memory.serving import (
    EngineSettings,
    InferenceEstimate,
    InferenceWorkload,
    activation_bytes,
    weights_of,
)
from modelmem.memory.weights import WeightsEstimate, estimate_weights
from modelmem.model.spec import ModelSpec
from modelmem.vocabulary import MIB

GIB = 1024 * MIB

VLLM_BLOCK_TOKENS = 16  # CacheConfig.DEFAULT_BLOCK_SIZE
LLAMA_CPP_CELL_PAD = 256
# V1 became vLLM's default engine in 0.8.0 (VLLM_USE_V1=1); V0 was removed in 0.11.
VLLM_V1_SINCE = (0, 8)
# Non-torch memory the profile subtracts: V1 logs on one GPU "non-torch memory 0.25GiB";
# V0 0.7 at tp 2 logged "non_torch_memory takes 0.25GiB" too (vllm issue #13061).
VLLM_NON_TORCH_BYTES = GIB // 4
# Per-GPU communication buffers of V1 under tensor parallelism: NCCL and the custom
# all-reduce (about 2 GiB per GPU in V1 logs at tp 2-4), outside the torch allocator.
VLLM_TP_COMM_BYTES = 2 * GIB
# The V1 sampler's profile run keeps about 15 B per vocabulary entry and sequence (fp32
# logits, their softmax and log-softmax, and a sorted copy for top-p/top-k).
VLLM_V1_SAMPLER_BYTES_PER_LOGIT = 15
VLLM_V0_SAMPLER_BYTES_PER_LOGIT = 4  # the fp32 logits of the dummy sequences
VLLM_FUSED_MOE_CHUNK = 32768  # VLLM_FUSED_MOE_CHUNK_SIZE: tokens per fused-MoE pass


def _pad(n: int, to: int) -> int:
    return -(-n // to) * to


@dataclass(frozen=True, slots=True)
class VllmProfile:
    """How one vLLM release sizes its KV pool."""

    version: str
    v1: bool
    max_num_seqs: int
    non_torch_bytes: int
    sampler_bytes: int
    how: str


def parse_vllm_version(version: str) -> tuple[int, int]:
    """(major, minor) of a version such as ``0.6.3.post1`` or ``0.33``."""
    parts = version.strip().lstrip("v").split(".")
    try:
        major, minor = int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        raise InvalidValueError(
            "vllm_version", version, "must be a release number such as 0.6.3 or 0.11"
        ) from None
    if major < 0 or minor < 0 or (major, minor) < (0, 2):
        raise InvalidValueError("vllm_version", version, "must be 0.2 or newer")
    return major, minor


def vllm_profile(spec: ModelSpec, engine: EngineSettings) -> VllmProfile:
    """The release's profile: V1 (0.8+) or V0, its default --max-num-seqs for the device
    (vllm/engine/arg_utils.py: 1,024 on devices of 70 GiB or more in V1, else 256), the
    sampler's profile peak and the non-torch memory it subtracts."""
    v1 = parse_vllm_version(engine.vllm_version) >= VLLM_V1_SINCE
    large = engine.device_memory_bytes is not None and engine.device_memory_bytes >= 70 * GIB
    seqs = engine.max_num_seqs or (1024 if v1 and large else 256)
    per_logit = VLLM_V1_SAMPLER_BYTES_PER_LOGIT if v1 else VLLM_V0_SAMPLER_BYTES_PER_LOGIT
    non_torch = VLLM_NON_TORCH_BYTES
    how = (
        f"vLLM {engine.vllm_version} ({'V1' if v1 else 'V0'} engine): KV pool sized before "
        "CUDA graphs are captured"
    )
    return VllmProfile(
        engine.vllm_version, v1, seqs, non_torch, seqs * spec.vocab_size * per_logit, how
    )


def vllm_activation_per_token(spec: ModelSpec, act: int, tp: int = 1) -> int:
    """Profile-run activations per batched token with vLLM's fused kernels: hidden and
    residual, and the wider of the fused qkv output and the fused gate_up output with the
    SiLU·mul result (column-parallel: ÷ tp). MoE layers: router logits and the output
    (the experts' intermediates are the fused-MoE workspace)."""
    h = spec.hidden_size
    mlp = 0
    if spec.mlp is not None:
        mlp = 3 * spec.mlp.intermediate_size // tp
    if spec.moe is not None and spec.is_moe:
        mlp = max(mlp, spec.moe.num_experts + h)
    a = spec.attention
    qkv = (a.num_heads + 2 * a.num_kv_heads) * a.head_dim // tp if a is not None else 0
    return act * (2 * h + max(mlp, qkv))


def vllm_moe_workspace(spec: ModelSpec, tokens: int, act: int, tp: int = 1) -> int:
    """fused_moe's intermediate caches for a chunk of tokens: gate_up output [M, k, 2I],
    activation [M·k, I] and expert outputs [M, k, h] (vllm fused_moe.py), I ÷ tp."""
    if spec.moe is None or not spec.is_moe:
        return 0
    m = min(tokens, VLLM_FUSED_MOE_CHUNK)
    width = spec.moe.expert_intermediate_size // tp
    return m * spec.moe.experts_per_token * (3 * width + spec.hidden_size) * act


def vllm_max_context(layout: CacheLayout, pool_bytes: int, limit: int) -> int:
    """The largest max_model_len whose one sequence fits the pool (vLLM refuses to start
    otherwise and names this length), at most ``limit``; 0 if not one block fits."""

    def need(tokens: int) -> int:
        return layout.bytes(_pad(tokens, VLLM_BLOCK_TOKENS), 1)

    if need(1) > pool_bytes:
        return 0
    low, high = 1, limit
    if need(high) <= pool_bytes:
        return high
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if need(mid) <= pool_bytes else (low, mid)
    return low


def _vllm_pool_facts(
    spec: ModelSpec,
    workload: InferenceWorkload,
    layout: CacheLayout,
    pool: int,
    profile: VllmProfile,
) -> tuple[dict[str, Any], list[str]]:
    """What vLLM logs and decides at start-up for a pool of ``pool`` bytes."""
    per_block = VLLM_BLOCK_TOKENS * layout.bytes_per_token
    blocks = max(pool, 0) // per_block if per_block else 0
    tokens = blocks * VLLM_BLOCK_TOKENS
    one = layout.bytes(_pad(workload.context, VLLM_BLOCK_TOKENS), 1)
    concurrency = max(pool, 0) / one if one else 0.0
    facts: dict[str, Any] = {
        "vllm_version": profile.version,
        "vllm_engine": "V1" if profile.v1 else "V0",
        "max_num_seqs": profile.max_num_seqs,
        "kv_pool_tokens": tokens,
        "kv_pool_blocks": blocks,
        "max_concurrency": round(concurrency, 2),
        "max_context": vllm_max_context(layout, max(pool, 0), spec.context_length),
        "fits": pool >= one,
    }
    notes = [
        f"KV pool {tokens:,} tokens in {blocks:,} blocks; max concurrency at "
        f"{workload.context:,} tokens: {concurrency:.2f}"
    ]
    if pool < one:
        notes.append(
            f"vLLM would refuse to start: one sequence of max_model_len {workload.context:,} "
            f"needs {one:,} B of KV cache and the pool has {max(pool, 0):,} B "
            f"(largest max_model_len: {facts['max_context']:,})"
        )
    elif concurrency < workload.batch:
        notes.append(
            f"the pool holds {concurrency:.2f} sequences of {workload.context:,} tokens; "
            f"the other requests of a batch of {workload.batch} wait in the queue"
        )
    return facts, notes


def vllm_fixed_components(
    spec: ModelSpec,
    workload: InferenceWorkload,
    engine: EngineSettings,
    profile: VllmProfile,
    weights: WeightsEstimate,
) -> list[MemoryComponent]:
    """What vLLM's profile subtracts before the pool, per GPU: weights ÷ tp, the profile
    run's activations, the sampler's peak, the fused-MoE workspace, non-torch memory and
    (V1, tp > 1) the communication buffers."""
    act, tp = activation_bytes(workload.dtype), workload.tp
    per_token = vllm_activation_per_token(spec, act, tp)
    tokens = engine.max_num_batched_tokens
    per_logit = profile.sampler_bytes // max(1, profile.max_num_seqs * spec.vocab_size)
    parts = [
        MemoryComponent(
            "weights",
            ceil(weights.total_bytes / tp),
            weights.how + (f" ÷ tp {tp}" if tp > 1 else ""),
        ),
        MemoryComponent(
            "activations",
            tokens * per_token,
            f"profile run: {tokens:,} batched tokens × {per_token:,} B (fused kernels)",
        ),
        MemoryComponent(
            "sampler",
            profile.sampler_bytes,
            f"sampler profile: {profile.max_num_seqs:,} sequences (--max-num-seqs) × vocab × "
            f"{per_logit} B",
        ),
        MemoryComponent(
            "moe_workspace",
            vllm_moe_workspace(spec, tokens, act, tp),
            "fused-MoE caches: tokens × k × (3·I + h)",
        ),
        MemoryComponent(
            "non_torch",
            profile.non_torch_bytes,
            "non-torch memory the profile subtracts (V0 and V1 logs: 0.25 GiB)",
        ),
        MemoryComponent(
            "comm_buffers",
            VLLM_TP_COMM_BYTES if tp > 1 and profile.v1 else 0,
            "NCCL + custom all-reduce per GPU (V1, tp > 1)",
        ),
    ]
    return [c for c in parts if c.bytes or c.name in ("weights", "activations", "sampler")]


def estimate_vllm(
    spec: ModelSpec, workload: InferenceWorkload, engine: EngineSettings
) -> InferenceEstimate:
    """Per-GPU memory as vLLM's start-up profile divides it (gpu_worker.py
    determine_available_memory): requested = utilization × device; the pool is what
    weights, the profile run's peak (activations, sampler, fused-MoE workspace) and
    non-torch memory leave. CUDA graphs are captured after the pool is allocated, so they
    come on top of the requested share (0.6 and V1 alike)."""
    weights = weights_of(spec, workload)
    kv_fmt = get_format(
        workload.kv_dtype or default_kv_format("vllm", activation_bytes(workload.dtype))
    )
    layout = cache_layout(spec, kv_fmt, tp=workload.tp)
    profile = vllm_profile(spec, engine)
    fixed = vllm_fixed_components(spec, workload, engine, profile, weights)
    notes = [*weights.notes, profile.how]
    facts: dict[str, Any] = {}
    tail = []
    if engine.device_memory_bytes is not None:
        requested = ceil(engine.device_memory_bytes * engine.gpu_memory_utilization)
        pool = requested - sum(c.bytes for c in fixed)
        facts, pool_notes = _vllm_pool_facts(spec, workload, layout, pool, profile)
        notes += [
            *pool_notes,
            "vLLM reserves gpu_memory_utilization × device memory up front; CUDA graphs "
            "come on top",
        ]
        kv_bytes = facts["kv_pool_blocks"] * VLLM_BLOCK_TOKENS * layout.bytes_per_token
        kv_how = f"pool = {engine.gpu_memory_utilization:.0%} × device − the rest; {layout.how}"
        if pool - kv_bytes > 0:
            tail.append(
                MemoryComponent("kv_pool_remainder", pool - kv_bytes, "less than one block")
            )
    else:
        blocks_needed = workload.batch * ceil(workload.context / VLLM_BLOCK_TOKENS)
        kv_bytes = blocks_needed * VLLM_BLOCK_TOKENS * layout.bytes_per_token
        kv_how = f"{blocks_needed:,} blocks of {VLLM_BLOCK_TOKENS} tokens; {layout.how}"
        notes.append("memory needed for the batch; vLLM would reserve it ÷ gpu_memory_utilization")
    tail.append(
        MemoryComponent(
            "cuda_graphs",
            engine.cuda_graph_bytes,
            "assumed CUDA graph memory, captured after the pool (0.1–1 GiB in logs)",
        )
    )
    components = [fixed[0], MemoryComponent("kv_cache", kv_bytes, kv_how), *fixed[1:], *tail]
    breakdown = MemoryBreakdown(tuple(components), devices=workload.tp, notes=tuple(notes))
    return InferenceEstimate(breakdown, weights, layout, breakdown.total_bytes, "serving", facts)


# llama.cpp architectures that keep a sliding-window cache (src/models/*.cpp: their
# load_arch_hparams set swa_type): Gemma 2 (n_swa 4096 unless the file says), Gemma 3 (when
# the file states a window), gpt-oss, Cohere 2. Phi-3 turns SWA off even where the file
# states a window (phi3.cpp: "Phi SWA is currently disabled"); llama-arch files (Mistral,
# Mixtral) and Qwen2/3 carry no window key and keep a full-context cache.
LLAMA_CPP_SWA_FAMILIES = frozenset({"gemma2", "gemma3", "gemma3_text", "gpt_oss", "cohere2"})
# ggml's CUDA backend runs a host layer's matrix products on the GPU (op offload) for
# batches of this many tokens or more, copying the weights into the compute buffer.
LLAMA_CPP_OP_OFFLOAD_MIN_BATCH = 32


def llama_cpp_view(spec: ModelSpec) -> tuple[ModelSpec, str | None]:
    """``spec`` as llama.cpp's graph for its architecture caches it: sliding-window layers
    become full-context layers where llama.cpp has no SWA for the architecture."""
    if "sliding" not in spec.attention_layers or spec.family in LLAMA_CPP_SWA_FAMILIES:
        return spec, None
    full = replace(
        spec, attention_layers=tuple("full" for _ in spec.attention_layers), sliding_window=None
    )
    return full, (
        f"llama.cpp keeps a full-context cache for {spec.family} (its graph for this "
        "architecture has no sliding window; logs show n_swa = 0)"
    )


def llama_cpp_compute_phases(
    spec: ModelSpec, n_kv: int, tokens: int, outputs: int, flash_attention: bool
) -> tuple[int, int, str]:
    """(layer peak, output peak, how) of the graph llama.cpp reserves for a micro-batch of
    ``tokens`` over ``n_kv`` cells, all f32. ggml's graph allocator (ggml-alloc.c) frees a
    tensor after its last consumer and runs element-wise ops and the softmax in place, so
    the buffer is the largest set of tensors live at once, not the sum of the big ones:

    - attention without flash attention: the KQ mask (f32 [n_kv, u], an input every layer
      reads) + the KQ scores [n_kv, u, n_head] + 5 [u, h] + the new K and V rows;
    - FFN: the mask (f16 with flash attention) + gate, up and their GLU product [u, I]
      (MoE: k experts each) + 4 [u, h];
    - output: the logits [vocab, outputs] + 2 [u, h].

    Checked against llama.cpp's own reservation (CPU backend, llama-cpp-python 0.3.36):
    Llama-2-7B shape at n_ctx 4096, ubatch 512: 320.01 MiB without and 100.51 MiB with
    flash attention (this: 320.00, 100.50); Llama-3.1-8B shape at 16384/1024 with flash
    attention 533.00 MiB (533.00); Gemma-2-9B shape at 8192/512: 514.00 MiB (514.00)."""
    u, h, f32 = tokens, spec.hidden_size, 4
    a = spec.attention
    kv_dim = 2 * a.num_kv_heads * a.head_dim if a is not None else 0
    mask = n_kv * u * (2 if flash_attention else 4)
    width = spec.mlp.intermediate_size if spec.mlp is not None else 0
    glu = spec.mlp is None or spec.mlp.gated
    if spec.moe is not None and spec.is_moe:
        moe = spec.moe.experts_per_token * spec.moe.expert_intermediate_size
        moe += spec.moe.shared_intermediate_size
        width, glu = max(width, moe), True
    ffn = mask + u * f32 * ((3 if glu else 2) * width + 4 * h)
    attn = 0
    if a is not None and not flash_attention:
        attn = mask + n_kv * u * a.num_heads * f32 + u * f32 * (5 * h + kv_dim)
    layer = max(ffn, attn)
    output = outputs * spec.vocab_size * f32 + 2 * u * h * f32
    scores = "" if flash_attention else f", mask + fp32 KQ scores {n_kv}×{u}×n_head"
    how = (
        f"largest live set of the graph (ggml-alloc reuses freed memory): max(FFN: mask + "
        f"gate, up, GLU [{u}, I] + 4 [{u}, h]{scores}; output: {outputs} × vocab fp32 "
        f"logits + 2 [{u}, h])"
    )
    return layer, output, how


@dataclass(frozen=True, slots=True)
class GgufParts:
    """A model's weights as llama.cpp places them: the input embeddings stay in host
    memory; repeating layers go where -ngl/-ts put them; the output layer (norm and head,
    a copy of the embedding when tied) follows the last offloaded slot."""

    input_bytes: int
    layer_bytes: tuple[int, ...]
    output_bytes: int
    tied: bool
    tied_copy_bytes: int  # the embedding's copy in output_bytes (0 when untied)


_INPUT_NAMES = ("embed_tokens", "wte", "wpe", "token_embd", "position_embd", "embed_positions")
_TOKEN_EMBEDDING = ("embed_tokens", "wte.", "token_embd")
_HEAD_NAMES = ("lm_head", "output.weight")


def gguf_parts(spec: ModelSpec, weights: WeightsEstimate) -> GgufParts:
    """Split ``weights`` (inventory names with ``{i}``, or a GGUF file's ``blk.N.``)."""
    n = spec.num_layers
    per_layer = [0] * n
    shared = inputs = output = token_embd = 0
    has_head = False
    for t in weights.tensors:
        if "{i}" in t.name:
            shared += t.bytes
        elif t.name.startswith("blk.") and t.name.split(".")[1].isdigit():
            per_layer[min(int(t.name.split(".")[1]), n - 1)] += t.bytes
        elif any(k in t.name for k in _INPUT_NAMES):
            inputs += t.bytes
            if any(k in t.name for k in _TOKEN_EMBEDDING):
                token_embd += t.bytes
        else:
            output += t.bytes
            has_head = has_head or any(k in t.name for k in _HEAD_NAMES)
    tied = spec.lm_head and not has_head
    if tied:
        output += token_embd  # llama.cpp: output = token_embd, TENSOR_DUPLICATED
    layers = tuple(b + shared // n + (1 if i < shared % n else 0) for i, b in enumerate(per_layer))
    return GgufParts(inputs, layers, output, tied, token_embd if tied else 0)


def llama_cpp_placement(
    n_layer: int, gpu_layers: int, shares: tuple[float, ...]
) -> tuple[int | None, ...]:
    """The device of layers 0..n_layer-1 and of the output (index n_layer), None for the
    host, as llama-model.cpp assigns them: the last ``gpu_layers`` of the n_layer + 1 slots
    are offloaded, split at the cumulative ``shares`` (upper_bound of il / offloaded)."""
    total = sum(shares)
    cuts, run = [], 0.0
    for share in shares:
        run += share
        cuts.append(run / total)
    start = max(n_layer + 1 - gpu_layers, 0)
    offloaded = min(gpu_layers, n_layer + 1)
    placed: list[int | None] = []
    for il in range(n_layer + 1):
        if il < start or il - start >= offloaded:
            placed.append(None)
        else:
            placed.append(min(bisect_right(cuts, (il - start) / offloaded), len(shares) - 1))
    return tuple(placed)


@dataclass(frozen=True, slots=True)
class _LlamaCppSetup:
    spec: ModelSpec
    parts: GgufParts
    kv_per_layer: tuple[int, ...]
    layer_peak: int
    output_peak: int
    compute_how: str
    shares: tuple[float, ...]
    row: bool
    context_bytes: int
    tokens: int
    pp_inputs: int  # one copy of the graph inputs a device receives (mask, hidden state)


def _device_loads(setup: _LlamaCppSetup, gpu_layers: int) -> tuple[list[dict[str, int]], int]:
    """Per device: weights, KV cache, compute buffer and context bytes; and the bytes of
    the layers left on the host (weights and their KV)."""
    n = setup.spec.num_layers
    devices = len(setup.shares)
    placed = llama_cpp_placement(n, gpu_layers, setup.shares)
    loads = [
        {"layers": 0, "weights": 0, "kv_cache": 0, "compute_buffer": 0, "cuda_context": 0}
        for _ in range(devices)
    ]
    host = 0
    for il, where in enumerate(placed):
        size = setup.parts.output_bytes if il == n else setup.parts.layer_bytes[il]
        kv = 0 if il == n else setup.kv_per_layer[il]
        if where is None:
            host += size + kv
            continue
        if setup.row:  # matrices split by rows; KV and results on the main device
            total = sum(setup.shares)
            for d in range(devices):
                loads[d]["weights"] += ceil(size * setup.shares[d] / total)
            where = 0
        else:
            loads[where]["weights"] += size
        loads[where]["kv_cache"] += kv
        loads[where]["layers"] += il < n
    out_dev = placed[n]
    # pipeline parallelism (llama-context.cpp: several devices, every slot offloaded, layer
    # split): the scheduler keeps GGML_SCHED_MAX_COPIES = 4 copies of each device's graph
    # inputs, flagged as outputs so that ggml-alloc never reuses them
    pipeline = devices > 1 and not setup.row and gpu_layers > n
    extra = 4 * setup.pp_inputs if pipeline else 0
    for d, load in enumerate(loads):
        if load["layers"] or d == out_dev:
            peak = setup.output_peak if d == out_dev else 0
            load["compute_buffer"] = max(setup.layer_peak if load["layers"] else 0, peak) + extra
            load["cuda_context"] = setup.context_bytes
    if host and gpu_layers and setup.tokens >= LLAMA_CPP_OP_OFFLOAD_MIN_BATCH:
        # op offload copies a host layer's (or the host head's) weights to the main device
        staged = [b for il, b in enumerate(setup.parts.layer_bytes) if placed[il] is None]
        if out_dev is None:
            staged.append(setup.parts.output_bytes)
        loads[0]["compute_buffer"] += max(staged)
    for load in loads:
        load["total"] = sum(v for k, v in load.items() if k != "layers")
    return loads, host


def _llama_cpp_setup(
    spec: ModelSpec, workload: InferenceWorkload, engine: EngineSettings, weights: WeightsEstimate
) -> tuple[_LlamaCppSetup, CacheLayout, int, str]:
    """What every offload choice shares: the weights by layer, the KV cache (total and
    by layer) and the compute buffer's phases."""
    kv_fmt = get_format(workload.kv_dtype or default_kv_format("llama.cpp", 2))
    layout = cache_layout(spec, kv_fmt)
    cells = _pad(workload.context * workload.batch, LLAMA_CPP_CELL_PAD)
    full = cells * layout.full_row_bytes
    kv_how = f"{cells:,} cells (context × sequences, padded to 256); {layout.how}"
    swa = 0
    if layout.window is not None:
        swa_cells = _pad(
            min(cells, layout.window * workload.batch + engine.n_ubatch), LLAMA_CPP_CELL_PAD
        )
        swa = swa_cells * layout.window_row_bytes
        kv_how += f"; sliding layers {swa_cells:,} cells (n_swa·n_seq + n_ubatch, padded)"
    state = workload.batch * layout.state_bytes_per_sequence
    kinds = spec.attention_layers or tuple("full" for _ in range(spec.num_layers))
    n_full, n_swa = max(1, kinds.count("full")), max(1, kinds.count("sliding"))
    n = spec.num_layers
    kv_layers = tuple((full // n_full if k == "full" else swa // n_swa) + state // n for k in kinds)
    tokens = min(engine.n_ubatch, workload.context * workload.batch)
    layer_peak, output_peak, how = llama_cpp_compute_phases(
        spec, cells, tokens, tokens, engine.flash_attention
    )
    shares = engine.tensor_split or tuple(1.0 for _ in range(engine.devices))
    setup = _LlamaCppSetup(
        spec,
        gguf_parts(spec, weights),
        kv_layers,
        layer_peak,
        output_peak,
        how,
        shares,
        engine.split_mode == "row",
        workload.cuda_context_bytes,
        tokens,
        cells * tokens * (2 if engine.flash_attention else 4) + tokens * spec.hidden_size * 4,
    )
    return setup, layout, full + swa + state, kv_how


def _llama_cpp_weights(spec: ModelSpec, workload: InferenceWorkload) -> WeightsEstimate:
    if workload.stored_weights is not None:
        return workload.stored_weights
    dtype = workload.dtype.lower()
    if dtype in ("bf16", "fp16", "f16"):
        return estimate_weights(spec, "gguf-f16")
    if dtype in _AS_CHECKPOINT:
        # llama.cpp's MXFP4_MOE file type stores gpt-oss's experts in MXFP4 (ggml's MXFP4
        # block: 32 E2M1 values + one E8M0 scale), as the checkpoint does; the converter
        # keeps the rest in 16 bit: priced as the checkpoint's own layout
        return estimate_weights(spec, dtype)
    return estimate_weights(spec, dtype if dtype.startswith("gguf-") else f"gguf-{dtype}")


_AS_CHECKPOINT = frozenset({"mxfp4"})


def _choose_gpu_layers(setup: _LlamaCppSetup, engine: EngineSettings) -> int:
    """-ngl as given, else all n_layer + 1 slots, else (with a device size) the most that
    fit every device."""
    slots = setup.spec.num_layers + 1
    if engine.gpu_layers is not None:
        return min(engine.gpu_layers, slots)
    if engine.device_memory_bytes is None:
        return slots
    for ngl in range(slots, 0, -1):
        loads, _ = _device_loads(setup, ngl)
        if max(d["total"] for d in loads) <= engine.device_memory_bytes:
            return ngl
    return 0


def _llama_cpp_host_bytes(setup: _LlamaCppSetup, ngl: int, host_layers: int, batch: int) -> int:
    """Host memory: the input embeddings, the layers (and their cache) left on the host
    and the output buffer of fp32 logits."""
    n, parts = setup.spec.num_layers, setup.parts
    host = parts.input_bytes + host_layers + setup.spec.vocab_size * batch * 4
    if parts.tied and llama_cpp_placement(n, ngl, setup.shares)[n] is None:
        # a head left on the host shares the embedding's data (one buffer, mapped or
        # read); offloaded, it is a second copy on the device (llama.cpp's
        # TENSOR_DUPLICATED), while the host keeps the input embedding
        host -= parts.tied_copy_bytes
    return host


def estimate_llama_cpp(
    spec: ModelSpec, workload: InferenceWorkload, engine: EngineSettings
) -> InferenceEstimate:
    """The most loaded device of a llama.cpp run, and every device and the host in
    ``engine_facts``."""
    spec, swa_note = llama_cpp_view(spec)
    weights = _llama_cpp_weights(spec, workload)
    setup, layout, kv_total, kv_how = _llama_cpp_setup(spec, workload, engine, weights)
    ngl = _choose_gpu_layers(setup, engine)
    loads, host_layers_bytes = _device_loads(setup, ngl)
    n = spec.num_layers
    on_device = sum(d["layers"] for d in loads)
    host = _llama_cpp_host_bytes(setup, ngl, host_layers_bytes, workload.batch)
    top = max(range(len(loads)), key=lambda d: loads[d]["total"])
    load = loads[top]
    where = f"device {top} of {len(loads)}: " if len(loads) > 1 else ""
    rows = " (rows split by -ts)" if setup.row else ""
    components = (
        MemoryComponent(
            "weights", load["weights"], f"{where}{weights.how}; {load['layers']}/{n} layers{rows}"
        ),
        MemoryComponent("kv_cache", load["kv_cache"], kv_how),
        MemoryComponent("compute_buffer", load["compute_buffer"], setup.compute_how),
        MemoryComponent("cuda_context", load["cuda_context"], "assumed CUDA context"),
    )
    facts: dict[str, Any] = {
        "gpu_layers": ngl,
        "host_layers": n - on_device,
        "host_bytes": host,
        "host_weights_mapped": engine.mmap,
        "kv_cache_bytes": kv_total,
        "split_mode": engine.split_mode,
        "device_loads": [
            {
                "device": d,
                **{k: v for k, v in ld.items() if k != "total"},
                "total_bytes": ld["total"],
            }
            for d, ld in enumerate(loads)
        ],
    }
    notes = [*weights.notes, *([swa_note] if swa_note else [])]
    if len(loads) > 1 and not setup.row and ngl > n:
        notes.append(
            "pipeline parallelism: each device's compute buffer keeps 4 copies of its inputs "
            "(KQ mask, hidden state)"
        )
    if engine.device_memory_bytes is not None:
        notes.append(f"-ngl {ngl}: {on_device} of {n} layers on the device(s)")
        facts.update(
            _llama_cpp_verdict(load["total"], engine.device_memory_bytes, n - on_device, host)
        )
    notes.append(
        f"host memory {host:,} B: {n - on_device} layers, the input embeddings"
        + (" (memory-mapped)" if engine.mmap else " (read into a buffer: --no-mmap)")
        + " and the fp32 logits"
        + ("; tied embeddings: an offloaded head is a second copy" if setup.parts.tied else "")
    )
    breakdown = MemoryBreakdown(components, devices=len(loads), notes=tuple(notes))
    return InferenceEstimate(breakdown, weights, layout, breakdown.total_bytes, "serving", facts)


def _llama_cpp_verdict(total: int, budget: int, host_layers: int, host: int) -> dict[str, Any]:
    """Partial offload is its own verdict: it runs, at host-memory speed for those layers."""
    fits = total <= budget
    if not fits:
        verdict = "does not fit"
    elif host_layers:
        verdict = f"fits with {host_layers} layers on the host, {host / 1e9:.2f} GB of host memory"
    else:
        verdict = "fits"
    return {"fits": fits and host_layers == 0, "offload_verdict": verdict}


def estimate_engine(
    spec: ModelSpec, workload: InferenceWorkload, engine: EngineSettings | None = None
) -> InferenceEstimate:
    engine = engine or EngineSettings()
    if workload.engine == "vllm":
        return estimate_vllm(spec, workload, engine)
    return estimate_llama_cpp(spec, workload, engine)

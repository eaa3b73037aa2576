"""KV cache (and recurrent state) size, exact, per layer.

    bytes = Σ_layers that cache  tokens_cached(layer) · batch · row_bytes(layer)
    row_bytes = bytes of one token's K row (n_kv·d_k values) + its V row (n_kv·d_v)

in the cache's number format (a block format such as llama.cpp's q8_0 stores each row as
whole blocks). Sliding-window layers keep at most the window; MLA (DeepSeek V2/V3) keeps
the compressed latent ``kv_lora_rank + qk_rope_head_dim`` per token in engines that
implement it (vLLM, SGLang, llama.cpp), while transformers caches the expanded per-head K
and V. Tensor parallelism splits KV heads (``max(1, n_kv / tp)`` per device: a head is
replicated when tp exceeds the number of KV heads). A state-space layer (Mamba) keeps a
fixed state per sequence instead: conv ``D × kernel`` and SSM ``D × N`` values.

Sources: vLLM PagedAttention paper (arXiv:2309.06180 §3), DeepSeek-V2 (arXiv:2405.04434
Table 1), vLLM ``kv_cache_interface.py``, llama.cpp ``llama-kv-cache.cpp``.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelmem.errors import InvalidValueError
from modelmem.formats import NumberFormat, get_format
from modelmem.model.spec import ModelSpec


@dataclass(frozen=True, slots=True)
class CacheLayout:
    """What one token costs in every caching layer, and where windows cap it."""

    full_row_bytes: int  # Σ over full-attention layers of one token's K+V bytes
    window_row_bytes: int  # Σ over sliding-window layers
    window: int | None
    state_bytes_per_sequence: int  # recurrent state (Mamba), independent of tokens
    how: str

    @property
    def bytes_per_token(self) -> int:
        """Marginal cost of one more cached token while every window is still filling."""
        return self.full_row_bytes + self.window_row_bytes

    def bytes(self, tokens: int, batch: int, window_tokens: int | None = None) -> int:
        """Cache of ``batch`` sequences of ``tokens``; sliding layers keep
        ``window_tokens`` (default: the window) when that is fewer."""
        capped = tokens
        if self.window is not None:
            keep = self.window if window_tokens is None else window_tokens
            capped = min(tokens, keep)
        return batch * (
            tokens * self.full_row_bytes
            + capped * self.window_row_bytes
            + self.state_bytes_per_sequence
        )


def default_kv_format(engine: str, activation_bytes: int) -> str:
    """The cache format an engine picks when none is asked for: llama.cpp's ``-ctk``/``-ctv``
    default f16; vLLM's ``auto`` and transformers' DynamicCache the model's compute dtype."""
    if engine == "llama.cpp":
        return "fp16"
    return "fp32" if activation_bytes == 4 else "bf16"


def kv_heads_per_device(num_kv_heads: int, tp: int) -> int:
    """KV heads one tensor-parallel rank holds; replicated when tp > n_kv (vLLM)."""
    return max(1, num_kv_heads // tp)


def _row_bytes(values: int, fmt: NumberFormat) -> int:
    """Bytes of one cached row of ``values`` elements (block formats: whole blocks)."""
    if values % fmt.block_size:
        raise InvalidValueError(
            "kv_dtype",
            fmt.name,
            f"a row of {values} values is not whole blocks of {fmt.block_size}",
        )
    return fmt.tensor_bytes((values,))


def cache_layout(
    spec: ModelSpec, fmt: NumberFormat, *, tp: int = 1, mla_latent: bool = True
) -> CacheLayout:
    """Per-token cache layout of ``spec`` with K/V stored in ``fmt``."""
    if spec.ssm is not None:
        s = spec.ssm
        if fmt.block_size > 1:
            # recurrent states are not block-quantized (llama.cpp keeps them in F32)
            fmt = get_format("fp32")
        # conv state [D, kernel] and SSM state [D, N] per layer and sequence
        per_seq = spec.num_layers * (
            fmt.tensor_bytes((s.inner_size, s.conv_kernel))
            + fmt.tensor_bytes((s.inner_size, s.state_size))
        )
        how = (
            f"{spec.num_layers} layers × (conv {s.inner_size}×{s.conv_kernel} "
            f"+ SSM {s.inner_size}×{s.state_size}) state"
        )
        return CacheLayout(0, 0, None, per_seq, how)
    a = spec.attention
    if a is None or not spec.has_kv_cache:
        return CacheLayout(0, 0, None, 0, "no cache")
    if a.is_mla and mla_latent:
        assert a.kv_lora_rank is not None
        row = _row_bytes(a.kv_lora_rank + a.qk_rope_head_dim, fmt)
        how = (
            f"MLA latent: (kv_lora_rank {a.kv_lora_rank} + rope {a.qk_rope_head_dim}) × {fmt.name}"
        )
    else:
        n_kv = kv_heads_per_device(a.num_kv_heads, tp)
        row = _row_bytes(n_kv * a.head_dim, fmt) + _row_bytes(n_kv * a.v_head_dim, fmt)
        dims = f"{a.head_dim}" if a.head_dim == a.v_head_dim else f"{a.head_dim}+{a.v_head_dim}"
        how = f"K+V: {n_kv} kv heads × {dims} dims × {fmt.name}"
    full = spec.attention_layers.count("full")
    sliding = spec.attention_layers.count("sliding")
    how = (
        f"{full} full"
        + (f" + {sliding} sliding (window {spec.sliding_window})" if sliding else "")
        + f" layers; {how}"
    )
    return CacheLayout(full * row, sliding * row, spec.sliding_window if sliding else None, 0, how)

"""The transformers-engine inference estimate against the fake-tensor measurement of
the same prefill + decode: within 5 % of the measured tensor peak (the estimate's
tensor peak excludes the assumed CUDA context and allocator slack, which a tensor-level
measurement cannot see)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="measurement needs the 'measure' extra (torch)")
pytest.importorskip("transformers", reason="measurement needs the 'measure' extra (transformers)")

from modelmem.measurement.extrapolate import run_measurement
from modelmem.measurement.run import MeasureSettings
from modelmem.memory.inference import InferenceWorkload, estimate_inference
from modelmem.model.sources import resolve

pytestmark = [pytest.mark.oracle, pytest.mark.slow]
TOLERANCE = 0.05

GRID = [
    ("llama-3.2-1b", 4, 4096, "sdpa"),  # dense GQA, activations ~25 % of the peak
    ("llama-3.2-1b", 2, 2048, "eager"),  # eager scores dominate
    ("qwen2.5-1.5b", 16, 1024, "sdpa"),  # qkv bias, tied head
    ("qwen3-30b-a3b", 2, 2048, "sdpa"),  # MoE, grouped experts
    ("gemma-3-1b", 2, 4096, "sdpa"),  # sliding-window layers
    ("deepseek-v2-lite", 2, 2048, "sdpa"),  # MLA latent cache, eager-only in transformers
    ("phi-3-mini-4k", 2, 4096, "sdpa"),  # fused qkv and gate_up
    ("gpt2", 8, 1024, "sdpa"),  # learned positions, GELU(tanh) MLP
]


@pytest.mark.parametrize(("name", "batch", "prompt", "attention"), GRID)
def test_inference_estimate_within_tolerance_of_measurement(
    name: str, batch: int, prompt: int, attention: str
) -> None:
    model = resolve(name)
    assert model.spec is not None and model.config is not None
    workload = InferenceWorkload(
        batch=batch, context=prompt + 2, prompt=prompt, dtype="bf16", attention=attention
    )
    estimate = estimate_inference(model.spec, workload)
    settings = MeasureSettings(
        mode="inference",
        batch=batch,
        seq=prompt,
        recipe="pure-bf16",
        decode_steps=2,
        attention=attention,
    )
    measured = run_measurement(model.config, model.spec, settings).breakdown
    error = (estimate.tensor_peak_bytes - measured.total_bytes) / measured.total_bytes
    assert abs(error) <= TOLERANCE, f"{name}: {error:+.2%}"
    kv = {c.name: c.bytes for c in measured.components}.get("kv_cache", 0)
    assert estimate.breakdown.get("kv_cache").bytes == pytest.approx(kv, rel=0.001, abs=4096)

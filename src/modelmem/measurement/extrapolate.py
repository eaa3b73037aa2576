"""Measure a deep model from a few of its layers, exactly.

A fake step costs Python dispatch per op, so a 32- or 80-layer model costs 32 or 80 times
a layer. Decoder layers repeat: after a head of distinct layers (DeepSeek's dense-first
layers), the stack is a period of layer kinds (Gemma's 5 sliding : 1 full) repeated ``k``
times, then a remainder that starts the period again. Every byte that is live at a given
point of a phase is an affine function of ``k``: each repetition adds the same
parameters, gradients, states and saved activations. So the peak of each phase is
measured at ``k = 1, 2, 3``, checked to be affine, and extrapolated to the model's ``k``;
the overall peak is the largest extrapolated phase peak. If the three samples are not
affine the model is measured whole.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any

from modelmem.measurement.run import Measurement, MeasureSettings, measure
from modelmem.memory.breakdown import MemoryBreakdown, MemoryComponent
from modelmem.model.spec import ModelSpec

SAMPLES = (1, 2, 3)
# With a single repetition the peak can sit at another op (the embedding output is still
# alive in the only layer); then the samples 2, 3, 4 are used.
LATER_SAMPLES = (2, 3, 4)


@dataclass(frozen=True, slots=True)
class LayerPlan:
    head: int  # leading layers outside the repeating pattern
    period: int
    repeats: int  # k: whole periods in the model
    remainder: int  # layers of a partial period at the end

    def depth(self, repeats: int) -> int:
        return self.head + self.period * repeats + self.remainder


def layer_plan(spec: ModelSpec) -> LayerPlan | None:
    """The shortest head + period that describes the layer stack, if it repeats ≥ 4 times."""
    kinds = [
        (
            spec.attention_layers[i] if spec.attention_layers else "",
            spec.mlp_layers[i] if spec.mlp_layers else "",
        )
        for i in range(spec.num_layers)
    ]
    n = len(kinds)
    for head in range(n):
        for period in range(1, (n - head) // 4 + 1):
            if all(kinds[i] == kinds[head + (i - head) % period] for i in range(head, n)):
                repeats, remainder = divmod(n - head, period)
                return LayerPlan(head, period, repeats, remainder)
    return None


def truncated_config(config: dict[str, Any], layers: int) -> dict[str, Any]:
    """The config with only its first ``layers`` layers (per-layer lists cut to match)."""
    cfg = copy.deepcopy(config)
    target = cfg["text_config"] if cfg.get("model_type") == "gemma3" else cfg
    depth = next((target[k] for k in ("num_hidden_layers", "n_layer") if k in target), None)
    for key in ("num_hidden_layers", "n_layer"):
        if key in target:
            target[key] = layers
    if "num_hidden_layers" not in target and "n_layer" not in target:
        target["num_hidden_layers"] = layers
    # Every list with one entry per layer (layer_types, mlp_layer_types, indexer_types,
    # ...) is cut too: transformers rejects a list longer than the layer count.
    for key, value in target.items():
        if not isinstance(value, list) or key == "mlp_only_layers":  # indices, cut below
            continue
        if key == "layer_types" or (isinstance(depth, int) and len(value) == depth > layers):
            target[key] = value[:layers]
    if isinstance(target.get("mlp_only_layers"), list):
        target["mlp_only_layers"] = [i for i in target["mlp_only_layers"] if i < layers]
    return cfg


def _affine(values: list[int], k: int, first: int = 1) -> int | None:
    """Extrapolate v(first), v(first+1), v(first+2) to v(k), or None if not affine."""
    v1, v2, v3 = values
    if v3 - v2 != v2 - v1:
        return None
    return v1 + (k - first) * (v2 - v1)


def measure_by_layers(
    config: dict[str, Any], spec: ModelSpec, settings: MeasureSettings
) -> Measurement:
    """Measure from three shallow copies when that is exact, else measure the whole model."""
    plan = layer_plan(spec)
    if plan is None or plan.repeats <= SAMPLES[-1]:
        return measure(config, settings)
    runs = [measure(truncated_config(config, plan.depth(j)), settings) for j in SAMPLES]
    result = _combine(runs, plan, SAMPLES[0])
    if result is None and plan.repeats > LATER_SAMPLES[-1]:
        runs = [
            *runs[1:],
            measure(truncated_config(config, plan.depth(LATER_SAMPLES[-1])), settings),
        ]
        result = _combine(runs, plan, LATER_SAMPLES[0])
    if result is None:
        full = measure(config, settings)
        full.notes.append("layer extrapolation was not affine; measured the whole model")
        return full
    return result


def _combine(runs: list[Measurement], plan: LayerPlan, first: int) -> Measurement | None:
    k = plan.repeats
    phases = runs[0].phase_peaks.keys()
    if any(r.phase_peaks.keys() != phases for r in runs):
        return None
    peaks: dict[str, int] = {}
    for phase in phases:
        value = _affine([r.phase_peaks[phase] for r in runs], k, first)
        if value is None:
            return None
        peaks[phase] = value
    top = max(peaks, key=lambda p: peaks[p])
    parts: dict[str, int] = {}
    names = {c.name for r in runs for c in r.phase_compositions[top].components}
    how = {c.name: c.how for r in runs for c in r.phase_compositions[top].components}
    for name in names:
        value = _affine([_part(r, top, name) for r in runs], k, first)
        if value is None:
            return None
        parts[name] = value
    rounded = _affine([r.phase_peaks_rounded[top] for r in runs], k, first)
    trainable = _affine([r.trainable_params for r in runs], k, first)
    total = _affine([r.total_params for r in runs], k, first)
    if rounded is None or trainable is None or total is None or sum(parts.values()) != peaks[top]:
        return None
    order = [c.name for c in runs[-1].phase_compositions[top].components]
    components = tuple(MemoryComponent(n, parts[n], how[n]) for n in order if parts[n])
    depths = ", ".join(str(plan.depth(j)) for j in range(first, first + 3))
    note = (
        f"extrapolated exactly from {depths} layers "
        f"(head {plan.head}, period {plan.period}, ×{k}, remainder {plan.remainder})"
    )
    last = runs[-1]
    return replace(
        last,
        breakdown=MemoryBreakdown(components, notes=(*last.breakdown.notes, note)),
        peak_rounded_bytes=rounded,
        peak_phase=top,
        peak_op=runs[-1].phase_ops[top],
        phase_peaks=peaks,
        trainable_params=trainable,
        total_params=total,
        seconds=sum(r.seconds for r in runs),
        notes=[*last.notes, note],
        phase_compositions={},
        phase_peaks_rounded={},
        phase_ops={},
    )


def _part(run: Measurement, phase: str, name: str) -> int:
    for c in run.phase_compositions[phase].components:
        if c.name == name:
            return c.bytes
    return 0


def run_measurement(
    config: dict[str, Any], spec: ModelSpec, settings: MeasureSettings, whole: bool = False
) -> Measurement:
    """The CLI's entry: whole-model measurement, or exact extrapolation by layers."""
    return measure(config, settings) if whole else measure_by_layers(config, spec, settings)

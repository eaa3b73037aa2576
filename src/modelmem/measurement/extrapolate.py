"""Measure a deep model from a few of its layers, exactly.

A fake step costs Python dispatch per op, so a 32- or 80-layer model costs 32 or 80 times
a layer. Decoder layers repeat: after a head of distinct layers (DeepSeek's dense-first
layers), the stack is a period of layer kinds (Gemma's 5 sliding : 1 full) repeated ``k``
times, then a remainder that starts the period again. Every byte that is live at a given
point of a step is an affine function of ``k``: each repetition adds the same
parameters, gradients, states and saved activations. So the peaks are measured at
``k = 2, 3, 4``, checked to be affine, and extrapolated to the model's ``k``.

A phase's peak is not one such point: in backward, the loss's buffers weigh most at the
start and the gradients near the end, and which wins moves with depth (under
checkpointing most of all). So backward is cut into regions, one per decoder layer from
its first gradient on (:mod:`run`); a region is labelled by its place in the plan (head
layer, period slot of the first or the last repetition, remainder), each label's peak is
extrapolated, and the overall peak is the largest. If the samples are not affine the
model is measured whole.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any

from modelmem.measurement.run import (
    Measurement,
    MeasureSettings,
    coarse_phase,
    measure,
    region_layer,
)
from modelmem.memory.breakdown import MemoryBreakdown, MemoryComponent
from modelmem.model.spec import ModelSpec

# At least two repetitions: a backward region of the last repetition then always ends in
# the repetition before it (with one, it ends at the embedding), so each region has the
# same ops at every sampled depth.
SAMPLES = (2, 3, 4)
# With few repetitions the peak can sit at another op (the embedding output is still
# alive in the first layer); then the samples 3, 4, 5 are used.
LATER_SAMPLES = (3, 4, 5)


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


def region_labels(region: str, plan: LayerPlan, repeats: int) -> tuple[str, ...]:
    """Where a backward region sits in the layer plan, independently of depth.

    A region opened by a layer of the repeated periods is labelled by its slot in the
    period and by whether it is in the first or the last repetition (both with a single
    one). Live bytes in the region of repetition q are affine in q and in the depth
    (each later repetition adds its gradients, each earlier one its saved activations),
    so the largest over q is at the first or the last: the middle repetitions are never
    the peak and get no label."""
    layer = region_layer(region)
    if layer is None:
        return (region,)
    base = coarse_phase(region)
    if layer < plan.head:
        return (f"{base}/head{layer}",)
    q, slot = divmod(layer - plan.head, plan.period)
    if q >= repeats:
        return (f"{base}/remainder{layer - plan.head - plan.period * repeats}",)
    labels = []
    if q == 0:
        labels.append(f"{base}/first{slot}")
    if q == repeats - 1:
        labels.append(f"{base}/last{slot}")
    return tuple(labels)


def _labelled(run: Measurement, plan: LayerPlan, repeats: int) -> dict[str, str]:
    """label -> the run's region that carries it."""
    return {
        label: region
        for region in run.region_peaks
        for label in region_labels(region, plan, repeats)
    }


def _combine(runs: list[Measurement], plan: LayerPlan, first: int) -> Measurement | None:
    k = plan.repeats
    regions = [_labelled(r, plan, first + i) for i, r in enumerate(runs)]
    labels = regions[0].keys()
    if any(r.keys() != labels for r in regions):
        return None
    peaks: dict[str, int] = {}
    for label in labels:
        value = _affine(
            [r.region_peaks[m[label]] for r, m in zip(runs, regions, strict=True)], k, first
        )
        if value is None:
            return None
        peaks[label] = value
    top = max(peaks, key=lambda p: peaks[p])
    tops = [m[top] for m in regions]
    parts: dict[str, int] = {}
    names = {
        c.name for r, t in zip(runs, tops, strict=True) for c in r.phase_compositions[t].components
    }
    how = {
        c.name: c.how
        for r, t in zip(runs, tops, strict=True)
        for c in r.phase_compositions[t].components
    }
    for name in names:
        value = _affine([_part(r, t, name) for r, t in zip(runs, tops, strict=True)], k, first)
        if value is None:
            return None
        parts[name] = value
    rounded = _affine([r.phase_peaks_rounded[t] for r, t in zip(runs, tops, strict=True)], k, first)
    trainable = _affine([r.trainable_params for r in runs], k, first)
    total = _affine([r.total_params for r in runs], k, first)
    if rounded is None or trainable is None or total is None or sum(parts.values()) != peaks[top]:
        return None
    order = [c.name for c in runs[-1].phase_compositions[tops[-1]].components]
    components = tuple(MemoryComponent(n, parts[n], how[n]) for n in order if parts[n])
    depths = ", ".join(str(plan.depth(j)) for j in range(first, first + 3))
    note = (
        f"extrapolated exactly from {depths} layers "
        f"(head {plan.head}, period {plan.period}, ×{k}, remainder {plan.remainder})"
    )
    phase_peaks: dict[str, int] = {}
    for label, value in peaks.items():
        phase = coarse_phase(label.split("/")[0])
        phase_peaks[phase] = max(value, phase_peaks.get(phase, 0))
    last = runs[-1]
    return replace(
        last,
        breakdown=MemoryBreakdown(components, notes=(*last.breakdown.notes, note)),
        peak_rounded_bytes=rounded,
        peak_phase=top.split("/")[0],
        peak_op=runs[-1].phase_ops[tops[-1]],
        phase_peaks=phase_peaks,
        trainable_params=trainable,
        total_params=total,
        seconds=sum(r.seconds for r in runs),
        notes=[*last.notes, note],
        region_peaks={},
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

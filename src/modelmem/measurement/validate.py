"""Estimates held to measurement: run the estimators and the fake-tensor measurement over a
grid of architectures and settings and report the error of each row.

The estimate's tensor peak (weights, cache or optimizer state, activations, transients,
without the assumed CUDA context and allocator slack) is compared with the measured live
tensor peak; a row passes when the relative error is within its tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelmem.measurement.extrapolate import run_measurement
from modelmem.measurement.run import MeasureSettings
from modelmem.memory.inference import InferenceWorkload, estimate_inference
from modelmem.model.sources import resolve

DEFAULT_TOLERANCE = 0.05


CHECKPOINTING = ("none", "full", "selective")


@dataclass(frozen=True, slots=True)
class Case:
    model: str
    mode: str  # "inference" | "train"
    batch: int
    seq: int
    recipe: str = "pure-bf16"
    attention: str = "sdpa"
    checkpointing: str = "none"  # none | full (per layer) | selective (attention core)
    optimizer: str = "adamw"
    tolerance: float = DEFAULT_TOLERANCE

    @property
    def label(self) -> str:
        extra = {"none": "", "full": " ckpt", "selective": " selective"}[self.checkpointing]
        if self.optimizer != "adamw":
            extra += f" {self.optimizer}"
        return f"{self.mode} b{self.batch} s{self.seq} {self.recipe} {self.attention}{extra}"


@dataclass(frozen=True, slots=True)
class Row:
    case: Case
    estimate_bytes: int
    measured_bytes: int

    @property
    def error(self) -> float:
        return (self.estimate_bytes - self.measured_bytes) / self.measured_bytes

    @property
    def passed(self) -> bool:
        return abs(self.error) <= self.case.tolerance

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.case.model,
            "settings": self.case.label,
            "estimate_bytes": self.estimate_bytes,
            "measured_bytes": self.measured_bytes,
            "error": round(self.error, 5),
            "tolerance": self.case.tolerance,
            "passed": self.passed,
        }


QUICK_GRID: tuple[Case, ...] = (
    Case("llama-3.2-1b", "inference", 4, 4096),
    Case("qwen3-30b-a3b", "inference", 2, 2048),
    Case("gemma-3-1b", "inference", 2, 4096),
    Case("llama-3.2-1b", "train", 8, 2048, recipe="amp-bf16"),
)
# Two sequence lengths per architecture. Sliding-window models (Gemma 3: 512) stay within
# their window: CPU SDPA with an explicit mask takes the math path and keeps s²
# probabilities that a GPU kernel does not.
TRAIN_SEQS: dict[str, tuple[int, ...]] = {
    "llama-3.2-1b": (512, 2048),
    "qwen3-0.6b": (512, 2048),
    "gemma-3-1b": (256, 512),
}
TRAIN_RECIPES = ("fp32", "amp-bf16", "pure-bf16")
# architectures × recipes × {none, full} checkpointing × {sdpa, eager} × 2 lengths; then
# selective recomputation at the longer length (where eager scores weigh most); then
# bitsandbytes' 8-bit AdamW (its real step on fake tensors).
TRAIN_GRID: tuple[Case, ...] = (
    *(
        Case(model, "train", 8, seq, recipe=recipe, attention=attention, checkpointing=ckpt)
        for model, seqs in TRAIN_SEQS.items()
        for recipe in TRAIN_RECIPES
        for ckpt in ("none", "full")
        for attention in ("sdpa", "eager")
        for seq in seqs
    ),
    *(
        Case(
            model,
            "train",
            8,
            seqs[-1],
            recipe=recipe,
            attention=attention,
            checkpointing="selective",
        )
        for model, seqs in TRAIN_SEQS.items()
        for recipe in TRAIN_RECIPES
        for attention in ("sdpa", "eager")
    ),
    Case("llama-3.2-1b", "train", 8, 1024, recipe="pure-bf16", optimizer="adamw-8bit"),
    Case("llama-3.2-1b", "train", 8, 1024, recipe="amp-bf16", optimizer="adamw-8bit"),
    Case("qwen3-0.6b", "train", 8, 1024, recipe="pure-bf16", optimizer="adamw-8bit"),
)
FULL_GRID: tuple[Case, ...] = (
    *QUICK_GRID,
    Case("llama-3.2-1b", "inference", 2, 2048, attention="eager"),
    Case("llama-3.1-8b", "inference", 8, 8192),
    Case("mistral-7b-v0.3", "inference", 4, 4096),
    Case("qwen2.5-7b", "inference", 16, 2048),
    Case("qwen2.5-1.5b", "inference", 16, 1024),
    Case("deepseek-v2-lite", "inference", 2, 2048),
    Case("phi-3-mini-4k", "inference", 2, 4096),
    Case("gpt2", "inference", 8, 1024),
    Case("mixtral-8x7b", "inference", 2, 4096),
    *(case for case in TRAIN_GRID if case not in QUICK_GRID),
    Case("qwen3-30b-a3b", "train", 2, 2048),
    Case("mistral-7b-v0.3", "train", 4, 4096),
    Case("phi-3-mini-4k", "train", 4, 2048, tolerance=0.10),
    Case("gpt2", "train", 16, 1024, recipe="amp-bf16"),
)


def estimate_case(case: Case) -> int:
    model = resolve(case.model)
    assert model.spec is not None
    if case.mode == "inference":
        dtype = "fp32" if case.recipe == "fp32" else "bf16"
        workload = InferenceWorkload(
            batch=case.batch,
            context=case.seq + 2,
            prompt=case.seq,
            dtype=dtype,
            attention=case.attention,
        )
        return estimate_inference(model.spec, workload).tensor_peak_bytes
    from modelmem.memory.training import TrainingWorkload, estimate_training

    train = TrainingWorkload(
        batch=case.batch,
        seq=case.seq,
        recipe=case.recipe,
        attention=case.attention,
        checkpointing=case.checkpointing == "full",
        selective_checkpointing=case.checkpointing == "selective",
        optimizer=case.optimizer,
    )
    return estimate_training(model.spec, train).tensor_peak_bytes


def measure_case(case: Case) -> int:
    model = resolve(case.model)
    assert model.spec is not None and model.config is not None
    settings = MeasureSettings(
        mode=case.mode,
        batch=case.batch,
        seq=case.seq,
        recipe=case.recipe,
        attention=case.attention,
        checkpointing=case.checkpointing == "full",
        selective_checkpointing=case.checkpointing == "selective",
        optimizer=case.optimizer,
        decode_steps=2,
    )
    return run_measurement(model.config, model.spec, settings).breakdown.total_bytes


def validate(grid: tuple[Case, ...]) -> list[Row]:
    return [Row(case, estimate_case(case), measure_case(case)) for case in grid]

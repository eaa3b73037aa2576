"""The planner: search the settings that matter for configurations that fit a device.

Given a model, a device and how many of it are available, :func:`plan` searches jointly
over the knobs of the goal and returns the best few configurations that fit, each with
its per-device breakdown and fit verdict, ranked by one stated objective:

=========  ==================================================================================
objective  ranks configurations by
=========  ==================================================================================
context    the largest context (inference) or sequence length (training) at the batch asked
batch      the largest batch (micro-batch in training) at the context / sequence asked
devices    the fewest devices that run the batch and context asked
quality    the least quality loss at the batch and context asked (wider weights and cache,
           full-state optimizers, higher LoRA rank)
=========  ==================================================================================

Ties are broken by quality loss, then fewer devices, then lower cost (checkpointing
recomputes a forward pass; higher ZeRO stages communicate more), then the larger margin.

Knobs searched (each can be fixed by the request instead):

- inference: weight format (bf16, fp8, LLM.int8, AWQ 4-bit g128, NF4), KV format (16-bit or
  fp8), tensor-parallel devices, and the batch or context of the objective;
- train: optimizer (AdamW, 8-bit AdamW, Adafactor), gradient checkpointing, ZeRO stage
  1-3 (FSDP: shard-grad-op = 2, full-shard = 3) and data-parallel devices, batch or sequence;
- lora / qlora: LoRA rank (64, 32, 16, 8), gradient checkpointing, batch or sequence.

Quality loss is an ordinal the planner states, not a measured loss: 0 for 16-bit weights,
1 for 8-bit (fp8, LLM.int8), 3 for AWQ 4-bit, 4 for NF4; +1 for an fp8 KV cache; 1 for
8-bit AdamW and 2 for Adafactor; LoRA ranks below 64 count 1, 2, 3.

The largest batch or context comes from a search over the estimator itself (memory grows
with both, so the boundary is exact: the result fits and one more does not), started from
a linear interpolation of points already estimated; estimates are memoized per model, so a
plan over the whole device catalogue reuses them. Pure: no I/O, no printing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

from modelmem.errors import InvalidValueError, ModelMemError, check_choices
from modelmem.hardware.catalogue import Accelerator
from modelmem.hardware.fit import DEFAULT_RESERVE, FitVerdict, check_count, fit_budget, fit_bytes
from modelmem.memory.breakdown import MemoryBreakdown
from modelmem.memory.inference import InferenceWorkload, estimate_inference
from modelmem.memory.training import TrainingWorkload, estimate_training
from modelmem.model.spec import ModelSpec
from modelmem.vocabulary import DEFAULT_ALLOCATOR_RESERVE, DEFAULT_CUDA_CONTEXT_BYTES

__all__ = [
    "GOALS",
    "OBJECTIVES",
    "Config",
    "Plan",
    "PlanOption",
    "PlanRequest",
    "Planner",
    "estimate",
    "largest_model",
    "plan",
    "plan_devices",
    "workload",
]

GOALS: tuple[str, ...] = ("inference", "train", "lora", "qlora")
OBJECTIVES: tuple[str, ...] = ("context", "batch", "devices", "quality")
# weight scheme -> quality loss (ordinal); fp8 needs a device with fp8 matrix units
WEIGHT_FORMATS: tuple[tuple[str, int], ...] = (
    ("bf16", 0),
    ("fp8", 1),
    ("bnb-int8", 1),
    ("awq-4bit-g128", 3),
    ("bnb-nf4", 4),
)
KV_FORMATS: tuple[tuple[str | None, int], ...] = ((None, 0), ("fp8", 1))
OPTIMIZERS: tuple[tuple[str, int], ...] = (("adamw", 0), ("adamw-8bit", 1), ("adafactor", 2))
LORA_RANKS: tuple[int, ...] = (64, 32, 16, 8)
MAX_BATCH = {"inference": 4096, "train": 1024, "lora": 1024, "qlora": 1024}
DEFAULT_TRAIN_SEQ = 2048
DEFAULT_INFERENCE_CONTEXT_CAP = 8192


@dataclass(frozen=True, kw_only=True, slots=True)
class PlanRequest:
    """What to plan for; a knob left None is searched."""

    goal: str = "inference"
    objective: str | None = None  # default: context for inference, batch for training
    max_devices: int = 1  # devices available; the plan may use fewer
    batch: int = 1
    length: int | None = None  # context (inference) or sequence (training); None: default
    dtype: str | None = None  # inference weight scheme
    kv_dtype: str | None = None
    recipe: str | None = None  # training recipe; default amp-bf16 (full), pure-bf16 (LoRA)
    optimizer: str | None = None
    optimizer_impl: str = "foreach"
    checkpointing: bool | None = None
    zero: int | None = None
    offload: bool = True  # search ZeRO-Offload of optimizer (and parameters) to CPU
    lora_rank: int | None = None
    lora_targets: tuple[str, ...] | str | None = None
    qlora_scheme: str = "bnb-nf4-dq"
    attention: str = "sdpa"
    cuda_context_bytes: int = DEFAULT_CUDA_CONTEXT_BYTES
    allocator_reserve: Fraction = DEFAULT_ALLOCATOR_RESERVE
    reserve: Fraction = DEFAULT_RESERVE  # safety reserve of the fit verdict
    top: int = 5

    def __post_init__(self) -> None:
        check_choices(self, (("goal", GOALS),))
        if self.objective is not None:
            check_choices(self, (("objective", OBJECTIVES),))
        check_count(self.max_devices)
        for name in ("batch", "top") + (("length",) if self.length is not None else ()):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidValueError(name, value, "must be an integer >= 1")
        if self.zero is not None and self.zero not in (0, 1, 2, 3):
            raise InvalidValueError("zero", self.zero, "must be 0, 1, 2 or 3")
        if self.lora_rank is not None and self.lora_rank < 1:
            raise InvalidValueError("lora_rank", self.lora_rank, "must be >= 1")

    @property
    def chosen_objective(self) -> str:
        return self.objective or ("context" if self.goal == "inference" else "batch")

    def default_length(self, spec: ModelSpec) -> int:
        if self.length is not None:
            return self.length
        if self.goal == "inference":
            return min(spec.context_length, DEFAULT_INFERENCE_CONTEXT_CAP)
        return min(spec.context_length, DEFAULT_TRAIN_SEQ)


# Slowness the ranking charges: host round trips every step (optimizer on the CPU; with
# parameters, a fetch per layer and pass).
_OFFLOAD_COST: dict[str, int] = {"none": 0, "optimizer": 3, "optimizer+params": 5}


@dataclass(frozen=True, kw_only=True, slots=True)
class Config:
    """One point of the search: every knob set."""

    goal: str
    devices: int
    batch: int
    length: int  # context (inference) or sequence (training)
    dtype: str | None = None  # inference weights
    kv_dtype: str | None = None
    recipe: str | None = None
    optimizer: str | None = None
    checkpointing: bool = False
    zero: int = 0
    offload: str = "none"  # none | optimizer | optimizer+params (ZeRO-Offload to CPU)
    lora_rank: int | None = None
    quality_loss: int = 0
    cost: int = 0

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"goal": self.goal, "devices": self.devices, "batch": self.batch}
        if self.goal == "inference":
            data.update(context=self.length, dtype=self.dtype, kv_dtype=self.kv_dtype or "bf16")
            data["tp"] = self.devices
        else:
            data.update(
                seq=self.length,
                recipe=self.recipe,
                optimizer=self.optimizer,
                checkpointing=self.checkpointing,
                zero=self.zero,
                offload=self.offload,
            )
            if self.goal != "train":
                data["lora_rank"] = self.lora_rank
        data.update(quality_loss=self.quality_loss, cost=self.cost)
        return data

    def label(self) -> str:
        if self.goal == "inference":
            parts = [f"{self.dtype} weights", f"{self.kv_dtype or 'bf16'} KV"]
            if self.devices > 1:
                parts.append(f"tp {self.devices}")
            parts += [f"batch {self.batch}", f"context {self.length:,}"]
        else:
            parts = [self.goal if self.goal != "train" else f"full {self.recipe}"]
            if self.lora_rank is not None:
                parts.append(f"r={self.lora_rank}")
            parts.append(str(self.optimizer))
            if self.checkpointing:
                parts.append("checkpointing")
            if self.devices > 1 or self.zero:
                parts.append(f"ZeRO-{self.zero} × {self.devices}")
            if self.offload != "none":
                parts.append(f"{self.offload} offloaded to CPU")
            parts += [f"batch {self.batch}", f"seq {self.length:,}"]
        return ", ".join(parts)


def workload(config: Config, request: PlanRequest) -> InferenceWorkload | TrainingWorkload:
    """The estimator's workload for ``config`` (with the request's overheads)."""
    if config.goal == "inference":
        return InferenceWorkload(
            batch=config.batch,
            context=config.length,
            dtype=config.dtype or "bf16",
            kv_dtype=config.kv_dtype,
            tp=config.devices,
            attention=request.attention,
            cuda_context_bytes=request.cuda_context_bytes,
            allocator_reserve=request.allocator_reserve,
        )
    return TrainingWorkload(
        batch=config.batch,
        seq=config.length,
        recipe=config.recipe or "amp-bf16",
        optimizer=config.optimizer or "adamw",
        optimizer_impl=request.optimizer_impl,
        checkpointing=config.checkpointing,
        attention=request.attention,
        method="full" if config.goal == "train" else config.goal,
        lora_rank=config.lora_rank or 16,
        lora_targets=request.lora_targets,
        qlora_scheme=request.qlora_scheme,
        zero=config.zero,
        offload_optimizer="cpu" if config.offload != "none" else "none",
        offload_param="cpu" if config.offload == "optimizer+params" else "none",
        devices=config.devices,
        cuda_context_bytes=request.cuda_context_bytes,
        allocator_reserve=request.allocator_reserve,
    )


def estimate(spec: ModelSpec, config: Config, request: PlanRequest) -> MemoryBreakdown:
    """The estimator's per-device breakdown for ``config``."""
    w = workload(config, request)
    if isinstance(w, InferenceWorkload):
        return estimate_inference(spec, w).breakdown
    return estimate_training(spec, w).breakdown


@dataclass(frozen=True, slots=True)
class PlanOption:
    config: Config
    verdict: FitVerdict
    value: int  # the objective's figure: context, batch, devices or quality loss

    @property
    def breakdown(self) -> MemoryBreakdown:
        return self.verdict.breakdown

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "label": self.config.label(),
            "value": self.value,
            **self.verdict.to_dict(),
            "breakdown": self.breakdown.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class Plan:
    model: str
    device: str
    goal: str
    objective: str
    max_devices: int
    device_bytes: int
    budget_bytes: int
    options: tuple[PlanOption, ...]
    searched: int  # configurations considered
    notes: tuple[str, ...] = field(default=())

    @property
    def best(self) -> PlanOption | None:
        return self.options[0] if self.options else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "device": self.device,
            "goal": self.goal,
            "objective": self.objective,
            "max_devices": self.max_devices,
            "device_bytes": self.device_bytes,
            "budget_bytes": self.budget_bytes,
            "fits": bool(self.options),
            "searched": self.searched,
            "options": [o.to_dict() for o in self.options],
            "notes": list(self.notes),
        }


def _counts(max_devices: int) -> tuple[int, ...]:
    """1, 2, 4, ... up to max_devices, and max_devices itself."""
    counts = []
    n = 1
    while n < max_devices:
        counts.append(n)
        n *= 2
    counts.append(max_devices)
    return tuple(counts)


class _Curve:
    """Peak bytes as a function of one knob (batch or length), memoized; memory grows with
    the knob, so the largest value within a budget is found exactly."""

    def __init__(self, f: Callable[[int], int]) -> None:
        self._f = f
        self.points: dict[int, int] = {}

    def at(self, x: int) -> int:
        y = self.points.get(x)
        if y is None:
            y = self.points[x] = self._f(x)
        return y

    def largest(self, budget: int, limit: int) -> int:
        """The largest x in [1, limit] with f(x) <= budget; 0 if f(1) > budget."""
        lo, hi = 0, limit + 1  # invariant: f(lo) fits (or lo = 0), f(hi) does not
        for x, y in self.points.items():
            if x <= limit:
                if y <= budget and x > lo:
                    lo = x
                elif y > budget and x < hi:
                    hi = x
        if lo == 0:
            if self.at(1) > budget:
                return 0
            lo = 1
        if hi == limit + 1:
            if self.at(limit) <= budget:
                return limit
            hi = limit
        bisect = False
        while hi - lo > 1:
            width = hi - lo
            if bisect:
                guess = (lo + hi) // 2
            else:
                y_lo, y_hi = self.at(lo), self.at(hi)
                step = (budget - y_lo) * width // max(1, y_hi - y_lo)
                guess = min(max(lo + step, lo + 1), hi - 1)
            if self.at(guess) <= budget:
                lo = guess
                if guess + 1 < hi and self.at(guess + 1) > budget:
                    hi = guess + 1
            else:
                hi = guess
                if guess - 1 > lo and self.at(guess - 1) <= budget:
                    lo = guess - 1
            bisect = hi - lo > width // 2  # interpolation stalled: bisect next
        return lo


class Planner:
    """Plans for one model; keeps its estimates, so plans for many devices share them."""

    def __init__(self, spec: ModelSpec, label: str | None = None) -> None:
        self.spec = spec
        self.label = label or spec.name
        self._curves: dict[tuple[Config, str, PlanRequest], _Curve] = {}
        self._totals: dict[tuple[Config, PlanRequest], int | None] = {}
        self.estimates = 0  # estimator calls made, for benchmarks

    # -- estimates ------------------------------------------------------------------------
    def _total(self, config: Config, request: PlanRequest) -> int | None:
        """Peak bytes per device, or None when the estimator refuses the configuration."""
        key = (config, _overheads(request))
        if key not in self._totals:
            self.estimates += 1
            try:
                self._totals[key] = estimate(self.spec, config, request).total_bytes
            except InvalidValueError:
                self._totals[key] = None
        return self._totals[key]

    def _curve(self, shape: Config, knob: str, request: PlanRequest) -> _Curve:
        key = (shape, knob, _overheads(request))
        curve = self._curves.get(key)
        if curve is None:

            def f(x: int) -> int:
                total = self._total(_with(shape, knob, x), request)
                return 2**62 if total is None else total

            curve = self._curves[key] = _Curve(f)
        return curve

    # -- the search space -----------------------------------------------------------------
    def shapes(self, request: PlanRequest, device: Accelerator | None) -> Iterable[Config]:
        """Every configuration the request leaves open, at the request's batch and length."""
        length = request.default_length(self.spec)
        fp8_ok = device is None or device.fp8_flops is not None
        if request.goal == "inference":
            weights = (
                ((request.dtype, _weight_loss(request.dtype)),)
                if request.dtype
                else tuple(w for w in WEIGHT_FORMATS if fp8_ok or w[0] != "fp8")
            )
            kvs = (
                ((request.kv_dtype, 1 if "fp8" in request.kv_dtype else 0),)
                if request.kv_dtype
                else tuple(k for k in KV_FORMATS if fp8_ok or k[0] != "fp8")
            )
            for count in _counts(request.max_devices):
                for dtype, q_w in weights:
                    for kv, q_kv in kvs:
                        yield Config(
                            goal="inference",
                            devices=count,
                            batch=request.batch,
                            length=length,
                            dtype=dtype,
                            kv_dtype=kv,
                            quality_loss=q_w + q_kv,
                        )
            return
        full = request.goal == "train"
        recipe = request.recipe or ("amp-bf16" if full else "pure-bf16")
        optimizers = (
            ((request.optimizer, dict(OPTIMIZERS).get(request.optimizer, 0)),)
            if request.optimizer
            else (OPTIMIZERS if full else OPTIMIZERS[:1])
        )
        checkpointing = (
            (request.checkpointing,) if request.checkpointing is not None else (False, True)
        )
        ranks: tuple[int | None, ...] = (
            (None,) if full else (request.lora_rank,) if request.lora_rank else LORA_RANKS
        )
        # the estimator shards model states by ZeRO only for full training; a LoRA run on
        # more devices is data parallel, each device holding the whole frozen base
        counts = _counts(request.max_devices) if full else (1,)
        for count in counts:
            for zero, offload in self._sharding(request, count, full):
                for optimizer, q_opt in optimizers:
                    for ckpt in checkpointing:
                        for rank in ranks:
                            q_rank = 0 if rank is None else _rank_loss(rank)
                            yield Config(
                                goal=request.goal,
                                devices=count,
                                batch=request.batch,
                                length=length,
                                # sharded or offloaded full training runs DeepSpeed's/FSDP's
                                # bf16 mode (the CLI's default there too)
                                recipe=(
                                    "mixed-bf16"
                                    if full and zero and request.recipe is None
                                    else recipe
                                ),
                                optimizer=optimizer,
                                checkpointing=ckpt,
                                zero=zero,
                                offload=offload,
                                lora_rank=rank,
                                quality_loss=q_opt + q_rank,
                                cost=(2 if ckpt else 0) + zero + _OFFLOAD_COST[offload],
                            )

    @staticmethod
    def _sharding(request: PlanRequest, count: int, full: bool) -> tuple[tuple[int, str], ...]:
        """(ZeRO stage, offload) pairs to try: sharding across several devices, and for full
        training ZeRO-Offload of the optimizer (stage 2) or of everything (stage 3) to CPU,
        which helps on one device too."""
        if request.zero is not None:
            stages: tuple[int, ...] = (request.zero,)
        else:
            stages = (0,) if count == 1 else (1, 2, 3)
        pairs = [(z, "none") for z in stages]
        if full and request.offload and request.zero in (None, 2, 3):
            if request.zero in (None, 2):
                pairs.append((2, "optimizer"))
            pairs.append((3, "optimizer+params"))
        return tuple(pairs)

    # -- the plan ------------------------------------------------------------------------
    def plan(
        self,
        device: Accelerator | None,
        request: PlanRequest,
        device_bytes: int | None = None,
        device_name: str | None = None,
    ) -> Plan:
        """The best few configurations on ``request.max_devices`` × ``device``, or on
        devices of ``device_bytes`` each (e.g. the free memory of a local device, which
        may not be in the catalogue: then fp8 formats are searched too)."""
        if device_bytes is None:
            if device is None:
                raise InvalidValueError("device", None, "give a device or its memory")
            device_bytes = device.budget_bytes
        memory = device_bytes
        name = device_name or (device.name if device is not None else "device")
        budget = fit_budget(memory, request.reserve)
        objective = request.chosen_objective
        limit_length = self.spec.context_length
        options: list[tuple[tuple[int, ...], PlanOption]] = []
        notes: list[str] = []
        searched = 0
        for shape in self.shapes(request, device):
            searched += 1
            if objective in ("context", "batch"):
                knob = "length" if objective == "context" else "batch"
                limit = limit_length if knob == "length" else MAX_BATCH[request.goal]
                value = self._curve(shape, knob, request).largest(budget, limit)
                if value == 0:
                    continue
                config = _with(shape, knob, value)
            else:
                total = self._total(shape, request)
                if total is None or total > budget:
                    continue
                config = shape
                value = shape.devices if objective == "devices" else shape.quality_loss
            verdict = fit_bytes(
                estimate(self.spec, config, request),
                memory,
                device=name,
                count=config.devices,
                reserve=request.reserve,
            )
            options.append(
                (_rank_key(objective, config, value, verdict), PlanOption(config, verdict, value))
            )
        options.sort(key=lambda item: item[0], reverse=True)
        if (
            request.goal == "inference"
            and device is not None
            and device.fp8_flops is None
            and not request.dtype
        ):
            notes.append(f"{name} has no fp8 matrix units: fp8 formats not searched")
        if request.goal in ("lora", "qlora"):
            notes.append(
                "LoRA/QLoRA plans are per device: the frozen base is not sharded (data parallel)"
            )
        if not options:
            notes.append(
                f"nothing searched fits {request.max_devices} × {name} "
                f"({budget:,} B per device after the safety reserve)"
            )
        return Plan(
            model=self.label,
            device=name,
            goal=request.goal,
            objective=objective,
            max_devices=request.max_devices,
            device_bytes=memory,
            budget_bytes=budget,
            options=tuple(o for _, o in options[: request.top]),
            searched=searched,
            notes=tuple(notes),
        )


def _with(config: Config, knob: str, value: int) -> Config:
    return replace(config, batch=value) if knob == "batch" else replace(config, length=value)


def _overheads(request: PlanRequest) -> PlanRequest:
    """The parts of a request an estimate depends on beyond its Config (a cache key)."""
    return replace(
        request,
        objective=None,
        max_devices=1,
        batch=1,
        length=None,
        dtype=None,
        kv_dtype=None,
        recipe=None,
        optimizer=None,
        checkpointing=None,
        zero=None,
        lora_rank=None,
        reserve=DEFAULT_RESERVE,
        top=1,
        goal=request.goal,
    )


def _weight_loss(dtype: str) -> int:
    key = dtype.lower()
    for name, loss in WEIGHT_FORMATS:
        if key == name:
            return loss
    if "4bit" in key or "nf4" in key or "fp4" in key or "q4" in key:
        return 4
    if key in ("fp32", "f32", "float32", "fp16", "f16", "bf16", "bfloat16", "float16"):
        return 0
    return 2


def _rank_loss(rank: int) -> int:
    return sum(1 for r in LORA_RANKS if r > rank)


def _rank_key(objective: str, config: Config, value: int, verdict: FitVerdict) -> tuple[int, ...]:
    """Larger is better."""
    tail = (-config.quality_loss, -config.devices, -config.cost, verdict.margin_bytes)
    if objective in ("context", "batch"):
        return (value, *tail)
    if objective == "devices":
        return (-config.devices, -config.quality_loss, -config.cost, verdict.margin_bytes)
    return tail


def plan(
    spec: ModelSpec,
    device: Accelerator | None,
    request: PlanRequest,
    device_bytes: int | None = None,
    device_name: str | None = None,
) -> Plan:
    """The best few configurations of ``spec`` on ``request.max_devices`` × ``device``."""
    return Planner(spec).plan(device, request, device_bytes, device_name)


def plan_devices(
    spec: ModelSpec, devices: Sequence[Accelerator], request: PlanRequest, label: str | None = None
) -> list[Plan]:
    """One plan per device, sharing the model's estimates."""
    planner = Planner(spec, label)
    return [planner.plan(d, request) for d in devices]


def largest_model(
    models: Sequence[tuple[str, ModelSpec, int]],
    device: Accelerator | None,
    request: PlanRequest,
    device_bytes: int | None = None,
    device_name: str | None = None,
) -> tuple[str, Plan] | None:
    """The model with the most parameters among ``(label, spec, params)`` that some
    configuration of ``request`` fits on ``request.max_devices`` × ``device``."""
    quick = replace(request, objective="quality", top=1)
    for label, spec, _ in sorted(models, key=lambda m: m[2], reverse=True):
        try:
            result = Planner(spec, label).plan(device, quick, device_bytes, device_name)
        except ModelMemError:
            continue  # the estimator cannot describe this architecture for the goal
        if result.options:
            return label, result
    return None

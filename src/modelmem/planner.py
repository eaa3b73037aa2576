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
from modelmem.hardware.fit import FitVerdict, check_count, fit_budget, fit_bytes
from modelmem.memory.breakdown import MemoryBreakdown
from modelmem.memory.inference import EngineSettings, InferenceWorkload, estimate_inference
from modelmem.memory.training import TrainingWorkload, estimate_training
from modelmem.model.spec import ModelSpec
from modelmem.vocabulary import DEFAULT_RESERVE, GOALS, OBJECTIVES

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

# weight scheme -> quality loss (ordinal); fp8 needs a device with fp8 matrix units
# Per engine: what it can load (vLLM: no bitsandbytes 8-bit in the search, AWQ for 4-bit;
# llama.cpp: GGUF file types)
WEIGHT_FORMATS: dict[str, tuple[tuple[str, int], ...]] = {
    "transformers": (
        ("bf16", 0),
        ("fp8", 1),
        ("bnb-int8", 1),
        ("awq-4bit-g128", 3),
        ("bnb-nf4", 4),
    ),
    "vllm": (("bf16", 0), ("fp8", 1), ("awq-4bit-g128", 3)),
    "llama.cpp": (
        ("gguf-f16", 0),
        ("gguf-q8_0", 1),
        ("gguf-q6_k", 1),
        ("gguf-q5_k_m", 2),
        ("gguf-q4_k_m", 3),
        ("gguf-q3_k_m", 4),
    ),
}
# None: the engine's default cache format for the weights
KV_FORMATS: dict[str, tuple[tuple[str | None, int], ...]] = {
    "transformers": ((None, 0), ("fp8", 1)),
    "vllm": ((None, 0), ("fp8", 1)),
    "llama.cpp": ((None, 0), ("q8_0", 1), ("q4_0", 2)),
}
OPTIMIZERS: tuple[tuple[str, int], ...] = (("adamw", 0), ("adamw-8bit", 1), ("adafactor", 2))
LORA_RANKS: tuple[int, ...] = (64, 32, 16, 8)
MAX_BATCH = {"inference": 4096, "train": 1024, "lora": 1024, "qlora": 1024}


@dataclass(frozen=True, kw_only=True, slots=True)
class PlanRequest:
    """What to plan for. ``base`` is the workload the user's options describe (built by
    the application layer exactly as `inference`/`train` build it); the knobs named in
    ``fixed`` keep its values, every other knob of the goal is searched."""

    goal: str = "inference"
    base: InferenceWorkload | TrainingWorkload
    settings: EngineSettings | None = None  # the engine's knobs (inference)
    fixed: frozenset[str] = frozenset()  # knobs the user set: dtype, kv_dtype, tp, ...
    objective: str | None = None  # default: context for inference, batch for training
    max_devices: int = 1  # devices available; the plan may use fewer
    offload: bool = True  # search ZeRO-Offload of optimizer (and parameters) to CPU
    reserve: Fraction = DEFAULT_RESERVE  # safety reserve of the fit verdict
    top: int = 5

    def __post_init__(self) -> None:
        check_choices(self, (("goal", GOALS),))
        if self.objective is not None:
            check_choices(self, (("objective", OBJECTIVES),))
        check_count(self.max_devices)
        if isinstance(self.top, bool) or not isinstance(self.top, int) or self.top < 1:
            raise InvalidValueError("top", self.top, "must be an integer >= 1")
        inference = isinstance(self.base, InferenceWorkload)
        if inference != (self.goal == "inference"):
            raise InvalidValueError("goal", self.goal, "does not match the workload")

    @property
    def chosen_objective(self) -> str:
        return self.objective or ("context" if self.goal == "inference" else "batch")

    @property
    def length(self) -> int:
        b = self.base
        return b.context if isinstance(b, InferenceWorkload) else b.seq

    def is_fixed(self, knob: str) -> bool:
        return knob in self.fixed


# Slowness the ranking charges: host round trips every step (optimizer on the CPU; with
# parameters, a fetch per layer and pass).
_OFFLOAD_COST: dict[str, int] = {
    "none": 0,
    "optimizer": 3,
    "optimizer+params": 5,
    "as-given": 0,
    "device-map": 3,  # one device busy at a time
}


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
            if (self.devices > 1 or self.zero) and self.offload != "device-map":
                parts.append(f"ZeRO-{self.zero} × {self.devices}")
            if self.offload == "device-map":
                parts.append(f"device_map auto over {self.devices}")
            elif self.offload == "as-given":
                parts.append("offloaded as given")
            elif self.offload != "none":
                parts.append(f"{self.offload} offloaded to CPU")
            parts += [f"batch {self.batch}", f"seq {self.length:,}"]
        return ", ".join(parts)


def workload(config: Config, request: PlanRequest) -> InferenceWorkload | TrainingWorkload:
    """The estimator's workload for ``config``: the request's base with the config's knobs."""
    base = request.base
    if isinstance(base, InferenceWorkload):
        prompt = None if base.prompt is None else min(base.prompt, config.length)
        return replace(
            base,
            batch=config.batch,
            context=config.length,
            prompt=prompt,
            dtype=config.dtype or base.dtype,
            kv_dtype=config.kv_dtype or base.kv_dtype,
            tp=config.devices,
            stored_weights=base.stored_weights if config.dtype == base.dtype else None,
        )
    if config.offload == "device-map":  # the layers split over the devices, in turn
        base = replace(base, pp=config.devices, naive_pipeline=True)
        config = replace(config, devices=1)
    return replace(
        base,
        batch=config.batch,
        seq=config.length,
        recipe=config.recipe or base.recipe,
        optimizer=config.optimizer or base.optimizer,
        checkpointing=config.checkpointing,
        selective_checkpointing=base.selective_checkpointing and not config.checkpointing,
        zero=config.zero,
        offload_optimizer=_OFFLOAD_OPTIMIZER[config.offload] or base.offload_optimizer,
        offload_param=_OFFLOAD_PARAM[config.offload] or base.offload_param,
        devices=config.devices,
        lora_rank=config.lora_rank or base.lora_rank,
    )


_OFFLOAD_OPTIMIZER = {
    "none": None,
    "optimizer": "cpu",
    "optimizer+params": "cpu",
    "as-given": None,
    "device-map": None,
}
_OFFLOAD_PARAM = {
    "none": None,
    "optimizer": None,
    "optimizer+params": "cpu",
    "as-given": None,
    "device-map": None,
}


def estimate(spec: ModelSpec, config: Config, request: PlanRequest) -> MemoryBreakdown:
    """The estimator's per-device breakdown for ``config``."""
    w = workload(config, request)
    if isinstance(w, InferenceWorkload):
        return estimate_inference(spec, w, request.settings).breakdown
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
        self._curves: dict[tuple[Config, str, int], _Curve] = {}
        self._totals: dict[tuple[Config, int], int | None] = {}
        self._requests: dict[int, PlanRequest] = {}  # keeps each keyed request alive
        self.estimates = 0  # estimator calls made, for benchmarks

    def _key(self, request: PlanRequest) -> int:
        """A cache key for what an estimate depends on beyond its Config: the base
        workload and the engine settings (the request is kept, so its id stays unique)."""
        key = id(request.base) ^ (id(request.settings) << 1)
        self._requests.setdefault(key, request)
        return key

    # -- estimates ------------------------------------------------------------------------
    def _total(self, config: Config, request: PlanRequest) -> int | None:
        """Peak bytes per device, or None when the estimator refuses the configuration."""
        key = (config, self._key(request))
        if key not in self._totals:
            self.estimates += 1
            try:
                self._totals[key] = estimate(self.spec, config, request).total_bytes
            except InvalidValueError:  # this configuration cannot be run: not searched
                self._totals[key] = None
        return self._totals[key]

    def _curve(self, shape: Config, knob: str, request: PlanRequest) -> _Curve:
        key = (shape, knob, self._key(request))
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
        if isinstance(request.base, InferenceWorkload):
            yield from self._inference_shapes(request, request.base, device)
        else:
            yield from self._training_shapes(request, request.base)

    def _inference_shapes(
        self, request: PlanRequest, base: InferenceWorkload, device: Accelerator | None
    ) -> Iterable[Config]:
        fp8_ok = device is None or device.fp8_flops is not None
        engine = base.engine
        if request.is_fixed("dtype") or base.stored_weights is not None:
            weights: tuple[tuple[str, int], ...] = ((base.dtype, _weight_loss(base.dtype)),)
        else:
            weights = tuple(
                w for w in WEIGHT_FORMATS[engine] if fp8_ok or not w[0].startswith("fp8")
            )
        if request.is_fixed("kv_dtype"):
            kvs: tuple[tuple[str, int], ...] = ((str(base.kv_dtype), _kv_loss(base.kv_dtype)),)
        else:
            kvs = tuple(
                (k or str(base.kv_dtype), q)
                for k, q in KV_FORMATS[engine]
                if fp8_ok or not (k or "").startswith("fp8")
            )
        counts = (base.tp,) if request.is_fixed("tp") else _tp_counts(self.spec, request, engine)
        for count in counts:
            for dtype, q_w in weights:
                for kv, q_kv in kvs:
                    yield Config(
                        goal="inference",
                        devices=count,
                        batch=base.batch,
                        length=request.length,
                        dtype=dtype,
                        kv_dtype=kv,
                        quality_loss=q_w + q_kv,
                    )

    def _training_shapes(self, request: PlanRequest, base: TrainingWorkload) -> Iterable[Config]:
        full = request.goal == "train"
        fixed = request.is_fixed
        optimizers = (
            ((base.optimizer, dict(OPTIMIZERS).get(base.optimizer, 0)),)
            if fixed("optimizer") or not full
            else OPTIMIZERS
        )
        checkpointing = (base.checkpointing,) if fixed("checkpointing") else (False, True)
        ranks: tuple[int | None, ...] = (
            (None,) if full else (base.lora_rank,) if fixed("lora_rank") else LORA_RANKS
        )
        per_replica = base.tp * base.pp
        if fixed("devices"):
            counts: tuple[int, ...] = (base.devices,)
        else:
            counts = _counts(max(1, request.max_devices // per_replica))
        for count in counts:
            for zero, offload in self._sharding(request, base, count, full):
                for optimizer, q_opt in optimizers:
                    for ckpt in checkpointing:
                        for rank in ranks:
                            q_rank = 0 if rank is None else _rank_loss(rank)
                            # sharded or offloaded full training runs DeepSpeed's/FSDP's
                            # bf16 mode (the train command's default there too)
                            for recipe, q_recipe in self._recipes(request, base, zero, offload):
                                yield Config(
                                    goal=request.goal,
                                    devices=count,
                                    batch=base.batch,
                                    length=request.length,
                                    recipe=recipe,
                                    optimizer=optimizer,
                                    checkpointing=ckpt,
                                    zero=zero,
                                    offload=offload,
                                    lora_rank=rank,
                                    quality_loss=q_opt + q_rank + q_recipe,
                                    cost=(2 if ckpt else 0) + zero + _OFFLOAD_COST[offload],
                                )

    @staticmethod
    def _recipes(
        request: PlanRequest, base: TrainingWorkload, zero: int, offload: str
    ) -> tuple[tuple[str, int], ...]:
        """Precision recipes to try: the one given, else the train command's default for
        the setup (mixed-bf16 when sharded or offloaded: DeepSpeed's/FSDP's bf16 mode;
        amp-bf16 otherwise) and, for full training, pure bf16 (no fp32 master copy: a
        quality cost the ranking charges)."""
        if request.is_fixed("recipe") or request.goal != "train":
            return ((base.recipe, 0),)
        default = "mixed-bf16" if zero or offload != "none" else "amp-bf16"
        return ((default, 0), ("pure-bf16", 1))

    def _raise_if_all_refused(self, request: PlanRequest, device: Accelerator | None) -> None:
        """When the estimator refuses every configuration (a fixed format the model cannot
        be stored in, say), that refusal is the answer, not "nothing fits"."""
        first: InvalidValueError | None = None
        for shape in self.shapes(request, device):
            try:
                estimate(self.spec, _with(shape, "batch", 1), request)
            except InvalidValueError as e:
                first = first or e
                continue
            return
        if first is not None:
            raise first

    @staticmethod
    def _sharding(
        request: PlanRequest, base: TrainingWorkload, count: int, full: bool
    ) -> tuple[tuple[int, str], ...]:
        """(ZeRO stage, offload) pairs to try: sharding across several devices, and for full
        training ZeRO-Offload of the optimizer (stage 2) or of everything (stage 3) to CPU,
        which helps on one device too."""
        if request.is_fixed("offload"):
            offloaded = base.offload_optimizer != "none" or base.offload_param != "none"
            return ((base.zero, "as-given" if offloaded else "none"),)
        if request.is_fixed("zero"):
            stages: tuple[int, ...] = (base.zero,)
        elif count == 1:
            stages = (0,)
        else:
            # LoRA: ZeRO-1/2 would shard only the adapters' small states; FSDP full-shard
            # (FSDP-QLoRA) and ZeRO-3 shard the frozen base too
            stages = (1, 2, 3) if full else (0, 3)
        pairs = [(z, "none") for z in stages]
        if not full and count > 1 and not request.is_fixed("zero") and base.pp == 1:
            pairs.append((0, "device-map"))  # transformers' device_map="auto"
        fixed_zero = base.zero if request.is_fixed("zero") else None
        if full and request.offload and fixed_zero in (None, 2, 3) and not base.fsdp:
            if fixed_zero in (None, 2):
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
            breakdown = estimate(self.spec, config, request)
            verdict = fit_bytes(
                breakdown,
                memory,
                device=name,
                count=breakdown.devices,  # data × tensor × pipeline parallel
                reserve=request.reserve,
            )
            options.append(
                (_rank_key(objective, config, value, verdict), PlanOption(config, verdict, value))
            )
        options.sort(key=lambda item: item[0], reverse=True)
        if not options:
            self._raise_if_all_refused(request, device)
        if (
            request.goal == "inference"
            and device is not None
            and device.fp8_flops is None
            and not request.is_fixed("dtype")
        ):
            notes.append(f"{name} has no fp8 matrix units: fp8 formats not searched")
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


def _tp_counts(spec: ModelSpec, request: PlanRequest, engine: str) -> tuple[int, ...]:
    """Tensor-parallel degrees to try: those that divide the attention heads (vLLM and
    Megatron refuse others), up to the devices available; llama.cpp has none."""
    if engine == "llama.cpp":
        return (1,)
    a = spec.attention
    return tuple(
        n
        for n in _counts(request.max_devices)
        if a is None
        or (a.num_heads % n == 0 and (a.num_kv_heads % n == 0 or n % a.num_kv_heads == 0))
    ) or (1,)


def _kv_loss(kv: str | None) -> int:
    key = (kv or "").lower()
    if key.startswith("fp8") or key == "q8_0":
        return 1
    return 2 if key.startswith(("q4", "q5", "iq4")) else 0


def _weight_loss(dtype: str) -> int:
    key = dtype.lower()
    for formats in WEIGHT_FORMATS.values():
        for name, loss in formats:
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
    request_for: Callable[[str, ModelSpec], PlanRequest],
    device_bytes: int | None = None,
    device_name: str | None = None,
) -> tuple[str, Plan] | None:
    """The model with the most parameters among ``(label, spec, params)`` that some
    configuration of its request (``request_for(label, spec)``) fits on
    ``request.max_devices`` × ``device``."""
    for label, spec, _ in sorted(models, key=lambda m: m[2], reverse=True):
        try:
            quick = replace(request_for(label, spec), objective="quality", top=1)
            result = Planner(spec, label).plan(device, quick, device_bytes, device_name)
        except ModelMemError:
            continue  # the estimator cannot describe this architecture for the goal
        if result.options:
            return label, result
    return None

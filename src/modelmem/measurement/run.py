"""Run a real training step or inference pass of a transformers architecture with fake
tensors (no data, no GPU, no weights) and report the exact live-tensor peak.

The architecture comes from the installed transformers (never from the Hub). Fake
tensors live on the CPU; the differences between CPU and CUDA that change memory are
emulated explicitly (see the project's measurement notes): SDPA on fake CPU already takes
the flash path (saves the output and a fp32 log-sum-exp), dropout is routed to
``native_dropout`` (a 1-byte mask, as on CUDA), the optimizer implementation is chosen
explicitly (CUDA defaults to ``foreach``), and transformers' mask helpers are told that a
fake tensor is not a trace, so an unpadded batch skips the ``(b, 1, s, s)`` mask as it
does with real tensors.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from modelmem import vocabulary
from modelmem.errors import InvalidValueError, check_choices, check_positive_ints
from modelmem.measurement.tracker import Allocation, Peak, StorageTracker, round_up
from modelmem.memory.breakdown import MemoryBreakdown, MemoryComponent

Mode = Literal["train", "inference"]
# What a measurement can run of the shared vocabulary: DeepSpeed's bf16 mode (mixed-bf16)
# needs its optimizer wrapper, and torch.optim has no Lion.
RECIPES = tuple(r for r in vocabulary.RECIPES if r != "mixed-bf16")
OPTIMIZERS = tuple(o for o in vocabulary.OPTIMIZERS if o != "lion")
OPTIMIZER_IMPLS = vocabulary.OPTIMIZER_IMPLS
ATTENTIONS = vocabulary.ATTENTIONS

# Category names of the measured breakdown, in display order, with what each holds.
CATEGORY_HOW: dict[str, str] = {
    "parameters": "measured: live storage of the model's parameters",
    "buffers": "measured: registered buffers (rotary tables, ...)",
    "inputs": "measured: token ids and labels",
    "gradients": "measured: parameter gradients (.grad) alive at the peak",
    "optimizer_state": "measured: optimizer state tensors alive at the peak",
    "kv_cache": "measured: the generation cache alive at the peak",
    "activations": "measured: tensors made in the forward pass and still alive (saved)",
    "logits_and_loss": "measured: logits, their fp32 copy and loss buffers alive at the peak",
    "backward_temporaries": "measured: other tensors made during backward and alive at the peak",
    "optimizer_temporaries": "measured: temporaries of the optimizer step alive at the peak",
    "other": "measured: other live tensors",
}


@dataclass(frozen=True, kw_only=True)
class MeasureSettings:
    mode: str = "train"  # "train" | "inference"
    batch: int = 1
    seq: int = 2048  # training sequence, or prompt length for inference
    decode_steps: int = 2
    recipe: str = "amp-bf16"
    optimizer: str = "adamw"
    optimizer_impl: str = "foreach"
    checkpointing: bool = False  # per layer
    selective_checkpointing: bool = False  # the attention core only (Korthikanti et al. §5)
    attention: str = "sdpa"
    lora_rank: int | None = None
    lora_targets: tuple[str, ...] | str | None = None
    dropout: float | None = None  # every dropout of the config set to this (None: as is)
    steps: int = 2
    fake: bool = True

    def __post_init__(self) -> None:
        check_positive_ints(self, ("batch", "seq", "steps"), 2**24)
        if self.decode_steps < 0:
            raise InvalidValueError("decode_steps", self.decode_steps, "must be >= 0")
        check_choices(
            self,
            (
                ("mode", ("train", "inference")),
                ("recipe", RECIPES),
                ("optimizer", OPTIMIZERS),
                ("optimizer_impl", OPTIMIZER_IMPLS),
                ("attention", ATTENTIONS),
            ),
        )
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            raise InvalidValueError("dropout", self.dropout, "must be in [0, 1)")
        if self.lora_rank is not None and self.lora_rank < 1:
            raise InvalidValueError("lora_rank", self.lora_rank, "must be >= 1")
        if self.checkpointing and self.selective_checkpointing:
            raise InvalidValueError(
                "selective_checkpointing", True, "choose per-layer or selective checkpointing"
            )


@dataclass
class Measurement:
    """A measured peak, its composition, and where it happened."""

    settings: MeasureSettings
    breakdown: MemoryBreakdown
    peak_rounded_bytes: int  # with each storage rounded up to CUDA's 512-byte blocks
    peak_phase: str
    peak_op: str
    phase_peaks: dict[str, int]  # per phase ("step1.backward"), the largest of its regions
    trainable_params: int
    total_params: int
    seconds: float
    notes: list[str] = field(default_factory=list)
    # Per region of a phase (``step1.backward`` up to the first gradient of a decoder
    # layer, then ``step1.backward/layer{i}`` from the first gradient of layer i): peak
    # bytes, composition, CUDA-rounded bytes and op at the peak. The layer extrapolation
    # needs them: where in backward the peak sits moves with depth.
    region_peaks: dict[str, int] = field(default_factory=dict, repr=False)
    phase_compositions: dict[str, MemoryBreakdown] = field(default_factory=dict, repr=False)
    phase_peaks_rounded: dict[str, int] = field(default_factory=dict, repr=False)
    phase_ops: dict[str, str] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.breakdown.to_dict(),
            "mode": self.settings.mode,
            "fake": self.settings.fake,
            "peak_rounded_bytes": self.peak_rounded_bytes,
            "peak_phase": self.peak_phase,
            "peak_op": self.peak_op,
            "phase_peaks": self.phase_peaks,
            "trainable_params": self.trainable_params,
            "total_params": self.total_params,
            "seconds": round(self.seconds, 3),
            "notes": self.notes,
        }


# ------------------------------------------------------------------ environment patches


@contextlib.contextmanager
def _gpu_faithful_patches() -> Iterator[None]:
    """Emulate CUDA memory behaviour on fake CPU tensors for the duration of a run."""
    import torch.nn.functional as F
    from transformers import masking_utils
    from transformers.integrations import moe

    original_dropout = F.dropout
    utils: Any = masking_utils  # patched module attributes, restored on exit
    original_is_tracing = utils.is_tracing
    original_packed = masking_utils.find_packed_sequence_indices
    original_grouped = moe._can_use_grouped_mm

    def dropout(
        input: torch.Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
    ) -> torch.Tensor:
        # CUDA saves a bool mask (aten.native_dropout); CPU's F.dropout keeps a noise tensor.
        if not training or p == 0.0:
            return input
        return torch.native_dropout(input, p, training)[0]

    def is_tracing(tensor: Any = None) -> bool:
        # A fake tensor is not a trace: let an unpadded batch skip the dense mask.
        return False

    def no_packed_sequences(position_ids: Any) -> None:
        # Positions are 0..s-1 in every row of an unpadded batch: nothing is packed.
        return None

    def can_use_grouped_mm(input: torch.Tensor, weight: torch.Tensor, offs: torch.Tensor) -> bool:
        # torch's grouped_mm meta kernel takes bf16 only; other dtypes go through
        # transformers' fallback op, whose registered fake and autograd save the same
        # tensors (input, weight, offsets) and return the same output.
        return weight.dtype == torch.bfloat16 and bool(original_grouped(input, weight, offs))

    F.dropout = dropout
    moe._can_use_grouped_mm = can_use_grouped_mm
    utils.is_tracing = is_tracing
    masking_utils.find_packed_sequence_indices = no_packed_sequences
    try:
        yield
    finally:
        F.dropout = original_dropout
        utils.is_tracing = original_is_tracing
        masking_utils.find_packed_sequence_indices = original_packed
        moe._can_use_grouped_mm = original_grouped


def _fake_mode(fake: bool) -> contextlib.AbstractContextManager[Any]:
    if not fake:
        return contextlib.nullcontext()
    from torch._subclasses.fake_tensor import FakeTensorMode

    return FakeTensorMode(allow_non_fake_inputs=True)


# ------------------------------------------------------------------------ model and step


def _model_dtype(recipe: str) -> torch.dtype:
    return {"pure-bf16": torch.bfloat16, "pure-fp16": torch.float16}.get(recipe, torch.float32)


def _autocast(recipe: str) -> contextlib.AbstractContextManager[Any]:
    if recipe == "amp-bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    if recipe == "amp-fp16":
        return torch.autocast("cpu", dtype=torch.float16)
    return contextlib.nullcontext()


def build_config(config: dict[str, Any], attention: str, dropout: float | None = None) -> Any:
    """A transformers config from a config.json mapping, with GPU-faithful settings (and
    every dropout probability set to ``dropout`` when it is given)."""
    import transformers

    from modelmem.memory.training import DROPOUT_KEYS

    cfg_dict = {k: v for k, v in config.items() if k not in ("auto_map", "quantization_config")}
    model_type = cfg_dict.pop("model_type")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cfg = transformers.AutoConfig.for_model(model_type, **cfg_dict)
    if dropout is not None:
        # every probability the config defines, its defaults included
        for name in {k for site in DROPOUT_KEYS.values() for k in site}:
            for sub in (cfg, getattr(cfg, "text_config", None)):
                if sub is not None and isinstance(getattr(sub, name, None), int | float):
                    setattr(sub, name, dropout)
    if attention == "sdpa":
        # GPU flash attention saves no dropout mask; CPU SDPA with dropout falls back to
        # the math path, so attention dropout is set to 0 to keep the flash behaviour.
        for name in DROPOUT_KEYS["attention"]:
            for sub in (cfg, getattr(cfg, "text_config", None)):
                value: Any = getattr(sub, name, None)
                if sub is not None and value:
                    setattr(sub, name, 0.0)
    cfg.use_cache = False
    return cfg


ENCODERS = ("bert",)


def _model_class(model_type: str, mode: str) -> Any:
    import transformers

    if model_type == "gemma3":
        return transformers.Gemma3ForConditionalGeneration
    if model_type in ENCODERS:
        # the class modelmem counts for an encoder config (its architectures: the masked-LM
        # model), in both modes; it infers without a cache
        return transformers.AutoModelForMaskedLM
    return transformers.AutoModelForCausalLM


def _build_model(config: dict[str, Any], settings: MeasureSettings, notes: list[str]) -> Any:
    cfg = build_config(config, settings.attention, settings.dropout)
    cls = _model_class(config["model_type"], settings.mode)
    kwargs: dict[str, Any] = {"dtype": _model_dtype(settings.recipe)}
    if _is_moe(cfg):
        # Under fake tensors the eager experts loop needs data-dependent shapes; the
        # grouped_mm kernel computes the same tensors without them.
        kwargs["experts_implementation"] = "grouped_mm"
    attention = (
        settings.attention if config["model_type"] not in ("mamba", "falcon_mamba") else None
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return _instantiate(cls, cfg, attention, kwargs)
        except ValueError as e:
            if attention != "sdpa" or "does not support an attention implementation" not in str(e):
                raise
    notes.append(
        "transformers has no SDPA path for this architecture (softcapping or sinks): measured "
        "eager attention, which keeps b·heads·s² scores; flash kernels with that feature keep less"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _instantiate(cls, cfg, "eager", kwargs)


def _instantiate(cls: Any, cfg: Any, attention: str | None, kwargs: dict[str, Any]) -> Any:
    if attention is not None:
        kwargs = {**kwargs, "attn_implementation": attention}
    if hasattr(cls, "_from_config"):
        return cls._from_config(cfg, **kwargs)
    return cls.from_config(cfg, **kwargs)


def _is_moe(cfg: Any) -> bool:
    text = getattr(cfg, "text_config", cfg)
    return any(
        getattr(text, name, 0) not in (0, None)
        for name in ("num_local_experts", "num_experts", "n_routed_experts")
    )


def _optimizer(
    params: list[torch.nn.Parameter], settings: MeasureSettings
) -> torch.optim.Optimizer:
    impl: dict[str, Any] = {
        "foreach": {"foreach": True},
        "fused": {"fused": True},
        "for-loop": {"foreach": False},
    }[settings.optimizer_impl]
    name = settings.optimizer
    if name == "adamw-8bit":
        return _adamw_8bit(params)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=1e-4, **impl)
    if name == "adam":
        return torch.optim.Adam(params, lr=1e-4, **impl)
    if name in ("sgd", "sgd-momentum"):
        return torch.optim.SGD(
            params, lr=1e-4, momentum=0.9 if name == "sgd-momentum" else 0.0, **impl
        )
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=1e-4, **impl)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=1e-4, **impl)
    impl.pop("fused", None)
    return torch.optim.Adafactor(params, lr=1e-2, **impl)


def _adamw_8bit(params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """bitsandbytes' blockwise 8-bit AdamW, its real step on fake tensors.

    Its update kernels are custom ops with registered fake kernels, so ``step()`` runs
    and allocates the states itself (uint8 m and v with an fp32 absmax per 256-value
    block; 32-bit states for tensors under ``min_8bit_size``). Only its two 256-entry
    quantization maps are built from data (``tolist``), so the optimizer is made outside
    fake mode: the maps are real (2 KiB).
    """
    try:
        from bitsandbytes import optim as bnb_optim
    except ImportError as e:
        raise InvalidValueError(
            "optimizer", "adamw-8bit", "8-bit AdamW measurement needs bitsandbytes"
        ) from e
    from torch._subclasses.fake_tensor import unset_fake_temporarily

    with unset_fake_temporarily():
        adamw8bit: Any = bnb_optim.AdamW8bit  # type: ignore[attr-defined]
        optimizer: torch.optim.Optimizer = adamw8bit(params, lr=1e-4)
    return optimizer


def _apply_lora(model: Any, settings: MeasureSettings) -> Any:
    try:
        import peft
    except ImportError as e:
        raise InvalidValueError(
            "lora_rank", settings.lora_rank, "LoRA measurement needs peft"
        ) from e
    targets: Any = settings.lora_targets
    if isinstance(targets, str) and targets != "all-linear":
        targets = [targets]
    config = peft.LoraConfig(r=settings.lora_rank or 8, lora_alpha=16, target_modules=targets)
    return peft.get_peft_model(model, config)


def _cache_tensors(cache: Any, depth: int = 0) -> list[torch.Tensor]:
    """Every tensor held by a transformers cache object (KV or recurrent state)."""
    if isinstance(cache, torch.Tensor):
        return [cache]
    if depth > 4 or cache is None:
        return []
    if isinstance(cache, list | tuple):
        return [t for item in cache for t in _cache_tensors(item, depth + 1)]
    if hasattr(cache, "__dict__"):
        return [t for v in vars(cache).values() for t in _cache_tensors(v, depth + 1)]
    return []


def _default_category(a: Allocation) -> str:
    phase = a.phase.split(REGION_MARK)[0].rsplit(".", 1)[-1]
    return {
        "forward": "activations",
        "prefill": "activations",
        "decode": "activations",
        "loss": "logits_and_loss",
        "backward": "backward_temporaries",
        "optimizer": "optimizer_temporaries",
        "zero_grad": "optimizer_temporaries",
    }.get(phase, "other")


REGION_MARK = "/layer"  # phase + REGION_MARK + layer index: a backward region


def coarse_phase(region: str) -> str:
    """The phase a region belongs to (``step1.backward/layer3`` -> ``step1.backward``)."""
    return region.split(REGION_MARK)[0]


def region_layer(region: str) -> int | None:
    """The decoder layer whose first gradient opened ``region``, if any."""
    _, mark, index = region.partition(REGION_MARK)
    return int(index) if mark else None


def decoder_layers(model: Any) -> list[Any]:
    """The decoder layers of the text stack: the ModuleList as long as the config's layer
    count (a vision tower's list is skipped)."""
    count = model.config.get_text_config().num_hidden_layers
    for name, module in model.named_modules():
        is_list = isinstance(module, torch.nn.ModuleList)
        if is_list and len(module) == count and "vision" not in name:
            return list(module)
    return []


def _grad_hook(tracker: StorageTracker, layer: int | None) -> Any:
    """Categorize a gradient; the first gradient of a decoder layer in backward opens its
    region (layers run backward from the last, so a lower index is a new region)."""

    def hook(p: torch.Tensor) -> None:
        if p.grad is not None:
            tracker.categorize([p.grad], "gradients")
        phase = coarse_phase(tracker.phase)
        if layer is None or not phase.endswith(".backward"):
            return
        current = region_layer(tracker.phase)
        if current is None or layer < current:
            tracker.set_phase(f"{phase}{REGION_MARK}{layer}")

    return hook


def _train(model: Any, tracker: StorageTracker, settings: MeasureSettings, vocab: int) -> None:
    trainable = [p for p in model.parameters() if p.requires_grad]
    layer_of = {id(p): i for i, m in enumerate(decoder_layers(model)) for p in m.parameters()}
    for p in trainable:
        p.register_post_accumulate_grad_hook(_grad_hook(tracker, layer_of.get(id(p))))
    optimizer = _optimizer(trainable, settings)
    ids = torch.zeros(settings.batch, settings.seq, dtype=torch.long)
    labels = torch.zeros(settings.batch, settings.seq, dtype=torch.long)
    tracker.adopt([ids, labels], "setup", "inputs")
    model.train()
    encoder = model.config.model_type in ENCODERS
    for step in range(settings.steps):
        tracker.set_phase(f"step{step}.forward")
        with _autocast(settings.recipe):
            if encoder:
                logits = model(input_ids=ids).logits
            else:
                logits = model(input_ids=ids, use_cache=False).logits
            tracker.set_phase(f"step{step}.loss")
            loss = model.loss_function(logits=logits, labels=labels, vocab_size=vocab)
        del logits
        tracker.set_phase(f"step{step}.backward")
        loss.backward()
        del loss
        tracker.set_phase(f"step{step}.optimizer")
        optimizer.step()
        tracker.set_phase(f"step{step}.zero_grad")
        optimizer.zero_grad(set_to_none=True)
        states = [
            t for s in optimizer.state.values() for t in s.values() if isinstance(t, torch.Tensor)
        ]
        tracker.categorize(states, "optimizer_state")


def _infer(model: Any, tracker: StorageTracker, settings: MeasureSettings) -> None:
    prompt = torch.zeros(settings.batch, settings.seq, dtype=torch.long)
    token = torch.zeros(settings.batch, 1, dtype=torch.long)
    tracker.adopt([prompt, token], "setup", "inputs")
    model.eval()
    if model.config.model_type in ENCODERS:
        with torch.no_grad(), _autocast(settings.recipe):
            tracker.set_phase("prefill")
            out = model(input_ids=prompt)
            del out
        return
    with torch.no_grad(), _autocast(settings.recipe):
        tracker.set_phase("prefill")
        # logits_to_keep=1: generate() computes logits of the last position only.
        out = model(input_ids=prompt, use_cache=True, logits_to_keep=1)
        cache_key, cache = _cache_of(out)
        tracker.categorize(_cache_tensors(cache), "kv_cache")
        del out
        for _ in range(settings.decode_steps):
            tracker.set_phase("decode")
            out = model(input_ids=token, use_cache=True, logits_to_keep=1, **{cache_key: cache})
            cache_key, cache = _cache_of(out)
            tracker.categorize(_cache_tensors(cache), "kv_cache")
            del out


def _cache_of(output: Any) -> tuple[str, Any]:
    """The generation cache an output carries: a KV cache, or a state-space model's state."""
    for key in ("past_key_values", "cache_params"):
        cache = getattr(output, key, None)
        if cache is not None:
            return key, cache
    raise InvalidValueError("mode", "inference", "this architecture returned no generation cache")


def _enable_checkpointing(model: Any) -> None:
    """Per-layer, non-reentrant checkpointing (the API was renamed in transformers 5)."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


@contextlib.contextmanager
def _selective_recomputation() -> Iterator[None]:
    """Selective activation recomputation (Korthikanti et al. 2022, arXiv:2205.05198, §5):
    every attention function transformers looks up (SDPA, or the model's eager
    ``QKᵀ → softmax → dropout → ·V``) runs under non-reentrant ``torch.utils.checkpoint``,
    so only its inputs (q, k, v, mask) are saved and the core is recomputed in backward;
    everything else in the layer is saved as without checkpointing."""
    from torch.utils.checkpoint import checkpoint
    from transformers.modeling_utils import AttentionInterface

    interface: Any = AttentionInterface
    original = interface.get_interface

    def get_interface(self: Any, implementation: str, default: Any) -> Any:
        core = original(self, implementation, default)

        def recomputed(
            module: Any,
            query: torch.Tensor,
            key: torch.Tensor,
            value: torch.Tensor,
            attention_mask: torch.Tensor | None,
            **kwargs: Any,
        ) -> tuple[torch.Tensor, None]:
            def run(
                q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None
            ) -> torch.Tensor:
                return core(module, q, k, v, mask, **kwargs)[0]  # type: ignore[no-any-return]

            out = checkpoint(run, query, key, value, attention_mask, use_reentrant=False)
            return out, None  # the probabilities are not kept

        return recomputed

    interface.get_interface = get_interface
    try:
        yield
    finally:
        interface.get_interface = original


def measure(config: dict[str, Any], settings: MeasureSettings) -> Measurement:
    """Measure the live-tensor peak of ``settings`` for the architecture in ``config``."""
    started = time.perf_counter()
    notes: list[str] = []
    torch.manual_seed(0)
    # The module tree is built on the meta device (no initialisation cost) and adapters are
    # added there; its tensors are then made real or fake, uninitialised: values never
    # change which tensors a step allocates.
    with torch.device("meta"):
        model = _build_model(config, settings, notes)
        if settings.mode == "train" and settings.lora_rank:
            model = _apply_lora(model, settings)
    with _gpu_faithful_patches(), _fake_mode(settings.fake):
        model.to_empty(device="cpu")
        model.tie_weights()  # to_empty makes a new tensor per module; restore shared weights
        if settings.mode == "inference":
            model.requires_grad_(False)
        if settings.checkpointing and settings.mode == "train":
            _enable_checkpointing(model)
            if settings.lora_rank:
                model.enable_input_require_grads()
        total = sum(p.numel() for p in model.parameters())
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        tracker = StorageTracker()
        tracker.adopt(model.parameters(), "setup", "parameters")
        tracker.adopt(model.buffers(), "setup", "buffers")
        vocab = model.config.get_text_config().vocab_size
        selective = settings.selective_checkpointing and settings.mode == "train"
        with tracker, _selective_recomputation() if selective else contextlib.nullcontext():
            if settings.mode == "train":
                _train(model, tracker, settings, vocab)
            else:
                _infer(model, tracker, settings)
    peak = tracker.peak
    components = _components(tracker, peak)
    phase_peaks: dict[str, int] = {}
    for name, p in tracker.phase_peaks.items():
        phase_peaks[coarse_phase(name)] = max(p.bytes, phase_peaks.get(coarse_phase(name), 0))
    if settings.recipe.startswith("amp"):
        notes.append(
            "autocast keeps a 16-bit copy of each weight from forward until backward uses it"
        )
    return Measurement(
        settings=settings,
        breakdown=MemoryBreakdown(components, notes=tuple(notes)),
        peak_rounded_bytes=peak.rounded_bytes,
        peak_phase=coarse_phase(peak.phase),
        peak_op=peak.op,
        phase_peaks=phase_peaks,
        trainable_params=trainable,
        total_params=total,
        seconds=time.perf_counter() - started,
        notes=notes,
        region_peaks={name: p.bytes for name, p in tracker.phase_peaks.items()},
        phase_compositions={
            name: MemoryBreakdown(_components(tracker, p))
            for name, p in tracker.phase_peaks.items()
        },
        phase_peaks_rounded={name: p.rounded_bytes for name, p in tracker.phase_peaks.items()},
        phase_ops={name: p.op for name, p in tracker.phase_peaks.items()},
    )


def _components(tracker: StorageTracker, peak: Peak) -> tuple[MemoryComponent, ...]:
    parts = tracker.composition(peak, _default_category)
    return tuple(
        MemoryComponent(name, parts[name], CATEGORY_HOW[name])
        for name in CATEGORY_HOW
        if parts.get(name)
    )


__all__ = ["MeasureSettings", "Measurement", "Peak", "measure", "round_up"]

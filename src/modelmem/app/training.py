"""Training questions: a request and a model in, the estimate's JSON out.

The defaults that depend on the setup are decided here, once: the method (LoRA for an
adapter or when a LoRA option is given), the recipe (amp-bf16; mixed-bf16 under
ZeRO/FSDP/offload, DeepSpeed's bf16 mode; pure-bf16 for LoRA/QLoRA), the LoRA rank and
targets (the adapter's, else the default), the loss, FSDP's mapping onto ZeRO stages and
the DeepSpeed config merged over the options.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

from modelmem.app.models import adapter_json
from modelmem.app.requests import TrainRequest
from modelmem.errors import InvalidValueError
from modelmem.vocabulary import (
    BNB_STOPPED_SAVING_INPUTS,
    DEFAULT_LORA_RANK,
    DEFAULT_LOSS_CHUNKS,
    FSDP_TO_ZERO,
)

__all__ = ["PreparedTraining", "prepare_training", "train_json"]


@dataclass(frozen=True, slots=True)
class PreparedTraining:
    model: Any
    request: TrainRequest
    workload: Any  # TrainingWorkload
    budget_bytes: int | None
    notes: tuple[str, ...]


def _targets(text: str | None) -> tuple[str, ...] | str | None:
    if not text:
        return None
    return "all-linear" if text == "all-linear" else tuple(t.strip() for t in text.split(","))


def _merge_deepspeed(request: TrainRequest) -> tuple[TrainRequest, list[str]]:
    """The request with the values a DeepSpeed config sets (``"auto"`` keeps the option)."""
    from modelmem.memory.deepspeed import parse_deepspeed_config

    config = request.deepspeed
    if config is None:
        return request, []
    if request.fsdp:
        raise InvalidValueError("deepspeed", "config", "DeepSpeed and --fsdp exclude each other")
    if isinstance(config, str):  # a path (the command line): read with bounds
        from modelmem.model.sources.deepspeed_file import read_deepspeed_config

        config = read_deepspeed_config(config)
    settings = parse_deepspeed_config(config, data_parallel=request.devices)
    taken = settings.options()
    shown = ", ".join(f"{k}={v}" for k, v in taken.items()) or "nothing (all auto)"
    merged = replace(request, **taken, given=request.given | frozenset(taken))
    return merged, [f"from the DeepSpeed config: {shown}", *settings.notes]


def _bnb_saves_inputs(version: str) -> bool:
    """Whether this bitsandbytes release saved MatMul4Bit's input for backward."""
    parts = version.strip().split(".")
    try:
        numbers = tuple(int(p) for p in parts[:3])
    except ValueError:
        raise InvalidValueError("bnb_version", version, "must look like 0.45.0") from None
    if not 1 <= len(parts) <= 4 or len(numbers) < 2:
        raise InvalidValueError("bnb_version", version, "must look like 0.45.0")
    return numbers + (0,) * (3 - len(numbers)) < BNB_STOPPED_SAVING_INPUTS


def _device_map(request: TrainRequest, method: str) -> tuple[TrainRequest, list[str]]:
    """device_map="auto": the devices hold consecutive layers (accelerate's naive model
    parallelism), priced as pipeline stages with one micro-batch in flight."""
    if method == "full":
        raise InvalidValueError(
            "device_map", "auto", "is for LoRA/QLoRA here (full training: --zero/--fsdp/--pp)"
        )
    if request.pp > 1 or request.tp > 1 or request.zero or request.fsdp:
        raise InvalidValueError(
            "device_map", "auto", "splits the layers itself: without --pp, --tp, --zero, --fsdp"
        )
    devices = request.devices
    split = replace(request, pp=devices, devices=1, given=request.given)
    return split, [
        f"device_map='auto': the layers split over {devices} device(s), one busy at a time "
        "(the most loaded one priced)"
    ]


def _method(model: Any, request: TrainRequest) -> tuple[str, list[str]]:
    if request.method is not None:
        return request.method, []
    if model.adapter is not None:
        return "lora", []
    lora = [n for n in TrainRequest.LORA_OPTIONS if request.is_given(n)]
    if lora:
        flag = "--" + lora[0].replace("_", "-")
        return "lora", [f"method lora ({flag} given without --method)"]
    return "full", []


def _recipe(request: TrainRequest, method: str, offload: str) -> tuple[str, list[str]]:
    if request.recipe is not None:
        return request.recipe, []
    sharded = request.zero > 0 or request.fsdp is not None or offload != "none"
    # DeepSpeed's bf16 mode and FSDP's MixedPrecision keep 16-bit parameters for compute
    # beside the fp32 master (mixed-bf16); plain PyTorch training uses autocast.
    recipe = "pure-bf16" if method != "full" else "mixed-bf16" if sharded else "amp-bf16"
    return recipe, [f"recipe {recipe} (the default for this setup; --recipe to change)"]


def _lora(model: Any, request: TrainRequest, method: str) -> tuple[int, Any, bool, list[str]]:
    """Rank, targets and DoRA: the request's, else the adapter's, else the defaults."""
    adapter = model.adapter
    rank, targets, dora = request.lora_rank, _targets(request.lora_targets), request.dora
    notes: list[str] = []
    if adapter is not None and method != "full":
        rank = adapter.rank if rank is None else rank
        dora = dora or adapter.dora
        if targets is None and not adapter.targets_regex and adapter.targets:
            targets = adapter.targets
        if not adapter.uniform:
            notes.append(
                "the adapter uses per-module ranks, layer subsets, a regex, extra trainable "
                "modules or biases: the memory terms assume rank "
                f"{rank} on its named targets; trainable_params_adapter is exact"
            )
    return (DEFAULT_LORA_RANK if rank is None else rank), targets, dora, notes


def prepare_training(model: Any, request: TrainRequest) -> PreparedTraining:
    """The training workload ``request`` asks of ``model``."""
    from modelmem.memory.training import TrainingWorkload, dropout_of
    from modelmem.units import parse_bytes

    request, ds_notes = _merge_deepspeed(request)
    offload_optimizer, offload_param = request.offload_optimizer, request.offload_param
    if request.fsdp_offload:
        if request.fsdp != "full-shard":
            raise InvalidValueError(
                "fsdp_offload", True, f"modelled with fsdp full-shard, not {request.fsdp}"
            )
        offload_optimizer = offload_param = "cpu"
    method, notes = _method(model, request)
    if request.device_map == "auto":
        request, map_notes = _device_map(request, method)
        notes = [*notes, *map_notes]
    if method == "qlora" and not (
        request.is_given("checkpointing") or request.selective_checkpointing
    ):
        # peft.prepare_model_for_kbit_training turns gradient checkpointing on by default
        request = replace(request, checkpointing=True, given=request.given)
        notes.append(
            "gradient checkpointing on, as PEFT's prepare_model_for_kbit_training sets it up "
            "for QLoRA (--no-checkpointing to price it off)"
        )
    rank, targets, dora, lora_notes = _lora(model, request, method)
    recipe, recipe_notes = _recipe(request, method, offload_optimizer)
    loss = request.loss or ("chunked" if request.loss_chunks else "full")
    saves_inputs = _bnb_saves_inputs(request.bnb_version)
    if method == "qlora":
        notes = [
            *notes,
            f"bitsandbytes {request.bnb_version}: 4-bit Linears "
            + ("keep their inputs for backward" if saves_inputs else "keep no input")
            + " (--bnb-version; releases before 0.43.2 kept them)",
        ]
    workload = TrainingWorkload(
        batch=request.batch,
        seq=request.seq,
        recipe=recipe,
        optimizer=request.optimizer,
        optimizer_impl=request.optimizer_impl,
        checkpointing=request.checkpointing,
        selective_checkpointing=request.selective_checkpointing,
        attention=request.attention,
        grad_accumulation=request.grad_accumulation,
        method=method,
        lora_rank=rank,
        lora_targets=targets,
        dora=dora,
        qlora_scheme=request.qlora_scheme,
        zero=FSDP_TO_ZERO[request.fsdp] if request.fsdp else request.zero,
        devices=request.devices,
        fsdp=request.fsdp is not None,
        offload_optimizer=offload_optimizer,
        offload_param=offload_param,
        nodes=request.nodes,
        zero_init=request.zero_init,
        tp=request.tp,
        pp=request.pp,
        sp=request.sp,
        paged_optimizer=request.paged_optimizer,
        optimizer_in_backward=request.optimizer_in_backward,
        loss=loss,
        loss_chunks=request.loss_chunks or DEFAULT_LOSS_CHUNKS,
        bnb_saves_inputs=saves_inputs,
        naive_pipeline=request.device_map == "auto",
        dropout=dropout_of(getattr(model, "config", None), request.dropout),
        cuda_context_bytes=parse_bytes(request.cuda_context, field="cuda_context"),
        allocator_reserve=Fraction(request.allocator_reserve).limit_denominator(10_000),
    )
    budget = None if request.memory is None else parse_bytes(request.memory, field="memory")
    all_notes = (*notes, *lora_notes, *recipe_notes, *ds_notes)
    return PreparedTraining(model, request, workload, budget, all_notes)


def train_json(prepared: PreparedTraining, budget_bytes: int | None = None) -> dict[str, Any]:
    """What `train --json` prints."""
    from modelmem.formats import get_format
    from modelmem.memory.rules import rule_of_thumb
    from modelmem.memory.training import estimate_training

    model, workload = prepared.model, prepared.workload
    est = estimate_training(model.spec, workload)
    rule = rule_of_thumb(model.params.total, get_format("fp32"))
    data: dict[str, Any] = {
        "source": model.label,
        "method": workload.method,
        "recipe": workload.recipe,
        "batch": workload.batch,
        "seq": workload.seq,
        **est.breakdown.to_dict(),
        "peak_moment": est.peak_moment,
        "moments": est.moments,
        "trainable_params": est.trainable_params,
        "rule_of_thumb": {
            "inference_bytes": rule.inference_bytes,
            "training_bytes": rule.training_bytes,
            "format": "fp32",
            "optimizer": "adamw",
        },
        "zero": workload.zero,
        "grad_accumulation": workload.grad_accumulation,
        "optimizer": workload.optimizer,
        "checkpointing": workload.checkpointing,
        "checkpointing_mode": workload.checkpoint_mode,
        "loss": workload.loss,
        "parallel": {
            "dp": workload.devices,
            "tp": workload.tp,
            "pp": workload.pp,
            "sp": workload.sp,
            "nodes": workload.nodes,
        },
        "total_devices": est.total_devices,
        "stage": est.stage,
        "stage_peaks": est.stage_peaks,
        "offloaded": [o.to_dict() for o in est.offloaded],
        "host_bytes_per_device": est.off_device_bytes("cpu"),
        "host_bytes": est.per_node_bytes("cpu"),
        "nvme_bytes": est.per_node_bytes("nvme"),
    }
    if workload.method != "full":
        data["lora_rank"] = workload.lora_rank
    if workload.loss == "chunked":
        data["loss_chunks"] = workload.loss_chunks
    if est.deepspeed_estimator is not None:
        data["deepspeed_estimator"] = est.deepspeed_estimator
    data["notes"][:0] = [*model.notes, *prepared.notes]
    if model.adapter is not None:
        data["adapter"] = adapter_json(model)
        data["trainable_params_adapter"] = data["adapter"]["trainable_params"]
    budget = budget_bytes if budget_bytes is not None else prepared.budget_bytes
    if budget is not None:
        data["memory_bytes"] = budget
        data["fits"] = est.breakdown.total_bytes <= budget
        data["margin_bytes"] = budget - est.breakdown.total_bytes
        if not data["fits"]:
            data["changes"] = training_changes(prepared, budget)
    return data


def training_price(model: Any) -> Any:
    """A request's peak bytes per device, as :func:`train_json` prices it."""
    from modelmem.memory.training import estimate_training

    def price(request: TrainRequest) -> int:
        workload = prepare_training(model, request).workload
        return int(estimate_training(model.spec, workload).breakdown.total_bytes)

    return price


def training_changes(prepared: PreparedTraining, budget: int) -> Any:
    """The single changes that make this step fit ``budget`` (see app/changes)."""
    from modelmem.app.changes import changes_for

    w = prepared.workload
    return changes_for(
        prepared.request,
        training_price(prepared.model),
        budget,
        method=w.method,
        count=w.total_devices,
    )

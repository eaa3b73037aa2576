"""Many devices: ZeRO / FSDP sharding of model states, offload, tensor and pipeline parallel.

ZeRO (Rajbhandari et al. 2019, arXiv:1910.02054 §5): with ``N_d`` data-parallel ranks,
stage 1 shards optimizer states, stage 2 also gradients, stage 3 also parameters; FSDP
``SHARD_GRAD_OP`` ≈ stage 2, ``FULL_SHARD`` ≈ stage 3, ``NO_SHARD`` ≈ DDP.

DeepSpeed's own estimators are reproduced exactly (integer semantics included) from
``deepspeed/runtime/zero/stage_1_and_2.py`` ``estimate_zero2_model_states_mem_needs`` and
``stage3.py`` ``estimate_zero3_model_states_mem_needs`` (DeepSpeed 0.19): they count
model states only — no activations, no CUDA context.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from math import ceil

from modelmem.errors import InvalidValueError
from modelmem.model.params import EMBEDDING, LM_HEAD, NORMS, POSITIONS, ParamTensor
from modelmem.model.spec import ModelSpec


def shard(nbytes: int, devices: int) -> int:
    """One rank's part of a tensor set split evenly over ``devices`` (rounded up)."""
    return ceil(nbytes / devices)


def zero_model_states(
    weights: int, grads: int, states: int, stage: int, devices: int
) -> tuple[int, int, int]:
    """(weights, gradients, optimizer states) held by one rank at ZeRO ``stage``."""
    if stage not in (0, 1, 2, 3):
        raise InvalidValueError("zero", stage, "must be 0, 1, 2 or 3")
    if devices < 1:
        raise InvalidValueError("devices", devices, "must be >= 1")
    return (
        shard(weights, devices) if stage >= 3 else weights,
        shard(grads, devices) if stage >= 2 else grads,
        shard(states, devices) if stage >= 1 else states,
    )


def estimate_zero2_model_states_mem_needs(
    total_params: int,
    num_gpus_per_node: int = 1,
    num_nodes: int = 1,
    cpu_offload: bool = True,
    additional_buffer_factor: float = 1.5,
) -> tuple[int, int]:
    """(cpu_bytes, gpu_bytes) exactly as DeepSpeed's ZeRO-2 estimator computes them."""
    total_gpus = num_nodes * num_gpus_per_node
    if cpu_offload:
        gpu_mem = 2 * total_params
        cpu_mem = total_params * max(4 * total_gpus, 16) * additional_buffer_factor
    else:
        # 2 = fp16 params; 18 = fp16 grads 2 + fp32 grads 4 + fp32 params 4 + Adam states 8
        gpu_mem = 2 * total_params + int(18 * total_params / total_gpus)
        cpu_mem = total_params * 4 * num_gpus_per_node * additional_buffer_factor
    return int(cpu_mem), int(gpu_mem)


def estimate_zero3_model_states_mem_needs(
    total_params: int,
    largest_layer_params: int,
    num_gpus_per_node: int = 1,
    num_nodes: int = 1,
    cpu_offload: bool = True,
    cpu_offload_params: bool = True,
    zero_init: bool = True,
    additional_buffer_factor: float = 1.5,
) -> tuple[int, int, int]:
    """(cpu_bytes, gpu_bytes, largest_layer_bytes) exactly as DeepSpeed's ZeRO-3
    estimator computes them."""
    total_gpus = num_nodes * num_gpus_per_node
    gpus_factor = 1 / num_nodes
    largest_layer_memory = 4 * largest_layer_params
    if cpu_offload:
        if cpu_offload_params:
            gpu_mem = largest_layer_memory
            per = 18 * gpus_factor if zero_init else max(4 * num_gpus_per_node, 18 * gpus_factor)
        else:
            gpu_mem = largest_layer_memory + int(2 * total_params / total_gpus)
            per = 16 * gpus_factor if zero_init else max(4 * num_gpus_per_node, 16 * gpus_factor)
        cpu_mem = total_params * per * additional_buffer_factor
    else:
        gpu_mem = largest_layer_memory + int(18 * total_params / total_gpus)
        cpu_mem = (
            (largest_layer_params if zero_init else total_params)
            * 4
            * num_gpus_per_node
            * additional_buffer_factor
        )
    return int(cpu_mem), int(gpu_mem), largest_layer_memory


def largest_layer_params(numels: list[int]) -> int:
    """DeepSpeed's ``largest_layer_params``: the largest module's parameters (often the
    embedding)."""
    return max(numels) if numels else 0


def largest_module_params(tensors: Iterable[ParamTensor]) -> int:
    """DeepSpeed's ``largest_layer_params`` from a tensor inventory: the most parameters one
    module holds directly (``m.parameters(recurse=False)``: weight + bias), as its
    ``model_to_params`` counts them — for most LLMs the embedding."""
    per_module: dict[str, int] = {}
    for t in tensors:
        per_module[t.module] = per_module.get(t.module, 0) + t.numel_each
    return max(per_module.values(), default=0)


# ------------------------------------------------------------- tensor / pipeline parallel


@dataclass(frozen=True, slots=True)
class PipelineStage:
    """What one device of a tensor × pipeline parallel group holds.

    ``tensors`` are this device's parameter tensors (tensor-parallel ones cut along their
    first dimension), ``layers`` the decoder layers of the stage, ``in_flight`` the
    micro-batches whose activations the stage keeps at once under 1F1B, ``head`` whether
    the stage computes the output layer and the loss, ``embedding`` the input embedding.
    """

    name: str
    tensors: tuple[ParamTensor, ...]
    layers: int
    in_flight: int
    head: bool
    embedding: bool


def check_model_parallel(spec: ModelSpec, tp: int, pp: int) -> None:
    """Megatron's constraints: tp divides the query heads (and the KV heads, or the KV
    heads are replicated: tp a multiple of them) and the MLP width; pp ≤ layers."""
    a = spec.attention
    if a is not None and a.num_heads % tp:
        raise InvalidValueError("tp", tp, f"must divide the {a.num_heads} attention heads")
    if a is not None and a.num_kv_heads % tp and tp % a.num_kv_heads:
        raise InvalidValueError(
            "tp", tp, f"must divide the {a.num_kv_heads} KV heads or be a multiple of them"
        )
    if spec.mlp is not None and spec.mlp.intermediate_size % tp:
        raise InvalidValueError("tp", tp, f"must divide the MLP width {spec.mlp.intermediate_size}")
    if pp > spec.num_layers:
        raise InvalidValueError("pp", pp, f"more stages than the {spec.num_layers} layers")


def _tp_cut(t: ParamTensor, tp: int) -> ParamTensor:
    """A tensor-parallel weight (Linear, expert, vocabulary embedding) cut along its first
    dimension (column- and row-parallel cuts hold the same count); norms, biases and other
    vectors replicated. The vocabulary is cut as ⌈V/t⌉ rows (Megatron pads V)."""
    if tp == 1 or t.role not in ("linear", "expert", "embedding") or len(t.shape) < 2:
        return t
    if t.component == POSITIONS:
        return t
    return replace(t, shape=(ceil(t.shape[0] / tp), *t.shape[1:]))


def _in_layers(t: ParamTensor, first: int, stop: int) -> ParamTensor | None:
    kept = tuple(i for i in t.layers if first <= i < stop)
    return replace(t, layers=kept) if kept else None


def pipeline_stages(
    tensors: tuple[ParamTensor, ...],
    num_layers: int,
    tp: int,
    pp: int,
    micro_batches: int,
) -> tuple[PipelineStage, ...]:
    """The device(s) to price: the whole model cut by ``tp`` when ``pp`` = 1, else the first
    and the last pipeline stage.

    Layers are split as evenly as possible, the first stages taking one more
    (``⌈L/p⌉`` on the first, ``⌊L/p⌋`` on the last). The first stage holds the input
    embedding (and any vision tower), the last the final norm and the output layer — with
    tied embeddings a copy of the embedding matrix, as Megatron keeps one on both ends.
    Under 1F1B the first stage keeps ``min(p, m)`` micro-batches of activations in
    flight, the last one (Narayanan et al. 2021, arXiv:2104.04473 §2.2; Korthikanti et al.
    2022, arXiv:2205.05198 §4.2.3).
    """
    cut = tuple(_tp_cut(t, tp) for t in tensors)
    if pp == 1:
        return (PipelineStage("all", cut, num_layers, 1, True, True),)
    first_n = ceil(num_layers / pp)
    last_n = num_layers // pp
    first: list[ParamTensor] = []
    last: list[ParamTensor] = []
    tied = not any(t.component == LM_HEAD and t.role == "linear" for t in tensors)
    for t in cut:
        if t.layers:
            for out, lo, hi in (
                (first, 0, first_n),
                (last, num_layers - last_n, num_layers),
            ):
                kept = _in_layers(t, lo, hi)
                if kept is not None:
                    out.append(kept)
        elif t.component == LM_HEAD or (t.component == NORMS and t.role == "norm"):
            last.append(t)
        else:
            first.append(t)
            if tied and t.component == EMBEDDING and t.role == "embedding":
                last.append(t)
    return (
        PipelineStage("first", tuple(first), first_n, min(pp, micro_batches), False, True),
        PipelineStage("last", tuple(last), last_n, 1, True, tied),
    )

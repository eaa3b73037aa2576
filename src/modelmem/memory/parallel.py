"""Many devices: ZeRO / FSDP sharding of model states.

ZeRO (Rajbhandari et al. 2019, arXiv:1910.02054 §5): with ``N_d`` data-parallel ranks,
stage 1 shards optimizer states, stage 2 also gradients, stage 3 also parameters; FSDP
``SHARD_GRAD_OP`` ≈ stage 2, ``FULL_SHARD`` ≈ stage 3, ``NO_SHARD`` ≈ DDP.

DeepSpeed's own estimators are reproduced exactly (integer semantics included) from
``deepspeed/runtime/zero/stage_1_and_2.py`` ``estimate_zero2_model_states_mem_needs`` and
``stage3.py`` ``estimate_zero3_model_states_mem_needs`` (DeepSpeed 0.19): they count
model states only — no activations, no CUDA context.
"""

from __future__ import annotations

from math import ceil

from modelmem.errors import InvalidValueError

FSDP_TO_ZERO: dict[str, int] = {"no-shard": 0, "shard-grad-op": 2, "full-shard": 3}


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

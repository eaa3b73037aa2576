"""Write safetensors checkpoints for tests: real small files, and large-shaped ones as
sparse files (a real header, the data region a hole) so an 8B or 405B checkpoint costs
no disk and no memory.

The header is built as the safetensors format defines it (8-byte little-endian length,
JSON padded with spaces to 8 bytes, contiguous data offsets) and checked by the
``safetensors`` library's own reader in the tests that use it.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Mapping
from math import prod
from pathlib import Path
from typing import Any

from modelmem.model.params import tensor_inventory
from modelmem.model.spec import ModelSpec

BITS = {"F32": 32, "F16": 16, "BF16": 16, "I32": 32, "I8": 8, "U8": 8, "F8_E4M3": 8, "I64": 64}

Tensors = Mapping[str, tuple[str, tuple[int, ...]]]  # name -> (dtype, shape)


def write_sparse_safetensors(
    path: Path, tensors: Tensors, metadata: dict[str, str] | None = None
) -> int:
    """A valid safetensors file whose data is a hole; returns the data bytes."""
    header: dict[str, Any] = {"__metadata__": metadata or {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        size = prod(shape) * BITS[dtype] // 8
        header[name] = {
            "dtype": dtype,
            "shape": list(shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        f.truncate(8 + len(raw) + offset)
    return offset


def write_sharded(folder: Path, tensors: Tensors, shards: int) -> None:
    """``model-0000k-of-0000n.safetensors`` shards and their index, as transformers names them."""
    names = list(tensors)
    weight_map: dict[str, str] = {}
    total = 0
    for k in range(shards):
        shard = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
        chosen = names[k * len(names) // shards : (k + 1) * len(names) // shards]
        part = {n: tensors[n] for n in chosen}
        total += write_sparse_safetensors(folder / shard, part)
        weight_map.update(dict.fromkeys(part, shard))
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))


def checkpoint_tensors(
    spec: ModelSpec, dtype: str = "BF16"
) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Every parameter of ``spec`` under its transformers name, one entry per layer."""
    out: dict[str, tuple[str, tuple[int, ...]]] = {}
    for t in tensor_inventory(spec):
        for i in t.layers or (None,):
            name = t.name if i is None else t.name.replace("{i}", str(i))
            out[name] = (dtype, t.shape)
    return out


def gptq_tensors(
    spec: ModelSpec, bits: int, group: int, quantized: Iterable[str]
) -> dict[str, tuple[str, tuple[int, ...]]]:
    """GPTQ packing (AutoGPTQ QuantLinear) of the Linear weights whose module leaf is in
    ``quantized``: qweight int32 [in·b/32, out], qzeros int32 [in/g, out·b/32], scales fp16
    [in/g, out], g_idx int32 [in]; everything else fp16."""
    leaves = set(quantized)
    out: dict[str, tuple[str, tuple[int, ...]]] = {}
    for name, (_, shape) in checkpoint_tensors(spec).items():
        module, _, leaf_param = name.rpartition(".")
        if leaf_param == "weight" and module.rsplit(".", 1)[-1] in leaves:
            d_out, d_in = shape
            out[f"{module}.qweight"] = ("I32", (d_in * bits // 32, d_out))
            out[f"{module}.qzeros"] = ("I32", (d_in // group, d_out * bits // 32))
            out[f"{module}.scales"] = ("F16", (d_in // group, d_out))
            out[f"{module}.g_idx"] = ("I32", (d_in,))
        else:
            out[name] = ("F16", shape)
    return out

"""DeepSpeed config (ds_config.json) → training options: values, "auto", bad values."""

from __future__ import annotations

from typing import Any

import pytest

from modelmem.errors import InvalidValueError
from modelmem.memory.deepspeed import parse_deepspeed_config

# the ZeRO-3 offload config of the transformers DeepSpeed docs, "auto" values included
ZERO3_OFFLOAD: dict[str, Any] = {
    "fp16": {"enabled": "auto"},
    "bf16": {"enabled": True},
    "optimizer": {"type": "AdamW", "params": {"lr": "auto"}},
    "zero_optimization": {
        "stage": 3,
        "offload_optimizer": {"device": "cpu", "pin_memory": True},
        "offload_param": {"device": "nvme", "nvme_path": "/local_nvme"},
        "overlap_comm": True,
        "stage3_gather_16bit_weights_on_model_save": True,
    },
    "gradient_accumulation_steps": "auto",
    "train_batch_size": "auto",
    "train_micro_batch_size_per_gpu": 4,
    "steps_per_print": 2000,
    "wall_clock_breakdown": False,
}


def test_zero3_offload_config_is_read() -> None:
    s = parse_deepspeed_config(ZERO3_OFFLOAD)
    assert s.options() == {
        "zero": 3,
        "offload_optimizer": "cpu",
        "offload_param": "nvme",
        "recipe": "mixed-bf16",
        "batch": 4,
        "optimizer": "adamw",
    }


def test_auto_and_absent_values_leave_the_options_alone() -> None:
    s = parse_deepspeed_config(
        {
            "zero_optimization": {"stage": "auto"},
            "bf16": {"enabled": "auto"},
            "train_micro_batch_size_per_gpu": "auto",
            "gradient_checkpointing": "auto",
        }
    )
    assert s.options() == {}


def test_fp16_is_priced_as_mixed_precision_and_says_so() -> None:
    s = parse_deepspeed_config({"fp16": {"enabled": True}, "zero_optimization": {"stage": 2}})
    assert s.recipe == "mixed-bf16" and s.zero == 2 and "fp16" in s.notes[0]


def test_neither_half_precision_is_fp32() -> None:
    s = parse_deepspeed_config({"fp16": {"enabled": False}, "bf16": {"enabled": False}})
    assert s.recipe == "fp32"


def test_accumulation_from_train_batch_size() -> None:
    # 256 = micro-batch 4 × accumulation 8 × 8 ranks
    config = {"train_batch_size": 256, "train_micro_batch_size_per_gpu": 4}
    assert parse_deepspeed_config(config, data_parallel=8).grad_accumulation == 8


def test_checkpointing_key() -> None:
    assert parse_deepspeed_config({"gradient_checkpointing": True}).checkpointing is True


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"zero_optimization": {"stage": 4}}, "zero_optimization.stage"),
        ({"zero_optimization": {"stage": "3"}}, "zero_optimization.stage"),
        (
            {"zero_optimization": {"stage": 3, "offload_optimizer": {"device": "gpu"}}},
            "zero_optimization.offload_optimizer.device",
        ),
        (
            {"zero_optimization": {"stage": 2, "offload_param": {"device": "cpu"}}},
            "zero_optimization.offload_param.device",
        ),
        (
            {"zero_optimization": {"stage": 0, "offload_optimizer": {"device": "cpu"}}},
            "zero_optimization.offload_optimizer.device",
        ),
        ({"zero_optimization": []}, "zero_optimization"),
        ({"bf16": {"enabled": "yes"}}, "bf16.enabled"),
        ({"bf16": {"enabled": True}, "fp16": {"enabled": True}}, "fp16.enabled"),
        ({"train_micro_batch_size_per_gpu": 0}, "train_micro_batch_size_per_gpu"),
        ({"gradient_accumulation_steps": 1.5}, "gradient_accumulation_steps"),
        (
            {
                "train_batch_size": 100,
                "train_micro_batch_size_per_gpu": 4,
                "gradient_accumulation_steps": 8,
            },
            "train_batch_size",
        ),
        ({"optimizer": {"type": "OneBitLamb"}}, "optimizer.type"),
        ({"gradient_checkpointing": "on"}, "gradient_checkpointing"),
        ([1, 2], "deepspeed config"),
    ],
)
def test_bad_values_name_the_key(config: Any, key: str) -> None:
    with pytest.raises(InvalidValueError) as err:
        parse_deepspeed_config(config)
    assert err.value.field == key
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------- reading the file


def test_read_deepspeed_config_reads_a_file(tmp_path: Any) -> None:
    from modelmem.model.sources.deepspeed_file import read_deepspeed_config

    path = tmp_path / "ds.json"
    path.write_text('{"zero_optimization": {"stage": 3}}')
    assert read_deepspeed_config(path) == {"zero_optimization": {"stage": 3}}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nested too deeply"),
        (b'{"train_batch_size": ' + b"9" * 5000 + b"}", "4,300 digits"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"a": "\xff"}', "not UTF-8"),
        (b"{zero: 3}", "not JSON"),
        (b" " * ((1 << 20) + 1), "over 1,048,576 bytes"),
    ],
)
def test_read_deepspeed_config_refuses_in_one_line(
    tmp_path: Any, content: bytes, message: str
) -> None:
    from modelmem.errors import SourceError
    from modelmem.model.sources.deepspeed_file import read_deepspeed_config

    path = tmp_path / "ds.json"
    path.write_bytes(content)
    with pytest.raises(SourceError, match=message) as info:
        read_deepspeed_config(path)
    assert "\n" not in str(info.value)


def test_read_deepspeed_config_refuses_devices_and_folders(tmp_path: Any) -> None:
    from modelmem.errors import SourceError
    from modelmem.model.sources.deepspeed_file import read_deepspeed_config

    for path in ("/dev/zero", str(tmp_path)):
        with pytest.raises(SourceError, match="not a regular file"):
            read_deepspeed_config(path)
    with pytest.raises(SourceError, match="cannot read"):
        read_deepspeed_config(tmp_path / "missing.json")

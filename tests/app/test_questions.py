"""The questions people ask most, answered with the defaults people use, and what to
change when the answer is no."""

from __future__ import annotations

import json
from typing import Any

import pytest

import modelmem
from modelmem.cli import main


def _json(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, Any]:
    code = main([*args, "--json"])
    out, err = capsys.readouterr()
    assert code in (0, 1), err
    return code, json.loads(out)


def test_qlora_checkpoints_as_prepare_model_for_kbit_training_does(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["train", "mistral-7b-v0.3", "--method", "qlora", "--lora-rank", "16"]
    _, on = _json([*args, "--lora-targets", "all-linear"], capsys)
    _, off = _json([*args, "--lora-targets", "all-linear", "--no-checkpointing"], capsys)
    assert on["checkpointing"] is True and off["checkpointing"] is False
    assert any("prepare_model_for_kbit_training" in n for n in on["notes"])
    assert on["total_bytes"] < off["total_bytes"]
    # and it fits a 24 GB card that way
    code, fit = _json(["fit", "mistral-7b-v0.3", "--device", "RTX4090", *args[2:]], capsys)
    assert code == 0 and fit["fits"] is True


def test_a_lora_option_alone_means_lora_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    _, data = _json(["train", "llama-3.1-8b", "--lora-rank", "16"], capsys)
    assert data["method"] == "lora" and data["lora_rank"] == 16
    assert any("--lora-rank given without --method" in n for n in data["notes"])
    _, full = _json(["train", "llama-3.1-8b"], capsys)
    assert full["method"] == "full" and data["trainable_params"] < full["trainable_params"]


def test_fit_exit_code_is_the_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", "llama-3.1-8b", "--device", "H100-SXM"]) == 0
    assert main(["fit", "llama-3.1-70b", "--device", "RTX4090"]) == 1
    assert main(["fit", "llama-3.1-70b", "--device", "nope"]) == 2
    capsys.readouterr()


def test_what_to_change_is_priced_by_the_estimate_itself(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, data = _json(["fit", "llama-3.1-8b", "--device", "h100", "--mode", "train"], capsys)
    assert code == 1 and data["fits"] is False
    changes = {c["change"]: c for c in data["changes"]}
    assert changes and all(c["total_bytes"] < data["total_bytes"] for c in changes.values())
    fitting = [c for c in data["changes"] if c["fits"]]
    assert fitting and data["changes"][: len(fitting)] == fitting  # those that fit first
    # each change, applied, gives the total it promised
    lora = changes["--method lora"]
    _, applied = _json(["fit", "llama-3.1-8b", "--device", "h100", "--method", "lora"], capsys)
    assert applied["total_bytes"] == lora["total_bytes"] and applied["fits"] is lora["fits"]
    offload = changes["--zero 2 --offload-optimizer cpu"]
    result = modelmem.fit(
        "llama-3.1-8b", device="h100", mode="train", zero=2, offload_optimizer="cpu"
    )
    assert result.total_bytes == offload["total_bytes"]


def test_inference_changes_with_a_budget(capsys: pytest.CaptureFixture[str]) -> None:
    _, data = _json(
        ["inference", "llama-3.1-8b", "--context", "131072", "--memory", "24GiB"], capsys
    )
    assert data["fits"] is False
    by_change = {c["change"]: c for c in data["changes"]}
    shorter = next(c for c in by_change if c.startswith("--context "))
    context = int(shorter.split()[1])
    assert context == data["max_context"] and by_change[shorter]["fits"]
    _, at = _json(["inference", "llama-3.1-8b", "--context", str(context)], capsys)
    assert at["total_bytes"] == by_change[shorter]["total_bytes"]


def test_tp_must_divide_the_heads(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inference", "llama-3.1-8b", "--tp", "3"]) == 2
    err = capsys.readouterr().err
    assert "tp=3" in err and "32 attention heads" in err


def test_options_of_another_engine_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inference", "llama-3.1-8b", "--gpu-layers", "10"]) == 2
    assert "llama.cpp option" in capsys.readouterr().err
    assert (
        main(["fit", "llama-3.1-8b", "--device", "h100", "--mode", "inference", "--seq", "8"]) == 2
    )
    assert "training option" in capsys.readouterr().err


def test_shipped_formats_are_the_default_and_said(capsys: pytest.CaptureFixture[str]) -> None:
    _, oss = _json(["inference", "gpt-oss-20b"], capsys)
    assert oss["dtype"] == "mxfp4" and any("shipped" in n for n in oss["notes"])
    _, bf16 = _json(["inference", "gpt-oss-20b", "--dtype", "bf16"], capsys)
    assert oss["weights_bytes"] < bf16["weights_bytes"] / 2
    # served by vLLM (MXFP4 kernels), it fits a 24 GB card at 8k; transformers' eager
    # attention (no SDPA path for its attention sinks) does not
    args = ["fit", "gpt-oss-20b", "--device", "RTX4090", "--context", "8192"]
    code, fit = _json([*args, "--engine", "vllm"], capsys)
    assert code == 0 and fit["fits"] and fit["dtype"] == "mxfp4"
    code, eager = _json(args, capsys)
    assert code == 1 and any(c["fits"] for c in eager["changes"])


def test_fsdp_qlora_shards_the_frozen_base(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train", "llama-2-70b", "--method", "qlora", "--seq", "512", "--fsdp", "full-shard"]
    _, one = _json([*args, "--devices", "1"], capsys)
    _, two = _json([*args, "--devices", "2"], capsys)
    weights = {d["parallel"]["dp"]: c["bytes"] for d in (one, two) for c in d["components"]
               if c["name"] == "weights"}  # fmt: skip
    # half the base per rank, plus one gathered unit (a decoder layer or the embedding)
    assert weights[1] / 2 < weights[2] < weights[1] * 0.6
    # and the planner finds FSDP-QLoRA of a 70B model on two 24 GB cards
    _, plan = _json(
        ["plan", "llama-2-70b", "--device", "RTX4090", "--count", "2", "--goal", "qlora",
         "--seq", "512"],
        capsys,
    )  # fmt: skip
    sharded = [o for o in plan["options"] if o["config"]["zero"] == 3]
    assert sharded and all(o["config"]["devices"] == 2 and o["fits"] for o in sharded)


@pytest.mark.parametrize("tp", [1, 2, 4, 8])
def test_tensor_parallel_shards_the_mlp_and_heads_not_the_stream(
    tp: int, capsys: pytest.CaptureFixture[str]
) -> None:
    _, data = _json(["inference", "llama-3.1-70b", "--context", "8192", "--tp", str(tp)], capsys)
    act = next(c["bytes"] for c in data["components"] if c["name"] == "activations")
    # the MLP peak of the prefill: 2 B × 8192 tokens × (4h stream + 3·I/tp gated MLP), plus
    # the last position's logits (2 B × vocab); h = 8192, I = 28672, vocab 128,256
    assert act == 2 * 8192 * (4 * 8192 + 3 * 28672 // tp) + 2 * 128256


def test_llama_cpp_on_two_gpus_splits_the_layers(capsys: pytest.CaptureFixture[str]) -> None:
    # "Can I run Llama-3.1-70B Q4_K_M on two RTX 4090s at 8k?"
    args = ["fit", "llama-3.1-70b", "--device", "RTX4090", "--dtype", "gguf-q4_k_m",
            "--context", "8192", "--engine", "llama.cpp"]  # fmt: skip
    code, two = _json([*args, "--count", "2"], capsys)
    assert code == 0 and two["fits"] and two["host_layers"] == 0
    assert len(two["device_loads"]) == 2
    assert two["total_bytes"] == max(d["total_bytes"] for d in two["device_loads"])
    # on one card llama.cpp keeps layers on the host: its own verdict, never plain "fits"
    code, one = _json(args, capsys)
    assert code == 1 and not one["fits"] and one["host_layers"] > 0
    assert "layers on the host" in one["offload_verdict"]


def test_vllm_says_when_it_would_refuse_to_start(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["inference", "qwen2.5-7b", "--engine", "vllm", "--context", "131072"]
    _, small = _json([*args, "--memory", "24GiB"], capsys)
    assert small["fits"] is False and small["max_context"] < 131072
    assert small["kv_pool_tokens"] > 0 and small["max_concurrency"] < 1
    assert any("would refuse to start" in n for n in small["notes"])
    _, big = _json([*args, "--memory", "80GiB"], capsys)
    assert big["fits"] is True and big["max_context"] >= 131072


def test_bitsandbytes_before_0_43_2_kept_the_4bit_inputs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["train", "llama-2-7b", "--method", "qlora", "--no-checkpointing", "--seq", "1024"]
    _, old = _json([*args, "--bnb-version", "0.41.1"], capsys)
    _, new = _json(args, capsys)
    _, fixed = _json([*args, "--bnb-version", "0.43.2"], capsys)
    # one 16-bit copy per layer of the q/k/v input (h), the MLP input (h) and the down
    # projection's input (I): 2 B × 1024 tokens × 32 layers × (2·4096 + 11008)
    assert old["total_bytes"] - new["total_bytes"] >= 2 * 1024 * 32 * (2 * 4096 + 11008)
    assert fixed["total_bytes"] == new["total_bytes"]
    assert any("bitsandbytes 0.41.1" in n for n in old["notes"])
    assert main([*args, "--bnb-version", "latest"]) == 2
    assert "bnb_version" in capsys.readouterr().err


def test_device_map_auto_splits_the_layers_one_busy_at_a_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["train", "llama-2-70b", "--method", "qlora", "--seq", "512", "--device-map", "auto"]
    _, one = _json([*args, "--devices", "1"], capsys)
    _, two = _json([*args, "--devices", "2"], capsys)
    weights = [next(c["bytes"] for c in d["components"] if c["name"] == "weights")
               for d in (one, two)]  # fmt: skip
    assert two["parallel"]["pp"] == 2 and two["total_devices"] == 2
    assert weights[0] / 2 * 0.9 < weights[1] < weights[0] / 2 * 1.1  # about half the layers
    assert any("device_map='auto'" in n for n in two["notes"])
    # plan --goal qlora --count N searches it beside FSDP/ZeRO-3 sharding
    _, plan = _json(
        ["plan", "llama-2-70b", "--device", "RTX4090", "--count", "2", "--goal", "qlora",
         "--seq", "512", "--top", "50"],
        capsys,
    )  # fmt: skip
    labels = [o["label"] for o in plan["options"]]
    assert any("device_map auto over 2" in x for x in labels)
    assert any("ZeRO-3 × 2" in x for x in labels)
    assert main(["train", "llama-3.1-8b", "--device-map", "auto", "--devices", "2"]) == 2
    assert "LoRA/QLoRA" in capsys.readouterr().err

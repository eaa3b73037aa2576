"""Fake-tensor measurement: the same peak as a real CPU run, to the byte, and exact
extrapolation from shallow copies of a deep model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch", reason="measurement needs the 'measure' extra (torch)")
pytest.importorskip("transformers", reason="measurement needs the 'measure' extra (transformers)")

from modelmem.measurement.extrapolate import layer_plan, measure_by_layers, truncated_config
from modelmem.measurement.run import MeasureSettings, measure
from modelmem.model.params import count_params
from modelmem.model.sources.hf_config import spec_from_config

pytestmark = pytest.mark.oracle

LLAMA: dict[str, Any] = {
    "model_type": "llama",
    "vocab_size": 256,
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 128,
}
GPT2: dict[str, Any] = {
    "model_type": "gpt2",
    "vocab_size": 200,
    "n_embd": 32,
    "n_layer": 2,
    "n_head": 4,
    "n_positions": 64,
}
MIXTRAL: dict[str, Any] = {
    **LLAMA,
    "model_type": "mixtral",
    "num_local_experts": 4,
    "num_experts_per_tok": 2,
}
GEMMA3: dict[str, Any] = {
    "model_type": "gemma3_text",
    "vocab_size": 256,
    "hidden_size": 64,
    "num_hidden_layers": 14,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "intermediate_size": 96,
    "sliding_window": 8,
    "sliding_window_pattern": 3,
}
DEEPSEEK: dict[str, Any] = {
    "model_type": "deepseek_v3",
    "vocab_size": 256,
    "hidden_size": 64,
    "num_hidden_layers": 8,
    "num_attention_heads": 4,
    "intermediate_size": 128,
    "moe_intermediate_size": 32,
    "n_routed_experts": 4,
    "num_experts_per_tok": 2,
    "n_shared_experts": 1,
    "first_k_dense_replace": 2,
    "q_lora_rank": 16,
    "kv_lora_rank": 8,
    "qk_rope_head_dim": 4,
    "qk_nope_head_dim": 8,
    "v_head_dim": 8,
    "n_group": 1,
    "topk_group": 1,
}

VARIANTS = [
    ("llama-fp32", LLAMA, {"recipe": "fp32"}),
    ("llama-amp", LLAMA, {"recipe": "amp-bf16"}),
    ("llama-pure-ckpt", LLAMA, {"recipe": "pure-bf16", "checkpointing": True}),
    ("llama-eager", LLAMA, {"recipe": "fp32", "attention": "eager"}),
    (
        "llama-fused-sgd",
        LLAMA,
        {"recipe": "fp32", "optimizer": "sgd-momentum", "optimizer_impl": "fused"},
    ),
    ("llama-inference", LLAMA, {"mode": "inference", "recipe": "pure-bf16"}),
    ("gpt2-dropout", GPT2, {"recipe": "fp32"}),
    ("mixtral-pure", MIXTRAL, {"recipe": "pure-bf16"}),
    ("mixtral-amp", MIXTRAL, {"recipe": "amp-bf16"}),
    ("deepseek-mla", {**DEEPSEEK, "num_hidden_layers": 3}, {"recipe": "pure-bf16"}),
    (
        "gemma3-sliding-inference",
        {**GEMMA3, "num_hidden_layers": 4},
        {"mode": "inference", "recipe": "fp32"},
    ),
    ("llama-lora", LLAMA, {"recipe": "fp32", "lora_rank": 4, "lora_targets": "all-linear"}),
    (
        "llama-selective-eager",
        LLAMA,
        {"recipe": "fp32", "attention": "eager", "selective_checkpointing": True},
    ),
    ("llama-selective-amp", LLAMA, {"recipe": "amp-bf16", "selective_checkpointing": True}),
]


@pytest.mark.parametrize(("name", "config", "options"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_fake_peak_equals_real_cpu_peak_to_the_byte(
    name: str, config: dict[str, Any], options: dict[str, Any]
) -> None:
    settings = {"batch": 2, "seq": 24, **options}
    fake = measure(config, MeasureSettings(fake=True, **settings))
    real = measure(config, MeasureSettings(fake=False, **settings))
    assert fake.breakdown.total_bytes == real.breakdown.total_bytes
    assert fake.breakdown.to_dict()["components"] == real.breakdown.to_dict()["components"]
    assert fake.peak_phase == real.peak_phase
    assert fake.breakdown.total_bytes > 0


def test_composition_of_a_training_peak() -> None:
    m = measure(LLAMA, MeasureSettings(batch=2, seq=24, recipe="fp32", optimizer_impl="fused"))
    params = 4 * (256 * 64 * 2 + 2 * (2 * 64 * 64 + 2 * 64 * 32 + 3 * 64 * 128 + 2 * 64) + 64)
    parts = {c.name: c.bytes for c in m.breakdown.components}
    assert parts["parameters"] == params  # fp32 parameters, untied head
    # AdamW m and v, in the parameter's dtype, once step 0 has made them
    assert m.breakdown.total_bytes == sum(parts.values())
    assert m.total_params * 4 == params
    second_step = max(v for k, v in m.phase_peaks.items() if k.startswith("step1"))
    assert second_step >= 3 * params  # parameters + two AdamW states live before step 1 starts


def test_checkpointing_reduces_the_backward_peak() -> None:
    settings = {"batch": 4, "seq": 64, "recipe": "pure-bf16", "optimizer_impl": "fused"}
    plain = measure({**LLAMA, "num_hidden_layers": 4}, MeasureSettings(**settings))
    ckpt = measure(
        {**LLAMA, "num_hidden_layers": 4}, MeasureSettings(checkpointing=True, **settings)
    )
    assert ckpt.phase_peaks["step1.backward"] < plain.phase_peaks["step1.backward"]


def test_adamw_8bit_step_allocates_bitsandbytes_states() -> None:
    pytest.importorskip("bitsandbytes")
    # one layer, hidden 64: matrices of >= 4096 values get uint8 m, v and an fp32 absmax
    # per 256-value block; smaller ones (k/v 64×32, norms) 32-bit m and v
    cfg = {**LLAMA, "num_hidden_layers": 1}
    m = measure(cfg, MeasureSettings(batch=2, seq=24, recipe="fp32", optimizer="adamw-8bit"))
    sizes = [256 * 64, 64 * 64, 64 * 32, 64 * 32, 64 * 64, 3 * 64 * 128, 64, 64, 64, 256 * 64]
    big = [n for n in sizes if n >= 4096]
    small = [n for n in sizes if n < 4096]
    # the three MLP matrices are one entry of 3 × 8192: each its own blocks
    states = sum(2 * (n + 4 * -(-n // 256)) for n in big) + sum(8 * n for n in small)
    parts = {c.name: c.bytes for c in m.breakdown.components}
    # + the two 256-entry fp32 quantization maps, made outside fake mode
    assert parts["optimizer_state"] == states + 2 * 256 * 4


def test_adamw_8bit_fake_step_equals_real_cpu_step() -> None:
    pytest.importorskip("bitsandbytes")
    # bitsandbytes' CPU kernels against its registered fake kernels: the same tensors,
    # except the few hundred bytes its first use of the quantization maps leaves ("other")
    settings = {"batch": 2, "seq": 24, "recipe": "fp32", "optimizer": "adamw-8bit"}
    fake = measure(LLAMA, MeasureSettings(fake=True, **settings))
    real = measure(LLAMA, MeasureSettings(fake=False, **settings))

    def parts(m: Any) -> dict[str, int]:
        return {c.name: c.bytes for c in m.breakdown.components if c.name != "other"}

    assert parts(fake) == parts(real) and parts(fake)["optimizer_state"] > 0
    assert abs(fake.breakdown.total_bytes - real.breakdown.total_bytes) <= 1024


def test_selective_recomputation_drops_the_eager_scores() -> None:
    settings = {"batch": 2, "seq": 256, "recipe": "fp32", "optimizer_impl": "fused"}
    eager = measure(LLAMA, MeasureSettings(attention="eager", **settings))
    sel = measure(
        LLAMA, MeasureSettings(attention="eager", selective_checkpointing=True, **settings)
    )
    sdpa = measure(LLAMA, MeasureSettings(selective_checkpointing=True, **settings))
    # at the loss every saved activation is alive: 2 layers × b·n_h·s² fp32 probabilities
    # (2 × 2·4·256² × 4 B) are no longer among them, less the k, v the core keeps
    scores = 2 * 2 * 4 * 256 * 256 * 4
    drop = eager.phase_peaks["step1.loss"] - sel.phase_peaks["step1.loss"]
    assert scores * 9 // 10 < drop < scores
    # left beside sdpa: eager's (b, 1, s, s) fp32 additive mask, built once
    assert sel.phase_peaks["step1.loss"] - sdpa.phase_peaks["step1.loss"] == 2 * 256 * 256 * 4


def test_eager_attention_costs_more_than_sdpa_at_long_sequence() -> None:
    settings = {"batch": 2, "seq": 256, "recipe": "fp32", "optimizer_impl": "fused"}
    sdpa = measure(LLAMA, MeasureSettings(**settings))
    eager = measure(LLAMA, MeasureSettings(attention="eager", **settings))
    assert eager.phase_peaks["step1.backward"] > sdpa.phase_peaks["step1.backward"]


def test_inference_reports_the_cache() -> None:
    m = measure(
        LLAMA,
        MeasureSettings(mode="inference", batch=2, seq=32, recipe="pure-bf16", decode_steps=1),
    )
    cache = {c.name: c.bytes for c in m.breakdown.components}.get("kv_cache", 0)
    # K and V for 2 layers × 2 kv heads × 16 dims × bf16 per token, 32 prompt tokens × batch 2
    assert cache == 2 * 2 * 2 * 16 * 2 * 32 * 2
    assert m.peak_phase in ("prefill", "decode")


@pytest.mark.parametrize(
    ("config", "mode"),
    [
        ({**LLAMA, "num_hidden_layers": 7}, "train"),
        ({**LLAMA, "num_hidden_layers": 7}, "inference"),
        ({**GEMMA3, "num_hidden_layers": 17}, "train"),
        (DEEPSEEK, "train"),
    ],
)
def test_layer_extrapolation_equals_the_whole_model(config: dict[str, Any], mode: str) -> None:
    settings = MeasureSettings(
        mode=mode, batch=2, seq=24, recipe="amp-bf16" if mode == "train" else "fp32"
    )
    whole = measure(config, settings)
    sampled = measure_by_layers(config, spec_from_config(config), settings)
    assert any("extrapolated" in n for n in sampled.notes)
    assert sampled.breakdown.total_bytes == whole.breakdown.total_bytes
    assert sampled.breakdown.to_dict()["components"] == whole.breakdown.to_dict()["components"]
    assert sampled.peak_rounded_bytes == whole.peak_rounded_bytes
    assert sampled.total_params == whole.total_params


# Where the backward peak sits moves with depth: at the loss's b·s·V buffers in a shallow
# copy, near the end of backward (every gradient, the first layer recomputed) in a deep
# model once the gradients outweigh the loss. Vocabulary 1,000 and 24 layers put the
# switch between the samples and the whole model.
DEEP: dict[str, Any] = {
    **LLAMA,
    "vocab_size": 1000,
    "hidden_size": 128,
    "num_hidden_layers": 24,
    "intermediate_size": 512,
    "pad_token_id": 0,
}


@pytest.mark.parametrize(
    ("config", "options"),
    [
        (DEEP, {"checkpointing": True}),
        ({**DEEP, "model_type": "phi3"}, {"checkpointing": True}),
        ({**DEEP, "model_type": "mistral"}, {"checkpointing": True, "batch": 2}),
        ({**DEEP, "vocab_size": 4000}, {"checkpointing": True}),
        ({**DEEP, "num_hidden_layers": 16}, {}),
        ({**GEMMA3, "num_hidden_layers": 20, "vocab_size": 1000}, {"checkpointing": True}),
        (DEEP, {"checkpointing": True, "lora_rank": 4, "lora_targets": "all-linear"}),
    ],
    ids=[
        "llama-ckpt",
        "phi3-ckpt",
        "mistral-ckpt-b2",
        "llama-ckpt-big-vocab",
        "llama",
        "gemma3",
        "llama-lora-ckpt",
    ],
)
def test_layer_extrapolation_follows_the_backward_peak(
    config: dict[str, Any], options: dict[str, Any]
) -> None:
    settings = MeasureSettings(
        **{"batch": 4, "seq": 256, "recipe": "pure-bf16", "optimizer_impl": "fused", **options}
    )
    whole = measure(config, settings)
    sampled = measure_by_layers(config, spec_from_config(config), settings)
    assert any("extrapolated" in n for n in sampled.notes)
    assert sampled.breakdown.to_dict()["components"] == whole.breakdown.to_dict()["components"]
    assert sampled.peak_rounded_bytes == whole.peak_rounded_bytes
    assert sampled.phase_peaks == whole.phase_peaks


def test_layer_plan_finds_head_and_period() -> None:
    plan = layer_plan(spec_from_config(DEEPSEEK))
    assert plan is not None and (plan.head, plan.period, plan.repeats) == (2, 1, 6)
    gemma = layer_plan(spec_from_config(GEMMA3))
    assert gemma is not None and (gemma.period, gemma.repeats, gemma.remainder) == (3, 4, 2)


FIXTURE_DIRS = sorted(
    p for p in (Path(__file__).parent.parent / "fixtures" / "hf-configs").iterdir() if p.is_dir()
)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["train", "inference"])
@pytest.mark.parametrize("folder", FIXTURE_DIRS, ids=[p.name for p in FIXTURE_DIRS])
def test_every_family_measures_and_counts_what_modelmem_counts(folder: Path, mode: str) -> None:
    """Two layers of each real architecture: the measured model has exactly the
    parameters modelmem counts, and the peak holds at least the parameters."""
    config = truncated_config(json.loads((folder / "config.json").read_text()), 2)
    m = measure(
        config, MeasureSettings(mode=mode, batch=1, seq=32, recipe="pure-bf16", decode_steps=1)
    )
    expected = count_params(spec_from_config(config)).total
    assert m.total_params == expected  # BERT: the BertForMaskedLM its config names
    parts = {c.name: c.bytes for c in m.breakdown.components}
    # bf16, tied weights once; a few modules may be kept in fp32 (routers in some versions)
    assert 2 * m.total_params <= parts["parameters"] <= 2 * m.total_params * 101 // 100
    if mode == "inference" and config["model_type"] != "bert":
        assert parts.get("kv_cache", 0) > 0 or m.peak_phase == "prefill"


def test_measure_command_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from modelmem.cli import main

    (tmp_path / "config.json").write_text(json.dumps(LLAMA))
    code = main(["measure", str(tmp_path), "--seq", "32", "--batch", "2", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    data = json.loads(out)
    assert data["total_bytes"] == sum(c["bytes"] for c in data["components"])
    assert data["peak_phase"].startswith("step")
    assert data["trainable_params"] == count_params(spec_from_config(LLAMA)).total


def test_validate_quick_grid_passes() -> None:
    from modelmem.measurement.validate import QUICK_GRID, validate

    rows = validate(QUICK_GRID)
    assert len(rows) == len(QUICK_GRID)
    assert all(r.passed for r in rows), [r.to_dict() for r in rows if not r.passed]


def test_selective_and_8bit_options_of_the_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("bitsandbytes")
    from modelmem.cli import main

    (tmp_path / "config.json").write_text(json.dumps(LLAMA))
    common = [str(tmp_path), "--seq", "32", "--batch", "2", "--json"]
    code = main(["measure", *common, "--selective-checkpointing", "--optimizer", "adamw-8bit"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["total_bytes"] == sum(c["bytes"] for c in data["components"])
    long = [str(tmp_path), "--seq", "4096", "--batch", "8", "--json"]  # activations peak
    assert main(["train", *long, "--selective-checkpointing"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["checkpointing_mode"] == "selective" and data["checkpointing"] is False
    assert "selective" in next(c["how"] for c in data["components"] if c["name"] == "activations")
    assert main(["train", *common, "--selective-checkpointing", "--checkpointing"]) != 0
    assert "selective_checkpointing" in capsys.readouterr().err


def test_truncation_cuts_every_per_layer_list() -> None:
    """GLM-5.2 lists one MLP kind per layer; a shallow copy keeps the list in step."""
    config = {
        "model_type": "glm_moe_dsa",
        "num_hidden_layers": 4,
        "mlp_layer_types": ["dense", "sparse", "sparse", "sparse"],
        "eos_token_id": [1, 2],
        "mlp_only_layers": [0, 3],
    }
    cut = truncated_config(config, 2)
    assert cut["num_hidden_layers"] == 2
    assert cut["mlp_layer_types"] == ["dense", "sparse"]
    assert cut["eos_token_id"] == [1, 2]  # not one entry per layer
    assert cut["mlp_only_layers"] == [0]
    assert config["mlp_layer_types"] == ["dense", "sparse", "sparse", "sparse"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "options"),
    [
        ("llama-3.1-8b", {"batch": 2, "seq": 4096, "checkpointing": True}),
        (
            "phi-3-mini-4k",
            {"batch": 1, "seq": 2048, "checkpointing": True, "optimizer_impl": "fused"},
        ),
    ],
)
def test_catalogue_extrapolation_equals_whole_under_checkpointing(
    model: str, options: dict[str, Any]
) -> None:
    """Issue 17's rows: the shallow copies once missed the first layer's backward."""
    from modelmem.app.models import resolve_model

    resolved = resolve_model(model)
    settings = MeasureSettings(recipe="pure-bf16", **options)
    whole = measure(resolved.config, settings)
    sampled = measure_by_layers(resolved.config, resolved.spec, settings)
    assert any("extrapolated" in n for n in sampled.notes)
    assert sampled.breakdown.total_bytes == whole.breakdown.total_bytes
    assert sampled.peak_rounded_bytes == whole.peak_rounded_bytes

"""Training estimates: optimizer state bytes, moments of the step, monotonicity."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelmem.errors import InvalidValueError, UnknownNameError
from modelmem.memory.training import TrainingWorkload, estimate_training
from modelmem.model.params import count_params, tensor_inventory
from modelmem.model.sources.hf_config import spec_from_config

from ..conftest import load_fixture

LLAMA8B = spec_from_config(load_fixture("meta-llama/Llama-3.1-8B"))
PARAMS = 8_030_261_248
TENSORS = len(tensor_inventory(LLAMA8B)) + 31 * 9  # 9 per-layer tensors repeat over 32 layers


def parts(workload: TrainingWorkload) -> dict[str, int]:
    est = estimate_training(LLAMA8B, workload)
    return {c.name: c.bytes for c in est.breakdown.components}


def test_adamw_fp32_model_states_are_16_bytes_per_parameter() -> None:
    # weights 4 + gradients 4 + m 4 + v 4, and a 4-byte step counter per tensor
    w = TrainingWorkload(recipe="fp32", batch=1, seq=16, optimizer_impl="fused")
    est = estimate_training(LLAMA8B, w)
    assert est.peak_moment in ("optimizer step", "backward end")  # equal when fused
    assert est.moments["optimizer step"] == est.tensor_peak_bytes
    p = parts(w)
    assert p["weights"] == p["gradients"] == 4 * PARAMS
    assert p["optimizer_states"] == 8 * PARAMS + 4 * TENSORS
    assert est.tensor_peak_bytes == 16 * PARAMS + 4 * TENSORS


def test_pure_bf16_states_follow_the_parameter_dtype() -> None:
    p = parts(TrainingWorkload(recipe="pure-bf16", batch=1, seq=16, optimizer_impl="fused"))
    assert p["weights"] == 2 * PARAMS and p["optimizer_states"] == 4 * PARAMS + 4 * TENSORS


@pytest.mark.parametrize(
    ("optimizer", "state_bytes"),
    [("sgd", 0), ("sgd-momentum", 4 * PARAMS), ("rmsprop", 4 * PARAMS), ("lion", 4 * PARAMS)],
)
def test_state_bytes_per_optimizer(optimizer: str, state_bytes: int) -> None:
    p = parts(TrainingWorkload(recipe="fp32", optimizer=optimizer, batch=1, seq=16))
    assert p["optimizer_states"] == state_bytes


def test_8bit_adamw_keeps_small_tensors_in_32_bit() -> None:
    # norms (4096 values) are exactly at min_8bit_size and go 8-bit; a 4095-wide model's
    # norms stay 32-bit: 2 × 4 B per value
    cfg = {
        "model_type": "llama",
        "vocab_size": 1000,
        "hidden_size": 4095,
        "num_hidden_layers": 1,
        "num_attention_heads": 5,
        "intermediate_size": 128,
        "head_dim": 16,
    }
    spec = spec_from_config(cfg)
    est = estimate_training(spec, TrainingWorkload(optimizer="adamw-8bit", recipe="fp32", seq=8))
    states = est.breakdown.get("optimizer_states").bytes
    big = [t for t in tensor_inventory(spec) if t.numel_each >= 4096]
    small = [t for t in tensor_inventory(spec) if t.numel_each < 4096]
    expected = sum(2 * (t.numel_each + 4 * -(-t.numel_each // 256)) * t.copies for t in big)
    expected += sum(8 * t.numel for t in small)
    assert states == expected and small


def test_adafactor_factors_matrices() -> None:
    p = parts(TrainingWorkload(recipe="fp32", optimizer="adafactor", batch=1, seq=16))
    assert p["optimizer_states"] < PARAMS  # row + column vectors, far below one full copy


def test_foreach_step_costs_one_parameter_copy() -> None:
    fused = estimate_training(
        LLAMA8B, TrainingWorkload(recipe="fp32", seq=16, optimizer_impl="fused")
    )
    foreach = estimate_training(LLAMA8B, TrainingWorkload(recipe="fp32", seq=16))
    assert foreach.moments["optimizer step"] - fused.moments["optimizer step"] == 4 * PARAMS


def test_checkpointing_and_sdpa_reduce_activations() -> None:
    long = {"batch": 8, "seq": 8192, "recipe": "pure-bf16"}
    plain = estimate_training(LLAMA8B, TrainingWorkload(**long))  # type: ignore[arg-type]
    ckpt = estimate_training(LLAMA8B, TrainingWorkload(checkpointing=True, **long))  # type: ignore[arg-type]
    eager = estimate_training(LLAMA8B, TrainingWorkload(attention="eager", **long))  # type: ignore[arg-type]
    assert ckpt.tensor_peak_bytes < plain.tensor_peak_bytes < eager.tensor_peak_bytes


def test_llama_8b_backward_start_by_hand() -> None:
    # pure bf16, b=2, s=4096: per layer and token 16h + 8I + 4·4096 + 4·1024 + 4·32 + 8
    w = TrainingWorkload(batch=2, seq=4096, recipe="pure-bf16", optimizer_impl="fused")
    est = estimate_training(LLAMA8B, w)
    h, i, v, bs = 4096, 14336, 128256, 2 * 4096
    layer = 16 * h + 8 * i + 4 * 4096 + 4 * 1024 + 4 * 32 + 8
    saved = bs * 32 * layer + bs * (4 * h + 4 * h + 4)
    states = 4 * PARAMS + 4 * TENSORS
    assert (
        est.moments["backward start"] == 2 * PARAMS + states + saved + bs * v * 4 + 2 * bs * v * 4
    )


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 16), seq=st.integers(1, 16384), more=st.integers(1, 2048))
def test_memory_never_decreases_with_batch_or_sequence(batch: int, seq: int, more: int) -> None:
    base = estimate_training(LLAMA8B, TrainingWorkload(batch=batch, seq=seq)).tensor_peak_bytes
    assert (
        estimate_training(LLAMA8B, TrainingWorkload(batch=batch + more, seq=seq)).tensor_peak_bytes
        >= base
    )
    assert (
        estimate_training(LLAMA8B, TrainingWorkload(batch=batch, seq=seq + more)).tensor_peak_bytes
        >= base
    )


def test_total_is_sum_and_rule_of_thumb_is_below_detail() -> None:
    est = estimate_training(LLAMA8B, TrainingWorkload(recipe="fp32", batch=4, seq=4096))
    assert est.breakdown.total_bytes == sum(c.bytes for c in est.breakdown.components)
    assert est.tensor_peak_bytes > 16 * count_params(LLAMA8B).total  # activations on top


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("batch", {"batch": 0}),
        ("seq", {"seq": -3}),
        ("recipe", {"recipe": "bf17"}),
        ("optimizer", {"optimizer": "adamx"}),
        ("attention", {"attention": "flash9"}),
    ],
)
def test_bad_workloads_name_the_field(field: str, kwargs: dict[str, object]) -> None:
    with pytest.raises((InvalidValueError, UnknownNameError), match=field):
        TrainingWorkload(**kwargs)  # type: ignore[arg-type]


@pytest.mark.slow
def test_every_catalogue_model_and_setting_gives_non_negative_parts() -> None:
    import itertools

    from modelmem.model.sources import resolve
    from modelmem.model.sources.catalogue import load_catalogue

    for name in load_catalogue():
        spec = resolve(name).spec
        assert spec is not None
        for recipe, ckpt, attention, batch, seq in itertools.product(
            ("fp32", "amp-bf16", "pure-bf16", "mixed-bf16"),
            (False, True),
            ("sdpa", "eager"),
            (1, 8),
            (128, 8192),
        ):
            est = estimate_training(
                spec,
                TrainingWorkload(
                    batch=batch, seq=seq, recipe=recipe, checkpointing=ckpt, attention=attention
                ),
            )
            assert est.breakdown.total_bytes == sum(c.bytes for c in est.breakdown.components)
            assert est.peak_moment in est.moments


def test_lora_trains_only_adapters_in_fp32() -> None:
    from modelmem.memory.finetune import lora_trainable_params

    w = TrainingWorkload(method="lora", recipe="pure-bf16", lora_targets="all-linear", seq=16)
    est = estimate_training(LLAMA8B, w)
    n = lora_trainable_params(LLAMA8B, 16, "all-linear")
    assert est.trainable_params == n == 41_943_040
    assert est.moments["optimizer step"] - est.moments["backward end"] == 4 * n  # foreach copy
    full = estimate_training(LLAMA8B, TrainingWorkload(recipe="pure-bf16", seq=16))
    assert est.tensor_peak_bytes < full.tensor_peak_bytes


def test_qlora_base_is_smaller_than_lora_and_says_it_is_not_measured() -> None:
    lora = estimate_training(LLAMA8B, TrainingWorkload(method="lora", recipe="pure-bf16", seq=16))
    qlora = estimate_training(LLAMA8B, TrainingWorkload(method="qlora", recipe="pure-bf16", seq=16))
    # NF4 + double quantization on the Linear layers, embeddings and head stay bf16: ≈ 5.7 GB
    assert qlora.breakdown.get("weights").bytes < lora.breakdown.get("weights").bytes / 2.5
    assert any("not measured" in n for n in qlora.breakdown.notes)
    assert qlora.tensor_peak_bytes <= lora.tensor_peak_bytes


def test_lora_under_autocast_is_refused_not_guessed() -> None:
    with pytest.raises(InvalidValueError, match="recipe"):
        TrainingWorkload(method="lora", recipe="amp-bf16")


LOSS = {"batch": 2, "seq": 4096, "recipe": "pure-bf16", "optimizer_impl": "fused"}
V, H, BS = 128256, 4096, 2 * 4096


def test_chunked_loss_of_one_chunk_is_the_full_loss() -> None:
    full = estimate_training(LLAMA8B, TrainingWorkload(**LOSS))  # type: ignore[arg-type]
    one = estimate_training(LLAMA8B, TrainingWorkload(loss="chunked", loss_chunks=1, **LOSS))  # type: ignore[arg-type]
    assert full.moments == one.moments


def test_chunked_loss_by_hand() -> None:
    full = estimate_training(LLAMA8B, TrainingWorkload(**LOSS))  # type: ignore[arg-type]
    est = estimate_training(LLAMA8B, TrainingWorkload(loss="chunked", loss_chunks=8, **LOSS))  # type: ignore[arg-type]
    # full: 2 + 4 + 4 B per (token × V) at the loss; chunked: 2 B for all tokens, the fp32
    # copy and log-softmax for 8192/8 = 1024 tokens at a time
    assert full.moments["loss"] - est.moments["loss"] == 8 * BS * V - 8 * 1024 * V
    # backward start: 12 B per (token × V) → the 16-bit logits of the other 7 chunks + 12 B × 1024
    assert est.moments["backward start"] - full.moments["backward start"] == (
        2 * 7 * 1024 * V + 12 * 1024 * V - 12 * BS * V
    )


def test_fused_linear_cross_entropy_by_hand() -> None:
    full = estimate_training(LLAMA8B, TrainingWorkload(**LOSS))  # type: ignore[arg-type]
    est = estimate_training(LLAMA8B, TrainingWorkload(loss="fused", **LOSS))  # type: ignore[arg-type]
    # Liger chunk: next_pow2(⌈8192 / ⌈128256/4096⌉⌉) = next_pow2(8192/32) = 256 tokens;
    # loss: 256·V·2 B logits + b·s·h·2 B input gradient + V·h·2 B head weight gradient
    held = BS * H * 2 + V * H * 2
    assert est.moments["loss"] - full.moments["loss"] == 256 * V * 2 + held - 10 * BS * V
    assert est.moments["backward start"] - full.moments["backward start"] == held - 12 * BS * V


def test_paged_optimizer_states_are_counted_off_the_device() -> None:
    w = TrainingWorkload(recipe="pure-bf16", optimizer="adamw-8bit", paged_optimizer=True, seq=16)
    est = estimate_training(LLAMA8B, w)
    plain = estimate_training(
        LLAMA8B, TrainingWorkload(recipe="pure-bf16", optimizer="adamw-8bit", seq=16)
    )
    states = plain.breakdown.get("optimizer_states").bytes
    assert est.off_device_bytes("cpu") == states
    assert [o.name for o in est.offloaded] == ["optimizer_states"]
    assert "unified memory" in est.offloaded[0].how
    # off the device, and bitsandbytes steps without a foreach copy
    assert est.moments["optimizer step"] == 2 * PARAMS + 2 * PARAMS


def test_optimizer_in_backward_keeps_one_gradient() -> None:
    w = TrainingWorkload(recipe="pure-bf16", optimizer_in_backward=True, seq=16)
    est = estimate_training(LLAMA8B, w)
    states = 4 * PARAMS + 4 * TENSORS
    embed = V * H  # the largest tensor: its gradient, then its foreach temporary
    assert est.moments["backward end"] == 2 * PARAMS + states + 2 * embed
    assert est.moments["optimizer step"] == 2 * PARAMS + states + 2 * embed + 2 * embed


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"optimizer_in_backward": True, "grad_accumulation": 4}, "optimizer_in_backward"),
        ({"optimizer_in_backward": True, "zero": 2}, "optimizer_in_backward"),
        ({"paged_optimizer": True, "optimizer": "sgd"}, "optimizer"),
        ({"loss": "sliced"}, "loss"),
        ({"loss": "chunked", "loss_chunks": 0}, "loss_chunks"),
    ],
)
def test_bad_step_options_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises((InvalidValueError, UnknownNameError), match=field):
        TrainingWorkload(**kwargs)  # type: ignore[arg-type]


def test_selective_recomputation_by_hand() -> None:
    # Korthikanti et al. 2022 §5: only the attention core is recomputed. Llama-3.1-8B,
    # pure bf16, b=2, s=4096: per layer and token the SDPA layer's 16h + 8I + 4·n_h·d +
    # 4·n_kv·d + 4·n_h + 8 less the fp32 log-sum-exp 4·n_h (n_h = 32): 4·32 B.
    long = {"batch": 2, "seq": 4096, "recipe": "pure-bf16", "optimizer_impl": "fused"}
    none = estimate_training(LLAMA8B, TrainingWorkload(**long))  # type: ignore[arg-type]
    sel = estimate_training(LLAMA8B, TrainingWorkload(selective_checkpointing=True, **long))  # type: ignore[arg-type]
    bs = 2 * 4096
    assert none.moments["backward start"] - sel.moments["backward start"] == bs * 32 * 4 * 32
    # eager attention under selective recomputation keeps no scores: equal to sdpa
    eager = estimate_training(
        LLAMA8B,
        TrainingWorkload(selective_checkpointing=True, attention="eager", **long),  # type: ignore[arg-type]
    )
    assert eager.moments == sel.moments
    # full recomputation keeps far less; eager without recomputation far more
    full = estimate_training(LLAMA8B, TrainingWorkload(checkpointing=True, **long))  # type: ignore[arg-type]
    plain_eager = estimate_training(LLAMA8B, TrainingWorkload(attention="eager", **long))  # type: ignore[arg-type]
    assert full.tensor_peak_bytes < sel.tensor_peak_bytes < plain_eager.tensor_peak_bytes
    assert "selective" in sel.breakdown.get("activations").how


def test_selective_recomputation_under_autocast_keeps_fp32_q_and_k() -> None:
    # autocast: the core's inputs are the fp32 rotated q and k instead of the kernel's
    # bf16 casts: + 2·n_h·d + 2·n_kv·d − 4·n_h = 2·4096 + 2·1024 − 128 per layer and token
    long = {"batch": 1, "seq": 2048, "recipe": "amp-bf16", "optimizer_impl": "fused"}
    none = estimate_training(LLAMA8B, TrainingWorkload(**long))  # type: ignore[arg-type]
    sel = estimate_training(LLAMA8B, TrainingWorkload(selective_checkpointing=True, **long))  # type: ignore[arg-type]
    change = sel.moments["backward start"] - none.moments["backward start"]
    assert change == 2048 * 32 * (2 * 4096 + 2 * 1024 - 4 * 32)


def test_selective_and_full_checkpointing_exclude_each_other() -> None:
    with pytest.raises(InvalidValueError, match="selective_checkpointing"):
        TrainingWorkload(checkpointing=True, selective_checkpointing=True)
    assert TrainingWorkload(selective_checkpointing=True).checkpoint_mode == "selective"
    assert TrainingWorkload(checkpointing=True).checkpoint_mode == "full"
    assert TrainingWorkload().checkpoint_mode == "none"


def test_8bit_adamw_step_has_no_temporaries() -> None:
    # bitsandbytes updates each tensor in place in one kernel, whatever --optimizer-impl says
    w = TrainingWorkload(recipe="pure-bf16", seq=16, optimizer="adamw-8bit")
    est = estimate_training(LLAMA8B, w)
    assert est.moments["optimizer step"] == est.moments["backward end"]


# ---- dropout, fitted layers, soft-capping, the first layer's backward, Mamba (issue 17)

GPT2 = spec_from_config(load_fixture("openai-community/gpt2"))
GPT2_CONFIG = load_fixture("openai-community/gpt2")


def test_dropout_is_read_from_the_config_and_overridden() -> None:
    from modelmem.memory.training import Dropout, dropout_of

    # GPT-2's config.json: attn_pdrop, resid_pdrop and embd_pdrop are all 0.1
    assert dropout_of(GPT2_CONFIG) == Dropout(0.1, 0.1, 0.1)
    assert dropout_of({"attention_dropout": 0.0}) == Dropout()
    assert dropout_of(GPT2_CONFIG, 0.0) == Dropout()
    with pytest.raises(InvalidValueError, match="dropout"):
        dropout_of(GPT2_CONFIG, 1.0)


def test_dropout_masks_are_one_byte_per_element() -> None:
    from modelmem.memory.training import Dropout

    base = {"batch": 2, "seq": 512, "recipe": "pure-bf16"}
    off = estimate_training(GPT2, TrainingWorkload(**base))  # type: ignore[arg-type]
    on = estimate_training(GPT2, TrainingWorkload(dropout=Dropout(0.1, 0.1, 0.1), **base))  # type: ignore[arg-type]
    h, layers, bs = 768, 12, 2 * 512
    # SDPA keeps no attention-dropout mask: two residual masks per layer + the embedding's
    assert on.moments["loss"] - off.moments["loss"] == bs * (2 * h * layers + h)
    eager_off = estimate_training(GPT2, TrainingWorkload(attention="eager", **base))  # type: ignore[arg-type]
    eager_on = estimate_training(
        GPT2,
        TrainingWorkload(attention="eager", dropout=Dropout(0.1, 0.1, 0.1), **base),  # type: ignore[arg-type]
    )
    # eager adds a mask byte and a 16-bit dropout output per score (12 heads, s = 512)
    scores = bs * 12 * 512 * layers
    extra = eager_on.moments["loss"] - eager_off.moments["loss"]
    assert extra == bs * (2 * h * layers + h) + scores * (1 + 2)


def test_gpt2_softmax_in_16_bit_keeps_fewer_bytes_per_score_than_llama() -> None:
    from modelmem.memory.training import _score_bytes

    w = TrainingWorkload(recipe="pure-bf16", attention="eager")
    assert _score_bytes(GPT2, w)[0] == 2  # softmax output in bf16, no cast
    assert _score_bytes(LLAMA8B, w)[0] == 6  # fp32 softmax + its bf16 cast
    assert _score_bytes(GPT2, TrainingWorkload(recipe="amp-bf16"))[0] == 6  # autocast: fp32


def test_gemma2_soft_capping_keeps_its_tanh_outputs() -> None:
    gemma2 = spec_from_config(load_fixture("google/gemma-2-9b"))
    w = TrainingWorkload(recipe="pure-bf16", batch=1, seq=2048, attention="eager")
    est = estimate_training(gemma2, w)
    how = est.breakdown.get("activations").how
    assert "soft-capping tanh 2 B" in how
    # transformers has no SDPA path for Gemma 2: an sdpa request is priced eager
    sdpa = estimate_training(gemma2, TrainingWorkload(recipe="pure-bf16", batch=1, seq=2048))
    assert sdpa.moments == est.moments


def test_deep_checkpointed_model_peaks_in_the_first_layer_backward() -> None:
    # fp32, one short sequence: every gradient outweighs the loss buffers
    w = TrainingWorkload(recipe="fp32", batch=1, seq=512, checkpointing=True)
    est = estimate_training(LLAMA8B, w)
    first = est.moments["first layer backward"]
    assert first > est.moments["backward end"] - 2 * 128256 * 4096 * 4  # beyond the gradients
    assert first > est.moments["layer recompute"]
    assert est.peak_moment in ("first layer backward", "optimizer step")


def test_mamba_activations_are_priced_not_zero_and_other_mixers_refused() -> None:
    mamba_cfg = {
        "model_type": "mamba",
        "vocab_size": 50280,
        "hidden_size": 768,
        "num_hidden_layers": 24,
        "state_size": 16,
        "expand": 2,
        "conv_kernel": 4,
        "time_step_rank": 48,
    }
    mamba = spec_from_config(mamba_cfg)
    est = estimate_training(mamba, TrainingWorkload(recipe="fp32", batch=1, seq=256))
    act = est.breakdown.get("activations")
    # 12·I·N dominates: 12 × 1536 × 16 B per token and layer at least
    assert act.bytes > 256 * 24 * 12 * 1536 * 16
    assert "PyTorch path" in act.how
    with pytest.raises(InvalidValueError, match="state-space mixer"):
        estimate_training(mamba, TrainingWorkload(recipe="fp32", batch=1, seq=256, tp=2))

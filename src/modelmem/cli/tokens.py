"""``modelmem tokens`` (tokenize, count, check a request against a model's window) and
``modelmem cost`` (FLOPs and time per token on a device).

Only click and the renderer are imported here at import time; tokenizers, tiktoken, the
compute model and the device catalogue are imported inside the commands.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from modelmem.app.models import resolve_model
from modelmem.cli.render import emit_json, render_cost, render_tokens
from modelmem.errors import InvalidValueError

DEFAULT_PROMPT = 2048


# ----------------------------------------------------------------------------------- tokens


@click.command()
@click.argument("text", required=False)
@click.option(
    "--file",
    "file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Count the tokens of a UTF-8 text file (streamed in chunks).",
)
@click.option(
    "--tokenizer",
    default=None,
    help="tiktoken encoding (cl100k_base, o200k_base, ...), tokenizer.json, model folder, "
    "GGUF file, or Hub id in the local cache. Default: the --model's tokenizer, else "
    "cl100k_base.",
)
@click.option("--model", "source", default=None, help="Check the request against this model.")
@click.option(
    "--completion",
    type=int,
    default=0,
    show_default=True,
    help="Tokens to generate after the prompt (with --model).",
)
@click.option(
    "--kv-dtype",
    default="bf16",
    show_default=True,
    help="KV cache format for the cache the request occupies (with --model).",
)
@click.option("--ids", "show_ids", is_flag=True, help="Print the token ids.")
@click.option("--pieces", "show_pieces", is_flag=True, help="Print each token's piece.")
@click.option(
    "--no-special",
    is_flag=True,
    help="Do not add the tokens the tokenizer puts around a text (BOS, ...).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def tokens(
    text: str | None,
    file: Path | None,
    tokenizer: str | None,
    source: str | None,
    completion: int,
    kv_dtype: str,
    show_ids: bool,
    show_pieces: bool,
    no_special: bool,
    as_json: bool,
) -> None:
    """Tokenize TEXT (or --file F, or - for standard input) and count its tokens.

    With --model SOURCE: the model's context length, whether prompt + --completion fit,
    the tokens left, and the KV cache the request occupies. Nothing is downloaded:
    tiktoken encodings come from a package or tiktoken's cache, Hub tokenizers from the
    local Hugging Face cache. In JSON, `ids` is the list for TEXT and, for a file or
    standard input, only with --ids (else null).
    """
    from modelmem.app.tokens import choose_tokenizer, tokens_result
    from modelmem.tokenization import count_file, count_stream

    if text is not None and file is not None:
        raise InvalidValueError("text", text, "give TEXT or --file, not both")
    if text is None and file is None:
        raise InvalidValueError("text", None, "give TEXT, - for standard input, or --file")
    if text == "":
        raise InvalidValueError("text", text, "empty")
    if source is None and completion != 0:
        raise InvalidValueError("completion", completion, "needs --model")
    model = resolve_model(source) if source is not None else None
    tok, default_note = choose_tokenizer(tokenizer, model)
    special = not no_special

    ids: list[int] | None = None
    stream_info: dict[str, Any] | None = None
    want_ids = show_ids or show_pieces
    if file is None and text != "-":
        assert text is not None
        ids = tok.encode(text, special=special)
        count = len(ids)
    elif want_ids:
        from modelmem.tokenization import read_stream_text, read_text

        whole = read_text(file) if file is not None else read_stream_text(sys.stdin.buffer)
        ids = tok.encode(whole, special=special)
        count = len(ids)
    else:
        if file is not None:
            result = count_file(tok, file, special=special)
        else:
            result = count_stream(tok, sys.stdin.buffer, special=special, source="stdin")
        count = result.count
        stream_info = {
            "bytes": result.bytes,
            "chars": result.chars,
            "seconds": result.seconds,
            "tokens_per_s": result.tokens_per_s if result.seconds > 0 else None,
            "exact": result.exact,
        }

    notes = (default_note,) if default_note else ()
    data = tokens_result(
        tok, count, ids, model, completion, kv_dtype, show_pieces, stream_info, notes
    )
    if as_json:
        emit_json(data)
    else:
        render_tokens(data, show_ids, show_pieces)


# ------------------------------------------------------------------------------------- cost


def _device_rates(
    device: str | None, tflops: float | None, bandwidth: str | None, compute_dtype: str
) -> tuple[dict[str, Any], float, float]:
    """The device's peak FLOP/s and bandwidth: from the catalogue (--device), overridden
    by --tflops / --bandwidth."""
    from modelmem.units import parse_bytes

    info: dict[str, Any] = {"name": "custom"}
    flops: float | None = None
    bw: float | None = None
    if device is not None:
        import importlib

        try:
            get_device = importlib.import_module("modelmem.hardware").get_device
        except (ImportError, AttributeError):
            raise InvalidValueError(
                "device",
                device,
                "the device catalogue is not available; give --tflops and --bandwidth",
            ) from None
        acc = get_device(device)
        info = {"name": acc.name, "memory_bytes": acc.memory_bytes}
        bw = float(acc.bandwidth_bytes_per_s)
        if compute_dtype == "fp8":
            if acc.fp8_flops is None:
                raise InvalidValueError("compute_dtype", "fp8", f"{acc.name} has no fp8 peak")
            flops = float(acc.fp8_flops)
        else:
            peak = acc.matmul_flops  # bf16, or fp16 where the hardware has no bf16
            if peak is None and tflops is None:
                raise InvalidValueError(
                    "device", device, f"{acc.name} has no 16-bit matrix peak; give --tflops"
                )
            flops = float(peak) if peak is not None else None
    if tflops is not None:
        flops = tflops * 1e12
    if bandwidth is not None:
        text = bandwidth.strip()
        if text.lower().endswith("/s"):
            text = text[:-2]
        bw = float(parse_bytes(text, field="bandwidth"))
    if flops is None or bw is None:
        missing = "--tflops" if flops is None else "--bandwidth"
        raise InvalidValueError(
            "device", device, f"give --device NAME, or {missing} (with the other figure)"
        )
    return info, flops, bw


@click.command()
@click.argument("source")
@click.option("--device", default=None, help="Accelerator from `modelmem devices`.")
@click.option("--tflops", type=float, default=None, help="Peak dense TFLOP/s (overrides --device).")
@click.option(
    "--bandwidth", default=None, help="Memory bandwidth, e.g. 3.35TB/s (overrides --device)."
)
@click.option(
    "--compute-dtype",
    type=click.Choice(["bf16", "fp8"]),
    default="bf16",
    show_default=True,
    help="Which peak of --device to use.",
)
@click.option(
    "--prompt",
    type=int,
    default=None,
    help=f"Prefill length (default {DEFAULT_PROMPT}, capped at the model's window).",
)
@click.option(
    "--context",
    type=int,
    default=None,
    help="Tokens in the cache at the decode step priced, and the training sequence length "
    "(default: the prompt).",
)
@click.option("--batch", type=int, default=1, show_default=True, help="Concurrent sequences.")
@click.option(
    "--mfu", type=float, default=None, help="Model FLOPs utilization assumed (default 0.5)."
)
@click.option(
    "--mbu",
    type=float,
    default=None,
    help="Share of peak memory bandwidth a decode step reaches (default 0.8).",
)
@click.option("--weights-dtype", default="bf16", show_default=True, help="Weight format.")
@click.option("--kv-dtype", default="bf16", show_default=True, help="KV cache format.")
@click.option("--train-tokens", default=None, help="Price training on this many tokens (2e9, 1T).")
@click.option("--devices", type=int, default=1, show_default=True, help="Devices for training.")
@click.option("--recompute", is_flag=True, help="Training with full activation recomputation.")
@click.option("--price-per-hour", type=float, default=None, help="USD per device-hour.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def cost(
    source: str,
    device: str | None,
    tflops: float | None,
    bandwidth: str | None,
    compute_dtype: str,
    prompt: int | None,
    context: int | None,
    batch: int,
    mfu: float | None,
    mbu: float | None,
    weights_dtype: str,
    kv_dtype: str,
    train_tokens: str | None,
    devices: int,
    recompute: bool,
    price_per_hour: float | None,
    as_json: bool,
) -> None:
    """FLOPs and time per token of SOURCE on a device: prefill (compute-bound, at --mfu),
    decode (max of compute and reading weights + KV cache at --mbu), tokens/s per stream
    and for the batch, and with --train-tokens the training time on --devices devices.
    With --price-per-hour: the cost of a million tokens."""
    from modelmem.app.formats import cache_format, weights_scheme
    from modelmem.compute import (
        DEFAULT_MBU,
        DEFAULT_MFU,
        attention_flops_per_token,
        inference_cost,
        training_cost,
    )
    from modelmem.units import parse_count

    model = resolve_model(source)
    spec = model.spec
    # the same vocabulary as every --dtype / --kv-dtype (a transformers-style cache here)
    weights_dtype = weights_scheme(weights_dtype, "weights_dtype").name
    kv_dtype = cache_format(kv_dtype, "transformers").name
    info, flops, bw = _device_rates(device, tflops, bandwidth, compute_dtype)
    mfu = DEFAULT_MFU if mfu is None else mfu
    mbu = DEFAULT_MBU if mbu is None else mbu
    prompt = min(DEFAULT_PROMPT, spec.context_length) if prompt is None else prompt
    result = inference_cost(
        spec,
        flops_per_s=flops,
        bandwidth_bytes_per_s=bw,
        prompt_tokens=prompt,
        context=context,
        batch=batch,
        mfu=mfu,
        mbu=mbu,
        weights_dtype=weights_dtype,
        kv_dtype=kv_dtype,
        price_per_hour=price_per_hour,
    )
    training = None
    if train_tokens is not None:
        training = training_cost(
            spec,
            tokens=parse_count(train_tokens, field="train_tokens"),
            seq=result.context,
            flops_per_s=flops,
            devices=devices,
            mfu=mfu,
            recompute=recompute,
            price_per_hour=price_per_hour,
        )
    elif devices != 1 or recompute:
        raise InvalidValueError("train_tokens", None, "--devices/--recompute need --train-tokens")
    data: dict[str, Any] = {
        "source": model.label,
        "device": {**info, "flops_per_s": flops, "bandwidth_bytes_per_s": bw},
        "compute_dtype": compute_dtype,
        "weights_dtype": weights_dtype,
        "kv_dtype": kv_dtype,
        "attention_flops_per_token": attention_flops_per_token(spec, result.context),
        **result.to_dict(),
        "training": None if training is None else training.to_dict(),
    }
    memory = info.get("memory_bytes")
    if isinstance(memory, int):
        needed = result.weights_bytes + result.kv_read_bytes
        data["fits_one_device"] = needed <= memory
    if as_json:
        emit_json(data)
    else:
        render_cost(data)

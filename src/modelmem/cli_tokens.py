"""``modelmem tokens`` (tokenize, count, check a request against a model's window) and
``modelmem cost`` (FLOPs and time per token on a device).

Only click and the CLI helpers are imported here at import time; tokenizers, tiktoken,
the compute model and the device catalogue are imported inside the commands.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from modelmem.cli import _console, _emit_json, _print_rows, _with_architecture
from modelmem.errors import InvalidValueError, ModelMemError

DEFAULT_PROMPT = 2048


# ----------------------------------------------------------------------------------- tokens


def _model_tokenizer(model: Any) -> Any:
    """The tokenizer a model brings: a tokenizer.json beside its config, else the Hub
    tokenizer the catalogue names, from the local cache."""
    from modelmem.tokens import TokenizerError, load_tokenizer

    origin = Path(model.origin)
    if origin.is_file() and origin.suffix.lower() == ".gguf":
        return load_tokenizer(str(origin))  # the tokenizer embedded in the GGUF header
    if origin.exists():
        folder = origin if origin.is_dir() else origin.parent
        if (folder / "tokenizer.json").is_file():
            return load_tokenizer(str(folder / "tokenizer.json"))
    if not model.tokenizer:
        raise ModelMemError(
            f"tokenizer: --tokenizer is needed (model {model.label!r} names no tokenizer "
            "and has no tokenizer.json beside its config)"
        )
    try:
        return load_tokenizer(model.tokenizer)
    except TokenizerError as e:
        raise ModelMemError(
            f"tokenizer: --tokenizer is needed (model {model.label!r} uses "
            f"{model.tokenizer!r}: {e.problem})"
        ) from None


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
    "GGUF file, or Hub id in the local cache. Default: the --model's tokenizer.",
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
    from modelmem.tokens import count_file, count_stream, load_tokenizer

    if text is not None and file is not None:
        raise InvalidValueError("text", text, "give TEXT or --file, not both")
    if text is None and file is None:
        raise InvalidValueError("text", None, "give TEXT, - for standard input, or --file")
    if text == "":
        raise InvalidValueError("text", text, "empty")
    if source is None and completion != 0:
        raise InvalidValueError("completion", completion, "needs --model")
    model = _with_architecture(source) if source is not None else None
    if tokenizer is not None:
        tok = load_tokenizer(tokenizer)
    elif model is not None:
        tok = _model_tokenizer(model)
    else:
        raise InvalidValueError("tokenizer", None, "--tokenizer is needed (or --model)")
    special = not no_special

    ids: list[int] | None = None
    stream_info: dict[str, Any] | None = None
    want_ids = show_ids or show_pieces
    if file is None and text != "-":
        assert text is not None
        ids = tok.encode(text, special=special)
        count = len(ids)
    elif want_ids:
        from modelmem.tokens import read_stream_text, read_text

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

    data = tokens_result(tok, count, ids, model, completion, kv_dtype, show_pieces, stream_info)
    if as_json:
        _emit_json(data)
    else:
        _render_tokens(data, show_ids, show_pieces)


def tokens_result(
    tok: Any,
    count: int,
    ids: list[int] | None,
    model: Any,
    completion: int,
    kv_dtype: str,
    show_pieces: bool,
    stream_info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What `tokens --json` prints (the web API returns the same for a text)."""
    from modelmem.tokens import token_budget

    data: dict[str, Any] = {
        "tokenizer": tok.name,
        "tokenizer_kind": tok.kind,
        "tokenizer_origin": tok.origin,
        "count": count,
        "ids": ids,
    }
    if show_pieces and ids is not None:
        data["pieces"] = tok.pieces(ids)
    if stream_info is not None:
        data["stream"] = stream_info
    if tok.notes:
        data["notes"] = list(tok.notes)
    if model is not None:
        budget = token_budget(model.spec, count, completion, kv_dtype=kv_dtype)
        data["model"] = model.label
        data.update(budget.to_dict())
    return data


def text_tokens_data(
    text: str,
    *,
    tokenizer: Any,
    model: Any = None,
    completion: int = 0,
    kv_dtype: str = "bf16",
    pieces: bool = False,
    special: bool = True,
) -> dict[str, Any]:
    """`tokens TEXT --json` for a loaded tokenizer and a resolved model (or None)."""
    if text == "":
        raise InvalidValueError("text", text, "empty")
    if model is None and completion != 0:
        raise InvalidValueError("completion", completion, "needs --model")
    ids = tokenizer.encode(text, special=special)
    return tokens_result(tokenizer, len(ids), ids, model, completion, kv_dtype, pieces)


def model_tokenizer(model: Any) -> Any:
    """The tokenizer a resolved model names, found offline, or a clear error."""
    return _model_tokenizer(model)


def _render_tokens(data: dict[str, Any], show_ids: bool, show_pieces: bool) -> None:
    from modelmem.units import format_bytes_both

    console = _console()
    console.print(f"{data['count']:,} tokens ({data['tokenizer']}, {data['tokenizer_kind']})")
    for note in data.get("notes", []):
        console.print(f"note: {note}")
    stream = data.get("stream")
    if stream and stream["tokens_per_s"]:
        console.print(
            f"read {stream['bytes']:,} bytes in {stream['seconds']:.2f} s: "
            f"{stream['tokens_per_s']:,.0f} tokens/s"
        )
    if show_pieces and data["ids"] is not None:
        rows = [(str(i), repr(p)) for i, p in zip(data["ids"], data["pieces"], strict=True)]
        _print_rows("tokens", ("id", "piece"), rows, right=("id",))
    elif show_ids and data["ids"] is not None:
        console.print(" ".join(str(i) for i in data["ids"]))
    if "context_length" in data:
        verdict = "fits" if data["fits"] else "does NOT fit"
        console.print(
            f"{data['model']}: prompt {data['prompt_tokens']:,} + completion "
            f"{data['completion_tokens']:,} = {data['total_tokens']:,} of "
            f"{data['context_length']:,} tokens: {verdict}"
        )
        left = data["remaining_tokens"]
        console.print(
            f"tokens left: {left:,}" if left >= 0 else f"over the window by {-left:,} tokens"
        )
        console.print(
            f"KV cache for this request ({data['kv_dtype']}): "
            f"{data['kv_cache_bytes']:,} bytes = {format_bytes_both(data['kv_cache_bytes'])} "
            f"({data['kv_cache_bytes_per_token']:,} bytes/token; {data['kv_cache_how']})"
        )


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
            flops = float(acc.bf16_flops)
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
    from modelmem.compute import (
        DEFAULT_MBU,
        DEFAULT_MFU,
        attention_flops_per_token,
        inference_cost,
        training_cost,
    )
    from modelmem.units import parse_count

    model = _with_architecture(source)
    spec = model.spec
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
        _emit_json(data)
    else:
        _render_cost(data)


def _si(value: float, unit: str) -> str:
    for prefix, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def _seconds(s: float) -> str:
    if s >= 86400:
        return f"{s / 86400:.3g} days"
    if s >= 3600:
        return f"{s / 3600:.3g} h"
    if s >= 1:
        return f"{s:.3g} s"
    return f"{s * 1e3:.3g} ms"


def _render_cost(data: dict[str, Any]) -> None:
    from modelmem.units import format_bytes_both

    pre, dec, dev = data["prefill"], data["decode"], data["device"]
    rows = [
        (
            "device",
            dev["name"],
            f"{_si(dev['flops_per_s'], 'FLOP/s')} {data['compute_dtype']}, "
            f"{_si(dev['bandwidth_bytes_per_s'], 'B/s')}",
        ),
        (
            "assumed utilization",
            f"MFU {data['mfu']:g}, MBU {data['mbu']:g}",
            "stated, not measured",
        ),
        (
            "active params",
            f"{data['active_params']:,}",
            f"matmul weights per token {data['matmul_params']:,}",
        ),
        (
            "prefill FLOPs/token",
            _si(pre["flops_per_token"], "FLOP"),
            f"prompt {data['prompt_tokens']:,}, causal attention",
        ),
        ("prefill time", _seconds(pre["seconds"]), f"batch {data['batch']}, compute-bound"),
        ("prefill tokens/s", f"{pre['tokens_per_s']:,.0f}", ""),
        (
            "decode FLOPs/token",
            _si(dec["flops_per_token"], "FLOP"),
            f"at context {data['context']:,}; attention "
            f"{_si(data['attention_flops_per_token'], 'FLOP')}",
        ),
        (
            "decode bytes/step",
            format_bytes_both(dec["step_bytes"]),
            f"weights {format_bytes_both(dec['weights_read_bytes'])} + KV "
            f"{format_bytes_both(dec['kv_read_bytes'])}",
        ),
        (
            "decode step",
            _seconds(dec["step_s"]),
            f"compute {_seconds(dec['compute_s'])}, memory {_seconds(dec['memory_s'])}: "
            f"{dec['bound']}-bound",
        ),
        (
            "decode tokens/s",
            f"{dec['tokens_per_s_per_stream']:,.1f} per stream",
            f"{dec['tokens_per_s']:,.1f} for the batch of {data['batch']}",
        ),
    ]
    if pre["cost_per_million_tokens"] is not None:
        rows.append(("cost / 1M prompt tokens", f"${pre['cost_per_million_tokens']:,.4f}", ""))
        rows.append(("cost / 1M output tokens", f"${dec['cost_per_million_tokens']:,.4f}", ""))
    train = data["training"]
    if train is not None:
        how = "8N (full recompute)" if train["recompute"] else "6N"
        rows.append(
            (
                "train FLOPs/token",
                _si(train["flops_per_token"], "FLOP"),
                f"{how} + attention, seq {train['seq']:,}",
            )
        )
        rows.append(
            (
                "train time",
                _seconds(train["seconds"]),
                f"{train['tokens']:,} tokens on {train['devices']} devices",
            )
        )
        if train["cost"] is not None:
            rows.append(("train cost", f"${train['cost']:,.2f}", ""))
    if "fits_one_device" in data and not data["fits_one_device"]:
        rows.append(("note", "weights + KV exceed one device", "the times assume they fit"))
    _print_rows(f"{data['source']}: cost of a token", ("quantity", "value", "how"), rows)

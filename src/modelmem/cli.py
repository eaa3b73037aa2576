"""Command-line interface: a thin layer over the library.

Each command resolves its inputs, calls the pure core, and renders the result as a table
(rich, imported only when a table is printed) or as JSON (``--json``). Errors from the
library are caught once, in :func:`main`, and printed as one line with exit code 2.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

import click

from modelmem import __version__
from modelmem.errors import MAX_SHOWN_CHARS, InvalidValueError, ModelMemError, shown

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 1
DEFAULT_DTYPE = "bf16"


def _emit_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2))


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


class LazyGroup(click.Group):
    """A group whose commands from other modules are imported only when one is run (or
    listed by --help): each such module costs milliseconds of click option set-up, and
    the estimate commands must start fast."""

    lazy: ClassVar[dict[str, str]] = {
        "tokens": "modelmem.cli_tokens:tokens",
        "cost": "modelmem.cli_tokens:cost",
        "devices": "modelmem.cli_hardware:devices",
        "fit": "modelmem.cli_hardware:fit",
        "plan": "modelmem.cli_hardware:plan",
        "serve": "modelmem.cli_web:serve",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            from importlib import import_module

            module, _, attribute = self.lazy[cmd_name].partition(":")
            self.add_command(getattr(import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="modelmem")
def cli() -> None:
    """How much memory a large language model needs, and whether it fits.

    SOURCE is a catalogue model (`modelmem models`), a config.json file or model folder,
    or a plain size such as 7B, 1.5b, 124M or 70e9.
    """


def _finite(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """Refuse "nan" and "inf", which click's float type accepts."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value!r} is not a finite number", ctx, param)
    return value


# ----------------------------------------------------------------------------- params


@cli.command()
@click.argument("source")
@click.option(
    "--dtype",
    default=DEFAULT_DTYPE,
    show_default=True,
    help="Number format of the weights for the rule of thumb (see `modelmem formats`).",
)
@click.option(
    "--optimizer",
    default="adamw",
    show_default=True,
    type=click.Choice(["adamw", "adam", "sgd-momentum", "sgd"]),
    help="Optimizer of the training rule of thumb (states: AdamW 2×, SGD+momentum 1×, SGD 0).",
)
@click.option(
    "--train-factor",
    type=float,
    callback=_finite,
    default=None,
    help="Override the training factor (2–4 × inference); default follows the optimizer.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def params(
    source: str, dtype: str, optimizer: str, train_factor: float | None, as_json: bool
) -> None:
    """Parameter count and breakdown of SOURCE, with the rule-of-thumb memory."""
    from modelmem.model.sources import resolve

    model = resolve(source)
    rule = params_rule(model, dtype, optimizer, train_factor)
    data = params_json(model, rule)
    if as_json:
        _emit_json(data)
    else:
        _render_params(model, rule)


def params_rule(model: Any, dtype: str, optimizer: str, train_factor: float | None) -> Any:
    """The rule-of-thumb memory of a resolved model's parameter count."""
    from modelmem.formats import get_format
    from modelmem.memory.rules import rule_of_thumb

    return rule_of_thumb(model.params.total, get_format(dtype), optimizer, train_factor)


def params_data(
    model: Any,
    *,
    dtype: str = DEFAULT_DTYPE,
    optimizer: str = "adamw",
    train_factor: float | None = None,
) -> dict[str, Any]:
    """What `params --json` prints for a resolved model (the web API returns the same)."""
    return params_json(model, params_rule(model, dtype, optimizer, train_factor))


def params_json(model: Any, rule: Any) -> dict[str, Any]:
    p = model.params
    data: dict[str, Any] = {
        "source": model.label,
        "kind": model.kind,
        "origin": model.origin,
        "family": model.spec.family if model.spec else None,
        "total_params": p.total,
        "active_params": p.active,
        "text_params": p.text,
        "components": [{"name": n, "params": c} for n, c in p.components],
        "context_length": model.context_length,
        "tokenizer": model.tokenizer,
        "weights_format": rule.format.name,
        "weights_bytes": rule.inference_bytes,
        "rule_of_thumb": rule.to_dict(),
        "notes": list(model.notes),
    }
    if model.checkpoint is not None:
        data["checkpoint"] = checkpoint_json(model.checkpoint)
        data["weights_format"] = "checkpoint"
        data["weights_bytes"] = model.checkpoint.total_bytes
    if model.adapter is not None and model.spec is not None:
        data["adapter"] = adapter_json(model)
    return data


def checkpoint_json(checkpoint: Any) -> dict[str, Any]:
    return {
        "file_format": checkpoint.file_format,
        "origin": checkpoint.origin,
        "files": checkpoint.files,
        "tensors": len(checkpoint.tensors),
        "params": checkpoint.total_params,
        "bytes": checkpoint.total_bytes,
        "quantization": checkpoint.quantization,
        "bytes_by_dtype": [{"dtype": d, "bytes": b} for d, b in checkpoint.bytes_by_dtype()],
    }


def adapter_json(model: Any) -> dict[str, Any]:
    from modelmem.memory.finetune import adapter_trainable_params

    a = model.adapter
    return {
        "origin": a.origin,
        "rank": a.rank,
        "alpha": a.alpha,
        "targets": a.targets if isinstance(a.targets, str) else list(a.targets),
        "dora": a.dora,
        "trainable_params": adapter_trainable_params(model.spec, a),
    }


def _render_params(model: Any, rule: Any) -> None:
    from rich.table import Table

    from modelmem.units import format_bytes_both, format_count

    p = model.params
    console = _console()
    spec = model.spec
    title = f"{model.label}" + (f" ({spec.family})" if spec else " (size only)")
    table = Table(title=title, title_justify="left")
    table.add_column("component")
    table.add_column("parameters", justify="right")
    table.add_column("share", justify="right")
    if spec is not None:
        for name, count in p.components:
            table.add_row(name, f"{count:,}", f"{100 * count / p.total:.2f}%")
        table.add_section()
    table.add_row("total", f"{p.total:,}", f"{format_count(p.total)}")
    if p.active != p.total:
        table.add_row("active per token", f"{p.active:,}", format_count(p.active))
    if p.text != p.total:
        table.add_row("text decoder", f"{p.text:,}", format_count(p.text))
    console.print(table)
    if model.context_length:
        console.print(f"context length: {model.context_length:,} tokens")
    fmt = rule.format
    console.print(
        f"weights in {fmt.name}: {p.total:,} × {fmt.bytes_per_value} B = "
        f"{rule.inference_bytes:,} bytes = {format_bytes_both(rule.inference_bytes)}"
    )
    console.print(f"rule of thumb, inference ≈ weights = {format_bytes_both(rule.inference_bytes)}")
    console.print(
        f"rule of thumb, training ≈ {rule.training_factor} × inference = "
        f"{format_bytes_both(rule.training_bytes)} ({rule.optimizer}):"
    )
    for c in rule.training.components:
        console.print(f"  {c.name:<17} {format_bytes_both(c.bytes):>22}  {c.how}")
    if model.checkpoint is not None:
        ck = model.checkpoint
        kinds = ", ".join(f"{d} {format_bytes_both(b)}" for d, b in ck.bytes_by_dtype())
        console.print(
            f"{ck.file_format} headers: {len(ck.tensors):,} tensors in {ck.files} file(s), "
            f"{ck.total_params:,} parameters, {ck.total_bytes:,} bytes "
            f"= {format_bytes_both(ck.total_bytes)} ({kinds})"
        )
    if model.adapter is not None and spec is not None:
        a = adapter_json(model)
        console.print(
            f"LoRA adapter r={a['rank']} alpha={a['alpha']:g}: {a['trainable_params']:,} "
            f"trainable parameters ({a['origin']})"
        )
    for note in model.notes:
        console.print(f"note: {note}")
    if spec is None and model.checkpoint is None:
        console.print("only a size is known: give a config.json or catalogue name for a breakdown")


# -------------------------------------------------------------------------- inference


def _with_architecture(source: str) -> Any:
    """Resolve SOURCE; a plain size is refused, since the estimate needs an architecture."""
    from modelmem.model.sources import resolve

    return require_architecture(resolve(source), source)


def require_architecture(model: Any, source: str) -> Any:
    """A resolved model with an architecture; a plain size is refused."""
    if model.spec is None:
        raise ModelMemError(
            f"source={source!r}: a plain size has no architecture; give a config.json or a "
            f"catalogue model (the rule of thumb is in `modelmem params {source}`)"
        )
    return model


def _targets(text: str | None) -> tuple[str, ...] | str | None:
    if not text:
        return None
    return "all-linear" if text == "all-linear" else tuple(t.strip() for t in text.split(","))


def _size(value: str | None, field: str) -> int | None:
    from modelmem.units import parse_bytes

    return None if value is None else parse_bytes(value, field=field)


F = TypeVar("F", bound=Callable[..., Any])


def runtime_overhead_options() -> tuple[Callable[[F], F], ...]:
    """--cuda-context and --allocator-reserve: the assumed runtime overheads of a device."""
    return (
        click.option(
            "--cuda-context",
            default="400MiB",
            show_default=True,
            help="Assumed CUDA context per device.",
        ),
        click.option(
            "--allocator-reserve",
            type=float,
            callback=_finite,
            default=0.05,
            show_default=True,
            help="Assumed caching-allocator slack as a fraction of the tensor peak.",
        ),
    )


def _overhead_options(command: F) -> F:
    """--memory and the assumed runtime overheads, shared by the estimate commands."""
    memory = click.option(
        "--memory", default=None, help="Device memory budget, e.g. 24GiB or 80GB."
    )
    for option in reversed((memory, *runtime_overhead_options())):
        command = option(command)
    return command


def _print_rows(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[str] = ()
) -> None:
    """A plain listing table (the catalogues)."""
    from rich.table import Table

    table = Table(title=title)
    for col in columns:
        table.add_column(col, justify="right" if col in right else "left")
    for row in rows:
        table.add_row(*row)
    _console().print(table)


def _print_breakdown(title: str, data: dict[str, Any]) -> Any:
    """The breakdown table every memory result shares; returns the console."""
    from rich.table import Table

    from modelmem.units import format_bytes_both

    table = Table(title=title, title_justify="left")
    for col in ("component", "bytes", "size", "how"):
        table.add_column(col, justify="right" if col in ("bytes", "size") else "left")
    for c in data["components"]:
        table.add_row(c["name"], f"{c['bytes']:,}", format_bytes_both(c["bytes"]), c["how"])
    table.add_section()
    table.add_row("total", f"{data['total_bytes']:,}", format_bytes_both(data["total_bytes"]), "")
    console = _console()
    console.print(table)
    return console


@cli.command()
@click.argument("source")
@click.option(
    "--dtype",
    default=None,
    help="Weight format or scheme: bf16, fp8, bnb-nf4, gptq-4bit-g128, gguf-q4_k_m, ... "
    "Default: the checkpoint's own tensors where SOURCE has weight files, else bf16.",
)
@click.option("--kv-dtype", default=None, help="KV cache format (bf16, fp8, q8_0, q4_0, ...).")
@click.option("--batch", type=int, default=1, show_default=True, help="Concurrent sequences.")
@click.option(
    "--context",
    type=int,
    default=None,
    help="Tokens cached per sequence (prompt + output); default: the model's, capped at 8192.",
)
@click.option("--prompt", type=int, default=None, help="Prefill length (default: the context).")
@click.option(
    "--engine",
    type=click.Choice(["transformers", "vllm", "llama.cpp"]),
    default=None,
    help="Whose memory accounting to follow (default: llama.cpp for a GGUF file, else "
    "transformers).",
)
@click.option(
    "--attention",
    type=click.Choice(["sdpa", "eager"]),
    default="sdpa",
    show_default=True,
    help="transformers attention implementation.",
)
@click.option("--tp", type=int, default=1, show_default=True, help="Tensor-parallel devices.")
@_overhead_options
@click.option(
    "--gpu-memory-utilization",
    type=float,
    default=0.9,
    show_default=True,
    help="vLLM: fraction of device memory it takes.",
)
@click.option(
    "--max-num-batched-tokens",
    type=int,
    default=8192,
    show_default=True,
    help="vLLM: tokens of the profile run (chunked-prefill budget).",
)
@click.option("--ubatch", type=int, default=512, show_default=True, help="llama.cpp: -ub.")
@click.option(
    "--no-flash-attention", is_flag=True, help="llama.cpp: without -fa (materializes KQ)."
)
@click.option("--gpu-layers", type=int, default=None, help="llama.cpp: -ngl (default: what fits).")
@click.option(
    "--plot",
    "plot_path",
    default=None,
    metavar="FILE",
    help="Also write the breakdown and memory against context to FILE.png or FILE.svg "
    "(needs the plot extra: matplotlib).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def inference(source: str, plot_path: str | None, as_json: bool, **options: Any) -> None:
    """Memory to serve SOURCE: weights + KV cache + activations + runtime overheads."""
    _check_plot(plot_path)
    model = _with_architecture(source)
    data = inference_data(model, **options)
    if plot_path:
        _plot_sweep(
            plot_path,
            f"{model.label}: inference b={data['batch']} context={data['context']:,}",
            data,
            lambda c: inference_data(model, **{**options, "context": c, "memory": None}),
            "context",
            model.spec.context_length,
        )
    if as_json:
        _emit_json(data)
        return
    _render_memory(model.label, data)


def _check_plot(plot_path: str | None) -> None:
    if plot_path:
        from modelmem.plots import check_plot_path

        check_plot_path(plot_path)


def _plot_sweep(
    plot_path: str,
    title: str,
    data: dict[str, Any],
    at: Callable[[int], dict[str, Any]],
    axis: str,
    model_context: int,
) -> None:
    """Write --plot: the breakdown of ``data`` and its total at each context of a sweep."""
    from modelmem.plots import context_points, write_plot

    points = context_points(data[axis], model_context)
    sweep = [(c, data["total_bytes"] if c == data[axis] else at(c)["total_bytes"]) for c in points]
    label = "context (tokens)" if axis == "context" else "sequence length (tokens)"
    write_plot(plot_path, title, data["components"], sweep, label, data.get("memory_bytes"))


def inference_data(
    model: Any,
    *,
    dtype: str | None = None,
    kv_dtype: str | None = None,
    batch: int = 1,
    context: int | None = None,
    prompt: int | None = None,
    engine: str | None = None,
    attention: str = "sdpa",
    tp: int = 1,
    memory: str | None = None,
    cuda_context: str = "400MiB",
    allocator_reserve: float = 0.05,
    gpu_memory_utilization: float = 0.9,
    max_num_batched_tokens: int = 8192,
    ubatch: int = 512,
    no_flash_attention: bool = False,
    gpu_layers: int | None = None,
) -> dict[str, Any]:
    """What `inference --json` prints for a resolved model with an architecture.

    The keyword arguments are the command's options, with the same defaults; the web
    API calls this too, so both answer with the same JSON.
    """
    from fractions import Fraction

    from modelmem.formats import get_format
    from modelmem.memory.engines import EngineSettings
    from modelmem.memory.inference import InferenceWorkload, estimate_inference, largest_fitting
    from modelmem.memory.rules import rule_of_thumb

    spec = model.spec
    budget = _size(memory, "memory")
    ctx = context if context is not None else min(spec.context_length, 8192)
    engine = engine or ("llama.cpp" if model.kind == "gguf" else "transformers")
    stored = model.checkpoint.weights_estimate() if model.checkpoint and dtype is None else None
    dtype = dtype or (_compute_dtype(model.checkpoint) if stored else DEFAULT_DTYPE)
    workload = InferenceWorkload(
        batch=batch,
        context=ctx,
        prompt=prompt,
        dtype=dtype,
        kv_dtype=kv_dtype,
        engine=engine,
        attention=attention,
        tp=tp,
        stored_weights=stored,
        cuda_context_bytes=_size(cuda_context, "cuda_context") or 0,
        allocator_reserve=Fraction(allocator_reserve).limit_denominator(10_000),
    )
    settings = EngineSettings(
        device_memory_bytes=budget,
        gpu_memory_utilization=gpu_memory_utilization,
        max_num_batched_tokens=max_num_batched_tokens,
        n_ubatch=ubatch,
        flash_attention=not no_flash_attention,
        gpu_layers=gpu_layers,
    )
    est = estimate_inference(spec, workload, settings)
    plain = dtype.lower().removeprefix("gguf-")
    rule_format = get_format(plain if plain in ("fp32", "fp16", "bf16", "f16") else "bf16")
    rule = rule_of_thumb(model.params.total, rule_format)
    data: dict[str, Any] = {
        "source": model.label,
        "engine": engine,
        **est.breakdown.to_dict(),
        "peak_phase": est.peak_phase,
        "weights_bytes": est.weights.total_bytes,
        "weights_by_format": [{"format": f, "bytes": b} for f, b in est.weights.by_format],
        "kv_cache_bytes_per_token": est.cache.bytes_per_token,
        "batch": batch,
        "context": ctx,
        "rule_of_thumb": {
            "inference_bytes": rule.inference_bytes,
            "training_bytes": rule.training_bytes,
            "format": rule.format.name,
        },
    }
    data["notes"][:0] = list(model.notes)
    if context and context > spec.context_length:
        data["notes"].append(f"context {context:,} exceeds the model's {spec.context_length:,}")
    if budget is not None and engine != "vllm":
        data["memory_bytes"] = budget
        data["fits"] = est.total_bytes <= budget
        data["margin_bytes"] = budget - est.total_bytes
        data["max_context"] = largest_fitting(spec, workload, budget, "context", settings)
        data["max_batch"] = largest_fitting(spec, workload, budget, "batch", settings)
    return data


def _compute_dtype(checkpoint: Any) -> str:
    """The activation format a checkpoint implies: its widest float tensors' format."""
    stored = {d for d, _ in checkpoint.bytes_by_dtype()}
    return (
        "fp32"
        if stored == {"F32"}
        else "fp16"
        if "F16" in stored and "BF16" not in stored
        else DEFAULT_DTYPE
    )


def _render_memory(label: str, data: dict[str, Any]) -> None:
    from modelmem.units import format_bytes_both

    title = f"{label}: {data['engine']} b={data['batch']} context={data['context']:,}"
    console = _print_breakdown(title, data)
    console.print(f"KV cache per token: {data['kv_cache_bytes_per_token']:,} B")
    rule = data["rule_of_thumb"]
    console.print(
        f"rule of thumb ({rule['format']}): inference ≈ weights = "
        f"{format_bytes_both(rule['inference_bytes'])}"
    )
    if "fits" in data:
        verdict = "fits" if data["fits"] else "does not fit"
        console.print(
            f"{verdict} in {format_bytes_both(data['memory_bytes'])}: margin "
            f"{format_bytes_both(data['margin_bytes'])}; largest context at this batch "
            f"{data['max_context']:,}, largest batch at this context {data['max_batch']:,}"
        )
    for note in data["notes"]:
        console.print(f"note: {note}")


# ------------------------------------------------------------------------------ train


@cli.command()
@click.argument("source")
@click.option(
    "--recipe",
    type=click.Choice(["fp32", "amp-bf16", "amp-fp16", "pure-bf16", "pure-fp16", "mixed-bf16"]),
    default=None,
    help="fp32; autocast (amp-*); all 16 bit (pure-*); 16-bit + fp32 master (mixed-bf16). "
    "Default: amp-bf16; mixed-bf16 with ZeRO/FSDP/offload (DeepSpeed's bf16 mode); "
    "pure-bf16 (a bf16 base) for LoRA/QLoRA.",
)
@click.option(
    "--optimizer",
    type=click.Choice(
        [
            "adamw",
            "adam",
            "adamw-8bit",
            "sgd",
            "sgd-momentum",
            "adagrad",
            "rmsprop",
            "lion",
            "adafactor",
        ]
    ),
    default="adamw",
    show_default=True,
    help="Optimizer (state bytes per parameter follow it).",
)
@click.option(
    "--optimizer-impl",
    type=click.Choice(["foreach", "fused", "for-loop"]),
    default="foreach",
    show_default=True,
    help="foreach holds about a copy of the parameters at the step; fused none.",
)
@click.option("--batch", type=int, default=1, show_default=True, help="Micro-batch size.")
@click.option("--seq", type=int, default=2048, show_default=True, help="Sequence length.")
@click.option(
    "--checkpointing", is_flag=True, help="Per-layer gradient (activation) checkpointing."
)
@click.option(
    "--selective-checkpointing",
    is_flag=True,
    help="Selective recomputation (Korthikanti et al. 2022): only the attention core "
    "(QKᵀ, softmax, ·V) is recomputed; drops eager's s² scores, ≈ none with sdpa/flash.",
)
@click.option(
    "--attention",
    type=click.Choice(["sdpa", "eager"]),
    default="sdpa",
    show_default=True,
    help="sdpa/flash keeps no scores; eager keeps the b·heads·s² softmax.",
)
@click.option(
    "--grad-accumulation",
    type=int,
    default=1,
    show_default=True,
    help="Micro-batches per step (adds no activations).",
)
@click.option(
    "--method",
    type=click.Choice(["full", "lora", "qlora"]),
    default=None,
    help="Full fine-tuning, LoRA on a 16-bit base, or QLoRA on a 4-bit base "
    "(default: lora for an adapter SOURCE, else full).",
)
@click.option(
    "--lora-rank", type=int, default=None, help="LoRA rank r (default: the adapter's, else 16)."
)
@click.option(
    "--lora-targets",
    default=None,
    help="Comma-separated module names or all-linear (default: the adapter's, else PEFT's "
    "for the family).",
)
@click.option("--dora", is_flag=True, help="DoRA: adds a magnitude vector per adapted layer.")
@click.option(
    "--qlora-scheme",
    default="bnb-nf4-dq",
    show_default=True,
    help="Frozen base format of QLoRA (bnb-nf4-dq, bnb-nf4, bnb-fp4, ...).",
)
@click.option(
    "--zero",
    type=click.IntRange(0, 3),
    default=0,
    show_default=True,
    help="ZeRO stage: 1 shards optimizer states, 2 also gradients, 3 also parameters.",
)
@click.option(
    "--fsdp",
    type=click.Choice(["no-shard", "shard-grad-op", "full-shard"]),
    default=None,
    help="FSDP sharding (same model-state sharding as ZeRO 0 / 2 / 3).",
)
@click.option("--devices", type=int, default=1, show_default=True, help="Data-parallel ranks.")
@click.option(
    "--offload-optimizer",
    type=click.Choice(["none", "cpu", "nvme"]),
    default="none",
    show_default=True,
    help="ZeRO-Offload: optimizer states (and fp32 gradients) on the CPU or NVMe (ZeRO 1-3).",
)
@click.option(
    "--offload-param",
    type=click.Choice(["none", "cpu", "nvme"]),
    default="none",
    show_default=True,
    help="ZeRO-3 parameter offload: the parameter partition on the CPU or NVMe.",
)
@click.option(
    "--fsdp-offload",
    is_flag=True,
    help="FSDP CPUOffload(offload_params=True) with --fsdp full-shard: parameters, "
    "gradients and optimizer states on the CPU.",
)
@click.option(
    "--nodes", type=int, default=1, show_default=True, help="Hosts (host memory is per node)."
)
@click.option(
    "--zero-init/--no-zero-init",
    default=True,
    show_default=True,
    help="Model built under deepspeed.zero.Init (DeepSpeed's ZeRO-3 estimator only).",
)
@click.option("--tp", type=int, default=1, show_default=True, help="Tensor-parallel size.")
@click.option("--pp", type=int, default=1, show_default=True, help="Pipeline-parallel stages.")
@click.option("--sp", is_flag=True, help="Sequence parallelism (Megatron, needs --tp > 1).")
@click.option(
    "--paged-optimizer",
    is_flag=True,
    help="bitsandbytes paged optimizer: states in CUDA unified memory, counted off-device.",
)
@click.option(
    "--optimizer-in-backward",
    is_flag=True,
    help="Step each parameter in its gradient hook: no full gradient buffer.",
)
@click.option(
    "--loss",
    type=click.Choice(["full", "chunked", "fused"]),
    default=None,
    help="full fp32 logits (transformers), chunked (torchtune) or fused linear "
    "cross-entropy (Liger). Default: full, or chunked with --loss-chunks.",
)
@click.option("--loss-chunks", type=int, default=None, help="Chunks of the chunked loss (8).")
@click.option(
    "--deepspeed",
    "deepspeed_path",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="DS_CONFIG.json",
    help="Read ZeRO stage, offload, bf16/fp16, micro-batch, accumulation, optimizer from "
    'a DeepSpeed config ("auto" keeps the option given here).',
)
@_overhead_options
@click.option(
    "--plot",
    "plot_path",
    default=None,
    metavar="FILE",
    help="Also write the breakdown and memory against sequence length to FILE.png or FILE.svg "
    "(needs the plot extra: matplotlib).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def train(
    source: str,
    deepspeed_path: str | None,
    plot_path: str | None,
    as_json: bool,
    **options: Any,
) -> None:
    """Peak memory of a training step of SOURCE on the most loaded device, with every term."""

    _check_plot(plot_path)
    deepspeed: Any = None
    if deepspeed_path is not None:
        from modelmem.memory.deepspeed import read_deepspeed_config

        deepspeed = read_deepspeed_config(deepspeed_path)
    model = _with_architecture(source)
    options["deepspeed"] = deepspeed
    data = train_data(model, **options)
    if plot_path:
        _plot_sweep(
            plot_path,
            f"{model.label}: training step b={data['batch']} seq={data['seq']:,}",
            data,
            lambda s: train_data(model, **{**options, "seq": s, "memory": None}),
            "seq",
            min(model.spec.context_length, 32_768),
        )
    if as_json:
        _emit_json(data)
        return
    _render_training(model.label, data)


def train_data(
    model: Any,
    *,
    recipe: str | None = None,
    optimizer: str = "adamw",
    optimizer_impl: str = "foreach",
    batch: int = 1,
    seq: int = 2048,
    checkpointing: bool = False,
    selective_checkpointing: bool = False,
    attention: str = "sdpa",
    grad_accumulation: int = 1,
    method: str | None = None,
    lora_rank: int | None = None,
    lora_targets: str | None = None,
    dora: bool = False,
    qlora_scheme: str = "bnb-nf4-dq",
    zero: int = 0,
    fsdp: str | None = None,
    devices: int = 1,
    offload_optimizer: str = "none",
    offload_param: str = "none",
    fsdp_offload: bool = False,
    nodes: int = 1,
    zero_init: bool = True,
    tp: int = 1,
    pp: int = 1,
    sp: bool = False,
    paged_optimizer: bool = False,
    optimizer_in_backward: bool = False,
    loss: str | None = None,
    loss_chunks: int | None = None,
    deepspeed: Any = None,
    memory: str | None = None,
    cuda_context: str = "400MiB",
    allocator_reserve: float = 0.05,
) -> dict[str, Any]:
    """What `train --json` prints for a resolved model with an architecture.

    The keyword arguments are the command's options, with the same defaults; the web
    API calls this too, so both answer with the same JSON. ``deepspeed`` is a parsed
    DeepSpeed config object: the values it sets win over the options (``"auto"`` keeps
    them).
    """
    from fractions import Fraction

    from modelmem.errors import InvalidValueError
    from modelmem.formats import get_format
    from modelmem.memory.deepspeed import parse_deepspeed_config
    from modelmem.memory.parallel import FSDP_TO_ZERO
    from modelmem.memory.rules import rule_of_thumb
    from modelmem.memory.training import TrainingWorkload, estimate_training

    spec = model.spec
    adapter = model.adapter
    ds_notes: list[str] = []
    if deepspeed is not None:
        if fsdp:
            raise InvalidValueError(
                "deepspeed", "config", "DeepSpeed and --fsdp exclude each other"
            )
        settings = parse_deepspeed_config(deepspeed, data_parallel=devices)
        taken = settings.options()
        zero = taken.get("zero", zero)
        offload_optimizer = taken.get("offload_optimizer", offload_optimizer)
        offload_param = taken.get("offload_param", offload_param)
        recipe = taken.get("recipe", recipe)
        batch = taken.get("batch", batch)
        grad_accumulation = taken.get("grad_accumulation", grad_accumulation)
        optimizer = taken.get("optimizer", optimizer)
        checkpointing = taken.get("checkpointing", checkpointing)
        shown = ", ".join(f"{k}={v}" for k, v in taken.items()) or "nothing (all auto)"
        ds_notes.append(f"from the DeepSpeed config: {shown}")
        ds_notes.extend(settings.notes)
    if fsdp_offload:
        if fsdp != "full-shard":
            raise InvalidValueError(
                "fsdp_offload", True, f"modelled with fsdp full-shard, not {fsdp}"
            )
        offload_optimizer = offload_param = "cpu"
    loss = loss or ("chunked" if loss_chunks else "full")
    method = method or ("lora" if adapter is not None else "full")
    targets = _targets(lora_targets)
    notes: list[str] = list(model.notes)
    if adapter is not None and method != "full":
        lora_rank = adapter.rank if lora_rank is None else lora_rank
        dora = dora or adapter.dora
        if targets is None and not adapter.targets_regex and adapter.targets:
            targets = adapter.targets
        if not adapter.uniform:
            notes.append(
                "the adapter uses per-module ranks, layer subsets, a regex, extra trainable "
                "modules or biases: the memory terms assume rank "
                f"{lora_rank} on its named targets; trainable_params_adapter is exact"
            )
    if recipe is None:
        sharded = zero > 0 or fsdp is not None or offload_optimizer != "none"
        # DeepSpeed's bf16 mode and FSDP's MixedPrecision keep 16-bit parameters for compute
        # beside the fp32 master (mixed-bf16); plain PyTorch training uses autocast.
        recipe = "pure-bf16" if method != "full" else "mixed-bf16" if sharded else "amp-bf16"
        notes.append(f"recipe {recipe} (the default for this setup; --recipe to change)")
    workload = TrainingWorkload(
        batch=batch,
        seq=seq,
        recipe=recipe,
        optimizer=optimizer,
        optimizer_impl=optimizer_impl,
        checkpointing=checkpointing,
        selective_checkpointing=selective_checkpointing,
        attention=attention,
        grad_accumulation=grad_accumulation,
        method=method,
        lora_rank=16 if lora_rank is None else lora_rank,
        lora_targets=targets,
        dora=dora,
        qlora_scheme=qlora_scheme,
        zero=FSDP_TO_ZERO[fsdp] if fsdp else zero,
        devices=devices,
        fsdp=fsdp is not None,
        offload_optimizer=offload_optimizer,
        offload_param=offload_param,
        nodes=nodes,
        zero_init=zero_init,
        tp=tp,
        pp=pp,
        sp=sp,
        paged_optimizer=paged_optimizer,
        optimizer_in_backward=optimizer_in_backward,
        loss=loss,
        loss_chunks=loss_chunks or 8,
        cuda_context_bytes=_size(cuda_context, "cuda_context") or 0,
        allocator_reserve=Fraction(allocator_reserve).limit_denominator(10_000),
    )
    est = estimate_training(spec, workload)
    rule = rule_of_thumb(model.params.total, get_format("fp32"))
    data: dict[str, Any] = {
        "source": model.label,
        "recipe": recipe,
        "batch": batch,
        "seq": seq,
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
    if workload.loss == "chunked":
        data["loss_chunks"] = workload.loss_chunks
    if est.deepspeed_estimator is not None:
        data["deepspeed_estimator"] = est.deepspeed_estimator
    data["notes"][:0] = notes + ds_notes
    if adapter is not None:
        data["adapter"] = adapter_json(model)
        data["trainable_params_adapter"] = data["adapter"]["trainable_params"]
    budget = _size(memory, "memory")
    if budget is not None:
        data["memory_bytes"] = budget
        data["fits"] = est.breakdown.total_bytes <= budget
        data["margin_bytes"] = budget - est.breakdown.total_bytes
    return data


def _render_training(label: str, data: dict[str, Any]) -> None:
    from modelmem.units import format_bytes_both

    title = f"{label}: training step, {data['recipe']} b={data['batch']} s={data['seq']:,}"
    console = _print_breakdown(title, data)
    moments = ", ".join(f"{k} {format_bytes_both(v)}" for k, v in data["moments"].items())
    console.print(f"tensor peak by moment of the step: {moments}")
    if data["total_devices"] > 1:
        par = data["parallel"]
        console.print(
            f"per device of {data['total_devices']} (dp {par['dp']} × tp {par['tp']} × pp "
            f"{par['pp']}{', sp' if par['sp'] else ''}); priced stage: {data['stage']}"
            + (
                " ("
                + ", ".join(f"{k} {format_bytes_both(v)}" for k, v in data["stage_peaks"].items())
                + ")"
                if len(data["stage_peaks"]) > 1
                else ""
            )
        )
    for part in data["offloaded"]:
        console.print(
            f"off the device ({part['where']}): {part['name']} "
            f"{format_bytes_both(part['bytes'])} per device — {part['how']}"
        )
    if data["offloaded"]:
        console.print(
            f"host memory per node: {format_bytes_both(data['host_bytes'])}"
            + (
                f"; NVMe per node: {format_bytes_both(data['nvme_bytes'])}"
                if data["nvme_bytes"]
                else ""
            )
        )
    ds = data.get("deepspeed_estimator")
    if ds is not None:
        console.print(
            f"DeepSpeed's {ds['function']} (model states only): "
            f"{format_bytes_both(ds['gpu_bytes'])} per GPU, "
            f"{format_bytes_both(ds['cpu_bytes'])} CPU per node"
        )
    rule = data["rule_of_thumb"]
    console.print(
        f"rule of thumb (fp32 + AdamW): training ≈ 4 × inference = "
        f"{format_bytes_both(rule['training_bytes'])}, before activations"
    )
    if "fits" in data:
        verdict = "fits" if data["fits"] else "does not fit"
        console.print(
            f"{verdict} in {format_bytes_both(data['memory_bytes'])}: margin "
            f"{format_bytes_both(data['margin_bytes'])}"
        )
    for note in data["notes"]:
        console.print(f"note: {note}")


# ---------------------------------------------------------------------------- measure


@cli.command()
@click.argument("source")
@click.option(
    "--mode",
    type=click.Choice(["train", "inference"]),
    default="train",
    show_default=True,
    help="A training step (forward, loss, backward, optimizer) or prefill + decode.",
)
@click.option("--batch", type=int, default=1, show_default=True, help="Micro-batch size.")
@click.option(
    "--seq",
    "--context",
    "seq",
    type=int,
    default=2048,
    show_default=True,
    help="Training sequence length, or prompt length for inference.",
)
@click.option(
    "--decode-steps",
    type=int,
    default=2,
    show_default=True,
    help="Inference: decode steps after the prefill, with the cache.",
)
@click.option(
    "--recipe",
    type=click.Choice(["fp32", "amp-bf16", "amp-fp16", "pure-bf16", "pure-fp16"]),
    default="amp-bf16",
    show_default=True,
    help="fp32; autocast over fp32 weights (amp-*); weights and states in 16 bit (pure-*).",
)
@click.option(
    "--optimizer",
    type=click.Choice(
        ["adamw", "adam", "adamw-8bit", "sgd", "sgd-momentum", "adagrad", "rmsprop", "adafactor"]
    ),
    default="adamw",
    show_default=True,
    help="Training optimizer (torch.optim; adamw-8bit: bitsandbytes' AdamW8bit, its real step).",
)
@click.option(
    "--optimizer-impl",
    type=click.Choice(["foreach", "fused", "for-loop"]),
    default="foreach",
    show_default=True,
    help="Optimizer implementation; foreach is PyTorch's CUDA default.",
)
@click.option("--checkpointing", is_flag=True, help="Per-layer gradient checkpointing.")
@click.option(
    "--selective-checkpointing",
    is_flag=True,
    help="Recompute only the attention core: each attention function runs under "
    "torch.utils.checkpoint (Korthikanti et al. 2022 selective recomputation).",
)
@click.option(
    "--attention",
    type=click.Choice(["sdpa", "eager"]),
    default="sdpa",
    show_default=True,
    help="Attention implementation (sdpa saves no scores; eager materializes b·heads·s²).",
)
@click.option(
    "--lora-rank", type=int, default=None, help="Train LoRA adapters (PEFT) of this rank."
)
@click.option(
    "--lora-targets",
    default=None,
    help="Comma-separated module names or all-linear (default: PEFT's for the family).",
)
@click.option("--steps", type=int, default=2, show_default=True, help="Training steps to run.")
@click.option(
    "--whole",
    is_flag=True,
    help="Measure every layer instead of extrapolating exactly from three shallow copies.",
)
@click.option(
    "--real", is_flag=True, help="Use real CPU tensors instead of fake ones (small models only)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def measure(
    source: str,
    mode: str,
    batch: int,
    seq: int,
    decode_steps: int,
    recipe: str,
    optimizer: str,
    optimizer_impl: str,
    checkpointing: bool,
    selective_checkpointing: bool,
    attention: str,
    lora_rank: int | None,
    lora_targets: str | None,
    steps: int,
    whole: bool,
    real: bool,
    as_json: bool,
) -> None:
    """Measure the exact tensor peak of a real step of SOURCE with fake tensors.

    Runs the installed transformers implementation of the architecture on PyTorch fake
    tensors (no weights, no GPU, no model code from the Hub) and records every tensor
    allocation. Needs the `measure` extra (torch, transformers; peft for LoRA).
    """
    from modelmem.errors import InvalidValueError
    from modelmem.measure import load_measure
    from modelmem.model.sources import resolve

    model = resolve(source)
    if model.spec is None or model.config is None:
        raise InvalidValueError(
            "source", source, "measure needs an architecture (config.json or catalogue)"
        )
    run, settings_cls = load_measure()
    targets = _targets(lora_targets)
    settings = settings_cls(
        mode=mode,
        batch=batch,
        seq=seq,
        decode_steps=decode_steps,
        recipe=recipe,
        optimizer=optimizer,
        optimizer_impl=optimizer_impl,
        checkpointing=checkpointing,
        selective_checkpointing=selective_checkpointing,
        attention=attention,
        lora_rank=lora_rank,
        lora_targets=targets,
        steps=steps,
        fake=not real,
    )
    result = run(model.config, model.spec, settings, whole=whole or real)
    data = {"source": model.label, **result.to_dict()}
    if as_json:
        _emit_json(data)
        return
    _render_measure(model.label, data)


def _render_measure(label: str, data: dict[str, Any]) -> None:
    from rich.table import Table

    from modelmem.units import format_bytes_both

    table = Table(title=f"{label}: measured peak, {data['mode']}", title_justify="left")
    table.add_column("component")
    table.add_column("bytes", justify="right")
    table.add_column("size", justify="right")
    table.add_column("how")
    for c in data["components"]:
        table.add_row(c["name"], f"{c['bytes']:,}", format_bytes_both(c["bytes"]), c["how"])
    table.add_section()
    table.add_row("peak", f"{data['total_bytes']:,}", format_bytes_both(data["total_bytes"]), "")
    console = _console()
    console.print(table)
    console.print(f"peak in {data['peak_phase']} at {data['peak_op']}")
    console.print(
        f"with CUDA's 512-byte blocks: {format_bytes_both(data['peak_rounded_bytes'])}; "
        "not included: CUDA context, allocator caching and fragmentation, library workspaces"
    )
    for note in data["notes"]:
        console.print(f"note: {note}")


@cli.command()
@click.option("--quick", is_flag=True, help="Only the three-row grid the test suite runs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def validate(quick: bool, as_json: bool) -> None:
    """Run the estimators against fake-tensor measurement over a grid; print the errors.

    Exits with 1 when a row is outside its tolerance. Needs the `measure` extra.
    """
    from modelmem.measure import load_measure

    load_measure()  # a clear error when torch/transformers are missing
    from modelmem.measure.validate import FULL_GRID, QUICK_GRID
    from modelmem.measure.validate import validate as run_grid

    rows = run_grid(QUICK_GRID if quick else FULL_GRID)
    if as_json:
        _emit_json([r.to_dict() for r in rows])
    else:
        from rich.table import Table

        from modelmem.units import format_bytes_binary

        table = Table(title="estimate vs fake-tensor measurement (tensor peak)")
        for col in ("model", "settings", "estimate", "measured", "error", "within"):
            table.add_column(
                col, justify="right" if col in ("estimate", "measured", "error") else "left"
            )
        for r in rows:
            table.add_row(
                r.case.model,
                r.case.label,
                format_bytes_binary(r.estimate_bytes),
                format_bytes_binary(r.measured_bytes),
                f"{r.error:+.2%}",
                f"{'yes' if r.passed else 'NO'} (±{r.case.tolerance:.0%})",
            )
        _console().print(table)
    if not all(r.passed for r in rows):
        raise click.exceptions.Exit(1)


# ------------------------------------------------------------------------- catalogues


@cli.command()
@click.option("--family", default=None, help="Only models of this model_type.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def models(family: str | None, as_json: bool) -> None:
    """The built-in model catalogue."""
    rows = models_data(family)
    if as_json:
        _emit_json(rows)
        return
    from modelmem.units import format_count

    _print_rows(
        f"{len(rows)} models",
        ("name", "family", "params", "context", "hub id"),
        [
            (
                r["name"],
                r["family"],
                format_count(r["total_params"]),
                f"{r['context_length']:,}",
                r["hub_id"],
            )
            for r in rows
        ],
        right=("params", "context"),
    )


def _check_family(family: str | None, known: set[str]) -> None:
    """A filter that names no family is a typo, not an empty catalogue."""
    if family is not None and family not in known:
        from modelmem.errors import UnknownNameError

        raise UnknownNameError("family", family, known)


def models_data(family: str | None = None) -> list[dict[str, Any]]:
    """What `models --json` prints."""
    from modelmem.model.sources.catalogue import load_catalogue

    catalogue = load_catalogue().values()
    _check_family(family, {e.family for e in catalogue})
    entries = [e for e in catalogue if family is None or e.family == family]
    return [
        {
            "name": e.name,
            "hub_id": e.hub_id,
            "family": e.family,
            "total_params": e.params_transformers,
            "context_length": e.context_length,
            "tokenizer": e.tokenizer,
            "source": e.source,
        }
        for e in entries
    ]


@cli.command()
@click.option("--family", default=None, help="Only formats of this family (float, ggml, ...).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def formats(family: str | None, as_json: bool) -> None:
    """Number formats and quantization schemes, with exact bits per value."""
    rows = formats_data(family)
    if as_json:
        _emit_json(rows)
        return
    _print_rows(
        f"{len(rows)} number formats",
        ("name", "family", "block", "bytes/block", "bits/value", "aliases"),
        [
            (
                r["name"],
                r["family"],
                str(r["block_size"]),
                str(r["bytes_per_block"]),
                f"{r['bits_per_value']:.4g}",
                ", ".join(r["aliases"]),
            )
            for r in rows
        ],
    )


def formats_data(family: str | None = None) -> list[dict[str, Any]]:
    """What `formats --json` prints."""
    from modelmem.formats import all_formats

    _check_family(family, {f.family for f in all_formats()})
    chosen = [f for f in all_formats() if family is None or f.family == family]
    return [
        {
            "name": f.name,
            "family": f.family,
            "block_size": f.block_size,
            "bytes_per_block": f.bytes_per_block,
            "bits_per_value": float(f.bits_per_value),
            "aliases": list(f.aliases),
            "source": f.source,
        }
        for f in chosen
    ]


# ------------------------------------------------------------------------------ entry


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; bad input is one line on stderr and exit code 2, never a traceback."""
    args = list(argv) if argv is not None else sys.argv[1:]
    try:
        for arg in args:  # undecodable bytes arrive as lone surrogates (PEP 383)
            if not arg.isascii():
                try:
                    arg.encode("utf-8")
                except UnicodeEncodeError:
                    raise InvalidValueError("argument", arg, "not valid UTF-8") from None
        cli.main(args=args, standalone_mode=False)
    except ModelMemError as e:
        click.echo(f"modelmem: error: {e}", err=True)
        return EXIT_BAD_INPUT
    except click.exceptions.Abort:
        click.echo("modelmem: aborted", err=True)
        return 130
    except click.exceptions.ClickException as e:  # usage errors: unknown option, bad choice
        # a 5,000-digit --batch is echoed by click: cut each overlong word to a readable size
        message = re.sub(rf"\S{{{MAX_SHOWN_CHARS},}}", lambda m: shown(m[0]), e.format_message())
        click.echo(f"modelmem: error: {message}", err=True)
        return EXIT_BAD_INPUT
    except OSError as e:
        click.echo(f"modelmem: error: {shown(str(e.filename or ''))}: {e.strerror}", err=True)
        return EXIT_BAD_INPUT
    except Exception as e:  # a bug or a library failure: still one line, unless debugging
        if os.environ.get("MODELMEM_DEBUG"):
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        click.echo(
            f"modelmem: internal error: {type(e).__name__}: {first} (MODELMEM_DEBUG=1 shows more)",
            err=True,
        )
        return EXIT_INTERNAL
    return 0

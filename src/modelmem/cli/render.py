"""The one renderer of the command line: each command's JSON document as tables and lines.

Every ``render_*`` takes exactly what the command prints with ``--json``, so the table and
the JSON cannot disagree. rich is imported only here, and only when a table is drawn.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click


def emit_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2))


def console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def print_rows(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[str] = ()
) -> None:
    """A plain listing table (the catalogues)."""
    from rich.table import Table

    table = Table(title=title)
    for col in columns:
        table.add_column(col, justify="right" if col in right else "left")
    for row in rows:
        table.add_row(*row)
    console().print(table)


def print_breakdown(title: str, data: dict[str, Any]) -> Any:
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
    out = console()
    out.print(table)
    return out


def print_changes(out: Any, data: dict[str, Any]) -> None:
    """The "what to change" lines of a result that does not fit."""
    from modelmem.units import format_bytes_both

    changes = data.get("changes")
    if not changes:
        return
    out.print("what to change (each alone, priced by the same estimate):")
    for c in changes:
        verdict = "fits" if c["fits"] else "still does not fit"
        out.print(f"  {c['change']:<40} {format_bytes_both(c['total_bytes']):>24}  {verdict}")


def render_params(data: dict[str, Any]) -> None:
    from rich.table import Table

    from modelmem.units import format_bytes_both, format_count

    out = console()
    total = data["total_params"]
    title = data["source"] + (f" ({data['family']})" if data["family"] else " (size only)")
    table = Table(title=title, title_justify="left")
    table.add_column("component")
    table.add_column("parameters", justify="right")
    table.add_column("share", justify="right")
    if data["family"]:
        for c in data["components"]:
            table.add_row(c["name"], f"{c['params']:,}", f"{100 * c['params'] / total:.2f}%")
        table.add_section()
    table.add_row("total", f"{total:,}", format_count(total))
    if data["active_params"] != total:
        table.add_row(
            "active per token", f"{data['active_params']:,}", format_count(data["active_params"])
        )
    if data["text_params"] != total:
        text = data["text_params"]
        table.add_row("text decoder", f"{text:,}", format_count(text))
    out.print(table)
    if data["context_length"]:
        out.print(f"context length: {data['context_length']:,} tokens")
    rule = data["rule_of_thumb"]
    out.print(
        f"weights in {rule['format']}: {total:,} × {rule['bytes_per_param']} B = "
        f"{rule['inference_bytes']:,} bytes = {format_bytes_both(rule['inference_bytes'])}"
    )
    if "weights_scheme" in data:
        out.print(
            f"weights as {data['weights_scheme']}, tensor by tensor: "
            f"{data['weights_bytes']:,} bytes = {format_bytes_both(data['weights_bytes'])}"
        )
    out.print(f"rule of thumb, inference ≈ weights = {format_bytes_both(rule['inference_bytes'])}")
    out.print(
        f"rule of thumb, training ≈ {rule['training_factor']} × inference = "
        f"{format_bytes_both(rule['training_bytes'])} (the classic shortcut: {rule['optimizer']} "
        f"with every state in {rule['format']}; not a training budget, see below):"
    )
    for c in rule["training_components"]:
        out.print(f"  {c['name']:<17} {format_bytes_both(c['bytes']):>22}  {c['how']}")
    if "mixed_precision_training_bytes" in data:
        out.print(
            "mixed-precision AdamW (bf16 weights and gradients, fp32 master and states: "
            f"16 B/parameter): {format_bytes_both(data['mixed_precision_training_bytes'])} "
            "before activations — the budget to plan a full fine-tune with"
        )
    ck = data.get("checkpoint")
    if ck is not None:
        kinds = ", ".join(
            f"{d['dtype']} {format_bytes_both(d['bytes'])}" for d in ck["bytes_by_dtype"]
        )
        out.print(
            f"{ck['file_format']} headers: {ck['tensors']:,} tensors in {ck['files']} file(s), "
            f"{ck['params']:,} parameters, {ck['bytes']:,} bytes "
            f"= {format_bytes_both(ck['bytes'])} ({kinds})"
        )
    a = data.get("adapter")
    if a is not None:
        out.print(
            f"LoRA adapter r={a['rank']} alpha={a['alpha']:g}: {a['trainable_params']:,} "
            f"trainable parameters ({a['origin']})"
        )
    for note in data["notes"]:
        out.print(f"note: {note}")
    if not data["family"] and ck is None:
        out.print("only a size is known: give a config.json or catalogue name for a breakdown")


def render_memory(label: str, data: dict[str, Any]) -> None:
    from modelmem.units import format_bytes_both

    title = f"{label}: {data['engine']} b={data['batch']} context={data['context']:,}"
    out = print_breakdown(title, data)
    out.print(f"KV cache per token: {data['kv_cache_bytes_per_token']:,} B")
    rule = data["rule_of_thumb"]
    out.print(
        f"rule of thumb ({rule['format']}): inference ≈ weights = "
        f"{format_bytes_both(rule['inference_bytes'])}"
    )
    if "fits" in data:
        verdict = "fits" if data["fits"] else "does not fit"
        out.print(
            f"{verdict} in {format_bytes_both(data['memory_bytes'])}: margin "
            f"{format_bytes_both(data['margin_bytes'])}; largest context at this batch "
            f"{data['max_context']:,}, largest batch at this context {data['max_batch']:,}"
        )
    print_changes(out, data)
    for note in data["notes"]:
        out.print(f"note: {note}")


def render_training(label: str, data: dict[str, Any]) -> None:
    from modelmem.units import format_bytes_both

    title = f"{label}: training step, {data['recipe']} b={data['batch']} s={data['seq']:,}"
    out = print_breakdown(title, data)
    moments = ", ".join(f"{k} {format_bytes_both(v)}" for k, v in data["moments"].items())
    out.print(f"tensor peak by moment of the step: {moments}")
    if data["total_devices"] > 1:
        par = data["parallel"]
        out.print(
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
        out.print(
            f"off the device ({part['where']}): {part['name']} "
            f"{format_bytes_both(part['bytes'])} per device — {part['how']}"
        )
    if data["offloaded"]:
        out.print(
            f"host memory per node: {format_bytes_both(data['host_bytes'])}"
            + (
                f"; NVMe per node: {format_bytes_both(data['nvme_bytes'])}"
                if data["nvme_bytes"]
                else ""
            )
        )
    ds = data.get("deepspeed_estimator")
    if ds is not None:
        out.print(
            f"DeepSpeed's {ds['function']} (model states only): "
            f"{format_bytes_both(ds['gpu_bytes'])} per GPU, "
            f"{format_bytes_both(ds['cpu_bytes'])} CPU per node"
        )
    rule = data["rule_of_thumb"]
    out.print(
        f"rule of thumb (fp32 + AdamW): training ≈ 4 × inference = "
        f"{format_bytes_both(rule['training_bytes'])}, before activations"
    )
    if "fits" in data:
        verdict = "fits" if data["fits"] else "does not fit"
        out.print(
            f"{verdict} in {format_bytes_both(data['memory_bytes'])}: margin "
            f"{format_bytes_both(data['margin_bytes'])}"
        )
    print_changes(out, data)
    for note in data["notes"]:
        out.print(f"note: {note}")


def render_measure(label: str, data: dict[str, Any]) -> None:
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
    out = console()
    out.print(table)
    out.print(f"peak in {data['peak_phase']} at {data['peak_op']}")
    out.print(
        f"with CUDA's 512-byte blocks: {format_bytes_both(data['peak_rounded_bytes'])}; "
        "not included: CUDA context, allocator caching and fragmentation, library workspaces"
    )
    for note in data["notes"]:
        out.print(f"note: {note}")


def render_fit(data: dict[str, Any]) -> None:
    from modelmem.units import format_bytes_both

    title = f"{data['source']} on {data['count']} × {data['device']}: {data['config']['goal']}"
    if data["mode"] == "inference":
        title += f" ({data['engine']}, context {data['context']:,})"
    out = print_breakdown(title, data)
    verdict = "FITS" if data["fits"] else "DOES NOT FIT"
    out.print(
        f"{verdict}: peak per device {format_bytes_both(data['total_bytes'])} of "
        f"{format_bytes_both(data['device_bytes'])}, keeping a safety reserve of "
        f"{data['reserve']:.0%} ({format_bytes_both(data['reserve_bytes'])}); margin "
        f"{data['margin_bytes']:+,} B ({data['margin_percent']:+.2f}%)"
    )
    dom = data["dominant"]
    out.print(
        f"dominant: {dom['name']} {format_bytes_both(dom['bytes'])} "
        f"({100 * dom['bytes'] / data['total_bytes']:.0f}% of the peak)"
    )
    print_changes(out, data)
    for note in data["notes"]:
        out.print(f"note: {note}")


def render_plan(data: dict[str, Any]) -> None:
    from modelmem.units import format_bytes_both

    out = console()
    if not data["options"]:
        out.print(
            f"{data['model']}: nothing fits {data['max_devices']} × {data['device']} "
            f"for {data['goal']} ({data['searched']} configurations searched)"
        )
    rows = [
        (
            str(i),
            o["label"],
            format_bytes_both(o["total_bytes"]),
            f"{o['margin_bytes']:,}",
            f"{o['margin_percent']:+.1f}%",
            o["dominant"]["name"],
        )
        for i, o in enumerate(data["options"], 1)
    ]
    if rows:
        print_rows(
            f"{data['model']} on up to {data['max_devices']} × {data['device']}: {data['goal']}, "
            f"objective {data['objective']} ({data['searched']} configurations searched)",
            ("#", "configuration", "peak per device", "margin B", "margin", "dominant"),
            rows,
            right=("peak per device", "margin B", "margin"),
        )
        best = data["options"][0]
        print_breakdown(f"best: {best['label']}", best["breakdown"])
        out.print(
            f"budget per device {format_bytes_both(data['budget_bytes'])} = "
            f"{format_bytes_both(data['device_bytes'])} less the safety reserve "
            f"({best['reserve']:.0%})"
        )
    for note in data["notes"]:
        out.print(f"note: {note}")


def render_tokens(data: dict[str, Any], show_ids: bool, show_pieces: bool) -> None:
    from modelmem.units import format_bytes_both

    out = console()
    out.print(f"{data['count']:,} tokens ({data['tokenizer']}, {data['tokenizer_kind']})")
    for note in data.get("notes", []):
        out.print(f"note: {note}")
    stream = data.get("stream")
    if stream and stream["tokens_per_s"]:
        out.print(
            f"read {stream['bytes']:,} bytes in {stream['seconds']:.2f} s: "
            f"{stream['tokens_per_s']:,.0f} tokens/s"
        )
    if show_pieces and data["ids"] is not None:
        rows = [(str(i), repr(p)) for i, p in zip(data["ids"], data["pieces"], strict=True)]
        print_rows("tokens", ("id", "piece"), rows, right=("id",))
    elif show_ids and data["ids"] is not None:
        out.print(" ".join(str(i) for i in data["ids"]))
    if "context_length" in data:
        verdict = "fits" if data["fits"] else "does NOT fit"
        out.print(
            f"{data['model']}: prompt {data['prompt_tokens']:,} + completion "
            f"{data['completion_tokens']:,} = {data['total_tokens']:,} of "
            f"{data['context_length']:,} tokens: {verdict}"
        )
        left = data["remaining_tokens"]
        out.print(f"tokens left: {left:,}" if left >= 0 else f"over the window by {-left:,} tokens")
        out.print(
            f"KV cache for this request ({data['kv_dtype']}): "
            f"{data['kv_cache_bytes']:,} bytes = {format_bytes_both(data['kv_cache_bytes'])} "
            f"({data['kv_cache_bytes_per_token']:,} bytes/token; {data['kv_cache_how']})"
        )


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


def render_cost(data: dict[str, Any]) -> None:
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
    print_rows(f"{data['source']}: cost of a token", ("quantity", "value", "how"), rows)


def render_fit_catalogue(rows: list[dict[str, Any]]) -> None:
    from modelmem.units import format_bytes_both

    first = next((r for r in rows if "device" in r), None)
    where = f"{first['count']} × {first['device']} ({first['mode']})" if first else "the device"
    print_rows(
        f"catalogue models on {where}",
        ("model", "verdict", "peak per device", "margin", "dominant"),
        [
            (
                r["source"],
                "-" if r["fits"] is None else "fits" if r["fits"] else "does not fit",
                format_bytes_both(r["total_bytes"]) if "total_bytes" in r else r["error"],
                f"{r['margin_percent']:+.1f}%" if "margin_percent" in r else "",
                r["dominant"]["name"] if "dominant" in r else "",
            )
            for r in rows
        ],
        right=("peak per device", "margin"),
    )


def render_plan_all(data: dict[str, Any]) -> None:
    from modelmem.units import format_bytes_both

    rows = data["devices"]
    print_rows(
        f"{data['model']}: best {data['goal']} configuration per device "
        f"(objective: {data['objective']}, up to {data['max_devices']} each)",
        ("device", "best configuration", "peak per device", "margin"),
        [
            (
                r["device"],
                r["best"]["label"] if r["best"] else "nothing fits",
                format_bytes_both(r["best"]["total_bytes"]) if r["best"] else "",
                f"{r['best']['margin_percent']:+.1f}%" if r["best"] else "",
            )
            for r in rows
        ],
        right=("peak per device", "margin"),
    )


def render_plan_largest(data: dict[str, Any]) -> None:
    out = console()
    if data["largest_model"] is None:
        out.print(f"no catalogue model fits {data['count']} × {data['device']} ({data['goal']})")
        return
    out.print(
        f"largest catalogue model that fits {data['count']} × {data['device']} "
        f"({data['goal']}): {data['largest_model']}"
    )
    render_plan(data["plan"])

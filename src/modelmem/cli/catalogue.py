"""`models` and `formats`: the built-in catalogues."""

from __future__ import annotations

import click


@click.command()
@click.option("--family", default=None, help="Only models of this model_type.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def models(family: str | None, as_json: bool) -> None:
    """The built-in model catalogue."""
    from modelmem.app.catalogues import models_data
    from modelmem.cli.render import emit_json, print_rows
    from modelmem.units import format_count

    rows = models_data(family)
    if as_json:
        emit_json(rows)
        return
    print_rows(
        f"{len(rows)} models",
        ("name", "family", "params", "context", "ships as", "hub id"),
        [
            (
                r["name"],
                r["family"],
                format_count(r["total_params"]),
                f"{r['context_length']:,}",
                r.get("shipped_dtype") or "",
                r["hub_id"],
            )
            for r in rows
        ],
        right=("params", "context"),
    )


@click.command()
@click.option("--family", default=None, help="Only formats of this family (float, ggml, ...).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def formats(family: str | None, as_json: bool) -> None:
    """Number formats (with exact bits per value) and the weight schemes every --dtype takes."""
    from modelmem.app.catalogues import formats_data
    from modelmem.cli.render import console, emit_json, print_rows

    data = formats_data(family)
    if as_json:
        emit_json(data)
        return
    rows = [r for r in data if r["kind"] == "format"]
    schemes = [r for r in data if r["kind"] == "scheme"]
    print_rows(
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
    if schemes:
        console().print(
            "weight schemes (--dtype; gptq-/awq-<2|3|4|8>bit-g<32|64|128|256> too): "
            + ", ".join(s["name"] for s in schemes)
        )

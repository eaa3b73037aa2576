"""Charts of a memory result: the breakdown as a stacked bar, and memory against context.

Needs the ``plot`` extra (matplotlib), imported only when a chart is written. The figures
are the JSON's: a chart draws ``components`` and the points of a sweep, nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelmem.errors import InvalidValueError, ModelMemError

__all__ = ["SUFFIXES", "check_plot_path", "context_points", "write_plot"]

SUFFIXES = (".png", ".svg")
GIB = 2**30


def check_plot_path(path: str) -> Path:
    """The chart file, refused early when its suffix is not one matplotlib writes here."""
    target = Path(path)
    if target.suffix.lower() not in SUFFIXES:
        raise InvalidValueError("plot", path, "must end in .png or .svg")
    return target


def context_points(current: int, model_context: int, top: int = 131_072) -> list[int]:
    """Powers of two from 256 to the model's context (at most ``top``), and ``current``."""
    limit = max(min(model_context, top), 512)
    values = {current}
    v = 256
    while v <= limit:
        values.add(v)
        v *= 2
    return sorted(values)


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ModelMemError("--plot needs matplotlib: pip install 'modelmem[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_plot(
    path: str | Path,
    title: str,
    components: Sequence[dict[str, Any]],
    sweep: Sequence[tuple[int, int]] = (),
    axis: str = "context (tokens)",
    budget_bytes: int | None = None,
) -> Path:
    """Write the breakdown (and, with ``sweep``, memory against ``axis``) to PNG or SVG."""
    target = check_plot_path(str(path))
    plt = _pyplot()
    rows = 2 if sweep else 1
    fig, axes = plt.subplots(rows, 1, figsize=(9, 3.2 * rows + 0.6), squeeze=False)
    bar = axes[0][0]
    left = 0.0
    parts = [c for c in components if c["bytes"] > 0]
    for c in parts:
        width = c["bytes"] / GIB
        bar.barh([0], [width], left=left, label=f"{c['name']} {width:.2f} GiB")
        left += width
    if budget_bytes is not None:
        bar.axvline(budget_bytes / GIB, color="#b3261e", linestyle="--", label="budget")
    bar.set_yticks([])
    bar.set_xlabel("GiB (2^30 bytes)")
    bar.set_title(f"{title}: {left:.2f} GiB")
    bar.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=3, fontsize=8, frameon=False)
    if sweep:
        line = axes[1][0]
        xs = [x for x, _ in sweep]
        line.plot(xs, [b / GIB for _, b in sweep], marker="o")
        if budget_bytes is not None:
            line.axhline(budget_bytes / GIB, color="#b3261e", linestyle="--", label="budget")
            line.legend(fontsize=8)
        line.set_xscale("log", base=2)
        line.set_xlabel(axis)
        line.set_ylabel("GiB")
        line.set_ylim(bottom=0)
        line.grid(alpha=0.3)
        line.set_title(f"memory against {axis}")
    fig.tight_layout()
    try:
        fig.savefig(target)
    finally:
        plt.close(fig)
    return target

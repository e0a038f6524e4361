"""PNG plots with matplotlib (Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def lines(
    path: Path,
    title: str,
    xlabel: str,
    ylabel: str,
    series: dict[str, tuple[Sequence[float], Sequence[float]]],
    *,
    logx: bool = False,
    subtitle: str = "",
) -> Path:
    """One line per series (label -> (xs, ys))."""
    figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
    for label, (xs, ys) in series.items():
        axes.plot(list(xs), list(ys), marker="o", markersize=3, label=label)
    if logx:
        axes.set_xscale("log", base=2)
    axes.set_title(title + (f"\n{subtitle}" if subtitle else ""), fontsize=10)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path

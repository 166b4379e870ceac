"""Pictures: the notebook's gradient-flow bar chart."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
from matplotlib.figure import Figure


def grad_flow_figure(
    names: Sequence[str], means: Sequence[float], maxes: Sequence[float], title: str
) -> Figure:
    """Mean and max |grad| per weight tensor, log scale (the notebook's `plot_grad_flow`,
    which clipped the y axis at 0.02; a log axis shows vanishing and exploding alike)."""
    fig, ax = plt.subplots(figsize=(max(6.0, 0.5 * len(names) + 2), 4.5), layout="constrained")
    x = range(len(names))
    ax.bar(x, maxes, alpha=0.4, color="c", label="max |grad|")
    ax.bar(x, means, alpha=0.8, color="b", label="mean |grad|")
    ax.set_yscale("log")
    ax.set_xticks(list(x), names, rotation=90, fontsize=7)
    ax.set_ylabel("|gradient|")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
    plt.close(fig)
    return fig

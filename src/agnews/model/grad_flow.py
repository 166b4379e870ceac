"""The notebook's gradient flow: measured on a batch, drawn as one figure per run across its
epochs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from torch import nn


@dataclass
class GradFlow:
    """Mean and max |grad| per weight tensor, on the last batch of one epoch."""

    epoch: int
    names: list[str]
    means: list[float]
    maxes: list[float]


def grad_flow(model: nn.Module, epoch: int) -> GradFlow:
    """Per weight tensor (biases skipped, as the notebook): mean and max |grad|."""
    names, means, maxes = [], [], []
    for name, p in model.named_parameters():
        if p.requires_grad and p.grad is not None and "bias" not in name:
            g = p.grad.detach()
            if g.is_sparse:  # the untouched rows' gradients are zeros
                values = g.coalesce().values().abs()
                mean, top = values.sum().item() / p.numel(), values.max().item()
            else:
                mean, top = g.abs().mean().item(), g.abs().max().item()
            names.append(name)
            means.append(mean)
            maxes.append(top)
    return GradFlow(epoch, names, means, maxes)


def grad_flow_figure(flows: Sequence[GradFlow]) -> Figure:
    """Layers along x, |gradient| on a log axis (the notebook clipped a linear one at 0.02; a
    log axis shows vanishing and exploding alike), one line per epoch coloured by epoch: mean
    |grad| solid, max |grad| dotted. The colour bar and the line-style key sit outside the axes,
    so they never cover the data."""
    names = flows[-1].names
    fig, ax = plt.subplots(figsize=(max(7.0, 0.45 * len(names) + 3), 5.0), layout="constrained")
    cmap = plt.get_cmap("viridis")
    first, last = flows[0].epoch, flows[-1].epoch
    norm = matplotlib.colors.Normalize(vmin=first, vmax=max(last, first + 1))
    x = range(len(names))
    for flow in flows:
        colour = cmap(norm(flow.epoch))
        ax.plot(x, flow.means, "-o", color=colour, markersize=3, linewidth=1.2)
        ax.plot(x, flow.maxes, ":", color=colour, linewidth=1.0)
    ax.set_yscale("log")
    ax.set_xticks(list(x), names, rotation=90, fontsize=7)
    ax.set_xlim(-0.5, len(names) - 0.5)
    ax.set_ylabel("|gradient| (last batch of the epoch)")
    ax.set_title(f"Gradient flow, epochs {first}-{last}" if last > first else "Gradient flow")
    ax.grid(True, which="major", alpha=0.3)
    bar = fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, pad=0.01)
    bar.set_label("epoch")
    styles = [
        matplotlib.lines.Line2D([], [], color="0.3", linestyle="-", marker="o", markersize=3),
        matplotlib.lines.Line2D([], [], color="0.3", linestyle=":"),
    ]
    fig.legend(styles, ["mean |grad|", "max |grad|"], loc="outside lower right", ncols=2)
    plt.close(fig)
    return fig

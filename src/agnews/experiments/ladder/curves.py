"""The validation-accuracy curves of the report's runs as one SVG, drawn from the runs' own
curves (a record's `val_curve`, or an experiment's dvclive acc/val.tsv): it needs no DVC, so a
clone holding only the published runs draws the same picture, byte for byte."""

from __future__ import annotations

import math
from html import escape

from agnews.experiments.ladder.runs import metric

WIDTH, HEIGHT = 760, 400
LEFT, RIGHT, TOP, BOTTOM = 56, 210, 24, 44  # margins; the legend sits in the right one
COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
DASHES = ("", "6 3", "2 2")


def epochs(run: dict, steps: list[int]) -> list[float]:
    """The curve's steps in epochs (batch sizes differ between runs): steps per epoch from where
    the run stopped (dvclive's stopped_step / stopped_epoch)."""
    live = metric(run, "live")
    step, epoch = live.get("stopped_step") or live.get("step"), live.get("stopped_epoch")
    epoch = epoch or live.get("epoch")
    if not step or not epoch:
        return [float(s) for s in steps]
    return [s * epoch / step for s in steps]


def _ticks(low: float, high: float, target: int = 6) -> list[float]:
    raw = (high - low) / target
    size = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    step = next(m * size for m in (1, 2, 5, 10) if m * size >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def val_svg(curves: dict[str, tuple[list[float], list[float]]]) -> str:
    """name -> (epochs, validation accuracy shares) as an SVG line chart, accuracy in %."""
    points = [(x, 100 * y) for xs, ys in curves.values() for x, y in zip(xs, ys, strict=True)]
    if not points:
        return ""
    x_max = max(x for x, _ in points) or 1.0
    y_low, y_high = min(y for _, y in points), max(y for _, y in points)
    y_low, y_high = math.floor(y_low - 0.5), math.ceil(y_high + 0.5)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    height = max(HEIGHT, TOP + 20 + 15 * len(curves))  # room for the legend

    def px(x: float) -> float:
        return LEFT + plot_w * x / x_max

    def py(y: float) -> float:
        return TOP + plot_h * (1 - (y - y_low) / (y_high - y_low))

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
    ]
    for y in _ticks(y_low, y_high):
        out.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{py(y):.1f}" y2="{py(y):.1f}" '
            f'stroke="#ddd"/><text x="{LEFT - 6}" y="{py(y) + 4:.1f}" text-anchor="end">'
            f"{y:g}</text>"
        )
    for x in _ticks(0, x_max):
        out.append(
            f'<text x="{px(x):.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">{x:g}</text>'
        )
    out += [
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" '
        'stroke="#888"/>',
        f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 8}" text-anchor="middle">epoch</text>',
        f'<text x="14" y="{TOP + plot_h / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 14 {TOP + plot_h / 2:.1f})">validation accuracy %</text>',
    ]
    for i, (name, (xs, ys)) in enumerate(curves.items()):
        colour, dash = COLOURS[i % len(COLOURS)], DASHES[(i // len(COLOURS)) % len(DASHES)]
        style = f'stroke="{colour}" fill="none" stroke-width="1.5"' + (
            f' stroke-dasharray="{dash}"' if dash else ""
        )
        path = " ".join(f"{px(x):.1f},{py(100 * y):.1f}" for x, y in zip(xs, ys, strict=True))
        out.append(f'<polyline points="{path}" {style}><title>{escape(name)}</title></polyline>')
        ly = TOP + 8 + 15 * i
        lx = WIDTH - RIGHT + 12
        out.append(
            f'<line x1="{lx}" x2="{lx + 18}" y1="{ly}" y2="{ly}" {style}/>'
            f'<text x="{lx + 24}" y="{ly + 4}">{escape(name)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"

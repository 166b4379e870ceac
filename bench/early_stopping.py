"""What early stopping (train.patience) keeps and saves, measured on recorded full runs.

    python bench/early_stopping.py                       # the ladder's curves, patience 4
    python bench/early_stopping.py --patience 2,3,4,6    # several settings side by side

A run with early stopping is exactly the prefix of the same run without it (same seed, same
schedule over the maximum epochs, same batches: tests/test_training.py checks it), so what it
keeps and what it saves follow from the full run's validation curve: it stops after the
`patience`-th validation pass in a row without a new best, and keeps the best pass so far.
This reads the curves of the runs in reports/ladder_older_code_plots/index.html (the "Validation
accuracy" plot that `python -m agnews ladder` writes with `dvc plots diff`; an ensemble's
members follow one another there) and their training seconds from reports/ladder_older_code.md,
and prints, per run, the best validation accuracy kept with and without early stopping (paired:
the same run), where it stops, and the training time it saves (the run's time in proportion
to the validation passes it still makes). A measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from agnews.experiments.presets import load_presets  # noqa: E402


def curves_from_plots(html: str) -> dict[str, list[float]]:
    """Run name -> validation accuracies in order, from a `dvc plots diff` page."""
    title = html.find('"title": {"text": "Validation accuracy"')
    start = html.rfind('"values": [', 0, title) + len('"values": ')
    end = html.rfind("]", start, title) + 1
    curves: dict[str, list[tuple[int, float]]] = {}
    for point in json.loads(html[start:end]):
        curves.setdefault(point["rev"], []).append((int(point["step"]), float(point["val"])))
    return {name: [v for _, v in sorted(points)] for name, points in curves.items()}


def train_seconds(report: str) -> dict[str, float]:
    """Run name -> `train s` from the ladder report's table."""
    lines = report.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("| run |"))
    col = [c.strip() for c in lines[first].split("|")].index("train s")
    out = {}
    for line in lines[first + 2 :]:
        if not line.startswith("|"):
            break  # the end of the main table
        if line.startswith("| `"):
            cells = [c.strip() for c in line.split("|")]
            try:
                out[cells[1].strip("`")] = float(cells[col])
            except ValueError:
                continue
    return out


def early_stop(curve: list[float], patience: int) -> tuple[int, float]:
    """(validation passes made, best accuracy kept) with early stopping at `patience`."""
    best, flat = -1.0, 0
    for i, acc in enumerate(curve, start=1):
        if acc > best:
            best, flat = acc, 0
        else:
            flat += 1
        if patience and flat >= patience:
            return i, best
    return len(curve), best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plots", default=str(ROOT / "reports/ladder_older_code_plots/index.html"))
    parser.add_argument("--report", default=str(ROOT / "reports/ladder_older_code.md"))
    parser.add_argument("--patience", default="4", help="comma-separated settings")
    parser.add_argument("--evals-per-epoch", type=int, default=2)
    args = parser.parse_args()
    curves = curves_from_plots(Path(args.plots).read_text(encoding="utf-8"))
    seconds = train_seconds(Path(args.report).read_text(encoding="utf-8"))
    presets = load_presets(ROOT / "presets.yaml")
    per_epoch = args.evals_per_epoch
    for patience in [int(p) for p in args.patience.split(",")]:
        print(f"\npatience {patience} (validation passes; {per_epoch} per epoch)\n")
        print(
            "| run | passes | stops at epoch | best val % without | with | kept − without "
            "| train s without | with (est.) |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        total = {"passes": 0, "used": 0, "s": 0.0, "s_used": 0.0}
        worst = 0.0
        for name, curve in curves.items():
            members = int(presets.get(name, {}).get("params", {}).get("train.ensemble", 1))
            n = len(curve) // members
            used, kept, full, stops = 0, [], [], []
            for k in range(members):
                part = curve[k * n : (k + 1) * n]
                passes, best = early_stop(part, patience)
                used, stops = used + passes, [*stops, passes / per_epoch]
                kept.append(best)
                full.append(max(part))
            diff = 100 * (sum(kept) - sum(full)) / members
            worst = min(worst, diff)
            s = seconds.get(name)
            s_used = s * used / len(curve) if s is not None else None
            total["passes"] += len(curve)
            total["used"] += used
            if s is not None:
                total["s"] += s
                total["s_used"] += s_used
            stop = ", ".join(f"{e:g}" for e in stops) + f" of {n / per_epoch:g}"
            print(
                f"| {name} | {used}/{len(curve)} | {stop} | {100 * sum(full) / members:.2f} "
                f"| {100 * sum(kept) / members:.2f} | {diff:+.2f} "
                f"| {s if s is not None else '–'} "
                f"| {f'{s_used:.0f}' if s_used is not None else '–'} |"
            )
        print(
            f"\nall runs: {total['used']}/{total['passes']} validation passes "
            f"({100 * total['used'] / total['passes']:.0f}%), training {total['s']:.0f} s -> "
            f"{total['s_used']:.0f} s ({100 * (1 - total['s_used'] / max(total['s'], 1)):.0f}% "
            f"saved); largest loss of best validation accuracy {worst:+.2f} points"
        )


if __name__ == "__main__":
    main()

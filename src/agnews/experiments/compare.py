"""Compare runs in one narrow table: what decides between them, one row per experiment.

    python -m agnews compare  # the commit's experiments (and the commit itself)
    python -m agnews compare -n 3  # also the experiments of the 2 commits before
    python -m agnews compare --all-commits   # every experiment in the repository
    python -m agnews compare --sort val      # best validation accuracy first (or: name)
    python -m agnews compare --md            # a Markdown table

Built on `dvc exp show --json`, whose full table has a column for each of ~50 params and ~60
metrics. This one keeps the model in one column (cell, layers, direction, pooling, n-gram paths),
then epochs, learning rate, batch size, best validation accuracy, test accuracy, macro-F1 and
training seconds, and fits whatever is left of `--width` (default 120) with the other params
that differ from the commit's params.yaml. Queued, running and failed experiments are listed
with their state instead of numbers. Rows sort by validation, never by test: a choice made
by sorting on test would be fitted to the test split.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Any

from agnews.errors import AgnewsError
from agnews.experiments.shell import dvc

# shown in their own columns (or not at all: paths and bookkeeping), never under "other changes"
SHOWN = {
    "model.cell",
    "model.layers",
    "model.bidirectional",
    "model.pooling",
    "model.fixed_len",
    "model.ngram_dim",
    "model.ngram_logits",
    "train.epochs",
    "train.lr",
    "train.batch_size",
}
NOT_SHOWN_SECTIONS = {"paths"}


@dataclass
class Row:
    name: str
    state: str  # "done", "queued", "running", "failed"
    params: dict[str, Any]  # flat "section.key" -> value
    test: dict[str, Any]  # evaluate's metrics (params paths.test_metrics)
    live: dict[str, Any]  # train's dvclive metrics (params paths.train_live_dir/metrics.json)


def flatten(params: dict[str, Any]) -> dict[str, Any]:
    return {
        f"{section}.{key}": value
        for section, values in params.items()
        if isinstance(values, dict)
        for key, value in values.items()
    }


def metric_files(params: dict[str, Any]) -> tuple[str, str]:
    """(evaluate's metrics JSON, train's dvclive metrics JSON) as a run's own params name them."""
    paths = params.get("paths") or {}
    live_dir = str(paths.get("train_live_dir", "")).rstrip("/")
    return str(paths.get("test_metrics", "")), f"{live_dir}/metrics.json"


def _row(name: str, data: dict[str, Any], state: str) -> Row:
    params = ((data.get("params") or {}).get("params.yaml") or {}).get("data") or {}
    metrics = data.get("metrics") or {}
    test_file, live_file = metric_files(params)
    return Row(
        name,
        state,
        flatten(params),
        (metrics.get(test_file) or {}).get("data") or {},
        (metrics.get(live_file) or {}).get("data") or {},
    )


def collect(shown: list[dict[str, Any]]) -> tuple[list[Row], dict[str, Any]]:
    """Rows (each commit, then its experiments) and the newest commit's params, from the JSON
    of `dvc exp show --json`."""
    rows, base = [], {}
    for entry in shown:
        if entry.get("rev") == "workspace":
            continue  # the workspace is the commit plus uncommitted edits: not a run
        data = entry.get("data") or {}
        name = entry.get("name") or (entry.get("rev") or "")[:7]
        rows.append(_row(name, data, "done"))
        if not base:
            base = rows[-1].params
        for group in entry.get("experiments") or []:
            executor = (group.get("executor") or {}).get("state")
            for exp in group.get("revs") or []:
                exp_data = exp.get("data") or {}
                state = executor if executor in ("queued", "running", "failed") else "done"
                if exp.get("error") and state == "done":
                    state = "failed"
                rows.append(_row(exp.get("name") or exp_data.get("rev", "")[:7], exp_data, state))
    return rows, base


def model_label(p: dict[str, Any]) -> str:
    """e.g. "gru", "lstm 2x bi flatten70+mean+max", "gru bi mean+max +bag64"."""
    parts = [str(p.get("model.cell", "?"))]
    layers = p.get("model.layers", 1)
    if layers != 1:
        parts[0] += f" {layers}x"
    direction = p.get("model.bidirectional", "none")
    if direction != "none":
        parts.append("bi" if direction == "all" else "bi-top")
    pooling = str(p.get("model.pooling", "?"))
    if p.get("model.fixed_len") is not None:
        pooling = pooling.replace("flatten", f"flatten{p['model.fixed_len']}")
    parts.append(pooling)
    if p.get("model.ngram_dim"):
        parts.append(f"+bag{p['model.ngram_dim']}")
    if p.get("model.ngram_logits"):
        parts.append("+wide")  # the linear n-gram model added to the logits
    return " ".join(parts)


def _pct(value: Any) -> str:
    return f"{100 * value:.2f}" if isinstance(value, int | float) else "–"


def _value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def other_changes(p: dict[str, Any], base: dict[str, Any]) -> str:
    changed = [
        f"{k}={_value(v)}"
        for k, v in p.items()
        if k not in SHOWN and k.split(".")[0] not in NOT_SHOWN_SECTIONS and base.get(k) != v
    ]
    return ", ".join(changed) or "–"


COLUMNS = ("experiment", "model", "ep", "lr", "batch", "val %", "test %", "F1 %", "train s")


def table_cells(rows: list[Row], base: dict[str, Any]) -> list[list[str]]:
    out = []
    for r in rows:
        p = r.params
        if r.state == "done":
            metrics = [
                _pct(r.live.get("best_val_acc")),
                _pct(r.test.get("accuracy")),
                _pct(r.test.get("macro_f1")),
                f"{r.live['train_seconds']:.0f}" if "train_seconds" in r.live else "–",
            ]
        else:
            metrics = [r.state, "", "", ""]
        out.append(
            [
                r.name,
                model_label(p),
                _value(p.get("train.epochs", "?")),
                _value(p.get("train.lr", "?")),
                _value(p.get("train.batch_size", "?")),
                *metrics,
                other_changes(p, base),
            ]
        )
    return out


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def render(cells: list[list[str]], width: int, markdown: bool) -> str:
    """Aligned text (or Markdown) no wider than `width`: the fixed columns are capped, the last
    ("other changes") takes what is left. Experiment names are never cut (two runs of a grid
    differ at the end of theirs): a long one widens the table instead."""
    header = [*COLUMNS, "other changes"]
    longest = max((len(c[0]) for c in cells), default=0)
    caps = [max(20, longest), 30, 3, 7, 5, 6, 6, 6, 7]
    widths = [
        min(cap, max(len(h), *(len(c[i]) for c in cells)) if cells else len(h))
        for i, (h, cap) in enumerate(zip(header, caps, strict=False))
    ]
    sep = " | " if markdown else "  "
    edge = 4 if markdown else 0  # "| " and " |"
    used = sum(widths) + len(sep) * len(widths) + edge
    widths.append(max(5, width - used))
    numeric = {2, 3, 4, 5, 6, 7, 8}

    def line(values: list[str]) -> str:
        parts = []
        for i, (v, w) in enumerate(zip(values, widths, strict=True)):
            v = _fit(v, w)
            parts.append(v.rjust(w) if i in numeric else v.ljust(w))
        text = sep.join(parts)
        return f"| {text} |" if markdown else text.rstrip()

    rule = [
        "-" * (w - 1) + (":" if markdown and i in numeric else "-") for i, w in enumerate(widths)
    ]
    lines = [line(header), line(rule), *(line(c) for c in cells)]
    return "\n".join(lines)


def exp_show(args: list[str]) -> list[dict[str, Any]]:
    return json.loads(dvc("exp", "show", "--json", *args))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", "--num", type=int, default=1, help="commits back from HEAD")
    parser.add_argument("--all-commits", action="store_true", help="every commit's experiments")
    parser.add_argument("--rev", help="commit to start from (default HEAD)")
    parser.add_argument("--sort", choices=("val", "name"), help="order of the rows")
    parser.add_argument("--width", type=int, default=120, help="table width (default 120)")
    parser.add_argument("--md", action="store_true", help="a Markdown table")
    args = parser.parse_args(argv)
    show_args = ["--all-commits"] if args.all_commits else ["-n", str(args.num)]
    if args.rev:
        show_args += ["--rev", args.rev]
    try:
        rows, base = collect(exp_show(show_args))
    except AgnewsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.sort == "name":
        rows.sort(key=lambda r: r.name)
    elif args.sort == "val":
        rows.sort(key=lambda r: r.live.get("best_val_acc", -1), reverse=True)
    print(render(table_cells(rows, base), args.width, args.md))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The ladder's report (reports/ladder.md or ladder_partial.md) from `dvc exp show --json`."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
from pathlib import Path
from typing import Any

from agnews.atomic import write_text
from agnews.compare import flatten, model_label
from agnews.errors import AgnewsError
from agnews.ladder.experiments import experiments, run_dvc
from agnews.presets import apply_overrides, committed_params, full_overrides

REPORT_DIR = Path("reports")
PEERS_FILE = REPORT_DIR / "peers.json"
PLOT_IDS = ("Training loss", "Validation accuracy")  # top-level plots of dvc.yaml
TEST, LIVE, PREP = "metrics/test.json", "dvclive/train/metrics.json", "metrics/prepare.json"


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _pct(value: Any) -> str:
    return f"{100 * value:.2f}" if isinstance(value, int | float) else "–"


def _where(live: dict) -> str:
    if not live:
        return "–"
    device = live.get("device", "?")
    if device != "cpu":
        return device
    threads = live["threads"]
    return f"cpu ({threads} thread{'' if threads == 1 else 's'})"


def _data_line(runs: dict[str, dict]) -> str:
    """Rows and source of the runs' data, and their vocabulary size per prepare.min_count."""
    line, vocabs = "no finished runs", {}
    for run in runs.values():
        prep = run["metrics"].get(PREP, {})
        rows = prep.get("rows")
        if not rows:
            continue
        flat = flatten(run["params"])
        vocabs[flat.get("prepare.min_count")] = prep.get("vocab_size")
        source = flat.get("data.local_dir") or flat.get("data.hub_dataset")
        line = (
            f"{rows['train']:,} train / {rows['val']:,} validation / {rows['test']:,} test "
            f"rows, from `{source}`"
        )
    sizes = ", ".join(f"{v:,} words at min_count {k}" for k, v in sorted(vocabs.items()))
    return f"{line}; vocabulary {sizes}" if vocabs else line


def seed_groups(runs: dict[str, dict], presets: dict, base: dict) -> dict[str, list[str]]:
    """Preset -> the experiments (the preset's own run included) whose params differ from
    the preset's only in train.seed (and data.local_dir)."""
    groups: dict[str, list[str]] = {}
    for name, run in runs.items():
        flat = flatten(run["params"])
        for preset in presets:
            want = full_overrides(presets, preset, base)
            expected = flatten(apply_overrides(base, want))
            ignore = {"train.seed", "data.local_dir", "data.hub_dataset"}
            if all(flat.get(k) == v for k, v in expected.items() if k not in ignore):
                groups.setdefault(preset, []).append(name)
    return {p: sorted(n) for p, n in groups.items() if len(n) > 1}


def _mean_sd(values: list[float]) -> str:
    if not values:
        return "–"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.2f} ± {100 * sd:.2f}"


def report_lines(
    presets: dict, runs: dict[str, dict], base: dict, peers: dict | None, header: str
) -> list[str]:
    lines = [
        header,
        "",
        f"Data: {_data_line(runs)}. Validation accuracy selects the checkpoint (best of "
        "`train.evals_per_epoch` passes per epoch); test accuracy is the full test split scored "
        "once with it. `where` is what trained it (`cpu (N threads)` or `cuda`); `train s` is "
        "the training loop's time, validation passes excluded. The notebook's number is not "
        "the same measurement: it trained on all 120,000 rows and took the best of its "
        "per-epoch evaluations on a 5,000-row test sample.",
        "",
        "| run | notebook cell | model | batch | epochs | best val % (epoch) | test % "
        "| macro-F1 % | train s | where | notebook % |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for name, preset in presets.items():
        run = runs.get(name)
        flat = (
            flatten(run["params"])
            if run
            else flatten(apply_overrides(base, full_overrides(presets, name, base)))
        )
        live = run["metrics"].get(LIVE, {}) if run else {}
        test = run["metrics"].get(TEST, {}) if run else {}
        cell = str(preset.get("notebook", "")).split(":")[0]
        val = (
            f"{_pct(live.get('best_val_acc'))} ({_fmt(live.get('best_epoch'), 2)})"
            if run
            else "not run"
        )
        lines.append(
            f"| `{name}` | {cell} | {model_label(flat)} | {flat.get('train.batch_size')} "
            f"| {flat.get('train.epochs')} | {val} | {_pct(test.get('accuracy'))} "
            f"| {_pct(test.get('macro_f1'))} | {_fmt(live.get('train_seconds'), 0)} "
            f"| {_where(live)} | {_fmt(preset.get('notebook_acc'), 2)} |"
        )
    for peer in (peers or {}).get("peers", []):
        lines.append(
            f"| {peer['name']} | (linear peer) | – | – | – | {_pct(peer.get('val_acc'))} "
            f"| {_pct(peer.get('test_acc'))} | {_pct(peer.get('test_macro_f1'))} "
            f"| {_fmt(peer.get('fit_seconds'), 0)} | cpu | – |"
        )
    if peers:
        lines += [
            "",
            f"Peers: `{peers.get('command', 'python -m agnews.peers')}` on the same "
            "train / validation / test rows (fitted on train, scored on validation and "
            "test); `train s` is the fit time.",
        ]
    groups = seed_groups(runs, presets, base)
    if groups:
        lines += [
            "",
            "## Seed repeats",
            "",
            "Experiments that differ from a preset only in `train.seed`: mean ± standard "
            "deviation over the seeds.",
            "",
            "| preset | seeds | runs | best val % | test % | macro-F1 % |",
            "|---|---:|---|---:|---:|---:|",
        ]
        for preset, names in groups.items():
            seeds = sorted(flatten(runs[n]["params"]).get("train.seed") for n in names)
            m = [runs[n]["metrics"] for n in names]
            lines.append(
                f"| `{preset}` | {len(names)} ({', '.join(map(str, seeds))}) "
                f"| {', '.join(names)} | {_mean_sd([x[LIVE]['best_val_acc'] for x in m])} "
                f"| {_mean_sd([x[TEST]['accuracy'] for x in m])} "
                f"| {_mean_sd([x[TEST]['macro_f1'] for x in m])} |"
            )
    others = sorted(set(runs) - set(presets) - {n for g in groups.values() for n in g})
    if others:
        lines += [
            "",
            "## Other experiments on these commits",
            "",
            "| experiment | changed params (vs. params.yaml) | best val % | test % | macro-F1 % |",
            "|---|---|---:|---:|---:|",
        ]
        flat_base = flatten(base)
        for name in others:
            run = runs[name]
            changed = {
                k: v
                for k, v in flatten(run["params"]).items()
                if flat_base.get(k) != v and not k.startswith(("data.", "paths."))
            }
            shown = ", ".join(f"{k}={v}" for k, v in changed.items()) or "(none)"
            live, test = run["metrics"].get(LIVE, {}), run["metrics"].get(TEST, {})
            lines.append(
                f"| {name} | {shown} | {_pct(live.get('best_val_acc'))} "
                f"| {_pct(test.get('accuracy'))} | {_pct(test.get('macro_f1'))} |"
            )
    return lines


def write_report(
    presets: dict,
    out: Path | None = None,
    rev: str | None = None,
    commits: int = 1,
) -> Path:
    """Write the report (and its plots page) for the experiments of `rev` and its parents;
    to reports/ladder.md when every preset ran, else reports/ladder_partial.md (or `out`)."""
    runs = experiments(rev, commits)
    complete = all(name in runs for name in presets)
    if out is None:
        out = REPORT_DIR / ("ladder.md" if complete else "ladder_partial.md")
    plots_dir = out.parent / f"{out.stem}_plots"
    done = [n for n in presets if n in runs]
    if done:  # the curves only: confusion rows and images of a dozen runs weigh megabytes
        shutil.rmtree(plots_dir, ignore_errors=True)
        try:  # by name, so the legend reads rnn_max, gru_max, ...
            run_dvc("plots", "diff", *done, "--targets", *PLOT_IDS, "-o", str(plots_dir))
        except AgnewsError:  # a name DVC finds on several commits: by revision instead
            revs = [runs[n]["rev"] for n in done]
            run_dvc("plots", "diff", *revs, "--targets", *PLOT_IDS, "-o", str(plots_dir))
    peers = json.loads(PEERS_FILE.read_text(encoding="utf-8")) if PEERS_FILE.is_file() else None
    commit = (
        rev
        or subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
    )
    missing = [n for n in presets if n not in runs]
    header = "\n".join(
        [
            "# The notebook's experiment ladder" + ("" if complete else " (partial)"),
            "",
            "Generated by `python -m agnews.ladder` from `dvc exp show`; do not edit by hand. "
            f"Experiments of commit `{commit[:12]}` and its {commits - 1} parent commit(s).",
            *(
                []
                if complete
                else [
                    "",
                    f"**Partial: not run: {', '.join(missing)}.**"
                    + ("" if out.name == "ladder.md" else " The complete ladder is in ladder.md."),
                ]
            ),
        ]
    )
    lines = report_lines(presets, runs, committed_params("params.yaml"), peers, header)
    if done:
        lines += [
            "",
            f"Training loss and validation accuracy of every run: [{plots_dir.name}/index.html]"
            f"({plots_dir.name}/index.html) (`dvc plots diff`; confusion matrices and the "
            "gradient-flow pictures: `dvc plots diff <exp-a> <exp-b>`).",
        ]
    if complete or out.name == "ladder.md":  # never beside a subset's table it does not describe
        lines += ["", "What the numbers mean: [ladder_analysis.md](ladder_analysis.md)."]
    write_text(out, "\n".join(lines) + "\n")
    return out

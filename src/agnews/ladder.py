"""The notebook's experiment ladder in one command: queue every preset, run them, report.

    python -m agnews.ladder --jobs 1 --set train.epochs=5 --set data.local_dir=/abs/ag_news
    python -m agnews.ladder --report-only          # just rewrite reports/ladder.md

Each preset of presets.yaml becomes a DVC experiment named after it (`dvc exp run --queue -n
NAME -S ...`, plus every `--set`), the queue runs with `dvc queue start -j JOBS`, and when it
is done reports/ladder.md is written from `dvc exp show --json`, with the comparison plots of
`dvc plots diff` in reports/ladder_plots/. An experiment that already exists on this commit with
the same parameters is re-used, not run again. Other experiments on the same commit (a sweep,
say) are listed in a second table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from agnews.atomic import write_text
from agnews.config import load_yaml
from agnews.errors import AgnewsError, ConfigError
from agnews.presets import committed_params, full_overrides, load_presets, overrides_args

REPORT_DIR = Path("reports")
PLOT_IDS = ("Training loss", "Validation accuracy")  # top-level plots of dvc.yaml
TABLE_PARAMS = (
    "model.cell",
    "model.layers",
    "model.bidirectional",
    "model.pooling",
    "model.fixed_len",
    "model.head_layers",
    "model.head_concat_pooled",
    "train.batch_size",
)


def _dvc(*args: str, capture: bool = True, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        capture_output=capture,
        text=True,
        check=False,
        env=env,
    )
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout or "").strip() if capture else ""
        raise AgnewsError(f"dvc {' '.join(args)} failed: {detail}")
    return proc.stdout if capture else ""


def _get(tree: dict, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree


def parse_sets(sets: list[str]) -> dict[str, Any]:
    """`key=value` strings (YAML values, as `dvc exp run -S` reads them)."""
    out = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise ConfigError(f"--set {item!r}: expected section.key=value")
        out[key] = load_yaml(value)
    return out


def experiments(rev: str | None = None, commits: int = 1) -> dict[str, dict]:
    """Experiments based on commit `rev` (default HEAD) and its `commits - 1` first parents:
    name -> {"params", "metrics", "rev"}; a name run on several commits keeps the newest."""
    args = ["exp", "show", "--json", "-n", str(commits), *(["--rev", rev] if rev else [])]
    shown = json.loads(_dvc(*args))
    runs = {}
    for entry in shown:
        for group in entry.get("experiments") or []:
            if (group.get("executor") or {}).get("state") in ("queued", "running"):
                continue  # not finished: its numbers would be the baseline's
            for exp in group.get("revs") or []:
                data = exp.get("data") or {}
                if exp.get("error") or not data.get("metrics"):
                    continue
                name = exp.get("name") or data["rev"]
                if name in runs:  # an older commit's run of the same name
                    continue
                runs[name] = {
                    "rev": data.get("rev"),
                    "params": ((data.get("params") or {}).get("params.yaml") or {}).get("data", {}),
                    "metrics": {k: v.get("data", {}) for k, v in data["metrics"].items()},
                }
    return runs


def wanted_params(presets: dict, name: str, base: dict, sets: dict[str, Any]) -> dict[str, Any]:
    return {**full_overrides(presets, name, base), **sets}


def matches(run: dict, wanted: dict[str, Any]) -> bool:
    return all(_get(run["params"], k) == v for k, v in wanted.items())


def queue_ladder(names: list[str], presets: dict, base: dict, sets: dict[str, Any]) -> list[str]:
    """Queue the presets that have no finished experiment with the same params; return them."""
    existing = experiments()
    queued = []
    for name in names:
        wanted = wanted_params(presets, name, base, sets)
        if name in existing and matches(existing[name], wanted):
            print(f"ladder: re-using experiment {name}")
            continue
        if name in existing:
            _dvc("exp", "remove", name)
        _dvc("exp", "run", "--queue", "-n", name, *overrides_args(wanted))
        print(f"ladder: queued {name}")
        queued.append(name)
    return queued


def worker_env(jobs: int, cpus: int | None = None) -> dict[str, str]:
    """Environment for `dvc queue start -j jobs`: each job gets cpus // jobs torch threads.

    Every training process otherwise starts one thread per core; N of them on the same cores
    spin against each other (2 jobs on 2 cores: 266 s in the baseline's training loop, not 25 s).
    A user's own OMP_NUM_THREADS wins."""
    env = dict(os.environ)
    if jobs > 1 and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, (cpus or os.cpu_count() or 1) // jobs))
    return env


def run_queue(jobs: int, poll_s: float = 10.0) -> None:
    _dvc("queue", "start", "-j", str(jobs), env=worker_env(jobs))
    while True:
        status = _dvc("queue", "status")
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(poll_s)
    failed = [line for line in status.splitlines() if "Failed" in line]
    if failed:
        print("ladder: failed experiments (see `dvc queue logs NAME`):\n" + "\n".join(failed))


def _git_head() -> str:
    proc = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    return proc.stdout.strip() or "unknown"


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def ladder_rows(names: list[str], presets: dict, runs: dict[str, dict]) -> list[dict]:
    rows = []
    for name in names:
        run = runs.get(name)
        test = (run or {}).get("metrics", {}).get("metrics/test.json", {})
        live = (run or {}).get("metrics", {}).get("dvclive/train/metrics.json", {})
        rows.append(
            {
                "name": name,
                "notebook": presets[name].get("notebook", ""),
                "notebook_acc": presets[name].get("notebook_acc"),
                "params": {k: _get((run or {}).get("params", {}), k) for k in TABLE_PARAMS},
                "epochs": _get((run or {}).get("params", {}), "train.epochs"),
                "best_val_acc": live.get("best_val_acc"),
                "best_epoch": live.get("best_epoch"),
                "accuracy": test.get("accuracy"),
                "macro_f1": test.get("macro_f1"),
                "train_seconds": live.get("train_seconds"),
                "samples_per_s": live.get("samples_per_s"),
                "device": live.get("device"),
                "ran": run is not None,
            }
        )
    return rows


def _data_line(runs: dict[str, dict]) -> str:
    """Rows and source of the runs' data, and their vocabulary size per prepare.min_count."""
    line, vocabs = "no finished runs", {}
    for run in runs.values():
        prep = run["metrics"].get("metrics/prepare.json", {})
        rows = prep.get("rows")
        if not rows:
            continue
        vocabs[_get(run["params"], "prepare.min_count")] = prep.get("vocab_size")
        source = _get(run["params"], "data.local_dir") or _get(run["params"], "data.hub_dataset")
        line = (
            f"{rows['train']:,} train / {rows['val']:,} validation / {rows['test']:,} test "
            f"rows, from `{source}`"
        )
    sizes = ", ".join(f"{v:,} words at min_count {k}" for k, v in sorted(vocabs.items()))
    return f"{line}; vocabulary {sizes}" if vocabs else line


def write_report(
    names: list[str],
    presets: dict,
    out_dir: Path = REPORT_DIR,
    rev: str | None = None,
    commits: int = 1,
) -> Path:
    runs = experiments(rev, commits)
    rows = ladder_rows(names, presets, runs)
    done = [r["name"] for r in rows if r["ran"]]
    plots_dir = out_dir / "ladder_plots"
    if done:  # the curves only: confusion rows and images of a dozen runs weigh megabytes
        shutil.rmtree(plots_dir, ignore_errors=True)
        revs = [runs[n]["rev"] for n in done]
        _dvc("plots", "diff", *revs, "--targets", *PLOT_IDS, "-o", str(plots_dir))
    baseline = rev or _git_head()
    lines = [
        "# The notebook's experiment ladder",
        "",
        "Generated by `python -m agnews.ladder` from `dvc exp show`; do not edit by hand (the",
        "analysis comes from `reports/ladder_analysis.md`). Experiments of commit",
        f"`{baseline[:12]}` and its {commits - 1} parent commit(s); rerun with",
        "`python -m agnews.ladder` (see README).",
        "",
        f"Data: {_data_line(runs)}. Test accuracy is the full test split scored once with the",
        "checkpoint chosen on validation. The notebook's number is not the same measurement: it",
        "trained on all 120,000 rows and took the best of its per-epoch evaluations on a",
        "5,000-row test sample.",
        "",
        "| preset | notebook cell | cell | layers | bidir. | pooling | fixed len | head | batch "
        "| epochs | best val acc (epoch) | test acc | macro-F1 | train s | samples/s "
        "| notebook acc |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        p = r["params"]
        head = _fmt(p["model.head_layers"]) + (" +cat" if p["model.head_concat_pooled"] else "")
        lines.append(
            f"| `{r['name']}` | {r['notebook']} | {_fmt(p['model.cell'])} "
            f"| {_fmt(p['model.layers'])} | {_fmt(p['model.bidirectional'])} "
            f"| {_fmt(p['model.pooling'])} | {_fmt(p['model.fixed_len'])} | {head} "
            f"| {_fmt(p['train.batch_size'])} | {_fmt(r['epochs'])} "
            f"| {_fmt(r['best_val_acc'])} ({_fmt(r['best_epoch'], 2)}) | {_fmt(r['accuracy'])} "
            f"| {_fmt(r['macro_f1'])} | {_fmt(r['train_seconds'], 0)} "
            f"| {_fmt(r['samples_per_s'], 0)} {r['device'] or ''} "
            f"| {_fmt(r['notebook_acc'], 2)} |"
        )
    others = sorted(set(runs) - set(names))
    if others:
        lines += [
            "",
            "## Other experiments on these commits (seed repeats, the sweep, ...)",
            "",
            "| experiment | changed params | best val acc | test acc | macro-F1 |",
            "|---|---|---|---|---|",
        ]
        base = committed_params("params.yaml")
        for name in others:
            run = runs[name]
            changed = {
                f"{s}.{k}": v
                for s, section in run["params"].items()
                if isinstance(section, dict)
                for k, v in section.items()
                if _get(base, f"{s}.{k}") != v and s != "data"
            }
            live = run["metrics"].get("dvclive/train/metrics.json", {})
            test = run["metrics"].get("metrics/test.json", {})
            shown = ", ".join(f"{k}={v}" for k, v in changed.items()) or "(none)"
            lines.append(
                f"| {name} | {shown} | {_fmt(live.get('best_val_acc'))} "
                f"| {_fmt(test.get('accuracy'))} | {_fmt(test.get('macro_f1'))} |"
            )
    lines += [
        "",
        f"Training loss and validation accuracy curves of every ladder run: "
        f"[{plots_dir}/index.html]({plots_dir.name}/index.html) (`dvc plots diff`; per-class "
        "scores and confusion matrices: `dvc plots diff <exp-a> <exp-b>`, `dvc exp show`).",
    ]
    analysis = out_dir / "ladder_analysis.md"
    if analysis.is_file():
        lines += ["", analysis.read_text(encoding="utf-8").rstrip()]
    report = out_dir / "ladder.md"
    write_text(report, "\n".join(lines) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", "-j", type=int, default=1, help="experiments run at once")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra -S override for every preset (repeatable), e.g. train.epochs=5",
    )
    parser.add_argument("--presets", help="comma-separated subset (default: all)")
    parser.add_argument("--report-only", action="store_true", help="only rewrite the report")
    parser.add_argument(
        "--rev", help="with --report-only: report the experiments of this commit (default HEAD)"
    )
    parser.add_argument(
        "--commits",
        type=int,
        default=1,
        help="also report experiments of this many commits back from --rev (default 1: only it)",
    )
    args = parser.parse_args(argv)
    try:
        presets = load_presets()
        names = args.presets.split(",") if args.presets else list(presets)
        for name in names:
            if name not in presets:
                raise ConfigError(f"unknown preset {name!r}; valid presets: {', '.join(presets)}")
        if not args.report_only:
            base = committed_params("params.yaml")
            sets = parse_sets(args.set)
            if queue_ladder(names, presets, base, sets):
                run_queue(args.jobs)
        report = write_report(list(presets), presets, rev=args.rev, commits=args.commits)
    except AgnewsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"ladder: report written to {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

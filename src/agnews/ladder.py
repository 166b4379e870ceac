"""The notebook's experiment ladder in one command: queue every preset, run them, report.

    python -m agnews.ladder --jobs 1 --set data.local_dir=data/external/ag_news_58k
    python -m agnews.ladder --report-only          # just rewrite the report
    python -m agnews.ladder --presets tuned --seeds 53,1,2   # seed repeats of a preset

Each preset of presets.yaml becomes a DVC experiment named after it (`dvc exp run --queue -n
NAME -S ...`, plus every `--set`, all validated before anything is queued), the queue runs with
`dvc queue start -j JOBS` (a line per finished run; a failed run names its `dvc queue logs`
command and makes the ladder exit 1), and the report is written from `dvc exp show --json`.
An experiment that already exists on this commit with the same parameters is re-used.

The report goes to reports/ladder.md only when every preset has a finished run; a ladder over
a subset (or one with failures) goes to reports/ladder_partial.md, so the complete report is
never replaced by one full of gaps. Besides the presets it lists the linear peers of
reports/peers.json (`python -m agnews.peers`), seed repeats (experiments that differ from a
preset only in train.seed) as mean and standard deviation, and every other experiment.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from agnews.atomic import write_text
from agnews.compare import flatten, model_label
from agnews.config import config_from_dict, load_yaml
from agnews.errors import AgnewsError, ConfigError
from agnews.presets import apply_overrides, committed_params, full_overrides, load_presets
from agnews.presets import overrides_args as presets_overrides_args

REPORT_DIR = Path("reports")
PEERS_FILE = REPORT_DIR / "peers.json"
PLOT_IDS = ("Training loss", "Validation accuracy")  # top-level plots of dvc.yaml
TEST, LIVE, PREP = "metrics/test.json", "dvclive/train/metrics.json", "metrics/prepare.json"


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


def parse_sets(sets: list[str]) -> dict[str, Any]:
    """`key=value` strings (YAML values, as `dvc exp run -S` reads them)."""
    out = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise ConfigError(f"--set {item!r}: expected section.key=value")
        out[key] = load_yaml(value)
    return out


def wanted_params(
    names: list[str],
    presets: dict,
    base: dict,
    sets: dict[str, Any],
    seeds: list[int] | None = None,
) -> dict[str, dict[str, Any]]:
    """Experiment name -> its overrides: each preset's full overrides plus `sets`, and with
    `seeds` one run per seed (named `<preset>` at the preset's own train.seed, else
    `<preset>-s<seed>`). All validated now: a bad --set or preset fails before anything is
    queued."""
    wanted = {}
    for name in names:
        overrides = {**full_overrides(presets, name, base), **sets}
        own_seed = overrides.get("train.seed", base["train"]["seed"])
        for seed in seeds or [own_seed]:
            run = {**overrides, "train.seed": seed} if seeds else overrides
            try:
                config_from_dict(apply_overrides(base, run))
            except ConfigError as exc:
                raise ConfigError(f"preset {name} with the --set values: {exc}") from None
            wanted[name if seed == own_seed else f"{name}-s{seed}"] = run
    return wanted


# --- experiments as dvc exp show sees them


def experiments(rev: str | None = None, commits: int = 1) -> dict[str, dict]:
    """Finished experiments based on commit `rev` (default HEAD) and its `commits - 1` first
    parents: name -> {"params" (nested), "metrics", "rev"}; a name run on several commits keeps
    the newest."""
    args = ["exp", "show", "--json", "-n", str(commits), *(["--rev", rev] if rev else [])]
    shown = json.loads(_dvc(*args))
    runs = {}
    for entry in shown:
        for group in entry.get("experiments") or []:
            if (group.get("executor") or {}).get("state") in ("queued", "running", "failed"):
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


def matches(run: dict, wanted: dict[str, Any]) -> bool:
    flat = flatten(run["params"])
    return all(flat.get(k) == v for k, v in wanted.items())


# --- running


def queue_ladder(wanted: dict[str, dict[str, Any]]) -> list[str]:
    """Queue the presets that have no finished experiment with the same params; return them."""
    existing = experiments()
    queued = []
    for name, overrides in wanted.items():
        if name in existing and matches(existing[name], overrides):
            print(f"ladder: re-using experiment {name}")
            continue
        if name in existing:
            _dvc("exp", "remove", name)
        subprocess.run(  # a failed task of the same name would be taken for this one's result
            [sys.executable, "-m", "dvc", "queue", "remove", name], capture_output=True, check=False
        )
        _dvc("exp", "run", "--queue", "-n", name, *presets_overrides_args(overrides))
        print(f"ladder: queued {name}")
        queued.append(name)
    return queued


def worker_env(jobs: int, cpus: int | None = None) -> dict[str, str]:
    """Environment for `dvc queue start -j jobs`: each job gets cpus // jobs torch threads.

    Every training process otherwise starts one thread per core; N of them on the same cores
    spin against each other (2 jobs on 2 cores: 266 s in the baseline's training loop, not 25 s).
    A user's own OMP_NUM_THREADS wins."""
    env = dict(os.environ)
    # DVC starts its queue workers as a `dvc` command: make it this environment's
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bindir, env.get("PATH", "")])
    if jobs > 1 and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, (cpus or os.cpu_count() or 1) // jobs))
    return env


def queue_states(text: str) -> dict[str, str]:
    """Name -> status ("Queued", "Running", "Success", "Failed") from `dvc queue status`."""
    states = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4 and re.fullmatch(r"[0-9a-f]{7,}", parts[0]):
            states[parts[1]] = parts[-1]
    return states


def start_queue(jobs: int, argv: list[str] | None = None) -> None:
    """`dvc queue start -j jobs`, returning as soon as it has started the workers. Its output
    goes to a file, not a pipe: the workers it leaves running inherit its output, and a pipe
    would only close when the last of them exits, i.e. when the whole queue is done."""
    argv = argv or [sys.executable, "-m", "dvc", "queue", "start", "-j", str(jobs)]
    with tempfile.TemporaryFile(mode="w+") as out:
        code = subprocess.run(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env=worker_env(jobs), check=False,
        ).returncode  # fmt: skip
        if code != 0:
            out.seek(0)
            raise AgnewsError(f"dvc queue start failed: {out.read().strip()}")


def run_queue(names: list[str], jobs: int, poll_s: float = 10.0) -> list[str]:
    """Start the queue and wait for `names`, printing a line as each finishes; return the names
    that failed."""
    start_queue(jobs)
    started, pending, failed, idle_polls = time.monotonic(), set(names), [], 0
    while pending:
        time.sleep(poll_s)
        text = _dvc("queue", "status")
        states = queue_states(text)
        for name in sorted(pending):
            state = states.get(name)
            if state not in ("Success", "Failed"):
                continue
            pending.discard(name)
            done = len(names) - len(pending)
            minutes = (time.monotonic() - started) / 60
            if state == "Success":
                print(f"ladder: {name} finished ({done}/{len(names)}, {minutes:.1f} min)")
            else:
                failed.append(name)
                print(
                    f"ladder: {name} FAILED ({done}/{len(names)}); see `dvc queue logs {name}`",
                    file=sys.stderr,
                )
            sys.stdout.flush()
        if pending and not any(states.get(n) in ("Queued", "Running") for n in pending):
            missing = ", ".join(sorted(pending))
            raise AgnewsError(f"the queue stopped before {missing} ran (see `dvc queue status`)")
        idle = "Worker status: 0 active, 0 idle" in text
        if idle and not any(states.get(n) == "Running" for n in pending):
            idle_polls += 1
            if idle_polls * poll_s >= 60:
                raise AgnewsError(
                    "no queue worker is running and runs are still queued: restart them with "
                    "`dvc queue start` (is `dvc` on PATH?)"
                )
        else:
            idle_polls = 0
    return failed


# --- the report


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
            _dvc("plots", "diff", *done, "--targets", *PLOT_IDS, "-o", str(plots_dir))
        except AgnewsError:  # a name DVC finds on several commits: by revision instead
            revs = [runs[n]["rev"] for n in done]
            _dvc("plots", "diff", *revs, "--targets", *PLOT_IDS, "-o", str(plots_dir))
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
        help="extra -S override for every preset (repeatable), e.g. data.local_dir=...",
    )
    parser.add_argument("--presets", help="comma-separated subset (default: all)")
    parser.add_argument(
        "--seeds",
        help="comma-separated train.seed values: one run per preset and seed, reported as "
        "mean and standard deviation (e.g. 53,1,2)",
    )
    parser.add_argument("--report-only", action="store_true", help="only rewrite the report")
    parser.add_argument("--out", type=Path, help="report file (default: see above)")
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
    failed: list[str] = []
    try:
        presets = load_presets()
        names = args.presets.split(",") if args.presets else list(presets)
        for name in names:
            if name not in presets:
                raise ConfigError(f"unknown preset {name!r}; valid presets: {', '.join(presets)}")
        if not args.report_only:
            base = committed_params("params.yaml")
            seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else None
            wanted = wanted_params(names, presets, base, parse_sets(args.set), seeds)
            queued = queue_ladder(wanted)
            if queued:
                failed = run_queue(queued, args.jobs)
        report = write_report(presets, args.out, rev=args.rev, commits=args.commits)
    except AgnewsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"ladder: report written to {report}")
    if failed:
        print(f"error: {len(failed)} run(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

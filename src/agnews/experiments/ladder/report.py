"""The ladder's report (reports/ladder.md or ladder_partial.md) from `dvc exp show --json`.

One code version per table: every run records the hash of the code that trained it
(`code_hash`, agnews.provenance) and prepare the digest of its rows (`raw_digest`). The table
holds the runs of one version (code hash, data folder, rows digest): the version most of the
presets' runs share. Runs of any other version, or made before runs recorded one, go to an
"Older runs" list and into no comparison; seed groups are formed within the table's version.

Paired comparisons: for each step of the ladder that the analysis discusses (STEPS), the
accuracy difference of the two runs on the same test rows with a 95% paired bootstrap
interval and McNemar's exact p-value (agnews.evaluation.stats), from each run's per-row predictions
(`metrics/predictions.csv` in its experiment commit; each peer's CSV from reports/peers.json).
"""

from __future__ import annotations

import json
import shutil
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from agnews.atomic import write_text
from agnews.errors import AgnewsError, DataError
from agnews.evaluation.predictions import (
    Predictions,
    check_same_rows,
    parse_predictions,
    read_predictions,
)
from agnews.evaluation.stats import compare
from agnews.experiments import shell
from agnews.experiments.compare import flatten, model_label
from agnews.experiments.ladder.experiments import experiments, matches
from agnews.experiments.presets import (
    apply_overrides,
    committed_params,
    full_overrides,
    preset_params,
)

REPORT_DIR = Path("reports")
PEERS_FILE = REPORT_DIR / "peers.json"
PLOT_IDS = ("Training loss", "Validation accuracy")  # top-level plots of dvc.yaml


def run_file(run: dict, kind: str) -> str:
    """The file the run's own params (`paths:`) name for `kind`: "test" (evaluate's metrics),
    "live" (train's dvclive metrics), "prepare" (prepare's metrics) or "predictions" (evaluate's
    per-row test predictions). Paths are written once, in params.yaml, never here."""
    paths = run["params"].get("paths") or {}
    files = {
        "test": paths.get("test_metrics"),
        "live": f"{paths.get('train_live_dir')}/metrics.json",
        "prepare": paths.get("prepare_metrics"),
        "predictions": paths.get("predictions"),
    }
    return str(files[kind])


def metric(run: dict, kind: str) -> dict:
    """The run's metrics file of `kind` (see run_file), {} if it has none."""
    return run["metrics"].get(run_file(run, kind)) or {}


BEST_PEER = "best peer"  # stands for the linear peer best on validation in STEPS
# (step, run A, run B): B - A on the same test rows, the steps reports/ladder_analysis.md reads
STEPS = (
    ("RNN -> GRU (max pooling)", "rnn_max", "gru_max"),
    ("RNN -> GRU (mean pooling)", "rnn_mean", "gru_mean"),
    ("pooling max -> mean (RNN)", "rnn_max", "rnn_mean"),
    ("pooling max -> mean (GRU)", "gru_max", "gru_mean"),
    ("GRU -> bidirectional LSTM", "gru_max", "bilstm"),
    ("stacking: 1 -> 3 GRU layers", "gru_max", "gru_stacked"),
    ("GRU Cat head", "gru_max", "gru_cat"),
    ("flatten over 50 tokens (GRU)", "gru_max", "gru_flatten50"),
    ("flatten (2-layer BiLSTM): 50 -> flatten70+mean+max", "bilstm2_flatten50",
     "bilstm2_flatten_mean_max"),
    ("the notebook's best vs the best GRU", "gru_max", "bilstm2_flatten_mean_max"),
    ("tuned vs the notebook's best", "bilstm2_flatten_mean_max", "tuned"),
    ("wide_deep vs tuned", "tuned", "wide_deep"),
    ("best peer vs wide_deep", "wide_deep", BEST_PEER),
)  # fmt: skip


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
        prep = metric(run, "prepare")
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


def version(run: dict) -> tuple[str | None, str | None, str | None]:
    """(code hash, data folder or hub dataset, rows digest) of a run; None where it recorded
    none (runs made before these were recorded)."""
    flat = flatten(run["params"])
    return (
        metric(run, "live").get("code_hash"),
        flat.get("data.local_dir") or flat.get("data.hub_dataset"),
        metric(run, "prepare").get("raw_digest"),
    )


def table_version(presets: dict, runs: dict[str, dict]) -> tuple | None:
    """The version most of the presets' runs share (the first preset's on a tie), among runs
    that recorded one; with no run named after a preset (a grid- or seed-only ladder), the
    version most of the presets' variants (`<preset>-...`) share; None if none did."""
    versions = [version(runs[n]) for n in presets if n in runs] or [
        version(r) for n, r in sorted(runs.items()) if any(n.startswith(f"{p}-") for p in presets)
    ]
    counts = Counter(v for v in versions if v[0] is not None and v[2] is not None)
    if not counts:
        return None
    top = max(counts.values())
    return next(v for v in versions if counts.get(v) == top)


def split_by_version(
    presets: dict, runs: dict[str, dict]
) -> tuple[tuple | None, dict[str, dict], dict[str, dict]]:
    """(the table's version, its runs, every other run): rows of different code or data are
    never mixed in one table."""
    current = table_version(presets, runs)
    same = {n: r for n, r in runs.items() if current is not None and version(r) == current}
    return current, same, {n: r for n, r in runs.items() if n not in same}


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
    groups = {  # one version per group: the same code and data (and its rows' digest)
        p: [n for n in names if version(runs[n]) == version(runs[sorted(names)[0]])]
        for p, names in groups.items()
    }
    return {p: sorted(n) for p, n in groups.items() if len(n) > 1}


def _mean_sd(values: list[float]) -> str:
    if not values:
        return "–"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.2f} ± {100 * sd:.2f}"


def _stopped(live: dict) -> str:
    """e.g. "3.5 (early stop)", "10 (max epochs)"."""
    epoch, reason = live.get("stopped_epoch"), live.get("stop_reason")
    if epoch is None:
        return "–"
    why = {"patience": "early stop", "max_epochs": "max epochs"}.get(reason, str(reason))
    return f"{epoch:g} ({why})"


def best_peer(peers: dict | None) -> dict | None:
    """The linear peer best on validation (never chosen on test)."""
    listed = (peers or {}).get("peers") or []
    scored = [p for p in listed if "val_acc" in p]  # not a peer whose fit diverged
    return max(scored, key=lambda p: p["val_acc"]) if scored else None


def paired_lines(predictions: dict[str, Predictions], peers: dict | None) -> list[str]:
    """The paired comparisons of STEPS as a Markdown table (rows with a run missing say so)."""
    peer = best_peer(peers)
    lines = [
        "## Paired comparisons on the same test rows",
        "",
        "For each step the analysis discusses: B's test accuracy minus A's in points, on the "
        "same 7,600 rows, with a 95% paired bootstrap interval (10,000 resamples of the rows) "
        "and McNemar's exact test on the rows only one of them got right. An interval that "
        "contains 0 is no evidence of a difference. Single runs (the preset's own seed): seed "
        "noise comes on top, see the seed repeats.",
        "",
        "| step | A | B | B − A (95% interval) | only A right | only B right | McNemar p |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for step, a, b in STEPS:
        names = [peer["name"] if (n == BEST_PEER and peer) else n for n in (a, b)]
        shown = [n if peer and n == peer["name"] else f"`{n}`" for n in names]
        if not all(n in predictions for n in names):
            missing = ", ".join(n for n in names if n not in predictions)
            lines.append(f"| {step} | {shown[0]} | {shown[1]} | no predictions: {missing} | | | |")
            continue
        pa, pb = predictions[names[0]], predictions[names[1]]
        try:
            check_same_rows(pa, pb, (names[0], names[1]))
        except DataError:
            lines.append(f"| {step} | {shown[0]} | {shown[1]} | not the same test rows | | | |")
            continue
        r = compare(pa.correct, pb.correct)
        lines.append(
            f"| {step} | {shown[0]} | {shown[1]} | {r.points()} | {r.only_a} | {r.only_b} "
            f"| {r.p_value:.3g} |"
        )
    return lines


def _version_text(v: tuple | None) -> str:
    if v is None:
        return "none recorded"
    code, data, rows = v
    return f"code `{code}`, data `{data}` (rows `{rows}`)"


def report_lines(
    presets: dict,
    runs: dict[str, dict],
    base: dict,
    peers: dict | None,
    header: str,
    older: dict[str, dict] | None = None,
    predictions: dict[str, Predictions] | None = None,
    current: tuple | None = None,
) -> list[str]:
    """The report: `runs` are the table's (one version, `current`), `older` every other run,
    `predictions` the per-row test predictions by run or peer name."""
    lines = [
        header,
        "",
        f"Data: {_data_line(runs)}. Validation accuracy selects the checkpoint (best of "
        "`train.evals_per_epoch` passes per epoch); test accuracy is the full test split scored "
        "once with it. `where` is what trained it (`cpu (N threads)` or `cuda`); `train s` is "
        "the training loop's time, validation passes excluded. `epochs` is the maximum; "
        "`stopped` is where training ended and why (early stop: `train.patience` validation "
        "passes without a new best). The notebook's number is not "
        "the same measurement: it trained on all 120,000 rows and took the best of its "
        "per-epoch evaluations on a 5,000-row test sample.",
        "",
        (
            f"One code version: every row below ran {_version_text(current)}"
            if current
            else "One code version: no run recorded its code and data yet, so none is shown"
        )
        + " (`code` is the hash of the prepare and train stages' code, agnews.provenance); "
        'runs of other code or data are listed under "Older runs" and compared with nothing.',
        "",
        "| run | notebook cell | model | batch | epochs | best val % (epoch) | test % "
        "| macro-F1 % | train s | where | notebook % | stopped | code |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for name, preset in presets.items():
        run = runs.get(name)
        flat = (
            flatten(run["params"])
            if run
            else flatten(apply_overrides(base, full_overrides(presets, name, base)))
        )
        live = metric(run, "live") if run else {}
        test = metric(run, "test") if run else {}
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
            f"| {_where(live)} | {_fmt(preset.get('notebook_acc'), 2)} | {_stopped(live)} "
            f"| {live.get('code_hash', '–')} |"
        )
    for peer in (peers or {}).get("peers", []):
        lines.append(
            f"| {peer['name']} | (linear peer) | – | – | – | {_pct(peer.get('val_acc'))} "
            f"| {_pct(peer.get('test_acc'))} | {_pct(peer.get('test_macro_f1'))} "
            f"| {_fmt(peer.get('fit_seconds'), 0)} | cpu | – | – | – |"
        )
    if peers:
        lines += [
            "",
            f"Peers: `{peers.get('command', 'python -m agnews peers')}` on the same "
            "train / validation / test rows (fitted on train, scored on validation and "
            "test); `train s` is the fit time.",
        ]
    if predictions is not None:
        lines += ["", *paired_lines(predictions, peers)]
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
            m = [runs[n] for n in names]
            val = _mean_sd([metric(x, "live")["best_val_acc"] for x in m])
            lines.append(
                f"| `{preset}` | {len(names)} ({', '.join(map(str, seeds))}) "
                f"| {', '.join(names)} | {val} "
                f"| {_mean_sd([metric(x, 'test')['accuracy'] for x in m])} "
                f"| {_mean_sd([metric(x, 'test')['macro_f1'] for x in m])} |"
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
            live, test = metric(run, "live"), metric(run, "test")
            lines.append(
                f"| {name} | {shown} | {_pct(live.get('best_val_acc'))} "
                f"| {_pct(test.get('accuracy'))} | {_pct(test.get('macro_f1'))} |"
            )
    if older:
        lines += [
            "",
            "## Older runs (other code or data)",
            "",
            "Not in the table above and in no comparison: their code or data differ from the "
            "table's (or they were made before runs recorded them).",
            "",
            "| experiment | code | data | rows digest | best val % | test % |",
            "|---|---|---|---|---:|---:|",
        ]
        for name in sorted(older):
            run = older[name]
            code, data, rows = version(run)
            live, test = metric(run, "live"), metric(run, "test")
            lines.append(
                f"| {name} | {code or 'not recorded'} | {data or '–'} | {rows or 'not recorded'} "
                f"| {_pct(live.get('best_val_acc'))} | {_pct(test.get('accuracy'))} |"
            )
    return lines


def run_predictions(runs: dict[str, dict]) -> dict[str, Predictions]:
    """Each run's per-row test predictions, from its experiment commit (runs without any, made
    before the evaluate stage wrote them, are left out)."""
    out = {}
    for name, run in runs.items():
        path = run_file(run, "predictions")
        proc = shell.run(["git", "show", f"{run['rev']}:{path}"], check=False)
        if proc.returncode == 0:
            out[name] = parse_predictions(proc.stdout, f"{name}:{path}")
    return out


def peer_predictions(peers: dict | None, base_dir: Path = REPORT_DIR) -> dict[str, Predictions]:
    """Each peer's per-row test predictions (their paths in peers.json are relative to it)."""
    out = {}
    for peer in (peers or {}).get("peers") or []:
        if peer.get("predictions") and (base_dir / peer["predictions"]).is_file():
            out[peer["name"]] = read_predictions(base_dir / peer["predictions"])
    return out


def is_complete(presets: dict, runs: dict[str, dict], base: dict) -> bool:
    """Every preset has a run of the table's version made with exactly the preset's own params
    (every param: the preset's value, else the committed one); a ladder run with `--set
    train.epochs=1`, say, is a subset's table and never replaces the complete report."""
    return all(
        name in runs and matches(runs[name], preset_params(presets, name, base)) for name in presets
    )


def write_report(
    presets: dict,
    out: Path | None = None,
    rev: str | None = None,
    commits: int = 1,
) -> Path:
    """Write the report (and its plots page) for the experiments of `rev` and its parents;
    to reports/ladder.md when every preset ran, else reports/ladder_partial.md (or `out`)."""
    current, runs, older = split_by_version(presets, experiments(rev, commits))
    complete = is_complete(presets, runs, committed_params("params.yaml"))
    if out is None:
        out = REPORT_DIR / ("ladder.md" if complete else "ladder_partial.md")
    plots_dir = out.parent / f"{out.stem}_plots"
    done = [n for n in presets if n in runs]
    if done:  # the curves only: confusion rows and images of a dozen runs weigh megabytes
        shutil.rmtree(plots_dir, ignore_errors=True)
        try:  # by name, so the legend reads rnn_max, gru_max, ...
            shell.dvc("plots", "diff", *done, "--targets", *PLOT_IDS, "-o", str(plots_dir))
        except AgnewsError:  # a name DVC finds on several commits: by revision instead
            revs = [runs[n]["rev"] for n in done]
            shell.dvc("plots", "diff", *revs, "--targets", *PLOT_IDS, "-o", str(plots_dir))
    peers = json.loads(PEERS_FILE.read_text(encoding="utf-8")) if PEERS_FILE.is_file() else None
    peers_note = []
    if peers and (current is None or peers.get("data", {}).get("raw_digest") != current[2]):
        peers_note = [
            "",
            f"The linear peers of {PEERS_FILE.name} were fitted on other rows (or recorded no "
            "digest of them): left out. Rerun `python -m agnews peers` on these rows.",
        ]
        peers = None
    commit = rev or shell.run(["git", "rev-parse", "HEAD"], check=False).stdout.strip()
    missing = [n for n in presets if n not in runs]
    header = "\n".join(
        [
            "# The notebook's experiment ladder" + ("" if complete else " (partial)"),
            "",
            "Generated by `python -m agnews ladder` from `dvc exp show`; do not edit by hand. "
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
    predictions = {**run_predictions(runs), **peer_predictions(peers)}
    lines = report_lines(
        presets, runs, committed_params("params.yaml"), peers, header, older, predictions, current
    )
    lines += peers_note
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

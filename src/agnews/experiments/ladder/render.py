"""The ladder report's Markdown: the presets' table, the peers, the paired comparisons, seed
repeats, other runs and older runs. Everything comes from the runs (agnews.experiments.ladder.
runs) and their predictions: nothing of the machine that writes the report, nor the time.

Paired comparisons: for each step of the ladder that the analysis discusses (STEPS), the
accuracy difference of the two runs on the same test rows with a 95% paired bootstrap interval
and McNemar's exact p-value (agnews.evaluation.stats); where both ends have seed repeats, the
same at each seed and the mean ± sd over the seeds.
"""

from __future__ import annotations

import statistics
from typing import Any

from agnews.errors import DataError
from agnews.evaluation.predictions import Predictions, check_same_rows
from agnews.evaluation.stats import PairedDifference, compare
from agnews.experiments.compare import flatten, model_label
from agnews.experiments.ladder.runs import Version, metric, seed_groups, version
from agnews.experiments.presets import apply_overrides, full_overrides

BEST_PEER = "best peer"  # stands for the linear peer best on validation in STEPS
# (step, run A, run B): B - A on the same test rows, the steps reports/ladder_analysis.md reads
STEPS = (
    ("RNN -> GRU (max pooling)", "rnn_max", "gru_max"),
    ("RNN -> GRU (mean pooling)", "rnn_mean", "gru_mean"),
    ("pooling max -> mean (RNN)", "rnn_max", "rnn_mean"),
    ("pooling max -> mean (GRU)", "gru_max", "gru_mean"),
    ("GRU -> bidirectional LSTM", "gru_max", "bilstm"),
    ("stacking: 1 -> 3 GRU layers", "gru_max", "gru_stacked"),
    ("stacking: 1 bidirectional LSTM layer -> 3 (bidirectional top, tanh between)", "bilstm",
     "lstm_stacked_bitop"),
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


def _stopped(live: dict) -> str:
    """e.g. "3.50 (early stop)", "10.00 (max epochs)": two decimals like the best epoch's (a
    stop between evaluations is a fraction of steps, 5.5003 epochs, not a finer measurement)."""
    epoch, reason = live.get("stopped_epoch"), live.get("stop_reason")
    if epoch is None:
        return "–"
    why = {"patience": "early stop", "max_epochs": "max epochs"}.get(reason, str(reason))
    return f"{_fmt(float(epoch), 2)} ({why})"


def _mean_sd(values: list[float]) -> str:
    if not values:
        return "–"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.2f} ± {100 * sd:.2f}"


def data_line(runs: dict[str, dict]) -> str:
    """Rows and source of the runs' data, and their vocabulary size per prepare.min_count."""
    line, vocabs = "no finished runs", {}
    for name in sorted(runs):
        run = runs[name]
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


def version_text(v: Version | None) -> str:
    if v is None:
        return "none recorded"
    code, data, rows = v
    return f"code `{code}`, data `{data}` (rows `{rows}`)"


def best_peer(peers: dict | None) -> dict | None:
    """The linear peer best on validation (never chosen on test)."""
    listed = (peers or {}).get("peers") or []
    scored = [p for p in listed if "val_acc" in p]  # not a peer whose fit diverged
    return max(scored, key=lambda p: p["val_acc"]) if scored else None


def intro_lines(runs: dict[str, dict], current: Version | None) -> list[str]:
    return [
        f"Data: {data_line(runs)}. Validation accuracy selects the checkpoint (best of "
        "`train.evals_per_epoch` passes per epoch); test accuracy is the full test split scored "
        "once with it. `where` is what trained it (`cpu (N threads)` or `cuda`); `train s` is "
        "the training loop's time, validation passes excluded. `epochs` is the maximum; "
        "`stopped` is where training ended and why (early stop: `train.patience` validation "
        "passes without a new best). The notebook's number is not "
        "the same measurement: it trained on all 120,000 rows and took the best of its "
        "per-epoch evaluations on a 5,000-row test sample.",
        "",
        (
            f"One code version: every row below ran {version_text(current)}"
            if current
            else "One code version: no run recorded its code and data yet, so none is shown"
        )
        + " (`code` is the hash of the prepare and train stages' code, agnews.provenance); "
        'runs of other code or data are listed under "Older runs" and compared with nothing.',
    ]


def table_lines(presets: dict, runs: dict[str, dict], base: dict, peers: dict | None) -> list[str]:
    """One row per preset (its run, or "not run"), then one per linear peer."""
    lines = [
        "| run | notebook cell | model | batch | epochs | best val % (epoch) | test % "
        "| macro-F1 % | train s | where | notebook % | stopped | code |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for name, preset in presets.items():
        run = runs.get(name)
        flat = flatten(
            run["params"] if run else apply_overrides(base, full_overrides(presets, name, base))
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
    return lines


def _paired(predictions: dict[str, Predictions], a: str, b: str) -> PairedDifference | str:
    """B against A on the same test rows, or why they cannot be compared (a table cell)."""
    if a not in predictions or b not in predictions:
        return "no predictions: " + ", ".join(n for n in (a, b) if n not in predictions)
    try:
        check_same_rows(predictions[a], predictions[b], (a, b))
    except DataError:
        return "not the same test rows"
    return compare(predictions[a].correct, predictions[b].correct)


def paired_lines(predictions: dict[str, Predictions], peers: dict | None) -> list[str]:
    """The paired comparisons of STEPS as a Markdown table (rows with a run missing say so),
    after a paragraph saying what the intervals cover and how many comparisons there are."""
    peer = best_peer(peers)
    rows, sizes, made = [], set(), 0
    for step, a, b in STEPS:
        names = [peer["name"] if (n == BEST_PEER and peer) else n for n in (a, b)]
        shown = [n if peer and n == peer["name"] else f"`{n}`" for n in names]
        r = _paired(predictions, *names)
        if isinstance(r, str):
            rows.append(f"| {step} | {shown[0]} | {shown[1]} | {r} | | | |")
            continue
        sizes.add(r.n)
        made += 1
        rows.append(
            f"| {step} | {shown[0]} | {shown[1]} | {r.points()} | {r.only_a} | {r.only_b} "
            f"| {r.p_value:.3g} |"
        )
    test_rows = f"{next(iter(sizes)):,} " if len(sizes) == 1 else ""
    return [
        "## Paired comparisons on the same test rows",
        "",
        "For each step the analysis discusses: B's test accuracy minus A's in points, on the "
        f"same {test_rows}test rows, with a 95% paired bootstrap interval (10,000 resamples of "
        "the rows) and McNemar's exact test on the rows only one of them got right. An interval "
        "that contains 0 is no evidence of a difference.",
        "",
        "The intervals and p-values cover the sampling of the test rows only, not the training "
        "seed: each row compares one run of each (the preset's own seed), and the spread "
        "between seeds (see the seed repeats) comes on top. "
        f"{made} comparison{'' if made == 1 else 's'} of {len(STEPS)} steps "
        f"{'is' if made == 1 else 'are'} made (a step lacking a run's predictions is not), "
        "none corrected for the others: with no difference anywhere, about one 95% interval "
        "in 20 would still exclude 0.",
        "",
        "| step | A | B | B − A (95% interval) | only A right | only B right | McNemar p |",
        "|---|---|---|---:|---:|---:|---:|",
        *rows,
    ]


def seed_step_lines(
    predictions: dict[str, Predictions], runs: dict[str, dict], groups: dict[str, list[str]]
) -> list[str]:
    """The STEPS whose two ends both have seed repeats, compared at each seed they share (A and
    B trained with the same train.seed: one replicate of the step per seed), then the mean ± sd
    of those differences over the seeds: the seed variation the single-seed intervals leave
    out; `groups` are seed_groups'. Empty when no step has seed repeats at both ends."""
    by_seed = {
        preset: {flatten(runs[n]["params"]).get("train.seed"): n for n in names}
        for preset, names in groups.items()
    }
    rows, made, again = [], 0, 0
    for step, a, b in STEPS:
        if a not in by_seed or b not in by_seed:
            continue
        diffs = []
        for seed in sorted(set(by_seed[a]) & set(by_seed[b])):
            na, nb = by_seed[a][seed], by_seed[b][seed]
            r = _paired(predictions, na, nb)
            if isinstance(r, str):
                rows.append(f"| {step} | {seed} | `{na}` | `{nb}` | {r} | |")
                continue
            diffs.append(r.diff)
            made += 1
            again += (na, nb) == (a, b)  # the presets' own runs: a row of the table above
            rows.append(f"| {step} | {seed} | `{na}` | `{nb}` | {r.points()} | {r.p_value:.3g} |")
        if len(diffs) > 1:
            mean, sd = statistics.mean(diffs), statistics.stdev(diffs)
            rows.append(
                f"| {step} | mean ± sd over {len(diffs)} seeds | | "
                f"| {100 * mean:+.2f} ± {100 * sd:.2f} | |"
            )
    if not rows:
        return []
    return [
        "## Steps at each seed",
        "",
        "The steps above whose two presets both have seed repeats, compared at each seed they "
        "share (A and B trained with the same `train.seed`, each seed one replicate of the "
        "step), then the mean ± sample sd of the differences over the seeds. Each interval "
        "still covers the test rows only; the spread over seeds is what the single-seed rows "
        f"above leave out. {made} comparison{'' if made == 1 else 's'} ({again} of them the "
        "presets' own runs, as above), none corrected for the others.",
        "",
        "| step | seed | A | B | B − A (95% interval) | McNemar p |",
        "|---|---|---|---|---:|---:|",
        *rows,
    ]


def seed_lines(runs: dict[str, dict], groups: dict[str, list[str]]) -> list[str]:
    """The seed repeats' table: mean ± sd per group of seed_groups (`groups`)."""
    if not groups:
        return []
    lines = [
        "## Seed repeats",
        "",
        "Runs that differ from a preset only in `train.seed`: mean ± sample standard deviation "
        "over the seeds. This spread is the seed variation the paired intervals leave out.",
        "",
        "| preset | seeds | runs | best val % | test % | macro-F1 % |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for preset, names in groups.items():
        seeds = sorted(flatten(runs[n]["params"]).get("train.seed") for n in names)
        group = [runs[n] for n in names]
        lines.append(
            f"| `{preset}` | {len(names)} ({', '.join(map(str, seeds))}) "
            f"| {', '.join(names)} "
            f"| {_mean_sd([metric(x, 'live')['best_val_acc'] for x in group])} "
            f"| {_mean_sd([metric(x, 'test')['accuracy'] for x in group])} "
            f"| {_mean_sd([metric(x, 'test')['macro_f1'] for x in group])} |"
        )
    return lines


def other_lines(others: list[dict], base: dict) -> list[str]:
    """Runs of the table's version that are no preset's row and in no seed group."""
    if not others:
        return []
    lines = [
        "## Other runs of this version",
        "",
        "| run | changed params (vs. params.yaml) | best val % | test % | macro-F1 % |",
        "|---|---|---:|---:|---:|",
    ]
    flat_base = flatten(base)
    for run in others:
        changed = {
            k: v
            for k, v in flatten(run["params"]).items()
            if flat_base.get(k) != v and not k.startswith(("data.", "paths."))
        }
        shown = ", ".join(f"{k}={v}" for k, v in changed.items()) or "(none)"
        live, test = metric(run, "live"), metric(run, "test")
        lines.append(
            f"| {run['name']} | {shown} | {_pct(live.get('best_val_acc'))} "
            f"| {_pct(test.get('accuracy'))} | {_pct(test.get('macro_f1'))} |"
        )
    return lines


def older_lines(older: list[dict]) -> list[str]:
    if not older:
        return []
    lines = [
        "## Older runs (other code or data)",
        "",
        "Not in the table above and in no comparison: their code or data differ from the "
        "table's (or they were made before runs recorded them).",
        "",
        "| run | code | data | rows digest | best val % | test % |",
        "|---|---|---|---|---:|---:|",
    ]
    for run in older:
        code, data, rows = version(run)
        live, test = metric(run, "live"), metric(run, "test")
        lines.append(
            f"| {run['name']} | {code or 'not recorded'} | {data or '–'} "
            f"| {rows or 'not recorded'} | {_pct(live.get('best_val_acc'))} "
            f"| {_pct(test.get('accuracy'))} |"
        )
    return lines


def report_lines(
    presets: dict,
    runs: dict[str, dict],
    base: dict,
    peers: dict | None,
    header: str,
    older: list[dict] | None = None,
    predictions: dict[str, Predictions] | None = None,
    current: Version | None = None,
    extra: list[dict] | None = None,
) -> list[str]:
    """The report: `runs` are the table's (one version, `current`) by name, `extra` the other
    runs of that version under a name the table has, `older` every run of another version,
    `predictions` the per-row test predictions by run or peer name."""
    lines = [header, "", *intro_lines(runs, current), "", *table_lines(presets, runs, base, peers)]
    if predictions is not None:
        lines += ["", *paired_lines(predictions, peers)]
    groups = seed_groups(runs, presets, base)
    seeds = seed_lines(runs, groups)
    if predictions is not None and (by_seed := seed_step_lines(predictions, runs, groups)):
        seeds += ["", *by_seed]
    grouped = {n for g in groups.values() for n in g}
    others = [runs[n] for n in sorted(set(runs) - set(presets) - grouped)] + (extra or [])
    for section in (seeds, other_lines(others, base), older_lines(older or [])):
        if section:
            lines += ["", *section]
    return lines

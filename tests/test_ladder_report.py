"""The ladder report: one code version per table, seed groups within it, paired comparisons."""

import numpy as np
from helpers import ROOT

from agnews.evaluation.predictions import Predictions
from agnews.experiments.ladder.render import STEPS, _stopped, paired_lines, report_lines
from agnews.experiments.ladder.runs import (
    choose,
    from_experiment,
    is_complete,
    merge,
    metric,
    seed_groups,
)
from agnews.experiments.presets import apply_overrides, full_overrides, load_presets

PRESETS = load_presets(ROOT / "presets.yaml")


def _run(params, preset, code="c0de", rows="r0ws", seed=None, name=None, **live):
    """A finished experiment of `preset` as the report reads it (`dvc exp show`'s metrics by
    file, where the run's own params put them)."""
    changes = full_overrides(PRESETS, preset, params)
    if seed is not None:
        changes["train.seed"] = seed
    paths = params["paths"]  # each run's metrics are where its own params put them
    LIVE, TEST, PREP = (
        f"{paths['train_live_dir']}/metrics.json",
        paths["test_metrics"],
        paths["prepare_metrics"],
    )
    metrics = {
        LIVE: {"best_val_acc": 0.9, "best_epoch": 2.0, "train_seconds": 10.0, "device": "cpu",
               "threads": 1, "stopped_epoch": 3.5, "stop_reason": "patience", **live},
        TEST: {"accuracy": 0.89, "macro_f1": 0.88},
        PREP: {"rows": {"train": 9, "val": 1, "test": 100}, "vocab_size": 5},
    }  # fmt: skip
    if code is not None:
        metrics[LIVE]["code_hash"] = code
    if rows is not None:
        metrics[PREP]["raw_digest"] = rows
    exp = {"rev": "0" * 40, "params": apply_overrides(params, changes), "metrics": metrics}
    return from_experiment(name or preset, exp)


def _split(runs, params):
    """(version, table runs, other runs of it, older runs) of runs given by name."""
    for name, run in runs.items():
        run["name"] = name
    return choose(PRESETS, list(runs.values()), params)


def _preds(correct_rows, n=100):
    labels = np.arange(n) % 4
    predicted = np.where(np.isin(np.arange(n), correct_rows), labels, (labels + 1) % 4)
    return Predictions(labels, predicted, np.full((n, 4), 0.25))


def test_rows_of_other_code_or_data_never_share_the_table(params):
    runs = {
        "rnn_max": _run(params, "rnn_max"),
        "gru_max": _run(params, "gru_max"),
        "tuned": _run(params, "tuned"),
        "wide_deep": _run(params, "wide_deep", code="0ther"),  # other training code
        "gru_mean": _run(params, "gru_mean", rows="0ther"),  # other rows, same folder
        "bilstm": _run(params, "bilstm", code=None),  # made before runs recorded their code
    }
    current, same, extra, older = _split(runs, params)
    assert current == ("c0de", params["data"]["local_dir"], "r0ws")
    assert set(same) == {"rnn_max", "gru_max", "tuned"} and extra == []
    assert {r["name"] for r in older} == {"wide_deep", "gru_mean", "bilstm"}
    lines = report_lines(PRESETS, same, params, None, "# t", older, {}, current)
    text = "\n".join(lines)
    table = {line.split("|")[1].strip(" `"): line for line in lines if line.startswith("| `")}
    assert "| c0de |" in table["rnn_max"] and "3.50 (early stop)" in table["rnn_max"]
    assert "not run" in table["wide_deep"] and "not run" in table["bilstm"]
    older_rows = text.split("## Older runs")[1]
    assert "| wide_deep | 0ther |" in older_rows and "| gru_mean | c0de |" in older_rows
    assert "| bilstm | not recorded |" in older_rows
    # a different data folder is another version too
    moved = _run(params, "rnn_max")
    moved["params"]["data"]["local_dir"] = "elsewhere"
    assert moved in _split({**runs, "rnn_max": moved}, params)[3]


def test_a_stop_between_evaluations_reads_as_the_best_epoch_does():
    """A stop at a half-epoch evaluation is a fraction of steps (5.5003 epochs in gru_flatten50's
    record); the table writes two decimals, like the best epoch beside it."""
    assert _stopped({"stopped_epoch": 5.500307, "stop_reason": "patience"}) == "5.50 (early stop)"
    assert _stopped({"stopped_epoch": 7, "stop_reason": "max_epochs"}) == "7.00 (max epochs)"
    assert _stopped({}) == "–"


def test_seed_groups_need_the_same_code_and_data(params):
    runs = {
        "tuned": _run(params, "tuned"),
        "tuned-s100": _run(params, "tuned", seed=100),
        "tuned-s200": _run(params, "tuned", seed=200, code="0ther"),
        "gru_max": _run(params, "gru_max"),
        "gru_max-s100": _run(params, "gru_max", seed=100, rows="0ther"),
    }
    assert seed_groups(runs, PRESETS, params) == {"tuned": ["tuned", "tuned-s100"]}


def test_paired_comparisons_read_the_runs_predictions():
    predictions = {
        "rnn_max": _preds(range(80)),
        "gru_max": _preds(range(90)),  # right on the same 80 and 10 more
        "tuned": _preds(range(50)),
        "wide_deep": _preds(range(60)),
        "SVM": _preds(range(95)),
    }
    peers = {"peers": [{"name": "SVM", "val_acc": 0.9}, {"name": "LR", "val_acc": 0.8}]}
    lines = paired_lines(predictions, peers)
    row = next(line for line in lines if line.startswith("| RNN -> GRU (max pooling)"))
    cells = [c.strip() for c in row.split("|")]
    assert cells[2:4] == ["`rnn_max`", "`gru_max`"]
    assert cells[4].startswith("+10.00 (") and (cells[5], cells[6]) == ("0", "10")
    assert cells[7] == f"{2 / 1024:.3g}"  # McNemar: 0 vs 10, two-sided 2 * 0.5**10
    peer_row = next(line for line in lines if line.startswith("| best peer vs wide_deep"))
    assert "| `wide_deep` | SVM | +35.00 (" in peer_row  # the peer best on validation
    missing = next(line for line in lines if line.startswith("| GRU -> bidirectional LSTM"))
    assert "no predictions: bilstm" in missing
    text = " ".join(lines)
    # the rows counted from the predictions (never a number written into the code), what the
    # intervals cover, and how many comparisons were made of how many steps
    assert "on the same 100 test rows" in text and "7,600" not in text
    assert "cover the sampling of the test rows only, not the training seed" in text
    assert f"3 comparisons of {len(STEPS)} steps are made" in text


def test_the_row_count_is_the_predictions_own():
    lines = paired_lines({"rnn_max": _preds(range(80), n=120), "gru_max": _preds([], n=120)}, {})
    assert "on the same 120 test rows" in " ".join(lines)
    assert f"1 comparison of {len(STEPS)} steps is made" in " ".join(lines)


def test_seed_repeats_are_shown_as_mean_and_sd(params):
    runs = {
        "wide_deep": _run(params, "wide_deep"),
        "wide_deep-s100": _run(params, "wide_deep", seed=100),
        "wide_deep-s200": _run(params, "wide_deep", seed=200),
    }
    runs["wide_deep-s100"]["metrics"]["test"] = {"accuracy": 0.90, "macro_f1": 0.90}
    runs["wide_deep-s200"]["metrics"]["test"] = {"accuracy": 0.91, "macro_f1": 0.91}
    current, same, _, older = _split(runs, params)
    text = "\n".join(report_lines(PRESETS, same, params, None, "# t", older, None, current))
    row = next(line for line in text.splitlines() if line.startswith("| `wide_deep` | 3 ("))
    # test: 0.89, 0.90, 0.91 -> 90.00 ± 1.00 (sample sd); seeds as the runs recorded them
    assert "| 3 (53, 100, 200) | wide_deep, wide_deep-s100, wide_deep-s200 |" in row
    assert "| 90.00 ± 1.00 |" in row and "## Other runs" not in text


def test_the_table_takes_the_presets_own_params_then_a_published_run(params):
    quick = _run(params, "gru_max")
    quick["params"]["train"]["epochs"] = 1
    own = _run(params, "gru_max")
    _, table, extra, _ = choose(PRESETS, [quick, own], params)
    assert table["gru_max"] is own and extra == [quick]
    # a published run and the experiment it was published from are one run: the record's
    record = {**own, "source": "record", "record": "reports/runs/gru_max.json"}
    runs, unpublished = merge([record], [own, quick])
    assert runs == [record, quick] and unpublished == ["gru_max"]  # quick is not published
    assert choose(PRESETS, runs, params)[1]["gru_max"] is record


def test_runs_scored_on_other_rows_are_not_compared():
    other = _preds(range(90))
    other = Predictions(other.labels[::-1].copy(), other.predicted, other.probs)
    lines = paired_lines({"rnn_max": _preds(range(80)), "gru_max": other}, None)
    row = next(line for line in lines if line.startswith("| RNN -> GRU (max pooling)"))
    assert "| not the same test rows |" in row


def test_metrics_are_found_where_each_run_put_them(params):
    paths = {
        "test_metrics": "out/t.json",
        "train_live_dir": "live",
        "prepare_metrics": "out/p.json",
    }
    moved = {**params, "paths": {**params["paths"], **paths}}
    run = _run(moved, "rnn_max")
    assert metric(run, "test")["accuracy"] == 0.89 and metric(run, "live")["best_val_acc"] == 0.9
    assert metric(run, "prepare")["raw_digest"] == "r0ws"


def test_complete_means_every_preset_with_its_own_params(params):
    runs = {name: _run(params, name) for name in PRESETS}
    assert is_complete(PRESETS, runs, params)
    del runs["wide_deep"]
    assert not is_complete(PRESETS, runs, params)
    # every preset run, but with `--set train.epochs=1`: a subset's table, not the ladder
    quick = {name: _run(params, name) for name in PRESETS}
    for run in quick.values():
        run["params"]["train"]["epochs"] = 1
    assert not is_complete(PRESETS, quick, params)


def test_every_preset_is_in_a_paired_step():
    """A preset no step compares would sit in the table with no interval for the analysis."""
    compared = {name for _, a, b in STEPS for name in (a, b)}
    assert set(PRESETS) <= compared, sorted(set(PRESETS) - compared)


def test_steps_with_seed_repeats_at_both_ends_are_compared_seed_by_seed(params):
    runs = {
        "gru_max": _run(params, "gru_max"),
        "gru_max-s100": _run(params, "gru_max", seed=100),
        "bilstm2_flatten_mean_max": _run(params, "bilstm2_flatten_mean_max"),
        "bilstm2_flatten_mean_max-s100": _run(params, "bilstm2_flatten_mean_max", seed=100),
        "bilstm2_flatten_mean_max-s200": _run(params, "bilstm2_flatten_mean_max", seed=200),
        "rnn_max": _run(params, "rnn_max"),  # no seed repeats: its steps get no rows
    }
    predictions = {
        "gru_max": _preds(range(80)),
        "bilstm2_flatten_mean_max": _preds(range(90)),  # +10 points at seed 53
        "gru_max-s100": _preds(range(80)),
        "bilstm2_flatten_mean_max-s100": _preds(range(70)),  # -10 points at seed 100
        "bilstm2_flatten_mean_max-s200": _preds(range(10)),  # no gru_max-s200: not compared
        "rnn_max": _preds(range(50)),
    }
    current, same, _, older = _split(runs, params)
    lines = report_lines(PRESETS, same, params, None, "# t", older, predictions, current)
    start = lines.index("## Steps at each seed")
    after = [i for i, line in enumerate(lines) if i > start and line.startswith("## ")]
    section = lines[start : after[0] if after else len(lines)]
    rows = [line for line in section if line.startswith("| the notebook's best vs the best GRU")]
    assert [r.split("|")[2].strip() for r in rows] == ["53", "100", "mean ± sd over 2 seeds"]
    assert "| `gru_max-s100` | `bilstm2_flatten_mean_max-s100` | -10.00 (" in rows[1]
    assert "| +0.00 ± 14.14 |" in rows[2]  # mean of +10 and -10, sample sd 10 * sqrt(2)
    assert len([line for line in section if line.startswith("| ")]) == 1 + 3  # header + rows
    assert "2 comparisons (1 of them the presets' own runs, as above)" in " ".join(section)


def test_no_seed_section_without_seed_repeats_at_both_ends_of_a_step(params):
    runs = {
        "gru_max": _run(params, "gru_max"),
        "gru_max-s100": _run(params, "gru_max", seed=100),
        "bilstm2_flatten_mean_max": _run(params, "bilstm2_flatten_mean_max"),
    }
    predictions = {n: _preds(range(80)) for n in runs}
    current, same, _, older = _split(runs, params)
    lines = report_lines(PRESETS, same, params, None, "# t", older, predictions, current)
    assert "## Steps at each seed" not in lines and "## Seed repeats" in lines

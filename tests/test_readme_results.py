"""README's ladder table is the published records', figure for figure: a row that drifts from
its record in reports/runs/ (or names a preset with no record) fails here."""

from __future__ import annotations

import re

from helpers import ROOT

from agnews.experiments.ladder.records import load_records
from agnews.experiments.ladder.render import _fmt, _pct, _stopped
from agnews.experiments.ladder.runs import metric
from agnews.experiments.presets import load_presets

ROW = re.compile(
    r"^\| `(?P<name>\w+)` \| (?P<val>[\d.]+) \((?P<best>[\d.]+)\) \| (?P<test>[\d.]+) \| "
    r"(?P<stopped>[\d.]+) of (?P<epochs>\d+) \((?P<why>early stop|max epochs)\) \| "
    r"(?P<secs>[\d,]+) \|$"
)


def readme_rows() -> dict[str, dict[str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("**The ladder of the frozen training code**", 1)[1]
    return {m["name"]: m.groupdict() for m in map(ROW.match, section.splitlines()) if m}


def records() -> dict[str, dict]:
    """The presets' own published runs (name a preset of presets.yaml, seed 53), by name: the
    README table's rows; seed repeats and grids are not in it."""
    presets = load_presets(ROOT / "presets.yaml")
    return {
        run["name"]: run
        for run in load_records(ROOT / "reports" / "runs")
        if run["name"] in presets and run["params"]["train"]["seed"] == 53
    }


def test_every_readme_ladder_row_is_its_published_record():
    rows, published = readme_rows(), records()
    assert len(rows) >= 10, rows.keys()
    assert set(rows) <= set(published), set(rows) - set(published)
    for name, row in rows.items():  # the report's own cells (render), README's layout
        run = published[name]
        live, test = metric(run, "live"), metric(run, "test")
        assert {**row, "stopped": f"{row['stopped']} ({row['why']})"} == {
            "name": name,
            "val": _pct(live["best_val_acc"]),
            "best": _fmt(live["best_epoch"], 2),
            "test": _pct(test["accuracy"]),
            "stopped": _stopped(live),
            "epochs": str(run["params"]["train"]["epochs"]),
            "why": row["why"],
            "secs": f"{live['train_seconds']:,.0f}",
        }, name


def test_every_published_preset_is_in_the_readme():
    assert set(records()) <= set(readme_rows()), set(records()) - set(readme_rows())

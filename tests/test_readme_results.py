"""README's ladder table is the published records', figure for figure: a row that drifts from
its record in reports/runs/ (or names a preset with no record) fails here."""

from __future__ import annotations

import json
import re

from helpers import ROOT

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
    out = {}
    for path in (ROOT / "reports" / "runs").glob("*.json"):
        record = json.loads(path.read_text(encoding="utf-8"))
        if record["name"] in presets and record["params"]["train"]["seed"] == 53:
            out[record["name"]] = record
    return out


def test_every_readme_ladder_row_is_its_published_record():
    rows, published = readme_rows(), records()
    assert len(rows) >= 10, rows.keys()
    assert set(rows) <= set(published), set(rows) - set(published)
    for name, row in rows.items():
        s = published[name]["summary"]
        why = {"patience": "early stop", "max_epochs": "max epochs"}[s["stop_reason"]]
        assert row == {
            "name": name,
            "val": f"{100 * s['best_val_acc']:.2f}",
            "best": f"{s['best_epoch']:.2f}",
            "test": f"{100 * s['test_acc']:.2f}",
            "stopped": f"{s['stopped_epoch']:.2f}",
            "epochs": str(published[name]["params"]["train"]["epochs"]),
            "why": why,
            "secs": f"{s['train_seconds']:,.0f}",
        }, name


def test_every_published_preset_is_in_the_readme():
    assert set(records()) <= set(readme_rows()), set(records()) - set(readme_rows())

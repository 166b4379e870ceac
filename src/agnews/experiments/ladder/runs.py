"""Which runs the ladder report shows: published records and this clone's experiments as one
kind of run, the table's code version, seed groups, and whether the ladder is complete.

A run is a dict: "name", "params" (nested, as params.yaml), "metrics" by kind ("live": train's
dvclive metrics, "test", "prepare", "calibration"), "source" ("record" or "experiment"), "rev"
(the experiment's commit) and, for a record, "record" (its JSON file).

One code version per table: every run records the hash of the code that trained it
(`code_hash`, agnews.provenance) and prepare the digest of its rows (`raw_digest`). The table
holds the runs of one version (code hash, data folder, rows digest): the version most of the
presets' runs share. Runs of any other version, or made before runs recorded one, are "older
runs" and go into no comparison; seed groups are formed within the table's version.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from agnews.experiments.compare import flatten
from agnews.experiments.ladder.records import KINDS, identity
from agnews.experiments.presets import apply_overrides, full_overrides, preset_params

Version = tuple[str | None, str | None, str | None]


def run_file(params: dict, kind: str) -> str:
    """The file a run's own params (`paths:`) name for `kind`: one of records.KINDS, or
    "predictions" (evaluate's per-row test predictions) or "val_curve" (train's validation
    accuracy curve). Paths are written once, in params.yaml, never here."""
    paths = params.get("paths") or {}
    live_dir = str(paths.get("train_live_dir", "")).rstrip("/")
    files = {
        "test": paths.get("test_metrics"),
        "live": f"{live_dir}/metrics.json",
        "prepare": paths.get("prepare_metrics"),
        "calibration": paths.get("calibration"),
        "predictions": paths.get("predictions"),
        "val_curve": f"{live_dir}/plots/metrics/acc/val.tsv",
    }
    return str(files[kind])


def from_experiment(name: str, exp: dict) -> dict[str, Any]:
    """An experiment of `dvc exp show` ({"rev", "params", "metrics" by file}) as a run."""
    params = exp["params"]
    return {
        "name": name,
        "params": params,
        "metrics": {k: exp["metrics"].get(run_file(params, k)) or {} for k in KINDS},
        "source": "experiment",
        "rev": exp.get("rev"),
    }


def metric(run: dict, kind: str) -> dict:
    """The run's metrics of `kind` (records.KINDS), {} if it has none."""
    return run["metrics"].get(kind) or {}


def run_id(run: dict) -> str:
    """The run's identity (records.identity): all params, code hash, rows digest."""
    return identity(
        run["params"],
        metric(run, "live").get("code_hash"),
        metric(run, "prepare").get("raw_digest"),
    )


def version(run: dict) -> Version:
    """(code hash, data folder or hub dataset, rows digest) of a run; None where it recorded
    none (runs made before these were recorded)."""
    flat = flatten(run["params"])
    return (
        metric(run, "live").get("code_hash"),
        flat.get("data.local_dir") or flat.get("data.hub_dataset"),
        metric(run, "prepare").get("raw_digest"),
    )


def merge(records: list[dict], experiments: list[dict]) -> tuple[list[dict], list[str]]:
    """All runs, an experiment that is published (a record of its name and identity) counted
    once, as its record; and the names of the experiments not published."""
    published = {(r["name"], run_id(r)) for r in records}
    fresh = [e for e in experiments if (e["name"], run_id(e)) not in published]
    return [*records, *fresh], sorted({e["name"] for e in fresh})


def table_version(presets: dict, runs: list[dict]) -> Version | None:
    """The version most presets have a run of (the first such preset's on a tie), among runs
    that recorded one; with no run named after a preset (a grid- or seed-only ladder), the
    version most presets' variants (`<preset>-...`) share; None if none did."""
    by_preset = {
        p: sorted({version(r) for r in runs if r["name"] == p}, key=str)
        for p in presets  # sorted: the same choice whatever order the runs came in
    }
    if not any(by_preset.values()):
        by_preset = {
            p: sorted({version(r) for r in runs if r["name"].startswith(f"{p}-")}, key=str)
            for p in presets
        }
    counts = Counter(v for versions in by_preset.values() for v in versions if v[0] and v[2])
    if not counts:
        return None
    top = max(counts.values())
    return next(v for vs in by_preset.values() for v in vs if counts.get(v) == top)


def choose(
    presets: dict, runs: list[dict], base: dict
) -> tuple[Version | None, dict[str, dict], list[dict], list[dict]]:
    """(the table's version, its runs by name, the other runs of that version under a name the
    table already has, every run of another version): rows of different code or data are
    never mixed in one table. Of several runs of one name, the table takes the one made with
    the preset's own params, then a published one, then the lowest identity."""
    current = table_version(presets, runs)
    same = [r for r in runs if current is not None and version(r) == current]
    older = [r for r in runs if current is None or version(r) != current]

    def preference(run: dict) -> tuple:
        own = run["name"] in presets and matches_params(
            run, preset_params(presets, run["name"], base)
        )
        return (run["name"], not own, run["source"] != "record", run_id(run))

    table: dict[str, dict] = {}
    extra = []
    for run in sorted(same, key=preference):
        if run["name"] in table:
            extra.append(run)
        else:
            table[run["name"]] = run
    return current, table, extra, sorted(older, key=lambda r: (r["name"], str(version(r))))


def matches_params(run: dict, wanted: dict[str, Any]) -> bool:
    """The run's params have the dotted `wanted` values."""
    flat = flatten(run["params"])
    return all(flat.get(k) == v for k, v in wanted.items())


def seed_groups(runs: dict[str, dict], presets: dict, base: dict) -> dict[str, list[str]]:
    """Preset -> the runs (the preset's own included) whose params differ from the preset's
    only in train.seed (and data.local_dir), of one version; groups of two or more."""
    groups: dict[str, list[str]] = {}
    ignore = {"train.seed", "data.local_dir", "data.hub_dataset"}
    for preset in presets:
        expected = flatten(apply_overrides(base, full_overrides(presets, preset, base)))
        for name in sorted(runs):
            flat = flatten(runs[name]["params"])
            if all(flat.get(k) == v for k, v in expected.items() if k not in ignore):
                groups.setdefault(preset, []).append(name)
    groups = {  # one version per group: the same code and data (and its rows' digest)
        p: [n for n in names if version(runs[n]) == version(runs[names[0]])]
        for p, names in groups.items()
    }
    return {p: n for p, n in groups.items() if len(n) > 1}


def is_complete(presets: dict, runs: dict[str, dict], base: dict) -> bool:
    """Every preset has a run of the table's version made with exactly the preset's own params
    (every param: the preset's value, else the committed one); a ladder run with `--set
    train.epochs=1`, say, is a subset's table and never replaces the complete report."""
    return all(
        name in runs and matches_params(runs[name], preset_params(presets, name, base))
        for name in presets
    )


def wanted_runs(runs: list[dict], wanted: dict[str, dict[str, Any]], base: dict) -> list[dict]:
    """The runs named as a run of `wanted` (name -> overrides) and made with all its params."""
    full = {n: flatten(apply_overrides(base, o)) for n, o in wanted.items()}
    return [r for r in runs if r["name"] in full and flatten(r["params"]) == full[r["name"]]]

"""Publishing ladder runs into the repository, and re-using published ones (git and DVC I/O).

    python -m agnews ladder --publish                       # run what is missing, publish all
    python -m agnews ladder --report-only --publish         # publish the finished runs here
    git add reports/runs && git commit -m "ladder runs"     # the ladder of record, on main

A finished experiment lives only as a git ref of the clone that made it. `--publish` turns each
finished run of the ladder's plan (its presets x seeds x --set, every param matching) into a
record in reports/runs/ (agnews.experiments.ladder.records): its params, metrics, versions,
validation curve and per-row test predictions, read from the experiment's commit. Runs without
a recorded code hash or rows digest (made by older code) are not published.

Re-use: a run of the plan is done when reports/runs/ holds a record of its name made with all of
its params, the code hash of this checkout's prepare and train code, and the digest of the rows
its data settings give (computed by reading them as the download stage does; a hub dataset
only when data/raw already holds that revision, or the hub answers). So a fresh clone's
`python -m agnews ladder` runs only what is missing, on any backend.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agnews.experiments import shell
from agnews.experiments.compare import flatten
from agnews.experiments.ladder.experiments import experiments
from agnews.experiments.ladder.records import RUNS_DIR, build_record, write_record
from agnews.experiments.ladder.runs import from_experiment, metric, run_file
from agnews.experiments.presets import apply_overrides
from agnews.provenance import code_hash, raw_digest


def git_blob(rev: str, path: str) -> bytes | None:
    """The file `path` of commit `rev`, None if it has none."""
    proc = shell.run(["git", "show", f"{rev}:{path}"], check=False, text=False)
    return proc.stdout if proc.returncode == 0 else None


def has_commit(rev: str | None) -> bool:
    if not rev:
        return False
    return shell.run(["git", "cat-file", "-e", f"{rev}^{{commit}}"], check=False).returncode == 0


def experiment_runs(rev: str | None = None, commits: int = 1) -> list[dict[str, Any]]:
    """This clone's finished experiments of commit `rev` and its parents, as runs (none outside
    a DVC project: a clone holding records alone)."""
    if not Path(".dvc").is_dir():
        return []
    return [from_experiment(name, exp) for name, exp in experiments(rev, commits).items()]


def experiment_predictions(run: dict[str, Any]) -> bytes | None:
    return git_blob(run["rev"], run_file(run["params"], "predictions"))


def publish(runs: list[dict[str, Any]], out_dir: Path = RUNS_DIR) -> list[Path]:
    """Publish experiment `runs` into `out_dir`, a line for each; return the records written
    or already there."""
    written = []
    for run in runs:
        name = run["name"]
        code = metric(run, "live").get("code_hash")
        rows = metric(run, "prepare").get("raw_digest")
        predictions = experiment_predictions(run)
        if not code or not rows or predictions is None:
            missing = [
                what
                for what, value in (
                    ("code hash", code),
                    ("rows digest", rows),
                    ("predictions", predictions),
                )
                if not value
            ]
            print(f"ladder: not published: {name} recorded no {', '.join(missing)} (older code)")
            continue
        parent = shell.run(["git", "rev-parse", f"{run['rev']}^"], check=False).stdout.strip()
        curve = git_blob(run["rev"], run_file(run["params"], "val_curve")) or b""
        record = build_record(
            name, run["params"], run["metrics"], predictions, curve.decode("utf-8"),
            commit=parent, experiment=run["rev"],
        )  # fmt: skip
        status, path = write_record(record, predictions, out_dir)
        if status == "kept":
            print(
                f"ladder: {name}: {path} holds another run of the same params, code and data: "
                "kept (the published run is the run of record)"
            )
            continue
        size = path.stat().st_size + (path.parent / record["predictions"]["file"]).stat().st_size
        print(f"ladder: {name} {status}: {path} ({size / 1024:.0f} kB with its predictions)")
        written.append(path)
    return written


def source_key(params: dict[str, Any]) -> tuple:
    data = params["data"]
    if data.get("local_dir") is not None:
        return ("local", data["local_dir"])
    return ("hub", data.get("hub_dataset"), data.get("hub_revision"))


def rows_digest(params: dict[str, Any]) -> str | None:
    """The digest of the rows `params`' data settings give (agnews.provenance.raw_digest): read
    as the download stage reads them, into a temporary folder. A hub dataset: from data/raw when
    it holds that pinned revision, else downloaded; None when the hub cannot be reached."""
    from agnews.data.raw import download
    from agnews.errors import DataError

    kind, *where = source_key(params)
    raw = Path(params["paths"]["raw_dir"])
    if kind == "hub" and where[1] is not None and (raw / "source.json").is_file():
        source = json.loads((raw / "source.json").read_text(encoding="utf-8"))
        if source.get("dataset") == where[0] and source.get("revision") == where[1]:
            return raw_digest(raw)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            download(
                params["data"].get("hub_dataset"),
                params["data"].get("local_dir"),
                Path(tmp) / "raw",
                params["data"].get("hub_revision"),
            )
        except DataError as exc:
            print(f"ladder: cannot read the rows to match published runs: {exc}", file=sys.stderr)
            return None
        return raw_digest(Path(tmp) / "raw")


def published_done(
    wanted: dict[str, dict[str, Any]],
    base: dict[str, Any],
    records: list[dict[str, Any]],
    code: str | None = None,
    digest: Callable[[dict[str, Any]], str | None] = rows_digest,
) -> dict[str, dict[str, Any]]:
    """The runs of `wanted` (name -> overrides) that a published record already made: same name,
    all params equal, this checkout's code hash (`code`) and the rows' digest (`digest` of the
    params; computed once per data source, and only for a record that matches otherwise)."""
    code = code or code_hash(Path.cwd())
    digests: dict[tuple, str | None] = {}
    done = {}
    for name, overrides in wanted.items():
        params = apply_overrides(base, overrides)
        flat = flatten(params)
        for record in records:
            if (
                record["name"] != name
                or metric(record, "live").get("code_hash") != code
                or flatten(record["params"]) != flat
            ):
                continue
            key = source_key(params)
            if key not in digests:
                digests[key] = digest(params)
            if (
                digests[key] is not None
                and metric(record, "prepare").get("raw_digest") == digests[key]
            ):
                done[name] = record
                break
    return done


def still_to_run_here(
    wanted: dict[str, dict[str, Any]], base: dict[str, Any], records: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """`wanted` less the runs published already (said so, a line each)."""
    done = published_done(wanted, base, records) if records else {}
    for name, record in done.items():
        print(f"ladder: re-using published run {name} ({Path(record['record']).as_posix()})")
    return {n: o for n, o in wanted.items() if n not in done}

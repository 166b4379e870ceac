"""The ladder's report, reports/ladder.md (or ladder_partial.md), from the published runs of
reports/runs/ and this clone's finished experiments (`dvc exp show --json`).

Which runs it shows is agnews.experiments.ladder.runs' (one code version per table), how it
shows them render's. The report holds nothing of the machine that writes it nor the time: from
the same runs it is the same bytes, and a clone with the published runs alone (no experiments,
no DVC cache) rewrites it byte for byte (`python -m agnews ladder --report-only`), its
validation curves included (an SVG drawn from the runs, agnews.experiments.ladder.curves).
Where this clone has the experiments, `<report>_plots/index.html` (`dvc plots diff`) adds the
training loss.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from agnews.atomic import write_text
from agnews.errors import AgnewsError
from agnews.evaluation.predictions import Predictions, parse_predictions
from agnews.experiments.ladder.curves import epochs, val_svg
from agnews.experiments.ladder.publish import (
    experiment_predictions,
    experiment_runs,
    git_blob,
    has_commit,
)
from agnews.experiments.ladder.records import (
    RUNS_DIR,
    curve_points,
    load_records,
    read_predictions_file,
    record_predictions,
)
from agnews.experiments.ladder.render import report_lines
from agnews.experiments.ladder.runs import choose, is_complete, matches_params, merge, run_file
from agnews.experiments.presets import committed_params, preset_params
from agnews.experiments.shell import dvc as run_dvc

REPORT_DIR = Path("reports")
PEERS_FILE = REPORT_DIR / "peers.json"
PLOT_IDS = ("Training loss", "Validation accuracy")  # top-level plots of dvc.yaml


def run_predictions(runs: dict[str, dict]) -> dict[str, Predictions]:
    """Each run's per-row test predictions: a record's file, or its experiment commit's (runs
    without any, made before the evaluate stage wrote them, are left out)."""
    out = {}
    for name, run in runs.items():
        if run["source"] == "record":
            out[name] = record_predictions(run)
            continue
        data = experiment_predictions(run)
        if data is not None:
            where = f"{name}:{run_file(run['params'], 'predictions')}"
            out[name] = parse_predictions(data.decode("utf-8"), where)
    return out


def peer_predictions(peers: dict | None, base_dir: Path = REPORT_DIR) -> dict[str, Predictions]:
    """Each peer's per-row test predictions (their paths in peers.json are relative to it;
    gzip'd or not)."""
    out = {}
    for peer in (peers or {}).get("peers") or []:
        if peer.get("predictions") and (base_dir / peer["predictions"]).is_file():
            out[peer["name"]] = read_predictions_file(base_dir / peer["predictions"])
    return out


def val_curve(run: dict) -> dict:
    """The run's validation curve {"step", "val"}: a record's, else its experiment's TSV."""
    if "val_curve" in run:
        return run["val_curve"]
    blob = git_blob(run["rev"], run_file(run["params"], "val_curve")) if run.get("rev") else None
    return curve_points(blob.decode("utf-8")) if blob else {"step": [], "val": []}


def write_plots(presets: dict, runs: dict[str, dict], out: Path) -> list[str]:
    """The SVG of the table's validation curves beside `out` and, for the runs whose experiments
    this clone has, the `dvc plots diff` page; the report's lines about them."""
    done = [n for n in presets if n in runs] + sorted(set(runs) - set(presets))
    if not done:
        return []
    svg = out.parent / f"{out.stem}_val_acc.svg"
    curves = {}
    for name in done:
        curve = val_curve(runs[name])
        curves[name] = (epochs(runs[name], curve["step"]), curve["val"])
    write_text(svg, val_svg(curves))
    plots_dir = out.parent / f"{out.stem}_plots"
    here = [n for n in done if has_commit(runs[n].get("rev"))]
    if here:  # the curves only: confusion rows and images of a dozen runs weigh megabytes
        shutil.rmtree(plots_dir, ignore_errors=True)
        revs = [runs[n]["rev"] for n in here]
        try:  # by name where DVC knows it, so the legend reads rnn_max, gru_max, ...
            named = all(runs[n]["source"] == "experiment" for n in here)
            run_dvc("plots", "diff", *(here if named else revs), "--targets", *PLOT_IDS,
                    "-o", str(plots_dir))  # fmt: skip
        except AgnewsError:  # a name DVC finds on several commits: by revision instead
            run_dvc("plots", "diff", *revs, "--targets", *PLOT_IDS, "-o", str(plots_dir))
    return [
        "",
        f"Validation accuracy of every run above, by epoch: [{svg.name}]({svg.name}). "
        "Training loss too, and the confusion matrices and gradient-flow pictures, in a clone "
        f"holding the experiments (`dvc exp pull origin`): `{plots_dir.name}/index.html`, "
        "written there by the ladder, and `dvc plots diff <exp-a> <exp-b>`.",
    ]


def load_peers(current: tuple | None) -> tuple[dict | None, list[str]]:
    """reports/peers.json when its peers were fitted on the table's rows, else None and a note."""
    peers = json.loads(PEERS_FILE.read_text(encoding="utf-8")) if PEERS_FILE.is_file() else None
    if peers and (current is None or peers.get("data", {}).get("raw_digest") != current[2]):
        return None, [
            "",
            f"The linear peers of {PEERS_FILE.name} were fitted on other rows (or recorded no "
            "digest of them): left out. Rerun `python -m agnews peers` on these rows.",
        ]
    return peers, []


def own_params(presets: dict, run: dict, base: dict) -> bool:
    return matches_params(run, preset_params(presets, run["name"], base))


def write_report(
    presets: dict,
    out: Path | None = None,
    rev: str | None = None,
    commits: int = 1,
    records_dir: Path = RUNS_DIR,
) -> Path:
    """Write the report (and its curves) from the published runs of `records_dir` and the
    experiments of `rev` and its parents; to reports/ladder.md when every preset ran, else
    reports/ladder_partial.md (or `out`)."""
    base = committed_params("params.yaml")
    runs_all, _ = merge(load_records(records_dir), experiment_runs(rev, commits))
    current, runs, extra, older = choose(presets, runs_all, base)
    complete = is_complete(presets, runs, base)
    if out is None:
        out = REPORT_DIR / ("ladder.md" if complete else "ladder_partial.md")
    peers, peers_note = load_peers(current)
    missing = [n for n in presets if n not in runs]
    unpublished = sorted({r["name"] for r in [*runs.values(), *extra] if r["source"] != "record"})
    header = [
        "# The notebook's experiment ladder" + ("" if complete else " (partial)"),
        "",
        "Generated by `python -m agnews ladder` from the published runs (`reports/runs/`) and "
        "the finished experiments of the clone that wrote it; do not edit by hand.",
    ]
    if unpublished:
        header += [
            "",
            f"**Not published: {', '.join(unpublished)}** (experiments of the clone that wrote "
            "this: a clone without them reports without them). `python -m agnews ladder "
            "--report-only --publish` publishes those of the ladder's plan (its --presets, "
            "--seeds and --set).",
        ]
    if not complete:
        other = [n for n in presets if n in runs and not own_params(presets, runs[n], base)]
        gaps = [f"not run: {', '.join(missing)}"] if missing else []
        gaps += [f"run with other params than the preset's: {', '.join(other)}"] if other else []
        header += [
            "",
            f"**Partial: {'; '.join(gaps)}.**"
            + ("" if out.name == "ladder.md" else " The complete ladder is in ladder.md."),
        ]
    predictions = {**run_predictions(runs), **peer_predictions(peers)}
    lines = report_lines(
        presets, runs, base, peers, "\n".join(header), older, predictions, current, extra
    )
    lines += peers_note
    lines += write_plots(presets, runs, out)
    if complete or out.name == "ladder.md":  # never beside a subset's table it does not describe
        lines += ["", "What the numbers mean: [ladder_analysis.md](ladder_analysis.md)."]
    write_text(out, "\n".join(lines) + "\n")
    return out

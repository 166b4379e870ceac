"""Time the whole pipeline, stage by stage, as dvc.yaml runs it, on a full-size training set.

    python bench/full_data.py --data-dir ../shared/data/ag_news [--rows 120000] [--set k=v ...]

Each stage command is taken from dvc.yaml (its `${paths.*}` filled with a temporary folder) and
run with a params file that is params.yaml plus `data.local_dir=--data-dir` and the `--set`
overrides, so the figures are those of `dvc repro` minus DVC's own bookkeeping.

--rows N (default 120,000, the size of AG News' train split) builds the train CSV by cycling the
train rows found in --data-dir until there are N of them. Offline, only the first 10,429 real
rows are available; cycled, they have the real length and class distribution, so an epoch costs
what a full-data epoch costs. Accuracy on such data means nothing (the validation split holds
copies of training rows), so then only times are printed. --rows 0 uses the rows as they are,
and accuracy is printed too. Nothing is asserted: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from agnews.experiments.ladder.plan import parse_sets
from agnews.experiments.presets import apply_overrides

ROOT = Path(__file__).resolve().parents[1]


def cycled_train_csv(src: Path, dst: Path, rows: int) -> int:
    """Write the first `rows` lines of src's lines repeated (gzip CSV); returns the row count."""
    opener = gzip.open if src.suffix == ".gz" else open
    with opener(src, "rt", encoding="utf-8", newline="") as f:
        lines = f.read().splitlines(keepends=True)
    with gzip.open(dst, "wt", encoding="utf-8", newline="", compresslevel=1) as f:
        f.writelines(itertools.islice(itertools.cycle(lines), rows))
    return rows


def stage_commands(work: Path, params_file: Path) -> dict[str, list[str]]:
    """dvc.yaml's stage commands with paths under `work` and our params file."""
    params = yaml.safe_load(params_file.read_text())
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    commands = {}
    for name, stage in stages.items():
        cmd = stage["cmd"]
        for key, value in params["paths"].items():
            cmd = cmd.replace("${paths." + key + "}", str(value))
        argv = shlex.split(cmd)
        assert argv[:2] == ["PYTHONPATH=src", "python"], cmd
        commands[name] = [sys.executable, *argv[2:], "--params", str(params_file)]
    return commands


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="folder with AG News CSVs")
    parser.add_argument("--rows", type=int, default=120_000, help="train rows; 0 = as found")
    parser.add_argument("--set", action="append", default=[], help="param override k=v")
    parser.add_argument("--keep", help="keep the outputs in this folder (default: a temp one)")
    args = parser.parse_args()

    data_dir = Path(args.data_dir).resolve()
    work = Path(args.keep or tempfile.mkdtemp(prefix="agnews-bench-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    local = data_dir
    if args.rows:
        local = work / "csv"
        local.mkdir(exist_ok=True)
        train_src = min(data_dir.glob("train*.csv*"))
        cycled_train_csv(train_src, local / "train.csv.gz", args.rows)
        (local / "test.csv.gz").write_bytes(min(data_dir.glob("test*.csv*")).read_bytes())

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params = apply_overrides(params, {**parse_sets(args.set), "data.local_dir": str(local)})
    params["paths"] = {k: str(work / "out" / v) for k, v in params["paths"].items()}
    params_file = work / "params.yaml"
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))

    pythonpath = [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(pythonpath)}
    print(
        f"rows: {args.rows or 'as found'} train ({'cycled' if args.rows else 'real'}), data "
        f"{data_dir}, overrides {args.set or 'none'}"
    )
    total = 0.0
    for name, argv in stage_commands(work, params_file).items():
        started = time.perf_counter()
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        total += seconds
        if done.returncode:
            print(done.stdout[-3000:], done.stderr[-3000:])
            raise SystemExit(f"stage {name} failed ({done.returncode})")
        last = done.stdout.strip().splitlines()[-1:] or [""]
        print(f"| {name} | {seconds:.1f} s | {last[0]} |")
    print(f"| all stages | {total:.1f} s | |")
    summary = json.loads((Path(params["paths"]["train_live_dir"]) / "metrics.json").read_text())
    print(
        f"train: {summary['train_seconds']} s in the loop, {summary['samples_per_s']:,.0f} "
        f"samples/s on {summary['device']}, {params['train']['epochs']} epochs; fixed costs "
        f"(all stages minus the training loop): {total - summary['train_seconds']:.1f} s"
    )
    if not args.rows:
        test = json.loads(Path(params["paths"]["test_metrics"]).read_text())
        print(f"best val acc {summary['best_val_acc']}, test acc {test['accuracy']}")


if __name__ == "__main__":
    main()

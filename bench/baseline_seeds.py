"""The published baseline's spread over training seeds: how far its test accuracy moves when
only the seed (the initial weights and the batch order) changes, on the same data, params and
thread count. A run on another CPU differs from the published one the same way a new seed
does, so `./run.sh`'s last line uses this spread to say whether a user's difference is noise.

    python bench/baseline_seeds.py --data data/prepared --raw data/raw --seeds 53,1,2,3,4 \\
        --out reports/baseline_seeds.json                  # after `dvc repro prepare`

Each seed trains the committed params.yaml's baseline (train.seed replaced, 2 torch threads as
published unless --threads) and is scored once on test through evaluate's own path; the JSON
holds every seed's validation and test accuracy, their mean, standard deviation and range, the
threads and the CPU. On a shared machine, run seeds in separate processes (one thread each)
and join their JSON files:

    python bench/baseline_seeds.py --combine a.json b.json --out reports/baseline_seeds.json

A measurement, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import torch

from agnews.atomic import write_json
from agnews.config import config_from_dict
from agnews.evaluation.evaluate import EvaluatePaths, evaluate
from agnews.experiments.ladder.plan import parse_sets
from agnews.experiments.presets import apply_overrides, committed_params
from agnews.model.training import train_model


def summary(values: list[float]) -> dict[str, float]:
    """Mean, sample standard deviation, min and max, to 6 digits."""
    return {
        "mean": round(statistics.fmean(values), 6),
        "sd": round(statistics.stdev(values), 6) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }


def combine(paths: list[str], out: str | None) -> None:
    """One JSON of several runs' outputs (same params, threads and CPU): the runs joined, the
    summaries recomputed over all of them."""
    parts = [json.loads(Path(p).read_text(encoding="utf-8")) for p in paths]
    keys = ("threads", "torch", "cpu_capability")
    if any(tuple(p[k] for k in keys) != tuple(parts[0][k] for k in keys) for p in parts):
        raise SystemExit(f"error: {paths}: made with other threads, torch or CPU")
    runs = sorted((r for p in parts for r in p["runs"]), key=lambda r: r["seed"])
    result = {
        **parts[0],
        "command": " ; ".join(p["command"] for p in parts),
        "runs": runs,
        "test_acc": summary([r["test_acc"] for r in runs]),
        "val_acc": summary([r["val_acc"] for r in runs]),
    }
    print(json.dumps({k: result[k] for k in ("test_acc", "val_acc")}))
    if out:
        write_json(out, result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="prepare's folder (paths.prepared_dir)")
    parser.add_argument("--raw", help="download's folder (paths.raw_dir)")
    parser.add_argument("--combine", nargs="+", metavar="JSON", help="join earlier outputs")
    parser.add_argument("--seeds", default="53,1,2,3,4", help="comma-separated train.seed values")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (published: 2)")
    parser.add_argument("--out", help="write the JSON here too")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    if args.combine:
        combine(args.combine, args.out)
        return
    if not (args.data and args.raw):
        parser.error("--data and --raw are needed (or --combine)")
    torch.set_num_threads(args.threads)
    base = apply_overrides(committed_params("params.yaml"), parse_sets(args.set))
    runs = []
    for seed in (int(s) for s in args.seeds.split(",")):
        cfg = config_from_dict(apply_overrides(base, {"train.seed": seed}))
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            s = train_model(args.data, out / "model.pt", out / "live", cfg.model, cfg.train)
            paths = EvaluatePaths.in_folder(args.raw, out / "eval")
            metrics, _ = evaluate(out / "model.pt", args.data, paths, cfg.evaluate)
        runs.append(
            {
                "seed": seed,
                "val_acc": s["best_val_acc"],
                "test_acc": metrics["accuracy"],
                "train_seconds": s["train_seconds"],
                "stopped_epoch": s.get("stopped_epoch"),
            }
        )
        print(json.dumps(runs[-1]), flush=True)
    result = {
        "what": "the published baseline (params.yaml) trained with each seed, scored once on test",
        "command": "python bench/baseline_seeds.py --data data/prepared --raw data/raw "
        f"--seeds {args.seeds} --threads {args.threads}",
        "threads": args.threads,
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "runs": runs,
        "test_acc": summary([r["test_acc"] for r in runs]),
        "val_acc": summary([r["val_acc"] for r in runs]),
    }
    print(json.dumps({k: result[k] for k in ("test_acc", "val_acc")}))
    if args.out:
        write_json(args.out, result)


if __name__ == "__main__":
    main()

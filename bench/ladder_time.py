"""Time the whole ladder's compute: every preset at its own (the notebook's) epochs, in one
process, without DVC, on one device.

    python bench/ladder_time.py --data-dir corpus/ag_news_58k [--presets a,b] [--set k=v]

What `python -m agnews ladder` runs as DVC experiments, minus DVC's bookkeeping and process
start-ups: the data is read and prepared once per distinct `prepare` setting (as the pipeline's
run cache would), then each preset trains with the library's own `train_model`, with no test
scoring (validation only). Prints one row per preset (train seconds, wall seconds,
samples/s, best validation accuracy) and the total. It is the script for the speed
issue's "whole ladder on one GPU" figure (bench/cuda.sh runs it); on a CPU it takes hours.
Nothing is asserted: a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import torch

from agnews.config import config_from_dict, load_yaml
from agnews.data.prepare import prepare_dataset
from agnews.data.raw import download
from agnews.experiments.ladder.plan import parse_sets
from agnews.experiments.presets import apply_overrides, full_overrides, load_presets
from agnews.model.training import train_model

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="folder with AG News CSVs")
    parser.add_argument("--presets", help="comma-separated subset (default: all)")
    parser.add_argument("--set", action="append", default=[], help="param override k=v")
    parser.add_argument("--out", help="also append one JSON line per preset here")
    args = parser.parse_args()
    logging.disable(logging.WARNING)

    base = load_yaml((ROOT / "params.yaml").read_text(encoding="utf-8"))
    presets = load_presets(ROOT / "presets.yaml")
    names = args.presets.split(",") if args.presets else list(presets)
    work = Path(tempfile.mkdtemp(prefix="agnews-ladder-time-"))
    started = time.perf_counter()
    download("unused", str(Path(args.data_dir).resolve()), work / "raw")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"device {torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}, torch "
          f"{torch.__version__}, {torch.get_num_threads()} CPU threads")  # fmt: skip
    print("| preset | epochs | train s | wall s | samples/s | best val |")
    print("|---|---:|---:|---:|---:|---:|")
    prepared: dict[str, Path] = {}
    total_train = 0.0
    for name in names:
        overrides = {**full_overrides(presets, name, base), **parse_sets(args.set)}
        cfg = config_from_dict(apply_overrides(base, overrides))
        key = json.dumps(vars(cfg.prepare), sort_keys=True)
        t0 = time.perf_counter()
        if key not in prepared:  # once per prepare setting, as DVC's run cache would
            prepared[key] = work / f"prepared-{len(prepared)}"
            p = cfg.prepare
            prepare_dataset(
                work / "raw", prepared[key], work / "m.json", work / "h.csv",
                p.min_count, p.val_size, p.seed, p.num_workers, p.ngrams, p.ngram_min_count,
            )  # fmt: skip
        out = work / name
        summary = train_model(prepared[key], out / "model.pt", out / "live", cfg.model, cfg.train)
        wall = time.perf_counter() - t0
        total_train += summary["train_seconds"]
        row = {
            "preset": name,
            "epochs": cfg.train.epochs,
            "train_s": summary["train_seconds"],
            "wall_s": round(wall, 1),
            "samples_per_s": summary["samples_per_s"],
            "best_val": summary["best_val_acc"],
            "device": summary["device"],
        }
        print(
            f"| {name} | {row['epochs']} | {row['train_s']:.0f} | {wall:.0f} "
            f"| {row['samples_per_s']:,.0f} | {row['best_val']:.4f} |",
            flush=True,
        )
        if args.out:
            with open(args.out, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
    total = time.perf_counter() - started
    print(f"whole ladder: {total:.0f} s wall ({total / 60:.1f} min), {total_train:.0f} s training")


if __name__ == "__main__":
    main()

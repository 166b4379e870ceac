"""Random search around a preset, in one process (fast on a GPU), ranked by validation accuracy.

    python bench/random_search.py --data-dir ../shared/data/ag_news --preset tuned --runs 24
    python bench/random_search.py --data-dir tests/fixtures/ag_news_sample --runs 1 \\
        --set model.hidden_size=8 --set train.epochs=1     # tiny: the test suite's run

Each run is the preset with one random value per grid key (GRID below) and a random seed,
trained with the library's own prepare/train/evaluate functions on the split the pipeline uses.
Prints one JSON line per run (params, best validation accuracy, seconds) and then the runs
sorted by validation accuracy. `--set key=value` fixes a value in every run, over the preset and
the grid's draw (the draws themselves stay the same). Validation only: a search never looks at
the test split (it is scored once, by the pick's own `dvc exp run`). These are not DVC
experiments: confirm a pick with `dvc exp run` before reporting it.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import tempfile
import time
from pathlib import Path

import torch

from agnews.config import config_from_dict, load_yaml
from agnews.data.prepare import prepare_dataset
from agnews.data.raw import download
from agnews.experiments.ladder.plan import parse_sets
from agnews.experiments.presets import apply_overrides, get_preset, load_presets
from agnews.model.training import train_model
from agnews.runtime import pick_device

ROOT = Path(__file__).resolve().parents[1]
GRID = {
    "prepare.min_count": [1, 3, 5],
    "model.cell": ["gru", "lstm"],
    "model.hidden_size": [64, 128, 256],
    "model.pooling": ["mean+max", "max", "mean"],
    "model.embedding_dropout": [0.2, 0.3, 0.5],
    "model.skip_embedding": [False, True],
    "train.word_dropout": [0.0, 0.1, 0.25],
    "train.weight_decay": [0.0, 0.01],
    "train.epochs": [5, 8, 12],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="folder with AG News CSVs")
    parser.add_argument("--preset", default="tuned", help="preset the grid varies")
    parser.add_argument("--runs", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0, help="seed of the random draws")
    parser.add_argument("--out", help="also write the JSON lines here")
    parser.add_argument("--set", action="append", default=[], help="param override k=v, every run")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    sets = parse_sets(args.set)

    base = load_yaml((ROOT / "params.yaml").read_text())
    preset = get_preset(load_presets(ROOT / "presets.yaml"), args.preset)
    base = apply_overrides(base, preset["params"])
    work = Path(tempfile.mkdtemp(prefix="agnews-search-"))
    download("unused", str(Path(args.data_dir).resolve()), work / "raw")
    device = pick_device("auto")
    draw = random.Random(args.seed)
    results = []
    for run in range(args.runs):
        changes = {key: draw.choice(values) for key, values in GRID.items()}
        changes["train.seed"] = draw.randrange(1000)
        changes["train.optimizer"] = "adamw" if changes["train.weight_decay"] else "adam"
        changes |= sets  # after the draws, so they stay those of a run without --set
        if "train.weight_decay" in sets and "train.optimizer" not in sets:
            changes["train.optimizer"] = "adamw" if changes["train.weight_decay"] else "adam"
        cfg = config_from_dict(apply_overrides(base, changes))
        prepared = work / f"prepared-{cfg.prepare.min_count}"
        if not prepared.exists():
            p = cfg.prepare
            prepare_dataset(
                work / "raw", prepared, work / "m.json", work / "h.csv",
                p.min_count, p.val_size, p.seed, p.num_workers,
            )  # fmt: skip
        started = time.perf_counter()
        out = work / f"run-{run}"
        summary = train_model(prepared, out / "model.pt", out / "live", cfg.model, cfg.train)
        row = {
            "run": run,
            "val": summary["best_val_acc"],
            "seconds": round(time.perf_counter() - started, 1),
            "changes": changes,
        }
        results.append(row)
        print(json.dumps(row), flush=True)
        if args.out:
            with open(args.out, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
    results.sort(key=lambda r: -r["val"])
    print(f"\n{args.runs} runs on {device}, sorted by validation accuracy:")
    for r in results:
        print(f"val {r['val']:.4f}  {r['changes']}")
    print(f"device {torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}")


if __name__ == "__main__":
    main()

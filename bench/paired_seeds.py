"""Accuracy before and after a code change: the same presets and seeds trained by two checkouts.

    git worktree add /tmp/before <commit>          # the code before the change
    python bench/paired_seeds.py --before /tmp/before --after . \\
        --data-dir ../shared/data/ag_news --presets bilstm,tuned --seeds 53,1,2 --set train.epochs=5

Each checkout trains with its own src/, params.yaml and presets.yaml (a subprocess per run, one
torch thread), on data prepared once per `prepare` setting by the `--after` checkout (prepare
is unchanged by the changes this compares; the shards are a plain format both read). Prints one
line per run and, per preset, the mean validation accuracy before and after and the mean and
standard deviation of the paired differences. A measurement, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

RUN = """
import json, sys, torch
root, preset, data = sys.argv[1], sys.argv[2], sys.argv[4]
seed, sets = int(sys.argv[3]), json.loads(sys.argv[5])
from agnews.config import config_from_dict, load_yaml
from agnews.experiments.presets import apply_overrides, full_overrides, load_presets
from agnews.model.training import train_model
torch.set_num_threads(1)
base = load_yaml(open(f"{root}/params.yaml").read())
presets = load_presets(f"{root}/presets.yaml")
changes = {**full_overrides(presets, preset, base), **sets, "train.seed": seed}
params = apply_overrides(base, changes)
cfg = config_from_dict(params)
out = sys.argv[6]
s = train_model(data, f"{out}/model.pt", f"{out}/live", cfg.model, cfg.train)
print(json.dumps({"val": s["best_val_acc"], "train_s": s["train_seconds"]}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="checkout with the code before")
    parser.add_argument("--after", required=True, help="checkout with the code after")
    parser.add_argument("--data-dir", required=True, help="folder with AG News CSVs")
    parser.add_argument("--presets", required=True, help="comma-separated presets")
    parser.add_argument("--seeds", default="53,1,2", help="comma-separated train.seed values")
    parser.add_argument("--set", action="append", default=[], help="param override k=v")
    parser.add_argument("--out", help="also append one JSON line per run here")
    args = parser.parse_args()
    after = Path(args.after).resolve()
    sys.path.insert(0, str(after / "src"))
    from agnews.config import config_from_dict, load_yaml
    from agnews.data.prepare import prepare_dataset
    from agnews.data.raw import download
    from agnews.experiments.ladder.plan import parse_sets
    from agnews.experiments.presets import apply_overrides, full_overrides, load_presets

    sets = parse_sets(args.set)
    work = Path(tempfile.mkdtemp(prefix="agnews-paired-"))
    download("unused", str(Path(args.data_dir).resolve()), work / "raw")
    base = load_yaml((after / "params.yaml").read_text(encoding="utf-8"))
    presets = load_presets(after / "presets.yaml")
    results: dict[tuple[str, str], list[float]] = {}
    for preset in args.presets.split(","):
        p = config_from_dict(apply_overrides(base, full_overrides(presets, preset, base))).prepare
        data = work / f"prepared-{p.min_count}-{p.ngrams}-{p.ngram_min_count}"
        if not data.exists():
            prepare_dataset(
                work / "raw", data, work / "m.json", work / "h.csv", p.min_count, p.val_size,
                p.seed, p.num_workers, p.ngrams, p.ngram_min_count,
            )  # fmt: skip
        for seed in [int(s) for s in args.seeds.split(",")]:
            for label, root in (("before", args.before), ("after", args.after)):
                root = str(Path(root).resolve())
                out = work / f"{label}-{preset}-{seed}"
                env = {**os.environ, "PYTHONPATH": f"{root}/src"}
                argv = [sys.executable, "-c", RUN, root, preset, str(seed), str(data)]
                done = subprocess.run(
                    [*argv, json.dumps(sets), str(out)],
                    env=env, capture_output=True, text=True, check=True,
                )  # fmt: skip
                row = {"code": label, "preset": preset, "seed": seed}
                row |= json.loads(done.stdout.strip().splitlines()[-1])
                print(json.dumps(row), flush=True)
                results.setdefault((preset, label), []).append(row["val"])
                if args.out:
                    with open(args.out, "a", encoding="utf-8") as f:
                        f.write(json.dumps(row) + "\n")
    print("\n| preset | seeds | val before | val after | paired difference (after - before) |")
    print("|---|---:|---:|---:|---:|")
    for preset in args.presets.split(","):
        b, a = results[(preset, "before")], results[(preset, "after")]
        diffs = [100 * (x - y) for x, y in zip(a, b, strict=True)]
        sd = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
        print(
            f"| {preset} | {len(diffs)} | {100 * statistics.mean(b):.2f} "
            f"| {100 * statistics.mean(a):.2f} | {statistics.mean(diffs):+.2f} (sd {sd:.2f}) |"
        )


if __name__ == "__main__":
    main()

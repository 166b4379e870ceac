"""wide_deep's n-gram tables: step time with dense Adam, dense Adam with flushed denormals, and
sparse gradients with SparseAdam (train.sparse_ngrams); then validation accuracy, paired seeds.

    OMP_NUM_THREADS=1 python bench/sparse_ngrams.py speed --data-dir corpus/ag_news_58k
    OMP_NUM_THREADS=1 python bench/sparse_ngrams.py accuracy --data-dir ../shared/data/ag_news \\
        --seeds 53,54,55 --epochs 3
    python bench/sparse_ngrams.py speed --data-dir tests/fixtures/ag_news_sample --steps 2 \\
        --window 1 --set model.hidden_size=8       # tiny sizes (--set, repeatable): the tests' run

`speed` prepares the rows of --data-dir as the wide_deep preset does (uni+bigrams, every one
kept), builds one wide_deep member per variant from the same seed and trains the three in turn,
one step each on the same batch (round robin, so a busy machine slows them alike), printing
the mean time per step (and of the optimizer step alone) over the first and the last --window
steps: dense Adam's moments of the n-gram rows a batch does not touch decay by 0.9 per
step and reach float32 denormals after about 800 steps, which is where its steps slow down.

`accuracy` trains wide_deep as a single model (train.ensemble=1) from each seed twice, dense
Adam as before and --against (sparse: train.sparse_ngrams; flush: train.flush_denormal), for
--epochs (a maximum, early stopping as params.yaml says), and prints each pair's best
validation accuracy and the paired differences. Validation only: this checks an
implementation, it selects nothing. A measurement script, not a test.

Both take `--set key=value` overrides on top of wide_deep's params (tiny sizes for a test, say).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from agnews.config import Config, config_from_dict, load_yaml  # noqa: E402
from agnews.data.batching import InputSpec, make_batch, train_order  # noqa: E402
from agnews.experiments.ladder.plan import parse_sets  # noqa: E402
from agnews.experiments.presets import apply_overrides, full_overrides, load_presets  # noqa: E402
from agnews.model.optimizers import make_optimizers  # noqa: E402
from agnews.model.training import load_data, train_model  # noqa: E402
from agnews.runtime import seed_everything  # noqa: E402

VARIANTS = ("dense", "dense + flush_denormal", "sparse")


def wide_deep_config(sets: dict) -> Config:
    base = load_yaml((ROOT / "params.yaml").read_text(encoding="utf-8"))
    presets = load_presets(ROOT / "presets.yaml")
    changes = {**full_overrides(presets, "wide_deep", base), "train.ensemble": 1, **sets}
    return config_from_dict(apply_overrides(base, changes))


def prepared(data_dir: str, cfg: Config, work: Path) -> Path:
    from agnews.data.prepare import prepare_dataset
    from agnews.data.raw import download

    out = work / "prepared"
    if not (out / "val.npz").exists():
        download("unused", str(Path(data_dir).resolve()), work / "raw")
        p = cfg.prepare
        prepare_dataset(
            work / "raw", out, work / "m.json", work / "h.csv", p.min_count, p.val_size,
            p.seed, 1, p.ngrams, p.ngram_min_count,
        )  # fmt: skip
    return out


def speed(args: argparse.Namespace) -> None:
    """The three variants step in turn (round robin, each on its own model and batches), so
    whatever else the machine runs slows them alike."""
    from agnews.model.classifier import TextClassifier
    from agnews.model.optimizers import clip_grad_norm

    cfg = wide_deep_config(parse_sets(args.set))
    data_dir = prepared(args.data_dir, cfg, Path(args.work))
    data = load_data(data_dir, with_ngrams=True)
    inputs = InputSpec(data.vocabs.words.pad_id, cfg.train.max_len, cfg.model.fixed_len)
    print(f"threads {torch.get_num_threads()}, torch {torch.__version__}")
    order = train_order(
        data.train.lengths, cfg.train.batch_size, np.random.default_rng(0), True, 50
    )
    runs = {}
    for variant in VARIANTS:
        seed_everything(cfg.train.seed)
        model = TextClassifier(
            cfg.model, len(data.vocabs.words), inputs, len(data.vocabs.ngrams)
        ).train()
        train_cfg = dataclasses.replace(cfg.train, sparse_ngrams=variant == "sparse")
        runs[variant] = (model, make_optimizers(model, train_cfg), [], [])
    for i in range(args.steps):
        batch = make_batch(data.train, order[i % len(order)], inputs)
        for variant, (model, optimizers, steps, opt_s) in runs.items():
            torch.set_flush_denormal(variant == "dense + flush_denormal")
            started = time.perf_counter()
            loss = torch.nn.functional.cross_entropy(model.classify(batch), batch.labels)
            for o in optimizers:
                o.zero_grad(set_to_none=True)
            loss.backward()
            clip_grad_norm(model, cfg.train.grad_clip)
            opt_started = time.perf_counter()
            for o in optimizers:
                o.step()
            done = time.perf_counter()
            steps.append(done - started)
            opt_s.append(done - opt_started)
    torch.set_flush_denormal(False)
    w = args.window
    for variant, (model, _, steps, opt_s) in runs.items():
        n_params = sum(p.numel() for p in model.parameters())
        print(
            f"{variant:24s} {n_params:,} params | steps 1-{w}: "
            f"{1000 * statistics.mean(steps[:w]):6.1f} ms/step "
            f"(optimizer {1000 * statistics.mean(opt_s[:w]):6.1f} ms) | steps "
            f"{args.steps - w + 1}-{args.steps}: {1000 * statistics.mean(steps[-w:]):6.1f} ms/step "
            f"(optimizer {1000 * statistics.mean(opt_s[-w:]):6.1f} ms)",
            flush=True,
        )


def accuracy(args: argparse.Namespace) -> None:
    sets = {"train.epochs": args.epochs, **parse_sets(args.set)}
    cfg = wide_deep_config(sets)
    work = Path(args.work)
    data_dir = prepared(args.data_dir, cfg, work)
    arms = {  # A: dense Adam as before; B: the change measured
        "dense": {"sparse_ngrams": False, "flush_denormal": False},
        "sparse": {"sparse_ngrams": True, "flush_denormal": False},
        "flush": {"sparse_ngrams": False, "flush_denormal": True},
    }
    diffs = []
    b = args.against
    print(f"| seed | dense val % | {b} val % | {b} - dense | dense train s | {b} train s |")
    print("|---:|---:|---:|---:|---:|---:|")
    for seed in [int(s) for s in args.seeds.split(",")]:
        row = {}
        for arm in ("dense", b):
            train = dataclasses.replace(cfg.train, seed=seed, **arms[arm])
            out = work / f"run-{seed}-{arm}"
            row[arm] = train_model(data_dir, out / "model.pt", out / "live", cfg.model, train)
        d = 100 * (row[b]["best_val_acc"] - row["dense"]["best_val_acc"])
        diffs.append(d)
        print(
            f"| {seed} | {100 * row['dense']['best_val_acc']:.2f} | "
            f"{100 * row[b]['best_val_acc']:.2f} | {d:+.2f} | "
            f"{row['dense']['train_seconds']:.0f} | {row[b]['train_seconds']:.0f} |",
            flush=True,
        )
        if args.out:
            with open(args.out, "a", encoding="utf-8") as f:
                f.write(json.dumps({"seed": seed, **row}) + "\n")
    sd = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
    print(
        f"paired difference ({b} - dense): mean {statistics.mean(diffs):+.2f} points, sd {sd:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    for name in ("speed", "accuracy"):
        p = sub.add_parser(name)
        p.add_argument("--data-dir", required=True, help="folder with AG News CSVs")
        p.add_argument("--work", help="scratch folder (default: a temporary one)")
        p.add_argument("--set", action="append", default=[], help="param override k=v")
    sub.choices["speed"].add_argument("--steps", type=int, default=1000)
    sub.choices["speed"].add_argument("--window", type=int, default=100)
    sub.choices["accuracy"].add_argument("--seeds", default="53,54,55")
    sub.choices["accuracy"].add_argument("--epochs", type=int, default=3)
    sub.choices["accuracy"].add_argument("--out", help="append one JSON line per seed here")
    sub.choices["accuracy"].add_argument(
        "--against", choices=("sparse", "flush"), default="sparse", help="the arm beside dense"
    )
    args = parser.parse_args()
    args.work = args.work or tempfile.mkdtemp(prefix="agnews-sparse-")
    speed(args) if args.what == "speed" else accuracy(args)


if __name__ == "__main__":
    main()

"""bf16 autocast on CPU (train.amp): what this CPU supports, the step time of the presets'
recurrent cells in float32 and under bf16 autocast, and optionally the paired effect on
validation accuracy.

    OMP_NUM_THREADS=1 python bench/bf16_cpu.py
    OMP_NUM_THREADS=1 python bench/bf16_cpu.py --repeats 1 --batch 4 --tokens 8 --hidden 8
    OMP_NUM_THREADS=1 python bench/bf16_cpu.py --accuracy --data-dir data/prepared \\
        --presets gru_max,tuned --seeds 53,100,200 --steps 200 --epochs 3

Speed: per cell (2-layer bidirectional LSTM, bidirectional GRU, GRU, RNN; embedding and hidden
size --hidden) a minimal classifier (embedding, cell, max pooling, linear head) runs forward
and backward on a --batch x --tokens batch, float32 and bf16 autocast in turn (round robin, so
a busy machine slows both alike), on --threads threads; it prints the median milliseconds of
each, their ratio, and the dtype the cell's output had under autocast (float32 there means
autocast left the cell itself in float32). Only a CPU with AVX512-BF16 or AMX computes bf16
natively; elsewhere it is emulated, the times say nothing about a CPU that has it, and
oneDNN may refuse a bf16 LSTM outright (reported as failed: with train.amp such a CPU trains
in float32 anyway).

Accuracy (--accuracy): each preset is trained from each seed twice, train.amp off and on, on
the same first --steps batches' worth of training rows (a seeded subset of prepare's train
shard, so an epoch is --steps steps) for --epochs, and the best validation accuracies and
their paired differences are printed (`--set key=value` overrides the presets' params: tiny
sizes for a test, say). On a CPU without native bf16 the bf16 arm is forced (and emulated): the
accuracy effect is the same, the time is not. Validation only; a measurement script, not a test.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import agnews.runtime as runtime  # noqa: E402

CELLS = {  # name: (torch module, layers, bidirectional), the presets' recurrent cells
    "lstm 2-layer bidirectional": (nn.LSTM, 2, True),
    "gru bidirectional": (nn.GRU, 1, True),
    "gru": (nn.GRU, 1, False),
    "rnn": (nn.RNN, 1, False),
}
VOCAB = 20_000


class CellClassifier(nn.Module):
    def __init__(self, cell: type[nn.RNNBase], layers: int, bidirectional: bool, size: int):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, size)
        self.rnn = cell(size, size, num_layers=layers, bidirectional=bidirectional)
        self.rnn.batch_first = True
        self.head = nn.Linear(size * (2 if bidirectional else 1), 4)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.dtype]:
        out, _ = self.rnn(self.embedding(ids))  # (B, T, H * directions)
        return self.head(out.amax(dim=1)), out.dtype  # (B, 4)


def supports() -> str:
    info = runtime.cpu_info()
    checks = {
        name: getattr(torch.cpu, f"_is_{name}_supported", lambda: None)()
        for name in ("avx2", "avx512", "avx512_bf16", "amx_tile", "amx_fp16")
    }
    flags = ", ".join(f"{k} {v}" for k, v in checks.items())
    return (
        f"cpu {info['cpu_model']!r}, torch kernels {info['cpu_capability']}, "
        f"bf16 native {info['bf16_native']} ({flags}); torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s)"
    )


def step(model: CellClassifier, ids: torch.Tensor, labels: torch.Tensor, bf16: bool):
    """One forward and backward pass; returns (seconds, dtype of the cell's output)."""
    started = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits, dtype = model(ids)
    loss = nn.functional.cross_entropy(logits.float(), labels)
    model.zero_grad(set_to_none=True)
    loss.backward()
    return time.perf_counter() - started, dtype


def speed(args: argparse.Namespace) -> None:
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(4, VOCAB, (args.batch, args.tokens), generator=gen)  # (B, T)
    labels = torch.randint(0, 4, (args.batch,), generator=gen)  # (B,)
    print(f"batch {args.batch} x {args.tokens} tokens, embedding = hidden = {args.hidden}")
    print("| cell | fp32 ms | bf16 ms | bf16 / fp32 | cell output under autocast |")
    print("|---|---:|---:|---:|---|")
    for name, (cell, layers, bidirectional) in CELLS.items():
        torch.manual_seed(0)
        model = CellClassifier(cell, layers, bidirectional, args.hidden).train()
        times: dict[bool, list[float]] = {False: [], True: []}
        arms, dtype = [False, True], None
        for i in range(args.warmup + args.repeats):
            for bf16 in list(arms):
                try:
                    seconds, out_dtype = step(model, ids, labels, bf16)
                except RuntimeError as exc:  # oneDNN has no bf16 LSTM without AVX512 on x86
                    arms.remove(bf16)
                    dtype = f"failed: {str(exc).splitlines()[0][:60]}"
                    continue
                dtype = out_dtype if bf16 else dtype
                if i >= args.warmup:
                    times[bf16].append(seconds)
        fp32 = 1000 * statistics.median(times[False])
        if times[True]:
            bf16 = 1000 * statistics.median(times[True])
            print(f"| {name} | {fp32:.2f} | {bf16:.2f} | {bf16 / fp32:.2f} | {dtype} |")
        else:
            print(f"| {name} | {fp32:.2f} | - | - | {dtype} |")


def subset_data(data_dir: Path, rows: int, seed: int, work: Path) -> Path:
    """prepare's folder with its train shard cut to `rows` rows (seeded, the same for both
    arms); vocabularies and validation as they are."""
    from agnews.data.shards import load_shard, save_shard

    out = work / f"data_{rows}_{seed}"
    if not (out / "train.npz").exists():
        out.mkdir(parents=True, exist_ok=True)
        for name in ("vocab.json", "ngrams.json", "val.npz"):
            if (data_dir / name).exists():
                shutil.copy(data_dir / name, out / name)
        train = load_shard(data_dir / "train.npz")
        keep = np.sort(np.random.default_rng(seed).permutation(len(train))[:rows])
        save_shard(out / "train.npz", train.subset(keep))
    return out


def accuracy(args: argparse.Namespace) -> None:
    from agnews.config import config_from_dict, load_yaml
    from agnews.experiments.presets import (
        apply_overrides,
        full_overrides,
        load_presets,
        parse_sets,
    )
    from agnews.model.training import train_model

    print()  # a blank line ends the speed table (Markdown would run the two tables together)
    if not runtime.bf16_native():  # emulated bf16: the same numbers, only slower
        print("this CPU has no native bf16: the bf16 arm is emulated (accuracy only)")
        runtime.bf16_native = lambda: True
    base = load_yaml((ROOT / "params.yaml").read_text(encoding="utf-8"))
    presets = load_presets(ROOT / "presets.yaml")
    work = Path(args.work or tempfile.mkdtemp(prefix="bf16_"))
    print("| preset | seed | fp32 val % | bf16 val % | bf16 - fp32 | fp32 s | bf16 s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for preset in args.presets.split(","):
        overrides = {**full_overrides(presets, preset, base), **parse_sets(args.set, "--set")}
        cfg = config_from_dict(apply_overrides(base, overrides))
        diffs = []
        for seed in [int(s) for s in args.seeds.split(",")]:
            rows = args.steps * cfg.train.batch_size
            data = subset_data(Path(args.data_dir), rows, seed, work)
            result = {}
            for amp in (False, True):
                train = dataclasses.replace(
                    cfg.train, seed=seed, amp=amp, epochs=args.epochs or cfg.train.epochs,
                    ensemble=1, device="cpu",
                )  # fmt: skip
                out = work / f"{preset}_{seed}_{amp}"
                try:
                    result[amp] = train_model(data, out / "m.pt", out / "live", cfg.model, train)
                except RuntimeError as exc:  # e.g. no oneDNN bf16 LSTM on this CPU
                    print(
                        f"| {preset} | {seed} | amp={amp} failed: {str(exc).splitlines()[0]} |||||"
                    )
                    break
            if len(result) < 2:
                continue
            a, b = (100 * result[amp]["best_val_acc"] for amp in (False, True))
            diffs.append(b - a)
            seconds = [result[amp]["train_seconds"] for amp in (False, True)]
            print(
                f"| {preset} | {seed} | {a:.2f} | {b:.2f} | {b - a:+.2f} | "
                f"{seconds[0]:.1f} | {seconds[1]:.1f} |",
                flush=True,
            )
        if diffs:
            print(f"| {preset} | mean | | | {statistics.mean(diffs):+.2f} | | |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=60)
    parser.add_argument("--hidden", type=int, default=256, help="embedding and hidden size")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--accuracy", action="store_true", help="also the paired accuracy")
    parser.add_argument("--data-dir", default="data/prepared", help="prepare's output folder")
    parser.add_argument("--presets", default="rnn_max,gru_max,tuned,bilstm2_flatten50")
    parser.add_argument("--seeds", default="53,100,200")
    parser.add_argument("--steps", type=int, default=200, help="training steps per epoch")
    parser.add_argument("--epochs", type=int, default=0, help="0: each preset's own")
    parser.add_argument("--work", default="", help="scratch folder (default: a temporary one)")
    parser.add_argument("--set", action="append", default=[], help="param override k=v")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(supports())
    speed(args)
    if args.accuracy:
        accuracy(args)


if __name__ == "__main__":
    main()

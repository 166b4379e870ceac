"""Do two CPUs train the same baseline bit for bit? One epoch of the published baseline under
CPU-dispatch caps, printing numbers another machine can compare with.

    python bench/cpu_agreement.py --data data/prepared            # after `dvc repro prepare`
    python bench/cpu_agreement.py --data data/prepared --variants default,avx2 --epochs 1

Each variant is a fresh process (the caps are read when torch loads) that trains the committed
params.yaml's baseline (2 torch threads unless --threads) for --epochs on the prepared shards
and prints: the validation accuracy of every pass, a SHA-256 of the trained weights (the
best-on-validation checkpoint's tensors), the seconds its training loop took, and the CPU.
Two machines agree on a variant when its weight digest is the same; the validation accuracies
show how far apart they drift when it is not.

The variants (environment variables torch, MKL and oneDNN read at start):
  default  nothing set: each library takes the fastest kernels this CPU has
  avx2     MKL_CBWR=AVX2 (MKL's conditional numerical reproducibility), ONEDNN_MAX_CPU_ISA=AVX2,
           ATEN_CPU_CAPABILITY=avx2: every x86 CPU with AVX2 runs the same kernel family
  sse      MKL_CBWR=COMPATIBLE, ONEDNN_MAX_CPU_ISA=SSE41, ATEN_CPU_CAPABILITY=default: the
           lowest common denominator (slowest)
A measurement, not a test: nothing is asserted (the suite runs it on a tiny model).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

VARIANTS = {
    "default": {},
    "avx2": {"MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"},
    "sse": {
        "MKL_CBWR": "COMPATIBLE",
        "ONEDNN_MAX_CPU_ISA": "SSE41",
        "ATEN_CPU_CAPABILITY": "default",
    },
}
CAPS = ("MKL_CBWR", "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")

RUN = """
import hashlib, json, sys, time, torch
from agnews.config import config_from_dict
from agnews.experiments.presets import apply_overrides, committed_params
from agnews.model.training import train_model
data, out, sets, threads = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
cfg = config_from_dict(apply_overrides(committed_params("params.yaml"), sets))
t0 = time.perf_counter()
summary = train_model(data, f"{out}/model.pt", f"{out}/live", cfg.model, cfg.train)
state = torch.load(f"{out}/model.pt", weights_only=True)["model_state"]
digest = hashlib.sha256()
for key in sorted(state):
    digest.update(key.encode() + state[key].contiguous().numpy().tobytes())
curve = __import__("pathlib").Path(f"{out}/live/plots/metrics/acc/val.tsv")
val = [float(line.split("\\t")[-1]) for line in curve.read_text().splitlines()[1:]]
print(json.dumps({"val": val, "weights_sha256": digest.hexdigest()[:16],
                  "train_s": summary["train_seconds"],
                  "cpu": torch.backends.cpu.get_cpu_capability()}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="prepare's folder (paths.prepared_dir)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (published: 2)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="extra param override"
    )
    args = parser.parse_args()
    sets = {"train.epochs": args.epochs, "train.patience": 0}
    for item in args.set:
        key, _, value = item.partition("=")
        sets[key] = (
            json.loads(value) if value[:1].isdigit() or value in ("true", "false") else value
        )
    for name in args.variants.split(","):
        env = {k: v for k, v in os.environ.items() if k not in CAPS} | VARIANTS[name]
        env["OMP_NUM_THREADS"] = str(args.threads)
        with tempfile.TemporaryDirectory() as out:
            cmd = [sys.executable, "-c", RUN, args.data, out, json.dumps(sets), str(args.threads)]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(f"{name}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
            sys.exit(1)
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        vals = " ".join(f"{v:.4f}" for v in row["val"])
        print(
            f"{name:8} val passes {vals} | weights {row['weights_sha256']} | "
            f"train {row['train_s']:.1f} s | torch CPU capability {row['cpu']}",
            flush=True,
        )


if __name__ == "__main__":
    main()

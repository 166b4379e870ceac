#!/usr/bin/env bash
# Set everything up (.venv with the pinned packages), then run the whole pipeline: `dvc repro`
# (check -> download -> prepare -> train -> evaluate) on the AG News rows that ship in
# corpus/ag_news_58k, and print its test metrics beside the committed ones. Arguments:
#   ./run.sh --preset NAME [-S key=value ...] [dvc exp run options]
#       a notebook preset (presets.yaml) as a DVC experiment: every param from the committed
#       params.yaml, the preset's and the -S values; an unknown name runs nothing (exit 2)
#   ./run.sh ARGS     any other arguments: `dvc exp run ARGS`, e.g.
#   ./run.sh -S data.local_dir=null    (the whole split from the HuggingFace hub)
set -euo pipefail
cd "$(dirname "$0")"
source scripts/setup.sh requirements.txt
if [ "$#" -eq 0 ]; then
  dvc repro
  # this workspace's test metrics beside the committed (published) ones
  metrics=$(python -c 'from agnews.config import load_params; print(load_params().paths.test_metrics)')
  echo "test metrics: HEAD = committed, workspace = this run"
  dvc metrics diff HEAD --all --targets "$metrics"
  # exactly the published figure, or inside/outside the baseline's spread over training seeds
  python -m agnews.evaluation.reproduction --now "$metrics" \
    --published <(git show "HEAD:$metrics") --spread reports/baseline_seeds.json
  exit 0
fi
if [ "$1" = "--preset" ]; then
  shift
  [ "$#" -gt 0 ] || { echo "error: --preset needs a name (python -m agnews presets lists them)" >&2; exit 2; }
  exec python -m agnews presets run "$@"
fi
exec dvc exp run "$@"

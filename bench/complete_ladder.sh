#!/bin/bash
# The complete ladder of issue 18 in one command, on this machine's CPUs (or its GPU: every
# run uses CUDA when present), from the project root with the project's environment active:
#
#     bash bench/complete_ladder.sh [JOBS]        # JOBS experiments at once (default 2)
#
# 1. the linear peers on the same rows, with their per-row test predictions
#    (reports/peers.json, reports/peers/*.csv);
# 2. every preset of presets.yaml as a DVC experiment, its epochs a maximum with early stopping
#    (train.patience in params.yaml);
# 3. seeds 100 and 200 beside each preset's own 53 for the four rows the conclusion rests on:
#    the notebook's best, the best GRU (gru_max, best of the GRUs on validation), tuned and
#    wide_deep;
# 4. the report from the finished runs: reports/ladder.md once every preset has run.
#
# Runs that already exist on this commit with the same params are re-used, so after an
# interruption the same command continues (add `-S train.resume=true` runs by hand for single
# runs that outlive a sitting). Commit first: experiments are based on HEAD.
set -eu -o pipefail
JOBS=${1:-2}
cd "$(dirname "$0")/.."
dvc repro download  # the raw rows the peers read
python -m agnews peers
python -m agnews ladder --jobs "$JOBS"
python -m agnews ladder --jobs "$JOBS" \
    --presets bilstm2_flatten_mean_max,gru_max,tuned,wide_deep --seeds 53,100,200
python -m agnews ladder --report-only

#!/bin/bash
# The complete ladder in one command, on this machine's CPUs (or its GPU: every run uses CUDA
# when present), from the project root with the project's environment active:
#
#     bash bench/complete_ladder.sh [JOBS]        # JOBS experiments at once (default 2)
#
# 1. every preset of presets.yaml as a DVC experiment, its epochs a maximum with early stopping
#    (train.patience in params.yaml), cheapest first, so that an interrupted ladder has as many
#    rows as possible (the three LSTM presets last: on one CPU thread each takes hours);
# 2. seeds 100 and 200 beside each preset's own 53 for the four rows the conclusion rests on:
#    the best GRU (gru_max, best of the GRUs on validation), tuned, wide_deep and the notebook's
#    best (last: the longest);
# 3. the linear peers on the same rows, with their per-row test predictions
#    (reports/peers.json, reports/peers/*.csv.gz);
# 4. the report from the published runs: reports/ladder.md once every preset has run.
#
# --publish writes each finished run as a record under reports/runs/ (commit them): a run with
# the same params, training code and data is re-used from any clone, so after an interruption,
# here or on another machine, the same command runs only what is missing. Commit first:
# experiments are based on HEAD.
set -eu -o pipefail
JOBS=${1:-2}
cd "$(dirname "$0")/.."
python -m agnews ladder --jobs "$JOBS" --publish --presets \
    gru_cat,gru_flatten50,tuned,rnn_mean,rnn_max,gru_stacked,gru_mean,gru_max,wide_deep,bilstm
python -m agnews ladder --jobs "$JOBS" --publish \
    --presets lstm_stacked_bitop,bilstm2_flatten50,bilstm2_flatten_mean_max
python -m agnews ladder --jobs "$JOBS" --publish --presets tuned,gru_max,wide_deep \
    --seeds 53,100,200
python -m agnews ladder --jobs "$JOBS" --publish --presets bilstm2_flatten_mean_max \
    --seeds 53,100,200
dvc repro download  # the raw rows the peers read
python -m agnews peers
python -m agnews ladder --report-only

#!/bin/bash
# Every GPU measurement of bench/README.md in one go, on a machine with CUDA and the project's
# packages importable by python3:
#
#     bash bench/cuda.sh /path/to/ag_news
#
# 1. bench/throughput.py on CUDA: the notebook's data path vs ours, same GPU, same run;
# 2. bench/full_data.py: the 5-epoch baseline on a 120,000-row train set (fp32);
# 3. the 5-epoch baseline on the real rows as they are, for its accuracy on the GPU;
# 4. as 2, with bf16 autocast (train.amp=true);
# 5. the unit tests (not the e2e ones, which need the dvc CLI) with CUDA visible, so every
#    training and evaluation test runs on the GPU;
# 6. the whole ladder (every preset at its notebook epochs) on LADDER_DATA (default: DATA), in
#    one process without DVC: bench/ladder_time.py (the issue's "ladder in <= 10 GPU minutes").
#
# On a lent GPU machine, carry the pinned pure-Python packages that machine lacks (nltk, dvclive
# and what they need) as wheels, and a real copy of the data, not the data/external link.
set -u -o pipefail
DATA=$(realpath "${1:?usage: bash bench/cuda.sh DATA_DIR [LADDER_DATA_DIR]}")
LADDER_DATA=$(realpath "${2:-$DATA}")
export PYTHONUNBUFFERED=1 PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH}
cd "$(dirname "$0")/.."

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
nproc

echo "## 1. throughput"
timeout 200 python3 bench/throughput.py --data-dir "$DATA" --device cuda --batches 200 --repeats 3

echo "## 2. full-size 5-epoch baseline, fp32"
timeout 120 python3 bench/full_data.py --data-dir "$DATA" --rows 120000

echo "## 3. the baseline on the real rows, on the GPU"
timeout 60 python3 bench/full_data.py --data-dir "$DATA" --rows 0

echo "## 4. as 2, with bf16 autocast (train.amp=true)"
timeout 120 python3 bench/full_data.py --data-dir "$DATA" --rows 120000 --set train.amp=true

echo "## 5. unit tests with CUDA"
timeout 150 python3 -m pytest -q -m "not e2e" -p no:cacheprovider tests 2>&1 | tail -25


echo "## 6. the whole ladder, every preset at its notebook epochs"
timeout 900 python3 bench/ladder_time.py --data-dir "$LADDER_DATA"

#!/usr/bin/env bash
# Set everything up, then run the whole pipeline: `dvc repro` (download -> prepare -> train ->
# evaluate). Any arguments turn it into `dvc exp run ARGS`, e.g.
#   ./run.sh -S data.local_dir=/path/to/ag_news     (local AG News CSVs instead of the hub)
set -euo pipefail
cd "$(dirname "$0")"
source scripts/setup.sh requirements.txt
if [ "$#" -eq 0 ]; then
  exec dvc repro
fi
exec dvc exp run "$@"

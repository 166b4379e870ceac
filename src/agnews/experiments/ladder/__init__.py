"""The notebook's experiment ladder in one command: queue every preset, run them, report.

    python -m agnews ladder --jobs 1 --set data.local_dir=data/external/ag_news_58k
    python -m agnews ladder --report-only          # just rewrite the report
    python -m agnews ladder --presets tuned --seeds 53,100,200   # seed repeats of a preset
    python -m agnews ladder --publish              # and publish the finished runs

Each preset of presets.yaml becomes a DVC experiment named after it (`dvc exp run --queue -n
NAME -S ...`, plus every `--set`, all validated before anything is queued), the queue runs with
`dvc queue start -j JOBS` (a line per finished run; a failed run names its `dvc queue logs`
command and makes the ladder exit 1), and the report is written from the published runs and
`dvc exp show --json`. A run published in reports/runs/ with the same params, code hash and
rows digest is not run again, nor is an experiment of this commit with the same params; one of
the same name and other parameters stops the ladder before anything runs (nothing is deleted)
unless `--replace` is given.

Published runs (`--publish`): each finished run of the plan becomes a small git-tracked record
in reports/runs/ (params, metrics, versions, validation curve, per-row test predictions), so
the ladder of record lives on main while experiments stay experiments, and any clone reports
and re-uses them with git alone.

The report goes to reports/ladder.md only when every preset has a finished run with its own
params; a ladder over a subset (or one with failures) goes to reports/ladder_partial.md, so the
complete report is never replaced by one full of gaps. Besides the presets it lists the linear
peers of reports/peers.json (`python -m agnews peers`), paired comparisons of the steps the
analysis discusses (from the runs' per-row test predictions), seed repeats (runs that differ
from a preset only in train.seed) as mean and standard deviation, and every other run. One
table holds one code version (code hash and data); other runs are listed as older runs.

The package is split along the jobs: `plan` (what to run: presets x seeds x overrides), where
it runs (`local`: this machine's `dvc queue`; `cluster`: a Ray cluster, `--ray auto`),
`experiments` (what `dvc exp show --json` holds), `records` (the published runs' format),
`publish` (experiments into records, re-use of records), `runs` (which runs the report shows),
`render` and `curves` (its Markdown and SVG), `report` (writing it) and `command` (`main`).
"""

"""`python -m agnews ladder`: plan the runs, drop those published already, run the rest on the
chosen backend, publish the finished ones (`--publish`), write the report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import agnews.experiments.ladder
from agnews.errors import AgnewsError, ConfigError
from agnews.experiments.ladder.local import queue_ladder, run_queue
from agnews.experiments.ladder.plan import parse_grid, wanted_params
from agnews.experiments.ladder.publish import experiment_runs, publish, still_to_run_here
from agnews.experiments.ladder.records import RUNS_DIR, load_records
from agnews.experiments.ladder.report import write_report
from agnews.experiments.ladder.runs import wanted_runs
from agnews.experiments.presets import committed_params, load_presets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agnews ladder",
        description=agnews.experiments.ladder.__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--jobs", "-j", type=int, default=1, help="experiments run at once")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra -S override for every preset (repeatable), e.g. data.local_dir=...; "
        "comma-separated values make a grid: model.hidden_size=128,256 runs each preset "
        "twice, as <preset>-hidden_size128 and <preset>-hidden_size256",
    )
    parser.add_argument("--presets", help="comma-separated subset (default: all)")
    parser.add_argument(
        "--seeds",
        help="comma-separated train.seed values: one run per preset and seed, reported as "
        "mean and standard deviation (e.g. 53,1,2)",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="run nothing, only rewrite the report (from reports/runs/ and this clone's "
        "experiments; a clone with the published runs alone gives the same bytes)",
    )
    parser.add_argument(
        "--publish",
        action="store_true",
        help=f"publish each finished run of the plan (--presets/--seeds/--set, every param "
        f"matching) into {RUNS_DIR.as_posix()}/, for git (README: Published runs)",
    )
    parser.add_argument("--out", type=Path, help="report file (default: see above)")
    parser.add_argument(
        "--rev", help="with --report-only: report the experiments of this commit (default HEAD)"
    )
    parser.add_argument(
        "--commits",
        type=int,
        default=1,
        help="also report experiments of this many commits back from --rev (default 1: only it)",
    )
    parser.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run on a Ray cluster instead of the local dvc queue: `auto` (the cluster this "
        "machine belongs to, else Ray's local one), `local`, or host:port (needs the "
        "[cluster] extra; see README: On a cluster)",
    )
    parser.add_argument(
        "--git-remote",
        default="origin",
        help="with --ray: the git remote the nodes clone and push experiments to (default origin)",
    )
    parser.add_argument(
        "--cpus-per-run",
        type=int,
        default=1,
        help="with --ray on CPU nodes: the CPUs (and torch threads) of each run (default 1)",
    )
    parser.add_argument(
        "--gpus-per-run",
        type=float,
        help="with --ray: the GPUs of each run (default 1 when the cluster has GPUs, else 0; "
        "0: every run on CPUs, on every node; 0.5: two runs share a GPU)",
    )
    parser.add_argument(
        "--replace",
        action="store_true",
        help="replace (delete) an existing experiment of the same name and other params, "
        "here and with --ray on the git remote (without it the ladder stops, naming them)",
    )
    args = parser.parse_args(argv)
    failed: list[str] = []
    try:
        presets = load_presets()
        names = args.presets.split(",") if args.presets else list(presets)
        for name in names:
            if name not in presets:
                raise ConfigError(f"unknown preset {name!r}; valid presets: {', '.join(presets)}")
        base = committed_params("params.yaml")
        seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else None
        wanted = wanted_params(names, presets, base, {}, seeds, grid=parse_grid(args.set))
        if not args.report_only:
            todo = still_to_run_here(wanted, base, load_records())
            if todo and args.ray:
                from agnews.experiments.ladder.cluster import run_on_ray

                failed = run_on_ray(
                    todo, args.ray, args.git_remote, args.cpus_per_run, args.gpus_per_run,
                    args.replace,
                )  # fmt: skip
            elif todo:
                queued = queue_ladder(todo, args.replace)
                if queued:
                    failed = run_queue(queued, args.jobs)
        if args.publish:
            finished = wanted_runs(experiment_runs(args.rev, args.commits), wanted, base)
            publish(finished)
            if not finished:
                print("ladder: no finished experiment of the plan to publish")
        report = write_report(presets, args.out, rev=args.rev, commits=args.commits)
    except AgnewsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"ladder: report written to {report}")
    if failed:
        print(f"error: {len(failed)} run(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0

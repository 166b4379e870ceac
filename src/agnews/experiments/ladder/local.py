"""Where the ladder runs, on this machine: the `dvc queue` backend (`dvc exp run --queue`,
`dvc queue start -j JOBS`), waiting for the runs and naming the failed ones."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agnews.errors import AgnewsError
from agnews.experiments.ladder.experiments import experiments, plan_runs
from agnews.experiments.presets import overrides_args as presets_overrides_args
from agnews.experiments.shell import dvc, run


def queue_ladder(wanted: dict[str, dict[str, Any]], replace: bool = False) -> list[str]:
    """Queue the runs that have no finished experiment with the same params (plan_runs: one of
    the same name and other params stops the ladder, or with `replace` is removed); return
    them."""
    plan = plan_runs(wanted, experiments(), replace)
    for name in plan.reuse:
        print(f"ladder: re-using experiment {name}")
    for name in plan.replace:
        dvc("exp", "remove", name)
        print(f"ladder: removed experiment {name} (--replace)")
    queued = []
    for name, overrides in plan.run.items():
        # a failed task of the same name would be taken for this one's result
        run([sys.executable, "-m", "dvc", "queue", "remove", name], check=False)
        dvc("exp", "run", "--queue", "-n", name, *presets_overrides_args(overrides))
        print(f"ladder: queued {name}")
        queued.append(name)
    return queued


def worker_env(jobs: int, cpus: int | None = None) -> dict[str, str]:
    """Environment for `dvc queue start -j jobs`: each job gets cpus // jobs torch threads.

    Every training process otherwise starts one thread per core; N of them on the same cores
    spin against each other (2 jobs on 2 cores: 266 s in the baseline's training loop, not 25 s).
    A user's own OMP_NUM_THREADS wins."""
    env = dict(os.environ)
    # DVC starts its queue workers as a `dvc` command: make it this environment's
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bindir, env.get("PATH", "")])
    if jobs > 1 and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, (cpus or os.cpu_count() or 1) // jobs))
    return env


def queue_states(entries: list[Mapping[str, Any]]) -> dict[str, str]:
    """Name -> status ("Queued", "Running", "Success", "Failed") from the queue's own API
    (`celery_queue.status()`, what `dvc queue status` prints; it has no --json)."""
    return {e["name"]: e["status"] for e in entries if e.get("name") and e.get("status")}


def queue_snapshot(root: str = ".") -> tuple[dict[str, str], int]:
    """The queue's tasks by name (see queue_states) and how many workers are running."""
    from dvc.repo import Repo

    with Repo(root) as repo:
        queue = repo.experiments.celery_queue
        return queue_states(queue.status()), len(queue.worker_status())


def start_queue(jobs: int, argv: list[str] | None = None) -> None:
    """`dvc queue start -j jobs`, returning as soon as it has started the workers. Its output
    goes to a file, not a pipe: the workers it leaves running inherit its output, and a pipe
    would only close when the last of them exits, i.e. when the whole queue is done."""
    argv = argv or [sys.executable, "-m", "dvc", "queue", "start", "-j", str(jobs)]
    with tempfile.TemporaryFile(mode="w+") as out:
        code = subprocess.run(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env=worker_env(jobs), check=False,
        ).returncode  # fmt: skip
        if code != 0:
            out.seek(0)
            raise AgnewsError(f"dvc queue start failed: {out.read().strip()}")


def run_queue(names: list[str], jobs: int, poll_s: float = 10.0) -> list[str]:
    """Start the queue and wait for `names`, printing a line as each finishes; return the names
    that failed."""
    start_queue(jobs)
    started, pending, failed, idle_polls = time.monotonic(), set(names), [], 0
    while pending:
        time.sleep(poll_s)
        states, workers = queue_snapshot()
        for name in sorted(pending):
            state = states.get(name)
            if state not in ("Success", "Failed"):
                continue
            pending.discard(name)
            done = len(names) - len(pending)
            minutes = (time.monotonic() - started) / 60
            if state == "Success":
                print(f"ladder: {name} finished ({done}/{len(names)}, {minutes:.1f} min)")
            else:
                failed.append(name)
                print(
                    f"ladder: {name} FAILED ({done}/{len(names)}); see `dvc queue logs {name}`",
                    file=sys.stderr,
                )
            sys.stdout.flush()
        if pending and not any(states.get(n) in ("Queued", "Running") for n in pending):
            missing = ", ".join(sorted(pending))
            raise AgnewsError(f"the queue stopped before {missing} ran (see `dvc queue status`)")
        if workers == 0 and not any(states.get(n) == "Running" for n in pending):
            idle_polls += 1
            if idle_polls * poll_s >= 60:
                raise AgnewsError(
                    "no queue worker is running and runs are still queued: restart them with "
                    "`dvc queue start` (is `dvc` on PATH?)"
                )
        else:
            idle_polls = 0
    return failed

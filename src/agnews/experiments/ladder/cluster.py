"""Where the ladder runs, on a Ray cluster: one Ray task per experiment, results through the
shared git and DVC remotes (the optional extra `[cluster]`: `pip install -e '.[cluster]'`).

The driver (`python -m agnews ladder --ray auto`) checks that HEAD is on the git
remote, and
submits one task per run, with `num_gpus=1` when the cluster has GPUs (Ray then sets
CUDA_VISIBLE_DEVICES for the task) and else `num_cpus=k`, the run getting k torch threads. A task,
on whichever node Ray picks:

1. skips the run if the experiment is already on the git remote (a retry of a task whose node
   died after pushing: the run is never made twice);
2. clones the remote at the commit into its own folder (`$AGNEWS_RAY_WORKDIR` on that node, else
   the temporary folder), takes the node's `.dvc/config.local` from `$AGNEWS_DVC_CONFIG_LOCAL`
   if set (credentials come from the node: that file or its environment, never the driver);
3. `dvc pull`s prepare's outputs when the DVC remote has them (else the run prepares them),
   runs `dvc exp run -n NAME -S ...` and `dvc exp push`es the experiment (its git ref to the git
   remote, its outputs to the DVC remote);
4. returns "done", "exists" or "failed" with its log (kept on the node with the clone of a
   failed run; a finished run's clone is removed).

A run that fails by itself returns "failed": it is reported once, never retried. A task whose
worker or node dies is retried by Ray elsewhere (`max_retries`); step 1 makes the retry safe.
The driver shows a progress bar as runs finish, names each failure with its log, then
`dvc exp pull`s the experiments so the report is written from `dvc exp show` as with the local
queue.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from agnews.errors import AgnewsError
from agnews.experiments.ladder.experiments import run_dvc, still_to_run
from agnews.experiments.presets import overrides_args

MAX_RETRIES = 3  # system failures (a dead worker or node) only; a failed run is not retried
LOG_TAIL = 30  # lines of a failed run's log shown by the driver


def _git(*args: str, cwd: str | Path | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AgnewsError(f"git {' '.join(args)} failed: {(proc.stderr or proc.stdout).strip()}")
    return proc.stdout.strip()


def exp_ref(commit: str, name: str) -> str:
    """The git ref DVC gives experiment `name` of baseline `commit`."""
    return f"refs/exps/{commit[:2]}/{commit[2:]}/{name}"


def remote_url(git_remote: str) -> str:
    """The git remote's URL, a local path made absolute (each task clones it from its own
    folder). A URL carrying a password is refused: credentials stay on the nodes."""
    url = _git("remote", "get-url", git_remote)
    if "://" in url and "@" in url.split("://", 1)[1].split("/", 1)[0]:
        userinfo = url.split("://", 1)[1].split("@", 1)[0]
        if ":" in userinfo:
            raise AgnewsError(
                f"git remote {git_remote} has a password in its URL; give the nodes their own "
                "credentials (ssh keys, a git credential helper) instead"
            )
    if "://" not in url and not url.startswith("git@") and Path(url).exists():
        return str(Path(url).resolve())
    return url


def pushed_commit(git_remote: str) -> str:
    """HEAD, after checking that the git remote has it (the tasks clone it from there)."""
    commit = _git("rev-parse", "HEAD")
    _git("fetch", "-q", git_remote)
    branches = _git("branch", "-r", "--contains", commit, "--format=%(refname)")
    if not any(b.startswith(f"refs/remotes/{git_remote}/") for b in branches.splitlines()):
        raise AgnewsError(
            f"commit {commit[:12]} is not on the git remote {git_remote!r}: the cluster runs "
            f"what the remote has; `git push {git_remote} HEAD` first"
        )
    return commit


def has_dvc_remote() -> bool:
    """Whether the repository has a default DVC remote (else runs push only their git refs)."""
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", "remote", "default"],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode == 0 and bool(proc.stdout.strip())


# --- on a node


def _step(args: list[str], cwd: Path, env: dict[str, str], log: Path) -> int:
    """Run one command of a task, its output appended to the task's log."""
    with log.open("a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(args)}\n")
        out.flush()
        return subprocess.run(
            args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, check=False,
        ).returncode  # fmt: skip


def _tail(log: Path, lines: int = LOG_TAIL) -> str:
    try:
        return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_on_node(spec: dict[str, Any]) -> dict[str, Any]:
    """One experiment on this node (the body of the Ray task; see the module's doc).

    spec: name, commit, url (git remote), overrides, threads, push_cache (bool)."""
    name, commit, url = spec["name"], spec["commit"], spec["url"]
    started = time.monotonic()
    import ray

    node = f"{socket.gethostname()} node {ray.get_runtime_context().get_node_id()[:8]}"
    base = Path(os.environ.get("AGNEWS_RAY_WORKDIR") or Path(tempfile.gettempdir()) / "agnews-ray")
    base.mkdir(parents=True, exist_ok=True)
    folder = base / f"{name}-{commit[:8]}-{uuid.uuid4().hex[:8]}"
    log = folder.with_suffix(".log")
    result = {"name": name, "node": node, "log": str(log), "pid": os.getpid()}
    devices = os.environ.get("CUDA_VISIBLE_DEVICES", "(not set)")  # set by Ray for num_gpus
    log.write_text(
        f"{name} on {node} (pid {os.getpid()}), commit {commit}\n"
        f"CUDA_VISIBLE_DEVICES={devices} OMP_NUM_THREADS={spec['threads']}\n",
        encoding="utf-8",
    )

    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "DVC_NO_ANALYTICS": "1",
        "OMP_NUM_THREADS": str(spec["threads"]),
    }
    ref = exp_ref(commit, name)
    listed = subprocess.run(
        ["git", "ls-remote", url, ref], capture_output=True, text=True, env=env, check=False
    )
    if listed.returncode == 0 and listed.stdout.strip():
        _step(["echo", f"{ref} is already on the git remote: nothing to run"], base, env, log)
        return {**result, "status": "exists", "seconds": time.monotonic() - started}

    repo = folder / "repo"
    steps = [
        (["git", "clone", "-q", "--no-checkout", url, str(repo)], base),
        (["git", "checkout", "-q", commit], repo),
    ]
    for args, cwd in steps:
        if _step(args, cwd, env, log) != 0:
            return {**result, "status": "failed", "tail": _tail(log)}
    local_config = os.environ.get("AGNEWS_DVC_CONFIG_LOCAL")
    if local_config:
        shutil.copyfile(local_config, repo / ".dvc" / "config.local")
    dvc = [sys.executable, "-m", "dvc"]
    if spec["push_cache"] and _step([*dvc, "pull", "--with-deps", "prepare"], repo, env, log):
        _step(["echo", "prepared data not on the DVC remote: the run prepares it"], repo, env, log)
    run = [*dvc, "exp", "run", "-n", name, *overrides_args(spec["overrides"])]
    push = [*dvc, "exp", "push", *([] if spec["push_cache"] else ["--no-cache"]), "origin", name]
    for args in (run, push):
        if _step(args, repo, env, log) != 0:
            return {**result, "status": "failed", "tail": _tail(log)}
    shutil.rmtree(folder, ignore_errors=True)
    return {**result, "status": "done", "seconds": time.monotonic() - started}


# --- the driver


def connect(address: str) -> Any:
    """`ray.init`: `auto` joins the cluster this machine belongs to, else starts Ray's local one;
    `local` always starts a local one; anything else is a cluster's address (host:port)."""
    try:
        import ray
    except ImportError:
        raise AgnewsError(
            "--ray needs Ray: pip install -e '.[cluster]' (or the pin in requirements-dev.txt)"
        ) from None
    import agnews

    # the task's code travels with it: nodes need the project's dependencies, not this copy
    runtime_env = {"py_modules": [str(Path(agnews.__file__).parent)]}
    kwargs = {"runtime_env": runtime_env, "log_to_driver": False}
    if address == "auto":
        try:
            ray.init(address="auto", **kwargs)
        except ConnectionError:
            print("ladder: no Ray cluster found: starting Ray's local one", flush=True)
            ray.init(**kwargs)
    elif address == "local":
        ray.init(**kwargs)
    else:
        ray.init(address=address, **kwargs)
    return ray


def task_resources(cluster: dict[str, float], cpus_per_run: int) -> dict[str, float]:
    """Ray resources of one run: a GPU when the cluster has any (Ray then gives the task its
    own CUDA_VISIBLE_DEVICES), and `cpus_per_run` CPUs, its torch threads."""
    if cluster.get("GPU", 0) > 0:
        return {"num_gpus": 1, "num_cpus": cpus_per_run}
    return {"num_cpus": cpus_per_run}


def reuse_or_clear(wanted: dict[str, dict[str, Any]], git_remote: str) -> dict[str, dict]:
    """The runs still to make: experiments already on the git remote (or here) with the same
    params are re-used; one of the same name and other params is removed here and there."""
    on_remote = run_dvc("exp", "list", git_remote, "--name-only").split()
    present = [n for n in wanted if n in on_remote]
    if present:
        run_dvc("exp", "pull", "--no-cache", git_remote, *present)
    todo = still_to_run(wanted)
    for name in todo:
        if name in on_remote:  # of other params: the new run takes its name there too
            run_dvc("exp", "remove", "-g", git_remote, name)
    return todo


def run_on_ray(
    wanted: dict[str, dict[str, Any]],
    address: str,
    git_remote: str = "origin",
    cpus_per_run: int = 1,
) -> list[str]:
    """Run `wanted` (name -> overrides) on the Ray cluster at `address`, pull the finished
    experiments; return the names that failed."""
    from tqdm import tqdm

    commit = pushed_commit(git_remote)
    url = remote_url(git_remote)
    todo = reuse_or_clear(wanted, git_remote)
    if not todo:
        return []
    push_cache = has_dvc_remote()
    ray = connect(address)
    gpus = ray.cluster_resources().get("GPU", 0)
    resources = task_resources(ray.cluster_resources(), cpus_per_run)
    task = ray.remote(run_on_node).options(
        max_retries=MAX_RETRIES, retry_exceptions=False, **resources
    )
    print(
        f"ladder: {len(todo)} run(s) of {commit[:12]} on Ray "
        f"({ray.cluster_resources().get('CPU', 0):g} CPUs, {gpus:g} GPUs; "
        + ("1 GPU" if gpus else f"{cpus_per_run} CPU(s)")
        + " per run)",
        flush=True,
    )
    pending = {
        task.remote(
            {
                "name": name,
                "commit": commit,
                "url": url,
                "overrides": overrides,
                "threads": cpus_per_run,
                "push_cache": push_cache,
            }
        ): name
        for name, overrides in todo.items()
    }
    done, failed = [], []
    with tqdm(total=len(pending), desc="ladder", unit="run", file=sys.stdout) as bar:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            name = pending.pop(ready[0])
            try:
                result = ray.get(ready[0])
            except Exception as exc:  # retries used up (nodes kept dying), or Ray itself failed
                result = {"name": name, "status": "failed", "node": "?", "log": "-", "tail": exc}
            if result["status"] == "failed":
                failed.append(name)
                tqdm.write(
                    f"ladder: {name} FAILED on {result['node']}; log: {result['log']}\n"
                    f"{result.get('tail', '')}",
                    file=sys.stderr,
                )
            else:
                done.append(name)
                how = "was already pushed" if result["status"] == "exists" else "finished"
                tqdm.write(
                    f"ladder: {name} {how} on {result['node']} ({result['seconds']:.0f} s); "
                    f"log: {result['log']}"
                )
            bar.update(1)
    ray.shutdown()
    if done:
        run_dvc("exp", "pull", *([] if push_cache else ["--no-cache"]), git_remote, *done)
    return failed

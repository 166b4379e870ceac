"""Where the ladder runs, on a Ray cluster: one Ray task per experiment, results through the
shared git and DVC remotes (the optional extra `[cluster]`: `pip install -e '.[cluster]'`).

The driver (`python -m agnews ladder --ray auto`) refuses a git remote URL that carries
credentials (it would travel to every node and into every log), checks that HEAD is on the git
remote, settles which runs to make (plan_runs: an experiment already on the git remote with the
same params is re-used if the DVC remote has its outputs; one of other params stops the ladder
unless `--replace`), and submits one task per run: `num_gpus` (1 by default when the cluster
has GPUs; Ray then sets CUDA_VISIBLE_DEVICES) and `num_cpus=k`, the run getting k torch
threads. A task, on whichever node Ray picks:

1. looks for its experiment on the git remote: there already, with the same params and its
   outputs on the DVC remote, it stops ("exists": a retry of a task whose node died after
   pushing is never run twice); there without its outputs (the node died between `dvc exp
   push`'s ref and its upload), it runs again and replaces it;
2. fetches the one commit into a fresh folder (`$AGNEWS_RAY_WORKDIR` on that node, else the
   temporary folder), takes the node's `.dvc/config.local` from `$AGNEWS_DVC_CONFIG_LOCAL` if
   set (mode 0600; credentials come from the node, never the driver) and uses a DVC cache
   shared by the node's runs;
3. `dvc pull`s prepare's outputs when the DVC remote has them (else the run prepares them),
   runs `dvc exp run -n NAME -S ...` and `dvc exp push`es the experiment (its git ref to the
   git remote, its outputs to the DVC remote);
4. removes the folder (the credentials with it) and returns "done", "exists" or "failed" with
   its log, which stays on the node.

Each step runs in a process group of its own that dies with the task's worker
(agnews.experiments.shell.run_logged): a killed worker or node leaves no training behind on a
GPU that Ray hands out again. A run that fails by itself returns "failed": reported once, never
retried. A task whose worker or node dies is retried by Ray elsewhere (`max_retries`); step 1
makes the retry safe. The driver shows a progress bar, names each failure with its log, then
fetches the finished experiments' git refs (`dvc exp pull --no-cache`: the report reads only
git-tracked files; checkpoints stay on the DVC remote). If the head node dies, the driver
says which runs finished, fetches those and stops (the runs still going are lost).
"""

from __future__ import annotations

import contextlib
import socket
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from agnews.errors import AgnewsError
from agnews.experiments.ladder.experiments import (
    experiments,
    outputs_missing_on_remote,
    plan_runs,
)
from agnews.experiments.ladder.node import exp_ref, run_on_node
from agnews.experiments.shell import dvc, git, run

MAX_RETRIES = 3  # system failures (a dead worker or node) only; a failed run is not retried
POLL_S = 2.0  # the driver checks the head node this often while it waits
HEAD_GRACE_S = 10.0  # the head's GCS unreachable this long: the cluster is lost
# (Ray's driver would kill itself after gcs_rpc_server_reconnect_timeout_s, 60 s by default)


def check_url(url: str, git_remote: str) -> None:
    """Refuse a URL with credentials in it (`https://TOKEN@host/...`, `user:pass@`): it would be
    in every task's arguments and every node's log. An ssh login name (`ssh://git@host/...`,
    `git@host:org/repo`) is no secret and is fine. The message never repeats the URL."""
    if "://" not in url:
        return  # a path, or scp-like user@host:path (ssh)
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return
    if parts.scheme in ("ssh", "git+ssh", "ssh+git") and parts.password is None:
        return
    raise AgnewsError(
        f"the URL of git remote {git_remote!r} has credentials in it (a token or "
        "user:password before the host); the ladder would hand them to every node and "
        "write them into its logs. Use a URL without them (`git remote set-url`) and give "
        "each node its own: an ssh key, or a git credential helper"
    )


def remote_url(git_remote: str) -> str:
    """The git remote's URL (checked: check_url), a local path made absolute (each task
    fetches it from its own folder)."""
    url = git("remote", "get-url", git_remote)
    check_url(url, git_remote)
    if "://" not in url and ":" not in url.split("/", 1)[0] and Path(url).exists():
        return str(Path(url).resolve())
    return url


def pushed_commit(git_remote: str) -> str:
    """HEAD, after checking that the git remote has it (the tasks fetch it from there)."""
    commit = git("rev-parse", "HEAD")
    git("fetch", "-q", git_remote)
    branches = git("branch", "-r", "--contains", commit, "--format=%(refname)")
    if not any(b.startswith(f"refs/remotes/{git_remote}/") for b in branches.splitlines()):
        raise AgnewsError(
            f"commit {commit[:12]} is not on the git remote {git_remote!r}: the cluster runs "
            f"what the remote has; `git push {git_remote} HEAD` first"
        )
    return commit


def remote_experiments(git_remote: str, commit: str) -> dict[str, str]:
    """Name -> commit of the experiments of baseline `commit` on the git remote."""
    prefix = exp_ref(commit, "")
    listed = git("ls-remote", git_remote, f"{prefix}*")
    refs = (line.split("\t") for line in listed.splitlines() if "\t" in line)
    return {ref[len(prefix) :]: sha for sha, ref in refs if ref.startswith(prefix)}


def has_dvc_remote() -> bool:
    """Whether the repository has a default DVC remote (else runs push only their git refs)."""
    proc = run([sys.executable, "-m", "dvc", "remote", "default"], check=False)
    return proc.returncode == 0 and bool(proc.stdout.strip())


# --- the driver


def connect(address: str) -> Any:
    """`ray.init`: `auto` joins the cluster this machine belongs to, else (none found) starts
    Ray's local one; `local` always starts a local one; anything else is a cluster's address
    (host:port)."""
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
    try:
        if address == "auto":
            try:
                ray.init(address="auto", **kwargs)
            except ConnectionError as exc:
                if "Could not find any running Ray instance" not in str(exc):
                    raise
                print("ladder: no Ray cluster found: starting Ray's local one", flush=True)
                ray.init(**kwargs)
        elif address == "local":
            ray.init(**kwargs)
        else:
            ray.init(address=address, **kwargs)
    except ConnectionError as exc:
        raise AgnewsError(
            f"could not join the Ray cluster at {address}: {exc}. A cluster started with token "
            "authentication (RAY_AUTH_MODE=token) needs RAY_AUTH_MODE=token and its token "
            "(~/.ray/auth_token or RAY_AUTH_TOKEN) here too (README: On a cluster)"
        ) from None
    return ray


def task_resources(
    cluster: dict[str, float], cpus_per_run: int, gpus_per_run: float | None = None
) -> dict[str, float]:
    """Ray resources of one run: `gpus_per_run` GPUs (default: 1 when the cluster has any;
    Ray then gives the task its own CUDA_VISIBLE_DEVICES; 0: CPUs only, on every node) and
    `cpus_per_run` CPUs, its torch threads."""
    if gpus_per_run is None:
        gpus_per_run = 1 if cluster.get("GPU", 0) > 0 else 0
    if gpus_per_run > cluster.get("GPU", 0):
        raise AgnewsError(
            f"--gpus-per-run {gpus_per_run:g}: the cluster has {cluster.get('GPU', 0):g} GPUs"
        )
    if gpus_per_run > 0:
        return {"num_gpus": gpus_per_run, "num_cpus": cpus_per_run}
    return {"num_cpus": cpus_per_run}


def plan_on_remote(
    wanted: dict[str, dict[str, Any]],
    git_remote: str,
    commit: str,
    push_cache: bool,
    replace: bool,
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The runs to make (name -> overrides) and, for those that replace an experiment on the
    git remote, its commit (the task force-pushes over exactly that one). Experiments on the
    git remote are fetched (their git refs only) and judged with the local ones by plan_runs;
    one of the same params whose outputs the DVC remote lacks is run again."""
    on_remote = remote_experiments(git_remote, commit)
    present = [n for n in wanted if n in on_remote]
    if present:
        dvc("exp", "pull", "--no-cache", git_remote, *present)

    def complete(exp: dict) -> bool:
        if not push_cache or on_remote.get(exp["name"]) != exp["rev"]:
            return True  # a local experiment, or no DVC remote: its git ref is all there is
        missing = outputs_missing_on_remote(exp["rev"])
        if missing:
            print(
                f"ladder: {exp['name']} is on {git_remote} but the DVC remote lacks its "
                f"outputs ({', '.join(missing)}): running it again"
            )
        return not missing

    existing = {n: {**r, "name": n} for n, r in experiments().items()}
    for name in present:  # fetched but not a finished experiment: the task judges the ref
        if name not in existing:
            dvc("exp", "remove", name)
    plan = plan_runs(wanted, existing, replace, f"here or on {git_remote}", complete)
    for name in plan.reuse:
        print(f"ladder: re-using experiment {name}")
    for name in plan.replace:
        if name not in plan.incomplete:
            print(f"ladder: replacing experiment {name} (--replace)")
        if name in existing:  # the new run's ref comes back in its place
            dvc("exp", "remove", name)
    return plan.run, {n: on_remote[n] for n in plan.replace if n in on_remote}


def _gcs_reachable(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=POLL_S).close()
        return True
    except (OSError, ValueError):
        return False


def _shutdown(ray: Any) -> None:
    with contextlib.suppress(Exception):  # a lost cluster: nothing left to shut down cleanly
        ray.shutdown()


def wait_for_runs(ray: Any, pending: dict[Any, str]) -> tuple[list[str], list[str], str]:
    """Wait for the tasks (ref -> run name), printing a line as each ends; (finished, failed,
    why the cluster was lost or ""). Ray's own failure, or the head's GCS unreachable for
    HEAD_GRACE_S, ends the wait early: the runs not finished count as failed."""
    from tqdm import tqdm

    gcs = ray.get_runtime_context().gcs_address
    done, failed, lost, down_since = [], [], "", None
    with tqdm(total=len(pending), desc="ladder", unit="run", file=sys.stdout) as bar:
        while pending and not lost:
            try:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
            except Exception as exc:  # Ray itself failed (its head is gone)
                lost = f"Ray failed: {exc}"
                break
            if not ready:
                if _gcs_reachable(gcs):
                    down_since = None
                elif down_since is None:
                    down_since = time.monotonic()
                elif time.monotonic() - down_since > HEAD_GRACE_S:
                    lost = f"the head node's GCS ({gcs}) has not answered for {HEAD_GRACE_S:g} s"
                continue
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
    if lost:
        unfinished = sorted(pending.values())
        failed += unfinished
        print(
            f"ladder: lost the Ray cluster ({lost}). Finished: {', '.join(done) or 'none'}; "
            f"not finished: {', '.join(unfinished)} (they stop with their nodes; run the "
            "ladder again for them: the finished ones are re-used)",
            file=sys.stderr,
            flush=True,
        )
    return done, failed, lost


def run_on_ray(
    wanted: dict[str, dict[str, Any]],
    address: str,
    git_remote: str = "origin",
    cpus_per_run: int = 1,
    gpus_per_run: float | None = None,
    replace: bool = False,
) -> list[str]:
    """Run `wanted` (name -> overrides) on the Ray cluster at `address`, fetch the finished
    experiments' git refs; return the names that failed (or were lost with the cluster)."""
    url = remote_url(git_remote)  # first: a URL with credentials goes nowhere
    commit = pushed_commit(git_remote)
    push_cache = has_dvc_remote()
    todo, replaces = plan_on_remote(wanted, git_remote, commit, push_cache, replace)
    if not todo:
        return []
    ray = connect(address)
    cluster = ray.cluster_resources()
    try:
        resources = task_resources(cluster, cpus_per_run, gpus_per_run)
    except AgnewsError:
        _shutdown(ray)
        raise
    gpus = resources.get("num_gpus", 0)
    task = ray.remote(run_on_node).options(
        max_retries=MAX_RETRIES, retry_exceptions=False, **resources
    )
    print(
        f"ladder: {len(todo)} run(s) of {commit[:12]} on Ray "
        f"({cluster.get('CPU', 0):g} CPUs, {cluster.get('GPU', 0):g} GPUs; "
        + (f"{gpus:g} GPU per run" if gpus else f"{cpus_per_run} CPU(s) per run, no GPU")
        + ")",
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
                "gpus": gpus,
                "push_cache": push_cache,
                "replaces": replaces.get(name),
            }
        ): name
        for name, overrides in todo.items()
    }
    done, failed, _ = wait_for_runs(ray, pending)
    _shutdown(ray)
    if done:  # git refs only: the report reads git-tracked files, checkpoints stay remote
        dvc("exp", "pull", "--no-cache", git_remote, *done)
    return failed

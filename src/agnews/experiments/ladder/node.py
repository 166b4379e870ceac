"""What a Ray task of the ladder does on its node (agnews.experiments.ladder.cluster has the
driver's side and the whole story): settle whether its experiment already exists, fetch the one
commit into a fresh folder, pull prepare's outputs, `dvc exp run`, `dvc exp push`, and remove
the folder (the node's credentials with it), every step in a process group that dies with the
task's worker (agnews.experiments.shell.run_logged)."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from agnews.experiments.ladder.experiments import changed_params, matches, outputs_missing_on_remote
from agnews.experiments.presets import overrides_args
from agnews.experiments.shell import git, run, run_logged

LOG_TAIL = 30  # lines of a failed run's log shown by the driver


def exp_ref(commit: str, name: str) -> str:
    """The git ref DVC gives experiment `name` of baseline `commit`."""
    return f"refs/exps/{commit[:2]}/{commit[2:]}/{name}"


def _tail(log: Path, lines: int = LOG_TAIL) -> str:
    try:
        return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _note(log: Path, text: str) -> None:
    with log.open("a", encoding="utf-8") as out:
        out.write(f"{text}\n")


def copy_private(src: str | Path, dst: Path) -> None:
    """Copy a credentials file readable by its owner only (0600), whatever the umask."""
    data = Path(src).read_bytes()
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(data)


def node_workdir() -> Path:
    """Where this node's runs go: `$AGNEWS_RAY_WORKDIR`, else <tmp>/agnews-ray (made 0700)."""
    base = Path(os.environ.get("AGNEWS_RAY_WORKDIR") or Path(tempfile.gettempdir()) / "agnews-ray")
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    return base


def _existing_verdict(spec: dict[str, Any], repo: Path, sha: str, log: Path) -> str | None:
    """For an experiment of this name already on the git remote (commit `sha`, fetched into
    `repo`): "exists" (ours: same params, outputs on the DVC remote), "failed" (another's:
    other params, not to be replaced), or None: run it again and replace it."""
    import yaml

    name = spec["name"]
    if sha == spec.get("replaces"):
        _note(log, f"{name} on the git remote is replaced, as the driver decided")
        return None
    params = yaml.safe_load(git("show", f"{sha}:params.yaml", cwd=repo)) or {}
    theirs = {"params": params}
    if not matches(theirs, spec["overrides"]):
        changed = changed_params(theirs, spec["overrides"])
        _note(
            log,
            f"{name} is on the git remote with other params ({changed}): not replaced (run "
            "the ladder with --replace to replace it)",
        )
        return "failed"
    missing = outputs_missing_on_remote(sha, repo) if spec["push_cache"] else []
    if not missing:
        _note(log, f"{name} is already on the git remote with its outputs: nothing to run")
        return "exists"
    _note(
        log,
        f"{name} is on the git remote but the DVC remote lacks its outputs "
        f"({', '.join(missing)}): running it again",
    )
    return None


def _run_steps(spec: dict[str, Any], base: Path, folder: Path, env: dict, log: Path) -> str:
    name, commit, url = spec["name"], spec["commit"], spec["url"]
    ref = exp_ref(commit, name)
    listed = run(["git", "ls-remote", url, ref], env=env, check=False)
    if listed.returncode != 0:
        _note(log, f"git ls-remote failed: {listed.stderr.strip()}")
        return "failed"
    existing = listed.stdout.split()[0] if listed.stdout.strip() else None
    repo = folder / "repo"
    repo.mkdir(parents=True)
    shallow = ["fetch", "-q", "--depth", "1", "origin"]
    steps = [
        ["git", "init", "-q"],
        ["git", "remote", "add", "origin", url],
        ["git", *shallow, commit],  # this commit only: no history
        ["git", "checkout", "-q", commit],
    ]
    if existing:
        steps.append(["git", *shallow, existing])
    for args in steps:
        if run_logged(args, repo, env, log) != 0:
            return "failed"
    local_config = os.environ.get("AGNEWS_DVC_CONFIG_LOCAL")
    if local_config:
        copy_private(local_config, repo / ".dvc" / "config.local")
    force = False
    if existing:
        verdict = _existing_verdict(spec, repo, existing, log)
        if verdict:
            return verdict
        force = True
    dvc_ = [sys.executable, "-m", "dvc"]
    # one DVC cache per node: prepare's outputs are pulled once per node, not once per run
    cache = [*dvc_, "config", "--local", "cache.dir", str(base / "dvc-cache")]
    if run_logged(cache, repo, env, log) != 0:
        return "failed"
    if spec["push_cache"] and run_logged([*dvc_, "pull", "--with-deps", "prepare"], repo, env, log):
        _note(log, "prepared data not on the DVC remote: the run prepares it")
    exp_run = [*dvc_, "exp", "run", "-n", name, *overrides_args(spec["overrides"])]
    push = [
        *dvc_, "exp", "push", *(["-f"] if force else []),
        *([] if spec["push_cache"] else ["--no-cache"]), "origin", name,
    ]  # fmt: skip
    for args in (exp_run, push):
        if run_logged(args, repo, env, log) != 0:
            return "failed"
    return "done"


def run_on_node(spec: dict[str, Any]) -> dict[str, Any]:
    """One experiment on this node (the body of the Ray task; see the module's doc).

    spec: name, commit, url (git remote), overrides, threads, gpus, push_cache (bool), replaces
    (the commit of the same-named experiment on the git remote that this run replaces)."""
    name, commit = spec["name"], spec["commit"]
    started = time.monotonic()
    import ray

    node = f"{socket.gethostname()} node {ray.get_runtime_context().get_node_id()[:8]}"
    base = node_workdir()
    folder = base / f"{name}-{commit[:8]}-{uuid.uuid4().hex[:8]}"
    log = base / f"{folder.name}.log"  # the whole name: a dot in it is no suffix
    result = {"name": name, "node": node, "log": str(log), "pid": os.getpid()}
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "DVC_NO_ANALYTICS": "1",
        "OMP_NUM_THREADS": str(spec["threads"]),
    }
    if not spec.get("gpus", 0):  # Ray leaves a task without GPUs every GPU: hide them
        env["CUDA_VISIBLE_DEVICES"] = ""
    devices = env.get("CUDA_VISIBLE_DEVICES", "(not set)")  # set by Ray for num_gpus
    log.write_text(
        f"{name} on {node} (pid {os.getpid()}), commit {commit}\n"
        f"CUDA_VISIBLE_DEVICES={devices} OMP_NUM_THREADS={spec['threads']}\n",
        encoding="utf-8",
    )
    try:
        status = _run_steps(spec, base, folder, env, log)
    except Exception as exc:  # a step's own error (git show, DVC's API): this run failed
        _note(log, f"error: {exc}")
        status = "failed"
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # config.local (credentials) with it
    if status == "failed":
        return {**result, "status": status, "tail": _tail(log)}
    return {**result, "status": status, "seconds": time.monotonic() - started}

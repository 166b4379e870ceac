"""The Ray backend's pieces without a Ray cluster: a task's verdict on an experiment already on
the git remote, its credentials file and logs, the step guard that kills a run with its
worker, the refusal of a URL with credentials, the resources of a run, and the driver when the
head node is lost. (tests/test_ray_cluster.py runs the whole thing on a real cluster.)"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

import agnews.experiments.ladder.cluster as cluster
import agnews.experiments.ladder.node as node
from agnews.errors import AgnewsError

IDENT = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@e",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@e",
    "DVC_NO_ANALYTICS": "1",
}


def _sh(args, cwd, check=True) -> str:
    env = {**os.environ, **IDENT}
    proc = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if check and proc.returncode:
        raise AssertionError(f"{args}: {proc.stdout}{proc.stderr}")
    return proc.stdout.strip()


@pytest.fixture
def fake_ray(monkeypatch, tmp_path):
    """`import ray` inside a task gives a node id; the node's work folder is tmp_path/node."""
    context = types.SimpleNamespace(get_node_id=lambda: "abcdef0123")
    monkeypatch.setitem(
        sys.modules, "ray", types.SimpleNamespace(get_runtime_context=lambda: context)
    )
    monkeypatch.setenv("AGNEWS_RAY_WORKDIR", str(tmp_path / "node"))
    return tmp_path / "node"


@pytest.fixture(scope="module")
def remote_exp(tmp_path_factory):
    """A DVC project on a bare git remote (baseline commit on main) with an experiment of it,
    `done-run` (train.lr 0.1, a DVC-tracked file), pushed as the experiment's git ref only: its
    output is not on the DVC remote (`store`, a folder; see outputs_on_a_store)."""
    tmp_path = tmp_path_factory.mktemp("remote")
    dvc = [sys.executable, "-m", "dvc"]
    origin, store, work = tmp_path / "origin.git", tmp_path / "store", tmp_path / "work"
    _sh(["git", "init", "-q", "--bare", "-b", "main", origin], tmp_path)
    work.mkdir()
    _sh(["git", "init", "-q", "-b", "main"], work)
    _sh([*dvc, "init", "-q"], work)
    _sh([*dvc, "remote", "add", "-d", "store", store], work)
    (work / "params.yaml").write_text("train:\n  lr: 0.1\n")
    _sh(["git", "add", "-A"], work)
    _sh(["git", "commit", "-qm", "baseline"], work)
    _sh(["git", "remote", "add", "origin", origin], work)
    _sh(["git", "push", "-q", "origin", "main"], work)
    baseline = _sh(["git", "rev-parse", "HEAD"], work)
    (work / "model.pt").write_text("weights")
    _sh([*dvc, "add", "-q", "model.pt"], work)
    _sh(["git", "add", "-A"], work)
    _sh(["git", "commit", "-qm", "experiment"], work)
    ref = node.exp_ref(baseline, "done-run")
    _sh(["git", "push", "-q", "origin", f"HEAD:{ref}"], work)
    sha = _sh(["git", "rev-parse", "HEAD"], work)
    return types.SimpleNamespace(origin=origin, work=work, baseline=baseline, sha=sha, dvc=dvc)


def _spec(exp, **extra):
    return {
        "name": "done-run",
        "commit": exp.baseline,
        "url": str(exp.origin),
        "overrides": {"train.lr": 0.1},
        "threads": 1,
        "push_cache": True,
        **extra,
    }


@pytest.fixture
def steps(monkeypatch):
    """Record every step of a task; `dvc exp run` and `dvc exp push` succeed without running
    (the other steps run for real). Each entry: (argv, mode of the clone's config.local)."""
    calls = []
    real = node.run_logged

    def fake(args, cwd, env, log):
        args = [str(a) for a in args]
        local = Path(cwd) / ".dvc" / "config.local"
        calls.append((args, stat.S_IMODE(local.stat().st_mode) if local.exists() else None))
        if args[1:4] == ["-m", "dvc", "exp"]:
            return 0
        return real(args, cwd, env, log)

    monkeypatch.setattr(node, "run_logged", fake)
    return calls


def _ran(calls, *words):
    return [a for a, _ in calls if all(w in a for w in words)]


def outputs_on_a_store(exp, tmp_path, monkeypatch) -> None:
    """The node's own DVC settings point the remote at a folder that holds the outputs."""
    shutil.copytree(exp.work / ".dvc" / "cache" / "files", tmp_path / "full-store" / "files")
    local = tmp_path / "node.config.local"
    local.write_text(f"['remote \"store\"']\n    url = {tmp_path / 'full-store'}\n")
    monkeypatch.setenv("AGNEWS_DVC_CONFIG_LOCAL", str(local))


def test_a_pushed_ref_with_its_outputs_on_the_dvc_remote_is_done(
    remote_exp, fake_ray, steps, tmp_path, monkeypatch
):
    outputs_on_a_store(remote_exp, tmp_path, monkeypatch)
    result = node.run_on_node(_spec(remote_exp))
    assert result["status"] == "exists", Path(result["log"]).read_text()
    assert "already on the git remote with its outputs" in Path(result["log"]).read_text()
    assert not _ran(steps, "run") and not _ran(steps, "push")
    assert sorted(p.suffix for p in fake_ray.iterdir()) == [".log"]  # the clone removed


def test_a_pushed_ref_without_its_outputs_is_not_done_it_runs_again(remote_exp, fake_ray, steps):
    """`dvc exp push` pushes the ref before the outputs: a node that died in between (or a
    failed upload) leaves a ref whose model never reached the DVC remote. Ray's retry of that
    task must run it again and replace the ref, not call it done."""
    result = node.run_on_node(_spec(remote_exp))
    log = Path(result["log"]).read_text()
    assert result["status"] == "done", log
    assert "the DVC remote lacks its outputs (model.pt): running it again" in log
    [push] = _ran(steps, "exp", "push")
    assert push[-4:] == ["push", "-f", "origin", "done-run"]
    assert _ran(steps, "exp", "run", "-n", "done-run")


def test_a_ref_with_other_params_on_the_remote_is_never_replaced_by_a_task(
    remote_exp, fake_ray, steps
):
    result = node.run_on_node(_spec(remote_exp, overrides={"train.lr": 0.5}))
    assert result["status"] == "failed"
    assert "other params (train.lr=0.1 (wanted 0.5))" in result["tail"]
    assert "--replace" in result["tail"]
    assert not _ran(steps, "exp", "run") and not _ran(steps, "exp", "push")
    assert [p.suffix for p in fake_ray.iterdir()] == [".log"]  # a failed run's clone removed
    # ...unless the driver said so (--replace): then it runs and force-pushes over exactly it
    result = node.run_on_node(
        _spec(remote_exp, overrides={"train.lr": 0.5}, replaces=remote_exp.sha)
    )
    assert result["status"] == "done"
    assert _ran(steps, "exp", "push", "-f")


def test_without_a_dvc_remote_the_ref_is_the_whole_run(remote_exp, fake_ray, steps):
    result = node.run_on_node(_spec(remote_exp, push_cache=False))
    assert result["status"] == "exists"
    assert not _ran(steps, "exp", "run")


def test_a_task_fetches_one_commit_keeps_credentials_private_and_removes_them(
    tmp_path, remote_exp, fake_ray, steps, monkeypatch
):
    """The node's config.local is copied 0600 whatever the umask, and removed with the clone
    when the run ends, failed or not; only the commit itself is fetched (no history)."""
    secret = tmp_path / "node.config.local"
    secret.write_text("[core]\n    # the node's credentials: SECRET\n")
    secret.chmod(0o644)
    monkeypatch.setenv("AGNEWS_DVC_CONFIG_LOCAL", str(secret))
    old = os.umask(0o022)
    try:
        result = node.run_on_node(_spec(remote_exp, name="new-run"))
    finally:
        os.umask(old)
    assert result["status"] == "done", Path(result["log"]).read_text()
    [mode] = [m for a, m in steps if a[1:5] == ["-m", "dvc", "exp", "run"]]
    assert mode == 0o600
    assert ["git", "fetch", "-q", "--depth", "1", "origin", remote_exp.baseline] in [
        a for a, _ in steps
    ]
    assert not list(fake_ray.rglob("config.local"))  # gone with the clone
    assert "SECRET" not in Path(result["log"]).read_text()


def test_dotted_names_keep_their_own_logs(remote_exp, fake_ray, steps):
    """`train.lr=0.001,0.003` names runs `...-lr0.001` and `...-lr0.003`: each its own log (a
    log named by Path.with_suffix was `...-lr0.log` for both)."""
    logs = [
        node.run_on_node(_spec(remote_exp, name=f"tuned-lr{lr}", push_cache=False))["log"]
        for lr in ("0.001", "0.003")
    ]
    assert len(set(logs)) == 2
    for lr, log in zip(("0.001", "0.003"), logs, strict=True):
        assert Path(log).name.startswith(f"tuned-lr{lr}-") and log.endswith(".log")
        assert Path(log).read_text().startswith(f"tuned-lr{lr} on ")


@pytest.mark.parametrize(
    "url",
    [
        "https://ghp_s3cretTOKEN@git.invalid/org/agnews.git",
        "https://me:s3cretTOKEN@git.invalid/org/agnews.git",
        "http://s3cretTOKEN@git.invalid/org/agnews.git",
        "ssh://git:s3cretTOKEN@git.invalid/org/agnews.git",
    ],
)
def test_a_git_remote_url_with_credentials_is_refused_without_repeating_them(url):
    with pytest.raises(AgnewsError, match="credentials") as exc:
        cluster.check_url(url, "origin")
    assert "s3cretTOKEN" not in str(exc.value)


def test_urls_without_credentials_pass_and_local_paths_become_absolute(tmp_path, monkeypatch):
    for url in (
        "https://git.example.com/org/agnews.git",
        "ssh://git@git.example.com/org/agnews.git",
        "git@github.com:org/agnews.git",
        "/srv/git/agnews.git",
    ):
        cluster.check_url(url, "origin")
    monkeypatch.chdir(tmp_path)
    subprocess.run(["git", "init", "-q"], check=True)
    (tmp_path / "origin.git").mkdir()
    subprocess.run(["git", "remote", "add", "local", "origin.git"], check=True)
    assert cluster.remote_url("local") == str(tmp_path / "origin.git")  # the same on every node


def test_a_step_dies_with_its_worker_grandchildren_included(tmp_path):
    """A step's command starts a child of its own (as `dvc exp run` starts the training). Kill
    the worker that ran the step, and first its direct children (what Ray does when a node
    dies: the worker exits and kills its direct children only): nothing of the step survives."""
    pidfile = tmp_path / "sleeper.pid"
    worker_code = (
        "import sys; from pathlib import Path; from agnews.experiments.shell import run_logged; "
        "run_logged(['sh', '-c', f'sleep 300 & echo $! > {sys.argv[1]}; wait'], '.', "
        "None, Path(sys.argv[2]))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    worker = subprocess.Popen(
        [sys.executable, "-c", worker_code, str(pidfile), str(tmp_path / "step.log")], env=env
    )
    deadline = time.monotonic() + 30
    while not (pidfile.exists() and pidfile.read_text().strip()):
        assert worker.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    sleeper = int(pidfile.read_text())
    children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
    for pid in children:  # Ray's "kill the direct children" on the worker's way out
        os.kill(int(pid), signal.SIGKILL)
    worker.kill()
    worker.wait()
    deadline = time.monotonic() + 10
    while _alive(sleeper) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = _alive(sleeper)
    if alive:
        os.kill(sleeper, signal.SIGKILL)
    assert not alive, "the step's grandchild outlived its worker"
    assert "$ sh -c 'sleep 300" in (tmp_path / "step.log").read_text()


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_a_run_takes_the_gpus_asked_for_else_one_when_the_cluster_has_them():
    assert cluster.task_resources({"CPU": 16.0, "GPU": 4.0}, 2) == {"num_gpus": 1, "num_cpus": 2}
    assert cluster.task_resources({"CPU": 16.0}, 4) == {"num_cpus": 4}
    assert cluster.task_resources({"CPU": 16.0, "GPU": 0.0}, 1) == {"num_cpus": 1}
    # CPU-only runs on a cluster with GPUs (every node takes runs), or two runs per GPU
    assert cluster.task_resources({"CPU": 16.0, "GPU": 4.0}, 2, 0) == {"num_cpus": 2}
    assert cluster.task_resources({"CPU": 16.0, "GPU": 4.0}, 1, 0.5) == {
        "num_gpus": 0.5,
        "num_cpus": 1,
    }
    with pytest.raises(AgnewsError, match="has 0 GPUs"):
        cluster.task_resources({"CPU": 16.0}, 1, 1)


class _Ref:
    def __init__(self, name):
        self.name = name


class _LostRay:
    """A Ray whose head dies after the first run finished: the next wait raises."""

    def __init__(self, first):
        self.first, self.waits, self.shut = first, 0, False

    def get_runtime_context(self):
        return types.SimpleNamespace(gcs_address="127.0.0.1:1")

    def wait(self, refs, num_returns, timeout):
        self.waits += 1
        if self.waits == 1:
            return [next(r for r in refs if r.name == self.first)], []
        raise RuntimeError("GCS is gone")

    def get(self, ref):
        return {"name": ref.name, "status": "done", "node": "n1", "log": "l", "seconds": 1.0}

    def shutdown(self):
        self.shut = True
        raise RuntimeError("cannot reach the GCS")


def test_a_lost_head_node_ends_the_wait_and_the_finished_runs_are_fetched(monkeypatch, capsys):
    ray = _LostRay("a")
    monkeypatch.setattr(cluster, "remote_url", lambda remote: "/srv/origin.git")
    monkeypatch.setattr(cluster, "pushed_commit", lambda remote: "c" * 40)
    monkeypatch.setattr(cluster, "has_dvc_remote", lambda: True)
    todo = {"a": {}, "b": {}, "c": {}}
    monkeypatch.setattr(cluster, "plan_on_remote", lambda *a: (todo, {}))
    monkeypatch.setattr(cluster, "connect", lambda address: ray)
    ray.cluster_resources = lambda: {"CPU": 2.0}
    ray.remote = lambda fn: types.SimpleNamespace(
        options=lambda **kw: types.SimpleNamespace(remote=lambda spec: _Ref(spec["name"]))
    )
    pulled = []
    monkeypatch.setattr(cluster, "dvc", lambda *args: pulled.append(args))
    failed = cluster.run_on_ray(todo, "auto")
    err = capsys.readouterr().err
    assert sorted(failed) == ["b", "c"]
    assert "lost the Ray cluster (Ray failed: GCS is gone). Finished: a; not finished: b, c" in err
    assert pulled == [("exp", "pull", "--no-cache", "origin", "a")]
    assert ray.shut


def test_an_unreachable_head_is_noticed_without_an_error_from_ray(monkeypatch, capsys):
    """Ray's own wait just blocks when the head is gone (and kills the driver after 60 s):
    the driver polls and gives up once the head's GCS stops answering."""
    ray = _LostRay("a")
    calls = []

    def wait(refs, num_returns, timeout):  # nothing ever finishes, and Ray never says why
        calls.append(1)
        assert len(calls) < 100, "the driver would wait forever"
        time.sleep(timeout)
        return [], refs

    ray.wait = wait
    monkeypatch.setattr(cluster, "HEAD_GRACE_S", 0.2)
    monkeypatch.setattr(cluster, "POLL_S", 0.05)
    started = time.monotonic()
    done, failed, lost = cluster.wait_for_runs(ray, {_Ref("a"): "a"})
    assert time.monotonic() - started < 10
    assert (done, failed) == ([], ["a"]) and "127.0.0.1:1" in lost
    assert "not finished: a" in capsys.readouterr().err

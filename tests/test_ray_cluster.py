"""The ladder on a real Ray cluster on loopback (README "On a cluster"): a head node and a
second node (`ray start`, each its own process group, each with its own work folder), a bare
git remote and a DVC remote in a local folder; `python -m agnews ladder --ray` fans
three tiny
runs of the fixture data out, the second node is killed (SIGKILL to its whole process group:
raylet, workers and the run inside) while it runs one of them, and Ray runs that one again on
the head. A fresh clone then finds every run exactly once in `dvc exp show --json`, with
metrics. Each node declares one GPU, so the runs ask for `num_gpus=1` and Ray gives each its
CUDA_VISIBLE_DEVICES (with no CUDA device there, torch trains on the CPU). A run that fails by
itself is reported once and not retried. The Ray processes are
stopped at the end whatever happens (the fixture's finalizer)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import TINY, copy_project
from servers import free_ports

pytestmark = pytest.mark.e2e

RAY = str(Path(sys.executable).parent / "ray")
SIZES = (8, 12, 16)  # model.hidden_size of the three runs: rnn_max-hidden_size8, ...
NAMES = [f"rnn_max-hidden_size{h}" for h in SIZES]


def _env(home: Path, **extra: str) -> dict[str, str]:
    """A machine's environment: its own HOME (no global git/DVC config leaks in), the venv
    first on PATH, no PYTHONPATH (the task's code reaches the nodes through Ray)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "DVC_", "GIT_", "RAY_")) and k != "PYTHONPATH"
    }
    return {
        **env,
        "HOME": str(home),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
        **extra,
    }


def _run(args: list, cwd: Path, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=540
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@dataclass
class Node:
    proc: subprocess.Popen
    workdir: Path  # AGNEWS_RAY_WORKDIR of the node: its runs' clones and logs
    log: Path


@dataclass
class Cluster:
    address: str
    head: Node
    worker: Node
    home: Path


def _stop(node: Node) -> None:
    """SIGTERM the node's process group, SIGKILL what is left."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 30)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            node.proc.wait(timeout=wait)
            return


def _start(args: list[str], env: dict, workdir: Path, log: Path) -> Node:
    workdir.mkdir(parents=True)
    proc = subprocess.Popen(
        [RAY, "start", "--block", "--disable-usage-stats", *args],
        env={**env, "AGNEWS_RAY_WORKDIR": str(workdir)},
        stdin=subprocess.DEVNULL,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: killed as one, nothing else with it
    )
    return Node(proc, workdir, log)


def _alive_nodes(address: str, env: dict) -> int:
    code = (
        f"import ray; ray.init(address={address!r}, log_to_driver=False); "
        "print(sum(n['Alive'] for n in ray.nodes()))"
    )
    proc = _run([sys.executable, "-c", code], Path.cwd(), env, check=False)
    return int(proc.stdout.split()[-1]) if proc.returncode == 0 and proc.stdout.split() else 0


@pytest.fixture
def cluster(tmp_path) -> Iterator[Cluster]:
    # Ray's unix sockets live in its temp folder, whose path must stay short
    ray_tmp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    home = tmp_path / "home"
    home.mkdir()
    # a dead node is declared dead after ~3 s of failed health checks, not Ray's default 30 s
    env = _env(
        home,
        # each node's own DVC settings (the test writes them): its .dvc/config.local
        AGNEWS_DVC_CONFIG_LOCAL=str(tmp_path / "node.config.local"),
        RAY_health_check_period_ms="1000",
        RAY_health_check_timeout_ms="1000",
        RAY_health_check_failure_threshold="3",
    )
    gcs, *ports = free_ports(8)
    address = f"127.0.0.1:{gcs}"
    # one GPU declared per node (none is there: Ray still assigns it, CUDA_VISIBLE_DEVICES=0,
    # and torch, finding no CUDA device, trains on the CPU), so runs ask for num_gpus=1
    common = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--num-gpus", "1"]
    nodes: list[Node] = []
    try:
        head = _start(
            [
                "--head", "--port", str(gcs), *common, "--temp-dir", str(ray_tmp),
                "--include-dashboard", "false", "--dashboard-agent-listen-port", str(ports[0]),
                "--dashboard-agent-grpc-port", str(ports[1]),
                "--runtime-env-agent-port", str(ports[2]),
            ],
            env, tmp_path / "head", tmp_path / "head.log",
        )  # fmt: skip
        nodes.append(head)
        deadline = time.monotonic() + 60
        while _alive_nodes(address, env) < 1:
            assert head.proc.poll() is None and time.monotonic() < deadline, head.log.read_text()
            time.sleep(1)
        worker = _start(
            [
                "--address", address, *common, "--resources", '{"worker2": 1}',
                "--temp-dir", str(ray_tmp),
                "--dashboard-agent-listen-port", str(ports[3]),
                "--dashboard-agent-grpc-port", str(ports[4]),
                "--runtime-env-agent-port", str(ports[5]),
                "--metrics-export-port", str(ports[6]),
            ],
            env, tmp_path / "worker", tmp_path / "worker.log",
        )  # fmt: skip
        nodes.append(worker)
        while _alive_nodes(address, env) < 2:
            assert worker.proc.poll() is None and time.monotonic() < deadline, (
                worker.log.read_text()
            )
            time.sleep(1)
        yield Cluster(address, head, worker, home)
    finally:
        for node in reversed(nodes):
            _stop(node)
        shutil.rmtree(ray_tmp, ignore_errors=True)


def _started_runs(workdir: Path) -> dict[str, str]:
    """Run name -> its log's text, for each run a node has started `dvc exp run` for."""
    runs = {}
    for log in workdir.glob("*.log"):
        text = log.read_text(errors="replace")
        if " exp run " in text:
            runs[text.split()[0]] = text
    return runs


def _exp_show(repo: Path, env: dict) -> dict[str, list[dict]]:
    """Experiment name -> every entry of that name in `dvc exp show --json` (with metrics)."""
    shown = json.loads(
        _run([sys.executable, "-m", "dvc", "exp", "show", "--json"], repo, env).stdout
    )
    found: dict[str, list[dict]] = {}
    for entry in shown:
        for exp in [e for x in entry.get("experiments") or [] for e in x["revs"]]:
            found.setdefault(exp["name"], []).append(exp["data"])
    return found


def test_ladder_fans_out_on_ray_and_survives_a_dead_node(cluster, tmp_path):
    env = _env(cluster.home)
    dvc = [sys.executable, "-m", "dvc"]
    origin, store = tmp_path / "origin.git", tmp_path / "dvc-store"
    # git has only a placeholder URL for the DVC remote; the real one is in each machine's
    # .dvc/config.local (where credentials go): runs that ignored the node's file would pull
    # nothing and push to the placeholder
    placeholder = tmp_path / "not-the-dvc-store"
    _run(["git", "init", "-q", "--bare", "-b", "main", origin], tmp_path, env)
    a = copy_project(tmp_path / "a", {**TINY, "data.local_dir": "tests/fixtures/ag_news_sample"})
    for args in (
        ["git", "init", "-q", "-b", "main"],
        [*dvc, "remote", "add", "-d", "storage", placeholder],
        [*dvc, "remote", "modify", "--local", "storage", "url", store],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "project copy"],
        ["git", "remote", "add", "origin", origin],
    ):
        _run(args, a, env)
    ladder = [
        sys.executable, "-m", "agnews", "ladder", "--ray", cluster.address, "--presets", "rnn_max",
        "--set", "train.epochs=1", "--set", f"model.hidden_size={','.join(map(str, SIZES))}",
    ]  # fmt: skip
    driver_env = {**env, "PYTHONPATH": str(a / "src")}

    # the commit's prepared data on the DVC remote: each run pulls it instead of preparing
    _run([*dvc, "repro", "prepare"], a, env)
    _run(["git", "add", "-A"], a, env)  # dvc.lock and prepare's metrics (cache: false)
    _run(["git", "commit", "-qm", "prepared data"], a, env)
    _run([*dvc, "push"], a, env)
    shutil.copyfile(a / ".dvc" / "config.local", tmp_path / "node.config.local")

    # the cluster runs what the git remote has: an unpushed commit is refused
    refused = _run(ladder, a, driver_env, check=False)
    assert refused.returncode == 2 and "not on the git remote 'origin'" in refused.stderr
    _run(["git", "push", "-q", "origin", "main"], a, env)

    out = tmp_path / "ladder.out"
    with out.open("w") as sink:
        driver = subprocess.Popen(
            ladder, cwd=a, env=driver_env, stdout=sink, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 300
        while not _started_runs(cluster.worker.workdir):  # kill the node in the middle of a run
            assert driver.poll() is None, out.read_text()
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.5)
        time.sleep(2)
        [killed] = _started_runs(cluster.worker.workdir)
        os.killpg(cluster.worker.proc.pid, signal.SIGKILL)
        print(f"killed the second node (process group {cluster.worker.proc.pid}) in {killed}")
        cluster.worker.proc.wait(timeout=30)
        code = driver.wait(timeout=540)
    text = out.read_text()
    print(text)  # the run list, shown by pytest -rA / on failure
    assert code == 0, text

    # the killed run did not finish on the dead node: it ran again on the head, once
    assert re.search(
        rf"ladder: {re.escape(killed)} finished on .*; log: {cluster.head.workdir}/", text
    )
    assert "(2 CPUs, 2 GPUs; 1 GPU per run)" in text
    rerun = _started_runs(cluster.head.workdir)[killed]
    assert "CUDA_VISIBLE_DEVICES=0 OMP_NUM_THREADS=1" in rerun, rerun
    assert "Stage 'prepare' didn't change, skipping" in rerun, rerun
    assert "not on the DVC remote" not in rerun, rerun
    for name in NAMES:
        assert len(re.findall(rf"ladder: {re.escape(name)} (finished|was already)", text)) == 1
    assert "FAILED" not in text

    # a fresh clone: every run exactly once, with its metrics and its own hidden size
    b = tmp_path / "b"
    _run(["git", "clone", "-q", origin, b], tmp_path, env)
    _run([*dvc, "remote", "modify", "--local", "storage", "url", store], b, env)
    _run([*dvc, "exp", "pull", "origin"], b, env)
    shown = _exp_show(b, env)
    print({n: len(v) for n, v in shown.items()})
    assert sorted(shown) == sorted(NAMES), shown.keys()
    for name, size in zip(NAMES, SIZES, strict=True):
        [data] = shown[name]
        params = data["params"]["params.yaml"]["data"]
        assert params["model"]["hidden_size"] == size and params["train"]["epochs"] == 1
        test = data["metrics"]["metrics/test.json"]["data"]
        assert 0.0 <= test["accuracy"] <= 1.0, name
        print(name, "hidden_size", size, "test accuracy", test["accuracy"])
    # the outputs went to the DVC remote: a run's checkpoint comes back with `dvc exp apply`
    _run([*dvc, "exp", "apply", NAMES[0]], b, env)
    assert (b / "models" / "model.pt").is_file()

    # the driver's own report lists the runs, pulled back into its repository
    report = (a / "reports" / "ladder_partial.md").read_text()
    assert all(f"| {name} |" in report for name in NAMES), report

    assert not placeholder.exists()  # every node used its own DVC settings

    # the same command again makes no run: the experiments are re-used
    again = _run(ladder, a, driver_env)
    assert all(f"re-using experiment {name}" in again.stdout for name in NAMES), again.stdout
    assert "run(s) of" not in again.stdout

    # a run that fails by itself (no such data folder) is reported once and never retried
    failing = [*ladder[:-2], "--set", "data.local_dir=nowhere", "--seeds", "7"]
    failed = _run(failing, a, driver_env, check=False)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    print(failed.stdout, failed.stderr)
    assert "rnn_max-s7 FAILED" in failed.stderr
    assert (failed.stdout + failed.stderr).count("FAILED") == 1
    tries = [
        log for node in (cluster.head, cluster.worker) for log in node.workdir.glob("rnn_max*.log")
    ]
    assert len([t for t in tries if "nowhere" in t.read_text()]) == 1

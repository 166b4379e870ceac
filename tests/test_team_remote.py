"""The team workflow over real remote storage (README "Working as a team"): clone A runs the
pipeline and two experiments and pushes its data, model and experiments (`dvc push`,
`dvc exp push origin`, `git push`); clone B, a fresh `git clone`, pulls them (`dvc pull`,
`dvc exp pull origin`) and uses them without running a single stage. B runs twice: over S3
(a SeaweedFS server) and over SSH (OpenSSH's sshd), both started here on loopback ports.
Credentials live in .dvc/config.local or the environment, never in git."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers import TINY, copy_project, stages_run
from servers import S3Server, SSHServer, seaweedfs_s3, sshd

pytestmark = pytest.mark.e2e

# `dvc exp run` leaves its params in the workspace, so the second run sets lr back itself
EXPERIMENTS = {
    "exp-lr": ["-S", "train.lr=0.003"],
    "exp-gru": ["-S", "model.cell=gru", "-S", "train.lr=0.001"],
}
UP_TO_DATE = "Data and pipelines are up to date."


@dataclass
class Machine:
    """One team member's machine: its own HOME (so ~/.ssh/known_hosts is the test's, and no
    ~/.aws, ~/.gitconfig or global DVC config of whoever runs the tests leaks in), the venv
    first on PATH, and `extra` environment variables (credentials, say)."""

    home: Path
    site_cache: Path  # DVC's per-repository state, kept out of /var/tmp/dvc
    extra: dict = field(default_factory=dict)
    path_first: Path | None = None  # a folder put before everything on PATH

    def env(self) -> dict:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AWS_", "DVC_", "GIT_", "SSH_"))
        }
        path = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        if self.path_first:
            path = f"{self.path_first}{os.pathsep}{path}"
        return {
            **env,
            "HOME": str(self.home),
            "PATH": path,
            "DVC_NO_ANALYTICS": "1",
            "DVC_SITE_CACHE_DIR": str(self.site_cache),
            "GIT_AUTHOR_NAME": "test",
            "GIT_AUTHOR_EMAIL": "test@example.com",
            "GIT_COMMITTER_NAME": "test",
            "GIT_COMMITTER_EMAIL": "test@example.com",
            **self.extra,
        }

    def run(self, args: list, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [str(a) for a in args],
            cwd=cwd,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=600,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(map(str, args))} failed ({proc.returncode}):\n"
                f"{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def dvc(self, cwd: Path, *args, check: bool = True) -> subprocess.CompletedProcess:
        return self.run([sys.executable, "-m", "dvc", *args], cwd, check)

    def git(self, cwd: Path, *args) -> str:
        return self.run(["git", *args], cwd).stdout


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _outputs(repo: Path) -> dict[str, str]:
    """sha256 of the pipeline results a teammate needs: the prepared data, the checkpoint, the
    metrics."""
    files = [
        *sorted((repo / "data" / "prepared").iterdir()),
        repo / "models" / "model.pt",
        *sorted((repo / "metrics").iterdir()),
        repo / "dvclive" / "train" / "metrics.json",
    ]
    return {str(f.relative_to(repo)): _sha(f) for f in files}


def _experiments(shown: list) -> dict[str, dict]:
    """{experiment name: its params and metrics} from `dvc exp show --json`."""
    runs = {}
    for entry in shown:
        for exp in [e for x in entry.get("experiments") or [] for e in x["revs"]]:
            data = exp["data"]
            runs[exp["name"]] = {"params": data["params"], "metrics": data["metrics"]}
    return runs


@dataclass
class Team:
    origin: Path  # the git remote (a bare repository)
    a: Path  # clone A, where everything ran
    home: Path
    s3: S3Server
    ssh: SSHServer
    baseline: dict[str, str]  # A's committed results: path -> sha256
    exp_models: dict[str, str]  # experiment -> sha256 of its models/model.pt in A
    exp_metrics: dict[str, str]  # experiment -> its metrics/test.json in A
    exp_shown: dict[str, dict]  # experiment -> params and metrics as A's dvc exp show has them
    secrets: list[str]  # every credential used: none may reach git


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    root = tmp_path_factory.mktemp("servers")
    with seaweedfs_s3(root / "s3") as s3, sshd(root / "ssh") as ssh:
        yield s3, ssh


@pytest.fixture(scope="module")
def team(servers, tmp_path_factory) -> Team:
    """Clone A: the project with a DVC remote on each server, `dvc repro`, two experiments, and
    everything pushed (DVC remote and git remote)."""
    s3, ssh = servers
    tmp = tmp_path_factory.mktemp("team")
    home = tmp / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "known_hosts").write_text(ssh.known_hosts_line + "\n")
    me = Machine(home, tmp / "dvc-site-cache-a")
    origin = tmp / "origin.git"
    me.git(tmp, "init", "-q", "--bare", "-b", "main", origin)

    a = copy_project(tmp / "a", {**TINY, "data.local_dir": "tests/fixtures/ag_news_sample"})
    me.git(a, "init", "-q", "-b", "main")
    me.git(a, "add", "-A")
    me.git(a, "commit", "-qm", "project copy")
    me.git(a, "remote", "add", "origin", origin)

    # remotes: URLs in .dvc/config (committed), credentials in .dvc/config.local (git-ignored)
    me.dvc(a, "remote", "add", "-d", "storage", f"s3://{s3.bucket}/agnews")
    me.dvc(a, "remote", "modify", "storage", "endpointurl", s3.endpoint_url)
    me.dvc(a, "remote", "add", "ssh", ssh.url(tmp / "ssh-storage"))
    me.dvc(a, "remote", "modify", "--local", "storage", "access_key_id", s3.access_key_id)
    me.dvc(a, "remote", "modify", "--local", "storage", "secret_access_key", s3.secret_access_key)
    me.dvc(a, "remote", "modify", "--local", "ssh", "keyfile", ssh.keyfile)
    me.git(a, "check-ignore", "-q", ".dvc/config.local")  # fails unless git-ignored
    me.git(a, "add", ".dvc/config")
    me.git(a, "commit", "-qm", "DVC remotes")

    repro = me.dvc(a, "repro")
    assert stages_run(repro.stdout + repro.stderr) == [
        *("check", "download", "prepare", "train", "evaluate")
    ]
    me.git(a, "add", "-A")
    me.git(a, "commit", "-qm", "baseline results")
    baseline = _outputs(a)
    # share the committed results now: `dvc push` pushes what the workspace's dvc.lock names,
    # and after `dvc exp run` that is the last experiment's, not the commit's
    me.dvc(a, "push")  # the default remote: S3
    me.dvc(a, "push", "-r", "ssh")
    me.git(a, "push", "-q", "origin", "main")

    exp_models, exp_metrics = {}, {}
    for name, args in EXPERIMENTS.items():
        ran = me.dvc(a, "exp", "run", "-n", name, *args)
        assert stages_run(ran.stdout + ran.stderr) == ["check", "train", "evaluate"]
        exp_models[name] = _sha(a / "models" / "model.pt")
        exp_metrics[name] = (a / "metrics" / "test.json").read_text()
    shown = _experiments(json.loads(me.dvc(a, "exp", "show", "--json").stdout))
    exp_shown = {name: shown[name] for name in EXPERIMENTS}
    params = {n: exp_shown[n]["params"]["params.yaml"]["data"] for n in EXPERIMENTS}
    assert params["exp-lr"]["train"]["lr"] == 0.003 and params["exp-lr"]["model"]["cell"] == "rnn"
    assert params["exp-gru"]["train"]["lr"] == 0.001 and params["exp-gru"]["model"]["cell"] == "gru"
    # three different checkpoints, so restoring one is not restoring another by chance
    assert len({baseline["models/model.pt"], *exp_models.values()}) == 3

    me.dvc(a, "exp", "push", "origin", *EXPERIMENTS)  # git refs + cache to the default remote
    # no names: every experiment of HEAD (git refs already there, so only the cache moves)
    me.dvc(a, "exp", "push", "-r", "ssh", "origin")

    key_lines = ssh.keyfile.read_text().splitlines()[1:-1]  # the private key's body
    secrets = [s3.access_key_id, s3.secret_access_key, str(ssh.keyfile), *key_lines]
    local = (a / ".dvc" / "config.local").read_text()
    assert all(s in local for s in secrets[:3])  # they were used, and from there
    return Team(origin, a, home, s3, ssh, baseline, exp_models, exp_metrics, exp_shown, secrets)


def _tripwire(folder: Path) -> Path:
    """A `python` that records that it was called and fails: every stage command starts with
    `python`, so any stage run in clone B trips it (DVC itself runs as sys.executable)."""
    folder.mkdir()
    for name in ("python", "python3"):
        script = folder / name
        script.write_text(
            f'#!/bin/sh\necho "$0 $*" >> {folder / "tripped"}\n'
            'echo "tripwire: a stage ran: $*" >&2\nexit 97\n'
        )
        script.chmod(0o755)
    return folder / "tripped"


def _committed_secrets(me: Machine, repo: Path, secrets: list[str]) -> str:
    """`<commit>:<file>` for each file holding a secret, in any commit reachable from any ref
    (branches, remote-tracking refs, experiments' refs/exps/...)."""
    revs = me.git(repo, "rev-list", "--all").split()
    refs = me.git(repo, "for-each-ref", "--format=%(refname)").split()
    assert "refs/heads/main" in refs and any(r.startswith("refs/exps/") for r in refs), refs
    patterns = [arg for s in secrets for arg in ("-e", s)]
    found = me.run(["git", "grep", "-l", "-F", *patterns, *revs], repo, check=False)
    assert found.returncode in (0, 1), found.stderr  # 1: nothing found
    # the search itself finds what is committed: the remotes' URLs
    control = me.run(["git", "grep", "-l", "-F", "-e", "endpointurl", *revs], repo, check=False)
    assert ".dvc/config" in control.stdout, control
    return found.stdout


@pytest.mark.parametrize("remote", ["s3", "ssh"])
def test_fresh_clone_pulls_results_and_experiments_without_running_a_stage(team, remote, tmp_path):
    tripped = _tripwire(tmp_path / "tripwire")
    me = Machine(team.home, tmp_path / "dvc-site-cache-b", path_first=tripped.parent)
    b = tmp_path / "b"
    me.git(tmp_path, "clone", "-q", team.origin, b)
    assert not (b / ".dvc" / "config.local").exists()
    assert not (b / "models" / "model.pt").exists() and not (b / "data").exists()
    if remote == "s3":  # credentials from the environment, as AWS tools take them
        me.extra = {
            "AWS_ACCESS_KEY_ID": team.s3.access_key_id,
            "AWS_SECRET_ACCESS_KEY": team.s3.secret_access_key,
        }
    else:  # the key file in .dvc/config.local, and SSH as this clone's default remote
        me.dvc(b, "remote", "modify", "--local", "ssh", "keyfile", team.ssh.keyfile)
        me.dvc(b, "remote", "default", "--local", "ssh")

    # dvc pull: A's data, checkpoint and metrics, and nothing to run
    pull = me.dvc(b, "pull")
    assert stages_run(pull.stdout + pull.stderr) == []
    assert _outputs(b) == team.baseline
    assert UP_TO_DATE in me.dvc(b, "status").stdout
    predicted = me.run(
        [
            sys.executable,
            "-m",
            "agnews.serving.predict",
            "--json",
            "Stocks rally as oil prices fall",
        ],
        b,
    )
    [prediction] = [json.loads(line) for line in predicted.stdout.splitlines()]
    assert prediction["label"] in prediction["probabilities"], prediction

    # dvc exp pull: both experiments, with A's params and metrics
    names = list(EXPERIMENTS)
    me.dvc(b, "exp", "pull", "origin", *(names if remote == "s3" else ["--all-commits"]))
    shown = _experiments(json.loads(me.dvc(b, "exp", "show", "--json").stdout))
    assert {n: shown.get(n) for n in names} == team.exp_shown

    # dvc exp apply + dvc pull: the experiment's own checkpoint, from the remote, not retrained
    me.dvc(b, "exp", "apply", "exp-lr")
    pull = me.dvc(b, "pull")
    assert stages_run(pull.stdout + pull.stderr) == []
    assert _sha(b / "models" / "model.pt") == team.exp_models["exp-lr"]
    assert (b / "metrics" / "test.json").read_text() == team.exp_metrics["exp-lr"]
    assert UP_TO_DATE in me.dvc(b, "status").stdout
    repro = me.dvc(b, "repro")
    assert stages_run(repro.stdout + repro.stderr) == [] and UP_TO_DATE in repro.stdout
    assert not tripped.exists(), tripped.read_text()

    # credentials: in no commit of A, of the git remote, or of B
    repos = (team.a, team.origin, b)
    found = {repo.name: _committed_secrets(me, repo, team.secrets) for repo in repos}
    assert not any(found.values()), found

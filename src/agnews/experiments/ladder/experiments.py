"""The project's experiments as `dvc exp show --json` sees them, and the one rule for what a
ladder runs: an experiment of the same name and the same params is re-used, one of other params
is replaced only when asked (`--replace`), never silently."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agnews.errors import AgnewsError
from agnews.experiments.compare import flatten
from agnews.experiments.shell import dvc


def experiments(rev: str | None = None, commits: int = 1) -> dict[str, dict]:
    """Finished experiments based on commit `rev` (default HEAD) and its `commits - 1` first
    parents: name -> {"params" (nested), "metrics", "rev"}; a name run on several commits keeps
    the newest."""
    args = ["exp", "show", "--json", "-n", str(commits), *(["--rev", rev] if rev else [])]
    shown = json.loads(dvc(*args))
    runs = {}
    for entry in shown:
        for group in entry.get("experiments") or []:
            if (group.get("executor") or {}).get("state") in ("queued", "running", "failed"):
                continue  # not finished: its numbers would be the baseline's
            for exp in group.get("revs") or []:
                data = exp.get("data") or {}
                if exp.get("error") or not data.get("metrics"):
                    continue
                name = exp.get("name") or data["rev"]
                if name in runs:  # an older commit's run of the same name
                    continue
                runs[name] = {
                    "rev": data.get("rev"),
                    "params": ((data.get("params") or {}).get("params.yaml") or {}).get("data", {}),
                    "metrics": {k: v.get("data", {}) for k, v in data["metrics"].items()},
                }
    return runs


def matches(run: dict, wanted: dict[str, Any]) -> bool:
    flat = flatten(run["params"])
    return all(flat.get(k) == v for k, v in wanted.items())


@dataclass
class Plan:
    """What a ladder does with each wanted run (see plan_runs)."""

    run: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> overrides
    reuse: list[str] = field(default_factory=list)
    replace: list[str] = field(default_factory=list)  # existing experiments a new run replaces
    incomplete: list[str] = field(default_factory=list)  # same params, outputs not on the remote


def changed_params(run: dict, wanted: dict[str, Any]) -> str:
    """`key=theirs (wanted: ours)` for each param where `run` differs from `wanted`."""
    flat = flatten(run["params"])
    return ", ".join(
        f"{k}={flat.get(k)!r} (wanted {v!r})" for k, v in wanted.items() if flat.get(k) != v
    )


def plan_runs(
    wanted: dict[str, dict[str, Any]],
    existing: dict[str, dict],
    replace: bool = False,
    where: str = "on this commit",
    complete: Callable[[dict], bool] | None = None,
) -> Plan:
    """The one rule, for both backends: for each wanted run (name -> overrides), an existing
    experiment of that name (`experiments()`-shaped) with the same params is re-used, unless
    `complete(run)` says its outputs are missing (then it is run again, replacing it); one of
    other params is replaced only with `replace`, else the ladder stops before running
    anything, naming it (a teammate's experiment is never deleted unasked)."""
    plan, conflicts = Plan(), []
    for name, overrides in wanted.items():
        run = existing.get(name)
        if run is None:
            plan.run[name] = overrides
        elif matches(run, overrides):
            if complete is None or complete(run):
                plan.reuse.append(name)
            else:
                plan.incomplete.append(name)
                plan.replace.append(name)
                plan.run[name] = overrides
        elif replace:
            plan.replace.append(name)
            plan.run[name] = overrides
        else:
            conflicts.append(f"  {name}: {changed_params(run, overrides)}")
    if conflicts:
        raise AgnewsError(
            f"experiments of the same name but other params exist {where}; nothing was run "
            "and nothing deleted. Pass --replace to replace them, or remove or rename them "
            "first (`dvc exp remove`, `dvc exp rename`):\n" + "\n".join(conflicts)
        )
    return plan


def outputs_missing_on_remote(
    rev: str, root: str | Path = ".", remote: str | None = None
) -> list[str]:
    """The cached outputs of commit `rev` (an experiment's) that the DVC remote lacks, by
    path: an experiment whose git ref was pushed but whose outputs never reached the remote
    (`dvc exp push` pushes the ref first) has some. Reads `rev`'s dvc.lock, not the workspace."""
    from dvc.repo import Repo

    missing: set[str] = set()
    with Repo(str(root)) as repo:
        for _ in repo.brancher(revs=[rev], workspace=False):
            used = repo.index.used_objs(remote=remote, force=True, push=True)
            for odb, objs in used.items():
                if odb is not None:  # imported from elsewhere: not this remote's to hold
                    continue
                status = repo.cloud.status(objs, remote=remote)
                for hash_info in [*status.new, *status.missing]:
                    missing.add(hash_info.obj_name or hash_info.value)
    return sorted(missing)

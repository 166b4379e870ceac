"""The project's experiments as `dvc exp show --json` sees them, and the `dvc` runner."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from agnews.errors import AgnewsError
from agnews.experiments.compare import flatten


def run_dvc(*args: str, capture: bool = True, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        capture_output=capture,
        text=True,
        check=False,
        env=env,
    )
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout or "").strip() if capture else ""
        raise AgnewsError(f"dvc {' '.join(args)} failed: {detail}")
    return proc.stdout if capture else ""


def experiments(rev: str | None = None, commits: int = 1) -> dict[str, dict]:
    """Finished experiments based on commit `rev` (default HEAD) and its `commits - 1` first
    parents: name -> {"params" (nested), "metrics", "rev"}; a name run on several commits keeps
    the newest."""
    args = ["exp", "show", "--json", "-n", str(commits), *(["--rev", rev] if rev else [])]
    shown = json.loads(run_dvc(*args))
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


def still_to_run(wanted: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The runs of `wanted` (name -> overrides) with no finished experiment of the same params
    here; those that have one are re-used (and said so), and a same-named experiment of other
    params is removed so that the new run can take its name."""
    existing = experiments()
    todo = {}
    for name, overrides in wanted.items():
        if name in existing and matches(existing[name], overrides):
            print(f"ladder: re-using experiment {name}")
            continue
        if name in existing:
            run_dvc("exp", "remove", name)
        todo[name] = overrides
    return todo

"""dvc.yaml cannot drift from the code: each stage lists as deps every module of src/agnews its
script imports, directly or through other modules (package __init__ files included), and
every path comes from params.yaml."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml
from helpers import ROOT

SRC = ROOT / "src"


def _module_file(module: str) -> Path:
    path = SRC.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _imported_modules(path: Path) -> set[str]:
    """agnews modules `path` imports (`from agnews.x import y` counts agnews and agnews.x, and
    agnews.x.y when y is itself a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] != "agnews":
                continue
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__, a/b, ...
                prefix = ".".join(parts[:i])
                if _module_file(prefix).is_file():
                    found.add(prefix)
    return found


def transitive_agnews_files(script: Path) -> set[str]:
    todo, seen = list(_imported_modules(script)), set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo += _imported_modules(_module_file(module))
    return {_module_file(m).relative_to(ROOT).as_posix() for m in seen}


STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


@pytest.mark.parametrize("stage", list(STAGES))
def test_every_imported_module_is_a_dep(stage):
    spec = STAGES[stage]
    script = re.search(r"python (stages/\S+\.py)", spec["cmd"]).group(1)
    needed = transitive_agnews_files(ROOT / script) | {script}
    deps = set(spec["deps"])
    assert not needed - deps, f"{stage}: add to its deps: {sorted(needed - deps)}"
    listed_modules = {d for d in deps if d.startswith("src/")}
    assert not listed_modules - needed, (
        f"{stage}: deps it does not import: {listed_modules - needed}"
    )


def test_the_check_finds_a_missing_transitive_module(tmp_path):
    """The walk itself: evaluate's script reaches atomic.py only through other modules."""
    files = transitive_agnews_files(ROOT / "stages" / "evaluate.py")
    assert "src/agnews/atomic.py" in files and "src/agnews/__init__.py" in files
    assert "src/agnews/model/training.py" not in files


def test_paths_come_from_params():
    """No stage names a data or output path literally: they are `${paths.*}`."""
    for stage, spec in STAGES.items():
        for entry in [*spec.get("outs", []), *spec.get("metrics", []), *spec.get("plots", [])]:
            path = entry if isinstance(entry, str) else next(iter(entry))
            assert path.startswith("${paths."), (stage, path)
        for dep in spec["deps"]:
            assert dep.startswith(("${paths.", "stages/", "src/")), (stage, dep)

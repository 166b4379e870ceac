"""Named notebook presets (presets.yaml), run as DVC experiments.

A preset is relative to the *committed* params.yaml (HEAD's, not the workspace's, which the
last `dvc exp run` may have left changed): `run` sets every parameter, the preset's value else
the committed one, so the same preset is the same experiment whatever ran before it. An unknown
preset, key or value fails before DVC is called: nothing is queued or run.

    python -m agnews presets                         # list presets with their notebook cells
    python -m agnews presets run gru_max             # dvc exp run -n gru_max -S <every param>
    python -m agnews presets run gru_max -S train.epochs=2 --queue   # extra -S and dvc options
    python -m agnews presets show gru_max            # the -S arguments, one per line
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from agnews.config import Config, config_from_dict, load_yaml
from agnews.errors import ConfigError
from agnews.experiments import shell

PRESETS_FILE = Path("presets.yaml")


def load_presets(path: str | Path = PRESETS_FILE) -> dict[str, dict[str, Any]]:
    path = Path(path)
    try:
        presets = load_yaml(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found (run from the project root)") from None
    if not isinstance(presets, dict):
        raise ConfigError(f"{path}: expected a mapping of preset names")
    for name, preset in presets.items():
        if not isinstance(preset, dict) or not isinstance(preset.get("params"), dict):
            raise ConfigError(f"{path}: preset {name!r} needs a `params` mapping")
    return presets


def get_preset(presets: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    if name not in presets:
        raise ConfigError(f"unknown preset {name!r}; valid presets: {', '.join(presets)}")
    return presets[name]


def apply_overrides(params: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of `params` with dotted-key `overrides` applied (keys must exist)."""
    out = copy.deepcopy(params)
    for dotted, value in overrides.items():
        section, _, key = dotted.partition(".")
        if section not in out or not isinstance(out[section], dict) or key not in out[section]:
            raise ConfigError(f"override {dotted!r}: no such parameter in params.yaml")
        out[section][key] = value
    return out


def preset_config(presets: dict[str, dict[str, Any]], name: str, base: dict[str, Any]) -> Config:
    """The validated config preset `name` yields on top of `base` params."""
    return config_from_dict(apply_overrides(base, full_overrides(presets, name, base)))


def _format_value(value: Any) -> str:
    """`value` as DVC's `-S key=value` parses it back (YAML): strings that would read as
    something else (`123e4`, `true`, `null`, ``) are quoted."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and (value == "" or _parse_value(value) != value):
        return json.dumps(value)
    return str(value)


def _parse_value(text: str) -> Any:
    """A `-S` value as DVC reads it (YAML 1.2, like params.yaml)."""
    parsed = load_yaml(f"v: {text}" if text else "v:")
    return parsed["v"] if isinstance(parsed, dict) else text


def full_overrides(
    presets: dict[str, dict[str, Any]], name: str, base: dict[str, Any]
) -> dict[str, Any]:
    """Every key any preset touches: preset `name`'s value, else `base`'s (committed params)."""
    touched = list(dict.fromkeys(k for p in presets.values() for k in p["params"]))
    own = get_preset(presets, name)["params"]
    out = {}
    for dotted in touched:
        section, _, key = dotted.partition(".")
        if dotted in own:
            out[dotted] = own[dotted]
        elif section in base and key in base[section]:
            out[dotted] = base[section][key]
        else:
            raise ConfigError(f"preset key {dotted!r}: no such parameter in params.yaml")
    return out


def preset_params(
    presets: dict[str, dict[str, Any]], name: str, base: dict[str, Any]
) -> dict[str, Any]:
    """Every parameter of `base` (the committed params) as a dotted key: preset `name`'s value,
    else `base`'s. An experiment run with all of them depends on nothing left in the workspace."""
    own = get_preset(presets, name)["params"]
    apply_overrides(base, own)  # every key the preset names must exist
    return {
        f"{section}.{key}": own.get(f"{section}.{key}", value)
        for section, values in base.items()
        for key, value in values.items()
    }


def parse_sets(items: list[str], flag: str = "-S") -> dict[str, Any]:
    """`["model.cell=gru", ...]` (the `-S` arguments, or the ladder's `--set`: `flag`) as
    {dotted key: parsed value}."""
    out = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or "." not in key:
            raise ConfigError(f"{flag} {item!r}: expected section.key=value")
        out[key.strip()] = _parse_value(text.strip())
    return out


def run_command(
    presets: dict[str, dict[str, Any]],
    name: str,
    base: dict[str, Any],
    sets: list[str],
    exp_name: str | None,
    dvc_args: list[str],
) -> list[str]:
    """The `dvc exp run` command that runs preset `name` (with extra `sets`) as experiment
    `exp_name` (default: the preset's name), validated: a bad name, key or value raises."""
    params = {**preset_params(presets, name, base), **parse_sets(sets)}
    config_from_dict(apply_overrides(base, params))  # every value valid, every key known
    return ["dvc", "exp", "run", "-n", exp_name or name, *overrides_args(params), *dvc_args]


def overrides_args(overrides: dict[str, Any]) -> list[str]:
    """`-S key=value` arguments for `dvc exp run`."""
    args = []
    for key, value in overrides.items():
        args += ["-S", f"{key}={_format_value(value)}"]
    return args


def committed_params(path: str | Path) -> dict[str, Any]:
    """params.yaml as committed at HEAD (the baseline of `dvc exp run`): the workspace file's
    keys with HEAD's values wherever HEAD has the key, so what an earlier `dvc exp run -S` left
    in the workspace is undone, while a param added since HEAD (not committed yet) keeps its
    workspace value. Without git (or HEAD's file), the workspace file as it is."""
    path = Path(path)
    params = load_yaml(path.read_text(encoding="utf-8"))
    try:
        proc = shell.run(["git", "show", f"HEAD:./{path.name}"], cwd=path.parent, check=False)
    except OSError:  # no git
        return params
    if proc.returncode != 0:
        return params
    text = proc.stdout
    head = load_yaml(text)
    if not isinstance(params, dict) or not isinstance(head, dict):
        return params
    return {
        section: (
            {k: head[section].get(k, v) for k, v in values.items()}
            if isinstance(values, dict) and isinstance(head.get(section), dict)
            else values
        )
        for section, values in params.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--file", default=str(PRESETS_FILE), help="presets file")
    parser.add_argument("--params", default="params.yaml", help="params file (HEAD's is used)")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("list", help="list the presets (the default)")
    for verb, what in (("run", "run a preset as a DVC experiment"), ("show", "print its -S")):
        p = sub.add_parser(verb, help=what)
        p.add_argument("name", help="preset name (python -m agnews presets lists them)")
        p.add_argument(
            "-S",
            "--set-param",
            dest="sets",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="an extra override on top of the preset (repeatable)",
        )
        p.add_argument("-n", "--name", dest="exp_name", help="experiment name (default: preset)")
    args, dvc_args = parser.parse_known_args(argv)
    if dvc_args and args.command != "run":
        parser.error(f"unrecognized arguments: {' '.join(dvc_args)}")
    try:
        presets = load_presets(args.file)
        if args.command in (None, "list"):
            for name, preset in presets.items():
                print(f"{name:26s} {preset.get('notebook', '')}")
            return 0
        cmd = run_command(
            presets, args.name, committed_params(args.params), args.sets, args.exp_name, dvc_args
        )
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "show":
        print("\n".join(f"-S {a}" for a in cmd[cmd.index("-S") + 1 :: 2]))
        return 0
    print(f"preset {args.name}: every param from HEAD's params.yaml, the preset's and -S values")
    sys.stdout.flush()
    return subprocess.run([sys.executable, "-m", *cmd], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())

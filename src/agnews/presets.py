"""Named notebook presets (presets.yaml) as `dvc exp run -S` overrides.

A preset is relative to the *committed* params.yaml: its arguments set every key that any
preset touches (the preset's value, else the committed one), so running presets one after
another in the same workspace never inherits a previous preset's settings.

    python -m agnews.presets                 # list presets with their notebook cells
    python -m agnews.presets gru_max         # print "-S model.cell=gru -S ..." for dvc exp run
    dvc exp run -n gru_max $(python -m agnews.presets gru_max)
"""

from __future__ import annotations

import argparse
import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

from agnews.config import Config, config_from_dict, load_yaml
from agnews.errors import ConfigError

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
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


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


def overrides_args(overrides: dict[str, Any]) -> list[str]:
    """`-S key=value` arguments for `dvc exp run`."""
    args = []
    for key, value in overrides.items():
        args += ["-S", f"{key}={_format_value(value)}"]
    return args


def committed_params(path: str | Path) -> dict[str, Any]:
    """params.yaml as committed at HEAD (the baseline of `dvc exp run`), else as on disk."""
    try:
        text = subprocess.run(
            ["git", "show", f"HEAD:{Path(path).as_posix()}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        text = Path(path).read_text(encoding="utf-8")
    return load_yaml(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", help="preset to print as -S overrides")
    parser.add_argument("--file", default=str(PRESETS_FILE), help="presets file")
    parser.add_argument("--params", default="params.yaml", help="params file checked against")
    args = parser.parse_args(argv)
    try:
        presets = load_presets(args.file)
        if args.name is None:
            for name, preset in presets.items():
                print(f"{name:26s} {preset.get('notebook', '')}")
            return 0
        base = committed_params(args.params)
        preset_config(presets, args.name, base)  # fail now, not mid-experiment
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(" ".join(overrides_args(full_overrides(presets, args.name, base))))
    return 0


if __name__ == "__main__":
    sys.exit(main())

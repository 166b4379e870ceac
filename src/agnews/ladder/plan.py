"""What the ladder runs: experiment name -> its `-S` overrides (presets x seeds x --set)."""

from __future__ import annotations

from typing import Any

from agnews.config import config_from_dict, load_yaml
from agnews.errors import ConfigError
from agnews.presets import apply_overrides, full_overrides


def parse_sets(sets: list[str]) -> dict[str, Any]:
    """`key=value` strings (YAML values, as `dvc exp run -S` reads them)."""
    out = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise ConfigError(f"--set {item!r}: expected section.key=value")
        out[key] = load_yaml(value)
    return out


def wanted_params(
    names: list[str],
    presets: dict,
    base: dict,
    sets: dict[str, Any],
    seeds: list[int] | None = None,
) -> dict[str, dict[str, Any]]:
    """Experiment name -> its overrides: each preset's full overrides plus `sets`, and with
    `seeds` one run per seed (named `<preset>` at the preset's own train.seed, else
    `<preset>-s<seed>`). All validated now: a bad --set or preset fails before anything is
    queued."""
    wanted = {}
    for name in names:
        overrides = {**full_overrides(presets, name, base), **sets}
        own_seed = overrides.get("train.seed", base["train"]["seed"])
        for seed in seeds or [own_seed]:
            run = {**overrides, "train.seed": seed} if seeds else overrides
            try:
                config_from_dict(apply_overrides(base, run))
            except ConfigError as exc:
                raise ConfigError(f"preset {name} with the --set values: {exc}") from None
            wanted[name if seed == own_seed else f"{name}-s{seed}"] = run
    return wanted

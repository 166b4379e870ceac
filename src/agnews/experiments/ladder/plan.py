"""What the ladder runs: experiment name -> its `-S` overrides (presets x seeds x --set)."""

from __future__ import annotations

import itertools
import re
from typing import Any

from agnews.config import config_from_dict, load_yaml
from agnews.errors import ConfigError
from agnews.experiments.presets import apply_overrides, preset_params
from agnews.experiments.presets import parse_sets as presets_parse_sets


def parse_sets(sets: list[str]) -> dict[str, Any]:
    """`--set key=value` strings (YAML values, as `dvc exp run -S` reads them)."""
    return presets_parse_sets(sets, flag="--set")


def split_values(value: str) -> list[str]:
    """`a,b` -> ["a", "b"]: the commas outside brackets and quotes (`[1,2]` stays one value)."""
    parts, depth, quote, current = [], 0, "", ""
    for char in value:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += char
    return [*parts, current]


def parse_grid(sets: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """Every combination of the `--set` values (`model.hidden_size=128,256` gives two, as
    `dvc exp run -S` does), each with its experiment-name suffix (`-hidden_size128`; "" when
    no --set has several values)."""
    axes: list[tuple[str, list[Any]]] = []
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise ConfigError(f"--set {item!r}: expected section.key=value")
        axes.append((key, [load_yaml(v) for v in split_values(value)]))
    grid = []
    for values in itertools.product(*(vals for _, vals in axes)):
        suffix = "".join(
            f"-{key.rpartition('.')[2]}{re.sub(r'[^A-Za-z0-9._]+', '_', str(value))}"
            for (key, vals), value in zip(axes, values, strict=True)
            if len(vals) > 1
        )
        grid.append((suffix, {key: value for (key, _), value in zip(axes, values, strict=True)}))
    return grid


def wanted_params(
    names: list[str],
    presets: dict,
    base: dict,
    sets: dict[str, Any],
    seeds: list[int] | None = None,
    grid: list[tuple[str, dict[str, Any]]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Experiment name -> its overrides: every param (the preset's value, else `base`'s: the
    committed params.yaml, so nothing a workspace holds leaks in, and a re-used run must match
    on all of them) plus `sets`, and with
    `seeds` one run per seed (named `<preset>` at the preset's own train.seed, else
    `<preset>-s<seed>`). All validated now: a bad --set or preset fails before anything is
    queued. With `grid` (parse_grid) instead of `sets`, one run per combination, its name
    suffix after the preset's name (`rnn_max-hidden_size128-s1`)."""
    wanted = {}
    for name, (suffix, combo) in itertools.product(names, grid or [("", sets)]):
        overrides = {**preset_params(presets, name, base), **combo}
        own_seed = overrides.get("train.seed", base["train"]["seed"])
        for seed in seeds or [own_seed]:
            run = {**overrides, "train.seed": seed} if seeds else overrides
            try:
                config_from_dict(apply_overrides(base, run))
            except ConfigError as exc:
                raise ConfigError(f"preset {name} with the --set values: {exc}") from None
            wanted[f"{name}{suffix}" + ("" if seed == own_seed else f"-s{seed}")] = run
    return wanted

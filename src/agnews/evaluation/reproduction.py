"""Is a rerun's test accuracy the published one, or inside the published baseline's seed
spread? The last line of `./run.sh`.

    python -m agnews.evaluation.reproduction --now metrics/test.json \
        --published <(git show HEAD:metrics/test.json) --spread reports/baseline_seeds.json

Byte-identical results need the publishing CPU's kernels (README "Determinism"); on another CPU
the rerun differs the way a run with another seed does, so a difference within the spread of
the baseline's test accuracy over seeds (mean ± 2 sd of bench/baseline_seeds.py's runs) is
noise, and one outside it is worth a look.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

SDS = 2.0  # a difference inside mean ± 2 sd of the seed runs is called noise


def verdict(now: float, published: float, spread: dict[str, Any] | None) -> str:
    """One line: the rerun's test accuracy, the published one, and whether the difference is
    inside the baseline's seed spread (`spread`: bench/baseline_seeds.py's JSON)."""
    line = f"test accuracy {now:.6f} (published: {published:.6f})"
    if now == published:
        return line + ": reproduced exactly"
    diff = now - published
    if spread is None:
        return line + f": differs by {diff:+.4f}; no seed spread recorded to judge it"
    acc = spread["test_acc"]
    low, high = acc["mean"] - SDS * acc["sd"], acc["mean"] + SDS * acc["sd"]
    where = "inside" if low <= now <= high else "OUTSIDE"
    threads = spread["threads"]
    plural = "" if threads == 1 else "s"
    return (
        line + f": differs by {diff:+.4f}, {where} the baseline's spread over "
        f"{len(spread['runs'])} seeds ({acc['mean']:.4f} ± {SDS:g} sd = {low:.4f}..{high:.4f}, "
        f"seen {acc['min']:.4f}..{acc['max']:.4f}; {threads} torch thread{plural})"
        + ("" if where == "inside" else ": not explained by the seed alone")
    )


def _accuracy(path: str) -> float:
    return float(json.loads(Path(path).read_text(encoding="utf-8"))["accuracy"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--now", required=True, help="this run's test metrics JSON")
    parser.add_argument("--published", required=True, help="the published test metrics JSON")
    parser.add_argument("--spread", required=True, help="bench/baseline_seeds.py's JSON")
    args = parser.parse_args(argv)
    spread_path = Path(args.spread)
    spread = json.loads(spread_path.read_text(encoding="utf-8")) if spread_path.is_file() else None
    print(verdict(_accuracy(args.now), _accuracy(args.published), spread))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m agnews COMMAND [ARGS]`: the project's commands, one entry point.

    python -m agnews presets ...   notebook presets as DVC experiments (agnews.experiments.presets)
    python -m agnews ladder ...    every preset, its report (agnews.experiments.ladder)
    python -m agnews compare ...   experiments side by side (agnews.experiments.compare)
    python -m agnews peers ...     linear peers on the same rows (agnews.experiments.peers)
    python -m agnews predict ...   classify texts with a checkpoint (agnews.serving.predict)
    python -m agnews serve ...     the HTTP service (agnews.serving.serve)

`python -m agnews COMMAND --help` describes each; the modules run alone too
(`python -m agnews serve`).
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "presets": "agnews.experiments.presets",
    "ladder": "agnews.experiments.ladder.command",
    "compare": "agnews.experiments.compare",
    "peers": "agnews.experiments.peers",
    "predict": "agnews.serving.predict",
    "serve": "agnews.serving.serve",
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in COMMANDS:
        given = f"unknown command {args[0]!r}; " if args and args[0] not in ("-h", "--help") else ""
        print(f"{given}usage: python -m agnews {{{','.join(COMMANDS)}}} [ARGS]", file=sys.stderr)
        print(__doc__, file=sys.stderr)
        return 0 if args and args[0] in ("-h", "--help") else 2
    sys.argv[0] = f"python -m agnews {args[0]}"
    return importlib.import_module(COMMANDS[args[0]]).main(args[1:])


if __name__ == "__main__":
    sys.exit(main())

"""The one argument parser every stage shares: `--params` plus the stage's own paths.

dvc.yaml passes each path from params.yaml (`${paths.*}`), so paths are written once. User
errors (bad params, bad data) print one `error:` line and exit 2; no traceback, no half output.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from agnews.config import Config, load_params
from agnews.errors import AgnewsError


def run_stage(
    main: Callable[[argparse.Namespace, Config], None], doc: str, paths: dict[str, str]
) -> None:
    """Parse `--params` and the required path flags in `paths` (flag -> help), validate the
    whole params file, then call `main(args, config)`."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--params", default="params.yaml", help="params file (default: %(default)s)"
    )
    for flag, help_text in paths.items():
        parser.add_argument(flag, required=True, help=help_text)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        main(args, load_params(args.params))
    except AgnewsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("error: interrupted; outputs were not written", file=sys.stderr)
        sys.exit(130)

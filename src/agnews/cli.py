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
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted; outputs were not written", 130)
    except MemoryError:
        fail("out of memory; lower the model sizes or batch sizes in params.yaml")
    except OSError as exc:  # a full disk, a read-only folder, ...: outputs are written atomically
        where = f"{exc.filename}: " if exc.filename else ""
        fail(f"{where}{exc.strerror or exc}; outputs were not written")
    except RuntimeError as exc:
        if "out of memory" not in str(exc).lower():  # a bug: keep its traceback
            raise
        fail(
            "out of memory on the device; lower model sizes, train.batch_size or "
            f"train.eval_batch_size ({str(exc).splitlines()[0]})"
        )


def fail(message: str, code: int = 2) -> None:
    """Print one `error:` line and exit (no traceback: the message says what to change)."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)

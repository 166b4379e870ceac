"""The training code the published ladder runs with, frozen on purpose.

The complete ladder takes CPU-hours and must come from one training-code version: `code_hash`
(agnews.provenance: SHA-256 over the prepare and train stages' .py deps). Every change to
those files after its first run turns its runs into older code. So the hash is named in
FROZEN_FILE, and the test suite fails (tests/test_frozen_code.py) when the code's hash is
neither that one nor one acknowledged there: a training change is a deliberate act, written
down with its reason, never a stray edit.

FROZEN_FILE (YAML):
    frozen: 0123456789ab          # the hash the published ladder's runs were made with
    acknowledged:                 # later versions, each changed on purpose
      - hash: ba9876543210
        why: "..."
"""

from __future__ import annotations

from pathlib import Path

import yaml

from agnews.provenance import code_hash, project_root

FROZEN_FILE = "reports/ladder_code.yaml"


def frozen_hashes(root: Path) -> tuple[str, dict[str, str]]:
    """(the frozen hash, {acknowledged hash: why}) from `root`/FROZEN_FILE."""
    data = yaml.safe_load((root / FROZEN_FILE).read_text(encoding="utf-8"))
    acknowledged = {str(a["hash"]): str(a["why"]) for a in data.get("acknowledged") or []}
    return str(data["frozen"]), acknowledged


def unacknowledged_change(root: str | Path | None = None) -> str | None:
    """None when the training code is the frozen version or an acknowledged one; else what
    changed and how to acknowledge it."""
    root = Path(root) if root is not None else project_root()
    current = code_hash(root)
    frozen, acknowledged = frozen_hashes(root)
    if current == frozen or current in acknowledged:
        return None
    return (
        f"the training code changed: code_hash {current}, but the published ladder ran "
        f"{frozen} ({FROZEN_FILE}). Every ladder run made before this change is older code "
        "now. If the change is deliberate, add it to that file's acknowledged list, "
        f'with its reason: `- {{hash: "{current}", why: "..."}}`'
    )

#!/usr/bin/env bash
# Set everything up (the Debian packages of scripts/debian-packages.txt, the test tools), then lint and run the whole test suite, including the
# end-to-end `dvc repro` / `dvc exp run` test on the real-data sample. Extra arguments go to pytest.
# The test files run in TEST_WORKERS processes (pytest-xdist, default 2: a file's tests stay in one
# process, so a module's fixtures are built once); TEST_WORKERS=0 runs them in this process.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup-system.sh
source scripts/setup.sh requirements-dev.txt
ruff check .
ruff format --check .
exec pytest -n "${TEST_WORKERS:-2}" --dist loadfile "$@"

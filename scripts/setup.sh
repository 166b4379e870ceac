# Sourced by run.sh and test.sh: create .venv with the pinned packages and install agnews into it.
# Re-installs only when a requirements file changed. Usage: source scripts/setup.sh [requirements file]
set -euo pipefail
requirements="${1:-requirements.txt}"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
stamp=".venv/.agnews-installed-$(cat requirements.txt "$requirements" pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
  rm -f .venv/.agnews-installed-*
  touch "$stamp"
fi
export PATH="$PWD/.venv/bin:$PATH"

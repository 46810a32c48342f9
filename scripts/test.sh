#!/usr/bin/env bash
# Run the whole test suite (sets the machine up first, so it works on a fresh clone).
set -euo pipefail
cd "$(dirname "$0")/.."
CUSTODY_WITH_POSTGRES=1 bash scripts/setup.sh
echo "==> ruff";  .venv/bin/ruff check src tests bench
echo "==> mypy";  .venv/bin/mypy
echo "==> pytest"; .venv/bin/python -m pytest -q "$@"

#!/usr/bin/env bash
# The README's second command: set up and run the whole test suite.
# PostgreSQL and Redis are started by the test setup (real servers from PyPI
# wheels) unless DATABASE_URL / REDIS_URL are given.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
bash scripts/install-tools.sh
export PATH="$PWD/.tools/bin:$PWD/.venv/bin:$PATH"
.venv/bin/ruff check .
exec .venv/bin/pytest "$@"

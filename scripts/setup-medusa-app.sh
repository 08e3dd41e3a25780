#!/usr/bin/env bash
# Install and build the Medusa app in images/medusa natively (Node 20+; the
# image runs Node 22), the way its Dockerfile does, for the native test
# (provisioning/tests/test_medusa_app.py) and for local hacking. Idempotent
# and quick when nothing changed:
#   - `npm ci` only when node_modules does not match package-lock.json
#     (the npm cache in ~/.npm is reused, so a re-install is mostly offline);
#   - `npm run build` (medusa build + storefront copy) only when a source
#     file changed since the last build.
# Afterwards .medusa/server is the same tree the image runs from.
set -euo pipefail

APP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../images/medusa" && pwd)"
cd "$APP_DIR"
export MEDUSA_DISABLE_TELEMETRY=true

# Parallel test workers may call this at once: one installs, the others wait.
mkdir -p "$APP_DIR/.medusa"
exec 9>"$APP_DIR/.medusa/setup.lock"
flock 9

command -v node >/dev/null || { echo "setup-medusa-app: node is not installed (need Node 20+)" >&2; exit 1; }
command -v npm >/dev/null || { echo "setup-medusa-app: npm is not installed" >&2; exit 1; }

hash_of() {
  # A stable fingerprint of the given files (sorted, content and name).
  sha256sum "$@" | sha256sum | cut -d' ' -f1
}

lock_hash="$(hash_of package.json package-lock.json)"
lock_stamp="node_modules/.storeplatform-lock"
if [[ -f "$lock_stamp" && "$(cat "$lock_stamp")" == "$lock_hash" ]]; then
  echo "setup-medusa-app: node_modules is up to date with package-lock.json"
else
  echo "setup-medusa-app: npm ci"
  npm ci --prefer-offline --no-audit --no-fund
  echo "$lock_hash" > "$lock_stamp"
fi

mapfile -t sources < <(find medusa-config.ts tsconfig.json package-lock.json src storefront bin scripts -type f | LC_ALL=C sort)
build_hash="$(hash_of "${sources[@]}")"
build_stamp=".medusa/server/.storeplatform-build"
if [[ -f "$build_stamp" && "$(cat "$build_stamp")" == "$build_hash" ]]; then
  echo "setup-medusa-app: .medusa/server is up to date"
else
  echo "setup-medusa-app: npm run build"
  npm run build
  echo "$build_hash" > "$build_stamp"
fi

# The image installs production dependencies inside .medusa/server; natively
# the app's own node_modules serves the same purpose.
if [[ ! -e .medusa/server/node_modules ]]; then
  ln -s ../../node_modules .medusa/server/node_modules
fi
echo "setup-medusa-app: ready in $APP_DIR/.medusa/server"

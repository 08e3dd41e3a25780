#!/bin/sh
# First-start setup of one Medusa store. The chart runs this as the server
# pod's init container on every start; the native test
# (provisioning/tests/test_medusa_app.py) runs it the same way. Every step is
# safe to repeat:
#   1. wait for PostgreSQL, then apply pending migrations (db:migrate);
#   2. seed the region, shipping, payment, API key and products, creating only
#      what is missing (src/scripts/seed.ts);
#   3. create the admin user, tolerating one that already exists.
#
# It runs from the built server directory (.medusa/server, the image's
# WORKDIR). Environment: DATABASE_URL, MEDUSA_ADMIN_EMAIL,
# MEDUSA_ADMIN_PASSWORD, plus what medusa-config.ts reads.
set -eu

cd "${MEDUSA_APP_DIR:-$(pwd)}"
MEDUSA="${MEDUSA_BIN:-./node_modules/.bin/medusa}"
attempts="${SETUP_DB_ATTEMPTS:-30}"

: "${DATABASE_URL:?DATABASE_URL must be set}"
: "${MEDUSA_ADMIN_EMAIL:?MEDUSA_ADMIN_EMAIL must be set}"
: "${MEDUSA_ADMIN_PASSWORD:?MEDUSA_ADMIN_PASSWORD must be set}"

log() {
  echo "setup: $*"
}

# PostgreSQL starts next to us and may not accept connections yet. Retrying
# the migration itself covers both "not up yet" and a lost first attempt.
n=1
until "$MEDUSA" db:migrate; do
  if [ "$n" -ge "$attempts" ]; then
    log "db:migrate failed $n times, giving up"
    exit 1
  fi
  log "db:migrate failed (attempt $n of $attempts), retrying in 5s"
  n=$((n + 1))
  sleep 5
done
log "migrations applied"

"$MEDUSA" exec ./src/scripts/seed.js
log "seed done"

# `medusa user` exits non-zero when the e-mail is taken; that is the only
# failure we accept, so look for it in the output rather than ignoring errors.
if output=$("$MEDUSA" user -e "$MEDUSA_ADMIN_EMAIL" -p "$MEDUSA_ADMIN_PASSWORD" 2>&1); then
  log "admin user created"
else
  status=$?
  if printf '%s' "$output" | grep -qi "already exists"; then
    log "admin user already exists"
  else
    printf '%s\n' "$output" >&2
    log "creating the admin user failed with exit code $status"
    exit "$status"
  fi
fi
log "done"

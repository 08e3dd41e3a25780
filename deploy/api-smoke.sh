#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Drives one store through its whole life over the platform's public API:
# get a token, create a store, wait until it is ready (and print how long
# that took from the 202, and whether the store came from the warm pool),
# read its credentials, optionally run a hook against the live store
# (e2e-cluster.sh places an order there), delete it and wait until it is gone.
#
#   deploy/api-smoke.sh BASE_URL USERNAME PASSWORD ENGINE
#   BASE_URL=http://127.0.0.1:8000 USERNAME=admin PASSWORD=... ENGINE=medusa deploy/api-smoke.sh
#
# Works against a cluster install and against the local stack
# (`python manage.py runserver` + worker). Needs bash, curl and python3.
#
# Environment (all optional):
#   STORE_NAME       store display name (default "Smoke <engine> <random>")
#   READY_TIMEOUT    seconds to wait for status ready (default 900)
#   DELETE_TIMEOUT   seconds to wait for the store to be gone (default 600)
#   POLL_INTERVAL    seconds between polls (default 5)
#   AUTH_SCHEME      Authorization scheme for the token (default: Token)
#   ON_READY         command run once the store is ready, with STORE_ID,
#                    STORE_JSON, STOREFRONT_URL, CREDENTIALS_JSON and ENGINE
#                    exported; its failure fails the run (the store is still
#                    deleted)
#   KEEP_STORE=1     do not delete the store at the end
#   EXPECT_CLAIM=1   fail unless the create claims a store from the warm pool
#   CURL_EXTRA_ARGS  extra curl arguments, e.g. "--connect-to ::127.0.0.1:8080"
set -euo pipefail

SCRIPT_NAME="api-smoke"
# shellcheck source=lib/http.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/http.sh"

BASE_URL="${1:-${BASE_URL:-}}"
USERNAME="${2:-${USERNAME:-}}"
PASSWORD="${3:-${PASSWORD:-}}"
ENGINE="${4:-${ENGINE:-}}"
READY_TIMEOUT="${READY_TIMEOUT:-900}"
DELETE_TIMEOUT="${DELETE_TIMEOUT:-600}"
POLL_INTERVAL="${POLL_INTERVAL:-5}"
AUTH_SCHEME="${AUTH_SCHEME:-Token}"

[[ -n "$BASE_URL" && -n "$USERNAME" && -n "$PASSWORD" && -n "$ENGINE" ]] ||
    die "usage: $0 BASE_URL USERNAME PASSWORD ENGINE (or the same names as environment variables)"
need curl python3
BASE_URL="${BASE_URL%/}"

WORK="$(mktemp -d)"
STORE_ID=""
cleanup() {
    local status=$?
    if [[ -n "$STORE_ID" && "${KEEP_STORE:-0}" != 1 && "${DELETED:-0}" != 1 ]]; then
        log "cleaning up: deleting store $STORE_ID after a failure"
        http DELETE "$BASE_URL/api/stores/$STORE_ID/" "" --header "Authorization: $AUTH_SCHEME $TOKEN" || true
    fi
    rm -rf "$WORK" "$HTTP_BODY" "$HTTP_BODY.err"
    exit "$status"
}
trap cleanup EXIT

# A platform restarting behind its ingress answers 502-504 or nothing for a
# moment; polls ride that out until their deadline.
transient() { [[ "$HTTP_STATUS" =~ ^(000|502|503|504)$ ]]; }

api() {  # api METHOD PATH [JSON_BODY]
    http "$1" "$BASE_URL$2" "${3:-}" --header "Authorization: $AUTH_SCHEME $TOKEN"
}

# 1. A token. DRF's authtoken answers {"token"}, a JWT endpoint {"access"}.
http POST "$BASE_URL/api/auth/token/" \
    "$(python3 -S -c 'import json, sys; print(json.dumps({"username": sys.argv[1], "password": sys.argv[2]}))' \
        "$USERNAME" "$PASSWORD")"
expect_status "POST /api/auth/token/ (is the platform up at $BASE_URL and the user right?)" 200 201
read -r token_kind TOKEN <<<"$(json '"jwt " + d["access"] if "access" in d and "token" not in d else "token " + first(d.get("token"), d.get("key"))')" || true
[[ -n "${TOKEN:-}" ]] || die "POST /api/auth/token/ answered without a token: $(http_excerpt)"
if [[ "$token_kind" == jwt && "$AUTH_SCHEME" == Token ]]; then
    AUTH_SCHEME=Bearer
fi
log "got an API token for $USERNAME"

# 2. Create the store.
api POST /api/stores/ "$(python3 -S -c '
import json, secrets, sys
engine, name = sys.argv[1], sys.argv[2] or f"Smoke {sys.argv[1]} {secrets.token_hex(3)}"
print(json.dumps({"name": name, "engine": engine}))' "$ENGINE" "${STORE_NAME:-}")"
expect_status "POST /api/stores/ ($ENGINE)" 201 202
ACCEPTED_AT="$(python3 -S -c 'import time; print(time.time())')"
STORE_ID="$(json 'd["id"]')"
[[ -n "$STORE_ID" ]] || die "POST /api/stores/ answered without an id: $(http_excerpt)"
# A create that found a store in the warm pool answers "claiming".
if [[ "$(json 'd.get("status")')" == claiming ]]; then
    ORIGIN="claimed from the warm pool"
else
    ORIGIN="built cold"
    [[ "${EXPECT_CLAIM:-0}" != 1 ]] ||
        die "store $STORE_ID was not claimed from the warm pool (status $(json 'd.get("status")')) and EXPECT_CLAIM=1"
fi
log "created store $STORE_ID ($ENGINE, $ORIGIN)"

# 3. Wait until it is ready; stop early when it failed.
STORE_JSON="$WORK/store.json"
deadline=$((SECONDS + READY_TIMEOUT))
last_status=""
while :; do
    api GET "/api/stores/$STORE_ID/"
    if transient; then
        ((SECONDS < deadline)) || die "GET /api/stores/$STORE_ID/ kept failing: HTTP $HTTP_STATUS"
        sleep "$POLL_INTERVAL"
        continue
    fi
    expect_status "GET /api/stores/$STORE_ID/" 200
    cp "$HTTP_BODY" "$STORE_JSON"
    status="$(json 'd.get("status")')"
    if [[ "$status" != "$last_status" ]]; then
        log "store $STORE_ID is $status after $((SECONDS + READY_TIMEOUT - deadline))s"
        last_status="$status"
    fi
    case "$status" in
        ready) break ;;
        failed | deleted | deleting)
            die "store $STORE_ID became $status: $(json '"reason=%s message=%s" % (first(d.get("status_reason"), d.get("reason")), first(d.get("status_message"), d.get("message")))')"
            ;;
    esac
    ((SECONDS < deadline)) ||
        die "store $STORE_ID still '$status' after ${READY_TIMEOUT}s (READY_TIMEOUT)"
    sleep "$POLL_INTERVAL"
done
STOREFRONT_URL="$(json 'first(d.get("storefront_url"), get(d, "urls", "storefront"), d.get("url"))' "$STORE_JSON")"
log "store $STORE_ID is ready: storefront ${STOREFRONT_URL:-(no storefront_url in the API answer)}"
# The time from the 202 to Ready: the store's ready_at (the platform's
# clock) less this machine's time of the 202, so only as exact as the two
# clocks agree (on a k3d cluster they are the same clock).
READY_SECONDS="$(python3 -S - "$STORE_JSON" "$ACCEPTED_AT" <<'PY' 2>/dev/null || true
import json, sys
from datetime import datetime
ready_at = json.load(open(sys.argv[1])).get("ready_at")
if ready_at:
    ready = datetime.fromisoformat(ready_at.replace("Z", "+00:00")).timestamp()
    print("%.1f" % (ready - float(sys.argv[2])))
PY
)"
log "timing: $ENGINE store $STORE_ID, $ORIGIN: ready ${READY_SECONDS:-?}s after its 202"

# 4. Its credentials. Only the key names are printed, never the values.
CREDENTIALS_JSON="$WORK/credentials.json"
api GET "/api/stores/$STORE_ID/credentials/"
expect_status "GET /api/stores/$STORE_ID/credentials/" 200
cp "$HTTP_BODY" "$CREDENTIALS_JSON"
keys="$(json '",".join(sorted(k for k, v in d.items() if v not in (None, "")))' "$CREDENTIALS_JSON")"
[[ -n "$keys" ]] || die "credentials of store $STORE_ID are empty"
log "credentials of store $STORE_ID hold: $keys"

# 5. The caller's check against the live store.
if [[ -n "${ON_READY:-}" ]]; then
    log "running ON_READY: $ON_READY"
    export STORE_ID STORE_JSON STOREFRONT_URL CREDENTIALS_JSON ENGINE
    bash -c "$ON_READY" || die "ON_READY failed for store $STORE_ID ($ENGINE)"
fi

if [[ "${KEEP_STORE:-0}" == 1 ]]; then
    log "KEEP_STORE=1: leaving store $STORE_ID in place"
    exit 0
fi

# 6. Delete it and wait until it is gone (404, or the final state deleted).
api DELETE "/api/stores/$STORE_ID/"
expect_status "DELETE /api/stores/$STORE_ID/" 200 202 204
DELETED=1
log "deletion of store $STORE_ID accepted"
deadline=$((SECONDS + DELETE_TIMEOUT))
while :; do
    api GET "/api/stores/$STORE_ID/"
    if [[ "$HTTP_STATUS" == 404 ]]; then
        break
    fi
    if transient; then
        ((SECONDS < deadline)) || die "GET /api/stores/$STORE_ID/ kept failing: HTTP $HTTP_STATUS"
        sleep "$POLL_INTERVAL"
        continue
    fi
    expect_status "GET /api/stores/$STORE_ID/ while deleting" 200
    status="$(json 'd.get("status")')"
    [[ "$status" == deleted ]] && break
    [[ "$status" == failed ]] &&
        die "deleting store $STORE_ID failed: $(json 'first(d.get("status_message"), d.get("status_reason"))')"
    ((SECONDS < deadline)) ||
        die "store $STORE_ID still '$status' ${DELETE_TIMEOUT}s after DELETE (DELETE_TIMEOUT)"
    sleep "$POLL_INTERVAL"
done
log "store $STORE_ID ($ENGINE) is deleted: OK"

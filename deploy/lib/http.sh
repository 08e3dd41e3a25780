# shellcheck shell=bash
# Small helpers shared by the deploy scripts: logging, HTTP with curl, and
# JSON field extraction with python3 (no jq needed). Source it; it defines
# functions only.

log() { printf '%s: %s\n' "${SCRIPT_NAME:-deploy}" "$*" >&2; }

die() {
    log "FAILED: $*"
    exit 1
}

need() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || die "'$tool' is required but not on PATH"
    done
}

# http METHOD URL [JSON_BODY] [extra curl args...]
# Sets HTTP_STATUS and writes the response body to the file $HTTP_BODY.
# Never exits on HTTP errors: callers check HTTP_STATUS themselves. A
# transport failure (refused, timeout) gives HTTP_STATUS=000.
HTTP_BODY="${HTTP_BODY:-$(mktemp)}"
HTTP_STATUS=000
http() {
    local method="$1" url="$2" body="${3:-}"
    shift 2
    [[ $# -gt 0 ]] && shift
    local args=(--silent --show-error --max-time "${HTTP_TIMEOUT:-30}"
        --request "$method" --output "$HTTP_BODY" --write-out '%{http_code}'
        --header 'Accept: application/json')
    if [[ -n "$body" ]]; then
        args+=(--header 'Content-Type: application/json' --data "$body")
    fi
    if [[ -n "${CURL_EXTRA_ARGS:-}" ]]; then
        local extra
        read -r -a extra <<<"$CURL_EXTRA_ARGS"
        args+=("${extra[@]}")
    fi
    HTTP_STATUS="$(curl "${args[@]}" "$@" "$url" 2>>"$HTTP_BODY.err")" || HTTP_STATUS=000
}

# The first 500 characters of the last response, for error messages.
http_excerpt() {
    if [[ "$HTTP_STATUS" == 000 ]]; then
        tail -n 3 "$HTTP_BODY.err" 2>/dev/null | tr '\n' ' '
    else
        head -c 500 "$HTTP_BODY" 2>/dev/null
    fi
}

# expect_status "what" CODE... : die unless HTTP_STATUS is one of the codes.
expect_status() {
    local what="$1" code
    shift
    for code in "$@"; do
        [[ "$HTTP_STATUS" == "$code" ]] && return 0
    done
    die "$what: expected HTTP $*, got $HTTP_STATUS: $(http_excerpt)"
}

# json EXPR [FILE]: evaluate a Python expression over the JSON document `d`
# (default: the last response) and print the result; prints nothing when
# the expression fails (a missing key), so callers test for emptiness.
# Helper `first(*candidates)` returns the first non-empty value.
# (python3 -S: no site packages needed, and it starts several times faster.)
json() {
    local expr="$1" file="${2:-$HTTP_BODY}"
    python3 -S - "$expr" "$file" <<'PY' 2>/dev/null || true
import json, sys

expr, path = sys.argv[1], sys.argv[2]
with open(path) as fh:
    d = json.load(fh)

def first(*candidates):
    for value in candidates:
        if value not in (None, "", [], {}):
            return value
    return None

def get(obj, *keys):
    """obj[k1][k2]..., None when any step is missing."""
    for key in keys:
        try:
            obj = obj[key]
        except (KeyError, IndexError, TypeError):
            return None
    return obj

try:
    value = eval(expr, {"d": d, "first": first, "get": get, "json": json})
except Exception:
    sys.exit(0)
if value is None:
    sys.exit(0)
print(json.dumps(value) if isinstance(value, (dict, list)) else value)
PY
}

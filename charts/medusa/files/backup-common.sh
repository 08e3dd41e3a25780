# shellcheck shell=bash
# Shared by backup.sh and restore.sh of both engine charts (issue 12); sourced,
# never run. charts/woocommerce/files/backup-common.sh and
# charts/medusa/files/backup-common.sh are the same file (a test checks it):
# a chart cannot read files outside itself.
#
# Environment (set by the backup/restore Job, templates/backup.yaml):
#   BACKUP_PREFIX        object key prefix of this backup, ending in "/"
#   S3_ENDPOINT, S3_BUCKET, S3_REGION, S3_ACCESS_KEY_FILE, S3_SECRET_KEY_FILE,
#   S3_SSE               object storage (provisioning/objectstore.py)
#   DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_PASSWORD_FILE   the store's database
#   FILES_DIR            the store's files (wp-content / Medusa's uploads)
#   TERMINATION_LOG      where a failure's one-line reason goes
#                        (default /dev/termination-log, Kubernetes' place)
#   OBJECTSTORE          command of the object-store CLI
#                        (default: python3 -m provisioning.objectstore)
#
# Output: progress on stdout; the commands' own stderr is kept in a private
# file and replayed on exit, so that a failure's reason can quote its last line.

TERMINATION_LOG="${TERMINATION_LOG:-/dev/termination-log}"
OBJECTSTORE="${OBJECTSTORE:-python3 -m provisioning.objectstore}"
# Restores build their new files here, inside FILES_DIR (same volume, so the
# swap is a rename); backups leave these out.
RESTORE_STAGING=".storeplatform-restore"

ACTION="${0##*/}"
ACTION="${ACTION%.sh}"
STEP="starting"
REPORTED=""

# Private working directory: password files and the commands' stderr.
umask 077
WORK="$(mktemp -d "${TMPDIR:-/tmp}/${ACTION}.XXXXXX")"
exec 3>&2 2>>"$WORK/stderr"

log() {
    printf '%s %s: %s\n' "$(date -u +%H:%M:%S)" "$ACTION" "$*"
}

now() {
    date -u +%Y-%m-%dT%H:%M:%SZ
}

step() {
    STEP="$1"
    log "$STEP"
}

# The one line Kubernetes shows as the container's termination message (and
# the platform records as the backup's error). Trimmed to fit its 4096 bytes.
report() {
    REPORTED=1
    local line
    line="$(printf '%s' "$*" | tr '\n\r\t' '   ' | cut -c1-1000)"
    printf '%s\n' "$line" >&3
    printf '%s\n' "$line" >"$TERMINATION_LOG" 2>/dev/null || true
}

fail() {
    report "$ACTION failed: $*"
    exit 1
}

# The line of the commands' stderr that says why: the last one naming an
# error (psql follows its ERROR with CONTEXT lines), else the last one.
last_error() {
    local lines
    lines="$(grep -v '^[[:space:]]*$' "$WORK/stderr" 2>/dev/null || true)"
    { grep -E 'ERROR|[Ee]rror|objectstore:|denied|fatal|FATAL' <<<"$lines" || printf '%s\n' "$lines"; } \
        | tail -n 1
}

on_exit() {
    local code=$?
    if [ "$code" -ne 0 ] && [ -z "$REPORTED" ]; then
        local cause
        cause="$(last_error)"
        report "$ACTION failed while ${STEP} (exit ${code})${cause:+: $cause}"
    fi
    cat "$WORK/stderr" >&3 2>/dev/null || true
    rm -rf "$WORK"
    exit "$code"
}
trap on_exit EXIT
# The Job's deadline or a deleted pod: stop, and say so.
trap 'STEP="$STEP (stopped by SIGTERM)"; exit 143' TERM
trap 'STEP="$STEP (interrupted)"; exit 130' INT

objectstore() {
    # shellcheck disable=SC2086  # OBJECTSTORE is a command with arguments
    $OBJECTSTORE "$@"
}

# What the Job must set; an empty S3_BUCKET is object storage not configured.
for variable in BACKUP_PREFIX S3_BUCKET DB_HOST DB_NAME DB_USER DB_PASSWORD_FILE FILES_DIR; do
    [ -n "${!variable:-}" ] || fail "${variable} is not set"
done
case "$BACKUP_PREFIX" in
    */) ;;
    *) BACKUP_PREFIX="$BACKUP_PREFIX/" ;;
esac
MANIFEST_KEY="${BACKUP_PREFIX}parts.json"
[ -r "$DB_PASSWORD_FILE" ] || fail "cannot read the database password file $DB_PASSWORD_FILE"
[ -d "$FILES_DIR" ] || fail "FILES_DIR $FILES_DIR is not a directory"

# The password, without the trailing newline a Secret's file may have.
db_password() {
    local password
    password="$(cat "$DB_PASSWORD_FILE")"
    printf '%s' "$password"
}

# MariaDB's client options (password included: never on a command line) in
# an option file for --defaults-extra-file. Option-file syntax: the value in
# quotes (a "#" outside them starts a comment), backslashes doubled; a quote
# inside is fine as long as it is not the enclosing one.
mariadb_client_config() {
    local password quote='"'
    password="$(db_password)"
    case "$password" in
        *'"'*"'"* | *"'"*'"'*)
            fail "the database password holds both kinds of quotes, which a MariaDB option file cannot carry" ;;
        *'"'*) quote="'" ;;
    esac
    printf '[client]\nhost=%s\nport=%s\nuser=%s\npassword=%s%s%s\n' "$DB_HOST" \
        "${DB_PORT:-3306}" "$DB_USER" "$quote" "${password//\\/\\\\}" "$quote" >"$1"
}

# PostgreSQL: libpq's own variables, and a password file (pgpass syntax:
# backslash and colon escaped) rather than PGPASSWORD, which other processes
# of the same user could read from the environment.
postgres_client_config() {
    local password
    password="$(db_password)"
    password="${password//\\/\\\\}"
    printf '*:*:*:*:%s\n' "${password//:/\\:}" >"$WORK/pgpass"
    export PGPASSFILE="$WORK/pgpass" PGHOST="$DB_HOST" PGPORT="${DB_PORT:-5432}" \
        PGUSER="$DB_USER" PGDATABASE="$DB_NAME" PGCONNECT_TIMEOUT=10
}

# A field of a one-line JSON document in a file: json_field FILE FIELD.
json_field() {
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

# Streams stdin to BACKUP_PREFIX/NAME; its {"key","size","sha256"} lands in
# $WORK/NAME.put.json.
upload() {
    objectstore put "${BACKUP_PREFIX}$1" >"$WORK/$1.put.json"
}

# The object of a part to stdout, checked against the size and sha256 it was
# written with (non-zero exit at the end of the stream on a mismatch).
download_part() {
    local put="$1"
    objectstore get "$(json_field "$put" key)" --size "$(json_field "$put" size)" \
        --sha256 "$(json_field "$put" sha256)"
}

# Files: every entry of FILES_DIR, as a gzipped tar of "."; a restore's
# leftover staging directory is not the store's, nor is lost+found, which
# ext4 puts at a volume's root (FILES_DIR may be one) owned by root and
# unreadable to the Job.
files_tar() {
    local code=0
    # tar exits 1 when a file changed while it was read (a live site writes
    # its caches): the archive is still whole and the backup consistent
    # enough for files. 2 is a real failure.
    tar -C "$FILES_DIR" --exclude="./${RESTORE_STAGING}*" --exclude=./lost+found \
        --warning=no-file-changed -czf - . || code=$?
    [ "$code" -le 1 ]
}

# parts.json: written last, only when every part verified. Its presence is
# what makes a backup good. Arguments: engine, started, finished, then
# "name format putfile" triples.
write_manifest() {
    local engine="$1" started="$2" finished="$3"
    shift 3
    python3 - "$engine" "$started" "$finished" "$(now)" "$@" <<'PY' \
        | objectstore put-json "$MANIFEST_KEY"
import json
import sys

engine, started, finished, verified, *rest = sys.argv[1:]
parts = []
for name, fmt, put in zip(rest[0::3], rest[1::3], rest[2::3]):
    with open(put) as handle:
        written = json.load(handle)
    parts.append({"name": name, "key": written["key"], "size": written["size"],
                  "sha256": written["sha256"], "format": fmt})
print(json.dumps({"format": 1, "engine": engine, "started_at": started,
                  "finished_at": finished, "verified_at": verified, "parts": parts}))
PY
}

# Restore: reads parts.json and checks every part (size and sha256, by
# re-reading it whole) before anything is touched. Leaves one file per part,
# $WORK/<name>.put.json, for download_part.
fetch_and_check_manifest() {
    local engine="$1"
    step "reading ${MANIFEST_KEY}"
    if ! objectstore get-json "$MANIFEST_KEY" >"$WORK/parts.json"; then
        fail "no good backup at ${BACKUP_PREFIX}: $(last_error)"
    fi
    python3 - "$WORK" "$engine" <<'PY' || fail "$(last_error)"
import json
import sys

work, engine = sys.argv[1:]
manifest = json.load(open(f"{work}/parts.json"))
if manifest.get("format") != 1:
    sys.exit(f"parts.json has format {manifest.get('format')!r}; this script reads format 1")
if manifest.get("engine") != engine:
    sys.exit(f"the backup is of a {manifest.get('engine')} store, not {engine}")
names = [part["name"] for part in manifest["parts"]]
if sorted(names) != ["database", "files"]:
    sys.exit(f"parts.json lists parts {names}, expected database and files")
for part in manifest["parts"]:
    with open(f"{work}/{part['name']}.put.json", "w") as handle:
        json.dump({key: part[key] for key in ("key", "size", "sha256")}, handle)
PY
    local name
    for name in database files; do
        step "checking the ${name} part"
        if ! objectstore verify "$(json_field "$WORK/$name.put.json" key)" \
                --size "$(json_field "$WORK/$name.put.json" size)" \
                --sha256 "$(json_field "$WORK/$name.put.json" sha256)" >/dev/null; then
            fail "the ${name} part is missing or corrupt, nothing was changed: $(last_error)"
        fi
    done
}

# Replaces FILES_DIR's contents by the files part: extracted first into a
# staging directory on the same volume (a failed download or extract leaves
# the old files as they were), then swapped in by renames.
restore_files() {
    local staging="$FILES_DIR/${RESTORE_STAGING}-new" old="$FILES_DIR/${RESTORE_STAGING}-old"
    rm -rf "$staging" "$old"
    mkdir "$staging"
    download_part "$WORK/files.put.json" | tar -C "$staging" -xzf - --no-same-owner
    mkdir "$old"
    find "$FILES_DIR" -mindepth 1 -maxdepth 1 ! -name "${RESTORE_STAGING}-*" \
        ! -name lost+found -exec mv -t "$old" -- {} +
    find "$staging" -mindepth 1 -maxdepth 1 -exec mv -t "$FILES_DIR" -- {} +
    rm -rf "$staging" "$old"
}

#!/bin/bash
# Restores a Medusa store in place from the backup at BACKUP_PREFIX
# (issue 12). Run by the restore Job while the store is in maintenance (its
# server and worker stopped, PostgreSQL running).
#
# Nothing is touched until parts.json has been read and every part re-read
# and found whole (size and sha256). Then:
#   - the database: in ONE transaction, the public schema is dropped and
#     recreated and the dump loaded; any error rolls it all back, leaving the
#     database as it was;
#   - the files: extracted beside the old ones on the same volume, then
#     swapped in by renames, so a failed download or extract changes nothing.
# Environment: see backup-common.sh.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=backup-common.sh
source "$(dirname "$0")/backup-common.sh"

postgres_client_config
fetch_and_check_manifest medusa

step "replacing the database ${DB_NAME} from $(json_field "$WORK/database.put.json" key)"
# The dump as SQL (owners and grants left out: the store's role owns what it
# restores), after a fresh public schema, all in one transaction.
{
    printf 'DROP SCHEMA IF EXISTS public CASCADE;\nCREATE SCHEMA public;\n'
    download_part "$WORK/database.put.json" | pg_restore --file=- --no-owner --no-privileges
} | psql --no-psqlrc --quiet --no-password --single-transaction \
    --set=ON_ERROR_STOP=1 --output=/dev/null

step "replacing the files in ${FILES_DIR}"
restore_files
log "restore complete from ${BACKUP_PREFIX}"

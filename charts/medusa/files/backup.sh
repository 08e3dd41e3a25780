#!/bin/bash
# Backs up a Medusa store (issue 12): the PostgreSQL database and the uploads
# volume, streamed to object storage, then verified by reading them back.
# Run by the backup Job (templates/backup.yaml) next to the running store:
# pg_dump reads one consistent snapshot without blocking the shop.
#
# Writes, under BACKUP_PREFIX:
#   database.dump   pg_dump --format=custom (compressed, restorable with pg_restore)
#   files.tar.gz    tar of FILES_DIR (the uploads)
#   parts.json      the manifest, written last and only when both parts
#                   verified: no parts.json = not a good backup
# Needs pg_dump/pg_restore 16 or newer (the store's PostgreSQL is 16).
# Environment: see backup-common.sh.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=backup-common.sh
source "$(dirname "$0")/backup-common.sh"

STARTED_AT="$(now)"
postgres_client_config

step "dumping the database ${DB_NAME} to ${BACKUP_PREFIX}database.dump"
pg_dump --format=custom --no-password | upload database.dump

step "archiving ${FILES_DIR} to ${BACKUP_PREFIX}files.tar.gz"
files_tar | upload files.tar.gz
FINISHED_AT="$(now)"

# pg_restore reads the whole archive, table data included, and writes the
# SQL it would run to /dev/null: a dump it cannot read fails here.
step "verifying the database part (size, sha256, pg_restore reads it whole)"
download_part "$WORK/database.dump.put.json" | pg_restore --file=/dev/null

step "verifying the files part (size, sha256, tar listing)"
download_part "$WORK/files.tar.gz.put.json" | tar -tzf - >/dev/null

step "writing ${MANIFEST_KEY}"
write_manifest medusa "$STARTED_AT" "$FINISHED_AT" \
    database pg_dump-custom "$WORK/database.dump.put.json" \
    files tar+gzip "$WORK/files.tar.gz.put.json"
log "backup complete: ${BACKUP_PREFIX}"

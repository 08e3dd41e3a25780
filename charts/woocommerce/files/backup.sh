#!/bin/bash
# Backs up a WooCommerce store (issue 12): the MariaDB database and
# wp-content, streamed to object storage, then verified by reading them back.
# Run by the backup Job (templates/backup.yaml) next to the running store:
# the dump is one consistent snapshot (--single-transaction, InnoDB) taken
# without locking the shop.
#
# Writes, under BACKUP_PREFIX:
#   database.sql.gz  mariadb-dump | gzip
#   files.tar.gz     tar of FILES_DIR (wp-content: uploads, plugins, themes)
#   parts.json       the manifest, written last and only when both parts
#                    verified: no parts.json = not a good backup
# Environment: see backup-common.sh.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=backup-common.sh
source "$(dirname "$0")/backup-common.sh"


# The dump's first lines name the tool ("-- MariaDB dump ..." after a
# sandbox-mode line in recent versions) and its last line is "-- Dump
# completed": a dump cut short by a lost connection has no such trailer.
check_dump_readable() {
    gzip -dc | awk '
        NR <= 3 && /^-- (MariaDB|MySQL) dump/ { header = 1 }
        { last = $0 }
        END {
            if (!header) { print "the dump has no mariadb-dump header" > "/dev/stderr"; exit 1 }
            if (last !~ /^-- Dump completed/) {
                print "the dump has no \"-- Dump completed\" trailer: it was cut short" > "/dev/stderr"
                exit 1
            }
        }'
}

STARTED_AT="$(now)"
mariadb_client_config "$WORK/my.cnf"

step "dumping the database ${DB_NAME} to ${BACKUP_PREFIX}database.sql.gz"
# --single-transaction: a consistent InnoDB snapshot without table locks;
# --routines/--triggers/--events: whatever plugins defined; --hex-blob keeps
# binary columns exact; no CREATE DATABASE, so it restores into any name.
mariadb-dump --defaults-extra-file="$WORK/my.cnf" --single-transaction --quick \
    --routines --triggers --events --hex-blob --no-tablespaces \
    --default-character-set=utf8mb4 "$DB_NAME" \
    | gzip -6 | upload database.sql.gz

step "archiving ${FILES_DIR} to ${BACKUP_PREFIX}files.tar.gz"
files_tar | upload files.tar.gz
FINISHED_AT="$(now)"

step "verifying the database part (size, sha256, gzip, dump header and trailer)"
download_part "$WORK/database.sql.gz.put.json" | check_dump_readable

step "verifying the files part (size, sha256, tar listing)"
download_part "$WORK/files.tar.gz.put.json" | tar -tzf - >/dev/null

step "writing ${MANIFEST_KEY}"
write_manifest woocommerce "$STARTED_AT" "$FINISHED_AT" \
    database mariadb-dump+gzip "$WORK/database.sql.gz.put.json" \
    files tar+gzip "$WORK/files.tar.gz.put.json"
log "backup complete: ${BACKUP_PREFIX}"

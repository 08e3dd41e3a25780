#!/bin/bash
# Restores a WooCommerce store in place from the backup at BACKUP_PREFIX
# (issue 12). Run by the restore Job while the store is in maintenance (its
# WordPress and cron stopped, MariaDB running).
#
# Nothing is touched until parts.json has been read and every part re-read
# and found whole (size and sha256). Then:
#   - the database: every table, view, routine and event of DB_NAME is
#     dropped and the dump loaded (MariaDB's DDL is not transactional: a load
#     that fails half-way leaves a half-restored database; run the restore
#     again, or restore the safety backup taken before it);
#   - the files: extracted beside the old ones on the same volume, then
#     swapped in by renames, so a failed download or extract changes nothing.
# Environment: see backup-common.sh.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=backup-common.sh
source "$(dirname "$0")/backup-common.sh"


db() {
    mariadb --defaults-extra-file="$WORK/my.cnf" --batch --skip-column-names \
        --default-character-set=utf8mb4 "$DB_NAME"
}

# DROP statements for everything in the database (names quoted with
# backticks, doubled inside).
drop_statements() {
    db <<'SQL'
SELECT CONCAT('DROP ', IF(table_type = 'VIEW', 'VIEW', 'TABLE'), ' IF EXISTS `',
              REPLACE(table_name, '`', '``'), '`;')
  FROM information_schema.tables WHERE table_schema = DATABASE()
  ORDER BY table_type = 'VIEW' DESC;
SELECT CONCAT('DROP ', routine_type, ' IF EXISTS `', REPLACE(routine_name, '`', '``'), '`;')
  FROM information_schema.routines WHERE routine_schema = DATABASE();
SELECT CONCAT('DROP EVENT IF EXISTS `', REPLACE(event_name, '`', '``'), '`;')
  FROM information_schema.events WHERE event_schema = DATABASE();
SQL
}

mariadb_client_config "$WORK/my.cnf"
fetch_and_check_manifest woocommerce

step "emptying the database ${DB_NAME}"
drop_statements >"$WORK/drop.sql"
{ echo "SET FOREIGN_KEY_CHECKS = 0;"; cat "$WORK/drop.sql"; } | db

step "loading the database from $(json_field "$WORK/database.put.json" key)"
# Views, triggers, routines and events were dumped with their DEFINER; the
# store's user may not create objects for another account (that takes
# SUPER), so they are restored as its own. Only DDL lines are edited: rows
# are one INSERT a line (--extended-insert), never touched.
# shellcheck disable=SC2016  # backticks in a sed expression, not a command
download_part "$WORK/database.put.json" | gzip -dc \
    | sed -E '/^INSERT INTO /!s/DEFINER=`([^`]|``)*`@`([^`]|``)*`//' | db

step "replacing the files in ${FILES_DIR}"
restore_files
log "restore complete from ${BACKUP_PREFIX}"

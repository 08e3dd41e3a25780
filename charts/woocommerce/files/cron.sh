#!/bin/sh
# Runs the shop's background jobs, once a minute, from the chart's CronJob.
#
# WordPress's own WP-Cron is off (DISABLE_WP_CRON): it triggers itself by
# calling the site's public URL, which from inside the pod reaches nothing.
# So this script runs, with WP-CLI:
#   wp cron event run --due-now   every WP-Cron event that is due
#       https://developer.wordpress.org/cli/commands/cron/event/run/
#   wp action-scheduler run       Action Scheduler's queue (WooCommerce's
#       scheduled sales, stock-hold and pending-order cleanup, analytics
#       imports, webhooks), in at most ACTION_SCHEDULER_BATCHES batches so a
#       long queue is worked off over several minutes, not killed half-way
#       https://github.com/woocommerce/action-scheduler/blob/trunk/classes/WP_CLI/ActionScheduler_WPCLI_Scheduler_command.php
#
# Before the setup Job has installed the shop there is nothing to run: the
# script says so and succeeds, so a new store's first minutes leave no failed
# Jobs behind.
#
# Inputs (environment, set by templates/cron.yaml):
#   WP_PATH                    WordPress root (default /var/www/html)
#   ACTION_SCHEDULER_BATCHES   batches of Action Scheduler's runner (default 5)
#   WORDPRESS_DB_*, WORDPRESS_CONFIG_EXTRA, STORE_SMTP_*   read by WordPress
set -eu

WP_PATH="${WP_PATH:-/var/www/html}"
ACTION_SCHEDULER_BATCHES="${ACTION_SCHEDULER_BATCHES:-5}"

log() {
    printf '%s cron: %s\n' "$(date -u +%H:%M:%S)" "$*"
}

# The WordPress pod writes wp-config.php on its first start; its last line
# comes last (see setup.sh).
wordpress_config_complete() {
    grep -q "require_once.*wp-settings\.php" "$WP_PATH/wp-config.php" 2>/dev/null
}

main() {
    cd "$WP_PATH"
    if ! wordpress_config_complete; then
        log "WordPress is not on the volume yet: nothing to run"
        return 0
    fi
    if ! wp core is-installed; then
        log "the shop is not installed yet: nothing to run"
        return 0
    fi
    wp cron event run --due-now
    # Action Scheduler ships with WooCommerce; its command exists only while
    # WooCommerce is active.
    if wp plugin is-active woocommerce; then
        wp action-scheduler run --batches="$ACTION_SCHEDULER_BATCHES"
    else
        log "WooCommerce is not active: no Action Scheduler queue to run"
    fi
}

main "$@"

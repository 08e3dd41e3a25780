#!/bin/sh
# Turns a fresh WordPress volume into a WooCommerce store that can sell, and
# on every later run keeps in place what the platform owns, nothing more.
#
# Run by the chart's setup Job on every install, upgrade, rollback and retry.
# What it touches comes in two kinds:
# - the platform's, ensured on every run: the site URL (home, siteurl), the
#   admin user of the store Secret exists, WooCommerce installed and active;
# - the shop's starting point, seeded once: title, pretty permalinks, the
#   shop pages with the shop as front page, "coming soon" off, the onboarding
#   wizard skipped, cash on delivery, sample products. From then on it is the
#   owner's: later runs never recreate or reset what they deleted or changed.
#   The option storeplatform_seeded ({"version", "time"}) records the seed.
# Every step reads the state first, so a run that died half-way is finished
# by the next one, and a second run changes nothing.
#
# Inputs (environment, set by templates/setup-job.yaml):
#   STORE_URL                                   where the shop is
#   STORE_TITLE_FILE    file holding the shop's title: the store's name, free
#                       text a user typed, so it comes as data (never through
#                       env or args, which Kubernetes and shells interpret)
#   WP_ADMIN_USER, WP_ADMIN_EMAIL, WP_ADMIN_PASSWORD   from the store Secret
#   WORDPRESS_DB_HOST/_USER/_PASSWORD/_NAME     read by wp-config.php
#   WOOCOMMERCE_SOURCE   download | baked
#   WOOCOMMERCE_VERSION  exact plugin version to download
#   SAMPLE_PRODUCTS      "true" to create the sample catalogue
#   SEED_VERSION         recorded in the seed marker (the chart version)
#   STORE_POOLED         "true" while the store waits in the warm pool
#   WP_PATH              WordPress root (default /var/www/html)
#   WAIT_TIMEOUT, WAIT_INTERVAL   seconds, for the wait loops
set -eu

WP_PATH="${WP_PATH:-/var/www/html}"
WAIT_TIMEOUT="${WAIT_TIMEOUT:-600}"
WAIT_INTERVAL="${WAIT_INTERVAL:-5}"
WOOCOMMERCE_SOURCE="${WOOCOMMERCE_SOURCE:-download}"
SAMPLE_PRODUCTS="${SAMPLE_PRODUCTS:-true}"
SEED_VERSION="${SEED_VERSION:-unknown}"
BAKED_PLUGIN_DIR="${BAKED_PLUGIN_DIR:-/usr/src/wordpress/wp-content/plugins/woocommerce}"

: "${STORE_URL:?STORE_URL is required}"
: "${STORE_TITLE_FILE:?STORE_TITLE_FILE is required}"
: "${WP_ADMIN_USER:?WP_ADMIN_USER is required}"
: "${WP_ADMIN_EMAIL:?WP_ADMIN_EMAIL is required}"
: "${WP_ADMIN_PASSWORD:?WP_ADMIN_PASSWORD is required}"

log() {
    printf '%s setup: %s\n' "$(date -u +%H:%M:%S)" "$*"
}

# wc commands go through the REST API and need a user to act as.
wp_wc() {
    wp wc "$@" --user="$WP_ADMIN_USER"
}

# Waits until "$@" succeeds, or gives up after WAIT_TIMEOUT seconds.
wait_for() {
    what="$1"
    shift
    waited=0
    until "$@" >/dev/null 2>&1; do
        if [ "$waited" -ge "$WAIT_TIMEOUT" ]; then
            log "gave up waiting for $what after ${WAIT_TIMEOUT}s"
            return 1
        fi
        log "waiting for $what"
        sleep "$WAIT_INTERVAL"
        waited=$((waited + WAIT_INTERVAL))
    done
}

# The WordPress pod's entrypoint copies the core files into the shared
# volume on its first start, then writes wp-config.php with awk, line by line
# (docker-library/wordpress docker-entrypoint.sh); this Job may look in
# between. The file is complete once its last statement is there:
# wp-config-docker.php ends with require_once ABSPATH . 'wp-settings.php';
wordpress_config_complete() {
    [ -f "$WP_PATH/wp-includes/version.php" ] &&
        grep -q "require_once.*wp-settings\.php" "$WP_PATH/wp-config.php" 2>/dev/null
}

# The title, exactly: command substitution would drop trailing newlines, the
# sentinel x keeps them.
read_title() {
    title="$(cat -- "$STORE_TITLE_FILE" && printf x)"
    STORE_TITLE="${title%x}"
    if [ -z "$STORE_TITLE" ]; then
        log "the title file $STORE_TITLE_FILE is empty"
        return 1
    fi
}

# A plain PHP connection check: `wp db` needs the mysql client, whose TLS
# defaults differ between client versions, and WP-CLI's own bootstrap cannot
# tell "database down" from "not installed yet".
database_reachable() {
    # shellcheck disable=SC2016 # PHP variables, not shell ones
    php -r '
        $host = getenv("WORDPRESS_DB_HOST");
        $port = 3306;
        if (strpos($host, ":") !== false) { list($host, $port) = explode(":", $host, 2); }
        mysqli_report(MYSQLI_REPORT_OFF);
        $db = @mysqli_connect($host, getenv("WORDPRESS_DB_USER"),
            getenv("WORDPRESS_DB_PASSWORD"), getenv("WORDPRESS_DB_NAME"), (int) $port);
        exit($db ? 0 : 1);
    '
}

# Sets a plain option only when it differs from the wanted value.
ensure_option() {
    name="$1"
    wanted="$2"
    current="$(wp option get "$name" 2>/dev/null || true)"
    if [ "$current" != "$wanted" ]; then
        log "option $name: '$current' -> '$wanted'"
        wp option update "$name" "$wanted"
    fi
}

install_core() {
    if wp core is-installed; then
        log "WordPress already installed"
        return 0
    fi
    log "installing WordPress for $STORE_URL"
    # --title=VALUE is one argument: WP-CLI takes everything after the first
    # "=" as the value, newlines and leading dashes included.
    wp core install \
        --url="$STORE_URL" \
        --title="$STORE_TITLE" \
        --admin_user="$WP_ADMIN_USER" \
        --admin_email="$WP_ADMIN_EMAIL" \
        --admin_password="$WP_ADMIN_PASSWORD" \
        --skip-email
}

# Moves the site to STORE_URL when the home WordPress stored is another URL
# (a custom domain made primary, a switch to https): WP-CLI's search-replace
# rewrites the old URL in every table of the site, serialized values
# included. Nothing runs when home already is STORE_URL, so a re-run changes
# nothing. GUIDs stay: they are identifiers, not links
# (https://developer.wordpress.org/cli/commands/search-replace/).
move_site_url() {
    stored="$(wp option get home 2>/dev/null || true)"
    if [ -z "$stored" ] || [ "$stored" = "$STORE_URL" ]; then
        return 0
    fi
    log "moving the site from $stored to $STORE_URL"
    wp search-replace "$stored" "$STORE_URL" --all-tables-with-prefix --skip-columns=guid \
        --precise --report-changed-only
}

# The platform's: the URL follows the values on every run (a switch to
# https, a custom domain made primary, applied by the next upgrade).
ensure_site_url() {
    move_site_url
    ensure_option home "$STORE_URL"
    ensure_option siteurl "$STORE_URL"
}

# A store built for the warm pool (STORE_POOLED=true) is seeded under the
# pool's generic title and carries the option storeplatform_pooled. The first
# run after its claim (STORE_POOLED=false, the owner's name in the title file)
# gives the site that title and drops the marker; from then on the title is
# the owner's, as on any store. The title travels as a JSON string, which
# starts with a quote, so WP-CLI never reads it as a flag (the schema keeps
# control characters out of titles; JSON needs only \ and " escaped).
ensure_pool_title() {
    marker="$(wp option list --search=storeplatform_pooled --field=option_name)"
    if [ "${STORE_POOLED:-false}" = "true" ]; then
        if [ -z "$marker" ]; then
            wp option update storeplatform_pooled 1
        fi
        return 0
    fi
    if [ -z "$marker" ]; then
        return 0
    fi
    log "claimed from the warm pool: the site takes its owner's title"
    title_json="\"$(printf '%s' "$STORE_TITLE" | sed 's/[\\"]/\\&/g')\""
    wp option update blogname --format=json "$title_json"
    wp option delete storeplatform_pooled
}

# The platform's: the login shown to the owner exists. Its password and
# profile are the owner's to change.
ensure_admin_user() {
    if wp user get "$WP_ADMIN_USER" --field=ID >/dev/null 2>&1; then
        return 0
    fi
    log "the admin user $WP_ADMIN_USER is missing: creating it"
    wp user create "$WP_ADMIN_USER" "$WP_ADMIN_EMAIL" \
        --role=administrator --user_pass="$WP_ADMIN_PASSWORD"
}

ensure_permalinks() {
    current="$(wp option get permalink_structure 2>/dev/null || true)"
    if [ "$current" != "/%postname%/" ]; then
        log "switching to pretty permalinks"
        wp rewrite structure '/%postname%/'
    fi
}

install_woocommerce() {
    if ! wp plugin is-installed woocommerce; then
        if [ "$WOOCOMMERCE_SOURCE" = "baked" ]; then
            # The baked image carries the plugin; a volume created before
            # the switch to that image does not, so copy it in.
            if [ ! -d "$BAKED_PLUGIN_DIR" ]; then
                log "WooCommerce is not in this image ($BAKED_PLUGIN_DIR) and downloads are off"
                return 1
            fi
            log "copying WooCommerce from the image"
            cp -R "$BAKED_PLUGIN_DIR" "$WP_PATH/wp-content/plugins/"
        else
            : "${WOOCOMMERCE_VERSION:?WOOCOMMERCE_VERSION is required to download WooCommerce}"
            log "downloading WooCommerce $WOOCOMMERCE_VERSION"
            wp plugin install woocommerce --version="$WOOCOMMERCE_VERSION"
        fi
    fi
    if ! wp plugin is-active woocommerce; then
        log "activating WooCommerce"
        wp plugin activate woocommerce
    fi
}

page_published() {
    page_id="$(wp option get "$1" 2>/dev/null || true)"
    case "$page_id" in
        '' | 0 | *[!0-9]*) return 1 ;;
    esac
    [ "$(wp post get "$page_id" --field=post_status 2>/dev/null || true)" = "publish" ]
}

ensure_store_pages() {
    for option in woocommerce_shop_page_id woocommerce_cart_page_id \
        woocommerce_checkout_page_id woocommerce_myaccount_page_id; do
        if ! page_published "$option"; then
            log "creating the WooCommerce pages ($option is missing)"
            # WooCommerce's own tool creates only the pages that are missing.
            wp_wc tool run install_pages
            break
        fi
    done
    # The storefront at / is the shop itself.
    shop_id="$(wp option get woocommerce_shop_page_id)"
    ensure_option show_on_front page
    ensure_option page_on_front "$shop_id"
}

# Sets one key of a serialized option array when it differs.
ensure_option_key() {
    name="$1"
    key="$2"
    wanted="$3"
    current="$(wp option pluck "$name" "$key" 2>/dev/null || true)"
    if [ "$current" != "$wanted" ]; then
        log "option ${name}.${key}: '$current' -> '$wanted'"
        wp option patch update "$name" "$key" "$wanted"
    fi
}

onboarding_skipped() {
    [ "$(wp option pluck woocommerce_onboarding_profile skipped 2>/dev/null || true)" = "1" ]
}

configure_woocommerce() {
    # New WooCommerce installs start in "coming soon" mode and show the
    # onboarding wizard; a provisioned store is open and configured.
    ensure_option woocommerce_coming_soon no
    ensure_option woocommerce_task_list_hidden yes

    # Cash on delivery, also for virtual products (the samples are virtual,
    # so no shipping zone is needed to check out).
    if ! wp option get woocommerce_cod_settings >/dev/null 2>&1; then
        log "enabling cash on delivery"
        wp option update woocommerce_cod_settings --format=json \
            '{"enabled":"yes","title":"Cash on delivery","description":"Pay with cash upon delivery.","instructions":"Pay with cash upon delivery.","enable_for_methods":[],"enable_for_virtual":"yes"}'
    else
        ensure_option_key woocommerce_cod_settings enabled yes
        ensure_option_key woocommerce_cod_settings enable_for_virtual yes
    fi
}

# SKU|name|price|description
SAMPLE_CATALOGUE='SP-GIFT-10|Gift card 10|10.00|A gift card worth 10, delivered by e-mail.
SP-EBOOK|Store handbook (e-book)|4.90|A short e-book, downloadable after purchase.
SP-WORKSHOP|Online workshop seat|25.00|One seat in a live online workshop.'

ensure_sample_products() {
    if [ "$SAMPLE_PRODUCTS" != "true" ]; then
        return 0
    fi
    printf '%s\n' "$SAMPLE_CATALOGUE" | while IFS='|' read -r sku name price description; do
        # An assignment, so that a failing lookup stops the script instead
        # of looking like "no such product" and creating a duplicate.
        existing="$(wp_wc product list --sku="$sku" --field=id </dev/null)"
        if [ -n "$existing" ]; then
            continue
        fi
        log "creating sample product $sku"
        wp_wc product create </dev/null \
            --name="$name" --sku="$sku" --type=simple --status=publish \
            --virtual=true --regular_price="$price" --description="$description"
    done
}

# The onboarding wizard is skipped last: earlier versions of this script,
# which had no seed marker, skipped it too, so "skipped but no marker" means
# a store seeded before the marker existed.
skip_onboarding() {
    if ! onboarding_skipped; then
        log "skipping the onboarding wizard"
        wp option update woocommerce_onboarding_profile '{"skipped":true}' --format=json
    fi
}

record_seed() {
    wp option update storeplatform_seeded --format=json \
        "{\"version\":\"$SEED_VERSION\",\"time\":\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"}"
}

seed_shop() {
    log "seeding the shop"
    ensure_permalinks
    ensure_store_pages
    configure_woocommerce
    ensure_sample_products
    skip_onboarding
    record_seed
}

main() {
    cd "$WP_PATH"
    read_title
    wait_for "a complete wp-config.php in $WP_PATH" wordpress_config_complete
    wait_for "the database at ${WORDPRESS_DB_HOST:-?}" database_reachable
    install_core
    ensure_site_url
    ensure_pool_title
    ensure_admin_user
    install_woocommerce
    # An assignment outside any condition, so that a failing lookup stops
    # the script (set -e) instead of looking like "never seeded" and
    # re-creating what the owner deleted.
    seed_marker="$(wp option list --search=storeplatform_seeded --field=option_name)"
    if [ -n "$seed_marker" ]; then
        log "seeded before: the shop's content and settings are the owner's, left alone"
    elif onboarding_skipped; then
        log "seeded by an earlier version of the setup: recording it, changing nothing"
        record_seed
    else
        seed_shop
    fi
    log "store ready at $STORE_URL"
}

main "$@"

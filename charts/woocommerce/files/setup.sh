#!/bin/sh
# Turns a fresh WordPress volume into a WooCommerce store that can sell.
#
# Run by the chart's setup Job (image wordpress:cli, or the baked image) on
# every install, upgrade and retry. Every step looks at the current state
# first and only changes what is not right yet, so a second run is a no-op and
# a run that died half-way is finished by the next one.
#
# Inputs (environment, set by templates/setup-job.yaml):
#   STORE_URL, STORE_TITLE                      what the shop is called and where
#   WP_ADMIN_USER, WP_ADMIN_EMAIL, WP_ADMIN_PASSWORD   from the store Secret
#   WORDPRESS_DB_HOST/_USER/_PASSWORD/_NAME     read by wp-config.php
#   WOOCOMMERCE_SOURCE   download | baked
#   WOOCOMMERCE_VERSION  exact plugin version to download
#   SAMPLE_PRODUCTS      "true" to create the sample catalogue
#   WP_PATH              WordPress root (default /var/www/html)
#   WAIT_TIMEOUT, WAIT_INTERVAL   seconds, for the wait loops
set -eu

WP_PATH="${WP_PATH:-/var/www/html}"
WAIT_TIMEOUT="${WAIT_TIMEOUT:-600}"
WAIT_INTERVAL="${WAIT_INTERVAL:-5}"
WOOCOMMERCE_SOURCE="${WOOCOMMERCE_SOURCE:-download}"
SAMPLE_PRODUCTS="${SAMPLE_PRODUCTS:-true}"
BAKED_PLUGIN_DIR="${BAKED_PLUGIN_DIR:-/usr/src/wordpress/wp-content/plugins/woocommerce}"

: "${STORE_URL:?STORE_URL is required}"
: "${STORE_TITLE:?STORE_TITLE is required}"
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

# The WordPress pod's entrypoint copies the core files and writes
# wp-config.php into the shared volume on its first start.
wordpress_files_present() {
    [ -f "$WP_PATH/wp-config.php" ] && [ -f "$WP_PATH/wp-includes/version.php" ]
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
# included, then home and siteurl follow. Nothing runs when home already is
# STORE_URL, so a re-run changes nothing. GUIDs stay: they are identifiers,
# not links (https://developer.wordpress.org/cli/commands/search-replace/).
move_site_url() {
    stored="$(wp option get home 2>/dev/null || true)"
    if [ -z "$stored" ] || [ "$stored" = "$STORE_URL" ]; then
        return 0
    fi
    log "moving the site from $stored to $STORE_URL"
    wp search-replace "$stored" "$STORE_URL" --all-tables-with-prefix --skip-columns=guid \
        --precise --report-changed-only
    ensure_option home "$STORE_URL"
    ensure_option siteurl "$STORE_URL"
}

configure_site() {
    # Title and URL follow the values on every run: a renamed store or a
    # scheme switched to https is applied by the next upgrade.
    ensure_option blogname "$STORE_TITLE"
    ensure_option home "$STORE_URL"
    ensure_option siteurl "$STORE_URL"
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

configure_woocommerce() {
    # New WooCommerce installs start in "coming soon" mode and show the
    # onboarding wizard; a provisioned store is open and configured.
    ensure_option woocommerce_coming_soon no
    if [ "$(wp option pluck woocommerce_onboarding_profile skipped 2>/dev/null || true)" != "1" ]; then
        log "skipping the onboarding wizard"
        wp option update woocommerce_onboarding_profile '{"skipped":true}' --format=json
    fi
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

main() {
    cd "$WP_PATH"
    wait_for "the WordPress files in $WP_PATH" wordpress_files_present
    wait_for "the database at ${WORDPRESS_DB_HOST:-?}" database_reachable
    install_core
    move_site_url
    configure_site
    install_woocommerce
    ensure_store_pages
    configure_woocommerce
    ensure_sample_products
    log "store ready at $STORE_URL"
}

main "$@"

#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Places one order in a live store over its public storefront API, the way a
# shopper's browser would. Used as api-smoke.sh's ON_READY hook by
# e2e-cluster.sh, but runs on its own too:
#
#   deploy/place-order.sh ENGINE STOREFRONT_URL
#
# woocommerce: WooCommerce Store API (cart/add-item, checkout, cash on delivery).
# medusa: Medusa Store API with the publishable key the storefront serves at
#         /storefront/config (cart, shipping option, pp_system_default, complete).
set -euo pipefail

SCRIPT_NAME="place-order"
# shellcheck source=lib/http.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/http.sh"

ENGINE="${1:-${ENGINE:-}}"
STOREFRONT_URL="${2:-${STOREFRONT_URL:-}}"
[[ -n "$ENGINE" && -n "$STOREFRONT_URL" ]] || die "usage: $0 ENGINE STOREFRONT_URL"
need curl python3
STOREFRONT_URL="${STOREFRONT_URL%/}"
EMAIL="${ORDER_EMAIL:-e2e-shopper@example.com}"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK" "$HTTP_BODY" "$HTTP_BODY.err"' EXIT

woocommerce_order() {
    local api="$STOREFRONT_URL/wp-json/wc/store/v1" jar="$WORK/cookies" headers="$WORK/headers"
    local session=(--cookie "$jar" --cookie-jar "$jar" --dump-header "$headers")

    http GET "$api/products?per_page=20" "" "${session[@]}"
    if [[ "$HTTP_STATUS" == 404 ]]; then
        # Plain permalinks: the REST API is only reachable through ?rest_route=.
        api="$STOREFRONT_URL/?rest_route=/wc/store/v1"
        http GET "$api/products&per_page=20" "" "${session[@]}"
    fi
    expect_status "GET Store API products" 200
    local product_id
    product_id="$(json 'first(*[p["id"] for p in d if p.get("is_purchasable", True) and p.get("is_in_stock", True)])')"
    [[ -n "$product_id" ]] || die "the WooCommerce store at $STOREFRONT_URL has no purchasable product"
    log "woocommerce: buying product $product_id"

    # The cart endpoint hands out the Nonce and Cart-Token that writes need.
    http GET "$api/cart" "" "${session[@]}"
    expect_status "GET Store API cart" 200
    local nonce cart_token
    nonce="$(awk 'tolower($1) == "nonce:" {print $2}' "$headers" | tr -d '\r' | tail -n 1)"
    cart_token="$(awk 'tolower($1) == "cart-token:" {print $2}' "$headers" | tr -d '\r' | tail -n 1)"
    local auth=(--header "Nonce: $nonce" --header "Cart-Token: $cart_token")

    http POST "$api/cart/add-item" "{\"id\": $product_id, \"quantity\": 1}" "${session[@]}" "${auth[@]}"
    expect_status "POST Store API cart/add-item" 200 201

    local address='"first_name": "E2E", "last_name": "Shopper", "company": "",
        "address_1": "1 Test Street", "address_2": "", "city": "San Francisco",
        "state": "CA", "postcode": "94103", "country": "US", "phone": "5555550100"'
    http POST "$api/checkout" \
        "{\"billing_address\": {$address, \"email\": \"$EMAIL\"}, \"shipping_address\": {$address}, \"payment_method\": \"cod\"}" \
        "${session[@]}" "${auth[@]}"
    expect_status "POST Store API checkout (payment_method cod)" 200 201
    local order_id payment
    order_id="$(json 'd["order_id"]')"
    payment="$(json 'get(d, "payment_result", "payment_status")')"
    [[ -n "$order_id" && "$order_id" != 0 ]] || die "checkout answered without an order: $(http_excerpt)"
    [[ "$payment" == success ]] || die "checkout of order $order_id: payment_status '$payment': $(http_excerpt)"
    log "woocommerce: order $order_id placed (status $(json 'd.get("status")'))"
}

medusa_order() {
    http GET "$STOREFRONT_URL/storefront/config"
    expect_status "GET /storefront/config" 200
    local key backend
    key="$(json 'first(d.get("publishable_key"), d.get("publishableKey"), d.get("publishable_api_key"), d.get("medusa_publishable_key"))')"
    backend="$(json 'first(d.get("backend_url"), d.get("backendUrl"), d.get("medusa_backend_url"))')"
    [[ -n "$key" ]] || die "/storefront/config has no publishable key: $(http_excerpt)"
    # The storefront serves the Store API on its own host unless it says otherwise.
    [[ "$backend" == http* ]] || backend="$STOREFRONT_URL"
    backend="${backend%/}"
    local pk=(--header "x-publishable-api-key: $key")

    http GET "$backend/store/regions?limit=1" "" "${pk[@]}"
    expect_status "GET /store/regions" 200
    local region country
    region="$(json 'd["regions"][0]["id"]')"
    country="$(json 'first(get(d, "regions", 0, "countries", 0, "iso_2"), "us")')"
    [[ -n "$region" ]] || die "the Medusa store has no region"

    http GET "$backend/store/products?limit=20&region_id=$region" "" "${pk[@]}"
    expect_status "GET /store/products" 200
    local variant
    variant="$(json 'first(*[v["id"] for p in d["products"] for v in (p.get("variants") or [])])')"
    [[ -n "$variant" ]] || die "the Medusa store has no product variant for sale in region $region"
    log "medusa: buying variant $variant in region $region"

    http POST "$backend/store/carts" "{\"region_id\": \"$region\", \"email\": \"$EMAIL\"}" "${pk[@]}"
    expect_status "POST /store/carts" 200 201
    local cart
    cart="$(json 'd["cart"]["id"]')"

    http POST "$backend/store/carts/$cart/line-items" "{\"variant_id\": \"$variant\", \"quantity\": 1}" "${pk[@]}"
    expect_status "POST /store/carts/$cart/line-items" 200 201

    local address="{\"first_name\": \"E2E\", \"last_name\": \"Shopper\", \"address_1\": \"1 Test Street\",
        \"city\": \"Testville\", \"country_code\": \"$country\", \"postal_code\": \"10001\", \"phone\": \"5555550100\"}"
    http POST "$backend/store/carts/$cart" \
        "{\"email\": \"$EMAIL\", \"shipping_address\": $address, \"billing_address\": $address}" "${pk[@]}"
    expect_status "POST /store/carts/$cart (addresses)" 200

    http GET "$backend/store/shipping-options?cart_id=$cart" "" "${pk[@]}"
    expect_status "GET /store/shipping-options" 200
    local option
    option="$(json 'd["shipping_options"][0]["id"]')"
    [[ -n "$option" ]] || die "no shipping option for cart $cart (country $country)"
    http POST "$backend/store/carts/$cart/shipping-methods" "{\"option_id\": \"$option\"}" "${pk[@]}"
    expect_status "POST /store/carts/$cart/shipping-methods" 200

    http POST "$backend/store/payment-collections" "{\"cart_id\": \"$cart\"}" "${pk[@]}"
    expect_status "POST /store/payment-collections" 200 201
    local collection
    collection="$(json 'd["payment_collection"]["id"]')"
    http POST "$backend/store/payment-collections/$collection/payment-sessions" \
        '{"provider_id": "pp_system_default"}' "${pk[@]}"
    expect_status "POST payment-sessions (pp_system_default)" 200 201

    http POST "$backend/store/carts/$cart/complete" "" "${pk[@]}"
    expect_status "POST /store/carts/$cart/complete" 200
    [[ "$(json 'd.get("type")')" == order ]] ||
        die "cart $cart did not become an order: $(http_excerpt)"
    log "medusa: order $(json 'first(get(d, "order", "display_id"), get(d, "order", "id"))') placed"
}

case "$ENGINE" in
    woocommerce) woocommerce_order ;;
    medusa) medusa_order ;;
    *) die "unknown engine '$ENGINE' (woocommerce or medusa)" ;;
esac

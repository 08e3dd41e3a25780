#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# The whole product on a real cluster, end to end:
#   1. a k3d cluster (deploy/k3d-up.sh),
#   2. the platform image and the store images built and imported,
#   3. the platform chart installed with deploy/values/platform-local.yaml,
#   4. per engine (WooCommerce, Medusa): a store created through the API,
#      waited on until ready, its credentials read, an order placed over its
#      storefront API, the store deleted and waited on until gone
#      (deploy/api-smoke.sh + deploy/place-order.sh),
#   5. the warm pool (WARM_POOL=1, the default): one pooled store per engine,
#      then a store created through the API that claims it; api-smoke.sh
#      prints each store's time from its 202 to Ready, cold and claimed,
#   6. nothing left behind: no store namespaces, helm releases or volumes.
#
#   deploy/e2e-cluster.sh
#
# Environment: CLUSTER_NAME (storeplatform-e2e), ENGINES ("woocommerce medusa"),
# PARALLEL=1 (run the engines at once), KEEP_CLUSTER=1 (do not delete the
# cluster at the end), BUILD_WOOCOMMERCE_IMAGE=1 (also build and import
# images/wordpress-woocommerce), ARTIFACTS_DIR (diagnostics on failure),
# HTTP_PORT (80), WARM_POOL (1; 0 skips step 5), POOL_TIMEOUT (900 s for beat
# to fill the pool), LEFTOVER_TIMEOUT (900 s). Needs docker, k3d, kubectl,
# helm (v3.14+ or v4), curl, python3. Takes 15-30 minutes, mostly image
# builds and pulls.
set -euo pipefail

SCRIPT_NAME="e2e"
DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$DEPLOY_DIR/.." && pwd)"
# shellcheck source=lib/http.sh
source "$DEPLOY_DIR/lib/http.sh"

export CLUSTER_NAME="${CLUSTER_NAME:-storeplatform-e2e}"
export HTTP_PORT="${HTTP_PORT:-80}"
NAMESPACE="${NAMESPACE:-storeplatform}"
RELEASE="${RELEASE:-storeplatform}"
ENGINES="${ENGINES:-woocommerce medusa}"
IMAGE_TAG="${IMAGE_TAG:-e2e-$(date -u +%Y%m%d%H%M%S)}"
PLATFORM_IMAGE="storeplatform:$IMAGE_TAG"
ARTIFACTS_DIR="${ARTIFACTS_DIR:-$ROOT/.run/e2e-artifacts}"
HELM="${HELM:-$(command -v helm || echo "$ROOT/.tools/bin/helm")}"
BASE_URL="http://storeplatform.localtest.me"
E2E_USER="e2e-admin"
E2E_PASSWORD="$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')"
LEFTOVER_TIMEOUT="${LEFTOVER_TIMEOUT:-900}"

need docker k3d kubectl curl python3
[[ -x "$HELM" ]] || die "helm not found (PATH or $ROOT/.tools/bin/helm from scripts/install-tools.sh)"
if [[ "$HTTP_PORT" != 80 ]]; then
    # Storefront URLs carry no port: send every request to the mapped port.
    export CURL_EXTRA_ARGS="--connect-to ::127.0.0.1:$HTTP_PORT"
fi

collect_diagnostics() {
    mkdir -p "$ARTIFACTS_DIR"
    log "collecting diagnostics into $ARTIFACTS_DIR"
    kubectl get all,ingress,networkpolicy,pvc -A -o wide >"$ARTIFACTS_DIR/objects.txt" 2>&1 || true
    kubectl get pv -o wide >"$ARTIFACTS_DIR/pv.txt" 2>&1 || true
    kubectl get events -A --sort-by=.lastTimestamp >"$ARTIFACTS_DIR/events.txt" 2>&1 || true
    "$HELM" list -A -a >"$ARTIFACTS_DIR/helm-releases.txt" 2>&1 || true
    local component
    for component in web worker beat; do
        kubectl -n "$NAMESPACE" logs "deployment/$RELEASE-$component" --all-containers --tail=2000 \
            >"$ARTIFACTS_DIR/platform-$component.log" 2>&1 || true
    done
    kubectl -n "$NAMESPACE" logs -l app.kubernetes.io/component=migrate --tail=500 \
        >"$ARTIFACTS_DIR/platform-migrate.log" 2>&1 || true
    local ns
    for ns in $(kubectl get ns -l app.kubernetes.io/managed-by=storeplatform -o name 2>/dev/null); do
        ns="${ns#namespace/}"
        kubectl -n "$ns" describe pods >"$ARTIFACTS_DIR/$ns-pods.txt" 2>&1 || true
        kubectl -n "$ns" logs -l app.kubernetes.io/instance="$ns" --all-containers --tail=500 \
            >"$ARTIFACTS_DIR/$ns.log" 2>&1 || true
    done
}

finish() {
    local status=$?
    if [[ $status -ne 0 ]]; then
        collect_diagnostics
        log "FAILED (exit $status); diagnostics in $ARTIFACTS_DIR"
    fi
    if [[ "${KEEP_CLUSTER:-0}" == 1 ]]; then
        log "KEEP_CLUSTER=1: cluster $CLUSTER_NAME kept (k3d cluster delete $CLUSTER_NAME)"
    else
        k3d cluster delete "$CLUSTER_NAME" >/dev/null 2>&1 || true
    fi
    rm -f "$HTTP_BODY" "$HTTP_BODY.err"
    exit "$status"
}
trap finish EXIT

# An image a chart renders with the local profile, found by name, so this
# script follows whatever the engine charts and their profiles say.
chart_image() {  # chart_image CHART PATTERN [--set ...]
    local chart="$1" pattern="$2"
    shift 2
    "$HELM" template e2e-image "$ROOT/charts/$chart" \
        -f "$ROOT/deploy/values/$chart-local.yaml" \
        --set-string store.id=e2eimage00,store.name=e2e,store.host=e2e.localtest.me,store.scheme=http \
        --set-string existingSecret=store-credentials "$@" |
        awk '$1 == "image:" || $2 == "image:" {print $NF}' | tr -d '"' | grep -- "$pattern" | sort -u | head -n 1 || true
}

# Python run by manage.py shell in the platform's web pod; values go in as
# environment variables, never into the code.
manage_shell() {  # manage_shell PYTHON [ENV=VALUE ...]: code in the web pod
    local code="$1"
    shift
    kubectl -n "$NAMESPACE" exec "deployment/$RELEASE-web" -c web -- \
        env "$@" python manage.py shell -c "$code"
}

# 1. Cluster.
"$DEPLOY_DIR/k3d-up.sh"

# 2. Images.
log "building $PLATFORM_IMAGE"
docker build -t "$PLATFORM_IMAGE" "$ROOT"
images=("$PLATFORM_IMAGE")
if [[ " $ENGINES " == *" medusa "* ]]; then
    medusa_image="$(chart_image medusa medusa)"
    [[ -n "$medusa_image" ]] || die "could not find the Medusa image in charts/medusa rendered with medusa-local.yaml"
    log "building $medusa_image from images/medusa"
    docker build -t "$medusa_image" "$ROOT/images/medusa"
    images+=("$medusa_image")
fi
if [[ "${BUILD_WOOCOMMERCE_IMAGE:-0}" == 1 ]]; then
    woo_image="$(chart_image woocommerce wordpress-woocommerce --set woocommerce.source=baked)"
    [[ -n "$woo_image" ]] || die "could not find the baked WooCommerce image in charts/woocommerce"
    log "building $woo_image from images/wordpress-woocommerce (used when woocommerce-local.yaml says source: baked)"
    docker build -t "$woo_image" "$ROOT/images/wordpress-woocommerce"
    images+=("$woo_image")
fi
log "importing ${images[*]} into k3d"
k3d image import --cluster "$CLUSTER_NAME" "${images[@]}"

# 3. The platform.
kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
# Every platform pod must pass the restricted Pod Security Standard.
kubectl label namespace "$NAMESPACE" --overwrite \
    pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/warn=restricted >/dev/null
if ! kubectl -n "$NAMESPACE" get secret storeplatform-secrets >/dev/null 2>&1; then
    token() { python3 -c "import secrets; print(secrets.token_hex($1))"; }
    kubectl -n "$NAMESPACE" create secret generic storeplatform-secrets \
        --from-literal=django-secret-key="$(token 32)" \
        --from-literal=store-credentials-key="$(token 32)" \
        --from-literal=postgres-password="$(token 24)" \
        --from-literal=redis-password="$(token 24)" \
        --from-literal=metrics-token="$(token 24)" >/dev/null
fi
log "installing the platform chart ($RELEASE in $NAMESPACE)"
"$HELM" upgrade --install "$RELEASE" "$ROOT/charts/platform" \
    --namespace "$NAMESPACE" \
    -f "$ROOT/deploy/values/platform-local.yaml" \
    --set-string image.repository=storeplatform \
    --set-string image.tag="$IMAGE_TAG" \
    --set-string image.pullPolicy=Never \
    --wait --wait-for-jobs --timeout 15m

deadline=$((SECONDS + 180))
until { http GET "$BASE_URL/healthz" && [[ "$HTTP_STATUS" == 200 ]]; }; do
    ((SECONDS < deadline)) || die "$BASE_URL/healthz is not 200 through traefik (last: $HTTP_STATUS $(http_excerpt))"
    sleep 3
done
log "the platform answers at $BASE_URL"

manage_shell "
import os
from django.contrib.auth import get_user_model
user, _ = get_user_model().objects.get_or_create(username=os.environ['E2E_USER'])
user.set_password(os.environ['E2E_PASSWORD'])
user.save()
" E2E_USER="$E2E_USER" E2E_PASSWORD="$E2E_PASSWORD" >/dev/null
log "API user $E2E_USER ready"

# 4. One store per engine, through the API, with an order in between.
export DEPLOY_DIR
# shellcheck disable=SC2016  # expanded by api-smoke.sh's hook shell
on_ready='"$DEPLOY_DIR/place-order.sh" "$ENGINE" "$STOREFRONT_URL"'
run_engine() {
    ON_READY="$on_ready" "$DEPLOY_DIR/api-smoke.sh" "$BASE_URL" "$E2E_USER" "$E2E_PASSWORD" "$1"
}
mkdir -p "$ARTIFACTS_DIR"
if [[ "${PARALLEL:-0}" == 1 ]]; then
    declare -A pids
    for engine in $ENGINES; do
        run_engine "$engine" >"$ARTIFACTS_DIR/smoke-$engine.log" 2>&1 &
        pids[$engine]=$!
    done
    failed=""
    for engine in $ENGINES; do
        wait "${pids[$engine]}" || failed="$failed $engine"
        sed "s/^/[$engine] /" "$ARTIFACTS_DIR/smoke-$engine.log" >&2
    done
    [[ -z "$failed" ]] || die "store life cycle failed for:$failed"
else
    for engine in $ENGINES; do
        run_engine "$engine"
    done
fi

# 5. The warm pool: one pooled store per engine, built by beat, then a create
# that claims it (api-smoke.sh prints its time from the 202 to Ready next to
# the cold one's above). The pool size goes back to 0 at the end, so beat
# deletes what it holds (the refill after a claim builds another first).
set_pool_size() {  # set_pool_size SIZE: for each engine in $ENGINES
    manage_shell "
import os
from stores.models import PoolPolicy
for engine in os.environ['ENGINES'].split():
    PoolPolicy.objects.update_or_create(engine=engine, defaults={'size': int(os.environ['SIZE'])})
" ENGINES="$ENGINES" SIZE="$1" >/dev/null
}
if [[ "${WARM_POOL:-1}" == 1 ]]; then
    log "warm pool: asking beat for one pooled store per engine ($ENGINES)"
    set_pool_size 1
    deadline=$((SECONDS + ${POOL_TIMEOUT:-900}))
    until [[ "$(manage_shell "
import os
from stores.models import Store
engines = os.environ['ENGINES'].split()
ready = {e for e in engines if Store.objects.filter(owner__isnull=True, engine=e, status='pooled').exists()}
print('yes' if len(ready) == len(engines) else 'no')
" ENGINES="$ENGINES")" == yes ]]; do
        ((SECONDS < deadline)) || die "the warm pool did not fill within ${POOL_TIMEOUT:-900}s (POOL_TIMEOUT)"
        sleep 5
    done
    log "warm pool: full; creating one store per engine, each claiming a pooled one"
    for engine in $ENGINES; do
        EXPECT_CLAIM=1 run_engine "$engine"
    done
    set_pool_size 0
    log "warm pool: size 0 again; beat deletes the pooled stores"
fi

# 6. Nothing left behind. Namespace deletion finishes asynchronously.
deadline=$((SECONDS + LEFTOVER_TIMEOUT))
while :; do
    namespaces="$(kubectl get namespaces -l app.kubernetes.io/managed-by=storeplatform -o name)"
    volumes="$(kubectl get pv -o jsonpath='{range .items[*]}{.metadata.name} {.spec.claimRef.namespace}{"\n"}{end}' |
        awk '$2 ~ /^store-/ {print $1 " (" $2 ")"}')"
    releases="$("$HELM" list --all-namespaces --all --short --filter '^store-')"
    [[ -z "$namespaces$volumes$releases" ]] && break
    ((SECONDS < deadline)) || die "left behind after ${LEFTOVER_TIMEOUT}s: namespaces [$namespaces] volumes [$volumes] releases [$releases]"
    sleep 5
done
log "no store namespaces, volumes or releases left"
log "PASSED: engines $ENGINES created (cold$([[ "${WARM_POOL:-1}" == 1 ]] && echo ' and from the warm pool')), ordered from and deleted on cluster $CLUSTER_NAME"

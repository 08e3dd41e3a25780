#!/usr/bin/env bash
# Creates (or starts) a k3d cluster for running storeplatform on a laptop:
# one k3s server with its bundled traefik ingress controller and local-path
# storage class, ports 80 and 443 of this machine mapped to traefik, so that
# http://<anything>.localtest.me reaches the cluster (localtest.me and all its
# subdomains resolve to 127.0.0.1 in public DNS). Idempotent.
#
#   deploy/k3d-up.sh            # cluster "storeplatform", context k3d-storeplatform
#
# Environment: CLUSTER_NAME (storeplatform), K3S_IMAGE (pinned k3s release),
# HTTP_PORT (80), HTTPS_PORT (443), AGENTS (0), WAIT_TIMEOUT (300 seconds).
# Needs docker (a running engine), k3d v5 and kubectl.
set -euo pipefail

CLUSTER_NAME="${CLUSTER_NAME:-storeplatform}"
K3S_IMAGE="${K3S_IMAGE:-rancher/k3s:v1.33.4-k3s1}"
HTTP_PORT="${HTTP_PORT:-80}"
HTTPS_PORT="${HTTPS_PORT:-443}"
AGENTS="${AGENTS:-0}"
WAIT_TIMEOUT="${WAIT_TIMEOUT:-300}"

log() { printf 'k3d-up: %s\n' "$*" >&2; }
die() {
    log "FAILED: $*"
    exit 1
}

for tool in docker k3d kubectl; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' is required but not on PATH"
done
docker info >/dev/null 2>&1 || die "no Docker engine answers ('docker info' failed); start Docker first"

if k3d cluster list "$CLUSTER_NAME" >/dev/null 2>&1; then
    log "cluster $CLUSTER_NAME exists; starting it if stopped"
    k3d cluster start "$CLUSTER_NAME" --wait >/dev/null
else
    log "creating cluster $CLUSTER_NAME ($K3S_IMAGE), host ports $HTTP_PORT/$HTTPS_PORT -> traefik"
    k3d cluster create "$CLUSTER_NAME" \
        --image "$K3S_IMAGE" \
        --servers 1 --agents "$AGENTS" \
        --port "${HTTP_PORT}:80@loadbalancer" \
        --port "${HTTPS_PORT}:443@loadbalancer" \
        --wait --timeout "${WAIT_TIMEOUT}s"
fi

kubectl config use-context "k3d-$CLUSTER_NAME" >/dev/null
kubectl wait --for=condition=Ready nodes --all --timeout="${WAIT_TIMEOUT}s" >/dev/null

# k3s installs traefik through a HelmChart job a little after the node is up.
deadline=$((SECONDS + WAIT_TIMEOUT))
until kubectl -n kube-system get deployment traefik >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "traefik did not appear in kube-system within ${WAIT_TIMEOUT}s"
    sleep 3
done
kubectl -n kube-system rollout status deployment/traefik --timeout="${WAIT_TIMEOUT}s" >/dev/null
kubectl -n kube-system rollout status deployment/coredns --timeout="${WAIT_TIMEOUT}s" >/dev/null
kubectl get storageclass local-path >/dev/null || die "the local-path storage class is missing"

if ! python3 -c 'import socket, sys; sys.exit(socket.gethostbyname("check.localtest.me") != "127.0.0.1")' 2>/dev/null; then
    log "warning: check.localtest.me does not resolve to 127.0.0.1 here (DNS rebinding protection" \
        "in the local resolver?); add the hosts you need to /etc/hosts"
fi
log "cluster $CLUSTER_NAME is ready: kubectl context k3d-$CLUSTER_NAME, ingress class traefik," \
    "storage class local-path, http://*.localtest.me:$HTTP_PORT"

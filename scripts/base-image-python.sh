#!/usr/bin/env bash
# Builds a local stand-in for the official Python base image that the root
# Dockerfile's FROM names (ARG PYTHON_IMAGE, python:3.11.*-slim-bookworm), for
# machines that reach Debian's mirror but no image registry (our development
# machines and CI; see /work/shared/ENVIRONMENT.md). The Dockerfile itself
# stays the one users build: only its base comes from here.
#
# What it holds, like the official slim image: Debian bookworm (minbase),
# Debian's python3 3.11 with venv and a system pip (the Dockerfile's tools
# stage runs `python3 -m pip download`), `python` on PATH, ca-certificates,
# LANG=C.UTF-8. Plus this machine's CA bundle, with PIP_CERT and SSL_CERT_FILE
# pointing at it, because this network re-signs TLS and pip inside a build
# must trust it (`podman build --env` does not reach RUN steps).
#
# Idempotent: does nothing when the image exists, so CI and repeated test runs
# reuse it from podman's own storage. Needs root (debootstrap) and podman.
#
#   scripts/base-image-python.sh            # tag from the Dockerfile
#   scripts/base-image-python.sh NAME:TAG   # another tag
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IMAGE="${1:-$(sed -n 's/^ARG PYTHON_IMAGE=//p' "$ROOT/Dockerfile")}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

if [[ -z "$IMAGE" ]]; then
    echo "no ARG PYTHON_IMAGE=... in $ROOT/Dockerfile; pass the image name" >&2
    exit 2
fi
if podman image exists "$IMAGE"; then
    exit 0
fi
if [[ $EUID -ne 0 ]]; then
    echo "building the base image $IMAGE needs root (debootstrap): run as root" >&2
    exit 1
fi
for tool in debootstrap podman; do
    if ! command -v "$tool" >/dev/null; then
        echo "$tool is missing: apt-get install -y podman runc debootstrap" >&2
        exit 1
    fi
done

WORK="$(mktemp -d /var/tmp/base-image-python.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
ROOTFS="$WORK/rootfs"

# python-is-python3 gives /usr/bin/python; the official image has
# /usr/local/bin/python. Either way `python` is on PATH.
debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
    bookworm "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
    tail -n 30 "$WORK/debootstrap.log" >&2
    exit 1
}
# The official image's pip is its own, not Debian's: no PEP 668 marker.
rm -f "$ROOTFS"/usr/lib/python3.*/EXTERNALLY-MANAGED
# The official image keeps no apt lists or downloaded packages either.
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
if [[ -f "$HOST_CA_BUNDLE" ]]; then
    cp "$HOST_CA_BUNDLE" "$ROOTFS$HOST_CA_BUNDLE"
fi

tar -C "$ROOTFS" -c . | podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change "ENV PIP_CERT=$HOST_CA_BUNDLE" \
    --change "ENV SSL_CERT_FILE=$HOST_CA_BUNDLE" \
    --change 'CMD ["python3"]' \
    --quiet - "$IMAGE" >/dev/null
echo "built $IMAGE ($(chroot "$ROOTFS" python3 --version))"

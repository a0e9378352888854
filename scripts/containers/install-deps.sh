#!/usr/bin/env bash
# Installs what the container test needs, from Debian's own archive: podman with runc (crun
# 1.8 cannot run on hosts with hybrid cgroups) and netavark/aardvark-dns/iptables (compose
# services find each other by name), podman-compose (the compose runner), debootstrap (builds
# the base image: no registry serves base images to CI) and prometheus (scrapes the running
# stack). Idempotent; apt calls retried and lock-waited by scripts/lib/apt.sh.
#
#   bash scripts/containers/install-deps.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../lib/apt.sh
source "$here/../lib/apt.sh"

t_start=$(date +%s)
elapsed() { echo $(( $(date +%s) - t_start ))s; }

pkgs=(podman runc podman-compose debootstrap prometheus uidmap slirp4netns
      netavark aardvark-dns iptables ca-certificates)

mapfile -t missing < <(apt_missing "${pkgs[@]}")
if [ "${#missing[@]}" -eq 0 ]; then
  echo "containers/install-deps: packages already present ($(elapsed))"
  exit 0
fi

echo "containers/install-deps: installing ${missing[*]}"
# The prometheus package's postinst would start a system Prometheus on :9090; the test runs
# its own on a free port, so keep packaged daemons from starting.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${apt_sudo[@]}" tee "$policy" >/dev/null
  "${apt_sudo[@]}" chmod +x "$policy"
  created_policy=1
fi
trap '[ "$created_policy" = 1 ] && "${apt_sudo[@]}" rm -f "$policy"' EXIT
for attempt in 1 2 3; do
  if apt_install "${missing[@]}"; then
    echo "containers/install-deps: done after $(elapsed)"
    exit 0
  fi
  echo "containers/install-deps: install attempt $attempt failed; retrying" >&2
  apt_updated=0
  sleep $((attempt * 15))
done
echo "containers/install-deps: could not install ${missing[*]}" >&2
exit 1

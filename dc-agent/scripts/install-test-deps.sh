#!/usr/bin/env bash
# Installs what dc-agent's integration tests need from Debian's own archive: a Samba AD DC
# (samba, with its LDAP server), ldb-tools (ldbsearch/ldbmodify against the DC's sam.ldb)
# and smbclient (samba-tool's python modules use it on some versions).
# Idempotent: packages already present are skipped. Prints how long it took for CI logs.
#
#   bash dc-agent/scripts/install-test-deps.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../../scripts/lib/apt.sh
source "$here/../../scripts/lib/apt.sh"

t_start=$(date +%s)
elapsed() { echo $(( $(date +%s) - t_start ))s; }

pkgs=(samba samba-ad-provision samba-dsdb-modules samba-vfs-modules winbind ldb-tools smbclient krb5-user
  # The Samba capture source and its end-to-end DC: gpgme for --decrypt-samba-gpg (only a
  # Recommends of samba), gpg for the key, nss_wrapper for smbd in a temp dir, real clients.
  python3-gpg gnupg libnss-wrapper ldap-utils)

mapfile -t missing < <(apt_missing "${pkgs[@]}")
if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-test-deps: packages already present ($(elapsed))"
  exit 0
fi

echo "install-test-deps: installing ${missing[*]}"
# Debian's samba postinst tries to start smbd/nmbd/samba-ad-dc; policy-rc.d keeps the
# packaged daemons from starting on a CI host (the tests run their own DC in a temp dir).
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${apt_sudo[@]}" tee "$policy" >/dev/null
  "${apt_sudo[@]}" chmod +x "$policy"
  created_policy=1
fi
trap '[ "$created_policy" = 1 ] && "${apt_sudo[@]}" rm -f "$policy"' EXIT
# krb5-user asks for a default realm; noninteractive takes the empty default.
apt_install "${missing[@]}"
echo "install-test-deps: done after $(elapsed)"

#!/usr/bin/env bash
# Installs what dc-agent's integration tests need from Debian's own archive: a Samba AD DC
# (samba, with its LDAP server), ldb-tools (ldbsearch/ldbmodify against the DC's sam.ldb)
# and smbclient (samba-tool's python modules use it on some versions).
# Idempotent: packages already present are skipped. Prints how long it took for CI logs.
#
#   bash dc-agent/scripts/install-test-deps.sh
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

t_start=$(date +%s)
elapsed() { echo $(( $(date +%s) - t_start ))s; }

pkgs=(samba samba-ad-provision samba-dsdb-modules samba-vfs-modules winbind ldb-tools smbclient krb5-user)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-test-deps: packages already present ($(elapsed))"
  exit 0
fi

echo "install-test-deps: installing ${missing[*]}"
# Other jobs on the same host may hold the dpkg lock; wait for it rather than fail.
apt_opts=(-o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends)
"${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq \
  || echo "install-test-deps: warning: apt-get update reported errors" >&2
# Debian's samba postinst tries to start smbd/nmbd/samba-ad-dc; policy-rc.d keeps the
# packaged daemons from starting on a CI host (the tests run their own DC in a temp dir).
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee "$policy" >/dev/null
  "${sudo_cmd[@]}" chmod +x "$policy"
  created_policy=1
fi
trap '[ "$created_policy" = 1 ] && "${sudo_cmd[@]}" rm -f "$policy"' EXIT
# krb5-user asks for a default realm; noninteractive takes the empty default.
"${sudo_cmd[@]}" apt-get install "${apt_opts[@]}" "${missing[@]}" >/dev/null
echo "install-test-deps: done after $(elapsed)"

#!/usr/bin/env bash
# Debian packages that `npm run package:windows` needs: mingw-w64 (filter DLL, service wrapper),
# wixl (MSI), osslsigncode (Authenticode), zip. Idempotent; waits for a dpkg lock held by a
# concurrent install instead of failing.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(make gcc-mingw-w64-x86-64 wixl osslsigncode zip)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
sudo_cmd=()
[ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
echo "install-build-deps: installing ${missing[*]}"
# A mirror mid-sync can fail one index; the install below then resolves or fails loudly.
"${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq || echo "install-build-deps: warning: apt-get update reported errors" >&2
"${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

#!/usr/bin/env bash
# Debian packages that `npm run package:windows` needs: mingw-w64 (filter DLL, service wrapper),
# wixl (MSI), osslsigncode (Authenticode), zip; openssl (the MSI test's throw-away signing
# certificate). Idempotent; apt waits for the dpkg lock.
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/lib/apt.sh"
pkgs=(make gcc-mingw-w64-x86-64 wixl osslsigncode zip openssl)
mapfile -t missing < <(apt_missing "${pkgs[@]}")
[ "${#missing[@]}" -eq 0 ] && exit 0
echo "install-build-deps: installing ${missing[*]}"
apt_install "${pkgs[@]}"

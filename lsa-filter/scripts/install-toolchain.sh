#!/usr/bin/env bash
# Installs what lsa-filter's build and wine tests need, from Debian's own archive only.
# Idempotent: packages already present are skipped, a prefix already booted is reused.
#
#   PWSYNC_WINE32=0   skip the 32-bit wine (no i386 foreign architecture); the x86 DLL is
#                     then still built and inspected, but not executed.
#
# Prints how long each step took, so CI logs show the cost.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export DEBIAN_FRONTEND=noninteractive

want_wine32="${PWSYNC_WINE32:-1}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

t_start=$(date +%s)
elapsed() { echo $(( $(date +%s) - t_start ))s; }

# make + mingw cross compilers (with their binutils: windres, objdump) + 64-bit wine.
pkgs=(make gcc-mingw-w64-x86-64 gcc-mingw-w64-i686 wine wine64)

if [ "$want_wine32" = "1" ]; then
  # Debian ships 32-bit wine only as wine32:i386; running i686 PE code under wine needs it.
  if ! dpkg --print-foreign-architectures | grep -qx i386; then
    "${sudo_cmd[@]}" dpkg --add-architecture i386
  fi
  pkgs+=(wine32:i386)
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-toolchain: installing ${missing[*]}"
  # A mirror mid-sync can fail one index (seen here: bookworm-security i386); the install
  # below then either still resolves or fails loudly, so the update is not fatal by itself.
  "${sudo_cmd[@]}" apt-get update -qq || echo "install-toolchain: warning: apt-get update reported errors" >&2
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "install-toolchain: apt done after $(elapsed)"
else
  echo "install-toolchain: packages already present"
fi

# A private, headless wine prefix under the project's .state/ (git-ignored), never ~/.wine.
# mscoree/mshtml are disabled so wineboot never offers to download Mono or Gecko.
export WINEPREFIX="${WINEPREFIX:-$repo/.state/wine}"
export WINEDEBUG=-all
export WINEDLLOVERRIDES="mscoree,mshtml="
unset DISPLAY
mkdir -p "$(dirname "$WINEPREFIX")"
if [ ! -f "$WINEPREFIX/system.reg" ]; then
  echo "install-toolchain: initialising wine prefix $WINEPREFIX"
  wine64 wineboot -i >/dev/null 2>&1 || wine wineboot -i >/dev/null 2>&1
  wineserver -w
  echo "install-toolchain: wineboot done after $(elapsed)"
fi
wineserver -k 2>/dev/null || true

echo "install-toolchain: ready in $(elapsed) (wine: $(wine --version 2>/dev/null || echo none))"

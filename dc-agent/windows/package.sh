#!/usr/bin/env bash
# npm run package:windows — builds what a Windows admin installs on a domain controller:
#   dist/pwsync-dc-<version>-x64.msi   one signed MSI (see dc-agent/README.md, "Install on a DC")
#   dist/pwsync-dc-<version>-x64.zip   the same signed files, for admins who deploy with their own tools
# from this checkout, on Debian, with no Windows machine: mingw-w64 builds the filter DLL and the
# service wrapper, esbuild + Node's SEA make dc-agent.exe, wixl (msitools) the MSI, osslsigncode
# signs every executable and the MSI.
#
# Signing (Authenticode), with the certificate the build is given:
#   PWSYNC_SIGN_CERT=cert.pem PWSYNC_SIGN_KEY=key.pem     PEM certificate (chain) and private key
#   PWSYNC_SIGN_KEY_PASSWORD_FILE=file                    if the key is encrypted
#   PWSYNC_SIGN_TIMESTAMP_URL=http://timestamp.example    RFC 3161 timestamp (needs network)
#   --unsigned                                            build without (never for a DC)
# Other options: PWSYNC_PACKAGE_OUT=<dir> (default dist/).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
t0=$(date +%s)
say() { echo "[package:windows] $* ($(( $(date +%s) - t0 ))s)"; }

unsigned=0
[ "${1:-}" = "--unsigned" ] && unsigned=1
if [ "$unsigned" = 0 ] && { [ -z "${PWSYNC_SIGN_CERT:-}" ] || [ -z "${PWSYNC_SIGN_KEY:-}" ]; }; then
  echo "package:windows: set PWSYNC_SIGN_CERT and PWSYNC_SIGN_KEY (PEM) to sign the package, or pass --unsigned" >&2
  exit 2
fi

bash dc-agent/windows/install-build-deps.sh
# The MSI test runs inside vitest: node_modules is there, and an `npm ci` now would pull it
# from under the test files running beside it.
[ "${PWSYNC_PACKAGE_SKIP_NPM:-0}" = 1 ] || bash scripts/ensure-deps.sh

version=$(node -p 'require("./dc-agent/package.json").version')
out="${PWSYNC_PACKAGE_OUT:-$repo/dist}"
build="$repo/.state/windows-build"
stage="$build/stage"
rm -rf "$stage"
mkdir -p "$stage" "$out"

say "pwsync-filter.dll (x64)"
make -C lsa-filter -s x64 >/dev/null
cp lsa-filter/build/x64/pwsync-filter.dll "$stage/"

say "pwsync-service.exe, pwsync-pipe.exe"
make -C dc-agent/windows/service -s OUT="$build/service" >/dev/null
cp "$build/service/pwsync-service.exe" "$stage/"
make -C dc-agent/native -s OUT="$build/native" >/dev/null
cp "$build/native/pwsync-pipe.exe" "$stage/"

say "dc-agent.exe (Node single executable)"
node --import tsx dc-agent/windows/build-exe.ts "$build"
cp "$build/dc-agent.exe" "$stage/"
cp dc-agent/windows/dc-agent.example.yaml "$stage/"

sign() {
  local file="$1" what="$2"
  [ "$unsigned" = 1 ] && return 0
  local args=(sign -certs "$PWSYNC_SIGN_CERT" -key "$PWSYNC_SIGN_KEY" -h sha256 -n "$what" -in "$file" -out "$file.signed")
  [ -n "${PWSYNC_SIGN_KEY_PASSWORD_FILE:-}" ] && args+=(-readpass "$PWSYNC_SIGN_KEY_PASSWORD_FILE")
  [ -n "${PWSYNC_SIGN_TIMESTAMP_URL:-}" ] && args+=(-ts "$PWSYNC_SIGN_TIMESTAMP_URL")
  osslsigncode "${args[@]}" >/dev/null
  mv "$file.signed" "$file"
}

say "signing"
sign "$stage/pwsync-filter.dll" "pwsync password filter"
sign "$stage/pwsync-service.exe" "pwsync DC agent service"
sign "$stage/pwsync-pipe.exe" "pwsync DC agent pipe"
sign "$stage/dc-agent.exe" "pwsync DC agent"

say "MSI"
msi="$out/pwsync-dc-$version-x64.msi"
# wixl resolves Source paths relative to the working directory (absolute ones are refused).
(cd "$stage" && wixl -a x64 -D Version="$version" -D SourceDir=. -o "$msi.tmp" "$repo/dc-agent/windows/msi/pwsync-dc.wxs")
mv "$msi.tmp" "$msi"
sign "$msi" "pwsync DC agent $version"

say "zip"
zip="$out/pwsync-dc-$version-x64.zip"
rm -f "$zip"
(cd "$stage" && zip -q -X "$zip" dc-agent.exe pwsync-service.exe pwsync-pipe.exe pwsync-filter.dll dc-agent.example.yaml)

say "done: $msi ($(du -m "$msi" | cut -f1) MB), $zip ($(du -m "$zip" | cut -f1) MB)$([ "$unsigned" = 1 ] && echo ', UNSIGNED')"

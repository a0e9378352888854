#!/usr/bin/env bash
# Every test, from a fresh Debian machine with Node 20: installs what the tests need (npm
# packages; Debian's samba for a real AD DC; mingw-w64 and wine for the LSA filter), then runs
# proto lint + breaking-change check, the typecheck, every vitest suite (unit, integration,
# end-to-end) and the filter's wine suite. Exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
started=$(date +%s)
step() { echo; echo "=== $* ($(( $(date +%s) - started ))s)"; }

# Parts that could not run on this machine say why here; the summary repeats them loudly.
mkdir -p .state
skipped_file=.state/skipped.txt
rm -f "$skipped_file"

step "npm dependencies"
bash scripts/ensure-deps.sh
step "Debian packages for the real-parts tests (samba, mingw-w64, wine)"
bash dc-agent/scripts/install-test-deps.sh
bash lsa-filter/scripts/install-toolchain.sh
bash dc-agent/windows/install-build-deps.sh   # wixl, osslsigncode: the Windows package and its wine test

step "proto: buf lint, buf breaking, generated code current"
npx buf lint
bash scripts/buf-breaking.sh
bash scripts/check-generated.sh

step "format and lint (Biome: npm run format fixes the layout), typecheck, the import graph (.dependency-cruiser.cjs, declared workspace dependencies)"
npx biome ci . --colors=off
npx tsc -p tsconfig.json
npm run -s check:imports

step "lsa-filter: build x64/x86 and exercise the DLL under wine"
bash lsa-filter/test/run.sh

step "vitest: unit, integration and end-to-end suites"
# The dc-agent suite replays the frames the wine run just captured from the real DLL.
PWSYNC_REQUIRE_CAPTURED_FRAMES=1 npx vitest run

bash scripts/test-containers.sh  # images, the compose stack under podman-compose, Prometheus (prints what it skips)

step "all tests passed"
if [ -s "$skipped_file" ]; then
  echo "!!! Some parts were NOT tested on this machine:"
  sed 's/^/!!!   /' "$skipped_file"
fi

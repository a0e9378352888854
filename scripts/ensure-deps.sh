#!/usr/bin/env bash
# Makes this checkout runnable on a fresh Debian machine with Node 20: npm packages from the
# lockfile (install scripts allowed only for the packages package.json's allowScripts names).
# Skips the install when node_modules already matches the lockfile.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "pwsync needs Node.js 20 or newer on PATH" >&2
  exit 2
fi
stamp=node_modules/.pwsync-lock-hash
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "[deps] npm ci (first run or package-lock.json changed)"
npm ci --no-audit --no-fund
echo "$want" > "$stamp"

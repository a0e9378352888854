#!/usr/bin/env bash
# Generated code is never edited by hand and never stale: regenerate the protobuf-es code from
# proto/ into a scratch copy and compare it with what is committed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
npx buf generate --template buf.gen.yaml -o "$scratch" >/dev/null
if ! diff -r "$scratch/packages/proto/src/gen" packages/proto/src/gen >"$scratch.diff" 2>&1; then
  cat "$scratch.diff"
  rm -f "$scratch.diff"
  echo "generated protobuf code differs from proto/: run 'npm run gen' and commit the result" >&2
  exit 1
fi
rm -f "$scratch.diff"
echo "generated protobuf code matches proto/"

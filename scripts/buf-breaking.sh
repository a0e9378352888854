#!/usr/bin/env bash
# buf breaking (rules FILE, see buf.yaml) of the proto contracts against the commit before
# this one on main (or against main itself when run on another branch), so a change that would
# break agents already deployed or events already in the log is refused.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
branch=$(git rev-parse --abbrev-ref HEAD 2>/dev/null || echo "")
if [ "$branch" != "main" ] && git rev-parse --verify -q main >/dev/null; then
  against=main
elif git rev-parse --verify -q HEAD~1 >/dev/null; then
  against=HEAD~1
else
  echo "buf breaking: no earlier commit to compare with (shallow clone?); skipped"
  exit 0
fi
if ! git ls-tree -d "$against" proto >/dev/null 2>&1 || [ -z "$(git ls-tree -d "$against" proto)" ]; then
  echo "buf breaking: $against has no proto/ yet; nothing to compare"
  exit 0
fi
echo "buf breaking against $against"
npx buf breaking --against ".git#ref=$(git rev-parse "$against")"

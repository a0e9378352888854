#!/usr/bin/env bash
# Drops HOLDER_PID (and holders that died without releasing) from DIR's users; stops the DC
# when none is left. Counterpart of acquire.sh.
#
#   dc-agent/test/samba/release.sh DIR HOLDER_PID
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${1:?usage: release.sh DIR HOLDER_PID}"
holder="${2:?usage: release.sh DIR HOLDER_PID}"
exec 9>"$dir.lock"
flock 9
touch "$dir/holders"
keep=()
while read -r pid; do
  [ -n "$pid" ] || continue
  if [ "$pid" != "$holder" ] && kill -0 "$pid" 2>/dev/null; then keep+=("$pid"); fi
done <"$dir/holders"
if [ "${#keep[@]}" -eq 0 ]; then
  : >"$dir/holders"
  bash "$here/stop.sh" "$dir" 9>&-
else
  printf '%s\n' "${keep[@]}" >"$dir/holders"
fi

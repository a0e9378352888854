#!/usr/bin/env bash
# Stops the DC started by start.sh in DIR (samba-full) (its process group only).
set -euo pipefail
dir="${1:?usage: stop.sh DIR}"
pidfile="$dir/run/samba.pid"
[ -f "$pidfile" ] || exit 0
pid="$(cat "$pidfile")"
if kill -0 "$pid" 2>/dev/null; then
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
fi
rm -f "$pidfile"

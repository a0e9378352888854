#!/usr/bin/env bash
# Starts the DC provisioned by provision.sh in DIR (if it is not running yet) and waits until
# LDAPS answers. Samba writes its TLS certificate on first start, so the CA file exists after.
#
#   dc-agent/test/samba/start.sh DIR
set -euo pipefail
dir="${1:?usage: start.sh DIR}"
# shellcheck source=/dev/null
. "$dir/env"
if ! ip -4 addr show dev lo | grep -q " $SAMBA_LISTEN/"; then ip addr add "$SAMBA_LISTEN/32" dev lo; fi

pidfile="$dir/run/samba.pid"
mkdir -p "$dir/run"
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "start: samba already running (pid $(cat "$pidfile"))"
else
  t_start=$(date +%s%N)
  # -F: stay in the foreground of this subshell so $! is samba's own pid; --debug-stdout
  # would mix with ours, so logs go to the DC's log file.
  setsid samba -F -s "$SAMBA_CONF" --option="pid directory = $dir/run" -l "$dir/log" </dev/null >>"$dir/samba.out" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/$SAMBA_LISTEN/636") 2>/dev/null && [ -s "$SAMBA_CA" ]; then
      echo "start: samba up in $(( ($(date +%s%N) - t_start) / 1000000 )) ms (pid $(cat "$pidfile"))"
      exit 0
    fi
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "start: samba exited; last lines of its output:" >&2
      tail -30 "$dir/samba.out" >&2 || true
      exit 1
    fi
    sleep 0.1
  done
  echo "start: samba did not answer on $SAMBA_LISTEN:636 within 30 s" >&2
  exit 1
fi

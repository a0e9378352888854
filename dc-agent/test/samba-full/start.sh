#!/usr/bin/env bash
# Starts the DC provisioned by provision.sh in DIR (unless running) and waits until LDAPS,
# Kerberos and SMB answer. samba gets the DC keyring (public key only) and nss_wrapper.
#
#   dc-agent/test/samba-full/start.sh DIR
set -euo pipefail
dir="${1:?usage: start.sh DIR}"
# shellcheck source=/dev/null
. "$dir/env"
if ! grep -q " $SAMBA_LISTEN/" <<<"$(ip -4 addr show dev lo)"; then ip addr add "$SAMBA_LISTEN/32" dev lo; fi
pidfile="$dir/run/samba.pid"
mkdir -p "$dir/run" "$dir/log"
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "start: samba already running (pid $(cat "$pidfile"))"; exit 0
fi
nss_lib="$(ls /usr/lib/*/libnss_wrapper.so 2>/dev/null | head -1)"
[ -n "$nss_lib" ] || { echo "start: libnss_wrapper.so missing (apt-get install libnss-wrapper)" >&2; exit 3; }
t_start=$(date +%s%N)
GNUPGHOME="$SAMBA_GNUPG_DC" LD_PRELOAD="$nss_lib" NSS_WRAPPER_PASSWD="$dir/nss/passwd" NSS_WRAPPER_GROUP="$dir/nss/group" \
  SELFTEST_WINBINDD_SOCKET_DIR="$dir/winbindd" KRB5_CONFIG="$SAMBA_KRB5_CONF" \
  setsid samba -F -s "$SAMBA_CONF" --option="pid directory = $dir/run" -l "$dir/log" </dev/null >>"$dir/samba.out" 2>&1 &
echo $! >"$pidfile"
up() { (exec 3<>"/dev/tcp/$SAMBA_LISTEN/$1") 2>/dev/null; }
for _ in $(seq 1 600); do
  if up 636 && up 88 && up 445 && up 464 && [ -s "$SAMBA_CA" ]; then
    echo "start: samba up in $(( ($(date +%s%N) - t_start) / 1000000 )) ms (pid $(cat "$pidfile"))"; exit 0
  fi
  if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "start: samba exited; last lines of its output:" >&2; tail -30 "$dir/samba.out" >&2 || true; exit 1
  fi
  sleep 0.1
done
echo "start: samba did not answer on $SAMBA_LISTEN within 60 s" >&2
exit 1

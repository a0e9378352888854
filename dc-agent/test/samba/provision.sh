#!/usr/bin/env bash
# Provisions a throwaway Samba AD DC for dc-agent's integration tests into DIR (its own
# smb.conf, sam.ldb, TLS cert; nothing under /etc or /var is touched) and fills it with the
# accounts the tests look up. Idempotent: a DIR that finished provisioning is left alone.
#
#   dc-agent/test/samba/provision.sh DIR [LISTEN_IP]
#
# The DC listens on LISTEN_IP (default 127.77.0.1, added to lo as a /32 so Samba's interface
# probe finds it) on the standard LDAP ports 389/636: Samba AD has no setting to move them,
# and a dedicated loopback address keeps them off 127.0.0.1.
# Writes DIR/env (sourceable): realm, base DN, bind DN, CA path, listen address. The bind
# account's password is random and stored in DIR/bind.secret (0600), never printed.
set -euo pipefail

dir="${1:?usage: provision.sh DIR [LISTEN_IP]}"
ip_addr="${2:-127.77.0.1}"
realm="PWSYNC.TEST"
domain="PWSYNC"
base_dn="DC=pwsync,DC=test"

if [ -f "$dir/.provisioned" ]; then
  echo "provision: $dir already provisioned"
  exit 0
fi

command -v samba-tool >/dev/null || { echo "provision: samba-tool missing; run dc-agent/scripts/install-test-deps.sh" >&2; exit 3; }

t_start=$(date +%s%N)
rm -rf "$dir"
mkdir -p "$dir"
chmod 700 "$dir"

if ! ip -4 addr show dev lo | grep -q " $ip_addr/"; then
  ip addr add "$ip_addr/32" dev lo
fi

secret() { head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 20; }
admin_pass="Aa1-$(secret)"
bind_pass="Bb2-$(secret)"

# --targetdir keeps every path (private, state, lock, cache, smb.conf) inside $dir.
samba-tool domain provision \
  --use-rfc2307 \
  --realm="$realm" --domain="$domain" \
  --server-role=dc --dns-backend=NONE \
  --host-name=pwsyncdc \
  --adminpass="$admin_pass" \
  --targetdir="$dir" \
  --option="interfaces = $ip_addr" \
  --option="bind interfaces only = yes" \
  --option="server services = ldap" \
  --option="dcerpc endpoint servers = " \
  --option="tls enabled = yes" \
  --option="log level = 1" \
  >"$dir/provision.log" 2>&1 || { tail -30 "$dir/provision.log" >&2; exit 1; }

conf="$dir/etc/smb.conf"
sam="$dir/private/sam.ldb"
tool() { samba-tool "$@" -s "$conf" -H "tdb://$sam" >>"$dir/populate.log" 2>&1 || { echo "provision: samba-tool $* failed" >&2; tail -20 "$dir/populate.log" >&2; exit 1; }; }

# The service account the agent binds with: an ordinary user; AD lets authenticated users
# read the attributes the agent needs.
tool user create svc-pwsync "$bind_pass" --mail-address=svc-pwsync@pwsync.test
tool user setexpiry svc-pwsync --noexpiry

tool group add "Password Sync"
tool group add "Nested Team"
tool group add "Deep Team"
tool group addmembers "Password Sync" "Nested Team"
tool group addmembers "Nested Team" "Deep Team"

user() { # name mail [groups...]
  local name="$1" mail="$2"; shift 2
  tool user create "$name" --random-password --mail-address="$mail" --userou="CN=Users"
  for g in "$@"; do tool group addmembers "$g" "$name"; done
}
user alice alice@pwsync.test "Password Sync"
user bob bob@pwsync.test
user carol carol@pwsync.test "Nested Team"
user dan dan@pwsync.test "Deep Team"
user erin erin@pwsync.test "Password Sync"
tool user disable erin
# Names made of filter metacharacters: with {0} unescaped these would break the filter or
# match other accounts. Samba (like Windows) refuses '*' and '\\' in sAMAccountName
# ("samldb: sAMAccountName contains invalid '*' character"), so those reach the agent only
# as names that must match nothing; the tests send them and check nobody is matched.
user 'o(brien)' obrien@pwsync.test "Password Sync"
user 'ann)(!~&' ann@pwsync.test "Password Sync"
user 'zoë' zoe@pwsync.test "Password Sync"

umask 077
printf '%s' "$bind_pass" >"$dir/bind.secret"
cat >"$dir/env" <<ENV
SAMBA_REALM=$realm
SAMBA_DOMAIN=$domain
SAMBA_BASE_DN=$base_dn
SAMBA_BIND_DN=CN=svc-pwsync,CN=Users,$base_dn
SAMBA_LISTEN=$ip_addr
SAMBA_HOSTNAME=pwsyncdc.pwsync.test
SAMBA_CA=$dir/private/tls/ca.pem
SAMBA_CONF=$conf
ENV
touch "$dir/.provisioned"
echo "provision: done in $(( ($(date +%s%N) - t_start) / 1000000 )) ms"

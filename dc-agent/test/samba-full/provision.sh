#!/usr/bin/env bash
# Provisions a throwaway Samba AD DC with every service real clients need (LDAP, Kerberos
# KDC + kpasswd, RPC/SAMR, SMB) into DIR, for the Samba capture source's end-to-end tests.
# Separate from test/samba/provision.sh (the shared LDAP-only DC on 127.77.0.1): this one has
# its own address, its own dir, and a GPG key so `samba-tool user syncpasswords` can read
# cleartext. Nothing under /etc or /var is touched. Idempotent per DIR.
#
#   dc-agent/test/samba-full/provision.sh DIR [LISTEN_IP]
#
# Writes DIR/env (sourceable). Keys: DIR/gnupg-dc holds only the public key (what samba's
# writers need); DIR/gnupg-agent holds the key pair (what the agent decrypts with) — the split
# dc-agent/samba/install.sh makes on a real DC. Passwords are random, stored 0600, never printed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${1:?usage: provision.sh DIR [LISTEN_IP]}"
ip_addr="${2:-127.77.0.2}"
realm="SAMBAE2E.TEST"
domain="SAMBAE2E"
base_dn="DC=sambae2e,DC=test"

if [ -f "$dir/.provisioned" ]; then echo "provision: $dir already provisioned"; exit 0; fi
command -v samba-tool >/dev/null || { echo "provision: samba-tool missing; run dc-agent/scripts/install-test-deps.sh" >&2; exit 3; }

t_start=$(date +%s%N)
rm -rf "$dir"; mkdir -p "$dir"; chmod 700 "$dir"
if ! grep -q " $ip_addr/" <<<"$(ip -4 addr show dev lo)"; then ip addr add "$ip_addr/32" dev lo; fi

secret() { head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 20; }
admin_pass="Aa1-$(secret)"
bind_pass="Bb2-$(secret)"

# The GPG key pair: created in the agent's keyring, public half exported to the DC's.
bash "$here/../../samba/gpg-key.sh" create "$dir/gnupg-agent" "$dir/gnupg-dc" >"$dir/gpg.log" 2>&1 || { cat "$dir/gpg.log" >&2; exit 1; }
fpr="$(cat "$dir/gnupg-agent/pwsync-key-id")"
# Every process that writes a password from here on must find the public key.
export GNUPGHOME="$dir/gnupg-dc"

# smbd resolves unix users through NSS; in a temp dir without a system winbindd, nss_wrapper
# gives it root and nobody (Debian's libwbclient would otherwise look in /run/samba/winbindd).
mkdir -p "$dir/nss" "$dir/winbindd"
printf 'root:x:0:0:root:/root:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$dir/nss/passwd"
printf 'root:x:0:\nnogroup:x:65534:\nusers:x:100:\n' >"$dir/nss/group"

samba-tool domain provision \
  --use-rfc2307 --realm="$realm" --domain="$domain" \
  --server-role=dc --dns-backend=NONE --host-name=e2edc \
  --adminpass="$admin_pass" --targetdir="$dir" \
  --option="interfaces = $ip_addr" \
  --option="bind interfaces only = yes" \
  --option="server services = ldap, cldap, kdc, rpc, s3fs, winbindd" \
  --option="tls enabled = yes" \
  --option="log level = 1" \
  --option="winbindd socket directory = $dir/winbindd" \
  --option="password hash gpg key ids = $fpr" \
  >"$dir/provision.log" 2>&1 || { tail -30 "$dir/provision.log" >&2; exit 1; }

conf="$dir/etc/smb.conf"
sam="$dir/private/sam.ldb"
tool() { samba-tool "$@" -s "$conf" -H "tdb://$sam" >>"$dir/populate.log" 2>&1 || { echo "provision: samba-tool $* failed" >&2; tail -20 "$dir/populate.log" >&2; exit 1; }; }
tool user create svc-pwsync "$bind_pass"
tool user setexpiry svc-pwsync --noexpiry
tool group add "Password Sync"
# Default complexity and a history of 24 stay on: the tests need the DC to reject changes.
# Minimum password age 0 so a test can change a password several times in a row.
tool domain passwordsettings set --min-pwd-age=0

cat >"$dir/krb5.conf" <<KRB
[libdefaults]
    default_realm = $realm
    dns_lookup_kdc = false
    dns_lookup_realm = false
    rdns = false
[realms]
    $realm = {
        kdc = $ip_addr
        kpasswd_server = $ip_addr
        admin_server = $ip_addr
    }
KRB

umask 077
printf '%s' "$bind_pass" >"$dir/bind.secret"
printf '%s' "$admin_pass" >"$dir/admin.secret"
cat >"$dir/env" <<ENV
SAMBA_REALM=$realm
SAMBA_DOMAIN=$domain
SAMBA_BASE_DN=$base_dn
SAMBA_BIND_DN=CN=svc-pwsync,CN=Users,$base_dn
SAMBA_LISTEN=$ip_addr
SAMBA_HOSTNAME=e2edc.sambae2e.test
SAMBA_CA=$dir/private/tls/ca.pem
SAMBA_CONF=$conf
SAMBA_SAM=$sam
SAMBA_KRB5_CONF=$dir/krb5.conf
SAMBA_GNUPG_DC=$dir/gnupg-dc
SAMBA_GNUPG_AGENT=$dir/gnupg-agent
SAMBA_KEY_ID=$fpr
ENV
touch "$dir/.provisioned"
echo "provision: done in $(( ($(date +%s%N) - t_start) / 1000000 )) ms"

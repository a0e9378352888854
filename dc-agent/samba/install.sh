#!/usr/bin/env bash
# Installs the dc-agent's Samba capture on a Samba AD DC (run as root on the DC):
#   1. a GPG key pair in the agent's keyring; the public key, trusted, in the keyring Samba's
#      writers use (gpg-key.sh); an existing key is kept
#   2. `password hash gpg key ids = <fingerprint>` in smb.conf's [global] (backup kept), then
#      restarts Samba so every writer encrypts new passwords to it
#   3. the systemd unit pwsync-dc-agent.service (enabled, started)
#   4. `dc-agent verify` once the agent's first run has finished
# uninstall.sh reverts each step. See dc-agent/README.md, "Samba AD domain controllers".
#
#   install.sh --config /etc/pwsync/dc-agent.yaml [--smb-conf /etc/samba/smb.conf]
#              [--agent-gnupg /var/lib/pwsync/gnupg] [--dc-gnupg /root/.gnupg]
#              [--no-systemd] [--no-samba-restart]
# --no-systemd: steps 1–2 only, and prints the command that runs the agent (containers, tests).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
agent_dir="$(cd "$here/.." && pwd)"
config="" smb_conf="/etc/samba/smb.conf" agent_gnupg="/var/lib/pwsync/gnupg" dc_gnupg="/root/.gnupg"
systemd=1 restart_samba=1
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config="$2"; shift 2 ;;
    --smb-conf) smb_conf="$2"; shift 2 ;;
    --agent-gnupg) agent_gnupg="$2"; shift 2 ;;
    --dc-gnupg) dc_gnupg="$2"; shift 2 ;;
    --no-systemd) systemd=0; shift ;;
    --no-samba-restart) restart_samba=0; shift ;;
    *) echo "install: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -n "$config" ] || { echo "install: --config FILE (the agent's YAML: agent, ingest, ldap) is required" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "install: run as root (Samba's privileged ldapi socket, smb.conf, systemd)" >&2; exit 2; }
command -v samba-tool >/dev/null || { echo "install: samba-tool not found: is this a Samba AD DC?" >&2; exit 3; }
command -v gpg >/dev/null || { echo "install: gpg missing (apt-get install gnupg)" >&2; exit 3; }
# samba-tool's own Python (its shebang) must import gpg, not whichever python3 is first on PATH.
samba_py="$(head -1 "$(command -v samba-tool)" | sed 's/^#! *//; s/ .*//')"
"$samba_py" -c "import gpg" 2>/dev/null || "$samba_py" -c "import gpgme" 2>/dev/null \
  || { echo "install: python3-gpg missing (apt-get install python3-gpg): syncpasswords cannot decrypt without it" >&2; exit 3; }
[ -f "$smb_conf" ] || { echo "install: $smb_conf not found" >&2; exit 3; }
node_bin="$(command -v node)" || { echo "install: node (20+) not found" >&2; exit 3; }

say() { echo "install: $*"; }

# 1. Keys.
if [ -s "$agent_gnupg/pwsync-key-id" ]; then
  fpr="$(cat "$agent_gnupg/pwsync-key-id")"
  say "keeping the existing key $fpr ($agent_gnupg)"
else
  fpr="$(bash "$here/gpg-key.sh" create "$agent_gnupg" "$dc_gnupg" | tail -1)"
  say "created GPG key $fpr: key pair in $agent_gnupg, public key in $dc_gnupg"
fi
bash "$here/gpg-key.sh" check "$agent_gnupg" "$dc_gnupg" "$fpr"

# 2. smb.conf: set the option inside [global], keep a backup for uninstall.
[ -f "$smb_conf.pwsync-backup" ] || cp -p "$smb_conf" "$smb_conf.pwsync-backup"
python3 - "$smb_conf" "$fpr" <<'PY'
import re, sys
path, fpr = sys.argv[1], sys.argv[2]
lines = open(path).read().split("\n")
out, in_global, done = [], False, False
for line in lines:
    section = re.match(r"\s*\[([^\]]+)\]", line)
    if section:
        if in_global and not done:
            out.append(f"\tpassword hash gpg key ids = {fpr}"); done = True
        in_global = section.group(1).strip().lower() == "global"
    if in_global and re.match(r"\s*password hash gpg key ids\s*=", line, re.I):
        if not done:
            out.append(f"\tpassword hash gpg key ids = {fpr}"); done = True
        continue
    out.append(line)
if not done:
    if in_global:
        while out and out[-1] == "": out.pop()
        out += [f"\tpassword hash gpg key ids = {fpr}", ""]
    else:
        out = ["[global]", f"\tpassword hash gpg key ids = {fpr}", ""] + out
open(path, "w").write("\n".join(out))
PY
say "smb.conf: password hash gpg key ids = $fpr ($smb_conf; backup $smb_conf.pwsync-backup)"
if [ "$restart_samba" = 1 ] && command -v systemctl >/dev/null && systemctl is-active --quiet samba-ad-dc 2>/dev/null; then
  systemctl restart samba-ad-dc
  say "restarted samba-ad-dc (it now encrypts new passwords to the key)"
fi

run_cmd="PWSYNC_CONFIG=$config PWSYNC_SAMBA__ENABLED=true PWSYNC_SAMBA__HOOK_SCRIPT=$agent_dir/samba/pwsync-samba-hook.mjs PWSYNC_SAMBA__SMB_CONF=$smb_conf PWSYNC_SAMBA__GNUPG_HOME=$agent_gnupg PWSYNC_SAMBA__DC_GNUPG_HOME=$dc_gnupg $node_bin --import tsx $agent_dir/src/main.ts"
if [ "$systemd" = 0 ]; then
  say "no systemd unit installed; run the agent with:"
  echo "  $run_cmd run"
  echo "  then: $run_cmd verify"
  exit 0
fi

# 3. systemd unit.
unit=/etc/systemd/system/pwsync-dc-agent.service
sed -e "s|@AGENT_DIR@|$agent_dir|g" -e "s|@CONFIG@|$config|g" -e "s|@NODE@|$node_bin|g" \
    -e "s|@SMB_CONF@|$smb_conf|g" -e "s|@AGENT_GNUPG@|$agent_gnupg|g" -e "s|@DC_GNUPG@|$dc_gnupg|g" \
    "$here/pwsync-dc-agent.service" >"$unit"
systemctl daemon-reload
systemctl enable --now pwsync-dc-agent.service
say "started pwsync-dc-agent.service; its first run records every account's current password version (nothing is synced)"

# 4. verify, once the first run is done (a few accounts per second; up to 10 min here).
for _ in $(seq 1 600); do
  if env $run_cmd verify >/tmp/pwsync-verify.$$ 2>&1; then cat /tmp/pwsync-verify.$$; rm -f /tmp/pwsync-verify.$$; say "done"; exit 0; fi
  grep -q "first run in progress\|has not started" /tmp/pwsync-verify.$$ || break
  sleep 1
done
cat /tmp/pwsync-verify.$$; rm -f /tmp/pwsync-verify.$$
say "dc-agent verify reports a problem (above); journalctl -u pwsync-dc-agent says more"
exit 1

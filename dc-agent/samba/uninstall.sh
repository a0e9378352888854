#!/usr/bin/env bash
# Reverts install.sh on a Samba AD DC: stops and removes the systemd unit, removes
# `password hash gpg key ids` from smb.conf (Samba stops storing new cleartext) and restarts
# Samba, deletes the public key from the DC keyring and the agent's keyring with the key pair
# (the encrypted cleartexts still in sam.ldb become undecryptable). With --purge also the
# agent's data folder (check first that its queue is empty: heartbeat / admin API).
#
#   uninstall.sh [--smb-conf /etc/samba/smb.conf] [--agent-gnupg /var/lib/pwsync/gnupg]
#                [--dc-gnupg /root/.gnupg] [--data-dir DIR --purge] [--no-samba-restart]
set -euo pipefail
smb_conf="/etc/samba/smb.conf" agent_gnupg="/var/lib/pwsync/gnupg" dc_gnupg="/root/.gnupg" data_dir="" purge=0 restart_samba=1
while [ $# -gt 0 ]; do
  case "$1" in
    --smb-conf) smb_conf="$2"; shift 2 ;;
    --agent-gnupg) agent_gnupg="$2"; shift 2 ;;
    --dc-gnupg) dc_gnupg="$2"; shift 2 ;;
    --data-dir) data_dir="$2"; shift 2 ;;
    --purge) purge=1; shift ;;
    --no-samba-restart) restart_samba=0; shift ;;
    *) echo "uninstall: unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "uninstall: run as root" >&2; exit 2; }
say() { echo "uninstall: $*"; }

unit=/etc/systemd/system/pwsync-dc-agent.service
if [ -f "$unit" ] && command -v systemctl >/dev/null; then
  systemctl disable --now pwsync-dc-agent.service || true
  rm -f "$unit"
  systemctl daemon-reload
  say "stopped and removed pwsync-dc-agent.service"
fi

if [ -f "$smb_conf" ] && grep -qi "password hash gpg key ids" "$smb_conf"; then
  # Put back what the admin had before install (kept in the backup), or remove the option.
  original="$(grep -i '^[[:space:]]*password hash gpg key ids[[:space:]]*=' "$smb_conf.pwsync-backup" 2>/dev/null | head -1 || true)"
  if [ -n "$original" ]; then
    ORIGINAL="$original" python3 -c 'import os,re,sys; p=sys.argv[1]; s=open(p).read(); open(p,"w").write(re.sub(r"(?im)^[ \t]*password hash gpg key ids[ \t]*=.*$", lambda m: os.environ["ORIGINAL"], s, count=1))' "$smb_conf"
    say "restored the original '$(echo "$original" | xargs)' in $smb_conf"
  else
    sed -i '/^[[:space:]]*password hash gpg key ids[[:space:]]*=/Id' "$smb_conf"
    say "removed password hash gpg key ids from $smb_conf"
  fi
  rm -f "$smb_conf.pwsync-backup"
  if [ "$restart_samba" = 1 ] && command -v systemctl >/dev/null && systemctl is-active --quiet samba-ad-dc 2>/dev/null; then
    systemctl restart samba-ad-dc
    say "restarted samba-ad-dc"
  fi
fi

if [ -s "$agent_gnupg/pwsync-key-id" ]; then
  fpr="$(cat "$agent_gnupg/pwsync-key-id")"
  GNUPGHOME="$dc_gnupg" gpg --batch --yes --delete-keys "$fpr" 2>/dev/null && say "deleted public key $fpr from $dc_gnupg" || true
  GNUPGHOME="$agent_gnupg" gpgconf --kill gpg-agent 2>/dev/null || true
  find "$agent_gnupg" -type f -exec shred -u {} + 2>/dev/null || true
  rm -rf "$agent_gnupg"
  say "destroyed the agent keyring $agent_gnupg (key pair $fpr)"
fi

if [ "$purge" = 1 ] && [ -n "$data_dir" ]; then
  # Sealed changes ingest has not committed yet would be lost: `dc-agent verify` and the
  # heartbeat's queue depth say whether the queue was empty before the agent stopped.
  rm -rf "$data_dir"
  say "removed $data_dir (sealed changes still queued there, if any, are gone)"
fi

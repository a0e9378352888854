#!/usr/bin/env bash
# The GPG key Samba encrypts each new cleartext password to (smb.conf `password hash gpg key
# ids`), split between two keyrings:
#   AGENT_HOME  the key pair; only the dc-agent (root, 0700) decrypts with it
#   DC_HOME     the public key only; every process that writes passwords (samba, a local
#               samba-tool) must find it, or the password change fails
#
#   gpg-key.sh create AGENT_HOME DC_HOME   new key (no passphrase: the agent runs unattended);
#                                          prints the fingerprint, also in AGENT_HOME/pwsync-key-id
#   gpg-key.sh check  AGENT_HOME DC_HOME FPR   exit 0 when both keyrings hold what they must
set -euo pipefail
cmd="${1:?usage: gpg-key.sh create|check AGENT_HOME DC_HOME [FPR]}"
agent_home="${2:?AGENT_HOME}"
dc_home="${3:?DC_HOME}"

case "$cmd" in
  create)
    mkdir -p "$agent_home" "$dc_home"
    chmod 700 "$agent_home" "$dc_home"
    # A certify-only primary key and an encryption subkey (Samba encrypts to the subkey).
    GNUPGHOME="$agent_home" gpg --batch --quiet --passphrase '' --quick-generate-key "pwsync samba capture <pwsync@localhost>" rsa3072 cert never
    fpr="$(GNUPGHOME="$agent_home" gpg --batch --with-colons --list-secret-keys | awk -F: '/^fpr:/ {print $10; exit}')"
    GNUPGHOME="$agent_home" gpg --batch --quiet --passphrase '' --quick-add-key "$fpr" rsa3072 encr never
    GNUPGHOME="$agent_home" gpg --batch --export "$fpr" | GNUPGHOME="$dc_home" gpg --batch --quiet --import
    # Samba encrypts without gpgme's ALWAYS_TRUST: an imported key of unknown validity is
    # refused as "Unusable public key", so the DC keyring trusts it explicitly.
    printf '%s:6:\n' "$fpr" | GNUPGHOME="$dc_home" gpg --batch --quiet --import-ownertrust
    printf '%s\n' "$fpr" >"$agent_home/pwsync-key-id"
    echo "$fpr"
    ;;
  check)
    fpr="${4:?FPR}"
    GNUPGHOME="$agent_home" gpg --batch --with-colons --list-secret-keys "$fpr" >/dev/null 2>&1 \
      || { echo "the agent keyring $agent_home has no secret key $fpr" >&2; exit 1; }
    GNUPGHOME="$dc_home" gpg --batch --with-colons --list-keys "$fpr" >/dev/null 2>&1 \
      || { echo "the DC keyring $dc_home has no public key $fpr" >&2; exit 1; }
    ;;
  *) echo "usage: gpg-key.sh create|check AGENT_HOME DC_HOME [FPR]" >&2; exit 2 ;;
esac

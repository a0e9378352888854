#!/usr/bin/env bash
# Shared-DC fixture for the test suite: under a lock, installs Samba if missing (via the
# project's install script), provisions DIR once (kept between runs: provisioning takes
# ~16 s, starting ~2 s), starts it if needed, and records HOLDER_PID as a user. release.sh
# stops the DC when the last live holder lets go.
#
#   dc-agent/test/samba/acquire.sh DIR HOLDER_PID
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${1:?usage: acquire.sh DIR HOLDER_PID}"
holder="${2:?usage: acquire.sh DIR HOLDER_PID}"
mkdir -p "$(dirname "$dir")"
exec 9>"$dir.lock"
flock 9
if ! command -v samba-tool >/dev/null || ! dpkg-query -W -f='${Status}' samba-ad-provision 2>/dev/null | grep -q 'install ok installed'; then
  bash "$here/../../scripts/install-test-deps.sh"
fi
bash "$here/provision.sh" "$dir"
# The DC must not inherit the lock descriptor, or it would hold the lock for its lifetime.
bash "$here/start.sh" "$dir" 9>&-
echo "$holder" >>"$dir/holders"

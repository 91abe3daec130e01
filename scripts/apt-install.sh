#!/usr/bin/env bash
# Install Debian packages where their command is missing: apt-install.sh PKG:COMMAND ...
# (COMMAND may be an absolute path to a file the package installs, e.g. a SoundFont.)
# Needs root for apt-get; without root it says what to install and carries on. Waits (up to
# APT_WAIT_S, 600 s) for another apt or dpkg holding the lock instead of failing.
set -euo pipefail
missing=()
for pair in "$@"; do
  pkg=${pair%%:*}; cmd=${pair##*:}
  if [[ $cmd == /* ]]; then [ -e "$cmd" ] || missing+=("$pkg"); continue; fi
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "apt-install: missing ${missing[*]}; run 'sudo apt-get install ${missing[*]}'" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
deadline=$(( $(date +%s) + ${APT_WAIT_S:-600} ))
# apt_get ARGS...: apt-get, again every 10 s while another apt/dpkg holds its lock
apt_get() {
  local out rc
  while :; do
    rc=0
    out=$(apt-get -o DPkg::Lock::Timeout=60 "$@" 2>&1) || rc=$?
    [ "$rc" -eq 0 ] && return 0
    if grep -qi 'could not get lock\|unable to lock\|is held by process' <<<"$out" \
        && [ "$(date +%s)" -lt "$deadline" ]; then
      echo "apt-install: apt is busy (another apt or dpkg holds its lock); waiting" >&2
      sleep "${APT_RETRY_S:-10}"
      continue
    fi
    printf '%s\n' "$out" >&2
    return "$rc"
  done
}
apt_get update -qq
apt_get install -y -qq --no-install-recommends "${missing[@]}"

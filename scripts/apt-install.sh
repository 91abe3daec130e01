#!/usr/bin/env bash
# Install Debian packages where their command is missing: apt-install.sh PKG:COMMAND ...
# (COMMAND may be an absolute path to a file the package installs, e.g. a SoundFont.)
# Needs root for apt-get; without root it says what to install and carries on.
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
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

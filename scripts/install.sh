#!/usr/bin/env bash
# make install: put groovebox on a Raspberry Pi (Raspberry Pi OS Bookworm or later, as root).
#
#   sudo make install                  the real thing, on the Pi
#   make install DRY_RUN=1             print every step, change nothing
#   make install DESTDIR=/tmp/root     files only, under /tmp/root: no apt, no users, no venv,
#                                      no systemctl (packaging, tests)
#   IN_IMAGE=1 (set by image/build.sh) inside an SD-card image's chroot: everything but
#                                      starting the service
#
# What it does:
#   1. apt: python3-venv, python3-lgpio and python3-spidev (GPIO/SPI from Debian: lgpio is not
#      pip-installable everywhere), libasound2 and libjack (python-rtmidi), alsa-utils
#   2. a system user `groovebox` in the groups audio, dialout, gpio, spi
#   3. the code in $PREFIX (/opt/groovebox) and a venv $PREFIX/.venv with only the runtime
#      set from pyproject.toml (--system-site-packages, so Debian's lgpio/spidev are seen)
#   4. the model in $PREFIX/models/groove-vae
#   5. /etc/groovebox/config.yaml from examples/config.yaml if there is none (an existing one
#      is kept and checked; the new example goes next to it as config.yaml.example)
#   6. the systemd unit (with PREFIX, ETC_DIR and STATE_DIR written into it), the udev rules,
#      the boot config (UART MIDI, SPI, serial console off)
#   7. the `groovebox` command: /usr/local/bin/groovebox -> $PREFIX/.venv/bin/groovebox; the
#      user who ran sudo ($SUDO_USER) joins the group groovebox, so that `groovebox status`,
#      `groovebox learn` etc. reach the control socket (/run/groovebox, mode 0750/0660)
#   8. systemctl enable (and restart, unless IN_IMAGE=1)
#
# PREFIX (/opt/groovebox), ETC_DIR (/etc/groovebox) and STATE_DIR (/var/lib/groovebox) may be
# changed; the installed unit and a freshly installed config.yaml follow them. STATE_DIR must
# be under /var/lib (systemd's StateDirectory=, the one place the hardened unit may write), and
# none of them under /home or /root (ProtectHome= hides those from the service).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DESTDIR=${DESTDIR:-}
DESTDIR=${DESTDIR%/}
DRY_RUN=${DRY_RUN:-0}
IN_IMAGE=${IN_IMAGE:-0}
PREFIX=${PREFIX:-/opt/groovebox}
ETC_DIR=${ETC_DIR:-/etc/groovebox}
STATE_DIR=${STATE_DIR:-/var/lib/groovebox}
PREFIX=${PREFIX%/}
ETC_DIR=${ETC_DIR%/}
STATE_DIR=${STATE_DIR%/}
BIN_LINK=/usr/local/bin/groovebox
PYTHON=${PYTHON:-python3}
MODEL=${MODEL:-$REPO/models/groove-vae}
SERVICE_USER=groovebox
# Debian bookworm and Raspberry Pi OS both have these. procps: /bin/kill for the unit's
# ExecReload; kmod: modprobe for the modules loaded at boot (/etc/modules-load.d/groovebox.conf).
APT_PACKAGES=(python3 python3-venv python3-spidev libasound2 libjack-jackd2-0 alsa-utils procps kmod)
# Installed where apt has them: python3-lgpio is in Raspberry Pi OS, not in Debian. Without it
# gpiozero falls back (RPi.GPIO, pigpio, native); where none works the panel is off, one log line.
APT_OPTIONAL=(python3-lgpio)
GROUPS_WANTED=(audio dialout gpio spi)
# the model directory's files, from their one definition (appliance/core/model_files.py)
MODEL=$(realpath -m "$MODEL")   # (the file list is read from $REPO, the files from here)
mapfile -t MODEL_FILES < <(cd "$REPO" && "$PYTHON" -m appliance.core.model_files "$MODEL")
MARK_BEGIN="# >>> groovebox >>>"
MARK_END="# <<< groovebox <<<"

say() { printf 'install: %s\n' "$*"; }
die() { printf 'install: %s\n' "$*" >&2; exit 1; }
dry() { [ "$DRY_RUN" = 1 ]; }
staged() { [ -n "$DESTDIR" ]; }
# run CMD...: do it, or print it on a dry run
run() {
  if dry; then printf '+ %s\n' "$*"; else "$@"; fi
}
# skip WHY CMD...: steps that only make sense on the real system
system() {
  if staged; then printf '(DESTDIR) skipped: %s\n' "$*"; else run "$@"; fi
}

# PRINT_APT_PACKAGES=1: the Debian packages this needs, one a line (image/build.sh puts them in
# the image's base)
if [ "${PRINT_APT_PACKAGES:-0}" = 1 ]; then printf '%s\n' "${APT_PACKAGES[@]}"; exit 0; fi

# --- checks before touching anything
[ -d "$REPO/appliance" ] || die "run me from a groovebox checkout ($REPO has no appliance/)"
[ -f "$REPO/systemd/groovebox.service" ] || die "systemd/groovebox.service is missing from $REPO"
[ "${#MODEL_FILES[@]}" -gt 0 ] || die "cannot read the model file list with $PYTHON (is python3 installed?)"
for f in "${MODEL_FILES[@]}"; do
  [ -f "$MODEL/$f" ] || die "the model is incomplete: $MODEL/$f is missing (make train, or MODEL=DIR)"
done
for pair in "PREFIX=$PREFIX" "ETC_DIR=$ETC_DIR" "STATE_DIR=$STATE_DIR"; do
  name=${pair%%=*} value=${pair#*=}
  [[ $value =~ ^/[A-Za-z0-9._+/-]+$ ]] && [[ ! $value =~ (^|/)\.\.?(/|$) ]] \
    || die "$name=$value: give an absolute path of letters, digits and . _ + - / (it goes into the systemd unit)"
  case "$value/" in
    /home/*|/root/*|/run/user/*) die "$name=$value: the unit's ProtectHome=yes hides it from the service; pick a path outside /home and /root" ;;
  esac
done
case "$STATE_DIR" in
  /var/lib/?*) STATE_REL=${STATE_DIR#/var/lib/} ;;
  *) die "STATE_DIR=$STATE_DIR: must be under /var/lib (the unit's StateDirectory= is the only place the hardened service may write)" ;;
esac
if ! staged && ! dry && [ "$(id -u)" -ne 0 ]; then
  die "needs root: sudo make install (or DRY_RUN=1 to see the steps, DESTDIR=DIR to stage files)"
fi

# --- 1. Debian packages (only the missing ones; apt waits for a held dpkg lock)
# apt_get ARGS...: apt-get that waits up to 10 min for another apt/dpkg (unattended-upgrades
# on a fresh Pi) instead of failing
apt_get() {
  local deadline=$(( $(date +%s) + 600 )) out rc
  while :; do
    rc=0
    out=$(DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=60 "$@" 2>&1) || rc=$?
    [ "$rc" -eq 0 ] && return 0
    if grep -qi 'could not get lock\|unable to lock\|is held by process' <<<"$out" \
        && [ "$(date +%s)" -lt "$deadline" ]; then
      say "apt is busy (another apt or dpkg holds its lock): waiting"
      sleep 10
      continue
    fi
    printf '%s\n' "$out" >&2
    return "$rc"
  done
}
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q ' installed$'; }
available() { apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [^(]'; }
if staged; then
  say "(DESTDIR) skipped: apt-get install ${APT_PACKAGES[*]} (and ${APT_OPTIONAL[*]} where apt has it)"
elif dry; then
  printf '+ apt-get install --no-install-recommends %s (those not yet installed; %s where apt has it)\n' \
    "${APT_PACKAGES[*]}" "${APT_OPTIONAL[*]}"
else
  need=()
  for p in "${APT_PACKAGES[@]}"; do installed "$p" || need+=("$p"); done
  optional=()
  for p in "${APT_OPTIONAL[@]}"; do installed "$p" || optional+=("$p"); done
  if [ ${#need[@]} -gt 0 ] || [ ${#optional[@]} -gt 0 ]; then
    [ "$IN_IMAGE" = 1 ] && [ ${#need[@]} -gt 0 ] \
      && die "the image's base lacks ${need[*]} (no network in the image's chroot: image/build.sh installs PRINT_APT_PACKAGES)"
    [ "$IN_IMAGE" = 1 ] || apt_get update -qq || die "apt-get update failed (network? apt sources?)"
    for p in "${optional[@]}"; do
      if available "$p"; then need+=("$p"); else
        say "$p is not in this system's apt sources (Debian has no python3-lgpio): the front panel uses gpiozero's fallbacks"
      fi
    done
    if [ ${#need[@]} -gt 0 ]; then
      apt_get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
        || die "apt-get install ${need[*]} failed (above)"
    fi
  fi
fi

# --- 2. the service user
if staged; then
  say "(DESTDIR) skipped: system user $SERVICE_USER in groups ${GROUPS_WANTED[*]}"
else
  for g in "${GROUPS_WANTED[@]}"; do
    getent group "$g" >/dev/null 2>&1 || run groupadd --system "$g"
  done
  if ! getent passwd "$SERVICE_USER" >/dev/null 2>&1; then
    run useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home \
      --shell /usr/sbin/nologin --comment "groovebox drum machine" "$SERVICE_USER"
  fi
  run usermod -a -G "$(IFS=,; echo "${GROUPS_WANTED[*]}")" "$SERVICE_USER"
fi

# --- 3. the code and its venv (only the runtime set)
D_PREFIX="$DESTDIR$PREFIX"
run install -d -m 0755 "$D_PREFIX"
if dry; then
  printf '+ copy pyproject.toml README.md appliance/ to %s\n' "$D_PREFIX"
else
  rm -rf "$D_PREFIX/appliance"
  tar -C "$REPO" --exclude=__pycache__ --exclude='*.pyc' -cf - pyproject.toml README.md appliance \
    | tar -C "$D_PREFIX" --no-same-owner -xf -
fi
if staged; then
  say "(DESTDIR) skipped: $PYTHON -m venv --system-site-packages $PREFIX/.venv; pip install $PREFIX"
else
  run "$PYTHON" -m venv --system-site-packages "$PREFIX/.venv"
  # the runtime set from pyproject.toml's dependencies (pinned with ==); no dev, no train.
  # Those in [tool.groovebox] install-no-deps go in without their declared dependencies
  # (onnxruntime's sympy & co serve its tools, never inference: ~80 MB saved), then the
  # project itself, with --no-deps since everything it needs is in. PIP_NO_INDEX and
  # PIP_FIND_LINKS (image/build.sh) make it an offline install from a wheelhouse.
  mapfile -t req_deps < <("$PYTHON" "$REPO/scripts/requirements.py" deps)
  mapfile -t req_nodeps < <("$PYTHON" "$REPO/scripts/requirements.py" no-deps)
  [ ${#req_deps[@]} -gt 0 ] || die "no runtime requirements read from $REPO/pyproject.toml"
  PIP_Q=(--quiet --no-cache-dir --disable-pip-version-check)
  run "$PREFIX/.venv/bin/pip" install "${PIP_Q[@]}" "${req_deps[@]}"
  [ ${#req_nodeps[@]} -eq 0 ] || run "$PREFIX/.venv/bin/pip" install "${PIP_Q[@]}" --no-deps "${req_nodeps[@]}"
  run "$PREFIX/.venv/bin/pip" install "${PIP_Q[@]}" --no-deps "$PREFIX"
fi

# --- 4. the model
run install -d -m 0755 "$D_PREFIX/models/groove-vae"
run rm -f "$D_PREFIX"/models/groove-vae/register*.onnx   # a register encoder the model before had
for f in "${MODEL_FILES[@]}"; do
  run install -m 0644 "$MODEL/$f" "$D_PREFIX/models/groove-vae/$f"
done
[ -f "$MODEL/README.md" ] && run install -m 0644 "$MODEL/README.md" "$D_PREFIX/models/groove-vae/README.md"

# --- 5. the config: never overwrite the player's own
D_ETC="$DESTDIR$ETC_DIR"
# the example with this install's paths (the example's own are the defaults)
config_text() {
  sed -e "s|^\(  dir: \)/opt/groovebox/models/groove-vae\$|\1$PREFIX/models/groove-vae|" \
      -e "s|^\(  dir: \)/var/lib/groovebox\$|\1$STATE_DIR|" "$REPO/examples/config.yaml"
}
write_config() {   # write_config TARGET
  if dry; then
    printf '+ install -m 0644 %s %s (model.dir %s, state.dir %s)\n' "$REPO/examples/config.yaml" "$1" \
      "$PREFIX/models/groove-vae" "$STATE_DIR"
  else
    config_text > "$1.new" && chmod 0644 "$1.new" && mv "$1.new" "$1"
  fi
}
run install -d -m 0755 "$D_ETC"
if [ -e "$D_ETC/config.yaml" ]; then
  say "keeping $ETC_DIR/config.yaml; the current example is $ETC_DIR/config.yaml.example"
  write_config "$D_ETC/config.yaml.example"
  if ! grep -Eq "^[[:space:]]*dir:[[:space:]]*[\"']?$STATE_DIR[\"']?[[:space:]]*(#.*)?\$" "$D_ETC/config.yaml" \
      && [ "$STATE_DIR" != /var/lib/groovebox ]; then
    say "WARNING: $ETC_DIR/config.yaml does not set state.dir: $STATE_DIR; the service can only write there"
  fi
  if ! staged && ! dry; then
    "$PREFIX/.venv/bin/python" -m appliance.box.config check "$ETC_DIR/config.yaml" \
      || say "WARNING: $ETC_DIR/config.yaml has problems (above); the service will refuse it"
  fi
else
  write_config "$D_ETC/config.yaml"
fi

# --- 6. systemd unit, udev rules, state directory
run install -d -m 0755 "$DESTDIR/etc/systemd/system" "$DESTDIR/etc/udev/rules.d"
# the unit with this install's paths written in (its own are the defaults)
D_UNIT="$DESTDIR/etc/systemd/system/groovebox.service"
unit_text() {
  sed -e "s|/opt/groovebox|$PREFIX|g" \
      -e "s|/etc/groovebox/config.yaml|$ETC_DIR/config.yaml|g" \
      -e "s|^StateDirectory=groovebox\$|StateDirectory=$STATE_REL|" \
      -e "s|^WorkingDirectory=/var/lib/groovebox\$|WorkingDirectory=$STATE_DIR|" \
      "$REPO/systemd/groovebox.service"
}
unit=$(unit_text)
for want in "ExecStart=$PREFIX/.venv/bin/groovebox run --config $ETC_DIR/config.yaml" \
            "StateDirectory=$STATE_REL" "WorkingDirectory=$STATE_DIR"; do
  grep -qxF "$want" <<<"$unit" \
    || die "systemd/groovebox.service has no line the installer can turn into '$want'; fix the installer"
done
if dry; then
  printf '+ install -m 0644 %s %s (ExecStart=%s/.venv/bin/groovebox run --config %s/config.yaml, StateDirectory=%s)\n' \
    "$REPO/systemd/groovebox.service" "$D_UNIT" "$PREFIX" "$ETC_DIR" "$STATE_REL"
else
  printf '%s\n' "$unit" > "$D_UNIT.new" && chmod 0644 "$D_UNIT.new" && mv "$D_UNIT.new" "$D_UNIT"
fi
run install -m 0644 "$REPO/firmware_config/99-groovebox.rules" "$DESTDIR/etc/udev/rules.d/99-groovebox.rules"
# the ALSA sequencer, USB-serial and SPI modules loaded at boot, before the unit starts: its
# DeviceAllow= device groups are resolved at start, and a group whose module is not loaded then
# stays shut to it (/dev/snd/seq; a USB-serial DIN adapter plugged in later)
run install -d -m 0755 "$DESTDIR/etc/modules-load.d"
run install -m 0644 "$REPO/firmware_config/modules-load.groovebox.conf" "$DESTDIR/etc/modules-load.d/groovebox.conf"
if staged; then
  run install -d -m 0750 "$DESTDIR$STATE_DIR"
else
  run install -d -m 0750 -o "$SERVICE_USER" -g "$SERVICE_USER" "$STATE_DIR"
fi

# --- boot config: UART MIDI, SPI, serial console off
BOOT=""
REBOOT=0
RASPI_FIRMWARE=0
[ -f "$DESTDIR/etc/default/raspi-firmware" ] && RASPI_FIRMWARE=1
# Debian's raspi-firmware rewrites config.txt and cmdline.txt on every kernel update: its
# /etc/default/raspi-firmware-custom (appended to config.txt) takes the groovebox block, and
# CONSOLES in /etc/default/raspi-firmware keeps the serial console off the UART.
if [ "$RASPI_FIRMWARE" = 1 ]; then
  custom="$DESTDIR/etc/default/raspi-firmware-custom"
  current=""
  [ -f "$custom" ] && current=$(cat "$custom")
  without=$(printf '%s\n' "$current" | awk -v b="$MARK_BEGIN" -v e="$MARK_END" '
    index($0, b) == 1 { skip = 1; next }
    skip && index($0, e) == 1 { skip = 0; next }
    !skip { print }')
  wanted=$(printf '%s\n%s\n' "${without%$'\n'}" "$(cat "$REPO/firmware_config/raspi-firmware-custom.groovebox")")
  wanted=${wanted#$'\n'}
  if [ "$wanted" != "$current" ]; then
    if dry; then printf '+ write the groovebox block into %s\n' "$custom"; else
      printf '%s\n' "$wanted" > "$custom.new" && mv "$custom.new" "$custom"
    fi
    REBOOT=1
  fi
  defaults="$DESTDIR/etc/default/raspi-firmware"
  if ! grep -Eq '^CONSOLES="?tty[0-9]+"?[[:space:]]*$' "$defaults"; then
    if dry; then printf '+ set CONSOLES="tty1" in %s (no serial console on the MIDI UART)\n' "$defaults"; else
      sed -i -E '/^#?[[:space:]]*CONSOLES=/d' "$defaults" && echo 'CONSOLES="tty1"' >> "$defaults"
    fi
    REBOOT=1
  fi
  hook="$DESTDIR/etc/kernel/postinst.d/z50-raspi-firmware"
  kernel=$(ls "$DESTDIR"/boot/vmlinuz-* 2>/dev/null | sort -V | tail -1 || true)
  if [ "$REBOOT" = 1 ] && ! staged && [ -x "$hook" ] && [ -n "$kernel" ]; then
    # the hook writes config.txt and cmdline.txt from the defaults above (it acts only when
    # called as from a package's configure step)
    run env DEB_MAINT_PARAMS=configure "$hook" "${kernel#/boot/vmlinuz-}" "$kernel"
  fi
fi
for candidate in "$DESTDIR/boot/firmware" "$DESTDIR/boot"; do
  if [ -f "$candidate/config.txt" ]; then BOOT=$candidate; break; fi
done
if [ "$RASPI_FIRMWARE" = 1 ]; then
  :
elif [ -z "$BOOT" ]; then
  say "no config.txt under $DESTDIR/boot/firmware or $DESTDIR/boot (not a Pi?): boot config skipped"
else
  block=$(cat "$REPO/firmware_config/config.txt.groovebox")
  current=$(cat "$BOOT/config.txt")
  # drop an earlier groovebox block, then append the current one
  without=$(printf '%s\n' "$current" | awk -v b="$MARK_BEGIN" -v e="$MARK_END" '
    index($0, b) == 1 { skip = 1; next }
    skip && index($0, e) == 1 { skip = 0; next }
    !skip { print }')
  wanted=$(printf '%s\n%s\n' "${without%$'\n'}" "$block")
  if [ "$wanted" != "$current" ]; then
    if dry; then
      printf '+ write the groovebox block into %s/config.txt\n' "$BOOT"
    else
      [ -f "$BOOT/config.txt.groovebox-bak" ] || cp -p "$BOOT/config.txt" "$BOOT/config.txt.groovebox-bak"
      printf '%s\n' "$wanted" > "$BOOT/config.txt.new" && mv "$BOOT/config.txt.new" "$BOOT/config.txt"
    fi
    REBOOT=1
  fi
  if [ -f "$BOOT/cmdline.txt" ] && grep -Eq 'console=(serial0|ttyAMA0),[0-9]+' "$BOOT/cmdline.txt"; then
    if dry; then
      printf '+ remove the serial console from %s/cmdline.txt\n' "$BOOT"
    else
      [ -f "$BOOT/cmdline.txt.groovebox-bak" ] || cp -p "$BOOT/cmdline.txt" "$BOOT/cmdline.txt.groovebox-bak"
      sed -E 's/ ?console=(serial0|ttyAMA0),[0-9]+//g' "$BOOT/cmdline.txt" > "$BOOT/cmdline.txt.new"
      mv "$BOOT/cmdline.txt.new" "$BOOT/cmdline.txt"
    fi
    REBOOT=1
  fi
fi

# --- 7. the groovebox command, and the login user in the group groovebox
run install -d -m 0755 "$DESTDIR/usr/local/bin"
run ln -sfn "$PREFIX/.venv/bin/groovebox" "$DESTDIR$BIN_LINK"
LOGIN_USER=${SUDO_USER:-}
[ "$LOGIN_USER" = root ] && LOGIN_USER=""
JOINED=""
if [ -z "$LOGIN_USER" ]; then
  :
elif staged || [ "$IN_IMAGE" = 1 ]; then
  say "(DESTDIR or image) skipped: usermod -a -G $SERVICE_USER $LOGIN_USER"
elif dry || getent passwd "$LOGIN_USER" >/dev/null 2>&1; then
  run usermod -a -G "$SERVICE_USER" "$LOGIN_USER"
  JOINED=$LOGIN_USER
else
  say "no user $LOGIN_USER on this system: not added to the group $SERVICE_USER"
fi

# --- 8. systemd
if staged; then
  say "(DESTDIR) skipped: systemctl enable groovebox; serial getty and hciuart disabled"
else
  say "the UART on GPIO14/15 is DIN MIDI's: the serial console and, on Pi 3/4, Bluetooth (hciuart, disable-bt) go off"
  for unit in serial-getty@ttyAMA0.service serial-getty@serial0.service hciuart.service; do
    run systemctl disable --quiet "$unit" 2>/dev/null || true
    run systemctl mask --quiet "$unit" 2>/dev/null || true
  done
  run systemctl enable --quiet groovebox.service
  if [ "$IN_IMAGE" != 1 ]; then
    run systemctl daemon-reload
    run udevadm control --reload-rules || true
    run udevadm trigger || true
    run systemctl restart groovebox.service
  fi
fi

if dry; then
  say "dry run: the steps above, nothing changed (without DRY_RUN=1: code in $PREFIX, config in $ETC_DIR/config.yaml)"
else
  say "done: code in $PREFIX, config in $ETC_DIR/config.yaml, state in $STATE_DIR"
  if ! staged && [ "$IN_IMAGE" != 1 ]; then
    say "next: in $ETC_DIR/config.yaml set midi.outputs and player.drum_map for your drum machine (README.md, 'On the Pi'), check it with groovebox config check $ETC_DIR/config.yaml, then sudo systemctl restart groovebox"
  fi
fi
say "the command: $BIN_LINK -> $PREFIX/.venv/bin/groovebox (groovebox status, groovebox learn ACTION, ...)"
if [ -n "$JOINED" ]; then
  say "$(dry && echo 'would add' || echo added) $JOINED to the group $SERVICE_USER, so that groovebox status / learn / freeze reach the box"
  say "without sudo: log out and back in (or run: newgrp $SERVICE_USER) for it to take effect"
else
  say "to talk to the box without sudo, join its group: sudo usermod -a -G $SERVICE_USER USER (then log in again)"
fi
if [ "$REBOOT" = 1 ] && [ "$IN_IMAGE" != 1 ] && ! staged; then
  say "the boot config changed (UART MIDI / SPI): reboot once to load it (sudo reboot)"
fi

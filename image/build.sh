#!/usr/bin/env bash
# make image: an SD-card image of Raspberry Pi OS Lite with groovebox installed and enabled.
#
#   make image BASE_IMAGE=~/Downloads/2025-xx-xx-raspios-bookworm-arm64-lite.img.xz
#   make image BASE_IMAGE=... DRY_RUN=1          print the steps, change nothing
#
# Needs root on a Linux machine with losetup, parted, e2fsprogs (resize2fs), xz-utils, and,
# unless the machine is itself arm64, qemu-user-static with binfmt_misc (Debian packages:
# qemu-user-static binfmt-support). The base image is not downloaded here: fetch Raspberry
# Pi OS Lite (64-bit) yourself and pass its path.
#
# Steps: copy the base image to $IMG, grow it by $GROW_MB (room for the venv), loop-mount it,
# copy this checkout in, run scripts/install.sh inside a chroot (IN_IMAGE=1: packages,
# user, venv, model, config, unit enabled, boot config for UART MIDI + SPI, serial console
# off), enable ssh, and unmount. Optional: FIRST_USER=name FIRST_PASSWORD_HASH='$6$...'
# (openssl passwd -6) writes userconf.txt so the card boots with that login.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BASE_IMAGE=${BASE_IMAGE:-}
IMG=${IMG:-build/groovebox.img}
GROW_MB=${GROW_MB:-1536}
DRY_RUN=${DRY_RUN:-0}
FIRST_USER=${FIRST_USER:-}
FIRST_PASSWORD_HASH=${FIRST_PASSWORD_HASH:-}

say() { printf 'image: %s\n' "$*"; }
die() { printf 'image: %s\n' "$*" >&2; exit "${2:-1}"; }
run() { if [ "$DRY_RUN" = 1 ]; then printf '+ %s\n' "$*"; else "$@"; fi; }

[ -n "$BASE_IMAGE" ] || die "BASE_IMAGE is not set: download Raspberry Pi OS Lite (64-bit) and run
  make image BASE_IMAGE=path/to/raspios-bookworm-arm64-lite.img.xz" 2
[ -f "$BASE_IMAGE" ] || die "BASE_IMAGE $BASE_IMAGE does not exist" 2
case "$BASE_IMAGE" in
  *.img|*.img.xz) ;;
  *) die "BASE_IMAGE must be a .img or .img.xz (got $BASE_IMAGE)" 2 ;;
esac
# the model directory's files, from their one definition (appliance/core/model_files.py)
for f in $(cd "$REPO" && python3 -m appliance.core.model_files); do
  [ -f "$REPO/models/groove-vae/$f" ] || die "the model is incomplete: models/groove-vae/$f is missing" 2
done

if [ "$DRY_RUN" != 1 ]; then
  [ "$(id -u)" -eq 0 ] || die "needs root (loop devices, mounts, chroot): sudo make image BASE_IMAGE=..." 2
  missing=()
  for tool in losetup parted resize2fs e2fsck xz chroot mount; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if [ "$(uname -m)" != aarch64 ] && ! [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    missing+=("qemu-aarch64 binfmt (apt install qemu-user-static binfmt-support)")
  fi
  [ ${#missing[@]} -eq 0 ] || die "missing: ${missing[*]} (apt install parted e2fsprogs xz-utils util-linux)" 2
fi

MNT=""
LOOP=""
cleanup() {
  set +e
  [ "$DRY_RUN" = 1 ] && return 0
  if [ -n "$MNT" ]; then
    for m in dev/pts dev sys proc boot/firmware ""; do
      mountpoint -q "$MNT/$m" 2>/dev/null && umount "$MNT/$m"
    done
    rmdir "$MNT" 2>/dev/null
  fi
  [ -n "$LOOP" ] && losetup -d "$LOOP"
}
trap cleanup EXIT

run mkdir -p "$(dirname "$IMG")"
say "copying $BASE_IMAGE to $IMG"
case "$BASE_IMAGE" in
  *.xz) if [ "$DRY_RUN" = 1 ]; then printf '+ xz -dc %s > %s\n' "$BASE_IMAGE" "$IMG"; else xz -dc "$BASE_IMAGE" > "$IMG"; fi ;;
  *) run cp --sparse=always "$BASE_IMAGE" "$IMG" ;;
esac

say "growing the root partition by ${GROW_MB} MB"
run truncate -s "+${GROW_MB}M" "$IMG"
run parted -s "$IMG" resizepart 2 100%

if [ "$DRY_RUN" = 1 ]; then
  LOOP=/dev/loopN
  printf '+ losetup --find --show --partscan %s\n' "$IMG"
else
  LOOP=$(losetup --find --show --partscan "$IMG")
fi
run e2fsck -p -f "${LOOP}p2" || true
run resize2fs "${LOOP}p2"

if [ "$DRY_RUN" = 1 ]; then MNT=/tmp/groovebox-image.XXXXXX; else MNT=$(mktemp -d /tmp/groovebox-image.XXXXXX); fi
run mount "${LOOP}p2" "$MNT"
run mkdir -p "$MNT/boot/firmware"
run mount "${LOOP}p1" "$MNT/boot/firmware"
for m in proc sys dev dev/pts; do run mount --bind "/$m" "$MNT/$m"; done

say "copying the checkout into the image"
run mkdir -p "$MNT/usr/src/groovebox"
if [ "$DRY_RUN" = 1 ]; then
  printf '+ copy appliance/ models/ examples/ systemd/ firmware_config/ scripts/ pyproject.toml README.md to %s/usr/src/groovebox\n' "$MNT"
else
  tar -C "$REPO" --exclude=__pycache__ --exclude='*.pyc' -cf - \
    appliance models/groove-vae examples systemd firmware_config scripts pyproject.toml README.md \
    | tar -C "$MNT/usr/src/groovebox" -xf -
fi
# name resolution for apt and pip inside the chroot
run cp --remove-destination /etc/resolv.conf "$MNT/etc/resolv.conf"

say "installing inside the image (chroot)"
run chroot "$MNT" /usr/bin/env IN_IMAGE=1 bash /usr/src/groovebox/scripts/install.sh

say "first boot: ssh on"
run touch "$MNT/boot/firmware/ssh"
if [ -n "$FIRST_USER" ] && [ -n "$FIRST_PASSWORD_HASH" ]; then
  if [ "$DRY_RUN" = 1 ]; then
    printf '+ write %s/boot/firmware/userconf.txt for %s\n' "$MNT" "$FIRST_USER"
  else
    printf '%s:%s\n' "$FIRST_USER" "$FIRST_PASSWORD_HASH" > "$MNT/boot/firmware/userconf.txt"
  fi
else
  say "no FIRST_USER/FIRST_PASSWORD_HASH: the card asks for a user on first boot (or use Raspberry Pi Imager's settings)"
fi

run sync
cleanup
trap - EXIT
MNT=""
LOOP=""
say "done: $IMG (write it with: make flash DEVICE=/dev/sdX)"

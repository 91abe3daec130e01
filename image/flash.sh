#!/usr/bin/env bash
# make flash DEVICE=/dev/sdX: write the image to an SD card, carefully.
#
#   make flash DEVICE=/dev/sdX                   asks you to type the device name back
#   make flash DEVICE=/dev/sdX YES=1             no question (scripts)
#   make flash DEVICE=/dev/sdX DRY_RUN=1         say what would happen
#
# Refuses: no DEVICE; a DEVICE that is not a whole block device; a partition; a disk with a
# mounted partition; the disk holding / ; a non-removable disk (FORCE=1 overrides only this
# one, for USB readers that report themselves fixed). Writes with dd conv=fsync, then reads
# the card back and compares checksums.
# (FLASH_TO_FILE=1 lets DEVICE be a plain file: the tests use it.)
set -euo pipefail

DEVICE=${DEVICE:-}
IMG=${IMG:-build/groovebox.img}
YES=${YES:-0}
FORCE=${FORCE:-0}
DRY_RUN=${DRY_RUN:-0}
FLASH_TO_FILE=${FLASH_TO_FILE:-0}

die() { printf 'flash: %s\n' "$*" >&2; exit 2; }
say() { printf 'flash: %s\n' "$*"; }

[ -n "$DEVICE" ] || die "DEVICE is not set: make flash DEVICE=/dev/sdX (see lsblk for the card)"
[ -f "$IMG" ] || die "no image at $IMG: sudo make image first (or IMG=path to one)"

if [ "$FLASH_TO_FILE" = 1 ] && [ ! -b "$DEVICE" ]; then
  [ -e "$DEVICE" ] || : > "$DEVICE"
  [ -f "$DEVICE" ] || die "$DEVICE is neither a block device nor a plain file"
else
  [ -b "$DEVICE" ] || die "$DEVICE is not a block device"
  name=$(basename "$(readlink -f "$DEVICE")")
  [ -d "/sys/block/$name" ] || die "$DEVICE is a partition; give the whole card (e.g. /dev/sdb, not /dev/sdb1)"
  root_src=$(findmnt -n -o SOURCE / 2>/dev/null || true)
  root_disk=$(lsblk -n -o PKNAME "$root_src" 2>/dev/null | head -1 || true)
  [ "$name" != "$root_disk" ] || die "$DEVICE holds / (this machine's own disk); refusing"
  if grep -q "^/dev/${name}" /proc/mounts; then
    die "$DEVICE has mounted partitions: $(grep "^/dev/${name}" /proc/mounts | cut -d' ' -f1,2 | tr '\n' ' ')- unmount them first"
  fi
  if [ "$(cat "/sys/block/$name/removable" 2>/dev/null || echo 0)" != 1 ] && [ "$FORCE" != 1 ]; then
    die "$DEVICE does not say it is removable; if it really is the SD card, add FORCE=1"
  fi
  size=$(blockdev --getsize64 "$DEVICE")
  need=$(stat -c %s "$IMG")
  [ "$size" -ge "$need" ] || die "$DEVICE holds $size bytes, the image needs $need"
fi

say "will write $IMG ($(du -h --apparent-size "$IMG" | cut -f1)) to $DEVICE, erasing everything on it"
if [ "$DRY_RUN" = 1 ]; then
  say "dry run: + dd if=$IMG of=$DEVICE bs=4M conv=fsync; then a read-back check"
  exit 0
fi
if [ "$YES" != 1 ]; then
  if [ ! -t 0 ]; then die "no terminal to ask on: add YES=1 if you are sure"; fi
  read -r -p "type the device name ($DEVICE) to go on: " answer
  [ "$answer" = "$DEVICE" ] || die "not confirmed; nothing written"
fi

dd if="$IMG" of="$DEVICE" bs=4M conv=fsync status=progress 2>&1 | tail -1
sync
want=$(sha256sum "$IMG" | cut -d' ' -f1)
got=$(head -c "$(stat -c %s "$IMG")" "$DEVICE" | sha256sum | cut -d' ' -f1)
[ "$want" = "$got" ] || { printf 'flash: read-back mismatch on %s: the card may be bad\n' "$DEVICE" >&2; exit 1; }
say "done and verified: put the card in the Pi and power it up"

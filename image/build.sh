#!/usr/bin/env bash
# make image: a bootable SD-card image for Raspberry Pi 3 / 4 / Zero 2 W, built offline from
# Debian packages (bookworm, arm64) and PyPI wheels, with groovebox installed and enabled.
#
#   sudo make image                          -> build/groovebox.img
#   make image DRY_RUN=1                     print the plan (partition table included), build nothing
#   make image FIRST_USER=me FIRST_SSH_KEY="$(cat ~/.ssh/id_ed25519.pub)" WIFI_SSID=... WIFI_PASSWORD=...
#                                            bake a first-boot setup file into the card (see image/README.md)
#
# Needs root on a Debian-like Linux machine with: mmdebstrap, arch-test, qemu-user-static + binfmt-support
# (unless the machine is arm64), dosfstools, mtools, fdisk (sfdisk), e2fsprogs; pip for the
# wheelhouse (PIP, default the repo's .venv). No loop devices, no mounts of the image, no
# network inside the chroot: apt runs on the host (mmdebstrap), pip downloads on the host.
#
# Steps, each cached under $CACHE_DIR (build/cache) by a key of what it is made from:
#   1. wheelhouse: pip download the runtime set for cp311 aarch64 (wheels only)
#   2. base root file system (tarball): mmdebstrap --variant=minbase of the packages in
#      image/packages.txt plus what install.sh needs, update-initramfs diverted while packages
#      install and run once at the end (MODULES=list, image/rootfs/etc/initramfs-tools/modules);
#      Debian's raspi-firmware hooks fill /boot/firmware (firmware, kernel, initrd, DTBs).
#      The .debs are kept (apt archives) so a changed package list downloads only what is new.
#   3. the project: unpack the base, lay down image/rootfs/ (first-boot unit, network, fstab),
#      run scripts/install.sh in a chroot with IN_IMAGE=1 and pip pointed at the wheelhouse
#      (PIP_NO_INDEX=1); then remove what must be per card (SSH host keys, machine-id) and
#      the chroot's resolv.conf
#   4. the card: mkfs.vfat -C + mcopy -s (boot), mkfs.ext4 -d (root), sfdisk, dd conv=notrunc
# A change to the code only redoes 3 and 4.
# CARD_ROOT=DIR does step 4 alone, from DIR as the root file system (DIR/boot/firmware the boot
# partition), as any user: the tests check the partition table and file systems it writes.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IMG=${IMG:-build/groovebox.img}
CACHE_DIR=${CACHE_DIR:-$REPO/build/cache}
DRY_RUN=${DRY_RUN:-0}
PIP=${PIP:-$REPO/.venv/bin/pip}
SUITE=${SUITE:-bookworm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
PY_VERSION=3.11                          # bookworm's python3; the wheels must match it
BOOT_MB=${BOOT_MB:-256}
ROOT_MB=${ROOT_MB:-}                     # default: what the root file system needs + ROOT_SPARE_MB
ROOT_SPARE_MB=${ROOT_SPARE_MB:-400}
FIRST_USER=${FIRST_USER:-}
FIRST_PASSWORD_HASH=${FIRST_PASSWORD_HASH:-}
FIRST_SSH_KEY=${FIRST_SSH_KEY:-}
WIFI_SSID=${WIFI_SSID:-}
WIFI_PASSWORD=${WIFI_PASSWORD:-}
WIFI_COUNTRY=${WIFI_COUNTRY:-}
HOSTNAME_SET=${IMAGE_HOSTNAME:-}
CARD_ROOT=${CARD_ROOT:-}
ROOT_LABEL=RASPIROOT                     # Debian's raspi images' labels (raspi-firmware's ROOTPART)
BOOT_LABEL=RASPIFIRM
START_SECTOR=8192                        # 4 MiB: partitions aligned for SD cards' erase blocks

say() { printf 'image: %s\n' "$*"; }
die() { printf 'image: %s\n' "$1" >&2; exit "${2:-1}"; }
dry() { [ "$DRY_RUN" = 1 ]; }
run() { if dry; then printf '+ %s\n' "$*"; else "$@"; fi; }
now() { date +%s; }
T0=$(now)
elapsed() { echo "$(( $(now) - T0 ))s"; }

# --- what goes in ---------------------------------------------------------------------------
mapfile -t IMAGE_PACKAGES < <(grep -v '^\s*\(#\|$\)' "$REPO/image/packages.txt")
mapfile -t INSTALL_PACKAGES < <(PRINT_APT_PACKAGES=1 bash "$REPO/scripts/install.sh")
PACKAGES=("${IMAGE_PACKAGES[@]}" "${INSTALL_PACKAGES[@]}")
mapfile -t REQ_DEPS < <(python3 "$REPO/scripts/requirements.py" deps)
mapfile -t REQ_NODEPS < <(python3 "$REPO/scripts/requirements.py" no-deps)
mapfile -t REQ_BUILD < <(python3 "$REPO/scripts/requirements.py" build)
PLATFORMS=(--platform manylinux2014_aarch64 --platform manylinux_2_28_aarch64
           --platform manylinux_2_17_aarch64 --python-version "$PY_VERSION" --implementation cp
           --only-binary=:all:)

key() { sha256sum | cut -c1-16; }
WHEEL_KEY=$(printf '%s\n' "${REQ_DEPS[@]}" -- "${REQ_NODEPS[@]}" -- "${REQ_BUILD[@]}" -- "${PLATFORMS[@]}" | key)
BASE_KEY=$( { printf '%s\n' "$SUITE" "$MIRROR" "$SECURITY_MIRROR" "${PACKAGES[@]}";
              sed -n '/^# >>> base recipe/,/^# <<< base recipe/p' "${BASH_SOURCE[0]}";
              cat "$REPO/image/rootfs/etc/initramfs-tools/modules" \
                  "$REPO/image/rootfs/etc/initramfs-tools/conf.d/groovebox.conf" \
                  "$REPO/image/rootfs/etc/default/raspi-firmware"; } | key)
WHEELHOUSE=$CACHE_DIR/wheels-$WHEEL_KEY
BASE_TAR=$CACHE_DIR/rootfs-$SUITE-arm64-$BASE_KEY.tar
DEBS=$CACHE_DIR/debs
IMG=$(realpath -m "$IMG")
WORK=$(dirname "$IMG")/image-work

# the model directory's files, from their one definition (appliance/core/model_files.py)
for f in $(cd "$REPO" && python3 -m appliance.core.model_files models/groove-vae); do
  [ -f "$REPO/models/groove-vae/$f" ] || die "the model is incomplete: models/groove-vae/$f is missing" 2
done
if [ -n "$FIRST_USER" ] && ! [[ $FIRST_USER =~ ^[a-z_][a-z0-9_-]{0,30}$ ]]; then
  die "FIRST_USER=$FIRST_USER: a login name of lower-case letters, digits, _ and - please" 2
fi
if [ -n "$FIRST_USER" ] && [ -z "$FIRST_PASSWORD_HASH$FIRST_SSH_KEY" ]; then
  die "FIRST_USER=$FIRST_USER needs FIRST_PASSWORD_HASH (openssl passwd -6) or FIRST_SSH_KEY to log in with" 2
fi
if [ -n "$WIFI_SSID" ] && [ -z "$WIFI_COUNTRY" ]; then
  die "WIFI_SSID needs WIFI_COUNTRY (two letters, e.g. GB, DE, US: the radio's legal channels)" 2
fi

# preflight: what a real build needs of this machine. A dry run says what is missing and goes on.
preflight() {
  local missing=() problems=()
  [ "$(id -u)" -eq 0 ] || problems+=("needs root (chroot, files owned by root and the service user): sudo make image")
  for tool in mmdebstrap arch-test mkfs.vfat mcopy mkfs.ext4 sfdisk chroot unshare; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if [ "$(uname -m)" != aarch64 ] && ! [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    if ! dry; then
      [ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
      command -v update-binfmts >/dev/null 2>&1 && update-binfmts --enable qemu-aarch64 2>/dev/null || true
    fi
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || missing+=("qemu-aarch64 binfmt")
  fi
  [ -x "$PIP" ] || missing+=("pip ($PIP: make .venv/.runtime, or PIP=...)")
  [ ${#missing[@]} -eq 0 ] || problems+=("missing: ${missing[*]}
  apt-get install mmdebstrap arch-test qemu-user-static binfmt-support dosfstools mtools fdisk e2fsprogs")
  [ ${#problems[@]} -gt 0 ] || return 0
  if dry; then
    for p in "${problems[@]}"; do say "a real build would stop here: $p"; done
  else
    die "$(printf '%s\n' "${problems[@]}")" 2
  fi
}
[ -n "$CARD_ROOT" ] || preflight

say "plan: $IMG from Debian $SUITE arm64 (${#PACKAGES[@]} packages) + wheels for cp${PY_VERSION/./} aarch64"
say "cache: $CACHE_DIR (wheels-$WHEEL_KEY, $(basename "$BASE_TAR"), debs/)"

# --- 1. the wheelhouse ----------------------------------------------------------------------
# fetch_wheels DIR PIP-ARGS...: aarch64 cp311 wheels from PyPI into DIR. A requirement that
# PyPI has only as source (sdnotify) is built into a wheel here, if it is pure Python (a
# py3-none-any wheel runs on the Pi as it is); anything else is an error.
fetch_wheels() {
  local dir=$1 out missing whl
  shift
  for _ in 1 2 3 4 5 6; do
    if out=$("$PIP" download --quiet --dest "$dir" --find-links "$dir" "${PLATFORMS[@]}" "$@" 2>&1); then
      return 0
    fi
    missing=$(sed -n 's/^ERROR: No matching distribution found for \(.*\)$/\1/p' <<<"$out" | head -1)
    [ -n "$missing" ] || { printf '%s\n' "$out" >&2; die "pip download failed (above)"; }
    say "no wheel of $missing on PyPI: building one here (pure Python only)"
    rm -rf "$dir.build"
    "$PIP" wheel --quiet --no-deps --wheel-dir "$dir.build" "$missing" >/dev/null 2>&1 \
      || die "cannot build a wheel of $missing"
    whl=$(ls "$dir.build"/*.whl)
    case "$whl" in
      *-none-any.whl) mv "$whl" "$dir/"; rm -rf "$dir.build" ;;
      *) die "$missing has no aarch64 wheel on PyPI and is not pure Python ($(basename "$whl"))" ;;
    esac
  done
  die "pip download kept failing: $out"
}
ROOT=$WORK/root
FW=$ROOT/boot/firmware
if [ -n "$CARD_ROOT" ]; then
  [ -d "$CARD_ROOT/boot/firmware" ] || die "CARD_ROOT=$CARD_ROOT has no boot/firmware/" 2
  say "1-3/4 skipped: CARD_ROOT=$CARD_ROOT is the root file system"
  run rm -rf "$WORK"
  run mkdir -p "$WORK"
  run cp -a "$CARD_ROOT" "$ROOT"
elif [ -f "$WHEELHOUSE/.complete" ]; then
  say "1/4 wheelhouse: cached ($WHEELHOUSE)"
else
  say "1/4 wheelhouse: pip download for aarch64 into $WHEELHOUSE"
  run rm -rf "$WHEELHOUSE.tmp"
  run mkdir -p "$WHEELHOUSE.tmp"
  if dry; then
    printf '+ %s download --dest %s %s %s\n' "$PIP" "$WHEELHOUSE.tmp" "${PLATFORMS[*]}" "${REQ_DEPS[*]} ${REQ_BUILD[*]}"
    printf '+ %s download --dest %s %s --no-deps %s\n' "$PIP" "$WHEELHOUSE.tmp" "${PLATFORMS[*]}" "${REQ_NODEPS[*]}"
    printf '+ (a requirement with no wheel on PyPI: pip wheel --no-deps here, if pure Python)\n'
  else
    fetch_wheels "$WHEELHOUSE.tmp" "${REQ_DEPS[@]}" "${REQ_BUILD[@]}"
    fetch_wheels "$WHEELHOUSE.tmp" --no-deps "${REQ_NODEPS[@]}"
  fi
  run touch "$WHEELHOUSE.tmp/.complete"
  run mv "$WHEELHOUSE.tmp" "$WHEELHOUSE"
fi

# --- 2. the base root file system -----------------------------------------------------------
# >>> base recipe (a change here rebuilds the base)
# update-initramfs under qemu-user takes minutes per run: while packages install it is a stub,
# then it runs once with MODULES=list.
DIVERT='chroot "$1" dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs
printf "#!/bin/sh\necho \"update-initramfs: deferred by image/build.sh\" >&2\n" > "$1/usr/sbin/update-initramfs"
chmod 0755 "$1/usr/sbin/update-initramfs"'
UNDIVERT='rm -f "$1/usr/sbin/update-initramfs"
chroot "$1" dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs'
BASE_FILES='cp -a '"$REPO"'/image/rootfs/etc/initramfs-tools/. "$1/etc/initramfs-tools/"
cp '"$REPO"'/image/rootfs/etc/default/raspi-firmware "$1/etc/default/raspi-firmware"'
INITRAMFS='chroot "$1" update-initramfs -c -k all'
DPKG_OPTS=(--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
           --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
           --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias'
           --dpkgopt='path-exclude=/usr/share/lintian/*')
# <<< base recipe
if [ -n "$CARD_ROOT" ]; then
  :
elif [ -f "$BASE_TAR" ]; then
  say "2/4 base root file system: cached ($BASE_TAR)"
else
  say "2/4 base root file system: mmdebstrap (packages under qemu-user: several minutes)"
  run mkdir -p "$DEBS"
  run mmdebstrap --arch=arm64 --variant=minbase --format=tar --components="main non-free-firmware" \
    --include="$(IFS=,; echo "${PACKAGES[*]}")" "${DPKG_OPTS[@]}" \
    --aptopt='Acquire::Retries "3"' \
    --skip=download/empty --skip=essential/unlink \
    --setup-hook='mkdir -p "$1/var/cache/apt/archives"' \
    --setup-hook="sync-in $DEBS /var/cache/apt/archives/" \
    --essential-hook="$DIVERT" \
    --customize-hook="sync-out /var/cache/apt/archives $DEBS" \
    --customize-hook="$BASE_FILES" \
    --customize-hook="$UNDIVERT" \
    --customize-hook="$INITRAMFS" \
    "$SUITE" "$BASE_TAR.tmp" \
    "deb $MIRROR $SUITE main non-free-firmware" \
    "deb $MIRROR $SUITE-updates main non-free-firmware" \
    "deb $SECURITY_MIRROR $SUITE-security main non-free-firmware"
  run mv "$BASE_TAR.tmp" "$BASE_TAR"
  say "base done at $(elapsed)"
fi

# --- 3. the project, installed by scripts/install.sh ---------------------------------------
if [ -z "$CARD_ROOT" ]; then
say "3/4 groovebox: unpack the base, scripts/install.sh in a chroot (IN_IMAGE=1, pip offline)"
run rm -rf "$WORK"
run mkdir -p "$ROOT"
run tar -C "$ROOT" --numeric-owner --xattrs --xattrs-include='*' -xpf "$BASE_TAR"
# the image's own files: fstab, hostname, network, first-boot unit, modules, ...
if dry; then
  printf '+ copy image/rootfs/ (fstab, hostname, network, groovebox-firstboot) into %s\n' "$ROOT"
  printf '+ copy appliance/ models/groove-vae/ examples/ systemd/ firmware_config/ scripts/ pyproject.toml README.md to %s/usr/src/groovebox\n' "$ROOT"
else
  tar -C "$REPO/image/rootfs" --owner=0 --group=0 -cf - . | tar -C "$ROOT" --no-overwrite-dir -xf -
  mkdir -p "$ROOT/usr/src/groovebox" "$ROOT/var/cache/groovebox-wheels"
  tar -C "$REPO" --exclude=__pycache__ --exclude='*.pyc' --owner=0 --group=0 -cf - \
    appliance models/groove-vae examples systemd firmware_config scripts pyproject.toml README.md \
    | tar -C "$ROOT/usr/src/groovebox" -xf -
  cp "$WHEELHOUSE"/*.whl "$ROOT/var/cache/groovebox-wheels/"
fi
# No network in the chroot: an empty resolv.conf, pip offline. A private mount namespace, so
# /proc, /sys (onnxruntime reads it) and /dev vanish with the chroot whatever happens.
CHROOT_SCRIPT='set -e
root=$1
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
rm -f "$root/etc/resolv.conf"; : > "$root/etc/resolv.conf"
chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
  IN_IMAGE=1 PIP_NO_INDEX=1 PIP_FIND_LINKS=/var/cache/groovebox-wheels PIP_DISABLE_PIP_VERSION_CHECK=1 \
  bash /usr/src/groovebox/scripts/install.sh'
run unshare --mount --propagation private bash -c "$CHROOT_SCRIPT" chroot-install "$ROOT"

say "3/4 per-card state out, first boot in"
run rm -rf "$ROOT/var/cache/groovebox-wheels" "$ROOT/usr/src/groovebox"
# DIN MIDI on this kernel: the mini UART on GPIO14/15 is /dev/ttyS1, and enable_uart=1 (from
# /etc/default/raspi-firmware-custom) fixes its clock, so 31250 baud is exact; no overlay needed.
# Off until the player sets din.enabled: true.
if dry; then printf '+ din.device /dev/ttyS1, din.baud 31250 in /etc/groovebox/config.yaml\n'; else
  sed -i -e 's|^\(  device: \)/dev/ttyAMA0$|\1/dev/ttyS1|' \
         -e 's|^  # (restart) 38400 here is 31250 on the wire once the midi-uart0 overlay is loaded$|  # (restart) the image'"'"'s Debian kernel: the mini UART at MIDI'"'"'s own 31250 (no overlay)|' \
         -e 's|^\(  baud: \)38400$|\131250|' "$ROOT/etc/groovebox/config.yaml"
  grep -q '^  device: /dev/ttyS1$' "$ROOT/etc/groovebox/config.yaml" && grep -q '^  baud: 31250$' "$ROOT/etc/groovebox/config.yaml" \
    || die "could not set din.device/din.baud in the image's config.yaml (examples/config.yaml changed?)"
fi
run rm -f "$ROOT"/etc/ssh/ssh_host_*
if dry; then
  printf '+ empty /etc/machine-id, /etc/resolv.conf -> systemd-resolved stub, apt lists and caches removed\n'
else
  : > "$ROOT/etc/machine-id"
  rm -f "$ROOT/var/lib/dbus/machine-id"
  ln -sfn ../run/systemd/resolve/stub-resolv.conf "$ROOT/etc/resolv.conf"
  rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/apt/archives/*.deb \
         "$ROOT"/var/log/*.log "$ROOT"/root/.cache "$ROOT"/tmp/*
fi
for unit in groovebox-firstboot.service systemd-networkd.service systemd-resolved.service ssh.service; do
  run chroot "$ROOT" systemctl enable --quiet "$unit"
done
run chroot "$ROOT" systemctl mask --quiet systemd-networkd-wait-online.service
# the first-boot setup file: a template always, the real one when FIRST_USER/WIFI_* were given
run install -m 0644 "$REPO/image/groovebox-setup.txt.example" "$FW/groovebox-setup.txt.example"
if [ -n "$FIRST_USER$WIFI_SSID$HOSTNAME_SET" ]; then
  if dry; then
    printf '+ write %s/groovebox-setup.txt (user %s, wifi %s)\n' "$FW" "${FIRST_USER:-none}" "${WIFI_SSID:-none}"
  else
    {
      echo "# written by make image; read once at first boot, then emptied of secrets"
      [ -n "$HOSTNAME_SET" ] && echo "hostname=$HOSTNAME_SET"
      [ -n "$FIRST_USER" ] && echo "user=$FIRST_USER"
      [ -n "$FIRST_PASSWORD_HASH" ] && echo "password_hash=$FIRST_PASSWORD_HASH"
      [ -n "$FIRST_SSH_KEY" ] && echo "ssh_key=$FIRST_SSH_KEY"
      [ -n "$WIFI_SSID" ] && echo "wifi_ssid=$WIFI_SSID"
      [ -n "$WIFI_PASSWORD" ] && echo "wifi_password=$WIFI_PASSWORD"
      [ -n "$WIFI_COUNTRY" ] && echo "wifi_country=$WIFI_COUNTRY"
    } > "$FW/groovebox-setup.txt"
    chmod 0600 "$FW/groovebox-setup.txt"
  fi
else
  say "no FIRST_USER / WIFI_SSID: write groovebox-setup.txt on the card's boot partition before first boot (image/README.md)"
fi
fi   # steps 1-3

# --- 4. the card ------------------------------------------------------------------------------
say "4/4 the card: vfat boot (mkfs.vfat -C, mcopy), ext4 root (mkfs.ext4 -d), sfdisk, dd"
if [ -z "$ROOT_MB" ]; then
  if dry; then ROOT_MB=1800; else
    used=$(du -sm --exclude=./boot/firmware "$ROOT" | cut -f1)
    ROOT_MB=$(( (used * 115 / 100 + ROOT_SPARE_MB + 63) / 64 * 64 ))
  fi
fi
BOOT_SECTORS=$(( BOOT_MB * 2048 ))
ROOT_START=$(( START_SECTOR + BOOT_SECTORS ))
ROOT_SECTORS=$(( ROOT_MB * 2048 ))
TOTAL_MB=$(( (ROOT_START + ROOT_SECTORS) / 2048 ))
# MBR (the Pi's boot ROM reads MBR only): 1 FAT32 LBA, bootable; 2 Linux. Partition 2 grows to
# the card's size at first boot (groovebox-firstboot).
TABLE="label: dos
unit: sectors
sector-size: 512

start=$START_SECTOR, size=$BOOT_SECTORS, type=c, bootable
start=$ROOT_START, size=$ROOT_SECTORS, type=83"
say "partition table ($TOTAL_MB MiB):"
printf '%s\n' "$TABLE" | sed 's/^/  | /'
run rm -f "$WORK/boot.vfat" "$WORK/root.ext4" "$IMG.tmp"
run mkfs.vfat -F 32 -n "$BOOT_LABEL" -C "$WORK/boot.vfat" $(( BOOT_MB * 1024 ))
if dry; then
  printf '+ mcopy -s -i %s %s/* ::/\n' "$WORK/boot.vfat" "$FW"
else
  mcopy -s -p -m -i "$WORK/boot.vfat" "$FW"/* ::/
  find "$FW" -mindepth 1 -delete      # the root file system keeps the empty mount point
fi
run mkfs.ext4 -q -L "$ROOT_LABEL" -O ^orphan_file,^metadata_csum_seed -E root_owner=0:0 \
  -d "$ROOT" "$WORK/root.ext4" "${ROOT_MB}M"
run truncate -s "${TOTAL_MB}M" "$IMG.tmp"
if dry; then printf '+ sfdisk %s  (the table above)\n' "$IMG.tmp"; else
  printf '%s\n' "$TABLE" | sfdisk --quiet --no-reread --no-tell-kernel "$IMG.tmp"
fi
run dd if="$WORK/boot.vfat" of="$IMG.tmp" bs=1M seek=$(( START_SECTOR / 2048 )) conv=notrunc,sparse status=none
run dd if="$WORK/root.ext4" of="$IMG.tmp" bs=1M seek=$(( ROOT_START / 2048 )) conv=notrunc,sparse status=none
run mv "$IMG.tmp" "$IMG"
# the kernel and initrd beside the image, for make image-test (qemu boots them directly)
if ! dry; then
  if [ -z "$CARD_ROOT" ]; then
    cp "$ROOT"/boot/vmlinuz-* "$(dirname "$IMG")/groovebox.vmlinuz"
    cp "$ROOT"/boot/initrd.img-* "$(dirname "$IMG")/groovebox.initrd"
  fi
  rm -rf "$WORK"
  size=$(du -k --apparent-size "$IMG" | cut -f1)
  alloc=$(du -k "$IMG" | cut -f1)
  say "done in $(elapsed): $IMG, $(( size / 1024 )) MiB ($(( alloc / 1024 )) MiB allocated)"
  printf 'build_seconds=%s\nimage_mib=%s\nallocated_mib=%s\n' "$(( $(now) - T0 ))" "$(( size / 1024 ))" \
    "$(( alloc / 1024 ))" > "$IMG.stats"
  say "write it with: make flash DEVICE=/dev/sdX"
fi

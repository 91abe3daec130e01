"""make image, checked fast: the plan, the card it lays out, the files it puts in the image.

The whole build (mmdebstrap under qemu-user, ~15 min) and the boot are `make image` and
`make image-test`; here the same recipe runs as a dry run, and its last step (partition table,
vfat boot, ext4 root) runs for real on a small tree (CARD_ROOT), as any user.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
import re
import shutil
import subprocess
import sys

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOTFS = REPO / "image" / "rootfs"
BUILD = REPO / "image" / "build.sh"


def build(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("DRY_RUN", "CARD_ROOT", "FIRST_USER", "WIFI_SSID", "IMG", "CACHE_DIR")}
    return subprocess.run(["bash", str(BUILD)], capture_output=True, text=True,
                          env={**clean, **env}, timeout=120)


def tool(name: str) -> str:
    found = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
    if found is None:
        pytest.fail(f"{name} is missing: `make test` installs it (make apt-test)")
    return found


def test_the_plan_builds_offline_from_debian_packages_and_wheels(tmp_path: Path) -> None:
    run = build({"DRY_RUN": "1", "IMG": str(tmp_path / "out.img"), "CACHE_DIR": str(tmp_path / "cache")})
    assert run.returncode == 0, run.stderr
    plan = run.stdout
    # 1. wheels for the Pi's Python, downloaded on the host; onnxruntime without its tools' deps
    assert "download" in plan and "--only-binary=:all:" in plan
    assert "manylinux2014_aarch64" in plan and "manylinux_2_28_aarch64" in plan
    assert "--python-version 3.11" in plan
    no_deps = [line for line in plan.splitlines() if "download" in line and "--no-deps" in line]
    assert no_deps and "onnxruntime==" in no_deps[0]
    # 2. Debian packages only, minbase, arm64; update-initramfs held back, then run once
    debootstrap = plan[plan.index("+ mmdebstrap"):plan.index("image: 3/4")]
    assert "--arch=arm64" in debootstrap and "--variant=minbase" in debootstrap
    included = set(re.search(r"--include=(\S+)", debootstrap).group(1).split(","))
    wanted = subprocess.run(["bash", str(REPO / "scripts" / "install.sh")], capture_output=True, text=True,
                            env={**os.environ, "PRINT_APT_PACKAGES": "1"}).stdout.split()
    assert "procps" in wanted and set(wanted) <= included, "install.sh's packages come from the base"
    assert {"linux-image-arm64", "raspi-firmware", "openssh-server", "initramfs-tools",
            "firmware-brcm80211", "systemd-resolved"} <= included
    assert "dpkg-divert" in debootstrap and "update-initramfs -c -k all" in debootstrap
    assert debootstrap.index("dpkg-divert --quiet --local --rename --add") < debootstrap.index(
        "update-initramfs -c -k all")
    assert "sync-out /var/cache/apt/archives" in debootstrap, "the .debs are kept"
    # 3. the project by install.sh in a chroot, pip offline, no network, no host resolv.conf
    assert "IN_IMAGE=1 PIP_NO_INDEX=1 PIP_FIND_LINKS=/var/cache/groovebox-wheels" in plan
    assert "bash /usr/src/groovebox/scripts/install.sh" in plan
    assert "cp /etc/resolv.conf" not in plan and "--remove-destination /etc/resolv.conf" not in plan
    assert "rm -f" in plan and "ssh_host_" in plan and "machine-id" in plan
    assert "enable --quiet groovebox-firstboot.service" in plan
    # 4. no loop devices, no mounts of the image
    for banned in ("losetup", "mount -o loop", "kpartx", "parted"):
        assert banned not in plan, banned
    for step in ("mkfs.vfat -F 32 -n RASPIFIRM -C", "mcopy -s", "mkfs.ext4", "-L RASPIROOT", "-d ",
                 "conv=notrunc"):
        assert step in plan, step
    assert not (tmp_path / "out.img").exists() and not (tmp_path / "cache").exists()


def test_the_card_has_an_mbr_a_vfat_boot_and_an_ext4_root(tmp_path: Path) -> None:
    """Step 4 for real, on a small tree: the partition table and both file systems."""
    root = tmp_path / "root"
    boot = root / "boot" / "firmware"
    (boot / "overlays").mkdir(parents=True)
    (boot / "config.txt").write_text("arm_64bit=1\n")
    (boot / "overlays" / "README").write_text("x\n")
    (root / "etc").mkdir()
    shutil.copy(ROOTFS / "etc" / "fstab", root / "etc" / "fstab")
    image = tmp_path / "card.img"
    run = build({"CARD_ROOT": str(root), "IMG": str(image), "BOOT_MB": "64", "ROOT_SPARE_MB": "16",
                 "PATH": os.environ["PATH"] + ":/usr/sbin:/sbin"})
    assert run.returncode == 0, run.stdout + run.stderr
    table = json.loads(subprocess.run([tool("sfdisk"), "--json", str(image)], capture_output=True,
                                      text=True, check=True).stdout)["partitiontable"]
    assert table["label"] == "dos", "the Pi's boot ROM reads MBR only"
    first, second = table["partitions"]
    assert first["type"] == "c" and first.get("bootable") and first["start"] == 8192
    assert first["size"] == 64 * 2048
    assert second["type"] == "83" and second["start"] == first["start"] + first["size"]
    assert (second["start"] + second["size"]) * 512 == image.stat().st_size
    # the boot partition: FAT, label RASPIFIRM, the firmware tree as it was
    listing = subprocess.run([tool("mdir"), "-i", f"{image}@@{first['start'] * 512}", "-/", "-b", "::/"],
                             capture_output=True, text=True, check=True).stdout
    assert "::/config.txt" in listing and "::/overlays/README" in listing
    label = subprocess.run([tool("mlabel"), "-i", f"{image}@@{first['start'] * 512}", "-s", "::"],
                           capture_output=True, text=True).stdout
    assert "RASPIFIRM" in label
    # the root: ext4, label RASPIROOT, fstab in it, /boot/firmware an empty mount point
    part = tmp_path / "root.ext4"
    with open(image, "rb") as src, open(part, "wb") as dst:
        src.seek(second["start"] * 512)
        dst.write(src.read(second["size"] * 512))
    fstab = subprocess.run([tool("debugfs"), "-R", "cat /etc/fstab", str(part)], capture_output=True,
                           text=True).stdout
    assert "LABEL=RASPIROOT" in fstab and "LABEL=RASPIFIRM" in fstab
    mountpoint = subprocess.run([tool("debugfs"), "-R", "ls -p /boot/firmware", str(part)],
                                capture_output=True, text=True).stdout
    assert "config.txt" not in mountpoint
    info = subprocess.run([tool("dumpe2fs"), "-h", str(part)], capture_output=True, text=True).stdout
    assert re.search(r"Filesystem volume name:\s+RASPIROOT", info)
    # sparse: the card's empty space is not written
    assert os.stat(image).st_blocks * 512 < image.stat().st_size
    assert "partition table" in run.stdout and "start=8192" in run.stdout


def test_the_image_files_agree_with_the_recipe() -> None:
    script = BUILD.read_text()
    fstab = (ROOTFS / "etc" / "fstab").read_text()
    assert re.search(r"^ROOT_LABEL=RASPIROOT", script, re.M) and re.search(r"^BOOT_LABEL=RASPIFIRM", script, re.M)
    assert re.search(r"^LABEL=RASPIROOT\s+/\s+ext4", fstab, re.M)
    assert re.search(r"^LABEL=RASPIFIRM\s+/boot/firmware\s+vfat", fstab, re.M)
    defaults = (ROOTFS / "etc" / "default" / "raspi-firmware").read_text()
    assert "ROOTPART=LABEL=RASPIROOT" in defaults
    consoles = re.search(r'^CONSOLES="([^"]*)"', defaults, re.M).group(1)
    assert "ttyS" not in consoles and "ttyAMA" not in consoles and "serial" not in consoles
    modules = (ROOTFS / "etc" / "initramfs-tools" / "modules").read_text().split()
    assert {"ext4", "mmc_block", "sdhci_iproc", "bcm2835", "virtio_blk", "virtio_pci"} <= set(modules)
    conf = (ROOTFS / "etc" / "initramfs-tools" / "conf.d" / "groovebox.conf").read_text()
    assert "MODULES=list" in conf
    packages = [line.strip() for line in (REPO / "image" / "packages.txt").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert "raspi-firmware" in packages and "linux-image-arm64" in packages
    # the first-boot setup template names every key the first-boot script reads
    firstboot = (ROOTFS / "usr" / "local" / "sbin" / "groovebox-firstboot").read_text()
    template = (REPO / "image" / "groovebox-setup.txt.example").read_text()
    for key in ("user", "password_hash", "password", "ssh_key", "wifi_ssid", "wifi_password",
                "wifi_country", "hostname"):
        assert f"#{key}=" in template and (f"kv[{key}]" in firstboot or key == "ssh_key")
    assert "ssh-keygen -A" in firstboot
    assert subprocess.run(["bash", "-n", str(ROOTFS / "usr" / "local" / "sbin" / "groovebox-firstboot")]).returncode == 0


def test_the_first_boot_unit_verifies(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze")
    unit = (ROOTFS / "etc" / "systemd" / "system" / "groovebox-firstboot.service").read_text()
    script = ROOTFS / "usr" / "local" / "sbin" / "groovebox-firstboot"
    target = tmp_path / "groovebox-firstboot.service"
    target.write_text(unit.replace("/usr/local/sbin/groovebox-firstboot", str(script)))
    done = subprocess.run([analyze, "verify", str(target)], capture_output=True, text=True, timeout=120)
    complaints = [line for line in (done.stdout + done.stderr).splitlines()
                  if "groovebox-firstboot" in line]
    assert done.returncode == 0 and complaints == [], done.stdout + done.stderr
    assert re.search(r"^Before=ssh\.service ", unit, re.M), "host keys exist before sshd starts"


def test_the_image_checks_what_it_is_given(tmp_path: Path) -> None:
    base = {"DRY_RUN": "1", "IMG": str(tmp_path / "out.img"), "CACHE_DIR": str(tmp_path / "cache")}
    run = build({**base, "FIRST_USER": "Bad User"})
    assert run.returncode == 2 and "login name" in run.stderr
    assert run.stderr.rstrip().endswith("please"), "the exit code is not printed as part of the message"
    run = build({**base, "FIRST_USER": "musician"})
    assert run.returncode == 2 and "FIRST_PASSWORD_HASH" in run.stderr and "FIRST_SSH_KEY" in run.stderr
    run = build({**base, "WIFI_SSID": "stage"})
    assert run.returncode == 2 and "WIFI_COUNTRY" in run.stderr
    run = build({**base, "FIRST_USER": "musician", "FIRST_SSH_KEY": "ssh-ed25519 AAAA me", "WIFI_SSID": "stage",
                 "WIFI_COUNTRY": "GB"})
    assert run.returncode == 0 and "groovebox-setup.txt (user musician, wifi stage)" in run.stdout


def test_a_dry_run_says_what_a_real_build_would_still_need(tmp_path: Path) -> None:
    run = build({"DRY_RUN": "1", "IMG": str(tmp_path / "out.img"), "CACHE_DIR": str(tmp_path / "cache"),
                 "PIP": str(tmp_path / "no-pip")})
    assert run.returncode == 0, run.stderr
    stops = [line for line in run.stdout.splitlines() if "a real build would stop here" in line]
    assert stops and "no-pip" in stops[-1], run.stdout
    assert "+ mmdebstrap" in run.stdout, "the plan is printed all the same"


def test_the_guest_test_is_valid_python() -> None:
    for path in (REPO / "image" / "guest_test.py", REPO / "image" / "image_test.py"):
        compile(path.read_text(), str(path), "exec")
    assert sys.version_info >= (3, 11)


def guest_test_module():
    import importlib.util
    spec = importlib.util.spec_from_file_location("guest_test", REPO / "image" / "guest_test.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_guest_test_matches_what_the_box_sent_with_what_arrived() -> None:
    """image-test's timing check: a note heard near its time matches; a late one is lost and
    heard as extra; a note on another channel or note number never matches."""
    match = guest_test_module().match
    meant = [(1.000, 9, 36), (1.125, 9, 38), (1.250, 9, 42), (1.375, 9, 42)]
    heard = [(1.002, 9, 36), (1.131, 9, 38), (1.250, 0, 42), (1.500, 9, 42)]
    errors, lost, extra = match(meant, heard, 0.0625)
    assert errors == pytest.approx([0.002, 0.006])
    assert lost == [(1.250, 9, 42), (1.375, 9, 42)]
    assert extra == [(1.250, 0, 42), (1.500, 9, 42)]
    assert match(meant, [(t, c, n) for t, c, n in meant], 0.0625)[1:] == ([], [])


def test_the_late_usb_serial_check_sets_din_in_the_shipped_config(tmp_path: Path) -> None:
    """image-test's late USB-serial DIN check edits the installed config (examples/config.yaml):
    its din section, and nothing else, becomes a USB-serial adapter, and the result loads."""
    from appliance.box.config import load
    shipped = (REPO / "examples" / "config.yaml").read_text()
    text, n = guest_test_module().din_on_usb(shipped)
    assert n == 1
    (tmp_path / "config.yaml").write_text(text)
    din = load(tmp_path / "config.yaml").din
    assert din.enabled and din.device == "/dev/ttyUSB0" and din.baud == 31250
    # outside the din section (its header to the next top-level line), every line as shipped
    lines = shipped.splitlines(keepends=True)
    start = lines.index("din:\n")
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith((" ", "#")))
    assert text == "".join(lines[:start]) + "din:\n  enabled: true\n  device: /dev/ttyUSB0\n  baud: 31250\n" \
        + "".join(lines[end:])


def test_image_test_counts_the_drum_notes_the_late_adapter_carried() -> None:
    """What qemu's usb-serial wrote to its file, as MIDI: note-ons with velocity, running status
    and clock bytes between them; note-offs as note-ons at 0 and other messages do not count."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("image_test", REPO / "image" / "image_test.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    raw = bytes([0xF8, 0x99, 36, 100, 38, 0xF8, 90, 0x89, 36, 0, 0x99, 42, 0, 0xB9, 7, 100,
                 0xC9, 5, 0x99, 46])            # the last is cut short
    assert module.note_ons(raw) == 2
    assert module.note_ons(b"") == 0

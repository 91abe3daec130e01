"""make image-test: boot the built image in qemu-system-aarch64 and play it over ALSA inside.

    make image-test                     boots build/groovebox.img (IMG=...) with its own kernel and
                                        initrd (build/groovebox.vmlinuz, .initrd, written by make image)

qemu: -M virt -cpu cortex-a72 -m 1024, the image as a virtio disk (snapshot=on: the image file is
not changed), a second virtio disk holding a tar of image/guest_test.py and a MIDI phrase. The
guest's systemd runs the test from the kernel command line (systemd.run=) and powers off when it
ends (systemd.run_success_action / failure_action); journald forwards the log to the serial
console, which this reads. When the guest asks (``GBTEST din_plug_now``), a USB-serial adapter
is plugged into its USB bus through the qemu monitor; what the box writes to it lands in a file.
Passes only when every check in the guest passed, the box logged "all notes off" while the
guest powered off, the power-off listener heard no hanging note, the late adapter carried drum
notes, and qemu exited by itself. Prints the figures it measured (and those of the build, from $IMG.stats).
Standard library only.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IMG = Path(os.environ.get("IMG") or REPO / "build" / "groovebox.img").resolve()
TIMEOUT_S = float(os.environ.get("IMAGE_TEST_TIMEOUT", "3000"))
SMP = os.environ.get("IMAGE_TEST_SMP", "2")
GUEST_PY = "/opt/groovebox/.venv/bin/python"
# what a player writes on the boot partition before first boot (image/groovebox-setup.txt.example);
# guest_test.py checks each took effect and that the secrets are gone from the card
SETUP = """# image-test
hostname=gbtest-box
user=gbtest
password=gbtest-secret-pw
ssh_key=ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ0ZXN0a2V5Zm9yZ3Jvb3ZlYm94aW1hZ2V0ZXN0 image-test
wifi_ssid=StageNet
wifi_password=gbtest-wifi-pw
wifi_country=GB
"""


def fail(message: str) -> None:
    print(f"image-test: FAIL: {message}", flush=True)
    sys.exit(1)


def payload(directory: Path) -> Path:
    """A tar (512-byte blocks: a raw disk as it is) the guest unpacks from /dev/vdb."""
    path = directory / "gbtest.tar"
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        tar.add(REPO / "image" / "guest_test.py", "gbtest/guest_test.py")
        tar.add(REPO / "examples" / "keyboard_phrase.mid", "gbtest/keyboard_phrase.mid")
    size = path.stat().st_size
    with open(path, "ab") as f:
        f.write(b"\0" * (-size % (1 << 20)))
    return path


def plug_din(monitor: Path) -> None:
    """Plug a USB-serial adapter (qemu's usb-serial, an FTDI FT232) into the running guest,
    through the qemu monitor, as a player plugs a USB-MIDI-DIN cable in after the box started."""
    import socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(monitor))
        s.sendall(b"device_add usb-serial,chardev=din,id=din0,bus=xhci.0\n")
        time.sleep(1.0)
        s.sendall(b"info usb\n")
        time.sleep(1.0)
        reply = s.recv(1 << 16).decode("utf-8", "replace")
    # the monitor echoes what it is sent with terminal escapes; its answer is on lines of their own
    answer = [line.strip() for line in re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", reply).splitlines()
              if line.strip() and not line.lstrip().startswith("(qemu)") and "QEMU" not in line[:5]]
    print(f"image-test: plugged a USB-serial adapter into the guest: {'; '.join(answer[-3:])}", flush=True)


def note_ons(raw: bytes) -> int:
    """Note-ons (velocity > 0) in a MIDI byte stream, running status and real-time bytes included."""
    count, status, data = 0, 0, []
    for b in raw:
        if b >= 0xF8:                   # clock, start, stop: anywhere, running status kept
            continue
        if b >= 0x80:
            status, data = (b if b < 0xF0 else 0), []
            continue
        if not status:
            continue
        data.append(b)
        length = 1 if status & 0xF0 in (0xC0, 0xD0) else 2
        if len(data) == length:
            count += status & 0xF0 == 0x90 and data[1] > 0
            data = []
    return count


def main() -> int:
    kernel, initrd = IMG.parent / "groovebox.vmlinuz", IMG.parent / "groovebox.initrd"
    for need in (IMG, kernel, initrd):
        if not need.exists():
            fail(f"{need} is missing: sudo make image first")
    qemu = shutil.which("qemu-system-aarch64")
    if qemu is None:
        fail("qemu-system-aarch64 is missing: apt-get install qemu-system-arm")
    stats = {}
    if Path(f"{IMG}.stats").exists():
        stats = dict(line.split("=", 1) for line in Path(f"{IMG}.stats").read_text().split())
    work = Path(tempfile.mkdtemp(prefix="groovebox-image-test-"))
    # a copy of the card with a first-boot setup file on its boot partition, as a player
    # would write it after flashing (the image itself stays as built)
    card = work / "card.img"
    subprocess.run(["cp", "--sparse=always", str(IMG), str(card)], check=True)
    setup = work / "groovebox-setup.txt"
    setup.write_text(SETUP)
    boot_offset = int(subprocess.run(["sfdisk", "--json", str(card)], capture_output=True, text=True,
                                     check=True).stdout.split('"start":')[1].split(",")[0]) * 512
    subprocess.run(["mcopy", "-i", f"{card}@@{boot_offset}", str(setup), "::/groovebox-setup.txt"],
                   check=True)
    log_path = IMG.parent / "image-test.serial.log"
    run = (f"/bin/sh -c 'mkdir -p /run/gbtest && tar -xf /dev/vdb -C /run && "
           f"exec {GUEST_PY} /run/gbtest/guest_test.py'")
    append = " ".join([
        "root=LABEL=RASPIROOT", "rw", "rootwait", "console=ttyAMA0",
        "systemd.journald.forward_to_console=1", "systemd.show_status=1",
        f'systemd.run="{run}"', "systemd.run_success_action=poweroff",
        "systemd.run_failure_action=poweroff",
    ])
    monitor, din_out = work / "monitor.sock", work / "din.out"
    command = [qemu, "-M", "virt", "-cpu", "cortex-a72", "-smp", SMP, "-m", "1024",
               "-display", "none", "-monitor", f"unix:{monitor},server=on,wait=off",
               "-serial", "stdio", "-no-reboot",
               # a USB bus, and what a USB-serial adapter plugged into it later writes (plug_din)
               "-device", "qemu-xhci,id=xhci", "-chardev", f"file,id=din,path={din_out}",
               "-nic", "none", "-kernel", str(kernel), "-initrd", str(initrd), "-append", append,
               "-drive", f"if=virtio,format=raw,file={card}",
               "-drive", f"if=virtio,format=raw,file={payload(work)},readonly=on"]
    print(f"image-test: booting {IMG} in qemu-system-aarch64 (cortex-a72, {SMP} CPUs, 1 GiB); "
          f"serial log in {log_path}", flush=True)
    t_launch = time.monotonic()
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    lines: list[tuple[float, str]] = []
    done = threading.Event()

    def reader() -> None:
        assert proc.stdout is not None
        with open(log_path, "w") as log:
            for raw in proc.stdout:
                text = raw.decode("utf-8", "replace").rstrip("\r\n")
                lines.append((time.monotonic() - t_launch, text))
                log.write(text + "\n")
                log.flush()
                if "GBTEST din_plug_now" in text:
                    threading.Thread(target=plug_din, args=(monitor,), daemon=True).start()
                if "GBTEST" in text:
                    print(f"  [{time.monotonic() - t_launch:6.1f} s] {text[text.index('GBTEST'):]}",
                          flush=True)
        done.set()

    threading.Thread(target=reader, daemon=True).start()
    try:
        proc.wait(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.terminate()
        proc.wait(timeout=30)
        done.wait(5)
        fail(f"qemu still running after {TIMEOUT_S:.0f} s; the serial log is {log_path}")
    done.wait(10)
    din_notes = note_ons(din_out.read_bytes()) if din_out.exists() else 0
    shutil.rmtree(work, ignore_errors=True)
    t_exit = time.monotonic() - t_launch

    def first(pattern: str) -> tuple[float, str] | None:
        return next(((t, s) for t, s in lines if re.search(pattern, s)), None)

    checks = [(s[s.index("GBTEST"):].split()[1], " ok" in s[s.index("GBTEST"):][:60]) for _t, s in lines
              if re.search(r"GBTEST \S+ (ok|FAIL)", s)]
    figures = dict(m.groups() for _t, s in lines for m in [re.search(r"GBTEST figure (\w+)=(\S+)", s)] if m)
    ready = first(r"GBTEST ready ok")
    finished = first(r"GBTEST done ")
    notes_off = [(t, s) for t, s in lines if "stopping: all notes off" in s]
    offs = first(r"GBTEST offs ")
    kernel_line = first(r"Booting Linux|Linux version")
    problems = [name for name, ok in checks if not ok]
    if finished is None:
        problems.append("the guest test did not finish")
    if not notes_off or (finished and notes_off[-1][0] < finished[0]):
        problems.append("no 'stopping: all notes off' from the box while powering off")
    if offs is None or " ok " not in offs[1]:
        problems.append("the power-off listener did not report every note ended")
    if proc.returncode != 0:
        problems.append(f"qemu exited with {proc.returncode}")
    if din_notes < 4:
        problems.append(f"the USB-serial adapter plugged in after the start got {din_notes} drum notes")

    print("image-test: figures (the guest's clock is emulated: TCG on this host, no KVM)")
    if stats:
        print(f"  build time (make image, last run)             {stats.get('build_seconds', '?')} s")
        print(f"  image size                                    {stats.get('image_mib', '?')} MiB "
              f"({stats.get('allocated_mib', '?')} MiB allocated)")
    if kernel_line and ready:
        print(f"  power-on to READY (host wall clock)           {ready[0]:.1f} s")
    for name, label in (("boot_to_ready_s", "boot to READY (guest monotonic clock)"),
                        ("service_start_to_ready_s", "service start to READY (guest)"),
                        ("note_in_to_groove_s", "note in to groove registered (guest)"),
                        ("phrase_end_to_new_pattern_s", "phrase end to new pattern (guest)"),
                        ("note_in_to_drums_out_s", "note in to drums out (guest)"),
                        ("step_error_ms_p50", "drum note heard vs meant, median ms (guest)"),
                        ("step_error_ms_p95", "drum note heard vs meant, p95 ms (guest)"),
                        ("step_error_ms_max", "drum note heard vs meant, max ms (guest)"),
                        ("replug_to_connected_s", "replugged to connected again s (guest)"),
                        ("restart_to_ready_s", "systemctl restart to ready s (guest)"),
                        ("restart_note_to_drums_s", "then first note to drums s (guest)"),
                        ("clock_to_following_s", "MIDI clock in to following it s (guest)"),
                        ("din_plug_to_open_s", "USB-serial DIN plugged in to opened s (guest)"),
                        ("guest_test_s", "guest test duration s")):
        if name in figures:
            print(f"  {label:<46}{figures[name]}")
    print(f"  drum notes out of the late USB-serial DIN      {din_notes}")
    if finished and notes_off:
        print(f"  power-off to all notes off (host)             {notes_off[-1][0] - finished[0]:.1f} s")
    if finished:
        print(f"  power-off to qemu exit (host)                 {t_exit - finished[0]:.1f} s")
    if problems:
        fail("; ".join(problems) + f" (serial log: {log_path})")
    print(f"image-test: PASS ({len(checks)} checks in the guest, {t_exit:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

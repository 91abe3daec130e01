"""make install / image / flash, checked here without touching this machine's /etc, /opt, /boot."""
from __future__ import annotations

import os
from pathlib import Path
import re
import shutil
import subprocess
import sys

import pytest

from appliance.box.config import Config, load

REPO = Path(__file__).resolve().parents[1]
REAL_PATHS = [Path("/etc/groovebox"), Path("/opt/groovebox"),
              Path("/etc/systemd/system/groovebox.service"),
              Path("/etc/udev/rules.d/99-groovebox.rules"), Path("/usr/local/bin/groovebox")]


def untouched() -> dict[Path, bool]:
    return {p: p.exists() for p in REAL_PATHS}


def make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "--no-print-directory", "-C", str(REPO), *args],
                          capture_output=True, text=True, env={**os.environ, **(env or {})},
                          timeout=120)


def fake_pi_boot(root: Path) -> Path:
    boot = root / "boot" / "firmware"
    boot.mkdir(parents=True)
    (boot / "config.txt").write_text("# Raspberry Pi OS\ndtparam=audio=on\ncamera_auto_detect=1\n")
    (boot / "cmdline.txt").write_text(
        "console=serial0,115200 console=tty1 root=PARTUUID=abc-02 rootfstype=ext4 fsck.repair=yes rootwait\n")
    return boot


def test_dry_run_prints_every_step_and_changes_nothing() -> None:
    before = untouched()
    run = make("install", "DRY_RUN=1")
    assert run.returncode == 0, run.stderr
    out = run.stdout
    for step in ("apt-get install", "python3-lgpio", "procps", "useradd --system", "groovebox",
                 "-m venv --system-site-packages /opt/groovebox/.venv",
                 "/opt/groovebox/.venv/bin/pip install", "/opt/groovebox/models/groove-vae/encoder.onnx",
                 "/etc/groovebox", "/etc/systemd/system/groovebox.service",
                 "99-groovebox.rules", "systemctl enable --quiet groovebox.service"):
        assert step in out, f"the plan lacks {step!r}"
    pip_lines = [line for line in out.splitlines() if "pip install" in line and "--upgrade pip" not in line]
    assert pip_lines and all("[" not in line for line in pip_lines), "only the runtime set, no extras"
    assert untouched() == before


def test_destdir_stages_every_file(tmp_path: Path) -> None:
    before = untouched()
    root = tmp_path / "root"
    boot = fake_pi_boot(root)
    run = make("install", f"DESTDIR={root}")
    assert run.returncode == 0, run.stdout + run.stderr
    assert untouched() == before
    opt = root / "opt" / "groovebox"
    assert (opt / "appliance" / "box" / "config.py").is_file() and (opt / "pyproject.toml").is_file()
    assert not list(opt.rglob("__pycache__"))
    for f in ("encoder.onnx", "decoder.onnx", "encoder.int8.onnx", "decoder.int8.onnx", "model.json"):
        assert (opt / "models" / "groove-vae" / f).is_file()
    config = root / "etc" / "groovebox" / "config.yaml"
    assert config.read_text() == (REPO / "examples" / "config.yaml").read_text()
    loaded = load(config)
    assert loaded == Config()
    # the config's defaults point where the installer put things, and the unit agrees
    assert loaded.model.dir == "/opt/groovebox/models/groove-vae"
    unit = (root / "etc" / "systemd" / "system" / "groovebox.service").read_text()
    assert "ExecStart=/opt/groovebox/.venv/bin/groovebox run --config /etc/groovebox/config.yaml" in unit
    assert f"StateDirectory={Path(loaded.state.dir).name}" in unit
    assert (root / "etc" / "udev" / "rules.d" / "99-groovebox.rules").is_file()
    assert (root / "var" / "lib" / "groovebox").is_dir()
    boot_config = (boot / "config.txt").read_text()
    assert "dtparam=audio=on" in boot_config                      # the user's lines stay
    assert "dtoverlay=midi-uart0" in boot_config and "dtparam=spi=on" in boot_config
    assert "enable_uart=1" in boot_config and "dtoverlay=midi-uart0-pi5" in boot_config
    cmdline = (boot / "cmdline.txt").read_text()
    assert "console=serial0" not in cmdline and "console=tty1" in cmdline and "rootwait" in cmdline
    assert (boot / "cmdline.txt.groovebox-bak").read_text().startswith("console=serial0,115200")


def test_install_twice_keeps_the_players_config_and_one_boot_block(tmp_path: Path) -> None:
    root = tmp_path / "root"
    boot = fake_pi_boot(root)
    assert make("install", f"DESTDIR={root}").returncode == 0
    config = root / "etc" / "groovebox" / "config.yaml"
    config.write_text("player:\n  drum_map: tr-8s\n")
    first_boot = (boot / "config.txt").read_text()
    again = make("install", f"DESTDIR={root}")
    assert again.returncode == 0, again.stderr
    assert config.read_text() == "player:\n  drum_map: tr-8s\n"
    assert (root / "etc" / "groovebox" / "config.yaml.example").is_file()
    assert "keeping /etc/groovebox/config.yaml" in again.stdout
    boot_config = (boot / "config.txt").read_text()
    assert boot_config == first_boot
    assert boot_config.count("# >>> groovebox >>>") == 1


def test_an_updated_boot_block_replaces_the_old_one(tmp_path: Path) -> None:
    root = tmp_path / "root"
    boot = fake_pi_boot(root)
    (boot / "config.txt").write_text("dtparam=audio=on\n# >>> groovebox >>>\ndtoverlay=old-thing\n"
                                     "# <<< groovebox <<<\nhdmi_force_hotplug=1\n")
    assert make("install", f"DESTDIR={root}").returncode == 0
    text = (boot / "config.txt").read_text()
    assert "old-thing" not in text and "hdmi_force_hotplug=1" in text and "dtparam=audio=on" in text
    assert text.count("# >>> groovebox >>>") == 1


def test_no_boot_partition_is_not_an_error(tmp_path: Path) -> None:
    run = make("install", f"DESTDIR={tmp_path / 'root'}")
    assert run.returncode == 0
    assert "boot config skipped" in run.stdout


def test_a_missing_model_stops_before_anything_is_written(tmp_path: Path) -> None:
    root = tmp_path / "root"
    env = {"MODEL": str(tmp_path / "no-model"), "DESTDIR": str(root)}
    run = subprocess.run(["bash", str(REPO / "scripts" / "install.sh")], capture_output=True,
                         text=True, env={**os.environ, **env})
    assert run.returncode == 1
    assert "the model is incomplete" in run.stderr and "encoder.onnx" in run.stderr
    assert not root.exists()


def test_the_runtime_venv_gets_onnxruntime_without_its_tools_dependencies() -> None:
    run = install_sh({"DRY_RUN": "1"})
    assert run.returncode == 0, run.stderr
    pip = [line for line in run.stdout.splitlines() if "/.venv/bin/pip install" in line]
    nodeps = [line for line in pip if "--no-deps" in line]
    assert any("onnxruntime==" in line for line in nodeps), pip
    with_deps = [line for line in pip if "--no-deps" not in line]
    assert with_deps and all("onnxruntime" not in line and "sympy" not in line for line in with_deps)
    # the project itself last, without pulling anything more in
    assert pip[-1].endswith("--no-deps /opt/groovebox")
    split = {kind: subprocess.run([sys.executable, str(REPO / "scripts" / "requirements.py"), kind],
                                  capture_output=True, text=True, check=True).stdout.split()
             for kind in ("deps", "no-deps")}
    import tomllib
    runtime = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert sorted(split["deps"] + split["no-deps"]) == sorted(runtime)
    assert [r.split("==")[0] for r in split["no-deps"]] == ["onnxruntime"]


def test_on_debian_the_boot_settings_go_where_raspi_firmware_keeps_them(tmp_path: Path) -> None:
    """Debian's raspi-firmware rewrites config.txt on every kernel update from
    /etc/default/raspi-firmware(-custom): the groovebox block and the console setting go there."""
    root = tmp_path / "root"
    defaults = root / "etc" / "default"
    defaults.mkdir(parents=True)
    (defaults / "raspi-firmware").write_text('# defaults\n#CONSOLES="auto"\nROOTPART=LABEL=RASPIROOT\n')
    (defaults / "raspi-firmware-custom").write_text("hdmi_force_hotplug=1\n")
    boot = root / "boot" / "firmware"
    boot.mkdir(parents=True)
    (boot / "config.txt").write_text("# written by raspi-firmware\narm_64bit=1\n")
    for _ in range(2):
        run = install_sh({"DESTDIR": str(root)})
        assert run.returncode == 0, run.stdout + run.stderr
    custom = (defaults / "raspi-firmware-custom").read_text()
    assert custom.startswith("hdmi_force_hotplug=1\n") and custom.count("# >>> groovebox >>>") == 1
    assert "enable_uart=1" in custom and "dtparam=spi=on" in custom
    settings = (defaults / "raspi-firmware").read_text()
    assert 'CONSOLES="tty1"' in settings and "ROOTPART=LABEL=RASPIROOT" in settings
    assert (boot / "config.txt").read_text() == "# written by raspi-firmware\narm_64bit=1\n"
    # every device group the unit allows is there when it starts: a built-in driver's, or one
    # whose module is loaded at boot, before the unit (a USB-serial adapter plugged in later)
    text = (root / "etc" / "modules-load.d" / "groovebox.conf").read_text()
    modules = {line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")}
    unit = (root / "etc" / "systemd" / "system" / "groovebox.service").read_text()
    assert re.search(r"^After=.*systemd-modules-load\.service", unit, re.M)
    groups = set(re.findall(r"^DeviceAllow=char-(\S+)", unit, re.M))
    module_of = {"alsa": "snd-seq", "ttyUSB": "usbserial", "ttyACM": "cdc_acm", "spi": "spidev"}
    built_in = {"ttyAMA", "ttyS", "gpiochip"}     # the Pi's and Debian's kernels build these in
    assert groups == set(module_of) | built_in
    assert {module_of[g] for g in groups - built_in} <= modules


def test_apt_waits_for_a_held_lock_instead_of_failing(tmp_path: Path) -> None:
    """scripts/apt-install.sh (make test, make image) against an apt-get that reports a held
    dpkg lock twice, then works."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    (bin_dir / "apt-get").write_text(f"""#!/bin/bash
echo "$*" >> {calls}
n=$(wc -l < {calls})
if [ "$n" -le 2 ]; then
  echo "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (unattended-upgr)" >&2
  exit 100
fi
exit 0
""")
    (bin_dir / "id").write_text("#!/bin/sh\necho 0\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "APT_RETRY_S": "0.2"}
    run = subprocess.run(["bash", str(REPO / "scripts" / "apt-install.sh"), "no-such-pkg:no-such-command-xyz"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "waiting" in run.stderr
    lines = calls.read_text().splitlines()
    assert [l.split()[-1] for l in lines] == ["-qq", "-qq", "-qq", "no-such-pkg"]
    # a lock that is never let go: it gives up at the deadline with apt's own message
    calls.write_text("")
    (bin_dir / "apt-get").write_text("#!/bin/bash\necho 'E: Could not get lock /var/lib/dpkg/lock' >&2\nexit 100\n")
    run = subprocess.run(["bash", str(REPO / "scripts" / "apt-install.sh"), "no-such-pkg:no-such-command-xyz"],
                         capture_output=True, text=True, env={**env, "APT_WAIT_S": "1"}, timeout=60)
    assert run.returncode == 100 and "Could not get lock" in run.stderr


def test_render_finds_the_model_of_an_installed_box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """make install: the package in $PREFIX/.venv/lib/.../site-packages, the model in
    $PREFIX/models/groove-vae; a checkout keeps its own models/."""
    from appliance.box import cli
    monkeypatch.delenv("GROOVEBOX_MODEL_DIR", raising=False)
    assert cli.default_model_dir() == REPO / "models" / "groove-vae"
    site = tmp_path / "opt" / "groovebox" / ".venv" / "lib" / "python3.11" / "site-packages"
    (site / "appliance" / "box").mkdir(parents=True)
    monkeypatch.setattr(cli, "__file__", str(site / "appliance" / "box" / "cli.py"))
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "opt" / "groovebox" / ".venv"))
    assert cli.default_model_dir() == tmp_path / "opt" / "groovebox" / "models" / "groove-vae"
    monkeypatch.setenv("GROOVEBOX_MODEL_DIR", "/somewhere/else")
    assert cli.default_model_dir() == Path("/somewhere/else")


def test_flash_refuses_what_is_not_an_sd_card(tmp_path: Path) -> None:
    image = tmp_path / "groovebox.img"
    image.write_bytes(os.urandom(64 * 1024))
    run = make("flash", f"IMG={image}")
    assert run.returncode != 0 and "DEVICE is not set" in run.stderr
    run = make("flash", f"IMG={image}", f"DEVICE={tmp_path / 'plain-file'}")
    assert run.returncode != 0 and "is not a block device" in run.stderr
    root_source = subprocess.run(["findmnt", "-n", "-o", "SOURCE", "/"], capture_output=True,
                                 text=True).stdout.strip()
    if root_source.startswith("/dev/") and Path(root_source).is_block_device():
        # DRY_RUN: even if a refusal failed, nothing would be written to this machine's disk
        run = make("flash", f"IMG={image}", f"DEVICE={root_source}", "DRY_RUN=1")
        assert run.returncode != 0
        assert re.search(r"is a partition|holds /|mounted partitions", run.stderr), run.stderr


def test_flash_writes_and_verifies(tmp_path: Path) -> None:
    image = tmp_path / "groovebox.img"
    image.write_bytes(os.urandom(256 * 1024))
    card = tmp_path / "card.bin"
    run = make("flash", f"IMG={image}", f"DEVICE={card}", "YES=1",
               env={"FLASH_TO_FILE": "1"})
    assert run.returncode == 0, run.stderr
    assert "done and verified" in run.stdout
    assert card.read_bytes() == image.read_bytes()
    # without YES and without a terminal it asks nobody and writes nothing
    card2 = tmp_path / "card2.bin"
    run = subprocess.run(["bash", str(REPO / "image" / "flash.sh")], capture_output=True, text=True,
                         stdin=subprocess.DEVNULL,
                         env={**os.environ, "IMG": str(image), "DEVICE": str(card2), "FLASH_TO_FILE": "1"})
    assert run.returncode == 2 and "YES=1" in run.stderr
    assert not card2.exists() or card2.stat().st_size == 0


def test_scripts_pass_shellcheck_if_present() -> None:
    tool = shutil.which("shellcheck")
    scripts = [REPO / "scripts" / "install.sh", REPO / "scripts" / "apt-install.sh", REPO / "image" / "build.sh",
               REPO / "image" / "flash.sh", REPO / "image" / "rootfs" / "usr" / "local" / "sbin" / "groovebox-firstboot"]
    for script in scripts:
        assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    if tool is not None:
        run = subprocess.run([tool, "-S", "error", *map(str, scripts)], capture_output=True, text=True)
        assert run.returncode == 0, run.stdout


# --------------------------------------------------------------------------- paths, command, group

def install_sh(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("PREFIX", "ETC_DIR", "STATE_DIR", "SUDO_USER", "DESTDIR", "DRY_RUN")}
    assert env.get("DESTDIR") or env.get("DRY_RUN") == "1", "never the real thing from a test"
    return subprocess.run(["bash", str(REPO / "scripts" / "install.sh")], capture_output=True,
                          text=True, env={**clean, **env}, timeout=120)


def test_destdir_links_the_command_and_says_how_to_join_the_group(tmp_path: Path) -> None:
    root = tmp_path / "root"
    run = install_sh({"DESTDIR": str(root)})
    assert run.returncode == 0, run.stdout + run.stderr
    link = root / "usr" / "local" / "bin" / "groovebox"
    assert link.is_symlink() and os.readlink(link) == "/opt/groovebox/.venv/bin/groovebox"
    assert "/usr/local/bin/groovebox -> /opt/groovebox/.venv/bin/groovebox" in run.stdout
    assert "usermod -a -G groovebox USER" in run.stdout
    # again: the link is replaced, not nested
    assert install_sh({"DESTDIR": str(root)}).returncode == 0
    assert os.readlink(link) == "/opt/groovebox/.venv/bin/groovebox"


def test_dry_run_adds_the_sudo_user_to_the_group_and_says_so() -> None:
    before = untouched()
    run = install_sh({"DRY_RUN": "1", "SUDO_USER": "alice"})
    assert run.returncode == 0, run.stderr
    assert "+ usermod -a -G groovebox alice" in run.stdout
    assert "+ ln -sfn /opt/groovebox/.venv/bin/groovebox /usr/local/bin/groovebox" in run.stdout
    assert "would add alice to the group groovebox" in run.stdout and "log out and back in" in run.stdout
    # sudo from root, or no sudo at all: nobody is added
    for env in ({"DRY_RUN": "1", "SUDO_USER": "root"}, {"DRY_RUN": "1"}):
        run = install_sh(env)
        assert run.returncode == 0 and "usermod -a -G groovebox " not in run.stdout.replace(
            "usermod -a -G groovebox USER", "")
    assert untouched() == before


def test_prefix_etc_and_state_dir_are_carried_into_the_unit_and_the_config(tmp_path: Path) -> None:
    root = tmp_path / "root"
    env = {"DESTDIR": str(root), "PREFIX": "/srv/gb/", "ETC_DIR": "/etc/gb",
           "STATE_DIR": "/var/lib/gb-state"}
    run = install_sh(env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (root / "srv" / "gb" / "appliance" / "box" / "config.py").is_file()
    unit = (root / "etc" / "systemd" / "system" / "groovebox.service").read_text()
    assert "ExecStart=/srv/gb/.venv/bin/groovebox run --config /etc/gb/config.yaml" in unit
    assert "\nStateDirectory=gb-state\n" in unit and "\nWorkingDirectory=/var/lib/gb-state\n" in unit
    assert "/opt/groovebox" not in unit and "/var/lib/groovebox" not in unit
    # everything else is the shipped unit
    shipped = (REPO / "systemd" / "groovebox.service").read_text()
    back = (unit.replace("/srv/gb", "/opt/groovebox").replace("/etc/gb/", "/etc/groovebox/")
            .replace("StateDirectory=gb-state", "StateDirectory=groovebox")
            .replace("/var/lib/gb-state", "/var/lib/groovebox"))
    assert back == shipped
    config = load(root / "etc" / "gb" / "config.yaml")
    assert config.model.dir == "/srv/gb/models/groove-vae" and config.state.dir == "/var/lib/gb-state"
    assert os.readlink(root / "usr" / "local" / "bin" / "groovebox") == "/srv/gb/.venv/bin/groovebox"
    # systemd accepts the rewritten unit (ExecStart pointed at this checkout's command)
    tool = shutil.which("systemd-analyze")
    here = Path(sys.executable).parent / "groovebox"
    if tool is not None and here.exists():
        target = tmp_path / "groovebox.service"
        target.write_text(unit.replace("/srv/gb/.venv/bin/groovebox", str(here)))
        done = subprocess.run([tool, "verify", str(target)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert not [l for l in (done.stdout + done.stderr).splitlines() if "groovebox.service" in l]
    # a player's own config that does not point at the state dir gets a warning on reinstall
    (root / "etc" / "gb" / "config.yaml").write_text("player: {channel: 9}\n")
    again = install_sh(env)
    assert again.returncode == 0 and "does not set state.dir: /var/lib/gb-state" in again.stdout


@pytest.mark.parametrize("env,says", [
    ({"STATE_DIR": "/srv/state"}, "must be under /var/lib"),
    ({"STATE_DIR": "/var/lib/"}, "must be under /var/lib"),
    ({"PREFIX": "/opt/my box"}, "give an absolute path"),
    ({"PREFIX": "opt/groovebox"}, "give an absolute path"),
    ({"ETC_DIR": "/etc/../tmp/gb"}, "give an absolute path"),
    ({"PREFIX": "/home/me/groovebox"}, "ProtectHome"),
])
def test_paths_the_unit_cannot_use_are_refused_before_anything_is_written(
        tmp_path: Path, env: dict[str, str], says: str) -> None:
    root = tmp_path / "root"
    run = install_sh({"DESTDIR": str(root), **env})
    assert run.returncode == 1 and says in run.stderr, run.stderr
    assert not root.exists()

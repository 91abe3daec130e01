"""systemd/groovebox.service: `systemd-analyze verify` passes and `security` scores it low."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "systemd" / "groovebox.service"
INSTALLED_EXEC = "/opt/groovebox/.venv/bin/groovebox"


def analyze() -> str:
    tool = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
    if not Path(tool).exists():
        pytest.fail("systemd-analyze is missing: `make test` installs it (Debian package systemd)")
    return tool


@pytest.fixture
def unit_here(tmp_path: Path) -> Path:
    """The unit as shipped, except that ExecStart points at this checkout's groovebox
    (verify checks that the binary exists; on the Pi it is in /opt/groovebox)."""
    text = UNIT.read_text()
    assert INSTALLED_EXEC in text
    here = Path(sys.executable).parent / "groovebox"
    assert here.exists(), f"{here} is missing: pip install -e ."
    target = tmp_path / "groovebox.service"
    target.write_text(text.replace(INSTALLED_EXEC, str(here)))
    return target


def directives() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    section = ""
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.setdefault(f"{section}.{key}", []).append(value)
    return out


def test_verify_passes(unit_here: Path):
    done = subprocess.run([analyze(), "verify", str(unit_here)], capture_output=True, text=True,
                          timeout=120)
    complaints = [l for l in (done.stdout + done.stderr).splitlines() if "groovebox.service" in l]
    assert done.returncode == 0, done.stderr
    assert complaints == []


def test_the_unit_says_what_the_issue_asks():
    d = directives()
    s = lambda key: d.get(f"Service.{key}", [])  # noqa: E731
    assert s("Type") == ["notify"]
    assert s("WatchdogSec") and s("Restart") == ["on-failure"]
    assert s("User") == ["groovebox"]
    assert set(" ".join(s("SupplementaryGroups")).split()) >= {"audio", "dialout", "gpio", "spi"}
    assert s("LimitRTPRIO") and int(s("LimitRTPRIO")[0]) > 0
    assert "RestrictRealtime" not in " ".join(d) or s("RestrictRealtime") in ([], ["no"])
    assert s("ProtectSystem") == ["strict"]
    assert s("ProtectHome") == ["yes"] and s("NoNewPrivileges") == ["yes"]
    assert any("@system-service" in v for v in s("SystemCallFilter"))
    assert s("DevicePolicy") == ["closed"]
    assert s("DeviceAllow"), "only the devices the box needs"
    assert not s("PrivateDevices")
    assert s("StateDirectory") == ["groovebox"] and s("RuntimeDirectory") == ["groovebox"]
    assert "groovebox run" in s("ExecStart")[0]


def test_security_exposure_is_low(unit_here: Path, capsys):
    done = subprocess.run([analyze(), "security", "--offline=true", "--no-pager", str(unit_here)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", done.stdout)
    assert match, done.stdout[-2000:]
    score = float(match.group(1))
    with capsys.disabled():
        sys.stdout.write(f"\nsystemd-analyze security exposure: {score}\n")
    assert score <= 2.0

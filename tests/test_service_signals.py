"""The service and systemd (on the tiny plumbing model; the shipped one plays in test_service_live): READY and WATCHDOG through a NOTIFY_SOCKET the test listens on,
SIGTERM → every sounding note gets its note-off; a missing serial device leaves DIN off with
one log line while USB plays on; a broken config starts on the last good one, with the line that is wrong."""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

from tests.jackserver import REPO, Recorder, ServiceProcess, jack, wait_until  # noqa: F401


def test_ready_watchdog_sigterm_all_notes_off_and_din_missing(jack, tmp_path, tiny_model_dir):
    drums = Recorder("sig-drums")
    # Slow and dense: at 40 BPM a step lasts 375 ms and every note sounds for half of it,
    # so a SIGTERM nearly always finds notes sounding.
    config = f"""
model: {{dir: {tiny_model_dir}, seed: 5}}
generator: {{density: 1.0}}
tempo: {{bpm: 40, clock: internal}}
loop: {{swap_at: step}}
midi: {{api: jack, client_name: gb-sig, inputs: [sig-keys], outputs: [sig-drums]}}
din: {{enabled: true, device: /dev/ttyGROOVEBOX-MISSING}}
gpio: {{enabled: false}}
state: {{dir: {tmp_path}/state, save_every_s: 3600}}
control: {{socket: {tmp_path}/control.sock}}
"""
    service = ServiceProcess(jack, str(tmp_path), config, watchdog_usec=1_000_000)
    try:
        service.wait_ready()
        ready_at = next(t for t, m in service.notify.messages if m == "READY=1")
        assert service.notify.wait_for("WATCHDOG=1", count=3, timeout=20)
        pings = [t for t, m in service.notify.messages if m == "WATCHDOG=1"]
        assert pings[0] >= ready_at
        # Pings come every half WatchdogSec (0.5 s), well inside the 1 s limit.
        assert max(b - a for a, b in zip(pings, pings[1:])) < 1.0
        assert service.status()["din"].startswith("/dev/ttyGROOVEBOX-MISSING (cannot open it, tried again")
        # USB plays although DIN is off.
        assert drums.wait_for(lambda ev: sum(m.type == "note_on" for _, m in ev) >= 3, 30)
        # Wait for a moment when a note is sounding, then SIGTERM.
        def sounding(events) -> set[tuple[int, int]]:
            on: dict[tuple[int, int], int] = {}
            for _, m in events:
                key = (m.channel, getattr(m, "note", -1))
                if m.type == "note_on" and m.velocity > 0:
                    on[key] = on.get(key, 0) + 1
                elif m.type in ("note_on", "note_off") and on.get(key):
                    on[key] -= 1
            return {k for k, n in on.items() if n > 0}
        assert wait_until(lambda: bool(sounding(drums.events)), 30, step=0.002)
        held = sounding(drums.events)
        service.proc.send_signal(signal.SIGTERM)
        code = service.proc.wait(timeout=30)
    finally:
        code = service.stop()
    wait_until(lambda: sounding(list(drums.events)) == set(), 5)   # the last note-offs arrive
    # The box leaves its JACK ports to the process's exit (unregistering them can crash
    # libjack): JACK takes them down with the process.
    assert wait_until(lambda: not [p for p in jack.ports() if p.startswith("gb-sig")], 10), jack.ports()
    events = list(drums.events)
    drums.close()
    log = service.log()
    assert code == 0, log[-3000:]
    assert service.notify.count("STOPPING=1") == 1
    assert held, "no note was sounding at SIGTERM"
    assert sounding(events) == set(), f"notes left hanging: {sounding(events)}"
    din_lines = [l for l in log.splitlines() if "appliance.io.midi.din" in l]   # tried every 2 s, quietly
    assert len(din_lines) == 1 and "DIN MIDI off" in din_lines[0]
    assert "/dev/ttyGROOVEBOX-MISSING" in din_lines[0]
    assert "stopping: all notes off" in log
    # The state is on disk at the stop (saved from the start; the exit save writes what changed
    # since), the control socket is taken away, and its last log line gets out.
    from appliance.box.state import StateStore
    saved = StateStore(tmp_path / "state").load()
    assert saved is not None and saved.bpm == 40
    assert not (tmp_path / "control.sock").exists()
    assert log.index("stopped") > log.index("stopping: all notes off")


def test_a_broken_config_restarts_on_the_last_good_one(jack, tmp_path, tiny_model_dir, monkeypatch):
    """A broken line after an edit over SSH: the box comes back playing as it was, and one
    error line names the file, the line and what is allowed."""
    state = tmp_path / "state"
    monkeypatch.setenv("STATE_DIRECTORY", str(state))  # what systemd's StateDirectory= sets
    good = f"""model: {{dir: {tiny_model_dir}, seed: 5}}
tempo: {{bpm: 97, clock: internal}}
midi: {{api: jack, client_name: gb-fallback, inputs: [fb-keys], outputs: [fb-drums]}}
din: {{enabled: false}}
gpio: {{enabled: false}}
state: {{dir: {state}}}
control: {{socket: {tmp_path}/two/control.sock}}
"""
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first = ServiceProcess(jack, str(tmp_path / "one"), good)
    try:
        first.wait_ready()
    finally:
        first.stop()
    second = ServiceProcess(jack, str(tmp_path / "two"), good.replace("bpm: 97", "bpm: 900"))
    try:
        second.wait_ready()
        assert second.status()["bpm"] == 97
        log = second.log()
        errors = [line for line in log.splitlines() if line.startswith("ERROR")]
        assert len(errors) == 1, log[-3000:]
        assert f"{second.config_path}:2 tempo.bpm: 900 is not in 40..300" in errors[0]
        assert "last good config" in errors[0]
    finally:
        second.stop()


def test_a_missing_model_says_which_files(tmp_path, jack):
    path = tmp_path / "nomodel.yaml"
    path.write_text(f"model: {{dir: {tmp_path}/none}}\nmidi: {{api: jack}}\n"
                    f"gpio: {{enabled: false}}\nstate: {{dir: {tmp_path}/s}}\n"
                    f"control: {{socket: {tmp_path}/c.sock}}\n")
    done = subprocess.run([sys.executable, "-m", "appliance.box.cli", "run", "--config", str(path)],
                          capture_output=True, text=True, timeout=120, cwd=REPO, env=jack.env())
    assert done.returncode == 1
    assert "model directory" in done.stdout and "encoder.onnx" in done.stdout


def test_sighup_with_a_broken_file_keeps_playing(jack, tmp_path, tiny_model_dir):
    drums = Recorder("hup-drums")
    config = f"""
model: {{dir: {tiny_model_dir}, seed: 5}}
tempo: {{bpm: 200}}
midi: {{api: jack, client_name: gb-hup, inputs: [hup-keys], outputs: [hup-drums]}}
gpio: {{enabled: false}}
state: {{dir: {tmp_path}/state}}
control: {{socket: {tmp_path}/control.sock}}
"""
    service = ServiceProcess(jack, str(tmp_path), config)
    try:
        service.wait_ready()
        with open(service.config_path, "a") as f:
            f.write("player: {channel: 99}\n")
        service.proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: "reload refused" in service.log(), 20)
        assert service.notify.wait_for("READY=1", count=2, timeout=20)
        drums.clear()
        assert drums.wait_for(lambda ev: sum(m.type == "note_on" for _, m in ev) >= 2, 20)
        assert service.proc.poll() is None
        assert service.status()["running"]
        # A good file is applied live: the new tempo, the beat never stops.
        with open(service.config_path, "w") as f:
            f.write(config.replace("bpm: 200", "bpm: 150"))
        service.proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: service.status()["bpm"] == 150.0, 20)
        assert service.notify.wait_for("READY=1", count=3, timeout=20)
        assert service.status()["running"]
    finally:
        code = service.stop()
        drums.close()
    line = next(l for l in service.log().splitlines() if "reload refused" in l)
    assert "player.channel: 99 is not in 1..16" in line
    assert "tempo.bpm: 200 → 150" in service.log()
    assert code == 0


def test_a_sighup_while_the_box_imports_does_not_end_it(tmp_path):
    """A fault harness: `kill -HUP` in the first half second of `groovebox run` (its imports)
    ended the process. Here the SIGHUP comes just as the service module starts importing: the
    box goes on starting (to its one line about the missing model: exit 1, not death by SIGHUP)."""
    config = tmp_path / "config.yaml"
    config.write_text(f"model: {{dir: {tmp_path}/no-model}}\nstate: {{dir: {tmp_path}/state}}\n"
                      f"control: {{socket: {tmp_path}/control.sock}}\ngpio: {{enabled: false}}\n")
    child = textwrap.dedent(f"""
        import os, signal, sys
        from appliance.box import cli

        class HupOnImport:   # the signal arrives while the service's imports run
            def find_spec(self, name, path=None, target=None):
                if name == "appliance.box.service":
                    os.kill(os.getpid(), signal.SIGHUP)
                return None

        sys.meta_path.insert(0, HupOnImport())
        cli.main(["run", "--config", {str(config)!r}])
        """)
    done = subprocess.run([sys.executable, "-c", child], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert "cannot start" in done.stdout and "no-model" in done.stdout

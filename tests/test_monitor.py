"""`groovebox monitor` draws a running box live from its control socket (in a pseudo-terminal,
as over SSH), and `groovebox status` says why nothing plays when nothing does."""
from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time

from appliance.box.diagnose import PortsView, why_silent
from tests.jackserver import REPO, Player, Recorder, ServiceProcess, jack, wait_until  # noqa: F401

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]")


def cli(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "appliance.box.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60, env=env)


def _drain_until_exit(pid: int, fd: int, timeout: float = 20.0) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                os.read(fd, 65536)
            except OSError:
                pass
    return None


def test_monitor_draws_the_running_box_in_a_terminal(jack, tmp_path, tiny_model_dir):
    drums = Recorder("mon-drums")
    keys = Player("mon-keys")
    config = f"""
model: {{dir: {tiny_model_dir}, seed: 3}}
generator: {{density: 0.9}}
tempo: {{bpm: 100, clock: internal}}
start: {{mode: now}}
midi: {{api: jack, client_name: gb-mon, inputs: [mon-keys], outputs: [mon-drums]}}
gpio: {{enabled: false}}
state: {{dir: {tmp_path}/state}}
control: {{socket: {tmp_path}/control.sock}}
"""
    service = ServiceProcess(jack, str(tmp_path), config)
    pid = fd = None
    try:
        service.wait_ready()
        assert drums.wait_for(lambda ev: any(m.type == "note_on" for _, m in ev), 30)
        pid, fd = pty.fork()
        if pid == 0:                                        # the child: the monitor in a tty
            os.chdir(REPO)
            os.environ.update(COLUMNS="100", LINES="40", TERM="xterm-256color")
            os.execv(sys.executable, [sys.executable, "-m", "appliance.box.cli", "monitor",
                                      "--socket", service.socket_path, "--rate", "8"])
        screen = b""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    screen += os.read(fd, 65536)
                except OSError:
                    break
            text = ANSI.sub("", screen.decode("utf-8", "replace"))
            if len(set(re.findall(r"step\s+(\d+)/32", text))) >= 3 and "mon-drums" in text:
                break
        text = ANSI.sub("", screen.decode("utf-8", "replace"))
        os.kill(pid, signal.SIGINT)
        code = _drain_until_exit(pid, fd)     # it restores the terminal as it leaves: keep reading
        pid = None
        assert code == 0
        assert "playing" in text and "100.0 BPM" in text, text[-3000:]
        assert "clock internal" in text
        for voice in ("kick", "snare", "closed_hat", "ride"):
            assert voice in text, voice
        assert any(level in text for level in "▁▂▃▄▅▆▇█"), "the pattern's velocities are drawn"
        assert "density" in text and "0.90" in text, "the knobs"
        assert "inference" in text and "notes out" in text
        assert "mon-drums:in" in text and "mon-keys:out" in text, "the ports"
        # Live: the play head moved between screens.
        assert len(set(re.findall(r"step\s+(\d+)/32", text))) >= 3, text[-2000:]
        assert "silent:" not in text
    finally:
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        if fd is not None:
            os.close(fd)
        service.stop()
        drums.close()
        keys.close()


def test_status_says_why_nothing_plays(jack, tmp_path, tiny_model_dir):
    keys = Player("why-keys")
    drums = Recorder("why-drums")
    config = f"""
model: {{dir: {tiny_model_dir}, seed: 3}}
start: {{mode: first-note}}
midi: {{api: jack, client_name: gb-why, inputs: [Keystation], outputs: [why-drums]}}
gpio: {{enabled: false}}
state: {{dir: {tmp_path}/state}}
control: {{socket: {tmp_path}/control.sock}}
"""
    service = ServiceProcess(jack, str(tmp_path), config)
    try:
        service.wait_ready()
        assert wait_until(lambda: "why-keys:out" in service.status()["midi"]["sources"], 10)
        status = service.status()
        reasons = " | ".join(status["why_silent"])
        assert "first note" in reasons
        assert "no keyboard seen" in reasons and "'Keystation'" in reasons and "why-keys:out" in reasons
        out = cli("status", "--socket", service.socket_path, env=jack.env())
        assert out.returncode == 0
        assert "silent:" in out.stdout and "Keystation" in out.stdout
        assert out.stdout.startswith("groovebox waiting")
        once = cli("monitor", "--once", "--socket", service.socket_path, env=jack.env())
        assert once.returncode == 0 and "first note" in once.stdout, once.stdout + once.stderr
        assert "waiting" in once.stdout.splitlines()[0]
    finally:
        service.stop()
        keys.close()
        drums.close()


PORTS = PortsView(api="jack", input_patterns=("keys",), output_patterns=("*",),
                  sources=("a2j:Keystation",), destinations=("synth:in",),
                  inputs=("gb:in (virtual)",), outputs=("synth:in",))


def reasons(**changes) -> list[str]:
    state = dict(running=True, clock_mode="internal", clock_source="internal", waiting_for="",
                 frozen=False, pattern_hits=12, groove_hits=3, density=0.5, ports=PORTS)
    state.update(changes)
    return why_silent(**state)


def test_why_silent_names_each_reason():
    assert reasons() == [], "the drums play: nothing to say"
    assert any("MIDI clock" in r for r in reasons(running=False, clock_mode="external",
                                                   clock_source="external"))
    assert any("frozen on an empty pattern" in r for r in reasons(frozen=True, pattern_hits=0))
    assert any("pattern is empty" in r for r in reasons(pattern_hits=0))
    nowhere = PortsView(api="jack", output_patterns=("TR-8S",), destinations=("synth:in",))
    text = " ".join(reasons(ports=nowhere))
    assert "drums go nowhere" in text and "'TR-8S'" in text and "synth:in" in text
    # No keyboard is worth saying whenever the box is silent.
    waiting = " ".join(reasons(waiting_for="waiting for the first note"))
    assert "no keyboard seen" in waiting and "a2j:Keystation" in waiting and "gb:in" in waiting
    # Before the first note an empty pattern is no news: waiting for the note is the reason.
    before = reasons(waiting_for="waiting for the first note", pattern_hits=0, groove_hits=0)
    assert before[0] == "waiting for the first note" and not any("pattern is empty" in r for r in before)
    # ... nor after a power cut, frozen on a groove restored: its pattern comes back with the note.
    restored = " ".join(reasons(waiting_for="waiting for the first note", pattern_hits=0, frozen=True))
    assert "empty" not in restored and "press freeze" not in restored, restored
    off = " ".join(reasons(ports=PortsView(usb_off="no MIDI system here"), running=False))
    assert "USB MIDI is off (no MIDI system here)" in off
    # desktop.yaml's virtual port, and no synth on the MIDI system to wire it to (a newcomer's
    # make run, no synth started: no silent line came); with a synth there it may be wired by hand
    own = PortsView(api="jack", outputs=("groovebox-out:out (virtual)",), destinations=("Midi Through:in",))
    lonely = " ".join(reasons(ports=own))
    assert "drums go nowhere" in lonely and "groovebox-out:out" in lonely and "(virtual)" not in lonely
    wired = PortsView(api="jack", outputs=("groovebox-out:out (virtual)",), destinations=("fluidsynth:midi",))
    assert not any("drums go nowhere" in r for r in reasons(ports=wired))
    # ... but the keyboard's own MIDI in is no synth (a code review: ALSA's one name, a2j's two)
    keys = "Keystation 49 MkIII:Keystation 49 MkIII MIDI 1 20:0"
    alsa = PortsView(api="alsa", output_patterns=("FLUID",), sources=(keys,), inputs=(keys,),
                     destinations=("Midi Through:Midi Through Port-0 14:0", keys), outputs=("groovebox:out (virtual)",))
    said = " ".join(reasons(ports=alsa))
    assert "drums go nowhere" in said and "'FLUID'" in said and "keyboard's own MIDI in" in said
    a2j = "a2j:Keystation 49 MkIII [20] (%s): Keystation 49 MkIII MIDI 1"
    jack = PortsView(api="jack", output_patterns=("fluidsynth",), sources=(a2j % "capture",),
                     destinations=(a2j % "playback",), inputs=(a2j % "capture",),
                     outputs=("groovebox-out:out (virtual)",))
    assert any("drums go nowhere" in r for r in reasons(ports=jack))


def test_the_monitor_says_when_busy_sixteenths_are_heard_on_the_eighths():
    import io

    from rich.console import Console

    from appliance.box.monitor import frame

    def drawn(heard: bool) -> str:
        console = Console(file=io.StringIO(), width=140, color_system=None)
        console.print(frame({"running": True, "bpm": 120.0, "step": 3, "engine": {"heard_on_the_eighths": heard}}))
        return console.file.getvalue()

    assert "heard on the 8ths" in drawn(True)
    assert "heard on the 8ths" not in drawn(False)


def test_the_monitor_says_what_went_wrong_with_the_midi_clock():
    import io

    from rich.console import Console

    from appliance.box.monitor import clock_trouble, frame

    def drawn(counts: dict[str, int]) -> str:
        console = Console(file=io.StringIO(), width=160, color_system=None)
        console.print(frame({"running": True, "bpm": 120.0, "step": 3, "clock_counts": counts}))
        return console.file.getvalue()

    assert clock_trouble({"missed": 0, "extra": 0, "other_input": 0}) == ""
    assert "MIDI clock" not in drawn({"missed": 0, "extra": 0, "other_input": 0})
    shown = drawn({"missed": 3, "extra": 0, "other_input": 96})
    assert "3 clocks missed" in shown and "96 clock messages" in shown and "extra" not in shown
    assert "MIDI thru" not in shown


def test_the_monitor_and_status_say_the_box_hears_its_own_notes_back():
    """A drum machine's MIDI thru sends the box's notes back: left out of the groove, counted
    on the status (``heard_back``), and said at the desk with what to do."""
    import io

    from rich.console import Console

    from appliance.box.control_socket import format_status
    from appliance.box.monitor import frame

    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(frame({"running": True, "bpm": 120.0, "step": 3, "heard_back": 17}))
    shown = console.file.getvalue()
    assert "MIDI thru: 17 of the box's own notes" in shown and "turn MIDI thru off" in shown
    text = format_status({"running": True, "bpm": 120.0, "step": 3, "heard_back": 17})
    assert "thru:    17 of the box's own notes" in text
    assert "thru:" not in format_status({"running": True, "bpm": 120.0, "step": 3, "heard_back": 0})


def test_monitor_once_without_a_box_says_so_and_fails(tmp_path):
    """``monitor --once`` is for scripts and a quick look, and ``monitor`` without a terminal
    (plain ssh) prints one screen too: with no box to ask, each says why on stderr and exits 2,
    as ``groovebox status`` does, not "trying again" and 0."""
    for once in (["--once"], []):     # (FORCE_COLOR once made rich take the pipe for a terminal)
        done = subprocess.run([sys.executable, "-m", "appliance.box.cli", "monitor", *once,
                               "--socket", str(tmp_path / "none.sock")], env=dict(os.environ, FORCE_COLOR="1"),
                              capture_output=True, text=True, timeout=60, cwd=REPO, stdin=subprocess.DEVNULL)
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stderr.strip() and "trying again" not in done.stdout + done.stderr
        assert ("ssh -t" in done.stderr) == (not once), done.stderr    # the live view needs a terminal


def test_status_and_monitor_say_so_when_the_answer_is_not_a_box_status(tmp_path):
    """Another program on the socket, or a box of another version: one line on stderr, no traceback."""
    import json
    import socket
    import threading

    answers = {"list": b"[1,2,3]\n", "no-status": b'{"ok": true}\n', "closes": b"",
               "wrong-types": json.dumps({"ok": True, "status": {"bpm": "fast", "step": None, "why_silent": 5,
                                                                 "ports": [], "engine": [], "pattern": "x"}}).encode() + b"\n"}
    for name, answer in answers.items():
        path = str(tmp_path / f"{name}.sock")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        server.listen(8)

        def serve(server=server, answer=answer) -> None:
            while True:
                try:
                    client, _ = server.accept()
                except OSError:
                    return
                with client:
                    client.recv(65536)
                    client.sendall(answer)

        threading.Thread(target=serve, daemon=True).start()
        try:
            for args in (["status"], ["monitor", "--once"]):
                done = cli(*args, "--socket", path)
                assert done.returncode in (1, 2), (name, args, done.stdout, done.stderr)
                assert "Traceback" not in done.stderr and done.stderr.strip(), (name, args, done.stderr)
                if name == "closes":
                    assert "without an answer" in done.stderr
        finally:
            server.close()


def test_a_box_silent_after_its_song_on_a_running_clock_says_waiting_not_playing():
    """A master clock runs on between songs, or the last chord rings after the last hit: the
    transport runs, the drums do not; the header and the status say waiting, and why."""
    import io

    from rich.console import Console

    from appliance.box.control_socket import format_status
    from appliance.box.monitor import frame

    status = {"running": True, "bpm": 120.0, "step": 3, "why_silent": ["the song has ended: your next note starts the next one"],
              "engine": {"waiting_for": "the song has ended: your next note starts the next one"}}
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(frame(status))
    head = console.file.getvalue().splitlines()[0]
    assert "waiting" in head and "playing" not in head, head
    assert format_status(status).startswith("groovebox waiting")
    assert format_status({"running": True, "bpm": 120.0, "step": 3}).startswith("groovebox playing")


def test_a_state_that_cannot_be_saved_shows_at_the_desk():
    """A full or read-only state disk was said only in the journal (a stage tech's review)."""
    import io

    from rich.console import Console

    from appliance.box.control_socket import format_status
    from appliance.box.monitor import frame

    trouble = "state: cannot save to /var/lib/groovebox/state.json: No space left on device; the box plays on"
    status = {"running": True, "bpm": 120.0, "step": 3, "state": trouble}
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(frame(status))
    assert "No space left on device" in console.file.getvalue()
    assert "state:   state: cannot save" not in format_status(status) and "No space left" in format_status(status)

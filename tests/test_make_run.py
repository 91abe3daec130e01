"""`make run` (scripts/run.sh) where there is no ALSA sequencer: it starts a JACK server and
stops it again, or uses the one that runs, or says in one line what to install; the box logs
which ports to connect with the command, with the real port names."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time

from tests.jackserver import REPO, dead_servers, jack, reclaim_dead_slots, wait_until  # noqa: F401

SCRIPT = os.path.join(REPO, "scripts", "run.sh")
VENV = os.path.join(REPO, ".venv")


class Run:
    """scripts/run.sh as `make run` starts it, in its own session (Ctrl-C is SIGINT to it)."""

    def __init__(self, tmp_path, env: dict[str, str]) -> None:
        examples = tmp_path / "examples"
        examples.mkdir(exist_ok=True)
        if not (examples / "desktop.yaml").exists():     # a second run keeps the first's file
            shutil.copy(os.path.join(REPO, "examples", "desktop.yaml"), examples / "desktop.yaml")
        if not (tmp_path / "models").exists():
            os.symlink(os.path.join(REPO, "models"), tmp_path / "models")
        (tmp_path / "run").mkdir(exist_ok=True)
        env = dict(env, VENV=VENV, CONFIG=str(examples / "desktop.yaml"),
                   SEQ_DEVICE=str(tmp_path / "no-seq"), RUNTIME_DIRECTORY=str(tmp_path / "run"))
        self.proc = subprocess.Popen(["bash", SCRIPT], cwd=REPO, env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def text(self) -> str:
        return "\n".join(self.lines)

    def ctrl_c(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                return self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:       # nothing of it is left behind
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
                raise


def jack_state(env: dict[str, str]) -> str:
    return subprocess.run(["jack_wait", "-c"], env=env, capture_output=True, text=True,
                          timeout=20).stdout.strip()


def test_without_alsa_it_starts_jack_prints_the_ports_and_stops_jack(tmp_path):
    reclaim_dead_slots()                       # JACK has 8 server slots a machine
    server = f"groovebox-run-{os.getpid()}"
    env = dict(os.environ, JACK_DEFAULT_SERVER=server, JACK_NO_AUDIO_RESERVATION="1")
    assert jack_state(env) == "not running"
    run = Run(tmp_path, env)
    try:
        assert wait_until(lambda: "drums:" in run.text() or run.proc.poll() is not None, 120), \
            run.text()
        text = run.text()
        assert "starting a JACK server" in text, text
        # (JACK allows 8 servers a machine: on a machine shared by several test runs the
        # script says "the JACK server did not start: Too many servers already active".)
        assert run.proc.poll() is None, text
        assert jack_state(env) == "running"
        # The connect lines: the real port names and the tool that connects them.
        keyboard = next(line for line in run.lines if "keyboard:" in line)
        drums = next(line for line in run.lines if "drums:" in line)
        assert "jack_connect" in keyboard and "groovebox:in" in keyboard, keyboard
        assert "jack_connect" in drums and "groovebox-out:out" in drums, drums
        ports = subprocess.run(["jack_lsp"], env=env, capture_output=True, text=True,
                               timeout=20).stdout.split()
        assert {"groovebox:in", "groovebox-out:out"} <= set(ports), ports
        assert "USB MIDI off" not in text
    finally:
        code = run.ctrl_c()
    assert code == 0, run.text()[-3000:]
    assert wait_until(lambda: jack_state(env) == "not running", 20), "the JACK server it started is stopped"
    # ... and gave back its slot in JACK's registry: stopped while it was still taking the
    # box's clients away, it did not, and every `make run` used up one of 8 for good.
    assert server not in dead_servers(), "jackd exited without unregistering"
    assert "all notes off" in run.text()


def test_without_alsa_it_uses_the_jack_server_that_runs(jack, tmp_path):
    run = Run(tmp_path, jack.env())
    try:
        assert wait_until(lambda: "drums:" in run.text() or run.proc.poll() is not None, 120), \
            run.text()
        assert "using the JACK server that runs" in run.text()
        assert "starting a JACK server" not in run.text()
        assert "groovebox-out:out" in jack.ports()
    finally:
        code = run.ctrl_c()
    assert code == 0, run.text()[-3000:]
    assert jack_state(jack.env()) == "running", "a server it did not start is left alone"
    # A slip in the file (a key without its colon): the box plays on the last config that loaded,
    # kept in desktop.yaml's state.dir, not on the defaults (whose model is the Pi's, not here).
    desktop = tmp_path / "examples" / "desktop.yaml"
    desktop.write_text(desktop.read_text().replace("swap_at: bar", "swap_at bar"))
    run = Run(tmp_path, jack.env())
    try:
        assert wait_until(lambda: "drums:" in run.text() or run.proc.poll() is not None, 120), \
            run.text()
        assert run.proc.poll() is None, run.text()
        assert "last good config" in run.text() and "config.last-good.yaml" in run.text(), run.text()
    finally:
        code = run.ctrl_c()
    assert code == 0, run.text()[-3000:]


def test_without_alsa_or_jack_and_not_root_it_says_what_to_install(tmp_path):
    # A PATH with the tools the script uses but no jackd, and an `id` that is not root.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "jack_wait", "mktemp", "tail", "tr", "sleep", "seq", "setsid"):
        found = shutil.which(tool)
        assert found, tool
        os.symlink(found, bin_dir / tool)
    (bin_dir / "id").write_text("#!/bin/sh\necho 1000\n")
    (bin_dir / "id").chmod(0o755)
    env = dict(os.environ, PATH=str(bin_dir), JACK_DEFAULT_SERVER=f"groovebox-none-{os.getpid()}")
    started = time.monotonic()
    done = subprocess.run([shutil.which("bash"), SCRIPT], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env=dict(env, VENV=VENV, SEQ_DEVICE=str(tmp_path / "no-seq")))
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "sudo apt-get install jackd2" in lines[0] and "make run" in lines[0]
    assert time.monotonic() - started < 30

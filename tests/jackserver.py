"""A real JACK server (dummy driver) for the tests: one per test session, a unique name.

``JACK_DEFAULT_SERVER`` is set in this process (and inherited by the service subprocesses
the tests start), so every JACK client the tests make talks to this server and never to a
desktop's. The server is killed when the session ends.

Import the fixture into a test module: ``from tests.jackserver import jack  # noqa: F401``.
"""
from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Callable

import mido
import pytest


@dataclass
class JackServer:
    name: str
    process: subprocess.Popen
    log_path: str

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["JACK_DEFAULT_SERVER"] = self.name
        env["JACK_NO_AUDIO_RESERVATION"] = "1"
        return env

    def ports(self) -> list[str]:
        out = subprocess.run(["jack_lsp"], env=self.env(), capture_output=True, text=True,
                             timeout=20)
        return out.stdout.split()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


_server: JackServer | None = None
_lock = threading.Lock()


def start_server() -> JackServer:
    """Start (once per process) a jackd with the dummy driver and wait until it answers."""
    global _server
    with _lock:
        if _server is not None and _server.process.poll() is None:
            return _server
        jackd = shutil.which("jackd") or ("/usr/bin/jackd" if os.path.exists("/usr/bin/jackd") else None)
        if jackd is None:
            pytest.fail("jackd is missing: `make test` installs it (Debian package jackd2), "
                        "or run `apt-get install jackd2`")
        name = f"groovebox-test-{os.getpid()}"
        os.environ["JACK_DEFAULT_SERVER"] = name
        os.environ["JACK_NO_AUDIO_RESERVATION"] = "1"
        log = tempfile.NamedTemporaryFile(prefix="jackd-", suffix=".log", delete=False)
        process = subprocess.Popen(
            [jackd, "--no-realtime", "--name", name, "-d", "dummy", "-r", "48000", "-p", "128"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=dict(os.environ),
            start_new_session=True)
        server = JackServer(name, process, log.name)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"jackd exited with {process.returncode}: {open(log.name).read()[-2000:]}")
            wait = subprocess.run(["jack_wait", "-c"], env=server.env(), capture_output=True,
                                  text=True, timeout=20)
            if "running" in wait.stdout and "not" not in wait.stdout:
                break
            time.sleep(0.2)
        else:
            server.stop()
            pytest.fail(f"jackd did not come up in 30 s: {open(log.name).read()[-2000:]}")
        _server = server
        atexit.register(server.stop)
        return server


@pytest.fixture(scope="session")
def jack():
    server = start_server()
    yield server
    server.stop()


# --- small JACK clients the tests play the keyboard and the drum machine with ----------------

class Recorder:
    """A JACK client with one MIDI input; remembers (arrival time, message)."""

    def __init__(self, client: str, port: str = "in") -> None:
        import rtmidi
        self.events: list[tuple[float, mido.Message]] = []
        self._cond = threading.Condition()
        self._in = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=client)
        self._in.ignore_types(sysex=True, timing=False, active_sense=True)
        self._in.set_callback(self._got)
        self._in.open_virtual_port(port)

    def _got(self, event, _data) -> None:
        t = time.monotonic()
        try:
            message = mido.Message.from_bytes(event[0])
        except ValueError:
            return
        with self._cond:
            self.events.append((t, message))
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[list[tuple[float, mido.Message]]], bool],
                 timeout: float = 20.0) -> list[tuple[float, mido.Message]]:
        with self._cond:
            self._cond.wait_for(lambda: predicate(self.events), timeout)
            return list(self.events)

    def clear(self) -> None:
        with self._cond:
            self.events.clear()

    def close(self) -> None:
        self._in.cancel_callback()
        self._in.close_port()
        self._in.delete()


class Player:
    """A JACK client with one MIDI output (a keyboard, a clock source)."""

    def __init__(self, client: str, port: str = "out") -> None:
        import rtmidi
        self._out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=client)
        self._out.open_virtual_port(port)

    def send(self, message: mido.Message) -> None:
        self._out.send_message(message.bytes())

    def close(self) -> None:
        self._out.close_port()
        self._out.delete()


def connect(server: JackServer, source: str, destination: str) -> None:
    subprocess.run(["jack_connect", source, destination], env=server.env(), check=True,
                   capture_output=True, timeout=20)


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()

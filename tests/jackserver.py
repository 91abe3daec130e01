"""A real JACK server (dummy driver) for the tests: one per test session, a unique name.

``JACK_DEFAULT_SERVER`` is set in this process (and inherited by the service subprocesses
the tests start), so every JACK client the tests make talks to this server and never to a
desktop's. The server is killed when the session ends.

Import the fixture into a test module: ``from tests.jackserver import jack  # noqa: F401``.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import mido
import numpy as np
import pytest
import yaml

from appliance.core import limbs


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

    def xruns(self) -> int:
        """Cycles jackd has reported late so far (its log's XRun lines): in one, a client's MIDI
        for that cycle can be lost on the way, whatever the box did."""
        try:
            with open(self.log_path, errors="replace") as log:
                return sum("XRun" in line for line in log)
        except OSError:
            return 0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()        # its slot: see reclaim_dead_slots
                self.process.wait(timeout=10)


_server: JackServer | None = None
_lock = threading.Lock()

#: JACK keeps a registry of at most 8 servers a machine. A server that dies without
#: unregistering (SIGKILL, a crash) keeps its slot until a server *of the same name* starts
#: (see JACK's jack_register_server); the tests' names are per process, so each such death
#: used to leak a slot for good, until no test server could start ("Too many servers
#: already active"). ``reclaim_dead_slots`` takes those slots back the way JACK does.
REGISTRY = "/dev/shm/jack-shm-registry"
#: JACK's shm.h: a header of six 32-bit words (magic, protocol, type, size, hdr_len,
#: entry_len), then MAX_SERVERS = 8 slots of {pid_t pid; char name[256 + 1];}, padded: the
#: slot's size is read from hdr_len rather than assumed (it is 264 bytes here, not 260).
_SLOTS, _HEADER = 8, 24


def dead_servers() -> list[str]:
    """Names of registered JACK servers (ours: groovebox-*) whose process is gone."""
    import struct
    try:
        with open(REGISTRY, "rb") as f:
            data = f.read(4096)
    except OSError:
        return []
    if len(data) < _HEADER:
        return []
    hdr_len = struct.unpack("<6I", data[:_HEADER])[4]
    size = (hdr_len - _HEADER) // _SLOTS
    if size < 4 + 256 or hdr_len > len(data):
        return []
    prefix = f"jack-{os.getuid()}:".encode()
    dead = []
    for i in range(_SLOTS):
        entry = data[_HEADER + i * size:_HEADER + (i + 1) * size]
        if len(entry) < size:
            break
        pid = struct.unpack("<i", entry[:4])[0]
        name = entry[4:].split(b"\0", 1)[0]
        if pid <= 0 or not name.startswith(prefix + b"groovebox-"):
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            dead.append(name[len(prefix):].rstrip(b":").decode(errors="replace"))
        except PermissionError:
            pass
    return dead


def reclaim_dead_slots() -> None:
    """Free the registry slots of dead groovebox-* servers: a server of the same name starts
    (which takes the dead entry back) and is stopped with SIGTERM (which unregisters it)."""
    for name in dead_servers():
        env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_AUDIO_RESERVATION="1")
        process = popen_jackd(name, ["--no-realtime", "-d", "dummy", "-p", "256"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              stdin=subprocess.DEVNULL)
        _wait_running(JackServer(name, process, ""), timeout=10)
        JackServer(name, process, "").stop()


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the test process dies, however it dies (a
    segfault, SIGKILL, a timeout), so that no jackd outlives its test session."""
    import ctypes
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def popen_jackd(name: str, args: list[str], **popen: object) -> subprocess.Popen:
    """``jackd --name NAME ARGS`` that dies with this process (SIGTERM, so that it unregisters)."""
    jackd = shutil.which("jackd") or ("/usr/bin/jackd" if os.path.exists("/usr/bin/jackd") else None)
    if jackd is None:
        pytest.fail("jackd is missing: `make test` installs it (Debian package jackd2), "
                    "or run `apt-get install jackd2`")
    return subprocess.Popen([jackd, "--name", name, *args], preexec_fn=_die_with_parent,
                            **popen)  # type: ignore[call-overload]


def own_jackd(prefix: str, **popen: object) -> subprocess.Popen:
    """A child script's own dummy jackd (``<prefix>-<pid>``, made the default server, dying with
    the process), once it answers (at most 10 s)."""
    reclaim_dead_slots()                   # JACK has 8 server slots a machine
    name = f"{prefix}-{os.getpid()}"
    os.environ["JACK_DEFAULT_SERVER"] = name
    jackd = popen_jackd(name, ["--no-realtime", "-d", "dummy", "-p", "256"], **popen)
    for _ in range(100):
        if subprocess.run(["jack_wait", "-c"], capture_output=True, text=True).stdout.strip() == "running":
            break
        time.sleep(0.1)
    return jackd


def start_server() -> JackServer:
    """Start (once per process) a jackd with the dummy driver and wait until it answers."""
    global _server
    with _lock:
        if _server is not None and _server.process.poll() is None:
            return _server
        reclaim_dead_slots()
        name = f"groovebox-test-{os.getpid()}"
        os.environ["JACK_DEFAULT_SERVER"] = name
        os.environ["JACK_NO_AUDIO_RESERVATION"] = "1"
        # Real-time where allowed (as a JACK setup for music runs), so that a busy test
        # machine does not hold up JACK's cycles; else not. Synchronous (-S): a cycle ends
        # when every client is done, so a client held up makes the cycle late instead of
        # losing its MIDI for that cycle (python -m benchmarks.jack_loss: asynchronous, 15
        # clocks lost over 10 runs of 336 on a 2-core VM; synchronous, none).
        for mode in (["-R", "-P", "60"], ["--no-realtime"]):
            log = tempfile.NamedTemporaryFile(prefix="jackd-", suffix=".log", delete=False)
            process = popen_jackd(name, [*mode, "--port-max", "128", "-S", "-d", "dummy", "-r", "48000",
                                         "-p", "64"],
                                  stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  env=dict(os.environ), start_new_session=True)
            server = JackServer(name, process, log.name)
            if _wait_running(server):
                break
            server.stop()
        else:
            pytest.fail(f"jackd did not come up in 30 s: {open(log.name).read()[-2000:]}")
        _server = server
        atexit.register(server.stop)
        return server


def _wait_running(server: JackServer, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        wait = subprocess.run(["jack_wait", "-c"], env=server.env(), capture_output=True,
                              text=True, timeout=20)
        if wait.stdout.strip() == "running":
            return True
        time.sleep(0.2)
    return False


@pytest.fixture(scope="session")
def jack():
    server = start_server()
    yield server
    server.stop()


# --- small JACK clients the tests play the keyboard and the drum machine with ----------------

class Recorder:
    """A JACK client with one MIDI input; remembers (arrival time, message).

    The input is python-rtmidi polled in a process of its own (tests/recorder_child.py), which
    writes each message with its arrival time: rtmidi's C-side time stamps (the JACK cycle) on
    ``time.monotonic``'s clock, not when Python got round to it. (A Python callback in JACK's
    process thread that waits for the GIL garbles bursts.) ``close`` lets that process close
    its port and end (killed if it has not within ``GONE_S``) and waits until the port has
    left the server: RtMidi's own close can crash the process that calls it (see the child's
    docstring). Recorders a test leaves open are closed after it (``close_left_open``)."""

    GONE_S = 5.0
    left_open: list["Recorder"] = []

    def __init__(self, client: str, port: str = "in", timeout: float = 30.0) -> None:
        self.events: list[tuple[float, mido.Message]] = []
        self.name = f"{client}:{port}"
        self._cond = threading.Condition()
        self._ready = threading.Event()
        self._dead = False
        self._errors = tempfile.TemporaryFile(mode="w+")
        self._proc = subprocess.Popen([sys.executable, "-m", "tests.recorder_child", client, port],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._errors,
                                      cwd=REPO, env=dict(os.environ), text=True)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        Recorder.left_open.append(self)
        self._ready.wait(timeout)
        if self._dead or not self._ready.is_set():
            self._errors.seek(0)
            why = self._errors.read()[-2000:]
            self._end()
            raise AssertionError(f"the recorder {self.name} did not open its port in {timeout:g} s: {why}")
        ports = _ports()
        if ports is not None and self.name not in ports:
            self._end()
            raise AssertionError(f"the recorder's port is not {self.name} (a client of that name left open?): "
                                 f"{' '.join(p for p in ports if p.startswith(client))}")

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            if line == "ready\n":
                self._ready.set()
                continue
            try:
                stamp, data = line.split()
                event = (float(stamp), mido.Message.from_bytes(bytes.fromhex(data)))
            except ValueError:
                continue
            with self._cond:
                self.events.append(event)
                self._cond.notify_all()
        with self._cond:                 # the child has gone: nobody waits for it in vain
            self._dead = True
            self._ready.set()
            self._cond.notify_all()

    def settle(self, quiet: float = 0.3, timeout: float = 10.0) -> list[tuple[float, mido.Message]]:
        """Every event so far, once nothing new has come for ``quiet`` seconds (a busy machine
        can hold the last note-offs of a stopping box in JACK or in this poller a moment)."""
        deadline = time.monotonic() + timeout
        seen = -1
        while time.monotonic() < deadline:
            with self._cond:
                count = len(self.events)
            if count == seen:
                break
            seen = count
            time.sleep(quiet)
        with self._cond:
            return list(self.events)

    def wait_for(self, predicate: Callable[[list[tuple[float, mido.Message]]], bool],
                 timeout: float = 20.0) -> list[tuple[float, mido.Message]]:
        with self._cond:
            self._cond.wait_for(lambda: predicate(self.events) or self._dead, timeout)
            return list(self.events)

    def clear(self) -> None:
        with self._cond:
            self.events.clear()

    def close(self, timeout: float = 20.0) -> None:
        """End the recorder's process; return once its port has left the JACK server."""
        self._end(timeout)
        gone = wait_until(lambda: (ports := _ports()) is not None and self.name not in ports, timeout=timeout)
        assert gone, f"the recorder's port {self.name} has not left the JACK server in {timeout:g} s"

    def _end(self, timeout: float = 20.0) -> None:
        """The child closes its port and exits (killed after ``GONE_S``); the reader stops."""
        if self in Recorder.left_open:
            Recorder.left_open.remove(self)
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            self._proc.stdin.close()          # the child closes its port and exits
        try:
            self._proc.wait(timeout=self.GONE_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=timeout)
        self._thread.join(timeout=5)
        if self._proc.stdout is not None and not self._thread.is_alive():
            self._proc.stdout.close()
        self._errors.close()

    @classmethod
    def close_left_open(cls, keep: set[int] | frozenset[int] = frozenset()) -> None:
        """Close every recorder a test left open (a test that failed before its ``finally``),
        but those whose ``id`` is in ``keep``."""
        for recorder in list(cls.left_open):
            if id(recorder) not in keep:
                recorder.close()


def _ports() -> list[str] | None:
    """Every port of the JACK server ``JACK_DEFAULT_SERVER`` names (jack_lsp; none when no server
    runs); None when jack_lsp does not answer in time."""
    try:
        done = subprocess.run(["jack_lsp"], env=dict(os.environ), capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return None
    return done.stdout.split() if done.returncode == 0 else []


class Player:
    """A JACK client with one MIDI output (a keyboard, a clock source), in a process of its own
    (tests/player_child.py: libjack's client close can crash the process that calls it, and the
    box's own ports live in the test process). Each message goes down a pipe as it is sent."""

    GONE_S = 5.0

    def __init__(self, client: str, port: str = "out", timeout: float = 30.0) -> None:
        self.name = f"{client}:{port}"
        self._errors = tempfile.TemporaryFile(mode="w+")
        self._proc = subprocess.Popen([sys.executable, "-m", "tests.player_child", client, port],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._errors,
                                      cwd=REPO, env=dict(os.environ), text=True)
        ready: list[str] = []
        stdout = self._proc.stdout
        assert stdout is not None
        reader = threading.Thread(target=lambda: ready.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if ready != ["ready\n"]:
            self._errors.seek(0)
            why = self._errors.read()[-2000:]
            self.close()
            raise AssertionError(f"the keyboard {self.name} did not open its port in {timeout:g} s: {why}")

    def send(self, message: mido.Message) -> None:
        self.send_bytes(message.bytes())

    def send_bytes(self, data: list[int]) -> None:
        """Any bytes out of the port, MIDI or not (a test's garbage)."""
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(bytes(data).hex() + "\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            self._errors.seek(0)
            raise AssertionError(f"the keyboard {self.name} has gone (exit {self._proc.poll()}): "
                                 f"{self._errors.read()[-2000:]}") from None

    def take_over(self, other: "Player") -> None:
        """Send through ``other``'s port from now on (a fixture's keyboard, plugged back in);
        ``other`` is this one's now, and is not closed on its own."""
        self.close()
        self.name, self._errors, self._proc = other.name, other._errors, other._proc

    def close(self) -> None:
        """The child closes its port and exits (killed after ``GONE_S``)."""
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            try:
                self._proc.stdin.close()
            except BrokenPipeError:
                pass
        try:
            self._proc.wait(timeout=self.GONE_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=20)
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._errors.close()


ECHO_SCRIPT = r"""
import sys, rtmidi
name = sys.argv[1]
out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=f"{name}-out")
out.open_virtual_port("out")
midi_in = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=name, queue_size_limit=4096)
midi_in.ignore_types(sysex=False, timing=False, active_sense=False)
midi_in.set_callback(lambda event, _data: out.send_message(event[0]))
midi_in.open_virtual_port("in")
print("ready", flush=True)
sys.stdin.readline()
"""


class EchoDevice:
    """A drum machine with MIDI thru on, in its own process: everything sent to ``<name>:in``
    comes back out of ``<name>-out:out`` (clocks and notes alike)."""

    def __init__(self, server: JackServer, name: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", ECHO_SCRIPT, name], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=server.env())
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def close(self) -> None:
        if self.proc.poll() is None and self.proc.stdin is not None:
            self.proc.stdin.write("bye\n")
            self.proc.stdin.flush()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@contextlib.contextmanager
def cycle_frames(server: JackServer, frames: int) -> Iterator[None]:
    """The server runs ``frames``-frame cycles inside the block (``jack_bufsize``, as a desktop
    user sets a larger buffer), and its own size again after."""
    def bufsize(*args: str) -> str:
        done = subprocess.run(["jack_bufsize", *args], env=server.env(), capture_output=True,
                              text=True, timeout=20)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    before = bufsize()
    try:
        bufsize(str(frames))
        assert wait_until(lambda: bufsize() == str(frames), 10)
        yield
    finally:
        try:
            bufsize(before)
            restored = wait_until(lambda: bufsize() == before, 10)
        except (AssertionError, OSError, subprocess.SubprocessError) as error:
            restored, before = False, f"{before} ({error})"
        if not restored:       # said, or the next tests run on the wrong cycles unknowingly
            pytest.fail(f"the JACK server could not be set back to {before} frames")


def connect(server: JackServer, source: str, destination: str) -> None:
    """Connect two ports (already connected is fine)."""
    done = subprocess.run(["jack_connect", source, destination], env=server.env(),
                          capture_output=True, text=True, timeout=20)
    if done.returncode != 0 and "already" not in (done.stdout + done.stderr).lower():
        listing = subprocess.run(["jack_lsp", "-c", source], env=server.env(),
                                 capture_output=True, text=True, timeout=20).stdout
        assert destination in listing, f"jack_connect {source} {destination}: {done.stderr}"


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


# --- the service as a real process ------------------------------------------------------------

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class NotifyListener:
    """A NOTIFY_SOCKET the test owns: collects the service's READY=1, WATCHDOG=1, ..."""

    def __init__(self, directory: str) -> None:
        import socket
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import socket
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            with self._cond:
                for line in data.decode().splitlines():
                    self.messages.append((time.monotonic(), line))
                self._cond.notify_all()

    def wait_for(self, line: str, count: int = 1, timeout: float = 60.0) -> bool:
        with self._cond:
            return self._cond.wait_for(
                lambda: sum(1 for _, m in self.messages if m == line) >= count, timeout)

    def count(self, line: str) -> int:
        with self._cond:
            return sum(1 for _, m in self.messages if m == line)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


class ServiceProcess:
    """``groovebox run --config FILE`` as a child process on the test's JACK server."""

    def __init__(self, server: JackServer, directory: str, config_text: str,
                 watchdog_usec: int | None = None) -> None:
        self.server = server
        self.directory = directory
        try:
            midi = (yaml.safe_load(config_text) or {}).get("midi") or {}
        except (yaml.YAMLError, AttributeError):
            midi = {}            # a test of a broken config: the default name
        self.client_name = str(midi.get("client_name", "groovebox")) if isinstance(midi, dict) else "groovebox"
        self.config_path = os.path.join(directory, "config.yaml")
        if not any(line.startswith("start:") for line in config_text.splitlines()):
            # These tests want drums from the start: not the stage default (first-note).
            config_text = config_text.rstrip("\n") + "\nstart:\n  mode: now\n"
        with open(self.config_path, "w") as f:
            f.write(config_text)
        self.socket_path = os.path.join(directory, "control.sock")
        self.notify = NotifyListener(directory)
        self.log_path = os.path.join(directory, "service.log")
        env = server.env()
        env["NOTIFY_SOCKET"] = self.notify.path
        env.pop("RUNTIME_DIRECTORY", None)
        if watchdog_usec is not None:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "appliance.box.cli", "run", "--config", self.config_path],
            cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.notify.wait_for("READY=1", timeout=0.5):
                return
            if self.proc.poll() is not None:
                break
        raise AssertionError(f"service not READY (exit {self.proc.poll()}):\n{self.log()[-4000:]}")

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        with open(self.log_path) as f:
            return f.read()

    def request(self, command: str, **fields):
        from appliance.box.control_socket import request
        return request(command, self.socket_path, **fields)

    def status(self) -> dict:
        return self.request("status")["status"]

    def rss_mb(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        # The box leaves its JACK clients to its exit and jackd takes them away a cycle or more
        # later: let that finish before the test closes clients of its own (libjack can crash
        # a client that unregisters a port while graph changes are being announced, jack2 216).
        mine = {self.client_name, f"{self.client_name}-out"}
        wait_until(lambda: not any(port.split(":")[0] in mine for port in self.server.ports()), 5.0, 0.1)
        self.notify.close()
        self._log.close()
        return self.proc.returncode


def played_note(status: dict, step: int, voice: int) -> int | None:
    """The note a pattern hit goes out on, from a status answer (a closed hat under the ride or
    crash is the pedal hat: appliance.core.limbs)."""
    on_step = np.zeros(len(status["voices"]), bool)
    on_step[[v for s, v, _vel, _off in status["pattern"] if s == step]] = True
    return limbs.note_of(voice, on_step, tuple(status["notes"]), status["pedal_hat"])


def expected_hits(status: dict, t0: float, t1: float) -> list[tuple[float, int, int]]:
    """(ideal time, channel 0..15, note) of every pattern hit between t0 and t1, from a
    status answer (the pattern, the tempo, and the position at the status' time)."""
    sps = 60.0 / status["bpm"] / 4
    anchor_t, anchor_p = status["now"], status["position"]
    out = []
    first = int((t0 - anchor_t) / sps + anchor_p) - 40
    last = int((t1 - anchor_t) / sps + anchor_p) + 40
    for step, voice, _velocity, offset in status["pattern"]:
        note = played_note(status, step, voice)
        if note is None:
            continue
        channel = status["channels"][voice] - 1
        k = first - (first % 32) + step
        while k <= last:
            t = anchor_t + (k + offset - anchor_p) * sps
            if t0 <= t <= t1:
                out.append((t, channel, note))
            k += 32
    return sorted(out)

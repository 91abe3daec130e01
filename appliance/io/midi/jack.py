"""JACK without stalls: the box's two MIDI ports made once, hotplug done by patching.

On JACK, making, opening or closing a port is a round trip to the server, and python-rtmidi
holds the GIL through it; on a busy machine that took 1.9 s in a test, and the player
(which needs the GIL to send) stalled with it. So on JACK the box registers one input and
one output port at start (rtmidi virtual ports) and never touches them again; following
keyboards and drum machines as they come and go is done by connecting and disconnecting
other clients' ports to those two, through libjack called with ctypes, which lets go of
the GIL in every call. (On ALSA, opening a port is a quick local call: see
rtmidi_backend.py.)

Why not the JACK-Client package (CFFI, GIL-free too), which was tried: it loads the
system's libjack while python-rtmidi's wheel carries its own, and with two copies in one
process ``jack_client_close`` deadlocked (the test suite hung in MidiPorts.close). Binding
it to rtmidi's copy takes patching ``ctypes.util.find_library`` while it is imported (it has
no option for its library). (SIGSEGVs of the test process seen that way were seen with this
ctypes code too, on a machine busy with seven JACK servers: rtmidi's, not JACK-Client's;
libjack's own race, see :meth:`JackBackend.leave`.)
The ctypes lines below call the eleven libjack functions the patchbay needs, on rtmidi's own
copy, with nothing patched.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import glob
import logging
import os
import re
import threading
import time
from typing import Any, Sequence

from appliance.io.midi.backend import (InputHandle, NoServer, OutputHandle, PortBackend, PortError,
                                       RawCallback, VirtualPorts, port_key)
from appliance.io.midi.rtmidi_backend import RtMidiBackend, _RtInput, _RtOutput, _rtmidi

log = logging.getLogger(__name__)

_NO_START_SERVER = 0x01
_IS_INPUT, _IS_OUTPUT = 0x1, 0x2
_MIDI_TYPE = b"8 bit raw midi"
_EEXIST = 17
DRAIN_S = 1.0   #: at the stop, the longest wait for the last messages to leave (JackBackend.leave)
EOX_EVERY_S = 0.25   #: how often the box's input is sent an end-of-sysex (JackBackend: a stray sysex start)
EOX_CHECK_EVERY = 8  #: ... and every this many, that its connection to the input is still there
GONE_WAIT_S = 1.0    #: a failed build waits this long to see whether the server went (JackBackend._give_up)


class _ServerGone:
    """A flag libjack raises from its own thread with no Python in it: a POSIX semaphore that
    libc's ``sem_post`` (C) posts as the client's shutdown callback, read with ``sem_getvalue``.

    A Python (ctypes) callback there needs the GIL on libjack's notification thread, and
    ``jack_client_close`` cancels that thread (``pthread_cancel``): cancelled while waiting for
    the GIL, it left the GIL locked and the process hung (a backend built while the server died
    hung in 7 of 56 runs of ``scripts/jack_gone_race.py``, before this and ``JackBackend._give_up``). ``sem_post`` takes the one pointer a
    shutdown callback gets; its int result is ignored, as the C calling conventions allow. The
    semaphores are never freed (``_FLAGS``): a client left to the exit may still post one.
    """

    def __init__(self) -> None:
        self._sem = (ctypes.c_long * 8)()          # room for a sem_t (glibc: 32 bytes, 16 on 32-bit ARM), aligned
        if _LIBC.sem_init(ctypes.byref(self._sem), 0, 0) != 0:
            raise PortError(f"cannot make a semaphore (errno {ctypes.get_errno()})")
        _FLAGS.append(self)
        self.callback = ctypes.cast(_LIBC.sem_post, ctypes.c_void_p)
        self.argument = ctypes.cast(ctypes.byref(self._sem), ctypes.c_void_p)

    @property
    def raised(self) -> bool:
        value = ctypes.c_int(0)
        return _LIBC.sem_getvalue(ctypes.byref(self._sem), ctypes.byref(value)) == 0 and value.value > 0

    def raised_within(self, timeout: float) -> bool:
        """Whether the flag is up, or goes up within ``timeout`` seconds (left up: polled)."""
        deadline = time.monotonic() + timeout
        while not self.raised:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    def forget(self) -> None:
        """Its client is closed (its notification thread joined): nothing will post it now."""
        if self in _FLAGS:
            _FLAGS.remove(self)


#: sem_* live in libc since glibc 2.34, and in libpthread (still a name for them) before it
_LIBC = ctypes.CDLL(ctypes.util.find_library("pthread") or None, use_errno=True)
_FLAGS: list[_ServerGone] = []
#: clients of a dead server, left to the process's exit (JackBackend): never closed. (python-rtmidi
#: 1.5.8 does not close a client it collects either; kept, so that one that does would not.)
_LEFT: list[object] = []


def _libjack() -> ctypes.CDLL:
    """The libjack python-rtmidi was built with (one copy in the process), else the system's."""
    rtmidi = _rtmidi()
    site = os.path.dirname(os.path.dirname(os.path.abspath(rtmidi.__file__)))
    candidates = sorted(glob.glob(os.path.join(site, "python_rtmidi*", "libjack*.so*")))
    system = ctypes.util.find_library("jack")
    if system:
        candidates.append(system)
    for path in candidates:
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    raise PortError("libjack not found (install libjack-jackd2-0)")


class JackPatchbay:
    """A JACK client without ports that lists MIDI ports and connects them (GIL-free)."""

    def __init__(self, name: str) -> None:
        lib = _libjack()
        lib.jack_client_open.restype = ctypes.c_void_p
        lib.jack_client_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        lib.jack_get_ports.restype = ctypes.POINTER(ctypes.c_char_p)
        lib.jack_get_ports.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong]
        lib.jack_free.argtypes = [ctypes.c_void_p]
        lib.jack_connect.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
        lib.jack_disconnect.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
        lib.jack_port_by_name.restype = ctypes.c_void_p
        lib.jack_port_by_name.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.jack_port_connected_to.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.jack_client_close.argtypes = [ctypes.c_void_p]
        lib.jack_on_shutdown.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        lib.jack_last_frame_time.restype = ctypes.c_uint32
        lib.jack_last_frame_time.argtypes = [ctypes.c_void_p]
        lib.jack_get_buffer_size.restype = ctypes.c_uint32
        lib.jack_get_buffer_size.argtypes = [ctypes.c_void_p]
        lib.jack_get_sample_rate.restype = ctypes.c_uint32
        lib.jack_get_sample_rate.argtypes = [ctypes.c_void_p]
        self._lib = lib
        self._lock = threading.Lock()
        status = ctypes.c_int(0)
        self._client = lib.jack_client_open(name.encode(), _NO_START_SERVER, ctypes.byref(status))
        if not self._client:
            raise NoServer(f"cannot open the JACK MIDI system (status 0x{status.value:x}); "
                            "is the JACK server running? (jackd -d dummy, or start it from "
                            "your desktop)")
        self._gone = _ServerGone()     # made once a client is (a retry loop with no server makes none)
        lib.jack_on_shutdown(self._client, self._gone.callback, self._gone.argument)

    @property
    def gone(self) -> bool:
        """The server shut down (or threw this client out)."""
        return self._gone.raised

    def _ports(self, flags: int) -> list[str]:
        with self._lock:
            if not self._client or self.gone:
                return []
            found = self._lib.jack_get_ports(self._client, None, _MIDI_TYPE, flags)
            names: list[str] = []
            if found:
                i = 0
                while found[i]:
                    names.append(found[i].decode(errors="replace"))
                    i += 1
                self._lib.jack_free(ctypes.cast(found, ctypes.c_void_p))
            return names

    def sources(self) -> list[str]:
        """MIDI ports that send (other clients' outputs)."""
        return self._ports(_IS_OUTPUT)

    def destinations(self) -> list[str]:
        return self._ports(_IS_INPUT)

    def connect(self, source: str, destination: str) -> None:
        if self.gone:
            raise PortError("the JACK server is gone")
        with self._lock:
            code = self._lib.jack_connect(self._client, source.encode(), destination.encode())
        if code not in (0, _EEXIST):
            raise PortError(f"cannot connect {source!r} to {destination!r} (JACK error {code})")

    def disconnect(self, source: str, destination: str) -> None:
        if self.gone:
            return
        with self._lock:
            self._lib.jack_disconnect(self._client, source.encode(), destination.encode())

    def connected(self, source: str, destination: str) -> bool:
        if self.gone:
            return True      # nothing to repair until the box is restarted
        with self._lock:
            port = self._lib.jack_port_by_name(self._client, source.encode())
            return bool(port) and bool(self._lib.jack_port_connected_to(port, destination.encode()))

    def cycles(self, count: int, timeout: float) -> bool:
        """Wait until the server has run ``count`` more process cycles, so that what a client
        queued before has gone out; False at the timeout, or with no server."""
        with self._lock:
            if not self._client or self.gone:
                return False
            start = self._lib.jack_last_frame_time(self._client)
            frames = count * max(1, self._lib.jack_get_buffer_size(self._client))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._client or self.gone:
                    return False
                now = self._lib.jack_last_frame_time(self._client)
            if (now - start) % 2 ** 32 >= frames:
                return True
            time.sleep(0.002)
        return False

    def cycle_s(self) -> float | None:
        """How long one process cycle lasts (frames per cycle / sample rate); None with no server."""
        with self._lock:
            if not self._client or self.gone:
                return None
            frames = self._lib.jack_get_buffer_size(self._client)
            rate = self._lib.jack_get_sample_rate(self._client)
        return frames / rate if rate else None

    def went_within(self, timeout: float) -> bool:
        """Whether the server is gone, or goes within ``timeout`` seconds."""
        return self._gone.raised_within(timeout)

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client and not self.gone:
            self._lib.jack_client_close(client)
            self._gone.forget()


class _Patch(InputHandle, OutputHandle):
    """A connection between another client's port and one of ours."""

    def __init__(self, backend: "JackBackend", source: str, destination: str,
                 sink: OutputHandle | None = None) -> None:
        self._backend = backend
        self.source, self.destination = source, destination
        self._sink = sink

    @property
    def sink(self) -> OutputHandle:
        """The box's one output, whatever this patch connects it to."""
        return self._sink if self._sink is not None else self

    def send(self, data: Sequence[int]) -> None:
        if self._sink is not None:
            self._sink.send(data)

    def alive(self) -> bool:
        """Still connected (a port replugged between two scans loses its connections)."""
        if not self.source or not self.destination:
            return True
        return self._backend.patchbay.connected(self.source, self.destination)

    def close(self) -> None:
        self._backend._unpatch(self.source, self.destination)


class _SharedOutput(_RtOutput):
    """The box's one JACK output port: not pooled, deleted on close."""

    def __init__(self, midi_out) -> None:
        super().__init__(None, midi_out)

    def _release(self, out) -> None:
        out.delete()


def eox_client(client_name: str) -> str:
    """The JACK client that sends the box's own input an end-of-sysex now and then (JackBackend)."""
    return f"{client_name}-eox"


def output_client(client_name: str) -> str:
    """The JACK client of the box's output. rtmidi makes one JACK client per port and JACK
    client names are unique, so the output cannot share the input's: it is named here
    (``groovebox-out:out``) rather than left to JACK's numbering (``groovebox-01:out``)."""
    return f"{client_name}-out"


class JackBackend(PortBackend):
    """The box on JACK: one input and one output port, patched to what matches (and its own
    end-of-sysex port, below).

    Its ports are ``<client_name>:in`` (play into it) and ``<client_name>-out:out`` (the drums).

    Every handle it returns shares those two ports: an output handle's ``sink`` is the one
    output, so :class:`MidiPorts` sends each message once whatever is connected to it.

    A third port, ``<client_name>-eox:out``, patched to the input, sends it an end-of-sysex
    (F7) every ``EOX_EVERY_S``: rtmidi's JACK input takes every event after a sysex start with
    no end (a stray F0 from a keyboard or a cable) as more of that sysex and drops it, until an
    event ends with F7; without one the box stayed deaf to the keyboard for good (fault harness,
    session 40). The F7s themselves are not passed on.
    """

    api = "jack"
    inputs_merge = True

    def __init__(self, client_name: str = "groovebox", poll_s: float = 0.002) -> None:
        rtmidi = _rtmidi()
        if rtmidi.API_UNIX_JACK not in rtmidi.get_compiled_api():
            raise PortError("python-rtmidi was built without JACK support")
        self.client_name = client_name
        self.poll_s = poll_s
        self.patchbay = JackPatchbay(f"{client_name}-patchbay")
        self._callback: RawCallback | None = None
        before_sources, before_destinations = set(self.patchbay.sources()), set(self.patchbay.destinations())
        made: list = []
        try:
            midi_in = _new_client(made, self.patchbay, rtmidi.MidiIn, name=client_name,
                                  queue_size_limit=RtMidiBackend.QUEUE)
            midi_in.ignore_types(sysex=True, timing=False, active_sense=True)
            midi_in.open_virtual_port("in")
            midi_out = _new_client(made, self.patchbay, rtmidi.MidiOut, name=output_client(client_name))
            midi_out.open_virtual_port("out")
            eox = _new_client(made, self.patchbay, rtmidi.MidiOut, name=eox_client(client_name))
            eox.open_virtual_port("out")
        except _OpenFailed as exc:
            # A client open fails when the server does not answer, and libjack's failed open
            # then frees every client of the process ("clients are still allocated,
            # cleanup..."), the patchbay's too, without its shutdown callback: closing it then
            # was a SIGSEGV (4 of 24 runs, scripts/jack_gone_race.py). Nothing is closed.
            _LEFT.extend([*made, self.patchbay])
            raise PortError(f"cannot open the JACK MIDI system ({exc})") from exc
        except rtmidi.RtMidiError as exc:   # a port the server refused (its port table full): it is up
            self._give_up(made)
            raise PortError(f"cannot make the box's JACK ports ({exc})") from exc
        try:
            self.input_port = _ours(self.patchbay.destinations(), before_destinations, client_name, "in")
            self.output_port = _ours(self.patchbay.sources(), before_sources, output_client(client_name), "out")
            self.eox_port = _ours(self.patchbay.sources(), before_sources, eox_client(client_name), "out")
            self.patchbay.connect(self.eox_port, self.input_port)
        except PortError:
            self._give_up(made)      # a retry by the same name gets the same names
            raise
        self._own = {self.input_port, self.output_port, self.eox_port}
        self._cycle_s = self.patchbay.cycle_s() or 0.0
        self._eox = _SharedOutput(eox)
        self._next_eox = 0.0
        self._eox_sent = 0
        self._input = _RtInput(midi_in, self._deliver, lambda _handle, obj: obj.delete())
        self._output = _SharedOutput(midi_out)
        self._patches: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="midi-in", daemon=True)
        self._poller.start()
        log.info("JACK ports %s and %s", self.input_port, self.output_port)

    def _give_up(self, made: list) -> None:
        """A build that failed with its server up: close what it made, unless the server went
        meanwhile (within ``GONE_WAIT_S``), when the clients are left to the exit (``_LEFT``).
        Closing a client as its server dies can hang the process inside libjack:
        ``jack_client_close`` cancels the client's notification thread, and one cancelled
        holding libjack's own lock (``JackGlobals::fSynchroMutex``) leaves it held (a review's
        gdb, session 48)."""
        if self.patchbay.went_within(GONE_WAIT_S):
            _LEFT.extend([*made, self.patchbay])
            return
        for client in made:
            client.delete()
        self.patchbay.close()

    # -- the data path ------------------------------------------------------------------------
    def _deliver(self, data: list[int], t: float) -> None:
        callback = self._callback
        if callback is not None and data != [0xF7]:   # our own end-of-sysex, or a stray one
            callback(data, t)

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self._input.poll(256) > 0
                now = time.monotonic()
                if now >= self._next_eox and not self.gone:
                    self._next_eox = now + EOX_EVERY_S
                    # jack_bufsize may change it mid-song; read every time (its ctypes calls
                    # each let go of the GIL: a keyboard's notes p99 7 -> 11 ms later, a review)
                    self._cycle_s = self.patchbay.cycle_s() or self._cycle_s
                    self._eox.send([0xF7])
                    self._eox_sent += 1
                    if self._eox_sent % EOX_CHECK_EVERY == 0:
                        self._look_again()
            except Exception:
                log.exception("MIDI input poll failed")
                busy = False
            if not busy:
                self._stop.wait(self.poll_s)

    def _look_again(self) -> None:
        """Every couple of seconds: the end-of-sysex port still patched to the input (a patchbay
        tool may take it away)."""
        if not self.patchbay.connected(self.eox_port, self.input_port):
            self.patchbay.connect(self.eox_port, self.input_port)

    # -- PortBackend --------------------------------------------------------------------------
    @property
    def gone(self) -> bool:
        """The JACK server went away (shut down or crashed)."""
        return self.patchbay.gone

    @property
    def stamp_grain(self) -> float:
        """One JACK cycle: rtmidi sends what the box queued at the next cycle's start, and
        stamps what comes in with the time of the cycle it was read in."""
        return self._cycle_s

    def is_own(self, name: str) -> bool:
        """Ours, or another box's by the same name (``groovebox-01:in``, ``groovebox-out-01:out``):
        a box never takes another's drums for a keyboard."""
        if name in self._own or super().is_own(name):
            return True
        client = port_key(name).split(":", 1)[0]
        return any(client == own or bool(re.fullmatch(re.escape(own) + r"-\d+", client))
                   for own in (output_client(self.client_name), eox_client(self.client_name)))

    def sources(self, own: bool = False) -> list[str]:
        return [n for n in self.patchbay.sources() if own or not self.is_own(n)]

    def destinations(self, own: bool = False) -> list[str]:
        return [n for n in self.patchbay.destinations() if own or not self.is_own(n)]

    def open_input(self, name: str, callback: RawCallback) -> InputHandle:
        self._callback = callback
        self.patchbay.connect(name, self.input_port)
        with self._lock:
            self._patches.add((name, self.input_port))
        return _Patch(self, name, self.input_port)

    def open_output(self, name: str) -> OutputHandle:
        self.patchbay.connect(self.output_port, name)
        with self._lock:
            self._patches.add((self.output_port, name))
        return _Patch(self, self.output_port, name, sink=self._output)

    def open_virtual_input(self, name: str, callback: RawCallback) -> InputHandle:
        self._callback = callback
        return _Patch(self, "", self.input_port)

    def open_virtual_output(self, name: str) -> OutputHandle:
        return _Patch(self, self.output_port, "", sink=self._output)

    def open_virtual(self, callback: RawCallback) -> VirtualPorts:
        """The box's two JACK ports themselves, under the names JACK gave them."""
        return VirtualPorts(self.open_virtual_input("in", callback),
                            self.open_virtual_output("out"), self.input_port, self.output_port)

    def _unpatch(self, source: str, destination: str) -> None:
        if not source or not destination:
            return
        with self._lock:
            self._patches.discard((source, destination))
        self.patchbay.disconnect(source, destination)

    def close(self) -> None:
        """Unregister the ports and close the clients (a test, a tool). Not on the service's
        stop: see :meth:`leave`."""
        self._stop.set()
        self._poller.join(timeout=5)
        if not self.gone:          # a dead server's clients are left to the exit
            self._input.close()
            self._output.close()
            self._eox.close()
        self.patchbay.close()

    def leave(self) -> None:
        """The service's stop: stop reading, let the last messages sent leave the output's queue
        (two JACK cycles, at most ``DRAIN_S``), and leave the ports, their connections and the
        clients to the process's exit (``service.exit_now``).

        Unregistering an rtmidi JACK port can crash the process: libjack's notification thread
        walks the client's ports for a latency notification while ``jack_port_unregister``
        changes them (jack2 issue 216; ``scripts/jack_close_race.py``). Deactivating the client
        first is the usual advice; rtmidi offers no way to, and that too is reported to race (jack2
        issue 340). The price of leaving them: jackd
        finds the clients gone a cycle or more later, and a JACK graph shared with other
        programs may have xruns then (docs/ARCHITECTURE.md, "Lessons from the live tests")."""
        self._stop.set()
        self._poller.join(timeout=5)
        if not self.gone:
            self.patchbay.cycles(2, DRAIN_S)   # rtmidi's close waited for its queue; this does it now


class _OpenFailed(Exception):
    """rtmidi could not open a JACK client: the server did not answer (JackBackend)."""


def _new_client(made: list, patchbay: JackPatchbay, kind: Any, **options: Any) -> Any:
    """An rtmidi JACK client (``kind``: MidiIn or MidiOut), added to ``made``; ``_OpenFailed``
    when it cannot be opened, told apart from a port that cannot be made afterwards. Not tried
    once the patchbay has seen the server go: an open after the server's death is what makes
    libjack tear down every client of the process, the moment its hangs and crashes come from."""
    rtmidi = _rtmidi()
    if patchbay.gone:
        raise _OpenFailed("the JACK server went away")
    try:
        client = kind(rtmidi.API_UNIX_JACK, **options)
    except rtmidi.RtMidiError as exc:
        raise _OpenFailed(str(exc)) from exc
    made.append(client)
    return client


def _ours(listed: list[str], before: set[str], client: str, port: str) -> str:
    """The port just made: the one by our client's name new since ``before``. A box killed a moment ago
    (power cut, systemd's restart a second later) leaves its ports until JACK notices, and
    when JACK frees them between the two lists, the new port takes the old one's name and
    nothing looks new: then it is the one port by our client's name (JACK numbers a second
    client of the same name ``client-01``)."""
    named = {n for n in listed if re.fullmatch(re.escape(client) + r"(-\d+)?:" + re.escape(port), n)}
    new = named - before
    if len(new) != 1:
        new = named
    if len(new) != 1:
        raise PortError(f"cannot tell which JACK port is ours ({client}:{port}: {sorted(new)})")
    return next(iter(new))

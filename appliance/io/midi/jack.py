"""JACK without stalls: the box's two MIDI ports made once, hotplug done by patching.

On JACK, making, opening or closing a port is a round trip to the server, and python-rtmidi
holds the GIL through it; on a busy machine that took 1.9 s in a test, and the player
(which needs the GIL to send) stalled with it. So on JACK the box registers one input and
one output port at start (rtmidi virtual ports) and never touches them again; following
keyboards and drum machines as they come and go is done by connecting and disconnecting
other clients' ports to those two, through the JACK-Client package (CFFI, which lets go
of the GIL in every call into libjack). (On ALSA, opening a port is a quick local call:
see rtmidi_backend.py.)
"""
from __future__ import annotations

import glob
import logging
import os
import re
import sys
import threading
from typing import Any, Sequence

from appliance.io.midi.backend import (InputHandle, OutputHandle, PortBackend, PortError, RawCallback,
                                       VirtualPorts, port_key)
from appliance.io.midi.rtmidi_backend import _RtInput, _RtOutput, _rtmidi

log = logging.getLogger(__name__)


def _jack() -> Any:
    """The JACK-Client module, bound to the libjack python-rtmidi already uses.

    python-rtmidi's wheel carries its own libjack; JACK-Client would load the system's, and
    two copies of libjack in one process deadlocked in ``jack_client_close`` (seen in the
    test suite under load) and map the server's shared memory twice. JACK-Client finds its
    library with ``ctypes.util.find_library("jack")`` when imported, so that lookup is
    pointed at rtmidi's copy for the import (no option of the library does it)."""
    if "jack" not in sys.modules:
        import ctypes.util
        bundled = _rtmidi_libjack()
        lookup = ctypes.util.find_library
        if bundled is not None:
            ctypes.util.find_library = lambda name: bundled if name == "jack" else lookup(name)
        try:
            import jack   # JACK-Client: the edge, only this module imports it
        except OSError as exc:   # it loads libjack when imported
            raise PortError(f"libjack not found ({exc}); install libjack-jackd2-0") from None
        finally:
            ctypes.util.find_library = lookup
    return sys.modules["jack"]


def _rtmidi_libjack() -> str | None:
    """The libjack bundled with python-rtmidi's wheel (None: rtmidi uses the system's)."""
    site = os.path.dirname(os.path.dirname(os.path.abspath(_rtmidi().__file__)))
    found = sorted(glob.glob(os.path.join(site, "python_rtmidi*", "libjack*.so*")))
    return found[0] if found else None


class JackPatchbay:
    """A JACK client without ports that lists MIDI ports and connects them (GIL-free)."""

    def __init__(self, name: str) -> None:
        jack = self._jack = _jack()
        self.gone = False
        self._lock = threading.Lock()
        try:
            self._client = jack.Client(name, no_start_server=True)
        except jack.JackError as exc:
            raise PortError(f"cannot open the JACK MIDI system ({exc}); is the JACK server "
                            "running? (jackd -d dummy, or start it from your desktop)") from None
        self._client.set_shutdown_callback(self._shutdown)

    def _shutdown(self, _status: Any, _reason: str) -> None:
        self.gone = True

    def _ports(self, is_input: bool) -> list[str]:
        with self._lock:
            if self._client is None or self.gone:
                return []
            return [p.name for p in self._client.get_ports(is_midi=True, is_input=is_input,
                                                           is_output=not is_input)]

    def sources(self) -> list[str]:
        """MIDI ports that send (other clients' outputs)."""
        return self._ports(is_input=False)

    def destinations(self) -> list[str]:
        return self._ports(is_input=True)

    def connect(self, source: str, destination: str) -> None:
        if self.gone:
            raise PortError("the JACK server is gone")
        try:
            with self._lock:
                self._client.connect(source, destination)
        except self._jack.JackErrorCode as exc:
            if exc.code != 17:       # EEXIST: connected already, which is what we want
                raise PortError(f"cannot connect {source!r} to {destination!r} ({exc})") from None
        except self._jack.JackError as exc:
            raise PortError(f"cannot connect {source!r} to {destination!r} ({exc})") from None

    def disconnect(self, source: str, destination: str) -> None:
        if self.gone:
            return
        try:
            with self._lock:
                self._client.disconnect(source, destination)
        except self._jack.JackError:
            pass                     # gone already: JACK says so, fine

    def connected(self, source: str, destination: str) -> bool:
        if self.gone:
            return True      # nothing to repair until the box is restarted
        try:
            with self._lock:
                return any(p.name == destination for p in self._client.get_all_connections(source))
        except self._jack.JackError:   # the source port is gone
            return False

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None and not self.gone:
            client.close()


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


def output_client(client_name: str) -> str:
    """The JACK client of the box's output. rtmidi makes one JACK client per port and JACK
    client names are unique, so the output cannot share the input's: it is named here
    (``groovebox-out:out``) rather than left to JACK's numbering (``groovebox-01:out``)."""
    return f"{client_name}-out"


class JackBackend(PortBackend):
    """The box on JACK: one input and one output port, patched to what matches.

    Its ports are ``<client_name>:in`` (play into it) and ``<client_name>-out:out`` (the drums).

    Every handle it returns shares those two ports: an output handle's ``sink`` is the one
    output, so :class:`MidiPorts` sends each message once whatever is connected to it.
    """

    api = "jack"

    def __init__(self, client_name: str = "groovebox", poll_s: float = 0.002) -> None:
        rtmidi = _rtmidi()
        if rtmidi.API_UNIX_JACK not in rtmidi.get_compiled_api():
            raise PortError("python-rtmidi was built without JACK support")
        self.client_name = client_name
        self.poll_s = poll_s
        self.patchbay = JackPatchbay(f"{client_name}-patchbay")
        self._callback: RawCallback | None = None
        before_sources, before_destinations = set(self.patchbay.sources()), set(self.patchbay.destinations())
        try:
            midi_in = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=client_name, queue_size_limit=1024)
            midi_in.ignore_types(sysex=True, timing=False, active_sense=True)
            midi_in.open_virtual_port("in")
            midi_out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=output_client(client_name))
            midi_out.open_virtual_port("out")
        except rtmidi.RtMidiError as exc:
            self.patchbay.close()
            raise PortError(f"cannot open the JACK MIDI system ({exc})") from exc
        self.input_port = _only(set(self.patchbay.destinations()) - before_destinations, "input")
        self.output_port = _only(set(self.patchbay.sources()) - before_sources, "output")
        self._own = {self.input_port, self.output_port}
        self._input = _RtInput(midi_in, self._deliver, lambda _handle, obj: obj.delete())
        self._output = _SharedOutput(midi_out)
        self._patches: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="midi-in", daemon=True)
        self._poller.start()
        log.info("JACK ports %s and %s", self.input_port, self.output_port)

    # -- the data path ------------------------------------------------------------------------
    def _deliver(self, data: list[int], t: float) -> None:
        callback = self._callback
        if callback is not None:
            callback(data, t)

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self._input.poll(256) > 0
            except Exception:
                log.exception("MIDI input poll failed")
                busy = False
            if not busy:
                self._stop.wait(self.poll_s)

    # -- PortBackend --------------------------------------------------------------------------
    @property
    def gone(self) -> bool:
        """The JACK server went away (shut down or crashed)."""
        return self.patchbay.gone

    def is_own(self, name: str) -> bool:
        """Ours, or another box's by the same name (``groovebox-01:in``, ``groovebox-out-01:out``):
        a box never takes another's drums for a keyboard."""
        if name in self._own or super().is_own(name):
            return True
        client = port_key(name).split(":", 1)[0]
        out = output_client(self.client_name)
        return client == out or bool(re.fullmatch(re.escape(out) + r"-\d+", client))

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
        self._stop.set()
        self._poller.join(timeout=5)
        if not self.gone:          # a dead server's clients are left to the exit
            self._input.close()
            self._output.close()
        self.patchbay.close()


def _only(names: set[str], what: str) -> str:
    if len(names) != 1:
        raise PortError(f"cannot tell which JACK {what} port is ours ({sorted(names)})")
    return next(iter(names))

"""python-rtmidi as a port backend: ALSA on the Pi (a port per connection)."""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Sequence

from appliance.io.midi.backend import (ArrivalClock, InputHandle, OutputHandle, PortBackend,
                                       PortError, RawCallback, latest_controls)

log = logging.getLogger("appliance.io.midi.ports")


def _rtmidi():
    import rtmidi  # the edge: only this backend imports rtmidi
    return rtmidi


def jack_running() -> bool:
    """True when a JACK server answers (without starting one)."""
    rtmidi = _rtmidi()
    if rtmidi.API_UNIX_JACK not in rtmidi.get_compiled_api():
        return False
    try:
        probe = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="groovebox-probe")
    except rtmidi.RtMidiError:
        return False
    try:
        probe.get_ports()
        return True
    except rtmidi.RtMidiError:
        return False
    finally:
        probe.delete()


def resolve_api(api: str) -> str:
    """``alsa``, ``jack``, or ``auto`` (JACK when a JACK server is running, else ALSA)."""
    api = api.lower()
    if api == "auto":
        return "jack" if jack_running() else "alsa"
    if api not in ("alsa", "jack"):
        raise PortError(f"midi.api {api!r} is not one of alsa, jack, auto")
    return api


class _RtInput(InputHandle):
    """One rtmidi input, polled (see RtMidiBackend). ``on_close(handle, midi_in)`` is told
    once the port is closed, to stop polling it and keep the object for reuse."""

    def __init__(self, midi_in, callback: RawCallback,
                 on_close: Callable[["_RtInput", Any], None]) -> None:
        self._on_close = on_close
        self._in = midi_in
        self.callback = callback
        self.arrival = ArrivalClock()
        self._lock = threading.Lock()

    def poll(self, limit: int) -> int:
        """Hand over what rtmidi queued (at most ``limit`` messages, a knob's stale values left
        out: :func:`latest_controls`); how many there were."""
        with self._lock:
            midi_in = self._in
            batch: list[tuple[list[int], float]] = []
            while midi_in is not None and len(batch) < limit:
                event = midi_in.get_message()
                if event is None:
                    break
                data, delta = event
                batch.append((data, self.arrival.stamp(delta)))
            for data, t in latest_controls(batch):
                self.callback(data, t)
            return len(batch)

    def close(self) -> None:
        with self._lock:
            midi_in, self._in = self._in, None
        if midi_in is not None:
            midi_in.close_port()
            while midi_in.get_message() is not None:   # nothing stale for the next user
                pass
            self._on_close(self, midi_in)


class _RtOutput(OutputHandle):
    """An rtmidi output; on close the port goes back to the backend's pool."""

    def __init__(self, backend: "RtMidiBackend | None", midi_out) -> None:
        self._backend = backend
        self._out = midi_out

    def send(self, data: Sequence[int]) -> None:
        out = self._out
        if out is not None:
            out.send_message(data)

    def close(self) -> None:
        out, self._out = self._out, None
        if out is not None:
            out.close_port()
            self._release(out)

    def _release(self, out) -> None:
        backend = self._backend
        assert backend is not None, "an output without a backend releases itself (_SharedOutput)"
        backend._release(backend._spare_out, out)


class RtMidiBackend(PortBackend):
    """python-rtmidi on ``alsa`` (the Pi), or ``jack`` (works, but see jack.py for why the
    service uses JackBackend there).

    python-rtmidi holds the GIL while it talks to the MIDI system, and making a client is
    slow on JACK (10–100 ms): long enough to make the player late. So rtmidi objects are
    made ahead (``spares``) and kept for reuse when a port goes away, and a hotplug only
    opens or closes a port on an object that already exists (1–3 ms on JACK, µs on ALSA).

    Inputs are polled from one thread ("midi-in"), never called back from rtmidi's thread:
    on JACK that thread is the process callback, and a Python callback waiting there for
    the GIL stalls the JACK graph and garbles bursts (a chord arrives as its first note
    three times). rtmidi's queue (``QUEUE`` messages an input) bounds a flood; arrival
    times come from rtmidi's own time stamps (:class:`ArrivalClock`), so polling adds
    at most ``poll_s`` of latency and nothing to the timing.
    """

    #: rtmidi prints a line to stderr (journald) for every message past a full queue, so the
    #: queue is large: 10,000 notes at once printed 19,541 lines with 1,024 (session 40)
    QUEUE = 65536

    def __init__(self, api: str = "alsa", client_name: str = "groovebox", spares: int = 1,
                 poll_s: float = 0.002) -> None:
        rtmidi = _rtmidi()
        self.poll_s = poll_s
        self._inputs: list[_RtInput] = []
        self._poll_stop = threading.Event()
        self._poller: threading.Thread | None = None
        self.api = resolve_api(api)
        self.client_name = client_name
        self._api = rtmidi.API_LINUX_ALSA if self.api == "alsa" else rtmidi.API_UNIX_JACK
        if self._api not in rtmidi.get_compiled_api():
            raise PortError(f"python-rtmidi was built without {self.api.upper()} support")
        self._lock = threading.Lock()
        self._spare_in: list = []
        self._spare_out: list = []
        try:
            self._lister_in = rtmidi.MidiIn(self._api, name=client_name)
            self._lister_out = rtmidi.MidiOut(self._api, name=client_name)
            self._lister_in.get_ports()
        except rtmidi.RtMidiError as exc:
            hint = ("is the JACK server running? (jackd -d dummy, or start it from your desktop)"
                    if self.api == "jack" else
                    "is the ALSA sequencer there? (/dev/snd/seq, snd-seq module, audio group)")
            raise PortError(f"cannot open the {self.api.upper()} MIDI system ({exc}); {hint}") from exc
        for _ in range(spares):
            self._spare_in.append(self._make_in())
            self._spare_out.append(self._make_out())

    def sources(self, own: bool = False) -> list[str]:
        with self._lock:
            return [n for n in self._lister_in.get_ports() if own or not self.is_own(n)]

    def destinations(self, own: bool = False) -> list[str]:
        with self._lock:
            return [n for n in self._lister_out.get_ports() if own or not self.is_own(n)]

    def _make_in(self):
        rtmidi = _rtmidi()
        midi_in = rtmidi.MidiIn(self._api, name=self.client_name, queue_size_limit=self.QUEUE)
        midi_in.ignore_types(sysex=True, timing=False, active_sense=True)
        return midi_in

    def _make_out(self):
        return _rtmidi().MidiOut(self._api, name=self.client_name)

    def _take(self, spares: list, make: Callable[[], Any]):
        with self._lock:
            if spares:
                return spares.pop()
        return make()

    def _release(self, spares: list, obj) -> None:
        with self._lock:
            spares.append(obj)

    def _watch(self, handle: _RtInput) -> _RtInput:
        with self._lock:
            self._inputs.append(handle)
            if self._poller is None:
                self._poller = threading.Thread(target=self._poll, name="midi-in", daemon=True)
                self._poller.start()
        return handle

    def _input_closed(self, handle: _RtInput, midi_in: Any) -> None:
        with self._lock:
            if handle in self._inputs:
                self._inputs.remove(handle)
            self._spare_in.append(midi_in)

    def _poll(self) -> None:
        while not self._poll_stop.is_set():
            with self._lock:
                inputs = list(self._inputs)
            busy = False
            for handle in inputs:
                try:
                    busy |= handle.poll(256) > 0
                except Exception:
                    log.exception("MIDI input poll failed")
            if not busy:
                self._poll_stop.wait(self.poll_s)

    def open_input(self, name: str, callback: RawCallback) -> InputHandle:
        rtmidi = _rtmidi()
        midi_in = self._take(self._spare_in, self._make_in)
        try:
            index = midi_in.get_ports().index(name)
            midi_in.open_port(index, "in")
        except (ValueError, rtmidi.RtMidiError) as exc:
            self._release(self._spare_in, midi_in)
            raise PortError(f"cannot open MIDI input {name!r}: {exc}") from exc
        return self._watch(_RtInput(midi_in, callback, self._input_closed))

    def open_output(self, name: str) -> OutputHandle:
        rtmidi = _rtmidi()
        midi_out = self._take(self._spare_out, self._make_out)
        try:
            index = midi_out.get_ports().index(name)
            midi_out.open_port(index, "out")
        except (ValueError, rtmidi.RtMidiError) as exc:
            self._release(self._spare_out, midi_out)
            raise PortError(f"cannot open MIDI output {name!r}: {exc}") from exc
        return _RtOutput(self, midi_out)

    def open_virtual_input(self, name: str, callback: RawCallback) -> InputHandle:
        midi_in = self._take(self._spare_in, self._make_in)
        midi_in.open_virtual_port(name)
        return self._watch(_RtInput(midi_in, callback, self._input_closed))

    def open_virtual_output(self, name: str) -> OutputHandle:
        midi_out = self._take(self._spare_out, self._make_out)
        midi_out.open_virtual_port(name)
        return _RtOutput(self, midi_out)

    def close(self) -> None:
        self._poll_stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
        with self._lock:
            objects = [self._lister_in, self._lister_out, *self._spare_in, *self._spare_out]
            self._spare_in.clear()
            self._spare_out.clear()
        for obj in objects:
            _quietly(obj.delete)


def _quietly(fn: Callable[[], object]) -> None:
    try:
        fn()
    except Exception as exc:
        log.debug("ignored while closing: %s", exc)

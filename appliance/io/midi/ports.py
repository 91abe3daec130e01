"""USB MIDI ports, chosen by name, reconnected when they come back.

Written like gpiozero: :class:`MidiPorts` (the musician-facing object) works against an
abstract :class:`PortBackend`. The real ones: :class:`RtMidiBackend` (python-rtmidi, a port
per connection; what the Pi uses on ALSA) and :class:`~appliance.io.midi.jack.JackBackend`
(JACK: two fixed ports, patched); ``appliance.io.midi.backends.open_backend`` picks one. Ports
are chosen by name patterns matched against the port name with ALSA's changing
``client:port`` numbers stripped, so a keyboard plugged into another socket is still the
same keyboard.

rtmidi does not report removals, so a watcher thread looks at the port list every
``scan_interval`` seconds: a port that vanished is closed, one that (re)appears and matches a
pattern is opened. The player never waits for any of this; sending to a port that is gone is
dropped silently.
"""
from __future__ import annotations

import fnmatch
import logging
import re
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import mido

log = logging.getLogger(__name__)

MessageCallback = Callable[[mido.Message, float], None]

_ALSA_NUMBERS = re.compile(r"\s+\d+:\d+$")


def port_key(name: str) -> str:
    """A port's stable name: ALSA's trailing ``client:port`` numbers removed."""
    return _ALSA_NUMBERS.sub("", name).strip()


def matches(pattern: str, name: str) -> bool:
    """Case-insensitive: a glob (``*?[``) against the whole stable name, else a substring."""
    key, pattern = port_key(name).lower(), pattern.lower().strip()
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(key, pattern)
    return pattern in key


class InputHandle(ABC):
    @abstractmethod
    def close(self) -> None: ...


class OutputHandle(ABC):
    @abstractmethod
    def send(self, data: Sequence[int]) -> None: ...

    @abstractmethod
    def close(self) -> None: ...


RawCallback = Callable[[list[int], float], None]   #: (bytes, arrival time on the clock)


class ArrivalClock:
    """Arrival times from the MIDI system's own time stamps, on our monotonic clock.

    rtmidi gives each message the time since the previous one, measured in C when the
    message came in (JACK: the process cycle; ALSA: the sequencer's time stamp), before any
    Python runs. Summed up, that is a timeline free of GIL and polling delays; its offset to
    our clock is the smallest lag seen (a message can never arrive before it was sent), let
    slowly rise (100 ppm) in case the two clocks drift apart.
    """

    DRIFT = 1e-4

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._line = 0.0
        self._offset: float | None = None
        self._last_now = 0.0

    def stamp(self, delta: float) -> float:
        now = self.clock()
        if self._offset is None:
            self._line = 0.0
            self._offset = now
        else:
            self._line += max(0.0, delta)
            lag = now - self._line
            allowed = self._offset + self.DRIFT * max(0.0, now - self._last_now)
            self._offset = min(lag, allowed)
        self._last_now = now
        return self._line + self._offset


class PortBackend(ABC):
    """The abstract factory: what a MIDI system must offer the box."""

    #: the name our own ports show under, so that the box never connects to itself
    client_name: str = "groovebox"

    @abstractmethod
    def sources(self, own: bool = False) -> list[str]:
        """Ports the box could read from (other clients' outputs; ``own`` adds ours)."""

    @abstractmethod
    def destinations(self, own: bool = False) -> list[str]:
        """Ports the box could write to (other clients' inputs; ``own`` adds ours)."""

    @abstractmethod
    def open_input(self, name: str, callback: RawCallback) -> InputHandle: ...

    @abstractmethod
    def open_output(self, name: str) -> OutputHandle: ...

    @abstractmethod
    def open_virtual_input(self, name: str, callback: RawCallback) -> InputHandle: ...

    @abstractmethod
    def open_virtual_output(self, name: str) -> OutputHandle: ...

    def is_own(self, name: str) -> bool:
        client = port_key(name).split(":", 1)[0]
        base = self.client_name
        return client == base or bool(re.fullmatch(re.escape(base) + r"-\d+", client))

    def close(self) -> None:
        """Release whatever the backend holds open for listing."""


class PortError(Exception):
    """A MIDI system or port could not be opened; the message says what to fix."""


# --- python-rtmidi ---------------------------------------------------------------------------

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
        """Hand over what rtmidi queued (at most ``limit`` messages); how many there were."""
        with self._lock:
            midi_in = self._in
            count = 0
            while midi_in is not None and count < limit:
                event = midi_in.get_message()
                if event is None:
                    break
                data, delta = event
                self.callback(data, self.arrival.stamp(delta))
                count += 1
            return count

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
        self._backend._release(self._backend._spare_out, out)


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

    QUEUE = 1024

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


# --- the ports the box plays through ---------------------------------------------------------

@dataclass
class PortStats:
    received: int = 0
    sent: int = 0
    bad_messages: int = 0
    reconnects: int = 0
    dropped: int = 0  #: inputs beyond the rate limit


@dataclass
class _Connection:
    name: str
    handle: InputHandle | OutputHandle


class MidiPorts:
    """Inputs and outputs chosen by name patterns, kept connected across unplug/replug.

    ``on_message(message, t)`` is called from the input poller with the arrival time on
    time.monotonic's clock (from the MIDI system's own stamps). ``send(message)`` goes to
    every connected output and the virtual output, once per port.
    """

    def __init__(self, backend: PortBackend, inputs: Sequence[str] = (),
                 outputs: Sequence[str] = (), *, virtual: bool = False,
                 on_message: MessageCallback | None = None, scan_interval: float = 0.5,
                 ignore: Sequence[str] = ("Midi Through",),
                 quiet: Callable[[], None] | None = None) -> None:
        self.backend = backend
        self.quiet = quiet
        self.ignore = list(ignore)
        self.input_patterns = list(inputs)
        self.output_patterns = list(outputs)
        self.virtual = virtual
        self.on_message = on_message
        self.scan_interval = scan_interval
        self.stats = PortStats()
        self._inputs: dict[str, _Connection] = {}
        self._outputs: dict[str, _Connection] = {}
        self._virtual_in: InputHandle | None = None
        self._virtual_out: OutputHandle | None = None
        self._virtual_in_name = self._virtual_out_name = ""
        self._lock = threading.Lock()          # guards the connection tables
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_missing: tuple = ()

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        if self.virtual and hasattr(self.backend, "virtual_names"):
            self._virtual_in = self.backend.open_virtual_input("in", self._raw_in)
            self._virtual_out = self.backend.open_virtual_output("out")
            self._virtual_in_name, self._virtual_out_name = self.backend.virtual_names()
            log.info("virtual MIDI ports open: %s (play into it), %s (drums out)",
                     self._virtual_in_name, self._virtual_out_name)
        elif self.virtual:
            # Learn the names the MIDI system gave our ports (JACK numbers clashing clients).
            before = set(self.backend.destinations(own=True))
            self._virtual_in = self.backend.open_virtual_input("in", self._raw_in)
            self._virtual_in_name = _new_port(before, self.backend.destinations(own=True),
                                              f"{self.backend.client_name}:in")
            before = set(self.backend.sources(own=True))
            self._virtual_out = self.backend.open_virtual_output("out")
            self._virtual_out_name = _new_port(before, self.backend.sources(own=True),
                                               f"{self.backend.client_name}:out")
            log.info("virtual MIDI ports open: %s (play into it), %s (drums out)",
                     self._virtual_in_name, self._virtual_out_name)
        self.scan()
        self._thread = threading.Thread(target=self._watch, name="midi-hotplug", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            handles = [c.handle for c in (*self._inputs.values(), *self._outputs.values())]
            handles += [h for h in (self._virtual_in, self._virtual_out) if h is not None]
            self._inputs.clear()
            self._outputs.clear()
            self._virtual_in = self._virtual_out = None
        for handle in handles:
            _quietly(handle.close)
        _quietly(self.backend.close)

    # -- what is connected --------------------------------------------------------------------
    def connected(self) -> dict[str, list[str]]:
        with self._lock:
            ins = [c.name for c in self._inputs.values()]
            outs = [c.name for c in self._outputs.values()]
        if self._virtual_in is not None:
            ins.append(f"{self._virtual_in_name} (virtual)")
        if self._virtual_out is not None:
            outs.append(f"{self._virtual_out_name} (virtual)")
        return {"inputs": ins, "outputs": outs}

    # -- output -------------------------------------------------------------------------------
    def send(self, message: mido.Message) -> None:
        data = message.bytes()
        with self._lock:
            handles = [c.handle for c in self._outputs.values()]
        if self._virtual_out is not None:
            handles.append(self._virtual_out)
        # Handles that share one port (JACK: patches of the box's one output) send once.
        sinks: dict[int, Any] = {}
        for handle in handles:
            sink = getattr(handle, "sink", handle)
            if sink is not None:
                sinks.setdefault(id(sink), sink)
        for sink in sinks.values():
            try:
                sink.send(data)
                self.stats.sent += 1
            except Exception as exc:  # a port pulled between two scans
                log.debug("send failed: %s", exc)

    # -- input --------------------------------------------------------------------------------
    def _raw_in(self, data: list[int], t: float) -> None:
        try:
            message = mido.Message.from_bytes(data)
        except (ValueError, TypeError, IndexError):
            self.stats.bad_messages += 1
            if self.stats.bad_messages in (1, 10, 100) or self.stats.bad_messages % 10000 == 0:
                log.warning("ignored %d malformed MIDI message(s) from USB, e.g. %s; the "
                            "box plays on (a faulty device or cable if it keeps growing)",
                            self.stats.bad_messages, bytes(data[:8]).hex(" "))
            return
        self.stats.received += 1
        if self.on_message is not None:
            try:
                self.on_message(message, t)
            except Exception:
                log.exception("MIDI input handler failed on %s", message)

    # -- hotplug ------------------------------------------------------------------------------
    def _watch(self) -> None:
        while not self._stop.wait(self.scan_interval):
            if getattr(self.backend, "gone", False):
                log.error("the MIDI system went away (JACK server stopped): USB MIDI is off "
                          "until groovebox is restarted; DIN and the beat carry on")
                return
            try:
                self.scan()
            except Exception:
                log.exception("MIDI port scan failed; trying again")

    def _wait_quiet(self) -> None:
        """rtmidi holds the GIL while it talks to the MIDI system: wait for a gap between
        two notes (``quiet``, from the player) so that the drums are never late for it."""
        if self.quiet is not None:
            try:
                self.quiet()
            except Exception:
                log.debug("quiet gate failed", exc_info=True)

    def scan(self) -> None:
        """Close ports that vanished, open the ones that match and are not open yet."""
        self._wait_quiet()
        sources = self.backend.sources()
        destinations = self.backend.destinations()
        self._sync(self._inputs, sources, self.input_patterns, "input")
        self._sync(self._outputs, destinations, self.output_patterns, "output")
        missing = tuple(
            [("input", p) for p in self.input_patterns
             if not any(self._wanted(n, [p]) for n in sources)]
            + [("output", p) for p in self.output_patterns
               if not any(self._wanted(n, [p]) for n in destinations)])
        if missing and (missing, tuple(sources), tuple(destinations)) != self._last_missing:
            for kind, pattern in missing:
                there = sources if kind == "input" else destinations
                what = (f"no MIDI {kind} to connect to yet" if _is_wildcard(pattern)
                        else f"no MIDI {kind} matches {pattern!r} yet")
                log.warning("%s; waiting. %ss now: %s", what, kind,
                            ", ".join(map(repr, there)) or "none")
        self._last_missing = (missing, tuple(sources), tuple(destinations)) if missing else ()

    def _wanted(self, name: str, patterns: list[str]) -> bool:
        """A port is wanted when a pattern matches it; a bare ``*`` skips the ``ignore``
        list (ALSA's Midi Through would loop the drums back into the groove)."""
        for pattern in patterns:
            if not matches(pattern, name) and not _is_wildcard(pattern):
                continue
            if _is_wildcard(pattern) and any(matches(i, name) for i in self.ignore):
                continue
            return True
        return False

    def _sync(self, table: dict[str, _Connection], available: list[str],
              patterns: list[str], kind: str) -> None:
        present = set(available)
        with self._lock:
            current = list(table.items())
        # Gone from the list, or (JACK) replugged between two scans so that the connection
        # went with the old port although the name is back: close, and open again below.
        gone = [key for key, c in current
                if c.name not in present or not getattr(c.handle, "alive", lambda: True)()]
        with self._lock:
            closing = [table.pop(key) for key in gone if key in table]
        for c in closing:
            if c.name in present:
                log.warning("MIDI %s %r was replugged; reconnecting", kind, c.name)
            else:
                log.warning("MIDI %s %r gone; will reconnect when it is back", kind, c.name)
            self._wait_quiet()
            _quietly(c.handle.close)
        for name in available:
            if name in table or not self._wanted(name, patterns):
                continue
            self._wait_quiet()
            try:
                handle = (self.backend.open_input(name, self._raw_in) if kind == "input"
                          else self.backend.open_output(name))
            except PortError as exc:
                log.warning("%s", exc)
                continue
            with self._lock:
                table[name] = _Connection(name, handle)
            self.stats.reconnects += 1
            log.info("MIDI %s connected: %r", kind, name)


def _new_port(before: set[str], after: list[str], fallback: str) -> str:
    new = [port_key(n) for n in after if n not in before]
    return new[0] if len(new) == 1 else fallback


def _is_wildcard(pattern: str) -> bool:
    return pattern.strip() in ("*", "")


def _quietly(fn: Callable[[], object]) -> None:
    try:
        fn()
    except Exception as exc:
        log.debug("ignored while closing: %s", exc)

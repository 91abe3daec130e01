"""USB MIDI ports, chosen by name, reconnected when they come back.

Written like gpiozero: :class:`MidiPorts` (the musician-facing object) works against an
abstract :class:`~appliance.io.midi.backend.PortBackend`. The real ones:
:class:`~appliance.io.midi.rtmidi_backend.RtMidiBackend` (python-rtmidi, a port per
connection; what the Pi uses on ALSA) and :class:`~appliance.io.midi.jack.JackBackend`
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

from dataclasses import dataclass, field
import logging
import threading
import time
from typing import Callable, Generic, Sequence, TypeVar

import mido

from appliance.io.midi.backend import (InputHandle, OutputHandle, PortBackend, PortError, RawCallback,
                                       VirtualPorts, matches, port_key)

log = logging.getLogger(__name__)

#: (message, arrival time, input): the input's port name, or "" where the box cannot tell its
#: inputs apart (its own virtual port; a backend whose inputs merge, as JACK's patched one)
MessageCallback = Callable[[mido.Message, float, str], None]


# --- the ports the box plays through ---------------------------------------------------------

@dataclass
class PortStats:
    sent: int = 0
    bad_messages: int = 0


@dataclass
class LogBudget:
    """Lines an outside source triggers (a port plugged, gone, missing), per kind: ``burst`` of
    them as they come, then one every ``every_s`` (a token bucket), each saying how many like it
    were left out since: a USB cable that flaps wrote 8 lines a second (a fault hunt), while a
    keyboard unplugged and plugged back now and then is still logged every time. The last line
    left out of a kind is said once nothing more of the kind came for ``settle_s``
    (:meth:`settle`), so the log ends on how things stayed."""

    burst: int = 6
    every_s: float = 30.0
    settle_s: float = 5.0
    clock: Callable[[], float] = time.monotonic
    _tokens: dict[str, tuple[float, float]] = field(default_factory=dict)   # kind -> (tokens, when)
    _skipped: dict[str, int] = field(default_factory=dict)
    _pending: dict[str, tuple[float, int, str, tuple[object, ...]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def say(self, kind: str, level: int, text: str, *args: object) -> None:
        """Log ``text % args`` now if the kind's budget allows, else keep it as the kind's last word."""
        with self._lock:
            now = self.clock()
            tokens, then = self._tokens.get(kind, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) / self.every_s)
            if tokens < 1.0:
                self._tokens[kind] = (tokens, now)
                self._skipped[kind] = self._skipped.get(kind, 0) + 1
                self._pending[kind] = (now, level, text, args)
                return
            self._tokens[kind] = (tokens - 1.0, now)
            self._pending.pop(kind, None)
            skipped = self._skipped.pop(kind, 0)
        log.log(level, text + _left_out(skipped), *args)

    def withdraw(self, kind: str) -> None:
        """The kind's last word left out no longer holds (a pattern missing that now matches)."""
        with self._lock:
            self._pending.pop(kind, None)

    def settle(self) -> None:
        """Say each kind's last line left out once ``settle_s`` passed without another."""
        with self._lock:
            now = self.clock()
            due = [(kind, line) for kind, line in self._pending.items() if now - line[0] >= self.settle_s]
            said = []
            for kind, (_, level, text, args) in due:
                del self._pending[kind]
                said.append((level, text + _left_out(self._skipped.pop(kind, 0) - 1), args))
        for level, text, args in said:
            log.log(level, text, *args)


def _left_out(skipped: int) -> str:
    return f" ({skipped} more like it left out of the log)" if skipped > 0 else ""


Handle = TypeVar("Handle", InputHandle, OutputHandle)


@dataclass
class _Connection(Generic[Handle]):
    name: str
    handle: Handle


class _PortTable(Generic[Handle]):
    """The connections of one direction (inputs or outputs), kept in line with the port list:
    a port that vanished (or lost its connection) is closed, one that matches is opened."""

    def __init__(self, kind: str, patterns: Sequence[str], ignore: Sequence[str],
                 open_port: Callable[[str], Handle],
                 quiet: Callable[[], None], budget: LogBudget) -> None:
        self.kind = kind
        self.budget = budget
        self.patterns = list(patterns)
        self.ignore = list(ignore)
        self.open_port: Callable[[str], Handle] = open_port
        self.quiet = quiet
        self.lock = threading.Lock()
        self.table: dict[str, _Connection[Handle]] = {}

    def names(self) -> list[str]:
        with self.lock:
            return [c.name for c in self.table.values()]

    def handles(self) -> list[Handle]:
        with self.lock:
            return [c.handle for c in self.table.values()]

    def take_all(self) -> list[Handle]:
        with self.lock:
            handles = [c.handle for c in self.table.values()]
            self.table.clear()
        return handles

    def wanted(self, name: str, patterns: Sequence[str] | None = None) -> bool:
        """A port is wanted when a pattern matches it; a bare ``*`` skips the ``ignore``
        list (ALSA's Midi Through would loop the drums back into the groove)."""
        for pattern in self.patterns if patterns is None else patterns:
            if not matches(pattern, name) and not _is_wildcard(pattern):
                continue
            if _is_wildcard(pattern) and any(matches(i, name) for i in self.ignore):
                continue
            return True
        return False

    def missing(self, available: list[str]) -> list[tuple[str, str]]:
        """(kind, pattern) for every pattern that matches no port there is."""
        return [(self.kind, p) for p in self.patterns
                if not any(self.wanted(n, [p]) for n in available)]

    def sync(self, available: list[str]) -> None:
        present = set(available)
        with self.lock:
            current = list(self.table.items())
        # Gone from the list, or (JACK) replugged between two scans so that the connection
        # went with the old port although the name is back: close, and open again below.
        gone = [key for key, c in current if c.name not in present or not c.handle.alive()]
        with self.lock:
            closing = [self.table.pop(key) for key in gone if key in self.table]
        for c in closing:
            if c.name in present:
                self.budget.say(self._kind(c.name), logging.WARNING, "MIDI %s %r was replugged; reconnecting",
                                self.kind, c.name)
            else:
                self.budget.say(self._kind(c.name), logging.WARNING,
                                "MIDI %s %r gone; will reconnect when it is back", self.kind, c.name)
            self.quiet()
            _quietly(c.handle.close)
        for name in available:
            if name in self.table or not self.wanted(name):
                continue
            self.quiet()
            try:
                handle = self.open_port(name)
            except PortError as exc:
                self.budget.say(self._kind(name), logging.WARNING, "%s", exc)
                continue
            with self.lock:
                self.table[name] = _Connection(name, handle)
            self.budget.say(self._kind(name), logging.INFO, "MIDI %s connected: %r", self.kind, name)

    def _kind(self, name: str) -> str:
        """A port's lines share one budget, whatever ALSA's numbers for it this time."""
        return f"{self.kind}:{port_key(name)}"


class MidiPorts:
    """Inputs and outputs chosen by name patterns, kept connected across unplug/replug.

    ``on_message(message, t, input)`` is called from the input poller with the arrival time on
    time.monotonic's clock (from the MIDI system's own stamps) and the input it came in on
    (:data:`MessageCallback`). ``send(message)`` goes to
    every connected output and the virtual output, once per port.
    """

    def __init__(self, backend: PortBackend, inputs: Sequence[str] = (),
                 outputs: Sequence[str] = (), *, virtual: bool = False,
                 on_message: MessageCallback | None = None, scan_interval: float = 0.5,
                 ignore: Sequence[str] = ("Midi Through",),
                 quiet: Callable[[], None] | None = None,
                 reopen: Callable[[], PortBackend] | None = None,
                 retry_max_s: float = 5.0) -> None:
        self.backend = backend
        self.reopen = reopen            #: a new backend once a MIDI system that died is back
        self.retry_max_s = retry_max_s
        self.quiet = quiet
        self.virtual = virtual
        self.on_message = on_message
        self.scan_interval = scan_interval
        self.stats = PortStats()
        self.budget = LogBudget()       #: how often a port's comings and goings are logged
        self._inputs: _PortTable[InputHandle] = _PortTable("input", inputs, ignore,
                                  lambda name: self.backend.open_input(name, self._raw_from(name)),
                                  self._wait_quiet, self.budget)
        self._outputs: _PortTable[OutputHandle] = _PortTable("output", outputs, ignore,
                                   lambda name: self.backend.open_output(name), self._wait_quiet,
                                   self.budget)
        self._virtual: VirtualPorts | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_missing: tuple = ()
        #: the other clients' ports at the last scan: (sources, destinations); read by status
        self.seen: tuple[list[str], list[str]] = ([], [])

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self._open_virtual()
        self.scan()
        self._thread = threading.Thread(target=self._watch, name="midi-hotplug", daemon=True)
        self._thread.start()

    def _open_virtual(self) -> None:
        if self.virtual:
            self._virtual = self.backend.open_virtual(self._raw_from(""))
            log.info("virtual MIDI ports open: %s (play into it), %s (drums out)",
                     self._virtual.input_name, self._virtual.output_name)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        handles = self._inputs.take_all() + self._outputs.take_all()
        virtual, self._virtual = self._virtual, None
        if virtual is not None:
            handles += [virtual.input, virtual.output]
        for handle in handles:
            _quietly(handle.close)
        _quietly(self.backend.close)

    def leave(self) -> None:
        """The process ends next: stop following ports and leave them to the exit
        (:meth:`PortBackend.leave`)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        _quietly(self.backend.leave)

    # -- what is connected --------------------------------------------------------------------
    def connected(self) -> dict[str, list[str]]:
        ins, outs = self._inputs.names(), self._outputs.names()
        virtual = self._virtual
        if virtual is not None:
            ins.append(f"{virtual.input_name} (virtual)")
            outs.append(f"{virtual.output_name} (virtual)")
        return {"inputs": ins, "outputs": outs}

    @property
    def virtual_names(self) -> tuple[str, str]:
        """The box's own ports (play into the first, the drums come out of the second);
        empty strings when ``virtual`` is off."""
        virtual = self._virtual
        return (virtual.input_name, virtual.output_name) if virtual is not None else ("", "")

    @property
    def stamp_grain(self) -> float:
        """The MIDI system's :attr:`~PortBackend.stamp_grain` (one JACK cycle)."""
        return self.backend.stamp_grain

    @property
    def patterns(self) -> tuple[list[str], list[str]]:
        """The name patterns of the inputs and outputs the box connects to."""
        return list(self._inputs.patterns), list(self._outputs.patterns)

    # -- output -------------------------------------------------------------------------------
    def send(self, message: mido.Message) -> None:
        data = message.bytes()
        handles = self._outputs.handles()
        virtual = self._virtual
        if virtual is not None:
            handles.append(virtual.output)
        # Handles that share one port (JACK: patches of the box's one output) send once.
        sinks: dict[int, OutputHandle] = {}
        for handle in handles:
            sink = handle.sink
            sinks.setdefault(id(sink), sink)
        for sink in sinks.values():
            try:
                sink.send(data)
                self.stats.sent += 1
            except Exception as exc:  # a port pulled between two scans
                log.debug("send failed: %s", exc)

    # -- input --------------------------------------------------------------------------------
    def _raw_from(self, name: str) -> RawCallback:
        """The raw callback of one input, which tells its messages by ``name`` where the
        backend can (:attr:`PortBackend.inputs_merge`)."""
        source = "" if self.backend.inputs_merge else name
        return lambda data, t: self._raw_in(data, t, source)

    def _raw_in(self, data: list[int], t: float, source: str = "") -> None:
        try:
            message = mido.Message.from_bytes(data)
        except (ValueError, TypeError, IndexError):
            self.stats.bad_messages += 1
            if self.stats.bad_messages in (1, 10, 100) or self.stats.bad_messages % 10000 == 0:
                log.warning("ignored %d malformed MIDI message(s) from USB, e.g. %s; the "
                            "box plays on (a faulty device or cable if it keeps growing)",
                            self.stats.bad_messages, bytes(data[:8]).hex(" "))
            return
        if self.on_message is not None:
            try:
                self.on_message(message, t, source)
            except Exception:
                log.exception("MIDI input handler failed on %s", message)

    # -- hotplug ------------------------------------------------------------------------------
    def _watch(self) -> None:
        while not self._stop.wait(self.scan_interval):
            if self.backend.gone:
                if self.reopen is None:
                    log.error("the MIDI system went away (JACK server stopped): USB MIDI is "
                              "off until groovebox is restarted; DIN and the beat carry on")
                    return
                log.error("the MIDI system went away (JACK server stopped): USB MIDI is off "
                          "until it is back; DIN and the beat carry on")
                self._drop_backend()
                if not self._come_back():
                    return
                continue
            try:
                self.scan()
            except Exception:
                log.exception("MIDI port scan failed; trying again")

    def _drop_backend(self) -> None:
        """Forget every connection of a MIDI system that went away (its handles are dead)."""
        self._inputs.take_all()
        self._outputs.take_all()
        self._virtual = None
        self._last_missing = ()
        _quietly(self.backend.close)

    def _come_back(self) -> bool:
        """Try the MIDI system again, 1 s, then 2, 4, … up to ``retry_max_s`` apart, until it
        answers (True) or the ports close (False)."""
        reopen, delay = self.reopen, 1.0
        if reopen is None:
            return False
        while not self._stop.wait(delay):
            self._wait_quiet()
            try:
                backend = reopen()
            except Exception as exc:   # PortError, or the MIDI library's own: not back yet
                log.debug("MIDI system not back yet: %s", exc)
                delay = min(delay * 2, self.retry_max_s)
                continue
            self.backend = backend
            try:
                self._open_virtual()
                self.scan()
            except Exception:
                log.exception("MIDI ports after the MIDI system came back; trying again")
            log.warning("the MIDI system is back: USB MIDI is on again (%s)",
                        "; ".join(f"{kind}: {', '.join(names) or 'waiting'}"
                                  for kind, names in self.connected().items()))
            return True
        return False

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
        self.seen = (list(sources), list(destinations))
        self._inputs.sync(sources)
        self._outputs.sync(destinations)
        missing = tuple(self._inputs.missing(sources) + self._outputs.missing(destinations))
        seen = (missing, tuple(sources), tuple(destinations))
        if missing and seen != self._last_missing:
            for kind, pattern in missing:
                there = sources if kind == "input" else destinations
                what = (f"no MIDI {kind} to connect to yet" if _is_wildcard(pattern)
                        else f"no MIDI {kind} matches {pattern!r} yet")
                self.budget.say(f"missing {kind}:{pattern}", logging.WARNING, "%s; waiting. %ss now: %s",
                                what, kind, ", ".join(map(repr, there)) or "none")
        for table in (self._inputs, self._outputs):
            for pattern in table.patterns:
                if (table.kind, pattern) not in missing:
                    self.budget.withdraw(f"missing {table.kind}:{pattern}")
        self.budget.settle()
        self._last_missing = seen if missing else ()


def _is_wildcard(pattern: str) -> bool:
    return pattern.strip() in ("*", "")


def _quietly(fn: Callable[[], object]) -> None:
    try:
        fn()
    except Exception as exc:
        log.debug("ignored while closing: %s", exc)

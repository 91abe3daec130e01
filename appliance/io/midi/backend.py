"""What a MIDI system must offer the box: the abstract port backend and its handles.

Written like gpiozero's pin factory: :class:`~appliance.io.midi.ports.MidiPorts` works
against :class:`PortBackend`; the real ones are
:class:`~appliance.io.midi.rtmidi_backend.RtMidiBackend` (python-rtmidi, a port per
connection; ALSA on the Pi) and :class:`~appliance.io.midi.jack.JackBackend` (JACK: two
fixed ports, patched); ``appliance.io.midi.backends.open_backend`` picks one.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
import fnmatch
import re
import time
from typing import Callable, Sequence

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
    """An open input: bytes arrive at the callback given to the backend's ``open_input``.

    An implementation must provide :meth:`close`; :meth:`alive` is True unless it knows
    better."""

    @abstractmethod
    def close(self) -> None: ...

    def alive(self) -> bool:
        """Still connected. False when the port came back under its name between two scans
        but the connection went with the old one (JACK); :class:`MidiPorts` reopens it."""
        return True


class OutputHandle(ABC):
    """An open output. An implementation must provide :meth:`send` and :meth:`close`;
    :meth:`alive` and :attr:`sink` have defaults that suit a port of its own."""

    @abstractmethod
    def send(self, data: Sequence[int]) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    def alive(self) -> bool:
        """Still connected (see :meth:`InputHandle.alive`)."""
        return True

    @property
    def sink(self) -> "OutputHandle":
        """The port these bytes leave through. Handles that share one port (JACK: patches
        of the box's one output) return the same sink, and :class:`MidiPorts` sends each
        message once per sink."""
        return self


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


PEDALS = range(64, 70)   #: sustain, portamento, sostenuto, soft, legato, hold 2: every value counts, in its place


def latest_controls(batch: list[tuple[list[int], float]]) -> list[tuple[list[int], float]]:
    """A batch of raw messages with each control change that a later one of the same controller
    and channel, on the same side of 64, makes stale left out (:func:`stale_controls`)."""
    stale = stale_controls([data for data, _ in batch])
    return [item for k, item in enumerate(batch) if k not in stale]


def stale_controls(batch: Sequence[Sequence[int]]) -> set[int]:
    """Which of a batch of raw messages are control changes that a later one of the same
    controller and channel, on the same side of 64, makes stale: a knob turned (or automated)
    faster than the box reads it is read at its newest value, not worked through message by
    message (a fault harness's 6,000 a second left the box 36 s behind the keyboard), while a
    pad's press and release both stay. Pedals (``PEDALS``) are left as they are: a half-damper
    sustain pedal's press moved past a note-off would let that key ring."""
    stale: set[int] = set()
    newer: dict[tuple[int, int], bool] = {}   # (status, controller) → the side of 64 its next kept value is on
    for k in range(len(batch) - 1, -1, -1):
        data = batch[k]
        if len(data) == 3 and data[0] & 0xF0 == 0xB0 and data[1] not in PEDALS:
            key, high = (data[0], data[1]), data[2] >= 64
            if newer.get(key) == high:
                stale.add(k)
                continue
            newer[key] = high
    return stale


@dataclass(frozen=True)
class VirtualPorts:
    """The box's own ports that other programs connect to, and the names they show."""

    input: InputHandle
    output: OutputHandle
    input_name: str
    output_name: str


class PortBackend(ABC):
    """The abstract factory: what a MIDI system must offer the box.

    An implementation must provide :meth:`sources`, :meth:`destinations` (the port names
    there are now), :meth:`open_input`, :meth:`open_output` (a connection to one of them),
    :meth:`open_virtual_input` and :meth:`open_virtual_output` (a port of the box's own
    that others connect to). It may override :meth:`open_virtual` (when it knows its own
    ports' names), :attr:`gone` (when the MIDI system can vanish under it), :attr:`stamp_grain`
    (when its times come in steps coarser than a millisecond; read from the input threads, so a
    value kept, not a call into the MIDI system), :meth:`is_own`, :meth:`close` and
    :meth:`leave`. Every method is called from the hotplug thread, never the player.
    """

    #: the name our own ports show under, so that the box never connects to itself
    client_name: str = "groovebox"
    #: "alsa" or "jack": which connect tool a person uses (aconnect, jack_connect)
    api: str = ""
    #: True where every input comes in on one port of ours (JACK's patched input), so a message
    #: cannot be told by the device it came from; rtmidi's port per connection can
    inputs_merge: bool = False

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

    def open_virtual(self, callback: RawCallback) -> VirtualPorts:
        """Both virtual ports, named as the MIDI system shows them (it may number a client
        whose name is taken, so the names are learned from what appeared)."""
        before = set(self.destinations(own=True))
        midi_in = self.open_virtual_input("in", callback)
        in_name = _new_port(before, self.destinations(own=True), f"{self.client_name}:in")
        before = set(self.sources(own=True))
        midi_out = self.open_virtual_output("out")
        out_name = _new_port(before, self.sources(own=True), f"{self.client_name}:out")
        return VirtualPorts(midi_in, midi_out, in_name, out_name)

    @property
    def gone(self) -> bool:
        """True once the MIDI system itself went away (a JACK server stopped): nothing can
        be opened until the box restarts."""
        return False

    @property
    def stamp_grain(self) -> float:
        """How coarse, in seconds, the times are at which messages leave and are stamped
        arriving; 0 where finer than a millisecond (ALSA's sequencer)."""
        return 0.0

    def is_own(self, name: str) -> bool:
        client = port_key(name).split(":", 1)[0]
        base = self.client_name
        return client == base or bool(re.fullmatch(re.escape(base) + r"-\d+", client))

    def close(self) -> None:
        """Release whatever the backend holds open for listing."""

    def leave(self) -> None:
        """The process ends next: stop reading, and leave to the exit what it takes down anyway
        (JackBackend leaves its ports: unregistering one can crash libjack). Closes by default."""
        self.close()


class PortError(Exception):
    """A MIDI system or port could not be opened; the message says what to fix."""


class NoServer(PortError):
    """The MIDI system is not there at all (no JACK server answers), as opposed to one that
    answers and refuses."""


def _new_port(before: set[str], after: list[str], fallback: str) -> str:
    new = [port_key(n) for n in after if n not in before]
    return new[0] if len(new) == 1 else fallback

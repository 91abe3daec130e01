"""The box's own drums heard back: a drum machine with MIDI thru (or echo) on returns every
note the box sends it, byte for byte, and heard as the player's they would join the groove: the
drummer listening to itself.

A note-on heard on an input with the channel, note and velocity of one the box sent less than
``ECHO_S`` before *matches* it (each sent note once per input). An input whose notes have matched
``ARM`` times within ``ARMED_S`` is one that echoes: from then on what matches there (note-offs
on channel and note) is the box's own and is dropped (``MidiRouting.on_input``), and what does
not match (the drum machine's own pads, a keyboard on the same cable) is heard. Until then
nothing is dropped: a drum map may put its drums on the keyboard's own channel (volca-drum's
kick is middle C on channel 1), and a player's note that happens to fall on a drum hit is the
player's."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
import threading
import time
from typing import Callable

import mido

ECHO_S = 0.1          #: a note heard this soon after the box sent the same one may be its echo
KEPT_S = 0.5          #: how long a sent note is kept (an input thread held up reads its notes late)
ARM = 4               #: matches on one input ...
ARMED_S = 2.0         #: ... within this long make it an input that echoes the box


def _key(message: mido.Message) -> tuple[str, int, int, int]:
    """(on or off, channel, note, velocity); an off's velocity is left out (a note-on at velocity
    0, running status on the way back, is an off too)."""
    if message.type == "note_on" and message.velocity > 0:
        return ("on", message.channel, message.note, message.velocity)
    return ("off", message.channel, message.note, 0)


@dataclass
class _Sent:
    at: float
    key: tuple[str, int, int, int]
    matched: set[str] = field(default_factory=set)    #: the inputs it came back on


class OwnNotes:
    """The notes the box sent in the last ``ECHO_S``, and whether one heard is one of them
    coming back on an input that echoes the box."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._sent: deque[_Sent] = deque()
        self._matches: dict[str, deque[float]] = {}    #: per input, when its notes matched
        self._lock = threading.Lock()      # the player sends, the input threads hear

    def sent(self, message: mido.Message) -> None:
        if message.type in ("note_on", "note_off"):
            now = self.clock()
            with self._lock:
                self._forget(now)
                self._sent.append(_Sent(now, _key(message)))

    def _forget(self, now: float) -> None:
        while self._sent and now - self._sent[0].at > KEPT_S:
            self._sent.popleft()

    def echoes(self, source: str) -> bool:
        """Whether ``source`` has lately sent the box's notes back (ARM matches in ARMED_S)."""
        with self._lock:
            return self._armed(source, self.clock())

    def _armed(self, source: str, now: float) -> bool:
        times = self._matches.get(source)
        while times and now - times[0] > ARMED_S:
            times.popleft()
        return times is not None and len(times) >= ARM

    def heard_back(self, message: mido.Message, t: float, source: str = "") -> bool:
        """Whether ``message`` (arrived at ``t`` on ``source``) is the box's own, to be dropped."""
        if message.type not in ("note_on", "note_off"):
            return False
        key = _key(message)
        with self._lock:
            self._forget(t)
            sent = next((s for s in self._sent if s.key == key and source not in s.matched
                         and -0.01 <= t - s.at <= ECHO_S), None)
            if sent is None:
                return False
            sent.matched.add(source)
            if key[0] == "on":
                self._matches.setdefault(source, deque(maxlen=4 * ARM)).append(t)
            return self._armed(source, t)

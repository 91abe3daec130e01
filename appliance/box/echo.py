"""The box's own drums heard back: a drum machine with MIDI thru (or echo) on returns every
note the box sends it, byte for byte, and heard as the player's they would join the groove: the
drummer listening to itself.

A note-on heard on an input with the channel, note and velocity of one the box sent less than
``ECHO_S`` before *matches* it (each sent note once per input; sent notes are kept ``KEPT_S``).
An input whose last ``ARM`` note-ons all matched, each as late as the one before within
``LAG_SLACK`` (an echo's way back takes the same few milliseconds every time; a player's timing
does not; on JACK, within one cycle more, since a note leaves at the next cycle's start and is
stamped arriving with its cycle's time), is one that echoes, until ``ARMED_S`` pass without a match or a match comes at
another lag: there, what matches is the box's own and is dropped (``MidiRouting.on_input``), and
so is the note-off of a note-on dropped; what does not match (the drum machine's own pads, a
keyboard on the same cable) is heard. Until then nothing is dropped: a drum map may put its
drums on the keyboard's own channel (volca-drum's kick is middle C on channel 1), and a player's
note that happens to fall on a drum hit is the player's."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
import threading
import time
from typing import Callable

import mido

ECHO_S = 0.1          #: a note heard this soon after the box sent the same one may be its echo
KEPT_S = 0.5          #: how long a sent note is kept (an input thread held up reads its notes late)
ARM = 4               #: note-ons in a row that match make an input one that echoes the box ...
ARMED_S = 8.0         #: ... until this long passes without a match (a few bars at the slowest)
LAG_SLACK = 0.006     #: ... each as late as the last within this, and one MIDI system cycle more (``grain``)


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

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 grain: Callable[[str], float] = lambda source: 0.0) -> None:
        self.clock = clock
        self.grain = grain       #: how coarse an input's times are (PortBackend.stamp_grain)
        self._sent: deque[_Sent] = deque()
        self._run: dict[str, int] = {}           #: per input, its note-ons that matched in a row
        self._last: dict[str, float] = {}        #: per input, when a note of it last matched
        self._lag: dict[str, float] = {}         #: per input, how late that match came
        self._held: dict[str, set[tuple[int, int]]] = {}   #: per input, (channel, note) dropped on
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
        if now - self._last.get(source, -ARMED_S - 1.0) > ARMED_S:
            self._run[source] = 0
        return self._run.get(source, 0) >= ARM

    def heard_back(self, message: mido.Message, t: float, source: str = "") -> bool:
        """Whether ``message`` (arrived at ``t`` on ``source``) is the box's own, to be dropped."""
        if message.type not in ("note_on", "note_off"):
            return False
        key = _key(message)
        with self._lock:
            self._forget(t)
            sent = next((s for s in self._sent if s.key == key and source not in s.matched
                         and -0.01 <= t - s.at <= ECHO_S), None)
            self._armed(source, t)                    # a run gone stale starts again
            held = self._held.setdefault(source, set())
            if key[0] == "off":
                if sent is None or key[1:3] not in held:
                    return False                   # its note-on was heard: so is its note-off
                sent.matched.add(source)
                held.discard(key[1:3])
                return True
            if sent is None:
                return False            # a player's note or a pad between the echoes breaks no run
            sent.matched.add(source)
            lag = t - sent.at
            steady = abs(lag - self._lag.get(source, lag)) <= LAG_SLACK + self.grain(source)
            self._run[source] = self._run.get(source, 0) + 1 if steady else 1
            self._last[source], self._lag[source] = t, lag
            if self._run[source] < ARM:
                return False
            held.add(key[1:3])
            return True

"""The keys that sound: keys held down, and keys let go under the sustain pedal.

A chord the hands hold is no rest (:meth:`Keys.held`). One that rings under the pedal (CC 64 at
64 or over is down, as General MIDI has it; :meth:`Keys.sounding`) is none while the groove goes
on under it; the engine counts a rest once the player has left out more of the groove than that
(a stab left ringing while the band stops). How far the last chord rang (:meth:`Keys.last_rang_to`)
tells a push tied over the bar line from a figure's short last note.
"""
from __future__ import annotations

import threading

import mido

from appliance.core.groove import STEPS_PER_BAR

SUSTAIN = 64                   #: the sustain pedal's controller
ALL_NOTES_OFF = (120, 123)     #: all sound off, all notes off: nothing sounds on the channel after them
RESET_CONTROLLERS = 121        #: lifts the pedal
HELD_FOR = 4 * STEPS_PER_BAR   #: a key sounding longer than this (a stuck note or pedal) no longer keeps a rest away
MAX_HELD = 128                 #: keys tracked as sounding at once
CHORD = 0.5                    #: steps within which keys struck belong to one chord (a rolled or sloppy one too)

Key = tuple[int, int]          #: (channel, note)


class Keys:
    """Which keys sound, and where each was struck (steps)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()          # the MIDI thread writes, the player's thread reads
        self._down: dict[Key, float] = {}      # keys held down → where they were struck
        self._pedalled: dict[Key, float] = {}  # keys let go under the pedal → where they were struck
        self._pedal: set[int] = set()          # channels whose pedal is down
        self._chord: float | None = None       # where the last chord was struck
        self._rang_to: float | None = None     # ... and where it stopped sounding (None: it sounds)

    def press(self, channel: int, note: int, position: float) -> None:
        key = (channel, note)
        with self._lock:
            self._pedalled.pop(key, None)
            if len(self._down) < MAX_HELD or key in self._down:
                self._down[key] = position
            if self._chord is None or position - self._chord > CHORD:
                self._chord = position
            self._rang_to = None

    def hear(self, message: mido.Message, position: float | None = None) -> None:
        """A note-off, or a controller: the pedal, or all notes off; ``position`` (steps) is
        where it came, for how far the last chord rang (None: not known, as at once)."""
        with self._lock:
            if message.type == "note_on" or message.type == "note_off":
                key = (message.channel, message.note)
                struck = self._down.pop(key, None)
                if struck is not None and message.channel in self._pedal and len(self._pedalled) < MAX_HELD:
                    self._pedalled[key] = struck
            elif message.type == "control_change":
                if message.control == SUSTAIN and message.value >= 64:
                    self._pedal.add(message.channel)
                elif message.control in (SUSTAIN, RESET_CONTROLLERS, *ALL_NOTES_OFF):
                    self._pedal.discard(message.channel)
                    self._let_go(self._pedalled, message.channel)
                    if message.control in ALL_NOTES_OFF:
                        self._let_go(self._down, message.channel)
            self._follow_chord(position)

    def relocate(self, position: float) -> None:
        """The song jumped to ``position``: keys still sounding count as struck there (a stuck one
        still goes after ``HELD_FOR``), and the last chord is forgotten (it rang elsewhere)."""
        with self._lock:
            for keys in (self._down, self._pedalled):
                for key in keys:
                    keys[key] = position
            self._chord = self._rang_to = None

    def last_rang_to(self, position: float) -> float | None:
        """Where the last chord struck stopped sounding (``position`` while it sounds; None
        before any was struck)."""
        with self._lock:
            if self._chord is None:
                return None
            return position if self._rang_to is None else self._rang_to

    def _follow_chord(self, position: float | None) -> None:
        """After a key or the pedal let go: once no key of the last chord sounds, it rang to here."""
        chord = self._chord
        if chord is None or self._rang_to is not None:
            return
        if any(struck >= chord for struck in (*self._down.values(), *self._pedalled.values())):
            return
        self._rang_to = chord if position is None else max(chord, position)

    def held(self, position: float) -> bool:
        """True while a key held down by the hands, struck less than ``HELD_FOR`` steps ago, sounds."""
        with self._lock:
            return any(position - struck < HELD_FOR for struck in self._down.values())

    def sounding(self, position: float) -> bool:
        """True while a key struck less than ``HELD_FOR`` steps ago still sounds."""
        with self._lock:
            return any(position - struck < HELD_FOR
                       for struck in (*self._down.values(), *self._pedalled.values()))

    def sounding_since(self, position: float, since: float) -> bool:
        """True while a key struck from ``since`` on (less than ``HELD_FOR`` steps ago) still sounds:
        one of a chord struck there, not one left down long before it."""
        with self._lock:
            return any(since <= struck and position - struck < HELD_FOR
                       for struck in (*self._down.values(), *self._pedalled.values()))

    @staticmethod
    def _let_go(keys: dict[Key, float], channel: int) -> None:
        for key in [key for key in keys if key[0] == channel]:
            del keys[key]

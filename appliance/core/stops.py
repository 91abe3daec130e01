"""Stop time: the band hits the 1 of each bar together and lays out for the rest of it.

A drummer who hears the band stop after one short hit on a bar's 1, and then the same again on
the next bar's 1, knows it is stop time: from that second hit on, the drums play
each hit with the band (a crash and a kick) and lay out between them (at the second hit, from
its "and" of 1, ``LAYS_OUT``: that hit may be the band back in after a one-bar stop, whose first
beat then keeps its groove up to the next chord), and groove back in the moment the player
plays anything else. The first hit of a stop cannot be told from a one-off
band hit (the form goes on after it, "Crash phrasing"), so the drums play through the first
bar, as a drummer reading no chart would. Stop time follows a bar the band played (``PLAYED``
chords or more); hits from the player's first bar on, or after a bar of one chord, are how the
part goes (a sparse comp), not a stop: the drums groove to them.

A hit is every note from a sixteenth before a bar line (``HIT_EARLY``: a push) to before the
"and" of 1 (``HIT_LATE``); it is short when no key of it sounds ``HIT_RINGS`` steps past its
first note (a chord held longer, a whole note or one under the pedal, is a breakdown or a pad:
the band plays on under it). A bar with no note keeps stop time (the band is still out), and so
does a pickup in a bar's last beat (``PICKUP_FROM``), into the next hit: the drums play it with
the band and lay out again at the hit. A note anywhere else ends stop time, as does a hit that
rang long.
"""
from __future__ import annotations

from enum import Enum, auto
import math

from appliance.core.groove import STEPS_PER_BAR, STEPS_PER_BEAT
from appliance.core.keys import CHORD

HIT_EARLY = 1.0    #: steps before a bar line a hit on its 1 may come (a sixteenth's push)
HIT_LATE = 1.5     #: steps after the bar line up to which a note is still the hit (before the "and" of 1)
HIT_RINGS = 4.0    #: steps a hit may sound (a beat); longer is a held chord, not a stop
PICKUP_FROM = 3 * STEPS_PER_BEAT - HIT_EARLY   #: notes from a bar's last beat on (a 16th early) lead into the next hit: stop time goes on
LAYS_OUT = 2.0     #: steps after its bar line the drums lay out from at the second hit (the "and" of 1): the time it takes to hear it
PLAYED = 2         #: chords (notes more than ``CHORD`` apart) in the bar before the first hit: the band played it

__all__ = ["HIT_EARLY", "HIT_LATE", "HIT_RINGS", "LAYS_OUT", "PICKUP_FROM", "PLAYED", "Heard", "StopTime", "hit_downbeat"]


def hit_downbeat(position: float) -> int:
    """The bar line (step) a note at ``position`` is the hit of, if it is one (a push belongs to the next)."""
    return math.floor((position + HIT_EARLY) / STEPS_PER_BAR) * STEPS_PER_BAR


class Heard(Enum):
    """What a note tells about stop time."""
    STOPS = auto()      #: the second lone hit in a row: stop time begins with it
    HIT = auto()        #: the next hit in stop time
    PICKUP = auto()     #: a pickup in the bar's last beat, into the next hit: the drums play it with the band
    PLAYS_ON = auto()   #: stop time is over: the band plays again


class StopTime:
    """Follows the notes of each bar (absolute step positions) to hear stop time."""

    def __init__(self) -> None:
        self.stopped = False              #: in stop time: the drums play the hits (and pickups) only
        self._bar: int | None = None      # the downbeat (step) of the bar the last note fell in
        self._hit: float | None = None    # where that bar's hit began (None: it had none)
        self._rang = math.inf             # ... how long the hit sounded (inf: not known yet)
        self._body = False                # ... a note fell between its hit and its last beat
        self._chords = 0                  # ... chords struck in it
        self._struck = -math.inf          # where the last chord was struck
        self._played_before = False       # the bar before that one was played by the band

    def hear(self, position: float, rang_to: float | None) -> Heard | None:
        """A note-on at ``position``. ``rang_to``: where the last chord struck before it stopped
        sounding (``Keys.last_rang_to``; the note's own position while it still sounds)."""
        downbeat = hit_downbeat(position)
        where = position - downbeat
        same_bar = downbeat == self._bar
        if same_bar and where < HIT_LATE and self._hit is not None:
            return None                     # another note of the hit (a chord, a rolled one)
        if self._hit is not None and self._rang == math.inf and rang_to is not None:
            self._rang = rang_to - self._hit   # the first note after the hit: how long the hit rang
        chord = position - self._struck > CHORD
        self._struck = position if chord else self._struck
        if same_bar:
            self._chords += chord
            if where >= PICKUP_FROM:
                return Heard.PICKUP if self.stopped else None
            self._body = True
            return self._play_on()
        return self._new_bar(downbeat, position, where < HIT_LATE)

    def _new_bar(self, downbeat: int, position: float, on_the_one: bool) -> Heard | None:
        """The first note of a bar: is it the next hit of stop time?"""
        stop_bar = self._hit is not None and not self._body and self._rang <= HIT_RINGS   # the last bar with notes
        follows = self._bar == downbeat - STEPS_PER_BAR
        lone = stop_bar and follows and self._played_before
        self._played_before = follows and not stop_bar and self._chords >= PLAYED
        self._bar, self._hit, self._rang = downbeat, position if on_the_one else None, math.inf
        self._body, self._chords = False, 1
        if not on_the_one or not stop_bar:
            return self._play_on()
        if self.stopped:
            return Heard.HIT                # after a bar with no note too: the band is still out
        if lone:
            self.stopped = True
            return Heard.STOPS
        return None

    def _play_on(self) -> Heard | None:
        if not self.stopped:
            return None
        self.stopped = False
        return Heard.PLAYS_ON

"""Stop time: the band hits the 1 of each bar together and lays out for the rest of it.

A drummer who hears the band stop after one short hit on a bar's 1, and then the same again on
the next bar's 1, knows it is stop time. From that second hit on, the drums play each hit with
the band (a crash and a kick), lay out between them, play the band's pickups into the next hit
on the snare (``PICKUP_LEVEL``), and groove back in with the player's next note anywhere else.

- The first hit is played through: it cannot be told from a one-off band hit, whose form goes
  on ("Crash phrasing"). At the second hit the drums lay out from its "and" of 1 (``LAYS_OUT``),
  the time it takes to hear it; that hit may be the band back in after a one-bar stop.
- A hit is every note from a sixteenth before a bar line, a touch more (``HIT_EARLY``: a push),
  to before the "and" of 1 (``HIT_LATE``), no key of it sounding ``HIT_RINGS`` steps on. A chord
  held longer (a whole note, a pad, a bass held under the stab, one under the pedal) is no stop:
  the drums come back in as soon as it has sounded that long (:meth:`StopTime.rings`).
- Stop time follows a bar the band played (``PLAYED`` chords or more) and begins at the second
  hit after a stab (``START_RINGS``) with nothing after it but a pickup line of single notes,
  a bar on, or two if both hits stand out (``ACCENTED``; hits every other bar, a pickup in the
  bar between or not): hits from the player's first bar on are a sparse comp, a short chord on
  1 and another on 4, bar after bar, a comp figure, one dry chord a bar a ballad, and one every
  other bar at the band's level the changes. Once in it, a bar with no note keeps it (the band
  is still out), and so does a pickup in a bar's last beat (``PICKUP_FROM``) or the band's fill
  from the "and" of 2 (``FILL_FROM``; in a hit's bar two bars running, a figure: the band plays).
  A line's last note ahead of the bar line is the line's, not the hit pushed (``LINE``), unless
  it is louder or has more keys than the note before (``LINE_ACCENT``).
- The answer's crash and kick go out unless the pattern's went out with the hit already, at
  ``ANSWERED`` of the answer's level or more (the second hit's downbeat is sent before it is heard).
"""
from __future__ import annotations

from enum import Enum, auto
import math

from appliance.core.groove import STEPS_PER_BAR, STEPS_PER_BEAT
from appliance.core.keys import CHORD

HIT_EARLY = 1.25   #: steps before a bar line a hit on its 1 may come (a sixteenth's push, a touch early)
HIT_LATE = 1.5     #: steps after the bar line up to which a note is still the hit (before the "and" of 1)
HIT_RINGS = 4.0    #: steps a hit may sound (a beat); longer is a held chord, not a stop
START_RINGS = 3.0  #: ... and the hit before stop time's first one, a stab (a dotted eighth; a dry ballad's chords ring longer)
PICKUP_FROM = 3 * STEPS_PER_BEAT - 1.0   #: notes from a bar's last beat on (a 16th early) lead into the next hit: stop time goes on
FILL_FROM = 1.5 * STEPS_PER_BEAT - 1.0   #: ... and, once in stop time, from the "and" of 2 on (a 16th early): the band's fill into the next hit, once
LINE = 1.75        #: a note this close (steps) after the one before, the third of such a run or later (in stop time, ...
LINE_EARLY = 0.5   #: ... any after a pickup), is the line's last, not the next hit pushed, this far (steps) ahead of the bar line
LINE_ACCENT = 1.15  #: ... unless it is this much louder than the note before, or has more keys than it (the band's push)
ACCENTED = 1.2     #: hits every other bar begin stop time only this loud against the bar the band played before
LAYS_OUT = 2.0     #: steps after its bar line the drums lay out from at the second hit (the "and" of 1): the time it takes to hear it
PICKUP_LEVEL = 0.8  #: a pickup's snare, against a hit's level
ANSWERED = 0.6      #: a crash or kick that went out with the hit this loud against the answer's (or more) is not struck again (a softer one is struck again)
PLAYED = 2         #: chords (notes more than ``CHORD`` apart) in the bar before the first hit: the band played it

__all__ = ["HIT_EARLY", "HIT_LATE", "HIT_RINGS", "START_RINGS", "LAYS_OUT", "PICKUP_FROM", "FILL_FROM", "LINE", "LINE_EARLY", "LINE_ACCENT", "ACCENTED", "PICKUP_LEVEL", "ANSWERED", "PLAYED", "Heard", "StopTime", "hit_downbeat"]


def hit_downbeat(position: float) -> int:
    """The bar line (step) a note at ``position`` is the hit of, if it is one (a push belongs to the next)."""
    return math.floor((round(position, 6) + HIT_EARLY) / STEPS_PER_BAR) * STEPS_PER_BAR


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
        self._rang: float | None = None   # ... how long the hit sounded (None: not known yet)
        self._rang_long: bool | None = None   # ... a key of it still sounded a beat on (None: not heard yet)
        self._body = False                # ... a note fell between its hit and its last beat
        self._pickup_notes = 0            # ... notes in its last beat ...
        self._pickup_chords = 0           # ... struck as this many chords (more notes: a chord among them)
        self._chords = 0                  # ... chords struck in it
        self._struck = -math.inf          # where the last chord was struck
        self._played_before = False       # the bar before that one was played by the band ...
        self._played_level = 0.0          # ... at this mean velocity
        self._loudness = (0, 0)           # the bar's velocities summed, and its notes
        self._hit_level = (0, 0)          # its hit's velocities summed, and its notes
        self._gap: int | None = None      # the bar after the hit's, with only a pickup in it (the hit's bar goes on)
        self._filled = False              # in stop time, the bar had a fill before its last beat ...
        self._filled_before = False       # ... and so had the bar before: a figure, not a fill
        self._run = 0                     # chords in a row so far, each within LINE of the one before
        self._line = False                # the last chord is a line's last, ahead of the bar line
        self._keys = (0, 0)               # keys in the chord before and in this one
        self._velocity = 0                # the first key's velocity of the chord before

    def hear(self, position: float, rang_to: float | None, velocity: int = 100) -> Heard | None:
        """A note-on at ``position`` (``velocity`` 1..127). ``rang_to``: where the last chord
        struck before it stopped sounding (``Keys.last_rang_to``; the note's own position while
        it still sounds)."""
        position = round(position, 6)       # a render's exact sixteenths, back from seconds
        downbeat = hit_downbeat(position)
        chord = position - self._struck > CHORD
        self._line_or_push(position, downbeat, chord, velocity)
        if self._line:
            downbeat -= STEPS_PER_BAR       # a line's last sixteenth into the bar line, not a push of its hit
        where = position - downbeat
        same_bar = downbeat in (self._bar, self._gap)
        if same_bar and where < HIT_LATE and self._hit is not None:
            self._hit_level = (self._hit_level[0] + velocity, self._hit_level[1] + 1)
            return None                     # another note of the hit (a chord, a rolled one)
        if self._hit is not None and self._rang is None and rang_to is not None:
            self._rang = rang_to - self._hit   # the first note after the hit: how long the hit rang
        self._struck = position if chord else self._struck
        if not same_bar and not self._gap_pickup(downbeat, where):
            return self._new_bar(downbeat, position, where < HIT_LATE, velocity)
        self._chords += chord
        self._loudness = (self._loudness[0] + velocity, self._loudness[1] + 1)
        in_gap = downbeat == self._gap       # (a fill there, between hits every other bar, is no figure)
        fill = self.stopped and not self._body and where >= FILL_FROM and (in_gap or not self._filled_before)
        if where >= PICKUP_FROM or fill:
            self._filled |= where < PICKUP_FROM and not in_gap
            self._pickup_notes += 1
            self._pickup_chords += chord
            return Heard.PICKUP if self.stopped and chord else None   # once a chord
        self._body = True
        return self._play_on()

    def _line_or_push(self, position: float, downbeat: int, chord: bool, velocity: int) -> None:
        """Whether a note ahead of the bar line ends the line before it (``_line``) or is the next
        hit pushed: decided at a chord's first key, and again when it gets more keys than the
        chord before (a single-note pickup, then the band's chord pushed)."""
        if not chord:
            self._keys = (self._keys[0], self._keys[1] + 1)
            self._line = self._line and self._keys[1] <= self._keys[0]
            return
        close = position - self._struck <= LINE
        run = self._run >= 1 or (self.stopped and self._pickup_notes > 0)
        self._line = (close and run and position <= downbeat - LINE_EARLY
                      and hit_downbeat(self._struck) < downbeat   # (the chord before in the bar before)
                      and velocity < LINE_ACCENT * self._velocity)
        self._run = self._run + 1 if close else 0
        self._keys, self._velocity = (self._keys[1], 1), velocity

    def _gap_pickup(self, downbeat: int, where: float) -> bool:
        """A note in the bar after a stop bar, in its last beat (in stop time, from ``FILL_FROM``):
        that bar is one with no note but a pickup into the next hit (hits every other bar)."""
        threshold = FILL_FROM if self.stopped else PICKUP_FROM
        if self._bar is None or downbeat != self._bar + STEPS_PER_BAR or where < threshold or not self._stop_bar():
            return False
        self._gap = downbeat
        return True

    def _stop_bar(self) -> bool:
        """The last bar's was a hit and nothing else but, at most, a pickup; short enough to be a stop."""
        rang = self._rang
        return (self._hit is not None and not self._body and self._rang_long is not True
                and rang is not None and rang <= HIT_RINGS)

    @property
    def hit(self) -> float | None:
        """Where the last bar's hit began (None: the bar had none)."""
        return self._hit

    def due(self, position: float) -> bool:
        """Whether the hit's ring is to be heard at ``position`` (:meth:`rings`): cheap, no lock."""
        hit = self._hit
        return hit is not None and self._rang_long is None and self._rang is None and position >= hit + HIT_RINGS

    def rings(self, position: float, sounding: bool) -> Heard | None:
        """The clock at ``position``, ``HIT_RINGS`` or more past the hit (:meth:`due`): a key struck
        with it still ``sounding`` (``Keys.sounding_since``: a bass held under the stab too) makes
        the hit a held chord, and ends stop time at once."""
        if not self.due(position):
            return None
        self._rang_long = sounding   # (if not, how long it rang is heard at the next note)
        return self._play_on() if sounding else None

    def _new_bar(self, downbeat: int, position: float, on_the_one: bool, velocity: int) -> Heard | None:
        """The first note of a bar: is it the next hit of stop time?"""
        stop_bar = self._stop_bar()
        follows = self._bar == downbeat - STEPS_PER_BAR
        # stop time begins on a stab (START_RINGS), after a bar the band played, with at most a
        # pickup line after it (a chord in the last beat is a comp figure's: a chord on 1 and on 4),
        # the bar before this one's, or the one before that if both hits stand out (hits every
        # other bar; sparse chords every other bar are a ballad's, or the changes)
        hit_level = self._hit_level[0] / max(1, self._hit_level[1])
        accented = min(hit_level, velocity) >= ACCENTED * self._played_level
        lone = (stop_bar and (follows or (self._bar == downbeat - 2 * STEPS_PER_BAR and accented))
                and self._played_before and self._rang is not None and self._rang <= START_RINGS
                and self._pickup_notes == self._pickup_chords)
        self._played_before = follows and not stop_bar and self._chords >= PLAYED
        if self._played_before:
            self._played_level = self._loudness[0] / max(1, self._loudness[1])
        self._bar, self._hit, self._rang, self._gap = downbeat, position if on_the_one else None, None, None
        self._body, self._rang_long, self._pickup_notes, self._pickup_chords, self._chords = False, None, 0, 0, 1
        self._loudness, self._hit_level = (velocity, 1), (velocity, 1)
        self._filled_before, self._filled = self._filled and follows, False   # (a bar of no note between: no figure)
        if not on_the_one or not stop_bar:
            return self._play_on()
        if self.stopped:
            return Heard.HIT                # after a bar with no note too: the band is still out
        if lone:
            self.stopped = True
            return Heard.STOPS
        return None

    def _play_on(self) -> Heard | None:
        """Stop time is over, if it was on (then ``PLAYS_ON``)."""
        if not self.stopped:
            return None
        self.stopped = False
        return Heard.PLAYS_ON

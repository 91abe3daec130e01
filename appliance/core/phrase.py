"""Phrasing: a drummer's crash marks where a phrase begins, and a fill where one ends, not every
pass of the loop.

The model, asked for two bars at a time, often puts a crash on beat 1; looped, that is a crash
on every other bar for as long as the groove lasts (the reviewer heard 21 bars in a row). A
drummer crashes where something begins, and the player tells the box where that is:

- **Marked downbeats.** The downbeat where the player comes in (the first note since the start
  or a clear), the first downbeat of a new section (the looper's section change) and the one
  where the player comes back from a rest get a crash; the pattern's own if it has one there,
  else one is added, as loud as the loudest hit on that step. A mark less than 4 bars after
  the last marked crash is let go (a return from a rest and the new section heard in it are
  one event).
  The looper hears a new section when its first pass ends, so that crash lands on the loop
  point where the drums change to follow it, a pass into the player's new section.
- **Otherwise seldom.** Any other crash plays only if the last crash is at least ``every``
  bars back (default 8), and on a downbeat only where a phrase begins (with fill phrasing);
  one that may not moves to the ride on the same step when the pattern keeps time on the ride,
  and is left out when it keeps time on the hats.

- **The time stays on one cymbal.** A drummer keeps time on the closed hat or on the ride
  through a phrase and moves to the other where a crash marks a new one (the chorus on the
  ride). Where the player first comes in, the first bar plays as the patterns come (they hear
  a beat or a bar of the groove), and on the next downbeat the time goes to the cymbal they
  kept it on most in that bar. From then on, a bar that keeps time on the other cymbal
  (``timekeeper``: ``KEEPS_TIME`` hits a bar or more, the ride or the closed hat off it; the bar
  that plays: the pattern's own, its groove bar standing in for its fill bar, a made fill) has
  those hits played on the one the phrase keeps. The time moves with the pattern at a crash
  on a downbeat the player marked (a new section, a return from a rest). Once the patterns
  have kept time on the other cymbal through most of the last pass (``LEANS``), it moves at any
  crash on a downbeat, and, in the phrase from where the player comes in or back
  (``SETTLING``), at any downbeat, once: there the groove is still coming together. A ride pattern
  passing through a verse does not take the time at a timed crash, nor do patterns that change
  cymbal every bar.

``every`` 0 plays the pattern's crashes and cymbals as they are and marks nothing. The phrasing works on
whatever pattern plays, a frozen one too: freeze holds the pattern, the crashes still phrase.

Fills and toms are phrased the same way. The model's two bars often hold a tom or two, or a
groove bar and a fill bar (appliance.core.fills.fill_bar); looped, that is a tom lick every other
bar for as long as the groove lasts. A drummer grooves and fills where a phrase ends. Phrases
count from the song's bar 1 (again after a jump), and from the downbeat where the player comes
in or back from a rest (:meth:`Phrasing.begin`) or the drummer joined a new section (:meth:`Phrasing.section`). The last bar of every ``every`` bars (default 8; 2 · ``fill_every`` when ``every`` is 0), and the bar
before a marked downbeat known by then, is a big phrase end: the pattern's fill bar plays there,
else its made fill (``Pattern.fill``), and the downbeat after it is marked for a crash, welcome
when the last crash is ``every`` bars back (a return from a rest always gets its own; a pickup's
landing back into the form, :meth:`Phrasing.lands`, does not put it off). The last bar of the other ``fill_every`` phrases is a small one:
the pattern's fill bar, else the made fill's pickup (its last beat only; none for a one-beat
fill). A phrase-end bar plays from the pattern it began with: a pattern that comes in during it
waits for the next bar, as a drummer finishes a fill. Elsewhere a fill bar gives way to the groove bar, and any other bar plays without its
toms. Toms that repeat from bar to bar (appliance.core.fills.tom_groove) play as they are.
``fill_every`` 0 plays the model's toms as they are.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from enum import Enum, auto

import numpy as np

from appliance.core.fills import FILL_VOICES, TOMS, accent_level, fill_bar, pickup, tom_groove, tom_hits
from appliance.core.groove import HIT, OFFSET, STEPS, STEPS_PER_BAR, STEPS_PER_BEAT, VELOCITY, VOICES, Pattern

CRASH = VOICES.index("crash")
RIDE = VOICES.index("ride")
CLOSED_HAT = VOICES.index("closed_hat")
KEEPS_TIME = 3                     #: ride or closed-hat hits a bar that keep time
LEANS = 0.75                       #: share of the last pass's steps (those keeping time) that want the
                                   #: other cymbal before a crash the player did not mark moves the time
SETTLING = 2 * STEPS               #: steps from the bar where the player comes in or back in which
                                   #: the time settles: it moves at a downbeat, crash or not
MARK_WINDOW = STEPS_PER_BEAT / 2   #: a note this close to a bar line (steps) marks that bar line
COMES_IN_BY = STEPS_PER_BEAT + 1.5   #: a player who comes in no later than this into a bar (steps:
                                     #: beat 2's "e", give or take a 32nd) comes in on that bar, after a
                                     #: rest on beat 1; from the "and" of 2 on, early or late, it is a pickup
RUN_GAP = 2.75                     #: steps between the notes of a run: an eighth swung up to 2:1, give or take
                                   #: a 64th (a funk riff's dotted eighth, 3, is no run)
ONSET_SPREAD = 0.5                 #: notes this close (steps, a 32nd) are one onset: a chord, a little rolled
BUILD_ONSETS = 4                   #: a run back from beat 2 of this many onsets or more ...
BUILD_RISE = 20                    #: ... whose loudest notes rise this much (velocity) from the first onset to the
BUILD_DIP = 4                      #: ... last, none more than this softer than the one before, builds into the 1
MARKS_APART = 2 * STEPS            #: steps from a marked crash to the next (4 bars: a return from
                                   #: a rest and the new section the looper hears in it are one)


_BIG, _SMALL = object(), object()   #: the two kinds of phrase end (Phrasing._phrase_end)
_BEGINS, _SECTION, _FILL, _LIFT = object(), object(), object(), object()   #: what marks a downbeat for a crash


def marked_downbeat(position: float) -> int:
    """The downbeat a note at ``position`` marks: the bar line within half a beat of it (a note
    played a little early or late), else the next bar line (a pickup, or a note mid-bar)."""
    nearest = round(position / STEPS_PER_BAR) * STEPS_PER_BAR
    if abs(position - nearest) <= MARK_WINDOW:
        return int(nearest)
    return int(math.ceil(position / STEPS_PER_BAR) * STEPS_PER_BAR)


def entry_downbeat(position: float) -> int:
    """The downbeat a player who comes in (or back) at ``position`` begins: the bar line within
    half a beat of it; the bar line before it for a note up to ``COMES_IN_BY`` into the bar (the
    part rests on beat 1: reggae's 2, a comp on the "a" of 1); else the next (a pickup)."""
    downbeat = marked_downbeat(position)
    if downbeat - position > MARK_WINDOW and position - (downbeat - STEPS_PER_BAR) <= COMES_IN_BY:
        return downbeat - STEPS_PER_BAR
    return downbeat


def run_lands(entry: int, latest: float, position: float) -> bool | None:
    """Whether the notes of a player who came in by beat 2's "e" of the bar at ``entry`` run on
    into the next bar line, with the note at ``position`` after the run's ``latest``: True when it
    lands there (within a 32nd: the run was a pickup, a keys fill into the band's return), False
    when the run broke off (more than ``RUN_GAP`` between two notes: a part that rests on beat 1,
    a reggae skank) or went past the bar line (a part that rests on every 1), None while it runs
    on."""
    bar_line = entry + STEPS_PER_BAR
    if not 0.0 <= position - latest <= RUN_GAP or position > bar_line + 0.5:
        return False
    return True if position >= bar_line - 0.5 else None


@dataclass
class Onset:
    """Notes of a run that begin together (within ``ONSET_SPREAD``): a note, or a chord."""

    at: float                        #: where its first note fell (steps)
    pitches: set[int]                #: its notes
    loudest: int                     #: its loudest note's velocity


class Ran(Enum):
    """What the notes of a ``Run`` turned out to be (``Run.hear``)."""

    PICKUP = auto()   #: they landed on the next bar line as a pickup, a keys fill into the band's return
    FIGURE = auto()   #: they landed there as the groove's own figure taken up again
    OFF = auto()      #: they broke off, or went past the bar line


@dataclass
class Run:
    """The notes of a player who came in or back by beat 2's "e" of the bar at ``entry``, while
    they run on toward the next bar line (``run_lands``)."""

    entry: int                       #: the bar line they came in on (absolute step)
    latest: float                    #: the latest note's position (steps)
    onsets: list[Onset] = field(default_factory=list)   #: the run's onsets before the one that lands
    first_off: bool = False          #: the first onset's first note fell off the groove's steps
    off: bool = False                #: ... and a later onset's
    back_inside: bool = False        #: back into the form, toward a bar line inside a phrase

    def hear(self, position: float, pitch: int, velocity: int, on_groove: bool) -> Ran | None:
        """A note of the run at ``position`` (``on_groove``: on one of the groove's steps): what
        the run turned out to be (``Ran``), or None while it runs on. The groove's own figure: every onset on the
        groove's steps, the landing note too, but the first when it is a chord and the run goes
        ``back_inside`` (the hit a player comes back into the form with where the figure has
        none, on beat 2, then the figure; a lick's first note, or a stab that leads a pump into
        a phrase's first bar, the band's return, still makes it a pickup), some onset playing an
        earlier one's notes again (a comp repeats its chord, an arpeggio its notes; a walk-up, a
        scale or a line moves on every onset), and no build (a crescendo into the 1)."""
        lands = run_lands(self.entry, self.latest, position)
        self.latest = position
        if lands is False:
            return Ran.OFF
        if lands:
            pickup = self._off() or not on_groove or not self._repeats() or self._builds()
            return Ran.PICKUP if pickup else Ran.FIGURE
        last = self.onsets[-1] if self.onsets else None
        if last is not None and position - last.at <= ONSET_SPREAD:
            last.pitches.add(pitch)   # a chord's later notes, a roll: where its first note fell counts
            last.loudest = max(last.loudest, velocity)
        else:
            self.off = self.off or not on_groove
            self.onsets.append(Onset(position, {pitch}, velocity))
        return None

    def _off(self) -> bool:
        """Some onset fell off the groove's steps; the first may, as a chord (a hit) back inside a phrase."""
        return self.off or (self.first_off and not (self.back_inside and len(self.onsets[0].pitches) >= 2))

    def _repeats(self) -> bool:
        """Some onset plays an earlier onset's notes again."""
        played = [frozenset(onset.pitches) for onset in self.onsets]
        return len(set(played)) < len(played)

    def _builds(self) -> bool:
        """A crescendo: the onsets' loudest notes rise ``BUILD_RISE`` or more over ``BUILD_ONSETS`` or
        more onsets, none more than ``BUILD_DIP`` softer than the one before."""
        loudest = [onset.loudest for onset in self.onsets]
        return (len(loudest) >= BUILD_ONSETS and loudest[-1] - loudest[0] >= BUILD_RISE
                and all(b >= a - BUILD_DIP for a, b in zip(loudest, loudest[1:])))


class Phrasing:
    """Decides, step by step, which crashes play and where a fill goes (the player's thread; the
    player's lock)."""

    def __init__(self, every: int = 8, fill_every: int = 4) -> None:
        self.every = every
        self.fill_every = fill_every
        self.lift = 1.0   # how much louder than the pattern a big fill ends and the crash after it plays (dynamics.lift)
        self.quiet = False   # the band has stopped for a while (Player.resting): no crash but a mark's
        self._marks: dict[int, object] = {}   # marked downbeat → what marks it (_BEGINS, _SECTION, _FILL, _LIFT)
        self._lifted: int | None = None   # a lift's crash played here; the form counts from it once confirmed
        self._last: int | None = None     # absolute step of the last crash played
        self._last_mark: int | None = None   # ... of the last one the player marked
        self._last_fill: int | None = None   # ... and of the last one after a big fill
        self._landing: int | None = None  # the downbeat a pickup lands the player back into the form on (lands)
        self._landed: tuple[int, int | None] | None = None   # the crash played there, and the last before it
        self.start = 0                    # absolute step of the song's bar 1 (Player.phrase_from)
        self.origin = 0                   # where phrases count from: the start, a return, a section
        self._fill_of: Pattern | None = None   # the pattern _fill describes (held: no id reuse)
        # its own fill bar; whether its toms are phrased; the pickup of its made fill
        self._fill: tuple[int | None, bool, np.ndarray | None] = (None, False, None)
        self._end_bar: tuple[tuple[int, int], Pattern] | None = None   # (origin, bar) of the phrase end playing, its pattern
        self._stroke: tuple[int, float] | None = None   # absolute step and velocity of a fill's latest stroke
        self._keeper: int | None = None   # the voice the phrase keeps time on (RIDE or CLOSED_HAT)
        self._came_in: int | None = None   # the downbeat of the bar where the player came in or back
        self._settles_by = 0                # ... and the step by which the time has settled there
        self._wanted: deque[int | None] = deque(maxlen=STEPS)   # the cymbal the patterns kept time on, the last pass
        self._kept = {RIDE: 0, CLOSED_HAT: 0}   # ... counted
        self._late: object | None = None   # the mark of a crash played late (welcome_late), not yet heard here
        self._begun: int | None = None     # the downbeat the player last came in or back on (begin)
        self._back_in: int | None = None   # ... came back into the form on, phrases counting on (back_in)
        # came_in_late's downbeat, and the _last and _last_mark it replaced (undone by was_a_pickup)
        self._came_late: tuple[int, int | None, int | None] | None = None
        # fill()'s last step, the pattern its cells came from, which bar of it (0, 1, "fill", "pickup")
        # and that bar's steps when made (Pattern.fill, the pickup)
        self._played: tuple[int, Pattern, int | str, np.ndarray | None] | None = None
        self._keeper_of: Pattern | None = None   # the pattern _pattern_keepers describes
        self._pattern_keepers: dict[int | str, int | None] = {}   # the voice each of its bars keeps time on

    def mark(self, downbeat: int, begins: bool = False, lift: bool = False) -> None:
        """A crash is welcome on this downbeat (absolute step), not yet scheduled: the player comes
        in or back there (``begins``), or a new section begins; ``lift``: the band lifts there (a
        louder chord on a phrase head), a crash that moves the form's count only once
        :meth:`confirm_lift` says the band stayed up (a one-off push does not)."""
        if self.every or self.fill_every:
            if self._marks.get(downbeat) is not _BEGINS:
                self._marks[downbeat] = _BEGINS if begins else _LIFT if lift else _SECTION

    def confirm_lift(self, downbeat: int) -> None:
        """The band stayed up after a lift marked on ``downbeat``: if its crash played (and the form's
        own was not due there anyway), the form's crashes count from there (the chorus's own phrases)."""
        if self._lifted == downbeat and (self._last is None or self._last < downbeat):
            self._last = downbeat
        self._lifted = None

    def fill(self, step: int, pattern: Pattern) -> np.ndarray:
        """The cells [voices, 3] of ``pattern`` that play at absolute ``step``: its own, except that
        toms and fills play only where a phrase ends (see the module's doc)."""
        own = step % STEPS
        self._played = None
        if not self.fill_every:
            return pattern.steps[own]
        bar = (step - self.origin) // STEPS_PER_BAR
        in_bar = own % STEPS_PER_BAR
        end = self._phrase_end(bar)
        if end is not None:   # a fill is one gesture: a pattern that comes in mid-bar waits for the bar's end
            if self._end_bar is not None and self._end_bar[0] == (self.origin, bar):
                pattern = self._end_bar[1]
            else:
                self._end_bar = ((self.origin, bar), pattern)
            self._played = (step, pattern, own // STEPS_PER_BAR, None)
        steps = pattern.steps
        if self._fill_of is not pattern:
            made = None if pattern.fill is None else pickup(steps, pattern.fill)
            self._fill_of = pattern
            self._fill = (fill_bar(steps), bool(tom_hits(steps).any()) and not tom_groove(steps), made)
        fill, phrased, small = self._fill
        if end is not None:
            cells = self._end_cells(end, bar, pattern, own)
            if cells is not None:
                if fill is not None:
                    self._played = (step, pattern, fill, None)
                elif end is _BIG and pattern.fill is not None:
                    self._played = (step, pattern, "fill", pattern.fill)
                elif end is _SMALL:
                    self._played = (step, pattern, "pickup", small)
                if end is _BIG and self.lift > 1.0:
                    cells = rising(cells, self.lift ** ((in_bar + 1) / STEPS_PER_BAR))
                hit = cells[list(FILL_VOICES), HIT] >= 0.5
                if hit.any():   # the crash after a fill is as loud as its last stroke
                    self._stroke = (step, float(cells[list(FILL_VOICES), VELOCITY][hit].max()))
                return cells
        if not phrased:
            return steps[own]  # no toms, or a tom groove
        if fill is not None:
            self._played = (step, pattern, 1 - fill, None)
        cells = steps[own] if fill is None else steps[in_bar + STEPS_PER_BAR * (1 - fill)]
        if not (cells[TOMS, HIT] >= 0.5).any():
            return cells
        cells = cells.copy()
        cells[TOMS] = 0.0
        return cells

    def _end_cells(self, end: object, bar: int, pattern: Pattern, own: int) -> np.ndarray | None:
        """What a phrase-end bar plays at step ``own`` of ``pattern``: its fill bar, else its made
        fill (big) or pickup (small), else, at a big end, its own step; None: as inside a phrase."""
        fill, _, small = self._fill
        in_bar = own % STEPS_PER_BAR
        if end is _BIG and self.every and (fill is not None or pattern.fill is not None):
            self._marks.setdefault(self.origin + (bar + 1) * STEPS_PER_BAR, _FILL)   # a crash after it
        if fill is not None:
            return pattern.steps[in_bar + STEPS_PER_BAR * fill]
        made = pattern.fill if end is _BIG else small
        if made is not None:
            return made[in_bar]
        return pattern.steps[own] if end is _BIG else None

    @property
    def big_every(self) -> int:
        """Bars from one big fill to the next: ``every`` (the crash after each comes on time: a
        12-bar blues fills into each chorus), or 2 · ``fill_every`` with crashes as they come, or
        ``every`` shorter than a phrase (a code review: crash_every 2 filled every other bar)."""
        return self.every if self.every >= self.fill_every else 2 * self.fill_every

    def _phrase_end(self, bar: int) -> object | None:
        """_BIG for the last bar of every :attr:`big_every` bars and the bar before a marked
        downbeat, _SMALL for the last bar of the other phrases, None inside a phrase."""
        after = self.origin + (bar + 1) * STEPS_PER_BAR
        kind = self._marks.get(after)
        if (bar + 1) % self.big_every == 0 or (
                kind is not None and (not self.every or self._mark_allowed(after, kind))):
            return _BIG
        return _SMALL if (bar + 1) % self.fill_every == 0 else None

    def song_from(self, step: int) -> None:
        """The song's bar 1 is at absolute ``step``: phrases count from it, and again after a jump."""
        self.start = self.origin = step
        self._begun = self._back_in = self._came_late = None

    def begin(self, downbeat: int) -> None:
        """The player comes in, or back from a rest, on this downbeat: phrases count from it, and
        a section the looper heard just before (its join still to come) was this."""
        self.origin = self._begun = downbeat
        self._lifted = None
        self._marks = {step: kind for step, kind in self._marks.items()
                       if kind is not _SECTION or step <= downbeat}

    def back_in(self, downbeat: int) -> None:
        """The player comes back into the form in the bar at this downbeat (bars dropped inside a
        phrase, a stop-time hit): phrases count on, and a section the looper hears from now on
        to have begun up to a pass before it or a bar after is that return. (One heard before the
        return note, on its bar's downbeat, has already moved the count: :meth:`begin` takes that
        back for a return that begins phrases, this does not.)"""
        self._back_in = downbeat

    def section(self, downbeat: int, next_step: int) -> None:
        """The looper heard a new section that began on ``downbeat``, a pass ago: the phrase under
        way, counted from it, ends with a big fill and a crash on the downbeat after it (a drummer
        who caught on late joins the section at its next phrase), and phrases count from there. Nothing more when
        phrases already count from there (the player came back from a rest there), or a crash
        already played there (after a big fill, say). Nothing at all without fill phrasing, nor
        for a section the looper heard begin up to a pass before the player came back (the pass
        held the rest and the pickup), or a bar after (a return between two of its passes): the
        return is that event; for a return into the form (:meth:`back_in`), one that began on its
        bar too."""
        begun, back_in = self._begun, self._back_in
        if not self.fill_every or (begun is not None and downbeat != begun
                                   and -STEPS <= downbeat - begun <= STEPS_PER_BAR):
            return
        if back_in is not None and -STEPS <= downbeat - back_in <= STEPS_PER_BAR:
            return
        if downbeat == self.origin or downbeat == self._last:
            self.origin = downbeat
            return
        phrase = self.fill_every * STEPS_PER_BAR
        joins = downbeat + -(-(next_step + STEPS_PER_BAR - downbeat) // phrase) * phrase   # a whole bar ahead at least
        self._marks.setdefault(joins, _SECTION)
        # phrases count from where the drummer joins (the ends before it fall where they would from
        # the section's first downbeat): the next big fill is big_every bars after the join,
        # not fill_every bars after the one that joined. Counting from the section's first downbeat
        # was tried (session 25) and dropped: the looper hears a section on its pass grid, a bar
        # late when the section starts between passes, and a big fill then ran into a chorus's
        # first bar (docs/ARCHITECTURE.md, "Fill phrasing")
        self.origin = joins

    def lands(self, downbeat: int) -> None:
        """The player's pickup lands back into the form on this downbeat (bars dropped inside a
        phrase, the groove's figure after a stop): its crash, marked as the player's, does not put
        off the form's own crash after the next big fill; that one keeps its spacing from the
        crash before."""
        self._landing = downbeat

    def welcome_late(self, downbeat: int, begins: bool = False, lift: bool = False) -> bool:
        """A mark for a downbeat already scheduled: True if a crash is to be added there now
        (none played there, marks a pass apart); the caller plays it late."""
        kind = _BEGINS if begins else _LIFT if lift else _SECTION
        if not self.every or not self._mark_allowed(downbeat, kind) or self._last == downbeat:
            return False
        if kind is _LIFT and not self._due(downbeat):
            self._lifted = downbeat
        else:
            self._crashed(downbeat)
        self._last_mark = downbeat
        self._late = kind   # the time may move with the pattern from the next step, as at the crash
        return True

    def inside_phrase(self, downbeat: int) -> bool:
        """Whether ``downbeat`` falls inside a phrase of ``fill_every`` bars (of ``every`` without
        fill phrasing), counted from where phrases count from, not on its first bar line."""
        phrase = (self.fill_every or self.every) * STEPS_PER_BAR
        return bool(phrase) and (downbeat - self.origin) % phrase != 0

    def came_in_late(self, downbeat: int) -> None:
        """The player came in or back on a downbeat already played (a part that rests on beat 1):
        too late for its crash, but crashes count from it as if one had played there."""
        self._came_late = None
        if self.every and self._mark_allowed(downbeat, _BEGINS) and self._last != downbeat:
            self._came_late = (downbeat, self._last, self._last_mark)
            self._crashed(downbeat)
            self._last_mark = downbeat
            self._late = _BEGINS   # the time may move with the pattern from the next step, as at the crash

    def was_a_pickup(self, downbeat: int) -> None:
        """The notes of the player who came in late in the bar before ``downbeat`` ran on into it:
        a pickup after all. What came_in_late counted from that bar is undone (the caller marks
        ``downbeat``)."""
        came_late, self._came_late = self._came_late, None
        if came_late is not None and came_late[0] == downbeat - STEPS_PER_BAR and self._last == came_late[0]:
            _, self._last, self._last_mark = came_late

    def forget(self) -> None:
        """The song jumped: marks for steps that will not come are dropped; spacing starts over,
        and phrases count from the song's bar 1 again."""
        self._marks.clear()
        self.origin = self.start
        self._last = self._last_mark = self._last_fill = None
        self._lifted = None
        self._landing = self._landed = None
        self._begun = self._back_in = self._came_late = None
        self._keeper = self._came_in = self._late = None
        self._wanted.clear()
        self._kept = {RIDE: 0, CLOSED_HAT: 0}

    def take(self, step: int, cells: np.ndarray, pattern: Pattern) -> np.ndarray:
        """The cells [voices, 3] of absolute ``step`` as they are to be played, ``pattern`` playing:
        its crashes phrased, its time on the cymbal the phrase keeps it on."""
        if not self.every:
            self._marks.pop(step, None)
            return cells
        cells, kind = self._crash(step, cells, pattern)
        return self._keep_time(step, cells, pattern, kind)

    def _keep_time(self, step: int, cells: np.ndarray, pattern: Pattern, kind: object) -> np.ndarray:
        """A drummer keeps time on the ride or the closed hat through a phrase: a bar of a pattern
        keeping it on the other has its hits there moved over. The time moves with the pattern at
        a crash on a downbeat the player marked (``kind``, or a mark played late); and, once the
        patterns have kept it on the other cymbal through ``LEANS`` of the last pass, at any crash
        on a downbeat, or, in the phrase where the player comes in or back (``SETTLING``), at any
        downbeat."""
        played, made = pattern, None
        bar: int | str = step % STEPS // STEPS_PER_BAR       # a bar of the loop, or "fill" (made is the fill)
        if self._played is not None and self._played[0] == step:   # the bar fill() took these cells from
            _, played, bar, made = self._played
        if self._keeper_of is not played:
            self._keeper_of, self._pattern_keepers = played, {}
        if bar not in self._pattern_keepers:
            if made is None:
                assert isinstance(bar, int)
                made = played.steps[bar * STEPS_PER_BAR:(bar + 1) * STEPS_PER_BAR]
            self._pattern_keepers[bar] = timekeeper(made)
        wanted = self._pattern_keepers[bar]
        late, self._late = self._late, None
        if kind is _BEGINS or late is _BEGINS or self._came_in is None:
            self._came_in = step - step % STEPS_PER_BAR   # the time settles again in the phrase from here
            self._settles_by = self._came_in + SETTLING
        downbeat = step % STEPS_PER_BAR == 0
        recent = dict(self._kept)   # how many steps of the pass just played kept time on each cymbal
        if len(self._wanted) == self._wanted.maxlen and self._wanted[0] is not None:
            self._kept[self._wanted[0]] -= 1
        self._wanted.append(wanted)
        if wanted is not None:
            self._kept[wanted] += 1
        if self._keeper is None:   # the first bar plays as it comes; then the cymbal it kept time on most
            if not downbeat or step < self._came_in + STEPS_PER_BAR:
                return cells
            last_bar = list(self._wanted)[-STEPS_PER_BAR - 1:-1]
            rides, hats = last_bar.count(RIDE), last_bar.count(CLOSED_HAT)
            self._keeper = wanted if rides == hats else RIDE if rides > hats else CLOSED_HAT
        if wanted is None or wanted == self._keeper:
            return self._strays(cells, wanted, downbeat)
        crash = downbeat and cells[CRASH, HIT] >= 0.5
        votes = recent[RIDE] + recent[CLOSED_HAT]
        leans = downbeat and votes >= STEPS_PER_BAR and recent[wanted] >= LEANS * votes
        if late is not None or crash and (kind is _BEGINS or kind is _SECTION or kind is _LIFT) or leans and (
                crash or step < self._settles_by):
            self._keeper, self._settles_by = wanted, min(self._settles_by, step)   # settled: once is enough
            return cells
        if cells[wanted, HIT] < 0.5:
            return cells
        cells = cells.copy()
        if cells[self._keeper, HIT] < 0.5 or cells[self._keeper, VELOCITY] < cells[wanted, VELOCITY]:
            cells[self._keeper] = cells[wanted]
        cells[wanted] = 0.0
        return cells

    def _strays(self, cells: np.ndarray, wanted: int | None, downbeat: bool) -> np.ndarray:
        """In a bar kept on the cymbal the phrase keeps, a hit of the other one off the downbeat is
        a stray (a musician's review: 208 of 1,418 hat bars pinged the ride mid-bar, "RhhRhhhh"):
        played on the phrase's cymbal where that one does not play. Where both play, a ride over
        the hat is left out and a hat under the ride stays (the foot's, the pedal hat). The
        downbeat stays as it is (a crash moved to the ride, an accent)."""
        keeper = self._keeper
        if wanted is None or wanted != keeper or downbeat:
            return cells
        other = RIDE if keeper == CLOSED_HAT else CLOSED_HAT
        if cells[other, HIT] < 0.5:
            return cells
        if cells[keeper, HIT] >= 0.5:
            if keeper == RIDE:
                return cells
            cells = cells.copy()
        else:
            cells = cells.copy()
            cells[keeper] = cells[other]
        cells[other] = 0.0
        return cells

    def _crash(self, step: int, cells: np.ndarray, pattern: Pattern) -> tuple[np.ndarray, object | None]:
        """The cells of ``step`` with the crash phrased (see the module's doc), and the mark that
        crashed there (_BEGINS, _SECTION, _FILL; None: no mark's crash)."""
        kind = self._marks.pop(step, None)
        crash = cells[CRASH, HIT] >= 0.5
        if kind is _FILL and self.quiet:
            kind = None   # no crash after a fill while the drums wind down
        if kind is not None and self._mark_allowed(step, kind):
            if kind is _LIFT and not self._due(step):
                self._lifted = step   # the form's count moves only if the band stays up (confirm_lift)
            else:
                self._crashed(step)
            if kind is _FILL:
                self._last_fill = step
            else:
                self._last_mark = step
            # a marked crash is an accent: at least the pattern's, and after a fill at least its last stroke
            floor = accent_level(pattern.steps) * (self.lift if kind is _FILL else 1.0)
            if kind is _FILL and self._stroke is not None and 0 < step - self._stroke[0] <= STEPS_PER_BAR:
                floor = max(floor, self._stroke[1])
            return with_crash(cells, floor), kind
        if not crash:
            return cells, None
        if self.quiet:   # the drums wind down: the pattern's crash goes, and is not counted as played
            cells = cells.copy()
            cells[CRASH] = 0.0
            return cells, None
        mid_phrase = bool(self.fill_every) and step % STEPS_PER_BAR == 0 and (
            (step - self.origin) // STEPS_PER_BAR % self.fill_every != 0)   # a downbeat no phrase begins on
        if not mid_phrase and (self._last is None or step - self._last >= self.every * STEPS_PER_BAR or step < self._last):
            self._last = step
            return cells, None
        cells = cells.copy()
        if pattern.steps[:, RIDE, HIT].any() and cells[RIDE, HIT] < 0.5:
            cells[RIDE] = cells[CRASH]
        cells[CRASH] = 0.0
        return cells, None

    def _due(self, step: int) -> bool:
        """Whether the form's own crash may fall on ``step``: the last one ``every`` bars back or more."""
        return self._last is None or not 0 <= step - self._last < self.every * STEPS_PER_BAR

    def _crashed(self, step: int) -> None:
        """A marked crash plays at ``step``: the last one (a landing's remembers the one before)."""
        self._landed = (step, self._last) if step == self._landing else None
        self._last = step
        self._lifted = None   # a crash since a lift: the form counts from it

    def _mark_allowed(self, step: int, kind: object) -> bool:
        """Marks a pass apart are one event; a player coming back from a rest always gets its
        crash, however close the last crash after a fill; the crash after a fill keeps
        ``every`` bars from the last crash, as any crash the player did not ask for, but for a
        pickup's landing back into the form (:meth:`lands`): from the crash before it."""
        recent = (self._last_mark,) if kind is _BEGINS else (self._last_mark, self._last_fill)
        if kind is _FILL:
            last = self._last
            if self._landed is not None and last == self._landed[0]:   # the last crash was a landing's
                last, recent = self._landed[1], (self._last_fill,)
            if last is not None and 0 <= step - last < self.every * STEPS_PER_BAR:
                return False
        return all(last is None or not 0 <= step - last < MARKS_APART for last in recent)


def timekeeper(steps: np.ndarray) -> int | None:
    """The voice steps [n, voices, 3] keep time on: the ride or the closed hat, with KEEPS_TIME
    or more hits a bar on average (a closed hat under a ride is the pedal); None."""
    rides = steps[:, RIDE, HIT] >= 0.5
    hats = (steps[:, CLOSED_HAT, HIT] >= 0.5) & ~rides
    if max(rides.sum(), hats.sum()) < KEEPS_TIME * len(steps) / STEPS_PER_BAR:
        return None
    return RIDE if rides.sum() >= hats.sum() else CLOSED_HAT


def rising(cells: np.ndarray, by: float) -> np.ndarray:
    """A fill's strokes on one step ``by`` × as loud (at most 127 of 127)."""
    cells = cells.copy()
    voices = list(FILL_VOICES)
    cells[voices, VELOCITY] = np.where(cells[voices, HIT] >= 0.5, np.minimum(cells[voices, VELOCITY] * by, 1.0),
                                       cells[voices, VELOCITY])
    return cells


def with_crash(cells: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """These cells with a crash on the step (the pattern's own, else one added), as loud as the
    loudest hit there (else 0.8), and no softer than ``floor``."""
    cells = cells.copy()
    hits = cells[:, HIT] >= 0.5
    velocity = max(float(cells[hits, VELOCITY].max()) if hits.any() else 0.8, floor)
    offset = float(cells[CRASH, OFFSET]) if hits[CRASH] else float(cells[hits, OFFSET].min()) if hits.any() else 0.0
    cells[CRASH] = (1.0, min(1.0, velocity), offset)
    return cells


__all__ = ["CLOSED_HAT", "CRASH", "KEEPS_TIME", "LEANS", "RIDE", "SETTLING", "Onset", "Phrasing", "Ran", "Run", "entry_downbeat",
           "marked_downbeat", "rising", "run_lands", "timekeeper", "with_crash"]

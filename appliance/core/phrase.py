"""Crash phrasing: a drummer's crash marks where a phrase begins, not every pass of the loop.

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
  bars back (default 8); one closer moves to the ride on the same step when the pattern keeps
  time on the ride, and is left out when it keeps time on the hats.

``every`` 0 plays the pattern's crashes as they are and marks nothing. The phrasing works on
whatever pattern plays, a frozen one too: freeze holds the pattern, the crashes still phrase.
"""
from __future__ import annotations

import math

import numpy as np

from appliance.core.groove import HIT, OFFSET, STEPS, STEPS_PER_BAR, STEPS_PER_BEAT, VELOCITY, VOICES

CRASH = VOICES.index("crash")
RIDE = VOICES.index("ride")
MARK_WINDOW = STEPS_PER_BEAT / 2   #: a note this close to a bar line (steps) marks that bar line
MARKS_APART = 2 * STEPS            #: steps from a marked crash to the next (4 bars: a return from
                                   #: a rest and the new section the looper hears in it are one)


def marked_downbeat(position: float) -> int:
    """The downbeat a note at ``position`` marks: the bar line within half a beat of it (a note
    played a little early or late), else the next bar line (a pickup, or a note mid-bar)."""
    nearest = round(position / STEPS_PER_BAR) * STEPS_PER_BAR
    if abs(position - nearest) <= MARK_WINDOW:
        return int(nearest)
    return int(math.ceil(position / STEPS_PER_BAR) * STEPS_PER_BAR)


class Phrasing:
    """Decides, step by step, which crashes play (the player's thread; the player's lock)."""

    def __init__(self, every: int = 8) -> None:
        self.every = every
        self._marks: set[int] = set()
        self._last: int | None = None     # absolute step of the last crash played
        self._last_mark: int | None = None   # ... and of the last marked one

    def mark(self, downbeat: int) -> None:
        """A crash is welcome on this downbeat (absolute step), not yet scheduled."""
        if self.every:
            self._marks.add(downbeat)

    def welcome_late(self, downbeat: int) -> bool:
        """A mark for a downbeat already scheduled: True if a crash is to be added there now
        (none played there, marks a pass apart); the caller plays it late."""
        if not self.every or not self._mark_allowed(downbeat) or self._last == downbeat:
            return False
        self._last = self._last_mark = downbeat
        return True

    def forget(self) -> None:
        """The song jumped: marks for steps that will not come are dropped; spacing starts over."""
        self._marks.clear()
        self._last = self._last_mark = None

    def take(self, step: int, cells: np.ndarray, uses_ride: bool) -> np.ndarray:
        """The cells [voices, 3] of absolute ``step`` as they are to be played."""
        if not self.every:
            return cells
        crash = cells[CRASH, HIT] >= 0.5
        if step in self._marks:
            self._marks.discard(step)
            if self._mark_allowed(step):
                self._last = self._last_mark = step
                return cells if crash else with_crash(cells)
        if not crash:
            return cells
        if self._last is None or step - self._last >= self.every * STEPS_PER_BAR or step < self._last:
            self._last = step
            return cells
        cells = cells.copy()
        if uses_ride and cells[RIDE, HIT] < 0.5:
            cells[RIDE] = cells[CRASH]
        cells[CRASH] = 0.0
        return cells

    def _mark_allowed(self, step: int) -> bool:
        return self._last_mark is None or not 0 <= step - self._last_mark < MARKS_APART


def with_crash(cells: np.ndarray) -> np.ndarray:
    """These cells with a crash on the step, as loud as the loudest hit there (else 0.8)."""
    cells = cells.copy()
    hits = cells[:, HIT] >= 0.5
    velocity = float(cells[hits, VELOCITY].max()) if hits.any() else 0.8
    cells[CRASH] = (1.0, velocity, float(cells[hits, OFFSET].min()) if hits.any() else 0.0)
    return cells


__all__ = ["CRASH", "RIDE", "Phrasing", "marked_downbeat", "with_crash"]

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
  bars back (default 8); one closer moves to the ride on the same step when the pattern keeps
  time on the ride, and is left out when it keeps time on the hats.

``every`` 0 plays the pattern's crashes as they are and marks nothing. The phrasing works on
whatever pattern plays, a frozen one too: freeze holds the pattern, the crashes still phrase.

Fills and toms are phrased the same way. The model's two bars often hold a tom or two, or a
groove bar and a fill bar (two or more tom hits, the other bar a third as many or fewer); looped,
that is a tom lick every other bar for as long as the groove lasts. A drummer grooves and fills
where a phrase ends: the toms play in the last bar of every ``fill_every`` bars (default 4) and in
the bar before a marked downbeat known by then (a new section). There the fill bar plays, if the
pattern has one. Elsewhere a fill bar gives way to the groove bar, and any other bar plays
without its toms. Toms that repeat from bar to bar (four or more a bar, three in four on the same
steps) are a tom groove and play as they are.
``fill_every`` 0 plays the model's toms as they are.
"""
from __future__ import annotations

import math

import numpy as np

from appliance.core.groove import HIT, OFFSET, STEPS, STEPS_PER_BAR, STEPS_PER_BEAT, VELOCITY, VOICES

CRASH = VOICES.index("crash")
RIDE = VOICES.index("ride")
TOMS = np.array([VOICES.index(v) for v in ("low_tom", "mid_tom", "high_tom")])
FILL_TOMS = 2                      #: tom hits that make a bar a fill
TOM_GROOVE = 4                     #: tom steps in each bar of a tom groove (see tom_groove)
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


def fill_bar(steps: np.ndarray) -> int | None:
    """The bar (0 or 1) of a pattern's steps [32, voices, 3] that is a fill, or None."""
    toms = tom_hits(steps)
    fill = int(np.argmax(toms))
    if toms[fill] >= FILL_TOMS and 3 * toms[1 - fill] <= toms[fill]:
        return fill
    return None


def tom_hits(steps: np.ndarray) -> np.ndarray:
    """Tom hits in each bar [2] of a pattern's steps [32, voices, 3]."""
    return (steps[:, TOMS, HIT] >= 0.5).sum(axis=1).reshape(STEPS // STEPS_PER_BAR, -1).sum(axis=1)


def tom_groove(steps: np.ndarray) -> bool:
    """Toms that keep time: four or more in each bar, three in four of them on the same steps in both."""
    on = (steps[:, TOMS, HIT] >= 0.5).any(axis=1).reshape(STEPS // STEPS_PER_BAR, STEPS_PER_BAR)
    fewer = int(on.sum(axis=1).min())
    return fewer >= TOM_GROOVE and 4 * int((on[0] & on[1]).sum()) >= 3 * fewer


class Phrasing:
    """Decides, step by step, which crashes play and where a fill goes (the player's thread; the
    player's lock)."""

    def __init__(self, every: int = 8, fill_every: int = 4) -> None:
        self.every = every
        self.fill_every = fill_every
        self._marks: set[int] = set()
        self._last: int | None = None     # absolute step of the last crash played
        self._last_mark: int | None = None   # ... and of the last marked one
        self.origin = 0                   # absolute step of bar 1: phrases count from there
        self._fill_of: np.ndarray | None = None   # the pattern steps _fill describes (held: no id reuse)
        self._fill: tuple[int | None, bool] = (None, False)   # its fill bar; whether its toms are phrased

    def mark(self, downbeat: int) -> None:
        """A crash is welcome on this downbeat (absolute step), not yet scheduled."""
        if self.every or self.fill_every:
            self._marks.add(downbeat)

    def fill(self, step: int, steps: np.ndarray) -> np.ndarray:
        """The cells [voices, 3] of the pattern's ``steps`` [32, voices, 3] that play at absolute
        ``step``: its own, except that toms and fills play only where a phrase ends."""
        own = step % STEPS
        if not self.fill_every:
            return steps[own]
        if self._fill_of is not steps:
            toms = tom_hits(steps)
            self._fill_of = steps
            self._fill = (fill_bar(steps), bool(toms.any()) and not tom_groove(steps))
        fill, phrased = self._fill
        if not phrased:
            return steps[own]  # no toms, or a tom groove
        bar = (step - self.origin) // STEPS_PER_BAR
        in_bar = own % STEPS_PER_BAR
        if (bar + 1) % self.fill_every == 0 or self.origin + (bar + 1) * STEPS_PER_BAR in self._marks:
            return steps[own] if fill is None else steps[in_bar + STEPS_PER_BAR * fill]
        cells = steps[own] if fill is None else steps[in_bar + STEPS_PER_BAR * (1 - fill)]
        if not (cells[TOMS, HIT] >= 0.5).any():
            return cells
        cells = cells.copy()
        cells[TOMS] = 0.0
        return cells

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
            self._marks.discard(step)
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


__all__ = ["CRASH", "FILL_TOMS", "RIDE", "TOM_GROOVE", "TOMS", "Phrasing", "fill_bar", "marked_downbeat",
           "tom_groove", "tom_hits", "with_crash"]

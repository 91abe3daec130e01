"""The groove memory: every pass of the loop records onto the groove, and the groove follows the player.

The box hears the keyboard as a 2-bar loop. A drummer who listens remembers what was played,
but gives the last time round more weight than the time before, lets go of what the player
stopped playing, follows a new section at once and plays less when the player rests. The
looper does the remembering; the engine turns ``rest_passes`` into fewer drum hits.

Rules (see docs/ARCHITECTURE.md, "The groove memory", for why these and not others):

- Overdub within a pass: a louder note on a step replaces a softer one; a chord is its loudest note.
- Recent passes count more: the first note on a step in a new pass replaces what an earlier pass
  left there (velocity and offset), so the groove is as loud as the player is now.
- Fading: a step not played again fades (the velocity the model hears falls by up to half) and is
  gone after ``forget_passes`` passes in which the player played but not that step. 0 never
  forgets (the overdub keeps everything until ``clear``).
- A one-off goes sooner: a step played in only one of the last ``forget_passes`` played passes
  is gone after ``forget_once`` passes without it in which the player played its bar (a run or
  a flourish is answered once, not for the next 8 bars). 0 treats it as any other step. What
  was let go so at the last pass's end still counts as the groove for the new-section test
  below (a 4-bar phrase of two different halves is one groove).
- A thinner groove goes in two passes: steps the player left out of both of the last two played
  passes, each of which played both bars, go at once when they are ``THIN_SHARE`` or more of the
  groove and lie in both bars (a verse in eighths after a chorus in sixteenths, a breakdown to
  one chord a bar); a part left out, one half of a 4-bar phrase, or one bar's worth fades as
  above. They come back together when the player plays ``RETURN_FIRST_BEAT`` of them in the
  first beat of a bar, or ``RETURN_SHARE`` of them in one pass (the chorus again, the band back
  in), or lifts back in on a phrase head (``bring_back``: the engine hears the lift); not played
  again, they go at that pass's end again.
- Going down goes in one pass: once the two whole beats before a note play at most half of the
  groove's steady steps there (``DOWN_LEFT`` or more left out) and nothing else, ``LEVEL_CHANGE``
  × softer than the last pass, the model hears the pass as played and those beats again (the
  chorus into a quiet verse); a pass that went down and ends as soft thins the groove at its end,
  as two passes would (not stabs growing into the band's return).
- A change of feel: steps of the groove that a pass played in both bars left out, each beside a
  step it played new with its note ``MOVED_BY`` or more away (straight eighths to a shuffle's,
  the "&" moved to the "a"), go at its end when they are ``MOVED_STEPS`` or more in both bars and
  the steps it played again stayed where they were (``STEADY``: a drift off the click moves them all).
- A new section: a finished pass with at least ``SECTION_MIN_STEPS`` steps that shares less than
  ``section_change`` of its steps with the groove (Jaccard overlap) replaces the groove: what was
  not played in that pass is dropped at once. The groove must have been there for a played pass
  already (a phrase begun just before the loop point is no new section). A pass that plays one
  of the last ``SECTION_RECALLS`` played passes of this section again (``RECALL_COVER`` of its
  steps, in the bars played, and ``RECALL_OWN`` of the pass's own), while the pass before went on
  with the groove, is none either: the other half of a 4-bar phrase after a pass laid out.
  0 turns it off. Once two beats of a pass are clearly a new section's (up to the last note, or
  over the whole beats heard), the model hears the pass as played and its bar ahead again.
- A section heard before comes back at once: the grooves of the last ``SECTIONS_KEPT`` sections
  left behind are remembered, and when a bar's notes so far, into its second beat
  (``KNOWN_NOTES`` or more, ``KNOWN_NEW`` of them new to the groove), play ``KNOWN_COVER`` of
  one's steps up to the end of that beat, and every note of the pass so far falls on its steps,
  that groove comes back, both bars, as it was: the second verse after a chorus, from its
  first beats, not a pass later. The pass's end still hears a new section (its crash and its
  phrasing are the new-section rule's, as before).
- A rest: a pass with nothing played ages nothing (the drummer remembers the song through a break);
  ``silence`` tells the engine how long nothing was played and ``left_out`` how many steady steps of
  the groove went by unplayed meanwhile (the gaps of a sparse groove are no rest), and
  ``last_accent`` how loud its last note was against what the player plays there (a push).
  The engine thins the drums out.
- One bar heard is a bar that repeats: until the looper has heard one full pass (32 steps from
  the first note since the start or a clear), an empty step takes the other bar's step
  (``assumed``, what the model hears), so bar 2 is not played from silence while bar 1 is all
  the drummer knows. Before a whole bar was heard, the beats heard repeat the same way (one
  beat, then two), so the first bar is not played from a few notes in silence either. From the moment the whole pass was heard (step 32 after the first note
  begins), the groove as played counts. A loaded groove is a whole one.
- A change of level is heard at once: when a pass's notes (3 or more) are ``LEVEL_CHANGE`` × or
  more softer or louder than the last pass's up to the same step, the steps not played again yet
  are heard at that level too, and keep it when the pass ends.
- Freeze is the engine's business (it stops regenerating); the looper keeps recording while
  frozen, so that unfreezing follows what was played meanwhile.
"""
from __future__ import annotations

from dataclasses import dataclass
import math
import threading

import numpy as np

from appliance.core.groove import HIT, LOW, OFFSET, STEPS, STEPS_PER_BAR, STEPS_PER_BEAT, VELOCITY, Groove, loop_pass, quantise

SECTION_MIN_STEPS = 4   #: a pass needs this many steps played to count as a new section
SECTION_RECALLS = 3     #: ... and is none when, the pass before going on with the groove, it plays one of
                        #: this many played passes of this section before it again:
RECALL_COVER = 0.6      #: ... this share of that pass's steps, in the bars it plays ...
RECALL_OWN = 0.5        #: ... and this share of its own steps are that pass's
THIN_SHARE = 0.4        #: steps left out of two full passes in a row go at once when this share of the groove
MOVED_STEPS = 4         #: a pass that plays this many of the groove's steps on the next sixteenth is a change of feel ...
MOVED_BY = 0.5          #: ... each note this many steps or more from where it was (not a note jittering over the line) ...
STEADY = 0.25           #: ... while the steps it played again sit within this (median, steps) of where they were (no drift)
RETURN_FIRST_BEAT = 2   #: ... and come back together when the player plays this many of them in a bar's first beat
RETURN_SHARE = 0.5      #: ... or this share of them in one pass
SECTIONS_KEPT = 3       #: the grooves of this many sections left behind are remembered, to know them again
KNOWN_NOTES = 3         #: a section comes back once this many steps of a bar are its, in the bar played so far ...
KNOWN_NEW = 2           #: ... this many of them not in the groove the pass began with ...
KNOWN_COVER = 0.75      #: ... and this share of its steps up to there played (not a few of its beats)
FADE_DEPTH = 0.5        #: a step about to be forgotten is heard at (1 - FADE_DEPTH) of its velocity
LEVEL_CHANGE = 1.25     #: a pass this much softer or louder than the one before changes the player's level
LEVEL_NOTES = 3         #: ... once it has this many notes (their mean against the last pass's so far)
DOWN_LEFT = 3           #: a pass gone down leaves out this many of the groove's steady steps in two beats
ACCENT_STEPS = 4        #: ``last_accent`` of a step new to the figure needs this many other steps played in its pass


@dataclass(frozen=True)
class Memory:
    """How the looper remembers (the ``loop:`` section of the config)."""

    forget_passes: int = 4        #: 0 = never; else passes played without a step until it is gone
    section_change: float = 0.3   #: 0..1 overlap below which a pass starts a new section; 0 = off
    forget_once: int = 1          #: passes until a step played in one pass only is gone; 0 = as any other

    def __post_init__(self) -> None:
        if not 0 <= self.forget_passes <= 64:
            raise ValueError(f"forget_passes {self.forget_passes} is not in 0..64 (0 = never)")
        if not 0 <= self.forget_once <= 64:
            raise ValueError(f"forget_once {self.forget_once} is not in 0..64 (0 = as any other step)")
        if not 0.0 <= self.section_change <= 1.0:
            raise ValueError(f"section_change {self.section_change} is not in 0..1 (0 = off)")


class Looper:
    """Hears notes at absolute positions (steps since the start) and keeps the 2-bar groove."""

    def __init__(self, memory: Memory | int = Memory(), register: bool = False) -> None:
        """``register``: keep which steps were the left hand's (Groove.low), for a model that hears
        them; without it every step is high and a note's register changes nothing."""
        self._memory = Memory(forget_passes=memory) if isinstance(memory, int) else memory
        self._register = register
        self._lock = threading.Lock()
        self._steps = np.zeros((STEPS, 4), np.float32)   # hit, velocity, offset and LOW as last played
        self._stamp = np.zeros(STEPS, np.int64)          # played-pass index when each step was last played
        self._history: np.ndarray = np.zeros(STEPS, np.uint64)       # bit k: played in the played pass k before the last finished
        self._steady = np.zeros(STEPS, bool)             # the groove's steps played in both played passes before the last note's
        self._dropped = np.zeros(STEPS, bool)            # one-offs let go at the last played pass's end
        self._moved_away = np.zeros(STEPS, bool)         # ... and steps a change of feel let go there
        self._offsets_then: np.ndarray = np.zeros(STEPS, np.float32)  # the groove's offsets when the pass in progress began
        self._thinned = np.zeros((STEPS, 4), np.float32)  # the steps a thinner groove let go, as they were
        self._brought = np.zeros(STEPS, bool)            # ... and those a lift brought back in this pass
        self._began = np.zeros((STEPS, 4), np.float32)   # the groove as the pass in progress began
        self._known: list[np.ndarray] = []               # the grooves of sections left behind, latest first
        self._knew = False                               # a section came back in the pass in progress
        self._down = False                               # the player was heard going down in the pass in progress
        self._played = 0                                 # index of the played pass in progress
        self._now = np.zeros(STEPS, bool)                # steps played in the pass in progress
        self._held: np.ndarray = np.zeros(STEPS, bool)               # steps in the groove when this pass began
        self._last: np.ndarray = np.full(STEPS, np.nan, np.float32)  # the last played pass's velocities (nan: not played)
        self._before: np.ndarray = np.full(STEPS, np.nan, np.float32)  # ... and the played pass's before it
        self._older: np.ndarray = np.zeros(STEPS, bool)              # ... and already when the pass before began
        self._going = False                              # the last played pass went on with the groove
        self._section_age = 0                            # played passes since the last new section (or clear, load)
        self._pass = 0
        self._shift = 0.0   # whole loops between the song's position and the looper's (a jump)
        self._rest_passes = 0
        self._sections = 0
        self._last_onset: float | None = None
        self._groove = Groove.empty()
        self._assumed = self._groove
        self._learn_from: int | None = None   # absolute step of the first note since the start or a clear
        self._learned = False                 # a full pass was heard since that note (or a groove loaded)
        self._heard_to = -math.inf            # the latest position the looper was told of
        self._learn_end = math.inf            # where learning ends (read without the lock)

    # -- views -------------------------------------------------------------------------------
    @property
    def memory(self) -> Memory:
        return self._memory

    @memory.setter
    def memory(self, memory: Memory) -> None:
        with self._lock:
            self._memory = memory
            self._publish()

    @property
    def forget_passes(self) -> int:
        return self._memory.forget_passes

    @property
    def groove(self) -> Groove:
        """The groove as played: remembered steps, fading ones softer."""
        return self._groove

    @property
    def assumed(self) -> Groove:
        """What the model hears: the groove, and until a full pass was heard, an empty step not
        reached yet takes the other bar's step (one bar heard is a bar that repeats)."""
        return self._assumed

    @property
    def current_pass(self) -> int:
        return self._pass

    @property
    def learned(self) -> bool:
        """A full pass was heard since the first note (or a groove was loaded): the groove is the player's."""
        return self._learned

    @property
    def sections(self) -> int:
        """New sections followed so far (a count: the engine marks each with a crash)."""
        return self._sections

    @property
    def rest_passes(self) -> int:
        """Whole passes in a row, just finished, in which nothing was played."""
        return self._rest_passes

    def silence(self, position: float) -> float | None:
        """Steps since the last note-on (None when nothing was played since the start or a clear)."""
        last = self._last_onset
        return None if last is None else max(0.0, position + self._shift - last)

    def left_out(self, position: float, grace: float) -> int:
        """Steady steps of the groove gone by unplayed since the last note-on, ``grace`` steps ago
        or more (counted over one loop at most): 1 or more, the player rests or holds. Steady:
        played in both played passes before the last note's (all of the groove before two were
        heard), so the gaps of a groove that is itself sparse (a chord every two bars), a pickup
        that wanders, or a figure that comes every other pass leave nothing out."""
        last = self._last_onset
        if last is None:
            return 0
        first = math.floor(last + 0.5) + 1                    # the step after the last note's
        end = math.floor(position + self._shift - grace)      # the last step now left out
        if end < first:
            return 0
        return int(self._steady[np.arange(first, min(end, first + STEPS - 1) + 1) % STEPS].sum())

    def first_left_out(self, position: float, grace: float) -> float | None:
        """Where (song position, steps) the first steady step of the groove that ``left_out`` counts
        went by unplayed: where the player's rest began to leave the groove out; None if none did."""
        last = self._last_onset
        if last is None:
            return None
        first = math.floor(last + 0.5) + 1
        end = min(math.floor(position + self._shift - grace), first + STEPS - 1)
        steps = np.arange(first, end + 1)
        missed = steps[self._steady[steps % STEPS]]
        return float(missed[0]) - self._shift if missed.size else None

    def last_accent(self) -> float | None:
        """How loud the last note's step was (its loudest note) against what the player plays
        there: the loudest the player played that beat of the bar in the played pass before,
        and in the other bar of both passes; else, where the figure plays nothing there, the
        median of the other steps played in its pass. 1 as the figure plays it, more for an
        accent; None when neither is there (fewer than ``ACCENT_STEPS`` other steps)."""
        with self._lock:
            last = self._last_onset
            if last is None:
                return None
            step, _ = quantise(last)
            if loop_pass(last) == self._pass:   # the last note is in the pass in progress
                played, before = np.where(self._now, self._steps[:, VELOCITY], np.nan), self._last
            else:                                # ... or in the last played pass, before a rest
                played, before = self._last.copy(), self._before
            mine = float(played[step])
            if np.isnan(mine):
                return None
            other = (step + STEPS_PER_BAR) % STEPS
            there = np.array([before[step], played[other], before[other]])
            if not np.isnan(there).all():       # the figure's own beat: against the loudest it was
                return mine / max(float(np.nanmax(there)), 0.01)
            played[step] = np.nan
            others = played[~np.isnan(played)]
            if others.size < ACCENT_STEPS:
                return None
            return mine / max(float(np.median(others)), 0.01)

    def _steady_steps(self) -> np.ndarray:
        hits = self._groove.steps[:, HIT] > 0
        if self._played < 2:
            return hits
        return hits & ((self._history & np.uint64(0b11)) == np.uint64(0b11))

    # -- input -------------------------------------------------------------------------------
    def record(self, position: float, velocity: float, low: bool = False) -> bool:
        """A note-on at an absolute position (steps) with velocity 0..1, ``low`` if the left hand's
        (the step's register, :attr:`Groove.low`, is low if any of its notes in the pass was);
        True if the groove changed."""
        step, offset = quantise(position)
        low = low and self._register
        with self._lock:
            position += self._shift
            note_pass = loop_pass(position)
            if note_pass > self._pass:   # a note rounding onto the next loop's step 0
                self._advance(note_pass)
            self._rest_passes = 0
            self._hear(position)
            if self._learn_from is None and not self._learned:
                self._learn_from = math.floor(position + 0.5)
                self._learn_end = self._learn_from + STEPS - 1.5
            self._last_onset = position if self._last_onset is None else max(self._last_onset, position)
            self._steady = self._steady_steps()
            cell = self._steps[step]
            fresh = not self._now[step] or cell[HIT] == 0
            if not fresh and velocity <= cell[VELOCITY]:
                if not low or cell[LOW]:
                    return False     # a softer note in the same pass: the louder one stays
                cell[LOW] = 1.0      # ... and a bass note under a louder chord makes it the left hand's too
            else:
                cell[:] = (1.0, velocity, offset, 1.0 if low or (not fresh and cell[LOW]) else 0.0)
            self._now[step] = True
            self._stamp[step] = self._played
            self._bring_back(step)
            self._know_again(step)
            before = (self._groove, self._assumed)
            self._publish()
            return (self._groove, self._assumed) != before

    def advance(self, position: float) -> bool:
        """Move to the pass that holds this position; fade, forget, follow a new section.
        True if the groove changed."""
        with self._lock:
            before = (self._groove, self._assumed)
            self._hear(position + self._shift)
            self._advance(loop_pass(position + self._shift))
            if self._assumed is not self._groove and self._learned:
                self._publish()   # the full pass was heard between loop points
            return (self._groove, self._assumed) != before

    def pass_ends(self, position: float) -> bool:
        """Whether ``position`` lies past the pass in progress, or completes the first full pass
        heard (read without the lock: a hint for the player's thread, which then calls
        :meth:`advance`)."""
        position += self._shift
        return loop_pass(position) > self._pass or position >= self._learn_end

    def relocate(self, position: float) -> None:
        """The song jumped to ``position`` (a Start, a song position): the pass playing now
        goes on there. A jump is never counted as passes, backwards or forwards, so it never
        makes the looper fade or forget the groove."""
        with self._lock:
            self._shift = float((self._pass - loop_pass(position)) * STEPS)
            self._heard_to, self._down = position + self._shift, False   # (the pass goes on from here)
            self._publish()

    def clear(self) -> bool:
        with self._lock:
            had_notes = bool(self._steps[:, HIT].any())
            self._steps[:] = 0.0
            self._now[:] = False
            self._held[:] = False
            self._older[:] = False
            self._going, self._section_age = False, 0
            self._last_onset = None
            self._last[:] = self._before[:] = np.nan
            self._history[:] = 0
            self._steady[:] = False
            self._dropped[:] = self._moved_away[:] = False
            self._thinned[:] = 0.0
            self._brought[:] = False
            self._began[:] = 0.0
            self._known, self._knew, self._down = [], False, False
            self._learn_from, self._learned, self._learn_end = None, False, math.inf
            self._groove = self._assumed = Groove.empty()
            return had_notes

    def load(self, groove: Groove) -> None:
        """Start from a saved groove (every step counts as played in the pass just finished)."""
        with self._lock:
            self._steps[:, :LOW] = groove.steps
            self._steps[:, LOW] = groove.low if self._register else 0.0
            self._now[:] = False
            self._last[:] = self._before[:] = np.nan
            self._stamp[:] = self._played - 1
            self._held = self._steps[:, HIT] > 0
            self._history[:] = np.where(self._held, 0b11, 0).astype(np.uint64)   # a saved groove is no one-off
            self._dropped[:] = self._moved_away[:] = False
            self._thinned[:] = 0.0
            self._brought[:] = False
            self._began = self._steps.copy()
            self._known, self._knew, self._down = [], False, False
            self._older = self._held.copy()
            self._going, self._section_age = True, 0
            self._learned, self._learn_end = True, math.inf
            self._publish()

    # -- the memory --------------------------------------------------------------------------
    def _advance(self, now_pass: int) -> None:
        if now_pass <= self._pass:
            return
        finished = self._now.copy()
        crossed = now_pass - self._pass
        level, down = self._level(), self._ends_down(finished)
        if level != 1.0:   # the player's new level holds for what the pass did not play again
            keep = ~finished & (self._steps[:, HIT] > 0)
            self._steps[keep, VELOCITY] = np.clip(self._steps[keep, VELOCITY] * level, 0.02, 1.0)
        if finished.any():
            self._before = self._last
            self._last = np.where(finished, self._steps[:, VELOCITY], np.nan).astype(np.float32)
        self._pass = now_pass
        self._now[:] = False
        self._brought[:] = False
        if finished.any():
            self._rest_passes = crossed - 1   # passes skipped by a jump held nothing either
            self._played += 1
            self._history = (self._history << np.uint64(1)) | finished.astype(np.uint64)
            present = self._steps[:, HIT] > 0
            if self._follow_section(finished):
                self._remember(self._began)               # a new section: the old groove goes, remembered
                self._steps[~finished & present] = 0.0
                self._thinned[:] = 0.0
                self._sections += 1
            self._thin()
            if down:
                self._thin(passes=1)   # the player went down: softer, and thinner in both bars
            self._moved_away = self._moved(finished)
        else:
            self._rest_passes += crossed
        self._forget(finished)
        present = self._steps[:, HIT] > 0
        if finished.any():
            self._older = self._held & present
        self._held = present
        self._began = self._steps.copy()
        self._knew = self._down = False
        self._offsets_then = self._steps[:, OFFSET].copy()
        self._publish()

    def _ends_down(self, finished: np.ndarray) -> bool:
        """The pass ending was heard going down (:meth:`_going_down`) and is still down at its end:
        its last note and those up to two beats before it ``LEVEL_CHANGE`` × softer than the pass
        before (not stabs growing into the band's return, a review's stop-time lead-in)."""
        played = np.flatnonzero(finished)
        before = self._last[~np.isnan(self._last)]
        if not self._down or self._knew or not played.size or not before.size:
            return False
        tail = self._steps[played[played >= played[-1] - 2 * STEPS_PER_BEAT], VELOCITY]
        return float(tail.mean()) * LEVEL_CHANGE <= max(float(before.mean()), 0.05)

    def _follow_section(self, finished: np.ndarray) -> bool:
        """Whether the pass just ended (``finished``) begins a new section; keeps count of the
        passes since the last one and of whether this pass went on with the groove."""
        change = self._memory.section_change
        # One-offs let go a pass ago still count as the groove here: a 4-bar phrase whose two
        # halves share little is one groove, not a new section every pass.
        overlap = _overlap(finished, self._held | self._dropped | self._moved_away)
        going, self._going = self._going, overlap >= change
        self._section_age += 1
        # The groove must have been there a pass already: a phrase begun just before the loop
        # point (half in one pass, half in the next) is no new section.
        if not change or finished.sum() < SECTION_MIN_STEPS or not (self._held & self._older).any() \
                or overlap >= change:
            return False
        # The other half of a 4-bar phrase after a pass laid out: heard a few passes ago while the
        # groove went on. After stabs or a break, the comping coming back is a new section.
        back = min(SECTION_RECALLS, self._section_age) if going else 0
        if any(_plays_again(finished, ((self._history >> np.uint64(k)) & np.uint64(1)) > 0)
               for k in range(1, back + 1)):
            self._going = True
            return False
        self._section_age = 0
        return True

    def _thin(self, passes: int = 2) -> None:
        """Steps left out of the last two played passes (or the last, a pass gone down), each of
        which played both bars, go when they are ``THIN_SHARE`` or more of the groove
        (``forget_passes`` 0 keeps them)."""
        if not self._memory.forget_passes:
            return
        last = self._history & np.uint64((1 << passes) - 1)
        bars = last.reshape(-1, STEPS_PER_BAR)
        if not all(((bar & np.uint64(1 << k)) > 0).any() for bar in bars for k in range(passes)):
            return   # a bar left empty in a pass (a rest, a phrase begun late) thins nothing
        present = self._steps[:, HIT] > 0
        left_out = present & (last == 0)
        if not left_out.reshape(-1, STEPS_PER_BAR).any(axis=1).all():
            return   # one bar's worth: a phrase's shape, or a change begun mid-pass
        if left_out.sum() >= THIN_SHARE * present.sum():
            self._thinned[left_out] = self._steps[left_out]
            self._steps[left_out] = 0.0

    def _moved(self, finished: np.ndarray) -> np.ndarray:
        """A change of feel (straight eighths to a shuffle's, or back): steps of the groove that the
        pass just ended left out, each beside a step it played new with its note ``MOVED_BY`` or
        more away, go at once when they are ``MOVED_STEPS`` or more in both bars (``forget_passes``
        0 keeps them). A note jittering over the line between two steps is no move, nor is a drift
        (a player off the click): the steps the pass played again must sit where they did, within
        ``STEADY`` (median). What went (else nothing) still counts as the groove for the next
        pass's new-section test."""
        moved = np.zeros(STEPS, bool)
        if not self._memory.forget_passes or not finished.reshape(-1, STEPS_PER_BAR).any(axis=1).all():
            return moved   # a bar left empty (a rest, a phrase begun late) moves nothing
        again = finished & self._held
        if not again.any() or np.median(np.abs(self._steps[again, OFFSET] - self._offsets_then[again])) >= STEADY:
            return moved   # nothing stayed put, or all of it moved: a drift, not a new feel
        new = finished & ~self._held
        offset = self._steps[:, OFFSET]
        for side in (-1, 1):   # the new note on the step before (after) each step of the groove, wrapping round
            away = np.abs(side + np.roll(offset, -side) - offset) >= MOVED_BY
            moved |= np.roll(new, -side) & away
        moved &= self._held & (self._steps[:, HIT] > 0) & ~finished
        if moved.sum() < MOVED_STEPS or not moved.reshape(-1, STEPS_PER_BAR).any(axis=1).all():
            return np.zeros(STEPS, bool)
        self._steps[moved] = 0.0
        return moved

    def _bring_back(self, step: int) -> None:
        """The steps a thinner groove let go come back together when the player has played
        ``RETURN_FIRST_BEAT`` of them in the first beat of a bar of this pass (``step`` is in it), or
        ``RETURN_SHARE`` of them in this pass. Not played again, they are left out of this pass
        and the last, and go again at its end."""
        thinned = self._thinned[:, HIT] > 0
        if not thinned[step]:
            return
        again = thinned & self._now
        bar = step - step % STEPS_PER_BAR   # the first step of this step's bar
        first_beat = step - bar < STEPS_PER_BEAT and again[bar:bar + STEPS_PER_BEAT].sum() >= RETURN_FIRST_BEAT
        if not first_beat and again.sum() < RETURN_SHARE * thinned.sum():
            return
        self._restore_thinned()

    def _restore_thinned(self) -> np.ndarray:
        """The steps a thinner groove let go back in the groove (those not played again already): which."""
        back = (self._thinned[:, HIT] > 0) & ~self._now
        self._steps[back] = self._thinned[back]
        self._stamp[back] = self._played
        self._thinned[:] = 0.0
        return back

    def bring_back(self) -> bool:
        """The steps a thinner groove let go come back at once, as they were: the band lifts back
        in on a phrase head (the engine's lift) with a chord that rings before the comp comes
        back. Whether any did."""
        with self._lock:
            if not (self._thinned[:, HIT] > 0).any():
                return False
            self._brought = self._restore_thinned()
            self._publish()
            return True

    def let_go_again(self) -> bool:
        """What :meth:`bring_back` brought back in this pass and the player has not played since
        goes again, kept aside as before (the lift was a one-off: the band did not stay up).
        Whether any did."""
        with self._lock:
            gone = self._brought & ~self._now & (self._steps[:, HIT] > 0)
            self._brought[:] = False
            if not gone.any():
                return False
            self._thinned[gone] = self._steps[gone]
            self._steps[gone] = 0.0
            self._publish()
            return True

    def _remember(self, groove: np.ndarray) -> None:
        """Keep a section's groove (cells [32, 4]) left behind, the latest first: one like it (as
        much in common as ``section_change`` or more) is that section, heard again."""
        steps = groove[:, HIT] > 0
        if steps.sum() < SECTION_MIN_STEPS:
            return
        change = self._memory.section_change
        self._known = [groove.copy()] + [known for known in self._known
                                         if _overlap(known[:, HIT] > 0, steps) < change][:SECTIONS_KEPT - 1]

    def _know_again(self, step: int) -> None:
        """A section heard before comes back: when the bar played so far (up to ``step``, into its
        second beat at least) has ``KNOWN_NOTES`` or more steps, ``KNOWN_NEW`` of them not in the
        groove the pass began with, and plays ``KNOWN_COVER`` of a remembered section's steps up to
        the end of the beat it is in, while every note of the pass so far falls on that section's
        steps, its groove comes back at once (a drummer who knows the chorus plays it from its
        first beats, not a pass later). The pass's end still hears it as a new section (its crash
        and phrasing as before). Once a pass; not without ``section_change`` or ``forget_passes``.
        (A flourish on the downbeat is a few sixteenths of any busy groove, and a section that
        comes in on the pass's second bar leaves the first bar's notes off its steps: neither
        brings one back.)"""
        if self._knew or not self._known or not self._memory.section_change or not self._memory.forget_passes:
            return
        bar = step - step % STEPS_PER_BAR
        if step - bar < STEPS_PER_BEAT:
            return
        played = np.zeros(STEPS, bool)
        played[bar:step + 1] = self._now[bar:step + 1]
        if played.sum() < KNOWN_NOTES or (played & ~self._held).sum() < KNOWN_NEW:
            return
        beat_end = step - step % STEPS_PER_BEAT + STEPS_PER_BEAT
        for k, known in enumerate(self._known):
            there = known[:, HIT] > 0
            if (self._now & ~there).any() or played.sum() < KNOWN_COVER * there[bar:beat_end].sum():
                continue
            del self._known[k]
            self._remember(self._began)
            back = ~self._now
            self._steps[back] = known[back]
            self._stamp[back & there] = self._played
            self._thinned[:] = 0.0
            self._brought[:] = False
            self._knew = True
            return

    def _forget(self, finished: np.ndarray) -> None:
        n = self._memory.forget_passes
        if not n:
            return
        missed = self._played - 1 - self._stamp
        stale = (self._steps[:, HIT] > 0) & (missed >= n) & ~self._now
        once = self._memory.forget_once
        if once and finished.any():
            # plays among the forget_passes played passes up to the step's last (a one-off: 1)
            last = self._history >> np.clip(missed, 0, 63).astype(np.uint64)
            recent = sum((last >> np.uint64(k)) & np.uint64(1) for k in range(n))
            bar_played = np.repeat(finished.reshape(-1, STEPS_PER_BAR).any(axis=1), STEPS_PER_BAR)
            self._dropped = (self._steps[:, HIT] > 0) & (recent == 1) & (missed >= once) & bar_played & ~finished
            stale |= self._dropped
        self._steps[stale] = 0.0

    def _hear(self, position: float) -> None:
        """The looper was told of ``position``: a full pass heard since the first note ends learning."""
        self._heard_to = max(self._heard_to, position)
        if self._heard_to >= self._learn_end:
            self._learned, self._learn_end = True, math.inf

    def _assume_repeat(self, steps: np.ndarray) -> np.ndarray:
        """One bar heard is a bar that repeats: each empty step takes the other bar's step.
        Before a bar was heard, the beats heard repeat: from one beat (or two) after the first
        note, each step not reached yet takes the step a beat (or two) before it, so the drums'
        first bar answers a groove at the player's level and rhythm, not a few notes in silence.
        (Only steps not heard yet are played before the full pass ends learning.)"""
        learn_from = self._learn_from
        heard = self._heard_to - learn_from if learn_from is not None else 0.0
        if heard < STEPS_PER_BAR:
            period = 2 * STEPS_PER_BEAT if heard >= 2 * STEPS_PER_BEAT else STEPS_PER_BEAT if heard >= STEPS_PER_BEAT else 0
            steps = steps.copy()
            if period and learn_from is not None:     # (a period means something was heard)
                for position in range(math.floor(self._heard_to) + 1, learn_from + STEPS):
                    if steps[position % STEPS, HIT] == 0:
                        steps[position % STEPS] = steps[(position - period) % STEPS]
            return steps
        other = np.roll(steps, STEPS_PER_BAR, axis=0)
        fill = (steps[:, HIT] == 0) & (other[:, HIT] > 0)
        steps = steps.copy()
        steps[fill] = other[fill]
        return steps

    def _level(self) -> float:
        """The player's change of level in this pass: the mean velocity of its notes over the last
        played pass's up to the same step, once it has ``LEVEL_NOTES`` notes and the change is
        ``LEVEL_CHANGE`` or more either way; else 1."""
        now = self._now
        if now.sum() < LEVEL_NOTES:
            return 1.0
        before = self._last[: int(np.flatnonzero(now).max()) + 1]
        before = before[~np.isnan(before)]
        if before.size < LEVEL_NOTES:
            return 1.0
        ratio = float(self._steps[now, VELOCITY].mean()) / max(float(before.mean()), 0.05)
        return ratio if ratio >= LEVEL_CHANGE or ratio <= 1.0 / LEVEL_CHANGE else 1.0

    def _publish(self) -> None:
        """The groove the model hears: each step's velocity faded by the passes it was missed, and
        the steps not played again yet in this pass at the level the player has moved to."""
        steps = self._steps.copy()
        level = self._level()
        if level != 1.0:
            waiting = ~self._now & (steps[:, HIT] > 0)
            steps[waiting, VELOCITY] = np.clip(steps[waiting, VELOCITY] * level, 0.02, 1.0)
        n = self._memory.forget_passes
        if n:
            missed = np.clip(self._played - 1 - self._stamp, 0, n)
            missed[self._now] = 0
            fade = 1.0 - FADE_DEPTH * missed / n
            steps[:, VELOCITY] *= np.where(steps[:, HIT] > 0, fade, 0.0).astype(np.float32)
        self._groove = _groove(steps)
        learning = self._learn_from is not None and not self._learned
        forming = None if learning else self._forming() or self._going_down()
        self._assumed = (_groove(self._assume_repeat(steps)) if learning
                         else _groove(self._assume_section(steps, *forming)) if forming else self._groove)

    def _forming(self) -> tuple[int, int] | None:
        """A new section begun in the pass in progress: once two beats or more of it were heard,
        ``SECTION_MIN_STEPS`` played there, ``KNOWN_NEW`` of them new, sharing less than
        ``section_change`` with the groove's steps there as the pass began, the bars ahead are
        heard as its repeat: (0, the period: two beats, or a bar once one was heard), else None.
        Until the pass ended and followed the section, the model heard the old groove ahead, and
        the new section's second bar played the old one's drums (a musician's review, session 51:
        4–9 hits where the bars around played 15–19). "There" is the pass up to the note just
        played, or its whole beats heard when both of its first two beats were played: a busier
        section over a sparse groove shares the old downbeats, and a note on one of them (eighths
        over half notes: on beat 3) had kept the rule off until beat 4 (session 53)."""
        # (the groove must have been there a pass already, as _follow_section asks)
        if not self._memory.section_change or not self._learned or self._knew or not (self._held & self._older).any():
            return None
        heard = self._heard_to - self._pass * STEPS
        if not 2 * STEPS_PER_BEAT - 0.5 <= heard < STEPS - 0.5:
            return None
        reached = math.floor(heard + 0.5)   # (a chord a moment early is on its step)
        steps = np.arange(STEPS)
        whole = steps < reached // STEPS_PER_BEAT * STEPS_PER_BEAT
        both_beats = self._now[:STEPS_PER_BEAT].any() and self._now[STEPS_PER_BEAT:2 * STEPS_PER_BEAT].any()
        if not (self._new_in(steps <= reached) or (both_beats and self._new_in(whole))):
            return None
        return 0, STEPS_PER_BAR if reached >= STEPS_PER_BAR else 2 * STEPS_PER_BEAT

    def _new_in(self, span: np.ndarray) -> bool:
        """The pass's notes in ``span`` are a new section's (:meth:`_forming`): a section begins on
        its downbeat (a lick off it, a bar of sixteenths on the "e"s, is none)."""
        played, held = self._now & span, self._held & span
        return bool(played[0] and played.sum() >= SECTION_MIN_STEPS and (played & ~held).sum() >= KNOWN_NEW
                    and _overlap(played, held) < self._memory.section_change)

    def _going_down(self) -> tuple[int, int] | None:
        """The player gone down in the pass in progress: the two whole beats before the note just
        played (the pass played from their start or before) play at most half of the groove's
        steady steps there (``DOWN_LEFT`` or more of them left out) and no other steps, their
        notes and the note ``LEVEL_CHANGE`` × softer than the last pass up to there (once in the
        pass: it holds while the pass stays thin): the bars ahead are
        heard as those beats again, and the loop's next bar as this one (as :meth:`_forming`'s;
        from the second bar, as it plays). At its end such a pass thins the groove at once
        (``_thin(passes=1)``). A musician's review (session 52): a loud chorus of eighths into a
        quiet verse of half notes kept the chorus's kick (6–7 a bar) through the verse's whole
        first pass."""
        memory = self._memory
        if not memory.section_change or not memory.forget_passes or not self._learned or self._knew \
                or not self._held.any():
            return None   # (forget_passes 0: no pass thins the groove, so the drums would come back up)
        heard = self._heard_to - self._pass * STEPS
        if not 2 * STEPS_PER_BEAT - 0.5 <= heard < STEPS:
            return None
        reached = math.floor(heard + 0.5)   # (a note a moment early is on its step)
        end = reached // STEPS_PER_BEAT * STEPS_PER_BEAT
        if not self._now[:end - 2 * STEPS_PER_BEAT + 1].any():
            return None   # (the player came in within the two beats: back from a rest, not down)
        window = slice(end - 2 * STEPS_PER_BEAT, end)   # (the two whole beats; the note just played triggers)
        played, held, steady = self._now[window], self._held[window], (self._held & self._steady)[window]
        if (played & ~held).any() or (steady & ~played).sum() < DOWN_LEFT or 2 * played.sum() > steady.sum():
            return None
        if not self._down:
            before = self._last[:reached + 1]
            before = before[~np.isnan(before)]
            now = self._steps[end - 2 * STEPS_PER_BEAT:reached + 1][self._now[end - 2 * STEPS_PER_BEAT:reached + 1], VELOCITY]
            if not before.size or not now.size or float(now.mean()) * LEVEL_CHANGE > max(float(before.mean()), 0.05):
                return None
            self._down = True   # (until the pass ends: an accented chord later in it is still the verse)
        return (STEPS_PER_BAR if end > STEPS_PER_BAR else 0), 2 * STEPS_PER_BEAT

    def _assume_section(self, steps: np.ndarray, start: int, period: int) -> np.ndarray:
        """The pass as the new section plays it (:meth:`_forming`): the part heard as played in
        this pass only (the old groove's steps there not played again are left out: kept, the
        model heard a bar busier than either section, a musician's review found), and the part
        not reached yet as its last ``period`` steps again, the second bar as the first; from
        ``start`` on the second bar, the first bar as the second (the loop's next bar)."""
        steps = steps.copy()
        begin, reached = self._pass * STEPS, math.floor(self._heard_to)
        span = np.arange(STEPS) <= reached - begin
        steps[span & ~self._now] = 0.0
        for position in range(reached + 1, begin + STEPS):
            if self._now[position % STEPS]:
                continue    # (a note a moment early, played on the step ahead)
            # (the second bar is the first again: two beats again from beat 3 put its downbeat on
            # beat 3's, and a figure resting there was heard with none, a fill to the model)
            back = STEPS_PER_BAR if position - begin >= STEPS_PER_BAR and not start else period
            steps[position % STEPS] = steps[(position - back) % STEPS]
        if start:
            steps[:STEPS_PER_BAR] = steps[STEPS_PER_BAR:]
        return steps


def _groove(steps: np.ndarray) -> Groove:
    """The looper's cells (hit, velocity, offset, LOW) as a Groove."""
    return Groove(steps[:, :LOW], steps[:, LOW])


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard overlap of two sets of steps (0 when both are empty)."""
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 0.0


def _plays_again(finished: np.ndarray, then: np.ndarray) -> bool:
    """``finished`` plays the pass ``then`` again: in the bars it plays, most of that pass's
    steps (a note moved or left out at most), and mostly them: not a reduction of it (stabs, a
    breakdown on its beats) nor a new figure that borrows a few of its steps."""
    bars = np.repeat(finished.reshape(-1, STEPS_PER_BAR).any(axis=1), STEPS_PER_BAR)
    then = then & bars
    common = int((finished & then).sum())
    return bool(then.any()) and common >= RECALL_COVER * then.sum() and common >= RECALL_OWN * finished.sum()

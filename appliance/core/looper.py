"""The overdub buffer: every pass of the loop records onto the groove of the passes before."""
from __future__ import annotations

import threading

import numpy as np

from appliance.core.groove import HIT, STEPS, VELOCITY, Groove, loop_pass, quantise


class Looper:
    """Hears notes at absolute positions and keeps the 2-bar groove.

    - Overdub: a louder note on a step replaces a softer one (within a pass and across
      passes); a softer note keeps the louder one but counts as playing the step again.
    - Forgetting: with ``forget_passes`` N > 0, a step nobody played for N whole passes is
      dropped from the groove; N = 0 keeps every step until ``clear``.
    - Freeze is the engine's business (it stops regenerating); the looper keeps recording
      while frozen, so that unfreezing follows what was played meanwhile.
    """

    def __init__(self, forget_passes: int = 0) -> None:
        if forget_passes < 0:
            raise ValueError("forget_passes must be 0 (never) or more")
        self.forget_passes = forget_passes
        self._lock = threading.Lock()
        self._steps = np.zeros((STEPS, 3), np.float32)
        self._last_pass = np.zeros(STEPS, np.int64)  # pass in which each step was last played
        self._pass = 0
        self._groove = Groove.empty()

    @property
    def groove(self) -> Groove:
        return self._groove

    def record(self, position: float, velocity: float) -> bool:
        """A note-on at an absolute position (steps) with velocity 0..1; True if the groove changed."""
        step, offset = quantise(position)
        note_pass = loop_pass(position)
        with self._lock:
            self._last_pass[step] = max(self._last_pass[step], note_pass)
            cell = self._steps[step]
            if cell[HIT] > 0 and velocity <= cell[VELOCITY]:
                return False
            cell[:] = (1.0, velocity, offset)
            self._groove = Groove(self._steps)
            return True

    def advance(self, position: float) -> bool:
        """Move to the pass that holds this position; forget stale steps. True if the groove changed."""
        now_pass = loop_pass(position)
        with self._lock:
            if now_pass <= self._pass:
                return False
            self._pass = now_pass
            if not self.forget_passes:
                return False
            stale = (self._steps[:, HIT] > 0) & (now_pass - self._last_pass > self.forget_passes)
            if not stale.any():
                return False
            self._steps[stale] = 0.0
            self._groove = Groove(self._steps)
            return True

    def clear(self) -> bool:
        with self._lock:
            had_notes = bool(self._steps[:, HIT].any())
            self._steps[:] = 0.0
            self._groove = Groove.empty()
            return had_notes

    def load(self, groove: Groove) -> None:
        """Start from a saved groove (every step counts as played in the current pass)."""
        with self._lock:
            self._steps[:] = groove.steps
            self._last_pass[:] = self._pass
            self._groove = Groove(self._steps)

"""Tempo and position: the interface every clock offers, and the box's own internal clock."""
from __future__ import annotations

import threading

from appliance.core.groove import STEPS_PER_BEAT

MIN_BPM = 40.0
MAX_BPM = 300.0


def check_bpm(bpm: float) -> float:
    bpm = float(bpm)
    if not MIN_BPM <= bpm <= MAX_BPM:
        raise ValueError(f"tempo {bpm:g} BPM is not in {MIN_BPM:g}..{MAX_BPM:g}")
    return bpm


def seconds_per_step(bpm: float) -> float:
    return 60.0 / bpm / STEPS_PER_BEAT


class Transport:
    """Where the band is: tempo, running or not, and the map between time and position.

    Position is in sixteenth steps since the start and keeps growing past the loop length;
    the engine wraps it. Times are seconds on the caller's clock.
    """

    def __init__(self, bpm: float = 120.0, start: float = 0.0, running: bool = True) -> None:
        self._lock = threading.Lock()
        self._bpm = check_bpm(bpm)
        self._anchor_time = float(start)  # at this time ...
        self._anchor_position = 0.0       # ... the position was this
        self._running = running

    @property
    def bpm(self) -> float:
        return self._bpm

    @property
    def running(self) -> bool:
        return self._running

    def position(self, t: float) -> float:
        with self._lock:
            if not self._running:
                return self._anchor_position
            return self._anchor_position + (t - self._anchor_time) / seconds_per_step(self._bpm)

    def time_at(self, position: float) -> float:
        with self._lock:
            return self._anchor_time + (position - self._anchor_position) * seconds_per_step(self._bpm)

    def _reanchor(self, now: float, position: float, bpm: float, running: bool) -> None:
        with self._lock:
            self._anchor_time, self._anchor_position = float(now), float(position)
            self._bpm, self._running = bpm, running


class InternalClock(Transport):
    """The box's own clock: a steady tempo that can be changed without a jump in position."""

    def set_bpm(self, bpm: float, now: float) -> None:
        bpm = check_bpm(bpm)
        self._reanchor(now, self.position(now), bpm, self._running)

    def start(self, now: float, position: float = 0.0) -> None:
        self._reanchor(now, position, self._bpm, True)

    def stop(self, now: float) -> None:
        self._reanchor(now, self.position(now), self._bpm, False)

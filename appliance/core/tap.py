"""Tap tempo: the tempo a player taps on a button or a pad."""
from __future__ import annotations

import statistics

from appliance.core.transport import MAX_BPM, MIN_BPM


DOUBLE_TRIGGER = 0.8   #: a tap this share of the fastest tempo's beat after the last is a bounce


class TapTempo:
    """Two or more taps set the tempo: 60 / the median gap of the last four gaps.

    A gap longer than ``timeout_s`` starts a new count. A tap sooner after the last than
    ``DOUBLE_TRIGGER`` of the fastest tempo's beat (0.16 s) is a pad's double trigger or a
    button's bounce, and is not a tap (``ignored`` counts them): taken as one, a double
    trigger 5 to 50 ms apart set 300 BPM (a fault harness's probe)."""

    def __init__(self, timeout_s: float = 2.0, low: float = MIN_BPM, high: float = MAX_BPM) -> None:
        self.timeout_s = timeout_s
        self.low, self.high = low, high
        self.ignored = 0
        self._taps: list[float] = []

    def tap(self, now: float) -> float | None:
        if self._taps and now - self._taps[-1] < DOUBLE_TRIGGER * 60.0 / self.high:
            self.ignored += 1
            return None
        if self._taps and now - self._taps[-1] > self.timeout_s:
            self._taps.clear()
        self._taps.append(now)
        self._taps = self._taps[-5:]
        if len(self._taps) < 2:
            return None
        gaps = [b - a for a, b in zip(self._taps, self._taps[1:])]
        gap = statistics.median(gaps)
        if gap <= 0:
            return None
        return min(self.high, max(self.low, 60.0 / gap))

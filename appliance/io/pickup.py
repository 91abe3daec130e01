"""Soft takeover: a knob whose position is not the value it controls (after a restore, a
scene, another knob, or a keyboard's knob never touched) takes over only once it reaches that
value, or crosses it, so nothing jumps. The panel's pots (``gpio.pickup``) and the keyboard's
mapped CC knobs (``midi_map.pickup``) both go through it."""
from __future__ import annotations

PICKUP_WINDOW = 0.02        #: a knob within this of the current value takes over


class Pickup:
    """One knob's soft takeover. ``on`` False: every position is taken at once."""

    def __init__(self, on: bool = True) -> None:
        self.on = on
        self.picked_up = not on
        self.sent: float | None = None     #: the value this knob last set (None: not since it picked up)
        self._side: int | None = None      #: which side of the value it was on, until it picks up

    def takes(self, position: float, current: float) -> bool:
        """Whether the knob at ``position`` (0..1) sets its parameter, now at ``current`` (0..1)."""
        if self.sent is not None and abs(current - self.sent) > 2 * PICKUP_WINDOW:
            # moved from elsewhere (a CC, a scene, a restore): pick up again
            self.picked_up, self.sent, self._side = not self.on, None, None
        if self.picked_up:
            return True
        side = 1 if position > current else -1
        crossed = self._side is not None and side != self._side
        self._side = side
        self.picked_up = abs(position - current) <= PICKUP_WINDOW or crossed
        return self.picked_up

"""MIDI clock on the wire: clock messages in (to the core's follower), the box's clock out.

The following itself (tempo from the ticks, Start/Stop, the switch between the box's own
clock and a followed one) is :mod:`appliance.core.clock`; this module only translates.
"""
from __future__ import annotations

import math
from typing import Callable

import mido

from appliance.core.clock import CLOCK_EVENTS, CLOCKS_PER_STEP, PPQN, ClockSwitch, MidiClockFollower
from appliance.core.groove import STEPS
from appliance.core.transport import Transport


def feed_clock(transport: ClockSwitch | MidiClockFollower, message: mido.Message, t: float) -> bool:
    """Hand a clock, start, stop, continue or songpos message to the follower; False for
    anything else (a message for the engine or the controls)."""
    if message.type not in CLOCK_EVENTS:
        return False
    transport.heard(message.type, t, message.pos if message.type == "songpos" else 0)
    return True


LATE_START_S = 0.05   #: the loop's beat one begun this recently is started at once (it is the slaves' too)


class ClockSender:
    """Master clock out: 24 ppqn from the transport, Start when it starts, Stop when it stops.

    ``due(until)`` returns (time, message) pairs up to ``until``, each once; the player
    thread merges them with the drum events.
    """

    def __init__(self, transport: Transport, on_start: Callable[[float, str], None] | None = None) -> None:
        self.transport = transport
        #: told when a Start, Continue or Stop goes out, and its kind (ClockSwitch.own_start)
        self.on_start = on_start
        self._next: int | None = None     # next clock index (position · 6)
        self._was_running = False
        self._not_before = -math.inf      # no clock is stamped before the Start it follows

    def hand_over(self, now: float) -> list[tuple[float, mido.Message]]:
        """A Stop for the slaves, once, when the box stops or another clock leads (the player
        sends the box's clock only while it is the master); it comes back with Song Position
        and Continue (or Start) where the box then is."""
        if not self._was_running:
            return []
        self._was_running, self._next = False, None
        if self.on_start is not None:
            self.on_start(now, "stop")
        return [(now, mido.Message("stop"))]

    def due(self, now: float, until: float) -> list[tuple[float, mido.Message]]:
        out: list[tuple[float, mido.Message]] = []
        transport = self.transport
        running = transport.running
        if running and not self._was_running:
            # Start (or Song Position + Continue) just before the next sixteenth, or at once for
            # the loop's beat one begun up to LATE_START_S ago (the box starts on a note a moment
            # before this thread looks: a slave sent Song Position 1 missed beat one); the first
            # clock after it is that sixteenth, as a slave expects.
            position = transport.position(now)
            step = math.floor(position + 1e-9)
            if step % STEPS or now - transport.time_at(step) > LATE_START_S:
                step = math.ceil(position - 1e-9)
            self._next = step * CLOCKS_PER_STEP
            at = max(now, transport.time_at(step) - 0.001)
            self._not_before = at          # a late start's first clocks go after it, not before
            if self.on_start is not None:
                self.on_start(at, "start")
            if step % STEPS:
                out.append((at, mido.Message("songpos", pos=step % STEPS)))
                out.append((at, mido.Message("continue")))
            else:
                out.append((at, mido.Message("start")))
        elif not running and self._was_running:
            out.extend(self.hand_over(now))
        self._was_running = running
        if not running or self._next is None:
            return out
        position = transport.position(now)
        if position * CLOCKS_PER_STEP - self._next > PPQN * 4 or position * CLOCKS_PER_STEP < self._next - PPQN * 4:
            self._next = math.ceil(position * CLOCKS_PER_STEP - 1e-9)    # jumped: re-locate
        horizon = transport.position(until) * CLOCKS_PER_STEP
        while self._next <= horizon:
            when = max(transport.time_at(self._next / CLOCKS_PER_STEP), self._not_before)
            out.append((when, mido.Message("clock")))
            self._next += 1
        return out

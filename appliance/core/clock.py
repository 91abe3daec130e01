"""MIDI clock, followed: the tempo and position a clock source implies, and the switch.

No MIDI bytes here: ``appliance.io.midi.clock`` turns messages into :meth:`heard` calls
and sends the box's own clock (:class:`~appliance.io.midi.clock.ClockSender`).

:class:`MidiClockFollower` is a :class:`~appliance.core.transport.Transport` driven by MIDI clock
(24 ppqn, so 6 clocks a sixteenth step), Start / Stop / Continue and Song Position Pointer.
Its tempo and phase come from a least-squares line through the last beat of clock arrivals:
jitter averages out, and a tempo change has fully settled one beat later.

Positions never go backwards (the looper counts passes). The loop is two bars, so a Start
("bar 1, beat 1") moves the position forward to a loop start rather than back to 0, and a
Song Position Pointer forward to a position with the same place in the loop; a move is
always more than a loop long, which the player takes as a relocation (see :func:`jump_to`).
Each anchoring bumps ``relocations``.

:class:`ClockSwitch` is the transport the engine gets: ``internal`` (the box's own clock),
``external`` (only MIDI clock), or ``auto`` (internal until a MIDI clock arrives, then follow
it; if the clock is lost while playing, carry on at its last tempo without a gap).
"""
from __future__ import annotations

from collections import deque
import logging
import math
import threading
import time
from typing import Callable

from appliance.core.groove import STEPS
from appliance.core.transport import (MAX_BPM, InternalClock, Transport, check_bpm, clamp_bpm,
                                      seconds_per_step)

log = logging.getLogger(__name__)

PPQN = 24
CLOCKS_PER_STEP = 6
#: what a clock source says: a tick (24 a beat), Start, Stop, Continue, Song Position Pointer
CLOCK_EVENTS = frozenset({"clock", "start", "stop", "continue", "songpos"})

IDLE, PLAYING, STOPPED = "idle", "playing", "stopped"


def forward_to(current: float, loop_position: float) -> float:
    """The first absolute position ≥ current that sits at ``loop_position`` in the loop."""
    return current + ((loop_position - current) % STEPS)


def jump_to(current: float, loop_position: float) -> float:
    """Where a Start or a song position puts the box: ``current`` when it is already there,
    else forwards to that place in the loop, two loops further on, so that the player sees a
    relocation (a move of more than a loop) instead of steps to catch up, and the looper
    sees its passes go on."""
    target = forward_to(current, loop_position)
    return target if target == current else target + 2 * STEPS


class MidiClockFollower(Transport):
    """A transport that follows MIDI clock. Tell it every clock event with :meth:`heard`.

    States: idle (no clock, or lost), playing, stopped. Ticks while idle start it playing
    from where ``adopt`` says (the box's own position, so that a clock without a Start
    joins in without a jump). Ticks while stopped only update the tempo.
    """

    def __init__(self, bpm: float = 120.0, *, window: int = PPQN, lost_after: float = 0.5,
                 clock: Callable[[], float] = time.monotonic,
                 adopt: Callable[[float], float | None] | None = None) -> None:
        self._lock = threading.Lock()
        self.window = max(2, window)
        self.lost_after = lost_after
        self.clock = clock
        self.adopt = adopt
        self._ticks: deque[tuple[int, float]] = deque(maxlen=self.window)
        self._n = -1                      # index of the last tick heard
        self._fit = (0.0, seconds_per_step(bpm) / CLOCKS_PER_STEP)   # t = a + b·n
        self._state = IDLE
        self._anchored = False            # a tick has fixed the position since the last Start
        self._ref_n = 0                   # at tick _ref_n ...
        self._ref_pos = 0.0               # ... the position was _ref_pos
        self._pending: float | None = None   # loop position the next tick will be at
        self._held = 0.0                  # position while not playing
        self._song_position: float | None = None
        self._last_tick = -math.inf
        self.relocations = 0

    # -- the Transport interface --------------------------------------------------------------
    @property
    def bpm(self) -> float:
        return 60.0 / (self._fit[1] * PPQN)

    @property
    def state(self) -> str:
        with self._lock:
            self._check_lost(self.clock())
            return self._state

    @property
    def running(self) -> bool:
        with self._lock:
            self._check_lost(self.clock())
            return self._state == PLAYING and self._anchored

    @property
    def last_tick_time(self) -> float:
        return self._last_tick

    @property
    def source(self) -> str:
        return "external"

    @property
    def own_bpm(self) -> None:
        return None

    def set_bpm(self, bpm: float, now: float) -> None:
        """Nothing to set: the clock source keeps the tempo."""

    def position(self, t: float) -> float:
        with self._lock:
            if self._state != PLAYING or not self._anchored:
                return self._held
            a, b = self._fit
            n = (t - a) / b
            # Never extrapolate more than a beat past the last tick heard.
            n = min(n, self._n + PPQN)
            return self._ref_pos + (n - self._ref_n) / CLOCKS_PER_STEP

    def time_at(self, position: float) -> float:
        with self._lock:
            a, b = self._fit
            if self._state != PLAYING or not self._anchored:
                return self.clock() + (position - self._held) * CLOCKS_PER_STEP * b
            n = self._ref_n + (position - self._ref_pos) * CLOCKS_PER_STEP
            return a + b * n

    # -- what the clock source says -----------------------------------------------------------
    def heard(self, event: str, t: float, song_position: int = 0) -> None:
        """One of :data:`CLOCK_EVENTS` arrived at ``t`` (``song_position`` for ``songpos``)."""
        if event == "clock":
            self.tick(t)
        elif event == "start":
            self.start(t)
        elif event == "continue":
            self.resume(t)
        elif event == "stop":
            self.stop(t)
        elif event == "songpos":
            self.song_position(song_position)
        else:
            raise ValueError(f"{event!r} is not a clock event")

    def tick(self, t: float) -> None:
        with self._lock:
            self._check_lost(t)
            self._n += 1
            self._last_tick = t
            self._ticks.append((self._n, t))
            self._refit()
            if self._state == IDLE and len(self._ticks) >= 2:
                # A clock without a Start: join it where the box already is.
                self._adopt(t)
                self._pending = self._held % STEPS
                self._state = PLAYING
                self._anchored = False
                log.info("following MIDI clock at %.1f BPM (no Start heard)", self.bpm)
            if self._state == PLAYING and self._pending is not None:
                self._anchor_here(self._pending)

    def start(self, t: float) -> None:
        with self._lock:
            self._check_lost(t)
            self._song_position = None
            self._hold(t)
            self._adopt(t)
            self._state, self._anchored, self._pending = PLAYING, False, 0.0
            log.info("MIDI Start")

    def resume(self, t: float) -> None:
        with self._lock:
            self._check_lost(t)
            self._hold(t)
            self._adopt(t)
            where = self._song_position if self._song_position is not None else self._held % STEPS
            self._song_position = None
            self._state, self._anchored, self._pending = PLAYING, False, where % STEPS
            log.info("MIDI Continue")

    def stop(self, t: float) -> None:
        with self._lock:
            self._hold(t)
            self._state, self._pending = STOPPED, None
            log.info("MIDI Stop")

    def song_position(self, sixteenths: int) -> None:
        """Song Position Pointer: MIDI beats (sixteenths) since the song start = our steps."""
        with self._lock:
            self._song_position = float(sixteenths)

    # -- internals (caller holds the lock) ----------------------------------------------------
    def _hold(self, t: float) -> None:
        """Freeze the position where it is now (for a stop or before a relocation)."""
        if self._state == PLAYING and self._anchored:
            a, b = self._fit
            n = min((t - a) / b, self._n + PPQN)
            self._held = max(self._held, self._ref_pos + (n - self._ref_n) / CLOCKS_PER_STEP)

    def _adopt(self, t: float) -> None:
        """Never behind the position the box is already playing at (see ``adopt``)."""
        if self.adopt is not None:
            here = self.adopt(t)
            if here is not None:
                self._held = max(self._held, here)

    def _anchor_here(self, loop_position: float) -> None:
        target = jump_to(self._held, loop_position)
        self.relocations += 1
        self._ref_n, self._ref_pos = self._n, target
        self._held = target
        self._anchored, self._pending = True, None

    def _refit(self) -> None:
        """Least squares through the window, then again without the late stragglers: a
        clock can arrive late (a busy sender, a delayed cycle) but never early, so ticks
        well above the line are delays, not tempo."""
        ticks = list(self._ticks)
        if len(ticks) < 2:
            n, t = ticks[-1]
            b = self._fit[1]
            self._fit = (t - b * n, b)
            return
        a, b = _line(ticks)
        on_time = [(n, t) for n, t in ticks if t - (a + b * n) <= LATE_S]
        if len(on_time) >= max(2, len(ticks) // 2) and len(on_time) < len(ticks):
            a, b = _line(on_time)
        low, high = 60.0 / (MAX_BPM * PPQN), 60.0 / (20.0 * PPQN)   # 20: a slow clock is still followed
        if not low <= b <= high:     # nonsense (a burst of clocks): keep the last tempo
            b = self._fit[1]
            a = min(t - b * n for n, t in ticks)
        self._fit = (a, b)

    def _check_lost(self, now: float) -> None:
        if self._state == PLAYING and now - self._last_tick > self.lost_after \
                and self._last_tick > -math.inf:
            self._hold(self._last_tick)
            self._state, self._anchored = IDLE, False
            self._ticks.clear()
            log.warning("MIDI clock lost (nothing for %.1f s); check the clock source's cable",
                        now - self._last_tick)


LATE_S = 0.0015   #: a clock this far behind the fitted line is a straggler


def _line(points: list[tuple[int, float]]) -> tuple[float, float]:
    """(a, b) of t = a + b·n by least squares."""
    count = len(points)
    mean_n = sum(n for n, _ in points) / count
    mean_t = sum(t for _, t in points) / count
    snn = sum((n - mean_n) ** 2 for n, _ in points)
    snt = sum((n - mean_n) * (t - mean_t) for n, t in points)
    b = snt / snn if snn else 0.0
    return mean_t - b * mean_n, b


class ClockSwitch(Transport):
    """The transport the engine plays on: internal, external or auto (see module doc)."""

    MODES = ("internal", "external", "auto")

    def __init__(self, mode: str = "auto", bpm: float = 120.0, *,
                 clock: Callable[[], float] = time.monotonic, lost_after: float = 0.5) -> None:
        if mode not in self.MODES:
            raise ValueError(f"tempo.clock {mode!r} is not one of {', '.join(self.MODES)}")
        check_bpm(bpm)
        self.mode = mode
        self.clock = clock
        now = clock()
        self._source = "external" if mode == "external" else "internal"
        self.internal = InternalClock(bpm=bpm, start=now)
        self.follower = MidiClockFollower(bpm=bpm, clock=clock, lost_after=lost_after,
                                          adopt=self._adopt)
        self._switch_lock = threading.RLock()
        self._relocations = 0
        if mode == "external":
            self.internal.stop(now)

    def _adopt(self, t: float) -> float | None:
        """Where the box is while it plays on its own clock (the follower joins from here)."""
        if self._source == "internal" and self.internal.running:
            return self.internal.position(t)
        return None

    # -- what is playing ----------------------------------------------------------------------
    @property
    def source(self) -> str:
        self._update()
        return self._source

    def _active(self) -> Transport:
        self._update()
        return self.follower if self._source == "external" else self.internal

    def _update(self) -> None:
        if self.mode != "auto":
            return
        with self._switch_lock:
            state = self.follower.state
            if self._source == "internal" and state == PLAYING and self.follower.running:
                self._source = "external"
                self._relocations += 1
                log.info("clock: following MIDI clock at %.1f BPM", self.follower.bpm)
            elif self._source == "external" and state == IDLE:
                # Carry on from the last tick heard, at the last tempo: no gap, no jump.
                since = self.follower.last_tick_time
                where = self.follower.position(since)
                self.internal.set_bpm(clamp_bpm(self.follower.bpm), since)
                self.internal.start(since, position=where)
                self._source = "internal"
                self._relocations += 1
                log.info("clock: MIDI clock gone, carrying on at %.1f BPM on the internal clock",
                         self.internal.bpm)

    @property
    def relocations(self) -> int:
        """Bumped whenever the position may have jumped (a Start, a song position, a switch)."""
        self._update()
        return self._relocations + self.follower.relocations

    @property
    def bpm(self) -> float:
        return self._active().bpm

    @property
    def running(self) -> bool:
        return self._active().running

    def position(self, t: float) -> float:
        return self._active().position(t)

    def time_at(self, position: float) -> float:
        return self._active().time_at(position)

    @property
    def own_bpm(self) -> float:
        """The internal clock's tempo, kept while a MIDI clock is followed."""
        return self.internal.bpm

    # -- input and control --------------------------------------------------------------------
    def heard(self, event: str, t: float, song_position: int = 0) -> None:
        """A clock event (see :meth:`MidiClockFollower.heard`); ignored when internal: the
        box is its own master."""
        if self.mode == "internal":
            return
        with self._switch_lock:
            self.follower.heard(event, t, song_position)
        self._update()

    def set_bpm(self, bpm: float, now: float) -> None:
        """The internal tempo (an external clock sets its own)."""
        self.internal.set_bpm(bpm, now)

    def start(self, now: float, position: float = 0.0) -> None:
        self.internal.start(now, jump_to(self.internal.position(now), position % STEPS))
        self._relocations += 1

    def stop(self, now: float) -> None:
        self.internal.stop(now)

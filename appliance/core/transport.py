"""Tempo and position: the interface every clock offers, and the box's own internal clock."""
from __future__ import annotations

from abc import ABC, abstractmethod
import threading

from appliance.core.groove import STEPS_PER_BEAT

MIN_BPM = 40.0   #: the slowest tempo the box plays (config, knobs, tap, saved state, clock follower)
MAX_BPM = 300.0  #: the fastest


def check_bpm(bpm: float) -> float:
    bpm = float(bpm)
    if not MIN_BPM <= bpm <= MAX_BPM:
        raise ValueError(f"tempo {bpm:g} BPM is not in {MIN_BPM:g}..{MAX_BPM:g}")
    return bpm


def clamp_bpm(bpm: float) -> float:
    """``bpm`` brought into MIN_BPM..MAX_BPM (a tap, a followed clock, a saved tempo)."""
    return min(MAX_BPM, max(MIN_BPM, float(bpm)))


def seconds_per_step(bpm: float) -> float:
    return 60.0 / bpm / STEPS_PER_BEAT


class Transport(ABC):
    """Where the band is: what the engine, the player, the controls and the state read.

    Position is in sixteenth steps since the start and keeps growing past the loop length;
    the engine wraps it. Times are seconds on the caller's clock. An implementation must
    provide (all thread-safe: the player, MIDI input and the controls call them at once):

    - :attr:`bpm`: the tempo playing now;
    - :attr:`running`: whether the band plays (stopped: the position holds);
    - :meth:`position` and :meth:`time_at`: the map between time and position, and back,
      at the current tempo;
    - :attr:`source`: ``"internal"`` while the box keeps time itself, ``"external"`` while
      it follows a MIDI clock (tempo knobs and tap are ignored then, and the box sends no
      clock of its own);
    - :attr:`own_bpm`: the tempo of the box's own clock, what :meth:`set_bpm` sets and what
      is saved (None for a transport without a clock of its own);
    - :meth:`set_bpm`: set the box's own tempo from ``now``, with no jump in position
      (ValueError outside :data:`MIN_BPM`..:data:`MAX_BPM`).
    """

    @property
    @abstractmethod
    def bpm(self) -> float: ...

    @property
    @abstractmethod
    def running(self) -> bool: ...

    @abstractmethod
    def position(self, t: float) -> float: ...

    @abstractmethod
    def time_at(self, position: float) -> float: ...

    @property
    @abstractmethod
    def source(self) -> str: ...

    @property
    @abstractmethod
    def own_bpm(self) -> float | None: ...

    @abstractmethod
    def set_bpm(self, bpm: float, now: float) -> None: ...

    @property
    def relocations(self) -> int:
        """A count bumped whenever the position jumps (a start somewhere else, a master's
        Start, Continue or Song Position, a switch of clocks); the engine then re-locates
        the player and the looper (``Engine.relocate``). 0 for a transport that never jumps."""
        return 0


class InternalClock(Transport):
    """The box's own clock: a steady tempo that can be changed without a jump in position."""

    def __init__(self, bpm: float = 120.0, start: float = 0.0, running: bool = True) -> None:
        self._lock = threading.Lock()
        self._bpm = check_bpm(bpm)
        self._anchor_time = float(start)  # at this time ...
        self._anchor_position = 0.0       # ... the position was this
        self._running = running
        self._relocations = 0

    @property
    def relocations(self) -> int:
        """Bumped whenever the position jumps (a start at a position, a Start from a master):
        the engine then re-locates the player and the looper (``Engine.relocate``)."""
        return self._relocations

    @property
    def bpm(self) -> float:
        return self._bpm

    @property
    def running(self) -> bool:
        return self._running

    @property
    def source(self) -> str:
        return "internal"

    @property
    def own_bpm(self) -> float:
        return self._bpm

    def position(self, t: float) -> float:
        with self._lock:
            if not self._running:
                return self._anchor_position
            return self._anchor_position + (t - self._anchor_time) / seconds_per_step(self._bpm)

    def time_at(self, position: float) -> float:
        with self._lock:
            return self._anchor_time + (position - self._anchor_position) * seconds_per_step(self._bpm)

    def set_bpm(self, bpm: float, now: float) -> None:
        bpm = check_bpm(bpm)
        self._reanchor(now, self.position(now), bpm, self._running)

    def start(self, now: float, position: float = 0.0) -> None:
        """Play from ``position`` (a relocation when it is not where the clock already is)."""
        if position != self.position(now):
            self._relocations += 1
        self._reanchor(now, position, self._bpm, True)

    def stop(self, now: float) -> None:
        self._reanchor(now, self.position(now), self._bpm, False)

    def _reanchor(self, now: float, position: float, bpm: float, running: bool) -> None:
        with self._lock:
            self._anchor_time, self._anchor_position = float(now), float(position)
            self._bpm, self._running = bpm, running

"""How the box starts playing: at once, with the player's first note, or after a count-in.

A drummer on stage waits for the band. ``first-note`` (the box's default) keeps the drums
silent until the keyboard plays: that note is beat one of the loop, at the set tempo.
``count-in`` waits for N quarter notes tapped on chosen keys or pads (any key when none are
chosen): their spacing sets the tempo, and the loop starts on the next bar, one beat after
the last tap, as a drummer's "one, two, three, four". ``now`` plays from the moment the box
is up. Only the box's own clock is held: a MIDI clock that starts first starts the box.
"""
from __future__ import annotations

from dataclasses import dataclass
import logging
from typing import Protocol

from appliance.core.transport import MAX_BPM, MIN_BPM, seconds_per_step

log = logging.getLogger(__name__)

MODES = ("now", "first-note", "count-in")
DOUBLE_HIT_S = 60.0 / MAX_BPM   #: a tap closer than this to the one before is a double hit: ignored
LONGEST_GAP_S = 60.0 / MIN_BPM  #: a gap longer than this starts the count again

WAITING, COUNTING, STARTING, PLAYING = "waiting", "counting", "starting", "playing"


class StartableClock(Protocol):
    """What a start behaviour needs of the transport: the box's own clock, held and started."""

    @property
    def running(self) -> bool: ...

    @property
    def bpm(self) -> float: ...

    def set_bpm(self, bpm: float, now: float) -> None: ...

    def start(self, now: float, position: float = 0.0) -> None: ...

    def stop(self, now: float) -> None: ...


@dataclass(frozen=True)
class StartSettings:
    mode: str = "now"                      #: "now", "first-note" or "count-in"
    count_in_notes: tuple[int, ...] = ()   #: the keys/pads that count in; () = any key
    count_in_beats: int = 4                #: quarter notes in the count-in

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"start mode {self.mode!r} is not one of {', '.join(MODES)}")
        if not 2 <= self.count_in_beats <= 8:
            raise ValueError(f"count_in_beats {self.count_in_beats} is not in 2..8")
        if not all(0 <= n <= 127 for n in self.count_in_notes):
            raise ValueError("count_in_notes must be MIDI notes 0..127")


class Starter:
    """Holds the clock until the player starts, then gets out of the way for good.

    ``hear(note, t)`` for every keyboard note-on while the box waits: True when the note was
    a count-in tap (not to be recorded). ``tick(t, lookahead)`` from the player's turn: starts
    a counted-in clock just before its downbeat, so that the player schedules the downbeat
    as its first step. Times are seconds on the transport's clock.
    """

    def __init__(self, settings: StartSettings, clock: StartableClock, now: float) -> None:
        self.settings = settings
        self.mode = settings.mode   #: how the next song starts: as set, and after an ending never "now"
        self._clock = clock
        self._taps: list[float] = []
        self._downbeat: float | None = None
        self._bpm: float | None = None
        if settings.mode == "now":
            self.state = PLAYING
        else:
            self.state = WAITING
            clock.stop(now)

    def again(self, now: float) -> None:
        """The song has ended: hold the box's own clock and wait for the next song, as at the
        start (``now`` waits for the first note: the band is between songs)."""
        self.mode = "first-note" if self.settings.mode == "now" else self.settings.mode
        self._taps.clear()
        self._downbeat = self._bpm = None
        self.state = WAITING
        self._clock.stop(now)

    @property
    def waiting(self) -> bool:
        return self.state != PLAYING

    def describe(self) -> str:
        """What the box waits for, in a musician's words ('' once it plays)."""
        s = self.settings
        if self.state == PLAYING:
            return ""
        if self.mode == "first-note":
            return "waiting for the first note (it is beat one)"
        if self.state == STARTING:
            return f"counted in at {self._bpm:.1f} BPM: starting on the next bar"
        keys = ("any key" if not s.count_in_notes
                else "note " + "/".join(str(n) for n in s.count_in_notes))
        return (f"waiting for the count-in: {s.count_in_beats} quarter notes on {keys} "
                f"({len(self._taps)}/{s.count_in_beats} heard)")

    def hear(self, note: int, t: float) -> bool:
        """A keyboard note-on while the box may be waiting. True: it was a count-in tap."""
        if self.state == PLAYING:
            return False
        if self._clock.running:           # a MIDI clock started the box before the player did
            self.state = PLAYING
            return False
        if self.mode == "first-note":
            self._clock.start(t, 0.0)
            self.state = PLAYING
            log.info("start: first note heard, playing at %.1f BPM", self._clock.bpm)
            return False
        if self.state == STARTING:
            return False                   # between the last tap and the downbeat: not a tap
        notes = self.settings.count_in_notes
        if notes and note not in notes:
            return False
        return self._tap(t)

    def _tap(self, t: float) -> bool:
        if self._taps:
            gap = t - self._taps[-1]
            if gap < DOUBLE_HIT_S:
                return True                # a double hit on the pad: one tap
            if gap > LONGEST_GAP_S:
                self._taps.clear()         # too slow to be a count: this tap starts a new one
        self._taps.append(t)
        self.state = COUNTING
        if len(self._taps) < self.settings.count_in_beats:
            return True
        beat = (self._taps[-1] - self._taps[0]) / (len(self._taps) - 1)
        self._bpm = min(max(60.0 / beat, MIN_BPM), MAX_BPM)
        self._downbeat = self._taps[-1] + 60.0 / self._bpm
        self._clock.set_bpm(self._bpm, t)
        self.state = STARTING
        log.info("start: counted in at %.1f BPM; the loop starts on the next bar", self._bpm)
        return True

    def tick(self, t: float, lookahead: float) -> bool:
        """The player's turn: start a counted-in clock as its downbeat comes into view. True on
        the turn that starts it (the drums come in on that downbeat)."""
        if self.state == PLAYING:
            return False
        if self._clock.running and self.state != STARTING:
            self.state = PLAYING           # a MIDI clock started the box
            return False
        if self.state != STARTING or self._downbeat is None or self._bpm is None:
            return False
        # Less than a step ahead, so that the player's first step is the downbeat itself.
        ahead = min(lookahead, 0.5 * seconds_per_step(self._bpm))
        if t >= self._downbeat - ahead:
            self._clock.start(self._downbeat, 0.0)
            self.state = PLAYING
            return True
        return False

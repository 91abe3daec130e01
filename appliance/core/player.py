"""The player: a Pattern → timed note-on/note-off events, a look-ahead window at a time."""
from __future__ import annotations

from dataclasses import dataclass
import heapq
import itertools
import math
import threading

import mido
import numpy as np

from appliance.core import limbs
from appliance.core.limbs import KICK, SNARE
from appliance.core.groove import (GM_NOTES, GM_PEDAL_HAT, HIT, NUM_VOICES, OFFSET, STEPS, STEPS_PER_BAR,
                                   VELOCITY, Pattern)
from appliance.core.fills import accent_level
from appliance.core.generator import scale_velocities
from appliance.core.phrase import CRASH, Phrasing, entry_downbeat, marked_downbeat, with_crash
from appliance.core.stops import ANSWERED, HIT_EARLY, LAYS_OUT, PICKUP_LEVEL, hit_downbeat
from appliance.core.transport import Transport

SWAP_EVERY = {"step": 1, "beat": STEPS_PER_BAR // 4, "bar": STEPS_PER_BAR}
HELD_BACK = 4   #: steps laid out in stop time kept for the band's return (more than the look-ahead ever schedules)
SPLIT_S = 0.03  #: a kick or crash that went out more than this (s) before a stop-time hit's answer is struck again with it
#: a press of end this long after a bar line is one with the last chord on it: it ends there, its
#: crash as late as the press (a musician's review: 70 ms late cost a whole extra bar; hands press
#: a pad up to about a tenth of a second after the chord)
END_LATE_S = 0.12


@dataclass(frozen=True)
class Event:
    """A MIDI message due at a time (seconds on the transport's clock)."""

    time: float
    message: mido.Message


@dataclass(frozen=True)
class PlayerSettings:
    notes: tuple[int, ...] = GM_NOTES             #: output note per voice
    channels: tuple[int, ...] = (10,) * NUM_VOICES  #: output channel per voice, 1..16
    pedal_hat: int | None = GM_PEDAL_HAT          #: a closed hat under ride/crash plays this; None: not at all
    gate: float = 0.5                             #: note length in steps (cut before the next step)
    swap_at: str = "beat"                         #: a new pattern starts at a "step", "beat" or "bar" boundary
    lookahead: float = 0.05                       #: seconds scheduled ahead of now
    max_late: float = 0.05                        #: a note-on later than this is dropped, not played
    crash_every: int = 8                          #: bars between crashes besides marked downbeats; 0 = as the model plays them
    fill_every: int = 4                           #: bars of a phrase (appliance.core.phrase); 0 = fills as the model plays them

    def __post_init__(self) -> None:
        if len(self.notes) != NUM_VOICES or not all(0 <= n <= 127 for n in self.notes):
            raise ValueError(f"notes must be {NUM_VOICES} MIDI notes 0..127")
        if len(self.channels) != NUM_VOICES or not all(1 <= c <= 16 for c in self.channels):
            raise ValueError(f"channels must be {NUM_VOICES} MIDI channels 1..16")
        if self.pedal_hat is not None and not 0 <= self.pedal_hat <= 127:
            raise ValueError(f"pedal_hat {self.pedal_hat} is not a MIDI note 0..127 (or None)")
        if self.swap_at not in SWAP_EVERY:
            raise ValueError(f"swap_at {self.swap_at!r} is not one of {', '.join(SWAP_EVERY)}")
        if not 0 < self.gate <= 1:
            raise ValueError("gate must be in (0, 1] steps")
        if not 0 <= self.crash_every <= 64:
            raise ValueError(f"crash_every {self.crash_every} is not in 0..64 bars (0 = the model's crashes as they are)")
        if not 0 <= self.fill_every <= 64:
            raise ValueError(f"fill_every {self.fill_every} is not in 0..64 bars (0 = the model's fills as they are)")


def _earlier(cut: float | None, other: float | None) -> float | None:
    """The earlier of two withdrawal times, either of which may be None (none)."""
    if cut is None or other is None:
        return other if cut is None else cut
    return min(cut, other)


class Player:
    """Schedules the playing pattern, step by step, on the transport.

    Step k's notes are scheduled once the look-ahead window reaches k − ½ (the earliest a
    negative offset can play it). Every step is played from one pattern; a pattern offered
    with ``offer`` is taken at the next step (or bar) boundary the player schedules. Every
    note-on gets its note-off, at most half a step after the step, so the same note never
    overlaps itself. Queued notes are kept as positions, so a tempo change moves them too.
    When the transport stops, queued note-ons are dropped, sounding notes are released, and
    Continue picks up at the step where it stopped.
    """

    JUMP = 0.5  #: a backwards move larger than this (steps) is a relocation, not clock jitter

    def __init__(self, transport: Transport, settings: PlayerSettings = PlayerSettings(),
                 pattern: Pattern | None = None) -> None:
        self.transport = transport
        self.settings = settings
        self._pattern = pattern or Pattern.empty()
        self._waiting_for_first = pattern is None  # nothing plays until the first pattern
        self._offered: Pattern | None = None
        self.lift = 1.0   #: how much louder than the pattern a big fill ends and the crash after it (dynamics.lift)
        self._next_step: int | None = None
        self._last_position = 0.0                  # set with _next_step (_locate, _jump)
        self._was_running = False
        self._queue: list[tuple[float, int, mido.Message]] = []  # (position, seq, message)
        self._seq = itertools.count()
        self._sounding: dict[tuple[int, int], int] = {}
        self._lock = threading.Lock()
        self._cued = False
        self._cue_scale = 1.0             # the velocity scale a cue asks for ...
        self._first_scale: float | None = None   # ... applied from the cued start until a new pattern is taken
        self._made_before: Pattern | None = None  # the pattern offered or playing at the cued start
        self._phrasing = Phrasing(settings.crash_every, settings.fill_every)
        self.late_drops = 0
        self._end: int | None = None    # the song ends on this downbeat (absolute step): nothing after
        self._end_hit = True            # ... with a crash and a kick on it
        self._fresh = False             # a new song: the next start is located as the first one was
        self._sent_to: float | None = None   # the position up to which queued notes have been handed out
        self._crash_out: tuple[float, tuple[int, int]] | None = None   # the last crash handed out: position, (channel, note)
        self._withdraw: float | None = None     # an ending's cut, told by the next schedule (see withdrawn)
        self._withdrawn: float | None = None    # the cut the last schedule told
        #: the player has rested long enough that the drums are winding down (Engine): no crash marks a phrase
        self.resting = False
        self._laid_out = False   # stop time: the steps play nothing, the band's hits are answered (stop_time) ...
        self._laid_out_from = -math.inf   # ... from this position
        self._held_back: dict[int, np.ndarray] = {}   # the last steps laid out: step → its cells
        self._stop_accent: float | None = None   # ... the accent level its answers play at (the pattern's at its first)
        self._struck: dict[tuple[int, int], tuple[float, int]] = {}   # (channel, note) → where and how hard its last note-on went out
        self._struck_before: dict[tuple[int, int], tuple[float, int]] = {}   # ... and the one before (a withdrawal's)
        self._crash_before: tuple[float, tuple[int, int]] | None = None      # the crash handed out before _crash_out

    @property
    def pattern(self) -> Pattern:
        """The pattern playing now."""
        return self._pattern

    @property
    def to_play(self) -> Pattern | None:
        """The pattern playing now; before the first is taken, the one offered to it (a
        restored freeze waiting for the first note), or None."""
        return self._pattern if not self._waiting_for_first else self._offered

    @property
    def has_pattern(self) -> bool:
        """True once the first pattern (generated or restored) has been taken to play."""
        return not self._waiting_for_first

    @property
    def next_step(self) -> int | None:
        """The next absolute step not yet scheduled (None before the first tick)."""
        return self._next_step

    def offer(self, pattern: Pattern | None) -> None:
        """Hand over a new pattern (None withdraws one not yet taken); one reference swap."""
        self._offered = pattern

    def cue(self, scale: float = 1.0) -> None:
        """The transport is about to start on a downbeat that may be a moment past by the time
        the player looks (the player's first note starts the loop): play that step, up to
        ``max_late`` late, rather than skip it. Only a player that has not run yet takes it.
        ``scale``: the velocities of what it plays until it takes a new pattern (the first note's
        level: the pattern made before anything was heard is at the model's own)."""
        self._cue_scale = scale
        self._cued = True

    def withdraw(self) -> None:
        """Withdraw the pattern offered and not yet taken (a freeze): once this returns, no
        step will start it (it waits for a ``schedule`` under way to finish)."""
        with self._lock:
            self._offered = None

    @property
    def ending(self) -> int | None:
        """The downbeat (absolute step) the song ends on, or None."""
        return self._end

    @property
    def ending_hit(self) -> bool:
        """Whether the ending plays its last hit (the end action) or stops without one (a rest)."""
        return self._end_hit

    def end_on_next_bar(self, position: float, hit: bool = True, now: float | None = None) -> int | None:
        """End the song on the next bar line not yet scheduled (``position``: where the transport
        is, for a player that has scheduled nothing): with ``hit``, a crash and a kick there at the
        pattern's accent level; after it, nothing plays until :meth:`resume`. The downbeat, or None
        when an ending is already on its way.

        With ``hit`` and ``now``, a press with the last chord ends on its bar line: a line already
        scheduled ends there if ``now`` is at most ``END_LATE_S`` past it (see :meth:`_end_on_scheduled`)."""
        with self._lock:    # the next step is read and the ending set between two steps
            if self._end is not None:
                return None
            next_step = None if self._fresh else self._next_step     # None: nothing scheduled yet
            if hit and now is not None and next_step is not None and next_step > 0:
                line = (next_step - 1) // STEPS_PER_BAR * STEPS_PER_BAR   # the last line scheduled
                if now - self.transport.time_at(line) <= max(self.settings.max_late, END_LATE_S):
                    self._end_on_scheduled(line, now)
                    return line
            first = next_step if next_step is not None else math.ceil(position)
            self._end, self._end_hit = -(-first // STEPS_PER_BAR) * STEPS_PER_BAR, hit
            return self._end

    def _end_on_scheduled(self, line: int, now: float) -> None:
        """End on a bar line already scheduled (under the lock): what is queued from it on is
        dropped (its note-offs kept); if the line's notes are still queued, the last hit plays on
        it as usual, else they have gone out and a crash joins them now (none if one went out there),
        and the notes handed out after the line are withdrawn (:meth:`withdrawn`)."""
        self._end, self._end_hit = line, True
        gone = self._sent_to is not None and line <= self._sent_to
        if gone:    # the line's own notes may be pulled late: everything from half a step after it is not
            self._withdraw_from(line + 0.5)
        # the line's own notes may be pushed early: everything from half a step before it is the line's or later
        self._queue = [entry for entry in self._queue if entry[0] < line - 0.5 or entry[2].type == "note_off"]
        heapq.heapify(self._queue)
        crash_key = (self.settings.channels[CRASH] - 1, self.settings.notes[CRASH])
        if not gone:
            self._ending_hit(line, self.settings)
        elif self._crash_out is None or self._crash_out[0] < line - 0.5 or self._crash_out[1] != crash_key:
            velocity = max(1, min(127, round(accent_level(self._pattern.steps) * 127)))
            channel, note = self.settings.channels[CRASH] - 1, self.settings.notes[CRASH]
            on_position = max(float(line), self.transport.position(now))
            self._push(on_position, mido.Message("note_on", channel=channel, note=note, velocity=velocity))
            self._push(on_position + min(self.settings.gate, 0.5), mido.Message("note_off", channel=channel,
                                                                               note=note, velocity=0))

    def resume(self) -> None:
        """The player plays again after an ending (the next song's first note)."""
        with self._lock:
            self._end = None

    @property
    def stopped(self) -> bool:
        """In stop time: the drums play the band's hits only (:meth:`stop_time`)."""
        return self._laid_out

    def stop_time(self, position: float, now: float, first: bool = False, scale: float = 1.0) -> None:
        """Stop time (appliance/core/stops.py): the band's hit at ``position`` gets a crash and a
        kick at the accent level of the pattern playing where stop time began, each unless one
        went out on that hit's downbeat already, loud enough and with it (:meth:`_answer`); the drums lay out from the hit (from the "and" of 1, ``LAYS_OUT``, at the
        ``first`` hit heard as stop time, as a drummer takes that long to hear it): what is queued
        from there is dropped (its note-offs kept), and the steps play nothing until :meth:`play_on`.
        ``scale``: the hit's level against the groove's (the drums' law, louder too). No hit after
        the song's end, nor before the first pattern."""
        with self._lock:
            here = max(position, self.transport.position(now))
            downbeat = hit_downbeat(position)
            if self._end is not None and downbeat >= self._end:
                return   # the song ends there: its last hit is queued already
            # a hit pushed ahead of the bar line takes the downbeat's place: out from there
            out = max(here, downbeat + LAYS_OUT) if first and position >= downbeat else here
            if not self._waiting_for_first and (first or self._stop_accent is None):
                self._stop_accent = accent_level(self._pattern.steps)
            self._laid_out, self._laid_out_from, self._held_back = True, out, {}
            self._queue = [entry for entry in self._queue if entry[0] < out or entry[2].type == "note_off"]
            heapq.heapify(self._queue)
            self._withdraw_from(out)
            if not self._waiting_for_first:
                self._answer(here, downbeat - HIT_EARLY, (CRASH, KICK), self._hit_velocity(scale))

    def stop_time_pickup(self, position: float, now: float, scale: float = 1.0) -> None:
        """A pickup into stop time's next hit, at ``position``: the snare plays it with the band
        (at ``PICKUP_LEVEL`` of a hit's level); the drums stay laid out."""
        with self._lock:
            if self._laid_out and not self._waiting_for_first and self._end is None:
                here = max(position, self.transport.position(now))
                self._answer(here, here - 0.5, (SNARE,), self._hit_velocity(scale * PICKUP_LEVEL))

    def _answer(self, here: float, since: float, voices: tuple[int, ...], velocity: int) -> None:
        """The band's hit answered at ``here`` by ``voices`` (under the lock): a voice that went out
        since ``since``, at ``ANSWERED`` of the answer's level or more and at most ``SPLIT_S``
        before it, is not doubled (one softer, or earlier, a laid-back hit's, is struck again with
        the answer); one still queued there gives way to the answer, the louder of the two."""
        settings, time_at = self.settings, self.transport.time_at
        for voice in voices:
            key = (settings.channels[voice] - 1, settings.notes[voice])
            struck, struck_velocity = self._struck.get(key, (-math.inf, 0))
            if (struck >= since and struck_velocity >= ANSWERED * velocity
                    and time_at(here) - time_at(struck) <= SPLIT_S):
                continue   # it went out with the hit already (the pattern's downbeat, a mark's crash)
            queued = {entry[1]: entry[2].velocity for entry in self._queue if entry[0] >= since
                      and entry[2].type == "note_on" and (entry[2].channel, entry[2].note) == key}
            self._queue = [entry for entry in self._queue if entry[1] not in queued]
            heapq.heapify(self._queue)
            level = max([velocity, *queued.values()])
            self._push(here, mido.Message("note_on", channel=key[0], note=key[1], velocity=level))
            self._push(here + min(settings.gate, 0.5), mido.Message("note_off", channel=key[0], note=key[1],
                                                                      velocity=0))

    def play_on(self, position: float = math.inf, now: float | None = None) -> None:
        """Stop time is over: the steps play again. The band is back at ``position``: the steps
        laid out from there (already scheduled) play too, up to ``max_late`` late."""
        with self._lock:
            self._laid_out, self._stop_accent = False, None
            held_back, self._held_back = self._held_back, {}
            if now is None:
                return
            for step in sorted(held_back):
                if step >= position - 0.5:
                    self._push_cells(step, held_back[step], now, self.settings)

    def new_song(self, opening: Pattern | None = None, now: float | None = None) -> None:
        """The song is over: the next start is located and cued as the first one was, and its
        phrases count from its own bar 1. ``opening``: what its first steps play until a new
        pattern is offered (None: the last song's pattern); nothing offered before is taken. With
        ``now``, what was handed out for after it is withdrawn (a master's Start away from the
        song's last bar ends it: the old bar's notes a look-ahead early must not follow)."""
        with self._lock:
            if now is not None and self._sent_to is not None:
                self._withdraw = _earlier(self._withdraw, now)
            self._fresh = True
            self._offered = None
            self._sent_to = None
            self._crash_out = self._crash_before = None
            self._struck.clear()
            self._struck_before.clear()
            if opening is not None:
                self._pattern = opening
            self._queue = [entry for entry in self._queue if entry[2].type == "note_off"]
            heapq.heapify(self._queue)
            self._phrasing = Phrasing(self.settings.crash_every, self.settings.fill_every)
            self._laid_out, self._stop_accent = False, None

    def phrase_from(self, step: int) -> None:
        """Bar 1 of the song is at absolute ``step`` (a render's lead-in): phrases count from it."""
        with self._lock:
            self._phrasing.song_from(step)

    def mark(self, position: float, now: float, begins: bool = False, lift: bool = False) -> None:
        """Something begins at ``position`` (the player comes in or back, a new section): a
        crash on the downbeat it marks (see appliance/core/phrase.py). A downbeat already
        scheduled gets its crash now, up to ``max_late`` late; a later one is let go (when the
        player comes in there, crashes still count from it). ``begins``: the player comes in or
        back there, so phrases count from that downbeat (one who comes in by beat 2's "e"
        begins that bar: see :func:`entry_downbeat`). ``lift``: the band lifts into a new phrase
        there; the form's crashes count from it once :meth:`confirm_lift` is called."""
        with self._lock:
            self._mark(position, now, begins, lift=lift)

    def confirm_lift(self, downbeat: int) -> None:
        """The band stayed up after the lift marked on ``downbeat``: the form's crashes count from it."""
        with self._lock:
            self._phrasing.confirm_lift(downbeat)

    def inside_phrase(self, downbeat: int) -> bool:
        """Whether ``downbeat`` (absolute step) falls inside a phrase, not on its first bar line."""
        with self._lock:
            return self._phrasing.inside_phrase(downbeat)

    def back_in(self, position: float) -> None:
        """The player comes back into the form at ``position`` (by beat 2's "e" of its bar): phrases
        count on as they did (see ``Phrasing.back_in``)."""
        with self._lock:
            self._phrasing.back_in(entry_downbeat(position))

    def pickup(self, position: float, now: float, begins: bool = True) -> None:
        """The notes of a player who came in by beat 2's "e" ran on into the next bar line, at
        ``position``: a pickup after all (``phrase.run_lands``). The downbeat they land on is
        marked as the player's entry instead (a crash there, up to ``max_late`` late). Not
        ``begins``: the player came back into the form (bars dropped inside a phrase, a stop
        into a phrase's first bar), so the landing gets its crash and phrases count on as they did."""
        with self._lock:
            if begins:
                self._phrasing.was_a_pickup(marked_downbeat(position))
            self._mark(position, now, True, restarts=begins)

    def _mark(self, position: float, now: float, begins: bool, restarts: bool | None = None,
              lift: bool = False) -> None:
        """:meth:`mark`, under the lock; not ``restarts``: the player is back, but phrases count on.
        A player who comes in before the song's bar 1 (a render's pickup of a bar or more) comes in on it."""
        downbeat = max(entry_downbeat(position), self._phrasing.start) if begins else marked_downbeat(position)
        if self._end is not None and downbeat >= self._end:
            return   # the song has ended there: the next song's first note marks its own bar 1
        if begins and (restarts is None or restarts):
            self._phrasing.begin(downbeat)
        elif begins:
            self._phrasing.lands(downbeat)
        if self._next_step is None or self._fresh or downbeat >= self._next_step:
            self._phrasing.mark(downbeat, begins, lift)
            return
        settings = self.settings
        if now - self.transport.time_at(downbeat) > settings.max_late:
            if begins:
                self._phrasing.came_in_late(downbeat)
            return
        if self._waiting_for_first or not self._phrasing.welcome_late(downbeat, begins, lift):
            return   # nothing plays yet, or a crash played there (or at a mark a moment ago)
        velocity = float(with_crash(self._pattern.steps[downbeat % STEPS],
                                    accent_level(self._pattern.steps))[CRASH, VELOCITY])
        if self._first_scale is not None:
            velocity = float(scale_velocities(np.float32(velocity), self._first_scale))
        on_position = max(float(downbeat), self.transport.position(now))
        key = (settings.channels[CRASH] - 1, settings.notes[CRASH])
        self._push(on_position, mido.Message("note_on", channel=key[0], note=key[1],
                                             velocity=max(1, min(127, round(velocity * 127)))))
        self._push(max(on_position, min(on_position + settings.gate, downbeat + 0.5)),
                   mido.Message("note_off", channel=key[0], note=key[1], velocity=0))

    def section(self, start: float, now: float) -> None:
        """The looper heard a new section that began at ``start`` (a pass ago): with fill phrasing,
        phrases count from its first downbeat and the phrase under way ends with a fill and a
        crash (appliance/core/phrase.py); without, a crash marks the loop point now."""
        settings = self.settings   # read once: a live change may land between two reads
        if not settings.fill_every:
            self.mark(self.transport.position(now), now)
            return
        with self._lock:
            self._phrasing.fill_every = settings.fill_every
            self._phrasing.section(marked_downbeat(start), self._next_step or 0)

    def next_boundary(self, slack: int = 0) -> int:
        """The first swap boundary at least ``slack`` steps past what is already scheduled."""
        every = SWAP_EVERY[self.settings.swap_at]
        first = (self._next_step if self._next_step is not None else 0) + slack
        return -(-first // every) * every

    def schedule(self, now: float) -> list[Event]:
        """Every event due up to now + look-ahead that was not returned before, in time order."""
        with self._lock:
            # a cut not yet taken (the cycle that was to take it failed) is kept, the earlier one
            self._withdrawn = _earlier(self._withdrawn, self._withdraw)
            self._withdraw = None
            transport = self.transport
            if not transport.running:
                return self._stopped(now)
            position = transport.position(now)
            self._was_running = True
            if self._next_step is None or self._fresh:
                self._fresh = False
                located = self._locate(position)
                # a step whose time passed less than max_late ago is played (a first note's
                # downbeat, a master's Start: the first clock anchors beat one a moment before the
                # player looks; it skipped it, the kick on 1 lost, until session 51)
                earliest = max(transport.position(now - self.settings.max_late), position - 0.5)
                self._next_step = min(located, math.ceil(earliest - 1e-9))
                if self._cued:
                    self._cued = False
                    self._first_scale = self._cue_scale if self._cue_scale != 1.0 else None
                    self._made_before = self._offered or self._pattern   # heard nothing: what the scale is for
            elif position < self._last_position - self.JUMP or position > self._next_step + STEPS:
                self._jump(position)     # told with this schedule: what was handed out before is not played
                self._withdrawn = _earlier(self._withdrawn, now)
            self._last_position = max(self._last_position, position)
            horizon = transport.position(now + self.settings.lookahead)
            while (step := self._scheduling()) - 0.5 <= horizon:
                self._schedule_step(step, now)
                self._next_step = self._scheduling() + 1
            return self._pop_until(horizon)

    def _withdraw_from(self, position: float) -> None:
        """Withdraw the note-ons handed out from ``position`` on (under the lock; told by the next
        schedule: :meth:`withdrawn`); what went out is then only what came before it."""
        if self._sent_to is None or self._sent_to < position:
            return     # nothing handed out there
        cut = self.transport.time_at(position)
        self._withdraw = _earlier(self._withdraw, cut)
        for key, (where, _velocity) in list(self._struck.items()):
            if where >= position:    # withdrawn: what went out is the one before, if it went out
                before = self._struck_before.get(key)
                if before is not None and before[0] < position:
                    self._struck[key] = before
                else:
                    del self._struck[key]
        if self._crash_out is not None and self._crash_out[0] >= position:
            before_crash = self._crash_before
            self._crash_out = before_crash if before_crash is not None and before_crash[0] < position else None

    def withdrawn(self) -> float | None:
        """Once, after the schedule that told it: note-ons returned by the schedules before that
        one and due at or after this time are not to be played (an end pressed with the last
        chord, after its line's notes were handed out: the crash comes instead; a jump: the
        old position's steps). Whoever holds
        events not yet sent drops them before it adds that schedule's own; their note-offs stay."""
        with self._lock:
            cut, self._withdrawn = self._withdrawn, None
            return cut

    def relocate(self, position: float, now: float | None = None) -> bool:
        """The transport jumped to ``position`` (Start, Song Position) at ``now``: play on from
        there at once. Queued note-ons are dropped (their note-offs kept), and with ``now`` those
        handed out for the old position and due from then on are withdrawn (:meth:`withdrawn`);
        a step whose time passed less than ``max_late`` ago is still played, so a Start's
        downbeat is heard. A position where the player already is (a clock switch without a
        jump) changes nothing. True if it jumped."""
        with self._lock:
            if self._next_step is None or self._fresh or (
                    self._last_position - self.JUMP <= position <= self._next_step + self.JUMP):
                return False
            self._jump(position)
            if now is not None:
                self._withdraw = _earlier(self._withdraw, now)
            return True

    def _jump(self, position: float) -> None:
        late = self.settings.max_late * self.transport.bpm / 15.0   # seconds → steps
        self._next_step = math.ceil(position - min(late, 0.49))
        self._last_position = position
        self._sent_to = None
        self._crash_out = self._crash_before = None
        self._struck.clear()
        self._struck_before.clear()
        self._laid_out, self._stop_accent = False, None
        self._queue = [entry for entry in self._queue if entry[2].type == "note_off"]
        heapq.heapify(self._queue)
        self._phrasing.forget()

    def all_notes_off(self) -> list[mido.Message]:
        """Note-offs for every note still sounding; the pending schedule is dropped."""
        with self._lock:
            offs = [mido.Message("note_off", channel=channel, note=note, velocity=0)
                    for (channel, note) in sorted(self._sounding)]
            self._sounding.clear()
            self._queue.clear()
            return offs

    def drain(self) -> list[Event]:
        """Everything still queued (the last note-offs), for the end of a render."""
        with self._lock:
            return self._pop_until(math.inf)

    def _locate(self, position: float) -> int:
        """Start scheduling at ``position``: the first step it schedules."""
        step = self._next_step = math.ceil(position - 1e-9)
        self._last_position = position
        return step

    def _scheduling(self) -> int:
        """The next step to schedule, once scheduling has begun (``_locate``)."""
        step = self._next_step
        assert step is not None, "the player schedules before it was located"
        return step

    def _stopped(self, now: float) -> list[Event]:
        """The transport stopped: no new notes; release what sounds; resume where it stopped."""
        if not self._was_running:
            return []
        self._was_running = False
        position = self.transport.position(now)
        if not self._fresh:       # a new song is located where it starts
            self._locate(position)
        offs = [Event(now, message) for _, _, message in sorted(self._queue)
                if message.type == "note_off"]
        self._queue.clear()
        self._sounding.clear()
        self._struck.clear()
        self._struck_before.clear()
        return offs

    def _schedule_step(self, step: int, now: float) -> None:
        settings = self.settings  # read once: a live settings change lands between steps
        if self._end is not None and step >= self._end:
            if step == self._end and self._end_hit and not self._waiting_for_first:
                self._ending_hit(step, settings)
            return
        every = SWAP_EVERY[settings.swap_at]
        offered = self._offered
        # Before the first pattern arrives nothing plays, so the first one may start at any step.
        if offered is not None and offered is not self._pattern and (
                step % every == 0 or self._waiting_for_first):
            self._pattern = offered
            self._waiting_for_first = False
            if offered is not self._made_before:
                self._first_scale = None
        self._phrasing.every = settings.crash_every
        self._phrasing.fill_every = settings.fill_every
        self._phrasing.lift = self.lift
        cells = self._pattern.steps[step % STEPS]
        if not self._waiting_for_first:
            cells = self._phrasing.fill(step, self._pattern)
            self._phrasing.quiet = self.resting
            cells = self._phrasing.take(step, cells, self._pattern)
            cells = limbs.fit(cells)   # a crash added on a marked downbeat takes a hand
        if self._laid_out and step >= self._laid_out_from - 0.5:
            # stop time: the band is out (the phrasing above still counts the step); kept a moment
            # for the player's return (play_on)
            self._held_back = {k: c for k, c in self._held_back.items() if k > step - HELD_BACK} | {step: cells}
            return
        self._push_cells(step, cells, now, settings)

    def _push_cells(self, step: int, cells: np.ndarray, now: float, settings: PlayerSettings) -> None:
        """Queue one step's notes (a note already more than ``max_late`` late is dropped)."""
        on_step = cells[:, HIT] >= 0.5
        chosen: dict[tuple[int, int], tuple[float, float]] = {}
        for voice in range(NUM_VOICES):
            hit, velocity, offset = cells[voice, HIT], cells[voice, VELOCITY], cells[voice, OFFSET]
            note = limbs.note_of(voice, on_step, settings.notes, settings.pedal_hat)  # the pedal hat
            if hit < 0.5 or note is None:
                continue
            key = (settings.channels[voice] - 1, note)
            if key not in chosen or velocity > chosen[key][0]:  # two voices on one note: the louder
                chosen[key] = (float(velocity), float(offset))
        for (channel, note), (velocity, offset) in chosen.items():
            on_position = step + offset
            if now - self.transport.time_at(on_position) > settings.max_late:
                self.late_drops += 1
                continue
            off_position = max(on_position, min(on_position + settings.gate, step + 0.5))
            if self._first_scale is not None:
                velocity = float(scale_velocities(np.float32(velocity), self._first_scale))
            midi_velocity = max(1, min(127, round(velocity * 127)))
            self._push(on_position, mido.Message("note_on", channel=channel, note=note, velocity=midi_velocity))
            self._push(off_position, mido.Message("note_off", channel=channel, note=note, velocity=0))

    def _hit_velocity(self, scale: float = 1.0) -> int:
        """A band hit's velocity: the pattern's accent level where stop time began (as the cued
        start scales it) × ``scale``: the patterns made meanwhile, from a groove of hits, move it."""
        accent = accent_level(self._pattern.steps) if self._stop_accent is None else self._stop_accent
        velocity = accent * scale
        if self._first_scale is not None:
            velocity = float(scale_velocities(np.float32(velocity), self._first_scale))
        return max(1, min(127, round(velocity * 127)))

    def _ending_hit(self, step: int, settings: PlayerSettings) -> None:
        """The song's last hit: the crash and the kick together, at the pattern's accent level."""
        velocity = max(1, min(127, round(accent_level(self._pattern.steps) * 127)))
        for voice in (CRASH, KICK):
            channel, note = settings.channels[voice] - 1, settings.notes[voice]
            self._push(float(step), mido.Message("note_on", channel=channel, note=note, velocity=velocity))
            self._push(step + min(settings.gate, 0.5), mido.Message("note_off", channel=channel, note=note,
                                                                    velocity=0))

    def _push(self, position: float, message: mido.Message) -> None:
        heapq.heappush(self._queue, (position, next(self._seq), message))

    def _pop_until(self, horizon: float) -> list[Event]:
        """Pop every queued note up to a position, timed by the transport's current tempo."""
        self._sent_to = horizon if self._sent_to is None else max(self._sent_to, horizon)
        events = []
        while self._queue and self._queue[0][0] <= horizon:
            position, _, message = heapq.heappop(self._queue)
            key = (message.channel, message.note)
            if message.type == "note_on":
                self._sounding[key] = self._sounding.get(key, 0) + 1
                if key in self._struck:
                    self._struck_before[key] = self._struck[key]
                self._struck[key] = (position, message.velocity)
                if message.note == self.settings.notes[CRASH]:
                    self._crash_before, self._crash_out = self._crash_out, (position, key)
            elif key in self._sounding:
                self._sounding[key] -= 1
                if not self._sounding[key]:
                    del self._sounding[key]
            events.append(Event(self.transport.time_at(position), message))
        return events

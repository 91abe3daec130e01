"""The engine: the one place that decides. Notes in → looper → generator → player → events out."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from enum import Enum, auto
import logging
import math
import threading
import time
from typing import Any, Callable, Protocol, cast

import mido
import numpy as np

from appliance.core.generator import Controls, Generator
from appliance.core import dynamics, listening, styles
from appliance.core.clock import RateLimitedLog
from appliance.core.dynamics import DYNAMICS, MF_VELOCITY, TOUCH_PASSES, Touch
from appliance.core.groove import (BARS, GM_NOTES, GM_PEDAL_HAT, NUM_VOICES, STEPS, STEPS_PER_BAR, STEPS_PER_BEAT,
                                   HIT, Groove, Pattern, quantise)
from appliance.core.keys import Keys
from appliance.core.looper import Looper, Memory
from appliance.core.phrase import MARK_WINDOW, ONSET_SPREAD, Onset, Ran, Run, entry_downbeat, marked_downbeat
from appliance.core.player import Event, Player, PlayerSettings
from appliance.core.start import StartableClock, Starter, StartSettings
from appliance.core.stops import Heard, StopTime
from appliance.core.transport import Transport

log = logging.getLogger(__name__)

MISSED_AFTER = 2.0            #: steps after a groove step's time that its note counts as left out (a rest)
HOLD = STEPS_PER_BAR + STEPS_PER_BEAT // 2  #: no new note this long (a fermata, the band holding a chord; a bar and an eighth) ...
HOLD_LEFT_OUT = 4              #: ... with this many steady steps of the groove left out, left with a pickup: the band comes back in
DROPPED_BARS = 4               #: bars of the groove a player may leave out inside a phrase, back from beat 2: the form goes on
HIT_EARLY = 0.5                #: steps before a bar line a stop-time hit on its 1 may come (earlier, a push or the figure's end)
OFF_THE_LINE = 1.5             #: steps after a bar line from which a return is off it (the "and" of 1, early or late)
PUSH_EARLY = 2.5               #: steps before a phrase head's bar line a push of its 1 may come (up to an eighth ahead) ...
PUSH_ACCENT = 1.15             #: ... this many times as loud as the player plays that beat (``Looper.last_accent``) ...
PUSH_HELD = 0.75               #: ... or sounding this many steps past the bar line (a push tied over it into the 16th after)

__all__ = ["Engine", "EngineSettings", "Event", "VirtualExecutor", "WorkerExecutor"]

BUTTON_LOG_S = 1.0   #: a button's log line (freeze, clear, resample, prior) again after this long, else 1st, 10th, 100th …
PLAYS_ON = STEPS_PER_BEAT * 2   #: clear pressed within this (steps, and its time) of notes on both sides: the player plays on
GONE = (-math.inf, -math.inf)   #: no clear pressed while the player played
LAST_CHORD = 4.0   #: steps after the end action's bar line that a note is still the song's last chord ...
CHORD_EARLY = 1.0  #: ... and before it (a chord a sixteenth early is on the line)
LIFT = 1.3         #: a note on a phrase's first bar line this many times as loud as the player's level ...
LIFT_BY = 16       #: ... and this much louder (velocity) marks it with a crash: the band lifts into a chorus
LIFT_STAYS = 4     #: notes from the lift bar's beat 2 on, on average LIFT_BY / 2 over the level before: the band stayed up
QUIET_REST = 5     #: bars of rest after which no crash marks a phrase: the drums are winding down, not playing a break


class Back(Enum):
    """How a player back by beat 2's "e" comes back into the form (``Engine._back_in_the_form``)."""

    DROPPED = auto()   #: bars left out inside a phrase, the band playing on: phrases count on
    STOPPED = auto()   #: a stop-time hit on a phrase's head, then a rest: phrases count on, or begin where a pickup lands


class Landing(Enum):
    """What the notes of a player back by beat 2's "e" were, run into the next bar line (``Engine._run_lands``)."""

    PICKUP = auto()    #: a keys fill into the band's return: a crash, and phrases begin there (Engine._begins_where_it_lands)
    BACK_IN = auto()   #: the groove's own figure after a stop, into a phrase's first bar: a crash, the form goes on


@dataclass
class Lift:
    """A lift marked on ``downbeat`` over the player's ``level`` (velocity), and the notes since."""

    downbeat: int
    level: float
    notes: int = 0
    velocities: float = 0.0


@dataclass(frozen=True)
class EngineSettings:
    swap_at: str = "beat"                           #: "step", "beat" or "bar": where a new pattern may start
    lookahead: float = 0.05                         #: seconds the player schedules ahead
    gate: float = 0.5                               #: note length in steps
    notes: tuple[int, ...] = GM_NOTES               #: output note per voice
    channels: tuple[int, ...] = (10,) * NUM_VOICES  #: output channel per voice, 1..16
    pedal_hat: int | None = GM_PEDAL_HAT            #: the hi-hat pedal's note; None = the machine has none
    input_channel: int | None = None                #: keyboard channel 1..16; None hears all
    split_note: int = 55        #: notes below it are the left hand's: the groove's register (Groove.low); 0 = none
    forget_passes: int = 4      #: passes (played, without a step) until the step is forgotten; 0 = never
    forget_once: int = 1         #: passes until a step played in one pass only is gone; 0 = as any other
    section_change: float = 0.3  #: a pass overlapping the groove less than this starts a new section; 0 = off
    rest_thin: float = 0.25      #: density taken off per bar of rest (no note, no key held, a steady step of the groove left out), down to 0
    drift: float = 0.2           #: 0..1 how far z's noise wanders each pass; 0 = same groove, same pattern
    crash_every: int = 8         #: bars between crashes besides the marked downbeats; 0 = the model's crashes as they are
    fill_every: int = 4          #: bars of a phrase: a pickup fill ends it, the big fill every second one; 0 = the model's fills
    hear_eighths: bool = True    #: busy, even, unaccented sixteenths (arpeggios) reach the model accented on the eighths
    dynamics: float = DYNAMICS   #: 0..1 the drums' level follows the player's as (played / mf) ** this; 0 = one level
    mf_velocity: int = MF_VELOCITY   #: 1..127 the player's mezzo-forte: from there up the drums play their full level
    stop_time: bool = True       #: from the second lone short hit on a bar's 1 in a row, the drums play the hits with the band and lay out between them
    end_after_bars: int = 0      #: bars of rest (as rest_thin counts them) after which the song ends: the drums stop at the next bar line and wait for the next song; 0 = never

    def __post_init__(self) -> None:
        if not 0 < self.lookahead <= 1:
            raise ValueError(f"lookahead {self.lookahead} s is not in (0, 1]")
        if self.input_channel is not None and not 1 <= self.input_channel <= 16:
            raise ValueError(f"input_channel {self.input_channel} is not in 1..16 (None hears all)")
        if not 0 <= self.split_note <= 128:
            raise ValueError(f"split_note {self.split_note} is not in 0..128 (0 = no register)")
        self.memory()  # checks forget_passes, forget_once and section_change
        for name in ("rest_thin", "drift", "dynamics"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} {getattr(self, name)} is not in 0..1")
        if not 1 <= self.mf_velocity <= 127:
            raise ValueError(f"mf_velocity {self.mf_velocity} is not in 1..127")
        if self.end_after_bars < 0:
            raise ValueError(f"end_after_bars {self.end_after_bars} is not 0 (never) or more")
        self.player_settings()  # checks notes, channels, gate and swap_at

    def memory(self) -> Memory:
        return Memory(forget_passes=self.forget_passes, section_change=self.section_change,
                      forget_once=self.forget_once)

    def player_settings(self) -> PlayerSettings:
        return PlayerSettings(notes=tuple(self.notes), channels=tuple(self.channels), pedal_hat=self.pedal_hat,
                              gate=self.gate, swap_at=self.swap_at, lookahead=self.lookahead,
                              crash_every=self.crash_every, fill_every=self.fill_every)


@dataclass(frozen=True)
class Job:
    """One regeneration: everything the generator needs, snapshotted when it was asked for."""

    groove: Groove           #: as the model hears it (appliance.core.listening)
    controls: Controls
    eps: np.ndarray
    prior: bool
    asked_at: float
    target_step: int | None  #: the swap boundary this result is meant for (None before the first tick)
    force: bool = False      #: an explicit request (resample, prior, restore) that a freeze lets through
    feel: tuple[float, ...] = ()   #: steps each sixteenth of the beat is played late (listening.felt)
    lift: float = 1.0              #: how much louder the big fill ends and its crash play (dynamics.lift)
    loud: dynamics.Loud | None = None   #: a loud groove's reading at dynamics.LOUD (listening.Heard.loud)
    song: int = 0                  #: the song it was asked in (a result from an ended song is dropped)
    opens: bool = False            #: the opening pattern (nothing played yet): kept for the next song's beat one


Done = Callable[[Pattern | None, float], None]   #: None: the generation failed


class Executor(Protocol):
    def submit(self, work: Callable[[], Pattern], done: Done, now: float) -> None: ...
    def poll(self, now: float) -> None: ...
    def close(self) -> None: ...


class WorkerExecutor:
    """Runs generations on one background thread (onnxruntime releases the GIL)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._jobs: deque[tuple[Callable[[], Pattern], Done]] = deque()
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="groovebox-generator", daemon=True)
        self._thread.start()

    def submit(self, work: Callable[[], Pattern], done: Done, now: float) -> None:
        with self._wake:
            self._jobs.append((work, done))
            self._wake.notify()

    def poll(self, now: float) -> None:
        """Nothing to do: the worker publishes as soon as it is done."""

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._jobs and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                work, done = self._jobs.popleft()
            try:
                pattern = work()
            except Exception:  # a failed generation must never stop the beat
                log.exception("generation failed; the current pattern keeps playing")
                pattern = None
            done(pattern, self._clock())


class VirtualExecutor:
    """Generations on a virtual clock: each result appears ``latency`` seconds after it was asked.

    The work runs when the result is due, on the caller's thread, so a render or a test is
    deterministic. A latency longer than the time to the swap point injects a slow generator.
    """

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self._jobs: deque[tuple[float, Callable[[], Pattern], Done]] = deque()

    def submit(self, work: Callable[[], Pattern], done: Done, now: float) -> None:
        self._jobs.append((now + self.latency, work, done))

    def poll(self, now: float) -> None:
        while self._jobs and self._jobs[0][0] <= now:
            ready, work, done = self._jobs.popleft()
            done(work(), ready)

    def close(self) -> None:
        self._jobs.clear()


class Engine:
    """Events in → looper → generator → player. Thread-safe for input, actions and one player thread.

    Regenerations coalesce: one runs, at most one waits (the newest request replaces an older
    waiting one). A request's swap point is the first boundary at least one step past what the
    player has already scheduled, so the generator always has a step's time to answer. A
    result that arrives after its swap point is still taken, at the next boundary, and
    counted as a miss.
    """

    def __init__(self, generator: Generator, transport: Transport,
                 settings: EngineSettings = EngineSettings(), controls: Controls = Controls(),
                 executor: Executor | None = None, clock: Callable[[], float] = time.monotonic,
                 starter: Starter | None = None) -> None:
        self.generator = generator
        self.starter = starter  #: holds the clock until the player starts (None: plays at once)
        self._transport = transport
        self._settings = settings
        self._controls = controls
        self._clock = clock
        self._executor = executor if executor is not None else WorkerExecutor(clock)
        self._looper = self._new_looper(settings)
        self._ears = listening.Ears()
        self._touch = Touch()
        self._loudest = 0.0   # the player's loudest level (dynamics.played) over a pass since the start or a clear
        self._opening_level: float | None = None   # the player's level before they play (open_at)
        self._opens = True    # the first ask opens on z = 0, unless a resample or a restored z noise came first
        self._opening: Pattern | None = None   # the last opening pattern: the next song's beat one plays it
        self._song = 0                         # songs ended so far (a job asked in an ended song is dropped)
        self._player = Player(transport, settings.player_settings())
        self._lock = threading.RLock()
        self._eps = generator.new_eps()
        self._frozen = False
        self._prior = False
        self._busy = False
        self._waiting: Job | None = None
        self._started = False
        self._moves_seen = transport.relocations
        self.on_change: list[Callable[[str], None]] = []
        self._news: deque[str] = deque()     # changes not yet told to on_change
        self._generations = 0
        self._misses = 0
        self._failures = 0
        self._latencies_ms: deque[float] = deque(maxlen=2000)
        self._latency_summary: tuple[int, float, float] | None = None   #: (generations, p50, p99)
        self._keys = Keys()                            # keys down or under the pedal
        self._stops = StopTime()                       # the band's hits on the 1, heard as stop time
        self._stop_level = 0.0                         # ... the groove's level where it began
        self._rest = 0                                 # bars of rest the pattern is thinned for
        self._pickup_to: int | None = None             # the bar line a pickup after a hold leads into
        self._run: Run | None = None                   # a late entry's notes, while they run on
        self._back: Back | None = None                 # ... how it came back into the form (None: phrases began again)
        self._ended = False                            # the song ended: silent until the next song's first note
        self._said: deque[str] = deque(maxlen=16)      # log lines of the player's thread, written by others
        self._buttons = RateLimitedLog(log, every_s=BUTTON_LOG_S)   # a pad hammered is said now and then
        self._no_end_before = -math.inf                # a rest's ending called off: none again before this step
        self._lift: Lift | None = None                 # a lift marked, until a bar later tells whether the band stayed up
        self._heard_notes: deque[tuple[float, int]] = deque()   # (position, velocity) of the last pass's notes: the level a lift is from
        self._plays_on = GONE   # cleared while the player played: a note before this (position, time) goes on in the form

    # -- read-only views ---------------------------------------------------------------------
    @property
    def groove(self) -> Groove:
        """The groove as played (what a saved state restores). The model hears
        ``Looper.assumed``: the same once the first full pass was heard."""
        return self._looper.groove

    @property
    def pattern(self) -> Pattern:
        """The pattern playing now."""
        return self._player.pattern

    @property
    def held_pattern(self) -> Pattern | None:
        """What a freeze holds (None when not frozen): the pattern playing, or, before the
        player took its first, the one it will play (a restored freeze waiting for a note)."""
        return self._player.to_play if self._frozen else None

    @property
    def live(self) -> bool:
        """True once the player plays the first pattern: the generated one, or the restored one."""
        return self._player.has_pattern

    @property
    def eps(self) -> np.ndarray:
        return self._eps.copy()

    @property
    def controls(self) -> Controls:
        return self._controls

    @property
    def frozen(self) -> bool:
        return self._frozen

    @property
    def from_prior(self) -> bool:
        """True while the pattern comes from the prior (after ``prior()``, until the groove changes)."""
        return self._prior

    @property
    def settings(self) -> EngineSettings:
        return self._settings

    @property
    def transport(self) -> Transport:
        return self._transport

    @property
    def player(self) -> Player:
        return self._player

    # -- input -------------------------------------------------------------------------------
    def handle(self, message: mido.Message, t: float) -> None:
        """A message from the keyboard. Note-ons are recorded; note-offs and the pedal tell which
        keys still sound (a held chord is no rest); everything else is ignored here."""
        if message.type not in ("note_on", "note_off", "control_change"):
            return
        wanted = self._settings.input_channel
        if wanted is not None and message.channel != wanted - 1:
            return
        if message.type != "note_on" or message.velocity == 0:   # the groove only hears onsets
            self._keys.hear(message, self._transport.position(t) if self._transport.running else None)
            return
        with self._lock:
            if self._in_the_tail(t):   # a rolled last chord, a lick over its ring: the song is over all the same
                self._keys.press(message.channel, message.note, self._transport.position(t))
                return
            self._while_ending(t)
            if self._ended:         # the next song: the player plays again once the clock runs
                self._ended = False
                self._player.resume()
        self.flush_news()           # "the song is over" before the next song's start is logged
        starter = self.starter
        if starter is not None and starter.waiting:
            # the note that starts the loop is its downbeat: play it, at the note's level by the law
            law = self._settings.dynamics, self._settings.mf_velocity / 127
            self._player.cue(dynamics.opening(message.velocity / 127, *law) if starter.mode == "first-note" else 1.0)
            if starter.hear(message.note, t):
                return              # a count-in tap, not part of the groove
        if not self._transport.running:
            return
        position = self._transport.position(t)
        rest = self._rest_bars(position)
        plays_on = position < self._plays_on[0] and t < self._plays_on[1]
        comes_in = ((self._looper.groove.is_empty and not plays_on) or rest > 0   # the start, a return
                    or self._back_from_hold(position))
        back = self._back_in_the_form(position, rest) if comes_in else None
        lands = self._run_lands(position, message.note, message.velocity, comes_in, back is not None)
        rang_to = self._keys.last_rang_to(position)   # the chord before this note's (stop time)
        self._keys.press(message.channel, message.note, position)
        with self._lock:
            self._plays_on = GONE
            lifted = self._marks(position, t, message.velocity, comes_in, back, lands)
            if self._settings.stop_time and not self._frozen:   # a frozen loop plays on: nothing to hear
                self._stop_time(self._stops.hear(position, rang_to, message.velocity), position, t, message.velocity)
            let_go = self._follow_lift(position, message.velocity)
            self._player.resting = False
            if self._rest:
                self._rest = 0
                if not self._frozen:
                    self._ask(t)
            changed = self._looper.record(position, message.velocity / 127.0,
                                          low=message.note < self._settings.split_note) or let_go
            if lifted:   # after the record: a lift on the loop point ends the pass that thins the groove
                changed = self._looper.bring_back() or changed
            if changed:
                self._prior = False
                self._notify("groove")
                if not self._frozen:
                    self._ask(t)
        self._buttons.flush()
        self._deliver()

    def _in_the_tail(self, t: float) -> bool:
        """Whether a note-on at ``t`` is the ending song's tail (under the lock): from ``LAST_CHORD``
        past an end action's bar line, while a key struck from there on still sounds (held, or
        under the pedal, up to ``keys.HELD_FOR``): a chord rolled upward, a lick or a tag over the
        last chord's ring. A musician's review heard such a roll start the next song, with a crash
        and 8 bars of drums. Once the last chord is let go, the next note starts the next song
        (a band going straight on); a player who stopped before the bar line starts it at once."""
        ending = self._player.ending
        if ending is None or not self._player.ending_hit or self._ended or not self._transport.running:
            return False
        position = self._transport.position(t)
        return position >= ending + LAST_CHORD and self._tail_rings(position)

    def _tail_rings(self, position: float) -> bool:
        """A key struck on the ending's bar line or after it still sounds (an end action's)."""
        ending = self._player.ending
        return (ending is not None and self._player.ending_hit
                and self._keys.sounding_since(position, ending - CHORD_EARLY))

    def _marks(self, position: float, t: float, velocity: int, comes_in: bool, back: Back | None,
               lands: Landing | None) -> bool:
        """What a note marks for the phrasing (under the lock): the player coming in or back, a
        pickup or a run back in, else perhaps a lift (then True)."""
        if comes_in:
            self._back = back
            if back is not None:
                self._player.back_in(position)
            else:
                self._player.mark(position, t, begins=True)
        elif lands is Landing.PICKUP:
            self._player.pickup(position, t, begins=self._begins_where_it_lands(position))
        elif lands is Landing.BACK_IN:
            self._player.pickup(position, t, begins=False)
        else:
            return self._mark_lift(position, t, velocity)
        return False

    def _stop_time(self, heard: Heard | None, position: float, t: float, velocity: int) -> None:
        """What stop time asks of the player (under the lock; appliance/core/stops.py): the hit
        answered and the band laid out, a pickup played with it, or the drums back in from this
        note. The answer is as much softer than the pattern's accents as the note is than the
        groove was where stop time began, or louder, up to 127 (the drums' law, ``loop.dynamics``,
        on up as ``dynamics.opening``: a band building through the stops; the hits the looper
        records meanwhile would move the groove's level)."""
        if heard is Heard.PLAYS_ON:
            self._player.play_on(position, t)
            return
        if heard is None:
            return
        if heard is Heard.STOPS:
            self._stop_level = dynamics.played(self._looper.groove)
        level = self._stop_level
        scale = dynamics.opening(velocity / 127, self._settings.dynamics, level) if level else 1.0
        if heard is Heard.PICKUP:
            self._player.stop_time_pickup(position, t, scale)
            return
        if heard is Heard.STOPS:
            self._buttons.note("stop time", logging.INFO,
                               "stop time: the drums play the band's hits with you and lay out between them "
                               "(loop.stop_time)")
        self._player.stop_time(position, t, first=heard is Heard.STOPS, scale=scale)

    def _follow_ring(self, t: float) -> None:
        """Stop time's hit still sounding a beat on (a held chord, not a stop): the drums come back
        in at once (the player's thread; the lock only then)."""
        position = self._transport.position(t)
        if not self._stops.due(position):
            return
        with self._lock:
            hit = self._stops.hit
            # (the hit's position is rounded to a millionth, its keys' are not: a key struck with it may lie under)
            sounding = hit is not None and self._keys.sounding_since(position, hit - 1e-6)
            if self._stops.rings(position, sounding) is Heard.PLAYS_ON:
                self._player.play_on(position, t)

    def _let_stop_time_go(self) -> None:
        """Stop time is forgotten (under the lock): a jump, a clear, a new song, a freeze, the knob off."""
        self._stops = StopTime()
        self._player.play_on()

    # -- the player's side -------------------------------------------------------------------
    def tick(self, t: float) -> list[Event]:
        """Every event due up to t + look-ahead, each returned once, in time order."""
        if not self._started:              # read without the lock: set once, never unset
            with self._lock:
                if not self._started:
                    self._started = True
                    self._ask(t, force=True, opening=True)
        if self.starter is not None and self.starter.tick(t, self._settings.lookahead):
            with self._lock:   # counted in: the drums come in on one, with a crash, as a drummer does
                self._player.mark(0.0, t, begins=True)
        self._executor.poll(t)
        moves = self._transport.relocations
        if moves != self._moves_seen:
            self._moves_seen = moves
            self.relocate(t)
        if self._transport.running:
            self._next_pass(t)
            self._follow_rest(t)
            self._follow_ring(t)
            ending = self._player.ending
            position = self._transport.position(t)
            if (ending is not None and not self._ended and position >= ending + STEPS_PER_BAR
                    and not self._tail_rings(position)):   # the song is over once its last chord is let go
                self._finish_song(t)
        # No callbacks here: this is the player's thread. What it changed is told by the
        # next thread that tells (see _notify).
        return self._player.schedule(t)

    def _next_pass(self, t: float) -> None:
        """At a loop point: the memory moves on, z's noise drifts, a rest thins the drums.
        Between loop points (every other tick) it takes no lock."""
        if not self._looper.pass_ends(self._transport.position(t)):
            return
        with self._lock:
            before, sections = self._looper.current_pass, self._looper.sections
            changed = self._looper.advance(self._transport.position(t))
            if self._looper.sections != sections:     # a new section, heard over the pass just ended
                self._player.section(self._transport.position(t) - STEPS, t)
            if self._looper.current_pass == before:   # the first full pass was heard: bar 2 counts
                if changed:
                    self._notify("groove")
                    if not self._frozen:
                        self._ask(t)
                return
            if changed:
                self._notify("groove")
            self._hear_level()
            drift = self._settings.drift
            if drift > 0 and not self._frozen and not self._prior and not self._looper.groove.is_empty:
                self._eps = (np.sqrt(1.0 - drift * drift) * self._eps
                             + drift * self.generator.new_eps()).astype(np.float32)
                changed = True
            if changed and not self._frozen:
                self._ask(t)

    def _hear_level(self) -> None:
        """After a pass: the song's loudest level so far (for ``dynamics.lift``), and a player who
        has played soft for a long while told once how to set their mf."""
        mf = self._settings.mf_velocity
        if self._looper.rest_passes:
            return   # nothing played
        self._loudest = max(self._loudest, dynamics.played(self._looper.groove))
        if not self._settings.dynamics:
            return   # the drums do not follow the level
        loudest = self._touch.hear(self._looper.groove, mf / 127)
        if loudest is not None:
            self._said.append(   # the player's thread: written by another (flush_news)
                f"over the last {BARS * TOUCH_PASSES} bars the keyboard played soft, at most about velocity "
                f"{loudest}, and the drums follow it as soft (loop.dynamics): if that is your normal touch, "
                f"set loop.mf_velocity to about {loudest} (now {mf})")

    def _new_looper(self, settings: EngineSettings) -> Looper:
        """A looper as at power-up; it keeps the groove's register only for a model that hears it
        (a 3-channel model's drums are what they were: a register-only change asks for nothing)."""
        return Looper(settings.memory(), register=self.generator.hears_register)

    def _rest_bars(self, position: float) -> int:
        """Whole bars without a note-on once more than a bar went by and a steady step of the
        groove was left out (0 before anything was played), with no key held down; a key ringing
        under the pedal keeps a rest away only while fewer than ``HOLD_LEFT_OUT`` steady steps went
        by (the groove goes on under it; past that, the band has stopped). The gaps of a groove
        that is itself sparse, a chord every two bars let go early, are no rest; nor is a chord a
        bar that comes a moment late."""
        silence = self._looper.silence(position)
        if silence is None or silence < STEPS_PER_BAR + 1 or self._keys.held(position):
            return 0
        left_out = self._looper.left_out(position, MISSED_AFTER)
        if not left_out or (left_out < HOLD_LEFT_OUT and self._keys.sounding(position)):
            return 0
        return int(silence // STEPS_PER_BAR)

    def _back_in_the_form(self, position: float, rest: int) -> Back | None:
        """How a player back by beat 2's "e", off the bar line (``OFF_THE_LINE``), comes back into
        the form; None: phrases begin again from the return. The rest begins in the bar after its
        last note's, or, if earlier, in the bar where it first left out a steady step of the
        groove (a bass note on 1 and nothing after it), up to ``DROPPED_BARS`` bars before the bar
        they are back in:

        - ``Back.DROPPED`` if it began inside a phrase: bars of the form left out while the band
          played on;
        - ``Back.STOPPED`` if it began in a phrase's first bar and its last note was that bar's 1,
          from ``HIT_EARLY`` before the bar line to before ``OFF_THE_LINE`` after it (a stop-time
          hit, a chord let ring), or pushed ahead of it, up to ``PUSH_EARLY``, tied over the bar
          line or accented (``_pushed``: the band's hit anticipated): the player was
          there on the phrase's head. (Over a groove of one chord a bar the rest begins at the
          next bar's 1, which it leaves out: ``Back.DROPPED``.)

        A rest that began in a phrase's first bar otherwise (the player stopped before its 1, or
        ahead of it at the groove's own level, the figure's last note; a chord held through the
        bar before), a longer one, or a
        return on the bar line: None. Back in the form, phrases and crashes count on as before;
        a run from there that lands on the next bar line is still a pickup (``_run_lands``),
        with its crash on the landing, where phrases begin after a stop on a phrase's head into
        a bar inside a phrase (the band comes back in on it) and count on otherwise. A rest that
        left out only the 1 of the bar the player is back in (a sparse comp's chord a beat late)
        is dropped bars inside a phrase, or begins phrases again on its first bar."""
        entry = entry_downbeat(position)
        silence = self._looper.silence(position)
        if not rest or silence is None or position - entry <= OFF_THE_LINE:
            return None
        last = position - silence
        # the bar after the last note's (a note pushed a sixteenth ahead of a bar line is that bar's)
        after = (math.floor((last + 1.0) / STEPS_PER_BAR) + 1) * STEPS_PER_BAR
        missed = self._looper.first_left_out(position, MISSED_AFTER)
        if missed is not None:   # ... or the bar the rest began to leave the groove out in, if earlier
            after = min(after, math.floor(missed / STEPS_PER_BAR) * STEPS_PER_BAR)
        if not 0 <= entry - after <= DROPPED_BARS * STEPS_PER_BAR:   # 0: the bar's 1 left out, back on 2
            return None
        if self._player.inside_phrase(after):
            return Back.DROPPED
        if -HIT_EARLY <= last - after < OFF_THE_LINE:   # the last note was the phrase head's 1: a stop-time hit
            return Back.STOPPED
        if -PUSH_EARLY <= last - after < -HIT_EARLY and self._pushed(after, position):
            return Back.STOPPED   # ... or its 1 pushed ahead: the band's hit anticipated
        return None

    def _pushed(self, head: float, position: float) -> bool:
        """Whether the player's last note, ahead of the bar line ``head``, was a push of its 1: tied
        over it (its chord sounding ``PUSH_HELD`` past it), or accented (``PUSH_ACCENT`` times as
        loud as the player plays that beat), not the figure's last note."""
        rang_to = self._keys.last_rang_to(position)
        return ((rang_to is not None and rang_to >= head + PUSH_HELD)
                or (self._looper.last_accent() or 0.0) >= PUSH_ACCENT)

    def _lifts(self, position: float, velocity: int) -> float | None:
        """A note on a phrase's first bar line (a 32nd early to half a beat late) ``LIFT`` times as loud as the
        player has been playing, and ``LIFT_BY`` more (a verse into a chorus): the level it lifts
        from (velocity), else None. The level: the mean velocity of the louder half of the notes
        of the pass before it, a whole pass of them heard since the start."""
        if not self._looper.learned or self._settings.crash_every == 0:
            return None
        downbeat = round(position / STEPS_PER_BAR) * STEPS_PER_BAR
        if not -ONSET_SPREAD <= position - downbeat <= MARK_WINDOW or self._player.inside_phrase(downbeat):
            return None   # a push (an anticipation) is the push rules' to hear, not a lift
        heard = sorted(v for p, v in self._heard_notes if p >= position - STEPS)
        louder = heard[len(heard) // 2:]
        if not louder:     # nothing heard in the pass before (a rest, a jump): nothing to lift from
            return None
        level = sum(louder) / len(louder)
        return level if velocity >= LIFT * level and velocity >= level + LIFT_BY else None

    def _mark_lift(self, position: float, t: float, velocity: int) -> bool:
        """A lift into a new phrase (:meth:`_lifts`) gets its crash (under the lock); whether it
        is one (the caller then brings back what a thinner groove let go: the band is back)."""
        level = self._lifts(position, velocity)
        if level is None:
            return False
        self._player.mark(position, t, lift=True)
        downbeat = round(position / STEPS_PER_BAR) * STEPS_PER_BAR
        if self._lift is None or self._lift.downbeat != downbeat:   # the level before the chord's first note
            self._lift = Lift(downbeat, level)
        return True

    def _follow_lift(self, position: float, velocity: int) -> bool:
        """The first note in the bar after a lift's: if the player stayed up through the lift's bar
        (``LIFT_STAYS`` notes from its second beat on, their mean ``LIFT_BY`` / 2 over the level
        before), the form counts from the lift (a chorus); else (a one-off push, a hit, a rest
        after it) it goes on as before, and what the lift brought back of a thinner groove goes
        again (then True). Every note is kept for a pass: the level a lift is from (under the lock)."""
        self._heard_notes.append((position, velocity))
        while self._heard_notes[0][0] < position - STEPS:
            self._heard_notes.popleft()
        lift = self._lift
        if lift is None or position < lift.downbeat + STEPS_PER_BEAT:
            return False
        if position < lift.downbeat + STEPS_PER_BAR:
            lift.notes += 1
            lift.velocities += velocity
            return False
        self._lift = None
        if position < lift.downbeat + 2 * STEPS_PER_BAR and lift.notes >= LIFT_STAYS and lift.velocities / lift.notes >= lift.level + LIFT_BY / 2:
            self._player.confirm_lift(lift.downbeat)
            return False
        return self._looper.let_go_again()

    def _back_from_hold(self, position: float) -> bool:
        """A pickup after a hold (a fermata, the band holding): the first note off the bar line
        (not within a sixteenth before it or half a beat after) after ``HOLD`` steps with no new
        note and ``HOLD_LEFT_OUT`` steady steps of the groove left out begins it; it brings the
        band back in on the downbeat it leads into once it reaches that bar's last beat. A
        melody note over a pad that goes no further, or a breakdown's next chord on the bar
        line, is no return; a groove's own pickup leaves nothing out."""
        to = self._pickup_to
        if to is not None and position >= to - 1.0:   # the bar line came, the pickup never reached it
            to = self._pickup_to = None
        silence = self._looper.silence(position)
        from_bar_line = position - round(position / STEPS_PER_BAR) * STEPS_PER_BAR
        if (silence is not None and silence >= HOLD and not -1.0 < from_bar_line <= MARK_WINDOW
                and self._looper.left_out(position, MISSED_AFTER) >= HOLD_LEFT_OUT):
            to = self._pickup_to = marked_downbeat(position)
        if to is None or position < to - STEPS_PER_BEAT - 1.0:
            return False
        self._pickup_to = None
        return True

    def _run_lands(self, position: float, pitch: int, velocity: int, comes_in: bool,
                   in_the_form: bool = False) -> Landing | None:
        """At the note where the notes of a player who came in by beat 2's "e" run on into the
        next bar line: ``Landing.PICKUP`` when they were a pickup, a keys fill into the band's
        return (``phrase.Run``); ``Landing.BACK_IN`` when they were the groove's own figure,
        after a stop-time hit (``Back.STOPPED``), into a phrase's first bar: the band comes back
        in there. A player back into the form (``_back_in_the_form``) may begin one from
        ``OFF_THE_LINE``: no crash marks that bar line, so the "and" of 1 runs as late or early."""
        if comes_in:
            entry = entry_downbeat(position)
            self._run = None
            if position - entry > (OFF_THE_LINE if in_the_form else MARK_WINDOW):
                first = Onset(position, {pitch}, velocity)
                self._run = Run(entry, position, [first], first_off=not self._on_groove(position),
                                back_inside=in_the_form and self._player.inside_phrase(entry + STEPS_PER_BAR))
            return None
        run = self._run   # read once: a relocate or a clear may let it go meanwhile
        if run is None:
            return None
        ran = run.hear(position, pitch, velocity, self._on_groove(position))
        if ran is not None and self._run is run:
            self._run = None
        if ran is Ran.PICKUP:
            return Landing.PICKUP
        if (ran is Ran.FIGURE and self._back is Back.STOPPED
                and not self._player.inside_phrase(marked_downbeat(position))):
            return Landing.BACK_IN
        return None

    def _begins_where_it_lands(self, position: float) -> bool:
        """Whether phrases begin where a pickup lands at ``position``: after a return that began
        them again, and after a stop on a phrase's head into a bar inside a phrase (the band
        comes back in there); not after dropped bars, nor a stop into a phrase's first bar of
        the form going on."""
        back = self._back
        return back is None or (back is Back.STOPPED and self._player.inside_phrase(marked_downbeat(position)))

    def _on_groove(self, position: float) -> bool:
        """Whether a note at ``position`` falls on a step the groove plays (none when it is empty)."""
        step, _ = quantise(position)
        return bool(self._looper.groove.steps[step, HIT] > 0)

    def _follow_rest(self, t: float) -> None:
        """A rest deepened by a bar (or ended): regenerate at the new density; a rest of
        ``end_after_bars`` ends the song (not while frozen: a frozen loop plays on by itself)."""
        end_after = self._settings.end_after_bars
        rest = self._rest_bars(self._transport.position(t))
        self._player.resting = rest >= QUIET_REST and not self._frozen
        if (end_after and rest >= end_after and not self._frozen and self._player.ending is None
                and self._transport.position(t) >= self._no_end_before):
            with self._lock:
                if self._end_on_next_bar(t, hit=False) is not None:
                    self._said.append(f"end: {rest} bars without a note, the drums stop at the next bar "
                                      "line (loop.end_after_bars)")
        if self._settings.rest_thin and rest != self._rest:
            with self._lock:
                self._rest = rest
                if not self._frozen:
                    self._ask(t)

    def _end_on_next_bar(self, t: float, hit: bool) -> int | None:
        """The song ends on the next bar line not yet scheduled, or with ``hit`` on one just
        scheduled or played (a press with the last chord) (under the lock): that downbeat."""
        if not self._transport.running or self._ended:
            return None
        return self._player.end_on_next_bar(self._transport.position(t), hit, now=t)

    def _while_ending(self, t: float) -> None:
        """A note while the song ends (under the lock): up to ``MARK_WINDOW`` after the bar line a
        rest's ending waits for, the player is back and the song goes on; from ``LAST_CHORD`` after
        an end action's bar line (the last chord may come a little late), or past a rest's window,
        the song is over at once and the note is the next song's first."""
        ending = self._player.ending
        if ending is None or self._ended:
            return
        position = self._transport.position(t) if self._transport.running else math.inf
        if not self._player.ending_hit and position < ending + MARK_WINDOW:
            self._player.resume()   # back by the bar line: the return's crash comes with its mark
            self._no_end_before = position + STEPS_PER_BAR   # ... and the rest is not heard again at once
        elif position >= ending + (LAST_CHORD if self._player.ending_hit else MARK_WINDOW):
            self._finish_song(t)

    def _finish_song(self, t: float) -> None:
        """A bar after the song's last downbeat: a new song's start. The overdub is cleared (and a
        freeze let go), the box's own clock held, and the box waits as the start mode says."""
        with self._lock:
            if self._ended or self._player.ending is None:   # finished already, or the next song began
                return
            self._ended = True
            self._no_end_before = -math.inf
            self._looper = self._new_looper(self._settings)   # as at power-up: no passes counted
            self._keys, self._ears, self._touch = Keys(), listening.Ears(), Touch()
            self._stops = StopTime()   # the player's new_song lets the drums play again
            self._pickup_to = self._run = self._back = None
            self._lift = None
            self._heard_notes.clear()
            self._plays_on = GONE
            self._rest = 0
            self._player.resting = False
            self._loudest = 0.0
            self._opening_level = None
            self._frozen = self._prior = False
            self._opens = True
            self._song += 1
            self._waiting = None       # asked for the song that ended
            if self.starter is None:
                # every transport the box plays on can be held and started (InternalClock, ClockSwitch)
                clock = cast(StartableClock, self._transport)
                self.starter = Starter(StartSettings(mode="first-note"), clock, now=t)
            else:
                self.starter.again(t)
            self._player.new_song(self._opening or self._plainest(), now=t)   # beat one plays an opening, not the old song's
            self._notify("groove")
            self._notify("freeze")
            self._ask(t, force=True, opening=True)
            self._said.append(f"end: the song is over; {self.starter.describe()}")

    def _plainest(self) -> Pattern | None:
        """The opening pattern made here and now (z = 0, nothing played), for a song that began from
        a restored state and so never asked for one; None if the model fails. Once a song at most."""
        try:
            self._opening = self.generator.generate(Groove.empty(), self.played_controls(), np.zeros_like(self._eps))
        except Exception:     # onnxruntime's own errors; the next pattern asked for comes anyway
            log.exception("the opening pattern for the next song could not be made")
        return self._opening

    def played_controls(self) -> Controls:
        """The knobs as the drummer plays them now: density thinned by a rest."""
        if not self._rest or not self._settings.rest_thin:
            return self._controls
        return replace(self._controls,
                       density=max(0.0, self._controls.density - self._settings.rest_thin * self._rest))

    def all_notes_off(self) -> list[mido.Message]:
        return self._player.all_notes_off()

    @property
    def loudest(self) -> float:
        """The player's loudest level (``dynamics.played``) over a pass since the start or a clear."""
        return self._loudest

    def open_at(self, level: float) -> None:
        """The player's level (0..1, ``dynamics.played``) before anything is played, where it is
        known ahead (render reads it from the part's first bars): the opening pattern, and a
        crash on bar 1 with it, play at it by the level law. Call it before the first tick."""
        with self._lock:
            self._opening_level = level

    def relocate(self, t: float) -> None:
        """The transport jumped (a master's Start, Continue or Song Position, a clock switch):
        the player plays on from the new position at once, and the looper goes on with the
        same pass there, so no jump is ever counted as passes (nothing is forgotten by it); on a
        jump, not a clock switch where the song already is, the keys forget where the last chord
        rang. ``tick`` calls this whenever ``transport.relocations`` changes."""
        transport = self._transport
        if not transport.running:
            return       # the next Continue/Start anchors again and bumps the count
        ending = self._player.ending
        if ending is not None and not self._ended and not (
                ending - STEPS_PER_BAR <= transport.position(t) < ending):
            self._finish_song(t)   # a master's Start (or a jump) away from the song's last bar: the next song
            return
        position = transport.position(t)
        with self._lock:    # the input thread reads what this resets
            self._pickup_to = self._run = self._lift = None
            self._heard_notes.clear()
            self._plays_on = GONE   # a note after a jump is where the player comes in
        self._looper.relocate(position)
        if self._player.relocate(position, now=t):
            self._keys.relocate(position)
            with self._lock:
                self._let_stop_time_go()   # the bars it heard are elsewhere

    # -- actions -----------------------------------------------------------------------------
    def freeze(self, on: bool | None = None) -> bool:
        """Freeze holds the pattern; the looper keeps listening. None toggles."""
        with self._lock:
            self._frozen = (not self._frozen) if on is None else bool(on)
            if self._frozen:  # what is on its way must not replace the held pattern
                self._waiting = None
                self._player.withdraw()
            self._let_stop_time_go()   # frozen, the held pattern plays on (as through a rest); unfrozen, heard afresh
            self._notify("freeze")
            if not self._frozen:
                self._ask(self._clock())
            frozen = self._frozen
        self._button(f"freeze {'on' if frozen else 'off'}", "freeze %s", "on" if frozen else "off")
        self._deliver()
        return frozen

    def clear(self) -> None:
        """Empty the overdub; the drums go on from the prior until something is played. Pressed
        while the player plays (a note ``PLAYS_ON`` before it, and the next within ``PLAYS_ON``
        after it), the form goes on: that note is no new start (no crash, phrases count on)."""
        t = self._clock()
        with self._lock:
            position = self._transport.position(t) if self._transport.running else math.inf
            silence = self._looper.silence(position)
            playing = silence is not None and silence < PLAYS_ON
            self._plays_on = (position + PLAYS_ON, t + PLAYS_ON * 15.0 / self._transport.bpm) if playing else GONE
            self._looper.clear()
            self._pickup_to = self._run = None
            self._let_stop_time_go()
            self._loudest = 0.0   # a new song: its own loudest
            self._notify("groove")
            if not self._frozen:
                self._ask(self._clock())
        self._button("clear", "overdub cleared")
        self._deliver()

    def withdrawn(self) -> float | None:
        """After a tick: note-ons returned by earlier ticks and due at or after this time are not to
        be played (an ending's or a jump's: :meth:`Player.withdrawn`); drop them from what waits to
        be sent before adding this tick's events. None nearly always."""
        return self._player.withdrawn()

    def end(self) -> bool:
        """End the song: a crash and a kick on the next bar line (on the last one, if pressed with
        its chord: up to the player's ``max_late`` after it), then silence; a bar later the
        overdub is cleared and the box waits for the next song (``start.mode``; ``now`` waits for
        the first note). False when nothing plays or an ending is already on its way."""
        t = self._clock()
        with self._lock:
            downbeat = self._end_on_next_bar(t, hit=True)
        if downbeat is not None:
            log.info("end: the drums end the song on the bar line of bar %d", downbeat // STEPS_PER_BAR + 1)
        self.flush_news()
        return downbeat is not None

    def _waiting_for(self) -> str:
        """What the box waits for, in a musician's words ('' while it plays)."""
        said = self.starter.describe() if self.starter is not None else ""
        if said:
            return said
        ending = self._player.ending
        if self._ended or (ending is not None and self._transport.running    # a master clock runs on
                           and self._transport.position(self._clock()) >= ending + 1):   # or the last bar rings
            if not self._ended and self._tail_rings(self._transport.position(self._clock())):
                return "the song has ended and its last chord rings: let it go, then your next note starts the next song"
            return "the song has ended: your next note starts the next one"
        return ""

    @property
    def ended(self) -> bool:
        """The song has ended: the box waits for the next one."""
        return self._ended

    def flush_news(self) -> None:
        """Write the log lines the player's thread kept (it never writes logs itself)."""
        while True:
            try:
                line = self._said.popleft()
            except IndexError:
                return
            log.info("%s", line)

    def resample(self) -> None:
        """A new variation: the same groove, a new eps. Works while frozen too."""
        with self._lock:
            self._eps = self.generator.new_eps()
            self._opens = False
            self._ask(self._clock(), force=True)
        self._button("resample", "resample: a new variation of the groove")

    def style(self, name: str) -> str:
        """A style's pad (``appliance.core.styles``): that style, or none when it plays already.
        A name that is no style raises ValueError, and nothing changes."""
        controls = self._change_controls(
            lambda now: replace(now, style=styles.NONE if now.style == name else name))
        if controls.style == styles.NONE or self.generator.offers(controls.style):
            self._button("style", "style: %s", controls.style)
        else:
            self._button("style", "style: %s is not in this model's card: the drums play as none", controls.style)
        return controls.style

    def prior(self) -> None:
        """From scratch: z from the prior, until the groove changes again."""
        with self._lock:
            self._eps = self.generator.new_eps()
            self._prior = True
            self._ask(self._clock(), force=True)
        self._button("prior", "prior: a new groove from scratch, until you play")

    def _button(self, kind: str, text: str, *args: object) -> None:
        """A button's log line, rate-limited (``BUTTON_LOG_S``); written now (no lock held)."""
        self._buttons.note(kind, logging.INFO, text, *args)
        self._buttons.flush()

    def set_controls(self, **changes: Any) -> Controls:
        """Change knobs (e.g. density=0.7); they take effect at the next regeneration."""
        return self._change_controls(lambda now: replace(now, **changes))

    def _change_controls(self, change: Callable[[Controls], Controls]) -> Controls:
        """The knobs as ``change`` makes them from the knobs now, in one hold of the lock."""
        with self._lock:
            self._controls = change(self._controls)
            self._notify("controls")
            if not self._frozen:
                self._ask(self._clock())
            controls = self._controls
        self._deliver()
        return controls

    def update_settings(self, **changes: Any) -> EngineSettings:
        """Change settings live; the player takes them at its next step, the beat goes on. How
        the groove is heard (``hear_eighths``, ``dynamics``, ``mf_velocity``) is heard in a new pattern at once."""
        with self._lock:
            settings = replace(self._settings, **changes)  # raises ValueError before anything changes
            player_settings = settings.player_settings()
            heard_anew = ((settings.hear_eighths, settings.dynamics, settings.mf_velocity)
                          != (self._settings.hear_eighths, self._settings.dynamics, self._settings.mf_velocity))
            self._settings = settings
            self._player.settings = player_settings
            self._looper.memory = settings.memory()
            if not settings.hear_eighths:
                self._ears = listening.Ears()   # heard as played from now on, and said so
            if not settings.stop_time:
                self._let_stop_time_go()
            if heard_anew and not self._frozen:
                self._ask(self._clock())
        self._deliver()
        return settings

    def restore(self, groove: Groove | None = None, eps: np.ndarray | None = None,
                controls: Controls | None = None, frozen: bool | None = None,
                prior: bool | None = None, pattern: Pattern | None = None) -> None:
        """Start from a saved state: the same groove, z noise, knobs and prior flag give the same
        pattern. A saved ``pattern`` (the one held by a freeze) is played as it is, not regenerated."""
        with self._lock:
            if groove is not None:
                self._looper.load(groove)
            if eps is not None:
                eps = np.asarray(eps, np.float32)
                if eps.shape == self._eps.shape:
                    self._eps = eps
                    self._opens = False   # the saved pattern comes back, not the opening
                else:
                    log.warning("saved z noise has %d values, the model wants %d: drawing a new one",
                                eps.size, self._eps.size)
            if controls is not None:
                self._controls = controls
            if frozen is not None:
                self._frozen = bool(frozen)
            if prior is not None:
                self._prior = bool(prior)
            if pattern is not None:
                self._player.offer(pattern)
                self._started = True  # nothing to generate: this is what was playing
            elif self._started:
                self._ask(self._clock(), force=True)

    def stats(self) -> dict:
        """Counts and inference percentiles; the percentiles are worked out again only when a
        generation has finished since (a status several times a second costs next to nothing)."""
        with self._lock:
            generations = self._generations
            summary = self._latency_summary
            if summary is None or summary[0] != generations:
                latencies = tuple(self._latencies_ms)   # the copy only: the maths is outside the lock
            else:
                latencies = None
        if latencies is not None:
            p50, p99 = np.percentile(np.array(latencies) if latencies else np.zeros(1), (50, 99))
            summary = self._latency_summary = (generations, round(float(p50), 3), round(float(p99), 3))
        assert summary is not None     # kept, or worked out just above
        return {
            "generations": generations,
            "misses": self._misses,
            "failures": self._failures,
            "latency_ms_p50": summary[1],
            "latency_ms_p99": summary[2],
            "pattern_hits": self._player.pattern.hits,
            "groove_hits": self.groove.hits,
            "frozen": self._frozen,
            "stop_time": self._player.stopped,
            "heard_on_the_eighths": self._settings.hear_eighths and self._ears.busy,
            "late_drops": self._player.late_drops,
            "waiting_for": self._waiting_for(),
        }

    def close(self) -> None:
        self._executor.close()

    # -- regeneration ------------------------------------------------------------------------
    def _ask(self, t: float, force: bool = False, opening: bool = False) -> None:
        """Ask for a new pattern (caller holds the lock). ``opening``: the first, at the first tick;
        with nothing played yet (and no prior, resample or restored z noise asked for) it is the
        model's plainest groove, z = 0, not a draw from the prior, which can be anything (one
        seed's beat 1 was a snare lick), at the level ``open_at`` gave."""
        if self._frozen and not force:
            return
        target = self._player.next_boundary(slack=1) if self._player.next_step is not None else None
        groove, controls = self._looper.assumed, self.played_controls()
        feel: tuple[float, ...] = ()
        law = self._settings.dynamics, self._settings.mf_velocity / 127
        heard = self._ears.hear(groove, *law) if self._settings.hear_eighths else listening.as_played(groove, *law)
        # the player's feel as played; humanise below 1 takes it towards the grid (0: on it)
        groove, feel = heard.groove, tuple(f * min(controls.humanise, 1.0) for f in heard.feel)
        if heard.velocity_scale != 1.0:   # the player's level (dynamics.py)
            controls = replace(controls, velocity_scale=min(2.0, controls.velocity_scale * heard.velocity_scale))
        lift = dynamics.lift(self._loudest, dynamics.played(self._looper.assumed), *law)
        opens = opening and self._opens and self._looper.groove.is_empty and not self._prior
        self._opens = self._opens and not opening
        eps = np.zeros_like(self._eps) if opens else self._eps
        if opens and self._opening_level is not None:   # nothing played: the whole law (dynamics.opening)
            controls = replace(controls, velocity_scale=min(2.0, controls.velocity_scale
                                                            * dynamics.opening(self._opening_level, *law)))
        job = Job(groove, controls, eps, self._prior, t, target, force, feel, lift, heard.loud, self._song, opens)
        if self._busy:
            self._waiting = job
        else:
            self._start(job, t)

    def _start(self, job: Job, now: float) -> None:
        self._busy = True
        self._executor.submit(
            lambda: listening.felt(self.generator.generate(job.groove, job.controls, job.eps, job.prior, job.loud),
                                   job.feel),
            lambda pattern, done_at: self._finished(job, pattern, done_at), now)

    def _finished(self, job: Job, pattern: Pattern | None, done_at: float) -> None:
        with self._lock:
            if pattern is None:
                self._failures += 1
            elif job.song != self._song:
                pass      # asked before the song ended: the next song does not play it
            elif not self._frozen or job.force:
                self._player.lift = job.lift
                self._player.offer(pattern)
                if job.opens:
                    self._opening = pattern
                self._notify("pattern")
                self._generations += 1
                self._latencies_ms.append((done_at - job.asked_at) * 1000.0)
                if job.target_step is not None and self._player.next_boundary() > job.target_step:
                    self._misses += 1
            self._busy = False
            if self._waiting is not None:
                waiting, self._waiting = self._waiting, None
                self._start(waiting, done_at)
        self._deliver()

    def _notify(self, kind: str) -> None:
        """Note a change for ``on_change``; told by ``_deliver``, never under the lock."""
        self._news.append(kind)

    def _deliver(self) -> None:
        """Tell ``on_change`` what changed. Called with the lock released, by the threads that
        change things (input, actions, the generator worker), never by the player thread."""
        self.flush_news()
        while True:
            try:
                kind = self._news.popleft()
            except IndexError:
                return
            for callback in list(self.on_change):
                try:
                    callback(kind)
                except Exception:
                    log.exception("on_change callback failed for %s", kind)

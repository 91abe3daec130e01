"""MIDI clock, followed: the tempo and position a clock source implies, and the switch.

No MIDI bytes here: ``appliance.io.midi.clock`` turns messages into :meth:`heard` calls
and sends the box's own clock (:class:`~appliance.io.midi.clock.ClockSender`).

:class:`MidiClockFollower` is a :class:`~appliance.core.transport.Transport` driven by MIDI clock
(24 ppqn, so 6 clocks a sixteenth step), Start / Stop / Continue and Song Position Pointer.
Its tempo and phase come from a least-squares line through the last beat of clock arrivals:
jitter averages out, and a tempo change has fully settled one beat later. A clock arrives
late, never early, so the line leaves out the late ones: clocks held up together (a JACK
cycle or a reader stalled under load hands them on in one burst; all but the burst's last
are late) and stragglers well behind the line. A quarter-second stall at 100 BPM then moves
neither the tempo nor the grid (with least squares alone: 38 BPM off, steps planned 110 ms
off for a beat; ``python -m benchmarks.clock``).

A clock byte lost on the way in (a noisy DIN cable, a JACK cycle missed under load) is
counted from the timing: while a steady clock plays, a gap of k periods followed by a gap of
one is k clocks (up to ``MAX_MISSED`` in a row), so a lost byte neither puts the box a clock
late for the rest of the song nor bends its tempo for a beat; a clock merely late, or a real
slowdown, is followed as it is. Each such loss is counted (``missed``) and logged, rate-limited.
The other way round, a clock three quarters of a period or more ahead of the steady line and
less than a quarter period after the last (an extra byte right behind a clock: two sources
merged, a MIDI loop, a stuttering interface; on its clock's own time stamp only where the
stamps are finer than half a period) is put aside; if the next clock is where the line puts it, what was put aside is ignored, counted
(``extra``) and logged, rate-limited; otherwise it was a jump in tempo, and is counted in.

Relocation is exact: Start puts the first clock after it at position 0, Song Position
Pointer + Continue at the song position (MIDI beats are our sixteenth steps), so a sequencer
starting from bar 17 puts the box on step 0 of its loop, absolute position 256. Each
anchoring bumps ``relocations``; the engine then re-locates the player and tells the looper
that the pass goes on (see ``Engine.relocate``).

A clock is *steady* once one beat of clocks (25) lies on a line within half a clock period
(at least 4 ms) at 40..300 BPM. Stray bytes never are: the follower joins a clock without a
Start only once it is steady, and :class:`ClockSwitch` in ``auto`` takes the beat from the
internal clock only from a steady clock.

:class:`ClockSwitch` is the transport the engine gets: ``internal`` (the box's own clock),
``external`` (only MIDI clock), or ``auto`` (internal until a steady MIDI clock plays, then
follow it). In ``auto`` the beat goes back to the internal clock when the MIDI clock goes
quiet while playing (after ``lost_after``, 0.5 s: carry on at its last tempo without a gap)
or stays stopped for ``stopped_after`` (15 s: long enough to restart or locate a song and
count in, two bars at 40 BPM take 12 s; longer than that, the player is on their own and
``auto`` plays on its own clock again). Start or Continue from a steady master takes it
back at once.

A box that sends its own clock (``tempo.send_clock``) may hear it back: a drum machine with MIDI
thru or echo on returns every clock a few milliseconds later, a steady clock at the box's own
tempo. Followed, the box stops sending (it sends only as the master), the echo stops, the clock
is lost half a second later and the box is the master again: it flipped between the two about
every beat and a half, its drum machine losing the clock each time (tests/test_clock_follower.py
without this rule). An echo cannot be told from a master at the box's own tempo, so while
:attr:`ClockSwitch.sending`, ``auto`` does not take over from a steady clock whose tempo,
counted over ``RATE_S`` (not fitted: JACK stamps a cycle's clocks with one time), is within
``ECHO_TEMPO`` of the box's own (and of a cycle over 3 s, where stamps are a JACK cycle), nor for ``SETTLE_S`` after its own tempo changed (its echo
catches up with a tempo knob a beat later); it takes over from any other tempo, and from any
clock within ``MASTER_START_S`` after a Start or Continue the box did not send (one within
``ECHO_S`` after the box's own is its echo): a sequencer pressing play. One log line says so. A
clock followed that goes quiet within two ``lost_after`` of the take-over was the box's own (a
drum machine that echoes its clock and sends its own Start): the box goes back to its tempo
before, and takes nothing over until that tempo changes or a master presses play.

What the follower logs (Start, Stop, Continue, clock found and lost) is rate-limited: the
1st, 10th, 100th … time of each, or when 30 s have passed since the last line of the kind,
and never while a lock is held.
"""
from __future__ import annotations

from collections import deque
import logging
import math
import threading
import time
from typing import Callable

from appliance.core.groove import STEPS
from appliance.core.transport import (MAX_BPM, MIN_BPM, InternalClock, Transport, check_bpm,
                                      clamp_bpm, seconds_per_step)

log = logging.getLogger(__name__)

PPQN = 24
CLOCKS_PER_STEP = 6
#: what a clock source says: a tick (24 a beat), Start, Stop, Continue, Song Position Pointer
CLOCK_EVENTS = frozenset({"clock", "start", "stop", "continue", "songpos"})
STEADY_TICKS = PPQN + 1      #: one beat of clocks makes a steady run
STEADY_SLACK = 0.5           #: each clock within this many periods of the line ...
STEADY_MIN_S = 0.004         #: ... or this many seconds, whichever is more
STOPPED_AFTER_S = 15.0       #: auto: a Stop longer than this hands the beat back
MAX_MISSED = 3               #: clocks in a row that may go missing and be counted from the timing
EXTRA_EARLY = 0.75           #: a clock this many periods ahead of the steady line is put aside ...
MAX_EXTRA = PPQN             #: ... up to this many, until the next clock says what they were
ECHO_S = 0.2                 #: a Start or Continue this soon after the box sent one is its echo
ECHO_TEMPO = 0.015           #: while the box sends its clock, one this close to its tempo may be its echo
SETTLE_S = 3.5               #: ... and any, this long after its own tempo changed (two beats at 40 BPM, and some)
MASTER_START_S = 4.0         #: a clock this soon after a master's Start or Continue is followed whatever its tempo
RATE_S = (3.0, 4.0)          #: the tempo judged against the box's own: clocks counted over 3 to 4 s (a JACK cycle's stamps, 20 ms, then err < 1 %)
RATE_TOLD_S = 8.0            #: ... up to 8 s where told the stamps are a cycle (the guard widened by a cycle over the count)
COUNTED_S = (1.5, 4.0)       #: where stamps are coarse, the tempo is counted over the clocks of 1.5 to 4 s
COUNTED_FROM = 0.5           #: ... coarse: a cycle over this many periods (a beat's line 2-4 % off; under, 0-3 %, but it follows a jump at once)
TEMPO_RECENT_S = 1.5         #: ... and afresh once the last this long runs ...
TEMPO_JUMP = 0.06            #: ... this far off the whole count (a cycle's stamps: < 3 % over 1.5 s; an 80 ms stall 5 %)
SAME_STAMP_S = 1e-5          #: clocks this close came on one time stamp ...
CYCLE_STAMP_S = 1e-4         #: ... or this close, on a MIDI system that says its stamps are a cycle (rtmidi reads JACK's time per message, some µs apart)
STAMP_SLACK = 0.75           #: stamps a cycle coarse put a clock up to this many cycles off the line
COARSE_STAMPS = 0.5          #: stamps this coarse (in periods) can hold two of the master's clocks
MISSED_SLACK = 0.25          #: a gap counts as k clocks when within this many periods of k
MISSED_GAPS = 6              #: the period a gap is judged by: the median of this many gaps before it
LOG_EVERY_S = 30.0           #: a kind of clock news is logged again after this long anyway

IDLE, PLAYING, STOPPED = "idle", "playing", "stopped"


def forward_to(current: float, loop_position: float) -> float:
    """The first absolute position ≥ current that sits at ``loop_position`` in the loop."""
    return current + ((loop_position - current) % STEPS)


class RateLimitedLog:
    """Logs each kind of news the 1st, 10th, 100th … time, or again after ``every_s``.
    ``note`` keeps the line; ``flush`` writes what was kept (call it with no lock held)."""

    def __init__(self, logger: logging.Logger, every_s: float = LOG_EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.every_s = every_s
        self.clock = clock
        self.counts: dict[str, int] = {}
        self._last: dict[str, float] = {}
        self._kept: deque[tuple[int, str, tuple]] = deque(maxlen=16)

    def note(self, kind: str, level: int, text: str, *args: object) -> None:
        n = self.counts.get(kind, 0) + 1
        self.counts[kind] = n
        now = self.clock()
        if str(n).rstrip("0") != "1" and now - self._last.get(kind, -math.inf) < self.every_s:
            return
        self._last[kind] = now
        if n > 1:
            text += f" ({n} times so far)"
        self._kept.append((level, text, args))

    def flush(self) -> None:
        while self._kept:
            try:
                level, text, args = self._kept.popleft()
            except IndexError:
                return
            self.logger.log(level, text, *args)


class MidiClockFollower(Transport):
    """A transport that follows MIDI clock. Tell it every clock event with :meth:`heard`.

    States: idle (no clock, or lost), playing, stopped. A steady clock while idle starts it
    playing from where ``adopt`` says (the box's own position, so that a clock without a
    Start joins in without a jump). Ticks while stopped only update the tempo. Stopped and
    silent for ``stopped_after`` is idle again.
    """

    def __init__(self, bpm: float = 120.0, *, window: int = STEADY_TICKS, lost_after: float = 0.5,
                 stopped_after: float = STOPPED_AFTER_S,
                 clock: Callable[[], float] = time.monotonic,
                 adopt: Callable[[float], float | None] | None = None,
                 news: RateLimitedLog | None = None) -> None:
        self._lock = threading.Lock()
        self._relocations = 0
        self.window = max(2, window)
        self.lost_after = lost_after
        self.stopped_after = stopped_after
        self.clock = clock
        self.adopt = adopt
        self._ticks: deque[tuple[int, float]] = deque(maxlen=self.window)
        self._span: deque[tuple[int, float]] = deque()   # the ticks of the last COUNTED_S[1]
        self._counted: float | None = None   # the period counted over them, where stamps are coarse
        self._n = -1                      # index of the last tick heard
        self._fit = (0.0, seconds_per_step(bpm) / CLOCKS_PER_STEP)   # t = a + b·n
        self._state = IDLE
        self._steady = False              # the last beat of clocks is a plausible, even clock
        self._anchored = False            # a tick has fixed the position since the last Start
        self._ref_n: float = 0            # at tick _ref_n ...
        self._ref_pos = 0.0               # ... the position was _ref_pos
        self._pending: float | None = None   # position the next tick will be at
        self._held = 0.0                  # position while not playing
        #: playing a clock it joined without a Start (no Start, Continue or Stop since): the
        #: position is the box's own, which :meth:`begin_at` may set
        self.joined = False
        self._song_position: float | None = None
        self._last_tick = -math.inf
        self._last_heard = -math.inf      # last tick, Start or Continue
        self.missed = 0                   #: clocks counted from the timing (see _missed_before)
        self.extra = 0                    #: clocks ignored as extra (see _early)
        self._suspects: list[float] = []  # clocks put aside by _early, judged at the next one
        self._stopped_at = -math.inf
        #: how coarse the MIDI system stamps the clocks, in seconds, where it says (one JACK
        #: cycle: every clock read in a cycle gets the cycle's time); 0 where finer
        self.stamp_grain = 0.0
        #: what it has to say; an owner that passes ``news`` writes it (outside its own locks)
        self.news = news if news is not None else RateLimitedLog(log, clock=clock)
        self._writes_news = news is None

    # -- the Transport interface --------------------------------------------------------------
    @property
    def bpm(self) -> float:
        """The tempo of the line; where the stamps are coarse (a long JACK cycle), counted over
        the last few seconds: a beat's line then runs at the cycle's rate (117 BPM for a
        master's 122 on 1024 frames)."""
        counted = self._counted
        return 60.0 / ((counted if counted is not None else self._fit[1]) * PPQN)

    @property
    def state(self) -> str:
        with self._lock:
            self._check_lost(self.clock())
            state = self._state
        self._flush()
        return state

    @property
    def running(self) -> bool:
        with self._lock:
            self._check_lost(self.clock())
            running = self._state == PLAYING and self._anchored
        self._flush()
        return running

    @property
    def steady(self) -> bool:
        """One beat of clocks at a plausible tempo, evenly spaced, heard lately."""
        return self._steady and self.clock() - self._last_tick <= self.lost_after

    @property
    def stopped_for(self) -> float:
        """Seconds since the Stop while stopped; 0 otherwise."""
        return max(0.0, self.clock() - self._stopped_at) if self._state == STOPPED else 0.0

    @property
    def last_tick_time(self) -> float:
        return self._last_tick

    @property
    def source(self) -> str:
        return "external"

    @property
    def own_bpm(self) -> None:
        return None

    @property
    def relocations(self) -> int:
        return self._relocations

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
            if self._early(t):
                self._suspects.append(t)       # an extra clock, or a jump in tempo: see the next
            else:
                suspects, self._suspects = self._suspects, []
                if suspects and self._on_line(t):
                    self.extra += len(suspects)
                    self.news.note("extra", logging.WARNING,
                                   "MIDI clock: %d clock(s) came right behind another and were "
                                   "ignored (two clock sources merged, or a MIDI loop?)", len(suspects))
                    suspects = []
                for heard in suspects + [t]:
                    self._count(heard)
        self._flush()

    def _count(self, t: float) -> None:
        """One clock of the master's: number it and fit the line again (lock held)."""
        missed = self._missed_before(t)
        if missed:
            # The tick before this one came ``missed`` clocks after its predecessor:
            # number it (and so everything after it) as the master counted.
            n, heard = self._ticks.pop()
            self._ticks.append((n + missed, heard))
            self._n += missed
            if self._span:
                self._span[-1] = (n + missed, heard)
            self.missed += missed
            self.news.note("missed", logging.WARNING,
                           "MIDI clock: %d clock(s) went missing on the way in and were "
                           "counted from the timing (check the clock source's cable)", missed)
        self._n += 1
        self._last_tick = self._last_heard = t
        self._ticks.append((self._n, t))
        self._refit()
        self._count_tempo(t)
        if self._state == IDLE and self._steady:
            # A clock without a Start: join it where the box already is.
            self._held = self._adopted(t, self._held)
            self._pending = self._held
            self._state, self._anchored = PLAYING, False
            self.joined = True
            self.news.note("join", logging.INFO,
                           "following MIDI clock at %.1f BPM (no Start heard)", self.bpm)
        if self._state == PLAYING and self._pending is not None:
            self._anchor_here(self._pending)

    def _count_tempo(self, t: float) -> None:
        """The clocks of the last ``COUNTED_S`` counted (lock held): a tempo to show and to
        carry on at, within a cycle over the span (< 1 % on 1024 frames), where the MIDI system
        says its stamps are a cycle over ``COUNTED_FROM`` of a period (``stamp_grain``). A
        tempo over the last ``TEMPO_RECENT_S`` ``TEMPO_JUMP`` off the whole count's is the
        master's new one: counted from there."""
        span = self._span
        span.append((self._n, t))
        while t - span[0][1] > COUNTED_S[1]:
            span.popleft()
        counted = None
        if self.stamp_grain > COUNTED_FROM * self._fit[1] and len(span) >= 2:
            recent = next(k for k, (_, heard) in enumerate(span) if t - heard <= TEMPO_RECENT_S)
            (n0, t0), (nr, tr), (n1, t1) = span[0], span[recent], span[-1]
            whole = (t1 - t0) / (n1 - n0)
            if recent and n1 > nr and abs((t1 - tr) / (n1 - nr) / whole - 1.0) > TEMPO_JUMP:
                for _ in range(recent):
                    span.popleft()
            elif t1 - t0 >= COUNTED_S[0]:
                counted = whole
        self._counted = counted        # one write: ``bpm`` is read from other threads

    def start(self, t: float) -> None:
        with self._lock:
            self._suspects.clear()
            self._check_lost(t)
            self._song_position = None
            self._hold(t)
            self._forget_a_paused_clock(t)
            self._last_heard = t
            self._state, self._anchored, self._pending = PLAYING, False, 0.0
            self.joined = False
            self.news.note("start", logging.INFO, "MIDI Start")
        self._flush()

    def resume(self, t: float) -> None:
        with self._lock:
            self._suspects.clear()
            self._check_lost(t)
            was = self._state
            self._hold(t)
            self._forget_a_paused_clock(t)
            self._last_heard = t
            if self._song_position is not None:
                where = self._song_position
            elif was == STOPPED:
                where = self._held            # where the master stopped
            else:
                where = self._adopted(t, self._held)
            self._song_position = None
            self._state, self._anchored, self._pending = PLAYING, False, where
            self.joined = False
            self.news.note("continue", logging.INFO, "MIDI Continue")
        self._flush()

    def stop(self, t: float) -> None:
        with self._lock:
            self._suspects.clear()
            self._hold(t)
            self._state, self._pending = STOPPED, None
            self.joined = False
            self._stopped_at = t
            self.news.note("stop", logging.INFO, "MIDI Stop")
        self._flush()

    def begin_at(self, t: float) -> bool:
        """A clock joined without a Start (:attr:`joined`) is the loop's from ``t``: position 0
        there, at the clock's tempo (the player's first note is beat one, as on the box's own
        clock). False, and nothing moves, when no such clock plays."""
        with self._lock:
            self._check_lost(t)
            if not (self.joined and self._state == PLAYING and self._anchored):
                return False
            a, b = self._fit
            self._relocations += 1
            self._ref_n, self._ref_pos, self._held = (t - a) / b, 0.0, 0.0
            self.joined = False
        return True

    def song_position(self, sixteenths: int) -> None:
        """Song Position Pointer: MIDI beats (sixteenths) since the song start = our steps."""
        with self._lock:
            self._song_position = float(sixteenths)

    def _flush(self) -> None:
        if self._writes_news:
            self.news.flush()

    # -- internals (caller holds the lock) ----------------------------------------------------
    def _hold(self, t: float) -> None:
        """Freeze the position where it is now (for a stop or before a relocation)."""
        if self._state == PLAYING and self._anchored:
            a, b = self._fit
            n = min((t - a) / b, self._n + PPQN)
            self._held = self._ref_pos + (n - self._ref_n) / CLOCKS_PER_STEP

    def _forget_a_paused_clock(self, t: float) -> None:
        """Start or Continue after the clock paused (a master that stops its clock while
        stopped): the clocks before the pause are not on the new clock's line, so they go.
        Counted on with them, the first beat after Song Position + Continue played up to a
        beat ahead and read 20-57 BPM. A clock that kept running while stopped stays."""
        if t - self._last_tick > 2 * self._fit[1]:
            self._ticks.clear()
            self._span.clear()

    def _adopted(self, t: float, otherwise: float) -> float:
        """The position the box plays at on its own clock (see ``adopt``), else ``otherwise``."""
        if self.adopt is not None:
            here = self.adopt(t)
            if here is not None:
                return here
        return otherwise

    def _missed_before(self, t: float) -> int:
        """Clocks lost just before the last tick heard, judged now that the next one is here.

        A clock byte can go missing on the way in (a noisy DIN cable, a JACK cycle missed
        under load); counted as one tick, each loss would put the box a clock (18-25 ms)
        late for the rest of the song and bend the tempo for a beat. So while playing a
        steady clock, a gap of k periods (2 ≤ k ≤ ``MAX_MISSED`` + 1, within
        ``MISSED_SLACK``) followed by a gap of one period counts as k clocks. One gap alone
        decides nothing: a clock merely late (the next one comes early) or a real slowdown
        (the next gap is long too) is followed as it is. Nothing is counted so where the MIDI
        system stamps in cycles longer than half a period: there a cycle that holds no clock
        is a gap of two (a review's sweep on 1024 frames: 99 clocks counted at 101 BPM in
        16 beats that were never lost, the box 4 beats ahead)."""
        ticks = self._ticks
        if (self._state != PLAYING or not self._anchored or len(ticks) < STEADY_TICKS
                or ticks[-1][0] <= self._ref_n):
            return 0
        # The period from the last few gaps before it (the fit lags a tempo change by a beat);
        # only a clock that has been even lately (each of those gaps within a quarter of it).
        recent = list(ticks)[-(MISSED_GAPS + 2):-1]
        gaps = sorted((t1 - t0) / (n1 - n0) for (n0, t0), (n1, t1) in zip(recent, recent[1:]))
        b = gaps[len(gaps) // 2]
        if b <= 0 or any(abs(gap - b) > MISSED_SLACK * b for gap in gaps):
            return 0
        if self.stamp_grain > COARSE_STAMPS * b:
            return 0   # a cycle with no clock in it is a gap of two: nothing is told from the timing
        (_, before), (_, last) = ticks[-2], ticks[-1]
        if not 0.5 * b <= t - last <= 1.5 * b:
            return 0
        k = round((last - before) / b)
        if not 2 <= k <= MAX_MISSED + 1 or abs(last - before - k * b) > MISSED_SLACK * b:
            return 0
        return k - 1

    def _early(self, t: float) -> bool:
        """A clock too early to be the master's next, while a steady clock plays.

        A clock arrives late, never early, so one ``EXTRA_EARLY`` periods or more ahead of
        where the steady line puts the next is an extra byte (two clock sources merged, a MIDI
        loop, an interface that stutters) or the first of a jump in tempo. It is put aside and
        judged at the next clock that is not: if that one is where the line puts the next
        (``_on_line``), the ones put aside were extra and are ignored; otherwise they are
        counted (a jump to four times the tempo). Counted, five extra bytes put the box 5/6
        of a step ahead of the master for the rest of the song (a fault harness's probe).

        Only a clock within ``BURST_GAP`` of a period after the last is put aside: after a
        jump to 1.5 or 2 times the tempo the third clock comes 0.8 periods ahead of the line
        that lags behind it, but half a period or more after the last. One on the last one's
        time stamp only where the stamps are finer than ``COARSE_STAMPS`` of a period
        (``_grain``): a JACK cycle stamps every clock in it with one time, and with a
        period just under the cycle (120 BPM on 1024 frames at 48 kHz) the line runs at the
        cycle's rate, and the second of the two clocks a cycle holds now and then came a
        period early: a code review's simulation lost 15 clocks in 400 so. On such cycles an
        extra byte in its clock's own cycle cannot be told from that, and is counted."""
        if (self._state != PLAYING or not self._anchored or not self._steady
                or len(self._ticks) < STEADY_TICKS or len(self._suspects) >= MAX_EXTRA):
            return False
        a, b = self._fit
        gap = t - self._last_tick
        if gap >= BURST_GAP * b or t >= a + b * (self._n + 1 - EXTRA_EARLY):
            return False
        return gap > self._same_stamp() or self._grain() <= COARSE_STAMPS * b

    def _grain(self) -> float:
        """How coarse the clocks' stamps are: one JACK cycle where the MIDI system says
        (``stamp_grain``), else as the window shows it (``_stamp_step``, which a cycle's jitter
        of a tenth of a millisecond or more hides: on a real server's 1024-frame cycles at 122
        BPM, 12 of 384 clocks were lost so, tests/test_clock_live.py)."""
        return max(self.stamp_grain, self._stamp_step())

    def _same_stamp(self) -> float:
        """Clocks this close came on one time stamp: ``CYCLE_STAMP_S`` where the MIDI system
        says its stamps are a cycle, else ``SAME_STAMP_S`` (an ALSA byte sent twice 30 µs
        apart is two stamps, the second one extra)."""
        return CYCLE_STAMP_S if self.stamp_grain > 0 else SAME_STAMP_S

    def _stamp_step(self) -> float:
        """How finely the clocks are time-stamped, from the window: the smallest step between
        its gaps (a JACK cycle's length, or less), infinite when every gap is the same."""
        times = [t for _, t in self._ticks]
        gaps = sorted(t1 - t0 for t0, t1 in zip(times, times[1:]))
        steps = [g1 - g0 for g0, g1 in zip(gaps, gaps[1:]) if g1 - g0 > self._same_stamp()]
        return min(steps, default=math.inf)

    def _on_line(self, t: float) -> bool:
        """``t`` is where the line puts the next clock, within ``MISSED_SLACK`` periods."""
        a, b = self._fit
        return abs(t - (a + b * (self._n + 1))) <= MISSED_SLACK * b

    def _anchor_here(self, position: float) -> None:
        self._relocations += 1
        self._ref_n, self._ref_pos = self._n, position
        self._held = position
        self._anchored, self._pending = True, None

    def _refit(self) -> None:
        """Least squares through the window, without the clocks that came in a burst, then
        again without the late stragglers: a clock can arrive late (a busy sender, a delayed
        cycle, a stalled reader) but never early, so ticks well above the line are delays,
        not tempo. Also decides whether the clock is steady."""
        ticks = list(self._ticks)
        if len(ticks) < 2:
            n, t = ticks[-1]
            b = self._fit[1]
            self._fit = (t - b * n, b)
            self._steady = False
            return
        a, b = _line(ticks)
        low, high = 60.0 / (MAX_BPM * PPQN), 60.0 / (MIN_BPM * PPQN)
        grain = self.stamp_grain
        slack = max(STEADY_SLACK * b, STEADY_MIN_S, STAMP_SLACK * grain)
        self._steady = (len(ticks) >= min(self.window, STEADY_TICKS) and low <= b <= high
                        and all(abs(t - (a + b * n)) <= slack for n, t in ticks))
        # Clocks less than BURST_GAP periods apart came in a burst: held up on the way in (a
        # stalled cycle or reader hands on its clocks all at once), so only a burst's last
        # clock can be on time, and whether the newest is the last is known at the next.
        # (Not when the whole window runs that fast: that is a new tempo, 4 × or more.)
        period = self._fit[1]
        kept = ticks
        (n0, t0), (n1, t1) = ticks[0], ticks[-1]
        if t1 - t0 >= BURST_GAP * period * (n1 - n0):
            apart = [q[1] - p[1] >= BURST_GAP * period * (q[0] - p[0])
                     for p, q in zip(ticks, ticks[1:])]
            kept = [p for p, last in zip(ticks, apart) if last]
            if apart[-1]:
                kept.append(ticks[-1])
        if len(kept) < max(2, len(ticks) // 3):
            if _runs(ticks, kept) <= 2:
                # Mostly one burst: keep the tempo, under the clocks that were not held up.
                self._fit = (min(t - period * n for n, t in kept), period)
                return
            # Bursts all through the beat: the clocks are stamped coarser than they come (a
            # long JACK cycle gives several the same time), not held up; the line through all.
            kept = ticks
        if len(kept) < len(ticks):
            a, b = _line(kept)
        on_time = [(n, t) for n, t in kept if t - (a + b * n) <= max(LATE_S, grain)]
        if len(on_time) >= max(2, len(kept) // 2) and len(on_time) < len(kept):
            a, b = _line(on_time)
        if not 60.0 / (MAX_BPM * PPQN) <= b <= 60.0 / (20.0 * PPQN):   # 20: a slow clock is still followed
            # nonsense (a burst of clocks): keep the last tempo
            b = self._fit[1]
            a = min(t - b * n for n, t in ticks)
        self._fit = (a, b)

    def _check_lost(self, now: float) -> None:
        if self._state == PLAYING and now - self._last_heard > self.lost_after \
                and self._last_heard > -math.inf:
            self._hold(self._last_tick if self._last_tick > -math.inf else now)
            self._state, self._anchored, self._steady = IDLE, False, False
            self._ticks.clear()
            self._span.clear()
            self._suspects.clear()
            self.news.note("lost", logging.WARNING,
                           "MIDI clock lost (nothing for %.1f s); check the clock source's cable",
                           now - self._last_heard)
        elif (self._state == STOPPED and now - self._stopped_at > self.stopped_after
              and now - self._last_heard > self.lost_after):
            self._state, self._steady = IDLE, False     # stopped and silent: gone
            self._ticks.clear()
            self._span.clear()


LATE_S = 0.0015   #: a clock this far behind the fitted line is a straggler
BURST_GAP = 0.25  #: a clock followed by the next within this many periods came in a burst


def _runs(ticks: list[tuple[int, float]], kept: list[tuple[int, float]]) -> int:
    """How many runs of consecutive clocks in ``ticks`` are not in ``kept``."""
    left_out = [tick not in kept for tick in ticks]
    return sum(out and not before for out, before in zip(left_out, [False] + left_out))


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
                 clock: Callable[[], float] = time.monotonic, lost_after: float = 0.5,
                 stopped_after: float = STOPPED_AFTER_S) -> None:
        if mode not in self.MODES:
            raise ValueError(f"tempo.clock {mode!r} is not one of {', '.join(self.MODES)}")
        check_bpm(bpm)
        self.mode = mode
        self.clock = clock
        self.stopped_after = stopped_after
        now = clock()
        self._source = "external" if mode == "external" else "internal"
        self.internal = InternalClock(bpm=bpm, start=now)
        self.news = RateLimitedLog(log, clock=clock)   # written with no lock held
        self.follower = MidiClockFollower(bpm=bpm, clock=clock, lost_after=lost_after,
                                          stopped_after=stopped_after, adopt=self._adopt,
                                          news=self.news)
        self._switch_lock = threading.RLock()
        self._relocations = 0
        #: the box sends its clock out (tempo.send_clock): in auto a clock at its own tempo
        #: may be its echo, and is not followed without a master's Start (see the module doc)
        self.sending = False
        self._own_start = -math.inf      # when the box last sent a Start or Continue
        self._own_stop = -math.inf       # ... and a Stop
        self._sending_then = False       # whether it sent its clock when auto last took over
        self._own_ran = self.internal.running
        self._own_halted = -math.inf     # when the box's own clock last stopped
        self._follower_moves = 0         # the follower's relocations, last read ...
        self._follower_unfollowed = 0    # ... and those made while it was not followed
        self._master_start = -math.inf   # when a Start or Continue came that was not the box's own
        self._own_bpm = self.internal.bpm
        self._own_bpm_changed = -math.inf
        self._took_over = -math.inf        # when auto last took the beat from a MIDI clock
        self._tempo_before = self.internal.bpm   # the box's own tempo then
        self._echo_found = False           # a clock taken over died as the box stopped sending
        self._clock_times: deque[float] = deque()   # while sending: the clocks of the last RATE_S
        self._echo_said = False
        #: external: the box waits to start (its Starter holds it): a clock joined without a
        #: Start keeps the time but plays nothing until the first note or a master's Start
        self._waits = False
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
        follower = self.follower
        with self._switch_lock:
            state = follower.state
            if state == IDLE:
                self._echo_said = False
            running = self.internal.running
            if self._own_ran and not running:
                self._own_halted = self.clock()   # its clock's echo may still be on its way
            self._own_ran = running
            if self.internal.bpm != self._own_bpm:
                self._own_bpm, self._own_bpm_changed = self.internal.bpm, self.clock()
                self._echo_found = False
                self._clock_times.clear()          # its echo's tempo is counted afresh
            if self._source == "internal" and state == PLAYING and follower.steady \
                    and follower.running and self._from_a_master():
                self._source = "external"
                self._took_over, self._tempo_before = self.clock(), self.internal.bpm
                self._sending_then = self._sends(self.clock())
                self._relocations += 1
                self.news.note("external", logging.INFO, "clock: following MIDI clock at %.1f BPM",
                               follower.bpm)
            elif self._source == "external" and (
                    state == IDLE or (state == STOPPED and follower.stopped_for > self.stopped_after)):
                # Carry on from where the follower is, at its last tempo: no gap, no jump.
                since = follower.last_tick_time if state == IDLE else self.clock()
                since = since if since > -math.inf else self.clock()
                where = follower.position(since)
                echo = (self._sending_then and state == IDLE
                        and self.clock() - self._took_over <= 2 * follower.lost_after)
                if echo:      # it stopped as soon as the box stopped sending: the box's own, echoed
                    self._master_start, self._echo_found = -math.inf, True
                bpm = self._tempo_before if echo else clamp_bpm(follower.bpm)
                self.internal.set_bpm(bpm, since)
                self._own_bpm = self.internal.bpm             # the box's own again, not a change
                self.internal.start(since, position=where)
                self._source = "internal"
                self._relocations += 1
                if state == IDLE:
                    self.news.note("internal", logging.INFO, "clock: MIDI clock gone, carrying on "
                                   "at %.1f BPM on the internal clock", self.internal.bpm)
                else:
                    self.news.note("internal", logging.INFO, "clock: MIDI clock stopped for "
                                   "%.0f s, playing on at %.1f BPM on the internal clock",
                                   self.stopped_after, self.internal.bpm)

    def _from_a_master(self) -> bool:
        """Whether the steady clock may be followed (lock held): always, unless the box sends its
        own and the clock may be that, echoed back (module doc)."""
        now = self.clock()
        if not self._sends(now) or now - self._master_start <= MASTER_START_S:
            return True
        if self._echo_found or now - self._own_bpm_changed <= SETTLE_S:
            return False
        rate = self._rate()
        if rate is None:
            return False                       # not yet heard long enough to tell
        span = self._clock_times[-1] - self._clock_times[0]
        if abs(rate / self._own_bpm - 1.0) > ECHO_TEMPO + self.follower.stamp_grain / span:
            return True          # (a count of stamps a cycle coarse may be a cycle off)
        if not self._echo_said:
            self._echo_said = True             # once, until that clock goes quiet
            self.news.note("echo", logging.WARNING, "clock: a MIDI clock comes in at the box's own "
                           "tempo (%.1f BPM) while it sends its own (tempo.send_clock): not followed, "
                           "it may be its own coming back (a drum machine's MIDI thru or echo?); a "
                           "sequencer is followed once it sends Start or Continue, or another tempo",
                           self.follower.bpm)
        return False

    def _sends(self, now: float) -> bool:
        """Whether the box's own clock goes out, or went out so lately that its echo may still
        be coming: a box held until the player's first note sends nothing."""
        return self.sending and (self.internal.running
                                 or now - max(self._own_stop, self._own_halted) <= 2 * self.follower.lost_after)

    def _rate(self) -> float | None:
        """The tempo of the clocks heard over the last RATE_S (``RATE_TOLD_S`` where told the
        stamps are a cycle; lock held), or None before 3 s: counted, not fitted, so time stamps
        a JACK cycle apart move it by a cycle over the count."""
        times = self._clock_times
        if len(times) < 2 or times[-1] - times[0] < RATE_S[0]:
            return None
        return (len(times) - 1) / (times[-1] - times[0]) * 60.0 / PPQN

    def own_start(self, t: float, kind: str = "start") -> None:
        """The box sends a Start or Continue (or, ``kind`` "stop", a Stop) at ``t`` (its
        ClockSender): one heard just after is its echo, not a master, and is not followed."""
        if kind == "stop":
            self._own_stop = t
        else:
            self._own_start = t

    def own_echo(self, t: float, kind: str = "start") -> bool:
        """Whether a Start or Continue (or a Stop) heard at ``t`` is the box's own coming back."""
        sent = self._own_stop if kind == "stop" else self._own_start
        return self.sending and -0.02 <= t - sent <= ECHO_S

    @property
    def relocations(self) -> int:
        """Bumped whenever the position may have jumped (a Start, a song position, a switch).
        The follower's own count only while it is followed: on the box's own clock, a clock
        joined or its echo's Start moves nothing."""
        self._update()
        with self._switch_lock:
            moves = self.follower.relocations
            if self._source != "external":
                self._follower_unfollowed += moves - self._follower_moves
            self._follower_moves = moves
            return self._relocations + moves - self._follower_unfollowed + self.internal.relocations

    @property
    def bpm(self) -> float:
        return self._active().bpm

    @property
    def running(self) -> bool:
        if self._waits and self.follower.joined:   # a drum machine's clock while it is stopped
            return False
        return self._active().running

    def position(self, t: float) -> float:
        return self._active().position(t)

    def time_at(self, position: float) -> float:
        return self._active().time_at(position)

    @property
    def stamp_grain(self) -> float:
        """How coarse the MIDI system stamps the clock followed (see MidiClockFollower)."""
        return self.follower.stamp_grain

    @stamp_grain.setter
    def stamp_grain(self, seconds: float) -> None:
        self.follower.stamp_grain = seconds

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
            if event in ("start", "continue", "stop") and self.own_echo(t, event):
                return                             # the box's own, echoed: nothing to follow
            if event in ("start", "continue"):
                self._master_start, self._echo_found = t, False
                self._waits = False
            elif event == "clock" and self.sending:
                times = self._clock_times
                if times and t - times[-1] > self.follower.lost_after:
                    times.clear()                  # a new stream
                times.append(t)
                while t - times[0] > (RATE_TOLD_S if self.follower.stamp_grain else RATE_S[1]):
                    times.popleft()
            self.follower.heard(event, t, song_position)
        self._update()
        self.news.flush()                  # the input thread writes the news, no lock held

    def flush_news(self) -> None:
        """Write what the clock has to say (the service's main thread calls this every
        second: a clock lost is noticed by the player's thread, which never writes logs)."""
        self.news.flush()

    def set_bpm(self, bpm: float, now: float) -> None:
        """The internal tempo (an external clock sets its own)."""
        self.internal.set_bpm(bpm, now)

    def start(self, now: float, position: float = 0.0) -> None:
        """Play the internal clock from exactly ``position`` (a relocation); external, a clock
        joined without a Start from ``now`` on (the box waited for its first note)."""
        self.internal.start(now, position)
        if self.mode == "external" and self._waits:
            self._waits = False
            self.follower.begin_at(now)

    def stop(self, now: float) -> None:
        """Hold the internal clock (the Starter waits); external, a clock without a Start waits too."""
        self.internal.stop(now)
        self._waits = self.mode == "external"


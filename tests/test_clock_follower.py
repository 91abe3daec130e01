"""The MIDI clock follower, the internal/external/auto switch and the clock sender, on a
virtual clock (deterministic: the times are the test's)."""
from __future__ import annotations

import random
from typing import Callable

import mido
import pytest

from appliance.core.groove import STEPS
from appliance.core.clock import ClockSwitch, MidiClockFollower, forward_to
from appliance.io.midi.clock import ClockSender, feed_clock
from appliance.core.transport import Transport

CLOCK, START, STOP, CONTINUE = (mido.Message(k) for k in ("clock", "start", "stop", "continue"))


class Now:
    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def approx_loop(expected: float, abs: float = 1e-6):
    """A place in the loop, where 31.999999 and 0.0 are the same place."""
    class Near:
        def __eq__(self, got: float) -> bool:
            d = (got - expected) % STEPS
            return min(d, STEPS - d) <= abs

        def __repr__(self) -> str:
            return f"{expected} ± {abs} (mod {STEPS})"
    return Near()


def tick_period(bpm: float) -> float:
    return 60.0 / bpm / 24


class Source:
    """A clock source on the virtual clock: ticks at a tempo, with optional jitter."""

    def __init__(self, target, now: Now, bpm: float, jitter: float = 0.0, seed: int = 1) -> None:
        self.target, self.now, self.bpm, self.jitter = target, now, bpm, jitter
        self.rng = random.Random(seed)
        self.ideal = now.t           # ideal time of the last tick sent
        self.sent = 0

    def send(self, message: mido.Message) -> None:
        feed_clock(self.target, message, self.now.t)

    def ticks(self, count: int) -> list[float]:
        """Send ``count`` ticks; returns their ideal (jitter-free) times."""
        times = []
        for _ in range(count):
            self.ideal += tick_period(self.bpm)
            times.append(self.ideal)
            self.now.t = self.ideal + self.rng.uniform(-self.jitter, self.jitter)
            feed_clock(self.target, CLOCK, self.now.t)
            self.sent += 1
        self.now.t = self.ideal
        return times


def test_is_a_transport():
    assert isinstance(MidiClockFollower(), Transport)
    assert isinstance(ClockSwitch("auto"), Transport)


def test_forward_to_never_goes_back():
    assert forward_to(0.0, 0.0) == 0.0
    assert forward_to(33.0, 0.0) == 64.0
    assert forward_to(40.0, 8.0) == 40.0
    assert forward_to(41.0, 8.0) == 72.0


def test_start_anchors_bar_one_at_the_first_tick():
    now = Now(10.0)
    f = MidiClockFollower(bpm=120, clock=now)
    src = Source(f, now, 100)
    src.send(STOP)
    src.ticks(30)                        # clock while stopped: tempo only
    assert not f.running
    assert f.bpm == pytest.approx(100, abs=0.01)
    src.send(START)
    assert not f.running                 # playing from the first tick after Start
    ideal = src.ticks(1)[0]
    assert f.running
    assert f.position(ideal) % STEPS == approx_loop(0.0, abs=1e-6)
    start = f.position(ideal)
    times = src.ticks(6 * 20)
    for k, t in enumerate(times, start=1):
        assert f.position(t) - start == pytest.approx(k / 6, abs=1e-6)
    assert f.time_at(start + 21) == pytest.approx(ideal + 21 * 6 * tick_period(100), abs=1e-6)


@pytest.mark.parametrize("jitter_ms", [0.0, 1.0, 2.0])
def test_settles_within_two_beats_of_a_tempo_change_and_ignores_jitter(jitter_ms):
    now = Now()
    f = MidiClockFollower(bpm=120, clock=now)
    src = Source(f, now, 100, jitter=jitter_ms / 1000)
    src.send(START)
    first = src.ticks(1)[0]
    base = f.position(first)
    src.ticks(24 * 4 - 1)
    assert f.bpm == pytest.approx(100, abs=0.5)
    src.bpm = 140                       # the source speeds up
    src.ticks(48)                       # two beats later ...
    assert f.bpm == pytest.approx(140, abs=0.5)
    # ... and the position follows the source's grid: its next beat is where the box thinks.
    ideal = src.ideal
    on_grid = f.position(ideal) - base
    assert on_grid == pytest.approx(round(on_grid * 6) / 6, abs=0.03)
    assert round(on_grid * 6) == src.sent - 1
    # Steps ahead are predicted at the new tempo.
    p = f.position(ideal)
    assert f.time_at(p + 4) - f.time_at(p) == pytest.approx(4 * 6 * tick_period(140), rel=0.01)


def test_jitter_does_not_wobble_the_tempo():
    now = Now()
    f = MidiClockFollower(bpm=120, clock=now)
    src = Source(f, now, 120, jitter=0.002, seed=7)
    src.send(START)
    src.ticks(48)
    seen = []
    for _ in range(200):
        src.ticks(1)
        seen.append(f.bpm)
    assert max(seen) - min(seen) < 2.0
    assert sum(seen) / len(seen) == pytest.approx(120, abs=0.3)


def test_stop_holds_and_continue_resumes_where_it_stopped():
    now = Now()
    f = MidiClockFollower(bpm=120, clock=now)
    src = Source(f, now, 120)
    src.send(START)
    src.ticks(6 * 5 + 1)               # five steps in
    src.send(STOP)
    held = f.position(now.t)
    assert not f.running
    src.ticks(50)                      # the master keeps its clock going while stopped
    assert f.position(now.t) == held
    src.send(CONTINUE)
    first = src.ticks(1)[0]
    assert f.running
    assert f.position(first) == pytest.approx(held, abs=1e-6)


def test_song_position_then_continue_lands_exactly_where_the_master_asked():
    now = Now()
    f = MidiClockFollower(bpm=120, clock=now)
    src = Source(f, now, 120)
    src.send(START)
    src.ticks(6 * 20 + 1)
    src.send(STOP)
    before = f.position(now.t)
    src.send(mido.Message("songpos", pos=64 + 8))    # bar 5, beat 3 → step 8 of the loop
    src.send(CONTINUE)
    first = src.ticks(1)[0]
    after = f.position(first)
    assert after == pytest.approx(72.0, abs=1e-6)    # exactly the song position
    assert after != before
    relocations = f.relocations
    src.send(START)                                  # restart: bar 1 again, exactly
    first = src.ticks(1)[0]
    assert f.position(first) == pytest.approx(0.0, abs=1e-6)
    assert f.relocations == relocations + 1


def test_clock_without_start_is_followed_and_a_lost_clock_stops():
    now = Now()
    f = MidiClockFollower(bpm=120, clock=now, lost_after=0.5)
    src = Source(f, now, 90)
    src.ticks(10)
    assert not f.running                             # not yet a steady beat of clocks
    src.ticks(16)
    assert f.running
    assert f.bpm == pytest.approx(90, abs=0.01)
    now.t += 0.6                                     # the cable is pulled
    assert not f.running
    assert f.state == "idle"


def test_switch_auto_follows_a_clock_and_falls_back_without_a_jump():
    now = Now(100.0)
    sw = ClockSwitch("auto", bpm=120, clock=now, lost_after=0.5)
    assert sw.source == "internal" and sw.running
    now.t += 3.3                                      # the box plays on its own for a while
    own = sw.position(now.t)
    assert own == pytest.approx(3.3 / (60 / 120 / 4))
    src = Source(sw, now, 100)
    src.ticks(12)
    assert sw.source == "internal"                    # half a beat of clock is not a master yet
    src.ticks(13)
    assert sw.source == "external"                    # a steady beat: joined where the box was
    # no jump: where the internal clock had got to (within the last tick's jitter)
    assert sw.position(now.t) == pytest.approx(own + (now.t - 103.3) / (60 / 120 / 4), abs=0.3)
    feed_clock(sw, START, now.t)
    first = src.ticks(1)[0]
    assert sw.position(first) == pytest.approx(0.0, abs=1e-6)   # bar 1, exactly, at once
    src.ticks(24 * 3)
    assert sw.bpm == pytest.approx(100, abs=0.1)
    last = now.t
    where = sw.position(last)
    now.t += 0.7                                      # the master vanishes mid-song
    assert sw.source == "internal"
    assert sw.running
    assert sw.bpm == pytest.approx(100, abs=0.1)
    # The internal clock carries on from where the follower was (held at the last tick).
    assert sw.position(now.t) == pytest.approx(where + 0.7 / (60 / 100 / 4), abs=0.05)


def test_switch_auto_stop_from_the_master_stops_the_box():
    now = Now()
    sw = ClockSwitch("auto", bpm=120, clock=now)
    src = Source(sw, now, 120)
    feed_clock(sw, START, now.t)
    src.ticks(30)
    assert sw.source == "external"
    feed_clock(sw, STOP, now.t)
    assert not sw.running
    assert sw.source == "external"
    src.ticks(100)
    assert not sw.running


def test_switch_internal_ignores_clock_and_external_waits_for_one():
    now = Now()
    internal = ClockSwitch("internal", bpm=110, clock=now)
    src = Source(internal, now, 140)
    feed_clock(internal, START, now.t)
    src.ticks(48)
    assert internal.source == "internal" and internal.bpm == 110 and internal.running
    assert feed_clock(internal, mido.Message("note_on"), now.t) is False

    external = ClockSwitch("external", bpm=110, clock=now)
    assert not external.running and external.source == "external"
    src = Source(external, now, 140)
    feed_clock(external, START, now.t)
    src.ticks(48)
    assert external.running and external.bpm == pytest.approx(140, abs=0.01)
    now.t += 1.0
    assert not external.running and external.source == "external"

    with pytest.raises(ValueError, match="internal, external, auto"):
        ClockSwitch("sometimes")


def test_clock_sender_sends_24_ppqn_start_and_stop():
    now = Now()
    sw = ClockSwitch("internal", bpm=120, clock=now)
    sender = ClockSender(sw)
    out = sender.due(now.t, now.t + 1.0)              # one second = 2 beats = 48 clocks
    kinds = [m.type for _, m in out]
    assert kinds[0] == "start"
    clocks = [t for t, m in out if m.type == "clock"]
    assert len(clocks) == 49                          # 0 .. 1.0 s inclusive
    gaps = {round(b - a, 9) for a, b in zip(clocks, clocks[1:])}
    assert gaps == {round(tick_period(120), 9)}
    again = sender.due(now.t, now.t + 1.0)
    assert again == []                                # each clock once
    now.t = 1.5
    sw.stop(now.t)
    assert [m.type for _, m in sender.due(now.t, now.t + 0.1)] == ["stop"]


def test_clock_sender_joining_mid_loop_sends_song_position_then_continue():
    now = Now(0.0)
    sw = ClockSwitch("internal", bpm=120, clock=now)
    sw.stop(0.0)
    sender = ClockSender(sw)
    assert sender.due(0.0, 0.1) == []
    now.t = 1.0
    sw.internal.start(1.0, position=5.4)              # somewhere in the loop
    out = sender.due(1.0, 1.2)
    assert [m.type for _, m in out[:2]] == ["songpos", "continue"]
    assert out[0][1].pos == 6                         # the next sixteenth
    first_clock = next(t for t, m in out if m.type == "clock")
    assert first_clock == pytest.approx(sw.time_at(6.0))
    assert out[1][0] < first_clock                    # Continue before that clock


def test_late_stragglers_do_not_move_the_grid():
    """A busy sender or a delayed cycle delivers some clocks late (never early): the grid
    stays where the on-time clocks put it."""
    now = Now()
    f = MidiClockFollower(bpm=120, clock=now)
    src = Source(f, now, 120)
    src.send(START)
    first = src.ticks(1)[0]
    base = f.position(first)
    src.ticks(47)
    period = tick_period(120)
    for k in range(96):
        src.ideal += period
        late = 0.006 if k % 10 in (3, 4, 5) else 0.0   # bursts of three late clocks
        now.t = src.ideal + late
        feed_clock(f, CLOCK, now.t)
        now.t = src.ideal
        # The grid: where the box puts the next sixteenth, against the source's truth.
        assert f.position(src.ideal) - base == pytest.approx((48 + k) / 6, abs=0.02)
    assert f.bpm == pytest.approx(120, abs=0.5)


@pytest.mark.parametrize("stall_s", [0.06, 0.25, 0.4])
def test_clocks_held_up_together_move_neither_tempo_nor_grid(stall_s):
    """A stalled JACK cycle or reader hands on the clocks it held all at once (one time
    stamp). Least squares alone read a 250 ms stall at 100 BPM up to 38 BPM off for a beat
    (python -m benchmarks.clock)."""
    now = Now()
    f = MidiClockFollower(bpm=120, clock=now)
    src = Source(f, now, 100)
    src.send(START)
    first = src.ticks(1)[0]
    base = f.position(first)
    src.ticks(71)
    period = tick_period(100)
    stall_from = src.ideal + 0.3 * period
    for k in range(120):
        src.ideal += period
        now.t = max(src.ideal, stall_from + stall_s) if src.ideal >= stall_from else src.ideal
        feed_clock(f, CLOCK, now.t)
        assert f.bpm == pytest.approx(100, abs=0.5), k
        if src.ideal >= stall_from + stall_s:     # heard again: the grid is where it was
            assert f.position(src.ideal) - base == pytest.approx((72 + k) / 6, abs=0.02), k


@pytest.mark.parametrize("to_bpm", [250, 40])
def test_a_jump_to_four_times_the_tempo_is_a_tempo_not_a_burst(to_bpm):
    now = Now()
    f = MidiClockFollower(bpm=120, clock=now)
    src = Source(f, now, 60 if to_bpm > 100 else 300)
    src.send(START)
    src.ticks(96)
    src.bpm = to_bpm
    src.ticks(48)                               # two beats
    assert f.bpm == pytest.approx(to_bpm, abs=0.5)


def test_clocks_stamped_coarser_than_they_come_are_still_followed():
    """A 2048-frame JACK cycle (42.7 ms) stamps five clocks at 300 BPM with one time: bursts
    all through the beat are the stamping, not a stall, and a tempo change is followed (a
    review found the tempo kept for good after 300 -> 260)."""
    now = Now()
    f = MidiClockFollower(bpm=120, clock=now)
    cycle = 2048 / 48000
    ideal = 0.0
    feed_clock(f, START, 0.0)
    for bpm, clocks in ((300, 240), (260, 240)):
        for _ in range(clocks):
            ideal += tick_period(bpm)
            now.t = (int(ideal / cycle) + 1) * cycle
            feed_clock(f, CLOCK, now.t)
    assert f.bpm == pytest.approx(260, abs=10)          # 258 (201.8 when kept)


@pytest.mark.parametrize("silence_s", [0.3, 2.0])
def test_continue_after_a_clock_that_paused_while_stopped_is_on_its_step_at_once(silence_s):
    """A master that stops its clock while stopped: Stop, silence, Song Position + Continue.
    The clocks from before the pause used to stay in the fit: the first beat played up to
    4 steps ahead and read 20-57 BPM (a review's finding)."""
    now = Now()
    f = MidiClockFollower(bpm=120, clock=now)
    src = Source(f, now, 100)
    src.send(START)
    src.ticks(96)
    now.t += 0.002
    src.send(STOP)
    now.t = src.ideal + silence_s
    f.song_position(32)
    src.send(CONTINUE)
    src.ideal = now.t
    for k in range(24):
        src.ticks(1)
        assert f.position(src.ideal) == pytest.approx(32 + k / 6, abs=0.02), k
        if k >= 2:
            assert f.bpm == pytest.approx(100, abs=0.5), k


# --- a clock follower that needs a real clock (issue 13) -------------------------------------

def test_stray_clock_bytes_never_silence_the_box():
    """F8 F8 F8 FC on DIN (a glitch, a loose cable) with tempo.clock: auto."""
    now = Now(50.0)
    sw = ClockSwitch("auto", bpm=120, clock=now)
    for byte_time in (0.0, 0.02, 0.04):
        feed_clock(sw, CLOCK, now.t + byte_time)
    feed_clock(sw, STOP, now.t + 0.05)
    for _ in range(200):                              # the next 20 s
        now.t += 0.1
        assert sw.running and sw.source == "internal"
    assert sw.bpm == 120
    # and a Start with nothing after it does not either
    feed_clock(sw, START, now.t)
    feed_clock(sw, CLOCK, now.t + 0.001)
    for _ in range(20):
        now.t += 0.1
        assert sw.running and sw.source == "internal"


@pytest.mark.parametrize("bpm", [30.0, 350.0])
def test_a_steady_clock_at_an_implausible_tempo_is_not_followed(bpm):
    now = Now()
    sw = ClockSwitch("auto", bpm=120, clock=now)
    src = Source(sw, now, bpm)
    feed_clock(sw, START, now.t)
    src.ticks(24 * 4)
    assert sw.source == "internal" and sw.running and sw.bpm == 120


def test_random_clock_bytes_never_take_over():
    """Garbage on DIN: clock bytes at random moments (a Poisson stream) are no clock."""
    rng = random.Random(3)
    now = Now()
    sw = ClockSwitch("auto", bpm=120, clock=now)
    kinds = [CLOCK] * 8 + [START, STOP, CONTINUE]
    for _ in range(5000):
        now.t += rng.expovariate(60.0)                # 60 realtime bytes a second
        feed_clock(sw, rng.choice(kinds), now.t)
        assert sw.source == "internal"
    assert sw.running and sw.bpm == 120


def test_takes_over_after_one_steady_beat_and_hands_back_after_a_long_stop():
    now = Now()
    sw = ClockSwitch("auto", bpm=120, clock=now)
    src = Source(sw, now, 100, jitter=0.002)
    feed_clock(sw, START, now.t)
    src.ticks(20)
    assert sw.source == "internal"
    src.ticks(6)
    assert sw.source == "external" and sw.running
    feed_clock(sw, STOP, now.t)
    assert not sw.running
    src.ticks(24 * 20)                                # stopped, clock ticking: 12 s
    assert not sw.running and sw.source == "external"
    src.ticks(24 * 10)                                # 18 s: the box plays on its own
    assert sw.running and sw.source == "internal"
    assert sw.bpm == pytest.approx(100, abs=0.5)
    feed_clock(sw, START, now.t)                             # the master is back: at once
    first = src.ticks(1)[0]
    assert sw.source == "external" and sw.position(first) == pytest.approx(0.0, abs=0.02)


def test_stopped_and_silent_hands_back_too():
    now = Now()
    sw = ClockSwitch("auto", bpm=120, clock=now)
    src = Source(sw, now, 120)
    feed_clock(sw, START, now.t)
    src.ticks(30)
    feed_clock(sw, STOP, now.t)
    now.t += 10.0
    assert not sw.running
    now.t += 6.0
    assert sw.running and sw.source == "internal"


def test_thousands_of_start_stop_bytes_write_a_few_lines(caplog):
    import logging
    caplog.set_level(logging.DEBUG, logger="appliance.core.clock")
    now = Now()
    sw = ClockSwitch("auto", bpm=120, clock=now)
    src = Source(sw, now, 120)
    for i in range(2000):                             # at DIN speed: ~1 ms apart
        now.t += 0.001
        feed_clock(sw, START if i % 2 == 0 else STOP, now.t)
    src.ticks(30)
    lines = [r for r in caplog.records if r.name == "appliance.core.clock"]
    assert len(lines) <= 12
    assert sw.running


def test_a_sequencer_starting_from_bar_17_lands_on_its_step_at_once(generator):
    """Song Position 256 (bar 17) + Continue: the first clock is position 256, step 0 of the
    loop; the player schedules that step's notes at once and the looper keeps the groove."""
    from appliance.core.engine import Engine, EngineSettings, VirtualExecutor
    now = Now()
    sw = ClockSwitch("external", bpm=120, clock=now)
    engine = Engine(generator, sw, EngineSettings(forget_passes=1), executor=VirtualExecutor(0.0),
                    clock=now)
    src = Source(sw, now, 120)
    feed_clock(sw, START, now.t)
    for _ in range(24 * 8 * 3):                       # three passes of the loop
        src.ticks(1)
        if src.sent % 12 == 1:                       # a note on every other step ...
            engine.handle(mido.Message("note_on", note=60, velocity=100), now.t)
        engine.tick(now.t)
    hits = engine.groove.hits
    assert hits >= 12
    passes = engine._looper._pass
    feed_clock(sw, STOP, now.t)
    engine.tick(now.t)
    feed_clock(sw, mido.Message("songpos", pos=256 + 5), now.t)   # bar 17, sixth sixteenth
    feed_clock(sw, CONTINUE, now.t)
    first = src.ticks(1)[0]
    events = engine.tick(first)
    assert sw.position(first) == pytest.approx(261.0, abs=1e-6)
    assert engine.player.next_step is not None and engine.player.next_step <= 262
    on = [e for e in events if e.message.type == "note_on"]
    steps = {round(sw_pos) for sw_pos in (sw.position(e.time) for e in on)}
    assert not steps or min(steps) >= 261 - 1
    for _ in range(24 * 2):                           # two more beats, the notes go on
        src.ticks(1)
        engine.tick(now.t)
    assert engine.groove.hits == hits                 # a jump is not a pass: nothing forgotten
    assert engine._looper._pass <= passes + 1
    # and a Start: bar 1, backwards, at once
    feed_clock(sw, START, now.t)
    first = src.ticks(1)[0]
    engine.tick(first)
    assert sw.position(first) == pytest.approx(0.0, abs=1e-6)
    assert engine.player.next_step in (0, 1)
    assert engine.groove.hits == hits


def test_a_lost_clock_is_counted_from_the_timing():
    """A clock byte lost on the way in (a noisy cable, a JACK cycle missed under load) must
    not put the box a clock late for the rest of the song, nor bend its tempo: a gap of k
    periods, followed by a gap of one, is k clocks."""
    now = Now()
    f = MidiClockFollower(bpm=120, clock=now)
    src = Source(f, now, 100, jitter=0.0003)
    src.send(START)
    first = src.ticks(1)[0]
    base = f.position(first)
    src.ticks(47)
    period = tick_period(100)
    lost = 0
    for k in range(240):
        src.ideal += period
        if k % 40 in (10, 25, 26, 33, 34, 35):      # one, two and three in a row go missing
            lost += 1
            continue
        now.t = src.ideal
        feed_clock(f, CLOCK, now.t)
        assert f.position(src.ideal) - base == pytest.approx((48 + k) / 6, abs=0.02), k
        assert f.bpm == pytest.approx(100, abs=0.5)
    assert f.missed == lost


def test_a_late_clock_or_a_real_slowdown_is_not_taken_for_lost_clocks():
    now = Now()
    f = MidiClockFollower(bpm=120, clock=now)
    src = Source(f, now, 140)
    src.send(START)
    src.ticks(48)
    period = tick_period(140)
    src.ideal += period                  # one clock a whole period late, the next on time
    now.t = src.ideal + period
    feed_clock(f, CLOCK, now.t)
    src.ticks(24)
    assert f.missed == 0 and f.bpm == pytest.approx(140, abs=0.5)
    src.bpm = 70                          # the master halves its tempo at once
    times = src.ticks(48)
    assert f.missed == 0 and f.bpm == pytest.approx(70, abs=0.5)
    assert f.position(times[-1]) - f.position(times[-25]) == pytest.approx(4.0, abs=0.02)


def test_a_clock_lost_just_after_a_tempo_change_is_counted_too():
    """The fit takes a beat to settle after a change; a lost clock is judged against the
    last few gaps, so one lost a few clocks into the new tempo is not a clock late for good."""
    now = Now()
    f = MidiClockFollower(bpm=120, clock=now)
    src = Source(f, now, 100)
    src.send(START)
    first = src.ticks(1)[0]
    base = f.position(first)
    src.ticks(143)
    src.bpm = 140
    src.ticks(10)
    src.ideal += tick_period(140)        # the 11th clock at 140 goes missing
    times = src.ticks(60)
    assert f.missed == 1
    assert f.position(times[-1]) - base == pytest.approx((144 + 11 + 59) / 6, abs=0.02)
    assert f.bpm == pytest.approx(140, abs=0.5)


def a_beat_and_more(bpm: float, jitter: float = 0.0) -> tuple[Now, MidiClockFollower, Source, float]:
    """A follower after a Start and 48 clocks at ``bpm``; the position of the first clock."""
    now = Now()
    f = MidiClockFollower(bpm=120, clock=now)
    src = Source(f, now, bpm, jitter=jitter)
    src.send(START)
    base = f.position(src.ticks(1)[0])
    src.ticks(47)
    return now, f, src, base


@pytest.mark.parametrize("extra", [1, 5, 24])
def test_extra_clock_bytes_right_behind_one_are_ignored_and_counted(extra, caplog):
    """Two clock sources merged, a MIDI loop or an interface that stutters sends bytes the
    master never counted. Counted, five of them put the box 5/6 of a step ahead of the
    master for the rest of the song (a fault harness's probe, session 47)."""
    now, f, src, base = a_beat_and_more(120, jitter=0.0003)
    for k in range(extra):                    # right behind the 48th clock
        now.t = src.ideal + 0.0002 * (k + 1)
        feed_clock(f, CLOCK, now.t)
    times = src.ticks(96)
    for k, t in enumerate(times):
        assert f.position(t) - base == pytest.approx((48 + k) / 6, abs=0.02), k
    assert f.extra == extra and f.bpm == pytest.approx(120, abs=0.5)
    assert any("came right behind" in r.getMessage() for r in caplog.records)


def test_every_clock_doubled_by_a_loop_is_still_the_masters_grid():
    now, f, src, base = a_beat_and_more(100)
    period = tick_period(100)
    for k in range(96):
        src.ideal += period
        for echo in (0.0, 0.0011):           # each clock, and its echo a millisecond on
            now.t = src.ideal + echo
            feed_clock(f, CLOCK, now.t)
        assert f.position(src.ideal) - base == pytest.approx((48 + k) / 6, abs=0.02), k
    assert f.bpm == pytest.approx(100, abs=0.5) and f.extra >= 95


@pytest.mark.parametrize("from_bpm, to_bpm", [(60, 200), (60, 250), (60, 300), (60, 90), (60, 120),
                                               (140, 210), (150, 225), (120, 240)])
def test_a_jump_in_tempo_is_not_taken_for_extra_clocks(from_bpm, to_bpm):
    """After a jump to 1.5 or 2 times the tempo the third clock comes 0.8 periods ahead of the
    line that lags behind it (a code review lost one so in 4-6 of 40 runs: 64-frame cycles,
    each clock up to 2 ms late)."""
    cycle = 64 / 48000
    for seed in range(40):
        rng = random.Random(seed)
        now = Now()
        f = MidiClockFollower(bpm=120, clock=now)
        feed_clock(f, START, 0.0)
        ideal, last = 0.0, 0.0
        for k in range(96 + 72):
            ideal += tick_period(from_bpm if k < 96 else to_bpm)
            last = now.t = max(last, (int((ideal + rng.uniform(0, 0.002)) / cycle) + 1) * cycle)
            feed_clock(f, CLOCK, now.t)
        assert f.extra == 0, seed
        assert round(f.position(now.t) * 6) == 96 + 72 - 1, seed
        assert f.bpm == pytest.approx(to_bpm, rel=0.02), seed


@pytest.mark.parametrize("bpm, frames", [(120, 1024), (122, 1024), (240, 512), (60, 2048)])
def test_a_steady_clock_stamped_once_a_jack_cycle_keeps_every_clock(bpm, frames):
    """A JACK cycle gives every clock in it one time stamp. With the period just under a cycle,
    the line runs at the cycle's rate, and now and then a cycle holds two clocks: the second
    looks a period early. Taken for an extra byte, a code review's 2 minutes at 120 BPM on
    1024 frames lost 22 steps."""
    now = Now()
    f = MidiClockFollower(bpm=120, clock=now)
    cycle = frames / 48000
    rng = random.Random(3)
    feed_clock(f, START, 0.0)
    ideal, count = 0.0, 24 * bpm          # a minute of clocks
    for _ in range(count):
        ideal += tick_period(bpm)
        now.t = (int((ideal + rng.uniform(0, 0.001)) / cycle) + 1) * cycle
        feed_clock(f, CLOCK, now.t)
    assert f.extra == 0
    assert f.position(now.t) * 6 == pytest.approx(count - 1, abs=0.5 * cycle / tick_period(bpm) + 1)


def test_extra_bytes_in_their_clocks_own_short_jack_cycle_are_ignored():
    """On 64-frame cycles an extra byte right behind a clock gets the clock's time stamp (the
    fault harness's five, through a real JACK server): the stamps, finer than half a period,
    say two of the master's clocks cannot share one."""
    cycle = 64 / 48000
    rng = random.Random(5)
    now = Now()
    f = MidiClockFollower(bpm=120, clock=now)
    feed_clock(f, START, 0.0)
    ideal = 0.0
    for k in range(200):
        ideal += tick_period(120)
        now.t = (int((ideal + rng.uniform(0, 0.001)) / cycle) + 1) * cycle
        for _ in range(6 if k == 100 else 1):      # five extra in the 101st clock's cycle
            feed_clock(f, CLOCK, now.t)
    assert f.extra == 5
    assert round(f.position(now.t) * 6) == 199


def test_one_masters_clock_on_usb_and_din_is_followed_once(caplog):
    """A sequencer wired to the box by USB and by DIN sends every clock twice, a few
    milliseconds apart: the input that sent one first is followed until it goes quiet."""
    from appliance.box.config import Config
    from appliance.box.midi_routing import MidiRouting
    now = Now(100.0)
    switch = ClockSwitch("external", clock=now)
    routing = MidiRouting(Config(), transport=switch, engine=None)   # type: ignore[arg-type]
    routing.on_input(START, now.t)
    routing.on_input(START, now.t + 0.002, source="din")
    first = None
    for k in range(96):
        now.t = 100.0 + (k + 1) * tick_period(120)
        routing.on_input(CLOCK, now.t)
        routing.on_input(CLOCK, now.t + 0.002, source="din")
        first = switch.follower.position(now.t) if first is None else first
    assert switch.follower.position(now.t) - first == pytest.approx(95 / 6, abs=0.02)
    assert switch.follower.bpm == pytest.approx(120, abs=0.5)
    assert any("USB and DIN" in r.getMessage() for r in caplog.records)
    assert routing.clocks_ignored == 96 + 1                # the DIN clocks and its Start (status: clock_counts)
    later = now.t + 1.0                           # USB goes quiet: DIN's clock takes over
    for k in range(48):
        now.t = later + k * tick_period(120)
        routing.on_input(CLOCK, now.t, source="din")
    assert routing._clock_input == "din" and switch.follower.bpm == pytest.approx(120, abs=0.5)


def test_two_usb_masters_are_told_apart_where_the_ports_say_which(caplog):
    """A sequencer at 120 BPM and a keyboard sending its own clock at 140, on two USB ports
    (ALSA: a port per device): the one heard first is followed, the other ignored, and the
    warning names both devices."""
    from appliance.box.config import Config
    from appliance.box.midi_routing import MidiRouting
    now = Now(100.0)
    switch = ClockSwitch("external", clock=now)
    routing = MidiRouting(Config(), transport=switch, engine=None)   # type: ignore[arg-type]
    routing._on_usb(START, now.t, "seq:out 128:0")
    events = [(100.0 + (k + 1) * tick_period(120), "seq:out 128:0") for k in range(96)]
    events += [(100.004 + (k + 1) * tick_period(140), "Keys:Keys MIDI 1 24:0") for k in range(112)]
    for t, port in sorted(events):
        now.t = t
        routing._on_usb(CLOCK, t, port)
    assert switch.follower.bpm == pytest.approx(120, abs=0.5)
    assert switch.follower.position(now.t) == pytest.approx(95 / 6, abs=0.05)   # Start: the first clock is 0
    assert routing.clocks_ignored == 112
    said = [r.getMessage() for r in caplog.records if "MIDI clock comes in on" in r.getMessage()]
    assert said and "seq:out" in said[0] and "Keys:Keys MIDI 1" in said[0] and "24:0" not in said[0]


def box_with_echo(seconds: float, latency: float | None = 0.003, sending: bool = True,
                  master: list[tuple[float, mido.Message]] | None = None,
                  actions: tuple[tuple[float, Callable[[ClockSwitch], None]], ...] = (),
                  bpm: float = 120, cycle: float | None = None,
                  told: bool = False) -> tuple[ClockSwitch, list[str]]:
    """A box in auto that sends its clock (``bpm``) as the player does, only while it is the
    master, into a drum machine echoing every message back ``latency`` later (None: no echo),
    for ``seconds`` (1 ms steps), with a ``master``'s messages too (seconds from the start) and
    ``actions`` on the switch at their times; with ``cycle``, what comes in is stamped as JACK
    stamps it, at the end of its cycle (``told``: the box is told the cycle, as by JACK).
    Returns the switch and its source every 10 ms."""
    import heapq
    now = Now(100.0)
    switch = ClockSwitch("auto", bpm=bpm, clock=now)
    switch.sending = sending
    if told and cycle is not None:
        switch.stamp_grain = cycle
    sender = ClockSender(switch, on_start=switch.own_start)
    heard: list[tuple[float, int, str]] = [(100.0 + t, -k, m.type) for k, (t, m) in enumerate(master or [])]
    heapq.heapify(heard)
    todo, sources, k = sorted(actions, key=lambda a: a[0]), [], 0
    rng, read_at = random.Random(1), {}
    for ms in range(int(seconds * 1000)):
        now.t = 100.0 + ms / 1000
        while todo and todo[0][0] <= ms / 1000:
            todo.pop(0)[1](switch)
        if switch.source == "internal":                            # as PlayerThread sends it
            for at, message in sender.due(now.t, now.t + 0.005):
                if latency is not None:
                    if cycle is not None:            # it leaves at the next cycle's start
                        at = (int((at - 100.0) / cycle) + 1) * cycle + 100.0
                    k += 1
                    heapq.heappush(heard, (at + latency, k, message.type))
        while heard and heard[0][0] <= now.t:
            at, _k, kind = heapq.heappop(heard)
            stamp = at
            if cycle is not None:       # read in the next cycle, its time up to 1.2 ms late
                c = int((at - 100.0) / cycle) + 1
                stamp = read_at.setdefault(c, c * cycle + 100.0 + rng.uniform(0, 0.0012))
                read_at[c] = stamp + rng.uniform(0, 2e-5)    # each message some µs apart
            feed_clock(switch, mido.Message(kind), stamp)
        if ms % 10 == 0:
            sources.append(switch.source)
    return switch, sources


def switches(sources: list[str]) -> int:
    return sum(a != b for a, b in zip(sources, sources[1:]))


def test_a_box_sending_its_clock_does_not_follow_its_own_echo(caplog):
    """tempo.clock auto + send_clock, and a drum machine with MIDI thru on. Followed, the echo
    stops (the box sends only as the master), and the box flips between the two every beat or
    so, its drum machine losing the clock each time. The box keeps its own clock, says why
    once, and a turn of its tempo knob is not taken for a master while its echo catches up."""
    switch, sources = box_with_echo(30.0, actions=((15.0, lambda sw: sw.set_bpm(132, sw.clock())),))
    assert switches(sources) == 0 and switch.bpm == pytest.approx(132)
    said = [r.getMessage() for r in caplog.records if "while it sends its own" in r.getMessage()]
    assert len(said) == 1 and "MIDI thru" in said[0]
    _, without = box_with_echo(30.0, sending=False)
    assert switches(without) > 20                     # the rule's absence: flipping, 2 a beat or so


def test_an_echo_stamped_by_large_jack_cycles_is_not_followed_either():
    """rtmidi stamps everything in a JACK cycle with one time: with the period just under a
    cycle the fitted tempo is the cycle's (120 BPM read as 117.2 on 1024 frames at 48 kHz), off
    the box's own by more than ECHO_TEMPO. The tempo counted over 3 s is not."""
    for bpm, cycle in ((120, 1024 / 48000), (60, 1024 / 48000), (100, 1024 / 44100), (120, 512 / 48000)):
        switch, sources = box_with_echo(40.0, bpm=bpm, cycle=cycle)
        assert switches(sources) == 0 and switch.bpm == pytest.approx(bpm), (bpm, cycle)


@pytest.mark.parametrize("bpm", [90, 135, 155, 195])
def test_an_echo_through_2048_frame_cycles_told_is_not_followed(bpm):
    """Told the cycle, the follower finds an echo through 2048-frame cycles at 44.1 kHz (46 ms)
    steady, where it did not before; its tempo counted over 3 s is then a cycle, 1.5 %, off
    the box's own, and the echo guard allows that too (a review: followed at 155 and 195 BPM,
    the drum machine stopped and started again)."""
    switch, sources = box_with_echo(20.0, bpm=bpm, cycle=2048 / 44100, told=True)
    assert switches(sources) == 0 and switch.bpm == pytest.approx(bpm), bpm


def test_a_free_clock_2_percent_off_through_long_cycles_told_is_followed():
    """Told long cycles, the echo guard allows a cycle over the count more than ECHO_TEMPO; the
    count runs up to 8 s there, so a sequencer's free clock 1.9 % off the box's tempo (no
    Start) through 1024-frame cycles is still followed, after about 8 s (a review: never, with
    the allowance a cycle over 3 s). Closer than that it cannot be told from the box's own
    echo: press play on the sequencer."""
    free = [(1.0 + (k + 1) * tick_period(101.9), CLOCK) for k in range(24 * 26)]
    switch, sources = box_with_echo(15.0, latency=None, bpm=100, master=free,
                                    cycle=1024 / 48000, told=True)
    assert switch.source == "external" and switch.bpm == pytest.approx(101.9, rel=0.01)


def test_a_master_still_takes_a_box_that_sends_its_clock():
    """Without an echo: a sequencer's Start and clock at the box's own tempo, or any clock at
    another tempo, take the beat over; a free clock at the box's own tempo does not (it cannot
    be told from an echo), unless the box does not send."""
    at_120 = [(5.0, START)] + [(5.0 + (k + 1) * tick_period(120), CLOCK) for k in range(240)]
    switch, _ = box_with_echo(9.0, latency=None, master=at_120)
    assert switch.source == "external" and switch.bpm == pytest.approx(120, abs=0.3)
    free_100 = [(5.0 + (k + 1) * tick_period(100), CLOCK) for k in range(240)]
    switch, _ = box_with_echo(11.0, latency=None, master=free_100)
    assert switch.source == "external" and switch.bpm == pytest.approx(100, abs=0.3)
    free_120 = at_120[1:]
    assert box_with_echo(9.0, latency=None, master=free_120)[0].source == "internal"
    assert box_with_echo(9.0, latency=None, sending=False, master=free_120)[0].source == "external"


def test_a_start_from_the_echoing_drum_machine_is_followed_once_at_most():
    """The drum machine echoes the box's clock and sends a Start of its own (its play button):
    taken for a master, its clock stops as soon as the box stops sending, so the box is the
    master again and that Start counts no more. A Start with no clock 10 s before lets nothing in."""
    switch, sources = box_with_echo(12.0, master=[(5.0625, START)])
    assert switches(sources) <= 2 and switch.source == "internal" and sources[-300:] == ["internal"] * 300
    switch, sources = box_with_echo(20.0, master=[(1.0, START)])
    assert switches(sources[600:]) == 0 and switch.source == "internal"


def test_a_sequencer_pressing_play_takes_the_clock_from_another_input(caplog):
    """On ALSA (a port per device) the echo's input is heard first; a sequencer on another
    input pressing play (Start, then its clock at 100 BPM) takes the clock over at once, and so
    does the next song's Start after a keyboard's free clock had taken the input."""
    import logging
    from appliance.box.config import Config
    from appliance.box.midi_routing import MidiRouting
    caplog.set_level(logging.INFO)
    now = Now(100.0)
    switch = ClockSwitch("auto", clock=now)
    routing = MidiRouting(Config(), transport=switch, engine=None)   # type: ignore[arg-type]
    events = [(100.0 + (k + 1) * tick_period(120), "TR-8:TR-8 MIDI 1 24:0", CLOCK) for k in range(480)]
    events += [(102.0, "seq:out 128:0", START)]
    events += [(102.0 + (k + 1) * tick_period(100), "seq:out 128:0", CLOCK) for k in range(300)]
    for t, port, message in sorted(events, key=lambda e: e[0]):
        now.t = t
        routing._on_usb(message, t, port)
    assert switch.source == "external" and switch.bpm == pytest.approx(100, abs=0.5)
    assert routing._clock_input == "usb seq:out"
    assert any("pressed play" in r.getMessage() for r in caplog.records)



def test_a_sequencer_continuing_from_a_song_position_on_another_input_is_followed_from_there():
    """Its Song Position comes while another input holds the clock (ignored then); the
    Continue that takes the clock over goes on from that position, not the box's own."""
    from appliance.box.config import Config
    from appliance.box.midi_routing import MidiRouting
    now = Now(100.0)
    switch = ClockSwitch("auto", clock=now)
    routing = MidiRouting(Config(), transport=switch, engine=None)   # type: ignore[arg-type]
    events = [(100.0 + (k + 1) * tick_period(120), "TR-8:TR-8 MIDI 1 24:0", CLOCK) for k in range(240)]
    events += [(102.0, "seq:out 128:0", mido.Message("songpos", pos=20)), (102.0001, "seq:out 128:0", CONTINUE)]
    events += [(102.0 + (k + 1) * tick_period(100), "seq:out 128:0", CLOCK) for k in range(240)]
    for t, port, message in sorted(events, key=lambda e: e[0]):
        now.t = t
        routing._on_usb(message, t, port)
    # Continue: the first clock after it is step 20; 240 clocks later, 40 steps on
    assert switch.source == "external" and routing._clock_input == "usb seq:out"
    assert switch.position(now.t) == pytest.approx(20 + 239 / 6, abs=0.05)


def test_a_jump_of_the_boxs_own_tempo_under_its_echo_is_not_taken_for_a_master():
    """Tap tempo, a count-in or a loaded state jump the tempo: the echo follows, and its tempo
    is counted afresh (counted on, the old tempo's clocks read as another tempo 3.5 s later)."""
    for before, after in ((120, 100), (120, 150), (90, 120), (140, 100)):
        switch, sources = box_with_echo(30.0, bpm=before, actions=((12.0, lambda sw, b=after: sw.set_bpm(b, sw.clock())),))
        assert switches(sources) == 0 and switch.bpm == pytest.approx(after), (before, after)


def test_a_song_position_kept_from_the_second_cable_is_not_replayed_later():
    """One master on USB and DIN: it locates (Song Position 16) and continues, stops, and
    continues again with no Song Position; this time the DIN copy comes first. The box goes on
    from where the master stopped, not from the old Song Position the DIN copy carried."""
    import heapq
    from appliance.box.config import Config
    from appliance.box.midi_routing import MidiRouting
    period = tick_period(100)
    now = Now(100.0)
    switch = ClockSwitch("auto", clock=now)
    routing = MidiRouting(Config(), transport=switch, engine=None)   # type: ignore[arg-type]
    heard: list = []

    def both(t: float, message: mido.Message, din_first: bool = False) -> None:
        heard.append((t, 0 if din_first else 1, message, "usb"))
        heard.append((t + (-0.0005 if din_first else 0.0005), 2, message.copy(), "din"))
    both(101.0, START)
    for c in range(24 * 20):
        t = 101.002 + c * period
        heard += [(t, 3, CLOCK, "usb"), (t + 0.001, 4, CLOCK, "din")]
    both(102.51, STOP)
    both(103.01, mido.Message("songpos", pos=16))
    both(103.011, CONTINUE)
    both(106.01, STOP)
    both(107.01, CONTINUE, din_first=True)
    heapq.heapify(heard)
    stopped = None
    for ms in range(1, 9000):
        now.t = 100.0 + ms / 1000
        while heard and heard[0][0] <= now.t:
            at, _k, message, port = heapq.heappop(heard)
            routing._on_din(message, at) if port == "din" else routing._on_usb(message, at, "seq:out 128:0")
        if ms == 6500:
            stopped = switch.position(now.t)
    assert stopped is not None
    assert switch.position(now.t) == pytest.approx(stopped + (now.t - 107.01) / (6 * period), abs=0.3)


def test_the_slaves_hear_stop_when_another_clock_leads_and_continue_when_the_box_is_back():
    """The box sends its clock only as the master: when a master takes over, its slaves get
    one Stop (not a clock that just stops), and when the box leads again, Song Position and
    Continue where it is; the box's switch is told of each, so their echoes are not a master."""
    now = Now(100.0)
    switch = ClockSwitch("auto", bpm=120, clock=now)
    told: list[tuple[float, str]] = []
    sender = ClockSender(switch, on_start=lambda t, kind: told.append((round(t - 100, 3), kind)))
    kinds = [m.type for _, m in sender.due(now.t, now.t + 0.01)]
    assert kinds[0] == "start" and told == [(0.0, "start")]
    now.t = 101.0
    assert [m.type for _, m in sender.hand_over(now.t)] == ["stop"] and sender.hand_over(now.t) == []
    now.t = 102.03
    back = [m for _, m in sender.due(now.t, now.t + 0.05)]
    assert [m.type for m in back[:2]] == ["songpos", "continue"] and back[0].pos == 17
    assert [k for _, k in told] == ["start", "stop", "start"]


def long_cycle_stamps(bpm: float, frames: int, beats: int, seed: int = 7,
                      rate: int = 48000) -> list[float]:
    """Clock times as rtmidi stamps them on ``frames``-frame JACK cycles: each read in the cycle
    after it was sent, with the cycle's time (the cycle up to 1.2 ms late), some µs apart."""
    cycle = frames / rate
    rng = random.Random(seed)
    ideal, read_at, times = 0.0, {}, []
    for _ in range(24 * beats):
        ideal += tick_period(bpm)
        k = int(ideal / cycle) + 1
        read_at.setdefault(k, k * cycle + rng.uniform(0, 0.0012))
        read_at[k] += rng.uniform(0, 2e-5)
        times.append(read_at[k])
    return times


@pytest.mark.parametrize("bpm, frames", [(122, 1024), (150, 1024), (105, 1024), (240, 512), (60, 2048),
                                         (55, 2048), (130, 2048)])
def test_a_clock_on_long_jack_cycles_with_their_jitter_is_steady_and_whole(bpm, frames):
    """Real JACK stamps, as rtmidi gives them: every clock read in a cycle gets the cycle's
    time, some µs apart (rtmidi reads JACK's time per message), and the cycles themselves
    come up to a millisecond off their line. Told the cycle (``stamp_grain``, as the box is by
    JACK), the follower finds the clock steady (for ``auto`` to follow) even where a cycle
    holds two clocks, ignores none of them, takes no empty cycle for a lost clock (105 BPM on
    1024 frames: 41 counted in 16 beats before), and counts its tempo within 1 %."""
    now = Now()
    f = MidiClockFollower(bpm=100, clock=now)
    cycle = frames / 48000
    f.stamp_grain = cycle
    feed_clock(f, START, 0.0)
    count, steady = 24 * 16, []
    for t in long_cycle_stamps(bpm, frames, 16):
        now.t = t
        feed_clock(f, CLOCK, now.t)
        steady.append(f.steady)
    assert f.extra == 0 and f.missed == 0
    assert f.position(now.t) * 6 == pytest.approx(count - 1, abs=0.5 * cycle / tick_period(bpm) + 1)
    assert sum(steady[24 * 2:]) >= 0.8 * len(steady[24 * 2:])
    assert f.bpm == pytest.approx(bpm, rel=0.01)


def test_a_long_cycle_clock_that_goes_leaves_the_box_at_its_counted_tempo():
    """``auto`` follows 122 BPM through 1024-frame cycles, whose beat of clocks runs at the
    cycle's rate (117 BPM); when the clock goes, the box plays on at the tempo counted over the
    last seconds, not the beat's (a review: carried on anywhere from 117.1 to 124.7)."""
    now = Now()
    sw = ClockSwitch("auto", bpm=100, clock=now)
    sw.stamp_grain = 1024 / 48000
    feed_clock(sw, START, 0.0)
    for t in long_cycle_stamps(122, 1024, 12, seed=3):
        now.t = t
        feed_clock(sw, CLOCK, t)
    assert sw.source == "external" and sw.bpm == pytest.approx(122, rel=0.01)
    now.t += 1.0                                         # the master is gone
    assert sw.source == "internal" and sw.running
    assert sw.bpm == pytest.approx(122, rel=0.01)


def test_a_clock_byte_sent_twice_30_us_apart_on_fine_stamps_is_extra():
    """On ALSA (stamps finer than a millisecond, nothing told) a byte an interface sends
    twice, 30 µs apart, is two stamps and the second is ignored: taken for one stamp of a JACK
    cycle, 18 such put the box 18 clocks ahead (a review)."""
    now = Now()
    f = MidiClockFollower(bpm=120, clock=now)
    src = Source(f, now, 120)
    src.send(START)
    src.ticks(24 * 2)
    for _ in range(18):
        src.ticks(5)
        feed_clock(f, CLOCK, now.t + 3e-5)               # the same byte again
    src.ticks(6)
    assert f.extra == 18
    assert round(f.position(now.t) * 6) == src.sent - 1


@pytest.mark.parametrize("frames, rate, bpm", [(256, 48000, 120), (512, 44100, 80)])
def test_a_jump_through_cycles_under_half_a_period_is_shown_at_once(frames, rate, bpm):
    """Where a cycle is under half a period the line's own tempo is shown: it follows a jump of
    5 % within two beats, and the box carries on at the new tempo when the clock goes. (A tempo
    counted over seconds there, tried, showed it only 4-5 s later and handed back 6 % low, a
    review; its gain, 0-3 % on a steady clock, is not worth that.)"""
    now = Now()
    sw = ClockSwitch("auto", bpm=100, clock=now)
    sw.stamp_grain = frames / rate
    feed_clock(sw, START, 0.0)
    before = long_cycle_stamps(bpm, frames, 12, seed=5, rate=rate)
    for t in before:
        now.t = t
        feed_clock(sw, CLOCK, t)
    after = long_cycle_stamps(bpm * 1.05, frames, 14, seed=6, rate=rate)
    shift = before[-1] - after[24 * 12 - 1] + 60 / (bpm * 1.05) / 24     # on from the last clock
    for t in after[24 * 12:]:
        now.t = t + shift
        feed_clock(sw, CLOCK, now.t)
    assert sw.bpm == pytest.approx(bpm * 1.05, rel=0.015)
    now.t += 1.0
    assert sw.source == "internal" and sw.bpm == pytest.approx(bpm * 1.05, rel=0.015)


@pytest.mark.parametrize("looked_after", [0.0, 0.004, 0.012, 0.04])
def test_clock_sender_starts_a_song_begun_a_moment_ago_with_start_on_beat_one(looked_after):
    """The first note starts the box's clock; the player's thread sends the clock a few ms later:
    a Start, and clock 0 at once, not Song Position 1 + Continue (a reviewer's slave missed beat
    one); a start looked at more than LATE_START_S late joins at the next sixteenth."""
    now = Now(0.0)
    sw = ClockSwitch("internal", bpm=120, clock=now)
    sw.stop(0.0)
    sender = ClockSender(sw)
    sw.start(2.0, position=0.0)
    out = sender.due(2.0 + looked_after, 2.2)
    assert [m.type for _, m in out[:2]] == ["start", "clock"], out[:3]
    # the clocks gone by go out at once, after the Start (a code review: stamped at their own
    # times, the player thread's heap sent them before it, and a slave took a later one for beat one)
    stamps = [t for t, _ in out]
    assert stamps == sorted(stamps) and out[0][0] == pytest.approx(2.0 + looked_after)
    assert out[1][0] == pytest.approx(out[0][0]), "clock 0 right behind the Start"
    assert out[2][0] > out[1][0] or looked_after >= 0.02, "then on the grid"
    late = ClockSender(sw)
    sw.start(3.0, position=0.0)
    out = late.due(3.08, 3.3)
    assert [m.type for _, m in out[:2]] == ["songpos", "continue"] and out[0][1].pos == 1

"""The end of a song on a virtual clock: the end button's last hit, the end after a long rest,
and the next song started as the first one was."""
from __future__ import annotations

import logging

import mido
import numpy as np
import pytest

from appliance.core.engine import Engine, EngineSettings, VirtualExecutor
from appliance.core.groove import GM_NOTES, STEPS_PER_BAR
from appliance.core.start import Starter, StartSettings
from appliance.core.transport import InternalClock
from tests.test_player import heard

BPM = 120.0
BAR_S = 2.0            # at 120 BPM
KICK, CRASH = GM_NOTES[0], GM_NOTES[7]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def engine_with(generator, clock: Clock, mode: str = "first-note", **settings) -> Engine:
    transport = InternalClock(bpm=BPM, start=0.0)
    starter = Starter(StartSettings(mode=mode), transport, now=0.0)
    return Engine(generator, transport, settings=EngineSettings(**settings), executor=VirtualExecutor(0.0),
                  clock=clock, starter=starter)


def comping(start: float, bars: int) -> list[tuple[float, mido.Message]]:
    """A chord on every beat, let go half a beat later."""
    notes = []
    for beat in range(bars * 4):
        t = start + beat * BAR_S / 4
        for n in (48, 60, 64, 67):
            notes.append((t, mido.Message("note_on", note=n, velocity=90)))
            notes.append((t + BAR_S / 8, mido.Message("note_off", note=n, velocity=0)))
    return sorted(notes, key=lambda item: item[0])


def held(notes: tuple[int, ...], at: float, for_s: float, velocity: int = 90) -> list[tuple[float, mido.Message]]:
    """A chord struck at ``at`` and let go ``for_s`` later."""
    return ([(at, mido.Message("note_on", note=n, velocity=velocity)) for n in notes]
            + [(at + for_s, mido.Message("note_off", note=n, velocity=0)) for n in notes])


def run(engine: Engine, clock: Clock, end: float, notes=(), at=None, dt: float = 0.005) -> list:
    """Ticks up to ``end``; ``at``: (time, callable) actions, e.g. the end button."""
    pending = sorted(notes, key=lambda item: item[0])
    actions = sorted(at or [], key=lambda item: item[0])
    events = []
    while clock.now < end:
        while pending and pending[0][0] <= clock.now:
            t, message = pending.pop(0)
            engine.handle(message, t)
        while actions and actions[0][0] <= clock.now:
            actions.pop(0)[1]()
        events = heard(events, engine.tick(clock.now), engine.withdrawn(), clock.now)   # as the player thread
        clock.now += dt
    return events


def test_the_end_button_ends_on_the_next_bar_line_and_the_next_note_starts_a_new_song(generator) -> None:
    clock = Clock()
    engine = engine_with(generator, clock)
    first = 0.5
    pressed = first + 2 * BAR_S + 1.3          # in bar 3, on beat 3's "e"
    events = run(engine, clock, first + 8 * BAR_S, notes=comping(first, 3), at=[(pressed, engine.end)])
    last_line = first + 3 * BAR_S              # bar 4's downbeat: the next bar line after the press
    before = [e for e in events if e.time < last_line - 0.1]
    assert before, "the song played"
    hit = [e for e in events if abs(e.time - last_line) < 0.05]
    assert sorted(e.message.note for e in hit) == sorted([KICK, CRASH]), "the last hit: crash and kick"
    assert len({e.message.velocity for e in hit}) == 1 and hit[0].message.velocity >= 64
    assert not [e for e in events if e.time > last_line + 0.05], "nothing after the last hit"
    assert engine.groove.is_empty, "the overdub is cleared for the next song"
    assert "first note" in engine.stats()["waiting_for"]
    assert not engine.transport.running

    again = clock.now + 0.7                    # the next song, at a moment of the player's choosing
    events = run(engine, clock, again + 2 * BAR_S, notes=comping(again, 1))
    assert events and min(e.time for e in events) - again < 0.06, "the next song's first note is its downbeat"
    assert engine.transport.position(again) == pytest.approx(0.0)
    assert CRASH in {e.message.note for e in events if e.time - again < 0.06}, "it comes in with a crash"
    assert engine.stats()["waiting_for"] == ""


def test_a_second_press_or_a_press_with_nothing_playing_does_nothing(generator) -> None:
    clock = Clock()
    engine = engine_with(generator, clock)
    assert engine.end() is False, "nothing plays yet"
    run(engine, clock, 3.0, notes=comping(0.5, 1))
    assert engine.end() is True
    assert engine.end() is False, "an ending is on its way"


def test_a_long_rest_ends_the_song_without_a_crash(generator) -> None:
    clock = Clock()
    engine = engine_with(generator, clock, end_after_bars=2)
    first = 0.5
    events = run(engine, clock, first + 14 * BAR_S, notes=comping(first, 4))
    stopped = first + 4 * BAR_S
    after = [e for e in events if e.time > stopped]
    assert after, "the drums play on into the rest"
    last = max(e.time for e in events)
    assert last < stopped + 5 * BAR_S, "they stop within a few bars of the rest"
    assert engine.groove.is_empty and "first note" in engine.stats()["waiting_for"]
    # the bar line they stopped on had no ending hit: the band had stopped already
    assert CRASH not in {e.message.note for e in after if e.time > last - 0.05}


def test_the_drums_play_on_through_a_rest_when_told_to_or_frozen(generator) -> None:
    for settings, freeze in (({"end_after_bars": 0}, False), ({"end_after_bars": 2}, True)):
        clock = Clock()
        engine = engine_with(generator, clock, **settings)
        first = 0.5
        at = [(first + 4 * BAR_S - 0.2, lambda: engine.freeze(True))] if freeze else []
        events = run(engine, clock, first + 14 * BAR_S, notes=comping(first, 4), at=at)
        assert max(e.time for e in events) > first + 13 * BAR_S, (settings, freeze)
        assert engine.stats()["waiting_for"] == ""


def test_end_after_bars_is_checked() -> None:
    with pytest.raises(ValueError, match="end_after_bars"):
        EngineSettings(end_after_bars=-1)
    assert STEPS_PER_BAR == 16


def test_a_band_going_straight_into_the_next_song_starts_it_on_its_first_chord(generator) -> None:
    """A chord half a bar after the last hit is the next song's beat one, not a bar late."""
    clock = Clock()
    engine = engine_with(generator, clock)
    first = 0.5
    pressed = first + 2 * BAR_S + 1.3
    last_line = first + 3 * BAR_S
    next_song = last_line + BAR_S / 2
    events = run(engine, clock, next_song + 2 * BAR_S, notes=comping(first, 3) + comping(next_song, 2),
                 at=[(pressed, engine.end)])
    assert engine.stats()["waiting_for"] == "" and engine.transport.running
    assert engine.transport.position(next_song) == pytest.approx(0.0, abs=0.01), "the chord is beat one"
    ons = [e for e in events if e.time > last_line + 0.1]
    assert ons and min(e.time for e in ons) - next_song < 0.06
    assert CRASH in {e.message.note for e in ons if e.time - next_song < 0.06}, "it comes in with a crash"


def test_the_log_says_the_song_is_over_before_the_next_one_starts(generator, caplog) -> None:
    """Session 42's rehearsal read "first note heard" in the log before the last song's "the song
    is over": the note that starts the next song writes the ending's line first."""
    clock = Clock()
    engine = engine_with(generator, clock)
    first = 0.5
    next_song = first + 3 * BAR_S + BAR_S / 2
    with caplog.at_level(logging.INFO):
        run(engine, clock, next_song + BAR_S, notes=comping(first, 3) + comping(next_song, 1),
            at=[(first + 2 * BAR_S + 1.3, engine.end)])
    lines = [r.getMessage() for r in caplog.records]
    over = [i for i, line in enumerate(lines) if "song is over" in line]
    heard = [i for i, line in enumerate(lines) if "first note heard" in line]
    assert over and len(heard) >= 2 and over[0] < heard[-1], lines


def test_a_player_back_before_the_rests_bar_line_keeps_the_song(generator) -> None:
    """An ending a long rest set up is called off by a note before its bar line."""
    clock = Clock()
    engine = engine_with(generator, clock, end_after_bars=2)
    first = 0.5
    song = {}

    def remember() -> None:
        song["ending"] = engine.player.ending
    # the rest's ending is set in bar 6 for bar 7's line; the player is back on bar 6's last beat
    back = first + 5 * BAR_S + 0.8 * BAR_S
    events = run(engine, clock, first + 10 * BAR_S, notes=comping(first, 4) + comping(back, 3),
                 at=[(back - 0.05, remember)])
    assert song["ending"] == 6 * STEPS_PER_BAR, "an ending was on its way, for bar 7's line"
    assert engine.player.ending is None and not engine.ended and engine.stats()["waiting_for"] == ""
    assert engine.transport.position(back) > 5 * STEPS_PER_BAR, "the same song: its clock went on"
    assert max(e.time for e in events) > first + 9.5 * BAR_S, "the song goes on"


def test_a_player_back_on_the_rests_bar_line_keeps_the_song(generator) -> None:
    """Back a moment after the bar line a rest's ending waits for: the same song, with its crash."""
    clock = Clock()
    engine = engine_with(generator, clock, end_after_bars=2)
    first = 0.5
    back = first + 6 * BAR_S + 0.02          # bar 7's line, 20 ms late
    events = run(engine, clock, back + 2 * BAR_S, notes=comping(first, 4) + comping(back, 2))
    assert not engine.ended and engine.transport.position(back) > 5 * STEPS_PER_BAR, "the same song"
    assert CRASH in {e.message.note for e in events if abs(e.time - back) < 0.08}, "the return's crash"


def test_between_songs_on_a_master_clock_the_drums_wait_and_status_says_so(generator) -> None:
    """An external MIDI clock runs on after the end: silence, a status that says why, and the
    next note brings the drums back."""
    from appliance.core.clock import ClockSwitch
    clock = Clock()
    switch = ClockSwitch("external", BPM, clock=clock)
    starter = Starter(StartSettings(mode="now"), switch, now=0.0)
    engine = Engine(generator, switch, settings=EngineSettings(), executor=VirtualExecutor(0.0),
                    clock=clock, starter=starter)
    switch.heard("start", 0.0)
    ticks = [(i * BAR_S / 96, None) for i in range(96 * 12)]     # 24 clocks a beat, 12 bars

    def drive(until: float, notes=(), at=()) -> list:
        nonlocal ticks
        events = []
        pending, actions = sorted(notes, key=lambda n: n[0]), sorted(at, key=lambda a: a[0])
        while clock.now < until:
            while ticks and ticks[0][0] <= clock.now:
                switch.heard("clock", ticks.pop(0)[0])
            while pending and pending[0][0] <= clock.now:
                engine.handle(*reversed(pending.pop(0)))
            while actions and actions[0][0] <= clock.now:
                actions.pop(0)[1]()
            events.extend(e for e in engine.tick(clock.now) if e.message.type == "note_on")
            clock.now += 0.005
        return events

    played = drive(3 * BAR_S, notes=[(t, m) for t, m in comping(0.0, 3)], at=[(2.3 * BAR_S, engine.end)])
    assert played and switch.running
    between = drive(6 * BAR_S)
    assert engine.ended and switch.running
    assert not [e for e in between if e.time > 3 * BAR_S + 0.05], "silent between songs"
    assert "next note" in engine.stats()["waiting_for"]
    again = drive(8 * BAR_S, notes=[(t, m) for t, m in comping(6 * BAR_S + 0.01, 2)])
    assert again and not engine.ended and engine.stats()["waiting_for"] == ""


@pytest.mark.parametrize("latency, beats", [(0.02, 1), (1.0, 2)])
def test_the_next_songs_first_beats_play_an_opening_not_the_last_songs_pattern(generator, latency, beats) -> None:
    """Straight into the next song with a generator that takes a moment (as on the box), or a
    long one (a result asked for in the last song lands in the next): until a pattern asked in
    the new song arrives, it plays what the first song opened with, not the old groove."""
    clock = Clock()
    transport = InternalClock(bpm=BPM, start=0.0)
    engine = Engine(generator, transport, settings=EngineSettings(), executor=VirtualExecutor(latency),
                    clock=clock, starter=Starter(StartSettings(mode="first-note"), transport, now=0.0))
    first = 1.5                                # the opening is ready before the first note
    last_line = first + 3 * BAR_S
    next_song = last_line + BAR_S / 2
    last_chord = held((43, 55, 59, 62), last_line + 0.05, BAR_S / 4)   # let go before the next song
    events = run(engine, clock, next_song + BAR_S, notes=comping(first, 3) + last_chord + comping(next_song, 1),
                 at=[(first + 2 * BAR_S + 1.3, engine.end)])

    def first_beats(start: float) -> set[tuple[int, int]]:
        step_s = BAR_S / 16
        return {(round((e.time - start) / step_s), e.message.note) for e in events
                if -0.5 * step_s <= e.time - start < (4 * beats - 0.5) * step_s}
    opened, again = first_beats(first), first_beats(next_song)
    assert (0, CRASH) in again and (0, KICK) in again, "beat one comes in with a crash"
    assert again == opened, "each song's first beats play the opening pattern"


@pytest.mark.parametrize("press", [-0.2, -0.04, -0.01, 0.0, 0.03, 0.07, 0.11])
def test_end_pressed_with_the_last_chord_ends_on_its_bar_line(generator, press) -> None:
    """A keyboard player hits the end pad with the final chord on a downbeat, a little early or
    late: the drums end there (the crash at most max_late late), not a bar later."""
    clock = Clock()
    engine = engine_with(generator, clock)
    first = 0.5
    line = first + 3 * BAR_S
    chord = held((48, 60, 64), line, BAR_S / 2)
    events = run(engine, clock, first + 7 * BAR_S, notes=comping(first, 3) + chord, at=[(line + press, engine.end)])
    crashes = [e.time - line for e in events if e.message.note == CRASH and e.time > line - 0.1]
    assert len(crashes) == 1 and -0.001 < crashes[0] <= max(press, 0) + 0.05, crashes
    assert sum(e.message.note == KICK for e in events if abs(e.time - line) < 0.06) == 1, "one kick, no flam"
    assert max(e.time for e in events) - line < max(press, 0) + 0.06, "nothing long after the last hit"
    after = [(round(e.time - line, 4), e.message.note) for e in events if e.time > line + crashes[0] + 1e-9]
    assert all(t < BAR_S / 32 for t, _ in after), f"nothing after the crash but the line's own notes: {after}"
    assert engine.ended and engine.groove.is_empty


def test_end_pressed_well_after_a_bar_line_ends_on_the_next(generator) -> None:
    clock = Clock()
    engine = engine_with(generator, clock)
    first = 0.5
    line = first + 3 * BAR_S
    events = run(engine, clock, first + 7 * BAR_S, notes=comping(first, 3), at=[(line + 0.2, engine.end)])
    hit = [e for e in events if abs(e.time - (line + BAR_S)) < 0.05]
    assert sorted(e.message.note for e in hit) == sorted([KICK, CRASH])
    assert max(e.time for e in events) - (line + BAR_S) < 0.1


def test_the_next_song_ends_with_its_last_chord_too(generator) -> None:
    """The second song's clock starts again from 0: its end press is read on its own bar lines."""
    clock = Clock()
    engine = engine_with(generator, clock)
    first = 0.5
    line = first + 3 * BAR_S
    run(engine, clock, line + 2 * BAR_S, notes=comping(first, 3), at=[(line - 0.01, engine.end)])
    again = clock.now + 0.3
    second_line = again + 2 * BAR_S
    # 80 ms before the line: scheduled (half a step ahead of the look-ahead), its notes not out yet
    events = run(engine, clock, second_line + 3 * BAR_S, notes=comping(again, 2),
                 at=[(second_line - 0.08, engine.end)])
    hit = [e for e in events if e.time > second_line - 0.1]
    assert sorted(e.message.note for e in hit) == sorted([KICK, CRASH]), "the last hit, as a song's own"
    assert len({e.message.velocity for e in hit}) == 1 and all(abs(e.time - second_line) < 0.01 for e in hit)


def test_after_a_restored_state_the_next_song_still_opens_plainly(generator) -> None:
    """A box that started from its saved state never asked for an opening: the next song's first
    beat plays the plainest groove made at the song's end, not the restored groove's pattern."""
    from appliance.core.groove import Groove
    def slow_engine(clock: Clock) -> Engine:      # a generator that takes a second
        transport = InternalClock(bpm=BPM, start=0.0)
        return Engine(generator, transport, settings=EngineSettings(), executor=VirtualExecutor(1.0),
                      clock=clock, starter=Starter(StartSettings(mode="first-note"), transport, now=0.0))
    clock, fresh_clock = Clock(), Clock()
    engine, fresh = slow_engine(clock), slow_engine(fresh_clock)
    first = 1.5                                    # the fresh box's opening is ready by then
    opened = run(fresh, fresh_clock, first + BAR_S / 4, notes=comping(first, 1))
    steps = np.zeros((32, 3), np.float32)
    steps[::2] = (1.0, 0.8, 0.0)                       # a groove of eighths, as saved
    engine.restore(groove=Groove(steps), eps=generator.new_eps())
    last_line = first + 3 * BAR_S
    next_song = last_line + BAR_S / 2
    events = run(engine, clock, next_song + BAR_S / 4, notes=comping(first, 3) + comping(next_song, 1),
                 at=[(first + 2 * BAR_S + 1.3, engine.end)])
    step_s = BAR_S / 16

    def first_beat(played, start):
        return {(round((e.time - start) / step_s), e.message.note) for e in played
                if -0.5 * step_s <= e.time - start < 3.5 * step_s}
    assert first_beat(events, next_song) == first_beat(opened, first)


@pytest.mark.parametrize("press", [0.0, 0.01, 0.03])
def test_end_with_a_loud_last_chord_on_a_phrase_head_still_crashes(generator, press) -> None:
    """The last chord, louder, on bar 5's line (a lift's crash is asked for there) and the end pad
    with it: the song ends on that line with one crash (the rehearsal heard none: the lift's crash,
    queued, was dropped with the rest of the line, and counted as played)."""
    clock = Clock()
    engine = engine_with(generator, clock)
    first = 0.5
    line = first + 4 * BAR_S
    chord = [(line, mido.Message("note_on", note=n, velocity=124)) for n in (48, 60, 64, 67)]
    events = run(engine, clock, first + 8 * BAR_S, notes=comping(first, 4) + chord, at=[(line + press, engine.end)])
    crashes = [e.time - line for e in events if e.message.note == CRASH and e.time > line - 0.1]
    assert len(crashes) == 1 and -0.001 < crashes[0] <= press + 0.05, crashes
    assert max(e.time for e in events) - line < 0.1


@pytest.mark.parametrize("tail", ["roll", "lick", "pedal"])
def test_a_rolled_last_chord_or_a_lick_over_its_ring_is_the_songs_tail(generator, tail) -> None:
    """A musician's review: end pressed, the last chord on the downbeat rolled upward (a note
    every 100 ms) and let ring, or a three-note lick 1.5 beats after it over the held chord: the
    note a beat past the line started the next song, with a crash and 8 bars of drums. The ring
    belongs to the song; once it is let go, the next note starts the next song."""
    clock = Clock()
    engine = engine_with(generator, clock)
    first = 0.5
    line = first + 3 * BAR_S
    beat = BAR_S / 4
    if tail == "roll":
        last = [(line + 0.1 * i, mido.Message("note_on", note=n, velocity=80))
                for i, n in enumerate((36, 48, 55, 60, 64, 67, 72, 76, 79))]
        last += [(line + 3 * beat, mido.Message("note_off", note=n, velocity=0)) for _, n in
                 ((0, m.note) for _, m in last)]
    elif tail == "lick":
        last = held((48, 60, 64, 67), line, 3 * beat) + [
            (line + 1.5 * beat + 0.04 * i, mido.Message("note_on", note=72 + 4 * i, velocity=70)) for i in range(3)]
        last += [(line + 3.5 * beat, mido.Message("note_off", note=72 + 4 * i, velocity=0)) for i in range(3)]
    else:   # let go under the pedal, a lick a bar and a half later, the pedal up after it
        last = held((48, 60, 64, 67), line, beat) + [(line + 0.5 * beat, mido.Message("control_change", control=64, value=127))]
        last += held((72, 76), line + 1.5 * BAR_S, beat / 2) + [(line + 2 * BAR_S, mido.Message("control_change", control=64, value=0))]
    ring_ends = max(t for t, m in last)
    next_song = ring_ends + beat
    events = run(engine, clock, next_song + BAR_S, notes=comping(first, 3) + last + comping(next_song, 1),
                 at=[(first + 2 * BAR_S + 1.3, engine.end)])
    between = [e for e in events if line + 0.1 < e.time < next_song - 0.06]   # (the next downbeat's own may be pushed early)
    assert not between, f"the drums came back during the last chord's {tail}: {len(between)} notes"
    assert engine.transport.position(next_song) == pytest.approx(0.0, abs=0.01), "the next song starts on its first chord"
    assert CRASH in {e.message.note for e in events if abs(e.time - next_song) < 0.06}


def test_status_says_the_song_has_ended_while_its_last_chord_rings(generator) -> None:
    """After the last hit the drums are silent: the status says so (it said nothing, as if the
    drums played, for as long as the last chord rang), then what starts the next song."""
    clock = Clock()
    engine = engine_with(generator, clock)
    first = 0.5
    line = first + 3 * BAR_S
    chord = held((48, 60, 64), line, 1.5 * BAR_S)
    notes = comping(first, 3) + chord
    run(engine, clock, line - 0.3, notes=notes, at=[(line - 0.5, engine.end)])
    assert engine.stats()["waiting_for"] == "", "before the last hit the drums play"
    run(engine, clock, line + BAR_S + 0.4, notes=[n for n in notes if n[0] >= line - 0.3])
    ringing = engine.stats()["waiting_for"]
    assert "last chord rings" in ringing and not engine.ended, ringing
    run(engine, clock, line + 3 * BAR_S, notes=[n for n in chord if n[0] >= line + BAR_S + 0.4])
    assert engine.ended and "first note" in engine.stats()["waiting_for"]

"""Crashes a drummer plays for what the band does, on a virtual clock: the lift into a chorus
is marked; a band that has stopped gets no phrase crash while the drums wind down."""
from __future__ import annotations

import mido
import pytest

from appliance.core.groove import HIT
from training import reviews

from tests.test_ending import BAR_S, CRASH, Clock, engine_with, run


def comping(start: float, bars: int, velocity: int) -> list[tuple[float, mido.Message]]:
    """A chord on every beat at one level, let go half a beat later."""
    notes = []
    for beat in range(bars * 4):
        t = start + beat * BAR_S / 4
        for n in (48, 60, 64, 67):
            notes.append((t, mido.Message("note_on", note=n, velocity=velocity)))
            notes.append((t + BAR_S / 8, mido.Message("note_off", note=n, velocity=0)))
    return notes


def crash_bars(events, first: float) -> set[int]:
    """Bars (1 = the first) whose downbeat has a crash, within 60 ms."""
    bars = set()
    for e in events:
        if e.message.note == CRASH:
            bar = round((e.time - first) / BAR_S)
            if abs(e.time - first - bar * BAR_S) < 0.06:
                bars.add(bar + 1)
    return bars


def test_a_chorus_that_comes_in_louder_on_a_phrase_head_gets_a_crash(generator) -> None:
    clock = Clock()
    engine = engine_with(generator, clock)
    first = 0.5
    verse, chorus = comping(first, 12, 60), comping(first + 12 * BAR_S, 4, 100)
    events = run(engine, clock, first + 24 * BAR_S, notes=verse + chorus + comping(first + 16 * BAR_S, 8, 100))
    bars = crash_bars(events, first)
    assert 13 in bars, "the chorus on bar 13 (a phrase head) is marked"
    assert 17 not in bars and 21 in bars, "the band stayed up: the form's crashes count from the chorus"


@pytest.mark.parametrize("seed", [1, 2])
def test_a_one_off_loud_push_gets_its_crash_and_the_form_goes_on(seed) -> None:
    """A reviewer's part (review-s36b/b06): a loud push into bar 13, a bar out, back on beat 2 at
    the comp's level. A crash with the push is fine (pushes are the push rules', not lifts); the
    form's crash on 17 must still come."""
    heard = reviews.hear("review-s36b/b06_funk_push_then_back_on2_figure", seed)
    assert 17 in heard.crashes, heard.crashes
    assert heard.score is not None and heard.score[0] == 0, "no crash the reviewer asked for is missing"


def test_the_same_level_or_a_lift_inside_a_phrase_gets_no_crash(generator) -> None:
    clock = Clock()
    engine = engine_with(generator, clock)
    first = 0.5
    steady = run(engine, clock, first + 16 * BAR_S, notes=comping(first, 16, 60))
    assert 13 not in crash_bars(steady, first), "no lift, no crash on bar 13"
    clock = Clock()
    engine = engine_with(generator, clock)
    inside = comping(first, 6, 60) + comping(first + 6 * BAR_S, 4, 100)   # louder from bar 7, inside a phrase
    events = run(engine, clock, first + 10 * BAR_S, notes=inside)
    assert 7 not in crash_bars(events, first)


def test_no_phrase_crash_once_the_band_has_stopped_for_a_while(generator) -> None:
    """A rest of eight bars over bar 25's phrase head: the drums wind down without a crash there
    (the rehearsal heard one crash into the silence before the end); the return gets its crash."""
    clock = Clock()
    engine = engine_with(generator, clock, end_after_bars=0)
    first = 0.5
    back = first + 26 * BAR_S                  # the rest: bars 19 to 26
    events = run(engine, clock, back + 2 * BAR_S, notes=comping(first, 18, 80) + comping(back, 2, 80))
    bars = crash_bars(events, first)
    assert 17 in bars, "the phrase crash before the rest"
    assert 25 not in bars, "no crash 6 bars into the rest"
    assert 27 in bars, "the return's crash"
    assert [e for e in events if first + 24 * BAR_S < e.time < back - 0.1], "the drums keep time meanwhile"


def test_a_lift_then_a_rest_is_not_taken_for_a_chorus(generator) -> None:
    """A loud bar 13, then the band stops for two bars and comes back loud on bar 16: the lift's
    crash plays, but the band did not stay up through its bar, so the form's count is not moved
    back to it when the return's notes come (they are the return's, rules of their own)."""
    clock = Clock()
    engine = engine_with(generator, clock, end_after_bars=0)
    confirmed = []
    engine.player.confirm_lift = confirmed.append
    first = 0.5
    back = first + 15 * BAR_S
    notes = comping(first, 12, 60) + comping(first + 12 * BAR_S, 1, 100) + comping(back, 4, 100)
    events = run(engine, clock, back + 4 * BAR_S, notes=notes)
    assert 13 in crash_bars(events, first) and confirmed == []


@pytest.mark.parametrize("rest_thin", [0.25, 0.0])
def test_a_return_on_a_phrase_head_after_a_long_rest_gets_its_crash(generator, rest_thin) -> None:
    """Six bars out, back on bar 25: the drums wound down without crashes, and come back with one."""
    clock = Clock()
    engine = engine_with(generator, clock, end_after_bars=0, rest_thin=rest_thin)
    first = 0.5
    back = first + 24 * BAR_S
    events = run(engine, clock, back + 2 * BAR_S, notes=comping(first, 18, 80) + comping(back, 2, 80))
    bars = crash_bars(events, first)
    assert 25 in bars and not bars & {21, 22, 23, 24}, bars


def test_the_priors_groove_holds_while_nothing_is_played(generator) -> None:
    """The prior button with a groove in memory and the player resting: z's noise does not
    drift, so the groove drawn stays (a drift would pick a new one every pass)."""
    clock = Clock()
    engine = engine_with(generator, clock, end_after_bars=0, rest_thin=0.0)
    first = 0.5
    run(engine, clock, first + 4 * BAR_S + 0.2, notes=comping(first, 4, 80))
    engine.prior()
    run(engine, clock, first + 6 * BAR_S)
    drawn = engine.pattern.steps[..., HIT].copy()
    run(engine, clock, first + 14 * BAR_S)
    assert (engine.pattern.steps[..., HIT] == drawn).all()


def held(start: float, bars: int, velocity: int, notes: tuple[int, ...] = (43, 31)) -> list[tuple[float, mido.Message]]:
    """A whole note a bar (the left hand of a breakdown), let go just before the next bar."""
    out = []
    for bar in range(bars):
        t = start + bar * BAR_S
        for n in notes:
            out.append((t, mido.Message("note_on", note=n, velocity=velocity)))
            out.append((t + BAR_S * 0.95, mido.Message("note_off", note=n, velocity=0)))
    return out


def hits_per_bar(events, first: float, bars: range) -> dict[int, int]:
    """Drum hits in each bar (1 = the bar at ``first``), a hit up to 30 ms early counted in its bar."""
    return {bar: sum(1 for e in events if first + (bar - 1) * BAR_S - 0.03 <= e.time < first + bar * BAR_S - 0.03)
            for bar in bars}


def band(start: float, bars: int, velocity: int) -> list[tuple[float, mido.Message]]:
    """The rehearsal's full comp: octave bass on the beats, a triad on every eighth (the "&" of 2
    and 4 accented)."""
    out = []
    for bar in range(bars):
        s = start + bar * BAR_S
        for beat in range(4):
            for n, v in ((43, velocity - 4), (31, velocity - 8)):
                t = s + beat * BAR_S / 4
                out += [(t, mido.Message("note_on", note=n, velocity=v)),
                        (t + BAR_S * 0.22, mido.Message("note_off", note=n, velocity=0))]
        for eighth in range(8):
            v = velocity - 14 + (10 if eighth in (2, 6) else 0)
            t = s + eighth * BAR_S / 8
            for n in (67, 71, 74):
                out += [(t, mido.Message("note_on", note=n, velocity=v)),
                        (t + BAR_S * 0.1, mido.Message("note_off", note=n, velocity=0))]
    return out


def test_the_band_back_on_a_phrase_head_brings_the_groove_back_at_once(generator) -> None:
    """Session 42's rehearsal: four bars of whole notes (a breakdown) thinned the groove just as
    the band came back on bar 13 with a big chord ringing two beats, the comp in on beat 3; the
    drums played the breakdown's thin pattern through bars 13 and 14 (12-15 hits a bar against
    about 19 before it). The lift brings the groove back at the chord."""
    clock = Clock()
    engine = engine_with(generator, clock, end_after_bars=0)
    first = 0.5
    back = first + 12 * BAR_S
    chord = [(back, mido.Message("note_on", note=n, velocity=118)) for n in (31, 43, 67, 71, 74, 79, 83)]
    chord += [(back + BAR_S / 2, mido.Message("note_off", note=n, velocity=0)) for n in (31, 43, 67, 71, 74, 79, 83)]
    comp_in = [item for item in band(back, 1, 100) if item[0] >= back + BAR_S / 2]       # beats 3 and 4
    notes = band(first, 8, 92) + held(first + 8 * BAR_S, 4, 70) + chord + comp_in + band(back + BAR_S, 3, 100)
    events = run(engine, clock, back + BAR_S / 4, notes=notes)
    eighths = engine.groove.steps[0::2, HIT]
    assert eighths.all(), "the comp's eighths are the groove again from the chord on"
    events += run(engine, clock, back + 4 * BAR_S, notes=[item for item in notes if item[0] >= clock.now])
    counts = hits_per_bar(events, first, range(1, 17))
    before = sum(counts[bar] for bar in range(5, 9)) / 4
    assert 13 in crash_bars(events, first), "the lift's crash"
    assert counts[13] + counts[14] >= 0.9 * 2 * before, counts


def test_clear_pressed_while_playing_keeps_the_form(generator) -> None:
    """Session 42's rehearsal pressed clear on the "&" of 1 in bar 19 and played on: the box took
    the next note for a new start, crashed on bar 20 and ended its next phrase a bar early. The
    form goes on; the player back two bars after a clear is a new start as before."""
    first = 0.5
    pressed = first + 18 * BAR_S + BAR_S / 8
    for play_on, crash_on in ((True, 25), (False, 21)):
        clock = Clock()
        engine = engine_with(generator, clock, end_after_bars=0)
        later = comping(pressed + BAR_S / 8, 8, 80) if play_on else comping(first + 20 * BAR_S, 6, 80)
        events = run(engine, clock, first + 26 * BAR_S, notes=comping(first, 18, 80) + later, at=[(pressed, engine.clear)])
        bars = crash_bars(events, first)
        assert 17 in bars and crash_on in bars, (play_on, bars)
        assert not bars & {19, 20} and (play_on or 25 not in bars), (play_on, bars)


def test_a_jump_after_a_clear_is_a_new_start(generator) -> None:
    """A clear pressed while playing, then the song jumps back to its top (a master's Start): the
    player coming in two bars later is a new start, with its crash (a code review: the clear's
    "plays on" outlived the jump, by position)."""
    clock = Clock()
    engine = engine_with(generator, clock, end_after_bars=0)
    first = 0.5
    pressed = first + 18 * BAR_S + BAR_S / 8
    jump = pressed + 0.05
    back = jump + 2 * BAR_S
    events = run(engine, clock, back + 2 * BAR_S, notes=comping(first, 18, 80) + comping(back, 2, 80),
                 at=[(pressed, engine.clear), (jump, lambda: engine.transport.start(jump, 0.0))])
    assert 3 in crash_bars([e for e in events if e.time >= jump], jump), "the entry after the jump is marked"


def test_a_one_off_lift_lets_the_breakdown_go_again(generator) -> None:
    """A loud chord on a phrase head in a breakdown, and whole notes again: the groove it brought
    back goes again at the next bar's first note (the band did not stay up)."""
    clock = Clock()
    engine = engine_with(generator, clock, end_after_bars=0)
    first = 0.5
    back = first + 12 * BAR_S
    chord = [(back, mido.Message("note_on", note=n, velocity=118)) for n in (31, 43, 67, 71, 74)]
    chord += [(back + BAR_S / 8, mido.Message("note_off", note=n, velocity=0)) for n in (31, 43, 67, 71, 74)]
    notes = band(first, 8, 92) + held(first + 8 * BAR_S, 4, 70) + chord + held(back + BAR_S, 3, 70)
    run(engine, clock, back + BAR_S / 4, notes=notes)
    assert engine.groove.steps[0::2, HIT].all(), "the lift brought the eighths back"
    run(engine, clock, back + BAR_S + BAR_S / 4, notes=[item for item in notes if item[0] >= clock.now])
    assert engine.groove.steps[:, HIT].sum() <= 4, "the whole notes again: the eighths went again"


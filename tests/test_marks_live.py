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

"""The overdub buffer: overdub, chords, forgetting, clear; freeze through the engine."""
from hypothesis import given, strategies as st
import pytest

from appliance.core.groove import HIT, OFFSET, STEPS, VELOCITY
from appliance.core.looper import Looper


def test_a_louder_note_on_the_same_step_replaces_a_softer_one() -> None:
    looper = Looper()
    assert looper.record(4.1, 0.4)
    assert looper.record(STEPS + 3.9, 0.9)   # the next pass, same step, louder
    cell = looper.groove.steps[4]
    assert cell[VELOCITY] == pytest.approx(0.9)
    assert cell[OFFSET] == pytest.approx(-0.1, abs=1e-6)
    assert not looper.record(2 * STEPS + 4.0, 0.5)  # softer: the louder stays
    assert looper.groove.steps[4, VELOCITY] == pytest.approx(0.9)


@given(st.lists(st.tuples(st.floats(-0.45, 0.45), st.integers(1, 127).map(lambda v: v / 127)),
                min_size=1, max_size=6))
def test_a_chord_collapses_to_its_loudest_note_and_that_notes_offset(chord: list[tuple[float, float]]) -> None:
    looper = Looper()
    for offset, velocity in chord:
        looper.record(8 + offset, velocity)
    loudest = max(chord, key=lambda note: note[1])
    first_loudest = next(note for note in chord if note[1] == loudest[1])
    cell = looper.groove.steps[8]
    assert cell[HIT] == 1
    assert cell[VELOCITY] == pytest.approx(loudest[1])
    assert cell[OFFSET] == pytest.approx(first_loudest[0], abs=1e-5)
    assert looper.groove.hits == 1


def test_forgetting_drops_a_step_not_played_for_n_passes() -> None:
    looper = Looper(forget_passes=2)
    looper.record(0.0, 0.8)    # step 0, pass 0
    looper.record(5.0, 0.8)    # step 5, pass 0
    for p in (1, 2):           # step 5 is played again in passes 1 and 2; step 0 is not
        looper.advance(p * STEPS)
        looper.record(p * STEPS + 5.0, 0.5)
    assert looper.groove.steps[0, HIT] == 1  # 2 passes without it: not yet forgotten
    assert looper.advance(3 * STEPS)          # the third pass without step 0
    assert looper.groove.steps[0, HIT] == 0
    assert looper.groove.steps[5, HIT] == 1


def test_forget_zero_keeps_the_overdub_forever() -> None:
    looper = Looper(forget_passes=0)
    looper.record(3.0, 0.7)
    assert not looper.advance(100 * STEPS)
    assert looper.groove.steps[3, HIT] == 1


def test_clear_empties_the_groove() -> None:
    looper = Looper()
    looper.record(3.0, 0.7)
    assert looper.clear()
    assert looper.groove.is_empty
    assert not looper.clear()

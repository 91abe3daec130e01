"""The grid: quantising timed notes onto the 2-bar loop, and the Groove/Pattern types."""
import math

from hypothesis import given, strategies as st
import numpy as np
import pytest

from appliance.core.groove import GM_NOTES, STEPS, VOICES, Groove, Pattern, loop_pass, quantise

positions = st.floats(min_value=0.0, max_value=STEPS * 50, allow_nan=False, allow_infinity=False)


@given(positions)
def test_a_quantised_note_lands_within_half_a_step(position: float) -> None:
    step, offset = quantise(position)
    assert 0 <= step < STEPS
    assert -0.5 <= offset < 0.5
    # back to a time: the same pass, the step plus its offset, is where the note was played
    rebuilt = loop_pass(position) * STEPS + step + offset
    assert rebuilt == pytest.approx(position, abs=1e-6)
    nearest = loop_pass(position) * STEPS + step
    assert abs(nearest - position) <= 0.5 + 1e-9


@given(st.integers(min_value=1, max_value=40), st.floats(min_value=1e-3, max_value=0.499))
def test_a_note_just_before_the_loop_point_is_step_zero_of_the_next_pass(passes: int, early: float) -> None:
    position = passes * STEPS - early
    step, offset = quantise(position)
    assert step == 0
    assert offset == pytest.approx(-early, abs=1e-9)
    assert loop_pass(position) == passes


def test_exact_half_step_rounds_forward() -> None:
    assert quantise(3.5) == (4, -0.5)
    assert quantise(STEPS - 0.5) == (0, -0.5)


def test_voice_order_and_general_midi_notes_follow_the_design() -> None:
    assert VOICES == ("kick", "snare", "closed_hat", "open_hat", "low_tom", "mid_tom", "high_tom",
                      "crash", "ride")
    assert GM_NOTES == (36, 38, 42, 46, 43, 47, 50, 49, 51)


def test_groove_and_pattern_are_immutable_and_compare_by_value() -> None:
    steps = np.zeros((STEPS, 3), np.float32)
    steps[4] = (1, 0.8, 0.1)
    groove = Groove(steps)
    steps[4] = 0  # the caller's array is copied
    assert groove.hits == 1 and not groove.is_empty
    assert groove == Groove(groove.steps)
    with pytest.raises(ValueError):
        groove.steps[0, 0] = 1
    with pytest.raises(ValueError):
        Pattern(np.zeros((STEPS, 3)))
    assert Groove.empty().is_empty


def test_pattern_grid_shows_velocity_by_character() -> None:
    steps = np.zeros((STEPS, len(VOICES), 3), np.float32)
    steps[0, 0] = (1, 1.0, 0)
    steps[4, 1] = (1, 0.1, 0)
    lines = Pattern(steps).grid().splitlines()
    assert len(lines) == 1 + len(VOICES)
    kick, snare = lines[1], lines[2]
    assert kick.startswith("kick") and kick[11] == "#"
    assert snare[11 + 4] == "."
    assert math.isclose(len(kick), len(snare))


def test_the_register_marks_the_left_hands_steps_and_is_heard_only_with_both_hands() -> None:
    """Groove.low: 1 where a low note landed (never where nothing did); a 4-channel model hears
    it at LOW, +1 low and −1 high, unless every note is on one side of the split (pads, one hand:
    unknown, all 0)."""
    from appliance.core.groove import HIT, LOW
    steps = np.zeros((STEPS, 3), np.float32)
    steps[[0, 4, 8, 12], HIT] = 1.0
    steps[[0, 4, 8, 12], 1] = 0.7
    low = np.zeros(STEPS)
    low[[0, 8, 20]] = 1.0                       # step 20 plays nothing: no register there
    groove = Groove(steps, low)
    assert list(np.flatnonzero(groove.low)) == [0, 8]
    assert groove != Groove(steps) and hash(groove) != hash(Groove(steps))
    np.testing.assert_array_equal(groove.model_input(3), steps)
    heard = groove.model_input(4)
    assert heard.shape == (STEPS, 4) and list(np.flatnonzero(heard[:, LOW] > 0)) == [0, 8]
    assert list(np.flatnonzero(heard[:, LOW] < 0)) == [4, 12]    # high: heard as known, not as nothing
    older = groove.model_input(4, signed=False)                   # a model exported before session 57
    assert list(np.flatnonzero(older[:, LOW])) == [0, 8] and older[:, LOW].min() == 0.0
    all_low = Groove(steps, steps[:, HIT])
    assert not all_low.model_input(4)[:, LOW].any()    # one side of the split only: unknown
    assert not Groove(steps).model_input(4)[:, LOW].any()
    fewer = steps.copy()
    fewer[0] = 0.0
    assert list(np.flatnonzero(groove.with_steps(fewer).low)) == [8]   # a step let go loses its register


def test_a_listeners_added_steps_keep_a_one_sided_groove_without_a_register() -> None:
    """listening and dynamics rebuild a groove with ``with_steps``: the played steps keep their
    register, and a groove all below the split stays one-sided (no register) with the eighths a
    listener fills in."""
    from appliance.core import listening
    steps = np.zeros((STEPS, 3), np.float32)
    steps[:, 0], steps[:, 1] = 1.0, 0.5              # every sixteenth at one level: heard on the eighths
    low = np.ones(STEPS)
    low[1::2] = 0.0                                   # two-handed: the eighths low, the rest high
    heard = listening.on_the_eighths(Groove(steps, low)).groove
    assert heard.two_handed and list(np.flatnonzero(heard.low)) == list(range(0, STEPS, 2))
    bass = steps.copy()
    bass[1::2] = 0.0
    bass[[4, 12]] = 0.0                               # a bass line of eighths with two left out, all low
    heard = listening.on_the_eighths(Groove(bass, np.ones(STEPS))).groove
    assert heard.steps[4, 0] == 1.0 and not heard.low.any()   # filled in, and no register

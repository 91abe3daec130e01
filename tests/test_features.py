"""The report's features agree with their definitions on hand-made patterns."""
from __future__ import annotations

import numpy as np
import pytest

from appliance.core.groove import NUM_VOICES, STEPS, VOICES
from training import features as F

KICK, SNARE, HAT, RIDE, LOW_TOM = (VOICES.index(v) for v in ("kick", "snare", "closed_hat", "ride", "low_tom"))


def pattern(cells: dict[tuple[int, int], tuple[float, float]]) -> np.ndarray:
    """One pattern [1,32,9,3] from {(step, voice): (velocity, offset)}."""
    p = np.zeros((1, STEPS, NUM_VOICES, 3), np.float32)
    for (step, voice), (vel, off) in cells.items():
        p[0, step, voice] = (1.0, vel, off)
    return p


def rock_beat() -> np.ndarray:
    cells = {(s, HAT): (0.6, 0.0) for s in range(0, STEPS, 2)}
    cells.update({(s, KICK): (0.9, 0.0) for s in (0, 8, 16, 24)})
    cells.update({(s, SNARE): (0.8, 0.0) for s in (4, 12, 20, 28)})
    return pattern(cells)


def test_hits_only_on_the_beat_have_no_syncopation():
    on_beats = pattern({(s, KICK): (0.8, 0.0) for s in (0, 4, 12, 20)})   # some beats left silent
    assert F.syncopation(on_beats)[0] == 0.0
    assert F.syncopation(pattern({(s, SNARE): (0.8, 0.1) for s in range(0, STEPS, 4)}))[0] == 0.0
    assert F.syncopation(rock_beat())[0] == 0.0


def test_an_anticipated_silent_beat_is_syncopated_by_its_weight():
    # the "and" of beat 4 (step 14, weight -3) pushes the next downbeat (step 16, weight 0), which is silent
    push = pattern({(0, KICK): (0.8, 0.0), (14, KICK): (0.8, 0.0)})
    assert F.syncopation(push)[0] == pytest.approx((0 - -3) / 2)
    # the same note with the downbeat played in its band is not syncopated
    played = pattern({(0, KICK): (0.8, 0.0), (14, KICK): (0.8, 0.0), (16, LOW_TOM): (0.5, 0.0)})
    assert F.syncopation(played)[0] == 0.0
    # a hi-hat on the downbeat does not hide the kick's push (bands count apart); a push in two bands adds up
    hat = pattern({(0, KICK): (0.8, 0.0), (14, KICK): (0.8, 0.0), (16, HAT): (0.5, 0.0)})
    assert F.syncopation(hat)[0] == pytest.approx(1.5)
    two = pattern({(14, KICK): (0.8, 0.0), (14, SNARE): (0.8, 0.0), (0, KICK): (0.8, 0.0), (0, SNARE): (0.8, 0.0)})
    assert F.syncopation(two)[0] == pytest.approx(3.0)
    # the last step wraps onto the loop's first downbeat
    assert F.syncopation(pattern({(31, KICK): (0.8, 0.0)}))[0] == pytest.approx(4 / 2)


def test_most_syncopated_loop_has_complexity_of_its_density():
    weak = pattern({(s, v): (0.5, 0.0) for s in range(STEPS) if s % 4 for v in (KICK, SNARE, HAT)})
    assert F.syncopation(weak)[0] == pytest.approx(F.MAX_SYNCOPATION)
    assert F.complexity(weak)[0] == pytest.approx(np.sqrt(0.75 ** 2 + 1) / np.sqrt(2))
    assert F.complexity(pattern({}))[0] == 0.0


def test_density_counts_hits_per_cell_and_per_voice():
    beat = rock_beat()
    assert F.density(beat)[0] == pytest.approx((16 + 4 + 4) / (STEPS * NUM_VOICES))
    per_voice = F.voice_density(beat)[0]
    assert per_voice[HAT] == 0.5 and per_voice[KICK] == 0.125 and per_voice[RIDE] == 0.0


def test_velocity_and_timing_statistics():
    laid_back = pattern({(0, KICK): (0.4, 0.1), (4, SNARE): (0.8, 0.3)})
    mean, spread = F.velocity_stats(laid_back)
    assert mean[0] == pytest.approx(0.6) and spread[0] == pytest.approx(0.2)
    mean, spread = F.timing_stats(laid_back)
    assert mean[0] == pytest.approx(0.2) and spread[0] == pytest.approx(0.1)
    rushed = pattern({(0, KICK): (0.4, -0.2), (4, SNARE): (0.8, -0.2)})
    assert F.timing_stats(rushed)[0][0] == pytest.approx(-0.2)
    assert F.timing_stats(rushed)[1][0] == pytest.approx(0.0)


def test_swing_is_the_delay_of_the_off_beat_sixteenths():
    swung = pattern({**{(s, HAT): (0.6, 0.0) for s in range(0, STEPS, 2)},
                     **{(s, HAT): (0.4, 0.25) for s in range(1, STEPS, 2)}})
    assert F.swing(swung)[0] == pytest.approx(0.25)
    assert F.swing(rock_beat())[0] == 0.0                      # no off-beat sixteenths at all
    straight = pattern({(s, HAT): (0.6, 0.1) for s in range(STEPS)})
    assert F.swing(straight)[0] == pytest.approx(0.0)


def test_band_balance_shares_the_velocity_between_low_mid_and_high():
    bands = F.band_balance(pattern({(0, KICK): (0.5, 0.0), (0, LOW_TOM): (0.5, 0.0), (4, SNARE): (1.0, 0.0),
                                    (2, HAT): (1.0, 0.0), (6, RIDE): (1.0, 0.0)}))
    assert (bands["low"][0], bands["mid"][0], bands["high"][0]) == pytest.approx((0.25, 0.25, 0.5))
    empty = F.band_balance(pattern({}))
    assert empty["low"][0] == empty["mid"][0] == empty["high"][0] == 0.0


def test_features_has_every_named_feature_for_every_pattern():
    beats = np.concatenate([rock_beat(), pattern({}), rock_beat()])
    feats = F.features(beats)
    assert list(feats) == list(F.FEATURES)
    assert all(v.shape == (3,) and np.isfinite(v).all() for v in feats.values())


def test_distances_between_distributions():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 4000), rng.normal(0, 1, 4000)
    far = rng.normal(6, 1, 4000)
    assert F.overlapping_area(a, b) > 0.9 and F.kl_divergence(a, b) < 0.05
    assert F.overlapping_area(a, far) < 0.05 and F.kl_divergence(a, far) > 3
    assert F.overlapping_area(a, a) == pytest.approx(1.0) and F.kl_divergence(a, a) == pytest.approx(0.0)


def test_a_malformed_batch_is_refused():
    with pytest.raises(ValueError, match="patterns must be"):
        F.density(np.zeros((STEPS, NUM_VOICES, 3)))

"""The metrics code on hand-made cases with known answers."""
from __future__ import annotations

import math

import numpy as np
import pytest

from appliance.core.groove import NUM_VOICES, STEPS
from training.metrics import expression_mse, hit_scores, offset_spread, prf, report, tune_thresholds, voices_per_window


def _cells() -> tuple[np.ndarray, np.ndarray]:
    """One window; kick: 3 true hits, 2 found + 1 false alarm; snare: 2 true, 1 found; rest silent."""
    true = np.zeros((1, STEPS, NUM_VOICES), bool)
    pred = np.zeros_like(true)
    true[0, [0, 8, 16], 0] = True
    pred[0, [0, 8, 20], 0] = True      # kick: tp 2, fp 1, fn 1
    true[0, [4, 12], 1] = True
    pred[0, [4], 1] = True             # snare: tp 1, fn 1
    return pred, true


def test_pooled_and_per_voice_precision_recall_f1() -> None:
    pred, true = _cells()
    pooled, per_voice = hit_scores(pred, true)
    # tp 3, fp 1, fn 2 → P 3/4, R 3/5, F1 2·0.75·0.6/1.35 = 2/3
    assert (pooled.tp, pooled.fp, pooled.fn) == (3, 1, 2)
    assert pooled.precision == pytest.approx(0.75)
    assert pooled.recall == pytest.approx(0.6)
    assert pooled.f1 == pytest.approx(2 / 3)
    assert per_voice[0].f1 == pytest.approx(2 / 3)         # kick P 2/3 R 2/3
    assert per_voice[1].precision == pytest.approx(1.0)    # snare P 1 R 1/2 → F1 2/3
    assert per_voice[1].recall == pytest.approx(0.5)
    assert per_voice[1].f1 == pytest.approx(2 / 3)
    assert per_voice[2].f1 == 0.0                          # nothing to count is 0, not nan


def test_prf_edge_cases() -> None:
    assert prf(0, 0, 0).f1 == 0.0
    assert prf(0, 5, 0).precision == 0.0
    assert prf(4, 0, 0).f1 == 1.0


def test_expression_mse_only_counts_true_positives() -> None:
    pred, true = _cells()
    patterns = np.zeros((1, STEPS, NUM_VOICES, 3), np.float32)
    patterns[..., 0] = true
    patterns[0, 0, 0, 1:] = (0.8, 0.1)     # tp cell
    patterns[0, 8, 0, 1:] = (0.6, -0.2)    # tp cell
    patterns[0, 4, 1, 1:] = (0.5, 0.0)     # tp cell
    patterns[0, 16, 0, 1:] = (1.0, 0.4)    # a miss: must not count
    vel = np.full((1, STEPS, NUM_VOICES), 0.5, np.float32)
    off = np.zeros((1, STEPS, NUM_VOICES), np.float32)
    v, o = expression_mse(vel, off, patterns, pred & true)
    assert v == pytest.approx((0.3 ** 2 + 0.1 ** 2 + 0.0) / 3)
    assert o == pytest.approx((0.1 ** 2 + 0.2 ** 2 + 0.0) / 3)
    v, o = expression_mse(vel, off, patterns, np.zeros_like(pred))
    assert math.isnan(v) and math.isnan(o)


def test_voices_per_window_and_offset_spread() -> None:
    pred, true = _cells()
    assert voices_per_window(true) == 2.0
    off = np.zeros((1, STEPS, NUM_VOICES), np.float32)
    off[0, 0, 0], off[0, 8, 0] = 0.1, -0.1
    assert offset_spread(off, true) == pytest.approx(np.std([0.1, -0.1, 0, 0, 0]))


def test_thresholds_separate_a_separable_case() -> None:
    rng = np.random.default_rng(0)
    true = rng.random((50, STEPS, NUM_VOICES)) < 0.2
    # voice v's hits score 0.3 + 0.05 v, its silences 0.05 v lower: each voice needs its own threshold
    probs = np.where(true, 0.3 + 0.05 * np.arange(NUM_VOICES), 0.05 * np.arange(NUM_VOICES)).astype(np.float32)
    th = tune_thresholds(probs, true)
    assert hit_scores(probs >= th, true)[0].f1 == 1.0
    assert hit_scores(probs >= 0.5, true)[0].f1 < 1.0


def test_report_baselines() -> None:
    pred, true = _cells()
    patterns = np.zeros((1, STEPS, NUM_VOICES, 3), np.float32)
    patterns[..., 0] = true
    patterns[..., 1] = true * 0.5
    grooves = np.zeros((1, STEPS, 3), np.float32)
    grooves[0, :, 0] = true.any(-1)[0]
    grooves[0, :, 1] = 0.7 * grooves[0, :, 0]          # copy-the-groove is off by 0.2 on every TP
    probs = pred.astype(np.float32)
    vel = np.full((1, STEPS, NUM_VOICES), 0.5, np.float32)
    r = report(probs, vel, np.zeros_like(vel), patterns, grooves, np.full(NUM_VOICES, 0.5))
    assert r["hit"]["f1"] == pytest.approx(2 / 3)
    assert r["velocity_mse_tp"] == pytest.approx(0.0)
    assert r["baselines"]["copy_groove"]["velocity_mse_tp"] == pytest.approx(0.04)
    assert r["baselines"]["silence"]["f1"] == 0.0
    assert r["baselines"]["silence"]["recall"] == 0.0
    assert r["voices_per_window"] == {"generated": 2.0, "truth": 2.0}


def test_knowing_how_many_hits_leaves_only_which_steps() -> None:
    """training.ceiling's oracle: each voice plays its k most probable steps, no more, no fewer."""
    from training.ceiling import top_k
    probs = np.zeros((1, STEPS, NUM_VOICES), np.float32)
    probs[0, :, 0] = np.linspace(0.9, 0.1, STEPS)     # kick: step 0 most probable, then 1, 2, ...
    probs[0, [4, 12, 20], 1] = [0.2, 0.3, 0.1]         # snare: 12, then 4, then 20
    k = np.zeros((1, NUM_VOICES), int)
    k[0, 0], k[0, 1] = 3, 2
    picked = top_k(probs, k)
    assert np.flatnonzero(picked[0, :, 0]).tolist() == [0, 1, 2]
    assert np.flatnonzero(picked[0, :, 1]).tolist() == [4, 12]
    assert picked[0, :, 2:].sum() == 0                 # k 0: nothing, however probable

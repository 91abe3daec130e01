"""Metrics of generated drum patterns against ground truth (numpy only, shared by training,
export and evaluation).

Arrays: probabilities / velocities / offsets [N, 32, 9]; patterns [N, 32, 9, 3]; grooves [N, 32, 3].
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from appliance.core.groove import HIT, NUM_VOICES, OFFSET, VELOCITY, VOICES

THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)


@dataclass(frozen=True)
class PRF:
    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int


def prf(tp: int, fp: int, fn: int) -> PRF:
    """Precision, recall, F1; a ratio with nothing to count is 0."""
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return PRF(p, r, f, int(tp), int(fp), int(fn))


def counts(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boolean [N,32,9] predicted and true hits → (tp, fp, fn) per voice, each [9]."""
    pred, true = pred.astype(bool), true.astype(bool)
    axes = tuple(range(pred.ndim - 1))
    return ((pred & true).sum(axes), (pred & ~true).sum(axes), (~pred & true).sum(axes))


def hit_scores(pred: np.ndarray, true: np.ndarray) -> tuple[PRF, list[PRF]]:
    """Pooled precision/recall/F1 over every cell, and the same per voice."""
    tp, fp, fn = counts(pred, true)
    return prf(tp.sum(), fp.sum(), fn.sum()), [prf(tp[v], fp[v], fn[v]) for v in range(pred.shape[-1])]


def tune_thresholds(probs: np.ndarray, true: np.ndarray, grid: np.ndarray = THRESHOLD_GRID,
                    rounds: int = 2) -> np.ndarray:
    """Per-voice thresholds that maximise pooled F1 (start at each voice's own best F1, then
    coordinate ascent on the pooled F1). Use on validation only."""
    true = true.astype(bool)
    grid = np.asarray(grid, np.float32)  # compare exactly as the box will (float32)
    v_count = probs.shape[-1]
    # counts per voice and grid threshold: [9, G]
    tp = np.zeros((v_count, len(grid))); fp = np.zeros_like(tp); fn = np.zeros_like(tp)
    for v in range(v_count):
        p, t = probs[..., v].ravel(), true[..., v].ravel()
        for g, th in enumerate(grid):
            pred = p >= th
            tp[v, g] = np.sum(pred & t); fp[v, g] = np.sum(pred & ~t); fn[v, g] = np.sum(~pred & t)
    f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
    choice = f1.argmax(axis=1)
    for _ in range(rounds):
        for v in range(v_count):
            others = [u for u in range(v_count) if u != v]
            o_tp = sum(tp[u, choice[u]] for u in others)
            o_err = sum(fp[u, choice[u]] + fn[u, choice[u]] for u in others)
            pooled = 2 * (o_tp + tp[v]) / np.maximum(2 * (o_tp + tp[v]) + o_err + fp[v] + fn[v], 1)
            choice[v] = int(pooled.argmax())
    return grid[choice].astype(np.float32)


def expression_mse(pred_vel: np.ndarray, pred_off: np.ndarray, patterns: np.ndarray,
                   tp: np.ndarray) -> tuple[float, float]:
    """Velocity and offset MSE over the true-positive cells (nan when there are none)."""
    if not tp.any():
        return float("nan"), float("nan")
    return (float(np.mean((pred_vel[tp] - patterns[..., VELOCITY][tp]) ** 2)),
            float(np.mean((pred_off[tp] - patterns[..., OFFSET][tp]) ** 2)))


def voices_per_window(hits: np.ndarray) -> float:
    """Mean number of voices that play at least once per window. hits bool [N,32,9]."""
    return float(hits.any(axis=1).sum(axis=1).mean())


def offset_spread(offsets: np.ndarray, hits: np.ndarray) -> float:
    """Standard deviation of the offsets of the hit cells."""
    return float(offsets[hits].std()) if hits.any() else float("nan")


def report(probs: np.ndarray, vel: np.ndarray, off: np.ndarray, patterns: np.ndarray,
           grooves: np.ndarray, thresholds: np.ndarray) -> dict:
    """The evaluation protocol of issue 3 on one set of predictions, with both baselines."""
    true = patterns[..., HIT] > 0.5
    pred = probs >= np.asarray(thresholds, np.float32)
    pooled, per_voice = hit_scores(pred, true)
    tp = pred & true
    v_mse, o_mse = expression_mse(vel, off, patterns, tp)
    groove_vel = np.broadcast_to(grooves[:, :, None, VELOCITY], vel.shape)
    groove_off = np.broadcast_to(grooves[:, :, None, OFFSET], off.shape)
    c_vmse, c_omse = expression_mse(groove_vel, groove_off, patterns, tp)
    silence, _ = hit_scores(np.zeros_like(true), true)
    return {
        "windows": int(len(patterns)),
        "hit": {"precision": pooled.precision, "recall": pooled.recall, "f1": pooled.f1,
                "tp": pooled.tp, "fp": pooled.fp, "fn": pooled.fn},
        "f1_per_voice": {VOICES[v]: per_voice[v].f1 for v in range(NUM_VOICES)},
        "velocity_mse_tp": v_mse,
        "offset_mse_tp": o_mse,
        "baselines": {
            "silence": {"precision": silence.precision, "recall": silence.recall, "f1": silence.f1,
                        "velocity_mse_tp": None, "offset_mse_tp": None},
            "copy_groove": {"f1": pooled.f1, "velocity_mse_tp": c_vmse, "offset_mse_tp": c_omse},
        },
        "voices_per_window": {"generated": voices_per_window(pred), "truth": voices_per_window(true)},
        "offset_spread": {"generated": offset_spread(off, pred),
                          "truth": offset_spread(patterns[..., OFFSET], true)},
    }

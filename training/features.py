"""Musical features of drum patterns, and distances between their distributions (numpy only).

A pattern is [32, 9, 3] (hit, velocity 0..1, offset in steps −0.5..0.5), voices in VOICES order;
every function takes a batch [N, 32, 9, 3] and returns one value per pattern. Offsets are in
sixteenth steps: positive is late (laid back), negative is early (rushed).

Definitions (on the 2-bar loop, which wraps around):
- density: hits / (32 steps · 9 voices); per voice: hits / 32.
- syncopation: in each band (low, mid, high; see band balance), a hit on a weak step whose next
  beat (a quarter-note position) is silent in that band pushes that beat. Each such step counts
  the metrical weight it anticipates: weight(beat) − weight(step) with the weights of
  Longuet-Higgins & Lee (bar 0, half bar −1, beat −2, eighth −3, sixteenth −4); the three bands'
  sums are added and divided by the number of bars. Hits only on beats: syncopation 0. (Per band,
  because a hi-hat on every eighth would otherwise hide every kick and snare syncopation.)
- velocity mean / spread: mean and standard deviation of the hits' velocities.
- timing mean / spread: mean and standard deviation of the hits' offsets (steps).
- swing: mean offset of the hits on the off-beat sixteenths (odd steps) minus that of the hits
  on the eighth-note steps (even steps); 0 when either is empty. Positive: swung.
- band balance: share of the hits' summed velocity in the low band (kick, low tom), the mid band
  (snare, mid and high tom) and the high band (hats, crash, ride); the three add up to 1.
- complexity: sqrt(step density² + normalised syncopation²) / sqrt 2, in 0..1 (after the
  GrooveToolbox's complexity; step density is the fraction of steps with any hit, syncopation is
  divided by its largest possible value).
"""
from __future__ import annotations

import numpy as np

from appliance.core.groove import HIT, NUM_VOICES, OFFSET, STEPS, STEPS_PER_BAR, STEPS_PER_BEAT, VELOCITY, VOICES

#: Longuet-Higgins & Lee metrical weights of the 16 steps of a bar.
WEIGHTS_BAR = np.array([0, -4, -3, -4, -2, -4, -3, -4, -1, -4, -3, -4, -2, -4, -3, -4], np.float64)
WEIGHTS = np.tile(WEIGHTS_BAR, STEPS // STEPS_PER_BAR)
BANDS: dict[str, tuple[str, ...]] = {
    "low": ("kick", "low_tom"),
    "mid": ("snare", "mid_tom", "high_tom"),
    "high": ("closed_hat", "open_hat", "crash", "ride"),
}


def _next_beat(step: int) -> int:
    return (step // STEPS_PER_BEAT + 1) * STEPS_PER_BEAT % STEPS


def _syncopation_table() -> np.ndarray:
    """[32] weight each step anticipates when its next beat is silent (0 for the beats)."""
    table = np.zeros(STEPS)
    for step in range(STEPS):
        if step % STEPS_PER_BEAT:
            table[step] = WEIGHTS[_next_beat(step)] - WEIGHTS[step]
    return table


SYNC_GAIN = _syncopation_table()
NEXT_BEAT = np.array([_next_beat(s) if s % STEPS_PER_BEAT else s for s in range(STEPS)])
#: the most syncopation a loop can have: in every band every weak step hit, every beat silent
MAX_SYNCOPATION = len(BANDS) * SYNC_GAIN.sum() / (STEPS // STEPS_PER_BAR)
BAND_VOICES = {band: [VOICES.index(v) for v in voices] for band, voices in BANDS.items()}


def _hits(patterns: np.ndarray) -> np.ndarray:
    if patterns.ndim != 4 or patterns.shape[1:] != (STEPS, NUM_VOICES, 3):
        raise ValueError(f"patterns must be [N, {STEPS}, {NUM_VOICES}, 3], got {patterns.shape}")
    return patterns[..., HIT] > 0.5


def _masked_mean_std(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std over the hit cells of each pattern (0 for an empty pattern)."""
    n = mask.sum(axis=(1, 2))
    total = np.where(mask, values, 0.0).sum(axis=(1, 2))
    mean = np.divide(total, n, out=np.zeros(len(n)), where=n > 0)
    sq = np.where(mask, (values - mean[:, None, None]) ** 2, 0.0).sum(axis=(1, 2))
    std = np.sqrt(np.divide(sq, n, out=np.zeros(len(n)), where=n > 0))
    return mean, std


def density(patterns: np.ndarray) -> np.ndarray:
    return _hits(patterns).sum(axis=(1, 2)) / (STEPS * NUM_VOICES)


def voice_density(patterns: np.ndarray) -> np.ndarray:
    """[N, 9]: hits per step of each voice."""
    return _hits(patterns).sum(axis=1) / STEPS


def syncopation(patterns: np.ndarray) -> np.ndarray:
    hits = _hits(patterns)
    total = np.zeros(len(hits))
    for voices in BAND_VOICES.values():
        onset = np.asarray(hits[:, :, voices].any(axis=2))  # [N, 32]: any voice of the band
        total += (onset & ~onset[:, NEXT_BEAT]) @ SYNC_GAIN
    return total / (STEPS // STEPS_PER_BAR)


def velocity_stats(patterns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return _masked_mean_std(patterns[..., VELOCITY].astype(np.float64), _hits(patterns))


def timing_stats(patterns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return _masked_mean_std(patterns[..., OFFSET].astype(np.float64), _hits(patterns))


def swing(patterns: np.ndarray) -> np.ndarray:
    hits = _hits(patterns)
    off = patterns[..., OFFSET].astype(np.float64)
    odd = np.zeros(STEPS, bool)
    odd[1::2] = True
    means = []
    for steps in (odd, ~odd):
        mask = hits & steps[None, :, None]
        n = mask.sum(axis=(1, 2))
        means.append((np.divide(np.where(mask, off, 0.0).sum(axis=(1, 2)), n, out=np.zeros(len(n)), where=n > 0), n))
    (late, n_late), (even, n_even) = means
    return np.where((n_late > 0) & (n_even > 0), late - even, 0.0)


def band_balance(patterns: np.ndarray) -> dict[str, np.ndarray]:
    hits = _hits(patterns)
    loud = np.where(hits, patterns[..., VELOCITY], 0.0).sum(axis=1)   # [N, 9]
    total = loud.sum(axis=1)
    return {band: np.divide(loud[:, [VOICES.index(v) for v in voices]].sum(axis=1), total,
                            out=np.zeros(len(total)), where=total > 0)
            for band, voices in BANDS.items()}


def complexity(patterns: np.ndarray) -> np.ndarray:
    step_density = _hits(patterns).any(axis=2).mean(axis=1)
    return np.sqrt(step_density ** 2 + (syncopation(patterns) / MAX_SYNCOPATION) ** 2) / np.sqrt(2)


#: The features the report compares, in its order, with a unit for the axis.
FEATURES: dict[str, str] = {
    "density": "hits / cell", "syncopation": "LHL weight / bar", "velocity mean": "velocity",
    "velocity spread": "velocity (std)", "timing mean": "steps (+ late)", "timing spread": "steps (std)",
    "swing": "steps", "low band": "share", "mid band": "share", "high band": "share",
    "complexity": "0..1", **{f"density {v}": "hits / step" for v in VOICES},
}


def features(patterns: np.ndarray) -> dict[str, np.ndarray]:
    """Every feature of FEATURES for a batch of patterns: name → [N]."""
    vel_mean, vel_std = velocity_stats(patterns)
    off_mean, off_std = timing_stats(patterns)
    bands = band_balance(patterns)
    per_voice = voice_density(patterns)
    out = {"density": density(patterns), "syncopation": syncopation(patterns), "velocity mean": vel_mean,
           "velocity spread": vel_std, "timing mean": off_mean, "timing spread": off_std,
           "swing": swing(patterns), "low band": bands["low"], "mid band": bands["mid"],
           "high band": bands["high"], "complexity": complexity(patterns)}
    out.update({f"density {v}": per_voice[:, i] for i, v in enumerate(VOICES)})
    return out


def histograms(a: np.ndarray, b: np.ndarray, bins: int = 30) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both samples as probability histograms on shared bins: (p, q, edges)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    both = np.concatenate([a, b])
    low, high = (float(both.min()), float(both.max())) if len(both) else (0.0, 1.0)
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, bins + 1)
    p = np.histogram(a, edges)[0].astype(np.float64)
    q = np.histogram(b, edges)[0].astype(np.float64)
    return p / max(p.sum(), 1), q / max(q.sum(), 1), edges


def kl_divergence(truth: np.ndarray, generated: np.ndarray, bins: int = 30, eps: float = 1e-4) -> float:
    """KL(truth ‖ generated) in nats between the two samples' histograms on shared bins
    (each bin floored at eps, then renormalised, so an empty bin does not make it infinite)."""
    p, q, _ = histograms(truth, generated, bins)
    p, q = (p + eps) / (1 + eps * bins), (q + eps) / (1 + eps * bins)
    return float(np.sum(p * np.log(p / q)))


def overlapping_area(truth: np.ndarray, generated: np.ndarray, bins: int = 30) -> float:
    """Shared area of the two histograms, 0 (disjoint) .. 1 (identical)."""
    p, q, _ = histograms(truth, generated, bins)
    return float(np.minimum(p, q).sum())

"""What GMD's drummers do where a musician's review (session 54) asked the box for more.

    python -m training.habits [--split train|validation]

Three questions over the split's 2-bar windows (``GMD_DIR``; the test split is refused):

- **offbeats**: over a groove (the model's input: every drum flattened to its loudest) with
  notes on 6 or more of its 8 beats and 6 or more of its 8 "&"s, how many "&"s the snare plays,
  by how loud the "&"s are against the beats (their means). A keyboard's offbeat stabs (disco
  octaves) are such a groove with loud "&"s;
- **backbeats**: outside fill bars (two tom hits or more in the window), how many of the four
  backbeats (2 and 4 of both bars) the snare plays, by style;
- **fill starts**: of the fill bars (``fills.fill_bar``'s tom counts, wherever their toms fall), the
  share whose toms all fall before beat 3 (``fills.LEADS``: the box plays no such bar as a fill)
  and the share whose toms start in beat 1;
- **soft windows**: within each performance of 6 windows or more, the windows played at under
  ``SOFT`` × its median level (``dynamics.played``: the mean velocity of the louder half of the
  groove's steps), their hits against the performance's mean (does a drummer who plays softer
  play fewer notes?).
"""
from __future__ import annotations

import argparse
from collections import Counter

import numpy as np

from appliance.core.dynamics import played
from appliance.core import fills
from appliance.core.groove import HIT, STEPS_PER_BAR, STEPS_PER_BEAT, VELOCITY, VOICES, Groove
from training import dataset as ds

SNARE = VOICES.index("snare")
TOMS = [VOICES.index(v) for v in ("low_tom", "mid_tom", "high_tom")]
BACKBEATS = [4, 12, 20, 28]
MOST = 6           #: beats and "&"s (of 8 each) a groove plays to count as played on both
SOFT = 0.75        #: a window under this × its performance's median level is a soft one
STYLES = ("hiphop", "rock", "funk", "soul", "jazz", "latin")


def offbeats(split: ds.Split) -> list[tuple[str, int, float]]:
    """(the "&"s over the beats, windows, snare hits on the "&"s per window)."""
    hit, vel = split.grooves[..., HIT] > 0.5, split.grooves[..., VELOCITY]
    beats, ands = hit[:, 0::STEPS_PER_BEAT], hit[:, STEPS_PER_BEAT // 2::STEPS_PER_BEAT]
    both = (beats.sum(1) >= MOST) & (ands.sum(1) >= MOST)
    ratio = np.full(len(hit), np.nan)
    ratio[both] = ((vel[both, STEPS_PER_BEAT // 2::STEPS_PER_BEAT] * ands[both]).sum(1) / ands[both].sum(1)) / (
        (vel[both, 0::STEPS_PER_BEAT] * beats[both]).sum(1) / beats[both].sum(1))
    snare = (split.patterns[:, STEPS_PER_BEAT // 2::STEPS_PER_BEAT, SNARE, HIT] > 0.5).sum(1)
    rows = []
    for name, m in (("softer (under 1)", both & (ratio <= 1.0)), ("1 to 1.1", both & (ratio > 1.0) & (ratio <= 1.1)),
                    ("louder (over 1.1)", both & (ratio > 1.1))):
        rows.append((name, int(m.sum()), float(snare[m].mean()) if m.any() else float("nan")))
    return rows


def backbeats(split: ds.Split) -> dict[str, Counter]:
    """Style → how many windows play 0..4 of the backbeats (outside fill bars)."""
    hit = split.patterns[..., HIT] > 0.5
    groove = hit[:, :, TOMS].sum(axis=(1, 2)) < 2
    count = hit[:, BACKBEATS, SNARE].sum(1)
    style = np.array([split.files[f].split("_")[1].split("-")[0] for f in split.file_ids])
    return {name: Counter(count[groove & ((style == name) | (name == "all"))].tolist()) for name in ("all", *STYLES)}


def fill_starts(split: ds.Split) -> tuple[int, float, float]:
    """(fill bars, the share of them whose toms all fall before ``fills.LEADS``, the share whose
    toms start in beat 1): a fill bar as ``fills.fill_bar`` counts one, whatever its toms' steps."""
    bars = early = first_beat = 0
    for steps in split.patterns:
        toms = fills.tom_hits(steps)
        bar = int(np.argmax(toms))
        if toms[bar] < fills.FILL_TOMS or 3 * toms[1 - bar] > toms[bar]:
            continue
        on = np.flatnonzero((steps[bar * STEPS_PER_BAR:(bar + 1) * STEPS_PER_BAR, fills.TOMS, HIT] >= 0.5).any(1))
        bars, early, first_beat = bars + 1, early + int(on.max() < fills.LEADS), first_beat + int(on.min() < STEPS_PER_BEAT)
    return bars, early / max(bars, 1), first_beat / max(bars, 1)


def soft_windows(split: ds.Split) -> tuple[int, float]:
    """(performances with a soft window, the soft windows' hits over their performance's mean)."""
    level = np.array([played(Groove(g)) for g in split.grooves])
    hits = split.patterns[..., HIT].sum(axis=(1, 2))
    ratios, weights = [], []
    for f in np.unique(split.file_ids):
        m = split.file_ids == f
        if m.sum() < MOST:
            continue
        soft = level[m] < SOFT * np.median(level[m])
        if soft.any():
            ratios.append(hits[m][soft].mean() / hits[m].mean())
            weights.append(int(soft.sum()))
    return len(ratios), float(np.average(ratios, weights=weights)) if ratios else float("nan")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="train", choices=("train", "validation"))
    split = ds.load_split(parser.parse_args(argv).split)
    print(f"GMD {split.name}: {len(split)} windows\n\noffbeats: the groove's \"&\"s against its beats | windows | "
          "snare on the \"&\"s per 2 bars")
    for name, n, snare in offbeats(split):
        print(f"  {name:18s} | {n:5d} | {snare:.2f}")
    print("\nbackbeats (outside fill bars): share of windows with 0 / 1 / 2 / 3 / 4 of the 4 backbeats")
    for style, counts in backbeats(split).items():
        total = sum(counts.values())
        print(f"  {style:7s} {total:5d} windows: " + " / ".join(f"{counts[k] / max(total, 1):.0%}" for k in range(5)))
    bars, early, first_beat = fill_starts(split)
    print(f"\nfill starts: of {bars} fill bars, {early:.1%} have all their toms before beat 3, "
          f"{first_beat:.1%} start their toms in beat 1")
    n, ratio = soft_windows(split)
    print(f"\nsoft windows (under {SOFT} x the performance's median level): in {n} performances, "
          f"{ratio:.2f} x the performance's mean hits")


if __name__ == "__main__":
    main()

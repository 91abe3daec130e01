"""training/habits.py on a made-up split: each figure counts what it says."""
from __future__ import annotations

import numpy as np

from appliance.core.groove import NUM_VOICES, STEPS, VOICES
from training import dataset as ds
from training import habits

KICK, SNARE, HAT = (VOICES.index(v) for v in ("kick", "snare", "closed_hat"))


def window(ands_snare: bool, backbeats: int, level: float = 0.8) -> np.ndarray:
    """Eighths on the hat with the kick on the beats; the snare on ``backbeats`` of the four
    backbeats, and on every "&" (louder than the beats) when ``ands_snare``."""
    w = np.zeros((STEPS, NUM_VOICES, 3), np.float32)
    for step in range(0, STEPS, 2):
        w[step, HAT] = (1, 0.5 * level, 0)
    for step in range(0, STEPS, 4):
        w[step, KICK] = (1, 0.7 * level, 0)
    for step in habits.BACKBEATS[:backbeats]:
        w[step, SNARE] = (1, 0.9 * level, 0)
    if ands_snare:
        for step in range(2, STEPS, 4):
            w[step, SNARE] = (1, min(1.0, level), 0)
    return w


def split(windows: list[np.ndarray], files: list[str], ids: list[int]) -> ds.Split:
    patterns = np.stack(windows)
    return ds.Split("train", patterns, ds.flatten(patterns), np.array(ids, np.int32), files)


def test_offbeats_backbeats_and_soft_windows_count_what_they_say() -> None:
    files = ["d/1_funk-groove1_100_beat_4-4.mid", "d/2_hiphop-groove2_90_beat_4-4.mid"]
    loud_ands = [window(True, 4) for _ in range(3)]
    plain = [window(False, 2) for _ in range(3)]
    s = split(loud_ands + plain, files, [0, 0, 0, 1, 1, 1])
    rows = {name: (n, snare) for name, n, snare in habits.offbeats(s)}
    assert rows["louder (over 1.1)"] == (3, 8.0)      # the "&"s at 1.0 over beats at 0.7: all 8 on the snare
    assert rows["softer (under 1)"] == (3, 0.0)
    counts = habits.backbeats(s)
    assert counts["funk"] == {4: 3} and counts["hiphop"] == {2: 3} and counts["all"] == {4: 3, 2: 3}
    quiet = [window(False, 4, level=0.3)] + [window(True, 4)] * 6     # one soft window, with 12 hits fewer
    n, ratio = habits.soft_windows(split(quiet, files[:1], [0] * 7))
    full, thin = window(True, 4)[..., 0].sum(), window(False, 4, 0.3)[..., 0].sum()
    assert n == 1 and abs(ratio - thin / ((thin + 6 * full) / 7)) < 1e-6


def test_fill_starts_count_the_fills_whose_toms_stop_before_beat_3_and_those_starting_on_1() -> None:
    files = ["d/1_funk-groove1_100_beat_4-4.mid"]
    early, late, none = window(False, 4), window(False, 4), window(False, 4)
    early[[16, 18, 20], habits.TOMS[2]] = (1, 0.9, 0)         # beats 1 and 2 of bar 2: leads nowhere
    late[[16, 24, 28], habits.TOMS[0]] = (1, 0.9, 0)          # from 1 to beat 4: a fill
    assert habits.fill_starts(split([early, late, none], files, [0, 0, 0])) == (2, 0.5, 1.0)

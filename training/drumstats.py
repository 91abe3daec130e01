"""Drum statistics a drummer would recognise, from a drum part as 2-bar windows (numpy only).

Input: ``windows`` [W, 32, 9, 3] (hit 0/1, velocity 0..1, offset in steps), W consecutive
non-overlapping 2-bar windows of one performance, bar 1 first (see :func:`windows_from_notes`).
The same code measures the box's part and GMD drummers' own performances, so the two columns
of `make evaluate`'s table are comparable.

Figures (per performance; :func:`pooled` averages over performances, weighted by windows):
- ``hits``: hits per 2 bars, all voices; ``hits_<voice>``: per voice;
- ``backbeat_accent``: mean velocity of snare hits on beats 2 and 4 over the mean velocity of the
  other snare hits (nan when either is missing);
- ``backbeat_accent_grooves``: the same outside fill bars (a fill's strokes, as loud as the
  backbeat in GMD, set the figure of a part with few ghost notes);
- ``velocity_sd``: standard deviation of every hit's velocity, in MIDI units 0..127;
- ``timing_sd_steps``: standard deviation of every hit's offset from its step, in steps;
- ``colour_per_2_bars``: open hat, tom and crash hits per 2 bars (what a part sounds like beyond
  kick, snare and closed hat);
- ``fills_per_8_bars``: bars with two or more tom hits, per 8 bars; ``crashes_per_8_bars``;
- ``fills_at_phrase_end``: the share of those fill bars that end a 4-bar phrase (bars 4, 8, …
  counted from each phrase start: bar 1, and for the comping songs each bar where the player
  comes back from a rest);
- ``fills_ending_snare``, ``fills_ending_floor_tom``: the share of fill bars whose last stroke
  (the last step with a snare or tom hit; of two drums there, the lower) is the snare, or the
  low (floor) tom;
- ``fills_flat_last_beat``: the share of fill bars with two or more snare or tom strokes in
  their last beat whose strokes there are all one velocity (within 2 of 127);
- ``crash_after_fill``: the mean of the crash's velocity on the downbeat after a fill bar minus
  the fill's last stroke's, in MIDI units (fills followed by a crash);
- ``snare_rolls_per_8_bars``: runs of ``ROLL_STEPS`` or more snare hits on consecutive sixteenths
  inside one bar that is not a fill bar, per 8 bars (what a listener hears as a roll in the groove);
  ``snare_long_run_bars``: the share of bars that are not fill bars (and not empty) with a run of
  ``LONG_RUN_STEPS`` or more (half a bar of snare roll);
- ``ride_and_hats_bars``: the share of those bars that keep time on the ride and the closed hat
  both (two or more rides, and two or more closed hats on steps without a ride: a hat under the
  ride is the pedal);
- ``time_dropped_bars``: the share of those bars whose cymbals (closed and open hat, ride, crash)
  play on fewer than ``KEEP_TIME`` steps: where the drums let the time drop;
- ``timekeeper_switches_per_32_bars``: how often the time moves between the ride and the
  closed hat, from one groove bar keeping time (``KEEPS_TIME`` or more hits on either) to the
  next, per 32 bars;
- ``open_hat_bars``: the share of bars with an open hat; ``open_hat_per_bar``: open hat hits per
  bar that has one (together: how often a drummer opens the hat, and how much once they do);
  ``open_hat_with_ride``: the share of bars with an open hat that also play the ride;
- ``identical_windows``: share of consecutive 2-bar windows whose hits are exactly the same;
- ``bar2_share``: hits in bar 2 over the mean hits of bars 3-10 (nan under 4 bars);
- ``crash_run_bars``: the longest run of consecutive bars with a crash;
- ``two_hats_per_16_bars``: steps with the open and the closed hat both, per 16 bars;
  ``unplayable_per_16_bars``: steps one drummer cannot play (appliance.core.limbs: two hats, or
  three hands; a closed hat under the ride or crash is the pedal, a foot), per 16 bars.
"""
from __future__ import annotations

import numpy as np

from appliance.core import limbs
from appliance.core.groove import HIT, OFFSET, STEPS, STEPS_PER_BAR, VELOCITY, VOICES

SNARE = VOICES.index("snare")
TOMS = [VOICES.index(v) for v in ("low_tom", "mid_tom", "high_tom")]
CRASH = VOICES.index("crash")
COLOUR = [VOICES.index("open_hat"), *TOMS, CRASH]
BACKBEAT_STEPS = np.array([4, 12, 20, 28])   #: beats 2 and 4 of both bars
FILL_TOM_HITS = 2                             #: tom hits in a bar that make it a fill
ROLL_STEPS = 4                                #: consecutive sixteenths of snare that count as a roll
LONG_RUN_STEPS = 8                            #: ... and as half a bar of roll
OPEN_HAT = VOICES.index("open_hat")
RIDE = VOICES.index("ride")
CLOSED_HAT = VOICES.index("closed_hat")
KEEPS_TIME = 3                                #: ride or closed-hat hits in a bar that keep time
KEEP_TIME = 4                                 #: cymbal steps under which a groove bar has let the time drop
CYMBALS = [VOICES.index(v) for v in ("closed_hat", "open_hat", "ride", "crash")]
PHRASE_BARS = 4                               #: bars of a phrase (a fill at its end is where a drummer puts it)

FIGURES = ("hits", "backbeat_accent", "backbeat_accent_grooves", "velocity_sd", "timing_sd_steps", "colour_per_2_bars",
           "fills_per_8_bars", "fills_at_phrase_end", "fills_ending_snare", "fills_ending_floor_tom",
           "fills_flat_last_beat", "crash_after_fill", "crashes_per_8_bars", "snare_rolls_per_8_bars", "snare_long_run_bars", "ride_and_hats_bars", "time_dropped_bars", "timekeeper_switches_per_32_bars", "open_hat_bars", "open_hat_per_bar", "open_hat_with_ride", "identical_windows", "bar2_share", "crash_run_bars",
           "two_hats_per_16_bars", "unplayable_per_16_bars", *(f"hits_{v}" for v in VOICES))


def windows_from_notes(notes: np.ndarray, bars: int | None = None) -> np.ndarray:
    """Notes [n, 3] (position in steps from bar 1, voice index, velocity 0..1) → [W, 32, 9, 3],
    non-overlapping 2-bar windows from bar 1. A note belongs to the nearest step (a late note
    just before a window lands on that window's step 0); the loudest note of a cell wins.
    ``bars``: the performance's length (default: up to its last note)."""
    notes = np.asarray(notes, np.float64).reshape(-1, 3)
    if bars is None:
        bars = int(np.floor(notes[:, 0].max() + 0.5) // STEPS_PER_BAR + 1) if len(notes) else 0
    count = int(np.ceil(bars / 2))
    out = np.zeros((count, STEPS, len(VOICES), 3), np.float32)
    for position, voice, velocity in notes:
        nearest = int(np.floor(position + 0.5))
        window, step = divmod(nearest, STEPS)
        if not 0 <= window < count:
            continue
        cell = out[window, step, int(voice)]
        if cell[HIT] == 0 or velocity > cell[VELOCITY]:
            cell[:] = (1.0, velocity, np.clip(position - nearest, -0.5, 0.4999))
    return out


def phrase_ends(bars: int, starts: tuple[int, ...] = (0,)) -> np.ndarray:
    """[bars] whether each bar ends a PHRASE_BARS phrase, phrases counting from the latest start."""
    index = np.arange(bars)
    latest = np.maximum.accumulate(np.where(np.isin(index, [0, *starts]), index, 0))
    return (index - latest + 1) % PHRASE_BARS == 0


def stats(windows: np.ndarray, phrase_starts: tuple[int, ...] = (0,)) -> dict[str, float]:
    """The figures of one performance (see the module docstring); ``phrase_starts``: the bars
    (from 0) phrases count from."""
    windows = np.asarray(windows, np.float32)
    n = len(windows)
    hit = windows[..., HIT] > 0.5
    vel = windows[..., VELOCITY]
    out: dict[str, float] = {}
    out["hits"] = float(hit.sum() / n) if n else float("nan")
    for v, name in enumerate(VOICES):
        out[f"hits_{name}"] = float(hit[..., v].sum() / n) if n else float("nan")
    out.update(backbeat(hit, vel))
    out["velocity_sd"] = float(vel[hit].std() * 127) if hit.sum() > 1 else float("nan")
    out["timing_sd_steps"] = float(windows[..., OFFSET][hit].std()) if hit.sum() > 1 else float("nan")
    out["colour_per_2_bars"] = float(hit[..., COLOUR].sum() / n) if n else float("nan")
    bars = hit.reshape(n * 2, STEPS_PER_BAR, len(VOICES)) if n else np.zeros((0, STEPS_PER_BAR, len(VOICES)), bool)
    per_8 = 8.0 / max(1, 2 * n)
    fills = bars[..., TOMS].sum(axis=(1, 2)) >= FILL_TOM_HITS
    out["fills_per_8_bars"] = float(fills.sum() * per_8)
    out["fills_at_phrase_end"] = (float(fills[phrase_ends(len(fills), phrase_starts)].sum() / fills.sum())
                                  if fills.any() else float("nan"))
    out.update(fill_dynamics(bars, vel.reshape(bars.shape), fills))
    last = [last_stroke(bar) for bar in bars[fills]]
    for name, voice in (("snare", SNARE), ("floor_tom", TOMS[0])):
        out[f"fills_ending_{name}"] = float(np.mean([v == voice for v in last])) if last else float("nan")
    out["crashes_per_8_bars"] = float(hit[..., CRASH].sum() * per_8)
    out["snare_rolls_per_8_bars"] = float(sum(runs(bar[:, SNARE], ROLL_STEPS) for bar in bars[~fills]) * per_8)
    grooves = bars[~fills & bars.any(axis=(1, 2))]
    out["snare_long_run_bars"] = (float(np.mean([longest_run(bar[:, SNARE]) >= LONG_RUN_STEPS for bar in grooves]))
                                  if len(grooves) else float("nan"))
    out.update(timekeeping(grooves, len(bars)))
    opened = bars[..., OPEN_HAT].any(axis=1)
    out["open_hat_bars"] = float(opened.mean()) if n else float("nan")
    out["open_hat_per_bar"] = float(bars[opened][..., OPEN_HAT].sum() / opened.sum()) if opened.any() else float("nan")
    out["open_hat_with_ride"] = float(bars[opened][..., RIDE].any(axis=1).mean()) if opened.any() else float("nan")
    per_bar = bars.sum(axis=(1, 2))
    out["bar2_share"] = (float(per_bar[1] / per_bar[2:10].mean())
                         if len(per_bar) >= 4 and per_bar[2:10].mean() > 0 else float("nan"))
    out["crash_run_bars"] = float(longest_run(np.asarray(bars[..., CRASH].any(axis=1))))
    out["two_hats_per_16_bars"] = float((hit[..., limbs.CLOSED_HAT] & hit[..., limbs.OPEN_HAT]).sum() * 2 * per_8)
    out["unplayable_per_16_bars"] = float((~limbs.playable(hit)).sum() * 2 * per_8)
    if n > 1:
        same = [np.array_equal(hit[i], hit[i + 1]) for i in range(n - 1)]
        out["identical_windows"] = float(np.mean(same))
    else:
        out["identical_windows"] = float("nan")
    return out


def timekeeping(grooves: np.ndarray, bars: int) -> dict[str, float]:
    """``ride_and_hats_bars``, ``time_dropped_bars`` and ``timekeeper_switches_per_32_bars`` of the groove bars
    (not fills, not empty) [B, 16, voices] of a performance ``bars`` long."""
    rides = grooves[..., RIDE].sum(axis=1)
    hats_off_ride = (grooves[..., CLOSED_HAT] & ~grooves[..., RIDE]).sum(axis=1)
    keeping = np.maximum(rides, hats_off_ride) >= KEEPS_TIME
    keeper = (rides >= hats_off_ride)[keeping]
    return {"ride_and_hats_bars": float(np.mean((rides >= 2) & (hats_off_ride >= 2))) if len(grooves) else float("nan"),
            "time_dropped_bars": (float(np.mean(grooves[..., CYMBALS].any(axis=2).sum(axis=1) < KEEP_TIME))
                                  if len(grooves) else float("nan")),
            "timekeeper_switches_per_32_bars": float((keeper[1:] != keeper[:-1]).sum() * 32 / bars) if bars else float("nan")}


def backbeat(hit: np.ndarray, vel: np.ndarray) -> dict[str, float]:
    """``backbeat_accent`` and ``backbeat_accent_grooves`` of hits and velocities [W, 32, voices]."""
    snare = hit[..., SNARE]
    on_backbeat = np.zeros(STEPS, bool)
    on_backbeat[BACKBEAT_STEPS] = True
    fill_bars = hit[..., TOMS].reshape(len(hit), STEPS // STEPS_PER_BAR, STEPS_PER_BAR, len(TOMS)).sum(axis=(2, 3)) >= FILL_TOM_HITS
    out = {}
    for name, where in (("backbeat_accent", np.ones(hit.shape[:2], bool)),
                        ("backbeat_accent_grooves", ~np.repeat(fill_bars, STEPS_PER_BAR, axis=1))):
        back = vel[..., SNARE][snare & on_backbeat[None, :] & where]
        other = vel[..., SNARE][snare & ~on_backbeat[None, :] & where]
        out[name] = float(back.mean() / other.mean()) if len(back) and len(other) and other.mean() > 0 else float("nan")
    return out


def fill_dynamics(bars: np.ndarray, velocities: np.ndarray, fills: np.ndarray) -> dict[str, float]:
    """``fills_flat_last_beat`` and ``crash_after_fill`` of bars [B, 16, voices] (hits), their
    ``velocities`` and which bars are ``fills`` [B]."""
    drums = [SNARE, *TOMS]
    flat, drops = [], []
    for b in np.flatnonzero(fills):
        strokes = bars[b][:, drums].any(axis=1)
        level = np.where(bars[b][:, drums], velocities[b][:, drums], 0.0).max(axis=1) * 127
        last_beat = level[12:][strokes[12:]]
        if len(last_beat) >= 2:
            flat.append(np.ptp(last_beat) < 2)
        if b + 1 < len(bars) and bars[b + 1][0, CRASH] and strokes.any():
            drops.append(velocities[b + 1][0, CRASH] * 127 - level[np.flatnonzero(strokes)[-1]])
    return {"fills_flat_last_beat": float(np.mean(flat)) if flat else float("nan"),
            "crash_after_fill": float(np.mean(drops)) if drops else float("nan")}


def last_stroke(bar: np.ndarray) -> int | None:
    """The voice of a bar's [16, voices] last snare or tom hit (of two on one step, the lower drum)."""
    drums = [TOMS[0], TOMS[1], TOMS[2], SNARE]    # low to high
    for step in range(len(bar) - 1, -1, -1):
        for voice in drums:
            if bar[step, voice]:
                return voice
    return None


def runs(flags: np.ndarray, length: int) -> int:
    """How many runs of ``length`` or more consecutive True values ``flags`` holds."""
    count = run = 0
    for flag in [*flags, False]:
        if flag:
            run += 1
        else:
            count += run >= length
            run = 0
    return count


def longest_run(flags: np.ndarray) -> int:
    """The longest run of consecutive True values."""
    best = run = 0
    for flag in flags:
        run = run + 1 if flag else 0
        best = max(best, run)
    return best


def pooled(per_performance: list[tuple[dict[str, float], int]]) -> dict[str, float]:
    """Figures of several performances, each weighted by its number of windows (nan ignored)."""
    out = {}
    for key in FIGURES:
        values = np.array([s[key] for s, _ in per_performance], np.float64)
        weights = np.array([w for _, w in per_performance], np.float64)
        ok = ~np.isnan(values)
        out[key] = float(np.average(values[ok], weights=weights[ok])) if ok.any() and weights[ok].sum() else float("nan")
    return out


def follow_correlation(drum_windows: np.ndarray, key_onsets: np.ndarray) -> float:
    """Pearson r between drum hits per 2-bar window and keyboard note-ons per window
    (does the drummer play more when the player does?)."""
    hits = (np.asarray(drum_windows)[..., HIT] > 0.5).sum(axis=(1, 2)).astype(np.float64)
    keys = np.asarray(key_onsets, np.float64)[: len(hits)]
    hits = hits[: len(keys)]
    if len(hits) < 3 or hits.std() == 0 or keys.std() == 0:
        return float("nan")
    return float(np.corrcoef(hits, keys)[0, 1])

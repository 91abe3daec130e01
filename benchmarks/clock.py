"""Following a MIDI clock through stalls and jitter: the follower fed simulated arrival times.

A 100 BPM clock whose clocks reach the box late, never early: stamped at the end of a 64-frame
JACK cycle (1.3 ms), with jitter, or held up by a stall and handed on together when it ends.
For each case: the worst tempo reading and the worst error of a step planned from the line,
after the first two beats, with the burst rule and without it (``BURST_GAP`` 0: least squares
and stragglers alone). Then clocks lost on the way, with late clocks around them, and real
slowdowns that must not be taken for losses: in how many of ``SEEDS`` runs (jitter 0-2 ms)
the follower's count is wrong at the end. Run alone: ``python -m benchmarks.clock``.
"""
from __future__ import annotations

import math
import random
from unittest import mock

from appliance.core import clock
from appliance.core.clock import MidiClockFollower

BPM = 100.0
CLOCKS = 600
CYCLE_S = 64 / 48000
SEEDS = 5

#: name → (jitter s, [(stall from s, stall length s)])
CASES: dict[str, tuple[float, list[tuple[float, float]]]] = {
    "JACK cycle only": (0.0, []),
    "jitter 0-3 ms": (0.003, []),
    "jitter 0-8 ms": (0.008, []),
    "60 ms stall every beat": (0.0, [(0.6 * k + 0.3, 0.06) for k in range(20)]),
    "150 ms stall every 2 beats": (0.0, [(1.2 * k + 0.3, 0.15) for k in range(10)]),
    "one 250 ms stall": (0.0, [(3.0, 0.25)]),
    "one 400 ms stall": (0.0, [(3.0, 0.4)]),
    "jitter 3 ms + 120 ms stalls": (0.003, [(1.0 * k + 0.3, 0.12) for k in range(12)]),
}


def arrivals(jitter: float, stalls: list[tuple[float, float]], seed: int) -> tuple[list[float], list[float]]:
    """(true times, arrival stamps) of the clocks."""
    rng = random.Random(seed)
    period = 60 / BPM / 24
    true = [(i + 1) * period for i in range(CLOCKS)]
    stamps = []
    for t in true:
        t += rng.random() * jitter
        for start, length in stalls:
            if start <= t < start + length:
                t = start + length
        stamps.append((int(t / CYCLE_S) + 1) * CYCLE_S)
    return true, stamps


def follow(true: list[float], stamps: list[float]) -> tuple[float, float]:
    """(worst |bpm - BPM|, worst planned-step error in s) after the first two beats."""
    now = [0.0]
    follower = MidiClockFollower(clock=lambda: now[0])
    follower.heard("start", stamps[0] - 0.02)
    worst_bpm = worst_step = 0.0
    for i, t in enumerate(stamps):
        now[0] = t
        follower.heard("clock", t)
        if i < 48:
            continue
        worst_bpm = max(worst_bpm, abs(follower.bpm - BPM))
        step = math.ceil(follower.position(t) + 1e-9)      # the next sixteenth, as the player plans it
        if 6 * step < len(true):
            worst_step = max(worst_step, abs(follower.time_at(step) - true[6 * step]))
    return worst_bpm, worst_step


#: name → (bpm, lost clock indices, {index: periods late}, change to bpm or None); extra bytes
#: in ``EXTRA``
LOSSES: dict[str, tuple[float, set[int], dict[int, float], float | None]] = {
    "one lost": (140, {150}, {}, None),
    "two in a row lost": (140, {150, 151}, {}, None),
    "lost, the clock before 0.35 late": (140, {150}, {149: 0.35}, None),
    "lost, the clock before 0.7 late": (140, {150}, {149: 0.7}, None),
    "lost after a burst": (140, {150}, {148: 0.9}, None),
    "lost, the clock after 0.3 late": (140, {150}, {151: 0.3}, None),
    "one clock a period late (none lost)": (140, set(), {150: 1.0}, None),
    "late 1 then 0.5 period (none lost)": (140, set(), {150: 1.0, 151: 0.5}, None),
    "slowdown 100 -> 87 (none lost)": (100, set(), {}, 87.0),
    "slowdown 100 -> 70 (none lost)": (100, set(), {}, 70.0),
    "jump 60 -> 240 (none lost or extra)": (60, set(), {}, 240.0),
    "jump 140 -> 210 (none lost or extra)": (140, set(), {}, 210.0),
    "five extra 2 ms behind one": (140, set(), {}, None),
    "every clock echoed 3 ms on (a loop)": (140, set(), {}, None),
    "five extra in the clock's own cycle": (140, set(), {}, None),
}
#: name → ({index: extra bytes behind it}, how far behind, s); in its own 64-frame JACK cycle
#: an extra byte has the clock's time stamp and cannot be told from two clocks in one cycle
EXTRA: dict[str, tuple[dict[int, int], float]] = {
    "five extra 2 ms behind one": ({150: 5}, 0.002),
    "every clock echoed 3 ms on (a loop)": ({i: 1 for i in range(150, 350)}, 0.003),
    "five extra in the clock's own cycle": ({150: 5}, 0.0),
}


def counted_wrong(bpm: float, lost: set[int], late: dict[int, float], to: float | None, seed: int,
                  extra: tuple[dict[int, int], float] = ({}, 0.0)) -> bool:
    rng = random.Random(seed)
    true, t = [], 0.0
    for i in range(350):
        t += 60 / (to if to is not None and i >= 150 else bpm) / 24
        true.append(t)
    now = [0.0]
    follower = MidiClockFollower(clock=lambda: now[0])
    follower.heard("start", true[0] - 0.02)
    last = 0.0
    for i, t in enumerate(true):
        if i in lost:
            continue
        t += late.get(i, 0.0) * 60 / bpm / 24 + rng.random() * 0.002
        last = now[0] = max(last, (int(t / CYCLE_S) + 1) * CYCLE_S)
        follower.heard("clock", now[0])
        for _ in range(extra[0].get(i, 0)):
            last = now[0] = max(last, (int((t + extra[1]) / CYCLE_S) + 1) * CYCLE_S)
            follower.heard("clock", now[0])
    return round(follower.position(now[0]) * 6) != len(true) - 1    # the last clock's number


def main() -> None:
    print(f"MIDI clock at {BPM:.0f} BPM, {CLOCKS} clocks, {SEEDS} seeds: worst tempo reading off "
          f"(BPM) and worst planned step off (ms)")
    print(f"{'case':30s} {'burst rule':>18s} {'least squares':>18s}")
    for name, (jitter, stalls) in CASES.items():
        cells = []
        for gap in (clock.BURST_GAP, 0.0):
            with mock.patch.object(clock, "BURST_GAP", gap):
                runs = [follow(*arrivals(jitter, stalls, seed)) for seed in range(SEEDS)]
            cells.append(f"{max(r[0] for r in runs):7.2f} {max(r[1] for r in runs) * 1000:7.1f} ms")
        print(f"{name:30s} {cells[0]:>18s} {cells[1]:>18s}")
    print(f"\nlost and extra clocks, tempo changes ({SEEDS * 4} seeds, jitter 0-2 ms): runs counted wrong at the end")
    for name, (bpm, lost, late, to) in LOSSES.items():
        with mock.patch("appliance.core.clock.log"):
            wrong = sum(counted_wrong(bpm, lost, late, to, seed, EXTRA.get(name, ({}, 0.0))) for seed in range(SEEDS * 4))
        print(f"{name:40s} {wrong:3d} of {SEEDS * 4}")


if __name__ == "__main__":
    main()

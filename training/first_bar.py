"""How loud the drums' first bar is next to the bars after it, under a soft player.

    python -m training.first_bar [models/groove-vae]

Eighth notes at one velocity (20, 30, 45 of 127) from bar 1 for four bars, rendered by
`groovebox render`'s own code with seeds 1–8 (the box's defaults); for each, the loudest drum
hit and the mean velocity of bar 1 and of bars 2–4, the crash left out (it marks the start as
loud as the pattern's accents). Needs onnxruntime, numpy and mido only.
"""
from __future__ import annotations

import argparse
from pathlib import Path
import tempfile

import mido
import numpy as np

from appliance.core.groove import GM_NOTES, VOICES
from appliance.core.render import render

REPO = Path(__file__).resolve().parent.parent
VELOCITIES = (20, 30, 45)
SEEDS = range(1, 9)
CRASH = GM_NOTES[VOICES.index("crash")]


def eighths(path: Path, velocity: int, bars: int = 4) -> None:
    track = mido.MidiTrack()
    for i in range(8 * bars):
        track.append(mido.Message("note_on", note=60, velocity=velocity, time=0 if i == 0 else 40))
        track.append(mido.Message("note_off", note=60, velocity=0, time=200))
    midi = mido.MidiFile(ticks_per_beat=480)
    midi.tracks.append(track)
    midi.save(str(path))


def bar_velocities(path: Path) -> dict[int, list[int]]:
    """Drum note-on velocities per bar (from 0), the crash left out."""
    midi = mido.MidiFile(str(path))
    bars: dict[int, list[int]] = {}
    t = 0
    for m in midi.tracks[1]:
        t += m.time
        if m.type == "note_on" and m.velocity and m.note != CRASH:
            bars.setdefault(t // (4 * midi.ticks_per_beat), []).append(m.velocity)
    return bars


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path, nargs="?", default=REPO / "models" / "groove-vae")
    args = p.parse_args(argv)
    print("| eighths at | bar 1's loudest hit, seeds 1–8 | bars 2–4's loudest | bar 1's mean − bars 2–4's |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        keys, drums = Path(tmp) / "keys.mid", Path(tmp) / "drums.mid"
        for velocity in VELOCITIES:
            eighths(keys, velocity)
            first, later, gap = [], [], []
            for seed in SEEDS:
                render(keys, drums, model_dir=args.model_dir, seed=seed)
                bars = bar_velocities(drums)
                rest = bars.get(1, []) + bars.get(2, []) + bars.get(3, [])
                first.append(max(bars.get(0, [0])))
                later.append(max(rest))
                gap.append(float(np.mean(bars.get(0, [0]))) - float(np.mean(rest)))
            print(f"| {velocity} | {' '.join(map(str, first))} | {' '.join(map(str, later))} "
                  f"| {' '.join(f'{g:+.0f}' for g in gap)} |", flush=True)


if __name__ == "__main__":
    main()

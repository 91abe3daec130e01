"""The drums' micro-timing in milliseconds against the tempo, next to GMD drummers' own.

    python -m training.microtiming [models/groove-vae]

The model plays offsets in fractions of a step, and a step lasts longer at a slow tempo. A
review once rendered one file at several ``--bpm``: its notes keep their step offsets, so the
keyboard's timing in ms, and the drums' with it, grew as the tempo fell. A player at a slow
tempo is not looser in ms, though, and the model follows the groove's timing. So this plays a
part as a player would at each tempo: eighth-note chords (the downbeats leaned on) and a bass
note on 1 and 3, every note off the grid by the same N(0, ``JITTER_MS``) milliseconds, 16 bars,
rendered by `groovebox render`'s own code with seeds 1–3 (the box's defaults, density 0.5).
For each tempo: the median and mean |offset| of the drum notes from their step from bar 3 on,
in ms and in steps; and GMD's training drummers' median |offset| in their files' tempo bins
(``GMD_DIR``). Needs onnxruntime, numpy and mido only.
"""
from __future__ import annotations

import argparse
from pathlib import Path
import tempfile

import numpy as np

from appliance.core.generator import Controls
from appliance.core.groove import STEPS_PER_BEAT
from appliance.core.render import render
from training.dataset import BrokenMidi, gmd_dir, list_files, read_notes
from training.playalong import drum_notes
from training.sections import save_notes

REPO = Path(__file__).resolve().parent.parent
TEMPOS = (60, 80, 100, 120, 140)
JITTER_MS = 12.0
SEEDS = (1, 2, 3)


def played_part(path: Path, bpm: float, bars: int = 16, seed: int = 0) -> None:
    """Chords on the eighths and a bass on 1 and 3, each note N(0, JITTER_MS) ms off the grid."""
    rng = np.random.default_rng(seed)
    beat_s = 60.0 / bpm
    notes = []
    for bar in range(bars):
        for eighth in range(8):
            at = bar * 4 + eighth * 0.5 + rng.normal(0, JITTER_MS / 1000) / beat_s
            notes += [(at, 0.4, key, 80 if eighth % 2 == 0 else 64) for key in (60, 64, 67)]
        for beat, key in ((0, 36), (2, 43)):
            notes.append((bar * 4 + beat + rng.normal(0, JITTER_MS / 1000) / beat_s, 1.8, key, 78))
    save_notes(path, bpm, notes)


def box_offsets(model_dir: Path, bpm: float) -> np.ndarray:
    """|offset| in steps of the drum notes from bar 3 on, over the seeds."""
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        keys = Path(tmp) / "keys.mid"
        played_part(keys, bpm)
        for seed in SEEDS:
            drums = Path(tmp) / f"drums{seed}.mid"
            render(keys, drums, model_dir=model_dir, seed=seed, controls=Controls(density=0.5))
            notes = drum_notes(drums, 0)
            at = notes[notes[:, 0] >= 2 * 4 * STEPS_PER_BEAT, 0]
            out.append(np.abs(at - np.round(at)))
    return np.concatenate(out)


def gmd_offsets() -> dict[int, np.ndarray]:
    """|offset| in steps of GMD's training drummers' notes, by 20-BPM tempo bin."""
    bins: dict[int, list[np.ndarray]] = {}
    for entry in list_files(gmd_dir(), "train"):
        try:
            at = read_notes(entry.midi)[:, 0]
        except BrokenMidi:
            continue
        bins.setdefault(int(entry.bpm // 20 * 20), []).append(np.abs(at - np.round(at)))
    return {b: np.concatenate(v) for b, v in sorted(bins.items())}


def ms(steps: float, bpm: float) -> float:
    return steps * 60000.0 / bpm / STEPS_PER_BEAT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model_dir", nargs="?", type=Path, default=REPO / "models" / "groove-vae")
    args = parser.parse_args(argv)
    gmd = gmd_offsets()
    print(f"| tempo | the box over a part played {JITTER_MS:g} ms off the grid: median / mean |offset| "
          "| GMD training drummers in the bin: median |offset| (notes) |")
    print("|---|---|---|")
    for bpm in TEMPOS:
        box = box_offsets(args.model_dir, bpm)
        there = gmd.get(bpm // 20 * 20)
        drummers = (f"{ms(float(np.median(there)), bpm // 20 * 20 + 10):.1f} ms, {np.median(there):.3f} steps "
                    f"({there.size})" if there is not None else "none")
        print(f"| {bpm} BPM | {ms(float(np.median(box)), bpm):.1f} / {ms(float(box.mean()), bpm):.1f} ms "
              f"({np.median(box):.3f} steps) | {drummers} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How the drums meet a change of section: a quiet verse into a loud chorus, and back.

    python -m training.sections [models/groove-vae] [--seeds 5]

Keyboard parts made here (a musician's review's probes, session 52, rebuilt): a verse of 3–12
bars of half-note chords at velocity 54 into a chorus of eighths with an octave bass on the beats
at 100; whole-note chords into eighths at one level (75); 8 bars of that chorus into a verse of
half notes at 52. Human timing (SD 8 ms) and velocity (SD 6), seeded. Each is rendered by
`groovebox render`'s own code (the box's defaults) with seeds 1..N, and for the bar before the
change, the change's first bar and the three after: drum hits, kicks and snares on 2 and 4 (within
a 24th of the beat), the mean over seeds. Needs onnxruntime, numpy and mido only.
"""
from __future__ import annotations

import argparse
from pathlib import Path
import random
import tempfile

import mido

from appliance.core.groove import GM_NOTES, VOICES
from appliance.core.render import render

REPO = Path(__file__).resolve().parent.parent
TPB = 480
BAR = 4 * TPB
KICK, SNARE = GM_NOTES[VOICES.index("kick")], GM_NOTES[VOICES.index("snare")]
CHORDS = [(48, (60, 64, 67)), (45, (57, 60, 64)), (41, (57, 60, 65)), (43, (55, 59, 62))]   # C Am F G


class Part:
    """A keyboard part in beats, with seeded human timing and velocity."""

    def __init__(self, seed: int, bpm: float) -> None:
        self.rng, self.bpm = random.Random(seed), bpm
        self.notes: list[tuple[float, float, int, int]] = []

    def play(self, beat: float, length: float, pitches: tuple[int, ...], velocity: int) -> None:
        for pitch in pitches:
            at = max(0.0, beat + self.rng.gauss(0, 0.008 * self.bpm / 60))
            self.notes.append((at, length, pitch, max(1, min(127, round(velocity + self.rng.gauss(0, 6))))))

    def half_notes(self, bar: int, velocity: int, count: int = 2) -> None:
        root, triad = CHORDS[bar % 4]
        for k in range(count):
            self.play(4 * bar + k * 4 / count, 4 / count - 0.1, (root, *triad), velocity - 4 * k)

    def eighths(self, bar: int, velocity: int, bass: bool = True) -> None:
        root, triad = CHORDS[bar % 4]
        for k in range(8):
            if bass and k % 2 == 0:
                self.play(4 * bar + k / 2, 0.45, (root - 12, root), velocity)
            self.play(4 * bar + k / 2, 0.35, tuple(p + 12 for p in triad), velocity if k % 2 == 0 else velocity - 12)

    def save(self, path: Path) -> None:
        save_notes(path, self.bpm, self.notes)


def save_notes(path: Path, bpm: float, notes: list[tuple[float, float, int, int]]) -> None:
    """(beat, length in beats, pitch, velocity) notes as a one-track file at ``bpm`` (TPB ticks a beat)."""
    events = [(max(0, round(b * TPB)), 1, p, v) for b, _, p, v in notes]
    events += [(max(0, round((b + length) * TPB)), 0, p, 0) for b, length, p, _ in notes]
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))])
    last = 0
    for tick, _, pitch, velocity in sorted(events):
        track.append(mido.Message("note_on", note=pitch, velocity=velocity, time=tick - last))
        last = tick
    midi = mido.MidiFile(ticks_per_beat=TPB)
    midi.tracks.append(track)
    midi.save(str(path))


def parts() -> dict[str, tuple[Part, int]]:
    """Each probe and the bar (from 0) where its change begins."""
    out = {}
    for verse in (3, 4, 5, 6, 7, 8, 10, 12):
        part = Part(verse, 92)
        for bar in range(verse):
            part.half_notes(bar, 54)
        for bar in range(verse, verse + 8):
            part.eighths(bar, 100)
        out[f"verse {verse} bars into the chorus"] = part, verse
    part = Part(20, 100)
    for bar in range(8):
        part.half_notes(bar, 75, count=1)
    for bar in range(8, 16):
        part.eighths(bar, 75, bass=False)
    out["whole notes into eighths"] = part, 8
    part = Part(21, 92)
    for bar in range(8):
        part.eighths(bar, 100)
    for bar in range(8, 16):
        part.half_notes(bar, 52)
    out["the chorus into the verse"] = part, 8
    return out


def bars(path: Path) -> list[tuple[int, int, int]]:
    """Per bar of a render: drum hits, kicks, and snares on 2 and 4 (0–2)."""
    midi = mido.MidiFile(str(path))
    hits: list[tuple[int, int]] = []
    ticks = 0
    for message in midi.tracks[-1]:
        ticks += message.time
        if message.type == "note_on" and message.velocity:
            hits.append((round(ticks * TPB / midi.ticks_per_beat), message.note))
    count = max(tick for tick, _ in hits) // BAR + 1
    out = []
    for bar in range(count):
        mine = [(t, n) for t, n in hits if bar * BAR - TPB // 8 <= t < (bar + 1) * BAR - TPB // 8]
        backbeats = sum(any(n == SNARE and abs(t - bar * BAR - q * TPB) < TPB // 6 for t, n in mine) for q in (1, 3))
        out.append((len(mine), sum(n == KICK for _, n in mine), backbeats))
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path, nargs="?", default=REPO / "models" / "groove-vae")
    p.add_argument("--seeds", type=int, default=5)
    args = p.parse_args(argv)
    print("| part | bar before | the change's first bar | +1 | +2 | +3 |   (hits / kicks / backbeats of 2, mean over seeds)")
    print("|---|---|---|---|---|---|")
    missing = entries = 0
    with tempfile.TemporaryDirectory() as tmp:
        keys, drums = Path(tmp) / "keys.mid", Path(tmp) / "drums.mid"
        for name, (part, change) in parts().items():
            part.save(keys)
            rows = []
            for seed in range(1, args.seeds + 1):
                render(keys, drums, model_dir=args.model_dir, seed=seed)
                rows.append(bars(drums)[change - 1:change + 4])
                missing += 2 - rows[-1][1][2]
                entries += 1
            cells = [" / ".join(f"{sum(r[i][k] for r in rows) / len(rows):.1f}" for k in range(3)) for i in range(5)]
            print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"backbeats missing in the change's first bar: {missing} of {2 * entries}")


if __name__ == "__main__":
    main()

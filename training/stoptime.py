"""Stop time over the reviewers' parts: does the drummer play the band's hits and lay out?

    python -m training.stoptime [models/groove-vae]

Finds every stop-time passage in the reviewers' keyboard parts (training/review_parts/) from the
keys alone: two bars or more in a row whose notes all fall on the 1 (from a sixteenth before the
bar line to before its "and"), each let go within a beat (the sustain pedal counted),
or in the bar's last beat (a pickup into the next hit), after a bar of two chords or more. Each part is rendered by `groovebox render`'s own code, seeds
1 and 2, with ``loop.stop_time`` on and off. Per passage bar from the second hit on: the drum
notes in it, whether the hit got a crash and a kick; and the drum notes in the bar after the
passage (the band back). Needs onnxruntime, numpy and mido only.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
import statistics
import tempfile

import mido

from appliance.core.engine import EngineSettings
from appliance.core.groove import GM_NOTES, VOICES
from appliance.core.render import render

REPO = Path(__file__).resolve().parent.parent
PARTS = REPO / "training" / "review_parts"
SEEDS = (1, 2)
EARLY, LATE, RINGS = 0.25, 0.375, 1.0    #: beats: a hit's window around the bar line, how long it may sound
PICKUP = 2.75                            #: beats into the bar from which notes are a pickup into the next hit
ANSWER = {GM_NOTES[VOICES.index("kick")], GM_NOTES[VOICES.index("crash")]}
DRUMS = 9                                #: the drum channel in a render (0-based)


@dataclass
class Played:
    """The drums over the passages' bars, summed over parts and seeds."""
    notes: list[int]          #: drum notes in each passage bar from the second hit
    answered: int             #: ... of which with a crash and a kick
    after: list[int]          #: drum notes in the bar after each passage


def key_bars(path: Path) -> tuple[dict[int, list[tuple[float, float]]], int]:
    """Bar (from 1) → the keys' (beat in the bar, beats held) with a hit's push counted in the
    next bar, and the number of 4/4 bars."""
    midi = mido.MidiFile(str(path))
    per_beat, now, pedal = midi.ticks_per_beat, 0, None
    down: dict[int, list[int]] = {}
    notes: list[list[float]] = []
    pedalled: list[tuple[float, float]] = []
    for message in mido.merge_tracks(midi.tracks):
        now += message.time
        beat = now / per_beat
        if message.type == "note_on" and message.velocity:
            down.setdefault(message.note, []).append(len(notes))
            notes.append([beat, beat + 4.0])
        elif message.type in ("note_on", "note_off") and down.get(message.note):
            notes[down[message.note].pop(0)][1] = beat
        elif message.type == "control_change" and message.control == 64:
            if message.value >= 64 and pedal is None:
                pedal = beat
            elif message.value < 64 and pedal is not None:
                pedalled.append((pedal, beat))
                pedal = None
    bars: dict[int, list[tuple[float, float]]] = {}
    for on, off in notes:
        off = max([off] + [end for start, end in pedalled if start <= off <= end])
        bar = int((on + EARLY) // 4)
        bars.setdefault(bar + 1, []).append((on - bar * 4, off - on))
    return bars, max(bars, default=0)


def passages(path: Path) -> list[tuple[int, int]]:
    """(first, last) bars of each stop-time passage in a part."""
    bars, count = key_bars(path)
    hit = [False] + [any(p < LATE for p, _ in bars.get(b, []))
                     and all((p < LATE and held <= RINGS) or p >= PICKUP for p, held in bars[b])
                     for b in range(1, count + 1)]
    found, bar = [], 2
    while bar <= count:
        if not hit[bar]:
            bar += 1
            continue
        end = bar
        while end + 1 <= count and hit[end + 1]:
            end += 1
        chords = len({round(p * 2) for p, _ in bars.get(bar - 1, [])})
        if end > bar and not hit[bar - 1] and chords >= 2:
            found.append((bar, end))
        bar = end + 1
    return found


def drum_bars(path: Path) -> dict[int, list[int]]:
    """Bar (from 1) → the drum notes played in it (from a 32nd before its line)."""
    midi = mido.MidiFile(str(path))
    now = 0
    bars: dict[int, list[int]] = {}
    for message in mido.merge_tracks(midi.tracks):
        now += message.time
        if message.type == "note_on" and message.velocity and message.channel == DRUMS:
            bars.setdefault(int((now / midi.ticks_per_beat + 0.125) // 4) + 1, []).append(message.note)
    return bars


def measure(model_dir: Path, stop_time: bool, found: dict[Path, list[tuple[int, int]]]) -> Played:
    played = Played([], 0, [])
    with tempfile.TemporaryDirectory() as tmp:
        for part, runs in found.items():
            for seed in SEEDS:
                out = Path(tmp) / "drums.mid"
                render(part, out, model_dir=model_dir, seed=seed, settings=EngineSettings(stop_time=stop_time))
                bars = drum_bars(out)
                for first, last in runs:
                    for bar in range(first + 1, last + 1):
                        played.notes.append(len(bars.get(bar, [])))
                        played.answered += ANSWER <= set(bars.get(bar, []))
                    played.after.append(len(bars.get(last + 1, [])))
    return played


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=Path, nargs="?", default=REPO / "models" / "groove-vae")
    args = parser.parse_args(argv)
    found = {part: runs for part in sorted(PARTS.glob("*/*.mid")) if (runs := passages(part))}
    print(f"{sum(map(len, found.values()))} stop-time passages in {len(found)} parts, seeds {SEEDS}:")
    for part, runs in found.items():
        print(f"  {part.relative_to(PARTS).with_suffix('')}: bars " + ", ".join(f"{a}-{b}" for a, b in runs))
    print("\n| loop.stop_time | passage bars from the second hit | drum notes a bar: mean / most | "
          "with a crash and a kick | drum notes in the bar after: mean / fewest |")
    print("|---|---|---|---|---|")
    if not found:
        raise SystemExit("stoptime: no stop-time passage in the reviewers' parts")
    for on in (False, True):
        p = measure(args.model_dir, on, found)
        print(f"| {'on' if on else 'off'} | {len(p.notes)} | {statistics.mean(p.notes):.1f} / {max(p.notes)} | "
              f"{p.answered} | {statistics.mean(p.after):.1f} / {min(p.after)} |")


if __name__ == "__main__":
    main()

"""How closely the groove memory hears what the player is playing, over the reviewers' parts.

    python -m training.following [PARTS_DIR]

Every keyboard part in training/review_parts (or PARTS_DIR's ``*/*.mid``) is played into the
box's own looper (appliance/core/looper.py, the default memory; no model, no engine, bar 1 at
tick 0). At every beat, half a beat in, it compares the groove the looper holds with the steps
of the 2-bar pass being played, all of it, as the file has them (Jaccard overlap of the two sets
of steps). The figures, pooled over beats:

- all beats;
- beats of a pass that changes (sharing under 0.3 of its steps with the pass before: a new
  section, a section coming back, a break);
- of those, passes that play an earlier pass again (0.6 or more in common with one before the
  pass before: the verse after a chorus, the chorus again);
- beats of the other passes (the groove goes on).

A drummer who knows the song hears a section that comes back at once; the figures say how
far the box is from that, and nothing about the model.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np

from appliance.core.groove import HIT, STEPS, STEPS_PER_BEAT
from appliance.core.looper import Looper

PARTS = Path(__file__).resolve().parent / "review_parts"
CHANGE = 0.3   #: a pass sharing less than this with the pass before changes
AGAIN = 0.6    #: ... and plays an earlier pass again when it shares this much with one


@dataclass(frozen=True)
class Beat:
    """One beat of a part: how much of the pass being played the looper's groove holds."""

    overlap: float
    changes: bool    #: the pass changes (shares < CHANGE with the pass before)
    again: bool      #: ... and plays an earlier pass again


def onsets(path: Path) -> list[tuple[float, float]]:
    """Note-ons off the drum channel: (position in steps from tick 0, velocity 0..1), in order."""
    midi = mido.MidiFile(path)
    out = []
    for track in midi.tracks:
        ticks = 0
        for message in track:
            ticks += message.time
            if message.type == "note_on" and message.velocity and message.channel != 9:
                out.append((ticks / midi.ticks_per_beat * STEPS_PER_BEAT, message.velocity / 127))
    return sorted(out)


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def beats(path: Path) -> list[Beat]:
    """Every beat of a part in a pass with notes (see the module's doc)."""
    notes = onsets(path)
    if not notes:
        return []
    passes = int(notes[-1][0] // STEPS) + 1
    played = np.zeros((passes, STEPS), bool)
    for position, _ in notes:
        step = int(round(position))
        played[min(step // STEPS, passes - 1), step % STEPS] = True
    looper, i, out = Looper(), 0, []
    for beat in range(passes * STEPS // STEPS_PER_BEAT):
        now = beat * STEPS_PER_BEAT + STEPS_PER_BEAT / 2
        while i < len(notes) and notes[i][0] < now:
            looper.record(*notes[i])
            i += 1
        looper.advance(now)
        k = beat * STEPS_PER_BEAT // STEPS
        if not played[k].any():
            continue
        changes = k > 0 and overlap(played[k], played[k - 1]) < CHANGE
        again = changes and any(overlap(played[k], played[j]) >= AGAIN for j in range(k - 1))
        out.append(Beat(overlap(looper.groove.steps[:, HIT] > 0, played[k]), changes, again))
    return out


def figures(parts: list[Path]) -> dict[str, tuple[float, int]]:
    """Mean overlap and beats counted: all, changes, a pass again, the groove going on."""
    every = [beat for part in parts for beat in beats(part)]
    kinds = {"all beats": every, "passes that change": [b for b in every if b.changes],
             "... that play an earlier pass again": [b for b in every if b.again],
             "passes that go on": [b for b in every if not b.changes]}
    return {name: (float(np.mean([b.overlap for b in chosen])) if chosen else float("nan"), len(chosen))
            for name, chosen in kinds.items()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("parts", type=Path, nargs="?", default=PARTS)
    args = p.parse_args(argv)
    parts = sorted(args.parts.glob("*/*.mid"))
    print(f"{len(parts)} parts under {args.parts}")
    print("| beats | the looper's groove against the pass being played (Jaccard) | beats |")
    print("|---|---|---|")
    for name, (mean, count) in figures(parts).items():
        print(f"| {name} | {mean:.4f} | {count} |")


if __name__ == "__main__":
    main()

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
far the box is from that, and nothing about the model. A second column does the same for the
groove the model hears (``Looper.assumed``: the first pass's bars ahead, and a new section's,
as a repeat of what was heard); ``--second-bars`` looks at a changing pass's second bar only,
as heard at the end of its first; ``--ahead`` looks forward, as the drums play: at every beat's
end, the steps of the next two beats and of the next 32 steps (a loop) in the groove and in what
the model hears, against what the player then plays there.
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
    heard: float     #: ... and of the groove the model hears (``Looper.assumed``: a new section's bars ahead as its repeat)
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
    notes, played = played_passes(path)
    if not notes:
        return []
    passes = len(played)
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
        out.append(Beat(overlap(looper.groove.steps[:, HIT] > 0, played[k]),
                        overlap(looper.assumed.steps[:, HIT] > 0, played[k]), changes, again))
    return out


def figures(parts: list[Path]) -> dict[str, tuple[float, float, int]]:
    """Mean overlap (the groove, what the model hears) and beats counted: all, changes, a pass
    again, the groove going on."""
    every = [beat for part in parts for beat in beats(part)]
    kinds = {"all beats": every, "passes that change": [b for b in every if b.changes],
             "... that play an earlier pass again": [b for b in every if b.again],
             "passes that go on": [b for b in every if not b.changes]}
    return {name: (float(np.mean([b.overlap for b in chosen])) if chosen else float("nan"),
                   float(np.mean([b.heard for b in chosen])) if chosen else float("nan"), len(chosen))
            for name, chosen in kinds.items()}


def played_passes(path: Path) -> tuple[list[tuple[float, float]], np.ndarray]:
    """A part's note-ons and, per 2-bar pass, the steps it plays."""
    notes = onsets(path)
    passes = int(notes[-1][0] // STEPS) + 1 if notes else 0
    played = np.zeros((passes, STEPS), bool)
    for position, _ in notes:
        step = int(round(position))
        played[min(step // STEPS, passes - 1), step % STEPS] = True
    return notes, played


def second_bars(parts: list[Path]) -> np.ndarray:
    """For each pass that changes: at its first bar's fourth beat (half in), the Jaccard overlap of
    its second bar as played with that bar in the groove and in what the model hears, and their
    step counts (groove, heard, played): the rows of ``--second-bars``."""
    rows = []
    bar2 = slice(STEPS // 2, STEPS)
    for path in parts:
        notes, played = played_passes(path)
        looper, i = Looper(), 0
        for beat in range(len(played) * STEPS // STEPS_PER_BEAT):
            now = beat * STEPS_PER_BEAT + STEPS_PER_BEAT / 2
            while i < len(notes) and notes[i][0] < now:
                looper.record(*notes[i])
                i += 1
            looper.advance(now)
            k, b = divmod(beat, STEPS // STEPS_PER_BEAT)
            want = played[k][bar2] if k else np.zeros(0, bool)
            if b != 3 or not want.any() or overlap(played[k], played[k - 1]) >= CHANGE:
                continue
            groove, heard = looper.groove.steps[bar2, HIT] > 0, looper.assumed.steps[bar2, HIT] > 0
            rows.append((overlap(groove, want), overlap(heard, want), groove.sum(), heard.sum(), want.sum()))
    return np.array(rows, float).reshape(-1, 5)


def ahead(parts: list[Path]) -> np.ndarray:
    """At every beat's end (of a pass with notes, after the first pass): the Jaccard overlap of the
    next two beats' and the next loop's steps in the groove and in what the model hears with what
    the player then plays there, and whether the pass changes (the rows of ``--ahead``: groove and
    heard over two beats, groove and heard over a loop, changes)."""
    rows = []
    for path in parts:
        notes, played = played_passes(path)
        flat = played.reshape(-1)
        looper, i = Looper(), 0
        for beat in range(len(played) * STEPS // STEPS_PER_BEAT):
            now = (beat + 1) * STEPS_PER_BEAT - 0.5
            while i < len(notes) and notes[i][0] < now:
                looper.record(*notes[i])
                i += 1
            if looper.pass_ends(now):   # (as the engine: between loop points the looper hears notes only)
                looper.advance(now)
            k = beat * STEPS_PER_BEAT // STEPS
            start = (beat + 1) * STEPS_PER_BEAT
            if k == 0 or not played[k].any() or start + STEPS > flat.size:
                continue
            row = []
            for span in (2 * STEPS_PER_BEAT, STEPS):
                at = np.arange(start, start + span)
                want = flat[at]
                row += [overlap(looper.groove.steps[at % STEPS, HIT] > 0, want),
                        overlap(looper.assumed.steps[at % STEPS, HIT] > 0, want)]
            later = played[min(k + 1, len(played) - 1)]
            row.append(float(overlap(played[k], played[k - 1]) < CHANGE or overlap(later, played[k]) < CHANGE))
            rows.append(row)
    return np.array(rows, float).reshape(-1, 5)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("parts", type=Path, nargs="?", default=PARTS)
    p.add_argument("--second-bars", action="store_true",
                   help="a changing pass's second bar, heard at its first bar's end: the groove's and the model's")
    p.add_argument("--ahead", action="store_true",
                   help="the next two beats and the next loop, heard at each beat's end, against what is then played")
    args = p.parse_args(argv)
    parts = sorted(args.parts.glob("*/*.mid"))
    print(f"{len(parts)} parts under {args.parts}")
    if args.ahead:
        rows = ahead(parts)
        print("| beats | next two beats: groove / heard | next loop: groove / heard | beats |")
        print("|---|---|---|---|")
        for name, chosen in (("all", rows), ("around a change", rows[rows[:, 4] > 0]), ("the rest", rows[rows[:, 4] == 0])):
            m = chosen[:, :4].mean(axis=0)
            print(f"| {name} | {m[0]:.4f} / {m[1]:.4f} | {m[2]:.4f} / {m[3]:.4f} | {len(chosen)} |")
        return
    if args.second_bars:
        rows = second_bars(parts)
        acted = rows[rows[:, 0] != rows[:, 1]]
        for name, chosen in (("changing passes", rows), ("... where what the model hears is not the groove", acted)):
            print(f"{name}: {len(chosen)}; the second bar as played against the groove's {chosen[:, 0].mean():.3f} "
                  f"and what the model hears {chosen[:, 1].mean():.3f} (Jaccard); steps {chosen[:, 2].mean():.2f} / "
                  f"{chosen[:, 3].mean():.2f} / played {chosen[:, 4].mean():.2f}; better {int((chosen[:, 1] > chosen[:, 0]).sum())}, "
                  f"worse {int((chosen[:, 1] < chosen[:, 0]).sum())}")
        return
    print("| beats | the looper's groove against the pass being played (Jaccard) | what the model hears | beats |")
    print("|---|---|---|---|")
    for name, (mean, heard, count) in figures(parts).items():
        print(f"| {name} | {mean:.4f} | {heard:.4f} | {count} |")


if __name__ == "__main__":
    main()

"""How the drummer answers a pianist's one-off run: once, or for the next 8 bars.

    python -m training.flourish [models/groove-vae]

Twenty bars of steady comping (chords on the eighths with the backbeat accented, or on the
quarters), one of them a loud sixteenth run (velocity 100 rising to 115) instead: bar 7 or 8,
the loop's bar 1 or 2. Rendered by `groovebox render`'s own code with seeds 1–3 (the box's
defaults), with ``loop.forget_once`` at its default (a step played in one pass only is gone
after one pass that played its bar without it) and at 0 (such a step lasts ``forget_passes``,
as any other). For each: snare hits in the bar right after the run (the same pass: no memory
rule reaches it; after bar 7 it is bar 8, a phrase end, whose made fill answers the run), next to
the same bar without the run and with the run but ``loop.fill_every`` 0; and per bar in the bars after the run's pass (bars 9–19, the
fill bars left out): their mean and the most in one bar, next to the same part without the run.
Needs onnxruntime, numpy and mido only.
"""
from __future__ import annotations

import argparse
from pathlib import Path
import tempfile

import mido
import numpy as np

from appliance.core.engine import EngineSettings
from appliance.core.groove import GM_NOTES, VOICES
from appliance.core.render import render

REPO = Path(__file__).resolve().parent.parent
BARS = 20
SEEDS = (1, 2, 3)
STYLES = {"eighths": (range(0, 16, 2), {4: 88, 12: 88}, 66), "quarters": (range(0, 16, 4), {0: 80, 8: 80}, 64)}
SNARE = GM_NOTES[VOICES.index("snare")]
AFTER = [bar for bar in range(8, BARS - 1) if bar % 4 != 3]   #: bars 9–19 (from 0: 8–18), not the fill bars


def comping_with_a_run(path: Path, style: str = "eighths", run_bar: int | None = 7, bars: int = BARS) -> Path:
    """Chords in ``style`` for ``bars`` bars; bar ``run_bar`` (from 0; None = none) is a loud
    sixteenth run instead. Written at 480 ticks a beat."""
    steps, accents, level = STYLES[style]
    events = []
    for bar in range(bars):
        run = bar == run_bar
        for step in (range(16) if run else steps):
            t = (bar * 16 + step) * 120
            velocity = 100 + step if run else accents.get(step, level)
            for note in ((72 + step % 8,) if run else (60, 64, 67)):
                events += [(t, mido.Message("note_on", note=note, velocity=velocity)),
                           (t + 100, mido.Message("note_off", note=note))]
    track = mido.MidiTrack()
    now = 0
    for t, message in sorted(events, key=lambda e: (e[0], e[1].type == "note_on")):
        track.append(message.copy(time=t - now))
        now = t
    midi = mido.MidiFile(ticks_per_beat=480)
    midi.tracks.append(track)
    midi.save(str(path))
    return path


def snare_per_bar(path: Path, bars: int = BARS) -> list[int]:
    """Snare note-ons in each bar of a rendered file's drum track."""
    midi = mido.MidiFile(str(path))
    out = [0] * bars
    t = 0
    for m in midi.tracks[1]:
        t += m.time
        if m.type == "note_on" and m.velocity and m.note == SNARE:
            out[min(bars - 1, round(t / (midi.ticks_per_beat / 4)) // 16)] += 1
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path, nargs="?", default=REPO / "models" / "groove-vae")
    args = p.parse_args(argv)
    once = EngineSettings().forget_once
    print(f"| comping | run in | the bar after it: snare, seeds {SEEDS[0]}–{SEEDS[-1]}: with the run / without / "
          f"fill_every 0 | bars 9–19: snare a bar, "
          f"forget_once {once}: mean / most | forget_once 0 | no run |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        keys, drums = Path(tmp) / "keys.mid", Path(tmp) / "drums.mid"
        for style in STYLES:
            for run_bar in (6, 7):
                cells: list[str] = []
                answer: dict = {}
                for run, forget_once, fill_every in ((run_bar, once, 4), (run_bar, 0, 4), (None, once, 4),
                                                     (run_bar, once, 0)):
                    comping_with_a_run(keys, style, run)
                    counts = []
                    for seed in SEEDS:
                        render(keys, drums, model_dir=args.model_dir, seed=seed,
                               settings=EngineSettings(forget_once=forget_once, fill_every=fill_every))
                        snare = snare_per_bar(drums)
                        counts += [snare[bar] for bar in AFTER]
                        if forget_once == once:
                            answer.setdefault((run, fill_every), []).append(snare[run_bar + 1])
                    if fill_every:
                        cells.append(f"{np.mean(counts):.1f} / {max(counts)}")
                cells.insert(0, " / ".join(", ".join(map(str, answer[key]))
                                           for key in ((run_bar, 4), (None, 4), (run_bar, 0))))
                print(f"| {style} | bar {run_bar + 1} (the loop's bar {run_bar % 2 + 1}) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

"""Render speed: the whole engine on a virtual clock, the shipped int8 model, bars per second."""
from __future__ import annotations

from pathlib import Path
import resource
import statistics
import tempfile
import time

import mido

from appliance.box.cli import default_model_dir
from appliance.core.generator import Controls
from appliance.core.render import render

PHRASE = Path(__file__).resolve().parent.parent / "examples" / "keyboard_phrase.mid"
RUNS = 5


def main() -> None:
    speeds, generations, misses = [], 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(RUNS):
            result = render(PHRASE, Path(tmp) / "out.mid", model_dir=default_model_dir(), passes=8, seed=seed)
            speeds.append(result.bars_per_second)
            generations += result.stats["generations"]
            misses += result.stats["misses"]
    bars = result.bars
    real_time_bars_per_second = result.bpm / 60 / 4
    median = statistics.median(speeds)
    print(f"render {bars} bars of examples/keyboard_phrase.mid ({RUNS} runs, int8): "
          f"median {median:.0f} bars/s (min {min(speeds):.0f}), "
          f"{median / real_time_bars_per_second:.0f}x real time at {result.bpm:g} BPM; "
          f"{generations} patterns generated, {misses} missed swap points")

    styled()
    silence()


def styled() -> None:
    """The same renders with a style: each pattern decodes z twice (the level kept, styles.py)."""
    speeds = {}
    with tempfile.TemporaryDirectory() as tmp:
        for style in ("none", "bossa"):
            speeds[style] = statistics.median(
                render(PHRASE, Path(tmp) / "out.mid", model_dir=default_model_dir(), passes=8, seed=seed,
                       controls=Controls(style=style)).bars_per_second for seed in range(RUNS))
    print(f"render with --style bossa: median {speeds['bossa']:.0f} bars/s against {speeds['none']:.0f} "
          f"without a style ({speeds['bossa'] / speeds['none']:.2f}x, in this run)")


SILENT_BARS = 100_000


def silence() -> None:
    """One note, 100,000 bars of silence, one note: the render skips the silence."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "silence.mid"
        bar = 4 * 480
        track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000, time=0),
                                mido.Message("note_on", note=60, velocity=90, time=0),
                                mido.Message("note_off", note=60, time=240),
                                mido.Message("note_on", note=62, velocity=90, time=SILENT_BARS * bar - 240),
                                mido.Message("note_off", note=62, time=240)])
        midi = mido.MidiFile(type=1, ticks_per_beat=480)
        midi.tracks.append(track)
        midi.save(str(source))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        render(source, Path(tmp) / "out.mid", model_dir=default_model_dir(), seed=1)
        seconds = time.perf_counter() - started
        grown = max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        size = (Path(tmp) / "out.mid").stat().st_size
    print(f"render 2 notes {SILENT_BARS:,} bars apart: {seconds:.2f} s, peak memory +{grown:.0f} MB, "
          f"{size / 1024:.1f} KB written (the silence is skipped)")


if __name__ == "__main__":
    main()

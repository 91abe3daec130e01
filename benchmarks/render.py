"""Render speed: the whole engine on a virtual clock, the shipped int8 model, bars per second."""
from __future__ import annotations

from pathlib import Path
import statistics
import tempfile

from appliance.box.cli import default_model_dir
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


if __name__ == "__main__":
    main()

"""training/pianists.py: recorded-like piano parts, and what render makes of their timing."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from appliance.core.render import drifts_from, final_chord, read_performance
from training import pianists


def _performance(part: pianists.Part, tmp_path: Path):
    path = tmp_path / "part.mid"
    pianists.midi_file(part).save(str(path))
    return read_performance(path)


def test_the_parts_are_the_same_every_time(tmp_path: Path) -> None:
    for n, part in enumerate(pianists.PARTS[:3]):
        pianists.midi_file(part).save(str(tmp_path / f"a{n}.mid"))
        pianists.midi_file(part).save(str(tmp_path / f"b{n}.mid"))
        assert (tmp_path / f"a{n}.mid").read_bytes() == (tmp_path / f"b{n}.mid").read_bytes()


def test_a_part_played_to_a_click_is_human_but_on_the_grid_and_one_without_drifts(tmp_path: Path) -> None:
    """Every part to a click: notes off the sixteenths by a pianist's spread, and render hears no
    drift; every part without one: render hears the drift."""
    for part in pianists.PARTS:
        performance = _performance(part, tmp_path)
        onsets = np.array([p for p, m in performance.notes if m.type == "note_on" and m.velocity])
        if part.to_a_click:
            early_or_late = onsets[: len(onsets) * 3 // 4] - np.round(onsets[: len(onsets) * 3 // 4])  # before the ritardando
            assert 0.02 < early_or_late.std() < 0.3, (part.name, early_or_late.std())
            assert drifts_from(performance) is None, part.name
        else:
            assert drifts_from(performance) is not None, part.name


def test_every_part_ends_on_a_held_chord_after_a_ritardando(tmp_path: Path) -> None:
    for part in pianists.PARTS:
        performance = _performance(part, tmp_path)
        chord = final_chord(performance)
        assert chord is not None, part.name
        bars_in = chord.start / 16
        assert part.bars - part.held_bars - 1 <= bars_in < part.bars, (part.name, bars_in)   # late, not lost

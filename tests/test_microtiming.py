"""training/microtiming.py: a part played at several tempos with the same ms timing, and the
drums' micro-timing in ms that the real model plays over it."""
from pathlib import Path

import mido
import numpy as np
import pytest

from training import microtiming

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("bpm", [60, 140])
def test_the_part_is_off_the_grid_by_the_same_milliseconds_at_any_tempo(tmp_path: Path, bpm: int) -> None:
    path = tmp_path / "keys.mid"
    microtiming.played_part(path, bpm)
    midi = mido.MidiFile(str(path))
    ticks, onsets = 0, []
    for message in midi.tracks[0]:
        ticks += message.time
        if message.type == "note_on" and message.velocity:
            onsets.append(ticks / midi.ticks_per_beat)
    beats = np.array(onsets)
    off_ms = (beats * 2 - np.round(beats * 2)) / 2 * 60000.0 / bpm     # from the nearest eighth
    assert len(onsets) > 16 * 10
    assert np.std(off_ms[beats > 0.5]) == pytest.approx(microtiming.JITTER_MS, rel=0.2)


def test_the_drums_do_not_loosen_in_ms_at_a_slow_tempo() -> None:
    """Over the same player, the drums' median |offset| in ms at 60 BPM is at most twice that at
    140 (the same step offsets would be 2.3 ×) and tighter than GMD's drummers' ~20 ms."""
    model = REPO / "models" / "groove-vae"
    slow, fast = (microtiming.ms(float(np.median(microtiming.box_offsets(model, bpm))), bpm) for bpm in (60, 140))
    assert slow <= 2.0 * fast and slow < 20.0, (slow, fast)

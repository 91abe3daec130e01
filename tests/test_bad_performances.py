"""Bad performances through the real engine and model on a virtual clock: all rests, a single
note, only ghost notes, a thousand notes in one step. Each gives a sensible pattern, no traceback."""
from pathlib import Path

import mido
import numpy as np
import pytest

from appliance.core.groove import HIT, STEPS, VELOCITY
from appliance.core.render import render
from tests.conftest import make_engine

STEP = 0.125   # seconds per step at 120 BPM
PASS = STEPS * STEP
SENSIBLE = range(2, 81)   #: hits per 2 bars: not silent, at most twice what GMD drummers play


def run(engine, end: float, notes=()) -> list:
    pending = sorted(notes, key=lambda item: item[0])
    events, now = [], 0.0
    while now < end:
        while pending and pending[0][0] <= now:
            t, message = pending.pop(0)
            engine.handle(message, t)
        events.extend(engine.tick(now))
        now += 0.01
    return events


def sensible(engine, events) -> None:
    pattern = engine.pattern
    assert pattern.hits in SENSIBLE, f"{pattern.hits} hits"
    velocities = pattern.steps[..., VELOCITY][pattern.steps[..., HIT] > 0]
    assert ((velocities > 0) & (velocities <= 1)).all()
    assert any(e.message.type == "note_on" for e in events[-200:]), "the drums play on"
    ons = sum(1 for e in events if e.message.type == "note_on")
    assert ons == sum(1 for e in events if e.message.type == "note_off") or ons > 0


def test_all_rests(generator) -> None:
    engine = make_engine(generator)
    rests = [(k * STEP, mido.Message("note_off", note=60 + k % 12)) for k in range(0, 4 * STEPS, 3)]
    rests += [(k * STEP + 0.001, mido.Message("note_on", note=60, velocity=0)) for k in range(0, 4 * STEPS, 5)]
    events = run(engine, 4 * PASS, rests)
    assert engine.groove.is_empty
    sensible(engine, events)


def test_a_single_note(generator) -> None:
    engine = make_engine(generator)
    events = run(engine, 4 * PASS, [(0.003, mido.Message("note_on", note=48, velocity=100))])
    assert engine.groove.hits == 1
    sensible(engine, events)


def test_a_groove_of_only_ghost_notes(generator) -> None:
    engine = make_engine(generator)
    ghosts = [(k * STEP + 0.002, mido.Message("note_on", note=60 + k % 5, velocity=1 + k % 8))
              for k in range(0, 4 * STEPS, 2)]
    events = run(engine, 4 * PASS, ghosts)
    assert engine.groove.hits == 16 and engine.groove.steps[:, VELOCITY].max() < 0.07
    sensible(engine, events)


def test_a_thousand_notes_in_one_step(generator) -> None:
    engine = make_engine(generator)
    rng = np.random.default_rng(0)
    storm = [((4 + float(rng.uniform(-0.4, 0.4))) * STEP,
              mido.Message("note_on", note=int(rng.integers(0, 128)), velocity=int(rng.integers(1, 128))))
             for _ in range(1000)]
    events = run(engine, 3 * PASS, storm)
    assert engine.groove.hits == 1                                 # one step, as loud as its loudest note
    assert engine.groove.steps[4, VELOCITY] == pytest.approx(max(m.velocity for _, m in storm) / 127, abs=1e-6)
    sensible(engine, events)
    assert engine.stats()["failures"] == 0


@pytest.mark.parametrize("kind", ["single", "ghosts", "storm"])
def test_bad_performances_render(kind: str, model_dir: Path, tmp_path: Path) -> None:
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000, time=0)])
    if kind == "single":
        track += [mido.Message("note_on", note=60, velocity=90), mido.Message("note_off", note=60, time=100)]
    elif kind == "ghosts":
        for i in range(32):
            track += [mido.Message("note_on", note=60, velocity=3, time=0 if i == 0 else 140),
                      mido.Message("note_off", note=60, time=100)]
    else:
        track += [mido.Message("note_on", note=i % 128, velocity=1 + i % 127, time=0) for i in range(1000)]
        track += [mido.Message("note_off", note=i % 128, time=60 if i == 0 else 0) for i in range(1000)]
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    midi.tracks.append(track)
    midi.save(str(tmp_path / "in.mid"))
    result = render(tmp_path / "in.mid", tmp_path / "out.mid", model_dir=model_dir, seed=1, passes=2)
    assert result.pattern.hits in SENSIBLE
    drums = [m for m in mido.MidiFile(str(tmp_path / "out.mid")).tracks[1] if m.type == "note_on"]
    assert drums

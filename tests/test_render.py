"""`groovebox render`: deterministic, a drum file any DAW opens, and bad files give one clear line."""
from pathlib import Path
import subprocess
import sys

import mido
import pytest

from appliance.box.cli import main
from appliance.core.groove import GM_NOTES
from appliance.core.render import render

REPO = Path(__file__).resolve().parent.parent
PHRASE = REPO / "examples" / "keyboard_phrase.mid"


def keyboard_file(path: Path, *, kind: int = 1, channel: int = 0, tempos=(500000,), notes=8) -> Path:
    """A small keyboard file: one note a beat; a tempo change halfway when two tempos are given."""
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=tempos[0], time=0)])
    for i in range(notes):
        if len(tempos) > 1 and i == notes // 2:
            track.append(mido.MetaMessage("set_tempo", tempo=tempos[1], time=0))
        track.append(mido.Message("note_on", channel=channel, note=60 + i, velocity=90, time=0 if i == 0 else 240))
        track.append(mido.Message("note_off", channel=channel, note=60 + i, velocity=0, time=240))
    midi = mido.MidiFile(type=kind, ticks_per_beat=480)
    midi.tracks.append(track)
    if kind == 2:
        midi.tracks.append(mido.MidiTrack([mido.Message("note_on", note=40, velocity=50, time=0)]))
    midi.save(str(path))
    return path


def drum_notes(path: Path) -> list[mido.Message]:
    midi = mido.MidiFile(str(path))
    assert midi.type == 1 and len(midi.tracks) == 2
    return [m for m in midi.tracks[1] if m.type in ("note_on", "note_off")]


def test_render_is_deterministic_with_a_seed_and_writes_only_drum_notes(model_dir: Path, tmp_path: Path) -> None:
    first = render(PHRASE, tmp_path / "a.mid", model_dir=model_dir, passes=2, seed=5)
    render(PHRASE, tmp_path / "b.mid", model_dir=model_dir, passes=2, seed=5)
    assert (tmp_path / "a.mid").read_bytes() == (tmp_path / "b.mid").read_bytes()
    notes = drum_notes(tmp_path / "a.mid")
    assert any(m.type == "note_on" and m.velocity > 0 for m in notes)
    assert {m.note for m in notes} <= set(GM_NOTES)
    assert {m.channel for m in notes} == {9}
    ons = sum(1 for m in notes if m.type == "note_on")
    assert ons == sum(1 for m in notes if m.type == "note_off")
    keyboard = [m for m in mido.MidiFile(str(tmp_path / "a.mid")).tracks[0] if m.type == "note_on"]
    assert len(keyboard) == 2 * sum(1 for m in mido.MidiFile(str(PHRASE)).tracks[0] if m.type == "note_on")
    assert first.bars == 8 and first.stats["misses"] == 0


def test_the_cli_prints_the_grid_and_where_the_file_went(model_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "drums.mid"
    assert main(["render", str(PHRASE), "-o", str(out), "--seed", "1", "--model", str(model_dir)]) == 0
    printed = capsys.readouterr().out
    assert "kick" in printed and "ride" in printed and str(out) in printed and "bars/s" in printed
    assert out.is_file()


@pytest.mark.parametrize("kind", [0, 1, 2])
def test_type_0_1_and_2_files_render(kind: int, model_dir: Path, tmp_path: Path) -> None:
    source = keyboard_file(tmp_path / f"type{kind}.mid", kind=kind)
    result = render(source, tmp_path / "out.mid", model_dir=model_dir, seed=1)
    assert result.bars == 2
    assert drum_notes(tmp_path / "out.mid")


def test_a_tempo_change_keeps_notes_in_their_place_in_the_bar(model_dir: Path, tmp_path: Path) -> None:
    source = keyboard_file(tmp_path / "tempo.mid", tempos=(500000, 300000))
    result = render(source, tmp_path / "out.mid", model_dir=model_dir, seed=1)
    assert result.bpm == 120
    keyboard = mido.MidiFile(str(tmp_path / "out.mid")).tracks[0]
    ticks, onsets = 0, []
    for message in keyboard:
        ticks += message.time
        if message.type == "note_on":
            onsets.append(ticks)
    assert onsets == [i * 480 for i in range(8)]  # one a beat, before and after the change


def test_a_file_with_only_drums_on_channel_10_is_heard_as_the_groove(model_dir: Path, tmp_path: Path, caplog) -> None:
    source = keyboard_file(tmp_path / "drums.mid", channel=9)
    render(source, tmp_path / "out.mid", model_dir=model_dir, seed=1)
    assert "only on channel 10" in caplog.text


@pytest.mark.parametrize("content, message", [
    (b"this is not a midi file at all", "not a MIDI file"),
    (None, "no notes to hear"),
])
def test_bad_files_give_one_clear_line_and_no_traceback(content, message, model_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "bad.mid"
    if content is None:
        midi = mido.MidiFile()
        midi.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000)]))
        midi.save(str(source))
    else:
        source.write_bytes(content)
    done = subprocess.run([sys.executable, "-m", "appliance.box.cli", "render", str(source), "-o",
                           str(tmp_path / "o.mid"), "--model", str(model_dir)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert message in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert len(done.stdout.strip().splitlines()) == 1


def test_a_missing_file_and_a_missing_model_are_one_line_each(tmp_path: Path, caplog) -> None:
    cases = [(["render", str(tmp_path / "nope.mid")], "no such file"),
             (["render", str(PHRASE), "--model", str(tmp_path)], "lacks encoder.onnx"),
             (["render", str(PHRASE), "--bpm", "500"], "500 BPM is not in 40..300"),
             (["render", str(PHRASE), "--density", "3"], "density 3.0 is not in 0..1")]
    for argv, message in cases:
        caplog.clear()
        assert main(argv + ["-o", str(tmp_path / "o.mid")]) == 2
        errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
        assert len(errors) == 1 and message in errors[0]

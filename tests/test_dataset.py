"""GMD → windows → grooves: the rules on hand-made notes, then on real GMD files; bad input."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import mido
import numpy as np
import pytest

from appliance.core.groove import HIT, NUM_VOICES, OFFSET, STEPS, VELOCITY, VOICES
from training import dataset as ds

KICK, SNARE, CLOSED = VOICES.index("kick"), VOICES.index("snare"), VOICES.index("closed_hat")


def gmd_root() -> Path:
    root = ds.gmd_dir()
    if not (root / "info.csv").is_file():
        pytest.skip(f"GMD_DIR {root} is missing (no info.csv): the real-data tests need the Groove MIDI "
                    "Dataset; set GMD_DIR to its folder")
    return root


def test_pitch_map_covers_the_issue_mapping() -> None:
    expected = {36: "kick", 38: "snare", 37: "snare", 40: "snare", 42: "closed_hat", 22: "closed_hat",
                44: "closed_hat", 46: "open_hat", 26: "open_hat", 43: "low_tom", 58: "low_tom",
                47: "mid_tom", 45: "mid_tom", 50: "high_tom", 48: "high_tom", 49: "crash", 52: "crash",
                55: "crash", 57: "crash", 51: "ride", 53: "ride", 59: "ride"}
    assert ds.PITCH_TO_VOICE_NAME == expected


def test_windows_keep_the_loudest_note_and_hop_one_bar() -> None:
    notes = np.array([
        [0.0, KICK, 0.5],
        [0.2, KICK, 0.9],     # louder on the same cell: wins, with its offset
        [3.7, SNARE, 0.6],    # rounds to step 4, offset −0.3
        [16.0, CLOSED, 0.4],  # bar 2: step 16 of window 0, step 0 of window 1
        [31.6, SNARE, 0.7],   # just before bar 3: window 1's step 15 (offset −0.4), not in window 0
        [40.0, KICK, 1.0],    # reaches into bar 3 → window 1 exists (bars 2-3)
    ])
    w = ds.windows_from_notes(notes)
    assert w.shape == (2, STEPS, NUM_VOICES, 3)
    assert w[0, 0, KICK].tolist() == pytest.approx([1.0, 0.9, 0.2])
    assert w[0, 4, SNARE].tolist() == pytest.approx([1.0, 0.6, -0.3])
    assert w[0, 16, CLOSED].tolist() == pytest.approx([1.0, 0.4, 0.0])
    assert w[1, 0, CLOSED].tolist() == pytest.approx([1.0, 0.4, 0.0])
    assert w[0, :, SNARE, HIT].sum() == 1          # the late note does not wrap onto step 0
    assert w[1, 16, SNARE].tolist() == pytest.approx([1.0, 0.7, -0.4])
    assert w[1, 24, KICK, HIT] == 1.0
    assert w[0].sum() > 0 and w[..., HIT].sum() == 6


def test_flatten_takes_the_loudest_voice() -> None:
    p = np.zeros((STEPS, NUM_VOICES, 3), np.float32)
    p[0, KICK] = (1, 0.9, 0.1)
    p[0, CLOSED] = (1, 0.5, -0.2)
    p[5, SNARE] = (1, 0.3, 0.25)
    g = ds.flatten(p)
    assert g[0].tolist() == pytest.approx([1.0, 0.9, 0.1])
    assert g[5].tolist() == pytest.approx([1.0, 0.3, 0.25])
    assert g[1].tolist() == [0.0, 0.0, 0.0]
    only_hats = np.zeros(NUM_VOICES, bool)
    only_hats[CLOSED] = True
    assert ds.flatten(p, only_hats)[0].tolist() == pytest.approx([1.0, 0.5, -0.2])
    assert ds.flatten(p, only_hats)[5, HIT] == 0.0


def test_real_gmd_files_window_and_flatten() -> None:
    root = gmd_root()
    files = ds.list_files(root, "validation")[:3]
    split = ds.build_split(root, "validation", files)
    assert split.skipped == []
    for i, entry in enumerate(files):
        notes = ds.read_notes(entry.midi)
        assert len(notes) > 50 and set(np.unique(notes[:, 1]).astype(int)) <= set(range(NUM_VOICES))
        windows = ds.windows_from_notes(notes)
        assert len(windows) == int(np.floor((notes[:, 0].max() + 0.5) / 16))
        mine = split.patterns[split.file_ids == i]
        assert 0 < len(mine) <= len(windows)
        # every window holds hits, offsets and velocities are in range, hop is one bar
        assert mine[..., HIT].reshape(len(mine), -1).any(axis=1).all()
        assert np.all(np.abs(mine[..., OFFSET]) <= 0.5) and np.all((mine[..., VELOCITY] >= 0) & (mine[..., VELOCITY] <= 1))
        if len(windows) > 1:
            np.testing.assert_array_equal(windows[0, 16:], windows[1, :16])
        # each bar's notes appear in the windows: count notes landing on window 0
        rel = notes[:, 0]
        cells = {(int(np.floor(p + 0.5)), int(v)) for p, v in zip(rel, notes[:, 1]) if -0.5 <= p < 31.5}
        assert int(windows[0, ..., HIT].sum()) == len(cells)
    np.testing.assert_array_equal(split.grooves, ds.flatten(split.patterns))
    assert split.grooves[..., HIT].sum() <= split.patterns[..., HIT].sum()


def test_cache_round_trip(tmp_path: Path) -> None:
    root = gmd_root()
    small = tmp_path / "gmd"   # three real validation files behind a three-line info.csv
    small.mkdir()
    with (root / "info.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        rows = [r for r in reader if r["split"] == "validation" and r["beat_type"] == "beat"
                and r["time_signature"] == "4-4"][:3]
        fields = reader.fieldnames
    with (small / "info.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    for drummer in {r["midi_filename"].split("/")[0] for r in rows}:
        (small / drummer).symlink_to(root / drummer)
    cache = tmp_path / "cache"
    first = ds.load_split("validation", small, cache_dir=cache)
    assert len(list(cache.glob("gmd-validation-*.npz"))) == 1
    ds._LOADED.clear()     # read it back from disk, not from this process's memory
    second = ds.load_split("validation", small, cache_dir=cache)
    np.testing.assert_array_equal(first.patterns, second.patterns)
    np.testing.assert_array_equal(first.grooves, second.grooves)
    assert first.files == second.files and len(first.files) == 3


def test_augment_is_seeded_and_keeps_grooves_valid() -> None:
    root = gmd_root()
    split = ds.build_split(root, "validation", ds.list_files(root, "validation")[:2])
    pats = split.patterns[:64]
    aug = ds.Augment(p_subset=1.0, p_curve=1.0, p_jitter=1.0)
    a = ds.augment_grooves(pats, np.random.default_rng(3), aug)
    b = ds.augment_grooves(pats, np.random.default_rng(3), aug)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (len(pats), STEPS, 3)
    assert (a[..., HIT].sum(1) > 0).all()                    # never an empty groove
    assert (a[..., HIT] <= split.grooves[:64, :, HIT]).all()  # subsets only remove hits
    assert not np.array_equal(a, split.grooves[:64])
    assert np.all(np.abs(a[..., OFFSET]) <= 0.5) and np.all((a[..., VELOCITY] >= 0) & (a[..., VELOCITY] <= 1))
    assert np.all(a[..., 1:][a[..., HIT] == 0] == 0)
    none = ds.augment_grooves(pats, np.random.default_rng(3), ds.Augment.none())
    np.testing.assert_array_equal(none, split.grooves[:64])


# ---- bad input -------------------------------------------------------------------------------

def test_missing_gmd_dir_says_so(tmp_path: Path) -> None:
    with pytest.raises(ds.DatasetError, match=r"does not exist.*GMD_DIR"):
        ds.load_split("train", tmp_path / "nowhere", cache_dir=None)


def test_empty_gmd_dir_says_so(tmp_path: Path) -> None:
    with pytest.raises(ds.DatasetError, match="is empty"):
        ds.load_split("train", tmp_path, cache_dir=None)


def _tiny_gmd(root: Path, broken: bool) -> None:
    """A two-file GMD: one real-looking beat and (optionally) one broken MIDI file."""
    (root / "d").mkdir(parents=True)
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    for i in range(24):  # 3 bars of eighth-note hats, kick on the beat
        track.append(mido.Message("note_on", channel=9, note=42, velocity=80, time=0 if i == 0 else 240))
        if i % 2 == 0:
            track.append(mido.Message("note_on", channel=9, note=36, velocity=100, time=0))
    mid.save(root / "d" / "good.mid")
    (root / "d" / "bad.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01garbage" if broken else b"")
    with (root / "info.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["drummer", "session", "id", "style", "bpm", "beat_type", "time_signature",
                    "midi_filename", "audio_filename", "duration", "split"])
        w.writerow(["d", "d", "d/1", "rock", "120", "beat", "4-4", "d/good.mid", "", "6", "train"])
        w.writerow(["d", "d", "d/2", "rock", "120", "beat", "4-4", "d/bad.mid", "", "6", "train"])
        w.writerow(["d", "d", "d/3", "rock", "120", "beat", "3-4", "d/good.mid", "", "6", "train"])


def test_a_broken_midi_file_is_skipped_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _tiny_gmd(tmp_path, broken=True)
    split = ds.load_split("train", tmp_path, cache_dir=tmp_path / "cache")
    assert len(split.skipped) == 1 and "bad.mid" in split.skipped[0]
    assert len(split) == 2          # 3 bars → 2 windows from the good file
    assert "bad.mid" in caplog.text
    again = ds.load_split("train", tmp_path, cache_dir=tmp_path / "cache")  # the count survives the cache
    assert len(again.skipped) == 1


def test_only_broken_files_is_a_clear_error(tmp_path: Path) -> None:
    _tiny_gmd(tmp_path, broken=True)
    shutil.copy(tmp_path / "d" / "bad.mid", tmp_path / "d" / "good.mid")
    with pytest.raises(ds.DatasetError, match="no usable windows.*2 of 2 files broken"):
        ds.load_split("train", tmp_path, cache_dir=None)


def test_a_missing_split_is_a_clear_error(tmp_path: Path) -> None:
    _tiny_gmd(tmp_path, broken=False)
    with pytest.raises(ds.DatasetError, match="no 4/4 beat files in split 'test'"):
        ds.load_split("test", tmp_path, cache_dir=None)

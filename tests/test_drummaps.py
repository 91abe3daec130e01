"""Drum map presets: nine voices each, names forgiving, overrides, per-part channels."""
from __future__ import annotations

import pytest

from appliance.core import drummaps
from appliance.core.groove import GM_NOTES, NUM_VOICES, VOICES


@pytest.mark.parametrize("name", drummaps.names())
def test_every_preset_is_complete(name: str) -> None:
    preset = drummaps.get(name)
    assert len(preset.notes) == NUM_VOICES
    assert all(0 <= n <= 127 for n in preset.notes)
    assert preset.channels is None or len(preset.channels) == NUM_VOICES
    assert preset.source
    if not preset.confirmed:
        assert "UNCONFIRMED" in preset.source


def test_gm_is_the_default_general_midi_kit() -> None:
    assert drummaps.get("gm").notes == GM_NOTES
    notes, channels = drummaps.resolve("gm")
    assert notes == GM_NOTES and channels == (10,) * NUM_VOICES


def test_tr8s_from_its_chart() -> None:
    tr = drummaps.get("TR-8S")
    assert tr.note_for("kick") == 36 and tr.note_for("snare") == 38
    assert tr.note_for("closed_hat") == 42 and tr.note_for("open_hat") == 46
    assert (tr.note_for("low_tom"), tr.note_for("mid_tom"), tr.note_for("high_tom")) == (43, 47, 50)
    assert tr.note_for("crash") == 49 and tr.note_for("ride") == 51
    assert drummaps.get("tr_8") is tr


def test_drumlogue_and_volca_beats() -> None:
    assert drummaps.get("drumlogue").note_for("snare") == 40
    assert drummaps.get("volca-beats").note_for("high_tom") == 50


def test_per_part_channels_ignore_player_channel() -> None:
    notes, channels = drummaps.resolve("volca-drum", channel=10)
    assert channels[VOICES.index("kick")] == 1 and channels[VOICES.index("snare")] == 2
    assert 10 not in channels


def test_overrides_replace_single_voices() -> None:
    notes, channels = drummaps.resolve("tr-8s", {"ride": 53, "kick": 35}, channel=3)
    assert notes[VOICES.index("ride")] == 53 and notes[VOICES.index("kick")] == 35
    assert notes[VOICES.index("snare")] == 38 and channels == (3,) * NUM_VOICES


def test_unknown_name_suggests() -> None:
    with pytest.raises(KeyError, match="did you mean 'volca-beats'"):
        drummaps.get("volca-beat")

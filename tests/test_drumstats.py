"""Drum statistics on hand-made parts: what a drummer would count, counted right."""
import numpy as np
import pytest

from appliance.core.groove import VOICES
from training import comping, drumstats

KICK, SNARE, HAT, OPEN_HAT, TOM, CRASH = (VOICES.index(v) for v in ("kick", "snare", "closed_hat", "open_hat", "low_tom", "crash"))


def rock(bars: int, fill_every: int = 0) -> np.ndarray:
    """Notes [n, 3]: kick on 1 and 3, snare on 2 and 4 (loud) with a ghost on the 'a' of 2,
    eighth-note hats; a crash on bar 1; a two-tom fill in every fill_every-th bar."""
    notes = []
    for bar in range(bars):
        base = bar * 16
        notes += [(base + 0, KICK, 0.9), (base + 8, KICK, 0.8), (base + 4, SNARE, 1.0), (base + 12, SNARE, 1.0),
                  (base + 7.1, SNARE, 0.4)]
        notes += [(base + s, HAT, 0.6) for s in range(0, 16, 2)]
        if fill_every and bar % fill_every == fill_every - 1:
            notes += [(base + 14, TOM, 0.7), (base + 15, TOM, 0.7)]
    notes.append((0, CRASH, 1.0))
    return np.array(notes)


def test_a_rock_beat_counts_as_a_drummer_would() -> None:
    windows = drumstats.windows_from_notes(rock(16, fill_every=2), bars=16)
    assert windows.shape[0] == 8
    s = drumstats.stats(windows)
    assert s["hits_kick"] == 4 and s["hits_snare"] == 6 and s["hits_closed_hat"] == 16
    assert s["backbeat_accent"] == pytest.approx(1.0 / 0.4, rel=1e-5)
    assert s["fills_per_8_bars"] == pytest.approx(4.0)          # a fill every second bar
    assert s["fills_at_phrase_end"] == pytest.approx(0.5)       # bars 2, 4, 6, …: half end a phrase
    # phrases counted again from bar 7 (a return from a rest): bars 4, 10 and 14 end one, and
    # 3 of the 8 fills (bars 2, 4, …, 16) are there
    assert drumstats.phrase_ends(16, (6,)).nonzero()[0].tolist() == [3, 9, 13]
    assert drumstats.stats(windows, (6,))["fills_at_phrase_end"] == pytest.approx(3 / 8)
    assert s["crashes_per_8_bars"] == pytest.approx(0.5)        # one crash in 16 bars
    assert s["fills_ending_floor_tom"] == 1.0 and s["fills_ending_snare"] == 0.0
    assert s["timing_sd_steps"] == pytest.approx(np.std([0.1] * 8 + [0.0] * (int(s["hits"]) * 8 - 8)), abs=0.01)
    # windows 0 (crash) and the others differ; windows 1..7 repeat: 6 of 7 pairs identical
    assert s["identical_windows"] == pytest.approx(6 / 7)


def test_a_fills_last_stroke_is_its_last_snare_or_tom_the_lower_drum_of_two() -> None:
    high = VOICES.index("high_tom")
    bar = np.zeros((16, len(VOICES)), bool)
    assert drumstats.last_stroke(bar) is None
    bar[[12, 13], high] = True
    bar[14, SNARE] = True
    bar[15, HAT] = True                                          # a hat after it is no stroke of the fill
    assert drumstats.last_stroke(bar) == SNARE
    bar[14, TOM] = True
    assert drumstats.last_stroke(bar) == TOM                     # snare and floor tom together: the floor tom
    notes = np.array([(12, TOM, 0.8), (13, TOM, 0.8), (14, SNARE, 0.9), (16 + 12, TOM, 0.8), (16 + 14, TOM, 0.8)])
    s = drumstats.stats(drumstats.windows_from_notes(notes, bars=2))
    assert s["fills_ending_snare"] == 0.5 and s["fills_ending_floor_tom"] == 0.5
    # the first fill's last beat (12, 13, 14) rises; the second's (12, 14) is one level; no crash after
    assert s["fills_flat_last_beat"] == 0.5 and np.isnan(s["crash_after_fill"])
    with_crash = np.vstack([notes, [(16, CRASH, 0.5), (32, CRASH, 1.0)]])
    s = drumstats.stats(drumstats.windows_from_notes(with_crash, bars=3))
    assert s["crash_after_fill"] == pytest.approx(np.mean([0.5 * 127 - 0.9 * 127, 1.0 * 127 - 0.8 * 127]), abs=0.01)


def test_steps_one_drummer_cannot_play_are_counted() -> None:
    open_hat, ride, high_tom = (VOICES.index(v) for v in ("open_hat", "ride", "high_tom"))
    clean = drumstats.stats(drumstats.windows_from_notes(rock(16), bars=16))
    assert clean["two_hats_per_16_bars"] == clean["unplayable_per_16_bars"] == 0
    notes = np.concatenate([rock(16), [(2, open_hat, 0.7), (4, TOM, 0.8), (4, high_tom, 0.8), (8, ride, 0.6)]])
    s = drumstats.stats(drumstats.windows_from_notes(notes, bars=16))
    # step 2: both hats; step 4: snare and two toms; step 8: ride over the closed hat is the pedal, fine
    assert s["two_hats_per_16_bars"] == pytest.approx(1.0) and s["unplayable_per_16_bars"] == pytest.approx(2.0)


def test_velocity_spread_is_in_midi_units_and_pooled_weights_by_windows() -> None:
    windows = drumstats.windows_from_notes(np.array([(0, KICK, 0.2), (4, SNARE, 0.8)]), bars=2)
    s = drumstats.stats(windows)
    assert s["velocity_sd"] == pytest.approx(0.3 * 127, rel=1e-5)
    pooled = drumstats.pooled([({**s, "hits": 10.0}, 1), ({**s, "hits": 40.0}, 3)])
    assert pooled["hits"] == pytest.approx(32.5)


def test_a_drummer_who_follows_the_keyboard_correlates() -> None:
    windows = np.zeros((6, 32, 9, 3), np.float32)
    for w, hits in enumerate([10, 20, 10, 20, 2, 20]):
        windows[w, :hits, KICK, 0] = 1
    assert drumstats.follow_correlation(windows, np.array([5, 12, 6, 11, 0, 12])) > 0.9


def test_the_comping_songs_have_rests_sections_and_a_pickup() -> None:
    for i, song in enumerate(comping.SONGS):
        onsets = comping.onsets_per_window(song, seed=i)
        assert 32 <= song.bars <= 64 and (onsets == 0).any(), song.name
        assert len({style for style, _ in song.sections}) >= 3
    assert any(song.pickup_beats for song in comping.SONGS)
    assert comping.play(comping.SONGS[2], seed=2)[0][0] < 0        # the pickup comes before bar 1


def test_bar_2_against_the_bars_after_it_and_the_longest_run_of_crash_bars() -> None:
    notes = rock(12)
    notes = notes[~((notes[:, 0] >= 16) & (notes[:, 0] < 32) & (notes[:, 1] == HAT))]   # bar 2 without hats
    crashes = np.array([(b * 16, CRASH, 1.0) for b in (3, 4, 5, 6, 9)])
    s = drumstats.stats(drumstats.windows_from_notes(np.concatenate([notes, crashes]), bars=12))
    assert s["bar2_share"] == pytest.approx(5 / (13 + 5 / 8))   # 5 hits vs 13 (+ 5 crashes in 8 bars)
    assert s["crash_run_bars"] == 4


def test_snare_rolls_outside_fills_and_open_hats_are_counted_as_a_listener_hears_them() -> None:
    """Bar 1: a roll of six sixteenths; bar 2: three in a row (not a roll); bar 3: a roll in a fill
    bar (not counted); bar 4: two rolls of four. Open hats: two in bar 1, one in bar 3."""
    notes = [(0 * 16 + s, SNARE, 0.5) for s in range(6, 12)]
    notes += [(1 * 16 + s, SNARE, 0.5) for s in (4, 5, 6)]
    notes += [(2 * 16 + s, SNARE, 0.5) for s in range(8, 16)] + [(2 * 16 + 2, TOM, 0.7), (2 * 16 + 3, TOM, 0.7)]
    notes += [(3 * 16 + s, SNARE, 0.5) for s in (0, 1, 2, 3, 8, 9, 10, 11)]
    notes += [(2, OPEN_HAT, 0.6), (10, OPEN_HAT, 0.6), (2 * 16 + 6, OPEN_HAT, 0.6)]
    s = drumstats.stats(drumstats.windows_from_notes(np.array(notes, float), bars=4))
    assert s["snare_rolls_per_8_bars"] == pytest.approx(3 * 8 / 4)
    assert s["snare_long_run_bars"] == 0                             # the 8-run is in a fill bar
    long = np.array(notes + [(1 * 16 + s, SNARE, 0.5) for s in range(7, 15)], float)   # bar 2: 4-6 and 7-14
    assert drumstats.stats(drumstats.windows_from_notes(long, bars=4))["snare_long_run_bars"] == pytest.approx(1 / 3)
    ride, hat = VOICES.index("ride"), VOICES.index("closed_hat")
    timekeepers = notes + [(s, ride, 0.5) for s in (0, 4, 8, 12)] + [(4, hat, 0.3), (12, hat, 0.3)]   # bar 1: ride, pedal
    timekeepers += [(3 * 16 + s, ride, 0.5) for s in (0, 8)] + [(3 * 16 + s, hat, 0.5) for s in (2, 6, 14)]
    both = drumstats.stats(drumstats.windows_from_notes(np.array(timekeepers, float), bars=4))
    assert both["ride_and_hats_bars"] == pytest.approx(1 / 3)           # bar 4 only: bar 1's hats are the pedal
    assert s["open_hat_bars"] == pytest.approx(2 / 4)
    assert s["open_hat_per_bar"] == pytest.approx(3 / 2)
    assert s["open_hat_with_ride"] == 0
    with_ride = np.array(notes + [(2 * 16 + 8, VOICES.index("ride"), 0.5)], float)
    assert drumstats.stats(drumstats.windows_from_notes(with_ride, bars=4))["open_hat_with_ride"] == pytest.approx(1 / 2)
    plain = drumstats.stats(drumstats.windows_from_notes(rock(8), bars=8))
    assert plain["snare_rolls_per_8_bars"] == 0 and plain["open_hat_bars"] == 0
    assert np.isnan(plain["open_hat_per_bar"])


def test_the_backbeat_outside_fill_bars_leaves_out_the_fills_strokes() -> None:
    """Loud snare strokes in the fill bars pull the backbeat accent down; outside fill bars it is
    the backbeat over the ghost notes."""
    notes = rock(16, fill_every=2)
    fill_strokes = [(bar * 16 + 13, SNARE, 1.0) for bar in range(1, 16, 2)]
    s = drumstats.stats(drumstats.windows_from_notes(np.vstack([notes, fill_strokes]), bars=16))
    assert s["backbeat_accent_grooves"] == pytest.approx(1.0 / 0.4, rel=1e-5)
    assert s["backbeat_accent"] == pytest.approx(1.0 / ((16 * 0.4 + 8 * 1.0) / 24), rel=1e-5)


def test_the_time_moving_between_ride_and_hat_is_counted_per_32_bars() -> None:
    """4 bars on the hat, 4 on the ride (a pedal hat under it), 4 on the hat: two moves in 12 bars."""
    ride = VOICES.index("ride")
    notes = []
    for bar in range(12):
        on_ride = 4 <= bar < 8
        notes += [(bar * 16 + s, ride if on_ride else HAT, 0.6) for s in range(0, 16, 2)]
        notes += [(bar * 16 + 4, HAT, 0.5), (bar * 16 + 12, HAT, 0.5)] if on_ride else []
        notes += [(bar * 16, KICK, 0.9), (bar * 16 + 4, SNARE, 1.0)]
    s = drumstats.stats(drumstats.windows_from_notes(np.array(notes), bars=12))
    assert s["timekeeper_switches_per_32_bars"] == pytest.approx(2 * 32 / 12)
    assert s["ride_and_hats_bars"] == 0.0          # the hat under the ride is the pedal


def test_groove_bars_that_let_the_time_drop_are_counted() -> None:
    """8 bars of a rock beat: eighth hats in 5, the hat on 3 beats in 2 (the time dropped), and one
    fill bar with no cymbal at all (a fill, not counted); a crash on a beat counts as a cymbal."""
    notes = []
    for bar in range(8):
        base = bar * 16
        notes += [(base + 0, KICK, 0.9), (base + 4, SNARE, 1.0), (base + 12, SNARE, 1.0)]
        if bar in (2, 5):
            notes += [(base + s, HAT, 0.6) for s in (0, 4, 8)]
        elif bar == 7:
            notes += [(base + 8, TOM, 0.7), (base + 10, TOM, 0.7)]
        elif bar == 6:
            notes += [(base + s, HAT, 0.6) for s in (4, 8, 12)] + [(base + 0, CRASH, 1.0)]
        else:
            notes += [(base + s, HAT, 0.6) for s in range(0, 16, 2)]
    s = drumstats.stats(drumstats.windows_from_notes(np.array(notes), bars=8))
    assert s["time_dropped_bars"] == pytest.approx(2 / 7)

"""The human-input model: hands and keys grooves from drum patterns, their statistics on GMD validation."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from appliance.core.groove import HIT, NUM_VOICES, OFFSET, STEPS, VELOCITY, VOICES
from training import dataset as ds
from training import humanize as hz

KICK, SNARE, CLOSED = VOICES.index("kick"), VOICES.index("snare"), VOICES.index("closed_hat")


def gmd_root() -> Path:
    root = ds.gmd_dir()
    if not (root / "info.csv").is_file():
        pytest.skip(f"GMD_DIR {root} is missing (no info.csv): the real-data tests need the Groove MIDI "
                    "Dataset; set GMD_DIR to its folder")
    return root


def rock_beat(n: int = 1, hats: int = 1) -> np.ndarray:
    """n copies of a rock beat: kick on 1 and 3, snare on 2 and 4, hats every `hats` steps."""
    p = np.zeros((n, STEPS, NUM_VOICES, 3), np.float32)
    for s in range(0, STEPS, hats):
        p[:, s, CLOSED] = (1, 0.5 if s % 4 else 0.7, 0.0)
    for s in (0, 8, 16, 24):
        p[:, s, KICK] = (1, 0.9, -0.05)
    for s in (4, 12, 20, 28):
        p[:, s, SNARE] = (1, 0.95, 0.05)
    return p


def assert_valid(grooves: np.ndarray) -> None:
    assert grooves.dtype == np.float32 and grooves.shape[1:] == (STEPS, 3)
    hit = grooves[..., HIT]
    assert set(np.unique(hit)) <= {0.0, 1.0}
    assert (hit.sum(1) > 0).all()                                   # never an empty groove
    assert np.all(grooves[..., 1:][hit == 0] == 0)                   # nothing where nothing plays
    assert np.all(grooves[..., VELOCITY][hit == 1] > 0) and np.all(grooves[..., VELOCITY] <= 1)
    assert np.all((grooves[..., OFFSET] >= -0.5) & (grooves[..., OFFSET] < 0.5))


def test_hands_statistics_match_people_on_validation_windows() -> None:
    gmd_root()
    val = ds.load_split("validation")
    drums = hz.groove_stats(val.grooves)
    hands_grooves = hz.human_set(val.patterns, "hands", hz.SEED_VALIDATION)
    assert_valid(hands_grooves)
    hands = hz.groove_stats(hands_grooves)
    t = hz.HANDS_TARGETS
    assert hands["hits"] / drums["hits"] == pytest.approx(t["hit_ratio"], abs=0.03)
    assert hands["velocity_mean"] == pytest.approx(t["velocity_mean"], abs=0.02)
    assert hands["velocity_sd"] == pytest.approx(t["velocity_sd"], abs=0.02)
    assert hands["offset_sd"] == pytest.approx(t["offset_sd"], abs=0.015)
    # and they differ from the drummer's groove the way people's do: softer, flatter, looser
    assert drums["velocity_mean"] - hands["velocity_mean"] > 0.08
    assert drums["velocity_sd"] > hands["velocity_sd"] + 0.02
    assert hands["offset_sd"] > drums["offset_sd"] + 0.02


def test_hands_keep_the_strong_parts() -> None:
    pats = rock_beat(400)
    g = hz.hands_grooves(pats, np.random.default_rng(1), hz.Hands(extra=0.0, timing_noise=0.0, push_sd=0.0))
    assert_valid(g)
    kept = g[..., HIT].mean(0)
    beats = kept[[s for s in range(STEPS) if s % 4 == 0]]
    sixteenths = kept[[s for s in range(STEPS) if s % 2 == 1]]
    assert beats.min() > 0.95                     # kick and snare on the beats stay
    assert sixteenths.mean() < 0.75 * beats.mean()  # the fast hats thin out
    assert g[..., HIT].sum(1).mean() < pats[..., HIT].any(-1).sum(1).mean()


def test_hands_split_the_kit_into_a_low_and_a_high_hand() -> None:
    assert hz.LOW_MASK[KICK] and not hz.LOW_MASK[SNARE] and not hz.LOW_MASK[CLOSED]
    assert hz.LOW_MASK[VOICES.index("low_tom")] and not hz.LOW_MASK[VOICES.index("ride")]
    # a groove of only kicks: the low hand plays it and the high hand adds nothing (no strays)
    p = np.zeros((50, STEPS, NUM_VOICES, 3), np.float32)
    p[:, ::8, KICK] = (1, 0.8, 0.0)
    g = hz.hands_grooves(p, np.random.default_rng(2), hz.Hands(extra=0.0, timing_noise=0.0, push_sd=0.0,
                                                               timing_keep=1.0))
    assert (g[..., HIT][:, 1::2] == 0).all() and g[..., HIT].sum(1).min() >= 1


def test_keys_play_chords_held_notes_and_off_bar_starts() -> None:
    pats = rock_beat(300, hats=1)
    quiet = dict(timing_noise=0.0, push_sd=0.0, roll_sd=0.0)
    # stabs on the snare plus bass on the kick, nothing pushed or late: only beats play
    stabs = hz.keys_grooves(pats, np.random.default_rng(3), hz.Keys(p_stabs=1.0, p_pulse=0.0, p_push=0.0,
                                                                    p_late=0.0, bass_keep=1.0, **quiet))
    assert_valid(stabs)
    assert (stabs[..., HIT][:, [s for s in range(STEPS) if s % 4]] == 0).all()
    assert (stabs[..., HIT][:, ::4] == 1).all()
    # a chord is heard as its loudest note: louder on average than a single bass note would be
    assert stabs[:, 4::8, VELOCITY].mean() > stabs[:, 0::8, VELOCITY].mean()
    # held chords over a sixteenth hat line: far fewer onsets than the line has
    held = hz.keys_grooves(pats, np.random.default_rng(4), hz.Keys(p_stabs=0.0, p_pulse=0.0, p_push=0.0,
                                                                   p_late=0.0, bass_keep=0.0, hold_steps=(4,),
                                                                   **quiet))
    assert held[..., HIT].sum(1).max() <= 8 + 1
    # anticipations: beat 1 and 3 come an eighth or a sixteenth early, round the loop
    pushed = hz.keys_grooves(pats, np.random.default_rng(5), hz.Keys(p_stabs=1.0, p_pulse=0.0, p_push=1.0,
                                                                     p_late=0.0, bass_keep=1.0, **quiet))
    assert (pushed[..., HIT][:, ::8] == 0).all()
    assert (pushed[..., HIT][:, [30, 31]].sum(1) >= 1).all()
    # a late entry: the first beat is empty, the part starts off the bar line
    late = hz.keys_grooves(pats, np.random.default_rng(6), hz.Keys(p_late=1.0, p_push=0.0, **quiet))
    assert_valid(late)
    assert (late[..., HIT][:, 0] == 0).all()



def test_an_arpeggio_plays_sixteenths_whatever_the_drummer_played() -> None:
    quiet = dict(p_stabs=0.0, p_pulse=0.0, p_arpeggio=1.0, p_push=0.0, p_late=0.0, bass_keep=0.0,
                 timing_noise=0.0, push_sd=0.0, roll_sd=0.0)
    for hats in (1, 2, 4):      # sixteenth, eighth or quarter hats under it: the same kind of line
        arp = hz.keys_grooves(rock_beat(400, hats=hats), np.random.default_rng(9), hz.Keys(**quiet))
        assert_valid(arp)
        assert (arp[..., HIT][:, ::4] == 1).all()           # every beat
        played = arp[..., HIT].mean(axis=1)                 # and half to all of the sixteenths
        assert 0.4 < played.min() and played.max() == 1.0 and 0.7 < played.mean() < 0.9
        within = [loop[loop[:, HIT] == 1, VELOCITY].std() for loop in arp]   # notes vary, loop by loop alike
        assert 0.08 < np.mean(within) < 0.16
        backbeat = arp[:, 4::8, VELOCITY].mean() - arp[:, 0::8, VELOCITY].mean()   # 2 and 4 against 1 and 3
        assert abs(backbeat) < 0.02                         # no accent from the drummer's backbeat
    # off by default: the fixed keys sets of validation and test are the same as before
    assert hz.Keys().p_arpeggio == 0.0 and ds.Augment().p_arpeggio == 0.0


def test_human_sets_are_fixed_and_augmentation_uses_them() -> None:
    pats = rock_beat(64, hats=2)
    a = hz.human_set(pats, "hands", hz.SEED_VALIDATION)
    np.testing.assert_array_equal(a, hz.human_set(pats, "hands", hz.SEED_VALIDATION))
    assert not np.array_equal(a, hz.human_set(pats, "hands", hz.SEED_TEST))
    assert_valid(hz.human_set(pats, "keys", hz.SEED_VALIDATION))
    with pytest.raises(ValueError):
        hz.human_set(pats, "feet", 0)
    aug = ds.Augment.none()
    assert not aug.active
    people = ds.augment_grooves(pats, np.random.default_rng(7), ds.Augment(p_subset=0, p_curve=0, p_jitter=0,
                                                                           p_hands=0.5, p_keys=0.5))
    np.testing.assert_array_equal(people, ds.augment_grooves(
        pats, np.random.default_rng(7), ds.Augment(p_subset=0, p_curve=0, p_jitter=0, p_hands=0.5, p_keys=0.5)))
    assert_valid(people)
    drummer = ds.flatten(pats)
    changed = ~(people == drummer).all(axis=(1, 2))
    assert changed.mean() > 0.9  # every groove came from a person, not from the drummer


def test_varied_players_stay_near_the_targets() -> None:
    rng = np.random.default_rng(0)
    base = hz.Hands()
    for _ in range(20):
        v = base.varied(rng)
        assert 0.7 * base.level <= v.level <= 1.3 * base.level
        assert 0.0 <= v.bar_change <= 1.0
        assert abs(v.keep_bias - base.keep_bias) <= 1.0 + 1e-9


def test_the_register_marks_where_the_low_hand_landed_and_changes_nothing_else() -> None:
    """training/register_probe.py's fourth channel: hands' low hand, keys' bass, a drummer's kick;
    the first three channels and the random draws are those of the plain groove."""
    pats = rock_beat(64, hats=2)
    for kind in ("hands", "keys"):
        plain = hz.human_set(pats, kind, hz.SEED_VALIDATION)
        with_low = hz.human_set(pats, kind, hz.SEED_VALIDATION, register=True)
        assert with_low.shape == (64, STEPS, 4)
        np.testing.assert_array_equal(with_low[..., :3], plain)
        low = with_low[..., 3] > 0.5
        assert not (low & (with_low[..., HIT] < 0.5)).any()         # only where a note landed
        assert low.any() and (~low & (with_low[..., HIT] > 0.5)).any()  # a low part and a high part
        # the rock beat's kick is on the beats 1 and 3: the low part lands there, give or take a
        # step (a comper's anticipations: an eighth early)
        steps = np.nonzero(low)[1]
        assert np.mean(np.minimum(steps % 8, 8 - steps % 8) <= 2) > 0.95, kind
    drummer = ds.register(pats)
    assert drummer.shape == (64, STEPS) and set(np.flatnonzero(drummer[0])) == {0, 8, 16, 24}
    no_kick = np.ones(NUM_VOICES, bool)
    no_kick[KICK] = False
    assert not ds.register(pats, np.broadcast_to(no_kick, (64, NUM_VOICES))).any()
    grooves, person = ds.augment_with_people(pats, np.random.default_rng(3), ds.Augment(p_hands=0.5, p_keys=0.2),
                                             with_register=True)
    assert grooves.shape == (64, STEPS, 4) and not (grooves[..., 3] > grooves[..., HIT]).any()
    drummers = ~person
    assert drummers.any()


def test_the_register_is_the_kick_not_the_toms() -> None:
    """A tom hit on a step of its own is not low, in a drummer's groove or under a person's low hand
    (session 56's register with the toms came back as toms in groove bars)."""
    pats = rock_beat(64, hats=2)
    low_tom = VOICES.index("low_tom")
    pats[:, 14, low_tom] = (1, 0.9, 0.0)      # a tom on the "and" of 2, where no kick plays
    assert not ds.register(pats)[:, 14].any()
    hands = hz.human_set(pats, "hands", hz.SEED_VALIDATION, register=True)
    landed = hands[:, 14, HIT] > 0.5
    assert landed.any() and not (hands[:, 14, 3] > 0.5).any()


def test_a_groove_all_on_one_side_has_no_register_as_the_box_hears_it() -> None:
    """Every hit step low, or none: the register is all 0 (unknown), as Groove.model_input sends it."""
    kicks = np.zeros((4, STEPS, NUM_VOICES, 3), np.float32)
    kicks[:, ::8, KICK] = (1, 0.9, 0.0)
    assert not ds.augment_grooves(kicks, np.random.default_rng(0), ds.Augment(), with_register=True)[..., 3].any()
    grooves = np.zeros((3, STEPS, 4), np.float32)
    grooves[:, ::4, HIT] = 1.0
    grooves[0, ::4, 3] = 1.0                  # all low
    grooves[2, ::8, 3] = 1.0                  # two-sided
    heard = hz.as_heard(grooves.copy())
    assert not heard[:2, :, 3].any()
    assert set(np.flatnonzero(heard[2, :, 3] > 0)) == set(range(0, STEPS, 8))    # low: +1
    assert set(np.flatnonzero(heard[2, :, 3] < 0)) == set(range(4, STEPS, 8))    # high: −1, known
    assert not heard[2, 1::2, 3].any()                                            # nothing: 0
    np.testing.assert_array_equal(hz.as_heard(heard.copy()), heard)               # the same again
    known = hz.as_heard(grooves.copy(), one_sided_known=True)    # training's --one-sided-known
    assert set(np.flatnonzero(known[0, :, 3] > 0)) == set(range(0, STEPS, 4))     # all low, kept
    assert set(np.flatnonzero(known[1, :, 3] < 0)) == set(range(0, STEPS, 4))     # all high, kept
    kept = ds.augment_grooves(kicks, np.random.default_rng(0), ds.Augment(one_sided_known=True), with_register=True)
    assert (kept[:, ::8, 3] == 1.0).all()
    many = np.repeat(kicks, 16, axis=0)          # the kick alone: a person's part is mostly low only
    for person in ({"p_hands": 1.0}, {"p_keys": 1.0}):
        unknown = [~ds.augment_grooves(many, np.random.default_rng(0), ds.Augment(**person, one_sided_known=known),
                                       with_register=True)[..., 3].any(-1) for known in (False, True)]
        assert unknown[0].any() and not unknown[1].any(), person   # the hands' and keys' one-sided grooves too


def test_a_stride_left_hand_plays_every_beat_low() -> None:
    """Keys with a stride left hand over a backbeat: bass on 1 and 3, chords on 2 and 4, all low;
    over a pattern with no backbeat, the bass follows the kick as before."""
    keys = hz.Keys(p_stride=1.0, p_push=0.0, p_late=0.0, p_stabs=0.0, p_pulse=0.0, hold_steps=(2,))
    pats = rock_beat(32, hats=2)
    grooves = hz.keys_grooves(pats, np.random.default_rng(1), keys, register=True)
    low = grooves[..., 3] > 0.5
    known = low.any(-1)
    assert known.mean() > 0.9
    for row in low[known]:
        assert set(np.flatnonzero(row)) == set(range(0, STEPS, 4))
    no_backbeat = pats.copy()
    no_backbeat[:, :, SNARE] = 0.0
    no_backbeat[:, :, KICK] = 0.0
    no_backbeat[:, [0, 10, 16, 26], KICK] = (1, 0.9, 0.0)    # kicks off the beats a stride bass plays
    grooves = hz.keys_grooves(no_backbeat, np.random.default_rng(1), keys, register=True)
    low = grooves[..., 3] > 0.5
    assert low.any() and set(np.flatnonzero(low.any(0))) <= {0, 10, 16, 26}


def test_a_whole_note_left_hand_plays_on_1_or_on_1_and_3_whatever_the_kick() -> None:
    """Keys with ``p_whole``: the bass on each bar's 1 (whole notes) or on 1 and 3 (half notes),
    over a kick on every beat; without it, the bass follows the kick."""
    keys = hz.Keys(p_whole=1.0, p_push=0.0, p_late=0.0, p_stabs=0.0, p_pulse=1.0, timing_noise=0.0, roll_sd=0.0)
    pats = rock_beat(64, hats=2)
    pats[:, ::4, KICK] = (1, 0.9, 0.0)                        # four on the floor
    grooves = hz.keys_grooves(pats, np.random.default_rng(3), keys, register=True)
    lows = [frozenset(np.flatnonzero(row)) for row in grooves[..., 3] > 0.5]
    assert set(lows) == {frozenset({0, 16}), frozenset({0, 8, 16, 24})}
    plain = hz.keys_grooves(pats, np.random.default_rng(3), hz.Keys(p_push=0.0, p_late=0.0), register=True)
    assert max(len(np.flatnonzero(row)) for row in plain[..., 3] > 0.5) > 4


def test_training_asks_for_whole_note_left_hands_with_p_whole() -> None:
    """Augment.p_whole reaches the simulated keys: over four on the floor, their left hands play
    at most four low steps a loop (1, or 1 and 3, pushed early or not); without it, the kick's."""
    pats = rock_beat(256, hats=2)
    pats[:, ::4, KICK] = (1, 0.9, 0.0)
    lows = {}
    for whole in (0.0, 1.0):
        aug = ds.Augment(p_subset=0.0, p_curve=0.0, p_jitter=0.0, p_keys=1.0, p_whole=whole)
        grooves, _ = ds.augment_with_people(pats, np.random.default_rng(4), aug, with_register=True)
        lows[whole] = (grooves[..., 3] > 0.5).sum(-1)
    assert lows[1.0].max() <= 4 and lows[0.0].max() > 4


def test_a_left_hand_doubling_the_chords_makes_every_chord_step_low() -> None:
    """Keys with ``p_double`` (and through Augment.p_double): a bass note under most chords as well
    as on the kick, so most steps of the groove are low and a few high (two-handed, still)."""
    pats = rock_beat(256, hats=2)
    for double in (0.0, 1.0):
        aug = ds.Augment(p_subset=0.0, p_curve=0.0, p_jitter=0.0, p_keys=1.0, p_double=double)
        grooves, _ = ds.augment_with_people(pats, np.random.default_rng(5), aug, with_register=True)
        hit, low, high = grooves[..., HIT] > 0.5, grooves[..., 3] > 0.5, grooves[..., 3] < -0.5
        share = low.sum() / hit.sum()
        assert (share > 0.6) == (double > 0), (double, share)
    assert (low.any(-1) & high.any(-1)).mean() > 0.5

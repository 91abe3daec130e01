"""Made fills: the pattern's second bar with its last beats given to the drums the model finds
likeliest, played high to low on the groove's own subdivision, rising to the backbeat; and the
phrasing plays them only where a phrase ends."""
import numpy as np
import pytest

from appliance.core import fills, limbs
from appliance.core.groove import GM_NOTES, HIT, NUM_VOICES, OFFSET, STEPS, STEPS_PER_BAR, VELOCITY, VOICES, Pattern
from appliance.core.player import Player, PlayerSettings
from appliance.core.transport import InternalClock
from tests.test_phrase import bars_with, fill_pattern, play

KICK, SNARE, CLOSED_HAT = (VOICES.index(v) for v in ("kick", "snare", "closed_hat"))
LOW_TOM, MID_TOM, HIGH_TOM = (VOICES.index(v) for v in ("low_tom", "mid_tom", "high_tom"))
BIAS = np.zeros(NUM_VOICES)


def groove_steps(hat_every: int = 1) -> np.ndarray:
    """Kick on 1 and 3, snare on 2 and 4 (0.9), closed hat every ``hat_every`` steps (0.5)."""
    steps = np.zeros((STEPS, NUM_VOICES, 3), np.float32)
    steps[0::8, KICK] = (1, 0.8, 0.0)
    steps[4::8, SNARE] = (1, 0.9, 0.0)
    steps[0::hat_every, CLOSED_HAT] = (1, 0.5, 0.0)
    return steps


def model_out(likeliest=(SNARE, HIGH_TOM, LOW_TOM)) -> tuple[np.ndarray, np.ndarray]:
    """Decoder-like probabilities: these drums a little likelier than the rest; offsets 0.05."""
    probabilities = np.full((STEPS, NUM_VOICES), 0.02, np.float32)
    for rank, voice in enumerate(likeliest):
        probabilities[:, voice] = 0.2 - 0.05 * rank
    return probabilities, np.full((STEPS, NUM_VOICES), 0.05, np.float32)


def test_the_last_two_beats_go_to_the_likeliest_drums_high_to_low_rising_to_the_backbeat() -> None:
    steps = groove_steps(hat_every=1)
    fill = fills.make(steps, *model_out((LOW_TOM, SNARE, HIGH_TOM)), BIAS, density=0.5)
    assert fill is not None and fill.shape == (STEPS_PER_BAR, NUM_VOICES, 3)
    np.testing.assert_array_equal(fill[:8], steps[16:24])               # beats 1 and 2 as the groove's
    assert (fill[8:, KICK] == steps[24:, KICK]).all()                    # the kick keeps going
    assert not (fill[8:, CLOSED_HAT, HIT] >= 0.5).any()                  # the hands leave the hats
    order = fills.ending_order([SNARE, HIGH_TOM, LOW_TOM], steps)       # this pattern's ending
    assert order == [SNARE, HIGH_TOM, LOW_TOM]                           # the floor tom: all three, high to low
    drums = [int(np.flatnonzero(fill[s, order, HIT] >= 0.5)[0]) for s in range(8, 16)]
    assert drums == [0, 0, 0, 1, 1, 1, 2, 2]                             # sixteenths, in equal groups
    velocity = fill[8:, [SNARE, HIGH_TOM, LOW_TOM], VELOCITY].max(axis=1)
    rise = np.linspace(*fills.RISE, 8) * 0.9
    on_beat = np.array([1, 0, 0, 0, 1, 0, 0, 1], bool)                  # beats 3 and 4, and the last stroke
    np.testing.assert_allclose(velocity[[1, 2]], fills.OFF_BEAT * rise[[1, 2]], rtol=1e-5)   # softer between the beats
    assert velocity[4] == pytest.approx(0.9)                             # beat 4's backbeat is not dropped
    for i in np.flatnonzero(on_beat):
        assert velocity[i] >= velocity[:i].max(initial=0.0)              # a beat, and the end, never fall back
    assert velocity[-1] == velocity.max() and len(set(np.round(velocity[4:] * 127))) > 1   # not one flat level
    assert fill[8:, [SNARE, HIGH_TOM, LOW_TOM], OFFSET].max() == pytest.approx(0.05)
    assert limbs.playable(fill[..., HIT] >= 0.5).all()


def test_a_fill_never_falls_back_after_a_loud_beat_4() -> None:
    """The reviewer heard a mid tom at 114 then the floor tom at 71: a fill's beats rise, and its
    last stroke, off the beat, leans back at most LAST_DIP (about 10 of 127) from the loudest."""
    steps = groove_steps(hat_every=1)
    steps[28, SNARE, VELOCITY] = 1.0                     # bar 2's beat 4 is an accent
    fill = fills.make(steps, *model_out(), BIAS, density=0.5)
    velocity = fill[8:, list(fills.FILL_VOICES), VELOCITY].max(axis=1)
    assert velocity[4] == pytest.approx(1.0) and velocity[7] == pytest.approx(1.0 - fills.LAST_DIP)
    assert (velocity[[5, 6]] < 1.0).all()                # the sixteenths between are not all at the top


def test_a_beat_the_hands_hardly_played_is_filled_with_eighths() -> None:
    """A pickup of one stroke is a hole, not a fill: every beat of a fill has two strokes or more."""
    steps = groove_steps(hat_every=4)                    # quarter-note hats: one stroke a beat
    for density in (0.5, 0.25):
        fill = fills.make(steps, *model_out(), BIAS, density=density)
        hand = (fill[:, list(fills.FILL_VOICES), HIT] >= 0.5).any(axis=1)
        start = 16 - 4 * fills.fill_beats(density)
        assert np.flatnonzero(hand[start:]).tolist() == list(range(0, 16 - start, 2))


@pytest.mark.parametrize("ending, order", [(SNARE, [HIGH_TOM, LOW_TOM, SNARE]), (LOW_TOM, [SNARE, HIGH_TOM, LOW_TOM]),
                                           (HIGH_TOM, [SNARE, HIGH_TOM]), (MID_TOM, [SNARE, HIGH_TOM, MID_TOM])])
def test_a_fill_moves_down_the_kit_to_its_ending(ending, order) -> None:
    rng = np.random.default_rng(1)
    drums = [SNARE, HIGH_TOM, MID_TOM, LOW_TOM] if ending == MID_TOM else [SNARE, HIGH_TOM, LOW_TOM]
    for _ in range(200):
        steps = groove_steps()
        steps[rng.integers(0, STEPS), KICK, VELOCITY] = rng.uniform(0.3, 1.0)
        got = fills.ending_order(drums, steps)
        if got[-1] == ending:
            assert got == order
            return
    pytest.fail(f"no pattern of 200 ended on {VOICES[ending]}")


def test_eighths_stay_eighths_and_a_low_density_fills_one_beat() -> None:
    fill = fills.make(groove_steps(hat_every=2), *model_out(), BIAS, density=0.5)
    hand = (fill[:, list(fills.FILL_VOICES), HIT] >= 0.5).any(axis=1)
    assert np.flatnonzero(hand[8:]).tolist() == [0, 2, 4, 6]
    fill = fills.make(groove_steps(hat_every=1), *model_out(), BIAS, density=0.25)
    assert (fill[:12, CLOSED_HAT] == groove_steps()[16:28, CLOSED_HAT]).all()
    hand = (fill[:, [HIGH_TOM, MID_TOM, LOW_TOM], HIT] >= 0.5) | (fill[:, [SNARE], HIT] >= 0.5) & (
        np.arange(STEPS_PER_BAR) >= 12)[:, None]
    assert np.flatnonzero(hand.any(axis=1)).tolist() == [12, 13, 14, 15]


def test_the_drums_follow_the_voice_bias() -> None:
    """The bias that makes the density's choice makes the fill's: a mid tom the bias favours plays."""
    bias = np.zeros(NUM_VOICES)
    bias[[SNARE, HIGH_TOM, LOW_TOM]] = 3.0
    fill = fills.make(groove_steps(), *model_out(), bias, density=0.25)      # one drum: the likeliest
    assert (fill[12:, MID_TOM, HIT] >= 0.5).all() and not (fill[12:, [SNARE, HIGH_TOM, LOW_TOM], HIT] >= 0.5).any()


@pytest.mark.parametrize("steps", [fill_pattern((1,)).steps, fill_pattern((0, 1), toms=4).steps,
                                   np.zeros((STEPS, NUM_VOICES, 3), np.float32)],
                         ids=["own fill", "tom groove", "silence"])
def test_no_made_fill_where_the_pattern_has_its_own_or_plays_nothing(steps) -> None:
    assert fills.make(steps, *model_out(), BIAS, density=0.5) is None


@pytest.mark.parametrize("toms, leads", [((16, 19, 22), False), ((16, 19, 24), True), ((26, 28, 30), True),
                                         ((0, 2, 4), False)])
def test_a_fill_leads_into_the_next_bar_toms_only_in_a_bars_first_half_are_none(toms, leads) -> None:
    """Toms on 1 and 2 that then give way to the groove are no fill: the phrase end gets a made
    fill instead (and elsewhere the bar plays without its toms); toms that reach beat 3 are one."""
    steps = groove_steps()
    steps[list(toms), HIGH_TOM] = (1, 0.9, 0.0)
    bar = toms[0] // STEPS_PER_BAR
    assert fills.fill_bar(steps) == (bar if leads else None)
    assert (fills.make(steps, *model_out(), BIAS, density=0.5) is None) == leads


def steps_with(ons, clock: InternalClock, notes) -> dict[int, list[int]]:
    """Bar (from 0) → the steps in it (0..15) where any of these notes sound."""
    out: dict[int, list[int]] = {}
    for e in ons:
        if e.message.note in notes:
            step = int(round(clock.position(e.time)))
            out.setdefault(step // STEPS_PER_BAR, []).append(step % STEPS_PER_BAR)
    return {bar: sorted(set(s)) for bar, s in sorted(out.items())}


TOM_NOTES = (GM_NOTES[HIGH_TOM], GM_NOTES[MID_TOM], GM_NOTES[LOW_TOM])


def made(density: float = 0.5, hat_every: int = 2) -> Pattern:
    steps = groove_steps(hat_every)
    return Pattern(steps, fills.make(steps, *model_out(), BIAS, density))


def test_the_big_fill_ends_8_bars_a_pickup_ends_the_4_between_and_a_crash_follows_the_big_one() -> None:
    clock = InternalClock(bpm=120.0, start=0.0)
    ons = play(Player(clock, PlayerSettings(fill_every=4, crash_every=8), made()), clock, 17)
    # eighths: snare 8 10, high tom 12 14 (this pattern's fill ends on the high tom, so the floor
    # tom below it is left out) in the big fill; its last beat in the pickup
    assert fills.ending_order([SNARE, HIGH_TOM, LOW_TOM], groove_steps(2)) == [SNARE, HIGH_TOM]
    assert steps_with(ons, clock, TOM_NOTES) == {3: [12, 14], 7: [12, 14], 11: [12, 14], 15: [12, 14]}
    snare = steps_with(ons, clock, (GM_NOTES[SNARE],))
    assert snare[7] == snare[15] == [4, 8, 10] and snare[3] == snare[11] == [4] and snare[5] == [4, 12]
    crashes = sorted(steps_with(ons, clock, (GM_NOTES[VOICES.index("crash")],)))
    assert crashes == [8, 16]                              # on the downbeat each big fill leads to
    assert bars_with(ons, clock, GM_NOTES[KICK]) == list(range(17))


def test_a_12_bar_blues_fills_big_into_each_chorus_and_crashes_on_its_first_bar() -> None:
    """``crash_every`` 12, phrases of 4: the big fill ends each 12-bar chorus and the crash comes
    on bars 1, 13, 25; the lines between end with pickups (a musician's review set 12 and got
    crashes on bar 5 of the second and third chorus: the big fill kept to every 8 bars)."""
    clock = InternalClock(bpm=120.0, start=0.0)
    ons = play(Player(clock, PlayerSettings(fill_every=4, crash_every=12), made()), clock, 37)
    crashes = sorted(steps_with(ons, clock, (GM_NOTES[VOICES.index("crash")],)))
    assert crashes == [12, 24, 36], "bars 13, 25, 37 (bar 1 is a start's, marked by the engine)"
    snare = steps_with(ons, clock, (GM_NOTES[SNARE],))
    big = [bar for bar, steps in snare.items() if steps == [4, 8, 10]]
    assert big == [11, 23, 35], "the big fill in the last bar of each chorus"
    assert sorted(steps_with(ons, clock, TOM_NOTES)) == [3, 7, 11, 15, 19, 23, 27, 31, 35], "a fill ends each line"


def test_below_density_half_the_big_fill_is_a_one_drum_pickup_and_fill_every_0_plays_none() -> None:
    clock = InternalClock(bpm=120.0, start=0.0)
    ons = play(Player(clock, PlayerSettings(fill_every=4), made(0.25)), clock, 16)
    snare = steps_with(ons, clock, (GM_NOTES[SNARE],))
    assert snare[7] == snare[15] == [4, 12, 14] and snare[3] == snare[11] == [4, 12]   # no pickup between
    assert steps_with(ons, clock, TOM_NOTES) == {}
    assert fills.pickup(groove_steps(2), made(0.25).fill) is None
    clock = InternalClock(bpm=120.0, start=0.0)
    ons = play(Player(clock, PlayerSettings(fill_every=0), made(0.5)), clock, 16)
    assert steps_with(ons, clock, TOM_NOTES) == {}


def test_phrases_count_from_where_the_player_comes_back() -> None:
    clock = InternalClock(bpm=120.0, start=0.0)
    player = Player(clock, PlayerSettings(fill_every=4, crash_every=0), made())
    events = play(player, clock, 5)
    player.mark(5 * STEPS_PER_BAR + 0.3, clock.time_at(5 * STEPS_PER_BAR + 0.3), begins=True)   # back on bar 6
    later = []
    now = clock.time_at(5 * STEPS_PER_BAR + 0.3)
    while now < clock.time_at(16 * STEPS_PER_BAR - 0.5) - player.settings.lookahead:
        later += player.schedule(now)
        now += 0.005
    ons = [e for e in events + later + player.drain() if e.message.type == "note_on"]
    assert sorted(steps_with(ons, clock, TOM_NOTES)) == [3, 8, 12]    # bar 4; then bars 4 and 8 from bar 6


def test_a_soft_backbeat_under_loud_hats_fills_at_the_hats_level_and_fills_never_flam() -> None:
    """The piano-arpeggio song: a backbeat at 60 of 127 under hats at 105; a fill rising to 60
    was heard as a hole. And the model's offsets stay within ±0.2 of a step in a fill."""
    steps = groove_steps(hat_every=1)
    steps[4::8, SNARE, VELOCITY] = 60 / 127
    steps[:, CLOSED_HAT, VELOCITY] = 105 / 127
    assert fills.accent_level(steps) == pytest.approx(105 / 127)
    probabilities, _ = model_out()
    wild = np.where(np.arange(STEPS)[:, None] % 2 == 0, 0.45, -0.45) * np.ones((STEPS, NUM_VOICES))
    fill = fills.make(steps, probabilities, wild.astype(np.float32), BIAS, density=0.5)
    played = fill[8:, list(fills.FILL_VOICES), HIT] >= 0.5
    assert fill[8:, list(fills.FILL_VOICES), VELOCITY][played].max() == pytest.approx(105 / 127)
    assert np.abs(fill[8:, list(fills.FILL_VOICES), OFFSET][played]).max() == pytest.approx(fills.FILL_TIMING)


def test_backbeat_is_the_median_snare_on_2_and_4() -> None:
    steps = groove_steps()
    steps[20, SNARE, VELOCITY] = 0.5                       # one soft backbeat of four
    steps[6, SNARE] = (1, 1.0, 0.0)                        # an accent off the backbeat
    assert fills.backbeat(steps) == pytest.approx(0.9)
    steps[:, SNARE] = 0.0
    assert fills.backbeat(steps) == pytest.approx(0.5)    # no snare: the median hit (4 kicks, 32 hats)
def test_the_generator_makes_a_fill_the_pattern_holds(generator) -> None:
    """The shipped model over eighths on the keys: a groove with no toms, so a made fill."""
    from appliance.core.groove import Groove
    groove = np.zeros((STEPS, 3), np.float32)
    groove[0::2] = (1, 0.7, 0.0)
    pattern = generator.generate(Groove(groove))
    assert pattern.fill is not None and limbs.playable(pattern.fill[..., HIT] >= 0.5).all()
    assert (pattern.fill[8:, list(fills.FILL_VOICES), HIT] >= 0.5).sum() >= 2
    assert pattern == Pattern(pattern.steps, pattern.fill) and pattern != Pattern(pattern.steps)


def test_a_section_heard_a_pass_late_is_joined_at_its_next_phrase_with_a_fill_and_a_crash(generator) -> None:
    """Verse for 5 passes, chorus from bar 11 on: the looper hears it at bar 13's loop point. The
    drums do not crash there (the section's third bar), nor wait for bar 17 (8 bars on from the
    crash after the big fill at bar 8): phrases count from bar 11, and its first phrase ends with
    the big fill into a crash on bar 15."""
    from appliance.core.engine import EngineSettings
    from tests.conftest import make_engine
    from tests.test_phrase import PASS, comp, crash_times, run
    engine = make_engine(generator, settings=EngineSettings(drift=0.0, crash_every=8))
    verse, chorus = [0, 4, 8, 12, 16, 20, 24, 28], [2, 3, 6, 10, 14, 18, 22, 26, 30]
    events = run(engine, 0.0, 8 * PASS, comp(range(0, 5), verse) + comp(range(5, 8), chorus))
    bars = sorted({round(t / (PASS / 2)) for t in crash_times(events)})
    assert bars == [0, 8, 14], crash_times(events)       # from 0: the entry, after the fill, the chorus
    fill = {**steps_with(events, engine.transport, TOM_NOTES)}
    snare = steps_with(events, engine.transport, (GM_NOTES[SNARE],))
    assert 13 in fill or len(snare.get(13, [])) > len(snare.get(12, []))     # the fill into it


def test_fill_phrasing_turned_on_live_then_a_section_is_joined_without_a_fault() -> None:
    """The reviewer's race: fill_every 0 → 4 by a reload, and a section heard before the next step."""
    from dataclasses import replace
    clock = InternalClock(bpm=120.0, start=0.0)
    player = Player(clock, PlayerSettings(fill_every=0), made())
    play(player, clock, 4)
    player.settings = replace(player.settings, fill_every=4)
    now = clock.time_at(4 * STEPS_PER_BAR) - player.settings.lookahead
    player.section(2 * STEPS_PER_BAR, now)      # began on bar 3; no ZeroDivisionError
    events = []
    while now < clock.time_at(12 * STEPS_PER_BAR - 0.5) - player.settings.lookahead:
        events += player.schedule(now)
        now += 0.005
    ons = [e for e in events if e.message.type == "note_on"]
    # joined at the section's first phrase end: the big fill in bar 6, a crash on bar 7 (from 0: 6)
    assert sorted(steps_with(ons, clock, (GM_NOTES[VOICES.index("crash")],))) == [6]
    assert steps_with(ons, clock, TOM_NOTES)[5] == [12, 14]


def test_a_jump_counts_phrases_from_the_songs_bar_1_again() -> None:
    from appliance.core.phrase import Phrasing
    phrasing = Phrasing()
    phrasing.song_from(32)
    phrasing.begin(336)                  # the player came back from a rest on bar 20
    phrasing.forget()                    # then Song Position moved the song
    assert phrasing.origin == 32


@pytest.mark.parametrize("crash_every", [1, 2, 3])
def test_crashes_more_often_than_a_phrase_do_not_fill_every_bar(crash_every: int) -> None:
    """crash_every shorter than fill_every: the big fill stays every 2 phrases (a code review:
    crash_every 2 made every other bar a big fill, 3 put fills in bars 3 and 4)."""
    clock = InternalClock(bpm=120.0, start=0.0)
    ons = play(Player(clock, PlayerSettings(fill_every=4, crash_every=crash_every), made()), clock, 17)
    assert sorted(steps_with(ons, clock, TOM_NOTES)) == [3, 7, 11, 15]


def test_the_crash_after_a_fill_keeps_crash_every() -> None:
    """The big fill comes every ``crash_every`` bars, into its crash (until session 52 every 8,
    and the first crash came after bar 8's: bars 9 and 41, off a 32-bar form)."""
    clock = InternalClock(bpm=120.0, start=0.0)
    ons = play(Player(clock, PlayerSettings(fill_every=4, crash_every=32), made()), clock, 64)
    assert sorted(steps_with(ons, clock, (GM_NOTES[VOICES.index("crash")],))) == [32]


def test_a_second_pass_counts_its_phrases_from_its_own_bar_1(model_dir, tmp_path) -> None:
    """Six bars of eighths, played twice: pickups end bars 4 and 10 (the second pass's 4th bar),
    not 4, 8 and 12 as one count over both passes would put them."""
    import mido
    from appliance.core.engine import EngineSettings
    from appliance.core.render import render
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000, time=0)])
    for i in range(6 * 8):
        track += [mido.Message("note_on", note=60, velocity=90, time=0 if i == 0 else 120),
                  mido.Message("note_off", note=60, velocity=0, time=120)]
    song = mido.MidiFile(type=1, ticks_per_beat=480)
    song.tracks.append(track)
    song.save(str(tmp_path / "eighths.mid"))
    played = {}
    for every in (4, 0):
        out = tmp_path / f"drums{every}.mid"
        render(tmp_path / "eighths.mid", out, model_dir=model_dir, seed=3, passes=2,
               settings=EngineSettings(fill_every=every, crash_every=0))
        ticks, bars = 0, {}
        for m in mido.MidiFile(str(out)).tracks[1]:
            ticks += m.time
            if m.type == "note_on" and m.velocity:
                bars.setdefault(round(ticks / 120) // 16, []).append((round(ticks / 120) % 16, m.note, m.velocity))
        played[every] = bars
    differ = sorted(b for b in set(played[4]) | set(played[0]) if sorted(played[4].get(b, [])) != sorted(played[0].get(b, [])))
    assert differ == [3, 9]


def test_fills_end_on_each_drum_about_as_often_as_gmds_drummers_and_a_pattern_keeps_its_ending() -> None:
    rng = np.random.default_rng(0)
    drums = [SNARE, HIGH_TOM, MID_TOM, LOW_TOM]
    endings = []
    for _ in range(2000):
        steps = groove_steps()
        steps[rng.integers(0, STEPS, 4), KICK, VELOCITY] = rng.uniform(0.3, 1.0, 4)   # 2,000 other patterns
        endings.append(fills.ending_order(drums, steps)[-1])
        assert fills.ending_order(drums, steps) == fills.ending_order(drums, steps.copy())
    for drum in drums:
        assert np.mean(np.array(endings) == drum) == pytest.approx(fills.ENDINGS[drum], abs=0.04)
    order = fills.ending_order([HIGH_TOM, LOW_TOM], groove_steps())
    assert sorted(order) == sorted([HIGH_TOM, LOW_TOM]) and len(order) == 2


@pytest.mark.parametrize("count, drums, shares", [
    (8, [SNARE, HIGH_TOM, LOW_TOM], [3, 3, 2]),
    (8, [HIGH_TOM, LOW_TOM, SNARE], [3, 3, 2]),
    (3, [LOW_TOM, SNARE], [2, 1]),          # a tom, then two snares, would be no tom fill
    (5, [LOW_TOM, SNARE], [3, 2]),
    (2, [LOW_TOM, SNARE], [1, 1]),          # two strokes: one each
    (3, [SNARE, LOW_TOM], [2, 1]),
])
def test_toms_leading_to_a_snare_ending_keep_two_strokes(count, drums, shares) -> None:
    strokes = fills.strokes_of(count, drums)
    assert [len(s) for s in strokes] == shares
    assert np.concatenate(strokes).tolist() == list(range(count))


def test_a_pattern_that_comes_in_during_a_fill_waits_for_the_fill_to_end() -> None:
    """A drummer finishes a fill: the new pattern (on the ride) starts on the next downbeat."""
    ride = VOICES.index("ride")
    steps = np.zeros((STEPS, NUM_VOICES, 3), np.float32)
    steps[0::2, ride] = (1, 0.6, 0.0)
    steps[0::8, KICK] = (1, 0.8, 0.0)
    clock = InternalClock(bpm=120.0, start=0.0)
    player = Player(clock, PlayerSettings(fill_every=4, crash_every=0, swap_at="beat"), made())
    events, now, offered = [], 0.0, False
    while now < clock.time_at(10 * STEPS_PER_BAR - 0.5) - player.settings.lookahead:
        if not offered and clock.position(now) >= 7 * STEPS_PER_BAR + 9:      # bar 8, beat 3: the big fill
            player.offer(Pattern(steps))
            offered = True
        events += player.schedule(now)
        now += 0.005
    ons = [e for e in events + player.drain() if e.message.type == "note_on"]
    assert steps_with(ons, clock, TOM_NOTES)[7] == [12, 14]                   # the fill played to its end
    assert min(steps_with(ons, clock, (GM_NOTES[ride],))) == 8                # the ride from the next bar


def test_the_crash_after_a_fill_is_as_loud_as_its_last_stroke() -> None:
    """A reviewer heard a fill at 110 land on a crash at 64: the crash is the fill's arrival."""
    clock = InternalClock(bpm=120.0, start=0.0)
    ons = play(Player(clock, PlayerSettings(fill_every=4, crash_every=8), made()), clock, 9)
    fill_notes = {GM_NOTES[v] for v in fills.FILL_VOICES}
    last = max((e for e in ons if e.message.note in fill_notes and 7 * 16 <= clock.position(e.time) < 8 * 16),
               key=lambda e: e.time)
    crash = next(e for e in ons if e.message.note == GM_NOTES[VOICES.index("crash")]
                 and round(clock.position(e.time)) == 8 * 16)
    kick = next(e for e in ons if e.message.note == GM_NOTES[KICK] and round(clock.position(e.time)) == 8 * 16)
    assert crash.message.velocity >= last.message.velocity > kick.message.velocity   # louder than the kick under it


def test_after_joining_a_section_phrases_count_from_the_join() -> None:
    """The ballad a reviewer heard: the big fill that joins a section, then another 4 bars later.
    A section from bar 11 (0-based 10), heard at bar 13: the join's big fill ends bar 14 (13),
    and the phrases count from its crash, so bar 18 (17) has a pickup and bar 22 (21) the next big fill."""
    clock = InternalClock(bpm=120.0, start=0.0)
    player = Player(clock, PlayerSettings(fill_every=4, crash_every=8), made())
    events, now, told = [], 0.0, False
    while now < clock.time_at(24 * STEPS_PER_BAR - 0.5) - player.settings.lookahead:
        if not told and clock.position(now) >= 12 * STEPS_PER_BAR + 2:
            player.section(10.0 * STEPS_PER_BAR, now)
            told = True
        events += player.schedule(now)
        now += 0.005
    ons = [e for e in events + player.drain() if e.message.type == "note_on"]
    toms = steps_with(ons, clock, TOM_NOTES)
    strokes = steps_with(ons, clock, TOM_NOTES + (GM_NOTES[SNARE],))
    big = [bar for bar, steps in strokes.items() if {8, 10} <= set(steps)]   # beat 3 too: a big fill
    pickups = [bar for bar in toms if bar not in big]                        # the last beat only
    assert big == [7, 13, 21] and pickups == [3, 11, 17]

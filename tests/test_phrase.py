"""Crash phrasing: a crash marks where something begins (the player comes in, a new section, the
return from a rest); otherwise at most one every `crash_every` bars; never a crash on every bar."""
import mido
import numpy as np
import pytest

from appliance.core.engine import EngineSettings
from appliance.core.groove import GM_NOTES, NUM_VOICES, STEPS, STEPS_PER_BAR, Pattern
from appliance.core.fills import fill_bar, tom_groove
from appliance.core.phrase import CRASH, RIDE, Onset, Phrasing, Ran, Run, entry_downbeat, marked_downbeat, run_lands
from appliance.core.player import Player, PlayerSettings
from appliance.core.transport import InternalClock
from tests.conftest import make_engine

KICK, CLOSED_HAT, TOM = 0, 2, 5
STEP = 0.125     # seconds per step at 120 BPM
PASS = STEPS * STEP


def pattern(crash_steps=(0, 16), time_on=CLOSED_HAT) -> Pattern:
    """Kick on the beats, eighths on the hats (or the ride), crashes on these steps."""
    steps = np.zeros((STEPS, NUM_VOICES, 3), np.float32)
    steps[0::4, KICK] = (1, 0.9, 0.0)
    steps[0::2, time_on] = (1, 0.6, 0.0)
    for s in crash_steps:
        steps[s, CRASH] = (1, 0.8, 0.0)
    return Pattern(steps)


def play(player: Player, clock: InternalClock, bars: int, marks=(), landings=()) -> list:
    """Schedule ``bars`` bars (marks: (time, position) of player.mark calls; landings: of
    player.pickup calls back into the form); every note-on."""
    events, now, marks, landings = [], 0.0, sorted(marks), sorted(landings)
    end = clock.time_at(bars * STEPS_PER_BAR - 0.5) - player.settings.lookahead - 1e-9
    while now < end:
        while marks and marks[0][0] <= now:
            player.mark(marks.pop(0)[1], now)
        while landings and landings[0][0] <= now:
            player.pickup(landings.pop(0)[1], now, begins=False)
        events += player.schedule(now)
        now += 0.005
    return [e for e in events + player.drain() if e.message.type == "note_on"]


def bars_with(events, clock: InternalClock, note: int) -> list[int]:
    """Bars (from 0) in which this note sounds."""
    return sorted({int(round(clock.position(e.time)) // STEPS_PER_BAR) for e in events if e.message.note == note})


def longest_run(bars: list[int]) -> int:
    best = run = 0
    for b in range(max(bars, default=-1) + 1):
        run = run + 1 if b in bars else 0
        best = max(best, run)
    return best


@pytest.mark.parametrize("position, downbeat", [(0.0, 0), (-0.4, 0), (1.9, 0), (15.3, 16), (12.0, 16),
                                                (18.5, 32), (30.0, 32), (31.9, 32)])
def test_a_note_marks_the_bar_line_it_is_played_on_else_the_next(position, downbeat) -> None:
    assert marked_downbeat(position) == downbeat


def test_a_crash_on_every_bar_plays_once_every_8_bars_and_the_rest_go_to_the_ride() -> None:
    clock = InternalClock(bpm=120.0, start=0.0)
    player = Player(clock, PlayerSettings(), pattern(time_on=RIDE))      # a ride groove
    ons = play(player, clock, 24)
    crash = bars_with(ons, clock, GM_NOTES[CRASH])
    assert crash == [0, 8, 16]
    assert longest_run(crash) == 1
    downbeat_rides = [e for e in ons if e.message.note == GM_NOTES[RIDE]
                      and round(clock.position(e.time)) % STEPS_PER_BAR == 0]
    assert len(downbeat_rides) == 24          # every downbeat keeps its cymbal: the ride


def test_on_the_hats_a_crash_held_back_is_left_out() -> None:
    clock = InternalClock(bpm=120.0, start=0.0)
    player = Player(clock, PlayerSettings(crash_every=4), pattern())
    ons = play(player, clock, 16)
    assert bars_with(ons, clock, GM_NOTES[CRASH]) == [0, 4, 8, 12]
    assert not any(e.message.note == GM_NOTES[RIDE] for e in ons)


def test_crash_every_0_plays_the_models_crashes_as_they_are() -> None:
    clock = InternalClock(bpm=120.0, start=0.0)
    player = Player(clock, PlayerSettings(crash_every=0), pattern())
    assert bars_with(play(player, clock, 21), clock, GM_NOTES[CRASH]) == list(range(21))


@pytest.mark.parametrize("position, downbeat", [(0.0, 0), (-0.4, 0), (1.9, 0), (2.5, 0), (4.0, 0), (3.7, 0),
                                                (5.4, 0), (5.7, 16), (6.0, 16), (12.0, 16), (15.3, 16),
                                                (20.1, 16), (21.6, 32)])
def test_a_player_who_comes_in_by_beat_2s_e_comes_in_on_that_bar_later_is_a_pickup(
        position: float, downbeat: int) -> None:
    """A reviewer's reggae part (the skank on 2 and 4) and a pop part after a rest on beat 1 were
    heard as pickups into bar 2, so their phrases ran a bar late; a pickup from the "and" of 2
    played a touch early was heard as bar 1's."""
    assert entry_downbeat(position) == downbeat


@pytest.mark.parametrize("latest, position, lands", [(4.0, 6.0, None), (4.0, 8.0, False), (14.0, 15.6, True),
                                                     (14.1, 16.2, True), (12.0, 15.9, False), (4.1, 12.0, False),
                                                     (13.5, 15.0, None), (14.67, 16.0, True), (13.4, 16.0, True), (13.0, 16.0, False),
                                                     (15.0, 17.0, False), (16.0, 15.0, False)])
def test_a_run_from_beat_2_that_lands_on_the_next_bar_line_was_a_pickup(
        latest: float, position: float, lands: bool | None) -> None:
    """Notes an eighth apart or closer, straight or swung 2:1, from beat 2 into the next bar line
    are a pickup (a reviewer's keys fill into the band's return, a run into bar 1); a gap wider
    than a swung eighth, a skank's or a funk riff's dotted eighth, is a part that rests on beat 1,
    and so is a run that goes past the bar line without a note on it."""
    assert run_lands(0, latest, position) is lands


def test_a_pickup_after_all_takes_back_what_the_late_entry_counted() -> None:
    """The player came in on beat 2 (crashes count from that bar) and the run landed on the next
    bar line: that downbeat gets its crash, the 8-bar crashes count from it (not taken back, the
    late entry's spacing refuses it)."""
    for pickup in (False, True):
        phrasing = Phrasing(every=8, fill_every=4)
        playing = pattern(crash_steps=(0, 16))
        phrasing.came_in_late(0)
        if pickup:
            phrasing.was_a_pickup(STEPS_PER_BAR)
        phrasing.begin(STEPS_PER_BAR)
        phrasing.mark(STEPS_PER_BAR, begins=True)
        crashes = [step // STEPS_PER_BAR for step in range(STEPS_PER_BAR, 20 * STEPS_PER_BAR)
                   if phrasing.take(step, playing.steps[step % STEPS], playing)[CRASH, 0] >= 0.5]
        assert crashes == ([1, 9, 17] if pickup else [9, 17])


def test_a_player_who_comes_in_too_late_for_the_crash_still_counts_the_phrase_from_there() -> None:
    """The crash every 8 bars counts from the bar the player came in on, though its crash could
    not play (the note came on beat 2); with nothing to count from, a pattern's crash played
    on bar 5's phrase."""
    for late in (False, True):
        phrasing = Phrasing(every=8, fill_every=4)
        playing = pattern(crash_steps=(0,))
        if late:
            phrasing.came_in_late(0)
        crashes = [step // STEPS_PER_BAR for step in range(4 * STEPS_PER_BAR, 24 * STEPS_PER_BAR)
                   if phrasing.take(step, playing.steps[step % STEPS], playing)[CRASH, 0] >= 0.5]
        assert crashes == ([8, 16] if late else [4, 12, 20])


def test_a_new_section_heard_a_bar_after_a_return_or_a_pass_before_it_is_the_return() -> None:
    """The player came back on an even bar, between two of the looper's passes, and the looper
    heard the new section from the next pass; or it heard one from the pass before, which held
    the rest and the pickup into the return: no second crash and the phrases keep counting from
    the return (a reviewer's reggae part crashed 5 bars after its return, its fills a bar off;
    another's rock part counted its phrases from 2 bars after its return)."""
    playing = pattern(crash_steps=())
    # a bar on, and a pass before (the pass that held the rest and a pickup into the return), are
    # the return; a pass on is a section of its own
    for section, crashes in ((19, []), (16, []), (21, [25])):
        phrasing = Phrasing(every=8, fill_every=4)
        phrasing.begin(18 * STEPS_PER_BAR)
        phrasing.section(section * STEPS_PER_BAR, max(section + 2, 18) * STEPS_PER_BAR)
        assert (phrasing.origin == 18 * STEPS_PER_BAR) == (section != 21)
        assert crashes == [step // STEPS_PER_BAR for step in range(19 * STEPS_PER_BAR, 32 * STEPS_PER_BAR)
                           if phrasing.take(step, playing.steps[step % STEPS], playing)[CRASH, 0] >= 0.5]
    phrasing = Phrasing(every=8, fill_every=4)   # the pass before, heard before the return's note came
    phrasing.section(16 * STEPS_PER_BAR, 18 * STEPS_PER_BAR)
    phrasing.begin(18 * STEPS_PER_BAR)
    assert phrasing.origin == 18 * STEPS_PER_BAR
    assert not [step for step in range(18 * STEPS_PER_BAR, 32 * STEPS_PER_BAR)
                if phrasing.take(step, playing.steps[step % STEPS], playing)[CRASH, 0] >= 0.5]


def test_a_marked_downbeat_gets_a_crash_and_marks_come_4_bars_apart() -> None:
    clock = InternalClock(bpm=120.0, start=0.0)
    player = Player(clock, PlayerSettings(), pattern(crash_steps=()))
    # a mark ahead of the schedule (bar 4), one too soon after it (bar 6), one late (bar 12:
    # the note comes 20 ms after the downbeat was scheduled), one too late to play (bar 20)
    marks = [(clock.time_at(60.0), 64.0), (clock.time_at(90.0), 95.0),
             (clock.time_at(192.0) + 0.02, 192.1), (clock.time_at(320.0) + 0.2, 320.0)]
    ons = play(player, clock, 24, marks)
    crashes = [e for e in ons if e.message.note == GM_NOTES[CRASH]]
    assert bars_with(crashes, clock, GM_NOTES[CRASH]) == [4, 12]
    assert crashes[0].time == pytest.approx(clock.time_at(64.0))
    late = crashes[1].time - clock.time_at(192.0)
    assert 0 <= late <= player.settings.max_late
    assert crashes[0].message.velocity == round(0.9 * 127)      # as loud as the kick under it


def test_a_crash_of_the_models_plays_only_where_a_phrase_begins() -> None:
    """A pattern with its crash on the second bar crashed on bars 2, 10, 18 counted from the
    player's entry; a drummer crashes where a phrase begins (a review's pop song: on bar 18, the
    chorus's second bar, where the crash after the fill into bar 21 was then too close)."""
    phrasing = Phrasing(every=8, fill_every=4)
    playing = pattern(crash_steps=(16,))
    crashes = [step // STEPS_PER_BAR for step in range(24 * STEPS_PER_BAR)
               if phrasing.take(step, playing.steps[step % STEPS], playing)[CRASH, 0] >= 0.5]
    assert crashes == []
    phrasing = Phrasing(every=8, fill_every=4)
    playing = pattern(crash_steps=(0,))
    crashes = [step // STEPS_PER_BAR for step in range(24 * STEPS_PER_BAR)
               if phrasing.take(step, playing.steps[step % STEPS], playing)[CRASH, 0] >= 0.5]
    assert crashes == [0, 8, 16]


def test_the_spacing_starts_over_after_a_jump() -> None:
    phrasing = Phrasing(8)
    playing = pattern()
    cells = playing.steps[0]
    assert phrasing.take(0, cells, playing)[CRASH, 0] == 1
    assert phrasing.take(64, cells, playing)[CRASH, 0] == 0     # bar 5 begins a phrase, 4 bars on
    phrasing.forget()
    assert phrasing.take(64, cells, playing)[CRASH, 0] == 1


# -- through the engine, on a virtual clock, with the real model -----------------------------

def note(n: int, velocity: int = 90) -> mido.Message:
    return mido.Message("note_on", note=n, velocity=velocity)


def comp(passes: range, steps) -> list:
    out = []
    for k in passes:
        for s in steps:
            t = (k * STEPS + s) * STEP + 0.003
            out += [(t, note(60 + s % 12)), (t + STEP / 2, mido.Message("note_off", note=60 + s % 12))]
    return out


def run(engine, start: float, end: float, notes=()) -> list:
    pending, events, now = sorted(notes, key=lambda item: item[0]), [], start
    while now < end:
        while pending and pending[0][0] <= now:
            t, message = pending.pop(0)
            engine.handle(message, t)
        events += engine.tick(now)
        now += 0.01
    return [e for e in events if e.message.type == "note_on"]


def crash_times(events) -> list[float]:
    return [e.time for e in events if e.message.note == GM_NOTES[CRASH]]


def test_engine_crashes_where_the_player_comes_in_and_back_from_a_rest(generator) -> None:
    engine = make_engine(generator, settings=EngineSettings(drift=0.0))
    groove = [0, 3, 6, 8, 12, 16, 19, 22, 24, 28]
    events = run(engine, 0.0, 12 * PASS, comp(range(0, 4), groove) + comp(range(7, 12), groove))
    crashes = crash_times(events)
    assert any(abs(t - 0.0) <= 0.05 for t in crashes), f"no crash where the player came in: {crashes}"
    back = 7 * PASS                                        # two passes and a half of rest, then back
    assert any(0 <= t - back <= 0.05 for t in crashes), f"no crash on the return at {back}: {crashes}"
    bars = sorted({int(round(t / STEP)) // STEPS_PER_BAR for t in crashes})
    assert longest_run(bars) <= 2


def test_engine_a_stab_left_ringing_under_the_pedal_while_the_band_rests_is_a_rest(generator) -> None:
    """A stab on bar 9 and the pedal down until the band is back on bar 11: the player comes back
    from a rest there, with a crash (the hands decide the return; the ringing pedal only keeps
    the drums from thinning)."""
    engine = make_engine(generator, settings=EngineSettings(drift=0.0))
    groove = [0, 4, 8, 12, 16, 20, 24, 28]
    pedal = [(4 * PASS, mido.Message("control_change", control=64, value=127)),
             (5 * PASS + 0.05, mido.Message("control_change", control=64, value=0))]
    events = run(engine, 0.0, 7 * PASS, comp(range(0, 4), groove) + comp(range(4, 5), [0]) + pedal
                 + comp(range(5, 7), groove))
    assert any(0 <= t - 5 * PASS <= 0.05 for t in crash_times(events)), crash_times(events)
    assert engine.played_controls().density == engine.controls.density


def test_engine_a_chord_a_bar_a_moment_late_is_no_rest(generator) -> None:
    """Chords on each bar's 1, after a figure that also played beat 3: a chord that comes a
    moment late, one bar after the last, is not the player coming back from a rest. (Short
    chords on the 1 and nothing else are stop time, whose every hit gets its crash: off here.)"""
    engine = make_engine(generator, settings=EngineSettings(drift=0.0, stop_time=False))
    late = [(t + 0.02, m) for t, m in comp(range(4, 8), [0, 16])]
    events = run(engine, 0.0, 8 * PASS, comp(range(0, 4), [0, 8, 16, 24]) + late)
    assert all(abs(t - round(t / (4 * PASS)) * 4 * PASS) <= 0.05 for t in crash_times(events)), \
        f"crashes besides the entry's and the 8-bar grid's: {crash_times(events)}"


def test_engine_a_new_section_is_marked_on_the_loop_point_where_the_drums_follow_it(generator) -> None:
    # no crash at bar 9, and no fills (the crash after the fill into bar 9 would take the mark:
    # test_fills has that)
    engine = make_engine(generator, settings=EngineSettings(drift=0.0, crash_every=16, fill_every=0))
    verse, chorus = [0, 4, 8, 12, 16, 20, 24, 28], [2, 3, 6, 10, 14, 18, 22, 26, 30]
    events = run(engine, 0.0, 8 * PASS, comp(range(0, 4), verse) + comp(range(4, 8), chorus))
    assert any(0 <= t - 5 * PASS <= 0.05 for t in crash_times(events)), crash_times(events)


def test_engine_crash_every_is_a_live_setting(generator) -> None:
    engine = make_engine(generator)
    engine.update_settings(crash_every=0)
    assert engine.player.settings.crash_every == 0
    with pytest.raises(ValueError):
        engine.update_settings(crash_every=65)


LOW_TOM, HIGH_TOM = 4, 6


def fill_pattern(fill_bars=(1,), toms=4) -> Pattern:
    """Kick and hat eighths; ``toms`` tom hits at the end of each bar in ``fill_bars``."""
    steps = pattern(crash_steps=()).steps.copy()
    for bar in fill_bars:
        for k in range(toms):
            steps[bar * STEPS_PER_BAR + STEPS_PER_BAR - 1 - k, LOW_TOM if k % 2 else HIGH_TOM] = (1, 0.8, 0.0)
    return Pattern(steps)


@pytest.mark.parametrize("fill_bars, toms, expected", [((1,), 4, 1), ((0,), 2, 0), ((0, 1), 4, None),
                                                       ((1,), 1, None), ((), 0, None)])
def test_a_fill_is_a_bar_of_toms_the_other_bar_has_few_of(fill_bars, toms, expected) -> None:
    assert fill_bar(fill_pattern(fill_bars, toms).steps) == expected


def landed(notes: list[tuple[float, int, int]], off_groove: frozenset[int] = frozenset(),
           back_inside: bool = False) -> Ran | None:
    """What a run back from beat 2 of bar 1 (entry 0) says at its last note: notes (position,
    pitch, velocity); the groove plays every eighth but the steps in ``off_groove``; ``back_inside``:
    back into the form, toward a bar line inside a phrase."""
    def on(position: float) -> bool:
        step = int(np.floor(position + 0.5))
        return step % 2 == 0 and step not in off_groove
    (first, pitch, velocity), *rest = notes
    run = Run(0, first, [Onset(first, {pitch}, velocity)], first_off=not on(first), back_inside=back_inside)
    said = [run.hear(position, pitch, velocity, on(position)) for position, pitch, velocity in rest]
    assert all(word is None for word in said[:-1]), said
    return said[-1]


def chords(at: list[float], pitches=(60, 64, 67), velocities=None) -> list[tuple[float, int, int]]:
    """A chord at each position (its notes in the order given), then the landing chord on the 1."""
    velocities = velocities or [70] * len(at)
    return [(p, n, v) for p, v in zip(at, velocities) for n in pitches] + [(16.0, 48, 90)]


EIGHTHS = [4.0, 6.0, 8.0, 10.0, 12.0, 14.0]   # beat 2 to the "and" of 4


def test_a_comp_taken_up_again_lands_as_the_groove_and_a_line_as_a_pickup() -> None:
    assert landed(chords(EIGHTHS)) is Ran.FIGURE                              # the comp's chord again and again
    assert landed(chords(EIGHTHS, pitches=(67, 60, 64))) is Ran.FIGURE        # its notes in any order
    assert landed(chords(EIGHTHS), off_groove=frozenset({16})) is Ran.PICKUP   # landing on a 1 the groove leaves out
    assert landed(chords(EIGHTHS), off_groove=frozenset({8})) is Ran.PICKUP    # a note off the groove's steps
    hit = frozenset({4})
    assert landed(chords(EIGHTHS), off_groove=hit, back_inside=True) is Ran.FIGURE   # ... but the hit it comes back with
    assert landed(chords(EIGHTHS), off_groove=hit) is Ran.PICKUP                      # ... into a phrase's first bar, a stab
    lick = [(5.0, 67, 70), (6.0, 69, 70), (8.0, 72, 70), (10.0, 69, 70), (12.0, 67, 70), (14.0, 64, 70), (16.0, 48, 90)]
    assert landed(lick, back_inside=True) is Ran.PICKUP                               # ... or a lick's first note
    line = [(p, 60 + 2 * k, 70) for k, p in enumerate(EIGHTHS)] + [(16.0, 48, 90)]
    assert landed(line) is Ran.PICKUP                                          # a new note every onset
    again = [(4.0, 60, 70), (6.0, 62, 70), (8.0, 65, 70), (10.0, 60, 70), (12.0, 67, 70), (14.0, 69, 70), (16.0, 48, 90)]
    assert landed(again) is Ran.FIGURE                                        # the first onset played again
    assert landed([(4.0, 60, 70), (8.0, 60, 70)]) is Ran.OFF             # a gap wider than RUN_GAP: it broke off


def test_a_rolled_chord_is_one_onset_judged_where_it_began() -> None:
    """A chord rolled over 0.3 of a step, its last note rounding onto the next (odd) step: one
    onset on the groove's step, not a note off it."""
    rolled = [(p + dp, n, 70) for p in EIGHTHS for dp, n in ((0.2, 60), (0.35, 64), (0.5, 67))] + [(16.0, 48, 90)]
    assert landed(rolled) is Ran.FIGURE


@pytest.mark.parametrize("velocities, builds", [([60, 68, 76, 84, 92, 100], True), ([60, 70, 66, 80, 90, 100], True),
                                                ([60, 70, 65, 80, 90, 100], False), ([70, 74, 78, 82, 86, 88], False)])
def test_one_chord_building_into_the_1_is_a_pickup(velocities: list[int], builds: bool) -> None:
    """20 or more louder by the last of 4 or more onsets, none more than 4 softer than the one
    before: a build into the band's 1, a pickup."""
    assert landed(chords(EIGHTHS, velocities=velocities)) is (Ran.PICKUP if builds else Ran.FIGURE)


def tom_bars(ons, clock: InternalClock) -> list[int]:
    return sorted(set(bars_with(ons, clock, GM_NOTES[LOW_TOM])) | set(bars_with(ons, clock, GM_NOTES[HIGH_TOM])))


@pytest.mark.parametrize("fill_bars", [(1,), (0,)])
def test_a_looped_fill_plays_at_the_end_of_every_4_bars_and_the_groove_bar_elsewhere(fill_bars) -> None:
    clock = InternalClock(bpm=120.0, start=0.0)
    player = Player(clock, PlayerSettings(), fill_pattern(fill_bars))
    ons = play(player, clock, 16)
    assert tom_bars(ons, clock) == [3, 7, 11, 15]
    kicks = bars_with(ons, clock, GM_NOTES[KICK])
    assert kicks == list(range(16))        # the groove goes on in every bar


def test_fill_every_0_plays_the_models_fills_as_they_are_and_a_tom_groove_always_plays() -> None:
    """A tom groove: the same four tom steps in both bars."""
    clock = InternalClock(bpm=120.0, start=0.0)
    player = Player(clock, PlayerSettings(fill_every=0), fill_pattern((1,)))
    assert tom_bars(play(player, clock, 8), clock) == [1, 3, 5, 7]
    clock = InternalClock(bpm=120.0, start=0.0)
    player = Player(clock, PlayerSettings(), fill_pattern((0, 1), toms=4))
    assert tom_bars(play(player, clock, 8), clock) == list(range(8))


def test_a_fill_leads_into_a_marked_downbeat() -> None:
    clock = InternalClock(bpm=120.0, start=0.0)
    player = Player(clock, PlayerSettings(), fill_pattern((1,)))
    # a new section heard ahead of time, marked on bar 6's downbeat: bar 5 fills, then bars 7, 11
    ons = play(player, clock, 12, [(clock.time_at(60.0), 96.0)])
    assert tom_bars(ons, clock) == [3, 5, 7, 11]


@pytest.mark.parametrize("bar, crashes", [(11, [8, 11, 16]), (14, [8, 14, 16]), (15, [8, 15, 16])])
def test_a_pickup_back_into_the_form_does_not_put_off_the_crash_after_the_next_big_fill(
        bar: int, crashes: list[int]) -> None:
    """A walk-up from bars dropped inside a phrase lands on bar 11 (or 14, 15) with its crash; the
    big fill at the end of bar 15 still leads into a crash on 16, the 8-bar phrase's head, as
    from the crash on 8 (a musician review's gospel walk-up, review-s34's x10, lost it, and a
    crash of the model's played on 20 instead; review-s35's s10 heard the fill out of a landing
    a bar before land on nothing: a fill that lands on nothing is the worst sound there is)."""
    clock = InternalClock(bpm=120.0, start=0.0)
    player = Player(clock, PlayerSettings(), fill_pattern((1,)))
    at = bar * STEPS_PER_BAR - 0.3   # the walk-up's last note, a moment before the bar line
    ons = play(player, clock, 20, landings=[(clock.time_at(at), at)])
    assert bars_with(ons, clock, GM_NOTES[CRASH]) == crashes
    assert tom_bars(ons, clock) == [3, 7, 11, 15, 19]   # the form goes on


def test_a_section_heard_around_a_return_into_the_form_is_that_return() -> None:
    """The player comes back into the form in bar 14 (phrases counting on from bar 1); the looper
    hears sections begin on 13 and 15 (the rest, then the same riff again): that was the return,
    and phrases still count from bar 1 (review-s35's s02: a funk clav's 3-bar lay-out moved its
    fills to 18, 22, 26 and 30). A section heard 3 bars on is one."""
    phrasing = Phrasing(every=8, fill_every=4)
    phrasing.back_in(13 * STEPS_PER_BAR)
    for bar in (12, 14):
        phrasing.section(bar * STEPS_PER_BAR, (bar + 2) * STEPS_PER_BAR)
        assert phrasing.origin == 0
    phrasing.section(16 * STEPS_PER_BAR, 18 * STEPS_PER_BAR)
    assert phrasing.origin == 20 * STEPS_PER_BAR   # joins at the section's next phrase


def test_fill_every_is_checked() -> None:
    with pytest.raises(ValueError, match="fill_every"):
        PlayerSettings(fill_every=65)


def test_toms_sprinkled_in_both_bars_play_only_at_the_end_of_an_8_bar_phrase() -> None:
    """A pattern with no made fill (Pattern.fill None): its toms where the big fill would go."""
    steps = fill_pattern((0, 1), toms=1).steps
    clock = InternalClock(bpm=120.0, start=0.0)
    ons = play(Player(clock, PlayerSettings(), Pattern(steps)), clock, 16)
    assert tom_bars(ons, clock) == [7, 15]
    assert bars_with(ons, clock, GM_NOTES[KICK]) == list(range(16))


def test_a_fill_in_both_bars_on_other_steps_is_not_a_tom_groove() -> None:
    steps = np.zeros((STEPS, NUM_VOICES, 3), np.float32)
    steps[0::4, KICK] = (1, 0.9, 0.0)
    steps[[8, 10, 12, 14], LOW_TOM] = (1, 0.8, 0.0)          # a run into bar 2...
    steps[[17, 19, 21, 23], HIGH_TOM] = (1, 0.8, 0.0)        # ...and a different one in it
    assert not tom_groove(steps) and tom_groove(fill_pattern((0, 1), toms=4).steps)
    clock = InternalClock(bpm=120.0, start=0.0)
    assert tom_bars(play(Player(clock, PlayerSettings(), Pattern(steps)), clock, 8), clock) == [7]


def test_phrases_count_from_bar_1_after_a_lead_in() -> None:
    clock = InternalClock(bpm=120.0, start=0.0)
    player = Player(clock, PlayerSettings(), fill_pattern((1,)))
    player.phrase_from(2 * STEPS_PER_BAR)      # bar 1 of the song is the third bar played
    assert tom_bars(play(player, clock, 16), clock) == [1, 5, 9, 13]


def cymbals(phrasing: Phrasing, bars: int, playing, marks=()) -> list[tuple[int, int]]:
    """(closed hat, ride) hits in each bar, ``playing(step)`` the pattern at each step; marks:
    (step, downbeat) of a section's mark."""
    played, marks = [], dict(marks)
    for step in range(bars * STEPS_PER_BAR):
        if step in marks:
            phrasing.mark(marks[step])
        current = playing(step)
        played.append(phrasing.take(step, current.steps[step % STEPS], current)[:, 0] >= 0.5)
    return [(sum(p[CLOSED_HAT] for p in played[b * 16:(b + 1) * 16]), sum(p[RIDE] for p in played[b * 16:(b + 1) * 16]))
            for b in range(bars)]


def test_the_time_is_taken_from_the_pattern_playing_a_bar_after_the_player_comes_in() -> None:
    """The first patterns hear a beat or a bar of the groove: a reviewer's jazz ballad was held on
    the hat for 15 bars because the pattern playing where the player came in kept time there."""
    hats, ride = pattern(crash_steps=(0,)), pattern(crash_steps=(), time_on=RIDE)
    playing = lambda step: hats if step < 4 or 4 * STEPS_PER_BAR <= step < 6 * STEPS_PER_BAR else ride
    bars = cymbals(Phrasing(every=8, fill_every=0), 8, playing)
    assert bars[0] == (2, 6)                      # the first bar plays as the patterns come
    assert bars[1:] == [(0, 8)] * 7               # then the ride: a pass of hats in bars 5-6 plays there too


def test_the_time_goes_to_the_cymbal_the_first_bar_kept_it_on_most() -> None:
    """Not to the pattern that happens to play on the second downbeat: a reviewer's rock verse,
    all on the hat, went to the ride for two bars because one pattern there wanted it."""
    hats, ride = pattern(crash_steps=(0,)), pattern(crash_steps=(), time_on=RIDE)
    playing = lambda step: ride if STEPS_PER_BAR <= step < STEPS_PER_BAR + 4 else hats
    bars = cymbals(Phrasing(every=8, fill_every=0), 6, playing)
    assert bars == [(8, 0)] * 6


def test_patterns_changing_cymbal_every_bar_do_not_move_the_time() -> None:
    """In the phrase where the time settles, a pass must lean on the other cymbal
    (``LEANS``), not one bar of it."""
    hats, ride = pattern(crash_steps=(0,)), pattern(crash_steps=(), time_on=RIDE)
    playing = lambda step: ride if (step // STEPS_PER_BAR) % 2 else hats
    bars = cymbals(Phrasing(every=8, fill_every=0), 8, playing)
    assert bars == [(8, 0)] * 8


def test_the_time_moves_on_the_crash_where_the_player_comes_back() -> None:
    """A return from a rest is a new start: its crash moves the time to the pattern's cymbal, not
    a bar later (a reviewer heard the crash on the hat, then the ride with no crash)."""
    phrasing = Phrasing(every=8, fill_every=0)
    hats, ride = pattern(crash_steps=()), pattern(crash_steps=(), time_on=RIDE)
    comes_back = 10 * STEPS_PER_BAR
    played = []
    for step in range(12 * STEPS_PER_BAR):
        if step == comes_back - 6:
            phrasing.mark(comes_back, begins=True)
        current = hats if step < comes_back else ride
        played.append(phrasing.take(step, current.steps[step % STEPS], current))
    assert played[comes_back][CRASH, 0] >= 0.5
    assert all(cells[RIDE, 0] >= 0.5 for cells in played[comes_back:comes_back + 32:2])
    # moved there, it settles: hat patterns leaning a pass in the phrase after the return do not
    # move it back without a crash (a reviewer heard the ride at the return, the hat 3 bars on)
    phrasing = Phrasing(every=8, fill_every=0)
    played = []
    for step in range(16 * STEPS_PER_BAR):
        if step == comes_back - 6:
            phrasing.mark(comes_back, begins=True)
        current = ride if comes_back <= step < comes_back + STEPS_PER_BAR else hats
        played.append(phrasing.take(step, current.steps[step % STEPS], current))
    assert all(cells[RIDE, 0] >= 0.5 and cells[CLOSED_HAT, 0] < 0.5
               for cells in played[comes_back:comes_back + 4 * STEPS_PER_BAR:2])


def test_a_crash_nobody_marked_moves_the_time_only_after_a_pass_on_the_other_cymbal() -> None:
    """The crash every 8 bars is timed, not heard: a ride pattern coming in with it (bars 9-10)
    keeps its time on the hat; one that has played most of a pass by the next such crash takes it."""
    hats, ride = pattern(crash_steps=(0,)), pattern(crash_steps=(0,), time_on=RIDE)
    playing = lambda step: ride if 8 <= step // STEPS_PER_BAR < 10 or step // STEPS_PER_BAR >= 12 else hats
    bars = cymbals(Phrasing(every=8, fill_every=0), 20, playing)
    assert bars[1:16] == [(8, 0)] * 15
    assert bars[16:] == [(0, 8)] * 4              # the crash on bar 17 (from 1) moves it


def test_the_groove_bar_standing_in_for_a_fill_bar_keeps_the_phrases_time() -> None:
    """Inside a phrase a pattern's fill bar gives way to its groove bar: the cymbal that bar keeps
    time on is the groove bar's (the 6/8 part kept flashing a bar of ride where the fill bar,
    keeping no time, was asked)."""
    phrasing = Phrasing(every=8, fill_every=4)
    hats = pattern(crash_steps=(0,))
    steps = pattern(crash_steps=(), time_on=RIDE).steps.copy()
    steps[STEPS_PER_BAR:, RIDE] = 0.0                                  # its second bar: a tom fill
    steps[STEPS_PER_BAR + 4::2, TOM] = (1, 0.8, 0.0)
    ride = Pattern(steps)
    assert fill_bar(ride.steps) == 1
    playing = lambda step: hats if step < 4 * STEPS_PER_BAR else ride
    bars = []
    for step in range(7 * STEPS_PER_BAR):
        current = playing(step)
        cells = phrasing.take(step, phrasing.fill(step, current), current)
        if step % STEPS_PER_BAR == 0:
            bars.append([0, 0])
        bars[-1][0] += cells[CLOSED_HAT, 0] >= 0.5
        bars[-1][1] += cells[RIDE, 0] >= 0.5
    assert bars[4:7] == [[8, 0]] * 3                                   # bar 6 is the groove bar, on the hat


def test_a_section_crash_played_late_moves_the_time_with_it() -> None:
    """The live box often hears a section after its downbeat is scheduled; the crash then plays
    late (Player.mark), and the time moves from the next step, as it would at the crash."""
    phrasing = Phrasing(every=8, fill_every=0)
    hats, ride = pattern(crash_steps=()), pattern(crash_steps=(), time_on=RIDE)
    played = [phrasing.take(step, hats.steps[step % STEPS], hats) for step in range(8 * STEPS_PER_BAR)]
    for step in range(8 * STEPS_PER_BAR, 8 * STEPS_PER_BAR + 3):
        played.append(phrasing.take(step, ride.steps[step % STEPS], ride))
    assert played[8 * STEPS_PER_BAR + 2][CLOSED_HAT, 0] >= 0.5      # the ride plays on the hat
    assert phrasing.welcome_late(8 * STEPS_PER_BAR)
    step = 8 * STEPS_PER_BAR + 4
    cells = phrasing.take(step, ride.steps[step % STEPS], ride)
    assert cells[RIDE, 0] >= 0.5 and cells[CLOSED_HAT, 0] < 0.5


def test_the_time_settles_in_the_phrase_where_the_player_comes_in() -> None:
    """Without a crash, the time moves to a cymbal the patterns have wanted through most of a pass,
    in the first phrase only (4 bars): there the groove is still coming together."""
    hats, ride = pattern(crash_steps=()), pattern(crash_steps=(), time_on=RIDE)
    early = cymbals(Phrasing(every=8, fill_every=0), 6, lambda step: hats if step < STEPS_PER_BAR + 4 else ride)
    assert early[1:3] == [(8, 0)] * 2 and early[3:] == [(0, 8)] * 3   # ride from bar 2, beat 2: the time from bar 4
    late = cymbals(Phrasing(every=8, fill_every=0), 12, lambda step: hats if step < 2 * STEPS_PER_BAR + 4 else ride)
    assert late[1:] == [(8, 0)] * 11                                  # from bar 3, beat 2: too late


def test_the_time_stays_on_the_hat_or_the_ride_until_a_crash_lets_it_move() -> None:
    """A pattern that moves the time to the ride mid-phrase plays its ride on the hat; from the
    next crash on a downbeat the ride plays. The time moving every few bars was a reviewer's
    first complaint on a 6/8 part (8.8 moves per 32 bars; GMD's drummers 0.67)."""
    phrasing = Phrasing(every=8, fill_every=0)
    hats, ride = pattern(crash_steps=(0,)), pattern(crash_steps=(), time_on=RIDE)
    played = {}
    for step in range(8 * STEPS_PER_BAR):
        current = hats if step < 2 * STEPS_PER_BAR + 4 else ride     # the ride pattern from bar 3, beat 2
        cells = phrasing.take(step, current.steps[step % STEPS], current)
        if step == 5 * STEPS_PER_BAR:                                  # a section's crash on bar 6
            phrasing.mark(6 * STEPS_PER_BAR)
        played[step] = cells
    on = lambda voice, bar: sum(played[bar * 16 + s][voice, 0] >= 0.5 for s in range(16))
    assert [on(CLOSED_HAT, bar) for bar in range(6)] == [8] * 6 and [on(RIDE, bar) for bar in range(6)] == [0] * 6
    assert played[6 * STEPS_PER_BAR][CRASH, 0] >= 0.5
    assert [on(RIDE, bar) for bar in (6, 7)] == [8, 8] and [on(CLOSED_HAT, bar) for bar in (6, 7)] == [0, 0]


def test_a_big_fill_rises_and_its_crash_plays_by_the_lift_and_a_pickup_does_not() -> None:
    """``Player.lift`` (dynamics.lift: a soft section in a song that was louder): the big fill's
    strokes rise to lift × as loud by its last step, its crash at least lift × the pattern's
    accent; the pickup fill and the groove as they were."""
    soft = fill_pattern((1,)).steps.copy()
    soft[..., 1] *= 0.5                                      # every hit at half its velocity
    heard = {}
    for lift in (1.0, 1.5):
        clock = InternalClock(bpm=120.0, start=0.0)
        player = Player(clock, PlayerSettings(), Pattern(soft))
        player.lift = lift
        ons = play(player, clock, 12)
        heard[lift] = {(int(round(clock.position(e.time))), e.message.note): e.message.velocity for e in ons}
    last_big = (7 * STEPS_PER_BAR + 15, GM_NOTES[HIGH_TOM])     # bar 8's last tom: the big fill's last stroke
    last_pickup = (3 * STEPS_PER_BAR + 15, GM_NOTES[HIGH_TOM])
    assert heard[1.5][last_big] == pytest.approx(1.5 * heard[1.0][last_big], abs=1.5)
    assert heard[1.5][last_pickup] == heard[1.0][last_pickup]
    crash = (8 * STEPS_PER_BAR, GM_NOTES[CRASH])
    assert heard[1.5][crash] >= 1.45 * heard[1.0][crash] - 1
    grooves = [k for k in heard[1.0] if k[1] == GM_NOTES[KICK]]
    assert all(heard[1.5][k] == heard[1.0][k] for k in grooves)


def test_inside_a_phrase_counts_from_where_phrases_count_from() -> None:
    """A phrase is ``fill_every`` bars (``every`` without fill phrasing) from the origin: its
    first bar line is not inside it, the others are; without phrasing nothing is."""
    phrasing = Phrasing(every=8, fill_every=4)
    assert not phrasing.inside_phrase(0) and not phrasing.inside_phrase(4 * STEPS_PER_BAR)
    assert phrasing.inside_phrase(STEPS_PER_BAR) and phrasing.inside_phrase(7 * STEPS_PER_BAR)
    phrasing.begin(2 * STEPS_PER_BAR)
    assert not phrasing.inside_phrase(6 * STEPS_PER_BAR) and phrasing.inside_phrase(4 * STEPS_PER_BAR)
    assert Phrasing(every=8, fill_every=0).inside_phrase(4 * STEPS_PER_BAR)
    assert not Phrasing(every=8, fill_every=0).inside_phrase(8 * STEPS_PER_BAR)
    assert not Phrasing(every=0, fill_every=0).inside_phrase(STEPS_PER_BAR)


def test_a_stray_ride_hit_in_a_hat_bar_is_played_on_the_hat() -> None:
    """A musician's review: 208 of 1,418 bars kept on the hat pinged the ride mid-bar
    ("RhhRhhhh"). Once the phrase keeps time on the hat, such a hit is played on the hat (or left
    out where the hat plays); a ride on the downbeat stays."""
    steps = pattern(crash_steps=()).steps.copy()
    steps[6, RIDE] = (1, 0.7, 0.0)      # a stray, on a step the hat does not play (the "a" of 2)
    steps[7, RIDE] = (1, 0.7, 0.0)
    steps[20, RIDE] = (1, 0.7, 0.0)     # on a step the hat plays too
    steps[16, RIDE] = (1, 0.9, 0.0)     # the second bar's downbeat: an accent
    clock = InternalClock(bpm=120.0, start=0.0)
    player = Player(clock, PlayerSettings(crash_every=8, fill_every=0), Pattern(steps))
    ons = play(player, clock, 8)
    rides = sorted({int(round(clock.position(e.time))) for e in ons if e.message.note == GM_NOTES[RIDE]})
    later = [s for s in rides if s >= STEPS_PER_BAR]
    assert all(s % STEPS_PER_BAR == 0 for s in later), rides
    hats = {int(round(clock.position(e.time))) for e in ons if e.message.note == GM_NOTES[CLOSED_HAT]}
    assert {s + 2 * STEPS for s in (6, 7)} <= hats, "the strays played on the hat"

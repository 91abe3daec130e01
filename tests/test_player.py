"""The player: exactly the pattern's hits, at the right times, every note-on with its note-off."""
from hypothesis import given, settings, strategies as st
import numpy as np
import pytest

from appliance.core.groove import GM_NOTES, NUM_VOICES, STEPS, STEPS_PER_BAR, Pattern
from appliance.core.phrase import CRASH
from appliance.core.player import Player, PlayerSettings
from appliance.core.transport import InternalClock


def pattern_with(cells: dict[tuple[int, int], tuple[float, float]]) -> Pattern:
    steps = np.zeros((STEPS, NUM_VOICES, 3), np.float32)
    for (step, voice), (velocity, offset) in cells.items():
        steps[step, voice] = (1, velocity, offset)
    return Pattern(steps)


def play(player: Player, until: float, window: float) -> list:
    events, now = [], 0.0
    while now < until:
        events.extend(player.schedule(now))
        now += window
    return events


def heard(events: list, ticked: list, cut: float | None, now: float) -> list:
    """The note-ons a drum machine gets, as the player thread sends them: what an ending or a jump
    withdrew (``cut``, from ``withdrawn()``) dropped from what waited, then this tick's added."""
    if cut is not None:
        events = [e for e in events if e.time < max(cut, now)]
    return events + [e for e in ticked if e.message.type == "note_on"]


CELLS = {(0, 0): (1.0, -0.25), (4, 1): (0.5, 0.2), (10, 2): (0.3, 0.0), (31, 8): (0.8, 0.4)}


@given(st.sampled_from([60.0, 97.0, 120.0, 240.0]), st.floats(0.001, 0.06))
@settings(max_examples=40, deadline=None)
def test_the_player_emits_exactly_the_patterns_hits_at_the_right_times(bpm: float, window: float) -> None:
    clock = InternalClock(bpm=bpm, start=0.0)
    player = Player(clock, PlayerSettings(lookahead=0.05, max_late=1.0), pattern_with(CELLS))
    loops = 3
    length = clock.time_at(loops * STEPS - 0.5) - 0.05 - 1e-9
    events = play(player, length, window) + player.drain()
    ons = [e for e in events if e.message.type == "note_on"]
    expected = sorted(
        (clock.time_at(loop * STEPS + step + float(np.float32(offset))), GM_NOTES[voice],
         max(1, round(float(np.float32(velocity)) * 127)))
        for loop in range(loops) for (step, voice), (velocity, offset) in CELLS.items())
    # the first step 0 has a negative offset, so it falls before the start: late, but within max_late
    got = sorted((e.time, e.message.note, e.message.velocity) for e in ons)
    assert [(n, v) for _, n, v in got] == [(n, v) for _, n, v in expected]
    for (t_got, _, _), (t_want, _, _) in zip(got, expected):
        assert t_got == pytest.approx(t_want, abs=1e-9)
    assert all(e.message.channel == 9 for e in events)


@given(st.lists(st.floats(0.001, 0.07), min_size=5, max_size=200))
@settings(max_examples=60, deadline=None)
def test_nothing_is_emitted_twice_or_lost_across_window_boundaries(windows: list[float]) -> None:
    clock = InternalClock(bpm=133.0, start=0.0)
    player = Player(clock, PlayerSettings(max_late=10.0), pattern_with(CELLS))
    now, events = 0.0, []
    for window in windows:
        events.extend(player.schedule(now))
        last, now = now, now + window
    horizon = clock.position(last + player.settings.lookahead)
    events.extend(player.drain())
    times = [e.time for e in events]
    assert times == sorted(times)
    ons = [(round(e.time, 9), e.message.note) for e in events if e.message.type == "note_on"]
    assert len(ons) == len(set(ons))
    scheduled_steps = range(0, player.next_step)
    expected = sum(1 for s in scheduled_steps for (step, _v) in CELLS if s % STEPS == step)
    assert len(ons) == expected
    # every step whose earliest note falls inside the last window was scheduled, and no more
    assert player.next_step - 1.5 <= horizon < player.next_step - 0.5


@given(st.lists(st.tuples(st.integers(0, STEPS - 1), st.integers(0, NUM_VOICES - 1),
                          st.floats(-0.5, 0.499)), min_size=1, max_size=40),
       st.sampled_from([0.1, 0.5, 1.0]))
@settings(max_examples=60, deadline=None)
def test_every_note_on_has_its_note_off_and_a_note_never_overlaps_itself(cells, gate: float) -> None:
    pattern = pattern_with({(s, v): (0.7, o) for s, v, o in cells})
    clock = InternalClock(bpm=120.0, start=0.0)
    player = Player(clock, PlayerSettings(gate=gate, max_late=10.0), pattern)
    events = play(player, 9.0, 0.013) + player.drain()
    sounding: dict[int, int] = {}
    for event in events:
        note = event.message.note
        if event.message.type == "note_on":
            assert sounding.get(note, 0) == 0, "a note-on while the same note still sounds"
            sounding[note] = 1
        else:
            assert sounding.get(note, 0) == 1, "a note-off with no note-on"
            sounding[note] = 0
    assert not any(sounding.values())


def test_a_swap_never_happens_mid_step_and_waits_for_the_bar_when_asked() -> None:
    first = pattern_with({(s, 0): (1.0, 0.0) for s in range(STEPS)})
    second = pattern_with({(s, 1): (1.0, 0.0) for s in range(STEPS)})
    for swap_at, every in (("step", 1), ("beat", 4), ("bar", 16)):
        clock = InternalClock(bpm=120.0, start=0.0)
        player = Player(clock, PlayerSettings(swap_at=swap_at, max_late=10.0), first)
        events, now = [], 0.0
        while now < 4.0:
            if abs(now - 1.003) < 1e-9:
                player.offer(second)
            events.extend(player.schedule(now))
            now = round(now + 0.001, 3)
        by_step: dict[int, set[int]] = {}
        for e in events:
            if e.message.type == "note_on":
                step = round(clock.position(e.time))
                by_step.setdefault(step, set()).add(e.message.note)
        assert all(len(notes) == 1 for notes in by_step.values())  # one pattern a step
        switched = min(step for step, notes in by_step.items() if notes == {GM_NOTES[1]})
        assert switched % every == 0
        assert all(notes == {GM_NOTES[0]} for step, notes in by_step.items() if step < switched)
        assert all(notes == {GM_NOTES[1]} for step, notes in by_step.items() if step >= switched)


def test_two_voices_on_one_note_play_once_the_louder() -> None:
    settings_ = PlayerSettings(notes=(36, 38, 42, 42, 45, 45, 45, 49, 51), max_late=10.0)
    pattern = pattern_with({(2, 2): (0.3, 0.0), (2, 3): (0.9, 0.1)})
    player = Player(InternalClock(bpm=120.0), settings_, pattern)
    events = play(player, 1.0, 0.01) + player.drain()
    ons = [e for e in events if e.message.type == "note_on"]
    assert len(ons) == 1 and ons[0].message.note == 42 and ons[0].message.velocity == round(0.9 * 127)


def test_per_voice_channels_and_a_stopped_transport_plays_nothing_new() -> None:
    channels = tuple(range(1, NUM_VOICES + 1))
    clock = InternalClock(bpm=120.0)
    player = Player(clock, PlayerSettings(channels=channels, max_late=10.0), pattern_with(CELLS))
    events = play(player, 4.5, 0.01)
    assert {(e.message.note, e.message.channel) for e in events if e.message.type == "note_on"} == {
        (GM_NOTES[v], v) for (_s, v) in CELLS}
    clock.stop(4.5)
    later = []
    for tick in range(300):
        later.extend(player.schedule(4.5 + tick * 0.01))
    assert not [e for e in later if e.message.type == "note_on" and e.time > 4.5 + 0.06]


def test_all_notes_off_silences_what_sounds() -> None:
    player = Player(InternalClock(bpm=60.0), PlayerSettings(gate=1.0, max_late=10.0),
                    pattern_with({(0, 0): (1.0, 0.0), (0, 1): (1.0, 0.0)}))
    events = player.schedule(0.0)
    assert {e.message.type for e in events} == {"note_on"}
    offs = player.all_notes_off()
    assert sorted(m.note for m in offs) == [GM_NOTES[0], GM_NOTES[1]]
    assert all(m.type == "note_off" for m in offs)
    assert player.drain() == []


def test_relocate_says_whether_the_song_jumped() -> None:
    """A relocation to where the player already is (a clock switch) is no jump; one to bar 9 is
    (the engine then lets the keys forget where the last chord rang)."""
    clock = InternalClock(bpm=120.0, start=0.0)
    player = Player(clock, PlayerSettings(), pattern_with(CELLS))
    play(player, until=1.0, window=0.01)
    here = clock.position(1.0)
    assert player.relocate(here) is False
    assert player.relocate(here + 128.0) is True


@pytest.mark.parametrize("press", [0.0, 0.03, 0.06, 0.08, 0.09, 0.11])  # step 1 is handed out, not due, from 0.05 to 0.1 s
def test_end_pressed_just_after_a_line_already_handed_out_plays_nothing_after_its_crash(press: float) -> None:
    """The end pad hit with the last chord, a moment after its bar line: the steps after the line
    were handed out a look-ahead early; they are withdrawn, so the crash is the last thing heard
    (a CI run at 150 BPM heard a kick and two toms 40 ms after it)."""
    clock = InternalClock(bpm=150.0, start=0.0)
    hats = {(step, 2): (0.5, 0.0) for step in range(STEPS)}
    player = Player(clock, PlayerSettings(lookahead=0.05, max_late=0.05), pattern_with(hats))
    line = STEPS_PER_BAR
    pressed, now, events = clock.time_at(line) + press, 0.0, []
    while now < clock.time_at(line + 2 * STEPS_PER_BAR):
        if pressed <= now < pressed + 0.005:
            assert player.end_on_next_bar(clock.position(now), hit=True, now=now) == line
        events = heard(events, player.schedule(now), player.withdrawn(), now)
        now += 0.005
    crashes = [e.time for e in events if e.message.note == GM_NOTES[CRASH]]
    assert len(crashes) == 1 and clock.time_at(line) - 1e-9 <= crashes[0] <= pressed + 0.006, crashes
    assert max(e.time for e in events) <= crashes[0] + 1e-9, "nothing after the crash"
    assert any(abs(e.time - clock.time_at(line)) < 1e-6 and e.message.note == GM_NOTES[2] for e in events) \
        or press == 0.0, "the line's own notes went out"


@pytest.mark.parametrize("jump_at", [0.58, 0.6, 0.62])   # step 5 (0.625 s) is handed out, not due
def test_a_jump_plays_nothing_handed_out_for_the_old_position(jump_at: float) -> None:
    """A master's Start in mid-bar puts the box back on beat one: the steps of the old position,
    handed out a look-ahead early, are withdrawn; only the new position's notes follow the jump."""
    clock = InternalClock(bpm=120.0, start=0.0)
    hats = {(step, 2): (0.5, 0.0) for step in range(STEPS)}
    player = Player(clock, PlayerSettings(lookahead=0.05, max_late=0.05), pattern_with(hats))
    now, events, jumped = 0.0, [], False
    while now < 1.5:
        if not jumped and now >= jump_at:
            clock.start(now, position=0.0)
            assert player.relocate(0.0, now=now)
            jumped = True
        events = heard(events, player.schedule(now), player.withdrawn(), now)
        now += 0.005
    after = sorted(round(e.time - jump_at, 3) for e in events if e.time >= jump_at - 1e-9)
    assert after[:4] == pytest.approx([0.0, 0.125, 0.25, 0.375], abs=0.006), after[:6]


@pytest.mark.parametrize("fails", [1, 3])
def test_a_withdrawal_told_by_a_cycle_that_failed_is_kept_for_the_next(fails: int) -> None:
    """A jump told by a schedule that then raised (the player thread logs it and carries on
    without asking withdrawn()): the next cycle that works still withdraws what was handed out
    for the old position, and the earliest cut wins."""
    clock = InternalClock(bpm=120.0, start=0.0)
    hats = {(step, 2): (0.5, 0.0) for step in range(STEPS)}
    player = Player(clock, PlayerSettings(lookahead=0.05, max_late=0.05), pattern_with(hats))
    now, events, jump_at, failing = 0.0, [], 0.6, 0
    pop = player._pop_until

    def broken(horizon: float) -> list:
        raise RuntimeError("a cycle that fails")
    while now < 1.5:
        if failing == 0 and now >= jump_at:
            clock.start(now, position=0.0)
            assert player.relocate(0.0, now=now)
            failing, player._pop_until = fails, broken      # type: ignore[method-assign]
        if failing > 0 and now >= jump_at:
            with pytest.raises(RuntimeError):
                player.schedule(now)
            failing -= 1
            if failing == 0:
                failing, player._pop_until = -1, pop         # type: ignore[method-assign]
        else:
            events = heard(events, player.schedule(now), player.withdrawn(), now)
        now += 0.005
    after = sorted(round(e.time - jump_at, 3) for e in events if e.time >= jump_at - 1e-9)
    assert after[:4] == pytest.approx([0.0, 0.125, 0.25, 0.375], abs=0.03), after[:6]
    assert all(b - a > 0.1 for a, b in zip(after, after[1:])), "nothing of the old position's steps"


def test_a_new_song_withdraws_what_was_handed_out_for_after_it() -> None:
    """A master's Start away from the song's last bar ends the song (Engine._finish_song): the
    old bar's notes handed out a look-ahead early are withdrawn (a code review)."""
    clock = InternalClock(bpm=120.0, start=0.0)
    player = Player(clock, PlayerSettings(lookahead=0.05), pattern_with({(s, 2): (0.5, 0.0) for s in range(STEPS)}))
    events = []
    for k in range(120):
        events = heard(events, player.schedule(k * 0.005), player.withdrawn(), k * 0.005)
    assert max(e.time for e in events) > 0.6, "a step handed out a look-ahead early"
    player.new_song(now=0.6)
    player.schedule(0.6)
    cut = player.withdrawn()
    assert cut == 0.6 and max(e.time for e in heard(events, [], cut, 0.6)) < 0.6

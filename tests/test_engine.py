"""The engine on a virtual clock: notes in → groove → pattern live, swap points, misses, actions."""
import json
import logging
import math
import time

import mido
import numpy as np
import pytest

from appliance.core.engine import Engine, EngineSettings, VirtualExecutor
from appliance.core.generator import Controls, Generator, ModelError
from appliance.core.groove import GM_NOTES, GM_PEDAL_HAT, STEPS, Groove
from appliance.core.transport import InternalClock
from tests.conftest import make_engine

STEP = 0.125  # seconds per step at 120 BPM


def note(n: int = 60, velocity: int = 100, channel: int = 0) -> mido.Message:
    return mido.Message("note_on", note=n, velocity=velocity, channel=channel)


def run(engine: Engine, start: float, end: float, dt: float = 0.005, notes=()) -> list:
    """Tick from start to end, playing (time, message) notes on the way."""
    pending = sorted(notes, key=lambda item: item[0])
    events, now = [], start
    while now < end:
        while pending and pending[0][0] <= now:
            t, message = pending.pop(0)
            engine.handle(message, t)
        events.extend(engine.tick(now))
        now += dt
    return events


def phrase(start_step: int, count: int, every: int = 3) -> list:
    return [((start_step + i * every) * STEP + 0.004, note(60 + i % 12, 60 + 5 * (i % 12)))
            for i in range(count)]


def test_the_box_plays_from_the_prior_before_anything_is_played(generator) -> None:
    engine = make_engine(generator)
    events = run(engine, 0.0, 4.0)
    assert engine.groove.is_empty
    assert engine.pattern.hits > 0, "with nothing played the box still plays a pattern from the prior"
    assert any(e.message.type == "note_on" for e in events)
    assert {e.message.note for e in events} <= {*GM_NOTES, GM_PEDAL_HAT}   # a closed hat under the ride: the pedal


def test_the_box_opens_on_the_models_plainest_groove_and_a_resample_draws_from_the_prior(generator) -> None:
    """Before anything is played the box plays z = 0, not a draw from the prior: a render's bar 1
    plays it until the player's first pattern comes in (one seed's draw put a snare lick on beat
    1 of every render). Resample, with nothing played, still draws from the prior."""
    engine = make_engine(generator)
    run(engine, 0.0, 1.0)
    plainest = generator.generate(Groove.empty(), Controls(), np.zeros(generator.latent_size, np.float32))
    assert np.array_equal(engine.pattern.steps, plainest.steps)
    engine.resample()
    run(engine, 1.0, 2.0)
    assert engine.groove.is_empty and not np.array_equal(engine.pattern.steps, plainest.steps)
    saved = engine.eps
    again = make_engine(generator)       # a saved z noise restored before the first tick comes back
    again.restore(eps=saved)
    run(again, 0.0, 1.0)
    assert np.array_equal(again.pattern.steps, engine.pattern.steps)
    early = make_engine(generator)       # so does a resample before it
    early.resample()
    run(early, 0.0, 1.0)
    assert not np.array_equal(early.pattern.steps, plainest.steps)


def test_a_part_known_to_come_in_loud_or_soft_opens_at_its_level(generator) -> None:
    """``open_at`` (render reads the level ahead): the opening pattern at the law's level below mf,
    and on up above it, where the model, having heard nothing, plays its own."""
    levels = {}
    for level in (20 / 127, None, 115 / 127):
        engine = make_engine(generator)
        if level is not None:
            engine.open_at(level)
        run(engine, 0.0, 1.0)
        hits = engine.pattern.steps[..., 0] > 0.5
        levels[level] = float(engine.pattern.steps[..., 1][hits].mean())
    assert levels[20 / 127] < 0.7 * levels[None] and levels[115 / 127] > 1.1 * levels[None], levels


def test_notes_build_the_groove_and_a_new_pattern_goes_live(generator) -> None:
    # a phrase that wanders over two passes would be heard as a new section, and what it played
    # once in pass 0 as one-offs: not here
    engine = make_engine(generator, settings=EngineSettings(section_change=0.0, forget_once=0))
    run(engine, 0.0, 1.0)
    prior_pattern = engine.pattern
    run(engine, 1.0, 8.0, notes=phrase(10, 14))
    assert engine.groove.hits >= 10
    assert engine.stats()["generations"] >= 2
    assert engine.pattern is not prior_pattern


def test_a_fast_generator_never_misses_a_swap_point(generator) -> None:
    for swap_at in ("step", "beat", "bar"):
        engine = make_engine(generator, settings=EngineSettings(swap_at=swap_at))
        run(engine, 0.0, 16.0, notes=phrase(3, 40, every=2))
        stats = engine.stats()
        assert stats["generations"] >= 20
        assert stats["misses"] == 0


def test_a_slow_generator_counts_misses_and_the_beat_goes_on(generator) -> None:
    slow = make_engine(generator, latency=3 * STEP)  # a result takes three steps to come back
    events = run(slow, 0.0, 12.0, notes=phrase(3, 30, every=2))
    stats = slow.stats()
    assert stats["misses"] > 0
    assert stats["generations"] > 0
    # the beat never stopped: a pattern's notes kept coming in every bar
    bars = {int(e.time // (16 * STEP)) for e in events if e.message.type == "note_on"}
    assert bars >= set(range(1, 6))


def test_regenerations_coalesce_one_running_at_most_one_waiting(generator) -> None:
    still = EngineSettings(drift=0.0, rest_thin=0.0)   # no new requests at loop points
    engine = make_engine(generator, latency=10.0, settings=still)
    engine.tick(0.0)  # the first (prior) generation starts and takes 10 s
    for i in range(20):  # twenty new grooves while it runs
        engine.handle(note(60, 40 + i), 0.5 + i * STEP)
    run(engine, 0.0, 31.0, dt=0.05)
    # the first run, then only the newest waiting request: 2 generations, not 21
    assert engine.stats()["generations"] == 2


def test_freeze_holds_the_pattern_while_the_looper_keeps_listening(generator) -> None:
    engine = make_engine(generator, settings=EngineSettings(forget_passes=0, section_change=0.0))
    run(engine, 0.0, 2.0, notes=phrase(2, 4))
    assert engine.freeze() is True
    held = engine.pattern
    generations = engine.stats()["generations"]
    run(engine, 2.0, 8.0, notes=phrase(20, 12))
    assert engine.pattern is held
    assert engine.stats()["generations"] == generations
    assert engine.groove.hits >= 12  # recorded while frozen
    engine.freeze(False)
    run(engine, 8.0, 9.0)
    assert engine.stats()["generations"] == generations + 1


def test_clear_empties_the_overdub_and_resample_changes_only_eps(generator) -> None:
    engine = make_engine(generator)
    run(engine, 0.0, 4.0, notes=phrase(2, 10))
    groove, eps = engine.groove, engine.eps
    engine.resample()
    run(engine, 4.0, 5.0)
    assert engine.groove == groove
    assert not np.array_equal(engine.eps, eps)
    engine.clear()
    run(engine, 5.0, 6.0)
    assert engine.groove.is_empty
    assert engine.pattern.hits > 0  # from the prior


def test_input_channel_filter_and_note_on_velocity_zero(generator) -> None:
    engine = make_engine(generator, settings=EngineSettings(input_channel=2))
    engine.tick(0.0)
    engine.handle(note(60, 100, channel=0), 0.01)      # channel 1: filtered out
    engine.handle(note(60, 0, channel=1), 0.02)        # velocity 0: a note-off
    engine.handle(mido.Message("control_change", control=1, value=3), 0.03)
    assert engine.groove.is_empty
    engine.handle(note(60, 100, channel=1), 0.04)      # channel 2
    assert engine.groove.hits == 1


def test_controls_change_the_next_pattern(generator) -> None:
    engine = make_engine(generator)
    run(engine, 0.0, 4.0, notes=phrase(2, 10))
    engine.set_controls(density=1.0)
    run(engine, 4.0, 5.0)
    dense = engine.pattern.hits
    engine.set_controls(density=0.0)
    run(engine, 5.0, 6.0)
    assert engine.pattern.hits <= dense
    engine.set_controls(humanise=0.0)
    run(engine, 6.0, 7.0)
    assert not engine.pattern.steps[..., 2].any()


def test_restore_gives_back_the_same_pattern(generator) -> None:
    engine = make_engine(generator, settings=EngineSettings(drift=0.0))  # z's noise as saved
    # from step 0: a full pass was heard by 4.0 s (before, the model hears bar 1 repeated)
    run(engine, 0.0, 4.0, notes=phrase(0, 10))
    saved = (engine.groove, engine.eps, engine.controls, engine.frozen)
    pattern = engine.pattern
    fresh = Engine(generator, InternalClock(bpm=120.0), executor=VirtualExecutor(), clock=lambda: 0.0)
    fresh.restore(groove=saved[0], eps=saved[1], controls=saved[2], frozen=saved[3])
    run(fresh, 0.0, 0.5)
    assert fresh.pattern == pattern


def test_update_settings_live_keeps_the_beat(generator) -> None:
    engine = make_engine(generator, controls=Controls(density=0.9))
    events = run(engine, 0.0, 4.0, notes=phrase(2, 6))
    assert engine.groove.hits == 6
    remap = (35, 40, 44, 46, 41, 45, 48, 57, 59)
    engine.update_settings(notes=remap, forget_passes=1)
    assert engine.settings.forget_passes == 1
    later = run(engine, 4.0, 16.0, notes=[(t + 12.0, m) for t, m in phrase(2, 1)])
    late_ons = [e for e in later if e.message.type == "note_on" and e.time > 4.2]
    assert events and late_ons, "the beat went on through the change"
    assert {e.message.note for e in late_ons} <= set(remap)
    # a rest ages nothing; the one pass played since without them forgot the other five notes
    assert engine.groove.hits == 1


def test_restore_brings_back_the_prior_flag_and_a_frozen_pattern(generator) -> None:
    engine = make_engine(generator)
    run(engine, 0.0, 4.0, notes=phrase(2, 10))
    engine.prior()
    run(engine, 4.0, 5.0)
    assert engine.from_prior
    fresh = make_engine(generator)
    fresh.restore(groove=engine.groove, eps=engine.eps, controls=engine.controls, prior=engine.from_prior)
    run(fresh, 0.0, 0.5)
    assert fresh.pattern == engine.pattern and fresh.from_prior
    # frozen: the held pattern comes back as it was, even though the groove moved on meanwhile
    engine.freeze(True)
    held = engine.pattern
    run(engine, 5.0, 8.0, notes=phrase(42, 8))
    thawed = make_engine(generator)
    thawed.restore(groove=engine.groove, eps=engine.eps, controls=engine.controls, frozen=True,
                   prior=engine.from_prior, pattern=held)
    run(thawed, 0.0, 0.5)
    assert thawed.pattern == held and thawed.frozen


def test_the_players_tick_waits_for_no_lock_a_slower_thread_holds(generator) -> None:
    """After the first tick, tick() takes the engine lock only when a pass ends: an action
    holding the lock (a slow callback, a long snapshot) never stalls the player."""
    import threading
    from tests.conftest import make_engine
    engine = make_engine(generator)
    engine.tick(0.0)
    engine.tick(0.1)
    seen: list[str] = []
    engine.on_change.append(lambda kind: seen.append(threading.current_thread().name))
    done = threading.Event()

    def player() -> None:
        for i in range(20):
            engine.tick(0.2 + i * 0.05)           # within the first pass (4 s at 120 BPM)
        done.set()

    with engine._lock:                            # a slower thread holds the engine
        t = threading.Thread(target=player, name="player", daemon=True)
        t.start()
        assert done.wait(5), "tick waited for the engine lock"
    t.join(5)
    assert "player" not in seen                    # and it ran nobody's callbacks


def test_a_hammered_button_writes_a_few_log_lines(generator, caplog) -> None:
    """Freeze, clear, resample and prior each say so in the log (session 42's rehearsal found
    resample silent), and a pad hammered (a stuck controller) writes a few lines, not one a press."""
    from appliance.core.engine import BUTTON_LOG_S
    engine = make_engine(generator)
    with caplog.at_level(logging.INFO, logger="appliance.core.engine"):
        engine.resample()
        assert len(caplog.records) == 1
        started = time.monotonic()
        for _ in range(50):
            engine.resample()
            engine.freeze()
        elapsed = time.monotonic() - started
    lines = [r for r in caplog.records if r.name == "appliance.core.engine"]
    # the 1st and 10th of each kind, and each kind again once a BUTTON_LOG_S (a slow, loaded machine)
    assert 3 <= len(lines) <= 5 + 2 * math.ceil(elapsed / BUTTON_LOG_S), [r.getMessage() for r in lines]
    engine.close()


def test_freeze_and_unfreeze_within_a_second_are_both_logged(generator, caplog) -> None:
    """The log says where freeze ended up: on and off are told apart by the rate limit."""
    engine = make_engine(generator)
    with caplog.at_level(logging.INFO, logger="appliance.core.engine"):
        assert engine.freeze() is True and engine.freeze() is False
    assert len([r for r in caplog.records if r.name == "appliance.core.engine"]) == 2
    engine.close()


def test_notes_below_the_split_are_the_left_hands_and_a_model_with_the_register_hears_them(
        generator, tmp_path) -> None:
    """``split_note``: a note below it marks its step low in the groove (Groove.low); 0 marks
    none. A model whose encoder takes 4 channels reads the register, and a different register
    gives it a different z, as a register encoder's model does; a 3-channel model with none is not
    asked for one, and its engine keeps none (its drums are what they were before the register)."""
    from tests import tiny_model
    four = Generator(tiny_model.build(tmp_path / "four", channels=4), seed=1)
    two = Generator(tiny_model.with_register(tiny_model.build(tmp_path / "two")), seed=1)   # a register encoder
    three = Generator(tiny_model.build(tmp_path / "three"), seed=1)
    shipped = [0] if generator.hears_register else []    # models/README.md says which the shipped one is
    for model, split, expected in ((four, 60, [0]), (four, 0, []), (two, 60, [0]), (three, 60, []),
                                   (generator, 60, shipped)):
        engine = make_engine(model, settings=EngineSettings(split_note=split))
        engine.tick(0.0)
        engine.handle(note(40, 90), 0.001)      # a bass note on 1 (engine at 120 BPM: a step is 125 ms)
        engine.handle(note(64, 100), 0.002)     # and the chord above it
        engine.handle(note(67, 100), 0.5)       # a chord alone on 2
        assert list(np.flatnonzero(engine.groove.low)) == expected, (model.channels, split)
    assert generator.channels == 3                       # the shipped encoder takes 3 channels (models/README.md)
    assert three.channels == 3 and not three.hears_register and two.channels == 3 and two.hears_register
    assert four.channels == 4
    steps = np.zeros((STEPS, 3), np.float32)
    steps[::4] = (1.0, 0.8, 0.0)
    low = np.zeros(STEPS)
    low[::8] = 1.0
    assert not np.array_equal(four.encode(Groove(steps, low))[0], four.encode(Groove(steps))[0])
    card = json.loads((tmp_path / "four" / "model.json").read_text())
    assert four.signed and card["inputs"]["encoder"]["register"] == "signed"
    del card["inputs"]["encoder"]["register"]     # a card from before session 57: it heard 1 low, 0 else
    (tmp_path / "four" / "model.json").write_text(json.dumps(card))
    older = Generator(tmp_path / "four", seed=1)
    assert not older.signed
    heard = Groove(steps, low)
    assert np.array_equal(older.encode(heard)[0], four._encoder.run(["mu"], {"groove": heard.model_input(4, False)[None]})[0][0])
    assert not np.array_equal(older.encode(heard)[0], four.encode(heard)[0])
    card["inputs"]["encoder"]["groove"] = ["N", STEPS, 3]      # a card that disagrees with its graphs
    (tmp_path / "four" / "model.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="model.json says"):
        Generator(tmp_path / "four")

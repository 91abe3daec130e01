"""One drummer's four limbs: the chooser never asks for two hats at once or three hands on a step,
keeps the density's count, the calibration fits with the same chooser, and a closed hat under the
ride or crash goes out as the hi-hat pedal (or not at all on a machine without one)."""
import numpy as np
import pytest

from appliance.box.config import loads
from appliance.core import drummaps, limbs
from appliance.core.generator import Controls, Generator, choose_hits, choose_hits_for
from appliance.core.groove import GM_NOTES, GM_PEDAL_HAT, HIT, NUM_VOICES, STEPS, Groove, Pattern
from appliance.core.player import Player, PlayerSettings
from appliance.core.transport import InternalClock
from training.calibrate import chosen

KK, SN, CH, OH, LT, MT, HT, CR, RD = range(NUM_VOICES)


def step_of(*voices: int) -> np.ndarray:
    on = np.zeros(NUM_VOICES, bool)
    on[list(voices)] = True
    return on


@pytest.mark.parametrize("voices, ok", [
    ((KK, SN, CH), True), ((CH, OH), False), ((KK, OH, CH), False), ((SN, OH, CR), False),
    ((SN, LT, HT), False), ((CH, RD, SN), True), ((CH, CR, SN, KK), True), ((CH, RD, CR), True),
    ((CH, RD, CR, SN), False), ((OH, RD, SN), False), ((KK, SN, CH, OH), False), ((RD, CR), True)])
def test_the_limb_rules_on_one_step(voices: tuple[int, ...], ok: bool) -> None:
    assert bool(limbs.playable(step_of(*voices))) is ok
    assert bool(limbs.pedal_hat(step_of(*voices))) is (CH in voices and (RD in voices or CR in voices))


def test_the_chooser_skips_what_one_drummer_cannot_play_and_keeps_the_count() -> None:
    probabilities = np.full((STEPS, NUM_VOICES), 0.01, np.float32)
    probabilities[:, [CH, OH, SN, LT]] = (0.9, 0.8, 0.7, 0.6)   # both hats and three hands, every step
    probabilities[::2, KK] = 0.3
    hits = choose_hits(probabilities, np.zeros(NUM_VOICES), 80)
    assert hits.sum() == 80
    assert limbs.playable(hits).all()
    assert not (hits[:, CH] & hits[:, OH]).any() and hits[:, CH].all()  # the likelier hat wins
    assert hits[:, KK].sum() == 16                                       # the count refilled lower down


def test_calibration_fits_with_the_chooser_the_box_plays() -> None:
    from appliance.core.generator import Calibration
    rng = np.random.default_rng(3)
    probabilities = (rng.random((40, STEPS, NUM_VOICES)) ** 3).astype(np.float32)
    bias = rng.normal(0, 1, NUM_VOICES)
    batch = chosen(probabilities, bias, Calibration())
    counts = batch.sum(axis=(1, 2))
    one_by_one = np.stack([choose_hits(p, bias, int(c)) for p, c in zip(probabilities, counts)])
    assert np.array_equal(batch, one_by_one) and np.array_equal(batch, choose_hits_for(probabilities, bias, counts))
    assert limbs.playable(batch).all()


def test_the_shipped_model_at_full_density_keeps_the_limb_rules(generator: Generator) -> None:
    rng = np.random.default_rng(4)
    for _ in range(6):
        cells = np.zeros((STEPS, 3), np.float32)
        on = rng.random(STEPS) < 0.4
        cells[on] = np.column_stack([np.ones(on.sum()), rng.uniform(0.3, 1, on.sum()), np.zeros(on.sum())])
        pattern = generator.generate(Groove(cells), Controls(density=1.0), generator.new_eps())
        assert limbs.playable(pattern.steps[..., HIT] > 0).all()


def notes_played(settings: PlayerSettings, cells: dict[tuple[int, int], float],
                 mark: bool = False) -> dict[int, set[int]]:
    steps = np.zeros((STEPS, NUM_VOICES, 3), np.float32)
    for (step, voice), velocity in cells.items():
        steps[step, voice] = (1, velocity, 0)
    clock = InternalClock(bpm=120.0, start=0.0)
    player = Player(clock, settings, Pattern(steps))
    if mark:
        player.mark(0.0, 0.0)   # the player comes in on the first downbeat: a crash there
    events, now = [], 0.0
    while now < clock.time_at(STEPS - 1):
        events.extend(player.schedule(now))
        now += 0.01
    out: dict[int, set[int]] = {}
    for event in events + player.drain():
        if event.message.type == "note_on":
            out.setdefault(round(clock.position(event.time)), set()).add(event.message.note)
    return out


def test_a_closed_hat_under_the_ride_or_crash_is_the_pedal_or_not_played() -> None:
    cells = {(0, CH): 0.5, (0, RD): 0.8, (4, CH): 0.5, (4, CR): 0.9, (8, CH): 0.5, (8, SN): 0.9}
    gm = notes_played(PlayerSettings(max_late=10.0), cells)
    assert gm == {0: {GM_PEDAL_HAT, GM_NOTES[RD]}, 4: {GM_PEDAL_HAT, GM_NOTES[CR]}, 8: {GM_NOTES[CH], GM_NOTES[SN]}}
    none = notes_played(PlayerSettings(max_late=10.0, pedal_hat=None), cells)
    assert none == {0: {GM_NOTES[RD]}, 4: {GM_NOTES[CR]}, 8: {GM_NOTES[CH], GM_NOTES[SN]}}


def test_only_the_general_midi_map_has_a_pedal_hat_and_the_config_passes_it_on() -> None:
    assert {name: drummaps.get(name).pedal_hat for name in drummaps.names()} == {
        "gm": 44, "tr-8s": None, "volca-beats": None, "drumlogue": None, "volca-drum": None, "model-cycles": None}
    assert loads("player:\n  drum_map: gm\n").engine_settings().player_settings().pedal_hat == 44
    assert loads("player:\n  drum_map: tr-8s\n").engine_settings().player_settings().pedal_hat is None


def test_a_crash_added_on_a_marked_downbeat_takes_a_hand_from_the_quietest() -> None:
    cells = {(0, KK): 0.9, (0, HT): 0.9, (0, RD): 0.6, (4, SN): 0.9}
    played = notes_played(PlayerSettings(max_late=10.0, fill_every=0), cells, mark=True)  # the tom as it is
    assert played[0] == {GM_NOTES[KK], GM_NOTES[HT], GM_NOTES[CR]}       # the ride made room
    step = np.zeros((NUM_VOICES, 3), np.float32)
    step[[SN, OH, CR], 0] = 1
    step[[SN, OH, CR], 1] = (0.8, 0.8, 0.8)
    kept = limbs.fit(step)[:, HIT] > 0
    assert list(np.flatnonzero(kept)) == [SN, CR]                         # equal: the open hat goes

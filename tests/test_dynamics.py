"""The drums follow the player's level (appliance/core/dynamics.py)."""
from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import pytest

from appliance.core import dynamics
from appliance.core.dynamics import DYNAMICS, LEVEL, MAX_SCALE, MF_VELOCITY, MODEL_DYNAMICS
from appliance.core.engine import EngineSettings
from appliance.core.groove import HIT, STEPS, VELOCITY, Groove
from tests.conftest import make_engine
from tests.test_looper import PASS, comp, run


def groove(steps, velocity) -> Groove:
    cells = np.zeros((STEPS, 3), np.float32)
    cells[list(steps), HIT] = 1.0
    cells[list(steps), VELOCITY] = velocity
    return Groove(cells)


SOFT = 25 / 127
FLOOR = 15   #: the softest hit, of 127 (generator.VELOCITY_FLOOR)


def test_the_players_level_is_the_louder_half_of_the_steps() -> None:
    assert dynamics.played(groove([0, 8, 16, 24], [0.2, 0.4, 0.6, 0.8])) == pytest.approx(0.7)
    assert dynamics.played(Groove.empty()) == 0.0


def test_soft_whole_notes_get_the_whole_law_and_soft_eighths_the_part_the_model_does_not_play() -> None:
    """Whole notes tell the model nothing of the level; over eighths it plays MODEL_DYNAMICS of
    the law itself. As the groove fills, the box's part shrinks from one to the other."""
    ratio = SOFT / LEVEL
    assert dynamics.follow(groove([0, 16], SOFT)) == pytest.approx(ratio ** DYNAMICS)
    assert dynamics.follow(groove([0, 8, 16, 24], SOFT)) == pytest.approx(ratio ** DYNAMICS)
    assert dynamics.follow(groove(range(0, STEPS, 2), SOFT)) == pytest.approx(ratio ** (DYNAMICS - MODEL_DYNAMICS))
    quarters = dynamics.follow(groove(range(0, STEPS, 4), SOFT))
    assert ratio ** DYNAMICS < quarters < ratio ** (DYNAMICS - MODEL_DYNAMICS)


@pytest.mark.parametrize("name, played", [
    ("loud whole notes", groove([0, 16], 100 / 127)),
    ("loud eighths", groove(range(0, STEPS, 2), 100 / 127)),
    ("soft ghost chords between loud stabs", groove([0, 6, 16, 22, 10, 26], [115 / 127] * 4 + [32 / 127] * 2)),
    ("nothing played", Groove.empty()),
])
def test_a_player_at_or_over_the_drummers_level_gets_the_drums_as_the_model_plays_them(name: str, played: Groove) -> None:
    assert dynamics.follow(played) == 1.0, name


def test_the_law_is_a_setting_from_one_level_to_the_model_alone_and_beyond() -> None:
    eighths, whole = groove(range(0, STEPS, 2), SOFT), groove([0, 16], SOFT)
    assert dynamics.follow(eighths, MODEL_DYNAMICS) == pytest.approx(1.0)      # the model alone
    assert dynamics.follow(whole, 0.0) == 1.0                                  # one level: nothing to undo
    lifted = dynamics.follow(eighths, 0.0)                                     # one level: the model's softening undone
    assert lifted == pytest.approx((LEVEL / SOFT) ** MODEL_DYNAMICS) and 1.0 < lifted <= MAX_SCALE
    assert dynamics.follow(eighths, 1.0) < dynamics.follow(eighths, DYNAMICS) < 1.0


def test_a_lower_mezzo_forte_plays_the_drums_full_from_there_and_makes_up_the_models_softening() -> None:
    """mf 56: eighths at 56 get the drums' full level, the model's own softening at 56 made up
    (it plays (56 / 80) ** MODEL_DYNAMICS of its level there); whole notes at 56 as the model
    plays them; softer playing follows from 56 down."""
    mf = 56 / 127
    at_mf = groove(range(0, STEPS, 2), mf)
    assert dynamics.follow(at_mf, DYNAMICS, mf) == pytest.approx((LEVEL / mf) ** MODEL_DYNAMICS)
    assert dynamics.follow(groove([0, 16], mf), DYNAMICS, mf) == pytest.approx(1.0)
    softer = groove(range(0, STEPS, 2), mf / 2)
    assert dynamics.follow(softer, DYNAMICS, mf) == pytest.approx(
        0.5 ** DYNAMICS / (mf / 2 / LEVEL) ** MODEL_DYNAMICS)


def test_the_engine_plays_the_law_it_is_set_to_and_a_reload_changes_it(generator, monkeypatch) -> None:
    """Eighths at 40: the model is asked with the player's level on the velocity knob, by the
    setting; a reload to 0 asks at once for a pattern at one level."""
    knobs = []
    real = generator.generate

    def generate(groove, controls, eps=None, prior=False, loud=None):
        knobs.append(controls.velocity_scale)
        return real(groove, controls, eps, prior, loud)

    monkeypatch.setattr(generator, "generate", generate)
    engine = make_engine(generator, settings=EngineSettings(drift=0.0))
    run(engine, 0.0, 3 * PASS, comp(range(0, 3), range(0, STEPS, 2), velocity=40))
    assert knobs[-1] == pytest.approx(dynamics.follow(engine.groove))
    assert knobs[-1] < 0.85
    asked = len(knobs)
    engine.update_settings(dynamics=0.0)
    run(engine, 3 * PASS, 3 * PASS + 0.05)   # no new note: the reload alone asks
    assert len(knobs) == asked + 1
    assert knobs[-1] == pytest.approx(dynamics.follow(engine.groove, 0.0)) and knobs[-1] > 1.0
    engine.update_settings(dynamics=DYNAMICS, mf_velocity=40)   # the player's mf: the drums' full level at 40
    run(engine, 3 * PASS + 0.05, 3 * PASS + 0.1)
    assert len(knobs) == asked + 2
    assert knobs[-1] == pytest.approx(dynamics.follow(engine.groove, DYNAMICS, 40 / 127)) and knobs[-1] > 1.0
    with pytest.raises(ValueError, match="mf_velocity"):
        engine.update_settings(mf_velocity=0)


def eighths(path: Path, velocity: int, bars: int = 12) -> Path:
    """Eighth-note chords at one velocity, 100 BPM."""
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=600000, time=0)])
    for i in range(bars * 8):
        for k, note in enumerate((48, 60, 64)):
            track.append(mido.Message("note_on", note=note, velocity=velocity, time=40 if i and not k else 0))
        for k, note in enumerate((48, 60, 64)):
            track.append(mido.Message("note_off", note=note, velocity=0, time=200 if k == 0 else 0))
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    midi.tracks.append(track)
    midi.save(str(path))
    return path


def mean_drums(path: Path) -> float:
    velocities = [m.velocity for m in mido.MidiFile(str(path)).tracks[1] if m.type == "note_on" and m.velocity]
    return sum(velocities) / len(velocities)


def test_render_follows_a_soft_player_by_the_law_and_a_loud_one_not(model_dir: Path, tmp_path: Path) -> None:
    """`render --dynamics`: eighths at 35 get drums at (35 / 80) ** 0.85 of those at 80 above the
    softest hit (a mean of 41.9 against 71.7), against 56.8 with the model alone (0.32); at 100 the
    setting changes nothing."""
    from appliance.core.render import render
    level = {}
    for velocity in (35, 80, 100):
        for law in (DYNAMICS, MODEL_DYNAMICS):
            out = tmp_path / f"d{velocity}_{law}.mid"
            render(eighths(tmp_path / f"e{velocity}.mid", velocity), out, model_dir=model_dir, seed=1,
                   settings=EngineSettings(dynamics=law))
            level[velocity, law] = mean_drums(out)
    assert level[100, DYNAMICS] == level[100, MODEL_DYNAMICS]
    assert level[80, DYNAMICS] == level[80, MODEL_DYNAMICS]
    expected = FLOOR + (level[80, DYNAMICS] - FLOOR) * (35 / 80) ** DYNAMICS
    assert level[35, DYNAMICS] == pytest.approx(expected, abs=5), level
    assert level[35, MODEL_DYNAMICS] > level[35, DYNAMICS] + 10, level


def test_a_light_keyboard_sets_its_mezzo_forte_and_gets_the_drums_a_normal_one_does(model_dir: Path,
                                                                                 tmp_path: Path) -> None:
    """`render --mf-velocity 56`: a player whose normal level is 56 gets the drums a player at 80
    gets by default (72.1 against 71.7), not the softer drums of 80's law (57.3)."""
    from appliance.core.render import render
    level = {}
    for velocity, mf in ((80, MF_VELOCITY), (56, MF_VELOCITY), (56, 56)):
        out = tmp_path / f"d{velocity}_{mf}.mid"
        render(eighths(tmp_path / f"e{velocity}.mid", velocity), out, model_dir=model_dir, seed=1,
               settings=EngineSettings(mf_velocity=mf))
        level[velocity, mf] = mean_drums(out)
    assert level[56, 56] == pytest.approx(level[80, MF_VELOCITY], rel=0.05), level
    assert level[56, MF_VELOCITY] < 0.9 * level[80, MF_VELOCITY], level


def test_a_light_touch_is_told_once_what_to_set_its_mezzo_forte_to_and_a_soft_song_not() -> None:
    """The median of the last TOUCH_PASSES passes under LIGHT_TOUCH × mf: told once, the value
    their loudest passes' level; a few louder passes do not reset it; a pp song (its loudest under
    TOUCH_MIN) and a player at their mf are not told."""
    n = dynamics.TOUCH_PASSES
    light = [groove(range(0, STEPS, 2), v / 127) for v in (52, 58, 62, 66)]   # a light keyboard's song
    touch = dynamics.Touch()
    said = [touch.hear(light[k % 4], LEVEL) for k in range(3 * n)]
    assert said.index(66) == n - 1 and [s for s in said if s is not None] == [66]   # once: its loudest passes
    pp = dynamics.Touch()
    assert not any(pp.hear(groove(range(0, STEPS, 2), v / 127), LEVEL) for v in [30, 40] * n)
    set_mf = dynamics.Touch()
    assert not any(set_mf.hear(light[k % 4], 56 / 127) for k in range(3 * n))


@pytest.mark.parametrize("velocity, dynamics_law, told", [(55, DYNAMICS, 1), (85, DYNAMICS, 0), (55, 0.0, 0)])
def test_the_engine_tells_a_light_touch_once(generator, caplog, velocity: int, dynamics_law: float, told: int) -> None:
    engine = make_engine(generator, settings=EngineSettings(drift=0.0, dynamics=dynamics_law))
    passes = dynamics.TOUCH_PASSES + 4
    with caplog.at_level("INFO", logger="appliance.core.engine"):
        run(engine, 0.0, passes * PASS + 0.1, comp(range(0, passes), range(0, STEPS, 2), velocity=velocity), dt=0.05)
    hints = [r for r in caplog.records if r.name == "appliance.core.engine" and "mf_velocity" in r.getMessage()]
    assert len(hints) == told


def test_the_lift_is_halfway_back_up_to_the_songs_loudest_by_the_law() -> None:
    pp, ff = 32 / 127, 110 / 127
    assert dynamics.lift(pp, pp) == 1.0 and dynamics.lift(ff, ff) == 1.0          # no louder before
    assert dynamics.lift(ff, pp) == pytest.approx((1 / (pp / LEVEL) ** DYNAMICS) ** dynamics.LIFT)
    assert dynamics.lift(ff, LEVEL) == 1.0 and dynamics.lift(0.0, pp) == 1.0    # at mf, or nothing played yet
    assert dynamics.lift(ff, pp, 0.0) == 1.0                                      # one level: nothing to lift


def test_the_engine_lifts_a_soft_sections_big_fill_after_a_loud_one_and_a_clear_forgets(generator) -> None:
    engine = make_engine(generator, settings=EngineSettings(drift=0.0))
    run(engine, 0.0, 4 * PASS + 0.1, comp(range(0, 4), range(0, STEPS, 2), velocity=110))
    assert engine.player.lift == 1.0
    run(engine, 4 * PASS + 0.1, 8 * PASS + 0.1, comp(range(4, 8), range(0, STEPS, 2), velocity=35))
    assert engine.player.lift == pytest.approx(dynamics.lift(110 / 127, dynamics.played(engine.groove)), rel=0.01)
    assert engine.player.lift > 1.2
    engine.clear()
    run(engine, 8 * PASS + 0.1, 12 * PASS + 0.1, comp(range(8, 12), range(0, STEPS, 2), velocity=35))
    assert engine.player.lift == 1.0


def test_a_loud_groove_comes_with_its_reading_at_the_loud_line_and_the_drums_rise_by_the_law() -> None:
    ff, f = groove(range(0, STEPS, 2), 120 / 127), groove(range(0, STEPS, 2), 90 / 127)
    loud = dynamics.loud(ff)
    assert dynamics.played(loud.groove) == pytest.approx(dynamics.LOUD)
    assert loud.lift == pytest.approx((120 / 127 / dynamics.LOUD) ** DYNAMICS)
    assert dynamics.loud(f) is None                                        # under the line: as played
    assert dynamics.loud(ff, 0.0).lift == 1.0                              # one level: no rise
    assert dynamics.thins(0.8 * 30, 30) and not dynamics.thins(0.95 * 30, 30)
    from appliance.core import listening
    heard = listening.as_played(ff)
    assert heard.groove == ff and heard.loud == loud                       # the model chooses (Generator.generate)


def hits_and_levels(path: Path) -> tuple[int, list[int]]:
    velocities = [m.velocity for m in mido.MidiFile(str(path)).tracks[1] if m.type == "note_on" and m.velocity]
    return len(velocities), velocities


def test_a_loud_player_gets_a_drummers_groove_louder_not_a_thinner_one_on_the_ceiling(model_dir: Path,
                                                                                   tmp_path: Path) -> None:
    """Eighths at 120 against 80, seed 1: as many hits (237 against 236), louder drums (median 82
    against 69) and few hits on the ceiling (12 % at 120 or over). The model's own reading thinned
    out over the loud groove and piled its hits up there: 177 hits, median 123, 70 % at 120 or over."""
    from appliance.core.render import render
    figures = {}
    for velocity in (80, 120):
        out = tmp_path / f"d{velocity}.mid"
        render(eighths(tmp_path / f"e{velocity}.mid", velocity), out, model_dir=model_dir, seed=1)
        figures[velocity] = hits_and_levels(out)
    (hits_mf, mf), (hits_ff, ff) = figures[80], figures[120]
    assert hits_ff >= 0.9 * hits_mf, (hits_mf, hits_ff)
    assert np.median(ff) >= np.median(mf) + 5, (np.median(mf), np.median(ff))
    assert np.mean(np.array(ff) >= 120) < 0.3, np.mean(np.array(ff) >= 120)

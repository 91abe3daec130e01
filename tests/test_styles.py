"""Styles: a nudge of z toward a GMD style's drummers (appliance/core/styles.py), from the
config, render, a pad, a reload and a saved state; the real model and its card."""
from __future__ import annotations

import json
import re
import logging
from pathlib import Path
import subprocess
import sys

import mido
import numpy as np
import pytest

from appliance.box.config import ConfigError, loads
from appliance.box.codec import controls_from
from appliance.core.actions import ACTIONS, Actions
from appliance.core.generator import Controls, Generator
from appliance.core.groove import HIT, STEPS, VOICES, Groove
from appliance.core.model_files import model_files
from appliance.core.styles import NONE, STYLES, Styles
from tests.conftest import make_engine

Z = 4
RIDE, SNARE = VOICES.index("ride"), VOICES.index("snare")
BACKBEAT = [4, 12, 20, 28]


def eighths() -> Groove:
    """A keyboard comping in eighths, accented on 1 and 3: what a pianist's bossa comp gives."""
    array = np.zeros((STEPS, 3), np.float32)
    for step in range(0, STEPS, 2):
        array[step] = (1, 0.8 if step % 8 == 0 else 0.6, 0.0)
    return Groove(array)


def hits(generator: Generator, groove: Groove, style: str, amount: float = 1.0) -> np.ndarray:
    eps = np.zeros(generator.latent_size, np.float32)
    pattern = generator.generate(groove, Controls(temperature=0.0, style=style, style_amount=amount), eps)
    return pattern.steps[..., HIT] > 0.5


def test_the_shipped_card_has_every_style(generator: Generator) -> None:
    assert set(generator.styles.shifts) == set(STYLES)
    for name, entry in generator.card["styles"].items():
        assert entry["files"] >= 2 and entry["windows"] >= 100, name


def test_a_style_adds_its_shift_to_z_played_or_from_the_prior(generator: Generator) -> None:
    eps = generator.new_eps()
    shift = generator.styles.shifts["bossa"]
    for groove in (eighths(), Groove.empty()):
        plain = generator.latent(groove, Controls(), eps)
        styled = generator.latent(groove, Controls(style="bossa", style_amount=1.5), eps)
        assert np.allclose(styled - plain, 1.5 * shift, atol=1e-5)
    assert np.array_equal(generator.latent(eighths(), Controls(style="bossa", style_amount=0.0), eps),
                          generator.latent(eighths(), Controls(), eps))


def test_bossa_over_a_comp_in_eighths_rides_and_drops_the_backbeat(generator: Generator) -> None:
    plain, bossa = hits(generator, eighths(), NONE), hits(generator, eighths(), "bossa")
    assert bossa[:, RIDE].sum() >= plain[:, RIDE].sum() + 8, "a bossa drummer keeps time on the ride"
    assert bossa[BACKBEAT, SNARE].sum() < plain[BACKBEAT, SNARE].sum(), "and plays no rock backbeat"


def test_the_drums_still_follow_the_groove_under_a_style(generator: Generator) -> None:
    sparse = np.zeros((STEPS, 3), np.float32)
    sparse[[0, 8, 16, 24]] = (1, 0.8, 0.0)
    for name in STYLES:
        assert not np.array_equal(hits(generator, eighths(), name), hits(generator, Groove(sparse), name)), name


def test_each_style_plays_its_own_pattern(generator: Generator) -> None:
    patterns = {name: hits(generator, eighths(), name).tobytes() for name in (NONE, *STYLES)}
    assert len(set(patterns.values())) == len(patterns)


def block(**shifts: object) -> dict:
    return {"styles": {name: {"shift": shift} for name, shift in shifts.items()}}


def test_a_card_s_styles_are_read_and_bad_ones_left_out(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="appliance.core.styles"):
        read = Styles.from_card(block(bossa="1 2 3 4", funk="1 2 3", samba="1 2 nan 4", polka="1 1 1 1"), Z)
    assert list(read.shifts) == ["bossa"]
    assert np.allclose(read.shift("bossa", 0.5), [0.5, 1, 1.5, 2])
    assert len(caplog.records) == 3
    assert Styles.from_card({}, Z).shifts == {}
    with caplog.at_level(logging.WARNING, logger="appliance.core.styles"):
        assert Styles.from_card({"styles": ["bossa"]}, Z).shifts == {}
        assert list(Styles.from_card({"styles": {"funk": "1 2 3 4", "bossa": {"shift": "1 2 3 4"}}}, Z).shifts) == ["bossa"]


def test_a_style_the_card_lacks_plays_as_none_with_one_warning(model_dir: Path, tmp_path: Path, caplog) -> None:
    old = tmp_path / "old-model"
    old.mkdir()
    for name in model_files(model_dir):     # (a register encoder's graphs too, when the card names one)
        if name != "model.json":
            (old / name).symlink_to(model_dir / name)
    card = json.loads((model_dir / "model.json").read_text())
    del card["styles"]
    (old / "model.json").write_text(json.dumps(card))
    generator = Generator(old, seed=1)
    with caplog.at_level(logging.WARNING, logger="appliance.core.styles"):
        for _ in range(3):
            assert np.array_equal(hits(generator, eighths(), "samba"), hits(generator, eighths(), NONE))
    assert len([r for r in caplog.records if "samba" in r.getMessage()]) == 1


@pytest.mark.parametrize("bad", [dict(style="polka"), dict(style="disco"), dict(style_amount=1.6), dict(style_amount=-0.1)])
def test_controls_refuse_a_style_that_is_not_one(bad) -> None:
    with pytest.raises(ValueError):
        Controls(**bad)


def test_the_config_takes_a_style_and_names_a_wrong_one() -> None:
    config = loads("generator:\n  style: bossa\n  style_amount: 1.5\n")
    assert config.controls().style == "bossa" and config.controls().style_amount == 1.5
    with pytest.raises(ConfigError) as error:
        loads("generator:\n  style: bosa\n")
    assert len(error.value.problems) == 1
    assert "generator.style" in error.value.problems[0] and "bossa" in error.value.problems[0]


def test_a_saved_state_keeps_the_style_and_plays_an_unknown_one_as_none() -> None:
    assert controls_from({"style": "shuffle", "style_amount": 0.5}) == {"style": "shuffle", "style_amount": 0.5}
    assert controls_from({"style": "polka", "density": 0.7}) == {"density": 0.7}, "an unknown style is none"


def test_a_style_pad_sets_the_style_and_again_sets_none(generator: Generator) -> None:
    assert "style_samba" in ACTIONS
    engine = make_engine(generator)
    actions = Actions(engine, engine.transport)
    actions.do("style_samba")
    assert engine.controls.style == "samba"
    actions.do("style_funk")
    assert engine.controls.style == "funk"
    actions.do("style_funk")
    assert engine.controls.style == NONE
    with pytest.raises(ValueError):
        actions.do("style_polka")
    assert engine.controls.style == NONE


def render(tmp_path: Path, name: str, *flags: str) -> subprocess.CompletedProcess:
    phrase = Path(__file__).resolve().parents[1] / "examples" / "keyboard_phrase.mid"
    return subprocess.run([sys.executable, "-m", "appliance.box.cli", "render", str(phrase), "-o",
                           str(tmp_path / name), "--seed", "3", *flags], capture_output=True, text=True, timeout=300)


def drum_notes(path: Path) -> list[tuple[int, int]]:
    out, tick = [], 0
    for message in mido.merge_tracks(mido.MidiFile(path).tracks):
        tick += message.time
        if message.type == "note_on" and message.velocity and message.channel == 9:
            out.append((tick, message.note))
    return out


def test_render_plays_a_style_and_names_a_wrong_amount(tmp_path: Path) -> None:
    for name, flags in (("plain.mid", ()), ("bossa.mid", ("--style", "bossa"))):
        done = render(tmp_path, name, *flags)
        assert done.returncode == 0, done.stderr
    plain, bossa = drum_notes(tmp_path / "plain.mid"), drum_notes(tmp_path / "bossa.mid")
    ride = 51
    assert sum(n == ride for _, n in bossa) > sum(n == ride for _, n in plain)
    wrong = render(tmp_path, "x.mid", "--style", "bossa", "--style-amount", "2")
    assert wrong.returncode == 2 and "--style-amount" in wrong.stdout + wrong.stderr
    assert not (tmp_path / "x.mid").exists()
    unknown = render(tmp_path, "y.mid", "--style", "polka")
    assert unknown.returncode == 2 and "bossa" in unknown.stdout + unknown.stderr


def test_a_reload_changes_the_style_live(generator: Generator) -> None:
    from appliance.box.reload import apply_config
    engine = make_engine(generator)
    lines = apply_config(loads("generator:\n  style: samba\n"), engine, engine.transport, old=loads(""))
    assert engine.controls.style == "samba"
    assert any(line.startswith("generator.style:") for line in lines)


@pytest.fixture(scope="module")
def gmd_fit(model_dir: Path):
    """The GMD training split, its style labels, and the shifts training.styles fits on it."""
    from training import dataset as ds
    from training import styles as fitting
    from training.onnx_model import OnnxModel
    root = ds.gmd_dir()
    if not (root / "info.csv").exists():
        pytest.skip(f"GMD_DIR {root} is missing (no info.csv): the styles' check needs the Groove MIDI Dataset")
    train = ds.load_split("train")
    labels = fitting.gmd_styles(train, root)
    # the card's own styles are the encoder's (a register encoder's are its register_path's)
    return train, labels, fitting.fit(OnnxModel(model_dir, "fp32", threads=2, plain=True), train, labels)


def test_the_card_s_shifts_are_what_training_fits_from_gmd(model_dir: Path, gmd_fit) -> None:
    _, _, fitted = gmd_fit
    card = json.loads((model_dir / "model.json").read_text())["styles"]
    assert set(fitted) == set(card) == set(STYLES)
    for name, entry in fitted.items():
        assert entry["windows"] == card[name]["windows"] and entry["files"] == card[name]["files"]
        assert entry["drummers"] == card[name]["drummers"]
        assert np.allclose(entry["shift"], np.asarray(card[name]["shift"].split(), np.float32), atol=2e-3), name


def test_the_reviewers_bossa_parts_come_nearest_bossa_drummers_and_lose_the_backbeat(model_dir: Path, gmd_fit) -> None:
    from training import styles as fitting
    train, labels, fitted = gmd_fit
    rows = fitting.parts(model_dir, fitted, fitting.drummers(train, labels, fitted), only=("bossa",))
    assert len(rows) >= 4
    assert sum(row["style nearest"] == "bossa" for row in rows) >= len(rows) - 1
    assert sum(row["none nearest"] == "bossa" for row in rows) < sum(row["style nearest"] == "bossa" for row in rows)
    backbeat = {label: np.mean([row[f"{label} backbeat"] for row in rows]) for label in ("none", "style")}
    assert backbeat["style"] < backbeat["none"] - 0.2
    assert logging.root.manager.disable == logging.NOTSET, "the renders' quiet is lifted again"


def test_a_style_changes_the_pattern_not_the_level_the_drums_play_at(generator: Generator) -> None:
    from appliance.core.generator import level
    eps = np.zeros(generator.latent_size, np.float32)
    sparse = np.zeros((STEPS, 3), np.float32)
    sparse[[0, 8, 16, 24]] = (1, 0.9, 0.0)
    for groove in (eighths(), Groove(sparse)):
        plain = level(*generator.read(groove, Controls(), eps)[:2])
        for name in STYLES:
            probabilities, velocities, _ = generator.read(groove, Controls(style=name, style_amount=1.5), eps)
            # a velocity brought up past full is played at full: the level can only fall short
            assert plain - 0.02 <= level(probabilities, velocities) <= plain + 0.005, name


def test_the_level_is_one_gain_for_the_kit_and_lifts_no_voice_past_its_own() -> None:
    from appliance.core.generator import at_level
    ones = np.ones((STEPS, 2), np.float32)

    def kit(*voices: float) -> np.ndarray:
        return np.tile(np.float32(voices), (STEPS, 1))

    lifted = at_level(ones, kit(0.4, 0.2), ones, kit(0.6, 0.6))
    assert lifted.dtype == np.float32
    assert np.allclose(lifted[0], [0.6, 0.6]), "the first stops at its plain level, the second carries the rest"
    assert np.allclose(at_level(ones, kit(0.8, 0.2), ones, kit(0.4, 0.4))[0], [0.8 * 0.8, 0.2 * 0.8]), \
        "a gain under 1 brings every voice down alike"
    kept = at_level(ones, kit(0.7, 0.1), ones, kit(0.5, 0.5))   # gain 1.25: the first is already above its plain
    assert kept[0, 0] == pytest.approx(0.7) and kept[0, 1] == pytest.approx(0.3)
    assert np.allclose(at_level(ones, kit(0.9, 0.1), ones, kit(1.0, 1.0))[0], [1.0, 1.0]), "past full: full"
    silent = np.zeros((STEPS, 2), np.float32)
    for case in ((silent, kit(0.4, 0.2), ones, kit(0.6, 0.6)), (ones, kit(0.4, 0.2), silent, kit(0.6, 0.6)),
                 (ones, kit(0.4, np.nan), ones, kit(0.6, 0.6))):
        out = at_level(*case)
        assert np.array_equal(out, case[1], equal_nan=True), "nothing to match: left as it is"
    one_voice = np.tile(np.float32([1, 0]), (STEPS, 1))           # the second voice never plays
    assert np.allclose(at_level(one_voice, kit(0.3, 0.9), one_voice, kit(0.6, 0.1))[0, 0], 0.6)


def test_samba_and_second_line_keep_the_snare_busy(generator: Generator) -> None:
    plain = hits(generator, eighths(), NONE)[:, SNARE].sum()
    for name in ("samba", "secondline"):
        assert hits(generator, eighths(), name)[:, SNARE].sum() >= 2 * plain, name
    assert hits(generator, eighths(), "samba")[BACKBEAT, SNARE].sum() <= 1, "samba has no rock backbeat"


def test_a_pad_pressed_a_thousand_times_writes_a_few_lines_and_a_scene_keeps_the_style(generator: Generator,
                                                                                      caplog) -> None:
    from appliance.box.scenes import Scenes
    engine = make_engine(generator)
    actions = Actions(engine, engine.transport, Scenes(2))
    with caplog.at_level(logging.INFO, logger="appliance.core.engine"):
        for _ in range(1001):
            actions.do("style_bossa")
    assert engine.controls.style == "bossa", "an odd number of presses"
    assert len([r for r in caplog.records if "style" in r.getMessage()]) <= 5
    actions.do("store_scene_1")
    actions.do("style_samba")
    actions.do("scene_1")
    assert engine.controls.style == "bossa"


def test_the_monitor_shows_the_style() -> None:
    import io

    from rich.console import Console

    from appliance.box.monitor import frame
    console = Console(file=io.StringIO(), width=140, color_system=None)
    console.print(frame({"running": True, "bpm": 120.0, "step": 3,
                         "controls": {"density": 0.5, "style": "secondline", "style_amount": 1.0}}))
    assert re.search(r"style\s+secondline\s+1\.00", console.file.getvalue())

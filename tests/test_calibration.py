"""Density means something: the shipped model's calibration, checked on the GMD validation split
(0.5 plays as many hits as the drummers did over the same grooves, 0.25 half, 0.75 one and a half
times, 1 at most twice, 0 sparse but not silent) and velocities spread as a drummer's."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from appliance.core.generator import Calibration, Controls, shape_pattern
from appliance.core.groove import HIT, OFFSET, VELOCITY
from training import dataset as ds
from training.onnx_model import OnnxModel

WINDOWS = 500   #: validation windows checked (evenly spread over the split)


@pytest.fixture(scope="module")
def validation(model_dir: Path):
    root = ds.gmd_dir()
    if not (root / "info.csv").exists():
        pytest.skip(f"GMD_DIR {root} is missing (no info.csv): the calibration check needs the Groove "
                    "MIDI Dataset; set GMD_DIR to its folder")
    split = ds.load_split("validation")
    pick = np.linspace(0, len(split) - 1, min(WINDOWS, len(split))).astype(int)
    patterns, grooves = split.patterns[pick], split.grooves[pick]
    predictions = OnnxModel(model_dir, "int8").predict(grooves)
    card = json.loads((model_dir / "model.json").read_text())
    return patterns, predictions, card


def hits_at(density: float, predictions, card) -> np.ndarray:
    thresholds = np.asarray(card["thresholds"], np.float32)
    calibration = Calibration.from_card(card)
    return np.array([shape_pattern(p, v, o, thresholds, Controls(density=density), calibration).hits
                     for p, v, o in zip(*predictions)])


def test_the_model_card_says_how_it_was_calibrated(model_dir: Path) -> None:
    block = json.loads((model_dir / "model.json").read_text())["calibration"]
    assert block["command"].startswith("python -m training.calibrate")
    assert "validation" in block["fitted_on"]
    assert 0.5 < block["count_scale"] < 2 and 0.1 < block["velocity_sd"] < 0.4
    assert 0.05 < block["offset_sd"] < 0.3
    assert len(block["voice_bias"]) == 9


def test_density_plays_multiples_of_the_drummers_hits_on_validation(validation) -> None:
    patterns, predictions, card = validation
    drummers = float((patterns[..., HIT] > 0.5).sum(axis=(1, 2)).mean())
    ratio = {d: float(hits_at(d, predictions, card).mean()) / drummers for d in (0.0, 0.25, 0.5, 0.75, 1.0)}
    assert 0.9 <= ratio[0.5] <= 1.1, ratio
    assert 0.4 <= ratio[0.25] <= 0.6, ratio
    assert 1.3 <= ratio[0.75] <= 1.7, ratio
    assert 1.6 <= ratio[1.0] <= 2.0, ratio
    assert 0.05 <= ratio[0.0] <= 0.3, ratio
    assert hits_at(0.0, predictions, card).min() >= 2, "density 0 is sparse, never silent"


def played(predictions, card, channel: int) -> np.ndarray:
    """One channel (velocity or offset) of every hit the box plays at the default knobs."""
    thresholds = np.asarray(card["thresholds"], np.float32)
    calibration = Calibration.from_card(card)
    out = []
    for p, v, o in zip(*predictions):
        steps = shape_pattern(p, v, o, thresholds, Controls(), calibration).steps
        out.append(steps[..., channel][steps[..., HIT] > 0])
    return np.concatenate(out)


def test_velocities_spread_as_the_drummers_do(validation) -> None:
    _patterns, predictions, card = validation
    assert played(predictions, card, VELOCITY).std() * 127 >= 24


def test_timing_spreads_as_the_drummers_does(validation) -> None:
    patterns, predictions, card = validation
    drummers = patterns[..., OFFSET][patterns[..., HIT] > 0.5].std()
    assert 0.8 * drummers <= played(predictions, card, OFFSET).std() <= 1.25 * drummers


def test_every_voice_plays_as_often_as_the_drummers_on_validation(validation) -> None:
    patterns, predictions, card = validation
    thresholds = np.asarray(card["thresholds"], np.float32)
    calibration = Calibration.from_card(card)
    played = np.zeros(9)
    for p, v, o in zip(*predictions):
        played += shape_pattern(p, v, o, thresholds, Controls(), calibration).steps[..., HIT].sum(axis=0)
    played /= len(patterns)
    drummers = (patterns[..., HIT] > 0.5).sum(axis=1).mean(axis=0)
    assert np.all(np.abs(played - drummers) <= 0.25 * drummers + 0.15), (played.round(2), drummers.round(2))


def test_calibration_can_fit_on_people_as_well_as_drummers_and_the_target_stays_the_drummers() -> None:
    from training import calibrate, humanize
    rng = np.random.default_rng(3)
    patterns = np.zeros((6, 32, 9, 3), np.float32)
    patterns[..., HIT] = rng.random((6, 32, 9)) < 0.15
    patterns[..., VELOCITY] = patterns[..., HIT] * rng.uniform(0.3, 1.0, (6, 32, 9))
    split = ds.Split("validation", patterns, ds.flatten(patterns), np.zeros(6, np.int32), ["x.mid"])
    grooves, targets = calibrate.inputs_of(split)
    assert np.array_equal(grooves, split.inputs) and np.array_equal(targets, patterns)   # with the register
    grooves, targets = calibrate.inputs_of(split, ("drummers", "keys", "hands"))
    assert grooves.shape == (18, 32, 4) and np.array_equal(targets, np.concatenate([patterns] * 3))
    assert np.array_equal(grooves[12:], humanize.human_set(patterns, "hands", humanize.SEED_VALIDATION, register=True))
    with pytest.raises(SystemExit, match="--inputs"):
        calibrate.main(["--inputs", "drummers,robots", "models/groove-vae"])


def test_the_cards_validation_figures_are_what_the_box_plays_now(validation) -> None:
    """The figures stored beside the fit are the chooser's of today, not of the day it was fitted
    (``python -m training.calibrate --refresh`` measures them again)."""
    patterns, predictions, card = validation
    stored = card["calibration"]["validation"]
    drummers = float((patterns[..., HIT] > 0.5).sum(axis=(1, 2)).mean())
    for density, hits in stored["hits"].items():
        now = float(hits_at(float(density), predictions, card).mean()) / drummers
        then = hits / stored["drummers_hits"]
        assert abs(now - then) <= 0.06 * then + 0.02, (density, round(now, 3), round(then, 3))


def test_refresh_stores_the_figures_again_and_refits_nothing(tmp_path: Path, model_dir: Path) -> None:
    from training import calibrate
    if not (ds.gmd_dir() / "info.csv").exists():
        pytest.skip("GMD_DIR is missing: --refresh measures on the validation split")
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    card = json.loads((copy / "model.json").read_text())
    card["calibration"]["validation"]["hits"] = {"0.5": 1.0}   # a stale figure
    if "register_path" in card:                                  # ... for each encoder's fit
        card["register_path"]["calibration"]["validation"]["hits"] = {"0.5": 1.0}
    (copy / "model.json").write_text(json.dumps(card))
    calibrate.main(["--refresh", str(copy)])
    after = json.loads((copy / "model.json").read_text())["calibration"]
    assert after["voice_bias"] == card["calibration"]["voice_bias"]
    assert after["count_scale"] == card["calibration"]["count_scale"]
    assert set(after["validation"]["hits"]) == {"0", "0.25", "0.5", "0.75", "1"}
    assert 0.9 <= after["validation"]["hits"]["0.5"] / after["validation"]["drummers_hits"] <= 1.1
    if "register_path" in card:   # the register encoder's fit is measured again, and kept, too
        kept = json.loads((copy / "model.json").read_text())["register_path"]["calibration"]
        assert kept["voice_bias"] == card["register_path"]["calibration"]["voice_bias"]
        assert set(kept["validation"]["hits"]) == {"0", "0.25", "0.5", "0.75", "1"}
    with pytest.raises(SystemExit, match="--refresh"):
        calibrate.main(["--refresh", "--inputs", "hands", str(copy)])

"""The prior z is drawn from when nothing is played (appliance/core/prior.py)."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from appliance.core.generator import Controls, Generator, shape_pattern
from appliance.core.groove import HIT, Groove, VOICES
from appliance.core.prior import Prior

Z = 4


def block(weights=(0.25, 0.75), means=("0 0 0 0", "5 5 5 5"), scales=("1 1 1 1", "0.5 0.5 0.5 0.5")) -> dict:
    return {"prior": {"weights": list(weights), "means": list(means), "scales": list(scales)}}


def test_a_card_without_a_prior_draws_from_the_standard_normal() -> None:
    assert Prior.from_card({}, Z) is None


def test_a_draw_is_its_components_mean_spread_by_the_temperature() -> None:
    prior = Prior.from_card(block(), Z)
    assert prior is not None
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
        eps = rng.standard_normal(Z).astype(np.float32)
        k = prior.component(eps)
        seen.add(k)
        assert prior.component(eps.copy()) == k, "the same noise draws the same component (a saved eps)"
        assert np.allclose(prior.draw(eps, 0.5), prior.means[k] + 0.5 * prior.scales[k] * eps)
        assert np.allclose(prior.draw(eps, 0.0), prior.means[k])
    assert seen == {0, 1}


def test_components_are_drawn_as_often_as_their_weights() -> None:
    prior = Prior.from_card(block(), Z)
    rng = np.random.default_rng(1)
    share = np.mean([prior.component(rng.standard_normal(Z).astype(np.float32)) for _ in range(4000)])
    assert share == pytest.approx(0.75, abs=0.03)


@pytest.mark.parametrize("bad", [
    {"prior": {"weights": [1.0]}},                                                  # no means
    block(means=("0 0 0", "5 5 5")),                                                # wrong z size
    block(weights=(0.5, 0.6)),                                                      # weights do not sum to 1
    block(scales=("1 1 1 1", "0 1 1 1")),                                           # a zero scale
    block(means=("0 0 0 nan", "5 5 5 5")),                                          # not finite
    block(means=([0, 0, 0, 0], [5, 5, 5, 5])),                                      # not lines of numbers
    block(means=("0 0 0 x", "5 5 5 5")),
    {"prior": "gmm"},
])
def test_an_unreadable_prior_is_one_warning_and_the_standard_normal(bad, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="appliance.core.prior"):
        assert Prior.from_card(bad, Z) is None
    assert len(caplog.records) == 1 and "N(0, I)" in caplog.records[0].getMessage()


def test_a_model_with_a_broken_prior_still_loads_and_plays(model_dir, tmp_path, caplog) -> None:
    broken = tmp_path / "model"
    broken.mkdir()
    for f in model_dir.iterdir():
        (broken / f.name).symlink_to(f)
    card = json.loads((model_dir / "model.json").read_text())
    card["prior"]["means"] = card["prior"]["means"][:-1]
    (broken / "model.json").unlink()
    (broken / "model.json").write_text(json.dumps(card))
    with caplog.at_level(logging.WARNING):
        generator = Generator(broken, seed=0)
    assert generator.prior is None and any("prior" in r.getMessage() for r in caplog.records)
    eps = generator.new_eps()
    assert np.allclose(generator.latent(Groove.empty(), Controls(), eps), eps)
    assert generator.generate(Groove.empty(), Controls(), eps, prior=True).steps[..., HIT].sum() > 0


def test_the_shipped_prior_plays_fewer_snare_licks_than_the_standard_normal(generator: Generator) -> None:
    """What a musician hears from the prior button: from the mixture, the snare leaves beats 2 and 4
    to lick around them less than from N(0, I) (here 9.0 against 11.5 hits per 2 bars; GMD
    drummers' validation windows 7.9), and beat 1 has its kick more often."""
    snare, kick = VOICES.index("snare"), VOICES.index("kick")
    backbeat = [4, 12, 20, 28]
    rng = np.random.default_rng(3)
    licks, ones = {}, {}
    for name, z_of in (("normal", lambda e: e), ("prior", lambda e: generator.prior.draw(e, 1.0))):
        hits = []
        for _ in range(150):
            p, v, o = generator.decode(z_of(rng.standard_normal(generator.latent_size).astype(np.float32)))
            hits.append(shape_pattern(p, v, o, generator.thresholds, Controls(), generator.calibration).steps[..., HIT])
        played = np.array(hits) > 0.5
        licks[name] = (played[:, :, snare].sum(1) - played[:, backbeat, snare].sum(1)).mean()
        ones[name] = played[:, 0, kick].mean()
    assert licks["prior"] < licks["normal"] - 1.0, licks
    assert ones["prior"] > ones["normal"], ones

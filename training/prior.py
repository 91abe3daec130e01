"""Fit the prior the box draws z from when nothing is played, into model.json (appliance/core/prior.py).

    python -m training.prior [models/groove-vae] [--components 64] [--check]

The encoder's means over every training groove (the drummers' own, fp32), a mixture of
``--components`` diagonal Gaussians fitted to them (scikit-learn, seeded), stored in the card's
``prior`` block: ``weights`` [K], and ``means`` and ``scales`` as one line of numbers per component.

It then measures, on the validation split, how far patterns are from anything a drummer played:
for each pattern, the Hamming distance (over the 288 hit cells) to the nearest training window.
Patterns come from the box's own path (int8, ``shape_pattern`` at the default knobs) for z drawn
from the standard normal (what the box drew before), from the mixture, and, for reference, for
the validation grooves themselves; the validation windows' own distance is the drummers' figure.
``--check`` only measures the card's prior. Never the test split.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from appliance.core.generator import Controls, Generator, shape_pattern
from appliance.core.groove import HIT, Groove
from appliance.core.prior import Prior
from training import dataset as ds
from training.onnx_model import BASE, OnnxModel

log = logging.getLogger("training.prior")

REPO = Path(__file__).resolve().parent.parent
COMMAND = "python -m training.prior MODEL_DIR"
COMPONENTS = 64      #: mixture components
REG_COVAR = 1e-3     #: added to each variance (scikit-learn's reg_covar)
SEED = 0
DRAWS = 400          #: patterns measured per source
DIGITS = 4           #: significant digits stored


def fit(mus: np.ndarray, components: int = COMPONENTS, seed: int = SEED) -> dict:
    """The card's ``prior`` block for the means ``mus`` [N, Z]."""
    from sklearn.mixture import GaussianMixture
    gmm = GaussianMixture(components, covariance_type="diag", reg_covar=REG_COVAR, random_state=seed).fit(mus)
    row = " ".join
    return {"components": components, "fitted_on": f"encoder means (fp32) of the {len(mus)} training-split grooves",
            "command": COMMAND, "weights": [round(float(w), 6) for w in gmm.weights_ / gmm.weights_.sum()],
            "means": [row(f"{x:.{DIGITS}g}" for x in m) for m in gmm.means_],
            "scales": [row(f"{x:.{DIGITS}g}" for x in np.sqrt(v)) for v in gmm.covariances_]}


def nearest(patterns: np.ndarray, train_hits: np.ndarray) -> np.ndarray:
    """Hamming distance from each pattern's hits [N, 32, 9] to the nearest training window's."""
    p = patterns.reshape(len(patterns), -1).astype(np.float32)
    t = train_hits.reshape(len(train_hits), -1).astype(np.float32)
    return (p.sum(1)[:, None] + t.sum(1)[None] - 2 * p @ t.T).min(1)


def measure(model_dir: Path, train: ds.Split, val: ds.Split, draws: int = DRAWS, seed: int = SEED) -> dict:
    """Median and 90th percentile of the nearest-window distance, per source of z."""
    gen = Generator(model_dir, seed=seed)
    rng = np.random.default_rng(seed)
    train_hits = train.patterns[..., HIT] > 0.5

    def played(z: np.ndarray, groove: Groove = Groove.empty()) -> np.ndarray:
        p, v, o = gen.decode(z)
        fit = gen.fit_for(groove)    # (the fit of the encoder that heard it; nothing heard: the encoder's)
        return shape_pattern(p, v, o, fit.thresholds, Controls(), fit.calibration).steps[..., HIT] > 0.5


    picks = rng.choice(len(val.patterns), min(draws, len(val.patterns)), replace=False)
    eps = rng.standard_normal((draws, gen.latent_size)).astype(np.float32)
    sources = {"drummers (validation windows)": val.patterns[picks][..., HIT] > 0.5,
               "the model over validation grooves": np.array([played(gen.encode(g)[0], g) for g in (
                   Groove(val.grooves[i], val.inputs[i, :, 3]) for i in picks)]),
               "standard normal": np.array([played(e) for e in eps])}
    if gen.prior is not None:
        sources["the card's prior"] = np.array([played(gen.prior.draw(e, 1.0)) for e in eps])
    out = {}
    for name, patterns in sources.items():
        d = nearest(patterns, train_hits)
        out[name] = {"median": float(np.median(d)), "p90": float(np.percentile(d, 90))}
    return out


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path, nargs="?", default=REPO / "models" / "groove-vae")
    p.add_argument("--components", type=int, default=COMPONENTS)
    p.add_argument("--check", action="store_true", help="only measure the card's prior")
    p.add_argument("--gmd-dir", default=None)
    args = p.parse_args(argv)
    try:
        train, val = ds.load_split("train", args.gmd_dir), ds.load_split("validation", args.gmd_dir)
    except ds.DatasetError as exc:
        raise SystemExit(f"prior: {exc}") from None
    path = args.model_dir / "model.json"
    card = json.loads(path.read_text())
    if BASE in card and not args.check:
        log.warning("prior: the card keeps %s's prior (model.json's base); measuring it only", card[BASE].get("dir"))
        args.check = True
    if not args.check:
        # the encoder's means (with nothing played no encoder hears anything; a register encoder,
        # trained into the same z, has no prior of its own: appliance.core.generator.Fit)
        model = OnnxModel(args.model_dir, "fp32", threads=2, plain=True)
        mus = np.concatenate([model.encode(train.inputs[i:i + 1024])[0] for i in range(0, len(train), 1024)])
        card["prior"] = fit(mus, args.components)
        if Prior.from_card(card, int(card["latent_size"])) is None:
            raise SystemExit("prior: the fitted block does not read back")
        path.write_text(json.dumps(card, indent=2) + "\n")
    figures = measure(args.model_dir, train, val)
    print("| z from | nearest training window: median | 90th percentile |\n|---|---|---|")
    for name, f in figures.items():
        print(f"| {name} | {f['median']:.1f} | {f['p90']:.1f} |")
    if not args.check:
        card["prior"]["nearest_window"] = figures
        path.write_text(json.dumps(card, indent=2) + "\n")


if __name__ == "__main__":
    main()

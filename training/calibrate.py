"""Calibrate a model directory's density and dynamics on the GMD validation split, into model.json.

    python -m training.calibrate [models/groove-vae] [--check]

- ``count_scale``: GMD drummers' hits per 2-bar window over the model's expected hits (Σ p over
  the pattern) on the same grooves, pooled over the validation split. With it, density 0.5 plays
  as many hits as drummers do over such a groove (appliance/core/generator.py: ``target_hits``),
  and the density curve 0 / 0.25 / 0.5 / 0.75 / 1 → 0.15 / 0.5 / 1 / 1.5 / 2 times that.
- ``velocity_sd``: the mean, over validation windows, of the drummers' velocity SD within a window;
  a generated pattern whose velocities are closer together than that is spread out to it.

The figures it fitted with (validation hits per window at each density, generated vs drummers)
are stored beside them. The int8 graphs are used, as the box plays them. Run it after every
export (``make train`` does); ``--check`` only prints the current model's figures. Never the test split.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from appliance.core.generator import Calibration, Controls, shape_pattern
from appliance.core.groove import HIT, VELOCITY
from training import dataset as ds
from training.onnx_model import OnnxModel

log = logging.getLogger("training.calibrate")

REPO = Path(__file__).resolve().parent.parent
DENSITIES = (0.0, 0.25, 0.5, 0.75, 1.0)
COMMAND = "python -m training.calibrate MODEL_DIR"


def predict(model_dir: Path, grooves: np.ndarray, precision: str = "int8") -> tuple[np.ndarray, ...]:
    return OnnxModel(model_dir, precision, threads=2).predict(grooves)


def fit(probabilities: np.ndarray, patterns: np.ndarray) -> Calibration:
    """The calibration from predictions [N, 32, 9] and the drummers' patterns [N, 32, 9, 3]."""
    true = patterns[..., HIT] > 0.5
    scale = float(true.sum() / probabilities.sum(dtype=np.float64))
    sds = [float(patterns[i][..., VELOCITY][true[i]].std()) for i in range(len(patterns)) if true[i].sum() > 1]
    return Calibration(count_scale=round(scale, 4), velocity_sd=round(float(np.mean(sds)), 4))


def figures(probabilities: np.ndarray, velocities: np.ndarray, offsets: np.ndarray, patterns: np.ndarray,
            thresholds: np.ndarray, calibration: Calibration) -> dict:
    """Mean hits per window at each density and the generated velocity SD, next to the drummers'."""
    true = patterns[..., HIT] > 0.5
    out: dict = {"windows": int(len(patterns)), "drummers_hits": float(true.sum(axis=(1, 2)).mean()),
                 "drummers_velocity_sd": float(patterns[..., VELOCITY][true].std()), "hits": {}}
    for density in DENSITIES:
        controls = Controls(density=density)
        counts, vels = [], []
        for p, v, o in zip(probabilities, velocities, offsets):
            pattern = shape_pattern(p, v, o, thresholds, controls, calibration)
            hit = pattern.steps[..., HIT] > 0
            counts.append(int(hit.sum()))
            if density == 0.5:
                vels.append(pattern.steps[..., VELOCITY][hit])
        out["hits"][f"{density:g}"] = float(np.mean(counts))
        if density == 0.5:
            out["velocity_sd"] = float(np.concatenate(vels).std())
    return out


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path, nargs="?", default=REPO / "models" / "groove-vae")
    p.add_argument("--gmd-dir", default=None)
    p.add_argument("--check", action="store_true", help="print the stored calibration's figures only")
    args = p.parse_args(argv)
    path = args.model_dir / "model.json"
    if not path.exists():
        raise SystemExit(f"calibrate: {args.model_dir} holds no model.json (export a model first)")
    try:
        val = ds.load_split("validation", args.gmd_dir)
    except ds.DatasetError as error:
        raise SystemExit(f"calibrate: {error}") from None
    card = json.loads(path.read_text())
    thresholds = np.asarray(card["thresholds"], np.float32)
    probabilities, velocities, offsets = predict(args.model_dir, val.grooves)
    calibration = Calibration.from_card(card) if args.check else fit(probabilities, val.patterns)
    result = figures(probabilities, velocities, offsets, val.patterns, thresholds, calibration)
    if not args.check:
        card["calibration"] = {
            "count_scale": calibration.count_scale, "velocity_sd": calibration.velocity_sd,
            "fitted_on": "GMD validation split (4/4 beat files, 2-bar windows, 1-bar hop), int8 graphs",
            "command": COMMAND, "validation": result,
        }
        path.write_text(json.dumps(card, indent=2) + "\n")
        log.info("wrote the calibration into %s", path)
    print(f"count_scale {calibration.count_scale:.4f}, velocity_sd {calibration.velocity_sd:.4f} "
          f"({calibration.velocity_sd * 127:.1f} of 127)")
    print(f"validation ({result['windows']} windows): drummers play {result['drummers_hits']:.1f} hits per 2 bars")
    for density, hits in result["hits"].items():
        print(f"  density {density:>4}: {hits:5.1f} hits per 2 bars ({hits / result['drummers_hits']:.2f}×)")
    print(f"velocity SD at density 0.5: {result['velocity_sd'] * 127:.1f} of 127 "
          f"(drummers {result['drummers_velocity_sd'] * 127:.1f})")


if __name__ == "__main__":
    main()

"""Calibrate a model directory's density and dynamics on the GMD validation split, into model.json.

    python -m training.calibrate [models/groove-vae] [--check]

- ``count_scale``: GMD drummers' hits per 2-bar window over the model's expected hits (Σ p over
  the pattern) on the same grooves, pooled over the validation split. With it, density 0.5 plays
  as many hits as drummers do over such a groove (appliance/core/generator.py: ``target_hits``),
  and the density curve 0 / 0.25 / 0.5 / 0.75 / 1 → 0.15 / 0.5 / 1 / 1.5 / 2 times that.
- ``voice_bias``: per voice, the logit a cell must clear to be among the hits; fitted so that at
  density 0.5 every voice plays as often, over the validation grooves, as the drummers' own
  (start: the F1-tuned thresholds, which under-play open hats, toms and crashes and over-play
  the snare on keyboard input);
- ``velocity_sd``: the mean, over validation windows, of the drummers' velocity SD within a window;
  a generated pattern whose velocities are closer together than that is spread out to it;
- ``offset_sd_within``: the same for each hit's distance (in steps) from the mean timing of its
  voice on its kind of step (beats, "&"s, or e and a) in its window: how far a drummer strays
  around their own feel. The box spreads the model's offsets around that feel to it, and leaves
  the feel itself (a swing, a snare laid back) as the model plays it;
- ``offset_sd``: the same for micro-timing as a whole: the mean of the drummers' offset SD (in steps) within
  a window (what older cards, without ``offset_sd_within``, spread to). The model, trained on squared error, plays the average push and drag, tighter than
  any drummer (a third of their timing spread on keyboard input); its pattern is spread out to it.

They are fitted on the drummers' own grooves of the validation loops. ``--inputs drummers,keys,hands``
fits on each loop as those kinds of input instead (training/humanize.py's fixed validation sets;
the target is always the drummer's pattern): tried and not taken, see docs/ARCHITECTURE.md,
"Density and dynamics".

The figures it fitted with (validation hits per window at each density, generated vs drummers)
are stored beside them. The int8 graphs are used, as the box plays them. Run it after every
export (``make train`` does); ``--check`` only prints the current model's figures; ``--refresh``
stores them again, the fitted values as they are (after a change to how the box chooses its hits,
which moves the figures but not the fit), with the drummers' ``offset_sd_within`` measured again
(a statistic of their grooves, not a fit; cards from before session 43 lack it). Never the test split.
"""
from __future__ import annotations

import argparse
from dataclasses import replace
import json
import logging
from pathlib import Path

import numpy as np

from appliance.core.generator import (Calibration, Controls, _logit, choose_hits_for, shape_pattern, step_kinds,
                                      target_hits)
from appliance.core.groove import HIT, OFFSET, VELOCITY
from appliance.core.model_files import REGISTER_PATH, has_register, path_card
from training import dataset as ds
from training import humanize
from training.onnx_model import OnnxModel, known_register, paths

log = logging.getLogger("training.calibrate")

REPO = Path(__file__).resolve().parent.parent
DENSITIES = (0.0, 0.25, 0.5, 0.75, 1.0)
COMMAND = "python -m training.calibrate MODEL_DIR"
KINDS = ("drummers", "keys", "hands")   #: the kinds of input calibration can fit on


def inputs_of(split: ds.Split, kinds: tuple[str, ...] = ("drummers",)) -> tuple[np.ndarray, np.ndarray]:
    """Grooves [len(kinds) · N, 32, 4] (with their register) of the split's loops as each kind of
    input, and the drummers' patterns they stand for (the simulated people: the fixed validation seed)."""
    grooves = [split.inputs if kind == "drummers" else
               humanize.human_set(split.patterns, kind, humanize.SEED_VALIDATION, register=True) for kind in kinds]
    return np.concatenate(grooves), np.concatenate([split.patterns] * len(kinds))


def predict(model_dir: Path, grooves: np.ndarray, precision: str = "int8", plain: bool = False) -> tuple[np.ndarray, ...]:
    return OnnxModel(model_dir, precision, threads=2, plain=plain).predict(grooves)


def heard_by(grooves: np.ndarray, patterns: np.ndarray, register: bool) -> tuple[np.ndarray, np.ndarray]:
    """The grooves an encoder hears, and their patterns: the encoder fits on all (as the model
    without a register encoder would), the register encoder on those whose register is known."""
    if not register:
        return grooves, patterns
    known = known_register(grooves)
    return grooves[known], patterns[known]


BIAS_ROUNDS = 60   #: fitting rounds of the voice bias
BIAS_STEP = 0.5    #: each round moves a voice's bias by this × log(generated / drummers' hits)


def chosen(probabilities: np.ndarray, bias: np.ndarray, calibration: Calibration) -> np.ndarray:
    """Hits [N, 32, 9] at density 0.5 for a voice bias: what shape_pattern picks (its chooser, limb
    rules included), for all windows at once."""
    counts = np.array([target_hits(p, 0.5, calibration) for p in probabilities])
    return choose_hits_for(probabilities, bias, counts)


def fit(probabilities: np.ndarray, patterns: np.ndarray, thresholds: np.ndarray) -> Calibration:
    """The calibration from predictions [N, 32, 9] and the drummers' patterns [N, 32, 9, 3]."""
    true = patterns[..., HIT] > 0.5
    scale = float(true.sum() / probabilities.sum(dtype=np.float64))
    counted = Calibration(count_scale=round(scale, 4), velocity_sd=round(window_sd(patterns, VELOCITY), 4),
                          offset_sd=round(window_sd(patterns, OFFSET), 4),
                          offset_sd_within=round(window_sd_within(patterns), 4))
    bias = _logit(np.asarray(thresholds, np.float64))
    drummers = true.sum(axis=(0, 1)).astype(np.float64)
    for _ in range(BIAS_ROUNDS):
        played = chosen(probabilities, bias, counted).sum(axis=(0, 1)).astype(np.float64)
        bias += BIAS_STEP * (np.log(played + 1) - np.log(drummers + 1))
    return Calibration(counted.count_scale, counted.velocity_sd, tuple(round(float(b), 4) for b in bias),
                       counted.offset_sd, counted.offset_sd_within)


def window_sd(patterns: np.ndarray, channel: int) -> float:
    """The mean, over windows with two hits or more, of the SD of a channel within the window."""
    true = patterns[..., HIT] > 0.5
    return float(np.mean([patterns[i][..., channel][true[i]].std()
                          for i in range(len(patterns)) if true[i].sum() > 1]))


def window_sd_within(patterns: np.ndarray) -> float:
    """The mean, over windows with two hits or more, of the SD of the hits' offsets from the mean
    offset of their voice on their kind of step (beats, "&"s, or e and a) in the window."""
    true = patterns[..., HIT] > 0.5
    sds = []
    for window, hit in zip(patterns[..., OFFSET], true):
        if hit.sum() < 2:
            continue
        apart = np.zeros_like(window)
        for kind in step_kinds(patterns.shape[1]):
            own = hit & kind[:, None]
            counts = own.sum(axis=0)
            means = np.where(counts > 0, (window * own).sum(axis=0) / np.maximum(counts, 1), 0.0)
            apart = np.where(own, window - means, apart)
        sds.append(float(apart[hit].std()))
    return float(np.mean(sds))


def offset_mse(probabilities: np.ndarray, velocities: np.ndarray, offsets: np.ndarray, patterns: np.ndarray,
               thresholds: np.ndarray, calibration: Calibration, grooves: np.ndarray) -> dict[str, float]:
    """Offset MSE (steps²) on the true positives of density 0.5 against the drummers: as the model
    predicts it, as the box plays it (spread), and copy-the-groove (the groove's offset on the step)."""
    true = patterns[..., HIT] > 0.5
    model, box, copy = [], [], []
    for p, v, o, pattern, hit, groove in zip(probabilities, velocities, offsets, patterns, true, grooves):
        played = shape_pattern(p, v, o, thresholds, Controls(), calibration).steps
        tp = (played[..., HIT] > 0) & hit
        drummer = pattern[..., OFFSET][tp]
        model.append(o[tp] - drummer)
        box.append(played[..., OFFSET][tp] - drummer)
        copy.append(np.broadcast_to(groove[:, None, OFFSET], tp.shape)[tp] - drummer)
    return {name: float(np.mean(np.concatenate(errors) ** 2))
            for name, errors in (("model", model), ("box", box), ("copy", copy))}


def figures(probabilities: np.ndarray, velocities: np.ndarray, offsets: np.ndarray, patterns: np.ndarray,
            thresholds: np.ndarray, calibration: Calibration, grooves: np.ndarray) -> dict:
    """Mean hits per window at each density and the generated velocity SD, next to the drummers'."""
    true = patterns[..., HIT] > 0.5
    out: dict = {"windows": int(len(patterns)), "drummers_hits": float(true.sum(axis=(1, 2)).mean()),
                 "drummers_velocity_sd": float(patterns[..., VELOCITY][true].std()),
                 "drummers_offset_sd": float(patterns[..., OFFSET][true].std()), "hits": {},
                 "drummers_hits_per_voice": [round(float(x), 3) for x in true.sum(axis=1).mean(axis=0)]}
    for density in DENSITIES:
        controls = Controls(density=density)
        counts, vels, offs = [], [], []
        for p, v, o in zip(probabilities, velocities, offsets):
            pattern = shape_pattern(p, v, o, thresholds, controls, calibration)
            hit = pattern.steps[..., HIT] > 0
            counts.append(int(hit.sum()))
            if density == 0.5:
                vels.append(pattern.steps[..., VELOCITY][hit])
                offs.append(pattern.steps[..., OFFSET][hit])
        out["hits"][f"{density:g}"] = float(np.mean(counts))
        if density == 0.5:
            out["velocity_sd"] = float(np.concatenate(vels).std())
            out["offset_sd"] = float(np.concatenate(offs).std())
            out["offset_mse_tp"] = offset_mse(probabilities, velocities, offsets, patterns, thresholds, calibration,
                                              grooves)
    played = chosen(probabilities, np.asarray(calibration.voice_bias, np.float64), calibration) \
        if calibration.voice_bias is not None else probabilities >= thresholds
    out["hits_per_voice"] = [round(float(x), 3) for x in played.sum(axis=1).mean(axis=0)]
    hit_f1 = 2 * (played & true).sum() / max(1, played.sum() + true.sum())
    out["hit_f1_at_density_0.5"] = round(float(hit_f1), 4)
    return out


def store(path: Path, card: dict, calibration: Calibration, result: dict, kinds: tuple[str, ...],
          refit: bool = True, register: bool = False) -> None:
    """Write the calibration and its validation figures into the card at ``path`` (``register``:
    into its ``register_path`` block); without ``refit``, the figures only (the fitted values stay
    as they are)."""
    block = card.setdefault(REGISTER_PATH, {}) if register else card
    if not refit:
        block["calibration"]["offset_sd_within"] = calibration.offset_sd_within
        block["calibration"]["validation"] = result
        path.write_text(json.dumps(card, indent=2) + "\n")
        log.info("stored the calibration's figures again in %s (nothing refitted)", path)
        return
    block["calibration"] = {
        "count_scale": calibration.count_scale, "velocity_sd": calibration.velocity_sd,
        "offset_sd": calibration.offset_sd, "offset_sd_within": calibration.offset_sd_within,
        "voice_bias": list(calibration.voice_bias or []) or None,
        "fitted_on": "GMD validation split (4/4 beat files, 2-bar windows, 1-bar hop), int8 graphs"
                     + (", the windows whose register is known, through the register encoder" if register else "")
                     + ("" if kinds == ("drummers",) else f", each loop as {', '.join(kinds)} input "
                        f"(training/humanize.py, seed {humanize.SEED_VALIDATION})"),
        "command": COMMAND, "validation": result,
    }
    path.write_text(json.dumps(card, indent=2) + "\n")
    log.info("wrote the calibration into %s", path)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path, nargs="?", default=REPO / "models" / "groove-vae")
    p.add_argument("--gmd-dir", default=None)
    p.add_argument("--check", action="store_true", help="print the stored calibration's figures only")
    p.add_argument("--refresh", action="store_true",
                   help="measure the stored calibration's figures again and store them (nothing refitted)")
    p.add_argument("--inputs", default="drummers",
                   help="comma-separated kinds of input to fit on: drummers (default), keys, hands")
    args = p.parse_args(argv)
    kinds = tuple(k.strip() for k in args.inputs.split(",") if k.strip())
    if not kinds or set(kinds) - set(KINDS):
        raise SystemExit(f"calibrate: --inputs takes {', '.join(KINDS)}, comma-separated; got {args.inputs!r}")
    if args.refresh and kinds != ("drummers",):
        raise SystemExit("calibrate: --refresh measures the stored fit on the drummers' grooves, as it was "
                         "fitted; to fit on other inputs, leave --refresh out")
    path = args.model_dir / "model.json"
    if not path.exists():
        raise SystemExit(f"calibrate: {args.model_dir} holds no model.json (export a model first)")
    try:
        val = ds.load_split("validation", args.gmd_dir)
    except ds.DatasetError as error:
        raise SystemExit(f"calibrate: {error}") from None
    card = json.loads(path.read_text())
    grooves, patterns = inputs_of(val, kinds)
    stored = args.check or args.refresh
    if args.refresh and has_register(args.model_dir) and "calibration" not in card.get(REGISTER_PATH, {}):
        raise SystemExit(f"calibrate: {args.model_dir}'s card has no {REGISTER_PATH} calibration to refresh yet; "
                         "fit it (leave --refresh out)")
    for register in paths(args.model_dir, fitting=not stored):   # a refresh measures a base's fit again too
        if has_register(args.model_dir):
            print("the register encoder's grooves (register_path):" if register else "the encoder's grooves:")
        calibration, result = calibrate(args.model_dir, card, *heard_by(grooves, patterns, register), register,
                                        stored=stored, refresh=args.refresh)
        if not args.check:
            store(path, card, calibration, result, kinds, refit=not args.refresh, register=register)
        report(calibration, result, kinds)


def calibrate(model_dir: Path, card: dict, grooves: np.ndarray, patterns: np.ndarray, register: bool,
              stored: bool, refresh: bool) -> tuple[Calibration, dict]:
    """One encoder's calibration (fitted, or the card's when ``stored``) and its validation figures."""
    block = path_card(card, register)
    thresholds = np.asarray(block["thresholds"], np.float32)
    probabilities, velocities, offsets = predict(model_dir, grooves, plain=not register)
    calibration = Calibration.from_card(block) if stored else fit(probabilities, patterns, thresholds)
    if refresh:   # the drummers' own statistic, measured again (a card from before it was stored lacks it)
        calibration = replace(calibration, offset_sd_within=round(window_sd_within(patterns), 4))
    return calibration, figures(probabilities, velocities, offsets, patterns, thresholds, calibration, grooves)


def report(calibration: Calibration, result: dict, kinds: tuple[str, ...]) -> None:
    """The calibration and its validation figures, printed."""
    print(f"count_scale {calibration.count_scale:.4f}, velocity_sd {calibration.velocity_sd:.4f} "
          f"({calibration.velocity_sd * 127:.1f} of 127)")
    print(f"validation ({result['windows']} windows, {', '.join(kinds)}): drummers play {result['drummers_hits']:.1f} hits per 2 bars")
    for density, hits in result["hits"].items():
        print(f"  density {density:>4}: {hits:5.1f} hits per 2 bars ({hits / result['drummers_hits']:.2f}×)")
    print(f"velocity SD at density 0.5: {result['velocity_sd'] * 127:.1f} of 127 "
          f"(drummers {result['drummers_velocity_sd'] * 127:.1f})")
    print(f"timing SD at density 0.5: {result['offset_sd']:.3f} steps (drummers {result['drummers_offset_sd']:.3f}); "
          f"offset_sd {calibration.offset_sd:.4f}, offset_sd_within {calibration.offset_sd_within:.4f}")
    mse = result["offset_mse_tp"]
    print(f"offset MSE on true positives at density 0.5: {mse['model']:.5f} as the model predicts, "
          f"{mse['box']:.5f} as the box plays, {mse['copy']:.5f} copying the groove (steps²)")
    print("hits per voice at density 0.5:", " ".join(f"{v} {x:.2f}/{d:.2f}" for v, x, d in zip(
        ds.VOICES, result["hits_per_voice"], result["drummers_hits_per_voice"])), "(box/drummers)")
    print(f"hit F1 at density 0.5 against the drummers: {result['hit_f1_at_density_0.5']:.3f}")


if __name__ == "__main__":
    main()

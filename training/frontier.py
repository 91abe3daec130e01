"""Validation figures of candidate checkpoints and weight-space soups, to choose a recipe.

    python -m training.frontier training/runs/f2/best.pt issue3.pt+training/runs/f2/best.pt@0.7

A candidate is a checkpoint, or BASE+FINE_TUNED@ALPHA for (1 − ALPHA) · BASE + ALPHA · FINE_TUNED
(training/soup.py; several fine-tunes, comma-separated, are averaged first), or MODEL:REGISTER for
a model with a register encoder trained on its decoder (train.py --freeze-decoder). For each, on the
validation split only (torch, z = mu): pooled hit F1 on the drummers' grooves at per-voice
thresholds tuned there, F1 on simulated hands, keys and arpeggios (keys playing even sixteenths,
humanize.ARPEGGIOS) of the same loops at those thresholds, the snare hits the model expects under
the arpeggios (Σp per 2 bars, next to the drummers' own count), F1 on the same hands with their
register unknown (all 0: a model that hears it, heard as a pad player gives), and velocity and
offset MSE on the drummers' true positives next to copy-the-groove's on the same cells, and for
MODEL:REGISTER the ratio of the two encoders' mean σ on the simulated hands and keys (the
encoder's / the register encoder's: export --register-sigma at this scale makes them agree).
Every figure is one a recipe may be chosen on; the test split is not read.
"""
from __future__ import annotations

import argparse
import logging

import numpy as np
import torch

from training import dataset as ds
from training import humanize, soup
from training.metrics import report, tune_thresholds
from training.model import GrooveVAE, ModelConfig, RegisterEncoders, with_register
from training.train import predict

SNARE = ds.VOICES.index("snare")


def load(spec: str) -> GrooveVAE:
    """A checkpoint's (averaged) weights, or a soup written BASE+FINE_TUNED[,FINE_TUNED…]@ALPHA,
    or MODEL:REGISTER, the model with a register encoder (training.model.with_register)."""
    if ":" in spec:
        base, register = spec.split(":", 1)
        return with_register(load(base), load(register))
    if "+" in spec:
        weights, ckpt = soup.mix(*soup.parse(spec))
        config = ckpt["model_config"]
    else:
        ckpt = torch.load(spec, weights_only=False, map_location="cpu")
        weights, config = ckpt["model"], ckpt["model_config"]
    model = GrooveVAE(ModelConfig(**config))
    model.load_state_dict(weights)
    return model


def sigma_ratio(model: GrooveVAE, grooves: list[np.ndarray]) -> float:
    """Mean σ of the encoder over mean σ of the register encoder, on the grooves [N,32,4] the box
    sends the register encoder (their register known); nan without a register encoder or such a groove."""
    heard = [g[(g[..., 3] != 0).any(-1)] for g in grooves if g.shape[-1] > 3]
    if not isinstance(model.encoder, RegisterEncoders) or not sum(map(len, heard)):
        return float("nan")
    x = torch.as_tensor(np.concatenate(heard), dtype=torch.float32)
    with torch.no_grad():
        plain = torch.exp(0.5 * model.encoder.plain(x[..., :3])[1].clamp(-12, 8)).mean()
        register = torch.exp(0.5 * model.encoder.register(x[..., :4])[1].clamp(-12, 8)).mean()
    return float(plain / register)


def figures(model: GrooveVAE, val: ds.Split, people: dict[str, np.ndarray]) -> dict[str, float]:
    """F1 on drummers, hands and keys; expression MSE and copy-the-groove's on the drummers' hits."""
    probs, vel, off = predict(model, val.inputs)
    true = val.patterns[..., 0] > 0.5
    th = tune_thresholds(probs, true, rounds=1)
    r = report(probs, vel, off, val.patterns, val.grooves, th)
    out = {"drummers": r["hit"]["f1"], "velocity_mse": r["velocity_mse_tp"], "offset_mse": r["offset_mse_tp"],
           "copy_offset_mse": r["baselines"]["copy_groove"]["offset_mse_tp"],
           "sigma_ratio": sigma_ratio(model.eval(), [people[k] for k in ("hands", "keys") if k in people])}
    for kind, grooves in people.items():
        p = predict(model, grooves)[0]
        out[kind] = report(p, p, p, val.patterns, grooves, th)["hit"]["f1"]
        if kind == "arpeggios":   # what the model hears in even sixteenths: a snare roll, or the loop's backbeat
            out["arpeggio_snare"] = float(p[..., SNARE].sum(axis=1).mean())
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("candidates", nargs="+", help="CKPT, BASE+FINE_TUNED[,FINE_TUNED…]@ALPHA or MODEL:REGISTER")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    val = ds.load_split("validation")
    people = {kind: humanize.human_set(val.patterns, kind, humanize.SEED_VALIDATION, register=True)
              for kind in ("hands", "keys", "arpeggios")}
    people["hands_blank"] = people["hands"].copy()
    people["hands_blank"][..., 3] = 0.0
    snare = float((val.patterns[..., SNARE, 0] > 0.5).sum(axis=1).mean())
    print("| candidate | F1 drummers | F1 hands | F1 keys | F1 arpeggios | snare Σp on arpeggios "
          f"(the drummers: {snare:.1f}) | F1 hands, register unknown | velocity MSE | offset MSE (copy) "
          "| σ plain / register |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for spec in args.candidates:
        f = figures(load(spec), val, people)
        print(f"| {spec} | {f['drummers']:.4f} | {f['hands']:.4f} | {f['keys']:.4f} | {f['arpeggios']:.4f} "
              f"| {f['arpeggio_snare']:.1f} | {f['hands_blank']:.4f} | {f['velocity_mse']:.4f} | {f['offset_mse']:.5f} ({f['copy_offset_mse']:.5f}) "
              f"| {f['sigma_ratio']:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()

"""Compare checkpoints on the validation split, on the drummers' own grooves, on keyboard-like
grooves (the training augmentations applied to validation with a fixed seed) and on simulated
human input (training/humanize.py: hands tapping the loop, a keyboard player comping along).

    python -m training.ablation training/runs/abl-A/best.pt training/runs/abl-B/best.pt

For each checkpoint and each input kind: pooled hit F1 (per-voice thresholds tuned on the clean
validation grooves, like the export does), velocity and offset MSE on true positives, and
copy-the-groove's MSE on the same cells. Validation only; the test split is never touched here.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from training import dataset as ds
from training import humanize
from training.export import load_checkpoint
from training.metrics import report, tune_thresholds
from training.train import predict


def compare(checkpoints: list[Path], seed: int = 0) -> list[dict]:
    val = ds.load_split("validation")
    keyboard = ds.augment_grooves(val.patterns, np.random.default_rng(seed),
                                  ds.Augment(p_subset=1.0, p_curve=1.0, p_jitter=1.0), with_register=True)
    people = {f"simulated {kind}": humanize.human_set(val.patterns, kind, humanize.SEED_VALIDATION, register=True)
              for kind in ("hands", "keys")}
    rows = []
    for path in checkpoints:
        model, ckpt = load_checkpoint(path)
        true = val.patterns[..., 0] > 0.5
        probs, vel, off = predict(model, val.inputs)
        th = tune_thresholds(probs, true)
        for kind, grooves in (("drummer grooves", val.inputs), ("keyboard-like grooves", keyboard),
                              *people.items()):
            if kind != "drummer grooves":
                probs, vel, off = predict(model, grooves)
            r = report(probs, vel, off, val.patterns, grooves, th)
            rows.append({"checkpoint": str(path), "epoch": ckpt["state"]["epoch"], "augment": ckpt.get("augment") is not None,
                         "input": kind, "f1": r["hit"]["f1"], "velocity_mse_tp": r["velocity_mse_tp"],
                         "offset_mse_tp": r["offset_mse_tp"],
                         "copy_velocity_mse_tp": r["baselines"]["copy_groove"]["velocity_mse_tp"],
                         "copy_offset_mse_tp": r["baselines"]["copy_groove"]["offset_mse_tp"]})
    return rows


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", type=Path, nargs="+")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    rows = compare(args.checkpoints)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| checkpoint | augment | epoch | validation input | hit F1 | vel MSE (TP) | off MSE (TP) | copy vel | copy off |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['checkpoint']} | {'on' if r['augment'] else 'off'} | {r['epoch']} | {r['input']} | {r['f1']:.3f} "
              f"| {r['velocity_mse_tp']:.4f} | {r['offset_mse_tp']:.4f} | {r['copy_velocity_mse_tp']:.4f} "
              f"| {r['copy_offset_mse_tp']:.4f} |")


if __name__ == "__main__":
    main()

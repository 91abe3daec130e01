"""How well an exported model hears people: hit F1 on drum-derived and on simulated human grooves.

    python -m training.human_eval models/groove-vae                      # validation split
    python -m training.human_eval models/groove-vae --split test --write  # report (after choosing)

For every window of the split, three grooves of the same loop go through the ONNX model (fp32 and
int8, z = mu, the card's thresholds): the drummer's own groove, two hands tapping it
(humanize.hands_grooves) and a keyboard player comping along (humanize.keys_grooves), each with a
fixed seed per split. The target is always the drummer's pattern. Velocity and offset MSE are on
true positives, next to copy-the-groove's on the same cells. Choose recipes on validation; the test
split is for the report. --write stores the result in model.json under metrics.human.<split>.
The hands and keys carry their register (which notes were low); ``--register-unknown`` adds both
with it set to 0, as the box hears a part all on one side of ``loop.split_note``.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from training import dataset as ds
from training import humanize
from training.metrics import report
from training.onnx_model import OnnxModel, thresholds_for

REPO = Path(__file__).resolve().parent.parent
INPUTS = ("drummer", "hands", "keys")


def grooves_for(split: ds.Split, register_unknown: bool = False) -> dict[str, np.ndarray]:
    """The three kinds of input for every window of the split (fixed seeds); with
    ``register_unknown``, the hands and keys again with their register at 0."""
    seed = humanize.SEED_TEST if split.name == "test" else humanize.SEED_VALIDATION
    out = {"drummer": split.inputs,
           "hands": humanize.human_set(split.patterns, "hands", seed, register=True),
           "keys": humanize.human_set(split.patterns, "keys", seed, register=True)}
    if register_unknown:
        for kind in ("hands", "keys"):
            out[f"{kind}, register unknown"] = out[kind].copy()
            out[f"{kind}, register unknown"][..., 3] = 0.0
    return out


def evaluate(model_dir: Path, split: ds.Split, precisions: tuple[str, ...] = ("fp32", "int8"),
             register_unknown: bool = False) -> dict:
    card = json.loads((model_dir / "model.json").read_text())
    inputs = grooves_for(split, register_unknown)
    out: dict = {"split": split.name, "windows": len(split), "input_stats": {
        k: humanize.groove_stats(g) for k, g in inputs.items()}}
    for precision in precisions:
        model = OnnxModel(model_dir, precision, threads=2)
        for kind, grooves in inputs.items():
            probs, vel, off = model.predict(grooves, batch=1)  # one groove per run, as the box runs it
            r = report(probs, vel, off, split.patterns, grooves, thresholds_for(card, grooves))
            out.setdefault(precision, {})[kind] = {
                "f1": r["hit"]["f1"], "precision": r["hit"]["precision"], "recall": r["hit"]["recall"],
                "velocity_mse_tp": r["velocity_mse_tp"], "offset_mse_tp": r["offset_mse_tp"],
                "copy_velocity_mse_tp": r["baselines"]["copy_groove"]["velocity_mse_tp"],
                "copy_offset_mse_tp": r["baselines"]["copy_groove"]["offset_mse_tp"]}
    return out


def markdown(result: dict) -> str:
    lines = [f"{result['split']} split, {result['windows']} windows, the card's thresholds, z = mu, one groove per run.", "",
             "| input | hits / 2 bars | vel mean / SD | offset SD |", "|---|---|---|---|"]
    for kind, st in result["input_stats"].items():
        lines.append(f"| {kind} | {st['hits']:.1f} | {st['velocity_mean']:.2f} / {st['velocity_sd']:.2f} "
                     f"| {st['offset_sd']:.3f} |")
    lines += ["", "| model | input | hit P | hit R | hit F1 | vel MSE (TP) | off MSE (TP) | copy vel | copy off |",
              "|---|---|---|---|---|---|---|---|---|"]
    for precision in ("fp32", "int8"):
        for kind, r in result.get(precision, {}).items():
            lines.append(f"| {precision} | {kind} | {r['precision']:.3f} | {r['recall']:.3f} | **{r['f1']:.3f}** "
                         f"| {r['velocity_mse_tp']:.4f} | {r['offset_mse_tp']:.4f} | {r['copy_velocity_mse_tp']:.4f} "
                         f"| {r['copy_offset_mse_tp']:.4f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path, nargs="?", default=REPO / "models" / "groove-vae")
    p.add_argument("--split", choices=("validation", "test"), default="validation")
    p.add_argument("--gmd-dir", default=None)
    p.add_argument("--write", action="store_true", help="store the result in model.json (metrics.human.<split>)")
    p.add_argument("--register-unknown", action="store_true",
                   help="also the hands and keys with their register at 0 (a pad player, one hand)")
    args = p.parse_args(argv)
    try:
        split = ds.load_split(args.split, args.gmd_dir)
    except ds.DatasetError as exc:
        raise SystemExit(f"human_eval: {exc}") from None
    result = evaluate(args.model_dir, split, register_unknown=args.register_unknown)
    if args.write:
        path = args.model_dir / "model.json"
        card = json.loads(path.read_text())
        card.setdefault("metrics", {}).setdefault("human", {})[args.split] = result
        path.write_text(json.dumps(card, indent=2) + "\n")
    print(markdown(result))


if __name__ == "__main__":
    main()

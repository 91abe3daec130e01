"""Metrics of a shipped model directory on the GMD test split (make evaluate).

    python -m training.evaluate [models/groove-vae] [--no-write]

Protocol (issue 3): test split, 4/4 beat files, 2-bar windows with a 1-bar hop, windows that hold
hits; z = mu (temperature 0); the per-voice thresholds of model.json (tuned on validation at
export). Pooled hit precision / recall / F1, F1 per voice, velocity and offset MSE on the
true-positive cells, for fp32 and int8; in the same run the baselines silence and copy-the-groove
(the groove's velocity and offset put on the model's predicted hits); voices per window and offset
spread, generated vs ground truth. One groove per run, as the box runs it (dynamic int8 quantises
activations with one scale per tensor, so a batch would share one scale). Writes the result into model.json under metrics.test and prints
a markdown table. Needs onnxruntime and numpy only.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

from appliance.core.groove import VOICES
from training import dataset as ds
from training.metrics import report
from training.onnx_model import OnnxModel, thresholds_for

log = logging.getLogger("training.evaluate")

REPO = Path(__file__).resolve().parent.parent


def evaluate(model_dir: Path, split: ds.Split) -> dict:
    card = json.loads((model_dir / "model.json").read_text())
    thresholds = thresholds_for(card, split.inputs)
    results: dict[str, Any] = {}
    for precision in ("fp32", "int8"):
        probs, vel, off = OnnxModel(model_dir, precision, threads=2).predict(split.inputs, batch=1)
        results[precision] = report(probs, vel, off, split.patterns, split.grooves, thresholds)
    results["protocol"] = ("GMD test split, 4/4 beat files, 2-bar windows with 1-bar hop, windows with hits; "
                           "z = mu; thresholds from model.json (tuned on validation; with a register encoder its register_path's "
                           "for the grooves it hears); one groove per run, "
                           "as the box runs it")
    results["int8_f1_minus_fp32"] = results["int8"]["hit"]["f1"] - results["fp32"]["hit"]["f1"]
    return results


def _f(x: float | None, digits: int = 4) -> str:
    return "–" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{digits}f}"


def markdown(results: dict) -> str:
    fp, q = results["fp32"], results["int8"]
    copy, silence = fp["baselines"]["copy_groove"], fp["baselines"]["silence"]
    copy8 = q["baselines"]["copy_groove"]
    lines = [
        f"Test split: {fp['windows']} windows. z = mu, thresholds tuned on validation.",
        "",
        "| | hit P | hit R | hit F1 | velocity MSE (TP) | offset MSE (TP) |",
        "|---|---|---|---|---|---|",
        f"| model fp32 | {_f(fp['hit']['precision'], 3)} | {_f(fp['hit']['recall'], 3)} | {_f(fp['hit']['f1'], 3)} "
        f"| {_f(fp['velocity_mse_tp'])} | {_f(fp['offset_mse_tp'])} |",
        f"| model int8 | {_f(q['hit']['precision'], 3)} | {_f(q['hit']['recall'], 3)} | {_f(q['hit']['f1'], 3)} "
        f"| {_f(q['velocity_mse_tp'])} | {_f(q['offset_mse_tp'])} |",
        f"| copy-the-groove (on fp32 hits) | {_f(fp['hit']['precision'], 3)} | {_f(fp['hit']['recall'], 3)} "
        f"| {_f(fp['hit']['f1'], 3)} | {_f(copy['velocity_mse_tp'])} | {_f(copy['offset_mse_tp'])} |",
        f"| copy-the-groove (on int8 hits) | {_f(q['hit']['precision'], 3)} | {_f(q['hit']['recall'], 3)} "
        f"| {_f(q['hit']['f1'], 3)} | {_f(copy8['velocity_mse_tp'])} | {_f(copy8['offset_mse_tp'])} |",
        f"| silence | {_f(silence['precision'], 3)} | {_f(silence['recall'], 3)} | {_f(silence['f1'], 3)} | – | – |",
        "",
        "| F1 per voice | " + " | ".join(VOICES) + " |",
        "|---|" + "---|" * len(VOICES),
        "| fp32 | " + " | ".join(_f(fp["f1_per_voice"][v], 3) for v in VOICES) + " |",
        "| int8 | " + " | ".join(_f(q["f1_per_voice"][v], 3) for v in VOICES) + " |",
        "",
        "| | generated fp32 | generated int8 | ground truth |",
        "|---|---|---|---|",
        f"| voices per window | {_f(fp['voices_per_window']['generated'], 2)} | "
        f"{_f(q['voices_per_window']['generated'], 2)} | {_f(fp['voices_per_window']['truth'], 2)} |",
        f"| offset spread (std, steps) | {_f(fp['offset_spread']['generated'], 3)} | "
        f"{_f(q['offset_spread']['generated'], 3)} | {_f(fp['offset_spread']['truth'], 3)} |",
        "",
        f"int8 F1 − fp32 F1: {results['int8_f1_minus_fp32']:+.4f}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path, nargs="?", default=REPO / "models" / "groove-vae")
    p.add_argument("--gmd-dir", default=None)
    p.add_argument("--no-write", action="store_true", help="do not store the metrics in model.json")
    args = p.parse_args(argv)
    if not (args.model_dir / "model.json").exists():
        raise SystemExit(f"evaluate: {args.model_dir} holds no model.json (export a model first)")
    try:
        test = ds.load_split("test", args.gmd_dir)
    except ds.DatasetError as exc:
        raise SystemExit(f"evaluate: {exc}") from None
    results = evaluate(args.model_dir, test)
    if not args.no_write:
        path = args.model_dir / "model.json"
        card = json.loads(path.read_text())
        card.setdefault("metrics", {})["test"] = results
        path.write_text(json.dumps(card, indent=2) + "\n")
        log.info("wrote metrics.test into %s", path)
    print(markdown(results))
    sys.stdout.flush()


if __name__ == "__main__":
    main()

"""What people's grooves lose: which hits, or how many? (validation split only)

    python -m training.ceiling models/groove-vae

The shipped model's hit F1 on the fixed validation sets (drummers' grooves and simulated hands,
z = mu, fp32) decoded three ways:
- at the card's per-voice thresholds (tuned on the drummers' grooves), as the box's figures are;
- at thresholds tuned on the hands themselves (the most any fixed calibration can give them);
- with each voice's expected number of hits (the sum of its probabilities, rounded) as its count;
- with each voice's number of hits in each window known (an oracle): the voice's most probable
  steps, as many as the drummer played. This separates ranking (which steps) from counting
  (how many), the part a reduced groove leaves open: eighths or sixteenths on the hats, one kick
  or two.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from training import dataset as ds
from training import humanize
from training.metrics import hit_scores, tune_thresholds
from training.onnx_model import OnnxModel

REPO = Path(__file__).resolve().parent.parent


def top_k(probs: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Boolean [N,32,9]: per window and voice, the k[n, v] most probable steps."""
    ranks = np.argsort(np.argsort(-probs, axis=1, kind="stable"), axis=1, kind="stable")
    return ranks < k[:, None, :]


def figures(probs: dict[str, np.ndarray], true: np.ndarray, thresholds: np.ndarray) -> dict[str, dict[str, float]]:
    """F1 per input kind under the three decodings (see the module docstring)."""
    tuned = tune_thresholds(probs["hands"], true)
    count = true.sum(axis=1)
    return {kind: {"card": hit_scores(p >= thresholds, true)[0].f1,
                   "hands_tuned": hit_scores(p >= tuned, true)[0].f1,
                   "count_expected": hit_scores(top_k(p, np.rint(p.sum(axis=1)).astype(int)), true)[0].f1,
                   "count_known": hit_scores(top_k(p, count), true)[0].f1}
            for kind, p in probs.items()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path, nargs="?", default=REPO / "models" / "groove-vae")
    p.add_argument("--gmd-dir", default=None)
    args = p.parse_args(argv)
    try:
        val = ds.load_split("validation", args.gmd_dir)
    except ds.DatasetError as exc:
        raise SystemExit(f"ceiling: {exc}") from None
    card = json.loads((args.model_dir / "model.json").read_text())
    model = OnnxModel(args.model_dir, "fp32", threads=2)
    grooves = {"drummer": val.inputs,
               "hands": humanize.human_set(val.patterns, "hands", humanize.SEED_VALIDATION, register=True)}
    probs = {kind: model.predict(g, batch=256)[0] for kind, g in grooves.items()}
    result = figures(probs, val.patterns[..., 0] > 0.5, np.asarray(card["thresholds"], np.float32))
    print(f"validation, {len(val)} windows, fp32, z = mu: pooled hit F1\n")
    print("| input | card's thresholds | thresholds tuned on hands | expected count | hits per voice known |")
    print("|---|---|---|---|---|")
    for kind, r in result.items():
        print(f"| {kind} | {r['card']:.4f} | {r['hands_tuned']:.4f} | {r['count_expected']:.4f} "
              f"| {r['count_known']:.4f} |")


if __name__ == "__main__":
    main()

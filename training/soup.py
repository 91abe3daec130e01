"""Interpolate checkpoints of one architecture (a weight-space ensemble, as in WiSE-FT and model soups).

    python -m training.soup BASE.pt FINE_TUNED.pt ALPHA OUT.pt
    python -m training.soup BASE.pt TUNED_A.pt,TUNED_B.pt,TUNED_C.pt ALPHA OUT.pt

OUT's weights are (1 − ALPHA) · BASE + ALPHA · FINE_TUNED. Several fine-tunes of one start,
comma-separated, are first averaged with equal weights (a uniform soup). Everything else
(config, command, state) is the first fine-tune's, with the parents and ALPHA recorded under "soup".
A BASE that does not hear the groove's register, under fine-tunes that do, is widened first
(`model.widen`: the register's weights 0 in it).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from training.model import ModelConfig, widen


def mix(base: Path, fine_tuned: list[Path], alpha: float) -> tuple[dict, dict]:
    """(1 − alpha) · base + alpha · mean(fine_tuned): the weights, and the first fine-tune's checkpoint."""
    a = torch.load(base, weights_only=False, map_location="cpu")
    tuned = [torch.load(path, weights_only=False, map_location="cpu") for path in fine_tuned]
    config = ModelConfig(**tuned[0]["model_config"])
    try:
        start = widen(a["model"], a["model_config"], config)
    except ValueError:
        raise SystemExit(f"soup: {base} and {fine_tuned[0]} have different architectures") from None
    for path, ckpt in zip(fine_tuned, tuned):
        if ModelConfig(**ckpt["model_config"]) != config:
            raise SystemExit(f"soup: {fine_tuned[0]} and {path} have different architectures")
    weights = {k: (1 - alpha) * start[k] + alpha * sum(t["model"][k] for t in tuned) / len(tuned)
               for k in start}
    return weights, tuned[0]


def parse(spec: str) -> tuple[Path, list[Path], float]:
    """BASE+TUNED[,TUNED…]@ALPHA → its parts."""
    base, rest = spec.split("+", 1)
    tuned, alpha = rest.rsplit("@", 1)
    return Path(base), [Path(t) for t in tuned.split(",")], float(alpha)


def soup(base: Path, fine_tuned: Path | list[Path], alpha: float, out: Path) -> None:
    tuned = [fine_tuned] if isinstance(fine_tuned, Path) else list(fine_tuned)
    weights, ckpt = mix(base, tuned, alpha)
    ckpt["model"] = weights
    ckpt.pop("raw_model", None)
    ckpt.pop("optimizer", None)
    ckpt["soup"] = {"base": str(base), "fine_tuned": ",".join(str(t) for t in tuned), "alpha": alpha}
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("base", type=Path)
    p.add_argument("fine_tuned", help="a checkpoint, or several of one start, comma-separated")
    p.add_argument("alpha", type=float)
    p.add_argument("out", type=Path)
    args = p.parse_args(argv)
    soup(args.base, [Path(t) for t in args.fine_tuned.split(",")], args.alpha, args.out)


if __name__ == "__main__":
    main()

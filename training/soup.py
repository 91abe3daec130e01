"""Interpolate two checkpoints of one architecture (a weight-space ensemble, as in WiSE-FT).

    python -m training.soup BASE.pt FINE_TUNED.pt ALPHA OUT.pt

OUT's weights are (1 − ALPHA) · BASE + ALPHA · FINE_TUNED; everything else (config, command,
state) is FINE_TUNED's, with the two parents and ALPHA recorded under "soup".
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch


def soup(base: Path, fine_tuned: Path, alpha: float, out: Path) -> None:
    a = torch.load(base, weights_only=False, map_location="cpu")
    b = torch.load(fine_tuned, weights_only=False, map_location="cpu")
    if a["model_config"] != b["model_config"]:
        raise SystemExit(f"soup: {base} and {fine_tuned} have different architectures")
    b["model"] = {k: (1 - alpha) * a["model"][k] + alpha * v for k, v in b["model"].items()}
    b.pop("raw_model", None)
    b.pop("optimizer", None)
    b["soup"] = {"base": str(base), "fine_tuned": str(fine_tuned), "alpha": alpha}
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(b, out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("base", type=Path)
    p.add_argument("fine_tuned", type=Path)
    p.add_argument("alpha", type=float)
    p.add_argument("out", type=Path)
    args = p.parse_args(argv)
    soup(args.base, args.fine_tuned, args.alpha, args.out)


if __name__ == "__main__":
    main()

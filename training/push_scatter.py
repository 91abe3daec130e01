"""How often a figure's own last note reads as a push (``Looper.last_accent`` >= ``PUSH_ACCENT``)
when the player's velocities scatter.

    python -m training.push_scatter [--trials 2000] [--seed 36]

Sixteenths at velocity 70 of 127 with Gaussian scatter (SD 3, 5, 8), three passes, the last
note on step 31 at its figure's level: one line per SD with the share of trials in which the
box would hear that note as an accented push of the next bar's 1 (docs/ARCHITECTURE.md, "Fill
phrasing").
"""
from __future__ import annotations

import argparse

import numpy as np

from appliance.core.engine import PUSH_ACCENT
from appliance.core.groove import STEPS
from appliance.core.looper import Looper

LEVEL = 70        #: the figure's velocity
PASSES = 3        #: passes played before the stop
SDS = (3, 5, 8)   #: velocity scatter measured


def false_pushes(sd: float, trials: int, rng: np.random.Generator) -> float:
    """The share of trials whose last note reads as a push."""
    pushes = 0
    for _ in range(trials):
        looper = Looper()
        for k in range(PASSES):
            looper.advance(k * STEPS)
            for step in range(STEPS):
                looper.record(k * STEPS + step, float(np.clip(LEVEL + rng.normal(0, sd), 1, 127)) / 127)
        pushes += (looper.last_accent() or 0.0) >= PUSH_ACCENT
    return pushes / trials


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=36)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    for sd in SDS:
        share = false_pushes(sd, args.trials, rng)
        print(f"velocity SD {sd}: the figure's last note heard as a push in {100 * share:.1f} % of {args.trials} trials")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

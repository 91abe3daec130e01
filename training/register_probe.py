"""Does knowing which notes were low help the model hear hands? (validation split only)

    python -m training.from_onnx models/groove-vae training/runs/shipped/best.pt
    python -m training.register_probe training/runs/shipped/best.pt --seed 1                # with the register
    python -m training.register_probe training/runs/shipped/best.pt --seed 1 --no-register  # the control

The groove the model hears is one line: where a note landed, how loud, how early or late. Two
hands tapping a loop, or a keyboard player comping, also say which notes were low (the left hand:
the kick's part, the bass) and which high, and a drummer's kick follows the low
part. This probe fine-tunes the shipped weights with the second round's last recipe (60 %
simulated hands, 10 % keys, lr 2e-4, EMA 0.999: tempo_probe's fine-tune), twice: once with a
fourth input channel (`ModelConfig.groove_channels` 4), +1 on the steps where a low note landed and −1 on the other hit steps (a
drummer's groove: the kick; hands: the low hand's taps of the kick's part; keys: the left hand's bass),
entering the step embedding through zero weights (`model.widen`) so it starts as the shipped
model; once without it (the control). ``--blind`` of the training grooves have the channel at 0,
as a player tapping one pad gives. It prints validation F1 after every epoch on the drummers' grooves, simulated hands and
keys (seed 8), and on hands with the channel blanked, at thresholds tuned on the drummers'
grooves. It changes nothing the box loads: a register input would change the model contract.
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from training import dataset as ds
from training import humanize
from training.metrics import hit_scores, tune_thresholds
from training.model import GrooveVAE
from training.tempo_probe import AUGMENT, Batch, fine_tune, probe_options, start

BLIND = 0.1   #: the share of training grooves whose register is unknown (one pad, one key)


def register_batch(train: ds.Split, blind: float) -> Batch:
    """The grooves of the windows ``idx`` with their register ([B,32,4]: the control's model hears
    the first three), and which came from a person."""
    augment = replace(AUGMENT, p_blind=blind)

    def batch(idx: np.ndarray, rng: np.random.Generator) -> tuple[torch.Tensor, np.ndarray]:
        grooves, person = ds.augment_with_people(train.patterns[idx], rng, augment, with_register=True)
        return torch.from_numpy(grooves), person
    return batch


def validation_sets(val: ds.Split) -> dict[str, np.ndarray]:
    """The fixed validation inputs, each [N,32,4]: drummers, hands, keys and hands without the register."""
    drummers = val.inputs
    hands = humanize.human_set(val.patterns, "hands", humanize.SEED_VALIDATION, register=True)
    keys = humanize.human_set(val.patterns, "keys", humanize.SEED_VALIDATION, register=True)
    blank = hands.copy()
    blank[..., 3] = 0.0
    return {"drummers": drummers, "hands": hands, "keys": keys, "hands, register blank": blank}


@torch.no_grad()
def probabilities(model: GrooveVAE, grooves: np.ndarray) -> np.ndarray:
    model.eval()
    return np.concatenate([torch.sigmoid(model(torch.from_numpy(np.ascontiguousarray(grooves[i:i + 512])),
                                               sample=False)["logits"]).numpy()
                           for i in range(0, len(grooves), 512)])


def scores(model: GrooveVAE, sets: dict[str, np.ndarray], true: np.ndarray) -> dict[str, float]:
    """Validation F1 per input, at thresholds tuned on the drummers' grooves."""
    probs = {name: probabilities(model, g) for name, g in sets.items()}
    thresholds = tune_thresholds(probs["drummers"], true, rounds=1)
    return {name: hit_scores(p >= thresholds, true)[0].f1 for name, p in probs.items()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    probe_options(p)
    p.add_argument("--no-register", action="store_true", help="the control: the same fine-tune without it")
    p.add_argument("--blind", type=float, default=BLIND)
    args = p.parse_args(argv)
    with_register = not args.no_register
    train, val, model = start(args, with_register)
    sets, true = validation_sets(val), val.patterns[..., 0] > 0.5
    name = "register" if with_register else "control"

    def report(epoch: int, average: GrooveVAE) -> None:
        figures = scores(average, sets, true)
        print(f"{name} seed {args.seed} epoch {epoch}: F1 " + ", ".join(f"{k} {v:.4f}" for k, v in figures.items()),
              flush=True)

    report(0, model)
    fine_tune(model, train, register_batch(train, args.blind), args.epochs, args.seed, report)


if __name__ == "__main__":
    main()

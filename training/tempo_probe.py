"""Does the file's tempo help the model hear hands? (validation split only)

    python -m training.from_onnx models/groove-vae training/runs/shipped/best.pt
    python -m training.tempo_probe training/runs/shipped/best.pt --seed 1            # with the tempo
    python -m training.tempo_probe training/runs/shipped/best.pt --seed 1 --no-tempo # the control
    python -m training.tempo_probe training/runs/shipped/best.pt --counts            # why: the hats' count by tempo

The model reads a groove without its tempo, but a drummer's count depends on it: the shipped
model's closed hat, heard through simulated hands, plays 1.3 hits per 2 bars too few under
95 BPM and 3.1 too many from 115 BPM on (validation). This probe fine-tunes the shipped weights
with the second round's last recipe (60 % simulated hands, 10 % keys, expression learnt from the
drummers' grooves only, lr 2e-4, EMA 0.999), twice: once with the file's tempo (log2 of BPM/110)
as the groove's fourth channel, entering every step's embedding through zero weights
(`model.widen`, so it starts as the shipped model), once without (the control). It prints validation F1 on the drummers' grooves
and on simulated hands (seed 8) after every epoch, at thresholds tuned on the drummers' grooves.
It changes nothing the box loads: a tempo input would change the model contract.
"""
from __future__ import annotations

import argparse
import copy
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from training import dataset as ds
from training import humanize
from training.metrics import hit_scores, tune_thresholds
from training.model import GrooveVAE, LossConfig, ModelConfig, vae_loss, widen

REFERENCE_BPM = 110.0   #: the tempo input is log2(BPM / this)
LR = 2e-4               #: the second round's last fine-tune (models/README.md, "Second round")
EMA = 0.999
BATCH = 64
AUGMENT = ds.Augment(p_hands=0.6, p_keys=0.1)


def file_bpm(split: ds.Split, gmd_dir: str | None) -> np.ndarray:
    """Each window's file's tempo (info.csv)."""
    root = ds.gmd_dir(gmd_dir)
    bpm = {str(entry.midi.relative_to(root)): entry.bpm for entry in ds.list_files(root, split.name)}
    return np.array([bpm[split.files[i]] for i in split.file_ids], np.float32)


def tempos(split: ds.Split, gmd_dir: str | None) -> np.ndarray:
    """The tempo input: log2(BPM / REFERENCE_BPM) of each window's file."""
    return np.log2(file_bpm(split, gmd_dir) / REFERENCE_BPM)


def model_input(grooves: np.ndarray, tempo: np.ndarray | None) -> torch.Tensor:
    """Grooves [B,32,3], with the tempo [B] as a fourth channel when given."""
    grooves = grooves.astype(np.float32)
    if tempo is not None:
        grooves = np.concatenate([grooves, np.broadcast_to(tempo[:, None, None], grooves.shape[:2] + (1,))], -1)
    return torch.from_numpy(np.ascontiguousarray(grooves, dtype=np.float32))


@torch.no_grad()
def hit_probabilities(model: GrooveVAE, grooves: np.ndarray, tempo: np.ndarray | None) -> np.ndarray:
    model.eval()
    return np.concatenate([torch.sigmoid(model(model_input(grooves[i:i + 512], None if tempo is None else tempo[i:i + 512]),
                                               sample=False)["logits"]).numpy()
                           for i in range(0, len(grooves), 512)])


def scores(model: GrooveVAE, val: ds.Split, hands: np.ndarray, tempo: np.ndarray | None) -> tuple[float, float]:
    """Validation F1 on the drummers' grooves and on simulated hands, thresholds tuned on the first."""
    true = val.patterns[..., 0] > 0.5
    drummers = hit_probabilities(model, val.grooves, tempo)
    thresholds = tune_thresholds(drummers, true, rounds=1)
    return (hit_scores(drummers >= thresholds, true)[0].f1,
            hit_scores(hit_probabilities(model, hands, tempo) >= thresholds, true)[0].f1)


BANDS = (95.0, 115.0)   #: --counts: BPM bands (under 95, 95 to 115, from 115 on)


def counts(model: GrooveVAE, val: ds.Split, hands: np.ndarray, gmd_dir: str | None) -> None:
    """The closed hat's hits per window the drummer played less those the model plays (at its
    thresholds tuned on the drummers' grooves), per tempo band, on the drummers' grooves and hands."""
    band = np.digitize(file_bpm(val, gmd_dir), BANDS)
    true = val.patterns[..., 0] > 0.5
    drummers = hit_probabilities(model, val.grooves, None)
    thresholds = tune_thresholds(drummers, true, rounds=1)
    hat = 2
    for name, probs in (("drummers", drummers), ("hands", hit_probabilities(model, hands, None))):
        short = true[..., hat].sum(1) - (probs[..., hat] >= thresholds[hat]).sum(1)
        print(f"closed hat, {name}: played less predicted per 2 bars, under {BANDS[0]:g} / {BANDS[0]:g}-{BANDS[1]:g}"
              f" / from {BANDS[1]:g} BPM: " + " / ".join(f"{short[band == b].mean():+.2f} ({(band == b).sum()} windows)"
                                                    for b in range(len(BANDS) + 1)))


Batch = Callable[[np.ndarray, np.random.Generator], tuple[torch.Tensor, np.ndarray]]


def tempo_batch(train: ds.Split, train_tempo: np.ndarray | None) -> Batch:
    """The model's input for the windows ``idx`` (with the tempo when given), and which came from a person."""
    def batch(idx: np.ndarray, rng: np.random.Generator) -> tuple[torch.Tensor, np.ndarray]:
        grooves, person = ds.augment_with_people(train.patterns[idx], rng, AUGMENT)
        return model_input(grooves, None if train_tempo is None else train_tempo[idx]), person
    return batch


def fine_tune(model: GrooveVAE, train: ds.Split, batch: Batch, epochs: int, seed: int,
              on_epoch: Callable[[int, GrooveVAE], None]) -> GrooveVAE:
    """The fine-tune (``batch`` makes each batch's input); ``on_epoch(epoch, average)`` after each
    epoch. Returns the average."""
    rng = np.random.default_rng(seed)
    average = copy.deepcopy(model).eval().requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01)
    loss_config = LossConfig(people_expression=0.0)
    steps = math.ceil(len(train) / BATCH)
    for epoch in range(epochs):
        model.train()
        order = rng.permutation(len(train))
        for i in range(steps):
            idx = np.sort(order[i * BATCH:(i + 1) * BATCH])
            inputs, person = batch(idx, rng)
            progress = min(1.0, (epoch + i / steps) / epochs)     # cosine to 0.1 × LR, no warm-up
            for group in opt.param_groups:
                group["lr"] = LR * (0.1 + 0.45 * (1 + math.cos(math.pi * progress)))
            out = model(inputs)
            loss = vae_loss(out, torch.from_numpy(train.patterns[idx]), loss_config, loss_config.beta,
                            torch.from_numpy(np.where(person, 0.0, 1.0).astype(np.float32)))["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step = epoch * steps + i + 1
            with torch.no_grad():
                for kept, live in zip(average.parameters(), model.parameters()):
                    kept.lerp_(live, 1.0 - min(EMA, (1 + step) / (10 + step)))
        on_epoch(epoch + 1, average)
    return average


def probe_options(p: argparse.ArgumentParser) -> None:
    """The options a probe's fine-tune shares (this one's and training/register_probe.py's)."""
    p.add_argument("checkpoint", type=Path, help="the shipped weights (python -m training.from_onnx)")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--gmd-dir", default=None)


def start(args: argparse.Namespace, fourth_channel: bool) -> tuple[ds.Split, ds.Split, GrooveVAE]:
    """The train and validation splits, and the checkpoint's model (with a fourth groove channel
    entering through zero weights, when asked: ``model.widen``), seeded."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train, val = ds.load_split("train", args.gmd_dir), ds.load_split("validation", args.gmd_dir)
    checkpoint = torch.load(args.checkpoint, weights_only=False)
    cfg = ModelConfig(**{**checkpoint["model_config"], "groove_channels": 4 if fourth_channel else 3})
    model = GrooveVAE(cfg)
    model.load_state_dict(widen(checkpoint["model"], checkpoint["model_config"], cfg))
    return train, val, model


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    probe_options(p)
    p.add_argument("--no-tempo", action="store_true", help="the control: the same fine-tune without the tempo")
    p.add_argument("--counts", action="store_true", help="only print the hats' count by tempo band")
    args = p.parse_args(argv)
    with_tempo = not (args.no_tempo or args.counts)
    train, val, model = start(args, with_tempo)
    hands = humanize.human_set(val.patterns, "hands", humanize.SEED_VALIDATION)
    if args.counts:
        counts(model, val, hands, args.gmd_dir)
        return
    train_tempo = val_tempo = None
    if with_tempo:
        train_tempo, val_tempo = tempos(train, args.gmd_dir), tempos(val, args.gmd_dir)
    name = "control" if args.no_tempo else "tempo"

    def report(epoch: int, average: GrooveVAE) -> None:
        drummers, by_hand = scores(average, val, hands, val_tempo)
        print(f"{name} seed {args.seed} epoch {epoch}: F1 drummers {drummers:.4f}, hands {by_hand:.4f}", flush=True)

    report(0, model)
    fine_tune(model, train, tempo_batch(train, train_tempo), args.epochs, args.seed, report)


if __name__ == "__main__":
    main()

"""Train the groove VAE on GMD.

    python -m training.train                          # the shipped recipe (make train)
    python -m training.train --out training/runs/x    # same command again resumes from x/last.pt

Every epoch writes <out>/last.pt (resumable) and, when validation improves, <out>/best.pt; one
JSON line per epoch goes to <out>/history.jsonl and a log to <out>/train.log. Early stopping
and best.pt follow the validation pooled hit F1 (z = mu, per-voice thresholds tuned on validation;
the reconstruction loss keeps falling long after F1 stops rising, and the other way round). --max-minutes caps the wall clock (summed
over resumes) so a run always ends with a usable checkpoint.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import logging
import math
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from training import dataset as ds
from training import humanize
from training.metrics import hit_scores, tune_thresholds, expression_mse
from training.model import GrooveVAE, LossConfig, ModelConfig, beta_at, vae_loss, widen

log = logging.getLogger("training.train")

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "training" / "runs" / "groove-vae"
RECIPE = REPO / "training" / "recipe.json"  #: architecture and β chosen by the sweep (training/sweep.py export)


def recipe_defaults(path: Path | None = None) -> dict:
    """The committed recipe's values (ModelConfig / LossConfig field names); {} when there is none."""
    path = RECIPE if path is None else path
    if not path.exists():
        return {}
    recipe = json.loads(path.read_text())
    known = {f.name for cls in (ModelConfig, LossConfig) for f in dataclasses.fields(cls)}
    unknown = set(recipe.get("params", {})) - known
    if unknown:
        raise SystemExit(f"{path}: unknown recipe fields {sorted(unknown)}")
    return dict(recipe.get("params", {}))


@dataclass
class TrainConfig:
    epochs: int = 45
    batch_size: int = 64
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    patience: int = 15          # epochs without a better validation F1 before stopping
    max_minutes: float = 60.0   # wall-clock cap on training, summed over resumes
    seed: int = 1
    threads: int = 2
    ema: float = 0.999          # > 0: validate, keep and ship an exponential moving average of the weights
    limit: int = 0              # use only the first N training windows (0 = all); for smoke runs
    val_limit: int = 0
    select_hands: float = 0.0   # best.pt follows (1 − w) · F1 on drummers' grooves + w · F1 on simulated hands
    teacher: str = ""           # a checkpoint (the model this one replaces) that teaches the grooves whose register is unknown …
    teach: float = 0.0          # … their hit targets: (1 − teach) · the drummer's hits + teach · the teacher's probabilities
    anchor: float = 0.0         # with a teacher: + anchor · Σ (mu − the teacher's mu)², mean over the batch
    freeze_decoder: bool = False  # train the encoder only; the decoder stays --init's, so the two encoders share its z


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--gmd-dir", default=None, help="default: $GMD_DIR or ../shared/data/gmd")
    p.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint in --out")
    p.add_argument("--init", type=Path, default=None,
                   help="start from this checkpoint's (averaged) weights with a new optimiser: fine-tuning")
    p.add_argument("--no-augment", action="store_true", help="train on the drummers' own grooves only")
    p.add_argument("--one-sided-known", action="store_true",
                   help="with the register: a groove all on one side keeps it, so unknown is only --p-blind's "
                        "(not for a register encoder: the box never sends it a one-sided groove)")
    for f in dataclasses.fields(ds.Augment):
        if f.name.startswith("p_"):
            p.add_argument("--" + f.name.replace("_", "-"), type=float, default=f.default,
                           help=f"augmentation probability (default {f.default})")
    for f in dataclasses.fields(TrainConfig):
        if isinstance(f.default, bool):
            p.add_argument("--" + f.name.replace("_", "-"), action=argparse.BooleanOptionalAction, default=f.default)
        else:
            p.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default)
    recipe = recipe_defaults()  # the sweep's choice; a flag on the command line still wins
    for f in dataclasses.fields(ModelConfig):
        if f.name not in ("steps", "voices"):
            p.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=recipe.get(f.name, f.default))
    for f in dataclasses.fields(LossConfig):
        p.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=recipe.get(f.name, f.default))
    return p.parse_args(argv)


def _pick(cls, ns: argparse.Namespace):
    return cls(**{f.name: getattr(ns, f.name) for f in dataclasses.fields(cls) if hasattr(ns, f.name)})


def lr_at(epoch: float, cfg: TrainConfig) -> float:
    """One warm-up epoch, then cosine decay to min_lr_ratio · lr at cfg.epochs."""
    if epoch < 1:
        return cfg.lr * max(epoch, 0.05)
    t = min(1.0, (epoch - 1) / max(1, cfg.epochs - 1))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


@torch.no_grad()
def predict(model: GrooveVAE, grooves: np.ndarray, batch: int = 512) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Torch predictions at z = mu: hit probabilities, velocities, offsets, each [N,32,9]."""
    model.eval()
    outs: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    for i in range(0, len(grooves), batch):
        out = model(torch.tensor(grooves[i:i + batch]), sample=False)
        outs[0].append(torch.sigmoid(out["logits"]).numpy())
        outs[1].append(out["velocities"].numpy())
        outs[2].append(out["offsets"].numpy())
    return tuple(np.concatenate(o) for o in outs)  # type: ignore[return-value]


@torch.no_grad()
def validate(model: GrooveVAE, val: ds.Split, loss_cfg: LossConfig, hands: np.ndarray | None = None) -> dict:
    model.eval()
    pats = torch.tensor(val.patterns)  # a copy: cached arrays are read-only
    total = {"recon": 0.0, "bce": 0.0, "vel": 0.0, "off": 0.0, "kl": 0.0}
    for i in range(0, len(val), 512):
        out = model(torch.tensor(val.inputs[i:i + 512]), sample=False)
        parts = vae_loss(out, pats[i:i + 512], loss_cfg, beta=0.0)
        n = len(pats[i:i + 512])
        for k in total:
            total[k] += float(parts[k]) * n
    metrics = {f"val_{k}": v / len(val) for k, v in total.items()}
    probs, vel, off = predict(model, val.inputs)
    true = val.patterns[..., 0] > 0.5
    th = tune_thresholds(probs, true, rounds=1)
    pred = probs >= th
    pooled, _ = hit_scores(pred, true)
    v_mse, o_mse = expression_mse(vel, off, val.patterns, pred & true)
    metrics.update(val_f1=pooled.f1, val_f1_at_half=hit_scores(probs >= 0.5, true)[0].f1,
                   val_vel_mse=v_mse, val_off_mse=o_mse)
    if hands is not None:  # simulated human input of the same loops, at the same thresholds
        metrics["val_hands_f1"] = hit_scores(predict(model, hands)[0] >= th, true)[0].f1
        if model.cfg.groove_channels > 3:   # and the same hands with their register unknown
            blank = hands.copy()
            blank[..., 3] = 0.0
            metrics["val_hands_blank_f1"] = hit_scores(predict(model, blank)[0] >= th, true)[0].f1
    return metrics


EpochHook = Callable[[int, dict], None]  #: (epoch, validation metrics); may raise to stop (a sweep's pruner)


def train(args: argparse.Namespace, on_epoch: EpochHook | None = None) -> Path:
    cfg, mcfg, lcfg = _pick(TrainConfig, args), _pick(ModelConfig, args), _pick(LossConfig, args)
    aug = ds.Augment.none() if args.no_augment else ds.Augment(
        **{f.name: getattr(args, f.name) for f in dataclasses.fields(ds.Augment) if f.name.startswith("p_")},
        one_sided_known=args.one_sided_known)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    handler = _log_to(out / "train.log")
    try:
        return _train(args, cfg, mcfg, lcfg, aug, out, on_epoch)
    finally:
        logging.getLogger("training").removeHandler(handler)
        handler.close()


@dataclass
class _Run:
    """One training run: the model, its average, the optimiser and the resumable state."""

    model: GrooveVAE
    ema: GrooveVAE | None
    opt: torch.optim.Optimizer
    state: dict
    init_info: dict | None
    rng: np.random.Generator
    teacher: GrooveVAE | None = None   #: TrainConfig.teacher's model, frozen

    @property
    def scored(self) -> GrooveVAE:
        """The weights that are validated and saved: the average when there is one."""
        return self.ema if self.ema is not None else self.model


def _load_windows(args: argparse.Namespace, cfg: TrainConfig, aug: ds.Augment) -> tuple[ds.Split, ds.Split]:
    train_set = ds.load_split("train", args.gmd_dir)
    val_set = ds.load_split("validation", args.gmd_dir)
    if cfg.limit:
        train_set = train_set.subset(cfg.limit)
    if cfg.val_limit:
        val_set = val_set.subset(cfg.val_limit)
    log.info("windows: train %d, validation %d; augment %s", len(train_set), len(val_set),
             asdict(aug) if aug.active else "off")
    return train_set, val_set


def _start(args: argparse.Namespace, cfg: TrainConfig, mcfg: ModelConfig, ckpt_path: Path) -> _Run:
    """A new run, or the one in ``ckpt_path`` resumed, or one started from ``--init``."""
    model = GrooveVAE(mcfg)
    ema = copy.deepcopy(model).eval() if cfg.ema > 0 else None
    if ema is not None:
        ema.requires_grad_(False)
    resuming = ckpt_path.exists() and not args.fresh
    if cfg.anchor > 0 and not cfg.teacher:
        raise SystemExit("--anchor needs --teacher: the model whose z it anchors to")
    if cfg.freeze_decoder:
        if args.init is None and not resuming:
            raise SystemExit("--freeze-decoder needs --init: the decoder it keeps")
        model.decoder.requires_grad_(False)
        log.info("decoder frozen: only the encoder learns (a register encoder for --init's model)")
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                            weight_decay=cfg.weight_decay)
    state: dict[str, Any] = {"epoch": 0, "seconds": 0.0, "best": -math.inf, "best_epoch": -1, "bad_epochs": 0,
                             "history": [], "rng": None}
    init_info = None
    if resuming:
        ckpt = torch.load(ckpt_path, weights_only=False)
        if {**asdict(ModelConfig()), **ckpt["model_config"]} != asdict(mcfg):
            raise SystemExit(f"{ckpt_path} was trained with {ckpt['model_config']}, not {asdict(mcfg)}; "
                             f"use --fresh or another --out")
        froze = ckpt.get("train_config", {}).get("freeze_decoder", False)
        if froze != cfg.freeze_decoder:
            raise SystemExit(f"{ckpt_path}: its run {'froze' if froze else 'did not freeze'} the decoder; resume it "
                             f"{'with' if froze else 'without'} --freeze-decoder, or use --fresh or another --out")
        model.load_state_dict(ckpt.get("raw_model", ckpt["model"]))
        if ema is not None:
            ema.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        state = ckpt["state"]
        init_info = ckpt.get("init")
        torch.set_rng_state(ckpt["torch_rng"])
        log.info("resumed from %s at epoch %d (%.0f s trained)", ckpt_path, state["epoch"], state["seconds"])
    elif args.init is not None:
        init = torch.load(args.init, weights_only=False)
        try:
            weights = widen(init["model"], init["model_config"], mcfg)
        except ValueError as exc:
            raise SystemExit(f"{args.init} has {exc}") from None
        model.load_state_dict(weights)
        if ema is not None:
            ema.load_state_dict(weights)
        log.info("initialised from %s (epoch %d of its run)", args.init, init["state"]["epoch"])
        init_info = {"checkpoint": str(args.init), "epochs": init["state"]["epoch"],
                     "seconds": init["state"]["seconds"], "command": init.get("command")}
    rng = np.random.default_rng(cfg.seed)
    if state["rng"] is not None:
        rng.bit_generator.state = state["rng"]
    log.info("model: %d parameters, %s", model.num_parameters(), asdict(mcfg))
    return _Run(model, ema, opt, state, init_info, rng, _teacher(cfg))


def _teacher(cfg: TrainConfig) -> GrooveVAE | None:
    """TrainConfig.teacher's model, frozen (None without one)."""
    if not cfg.teacher or (cfg.teach <= 0 and cfg.anchor <= 0):
        return None
    ckpt = torch.load(cfg.teacher, weights_only=False)
    with torch.random.fork_rng():   # (its throw-away initial weights leave the run's random stream alone)
        teacher = GrooveVAE(ModelConfig(**ckpt["model_config"]))
    teacher.load_state_dict(ckpt["model"])
    log.info("teacher: %s, for the grooves whose register is unknown (teach %.2f), anchoring z (%.2f)",
             cfg.teacher, cfg.teach, cfg.anchor)
    return teacher.eval().requires_grad_(False)


def _should_stop(run: _Run, cfg: TrainConfig) -> bool:
    state, epoch = run.state, run.state["epoch"]
    if state["bad_epochs"] >= cfg.patience:
        log.info("early stop: no better validation F1 for %d epochs", cfg.patience)
        return True
    per_epoch = state["seconds"] / epoch if epoch else 0.0
    if state["seconds"] + per_epoch > cfg.max_minutes * 60:
        log.info("stop: the next epoch would pass --max-minutes %.0f", cfg.max_minutes)
        return True
    return False


@torch.no_grad()
def _taught(teacher: GrooveVAE | None, grooves: np.ndarray, pats: np.ndarray, teach: float) -> torch.Tensor | None:
    """Hit targets [B,32,9] where a teacher speaks: on the grooves whose register is unknown (all 0),
    (1 − teach) · the drummer's hits + teach · the teacher's probabilities at z = mu; elsewhere the hits."""
    if teacher is None or teach <= 0 or grooves.shape[-1] < 4:
        return None
    targets = torch.from_numpy(pats[..., 0].copy())
    unknown = np.flatnonzero(~grooves[..., 3].any(-1))
    if len(unknown):
        heard = torch.from_numpy(grooves[unknown][..., :teacher.cfg.groove_channels])
        taught = torch.sigmoid(teacher(heard, sample=False)["logits"])
        targets[unknown] = (1 - teach) * targets[unknown] + teach * taught
    return targets


def _anchored(teacher: GrooveVAE, grooves: np.ndarray, mu: torch.Tensor) -> torch.Tensor:
    """Σ over z of (mu − the teacher's mu on the same grooves)², mean over the batch."""
    with torch.no_grad():
        heard = torch.from_numpy(grooves[..., :teacher.cfg.groove_channels].copy())
        target = teacher.encoder(heard)[0]
    return ((mu - target) ** 2).sum(-1).mean()


def _train_epoch(run: _Run, train_set: ds.Split, cfg: TrainConfig, lcfg: LossConfig,
                 aug: ds.Augment) -> dict:
    """One pass over the training windows; the mean losses."""
    model, opt, state, rng, epoch = run.model, run.opt, run.state, run.rng, run.state["epoch"]
    model.train()
    steps_per_epoch = math.ceil(len(train_set) / cfg.batch_size)
    order = rng.permutation(len(train_set))
    sums = {"loss": 0.0, "bce": 0.0, "vel": 0.0, "off": 0.0, "kl": 0.0}
    for i in range(steps_per_epoch):
        idx = np.sort(order[i * cfg.batch_size:(i + 1) * cfg.batch_size])
        pats = train_set.patterns[idx]
        grooves, person = (ds.augment_with_people(pats, rng, aug, with_register=True) if aug.active
                           else (train_set.inputs[idx], None))
        expression = None if person is None else torch.from_numpy(np.where(person, lcfg.people_expression, 1.0)
                                                                    .astype(np.float32))
        frac = epoch + i / steps_per_epoch
        for g in opt.param_groups:
            g["lr"] = lr_at(frac, cfg)
        out_t = model(torch.from_numpy(grooves))
        parts = vae_loss(out_t, torch.from_numpy(pats), lcfg, beta_at(frac, lcfg), expression,
                         _taught(run.teacher, grooves, pats, cfg.teach))
        if run.teacher is not None and cfg.anchor > 0:
            parts["loss"] = parts["loss"] + cfg.anchor * _anchored(run.teacher, grooves, out_t["mu"])
        opt.zero_grad(set_to_none=True)
        parts["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        state["step"] = state.get("step", 0) + 1
        if run.ema is not None:  # the average warms up: early on it follows the weights closely
            decay = min(cfg.ema, (1 + state["step"]) / (10 + state["step"]))
            with torch.no_grad():
                for pe, pm in zip(run.ema.parameters(), model.parameters()):
                    pe.lerp_(pm, 1.0 - decay)
        for k in sums:
            sums[k] += float(parts[k].detach())
    return {f"train_{k}": v / steps_per_epoch for k, v in sums.items()}


def _record_epoch(run: _Run, cfg: TrainConfig, lcfg: LossConfig, seconds: float,
                  train_metrics: dict, val_metrics: dict, out: Path) -> tuple[dict, bool]:
    """Update the state with one finished epoch, log it and append it to history.jsonl;
    (the history row, whether it is the best so far)."""
    state, epoch = run.state, run.state["epoch"]
    state["seconds"] += seconds
    state["epoch"] = epoch + 1
    # the headline metric: pooled hit F1, thresholds tuned on validation (optionally mixed with
    # the F1 on simulated hands playing the validation loops)
    hands_f1 = val_metrics.get("val_hands_f1", 0.0)
    score = (1 - cfg.select_hands) * val_metrics["val_f1"] + cfg.select_hands * hands_f1
    improved = score > state["best"] + 1e-4
    if improved:
        state.update(best=score, best_epoch=epoch + 1, bad_epochs=0)
    else:
        state["bad_epochs"] += 1
    row = {"epoch": epoch + 1, "seconds": round(state["seconds"], 1), "lr": lr_at(epoch + 1, cfg),
           "beta": beta_at(epoch + 1, lcfg), **train_metrics, **val_metrics}
    state["history"].append(row)
    state["rng"] = run.rng.bit_generator.state
    log.info("epoch %3d  %5.0fs  train loss %.2f (bce %.2f vel %.3f off %.3f kl %.1f)  "
             "val recon %.2f  F1 %.3f (hands %.3f)  vel %.4f  off %.4f%s", epoch + 1, state["seconds"],
             train_metrics["train_loss"], train_metrics["train_bce"], train_metrics["train_vel"],
             train_metrics["train_off"], train_metrics["train_kl"], val_metrics["val_recon"],
             val_metrics["val_f1"], val_metrics.get("val_hands_f1", float("nan")), val_metrics["val_vel_mse"],
             val_metrics["val_off_mse"],
             "  *best*" if improved else "")
    with (out / "history.jsonl").open("a") as f:
        f.write(json.dumps(row) + "\n")
    return row, improved


def _train(args: argparse.Namespace, cfg: TrainConfig, mcfg: ModelConfig, lcfg: LossConfig,
           aug: ds.Augment, out: Path, on_epoch: EpochHook | None = None) -> Path:
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    train_set, val_set = _load_windows(args, cfg, aug)
    ckpt_path = out / "last.pt"
    run = _start(args, cfg, mcfg, ckpt_path)
    command = "python -m training.train " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    while run.state["epoch"] < cfg.epochs and not _should_stop(run, cfg):
        t0 = time.monotonic()
        train_metrics = _train_epoch(run, train_set, cfg, lcfg, aug)
        val_metrics = validate(run.scored, val_set, lcfg,
                               humanize.human_set(val_set.patterns, "hands", humanize.SEED_VALIDATION, register=True))
        _, improved = _record_epoch(run, cfg, lcfg, time.monotonic() - t0, train_metrics,
                                    val_metrics, out)
        ckpt = {"model": run.scored.state_dict(),
                **({"raw_model": run.model.state_dict()} if run.ema is not None else {}),
                "optimizer": run.opt.state_dict(), "state": run.state,
                "torch_rng": torch.get_rng_state(), "model_config": asdict(mcfg), "loss_config": asdict(lcfg),
                "train_config": asdict(cfg), "augment": asdict(aug) if aug.active else None,
                "command": command, "init": run.init_info, "train_windows": len(train_set),
                "val_windows": len(val_set), "skipped_files": train_set.skipped + val_set.skipped}
        _save(ckpt, ckpt_path)
        if improved:
            _save(ckpt, out / "best.pt")
        if on_epoch is not None:
            on_epoch(run.state["epoch"], val_metrics)
    state = run.state
    summary = {"epochs": state["epoch"], "seconds": round(state["seconds"], 1), "best_epoch": state["best_epoch"],
               "best_val_f1": state["best"], "command": command}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    log.info("done: %s", summary)
    return out / "best.pt"


def _save(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def _log_to(path: Path) -> logging.Handler:
    """Mirror the training package's log into <out>/train.log (removed again when the run ends)."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.setLevel(logging.INFO)
    pkg = logging.getLogger("training")
    pkg.setLevel(logging.INFO)
    pkg.addHandler(handler)
    return handler


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        train(parse_args(argv))
    except ds.DatasetError as exc:
        raise SystemExit(f"training: {exc}") from None


if __name__ == "__main__":
    main()

"""Hyper-parameter sweep of the groove VAE's architecture and β: an Optuna study (make sweep).

    python -m training.sweep run [--trials 40] [--hours 4] [--storage sqlite:///...]   # resumes
    python -m training.sweep export    # best trial → training/recipe.json, table → models/README.md
    python -m training.sweep table     # print the study's table

Every trial trains a short run (``--epochs`` on the first ``--limit`` training windows, all of
validation) with the shipped data recipe (augmentation, optimiser, EMA) and reports validation
pooled hit F1 (per-voice thresholds tuned on validation) after every epoch to a median pruner,
which stops a trial that lies below the median of earlier trials at the same epoch. The objective
is the trial's best validation F1. The test split is never touched.

The study lives in a SQLite file (training/runs/sweep/study.db by default): running the same
command again resumes it; trials that were running when the process died are marked failed by
their missing heartbeat and tried again. Several machines can share one study through a database
URL (``--storage postgresql://...``), each running ``python -m training.sweep run``.

The first trial is the shipped architecture, so every other trial is compared with it under the
same short budget. ``export`` writes the best trial's parameters to training/recipe.json, which
training.train reads as its defaults (``make train``), when it beats the shipped architecture's
trial by at least ``--min-gain`` validation F1 (0.01); otherwise the shipped architecture stays.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import warnings

import optuna

from training import train as tr
from training.model import LossConfig, ModelConfig

log = logging.getLogger("training.sweep")

REPO = Path(__file__).resolve().parent.parent
SWEEP_DIR = REPO / "training" / "runs" / "sweep"
DEFAULT_STORAGE = f"sqlite:///{SWEEP_DIR / 'study.db'}"
STUDY = "groove-vae-architecture"
README = REPO / "models" / "README.md"
TABLE_BEGIN, TABLE_END = "<!-- sweep-table -->", "<!-- /sweep-table -->"


@dataclass(frozen=True)
class TrialBudget:
    """What one trial trains: short, on a subset, the shipped data recipe otherwise."""

    epochs: int = 10          # the cosine schedule ends here; a trial sees the whole decay
    limit: int = 6000         # first N training windows (0 = all)
    val_limit: int = 0        # all 2,025 validation windows: the objective must not be noisy
    threads: int = 2
    max_minutes: float = 20.0  # per trial
    ema: float = 0.99         # the shipped 0.999 averages over ~1000 steps: too slow for a short run
    warmup_epochs: int = 3    # β warm-up, shortened to fit the short run


#: The shipped architecture: enqueued as the first trial, the baseline of the study.
SHIPPED = {"n_layers": 3, "d_model": 128, "ff_mult": 2, "latent_size": 128, "beta": 0.05,
           "dropout": 0.2, "lr": 1e-3}


def suggest(trial: optuna.Trial) -> dict:
    """The search space (n_heads stays 4: every d_model below divides by it)."""
    return {
        "n_layers": trial.suggest_int("n_layers", 1, 4),
        "d_model": trial.suggest_categorical("d_model", [64, 96, 128, 192]),
        "ff_mult": trial.suggest_categorical("ff_mult", [1, 2, 4]),
        "latent_size": trial.suggest_categorical("latent_size", [32, 64, 128, 256]),
        "beta": trial.suggest_float("beta", 0.005, 0.5, log=True),
        "dropout": trial.suggest_float("dropout", 0.0, 0.3, step=0.05),
        "lr": trial.suggest_float("lr", 3e-4, 3e-3, log=True),
    }


def recipe_params(p: dict) -> dict:
    """Trial parameters → ModelConfig / LossConfig field values (what training/recipe.json holds)."""
    return {"n_layers": int(p["n_layers"]), "d_model": int(p["d_model"]),
            "d_ff": int(p["d_model"]) * int(p["ff_mult"]), "latent_size": int(p["latent_size"]),
            "dropout": float(p["dropout"]), "beta": float(p["beta"])}


def trial_argv(p: dict, budget: TrialBudget, out: Path, gmd_dir: str | None) -> list[str]:
    argv = ["--out", str(out), "--fresh", "--epochs", str(budget.epochs), "--limit", str(budget.limit),
            "--val-limit", str(budget.val_limit), "--threads", str(budget.threads),
            "--max-minutes", str(budget.max_minutes), "--ema", str(budget.ema),
            "--warmup-epochs", str(budget.warmup_epochs), "--patience", str(budget.epochs),
            "--lr", str(p["lr"])]
    for name, value in recipe_params(p).items():
        argv += ["--" + name.replace("_", "-"), str(value)]
    if gmd_dir:
        argv += ["--gmd-dir", gmd_dir]
    return argv


def objective(budget: TrialBudget, gmd_dir: str | None, folder: Path = SWEEP_DIR):
    def run(trial: optuna.Trial) -> float:
        p = suggest(trial)
        out = folder / f"trial-{trial.number:03d}"
        args = tr.parse_args(trial_argv(p, budget, out, gmd_dir))
        best = {"f1": -math.inf}

        def on_epoch(epoch: int, metrics: dict) -> None:
            best["f1"] = max(best["f1"], metrics["val_f1"])
            trial.report(metrics["val_f1"], epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"epoch {epoch}: validation F1 {metrics['val_f1']:.3f}")

        started = time.monotonic()
        try:
            tr.train(args, on_epoch=on_epoch)
        finally:
            trial.set_user_attr("minutes", round((time.monotonic() - started) / 60, 1))
            for ckpt in ("last.pt", "best.pt"):  # keep the logs, not the weights
                (out / ckpt).unlink(missing_ok=True)
        trial.set_user_attr("epochs", json.loads((out / "summary.json").read_text())["epochs"])
        return best["f1"]
    return run


def load_study(storage_url: str, create: bool = True) -> optuna.Study:
    if storage_url.startswith("sqlite:///"):
        Path(storage_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # heartbeats are "experimental" in optuna 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = optuna.storages.RDBStorage(
            storage_url, heartbeat_interval=60, grace_period=180,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1))
    if not create:
        return optuna.load_study(study_name=STUDY, storage=storage)
    return optuna.create_study(
        study_name=STUDY, storage=storage, direction="maximize", load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=8),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=3))


def run_study(args: argparse.Namespace) -> optuna.Study:
    budget = TrialBudget(epochs=args.epochs, limit=args.limit, val_limit=args.val_limit, threads=args.threads,
                         max_minutes=args.trial_minutes)
    study = load_study(args.storage)
    study.set_user_attr("budget", asdict(budget))
    if not study.trials:
        study.enqueue_trial(SHIPPED, user_attrs={"note": "shipped architecture"})
    done = sum(t.state.is_finished() for t in study.trials)
    log.info("study %s in %s: %d trials finished; budget %s", STUDY, args.storage, done, asdict(budget))
    study.optimize(objective(budget, args.gmd_dir, args.dir), n_trials=max(0, args.trials - done),
                   timeout=args.hours * 3600, gc_after_trial=True,
                   catch=(RuntimeError,))
    return study


def table(study: optuna.Study) -> str:
    """Markdown: every trial, best first among the finished."""
    trials = sorted(study.trials, key=lambda t: (t.state != optuna.trial.TrialState.COMPLETE,
                                                 -(t.value or 0.0), t.number))
    budget = study.user_attrs.get("budget", {})
    lines = [f"Study `{STUDY}`: {len(study.trials)} trials "
             f"({sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)} complete, "
             f"{sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)} pruned). "
             f"Each trial: {budget.get('epochs', '?')} epochs on the first {budget.get('limit', '?')} "
             f"training windows, {('the first ' + str(budget['val_limit'])) if budget.get('val_limit') else 'all'} "
             f"validation windows; value = best validation hit F1.",
             "",
             "| trial | state | val F1 | epochs | layers | d_model | d_ff | Z | β | dropout | lr | minutes |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for t in trials:
        p = t.params
        if not p:
            continue
        r = recipe_params(p)
        last = max(t.intermediate_values) if t.intermediate_values else 0
        value = t.value if t.value is not None else (max(t.intermediate_values.values()) if t.intermediate_values else None)
        note = " (shipped)" if t.user_attrs.get("note") == "shipped architecture" or p == SHIPPED else ""
        lines.append(f"| {t.number}{note} | {t.state.name.lower()} | {'–' if value is None else f'{value:.3f}'} "
                     f"| {t.user_attrs.get('epochs', last)} | {r['n_layers']} | {r['d_model']} | {r['d_ff']} "
                     f"| {r['latent_size']} | {r['beta']:.3g} | {r['dropout']:.2f} | {p['lr']:.2g} "
                     f"| {t.user_attrs.get('minutes', '–')} |")
    return "\n".join(lines)


def baseline(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The finished trial of the shipped architecture (the study's first)."""
    for t in study.trials:
        if t.state == optuna.trial.TrialState.COMPLETE and t.params == SHIPPED:
            return t
    return None


def export(study: optuna.Study, recipe_path: Path = tr.RECIPE, readme: Path = README, min_gain: float = 0.01) -> dict:
    """Best trial → recipe file (training.train's defaults); the table → models/README.md.

    The best trial replaces the shipped architecture only when it beats the shipped trial by at
    least `min_gain` validation F1: one short run per trial is a noisy measurement."""
    best = study.best_trial
    base = baseline(study)
    assert best.value is not None           # both are finished trials
    if base is None or base.value is None or best.value >= base.value + min_gain:
        chosen = best
        why = (f"best trial {best.number} ({best.value:.4f}) beats the shipped architecture"
               + ("" if base is None else f" (trial {base.number}, {base.value:.4f})") + f" by at least {min_gain}")
    else:
        chosen = base
        why = (f"best trial {best.number} ({best.value:.4f}) is within {min_gain} of the shipped architecture "
               f"(trial {base.number}, {base.value:.4f}): the shipped architecture stays")
    recipe = {"source": f"optuna study {STUDY}, trial {chosen.number}, validation F1 {chosen.value:.4f} "
                        f"under the sweep's short budget {study.user_attrs.get('budget')}; {why}",
              "short_budget_lr": chosen.params["lr"],  # recorded, not applied: a full run keeps its own lr
              "params": recipe_params(chosen.params)}
    recipe_path.write_text(json.dumps(recipe, indent=2) + "\n")
    if readme.exists():
        text = readme.read_text()
        block = f"{TABLE_BEGIN}\n{table(study)}\n\nExport: {why}.\n{TABLE_END}"
        if TABLE_BEGIN in text and TABLE_END in text:
            text = re.sub(re.escape(TABLE_BEGIN) + ".*?" + re.escape(TABLE_END), lambda _: block, text, flags=re.S)
            readme.write_text(text)
    return recipe


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=("run", "export", "table"))
    p.add_argument("--storage", default=DEFAULT_STORAGE, help="an Optuna database URL (default: a local SQLite file)")
    p.add_argument("--trials", type=int, default=40, help="finished trials the study should reach")
    p.add_argument("--hours", type=float, default=4.0, help="wall-clock cap of this run")
    p.add_argument("--epochs", type=int, default=TrialBudget.epochs)
    p.add_argument("--limit", type=int, default=TrialBudget.limit)
    p.add_argument("--val-limit", type=int, default=TrialBudget.val_limit)
    p.add_argument("--threads", type=int, default=TrialBudget.threads)
    p.add_argument("--trial-minutes", type=float, default=TrialBudget.max_minutes)
    p.add_argument("--gmd-dir", default=None)
    p.add_argument("--dir", type=Path, default=SWEEP_DIR, help="where the trials' logs go")
    p.add_argument("--min-gain", type=float, default=0.01,
                   help="validation F1 a trial must gain over the shipped architecture to replace it")
    p.add_argument("--recipe", type=Path, default=tr.RECIPE)
    p.add_argument("--readme", type=Path, default=README)
    args = p.parse_args(argv)
    if args.command == "run":
        run_study(args)
    study = load_study(args.storage, create=False)
    if args.command == "export":
        print(json.dumps(export(study, args.recipe, args.readme, args.min_gain), indent=2))
    print(table(study))


if __name__ == "__main__":
    main()

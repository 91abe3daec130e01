"""make sweep's recipe on a few real GMD windows: the study starts from the shipped architecture,
reports every epoch to its pruner, resumes from its SQLite file, and its export becomes
training.train's defaults (or keeps the shipped architecture when the gain is too small)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="torch is in the train extra (make .venv/.dev installs it)")
optuna = pytest.importorskip("optuna", reason="optuna is in the train extra (make .venv/.dev installs it)")

from training import dataset as ds  # noqa: E402
from training import sweep  # noqa: E402
from training import train as tr  # noqa: E402


def test_sweep_runs_resumes_and_exports_the_recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not (ds.gmd_dir() / "info.csv").is_file():
        pytest.skip(f"GMD_DIR {ds.gmd_dir()} is missing: the sweep's trials train on the Groove MIDI Dataset")
    db = f"sqlite:///{tmp_path / 'study.db'}"
    common = ["--storage", db, "--epochs", "2", "--limit", "96", "--val-limit", "64", "--threads", "1",
              "--dir", str(tmp_path / "trials")]
    sweep.main(["run", "--trials", "2", *common])
    study = sweep.load_study(db, create=False)
    assert len(study.trials) == 2
    first = study.trials[0]
    assert first.params == sweep.SHIPPED and first.state == optuna.trial.TrialState.COMPLETE
    assert sorted(first.intermediate_values) == [1, 2]           # every epoch went to the pruner
    assert first.value == pytest.approx(max(first.intermediate_values.values()))
    assert not list((tmp_path / "trials").rglob("*.pt"))          # logs kept, weights not

    sweep.main(["run", "--trials", "3", *common])                 # resumes: one more trial, not three
    study = sweep.load_study(db, create=False)
    assert len(study.trials) == 3 and study.trials[0].params == sweep.SHIPPED

    readme, recipe = tmp_path / "README.md", tmp_path / "recipe.json"
    readme.write_text("before\n<!-- sweep-table -->\nold table\n<!-- /sweep-table -->\nafter\n")
    paths = ["--recipe", str(recipe), "--readme", str(readme)]
    sweep.main(["export", *common, *paths, "--min-gain", "1.0"])  # nothing can gain 1.0 F1
    assert json.loads(recipe.read_text())["params"] == sweep.recipe_params(sweep.SHIPPED)
    text = readme.read_text()
    assert text.startswith("before\n") and text.endswith("after\n") and "old table" not in text
    assert "| 0 (shipped) |" in text and "the shipped architecture stays" in text

    sweep.main(["export", *common, *paths, "--min-gain", "-1"])   # the best trial, whatever it is
    best = sweep.recipe_params(study.best_trial.params)
    assert json.loads(recipe.read_text())["params"] == best
    monkeypatch.setattr(tr, "RECIPE", recipe)
    args = tr.parse_args([])
    assert (args.n_layers, args.d_model, args.d_ff, args.latent_size, args.beta) == (
        best["n_layers"], best["d_model"], best["d_ff"], best["latent_size"], best["beta"])
    assert tr.parse_args(["--d-model", "32"]).d_model == 32       # a flag still wins over the recipe

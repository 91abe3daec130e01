"""The export's parity check: passes on a faithful export, fails loudly on a drifted one."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is in the train extra (make .venv/.dev installs it)")

from appliance.core.groove import NUM_VOICES, STEPS  # noqa: E402
from training import dataset as ds  # noqa: E402
from training import export as ex  # noqa: E402
from training.model import GrooveVAE, ModelConfig  # noqa: E402

CFG = ModelConfig(d_model=32, n_heads=2, n_layers=1, d_ff=64, latent_size=8, dropout=0.0)


def _synthetic_split(n: int = 96, seed: int = 0) -> ds.Split:
    """Patterns with a kick/snare/hat skeleton and random extras (no GMD needed)."""
    rng = np.random.default_rng(seed)
    pats = np.zeros((n, STEPS, NUM_VOICES, 3), np.float32)
    pats[:, ::8, 0, 0] = 1
    pats[:, 4::8, 1, 0] = 1
    pats[:, ::2, 2, 0] = rng.random((n, STEPS // 2)) < 0.8
    pats[..., 0] = np.maximum(pats[..., 0], rng.random((n, STEPS, NUM_VOICES)) < 0.03)
    pats[..., 1] = pats[..., 0] * rng.uniform(0.2, 1.0, pats.shape[:3])
    pats[..., 2] = pats[..., 0] * rng.uniform(-0.3, 0.3, pats.shape[:3])
    return ds.Split("validation", pats, ds.flatten(pats), np.zeros(n, np.int32), ["synthetic"])


def _checkpoint(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    model = GrooveVAE(CFG)
    from dataclasses import asdict
    torch.save({"model": model.state_dict(), "model_config": asdict(CFG),
                "state": {"epoch": 0, "best_epoch": 0, "seconds": 0.0}, "command": "test"}, path)
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, ds.Split]:
    base = tmp_path_factory.mktemp("export")
    val = _synthetic_split()
    a, b = base / "a", base / "b"
    ex.export(_checkpoint(base / "a.pt", 1), a, val=val)
    ex.export(_checkpoint(base / "b.pt", 2), b, val=val)
    return a, b, val


def test_parity_passes_on_a_faithful_export(exported: tuple[Path, Path, ds.Split]) -> None:
    a, _, val = exported
    card = json.loads((a / "model.json").read_text())
    parity = card["metrics"]["parity"]
    assert parity["fp32_vs_torch_max_abs"] < 1e-3
    assert parity["fp32_vs_torch_hit_agreement"] > 0.999
    assert abs(parity["int8_f1_drop"]) <= 0.01
    assert parity["windows"] == len(val)
    assert set(parity["f1"]) == {"torch", "fp32", "int8"}


def _tampered(exported: tuple[Path, Path, ds.Split], tmp_path: Path, file: str) -> Path:
    a, b, _ = exported
    bad = tmp_path / "bad"
    shutil.copytree(a, bad)
    shutil.copy(b / file, bad / file)   # a graph from another model
    return bad


def test_parity_fails_loudly_when_fp32_graph_differs(exported: tuple[Path, Path, ds.Split], tmp_path: Path) -> None:
    bad = _tampered(exported, tmp_path, "decoder.onnx")
    model, _ = ex.load_checkpoint(exported[0].parent / "a.pt")
    val = exported[2]
    th = np.asarray(json.loads((bad / "model.json").read_text())["thresholds"], np.float32)
    with pytest.raises(ex.ParityError, match="fp32 ONNX differs from torch"):
        ex.parity_check(model, bad, val.grooves, val.patterns[..., 0] > 0.5, th)


def test_parity_fails_loudly_when_int8_drifts(exported: tuple[Path, Path, ds.Split], tmp_path: Path) -> None:
    bad = _tampered(exported, tmp_path, "decoder.int8.onnx")
    model, _ = ex.load_checkpoint(exported[0].parent / "a.pt")
    val = exported[2]
    th = np.asarray(json.loads((bad / "model.json").read_text())["thresholds"], np.float32)
    with pytest.raises(ex.ParityError, match="int8"):
        ex.parity_check(model, bad, val.grooves, val.patterns[..., 0] > 0.5, th)


def test_export_cli_exits_nonzero_on_parity_failure(exported: tuple[Path, Path, ds.Split], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture) -> None:
    def broken(*args, **kwargs):
        raise ex.ParityError("parity check failed for x: int8 F1 0.1 vs fp32 0.5")
    monkeypatch.setattr(ex, "parity_check", broken)
    monkeypatch.setattr(ds, "load_split", lambda *a, **k: exported[2])
    with pytest.raises(SystemExit) as exit_info:
        ex.main([str(exported[0].parent / "a.pt"), str(tmp_path / "out")])
    assert exit_info.value.code == 1
    assert "PARITY CHECK FAILED" in capsys.readouterr().err

"""The int8 recipe, checked fast on this machine's CPU (make quant-check is the four-CPU proof).

The shipped int8 graphs are what training.export's RECIPE makes from the shipped fp32 graphs, and
on a fixed set of validation windows, one groove per run as the box runs them, int8 stays within
0.01 F1 of fp32 and its velocity and offset errors stay within 1 % of fp32's and below
copy-the-groove. The recipe of before issue 9 (dynamic, per tensor, head quantised) misses the
offset bound here (+2.8 % on these windows; this recipe: +0.7 %).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is in the train extra (make .venv/.dev installs it)")
onnx = pytest.importorskip("onnx", reason="onnx is in the train extra (make .venv/.dev installs it)")

from training import dataset as ds  # noqa: E402
from training import export as ex  # noqa: E402
from training import quant_check as qc  # noqa: E402
from training.cpu_eval import evaluate  # noqa: E402
from training.onnx_model import OnnxModel  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "models" / "groove-vae"
WINDOWS, SEED = 256, 0


@pytest.fixture(scope="module")
def validation_windows() -> dict[str, np.ndarray]:
    root = ds.gmd_dir()
    if not (root / "info.csv").exists():
        pytest.fail(f"GMD_DIR {root} has no info.csv: the recipe check needs the Groove MIDI Dataset's "
                    "validation split (set GMD_DIR)")
    val = ds.load_split("validation")
    index = np.sort(np.random.default_rng(SEED).choice(len(val), WINDOWS, replace=False))
    return {"grooves": val.grooves[index], "patterns": val.patterns[index]}


def test_shipped_int8_graphs_are_the_recipes(tmp_path: Path) -> None:
    card = json.loads((SHIPPED / "model.json").read_text())
    assert card["quantisation"]["recipe"] == ex.RECIPE.as_dict()
    from appliance.core.model_files import model_files
    for name in model_files(SHIPPED):     # the fp32 graphs (a register encoder's too) and the card
        if not name.endswith(".int8.onnx"):
            (tmp_path / name).write_bytes((SHIPPED / name).read_bytes())
    ex.quantise(tmp_path, ex.RECIPE)
    grooves = np.random.default_rng(1).random((8, 32, 3), np.float32) * [1, 1, 0.5] - [0, 0, 0.25]
    grooves[..., 0] = grooves[..., 0] > 0.5
    for got, shipped in zip(OnnxModel(tmp_path, "int8").predict(grooves, batch=1),
                            OnnxModel(SHIPPED, "int8").predict(grooves, batch=1)):
        np.testing.assert_allclose(got, shipped, atol=1e-6)


def test_recipe_keeps_its_fp32_nodes_in_float() -> None:
    nodes = {n.name: n.op_type for part in ("encoder", "decoder")
             for n in onnx.load(str(SHIPPED / f"{part}.int8.onnx")).graph.node}
    for name in ex.RECIPE.keep_fp32:
        if name in nodes or name.endswith("_MatMul"):
            continue
        pytest.fail(f"{name} is missing from the int8 graphs")
    kept = [n for n in ex.RECIPE.keep_fp32 if n in nodes]
    assert kept, "none of the recipe's fp32 nodes is in the int8 graphs"
    for name in kept:
        assert nodes[name] in ("MatMul", "Gemm"), (name, nodes[name])
    assert "MatMulInteger" in nodes.values() or "DynamicQuantizeMatMul" in nodes.values() or \
        "QLinearMatMul" in nodes.values() or "DequantizeLinear" in nodes.values()


def test_int8_holds_against_fp32_on_this_cpu(validation_windows: dict[str, np.ndarray]) -> None:
    r = evaluate(validation_windows, SHIPPED, batch=1)
    fp, q = r["fp32"], r["int8"]
    assert abs(q["f1"] - fp["f1"]) <= 0.01, (q["f1"], fp["f1"])
    for what in ("velocity", "offset"):
        assert q[f"{what}_mse_tp"] <= 1.01 * fp[f"{what}_mse_tp"], (what, q, fp)
        assert q[f"{what}_mse_tp"] < q[f"copy_{what}_mse_tp"], (what, q)


def test_verdict_names_what_misses() -> None:
    good = {"f1": 0.66, "velocity_mse_tp": 0.017, "copy_velocity_mse_tp": 0.035,
            "offset_mse_tp": 0.0074, "copy_offset_mse_tp": 0.0075}
    assert qc.verdict({"fp32": good, "int8": dict(good)}) == []
    worse_offset = dict(good, offset_mse_tp=0.0077)
    problems = qc.verdict({"fp32": good, "int8": worse_offset})
    assert len(problems) == 1 and "int8 offset" in problems[0]
    assert "F1" in qc.verdict({"fp32": good, "int8": dict(good, f1=0.64)})[0]


def test_the_cpu_evaluator_needs_only_numpy_and_onnxruntime() -> None:
    """It runs under emulation with nothing else installed: no torch, onnx, mido, yaml."""
    code = ("import sys, training.cpu_eval, training.metrics, training.onnx_model; "
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'onnx', 'mido', 'yaml', 'rtmidi'}); "
            "print(heavy); sys.exit(1 if heavy else 0)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_pi_estimate_counts_the_models_work() -> None:
    """benchmarks.pi counts the multiply-accumulates of one generation as the architecture implies."""
    from benchmarks import pi

    arch = json.loads((SHIPPED / "model.json").read_text())["architecture"]
    d, ff, layers, z, steps = arch["d_model"], arch["d_ff"], arch["n_layers"], arch["latent_size"], arch["steps"]
    block = steps * (d * 3 * d + d * d + 2 * d * ff) + 2 * steps * steps * d
    encoder = steps * arch.get("groove_channels", 3) * d + layers * block + steps * d * 2 * z
    decoder = z * steps * d + layers * block + steps * d * 3 * arch["voices"]
    assert pi.count_macs(SHIPPED / "encoder.onnx", d) == encoder
    assert pi.count_macs(SHIPPED / "decoder.onnx", d) == decoder
    for board in pi.BOARDS:
        low, high = pi.estimate(board, "int8", encoder + decoder, 2_660_000)
        assert 0 < low < high


def test_pi_estimate_counts_the_register_encoder(tiny_model_dir: Path, tmp_path: Path) -> None:
    """With a register encoder, one generation's estimate counts the costlier encoder: the register
    encoder hears 4 channels where the encoder hears 3, so it is the one counted."""
    import shutil
    from benchmarks import pi
    from tests import tiny_model
    model = tmp_path / "registered"
    shutil.copytree(tiny_model_dir, model)
    d = 16   # the tiny graphs have no attention, which is all d_model counts
    assert pi.generation_parts(model, d) == ("encoder", "decoder")
    tiny_model.with_register(model)
    assert pi.count_macs(model / "register.onnx", d) > pi.count_macs(model / "encoder.onnx", d)
    assert pi.generation_parts(model, d) == ("register", "decoder")
    (model / "register.onnx").unlink()       # named by the card, not there: one clear line
    with pytest.raises(SystemExit, match="register.onnx is missing"):
        pi.generation_parts(model, d)


def test_a_static_recipe_and_the_onnx_runner_take_grooves_with_or_without_the_register(
        tiny_model_dir: Path, tmp_path: Path) -> None:
    """The training tools hand grooves with their register (4 channels) to every model: a static
    int8 recipe calibrates a 3-channel encoder on its own width, and OnnxModel gives a 4-channel
    model a groove without the register as unknown (all 0)."""
    import shutil
    from tests import tiny_model
    model = tmp_path / "three"
    shutil.copytree(tiny_model_dir, model)
    grooves = np.zeros((8, 32, 4), np.float32)
    grooves[:, ::4] = (1.0, 0.8, 0.0, 1.0)
    ex.quantise(model, ex.RECIPES["static-s8s8-per-channel"], calibration=grooves)
    assert (model / "encoder.int8.onnx").is_file()
    four = OnnxModel(tiny_model.build(tmp_path / "four", channels=4))
    blank = grooves.copy()
    blank[..., 3] = 0.0
    assert np.array_equal(four.encode(grooves[..., :3])[0], four.encode(blank)[0])
    assert not np.array_equal(four.encode(grooves)[0], four.encode(blank)[0])
    # a card from before session 57 (no "register": "signed") heard 1 low, 0 else: a high step's −1 is 0
    assert four.signed
    card = json.loads((tmp_path / "four" / "model.json").read_text())
    del card["inputs"]["encoder"]["register"]
    (tmp_path / "four" / "model.json").write_text(json.dumps(card))
    older = OnnxModel(tmp_path / "four")
    signed = grooves.copy()
    signed[:, 2::4, :] = (1.0, 0.5, 0.0, -1.0)                  # high steps between the low ones
    binary = signed.copy()
    binary[..., 3] = np.maximum(binary[..., 3], 0.0)
    assert not older.signed and np.array_equal(older.encode(signed)[0], four.encode(binary)[0])
    assert not np.array_equal(older.encode(signed)[0], four.encode(signed)[0])
    (tmp_path / "four" / "model.json").unlink()         # the graphs alone, as export checks them: today's form
    assert OnnxModel(tmp_path / "four").signed

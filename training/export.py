"""Checkpoint → the model directory the box loads (docs/ARCHITECTURE.md, "Model contract").

    python -m training.export training/runs/groove-vae/best.pt models/groove-vae
    python -m training.export --requantise models/groove-vae   # int8 graphs only, from the fp32 ones
    python -m training.export CKPT OUT --register REGISTER_CKPT  # with a register encoder (its own run,
                                                                 # train.py --freeze-decoder --init CKPT)
    python -m training.export CKPT OUT --register REGISTER_CKPT --base models/groove-vae
                                        # ... keeping CKPT's own export's fit for the encoder's grooves

Writes encoder.onnx / decoder.onnx (and register.onnx with a register encoder) (opset 17, dynamic batch axis N), their int8 versions made by
RECIPE (onnxruntime.quantization; chosen so that int8 holds on every CPU the box runs on: x86 with
and without VNNI, Cortex-A72, Cortex-A76; `make quant-check` is the proof), and model.json with per-voice thresholds tuned on the validation
split. Then a parity check on the whole validation split — torch vs fp32 ONNX vs int8 ONNX: hit
agreement, F1 difference, largest absolute difference — raises ParityError past its tolerances,
so a broken export never ships quietly.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_dynamic, quantize_static)

from appliance.core.groove import GM_NOTES, HIT, SIGNED, STEPS, VOICES
from training import dataset as ds
from training.metrics import hit_scores, tune_thresholds
from appliance.core.model_files import CARD, MODEL_FILES, REGISTER_PATH, has_register
from training.onnx_model import BASE, BASE_FIT, OnnxModel, known_register, thresholds_for
from training.model import DecoderGraph, EncoderGraph, GrooveVAE, ModelConfig, RegisterEncoders, with_register
from training.train import predict

log = logging.getLogger("training.export")

REPO = Path(__file__).resolve().parent.parent
OPSET = 17


class ParityError(Exception):
    """The exported graphs do not match the torch model (or int8 drifted too far from fp32)."""


@dataclass(frozen=True)
class Tolerance:
    fp32_max_abs: float = 1e-3      # torch vs fp32 ONNX, any output
    int8_f1_drop: float = 0.01      # |F1(int8) − F1(fp32)|, pooled, at the tuned thresholds
    int8_agreement: float = 0.97    # share of cells where int8 and fp32 agree on hit / no hit
    int8_max_abs_prob: float = 0.5  # largest hit-probability difference int8 vs fp32


@dataclass(frozen=True)
class QuantRecipe:
    """How encoder.int8.onnx / decoder.int8.onnx are made from the fp32 graphs."""

    name: str
    method: str = "dynamic"           #: "dynamic" (weights int8, activations quantised per run) or "static" (QDQ, calibrated)
    per_channel: bool = False         #: one weight scale per output column instead of one per tensor
    reduce_range: bool = False        #: 7-bit weights (no int16 overflow in x86 AVX2 u8·s8 kernels)
    keep_fp32: tuple[str, ...] = ()   #: node names left in float (sensitive heads)
    activation: str = "int8"          #: static only: activation type, int8 (S8S8) or uint8 (U8S8)

    def as_dict(self) -> dict:
        """As model.json holds it (JSON: lists, not tuples)."""
        return {**asdict(self), "keep_fp32": list(self.keep_fp32)}


#: The output projections: the per-step head (hit/velocity/offset logits), the latent's mu/logvar
#: projection and the decoder's projection from z. Small next to the Transformer blocks, but every
#: error in them lands directly on an output.
#: (Dynamic quantisation rewrites a Gemm as MatMul + Add first, under the name <gemm>_MatMul.)
HEADS = ("/decoder/head/MatMul", "/encoder/to_latent/Gemm", "/encoder/to_latent/Gemm_MatMul",
         "/decoder/from_latent/Gemm", "/decoder/from_latent/Gemm_MatMul")

RECIPES: dict[str, QuantRecipe] = {r.name: r for r in (
    QuantRecipe("dynamic-per-tensor"),                                   # the recipe before issue 9
    QuantRecipe("dynamic-per-channel", per_channel=True),
    QuantRecipe("dynamic-per-channel-reduce-range", per_channel=True, reduce_range=True),
    QuantRecipe("dynamic-per-channel-fp32-head", per_channel=True, keep_fp32=HEADS[:1]),
    QuantRecipe("dynamic-per-channel-fp32-heads", per_channel=True, keep_fp32=HEADS),
    QuantRecipe("dynamic-per-channel-reduce-range-fp32-head", per_channel=True, reduce_range=True,
                keep_fp32=HEADS[:1]),
    QuantRecipe("dynamic-per-channel-reduce-range-fp32-heads", per_channel=True, reduce_range=True,
                keep_fp32=HEADS),
    QuantRecipe("static-s8s8-per-channel", method="static", per_channel=True),
    QuantRecipe("static-s8s8-per-channel-fp32-heads", method="static", per_channel=True, keep_fp32=HEADS),
)}
#: What export uses. Per-channel weight scales; 7-bit weights, so x86 AVX2 u8·s8 kernels (no VNNI)
#: cannot overflow their int16 pair sums; the per-step output head (3.5k weights, nothing to gain)
#: stays fp32. Chosen on validation, checked per CPU by `make quant-check` (models/README.md).
RECIPE = RECIPES["dynamic-per-channel-reduce-range-fp32-head"]


class _Feed(CalibrationDataReader):
    def __init__(self, name: str, data: np.ndarray, batch: int = 1) -> None:
        self._items = iter([{name: data[i:i + batch].astype(np.float32)} for i in range(0, len(data), batch)])

    def get_next(self) -> dict | None:
        return next(self._items, None)


def calibration_grooves(n: int = 256, seed: int = 0) -> np.ndarray:
    """Static recipes calibrate on a fixed subset of the train split (never validation or test)."""
    train = ds.load_split("train")
    return train.inputs[np.sort(np.random.default_rng(seed).choice(len(train), n, replace=False))]


def quantisation_card(recipe: QuantRecipe = RECIPE) -> dict:
    """What model.json says about how its int8 graphs were made."""
    import onnxruntime
    return {"recipe": recipe.as_dict(), "onnxruntime": onnxruntime.__version__,
            "made_by": "training.export.quantise (per-CPU check: make quant-check)"}


def quantise(model_dir: Path, recipe: QuantRecipe = RECIPE, calibration: np.ndarray | None = None,
             out_dir: Path | None = None) -> None:
    """encoder.onnx / decoder.onnx (/ register.onnx) in model_dir → their .int8.onnx in out_dir
    (default: the same directory). Static recipes calibrate on `calibration` grooves (never test)."""
    out_dir = model_dir if out_dir is None else out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("encoder", "decoder", "register"):
        if name == "register" and not (model_dir / "register.onnx").is_file():
            continue
        src, dst = model_dir / f"{name}.onnx", out_dir / f"{name}.int8.onnx"
        if recipe.method == "dynamic":
            quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=recipe.per_channel,
                             reduce_range=recipe.reduce_range, nodes_to_exclude=list(recipe.keep_fp32),
                             extra_options={"MatMulConstBOnly": True})
        elif recipe.method == "static":
            if calibration is None:
                calibration = calibration_grooves()
            if name != "decoder":   # (the grooves carry the register: each encoder takes its own width)
                width = 4 if name == "register" else OnnxModel(model_dir, "fp32").channels
                feed = _Feed("groove", calibration[..., :width])
            else:
                mu, _ = OnnxModel(model_dir, "fp32", threads=2).encode(calibration)
                feed = _Feed("z", mu)
            act = QuantType.QInt8 if recipe.activation == "int8" else QuantType.QUInt8
            quantize_static(str(src), str(dst), feed, quant_format=QuantFormat.QDQ, per_channel=recipe.per_channel,
                            reduce_range=recipe.reduce_range, activation_type=act, weight_type=QuantType.QInt8,
                            nodes_to_exclude=list(recipe.keep_fp32), op_types_to_quantize=["MatMul", "Gemm"],
                            calibrate_method=CalibrationMethod.MinMax,
                            extra_options={"MatMulConstBOnly": True, "ActivationSymmetric": act == QuantType.QInt8})
        else:
            raise ValueError(f"unknown quantisation method {recipe.method!r}")


def load_checkpoint(path: Path) -> tuple[GrooveVAE, dict]:
    ckpt = torch.load(path, weights_only=False, map_location="cpu")
    model = GrooveVAE(ModelConfig(**ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, ckpt


def export_onnx(model: GrooveVAE, out_dir: Path) -> None:
    """fp32 graphs with the contract's names, then their int8 versions (RECIPE). A model with
    RegisterEncoders (training.model.with_register) writes its two encoders apart."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model.eval()
    z_size = model.cfg.latent_size
    encoders = ({"encoder": (model.encoder.plain, 3), "register": (model.encoder.register, 4)}
                if isinstance(model.encoder, RegisterEncoders) else {"encoder": (model.encoder, model.cfg.groove_channels)})
    (out_dir / "register.onnx").unlink(missing_ok=True)
    (out_dir / "register.int8.onnx").unlink(missing_ok=True)
    with torch.no_grad():
        for name, (encoder, channels) in encoders.items():
            torch.onnx.export(EncoderGraph(encoder), (torch.zeros(1, STEPS, channels),), str(out_dir / f"{name}.onnx"),
                              input_names=["groove"], output_names=["mu", "logvar"], opset_version=OPSET,
                              dynamic_axes={"groove": {0: "N"}, "mu": {0: "N"}, "logvar": {0: "N"}},
                              dynamo=False)
        torch.onnx.export(DecoderGraph(model), (torch.zeros(1, z_size),), str(out_dir / "decoder.onnx"),
                          input_names=["z"], output_names=["hits", "velocities", "offsets"], opset_version=OPSET,
                          dynamic_axes={"z": {0: "N"}, "hits": {0: "N"}, "velocities": {0: "N"},
                                        "offsets": {0: "N"}},
                          dynamo=False)
    quantise(out_dir, RECIPE)


def parity_check(model: GrooveVAE, model_dir: Path, grooves: np.ndarray, true_hits: np.ndarray,
                 thresholds: np.ndarray, tol: Tolerance = Tolerance()) -> dict:
    """torch vs fp32 vs int8 on these grooves; raises ParityError past the tolerances."""
    grooves = grooves[..., :model.cfg.groove_channels]
    t_probs, t_vel, t_off = predict(model, grooves)
    with torch.no_grad():
        t_mu, t_logvar = (a.numpy() for a in model.encoder(torch.tensor(grooves)))
    fp32 = OnnxModel(model_dir, "fp32", threads=2)
    f_mu, f_logvar = fp32.encode(grooves)
    f_probs, f_vel, f_off = fp32.predict(grooves)
    fp32_diff = max(float(np.abs(a - b).max()) for a, b in
                    [(t_mu, f_mu), (t_logvar, f_logvar), (t_probs, f_probs), (t_vel, f_vel), (t_off, f_off)])
    th = np.asarray(thresholds, np.float32)
    t_f1 = hit_scores(t_probs >= th, true_hits)[0].f1
    problems = []
    if fp32_diff > tol.fp32_max_abs:
        problems.append(f"fp32 ONNX differs from torch by {fp32_diff:.2e} > {tol.fp32_max_abs:g}")
    result: dict[str, Any] = {"windows": int(len(grooves)), "fp32_vs_torch_max_abs": fp32_diff,
              "fp32_vs_torch_hit_agreement": float(np.mean((t_probs >= th) == (f_probs >= th)))}
    result.update(_int8_parity(model_dir, grooves, true_hits, th, (f_probs, f_vel, f_off), tol, problems))
    result["f1"] = {"torch": t_f1, **result["f1"]}
    log.info("parity: %s", json.dumps(result))
    if problems:
        raise ParityError(f"parity check failed for {model_dir}: " + "; ".join(problems))
    return result


def int8_parity_check(model_dir: Path, grooves: np.ndarray, true_hits: np.ndarray, thresholds: np.ndarray,
                      tol: Tolerance = Tolerance()) -> dict:
    """int8 vs fp32 ONNX only (no torch model needed: used after re-quantising a model directory)."""
    problems: list[str] = []
    result = _int8_parity(model_dir, grooves, true_hits, np.asarray(thresholds, np.float32), None, tol, problems)
    log.info("int8 parity: %s", json.dumps(result))
    if problems:
        raise ParityError(f"parity check failed for {model_dir}: " + "; ".join(problems))
    return result


def _int8_parity(model_dir: Path, grooves: np.ndarray, true_hits: np.ndarray, th: np.ndarray,
                 fp32_out: tuple[np.ndarray, np.ndarray, np.ndarray] | None, tol: Tolerance,
                 problems: list[str]) -> dict:
    """int8 vs fp32 figures, one groove per run as the box runs it; appends to problems past tolerance."""
    if fp32_out is None:
        fp32_out = OnnxModel(model_dir, "fp32", threads=2).predict(grooves)
    f_probs, f_vel, f_off = fp32_out
    i_probs, i_vel, i_off = OnnxModel(model_dir, "int8", threads=2).predict(grooves, batch=1)
    f_f1 = hit_scores(f_probs >= th, true_hits)[0].f1
    i_f1 = hit_scores(i_probs >= th, true_hits)[0].f1
    result: dict[str, Any] = {
        "windows": int(len(grooves)),
        "int8_vs_fp32_hit_agreement": float(np.mean((i_probs >= th) == (f_probs >= th))),
        "int8_vs_fp32_max_abs_prob": float(np.abs(i_probs - f_probs).max()),
        "int8_vs_fp32_max_abs_velocity": float(np.abs(i_vel - f_vel).max()),
        "int8_vs_fp32_max_abs_offset": float(np.abs(i_off - f_off).max()),
        "f1": {"fp32": f_f1, "int8": i_f1},
        "int8_f1_drop": f_f1 - i_f1,
    }
    if abs(f_f1 - i_f1) > tol.int8_f1_drop:
        problems.append(f"int8 F1 {i_f1:.4f} vs fp32 {f_f1:.4f}: differ by more than {tol.int8_f1_drop:g}")
    if result["int8_vs_fp32_hit_agreement"] < tol.int8_agreement:
        problems.append(f"int8 agrees with fp32 on {result['int8_vs_fp32_hit_agreement']:.4f} of cells "
                        f"< {tol.int8_agreement:g}")
    if result["int8_vs_fp32_max_abs_prob"] > tol.int8_max_abs_prob:
        problems.append(f"int8 hit probability differs from fp32 by {result['int8_vs_fp32_max_abs_prob']:.3f} "
                        f"> {tol.int8_max_abs_prob:g}")
    return result


def git_commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "training"], cwd=REPO,
                           capture_output=True, text=True).stdout.strip()
    return sha + ("+dirty(training/)" if dirty else "")


def training_card(ckpt: dict) -> dict:
    """The card's "training" block: data, command, commit, epochs, time, recipe, a soup's parents.
    A checkpoint recovered from a model directory (training/from_onnx.py) keeps that card's block."""
    recovered = REPO / str(ckpt.get("recovered_from", "")) / "model.json"
    if "recovered_from" in ckpt and recovered.is_file():
        return {**json.loads(recovered.read_text())["training"], "recovered_by": "training/from_onnx.py"}
    state = ckpt.get("state", {"epoch": 0, "best_epoch": 0, "seconds": 0.0})
    return {
        "data": "Groove MIDI Dataset v1.0.0 (Gillick et al. 2019, CC BY 4.0): 4/4 beat files, "
                f"2-bar windows, 1-bar hop; {ckpt.get('train_windows')} train / "
                f"{ckpt.get('val_windows')} validation windows",
        "command": ckpt.get("command"),
        "commit": git_commit(),
        "epochs": state["epoch"],
        "best_epoch": state["best_epoch"],
        "seconds": round(state["seconds"] + (ckpt.get("init") or {}).get("seconds", 0.0), 1),
        "fine_tuned_from": ckpt.get("init"),
        "augment": ckpt.get("augment"),
        "loss": ckpt.get("loss_config"),
        "optimiser": ckpt.get("train_config"),
        "skipped_files": len(ckpt.get("skipped_files", [])),
        **({"soup": ckpt["soup"]} if "soup" in ckpt else {}),  # training/soup.py's parents and alpha
        **({"sigma_scale": ckpt["sigma_scale"]} if "sigma_scale" in ckpt else {}),  # a register encoder's σ scale
    }


def export(checkpoint: Path, out_dir: Path, name: str = "groove-vae", val: ds.Split | None = None,
           tol: Tolerance = Tolerance(), register: Path | None = None, register_sigma: float = 1.0,
           base: Path | None = None) -> dict:
    """The whole export: graphs, thresholds, parity, model.json. Returns the card. ``register``:
    a checkpoint whose encoder hears the register, trained on this one's decoder, its σ scaled by
    ``register_sigma`` (training.model.with_register). ``base``: the model directory ``checkpoint``
    was exported to, whose fit for the encoder's grooves (BASE_FIT) the card keeps (:func:`kept`)."""
    if base is not None and (register is None or base.resolve() == out_dir.resolve()):
        raise SystemExit(f"export: --base {base} keeps a base model's fit beside a register encoder, in another "
                         "directory: give --register, and an output directory that is not the base")
    model, ckpt = load_checkpoint(checkpoint)
    register_ckpt = None
    if register is not None:
        register_model, register_ckpt = load_checkpoint(register)
        register_ckpt = {**register_ckpt, "sigma_scale": register_sigma}
        try:
            model = with_register(model, register_model, register_sigma)
        except ValueError as exc:
            raise SystemExit(f"export: {register}: {exc}") from None
    val = ds.load_split("validation") if val is None else val
    previous = _take_card(out_dir)
    export_onnx(model, out_dir)
    base_card = None if base is None else kept(base, out_dir)
    grooves, true = _heard(val, register_ckpt is not None)
    probs, vel, off = OnnxModel(out_dir, "fp32", threads=2).predict(grooves)
    thresholds, register_thresholds, per_window = _tuned(
        grooves, probs, true, register_ckpt is not None, None if base_card is None else base_card["thresholds"])
    pooled, per_voice = hit_scores(probs >= per_window, true)
    parity = parity_check(model, out_dir, grooves, true, per_window, tol)
    card: dict[str, Any] = {
        "name": name,
        "latent_size": model.cfg.latent_size,
        "steps": STEPS,
        "voices": list(VOICES),
        "notes": list(GM_NOTES),
        "thresholds": [round(float(t), 2) for t in thresholds],
        **({REGISTER_PATH: {"thresholds": [round(float(t), 2) for t in register_thresholds]}} if register_ckpt else {}),
        "architecture": _architecture(model),
        "inputs": _inputs_card(model),
        "outputs": {"encoder": ["mu", "logvar"], "decoder": ["hits", "velocities", "offsets"],
                    **({"register": ["mu", "logvar"]} if register_ckpt else {})},
        "opset": OPSET,
        "quantisation": quantisation_card(RECIPE),
        "training": {**training_card(ckpt), **({"register": training_card(register_ckpt)} if register_ckpt else {})},
        "metrics": {
            "validation": {"split": "validation", "windows": len(val), "z": "mu",
                           **({"heard": "each window twice: with its register and without"} if register_ckpt else {}),
                           "hit_precision": pooled.precision, "hit_recall": pooled.recall, "hit_f1": pooled.f1,
                           "f1_per_voice": {VOICES[v]: per_voice[v].f1 for v in range(len(VOICES))}},
            "parity": parity,
        },
    }
    if base_card is not None and base is not None:
        _keep_fit(card, base_card, base)
    _keep_test(card, previous)
    (out_dir / "model.json").write_text(json.dumps(card, indent=2) + "\n")
    log.info("exported %s → %s (validation F1 %.3f, int8 F1 %.3f)", checkpoint, out_dir, pooled.f1,
             parity["f1"]["int8"])
    return card


def _take_card(out_dir: Path) -> dict | None:
    """The card a directory held before this export, removed (its graphs are about to change, and
    a stale card would name graphs they no longer have); None without a readable one."""
    card = out_dir / "model.json"
    try:
        previous = json.loads(card.read_text())
    except (OSError, json.JSONDecodeError):
        previous = None
    card.unlink(missing_ok=True)
    return previous if isinstance(previous, dict) else None


def _same_training(a: dict, b: dict) -> bool:
    """Two cards' "training" blocks name the same run(s), whatever commit exported them."""
    def runs(block: dict) -> list:
        return [block.get("seconds"), block.get("command"), (block.get("register") or {}).get("seconds"),
                (block.get("register") or {}).get("command")]
    return runs(a) == runs(b)


def _heard(val: ds.Split, register: bool) -> tuple[np.ndarray, np.ndarray]:
    """The validation grooves thresholds and parity are fitted on, and their true hits: with a
    register encoder each window twice, without its register (the encoder's path) and with it."""
    true = val.patterns[..., HIT] > 0.5
    if not register:
        return val.inputs, true
    unknown = val.inputs.copy()
    unknown[..., 3] = 0.0
    return np.concatenate([unknown, val.inputs]), np.concatenate([true, true])


def kept(base: Path, out_dir: Path) -> dict:
    """``base``'s card, when its encoder and decoder graphs are those just exported to ``out_dir``,
    byte for byte (the export of the same checkpoint): a part the register encoder never hears then
    plays exactly as ``base`` plays it."""
    try:
        card = json.loads((base / CARD).read_text())
        differ = [name for name in MODEL_FILES if name != CARD
                  and (base / name).read_bytes() != (out_dir / name).read_bytes()]
        thresholds = [float(t) for t in card["thresholds"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SystemExit(f"export: --base {base}: not a model directory with a readable card ({error})") from None
    if differ or len(thresholds) != len(VOICES):
        raise SystemExit(f"export: --base {base}: its {', '.join(differ) or 'thresholds'} are not this export's; "
                         "--base names the model directory the checkpoint itself was exported to")
    return card


def _keep_test(card: dict, previous: dict | None) -> None:
    """The test metrics written by evaluate.py into the directory's card before, only if they
    describe these graphs."""
    if previous is None:
        return
    try:
        same = (_same_training(previous.get("training", {}), card["training"])
                and previous.get("inputs") == card["inputs"])
        if same and "test" in previous.get("metrics", {}):
            card["metrics"]["test"] = previous["metrics"]["test"]
    except AttributeError:
        pass


def _keep_fit(card: dict, base_card: dict, base: Path) -> None:
    """``base_card``'s fit for the encoder's grooves (BASE_FIT, and what its styles do) into
    ``card``, which says so under BASE."""
    card.update({key: base_card[key] for key in BASE_FIT if key in base_card})
    if "styles" in base_card.get("metrics", {}):
        card["metrics"]["styles"] = base_card["metrics"]["styles"]
    card[BASE] = {"dir": str(base), "name": base_card.get("name"), "fit": [k for k in BASE_FIT if k in base_card],
                  "command": (base_card.get("training") or {}).get("command")}


def _tuned(grooves: np.ndarray, probs: np.ndarray, true: np.ndarray, register: bool,
           fixed: list[float] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The encoder's thresholds (``fixed``: a base model's), the register encoder's, and each
    window's of them [N, 1, 9]: each tuned on the windows its encoder hears (:func:`_heard`;
    appliance.core.generator.Fit)."""
    heard = known_register(grooves) if register else np.zeros(len(grooves), bool)
    thresholds = (tune_thresholds(probs[~heard], true[~heard]) if fixed is None
                  else np.asarray(fixed, np.float32))
    register_thresholds = tune_thresholds(probs[heard], true[heard]) if heard.any() else thresholds
    per_window = np.where(heard[:, None, None], register_thresholds, thresholds).astype(np.float32)
    return thresholds, register_thresholds, per_window


def _architecture(model: GrooveVAE) -> dict:
    """model.json's "architecture": the model's (3 channels with a register encoder, whose own
    size is told apart)."""
    if not isinstance(model.encoder, RegisterEncoders):
        return {"type": "transformer-vae (GrooveTransformer design)", **asdict(model.cfg),
                "parameters": model.num_parameters()}
    register = sum(p.numel() for p in model.encoder.register.parameters())
    return {"type": "transformer-vae (GrooveTransformer design)", **asdict(replace(model.cfg, groove_channels=3)),
            "parameters": model.num_parameters() - register,
            "register_encoder": {"groove_channels": 4, "parameters": register}}


def _inputs_card(model: GrooveVAE) -> dict:
    """model.json's "inputs": each graph's input shape, and how an encoder hears the register."""
    if isinstance(model.encoder, RegisterEncoders):
        return {"encoder": {"groove": ["N", STEPS, 3]},
                "register": {"groove": ["N", STEPS, 4], "register": SIGNED,
                             "heard": "grooves whose register is known (two-handed); any other: the encoder"},
                "decoder": {"z": ["N", model.cfg.latent_size]}}
    return {"encoder": {"groove": ["N", STEPS, model.cfg.groove_channels],
                        **({"register": SIGNED} if model.cfg.groove_channels > 3 else {})},
            "decoder": {"z": ["N", model.cfg.latent_size]}}


def requantise(model_dir: Path, recipe: QuantRecipe = RECIPE, val: ds.Split | None = None,
               tol: Tolerance = Tolerance()) -> dict:
    """New int8 graphs for an exported model directory from its fp32 graphs (no checkpoint needed),
    checked against fp32 on validation; model.json gets the recipe and the new int8 parity. Test
    metrics of the old int8 graphs are dropped (make evaluate writes new ones)."""
    val = ds.load_split("validation") if val is None else val
    path = model_dir / "model.json"
    card = json.loads(path.read_text())
    with tempfile.TemporaryDirectory(dir=model_dir) as tmp:
        staged = Path(tmp)
        graphs = ("encoder", "decoder") + (("register",) if has_register(model_dir) else ())
        for name in [f"{g}.onnx" for g in graphs] + ["model.json"]:
            shutil.copy(model_dir / name, staged / name)
        quantise(staged, recipe)
        parity = int8_parity_check(staged, val.inputs, val.patterns[..., HIT] > 0.5,
                                   thresholds_for(card, val.inputs), tol)
        for name in [f"{g}.int8.onnx" for g in graphs]:   # only checked graphs replace the old ones
            os.replace(staged / name, model_dir / name)
    card["quantisation"] = quantisation_card(recipe)
    old_parity = card.setdefault("metrics", {}).setdefault("parity", {})
    card["metrics"]["parity"] = {**old_parity, **parity, "f1": {**old_parity.get("f1", {}), **parity["f1"]}}
    card["metrics"].pop("test", None)
    card["metrics"].pop("cpus", None)
    path.write_text(json.dumps(card, indent=2) + "\n")
    log.info("re-quantised %s with %s (validation int8 F1 %.4f vs fp32 %.4f)", model_dir, recipe.name,
             parity["f1"]["int8"], parity["f1"]["fp32"])
    return card


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path, nargs="?", default=REPO / "training/runs/groove-vae/best.pt")
    p.add_argument("out_dir", type=Path, nargs="?", default=REPO / "models/groove-vae")
    p.add_argument("--name", default="groove-vae")
    p.add_argument("--register", type=Path, metavar="CKPT",
                   help="a register encoder: a run trained with --freeze-decoder --init CHECKPOINT")
    p.add_argument("--register-sigma", type=float, default=1.0, metavar="S",
                   help="scale the register encoder's σ by S (1: as trained); training.frontier's "
                        "'σ plain / register' column is the scale at which both encoders' σ agree on validation people")
    p.add_argument("--base", type=Path, metavar="MODEL_DIR",
                   help="with --register: keep MODEL_DIR's thresholds, calibration, prior and styles for the "
                        "grooves the encoder hears (MODEL_DIR is CHECKPOINT's own export); calibrate, prior "
                        "and styles then fit the register encoder's only")
    p.add_argument("--requantise", type=Path, metavar="MODEL_DIR",
                   help="only remake MODEL_DIR's int8 graphs from its fp32 graphs with the current recipe")
    args = p.parse_args(argv)
    try:
        if args.requantise is not None:
            card = requantise(args.requantise)
        else:
            card = export(args.checkpoint, args.out_dir, args.name, register=args.register,
                          register_sigma=args.register_sigma, base=args.base)
    except ParityError as exc:
        print(f"export: PARITY CHECK FAILED: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except ds.DatasetError as exc:
        raise SystemExit(f"export: {exc}") from None
    print(json.dumps(card["metrics"], indent=2))


if __name__ == "__main__":
    main()

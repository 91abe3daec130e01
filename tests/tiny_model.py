"""A tiny contract-true model (random weights), built with onnx.helper: plumbing tests only."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from appliance.core.groove import GM_NOTES, NUM_VOICES, STEPS, VOICES

LATENT = 8


def _save(graph: onnx.GraphProto, path: Path) -> None:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def build(directory: Path, seed: int = 0, channels: int = 3) -> Path:
    """Write encoder/decoder (fp32, and the same graphs as the "int8" files) and model.json; the
    encoder hears ``channels`` of the groove (4: with its register)."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    w_enc = numpy_helper.from_array(rng.normal(0, 0.3, (STEPS * channels, 2 * LATENT)).astype(np.float32), "w_enc")
    flat_shape = numpy_helper.from_array(np.array([-1, STEPS * channels], np.int64), "flat_shape")
    split = numpy_helper.from_array(np.array([LATENT, LATENT], np.int64), "split")
    encoder = helper.make_graph(
        [helper.make_node("Reshape", ["groove", "flat_shape"], ["flat"]),
         helper.make_node("MatMul", ["flat", "w_enc"], ["both"]),
         helper.make_node("Split", ["both", "split"], ["mu", "logvar"], axis=1)],
        "encoder",
        [helper.make_tensor_value_info("groove", TensorProto.FLOAT, ["N", STEPS, channels])],
        [helper.make_tensor_value_info("mu", TensorProto.FLOAT, ["N", LATENT]),
         helper.make_tensor_value_info("logvar", TensorProto.FLOAT, ["N", LATENT])],
        [w_enc, flat_shape, split])
    cells = STEPS * NUM_VOICES
    w_dec = numpy_helper.from_array(rng.normal(0, 1.0, (LATENT, 3 * cells)).astype(np.float32), "w_dec")
    out_shape = numpy_helper.from_array(np.array([-1, STEPS, NUM_VOICES], np.int64), "out_shape")
    split3 = numpy_helper.from_array(np.array([cells] * 3, np.int64), "split3")
    half = numpy_helper.from_array(np.array(0.5, np.float32), "half")
    decoder = helper.make_graph(
        [helper.make_node("MatMul", ["z", "w_dec"], ["all"]),
         helper.make_node("Split", ["all", "split3"], ["h", "v", "o"], axis=1),
         helper.make_node("Sigmoid", ["h"], ["hs"]),
         helper.make_node("Sigmoid", ["v"], ["vs"]),
         helper.make_node("Tanh", ["o"], ["ot"]),
         helper.make_node("Mul", ["ot", "half"], ["os"]),
         helper.make_node("Reshape", ["hs", "out_shape"], ["hits"]),
         helper.make_node("Reshape", ["vs", "out_shape"], ["velocities"]),
         helper.make_node("Reshape", ["os", "out_shape"], ["offsets"])],
        "decoder",
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", LATENT])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", STEPS, NUM_VOICES])
         for name in ("hits", "velocities", "offsets")],
        [w_dec, out_shape, split3, half])
    for part, graph in (("encoder", encoder), ("decoder", decoder)):
        _save(graph, directory / f"{part}.onnx")
        _save(graph, directory / f"{part}.int8.onnx")
    card = {"name": "tiny-test", "latent_size": LATENT, "steps": STEPS, "voices": list(VOICES),
            "notes": list(GM_NOTES), "thresholds": [0.5] * NUM_VOICES,
            "inputs": {"encoder": {"groove": ["N", STEPS, channels], **({"register": "signed"} if channels > 3 else {})},
                       "decoder": {"z": ["N", LATENT]}}}
    (directory / "model.json").write_text(json.dumps(card))
    return directory


def with_register(directory: Path, seed: int = 1) -> Path:
    """Give a 3-channel tiny model a register encoder (another tiny encoder, 4 channels, into the
    same z) and the card's ``inputs.register``."""
    other = build(directory / "_four", seed=seed, channels=4)
    for suffix in ("onnx", "int8.onnx"):
        (other / f"encoder.{suffix}").rename(directory / f"register.{suffix}")
    for leftover in other.iterdir():
        leftover.unlink()
    other.rmdir()
    card = json.loads((directory / "model.json").read_text())
    card["inputs"]["register"] = {"groove": ["N", STEPS, 4], "register": "signed"}
    (directory / "model.json").write_text(json.dumps(card))
    return directory


def register_like_encoder(directory: Path) -> Path:
    """Give a model directory (the shipped one, copied) a register encoder that is its own encoder
    hearing the first 3 channels of a 4-channel groove: the same z, so only the card's
    ``register_path`` tells the two paths apart."""
    for suffix in ("onnx", "int8.onnx"):
        model = onnx.load(str(directory / f"encoder.{suffix}"))
        graph = model.graph
        for node in graph.node:
            node.input[:] = ["groove3" if name == "groove" else name for name in node.input]
        graph.initializer.extend([numpy_helper.from_array(np.array([a], np.int64), n)
                                  for n, a in (("r_start", 0), ("r_end", 3), ("r_axis", 2))])
        graph.node.insert(0, helper.make_node("Slice", ["groove", "r_start", "r_end", "r_axis"], ["groove3"]))
        graph.input[0].type.tensor_type.shape.dim[2].dim_value = 4
        onnx.save(model, str(directory / f"register.{suffix}"))
    card = json.loads((directory / "model.json").read_text())
    card["inputs"]["register"] = {"groove": ["N", STEPS, 4], "register": "signed"}
    (directory / "model.json").write_text(json.dumps(card))
    return directory

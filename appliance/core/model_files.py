"""What a model directory holds and how onnxruntime opens it: the contract between training
(which writes the directory) and the box (which loads it), kept here once.

Importing this module imports only the standard library (shell scripts read :data:`MODEL_FILES` with
``python3 -c``); onnxruntime is imported when a session is opened.
"""
from __future__ import annotations

import json
from pathlib import Path
import sys
from typing import Any

#: the files every model directory holds
MODEL_FILES = ("encoder.onnx", "decoder.onnx", "encoder.int8.onnx", "decoder.int8.onnx", "model.json")
#: the register encoder's graphs: a second encoder into the same z that hears the groove with its
#: register, for grooves whose register is known (model.json's ``inputs.register`` names it)
REGISTER_FILES = ("register.onnx", "register.int8.onnx")
#: model.json's block of what is fitted again for the grooves the register encoder hears (its
#: thresholds, calibration and styles: appliance.core.generator.Fit)
REGISTER_PATH = "register_path"
PRECISIONS = ("int8", "fp32")
CARD = "model.json"


def has_register(model_dir: str | Path) -> bool:
    """The card names a register encoder (``inputs.register``); a directory without a readable card
    yet (export checks its graphs before it writes one) has one when register.onnx is there."""
    card = Path(model_dir) / CARD
    try:
        return "register" in json.loads(card.read_text()).get("inputs", {})
    except (OSError, ValueError, AttributeError):
        return not card.is_file() and (Path(model_dir) / REGISTER_FILES[0]).is_file()


def path_card(card: dict, register: bool) -> dict:
    """The card as the grooves of one encoder read it: the register encoder's with its
    :data:`REGISTER_PATH` entries over the card's own, the encoder's as it is."""
    return {**card, **card.get(REGISTER_PATH, {})} if register else card


def model_files(model_dir: str | Path) -> tuple[str, ...]:
    """The files of this model directory that the install copies and the image checks:
    :data:`MODEL_FILES`, and :data:`REGISTER_FILES` when the card names a register encoder."""
    return MODEL_FILES + (REGISTER_FILES if has_register(model_dir) else ())


def graph_path(model_dir: str | Path, part: str, precision: str) -> Path:
    """``encoder``, ``register`` or ``decoder`` at ``int8`` or ``fp32``."""
    return Path(model_dir) / (f"{part}.int8.onnx" if precision == "int8" else f"{part}.onnx")


def open_session(path: str | Path, threads: int = 1) -> Any:
    """An onnxruntime session on the CPU: ``threads`` for one inference, one at a time (the
    box runs one inference at a time on one core; training's checks may use more), and
    only onnxruntime's errors in the log."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


if __name__ == "__main__":   # python3 -m appliance.core.model_files [DIR]: the file list, one a line
    print("\n".join(model_files(sys.argv[1]) if len(sys.argv) > 1 else MODEL_FILES))

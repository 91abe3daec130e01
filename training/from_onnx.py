"""A shipped model directory → a training checkpoint, for fine-tuning when the run's checkpoint is gone.

    python -m training.from_onnx models/groove-vae training/runs/shipped/best.pt

The fp32 graphs hold every weight. A model of the card's architecture is exported once with its
own random weights; each initializer of that graph is matched to the torch parameter it came from
(by value: a weight, or its transpose for MatMul), and the shipped graph's initializer of the same
name becomes that parameter. The result is checked against the shipped fp32 graphs on a few
grooves and written with the card's training record, so `python -m training.train --init` takes it.
"""
from __future__ import annotations

import argparse
import json
import logging
import tempfile
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from training.export import export_onnx
from training.model import GrooveVAE, ModelConfig
from training.onnx_model import OnnxModel

log = logging.getLogger("training.from_onnx")


def _initializers(path: Path) -> dict[str, np.ndarray]:
    return {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}


def recover(model_dir: Path) -> tuple[GrooveVAE, dict]:
    """The torch model whose fp32 export is the one in model_dir, and its card."""
    card = json.loads((model_dir / "model.json").read_text())
    arch = card["architecture"]
    cfg = ModelConfig(**{f.name: arch[f.name] for f in fields(ModelConfig) if f.name in arch})
    torch.manual_seed(0)
    probe = GrooveVAE(cfg).eval()
    with torch.no_grad():  # distinct values everywhere (LayerNorm starts as all ones and zeros)
        for param in probe.parameters():
            param.normal_()
    params = {k: v.detach().numpy() for k, v in probe.state_dict().items()}
    state: dict[str, torch.Tensor] = {}
    with tempfile.TemporaryDirectory() as tmp:
        export_onnx(probe, Path(tmp))  # the int8 files it also writes are not used
        for graph in ("encoder", "decoder"):
            fresh, shipped = _initializers(Path(tmp) / f"{graph}.onnx"), _initializers(model_dir / f"{graph}.onnx")
            for name, value in fresh.items():
                for pname, p in params.items():
                    if p.shape == value.shape and np.array_equal(p, value):
                        state[pname] = torch.from_numpy(shipped[name].copy())
                        break
                    if p.ndim == 2 and p.T.shape == value.shape and np.array_equal(p.T, value):
                        state[pname] = torch.from_numpy(shipped[name].T.copy())
                        break
    missing = sorted(set(params) - set(state))
    if missing:
        raise SystemExit(f"from_onnx: no initializer in {model_dir} for {missing}")
    model = GrooveVAE(cfg)
    model.load_state_dict(state)
    return model.eval(), card


def check(model: GrooveVAE, model_dir: Path, n: int = 64) -> float:
    """Largest difference between the recovered model and the shipped fp32 graphs on random grooves."""
    rng = np.random.default_rng(0)
    grooves = np.zeros((n, 32, 4), np.float32)
    grooves[..., 0] = rng.random((n, 32)) < 0.5
    grooves[..., 1] = rng.random((n, 32)) * grooves[..., 0]
    grooves[..., 2] = (rng.random((n, 32)) - 0.5) * grooves[..., 0]
    grooves[..., 3] = np.where(rng.random((n, 32)) < 0.4, 1.0, -1.0) * grooves[..., 0]   # the register (+1 low, −1 high)
    onnx_model = OnnxModel(model_dir, "fp32")
    onnx_model.register = None   # (the model recovered is the encoder's: a register encoder is not recovered)
    onnx_out = onnx_model.predict(grooves)
    with torch.no_grad():
        out = model(torch.from_numpy(grooves), sample=False)
    torch_out = (torch.sigmoid(out["logits"]).numpy(), out["velocities"].numpy(), out["offsets"].numpy())
    return max(float(np.abs(a - b).max()) for a, b in zip(onnx_out, torch_out))


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path)
    p.add_argument("checkpoint", type=Path)
    args = p.parse_args(argv)
    model, card = recover(args.model_dir)
    diff = check(model, args.model_dir)
    if diff > 1e-4:
        raise SystemExit(f"from_onnx: the recovered model differs from {args.model_dir} by {diff:.2e}")
    log.info("recovered %s: largest difference to its fp32 graphs %.1e", args.model_dir, diff)
    training = card.get("training", {})
    ckpt = {"model": model.state_dict(), "model_config": asdict(model.cfg),
            "state": {"epoch": int(training.get("epochs", 0)), "seconds": float(training.get("seconds", 0.0))},
            "command": training.get("command"), "recovered_from": str(args.model_dir)}
    args.checkpoint.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, args.checkpoint)
    log.info("wrote %s", args.checkpoint)


if __name__ == "__main__":
    main()

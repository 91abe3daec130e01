"""The exported encoder + decoder run through onnxruntime (no torch): used by export's parity
check, evaluate.py and the benchmark."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from appliance.core.groove import SIGNED
from appliance.core.model_files import graph_path, has_register, open_session, path_card


def known_register(grooves: np.ndarray) -> np.ndarray:
    """Which grooves [N, 32, 4] have their register known: those the box sends a register encoder."""
    return (grooves[..., 3] != 0).any(-1)


def heard_by_register(card: dict, grooves: np.ndarray) -> np.ndarray:
    """Which grooves [N, 32, 3 or 4] the card's register encoder hears (none without one)."""
    if "register" not in card.get("inputs", {}) or grooves.shape[-1] < 4:
        return np.zeros(len(grooves), bool)
    return known_register(grooves)


def thresholds_for(card: dict, grooves: np.ndarray) -> np.ndarray:
    """The card's thresholds for each groove, [N, 1, 9]: its register_path's for the grooves the
    register encoder hears, its own for every other (appliance.core.generator.Fit)."""
    own = np.asarray(card["thresholds"], np.float32)
    register = np.asarray(path_card(card, True)["thresholds"], np.float32)
    return np.where(heard_by_register(card, grooves)[:, None, None], register, own).astype(np.float32)


#: model.json's record that the encoder's fit (:data:`BASE_FIT`) was kept from a base model directory
#: (training.export --base): the tools that fit a card then fit the register encoder's only
BASE = "base"
BASE_FIT = ("thresholds", "calibration", "prior", "styles")


def paths(model_dir: Path, fitting: bool = False) -> tuple[bool, ...]:
    """The encoders a model directory's card fits for: the encoder (False), and the register
    encoder (True, model.json's register_path) when the card names one (appliance.core.generator.Fit).
    ``fitting``: those still to fit, without the encoder when its fit is a base model's (:data:`BASE`)."""
    both = (False, True) if has_register(model_dir) else (False,)
    if not fitting:
        return both
    try:
        kept = BASE in json.loads((Path(model_dir) / "model.json").read_text())
    except (OSError, ValueError):
        kept = False
    return tuple(register for register in both if register or not kept)


class OnnxModel:
    """The exported encoder + decoder pair run through onnxruntime (mu as z, like temperature 0)."""

    def __init__(self, model_dir: Path, precision: str = "fp32", threads: int = 1, plain: bool = False) -> None:
        """``plain``: the encoder hears every groove, as the model without its register encoder."""
        self.encoder = open_session(graph_path(model_dir, "encoder", precision), threads)
        self.decoder = open_session(graph_path(model_dir, "decoder", precision), threads)
        self.channels = int(self.encoder.get_inputs()[0].shape[-1])  #: 3, or 4 with the register
        card_path = model_dir / "model.json"
        encoder = json.loads(card_path.read_text()).get("inputs", {}).get("encoder", {}) if card_path.is_file() else {}
        #: +1 low, −1 high (graphs without their card yet, as export checks them, are today's); False:
        #: a model exported before session 57, whose card does not say so, heard 1 low, 0 else
        self.signed = not card_path.is_file() or encoder.get("register") == SIGNED
        #: the register encoder (register.onnx), for the grooves whose register is known; None without one
        self.register = (open_session(graph_path(model_dir, "register", precision), threads)
                         if has_register(model_dir) and not plain else None)

    def encode(self, grooves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """mu, logvar of grooves [N,32,3 or 4]: the model hears its first ``channels``; a groove
        without its register, to a model that hears one, is heard with it unknown (all 0), as the box
        hears a part all on one side of the split (Groove.model_input). With a register encoder, the
        grooves whose register is known go through it, as the box sends a two-handed groove."""
        if self.register is not None and grooves.shape[-1] > 3:
            known = known_register(grooves)
            mu, logvar = self._encode(grooves[..., :3])
            if known.any():
                heard = grooves[known][..., :4].astype(np.float32)
                mu[known], logvar[known] = self.register.run(["mu", "logvar"], {"groove": heard})
            return mu, logvar
        return self._encode(grooves)

    def _encode(self, grooves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """mu, logvar through the encoder, at its own width."""
        if grooves.shape[-1] < self.channels:
            grooves = np.concatenate([grooves, np.zeros(grooves.shape[:-1] + (self.channels - grooves.shape[-1],),
                                                        grooves.dtype)], -1)
        grooves = grooves[..., :self.channels].astype(np.float32)
        if self.channels > 3 and not self.signed:      # (the training tools give it signed)
            grooves[..., 3] = grooves[..., 3] > 0
        mu, logvar = self.encoder.run(["mu", "logvar"], {"groove": grooves})
        return mu, logvar

    def decode(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        hits, vel, off = self.decoder.run(["hits", "velocities", "offsets"], {"z": z.astype(np.float32)})
        return hits, vel, off

    def predict(self, grooves: np.ndarray, batch: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        outs: tuple[list, list, list] = ([], [], [])
        for i in range(0, len(grooves), batch):
            mu, _ = self.encode(grooves[i:i + batch])
            for o, a in zip(outs, self.decode(mu)):
                o.append(a)
        return tuple(np.concatenate(o) for o in outs)  # type: ignore[return-value]

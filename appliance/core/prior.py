"""Where z comes from when nothing is played: the grooves the model learnt, not a standard normal.

A VAE's decoder has only seen z near what its encoder gives for real grooves, and with a KL
this loose (free bits, a small β) that is not all of N(0, I): a standard-normal draw often
lands between the grooves and decodes to something no drummer played (a snare lick on beat 1).
So the model directory's card carries a mixture of diagonal Gaussians fitted, after training,
to the encoder's means over the training grooves (training/prior.py; ex-post density estimation,
as in Ghosh et al., "From Variational to Deterministic Autoencoders", ICLR 2020). A draw
picks a component from the noise vector ``eps`` itself (so a saved ``eps`` draws the same
groove again) and takes z = mean + temperature · scale · eps: "variation" still spreads it.

A card without the block (an older model) draws from N(0, I), as before.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

MAX_COMPONENTS = 1024   #: a card's prior may hold at most this many components


@dataclass(frozen=True)
class Prior:
    """A mixture of diagonal Gaussians over z: ``weights`` [K], ``means`` and ``scales`` [K, Z]
    (in the card: one line of Z numbers per component)."""

    weights: np.ndarray
    means: np.ndarray
    scales: np.ndarray

    @classmethod
    def from_card(cls, card: dict, latent_size: int) -> "Prior | None":
        """The card's ``prior`` block, or None when there is none (N(0, I)) or it is unreadable
        (one warning line)."""
        block = card.get("prior")
        if block is None:
            return None
        try:
            weights = np.asarray(block["weights"], np.float64)
            means, scales = (np.asarray([row.split() for row in block[key]], np.float32) for key in ("means", "scales"))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            log.warning("model.json: prior is unreadable (%s); drawing from N(0, I)", error)
            return None
        k = len(weights) if weights.ndim == 1 else 0
        if not (0 < k <= MAX_COMPONENTS and means.shape == (k, latent_size) and scales.shape == (k, latent_size)
                and np.isfinite(weights).all() and np.isfinite(means).all() and np.isfinite(scales).all()
                and (weights >= 0).all() and abs(weights.sum() - 1.0) < 1e-3 and (scales > 0).all()):
            log.warning("model.json: prior is not %s components of z=%d with weights summing to 1 and "
                        "positive scales; drawing from N(0, I)", k or "1.." + str(MAX_COMPONENTS), latent_size)
            return None
        return cls(weights / weights.sum(), means, scales)

    def component(self, eps: np.ndarray) -> int:
        """The component ``eps`` draws from: a hash of its bytes, as a point on the weights' scale."""
        digest = hashlib.blake2b(np.ascontiguousarray(eps, np.float32).tobytes(), digest_size=8).digest()
        u = int.from_bytes(digest, "little") / 2.0 ** 64
        return min(int(np.searchsorted(np.cumsum(self.weights), u, side="right")), len(self.weights) - 1)

    def draw(self, eps: np.ndarray, temperature: float) -> np.ndarray:
        """z for the noise ``eps`` [Z] at ``temperature`` (the "variation" knob)."""
        k = self.component(eps)
        return (self.means[k] + temperature * self.scales[k] * eps).astype(np.float32)

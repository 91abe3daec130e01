"""Styles: a nudge of z toward how GMD's drummers play one style (bossa, reggae, swing ...).

The model hears only the groove, and a keyboard's groove rarely says the style: a pianist's
bossa comp reads as a rock groove with a busy left hand, and the drums answer with a backbeat.
A style moves z along a direction in the model's latent space (an attribute vector, as in
MusicVAE and GrooVAE): the mean of the encoder's z over the training grooves of that style,
less the mean over all training grooves (training/styles.py fits them after training and
writes them into the card's ``styles`` block). The box adds ``amount`` × that shift to every z
it decodes, the groove's and the prior's, so the drums still follow what is played.

``none`` (the default) plays the model as it hears the groove. A card without a style's shift
(an older model) plays it as ``none``, with one warning line.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

NONE = "none"
#: The styles a musician can ask for → the GMD style labels whose training grooves define them
#: (a label matches itself and its sub-labels: "funk" takes "funk/groove1" too). Each has at
#: least 2 GMD training files and 100 windows, and the drums it plays over a keyboard's groove
#: are nearer its own drummers' than most styles' (training/styles.py measures both). Rock is
#: the model's own reading (a third of GMD) and "latin" a family of styles: neither is one.
#: Swing is not offered: GMD's swing drummers play much of their ride pattern on a pad the
#: 9 voices hear as the low tom, and the model, shifted, keeps its time on the low tom.
STYLES: dict[str, tuple[str, ...]] = {
    "funk": ("funk",),
    "hiphop": ("hiphop",),
    "disco": ("dance/disco",),
    "shuffle": ("rock/shuffle", "blues/shuffle", "neworleans/shuffle", "funk/purdieshuffle"),
    "bossa": ("latin/brazilian-bossa",),
    "samba": ("latin/brazilian-samba", "latin/samba", "latin/brazilian-sambareggae"),
    "reggae": ("reggae",),
    "afrobeat": ("afrobeat",),
    "secondline": ("neworleans/secondline",),
}
#: the names a config, a render or a pad takes
NAMES: tuple[str, ...] = (NONE, *STYLES)
MAX_AMOUNT = 2


def matches(gmd_style: str, name: str) -> bool:
    """Whether a GMD style label (info.csv's ``style``) belongs to the style ``name``."""
    return any(gmd_style == label or gmd_style.startswith(label + "/") for label in STYLES[name])


@dataclass(frozen=True)
class Styles:
    """The card's shifts of z, one per style it was fitted for."""

    shifts: dict[str, np.ndarray]

    @classmethod
    def from_card(cls, card: dict, latent_size: int) -> "Styles":
        """The card's ``styles`` block ({name: {"shift": "Z numbers", ...}}); a missing or
        unreadable block is no styles (one warning line when unreadable)."""
        block = card.get("styles")
        if block is None:
            return cls({})
        shifts: dict[str, np.ndarray] = {}
        try:
            for name, entry in block.items():
                shift = np.asarray(str(entry["shift"]).split(), np.float32)
                if name in STYLES and shift.shape == (latent_size,) and np.isfinite(shift).all():
                    shifts[name] = shift
                else:
                    log.warning("model.json: style %r is not one of %s with %d finite numbers; left out",
                                name, ", ".join(STYLES), latent_size)
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            log.warning("model.json: styles are unreadable (%s); every style plays as none", error)
            return cls({})
        return cls(shifts)

    def shift(self, name: str, amount: float) -> np.ndarray | None:
        """What ``name`` at ``amount`` adds to z, or None (none, amount 0, or not in the card)."""
        if name == NONE or amount == 0.0:
            return None
        shift = self.shifts.get(name)
        if shift is None:
            _warn_missing(name)
            return None
        return amount * shift


_warned: set[str] = set()


def _warn_missing(name: str) -> None:
    """One warning per style the card lacks (the box asks at every regeneration)."""
    if name not in _warned:
        _warned.add(name)
        log.warning("style %r: the model's card has no shift for it (an older model?); playing it as none; "
                    "python -m training.styles MODEL_DIR --write adds them", name)

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
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)

NONE = "none"
#: The styles a musician can ask for → the GMD style labels whose training grooves define them
#: (a label matches itself and its sub-labels: "funk" takes "funk/groove1" too). Each has at
#: least 2 GMD training files and 100 windows, the drums it plays over a keyboard's groove move
#: towards its own drummers' (training/styles.py measures both), and a musician hears it. Rock is
#: the model's own reading (a third of GMD) and "latin" a family of styles: neither is one.
#: Not offered either, though GMD has enough of them: swing (its drummers play much of their
#: ride pattern on a pad the 9 voices hear as the low tom, and the model, shifted, kept its time
#: on the low tom); disco (shifted, the model played four on the floor in fewer bars than
#: without it, and its open hats on the "a", one drummer's habit); reggae (one drummer's
#: one-drop and another's steppers, averaged: a kick on every beat and a snare on 2, 3 and 4).
STYLES: dict[str, tuple[str, ...]] = {
    "funk": ("funk",),
    "hiphop": ("hiphop",),
    "shuffle": ("rock/shuffle", "blues/shuffle", "neworleans/shuffle", "funk/purdieshuffle"),
    "bossa": ("latin/brazilian-bossa",),
    "samba": ("latin/brazilian-samba", "latin/samba", "latin/brazilian-sambareggae"),
    "afrobeat": ("afrobeat",),
    "secondline": ("neworleans/secondline",),
}
#: the names a config, a render or a pad takes
NAMES: tuple[str, ...] = (NONE, *STYLES)
MAX_AMOUNT = 1.5     #: past it the styles turn to caricature (a musician review, session 44)


def matches(gmd_style: str, name: str) -> bool:
    """Whether a GMD style label (info.csv's ``style``) belongs to the style ``name``."""
    return any(gmd_style == label or gmd_style.startswith(label + "/") for label in STYLES[name])


@dataclass(frozen=True)
class Styles:
    """The card's shifts of z, one per style it was fitted for."""

    shifts: dict[str, np.ndarray]
    _warned: set[str] = field(default_factory=set, compare=False, repr=False)

    @classmethod
    def from_card(cls, card: dict, latent_size: int, where: str = "") -> "Styles":
        """The card's ``styles`` block ({name: {"shift": "Z numbers", ...}}); a missing block is
        no styles; an entry that is no offered style with Z finite numbers is left out (one
        warning line each)."""
        block = card.get("styles")
        if block is None:
            return cls({})
        if not isinstance(block, dict):
            log.warning("model.json: %sstyles is not a mapping of names; every style plays as none", where)
            return cls({})
        shifts: dict[str, np.ndarray] = {}
        for name, entry in list(block.items())[:len(STYLES) * 4]:
            try:
                shift = np.asarray(str(entry["shift"]).split(), np.float32)
            except (KeyError, TypeError, ValueError) as error:
                shift, why = None, f"unreadable ({error})"
            else:
                why = f"not {latent_size} finite numbers"
            if name in STYLES and shift is not None and shift.shape == (latent_size,) and np.isfinite(shift).all():
                shifts[name] = shift
            else:
                log.warning("model.json: %sstyle %.40r left out: %s", where, name,
                            why if name in STYLES else f"not one of {', '.join(STYLES)}")
        return cls(shifts)

    def shift(self, name: str, amount: float) -> np.ndarray | None:
        """What ``name`` at ``amount`` adds to z, or None (none, amount 0, or not in the card)."""
        if name == NONE or amount == 0.0:
            return None
        shift = self.shifts.get(name)
        if shift is None:
            if name not in self._warned:      # the box asks at every regeneration: one line per style
                self._warned.add(name)
                log.warning("style %r: the model's card has no usable shift for it; playing it as none "
                            "(python -m training.styles MODEL_DIR --write fits them)", name)
            return None
        return amount * shift

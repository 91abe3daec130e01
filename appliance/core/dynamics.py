"""The drums follow the player's level: soft playing gets soft drums, as a band plays together.

A drummer matches the band: a pianist's pp intro gets brushes-soft time and a soft crash, an ff
chorus the full kit. The model learnt drummers' grooves, whose level is the drummer's own, and
follows a quieter groove only a little: over eighths at velocity 30 it plays at 0.74 × its level
over eighths at 80, about (played / 80) ** ``MODEL_DYNAMICS``; over a few held chords hardly at
all. So the box scales the drums' velocities by the rest of the law it keeps:

    drums' level ∝ (played / LEVEL) ** dynamics, below ``LEVEL`` (never louder than the model plays)

``played`` is the mean velocity of the louder half of the groove's steps (ghost chords between
stabs do not soften them). Over a groove the model reads as played, it answers with
``MODEL_DYNAMICS`` of the law itself, and the box scales by (played / ``LEVEL``) ** (dynamics −
``MODEL_DYNAMICS``); over a sparse groove (fewer than ``SPARSE_STEPS`` steps, whose level the model
hardly hears) by more, the whole law at ``SPARSE_FULL`` steps or fewer; over a busy groove heard on
the eighths (listening.py, heard at ``LEVEL``) by the whole law. ``dynamics`` is ``loop.dynamics``
and ``render --dynamics`` (``DYNAMICS`` by default; ``MODEL_DYNAMICS`` is the model alone, 0 one
level whatever the player does).

Why this law and these values: docs/ARCHITECTURE.md, "Following the player's level";
``python -m training.pianists --dynamics`` measures it.
"""
from __future__ import annotations

import numpy as np

from appliance.core.groove import HIT, VELOCITY, Groove

LEVEL = 0.63           #: the drummers' grooves' mean velocity (80 of 127): from here up, the drums play as the model does
DYNAMICS = 0.7         #: the drums' level follows the player's as (played / LEVEL) ** this (loop.dynamics)
MODEL_DYNAMICS = 0.32  #: the model's own answer to a quieter groove it reads as played (training.hearing)
SPARSE_STEPS = 12      #: a groove of fewer steps than this tells the model little of the player's level ...
SPARSE_FULL = 4        #: ... and one of this many or fewer nothing: the box plays the whole law
MAX_SCALE = 2.0        #: the most a scale may lift the drums (a law under the model's own, on a soft player)


def played(groove: Groove) -> float:
    """The player's level: the mean velocity of the louder half of the groove's steps (0 if none)."""
    hit = groove.steps[:, HIT] > 0.5
    if not hit.any():
        return 0.0
    velocities = np.sort(groove.steps[hit, VELOCITY])
    return float(velocities[len(velocities) // 2:].mean())


def law(level: float, exponent: float) -> float:
    """(level / ``LEVEL``) ** exponent below ``LEVEL``, 1 from there up, at most ``MAX_SCALE``."""
    if level <= 0.0:
        return 1.0
    return min(MAX_SCALE, min(1.0, level / LEVEL) ** exponent)


def model_hears(groove: Groove) -> float:
    """How much of the player's level the model hears in the groove as played: 0 at ``SPARSE_FULL``
    steps or fewer, 1 from ``SPARSE_STEPS``, in between as the groove fills."""
    count = int((groove.steps[:, HIT] > 0.5).sum())
    return min(1.0, max(0.0, (count - SPARSE_FULL) / (SPARSE_STEPS - SPARSE_FULL)))


def follow(groove: Groove, dynamics: float = DYNAMICS) -> float:
    """The drums' velocity scale over a groove the model reads as played: the law's part that the
    model does not play itself."""
    return law(played(groove), dynamics - model_hears(groove) * MODEL_DYNAMICS)


__all__ = ["DYNAMICS", "LEVEL", "MAX_SCALE", "MODEL_DYNAMICS", "SPARSE_FULL", "SPARSE_STEPS", "follow", "law",
           "model_hears", "played"]

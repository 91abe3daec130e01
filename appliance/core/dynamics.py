"""The drums follow the player's level: soft playing gets soft drums, as a band plays together.

A drummer matches the band: a pianist's pp intro gets soft time and a soft crash, an ff chorus
the full kit. The model learnt drummers' grooves, whose level is the drummer's own, and follows a
quieter groove only a little: over eighths at velocity 30 it plays at 0.74 × its level over
eighths at 80, about (played / 80) ** ``MODEL_DYNAMICS``; over a few held chords hardly at all.
So the box keeps one law itself:

    drums' level ∝ (played / mf) ** dynamics below the player's mezzo-forte ``mf``, full from there up

``played`` is the mean velocity of the louder half of the groove's steps (ghost chords between
stabs do not soften them); ``dynamics`` is ``loop.dynamics`` (``DYNAMICS``; 0 plays one level
whatever the player does), ``mf`` is ``loop.mf_velocity`` / 127 (``MF_VELOCITY``: a keyboard with a
light touch plays its mezzo-forte lower). The drums' velocities are scaled by the law over what
the model plays itself (:func:`follow`): over a groove it reads as played, (played / ``LEVEL``) **
``MODEL_DYNAMICS``; over a sparse one (fewer than ``SPARSE_STEPS`` steps, whose level the model
hardly hears) less, nothing at ``SPARSE_FULL`` steps or fewer; over a busy groove heard on the
eighths (listening.py, heard at ``LEVEL``) nothing. From ``LEVEL`` up the model plays louder over
a louder player by itself, up to ``LOUD``: over a groove louder than that it may thin out, drop
the backbeat and pile its hits on the ceiling (a pianist's ff is all accents, a drummer's has
ghost notes under them); where it expects fewer hits than over the groove brought down to
``LOUD`` (:func:`thins`), it plays that reading and the law takes the drums on up (:func:`loud`).
The scale works above the softest hit (generator.scale_velocities), so soft drums keep their
ghost notes and in-between hats apart.

Two more things a drummer does: a big fill in a soft section of a song that has been louder
rises, and its crash with it, halfway back up to the song's loudest (:func:`lift`); and a player
whose keyboard has a light touch is told once how to set their mf (:class:`Touch`).

Why this law and these values: docs/ARCHITECTURE.md, "Following the player's level";
``python -m training.pianists --dynamics`` and ``python -m training.hearing --dynamics`` measure it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import math

import numpy as np

from appliance.core.groove import HIT, VELOCITY, Groove

LEVEL = 80 / 127       #: about the drummers' grooves' mean velocity (0.634): from here up, the model plays its own level
MF_VELOCITY = 80       #: the player's mezzo-forte (loop.mf_velocity): from here up, the drums play their full level
DYNAMICS = 0.85        #: the drums' level follows the player's as (played / mf) ** this (loop.dynamics)
MODEL_DYNAMICS = 0.32  #: the model's own answer to a quieter groove it reads as played (training.hearing)
SPARSE_STEPS = 12      #: a groove of fewer steps than this tells the model little of the player's level ...
SPARSE_FULL = 4        #: ... and one of this many or fewer nothing: the box plays the whole law
MAX_SCALE = 2.0        #: the most a scale may lift the drums (a law under the model's own, or a low mf)
LOUD = 100 / 127       #: over a groove played louder than this the model may thin out and pile its hits on the
                       #: ceiling; it then plays its reading of the groove brought down to this level, lifted (:func:`loud`)
THINS = 0.9            #: ... when it expects fewer than this × the hits over the groove as played as over it brought down
LIFT = 0.5             #: a big fill ends, and its crash plays, this far (in the law's exponent) back up to the song's loudest
LIGHT_TOUCH = 0.85     #: a player whose level's median stays under this × their mf ...
TOUCH_PASSES = 48      #: ... over this many played passes (96 bars) is told once how to set mf ...
TOUCH_LOUDEST = 0.9    #: ... to about this quantile of those passes' levels (their loudest playing) ...
TOUCH_MIN = 50         #: ... when that is at least this velocity (under it: a soft song, not a light keyboard)


def played(groove: Groove) -> float:
    """The player's level: the mean velocity of the louder half of the groove's steps (0 if none)."""
    hit = groove.steps[:, HIT] > 0.5
    if not hit.any():
        return 0.0
    velocities = np.sort(groove.steps[hit, VELOCITY])
    return float(velocities[len(velocities) // 2:].mean())


def law(level: float, exponent: float, mf: float = LEVEL) -> float:
    """The drums' level over a player at ``level`` (0..1): (level / ``mf``) ** exponent below
    ``mf``, 1 from there up."""
    if level <= 0.0:
        return 1.0
    return min(1.0, level / mf) ** exponent


def opening(level: float, exponent: float, mf: float = LEVEL) -> float:
    """The drums' scale before the player has played, over a part known to come in at ``level``:
    the law below ``mf``; above it, the law on up (the model, which has heard nothing, plays
    its own level), at most ``MAX_SCALE``."""
    if level <= mf:
        return law(level, exponent, mf)
    return min(MAX_SCALE, (level / mf) ** exponent)


def model_hears(groove: Groove) -> float:
    """How much of the player's level the model hears in the groove as played: 0 at ``SPARSE_FULL``
    steps or fewer, 1 from ``SPARSE_STEPS``, in between as the groove fills."""
    count = int((groove.steps[:, HIT] > 0.5).sum())
    return min(1.0, max(0.0, (count - SPARSE_FULL) / (SPARSE_STEPS - SPARSE_FULL)))


def follow(groove: Groove, dynamics: float = DYNAMICS, mf: float = LEVEL) -> float:
    """The drums' velocity scale over a groove the model reads as played: the law over the
    model's own answer (at most ``MAX_SCALE``)."""
    level = played(groove)
    return min(MAX_SCALE, law(level, dynamics, mf) / law(level, model_hears(groove) * MODEL_DYNAMICS))


@dataclass(frozen=True)
class Loud:
    """A groove played louder than ``LOUD``, brought down to it, and the scale that takes the drums
    back up by the law: the model's other reading, played when its own thins out (:func:`thins`)."""

    groove: Groove
    lift: float


def loud(groove: Groove, dynamics: float = DYNAMICS) -> Loud | None:
    """The groove brought down to ``LOUD`` with its lift, (played / ``LOUD``) ** dynamics, when it
    was played louder than that; else None."""
    level = played(groove)
    if level <= LOUD:
        return None
    steps = np.array(groove.steps)
    steps[:, VELOCITY] *= LOUD / level
    return Loud(groove.with_steps(steps), (level / LOUD) ** dynamics)


def thins(as_played: float, brought_down: float) -> bool:
    """Whether the model thins out over a loud groove: it expects (Σ p) fewer than ``THINS`` × the
    hits over it as played as over it brought down to ``LOUD``."""
    return as_played < THINS * brought_down


def lift(loudest: float, now: float, dynamics: float = DYNAMICS, mf: float = LEVEL) -> float:
    """How much louder than the pattern a big fill ends and the crash after it plays: halfway, by
    the law, back up to the song's ``loudest`` level so far (a drummer plays into the chorus he
    knows is coming; the box hears a new section only once it is played). 1 for a song that has
    been no louder, or at a level the law leaves alone."""
    return min(MAX_SCALE, (law(max(loudest, now), dynamics, mf) / law(now, dynamics, mf)) ** LIFT)


@dataclass
class Touch:
    """Listens for a light touch: the median of the player's level over the last ``TOUCH_PASSES``
    played passes under ``LIGHT_TOUCH`` × mf, while their loudest playing (``TOUCH_LOUDEST``) is
    ``TOUCH_MIN`` or more. A keyboard with a light velocity curve makes the drums soft all night;
    the player is told once what to set mf to (a soft song looks much the same, so it is a hint,
    not a change)."""

    levels: list[float] = field(default_factory=list)   #: the last played passes' levels
    told: bool = False

    def hear(self, groove: Groove, mf: float) -> int | None:
        """After a played pass: the velocity (of 127) to tell the player to set mf to, once; else None."""
        if self.told or groove.is_empty:
            return None
        self.levels = (self.levels + [played(groove)])[-TOUCH_PASSES:]
        if len(self.levels) < TOUCH_PASSES or float(np.median(self.levels)) >= LIGHT_TOUCH * mf:
            return None
        loudest = round(float(np.quantile(self.levels, TOUCH_LOUDEST)) * 127)
        if loudest < TOUCH_MIN:
            return None
        self.told = True
        return loudest


__all__ = ["DYNAMICS", "LEVEL", "LIGHT_TOUCH", "LOUD", "MAX_SCALE", "MF_VELOCITY", "MODEL_DYNAMICS", "SPARSE_FULL",
           "SPARSE_STEPS", "TOUCH_LOUDEST", "TOUCH_MIN", "TOUCH_PASSES", "Loud", "THINS", "Touch", "follow", "law", "lift", "loud", "thins",
           "model_hears", "played"]

"""How the box hears a groove before the model reads it: the pulse of busy, even sixteenths.

The model learnt grooves from drummers, and a note on nearly every sixteenth at one level (a
pianist's arpeggios) is, to it, a drummer's snare roll. A drummer hears such a part as texture
over the eighths' pulse and plays a groove to it. So does the box. A groove is busy and even
when ``BUSY_STEPS`` or more of its 16 in-between sixteenths (the "e" and "a" of each beat) have
a note, and either their velocities are even (SD under ``EVEN_SD``) and the eighths are not
accented (under ``ACCENT`` × the sixteenths between them), or every beat plays the same figure
(each sixteenth of the beat changes from beat to beat by an SD under ``REGULAR``: a pianist's
ostinato, however accented; a drummer's groove changes with its backbeat and kick). Triplets
(the "&" of nearly every beat empty, the e late and the a early: :func:`triplets`) are read as
played. The model then hears it as a drummer's sixteenth hi-hat line would give it: the eighths
at least at ``LEVEL`` (soft, even sixteenths are ghost notes to it, and a roll), the beats
``BEAT`` × that and beats 2 and 4 ``BACKBEAT`` × more (where a drummer's kick and backbeat are:
unaccented, the model answered with soft kicks on the sixteenths), the in-between sixteenths at
``PASSING`` of it, every note on the grid (sixteenths late against the eighths, swung or because
the whole part is ahead of the clock, are a swung snare figure to it). The drums come back at
the player's level and feel: their velocities × ``BALANCE`` × the level law of dynamics.py
(``BALANCE`` brings them to the level the model plays over plain eighths), and every hit as late as the player's notes on that
sixteenth of the beat were on average (:func:`felt`: a swung pianist gets swung hats, a pianist
ahead of the beat drums ahead of it). Any groove with accents, gaps or a drummer's dynamics is
read as played. The groove memory, the display and the saved state keep what was played
(``loop.hear_eighths``, on by default).

Arpeggios sit near any such line, and a groove heard one pass as played and the next on the
eighths would flip the drums between a roll and a groove, so :class:`Ears` hears the passes in
turn: once on the eighths, a groove stays so until it is clearly not busy and even (``STAY_*``).

Why these values, what they cost and what they do: docs/ARCHITECTURE.md, "Busy sixteenths";
``python -m training.hearing`` measures it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from appliance.core.dynamics import DYNAMICS, LEVEL, Loud, follow, law, loud
from appliance.core.groove import HIT, OFFSET, STEPS_PER_BEAT, VELOCITY, Groove, Pattern

BUSY_STEPS = 12    #: in-between sixteenths (of 16 in two bars) with a note that make a groove busy
EVEN_SD = 0.15     #: velocity SD (0..1) under which the notes are at one level
ACCENT = 1.45      #: eighths this much louder than the sixteenths between them are accents
PASSING = 0.8      #: the in-between sixteenths of a busy, even groove are heard at this × their (lifted) velocity
BEAT = 1.5         #: ... and its beats this × their (lifted) velocity: a drummer's kick and backbeat under the hat line
BACKBEAT = 1.15    #: ... beats 2 and 4 this × more again (a backbeat: the model put a kick on a flat beat 4)
BALANCE = 0.95     #: the drums over a heard busy groove × this ≈ the drums over plain eighths at its level
TRIPLET_ANDS = 2   #: a busy groove with a note on at most this many of its eight "&"s ...
TRIPLET_OFF = 0.15  #: ... its e this many steps late and its a this many early on average is triplets, heard as played
REGULAR = 0.07     #: a busy groove whose every sixteenth of the beat changes less than this from beat to beat is one figure, repeated
STAY_BUSY_STEPS, STAY_EVEN_SD, STAY_ACCENT, STAY_REGULAR = 10, 0.2, 1.6, 0.1   #: the looser lines a groove heard as eighths must cross back


def busy_and_even(groove: Groove, busy_steps: int = BUSY_STEPS, even_sd: float = EVEN_SD,
                  accent: float = ACCENT, regular: float = REGULAR) -> bool:
    """Whether the groove is sixteenths on nearly every step, either at one level with no
    accents, or one figure played the same in every beat (however it is accented)."""
    hit = groove.steps[:, HIT] > 0.5
    between = hit[1::2]
    if between.sum() < busy_steps or not hit[0::2].any():
        return False
    if triplets(groove):
        return False
    velocity = groove.steps[:, VELOCITY]
    if beat_to_beat(groove) < regular:
        return True
    if velocity[hit].std() >= even_sd:
        return False
    return bool(velocity[0::2][hit[0::2]].mean() < accent * velocity[1::2][between].mean())


def triplets(groove: Groove) -> bool:
    """Whether a busy groove is triplets on the sixteenth grid: the "&" of nearly every beat
    empty, the notes on the e late and those on the a early (a triplet's "trip" and "let" are a
    third of a step off them). A straight "1 e . a" figure is on the grid: not triplets."""
    steps = groove.steps
    hit = steps[:, HIT] > 0.5
    if hit[2::STEPS_PER_BEAT].sum() > TRIPLET_ANDS:
        return False
    e, a = hit[1::STEPS_PER_BEAT], hit[3::STEPS_PER_BEAT]
    if not e.any() or not a.any():
        return False
    return bool(steps[1::STEPS_PER_BEAT, OFFSET][e].mean() >= TRIPLET_OFF
                and steps[3::STEPS_PER_BEAT, OFFSET][a].mean() <= -TRIPLET_OFF)


def beat_to_beat(groove: Groove) -> float:
    """How much the sixteenths of the beat (1, e, &, a) change from beat to beat: the largest,
    over the four, of the velocity's SD across the eight beats (a rest counts as 0). A keyboard
    figure repeated every beat is near 0; a drummer's groove, with its backbeat and kick, is not."""
    steps = groove.steps
    velocity = np.where(steps[:, HIT] > 0.5, steps[:, VELOCITY], 0.0)
    return float(max(velocity[k::STEPS_PER_BEAT].std() for k in range(STEPS_PER_BEAT)))


@dataclass(frozen=True)
class Heard:
    """A groove as the model is to read it, and what gives the drums back the player's level and
    feel: a velocity scale, and per sixteenth of the beat (1, e, &, a) the steps the player's
    notes there came late on average (all 1 and 0 unless heard on the eighths)."""

    groove: Groove
    velocity_scale: float = 1.0
    feel: tuple[float, ...] = (0.0,) * STEPS_PER_BEAT
    loud: Loud | None = None   #: a loud groove's other reading, for the model to take if its own thins out


def on_the_eighths(groove: Groove, dynamics: float = DYNAMICS, mf: float = LEVEL) -> Heard:
    """The groove as a drummer's sixteenth hi-hat line: eighths accented, at least ``LEVEL`` (the
    drums then follow the played level by the whole law, ``dynamics``)
    (one left out at the others' mean), the beats ``BEAT`` × the "&"s, 2 and 4 ``BACKBEAT`` × more
    (beats at most 1; a loud part's "&"s at most 1 / ``BEAT`` of their beat); in-between sixteenths
    at ``PASSING`` of their lifted velocity (at most ``PASSING`` of that "&" ceiling); every note on
    the grid."""
    steps = np.array(groove.steps)
    hit = steps[:, HIT] > 0.5
    played = float(steps[0::2, VELOCITY][hit[0::2]].mean())
    lift = max(1.0, LEVEL / max(played, 1e-3))
    feel = tuple(float(steps[k::STEPS_PER_BEAT, OFFSET][hit[k::STEPS_PER_BEAT]].mean())
                 if hit[k::STEPS_PER_BEAT].any() else 0.0 for k in range(STEPS_PER_BEAT))
    steps[:, VELOCITY] = np.clip(steps[:, VELOCITY] * lift, 0.0, 1.0)
    steps[1::2, VELOCITY] *= PASSING
    gaps = ~hit[0::2]          # a hat line has every eighth: an eighth left out is played at the others' mean
    if gaps.any():
        eighths = steps[0::2]
        eighths[gaps] = (1.0, float(eighths[~gaps, VELOCITY].mean()), 0.0)
        steps[0::2] = eighths
    beats = steps[0::STEPS_PER_BEAT, VELOCITY] * BEAT
    beats[1::2] *= BACKBEAT
    beats = np.minimum(beats, 1.0)
    steps[0::STEPS_PER_BEAT, VELOCITY] = beats
    # A loud part keeps its accents under the beats held at 1: its "&"s come down to 1 / BEAT of
    # their beat, its e and a to PASSING of that.
    ceiling = np.repeat(beats / BEAT, STEPS_PER_BEAT)
    steps[2::STEPS_PER_BEAT, VELOCITY] = np.minimum(steps[2::STEPS_PER_BEAT, VELOCITY], ceiling[2::STEPS_PER_BEAT])
    steps[1::2, VELOCITY] = np.minimum(steps[1::2, VELOCITY], PASSING * ceiling[1::2])
    steps[:, OFFSET] = 0.0
    return Heard(groove.with_steps(steps), min(2.0, BALANCE * law(played, dynamics, mf)), feel)


def felt(pattern: Pattern, feel: tuple[float, ...]) -> Pattern:
    """The pattern with every hit on sixteenth k of a beat ``feel[k]`` steps later (its fill bar too)."""
    if not any(feel):
        return pattern
    late = np.tile(np.asarray(feel, np.float32), len(pattern.steps) // STEPS_PER_BEAT)

    def shifted(cells: np.ndarray) -> np.ndarray:
        cells = np.array(cells)
        moved = np.clip(cells[..., OFFSET] + late[:len(cells), None], -0.5, 0.499)
        cells[..., OFFSET] = np.where(cells[..., HIT] > 0, moved, cells[..., OFFSET])
        return cells

    return Pattern(shifted(pattern.steps), None if pattern.fill is None else shifted(pattern.fill))


def as_played(groove: Groove, dynamics: float = DYNAMICS, mf: float = LEVEL) -> Heard:
    """The groove read as played; the drums follow its level by the law over the model's own
    answer; a loud one comes with its reading at ``dynamics.LOUD`` (dynamics.loud)."""
    return Heard(groove, follow(groove, dynamics, mf), loud=loud(groove, dynamics))


def heard(groove: Groove, dynamics: float = DYNAMICS, mf: float = LEVEL) -> Heard:
    """One groove as the model reads it, on its own: a busy, even groove on the eighths; any other as played."""
    return on_the_eighths(groove, dynamics, mf) if busy_and_even(groove) else as_played(groove, dynamics, mf)


@dataclass
class Ears:
    """Hears the grooves of one performance in turn, holding on to "busy and even" (see above)."""

    busy: bool = False   #: the last groove was heard on the eighths

    def hear(self, groove: Groove, dynamics: float = DYNAMICS, mf: float = LEVEL) -> Heard:
        self.busy = (busy_and_even(groove, STAY_BUSY_STEPS, STAY_EVEN_SD, STAY_ACCENT, STAY_REGULAR) if self.busy
                     else busy_and_even(groove))
        return on_the_eighths(groove, dynamics, mf) if self.busy else as_played(groove, dynamics, mf)

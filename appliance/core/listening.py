"""How the box hears a groove before the model reads it: the pulse of busy, even sixteenths.

A pianist's arpeggios put a note on nearly every sixteenth, all at about one level. The model
learnt grooves from drummers, and a groove like that is, to it, a drummer's snare roll: on the
comping songs' busy-pianist song it played 24 snare hits per 2 bars with a backbeat only 1.23 ×
the other snare hits. A drummer hears such a part as flowing texture over the eighths' pulse, and
plays a groove to it. So does the box: when the groove has notes on ``BUSY_STEPS`` or more of its
16 in-between sixteenths (the "e" and "a" of each beat), their velocities are even (SD under
``EVEN_SD``) and the eighths are not accented (on average under ``ACCENT`` × the sixteenths
between them), the model hears the in-between sixteenths at ``PASSING`` of their velocity: the
eighths accented, the sixteenths passing notes, as a drummer's softer sixteenth hi-hat lines
give it (GMD validation loops with hats on 12 or more in-between sixteenths: those hats at 0.37
/ 0.63 / 0.76 of the hats on the eighths, quartiles). 0.35 was chosen on the validation loops'
simulated arpeggios, where 0.5 kept most of the snare roll (snare hits 21.0 → 15.5 per 2 bars,
drummers 10.3) and 0.35 took it to 13.3 for 0.002 of the drummers' own grooves' F1.
(Leaving the sixteenths out altogether took the snare roll away too, but the model then heard
a bare eighth-note part and played it loosely: hats and ride by turns, backbeats missing.)
A groove with accents, gaps or a drummer's dynamics is read as played. What the player played, the groove memory and the display
keep as played; only the model's input changes (``loop.hear_eighths``, on by default).

A pianist's arpeggios sit near any such line (on the busy-pianist song the velocity SD ran
0.11–0.15 and the eighths 0.95–1.15 × the sixteenths), so a groove heard one pass as played and
the next as eighths would flip the drums between a roll and a groove. :class:`Ears` hears the
passes one after another: once a groove is heard so it stays so until it is clearly not
busy and even (``STAY_*``: fewer than 10 in-between notes, SD 0.2 or more, or eighths 1.25 × louder).

Measured on GMD's validation loops (``python -m training.hearing``): of the drummers' own grooves
about 1 % are heard this way, of simulated hands 0.2 %, of simulated keyboard comping 5 %, of
simulated arpeggios half; see docs/ARCHITECTURE.md, "Busy sixteenths".
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from appliance.core.groove import HIT, VELOCITY, Groove

BUSY_STEPS = 12    #: in-between sixteenths (of 16 in two bars) with a note that make a groove busy
EVEN_SD = 0.15     #: velocity SD (0..1) under which the notes are at one level
ACCENT = 1.1       #: eighths this much louder than the sixteenths between them are accents
PASSING = 0.35     #: the in-between sixteenths of a busy, even groove are heard at this × their velocity
STAY_BUSY_STEPS, STAY_EVEN_SD, STAY_ACCENT = 10, 0.2, 1.25   #: the looser lines a groove heard as eighths must cross back


def busy_and_even(groove: Groove, busy_steps: int = BUSY_STEPS, even_sd: float = EVEN_SD,
                  accent: float = ACCENT) -> bool:
    """Whether the groove is sixteenths on nearly every step, at one level, with no accents."""
    hit = groove.steps[:, HIT] > 0.5
    between = hit[1::2]
    if between.sum() < busy_steps or not hit[0::2].any():
        return False
    velocity = groove.steps[:, VELOCITY]
    if velocity[hit].std() >= even_sd:
        return False
    return bool(velocity[0::2][hit[0::2]].mean() < accent * velocity[1::2][between].mean())


def on_the_eighths(groove: Groove) -> Groove:
    """The groove with its in-between sixteenths as passing notes (``PASSING`` × their velocity)."""
    steps = np.array(groove.steps)
    steps[1::2, VELOCITY] *= PASSING
    return Groove(steps)


def heard(groove: Groove) -> Groove:
    """One groove as the model reads it, on its own: a busy, even groove on the eighths; any other as played."""
    return on_the_eighths(groove) if busy_and_even(groove) else groove


@dataclass
class Ears:
    """Hears the grooves of one performance in turn, holding on to "busy and even" (see above)."""

    busy: bool = False   #: the last groove was heard on the eighths

    def hear(self, groove: Groove) -> Groove:
        self.busy = (busy_and_even(groove, STAY_BUSY_STEPS, STAY_EVEN_SD, STAY_ACCENT) if self.busy
                     else busy_and_even(groove))
        return on_the_eighths(groove) if self.busy else groove

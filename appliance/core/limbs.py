"""What one drummer's four limbs can play on one step: the rules the chooser keeps.

A drummer has two feet (the kick, and the hi-hat pedal) and two hands (snare, hats, toms and
cymbals are played with sticks). So, on one step:

- the open hat and the closed hat are one instrument: one of them, never both;
- at most two hand-played voices;
- a closed hat that sounds with the ride or the crash is the hi-hat pedal (GMD's drummers play it
  so in 828 of 829 such moments): a foot, not a hand. The player sends it as the drum map's pedal
  hat note (General MIDI 44), or drops it on a machine that has none (``DrumMap.pedal_hat``).
"""
from __future__ import annotations

import numpy as np

from appliance.core.groove import HIT, VELOCITY, VOICES

KICK, SNARE, CLOSED_HAT, OPEN_HAT, LOW_TOM, MID_TOM, HIGH_TOM, CRASH, RIDE = (
    VOICES.index(v) for v in ("kick", "snare", "closed_hat", "open_hat", "low_tom", "mid_tom",
                              "high_tom", "crash", "ride"))
#: Voices always played with a stick (the closed hat is a hand too, unless it is the pedal).
STICKS = (SNARE, OPEN_HAT, LOW_TOM, MID_TOM, HIGH_TOM, CRASH, RIDE)
HANDS = 2
#: which hand-played voice goes first when a step has too many (at equal velocity)
LEFT_OUT_FIRST = (OPEN_HAT, LOW_TOM, MID_TOM, HIGH_TOM, RIDE, CLOSED_HAT, SNARE, CRASH)


def pedal_hat(on_step: np.ndarray) -> np.ndarray:
    """[..., 9] voices on a step → whether its closed hat is the pedal (it sounds with ride or crash)."""
    on_step = np.asarray(on_step, bool)
    return on_step[..., CLOSED_HAT] & (on_step[..., RIDE] | on_step[..., CRASH])


def note_of(voice: int, on_step: np.ndarray, notes: tuple[int, ...], pedal: int | None) -> int | None:
    """The note ``voice`` goes out on at a step with these voices: its own, or for a closed hat
    under the ride or crash the pedal hat's (None: the machine has none, so it is not played)."""
    return pedal if voice == CLOSED_HAT and pedal_hat(on_step) else notes[voice]


def _all_sets() -> np.ndarray:
    return (np.arange(1 << len(VOICES))[:, None] >> np.arange(len(VOICES)) & 1).astype(bool)


def fit(cells: np.ndarray) -> np.ndarray:
    """A step's cells [9, 3] (hit, velocity, offset) as one drummer plays them: while they break
    a rule (a crash added on a marked downbeat can), the quietest hand-played voice is left out."""
    if playable(cells[:, HIT] >= 0.5):
        return cells
    cells = cells.copy()
    while not playable(on_step := cells[:, HIT] >= 0.5):
        hands = [v for v in LEFT_OUT_FIRST if on_step[v] and not (v == CLOSED_HAT and pedal_hat(on_step))]
        cells[min(hands, key=lambda v: cells[v, VELOCITY])] = 0.0   # ties: the earlier in LEFT_OUT_FIRST
    return cells


def playable(on_step: np.ndarray) -> np.ndarray:
    """[..., 9] voices on a step → whether one drummer can play them together (the rules above)."""
    on_step = np.asarray(on_step, bool)
    hands = on_step[..., STICKS].sum(axis=-1) + (on_step[..., CLOSED_HAT] & ~pedal_hat(on_step))
    return ~(on_step[..., CLOSED_HAT] & on_step[..., OPEN_HAT]) & (hands <= HANDS)


#: playable(voices) for every set of voices on a step, indexed by its bit mask (bit v = voice v):
#: the chooser's lookup table
PLAYABLE_SETS: np.ndarray = playable(_all_sets())

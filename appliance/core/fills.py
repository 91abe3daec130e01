"""Fills: what makes a bar of a pattern a fill, and a fill made from the model's own outputs for
the phrase ends where its pattern has none.

Asked for two bars of groove, the model seldom offers a fill: a reviewer heard 0.15 fills per 8
bars on the comping songs, where GMD's drummers play 2.3. A drummer marks the end of a phrase
with one, so every pattern brings a fill bar with it (``Pattern.fill``), which the phrasing
(appliance.core.phrase) plays where a phrase ends when the pattern has no fill of its own:

- it is the pattern's second bar, the bar that leads back to the loop's downbeat, without its toms;
- its last two beats (one beat when the density is below 0.5) go to the hands: hats, ride,
  snare, toms and crash there give way, the kick keeps going;
- the hands play on the steps the groove's hands played there, beat by beat (eighths stay
  eighths, sixteenths sixteenths; a beat's eighths where they played fewer than two in it);
- the drums are the model's: the snare and toms it finds likeliest in those beats, each against
  its voice's bias (as the density chooses hits), up to three of them, played from high to low,
  as a drummer moves round the kit, towards the one it ends on: drawn, the same for the same
  pattern, as often as GMD's drummers end a fill on it (``ENDINGS``: the snare 42 %, the floor
  tom 28 %, the high tom 22 %, the mid tom 8 % of their fills). A snare ending comes after the
  toms; a tom ending leaves out the toms below it;
- velocities rise from 0.8 to 1 × the pattern's accent level: its backbeat (the median snare on
  beats 2 and 4), or the loudest quarter of its hits when that is louder (a soft backbeat under
  loud hats is no reason for a fill nobody hears); the strokes between the beats are softer
  (``OFF_BEAT``), as drummers accent the beats; offsets are the model's, within ±0.2 of a step
  (two drums a sixteenth apart never flam); a hit where the groove had its snare is never
  softer than that snare (beat 4 is not dropped), and each stroke on a beat is at least as loud
  as every stroke before it, the last one too, or (off the beat) at most ``LAST_DIP`` under it;
- below density 0.5 it is a soft pickup: one drum, the likeliest, rising to the backbeat.

Its **pickup** (:func:`pickup`) is the same bar with only the fill's last beat: the small fill
the phrasing plays at the phrase ends between the big ones. A fill of one beat has none.

A pattern with its own fill bar, a tom groove, or no hits, has no made fill.
"""
from __future__ import annotations

import zlib

import numpy as np

from appliance.core.groove import HIT, STEPS, STEPS_PER_BAR, STEPS_PER_BEAT, VELOCITY, VOICES
from appliance.core.limbs import STICKS

SNARE = VOICES.index("snare")
TOMS = np.array([VOICES.index(v) for v in ("low_tom", "mid_tom", "high_tom")])
FILL_TOMS = 2                     #: tom hits that make a bar a fill
TOM_GROOVE = 4                    #: tom steps in each bar of a tom groove (see tom_groove)
#: a fill bar has a tom on this step of the bar or later (beat 3): of the training split's fill
#: bars, 6.7 % have all their toms before it (a musician heard such a bar from a model, session 59,
#: as a loud tom on 1 leading nowhere)
LEADS = 2 * STEPS_PER_BEAT
#: what the hands play in a made fill, from the highest-pitched to the lowest
FILL_VOICES = (SNARE, VOICES.index("high_tom"), VOICES.index("mid_tom"), VOICES.index("low_tom"))
HAND_VOICES = np.array(sorted({*STICKS, VOICES.index("closed_hat")}))
MAX_DRUMS = 3                     #: different drums in one made fill (one below density 0.5)
RISE = (0.8, 1.0)                 #: a made fill's velocity from its first to its last hit, × the accent level
OFF_BEAT = 0.85                   #: a made fill's strokes between the beats, × the rise (drummers accent the beats)
LAST_DIP = 0.08                   #: a last stroke off the beat may be this much softer than the loudest before it
ACCENT_QUANTILE = 0.75            #: the loudest quarter of a pattern's hits starts here
FILL_TIMING = 0.2                 #: a made fill's offsets stay within this many steps
#: how often GMD's drummers end a fill on each drum: the last snare or tom stroke of the training
#: split's fill bars (4,684 second bars of 2-bar windows with two or more tom hits)
ENDINGS = {SNARE: 0.42, VOICES.index("low_tom"): 0.28, VOICES.index("high_tom"): 0.22, VOICES.index("mid_tom"): 0.08}
BACKBEAT_STEPS = np.arange(STEPS_PER_BEAT, STEPS, 2 * STEPS_PER_BEAT)   #: beats 2 and 4 of both bars


def fill_bar(steps: np.ndarray) -> int | None:
    """The bar (0 or 1) of a pattern's steps [32, voices, 3] that is a fill, or None. A fill leads
    into the next bar: a bar whose toms all fall in its first half (a tom on 1 that then gives way
    to the groove) is none (``LEADS``)."""
    toms = tom_hits(steps)
    fill = int(np.argmax(toms))
    if toms[fill] >= FILL_TOMS and 3 * toms[1 - fill] <= toms[fill]:
        bar = steps[fill * STEPS_PER_BAR:(fill + 1) * STEPS_PER_BAR, TOMS, HIT] >= 0.5
        if bar[LEADS:].any():
            return fill
    return None


def tom_hits(steps: np.ndarray) -> np.ndarray:
    """Tom hits in each bar [2] of a pattern's steps [32, voices, 3]."""
    return (steps[:, TOMS, HIT] >= 0.5).sum(axis=1).reshape(STEPS // STEPS_PER_BAR, -1).sum(axis=1)


def tom_groove(steps: np.ndarray) -> bool:
    """Toms that keep time: four or more in each bar, three in four of them on the same steps in both."""
    on = (steps[:, TOMS, HIT] >= 0.5).any(axis=1).reshape(STEPS // STEPS_PER_BAR, STEPS_PER_BAR)
    fewer = int(on.sum(axis=1).min())
    return fewer >= TOM_GROOVE and 4 * int((on[0] & on[1]).sum()) >= 3 * fewer


def fill_beats(density: float) -> int:
    """Beats at the end of the bar a made fill takes: two, or one when the density is below 0.5."""
    return 2 if density >= 0.5 else 1


def make(steps: np.ndarray, probabilities: np.ndarray, offsets: np.ndarray, bias: np.ndarray,
         density: float) -> np.ndarray | None:
    """The fill bar [16, voices, 3] for a pattern's ``steps`` [32, voices, 3], from the decoder's
    ``probabilities`` and (played) ``offsets`` [32, voices] and each voice's logit ``bias``;
    None when the pattern has a fill of its own, is a tom groove, or plays nothing."""
    if fill_bar(steps) is not None or tom_groove(steps) or not (steps[..., HIT] >= 0.5).any():
        return None
    bar = groove_bar(steps)
    start = STEPS_PER_BAR - fill_beats(density) * STEPS_PER_BEAT
    played = np.concatenate([strokes_in_beat(bar, beat) for beat in range(start, STEPS_PER_BAR, STEPS_PER_BEAT)])
    level = accent_level(steps) if density >= 0.5 else backbeat(steps)
    snare = bar[:, SNARE, VELOCITY] * (bar[:, SNARE, HIT] >= 0.5)   # a fill hit is never softer than it
    bar[start:, HAND_VOICES] = 0.0
    at = STEPS - STEPS_PER_BAR + played          # the fill's steps in the 2-bar pattern
    p = np.clip(probabilities[at][:, FILL_VOICES].astype(np.float64), 1e-6, 1 - 1e-6)
    margin = np.log(p / (1 - p)) - np.asarray(bias, np.float64)[list(FILL_VOICES)]
    drums_wanted = MAX_DRUMS if density >= 0.5 else 1
    likeliest = np.argsort(-margin.max(axis=0), kind="stable")[:min(drums_wanted, len(played))]
    drums = ending_order([FILL_VOICES[i] for i in sorted(likeliest)], steps)
    velocity = fill_velocities(played, level, snare[played])
    for drum, strokes in zip(drums, strokes_of(len(played), drums)):
        for i in strokes:
            timing = float(np.clip(offsets[at[i], drum], -FILL_TIMING, FILL_TIMING))
            bar[played[i], drum] = (1.0, velocity[i], timing)
    return bar


def strokes_in_beat(bar: np.ndarray, beat: int) -> np.ndarray:
    """The steps of the beat starting at step ``beat`` of ``bar`` [16, voices, 3] that a made fill
    plays: where the groove's hands played, or the beat's eighths when they played fewer than two."""
    steps = np.arange(beat, beat + STEPS_PER_BEAT)
    hands = (bar[steps][:, HAND_VOICES, HIT] >= 0.5).any(axis=1)
    return steps[hands] if hands.sum() >= 2 else steps[::2]


def fill_velocities(played: np.ndarray, level: float, snare: np.ndarray) -> np.ndarray:
    """A made fill's velocity on each of its ``played`` steps: rising RISE × ``level``, the strokes
    between the beats OFF_BEAT as loud; never softer than the groove's ``snare`` on that step, and
    each stroke on a beat, and the last, at least as loud as every stroke before it."""
    rise = level * np.linspace(*RISE, len(played))
    last = len(played) - 1
    accented = (played % STEPS_PER_BEAT == 0) | (np.arange(len(played)) == last)
    velocity = np.maximum(np.where(accented, rise, OFF_BEAT * rise), snare)
    for i in np.flatnonzero(accented):
        loudest = velocity[:i].max(initial=0.0)
        if i == last and played[i] % STEPS_PER_BEAT:   # a last stroke off the beat may lean back a little
            loudest -= LAST_DIP
        velocity[i] = max(velocity[i], loudest)
    return np.minimum(velocity, 1.0)


def ending_order(drums: list[int], steps: np.ndarray) -> list[int]:
    """The ``drums`` (high to low) in the order a made fill plays them. The one it ends on is drawn
    with the drummers' ENDINGS weights, seeded by the pattern's ``steps`` (the same pattern, the
    same fill). A snare ending comes after the toms, high to low; a tom ending after the drums
    above it, high to low, and the toms below it are left out (a fill that goes down to the floor
    tom and back up to the high tom lands nowhere)."""
    weights = np.array([ENDINGS[d] for d in drums])
    rng = np.random.default_rng(zlib.crc32(np.ascontiguousarray(steps, np.float32).tobytes()))
    last = drums[int(rng.choice(len(drums), p=weights / weights.sum()))]
    if last == SNARE:
        return [d for d in drums if d != SNARE] + [SNARE]
    return [d for d in drums if FILL_VOICES.index(d) < FILL_VOICES.index(last)] + [last]


def strokes_of(count: int, drums: list[int]) -> list[np.ndarray]:
    """Which of a made fill's ``count`` strokes each of its ``drums`` (in playing order) takes: an
    even share in turn, except that toms leading to a snare ending keep FILL_TOMS strokes between
    them when there are more strokes than that (a tom, then three snares, is no tom fill)."""
    shares = [len(a) for a in np.array_split(np.arange(count), len(drums))]
    if len(drums) > 1 and drums[-1] == SNARE and count > FILL_TOMS and count - shares[-1] < FILL_TOMS:
        shares[-1] = count - FILL_TOMS
        shares[:-1] = [len(a) for a in np.array_split(np.arange(FILL_TOMS), len(drums) - 1)]
    return np.split(np.arange(count), np.cumsum(shares)[:-1])


def pickup(steps: np.ndarray, fill: np.ndarray) -> np.ndarray | None:
    """The small fill between the big ones: the groove bar of ``steps`` with only the last beat
    of the made ``fill`` [16, voices, 3]; None when the fill is a beat long or less."""
    bar = groove_bar(steps)
    last = STEPS_PER_BAR - STEPS_PER_BEAT
    if np.array_equal(bar[:last], fill[:last]):
        return None
    bar[last:] = fill[last:]
    return bar


def groove_bar(steps: np.ndarray) -> np.ndarray:
    """The pattern's second bar without its toms (a copy)."""
    bar = steps[STEPS - STEPS_PER_BAR:].copy()
    bar[:, TOMS] = 0.0
    return bar


def accent_level(steps: np.ndarray) -> float:
    """What a made fill rises to: the backbeat, or the loudest quarter of the hits if louder."""
    hits = steps[..., HIT] >= 0.5
    loud = float(np.quantile(steps[hits, VELOCITY], ACCENT_QUANTILE)) if hits.any() else 0.0
    return max(backbeat(steps), loud)


def backbeat(steps: np.ndarray) -> float:
    """The pattern's backbeat level: its median snare on beats 2 and 4, else its median snare,
    else its median hit."""
    hits = steps[..., HIT] >= 0.5
    for cells in (steps[BACKBEAT_STEPS, SNARE][hits[BACKBEAT_STEPS, SNARE]], steps[hits[:, SNARE], SNARE],
                  steps[hits]):
        if len(cells):
            return float(np.median(cells[:, VELOCITY]))
    return 0.0


__all__ = ["FILL_TOMS", "FILL_VOICES", "MAX_DRUMS", "RISE", "TOM_GROOVE", "TOMS", "accent_level", "backbeat",
           "ending_order", "ENDINGS", "fill_bar", "fill_velocities", "LAST_DIP", "OFF_BEAT", "strokes_in_beat",
           "strokes_of", "fill_beats", "groove_bar", "make", "pickup", "tom_groove", "tom_hits"]

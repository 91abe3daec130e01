"""The drummer: ONNX encoder → z → decoder, and the controls that shape its pattern."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from appliance.core import fills, limbs, styles
from appliance.core.dynamics import Loud, thins
from appliance.core.groove import (HIT, NUM_VOICES, OFFSET, SIGNED, STEPS, STEPS_PER_BAR, STEPS_PER_BEAT, VELOCITY, VOICES,
                                   Groove, Pattern)
from appliance.core.model_files import MODEL_FILES, PRECISIONS, REGISTER_PATH, graph_path, open_session, path_card
from appliance.core.prior import Prior
from appliance.core.styles import Styles

log = logging.getLogger(__name__)

#: density knob → how many hits, as a multiple of what GMD drummers play over such a groove:
#: 0 sparse (not silent), 0.25 half, 0.5 as many, 0.75 one and a half times, 1 twice.
DENSITY_CURVE = ((0.0, 0.15), (0.25, 0.5), (0.5, 1.0), (0.75, 1.5), (1.0, 2.0))
MIN_HITS = 2            #: the sparsest pattern over a groove still plays this many hits
MAX_SPREAD = 3.0        #: velocities and offsets are spread out at most this many times
#: the softest hit played (15 of 127): softer ones sound at full level on machines that ignore velocity
VELOCITY_FLOOR = 15 / 127


def scale_velocities(velocities: np.ndarray | np.floating, scale: float) -> np.ndarray:
    """Velocities × ``scale`` above the softest hit (``VELOCITY_FLOOR``), so that softer drums keep
    their ghost notes and in-between hats apart instead of piling them up on the floor."""
    above = np.clip(velocities, VELOCITY_FLOOR, 1.0) - VELOCITY_FLOOR
    return np.clip(VELOCITY_FLOOR + above * scale, VELOCITY_FLOOR, 1.0)


@dataclass(frozen=True)
class Calibration:
    """How the model's outputs become as many hits, on as many voices, with as much dynamics, as a
    drummer plays.

    Stored in model.json under ``calibration`` by ``python -m training.calibrate MODEL_DIR``
    (fitted on the GMD validation split); a model without it plays with these defaults.
    """

    count_scale: float = 1.0   #: drummers' hits per window / the model's expected hits (Σ p), validation
    velocity_sd: float = 0.0   #: a pattern's velocity SD (0..1) is spread out to at least this; 0 = as is
    voice_bias: tuple[float, ...] | None = None  #: per-voice logit each voice's hits must clear; None = thresholds
    offset_sd: float = 0.0     #: a pattern's offset SD (steps) is spread out to at least this; 0 = as is
    #: ... unless this is set: each hit's offset is spread around its voice's own timing on its kind
    #: of step (beats, "&"s, or e and a) until those spreads' SD is this (steps); 0 = as above
    offset_sd_within: float = 0.0

    @classmethod
    def from_card(cls, card: dict, where: str = "") -> "Calibration":
        """The card's ``calibration``; ``where``: the block it is in, for the warning ("register_path's ")."""
        block = card.get("calibration") or {}
        try:
            bias = block.get("voice_bias")
            calibration = cls(float(block.get("count_scale", 1.0)), float(block.get("velocity_sd", 0.0)),
                              None if bias is None else tuple(float(b) for b in bias),
                              float(block.get("offset_sd", 0.0)), float(block.get("offset_sd_within", 0.0)))
        except (TypeError, ValueError, AttributeError):
            log.warning("model.json: %scalibration is unreadable; playing uncalibrated", where)
            return cls()
        if not (0.1 <= calibration.count_scale <= 10 and 0 <= calibration.velocity_sd < 0.5
                and 0 <= calibration.offset_sd < 0.3 and 0 <= calibration.offset_sd_within < 0.3) or (
                calibration.voice_bias is not None and (len(calibration.voice_bias) != NUM_VOICES
                                                        or not all(abs(b) < 20 for b in calibration.voice_bias))):
            log.warning("model.json: %scalibration %s is out of range; playing uncalibrated", where, calibration)
            return cls()
        return calibration


class ModelError(Exception):
    """The model directory is missing, incomplete or corrupt."""


@dataclass(frozen=True)
class Controls:
    """The knobs. Defaults play the model as it was tuned."""

    density: float = 0.5          #: 0..1; 0.5 keeps the tuned per-voice thresholds
    temperature: float = 1.0      #: "variation", 0..2: how far z strays from the groove's mean
    velocity_scale: float = 1.0   #: 0..2
    humanise: float = 1.0         #: 0..2; 0 puts every hit on the grid
    max_hits_per_voice: int = 32  #: 0..32; the most likely hits are kept
    thresholds: tuple[float, ...] | None = None  #: 9 values overriding model.json
    style: str = styles.NONE      #: a style's nudge of z (appliance.core.styles), or none
    style_amount: float = 1.0     #: 0..1.5: how far the style moves z

    def __post_init__(self) -> None:
        if self.style not in styles.NAMES:
            raise ValueError(f"style {self.style!r:.40} is not one of {', '.join(styles.NAMES)}")
        for name, low, high in (("density", 0, 1), ("temperature", 0, 2),
                                ("velocity_scale", 0, 2), ("humanise", 0, 2),
                                ("style_amount", 0, styles.MAX_AMOUNT)):
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"{name} {value} is not in {low}..{high}")
        if not 0 <= self.max_hits_per_voice <= STEPS:
            raise ValueError(f"max_hits_per_voice {self.max_hits_per_voice} is not in 0..{STEPS}")
        if self.thresholds is not None:
            if len(self.thresholds) != NUM_VOICES or not all(0 < t < 1 for t in self.thresholds):
                raise ValueError(f"thresholds must be {NUM_VOICES} numbers between 0 and 1")
            object.__setattr__(self, "thresholds", tuple(float(t) for t in self.thresholds))


_PLAYABLE: list[bool] = limbs.PLAYABLE_SETS.tolist()


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


SURE = 0.8    #: cells the model is this sure of come first, the beats before the "&"s before the e and a
#: The hits beyond a drummer's count (density over 0.5) are the same drummer with more energy: the
#: timekeeper (the closed hat, or the ride in a bar the drummer keeps on it: RIDE_BAR rides or more
#: among their own hits) fills in its subdivisions; every other voice gets at most EXTRA[voice] hits
#: more in a bar than the drummer's own (no toms: the fills have theirs; no crash); the snare never
#: makes a run longer than ROLL_MAX off the backbeat (no roll through the bar); no second timekeeper comes into a
#: bar (no ride into a bar on the hats; in a bar on the ride, a closed hat only under a ride: the pedal).
ROLL_MAX = 3
RIDE_BAR = 2
EXTRA = {"kick": 2, "snare": 3, "open_hat": 0, "low_tom": 0, "mid_tom": 0, "high_tom": 0, "crash": 0}
_EXTRA = [EXTRA.get(voice, STEPS) for voice in VOICES]
_SNARE, _RIDE, _HAT = VOICES.index("snare"), VOICES.index("ride"), VOICES.index("closed_hat")
_BACKBEAT = (4, 12)   #: beats 2 and 4 of a bar: the backbeat is never refused for making a run
#: The backbone: the kick on each bar's 1, the snare on 2 and 4. A drummer thinning out (density
#: under 0.5) keeps what of it they play at 0.5 first, and plays no fewer hits than that.
BACKBONE = np.zeros((STEPS, NUM_VOICES), bool)
BACKBONE[0::STEPS_PER_BAR, VOICES.index("kick")] = True
BACKBONE[[bar + beat for bar in range(0, STEPS, STEPS_PER_BAR) for beat in _BACKBEAT], _SNARE] = True

#: 0 on a beat, 1 on an "&", 2 on an e or a: what a drummer thinning a groove keeps longest
_METRIC = np.array([0 if step % 4 == 0 else 1 if step % 2 == 0 else 2 for step in range(STEPS)])


def _order(probabilities: np.ndarray, bias: np.ndarray, sure: float = SURE,
           first: np.ndarray | None = None) -> np.ndarray:
    """The cells of windows [..., 32, 9] (flattened per window) in the order the chooser takes
    them: the ``first`` cells (a mask like ``probabilities``), if any; then those the model is
    ``sure`` of, by place in the beat, then voice, then step (among near-certain hits the logit's
    order is noise: a sixteenth hat line would outrank the kick on 1); then the rest, most above
    its voice's bias first, ties by step, then voice."""
    shape = probabilities.shape[:-2] + (probabilities.shape[-2] * probabilities.shape[-1],)
    margin = (_logit(probabilities.astype(np.float64)) - np.asarray(bias, np.float64)).reshape(shape)
    certain = (probabilities >= sure).reshape(shape)
    later = np.zeros(shape, bool) if first is None else ~np.asarray(first, bool).reshape(shape)
    steps, voices = np.divmod(np.arange(shape[-1]), probabilities.shape[-1])
    steps, voices = np.broadcast_to(steps, shape), np.broadcast_to(voices, shape)
    return np.lexsort((voices, steps, np.where(certain, voices, 0), np.where(certain, 0.0, -margin),
                       np.where(certain, _METRIC[steps], 0), ~certain, later), axis=-1)


def density_multiple(density: float) -> float:
    """How many hits the density knob asks for, as a multiple of a drummer's (DENSITY_CURVE)."""
    knob, multiple = zip(*DENSITY_CURVE)
    return float(np.interp(density, knob, multiple))


def snare_run(snare: Sequence[bool], step: int) -> int:
    """The run of consecutive snare sixteenths within the bar that a snare on ``step`` would make,
    given the snare line so far (``snare``: 32 bools)."""
    bar = step - step % STEPS_PER_BAR
    left = step
    while left > bar and snare[left - 1]:
        left -= 1
    right = step
    while right < bar + STEPS_PER_BAR - 1 and snare[right + 1]:
        right += 1
    return right - left + 1


def target_hits(probabilities: np.ndarray, density: float, calibration: Calibration) -> int:
    """Hits to play over this groove: the model's expected count Σ p, scaled to what GMD drummers
    play (``count_scale``), times the density knob's multiple."""
    expected = float(np.sum(probabilities, dtype=np.float64)) * calibration.count_scale
    return int(min(probabilities.size, max(MIN_HITS, round(expected * density_multiple(density)))))


def choose_hits(probabilities: np.ndarray, bias: np.ndarray, count: int, sure: float = SURE,
                plain: int | None = None, first: np.ndarray | None = None) -> np.ndarray:
    """The ``count`` cells most above their voice's bias (in logit space: a tuned threshold, or the
    calibrated bias that lets each voice play as often as drummers do), those the model is sure of
    first (:func:`_order`); the count is the density's.
    A cell one drummer could not play on its step with the hits already chosen (appliance.core.limbs:
    open or closed hat, two hands) is skipped and the next one taken, and so is, after the first
    ``plain`` hits (a drummer's count; default ``count``), a cell the same drummer with more energy
    would not play (:class:`_Energy`). Ties: earlier step, lower voice. The ``first`` cells, if
    any, come before all others (:func:`_order`)."""
    playable = _PLAYABLE
    plain = count if plain is None else plain
    on_step = [0] * probabilities.shape[0]       # the voices chosen on each step, as a bit mask
    kit = _Energy(probabilities.shape[0])
    hits = np.zeros(probabilities.size, bool)
    taken = 0
    for cell in _order(probabilities, bias, sure, first).tolist():
        if taken >= count:
            break
        step, voice = divmod(cell, NUM_VOICES)
        voices = on_step[step] | 1 << voice
        if taken >= plain and not kit.allows(step, voice):
            continue
        if playable[voices]:
            on_step[step] = voices
            hits[cell] = True
            kit.take(step, voice, taken < plain)
            taken += 1
    return hits.reshape(probabilities.shape)


class _Energy:
    """What the same drummer with more energy adds to the drummer's own hits (see EXTRA)."""

    def __init__(self, steps: int) -> None:
        bars = steps // STEPS_PER_BAR
        self.snare = [False] * steps
        self.ride = [False] * steps
        self.hits = [[0] * NUM_VOICES for _ in range(bars)]   # per bar and voice: all, and the drummer's own
        self.own = [[0] * NUM_VOICES for _ in range(bars)]

    def take(self, step: int, voice: int, own: bool) -> None:
        bar = step // STEPS_PER_BAR
        self.hits[bar][voice] += 1
        self.own[bar][voice] += own
        self.snare[step] = self.snare[step] or voice == _SNARE
        self.ride[step] = self.ride[step] or voice == _RIDE

    def allows(self, step: int, voice: int) -> bool:
        bar = step // STEPS_PER_BAR
        on_ride = self.own[bar][_RIDE] >= RIDE_BAR
        if voice == _RIDE:
            return on_ride
        if voice == _HAT:
            return not on_ride or self.ride[step]
        if self.hits[bar][voice] >= self.own[bar][voice] + _EXTRA[voice]:
            return False
        return voice != _SNARE or step % STEPS_PER_BAR in _BACKBEAT or snare_run(self.snare, step) <= ROLL_MAX


def choose_hits_for(probabilities: np.ndarray, bias: np.ndarray, counts: np.ndarray, sure: float = SURE,
                    first: np.ndarray | None = None) -> np.ndarray:
    """:func:`choose_hits` for windows [N, 32, 9] at once, ``counts`` [N] hits each, at most a
    drummer's (no roll rule: calibration fits the voice bias with it at density 0.5, so it fits
    what the box plays)."""
    n = len(probabilities)
    order = _order(probabilities, bias, sure, first)
    hits = np.zeros((n, STEPS, NUM_VOICES), bool)
    on_step = np.zeros((n, STEPS), np.int64)
    taken = np.zeros(n, np.int64)
    rows = np.arange(n)
    counts = np.asarray(counts, np.int64)
    for k in range(order.shape[1]):
        live = taken < counts
        if not live.any():
            break
        step, voice = np.divmod(order[:, k], NUM_VOICES)
        voices = on_step[rows, step] | (1 << voice)
        ok = live & limbs.PLAYABLE_SETS[voices]
        on_step[rows[ok], step[ok]] = voices[ok]
        hits[rows[ok], step[ok], voice[ok]] = True
        taken += ok
    return hits


def pattern_hits(probabilities: np.ndarray, bias: np.ndarray, density: float, calibration: Calibration,
                 kept: np.ndarray | None = None) -> np.ndarray:
    """The hits the box plays at ``density`` (:func:`choose_hits`, the count :func:`target_hits`'s).
    Under 0.5 the drummer thins out their own pattern, 0.5's, keeping its backbone (BACKBONE)
    first: the backbeat the model is less sure of than the syncopations around it stays.
    ``kept`` [32, voices]: cells taken before all others where the kit can play them, at any
    density, as many as the count allows (a backbone to keep)."""
    count = target_hits(probabilities, density, calibration)
    drummers = target_hits(probabilities, 0.5, calibration)
    if count >= drummers:
        return choose_hits(probabilities, bias, count, plain=drummers, first=kept)
    backbone = choose_hits(probabilities, bias, drummers, first=kept) & BACKBONE
    if kept is not None:
        backbone |= kept
    return choose_hits(probabilities, bias, max(count, int(backbone.sum())), first=backbone)


def pattern_hits_for(probabilities: np.ndarray, bias: np.ndarray, density: float, calibration: Calibration,
                     sure: float = SURE) -> np.ndarray:
    """:func:`pattern_hits` for windows [N, 32, 9] at once, at density 0.5 or under
    (:func:`choose_hits_for`: no roll rule, so no more hits than a drummer's)."""
    if density > 0.5:
        raise ValueError(f"density {density} is over 0.5: no more hits than a drummer's here")
    counts = np.array([target_hits(p, density, calibration) for p in probabilities], np.int64)
    drummers = np.array([target_hits(p, 0.5, calibration) for p in probabilities], np.int64)
    backbone = choose_hits_for(probabilities, bias, drummers, sure) & BACKBONE
    thin = counts < drummers
    backbone &= thin[:, None, None]
    counts = np.where(thin, np.maximum(counts, backbone.sum(axis=(1, 2))), counts)
    return choose_hits_for(probabilities, bias, counts, sure, first=backbone)


FEEL_HITS = 4   #: a voice's own hits on one kind of step (beats and "&"s, or e and a) that set their time
SWING = 1 / 3   #: ... at most this far (steps) off the grid: sixteenths swung as triplets


def on_their_time(hits: np.ndarray, own: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The hits beyond the drummer's own (``own``: density 0.5's), per voice and per kind of step
    (the beats and "&"s, or the e and a between them), centred on the median timing of the voice's
    own hits there (fewer than ``FEEL_HITS`` there: of all its own hits; none at all: the grid;
    at most ``SWING`` off it), each as far from it as the model put it from their mean. The model's offset for a cell
    it did not expect leans one way: at density 1 over straight eighths its e and a hats came
    0.15 of a step behind the beats and "&"s, a limp (GMD's busy hat lines play them even); a
    swung line's own e and a keep the added ones as late as they are."""
    extra = hits & ~own
    if not extra.any():
        return offsets
    offsets = offsets.copy()
    between = np.arange(len(hits)) % 2 == 1
    for voice in np.flatnonzero(extra.any(axis=0)):
        mine = own[:, voice]
        for kind in (~between, between):
            added = extra[:, voice] & kind
            if not added.any():
                continue
            like = mine & kind if (mine & kind).sum() >= FEEL_HITS else mine
            feel = float(np.clip(np.median(offsets[like, voice]), -SWING, SWING)) if like.any() else 0.0
            placed = offsets[added, voice]
            offsets[added, voice] = np.clip(feel + placed - placed.mean(), -0.5, 0.499)
    return offsets


def spread_out(values: np.ndarray, hits: np.ndarray, sd: float, low: float, high: float) -> np.ndarray:
    """Spread the hits' values around their mean until their SD is at least ``sd`` (at most
    MAX_SPREAD times), clipped to low..high; their order, and so which hit is loudest or latest,
    stays the model's. A model trained on squared error plays the average of what drummers might:
    closer together than any one drummer plays."""
    if sd <= 0 or hits.sum() < 2:
        return values
    played = values[hits]
    mean, now = float(played.mean()), float(played.std())
    if now >= sd or now <= 1e-6:
        return values
    factor = min(MAX_SPREAD, sd / now)
    return np.clip(mean + (values - mean) * factor, low, high).astype(np.float32)


KEEP_TIME = 4      #: cymbal steps (hats, ride, crash) a groove bar plays at least, at density 0.5 and up
_CYMBALS = [VOICES.index(v) for v in ("closed_hat", "open_hat", "ride", "crash")]
NEW_TIMEKEEPER = 0.6   #: a timekeeper the pattern does not play yet, at most this × its hits' median level


def keep_time(hits: np.ndarray, probabilities: np.ndarray, velocities: np.ndarray, offsets: np.ndarray,
              bias: np.ndarray, density: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A drummer keeps time: a bar that plays as a groove bar (not the pattern's fill bar; its toms,
    which the phrasing leaves out there, not counted) whose cymbals play on fewer than KEEP_TIME
    steps (fewer below density 0.5, none at 0) gets a timekeeper on its free beats, then "&"s, the
    model's likeliest first, where one drummer can play it: the ride or closed hat the bar plays,
    if only one, else the pattern's (the ride where it rides more than it plays the closed hat).
    Over slow or sparse comping the model lets the time drop, or puts it on a floor tom."""
    keep = int(round(KEEP_TIME * min(1.0, max(0.0, density) / 0.5)))
    if keep <= 0 or not hits.any():
        return hits, velocities, offsets
    steps = np.zeros((STEPS, NUM_VOICES, 3), np.float32)
    steps[..., HIT] = hits
    if fills.tom_groove(steps):
        return hits, velocities, offsets          # its toms keep time, and play as they are
    skip = fills.fill_bar(steps)
    hits, velocities, offsets = hits.copy(), velocities.copy(), offsets.copy()
    margin = _logit(probabilities.astype(np.float64)) - np.asarray(bias, np.float64)[None, :]
    bit = 1 << np.arange(NUM_VOICES)
    bit[fills.TOMS] = 0                            # left out of a groove bar
    ride = (hits[:, _RIDE].sum(), probabilities[:, _RIDE].sum()) > (hits[:, _HAT].sum(), probabilities[:, _HAT].sum())
    timekeeper = _RIDE if ride else _HAT          # the pattern's
    for start in range(0, STEPS, STEPS_PER_BAR):
        if skip == start // STEPS_PER_BAR:
            continue
        bar = slice(start, start + STEPS_PER_BAR)
        on = hits[bar]
        cymbal_steps = np.asarray(on[:, _CYMBALS].any(axis=1))
        if not on.any() or cymbal_steps.sum() >= keep:
            continue
        voice = timekeeper
        if on[:, _RIDE].any() != on[:, _HAT].any():   # a bar already on one of them stays on it
            voice = _RIDE if on[:, _RIDE].any() else _HAT
        free = [k for k in np.lexsort((-margin[bar, voice], _METRIC[:STEPS_PER_BAR]))
                if not cymbal_steps[k] and _METRIC[k] < 2]
        added = []
        for k in free:
            if cymbal_steps.sum() >= keep:
                break
            step = start + k
            if not _PLAYABLE[int((hits[step] * bit).sum()) | 1 << voice]:
                continue
            cymbal_steps[k] = True
            added.append(step)
        if added:
            _time_kept(hits, velocities, offsets, voice, bar, added)
    return hits, velocities, offsets


def _time_kept(hits: np.ndarray, velocities: np.ndarray, offsets: np.ndarray, voice: int, bar: slice,
               added: list[int]) -> None:
    """Play ``voice`` on the ``added`` steps of ``bar`` (in place): the model's own accents among
    them, the loudest at the timekeeper's middle level (NEW_TIMEKEEPER × the pattern's median for
    one it does not play yet) or at the bar's other hits' if softer (a soft bar of a louder
    pattern stays soft), none under its softest; at its median timing (the model's guess for a
    step it had not played leant early)."""
    own = hits[:, voice]
    middle = (float(np.median(velocities[own, voice])) if own.any()
              else NEW_TIMEKEEPER * float(np.median(velocities[hits])))
    high = min(middle, float(np.median(velocities[bar][hits[bar]])))
    low = min(float(velocities[own, voice].min()) if own.any() else 0.3, high)
    feel = float(np.clip(np.median(offsets[own, voice]), -0.1, 0.1)) if own.any() else 0.0
    guess = np.maximum(velocities[added, voice], 1e-3)
    hits[added, voice] = True
    velocities[added, voice] = np.clip(high * guess / guess.max(), low, high)
    offsets[added, voice] = feel


def spread_velocities(velocities: np.ndarray, hits: np.ndarray, sd: float) -> np.ndarray:
    """The model's accents and ghost notes, as far apart as a drummer plays them: each voice's hits
    spread around that voice's own mean (so the kick stays under or with the snare as the model
    had it), by one factor (at most MAX_SPREAD) that brings the pattern's SD to ``sd``; clipped to
    VELOCITY_FLOOR..1."""
    played = hits.sum()
    if sd <= 0 or played < 2:
        return velocities
    counts = hits.sum(axis=0)
    means = np.where(hits, velocities, 0).sum(axis=0, dtype=np.float64) / np.maximum(counts, 1)
    within = float(np.where(hits, (velocities - means[None, :]) ** 2, 0).sum() / played)
    between = float((counts * (means - means @ counts / played) ** 2).sum() / played)
    if within + between >= sd * sd or within <= 1e-12:
        return velocities
    factor = min(MAX_SPREAD, float(np.sqrt(max(sd * sd - between, within) / within)))
    spread = means[None, :] + (velocities - means[None, :]) * factor
    return np.where(hits, np.clip(spread, VELOCITY_FLOOR, 1.0), velocities).astype(np.float32)


def step_kinds(steps: int = STEPS) -> tuple[np.ndarray, ...]:
    """The kinds of step a feel moves together: the beats, the "&"s (an eighth swing), and the e
    and a between them (a sixteenth swing)."""
    place = np.arange(steps) % STEPS_PER_BEAT
    return place == 0, place == 2, place % 2 == 1


def spread_offsets(offsets: np.ndarray, hits: np.ndarray, sd: float, within: float = 0.0) -> np.ndarray:
    """The model's push and drag (in steps), as far from the grid as a drummer plays them. With
    ``within``, only each hit's distance from its voice's own timing on its kind of step (the
    beats, the "&"s, or the e and a: ``step_kinds``) is spread, to that SD: the feel the model
    plays (a swing, a snare laid back) stays where it put it. Spread around the pattern's mean instead, a swing
    grew with the spread: session 43's rehearsal heard the kicks on a neo-soul's swung sixteenths
    land 25 ms behind the keys, and the kicks on the beats 14 ms ahead of them."""
    if not within:
        return spread_out(offsets, hits, sd, -0.5, 0.499)
    if hits.sum() < 2:
        return offsets
    centre = offsets.copy()
    for voice in np.flatnonzero(hits.any(axis=0)):
        for kind in step_kinds(len(offsets)):
            own = hits[:, voice] & kind
            if own.any():
                centre[own, voice] = offsets[own, voice].mean()
    return _spread_around(offsets, centre, hits, within)


def _spread_around(offsets: np.ndarray, centre: np.ndarray, hits: np.ndarray, sd: float) -> np.ndarray:
    """Offsets moved away from their ``centre`` until the hits' distances from it have SD ``sd``
    (at most MAX_SPREAD times), clipped to the step."""
    apart = offsets - centre
    now = float(apart[hits].std())
    if now >= sd or now <= 1e-6:
        return offsets
    return np.clip(centre + apart * min(MAX_SPREAD, sd / now), -0.5, 0.499).astype(np.float32)


def level(probabilities: np.ndarray, velocities: np.ndarray) -> float:
    """How loud a reading plays: its velocities' mean, each cell weighed by its hit probability."""
    weight = float(probabilities.sum())
    return float((probabilities * velocities).sum()) / weight if weight > 0 else 0.0


def at_level(probabilities: np.ndarray, velocities: np.ndarray,
             plain_probabilities: np.ndarray, plain_velocities: np.ndarray) -> np.ndarray:
    """A styled reading's velocities brought to the level of the plain one (:func:`level`), one
    gain for the kit; a voice brought up goes no louder than it plays in either reading (a hat
    foot of the style is not lifted past the plain hat), and the voices left carry the rest."""
    target, styled = level(plain_probabilities, plain_velocities), level(probabilities, velocities)
    if not (styled > 0 and target > 0 and np.isfinite(target) and np.isfinite(styled)):
        return velocities.astype(np.float32)
    weight = probabilities.sum(axis=0)
    mass = (probabilities * velocities).sum(axis=0)                 # each voice's level × weight
    own = np.divide(mass, weight, out=np.zeros_like(mass), where=weight > 0)
    plain_weight = plain_probabilities.sum(axis=0)
    plain_own = np.divide((plain_probabilities * plain_velocities).sum(axis=0), plain_weight,
                          out=np.zeros_like(mass), where=plain_weight > 0)
    most = np.maximum(own, plain_own)
    gains = np.ones(velocities.shape[1])
    capped = np.zeros(velocities.shape[1], bool)
    for _ in range(velocities.shape[1]):        # a voice capped leaves more for the others
        needed = target * weight.sum() - (gains * mass)[capped].sum()
        free = mass[~capped].sum()
        gain = needed / free if free > 0 else 1.0
        over = ~capped & (gain > 1) & (own * gain > most) & (weight > 0)
        if not over.any():
            gains[~capped] = gain
            break
        capped |= over
        gains[over] = most[over] / own[over]
    return np.clip(velocities * gains, 0.0, 1.0).astype(np.float32)


def read_card(model_dir: Path) -> dict:
    """model.json, checked for what the box needs (its ``register_path`` thresholds too)."""
    path = model_dir / "model.json"
    try:
        card = json.loads(path.read_text())
        latent = int(card["latent_size"])
        thresholds = [[float(t) for t in card["thresholds"]]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise ModelError(f"{path}: not a readable model card ({error}); "
                         "retrain or copy the model directory again") from error
    if "register" in (card.get("inputs") or {}) and REGISTER_PATH in card:   # (read only with a register encoder)
        block = card[REGISTER_PATH]
        try:
            if not isinstance(block, dict):
                raise TypeError(f"{type(block).__name__}, not a mapping")
            thresholds.append([float(t) for t in block.get("thresholds", thresholds[0])])
        except (ValueError, TypeError) as error:
            raise ModelError(f"{path}: its {REGISTER_PATH} is not a mapping with {NUM_VOICES} thresholds ({error}); "
                             "export the model again (training/export.py --register)") from error
    if latent <= 0 or not all(len(t) == NUM_VOICES and all(0.0 < x < 1.0 for x in t) for t in thresholds):
        raise ModelError(f"{path}: needs latent_size > 0 and {NUM_VOICES} thresholds between 0 and 1, "
                         f"{REGISTER_PATH}'s too (a NaN plays nothing); retrain or copy the model directory again")
    return card


@dataclass(frozen=True)
class Fit:
    """What the card fits to the grooves one encoder hears: the thresholds, the calibration and the
    styles. The register encoder's grooves play with model.json's ``register_path`` block (each
    of its entries over the card's own); every other groove, and a card without the block, with
    the card's own, so a part the register encoder never hears plays as the model without it."""

    thresholds: np.ndarray
    calibration: Calibration
    styles: Styles

    @classmethod
    def from_card(cls, card: dict, latent_size: int, register: bool = False) -> "Fit":
        block, where = path_card(card, register), f"{REGISTER_PATH}'s " if register else ""
        return cls(np.asarray(block["thresholds"], np.float32), Calibration.from_card(block, where),
                   Styles.from_card(block, latent_size, where))


class Generator:
    """Loads a model directory (the files of :mod:`appliance.core.model_files`; the contract is
    in docs/ARCHITECTURE.md, "Model contract") and turns grooves into patterns.

    One call at a time: the engine runs it from a single worker.
    """

    def __init__(self, model_dir: str | Path, precision: str = "int8", seed: int | None = None) -> None:

        self.model_dir = Path(model_dir)
        if precision not in PRECISIONS:
            raise ModelError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
        self.precision = precision
        missing = [name for name in MODEL_FILES if not (self.model_dir / name).is_file()]
        if missing:
            why = ("is it a model directory? --model or model.dir names one" if len(missing) == len(MODEL_FILES)
                   else f"a model directory holds {', '.join(MODEL_FILES)}")
            raise ModelError(f"model directory {self.model_dir} lacks {', '.join(missing)} ({why})")
        self.card = read_card(self.model_dir)
        self.latent_size = int(self.card["latent_size"])
        sessions = []
        for part in ("encoder", "decoder"):
            path = graph_path(self.model_dir, part, precision)
            try:
                sessions.append(open_session(path))
            except Exception as error:  # onnxruntime raises its own exception types
                raise ModelError(f"{path}: onnxruntime cannot load it ({str(error).splitlines()[0]}); "
                                 "re-export the model (make train / training/export.py)") from error
        self._encoder, self._decoder = sessions
        self.channels = self._channels()   #: 3, or 4: the model hears the groove's register (Groove.model_input)
        #: how it hears it: +1 low, −1 high (model.json's inputs.encoder.register "signed"), or 1 and 0
        self.signed = self.card.get("inputs", {}).get("encoder", {}).get("register") == SIGNED
        #: the register encoder (model.json's inputs.register): hears a two-handed groove, into the same z
        self._register = self._register_session()
        self._check_contract()   # before the prior and the styles: a wrong latent_size is said once, as itself
        self.prior = Prior.from_card(self.card, self.latent_size)   #: None: z from N(0, I) with nothing played
        #: what the card fits to the encoder's grooves, and to the register encoder's (:class:`Fit`)
        self.fit = Fit.from_card(self.card, self.latent_size)
        self.register_fit = (None if self._register is None else
                             Fit.from_card(self.card, self.latent_size, register=True))
        self.thresholds, self.calibration, self.styles = self.fit.thresholds, self.fit.calibration, self.fit.styles
        self._rng = np.random.default_rng(seed)
        log.info("model %s (%s, z=%d) loaded from %s", self.card.get("name", "?"), precision,
                 self.latent_size, self.model_dir)

    def _channels(self) -> int:
        """The groove channels the encoder takes: 3, or 4 with the register, as the card says."""
        shape = self._encoder.get_inputs()[0].shape
        card = self.card.get("inputs", {}).get("encoder", {}).get("groove", ["N", STEPS, 3])
        if len(shape) != 3 or shape[-1] not in (3, 4) or shape[-1] != card[-1]:
            raise ModelError(f"{self.model_dir}: the encoder takes grooves of shape {shape}, model.json says "
                             f"{card}, the contract [N, {STEPS}, 3 or 4]; re-export the model")
        return int(shape[-1])

    @property
    def hears_register(self) -> bool:
        """The model hears which notes were low: its encoder, or its register encoder, takes the register."""
        return self.channels > 3 or self._register is not None

    def _register_session(self) -> Any:
        """model.json's register encoder, opened; None when the card names none."""
        card = self.card.get("inputs", {}).get("register")
        if card is None:
            return None
        path = graph_path(self.model_dir, "register", self.precision)
        if not path.is_file():
            raise ModelError(f"{self.model_dir}: model.json names a register encoder, {path.name} is missing; "
                             "copy the whole model directory (make install copies it)")
        try:
            session = open_session(path)
        except Exception as error:  # onnxruntime raises its own exception types
            raise ModelError(f"{path}: onnxruntime cannot load it ({str(error).splitlines()[0]}); "
                             "re-export the model (training/export.py --register)") from error
        shape = session.get_inputs()[0].shape
        if len(shape) != 3 or shape[-1] != 4 or card.get("register") != SIGNED:
            raise ModelError(f"{path}: a register encoder takes grooves [N, {STEPS}, 4] with the register "
                             f"signed; this one takes {shape}, model.json says {card}; re-export the model")
        return session

    def _check_contract(self) -> None:
        """One encode and decode at load: the graphs must match the card and the contract."""
        try:
            mu, logvar = self.encode(Groove.empty())
            outputs = self.decode(np.zeros(self.latent_size, np.float32))
        except Exception as error:  # onnxruntime's own exception types
            raise ModelError(f"{self.model_dir}: the {self.precision} graphs do not run with latent_size "
                             f"{self.latent_size} from model.json ({str(error).splitlines()[0]})") from error
        shapes = [mu.shape, logvar.shape] + [o.shape for o in outputs]
        wanted = [(self.latent_size,)] * 2 + [(STEPS, NUM_VOICES)] * 3
        if self._register is not None:   # (an empty groove goes through the encoder: ask the register's own)
            try:
                heard = self._register.run(["mu", "logvar"], {"groove": np.zeros((1, STEPS, 4), np.float32)})
            except Exception as error:  # onnxruntime's own exception types
                raise ModelError(f"{self.model_dir}: the {self.precision} register encoder does not run "
                                 f"({str(error).splitlines()[0]})") from error
            shapes += [a[0].shape for a in heard]
            wanted += [(self.latent_size,)] * 2
        if shapes != wanted:
            raise ModelError(f"{self.model_dir}: the graphs give shapes {shapes}, the contract wants {wanted}")

    def reseed(self, seed: int | None) -> None:
        """Start the noise stream again: the same seed draws the same variations from here."""
        self._rng = np.random.default_rng(seed)

    def new_eps(self) -> np.ndarray:
        """A fresh draw of the noise that picks one variation of z."""
        return self._rng.standard_normal(self.latent_size).astype(np.float32)

    def _registered(self, groove: Groove) -> bool:
        """The register encoder hears this groove: there is one, and the groove is two-handed."""
        return self._register is not None and groove.two_handed

    def offers(self, style: str) -> bool:
        """The card has ``style``'s shift for every encoder (a style missing from one plays as none there)."""
        fits = [self.fit] + ([] if self.register_fit is None else [self.register_fit])
        return all(style in fit.styles.shifts for fit in fits)

    def fit_for(self, groove: Groove) -> Fit:
        """The card's fit for the encoder that hears ``groove`` (:class:`Fit`)."""
        return self.register_fit if self.register_fit is not None and self._registered(groove) else self.fit

    def encode(self, groove: Groove) -> tuple[np.ndarray, np.ndarray]:
        """mu, logvar: a two-handed groove through the register encoder when there is one, any
        other through the encoder (whose z is the same: the two share the decoder)."""
        if self._registered(groove):
            session, heard = self._register, groove.model_input(4, signed=True)
        else:
            session, heard = self._encoder, groove.model_input(self.channels, self.signed)
        mu, logvar = session.run(["mu", "logvar"], {"groove": heard[None]})
        return mu[0], logvar[0]

    def decode(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        hits, velocities, offsets = self._decoder.run(
            ["hits", "velocities", "offsets"], {"z": np.asarray(z, np.float32)[None]})
        return hits[0], velocities[0], offsets[0]

    def latent(self, groove: Groove, controls: Controls, eps: np.ndarray, prior: bool = False) -> np.ndarray:
        """z = mu + temperature · σ · eps; from the prior (``appliance.core.prior``) with no groove;
        no noise there (eps all 0: the opening pattern) is z = 0, the model's plainest groove.
        A style (``controls.style``) adds its shift, as fitted for the encoder that heard the groove, to either."""
        if prior or groove.is_empty:
            if self.prior is None or not eps.any():
                z = controls.temperature * eps
            else:
                z = self.prior.draw(eps, controls.temperature)
        else:
            mu, logvar = self.encode(groove)
            z = mu + controls.temperature * np.exp(0.5 * logvar) * eps
        shift = self._styles(groove, prior).shift(controls.style, controls.style_amount)
        return (z if shift is None else z + shift).astype(np.float32)

    def _styles(self, groove: Groove, prior: bool) -> Styles:
        """The styles fitted for the encoder that hears ``groove`` (with nothing heard, the encoder's)."""
        return self.styles if prior or groove.is_empty else self.fit_for(groove).styles

    def read(self, groove: Groove, controls: Controls, eps: np.ndarray, prior: bool = False,
             plain: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The decoder's reading of the groove. Under a style, its velocities are brought to the
        level the model plays the groove at without one: a style changes the pattern, not how
        loud the drums follow the player (:func:`level`). So does the register encoder's reading:
        it is brought to the level of the encoder's (its training's hands were softer and flatter;
        ``plain``: the encoder's reading of the groove, when the caller has it already)."""
        z = self.latent(groove, controls, eps, prior)
        probabilities, velocities, offsets = self.decode(z)
        shift = self._styles(groove, prior).shift(controls.style, controls.style_amount)
        if shift is not None:
            plain_probabilities, plain_velocities, _ = self.decode(z - shift)
            velocities = at_level(probabilities, velocities, plain_probabilities, plain_velocities)
        if not prior and self._registered(groove):   # (no register: the encoder's reading)
            plain_probabilities, plain_velocities, _ = plain or self.read(Groove(groove.steps), controls, eps)
            velocities = at_level(probabilities, velocities, plain_probabilities, plain_velocities)
        return probabilities, velocities, offsets

    def generate(self, groove: Groove, controls: Controls = Controls(),
                 eps: np.ndarray | None = None, prior: bool = False, loud: Loud | None = None) -> Pattern:
        """The pattern over ``groove``; over a loud one (``loud``, dynamics.loud) the model's reading
        of it brought down, lifted by the law, where its own reading thins out (dynamics.thins).
        Over a groove the register encoder hears, the encoder alone still has its say (it put tom
        grooves under keyboard parts and moved the snare off 4): a tom groove (fills.tom_groove) it
        does not hear is not played, the encoder's pattern is; and the backbone (BACKBONE: the kick
        on 1, the snare on 2 and 4) the encoder's pattern plays is chosen first where the kit can
        play it, but in a fill bar (``max_hits_per_voice`` still keeps each voice's likeliest)."""
        eps = np.zeros(self.latent_size, np.float32) if eps is None else eps
        if eps.shape != (self.latent_size,):
            raise ValueError(f"eps has shape {eps.shape}, the model wants ({self.latent_size},)")
        return self._generate(groove, controls, eps, prior, loud)

    def _generate(self, groove: Groove, controls: Controls, eps: np.ndarray, prior: bool, loud: Loud | None,
                  reading: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> Pattern:
        """:meth:`generate`, given the groove's ``reading`` when the caller has it (the encoder's,
        read once for the register encoder's level and for the encoder's own pattern)."""
        registered = not prior and self._registered(groove)
        plain = self.read(Groove(groove.steps), controls, eps) if registered else None
        probabilities, velocities, offsets = reading or self.read(groove, controls, eps, prior, plain)
        fit, asked = (self.fit if prior else self.fit_for(groove)), controls
        if loud is not None and not prior:
            down = self.read(loud.groove, controls, eps, prior)
            if thins(float(probabilities.sum()), float(down[0].sum())):
                (probabilities, velocities, offsets), controls = down, replace(
                    controls, velocity_scale=min(2.0, controls.velocity_scale * loud.lift))
                fit = self.fit_for(loud.groove)
        pattern = shape_pattern(probabilities, velocities, offsets, fit.thresholds, controls, fit.calibration)
        if not registered:
            return pattern
        heard = self._generate(Groove(groove.steps), asked, eps, prior,   # (no register: the encoder's)
                               None if loud is None else replace(loud, groove=Groove(loud.groove.steps)), plain)
        if fills.tom_groove(pattern.steps) and not fills.tom_groove(heard.steps):
            return heard
        backbone = (heard.steps[..., HIT] >= 0.5) & BACKBONE
        fill = fills.fill_bar(pattern.steps)
        if fill is not None:
            backbone[fill * STEPS_PER_BAR:(fill + 1) * STEPS_PER_BAR] = False
        if (backbone & (pattern.steps[..., HIT] < 0.5)).any():
            pattern = shape_pattern(probabilities, velocities, offsets, fit.thresholds, controls, fit.calibration,
                                    backbone)
        return pattern


def shape_pattern(probabilities: np.ndarray, velocities: np.ndarray, offsets: np.ndarray,
                  tuned_thresholds: np.ndarray, controls: Controls,
                  calibration: Calibration = Calibration(), backbone: np.ndarray | None = None) -> Pattern:
    """Decoder outputs [32, 9] each → Pattern: as many hits as the density asks for (the likeliest,
    relative to each voice's calibrated bias, or the thresholds given), velocities and offsets
    spread as a drummer's, then the knobs; with a fill bar for the phrase ends (appliance.core.fills).
    ``backbone`` [32, voices]: cells chosen before all others (:func:`pattern_hits`' ``kept``)."""
    if controls.thresholds is not None:
        bias = _logit(np.asarray(controls.thresholds, np.float64))
    elif calibration.voice_bias is not None:
        bias = np.asarray(calibration.voice_bias, np.float64)
    else:
        bias = _logit(np.asarray(tuned_thresholds, np.float64))
    hits = pattern_hits(probabilities, bias, controls.density, calibration, backbone)
    if controls.density > 0.5:
        offsets = on_their_time(hits, pattern_hits(probabilities, bias, 0.5, calibration, backbone), offsets)
    hits, velocities, offsets = keep_time(hits, probabilities, velocities, offsets, bias, controls.density)
    velocities = spread_velocities(velocities, hits, calibration.velocity_sd)
    offsets = spread_offsets(offsets, hits, calibration.offset_sd, calibration.offset_sd_within)
    if controls.max_hits_per_voice < STEPS:
        # Keep the most likely of each voice's hits (a likelier cell not played takes no place
        # from them: a thin pattern's backbeat stays); stable sort keeps earlier steps on ties.
        played = np.where(hits, probabilities, -1.0)
        rank = np.argsort(np.argsort(-played, axis=0, kind="stable"), axis=0, kind="stable")
        hits &= rank < controls.max_hits_per_voice
    played_offsets = np.clip(offsets * controls.humanise, -0.5, 0.499)
    steps = np.zeros((STEPS, NUM_VOICES, 3), np.float32)
    steps[..., HIT] = hits
    steps[..., VELOCITY] = np.where(hits, scale_velocities(velocities, controls.velocity_scale), 0.0)
    steps[..., OFFSET] = np.where(hits, played_offsets, 0.0)
    return Pattern(steps, fills.make(steps, probabilities, played_offsets, bias, controls.density))

"""What a person gives the box for a drum loop: grooves played by hand or on a keyboard (numpy only).

A drummer's own groove (dataset.flatten) is every onset of the kit. People give the box something
else, and the model must hear both. Two players are simulated here, each from a GMD pattern
[B,32,9,3] to the groove [B,32,3] the box would hear:

- **hands** (`hands_grooves`): a person taps the loop with two hands on pads or keys. One hand
  takes the low voices (kick, low and mid tom), the other the high ones (snare, hats, ride,
  crash, high tom). Each hand keeps the strong parts: a hit survives with a probability that
  rises with the step's place in the bar (beats, then eighths, then sixteenths) and with how loud
  the drummer played it against the rest of that hand's part; ghost notes and fast sixteenths go
  first, and mostly the same ones in both bars. Velocities come from the player's own touch: a
  level per loop near the hands' mean, plus the drummer's accents against what the hand keeps,
  plus noise per hit (flatter and softer than the drummer's: the ghost notes are gone and the
  level is the player's). Timing is looser: each hit moves by a per-loop push or drag plus noise,
  and a hit that moves past half a step lands on the neighbouring step (round the loop).
- **keys** (`keys_grooves`): a keyboard player comps along. The left hand plays bass notes on the
  kick (some dropped), the right hand chords in one of three rhythms per loop: stabs on the snare,
  a steady pulse (quarters or eighths), or the hat line with chords held over several steps
  (a held chord makes no new onsets). A chord is several notes struck nearly together, so the
  groove hears the loudest of them, a little early or late. Some loops push beats 1 and 3 an
  eighth or sixteenth early (anticipations), and some enter late, off the bar line. In training
  (`Keys.p_stride`), some left hands over a backbeat play stride: the bass on 1 and 3, a chord
  on 2 and 4.

With ``register=True`` each groove gets a fourth channel, the register the box would hear: +1 on
the steps where a low note landed (the low hand's taps of the kick's part, the left hand), −1 on
the other hit steps, and all 0 (unknown) where every hit step is low or none is (`as_heard`, the
box's own rule). The low hand's tom taps are marked high on purpose: a person tapping them below
the split would give the box +1 there, but the register is meant to say "the kick's", and session
56's model, taught toms as low, played toms in groove bars.

The hands' figures are calibrated against what people playing held-out drum loops with their
hands gave (issue 8): about 18 % fewer hits than the drum-derived groove (19.8 vs 24.0 per 2 bars),
velocity mean 0.49 (vs 0.59) and SD 0.24 (vs 0.28), offset SD 0.22 (vs 0.19) steps.
`HANDS_TARGETS` holds them; the defaults of `Hands` were fitted on GMD validation windows and
tests/test_humanize.py checks them there. Training varies the player (`Hands.varied`) so the
model does not learn one simulated person.

`human_set` builds the fixed-seed sets of simulated human input used to choose the recipe
(validation split) and to report it (test split); training never sees either split.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from appliance.core.groove import HIT, OFFSET, STEPS, STEPS_PER_BAR, STEPS_PER_BEAT, VELOCITY, VOICES

LOW_VOICES: tuple[str, ...] = ("kick", "low_tom", "mid_tom")  #: the low hand's voices
LOW_MASK = np.array([v in LOW_VOICES for v in VOICES])
KICK = VOICES.index("kick")  #: the register's voice: a low note in a groove is heard as the kick's

#: Metrical strength of each step of a 2-bar loop: downbeat, beat, eighth, sixteenth.
STRENGTH = np.array([3.0 if s % 16 == 0 else 2.0 if s % 4 == 0 else 1.0 if s % 2 == 0 else 0.0
                     for s in range(STEPS)])

#: What people playing drum loops with their hands gave (issue 8), and the drum-derived grooves
#: of the same loops: hits per 2 bars, velocity mean and SD, offset SD in steps.
HANDS_TARGETS = {"hit_ratio": 19.8 / 24.0, "velocity_mean": 0.49, "velocity_sd": 0.24, "offset_sd": 0.22}

SEED_VALIDATION = 8  #: the fixed seeds of the simulated human sets (issue 8)
SEED_TEST = 88


@dataclass(frozen=True)
class Hands:
    """Two hands tapping a drum loop. Keep-probability is a logistic in strength and loudness."""

    keep_bias: float = 0.7        # logit of keeping a sixteenth of average loudness
    keep_strength: float = 1.3    # per level of metrical strength (sixteenth 0 … downbeat 3)
    keep_loudness: float = 4.0    # per unit of velocity above the hand's mean in the loop
    low_bias: float = 0.8         # the low hand keeps more of its (sparser) part
    bar_change: float = 0.1       # chance that a step's keep-or-drop differs from the other bar's
    extra: float = 0.01           # chance of a stray hit on an empty eighth
    level: float = 0.455          # mean velocity of the player's touch
    level_sd: float = 0.08        # loop-to-loop spread of that level
    accent: float = 1.0           # how much of the drummer's accents (velocity − loop mean) is kept
    velocity_noise: float = 0.13  # per hit
    push_sd: float = 0.1          # per-loop timing push or drag, steps (a player's own feel)
    timing_noise: float = 0.13    # per hit, steps
    timing_keep: float = 0.85     # share of the drummer's micro-timing the player reproduces


    def varied(self, rng: np.random.Generator, spread: float = 0.25) -> "Hands":
        """Another player: every number of this one scaled by a random factor in [1 − spread, 1 + spread]
        (the bias shifted by as much); for training, so the model does not learn one simulated person."""
        changes = {f.name: getattr(self, f.name) * rng.uniform(1 - spread, 1 + spread)
                   for f in fields(self) if f.name != "keep_bias"}
        changes["keep_bias"] = self.keep_bias + rng.uniform(-spread, spread) * 4
        changes["bar_change"] = min(changes["bar_change"], 1.0)
        return replace(self, **changes)


@dataclass(frozen=True)
class Keys:
    """A keyboard player comping along: bass on the kick, chords in one of three rhythms."""

    bass_keep: float = 0.75       # share of kick hits the left hand plays
    p_stride: float = 0.0         # per loop with a backbeat: a stride left hand instead (bass on 1 and 3,
                                  # chords on the snare's 2 and 4: every beat low; training's --p-stride)
    p_whole: float = 0.0          # per loop: a left hand of whole or half notes (bass on 1, or on 1 and 3)
                                  # whatever the kick plays, as under a ballad; training's --p-whole
    p_double: float = 0.0         # per loop: the left hand doubles most chords as well (nearly every step
                                  # low, as a comp played with both hands); training's --p-double
    double_share: float = 0.8     # … each chord's chance of a bass note under it
    p_stabs: float = 0.35         # right-hand rhythm: chords on the snare hits …
    p_pulse: float = 0.30         # … a steady pulse (quarters or eighths) …
    p_arpeggio: float = 0.0       # … a broken chord in sixteenths (training's --p-arpeggio) …
    arpeggio_fill: tuple[float, float] = (0.5, 1.0)   # share of the sixteenths it plays (per loop; every beat)
    arpeggio_spread: float = 0.3  # note-to-note velocity spread, before ``accent`` (0.12 in the groove)
    hold_steps: tuple[int, ...] = (2, 3, 4, 6, 8)  # … or the hat line with held chords (otherwise)
    chord_notes: tuple[int, int] = (2, 4)  # notes per chord (the groove hears the loudest)
    p_push: float = 0.35          # per loop: beats 1 and 3 pushed early (anticipations)
    p_late: float = 0.2           # per loop: the part enters late, off the bar line
    level: float = 0.6
    level_sd: float = 0.08
    accent: float = 0.4
    velocity_noise: float = 0.08
    roll_sd: float = 0.05         # spread of a chord's notes, steps
    timing_noise: float = 0.09    # per chord, steps
    push_sd: float = 0.05


def _hand_parts(patterns: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One hand's part: hit [B,32] where any of its voices hits, with the loudest one's velocity and offset."""
    hits = (patterns[..., HIT] > 0.5) & mask
    loud = np.where(hits, patterns[..., VELOCITY], -1.0)
    idx = loud.argmax(-1)[..., None]
    vel = np.take_along_axis(patterns[..., VELOCITY], idx, -1)[..., 0]
    off = np.take_along_axis(patterns[..., OFFSET], idx, -1)[..., 0]
    hit = hits.any(-1)
    return hit, vel * hit, off * hit


def _place(b: int, step: np.ndarray, pos: np.ndarray, vel: np.ndarray, hit: np.ndarray,
           low: np.ndarray | None = None, one_sided_known: bool = False) -> np.ndarray:
    """Grooves [B,32,3] from hits at fractional positions (wrapping round the loop); two landing on
    one step: the louder wins. With ``low`` (which hits the low hand played, like ``hit``), a fourth
    channel: the register as the box hears it (`as_heard`: +1 where a low hit landed, −1 high)."""
    groove = np.zeros((b, STEPS, 3 if low is None else 4), np.float32)
    pos = np.mod(pos + 0.5, STEPS) - 0.5  # the loop: a hit before its downbeat is the end of the last pass
    new_step = np.clip(np.floor(pos + 0.5).astype(int), 0, STEPS - 1)
    off = np.clip(pos - new_step, -0.5, 0.4999)
    rows = np.broadcast_to(np.arange(b)[:, None], step.shape)
    order = np.argsort(np.where(hit, vel, -1.0), axis=None, kind="stable")  # quiet first, loud overwrite
    r, s, h = rows.ravel()[order], new_step.ravel()[order], hit.ravel()[order]
    v, o = vel.ravel()[order], off.ravel()[order]
    groove[r[h], s[h], HIT] = 1.0
    groove[r[h], s[h], VELOCITY] = v[h]
    groove[r[h], s[h], OFFSET] = o[h]
    if low is not None:
        lo = h & low.ravel()[order]
        groove[r[lo], s[lo], 3] = 1.0
        groove = as_heard(groove, one_sided_known)
    return groove


def as_heard(grooves: np.ndarray, one_sided_known: bool = False) -> np.ndarray:
    """Grooves [B,32,4] whose fourth channel marks the low steps (1) as the box gives the register to
    a model (appliance.core.groove.Groove.model_input): +1 low, −1 high, 0 where nothing landed; none
    at all (0, unknown) where every hit step is low or none is, unless ``one_sided_known`` (training:
    then "unknown" is only the grooves blanked on purpose, whatever the drummer played; the box never
    sends a one-sided register). In place; the same again if repeated."""
    hit: np.ndarray = grooves[..., HIT] > 0.5
    low: np.ndarray = hit & (grooves[..., 3] > 0.5)
    two_sided: np.ndarray = low.any(-1) & (hit & ~low).any(-1)
    heard = two_sided | one_sided_known
    grooves[..., 3] = np.where(heard[..., None] & hit, np.where(low, 1.0, -1.0), 0.0)
    return grooves


def _loop_mean(values: np.ndarray, hit: np.ndarray) -> np.ndarray:
    n = np.maximum(hit.sum(-1, keepdims=True), 1)
    return (values * hit).sum(-1, keepdims=True) / n


def hands_grooves(patterns: np.ndarray, rng: np.random.Generator, cfg: Hands = Hands(),
                  register: bool = False, one_sided_known: bool = False) -> np.ndarray:
    """Grooves [B,32,3] a person tapping these patterns [B,32,9,3] with two hands would give
    ([B,32,4] with ``register``: where the low hand landed)."""
    b = len(patterns)
    steps = np.broadcast_to(np.arange(STEPS), (b, STEPS))
    hits, vels, poss = [], [], []
    level = rng.normal(cfg.level, cfg.level_sd, (b, 1))
    push = rng.normal(0.0, cfg.push_sd, (b, 1))
    for mask, bias in ((LOW_MASK, cfg.low_bias), (~LOW_MASK, 0.0)):
        hit, vel, off = _hand_parts(patterns, mask)
        rel = vel - _loop_mean(vel, hit)
        logit = cfg.keep_bias + bias + cfg.keep_strength * STRENGTH + cfg.keep_loudness * rel
        # the same choice in both bars: a person taps a part, not a coin toss per hit
        draw = np.tile(rng.random((b, STEPS_PER_BAR)), (1, STEPS // STEPS_PER_BAR))
        draw = np.where(rng.random((b, STEPS)) < cfg.bar_change, rng.random((b, STEPS)), draw)
        keep = hit & (draw < 1.0 / (1.0 + np.exp(-logit)))
        # never drop a hand's whole part: its strongest, loudest hit stays
        lost = hit.any(-1) & ~keep.any(-1)
        best = np.argmax(np.where(hit, STRENGTH + vel, -np.inf), axis=-1)
        keep[lost, best[lost]] = True
        hits.append(keep)
        accent = vel - _loop_mean(vel, keep)  # the drummer's accents against what this hand plays
        vels.append(level + cfg.accent * accent + rng.normal(0.0, cfg.velocity_noise, (b, STEPS)))
        poss.append(steps + cfg.timing_keep * off + push + rng.normal(0.0, cfg.timing_noise, (b, STEPS)))
    # a stray hit now and then on an empty eighth
    empty = ~(hits[0] | hits[1]) & (STRENGTH >= 1.0)
    extra = empty & (rng.random((b, STEPS)) < cfg.extra)
    hits[1] = hits[1] | extra
    vels[1] = np.where(extra, level - 0.1 + rng.normal(0.0, cfg.velocity_noise, (b, STEPS)), vels[1])
    hit = np.concatenate(hits, 1)
    vel = np.clip(np.concatenate(vels, 1), 0.03, 1.0)
    pos = np.concatenate(poss, 1)
    kicks = patterns[..., KICK, HIT] > 0.5   # the low hand's taps on the kick's steps (not its toms)
    low = np.concatenate([kicks, np.zeros_like(hits[1])], 1) if register else None
    return _place(b, np.concatenate([steps, steps], 1), pos, vel, hit, low, one_sided_known)


def _right_hand(patterns: np.ndarray, rng: np.random.Generator, cfg: Keys) -> tuple[np.ndarray, np.ndarray]:
    """Chord onsets [B,32] and the drummer's velocity under each: stabs, a pulse, an arpeggio, or
    the held hat line."""
    b = len(patterns)
    hits = patterns[..., HIT] > 0.5
    vel_all = patterns[..., VELOCITY]
    snare = VOICES.index("snare")
    high = [VOICES.index(v) for v in ("closed_hat", "open_hat", "ride")]
    steps = np.arange(STEPS)
    rhythm = rng.random(b)
    stabs = rhythm < cfg.p_stabs
    pulse = (rhythm >= cfg.p_stabs) & (rhythm < cfg.p_stabs + cfg.p_pulse)
    arpeggio = (rhythm >= cfg.p_stabs + cfg.p_pulse) & (rhythm < cfg.p_stabs + cfg.p_pulse + cfg.p_arpeggio)
    held = ~stabs & ~pulse & ~arpeggio
    chords = np.zeros((b, STEPS), bool)
    chord_vel = np.zeros((b, STEPS))
    chords[stabs] = hits[stabs, :, snare]
    chord_vel[stabs] = vel_all[stabs, :, snare]
    every = np.where(rng.random(b) < 0.5, 4, 2)
    chords[pulse] = (steps[None, :] % every[pulse, None]) == 0
    chord_vel[pulse] = 0.6
    if arpeggio.any():   # (no draws otherwise: the fixed validation and test sets stay as they were)
        n = int(arpeggio.sum())
        fill = rng.uniform(*cfg.arpeggio_fill, (n, 1))
        chords[arpeggio] = (steps[None, :] % STEPS_PER_BEAT == 0) | (rng.random((n, STEPS)) < fill)
        chord_vel[arpeggio] = 0.6 + rng.normal(0.0, cfg.arpeggio_spread, (n, STEPS))
    line = hits[..., high].any(-1) | hits[..., snare]
    for i in np.flatnonzero(held):  # the hat line, each chord held for a while
        hold = int(rng.choice(cfg.hold_steps))
        free_at = 0
        for s in np.flatnonzero(line[i]):
            if s >= free_at:
                chords[i, s] = True
                chord_vel[i, s] = vel_all[i, s, high + [snare]].max()
                free_at = s + hold
    return chords, chord_vel


def _stride_left_hand(hits: np.ndarray) -> np.ndarray:
    """[B]: the patterns a stride left hand fits: the snare on at least three of the loop's four 2s and 4s."""
    return hits[:, 4::8, VOICES.index("snare")].sum(-1) >= 3


def keys_grooves(patterns: np.ndarray, rng: np.random.Generator, cfg: Keys = Keys(),
                 register: bool = False, one_sided_known: bool = False) -> np.ndarray:
    """Grooves [B,32,3] a keyboard player comping along with these patterns [B,32,9,3] would give
    ([B,32,4] with ``register``: where the left hand's bass notes landed)."""
    b = len(patterns)
    hits = patterns[..., HIT] > 0.5
    vel_all = patterns[..., VELOCITY]
    kick = VOICES.index("kick")
    steps = np.arange(STEPS)
    level = rng.normal(cfg.level, cfg.level_sd, (b, 1))
    push = rng.normal(0.0, cfg.push_sd, (b, 1))

    bass = hits[..., kick] & (rng.random((b, STEPS)) < cfg.bass_keep)
    bass_vel = np.where(bass, vel_all[..., kick], 0.0)
    if cfg.p_stride > 0:   # (no draws otherwise: the fixed validation and test sets stay as they were)
        stride = _stride_left_hand(hits) & (rng.random(b) < cfg.p_stride)
        bass[stride] = (steps % 8 == 0) | (hits[stride, :, VOICES.index("snare")] & (steps % 8 == 4))
        bass_vel[stride] = np.where(bass[stride], 0.6, 0.0)
    if cfg.p_whole > 0:    # (no draws otherwise, as above)
        whole = rng.random(b) < cfg.p_whole
        every = np.where(rng.random(b) < 0.5, 16, 8)[whole, None]
        bass[whole] = (steps[None, :] % every) == 0
        bass_vel[whole] = np.where(bass[whole], 0.6, 0.0)
    chords, chord_vel = _right_hand(patterns, rng, cfg)
    if cfg.p_double > 0:   # (no draws otherwise, as above)
        double = rng.random(b) < cfg.p_double
        bass[double] |= chords[double] & (rng.random((int(double.sum()), STEPS)) < cfg.double_share)
        bass_vel[double] = np.where(bass[double], np.maximum(bass_vel[double], 0.6), 0.0)
    # a chord's notes: the loudest of 2–4 slightly different velocities, rolled a little
    n_notes = rng.integers(cfg.chord_notes[0], cfg.chord_notes[1] + 1, (b, 1))
    noise = rng.normal(0.0, cfg.velocity_noise, (b, STEPS, cfg.chord_notes[1]))
    used = np.arange(cfg.chord_notes[1])[None, None, :] < n_notes[..., None]
    chord_loudest = np.where(used, noise, -np.inf).max(-1)
    roll = rng.normal(0.0, cfg.roll_sd, (b, STEPS))

    def touch(vel: np.ndarray, hit: np.ndarray) -> np.ndarray:
        return level + cfg.accent * (vel - _loop_mean(vel, hit))

    vel = np.concatenate([touch(bass_vel, bass) + rng.normal(0.0, cfg.velocity_noise, (b, STEPS)),
                          touch(chord_vel, chords) + chord_loudest], 1)
    pos = np.concatenate([steps + push + rng.normal(0.0, cfg.timing_noise, (b, STEPS)),
                          steps + push + roll + rng.normal(0.0, cfg.timing_noise, (b, STEPS))], 1)
    hit = np.concatenate([bass, chords], 1)
    # anticipations: what falls on beat 1 or 3 comes an eighth or a sixteenth early
    pushed = rng.random(b) < cfg.p_push
    early = np.where(rng.random(b) < 0.5, 2.0, 1.0)
    on_13 = np.tile((steps % 8) == 0, 2)[None, :]
    pos = pos - np.where(pushed[:, None] & on_13 & hit, early[:, None], 0.0)
    # a late entry: nothing before an off-bar step in the first bar
    late = rng.random(b) < cfg.p_late
    start = rng.choice([1, 2, 3, 5, 6, 7], b)
    hit = hit & ~(late[:, None] & (pos >= -0.5) & (pos < start[:, None] - 0.5))
    # a groove that lost everything keeps the bass (or the chords)
    empty = ~hit.any(-1)
    hit[empty] = np.concatenate([hits[empty, :, kick], chords[empty]], 1)
    low = np.concatenate([np.ones_like(bass), np.zeros_like(chords)], 1) if register else None
    return _place(b, np.concatenate([np.broadcast_to(steps, (b, STEPS))] * 2, 1), pos,
                  np.clip(vel, 0.03, 1.0), hit, low, one_sided_known)


def groove_stats(grooves: np.ndarray) -> dict[str, float]:
    """Hits per 2 bars, velocity mean and SD, offset SD (steps) over every hit of these grooves."""
    hit = grooves[..., HIT] > 0.5
    return {"hits": float(hit.sum(-1).mean()),
            "velocity_mean": float(grooves[..., VELOCITY][hit].mean()),
            "velocity_sd": float(grooves[..., VELOCITY][hit].std()),
            "offset_sd": float(grooves[..., OFFSET][hit].std())}


#: a keyboard player who only plays even sixteenths (the box's hardest comping: every step heard, no accents)
ARPEGGIOS = Keys(p_stabs=0.0, p_pulse=0.0, p_arpeggio=1.0)


def human_set(patterns: np.ndarray, kind: str, seed: int, register: bool = False) -> np.ndarray:
    """The fixed simulated human input for these patterns: kind 'hands', 'keys' or 'arpeggios'
    (with ``register``, the low hand's steps as a fourth channel)."""
    rng = np.random.default_rng(seed)
    if kind == "hands":
        return hands_grooves(patterns, rng, register=register)
    if kind == "keys":
        return keys_grooves(patterns, rng, register=register)
    if kind == "arpeggios":
        return keys_grooves(patterns, rng, ARPEGGIOS, register=register)
    raise ValueError(f"kind must be 'hands', 'keys' or 'arpeggios', got {kind!r}")


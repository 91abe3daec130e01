"""The grid: Groove, Pattern, the drum voices, and quantising timed notes onto the 2-bar loop."""
from __future__ import annotations

from dataclasses import dataclass, field
import math

import numpy as np

STEPS = 32  #: sixteenth-note steps in the 2-bar loop
STEPS_PER_BEAT = 4
STEPS_PER_BAR = 16
BARS = STEPS // STEPS_PER_BAR

#: Voice order everywhere (GMD's reduced mapping).
VOICES: tuple[str, ...] = (
    "kick", "snare", "closed_hat", "open_hat", "low_tom", "mid_tom", "high_tom", "crash", "ride",
)
#: Default General MIDI note for each voice, in VOICES order.
GM_NOTES: tuple[int, ...] = (36, 38, 42, 46, 43, 47, 50, 49, 51)
#: General MIDI's pedal hi-hat: the closed hat played with the foot (under the ride or crash).
GM_PEDAL_HAT = 44
NUM_VOICES = len(VOICES)

HIT, VELOCITY, OFFSET = 0, 1, 2  #: indices of the last axis of a Groove or Pattern
LOW = 3   #: the register's index in a model's 4-channel groove (Groove.model_input)
#: model.json's ``inputs.encoder.register`` for a model that hears the register as +1 low, −1 high,
#: 0 nothing (session 57 on); a 4-channel card without it heard 1 low, 0 otherwise
SIGNED = "signed"


def _frozen(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    out = np.array(array, dtype=np.float32, copy=True)
    if out.shape != shape:
        raise ValueError(f"expected shape {shape}, got {out.shape}")
    out.flags.writeable = False
    return out


@dataclass(frozen=True, eq=False)
class Groove:
    """What the keyboard played: STEPS × (hit 0/1, velocity 0..1, offset −0.5..0.5 of a step), and
    its register: ``low`` [STEPS], 1 where a low note (the left hand's, below ``loop.split_note``)
    landed (0 where nothing did)."""

    steps: np.ndarray
    low: np.ndarray = field(default_factory=lambda: np.zeros(STEPS, np.float32))

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", _frozen(self.steps, (STEPS, 3)))
        low = np.asarray(self.low, np.float32)
        object.__setattr__(self, "low", _frozen((low > 0.5) & (self.steps[:, HIT] > 0.5), (STEPS,)))

    @classmethod
    def empty(cls) -> "Groove":
        return cls(np.zeros((STEPS, 3), np.float32))

    @property
    def is_empty(self) -> bool:
        return not bool(self.steps[:, HIT].any())

    @property
    def hits(self) -> int:
        return int(self.steps[:, HIT].sum())

    @property
    def two_handed(self) -> bool:
        """Some of its notes are low and some high: its register says something."""
        hit = self.steps[:, HIT] > 0.5
        return bool((self.low > 0).any() and (hit & (self.low == 0)).any())

    def with_steps(self, steps: np.ndarray) -> "Groove":
        """The same groove's register over new steps (a step no longer played loses it; a groove
        all on one side of the split keeps none: the steps a listener adds do not make it two-handed)."""
        return Groove(steps, self.low if self.two_handed else np.zeros(STEPS, np.float32))

    def model_input(self, channels: int, signed: bool = True) -> np.ndarray:
        """[STEPS, channels]: the steps, and with 4 the register: +1 where a low note landed, −1
        where only high ones did, 0 where nothing did (``signed``; otherwise 1 low, 0 else, as a
        model exported before session 57 heard it). A groove all on one side of the split (a pad
        player, one hand) has no register: it is heard as 0 everywhere, as unknown (not as "all
        high", which a model would hear as "no kick here")."""
        if channels == 3:
            return self.steps
        register: np.ndarray = np.zeros(STEPS, np.float32)
        if self.two_handed:
            high = -1.0 if signed else 0.0
            register = np.where(self.steps[:, HIT] > 0.5, np.where(self.low > 0, 1.0, high), 0.0).astype(np.float32)
        return np.concatenate([self.steps, register[:, None]], axis=1)   # (the register at LOW)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Groove) and np.array_equal(self.steps, other.steps)
                and np.array_equal(self.low, other.low))

    def __hash__(self) -> int:
        return hash(self.steps.tobytes() + self.low.tobytes())

    def grid(self) -> str:
        """One line of ASCII: the groove's velocity per step, bars marked with |."""
        return "groove     " + _row(self.steps[:, HIT], self.steps[:, VELOCITY])


@dataclass(frozen=True, eq=False)
class Pattern:
    """What the drummer plays: STEPS × voices × (hit 0/1, velocity 0..1, offset −0.5..0.5), and
    optionally a fill bar (STEPS_PER_BAR × voices × 3) to play where a phrase ends
    (appliance.core.fills makes it; appliance.core.phrase plays it)."""

    steps: np.ndarray
    fill: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", _frozen(self.steps, (STEPS, NUM_VOICES, 3)))
        if self.fill is not None:
            object.__setattr__(self, "fill", _frozen(self.fill, (STEPS_PER_BAR, NUM_VOICES, 3)))

    @classmethod
    def empty(cls) -> "Pattern":
        return cls(np.zeros((STEPS, NUM_VOICES, 3), np.float32))

    @property
    def hits(self) -> int:
        return int(self.steps[:, :, HIT].sum())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Pattern) or not np.array_equal(self.steps, other.steps):
            return False
        if self.fill is None or other.fill is None:
            return self.fill is None and other.fill is None
        return np.array_equal(self.fill, other.fill)

    def __hash__(self) -> int:
        return hash(self.steps.tobytes() + (b"" if self.fill is None else self.fill.tobytes()))

    def grid(self) -> str:
        """ASCII grid, one row a voice, velocity shown by the character ( .-+*# soft to loud)."""
        rows = [f"{name:<10} " + _row(self.steps[:, v, HIT], self.steps[:, v, VELOCITY])
                for v, name in enumerate(VOICES)]
        ruler = " " * 11 + "|".join(
            "".join(str(1 + s // STEPS_PER_BEAT) if s % STEPS_PER_BEAT == 0 else " "
                    for s in range(STEPS_PER_BAR))
            for _ in range(BARS)) + "|"
        return "\n".join([ruler, *rows])


_SHADES = ".-+*#"


def _row(hits: np.ndarray, velocities: np.ndarray) -> str:
    cells = []
    for step in range(STEPS):
        if step and step % STEPS_PER_BAR == 0:
            cells.append("|")
        if hits[step] > 0.5:
            shade = min(len(_SHADES) - 1, int(float(velocities[step]) * len(_SHADES)))
            cells.append(_SHADES[max(shade, 0)])
        else:
            cells.append(" ")
    return "".join(cells) + "|"


def quantise(position: float) -> tuple[int, float]:
    """Absolute position in steps → (step in the loop, offset in [−0.5, 0.5)).

    The nearest 16th wins; a note just before the loop point lands on step 0 with a
    negative offset.
    """
    nearest = math.floor(position + 0.5)
    offset = position - nearest
    # Guard the half-open interval against floating-point edge cases.
    if offset >= 0.5:
        nearest, offset = nearest + 1, offset - 1.0
    elif offset < -0.5:
        nearest, offset = nearest - 1, offset + 1.0
    return nearest % STEPS, float(offset)


def loop_pass(position: float) -> int:
    """Which pass of the loop a note at this position belongs to (notes rounding onto the
    next loop's step 0 belong to the next pass)."""
    return math.floor((position + 0.5) / STEPS)

"""What a button, a pad or a knob does to the engine, shared by GPIO and MIDI-mapped controls.

Actions (by name, see :data:`ACTIONS`): freeze (toggle), clear, resample,
prior (from scratch), tap (tap tempo), end (the song: a last hit on the next bar line, then the
box waits for the next song), scene_N (recall), store_scene_N, style_NAME (a style of
:mod:`appliance.core.styles`; pressed again while it plays: none).  Knobs
(:data:`KNOBS`) take a position 0..1 (a pot or a CC) or a number of detents
(an encoder): density 0..1, variation (temperature) 0..2, humanise 0..2, velocity_scale 0..2,
tempo over ``gpio.tempo_range`` bpm (internal clock only).

Knob changes go to ``engine.set_controls``; the engine regenerates and the player swaps the
new pattern in at its next step/bar boundary, so turning a knob never clicks or stutters.
Changes smaller than one part in 256 of the range are dropped (pot noise would otherwise ask
for a regeneration every few milliseconds).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Protocol

from appliance.core.clock import RateLimitedLog
from appliance.core.engine import Engine
from appliance.core.styles import STYLES
from appliance.core.tap import TapTempo
from appliance.core.transport import Transport

log = logging.getLogger(__name__)

#: Things a button, a pad or a note can do.
ACTIONS: tuple[str, ...] = (
    "freeze", "clear", "resample", "prior", "tap", "end",
    *(f"scene_{i}" for i in range(1, 9)), *(f"store_scene_{i}" for i in range(1, 9)),
    *(f"style_{name}" for name in STYLES),
)
#: Things a knob (pot, encoder or CC) can turn.
KNOBS: tuple[str, ...] = ("density", "variation", "tempo", "humanise", "velocity_scale")

#: knob → (Controls field, low, high); tempo is handled apart.
KNOB_FIELDS: dict[str, tuple[str, float, float]] = {
    "density": ("density", 0.0, 1.0),
    "variation": ("temperature", 0.0, 2.0),
    "humanise": ("humanise", 0.0, 2.0),
    "velocity_scale": ("velocity_scale", 0.0, 2.0),
}
DETENTS_PER_SWEEP = 32   #: encoder detents from one end of a knob's range to the other
DEADBAND = 1.0 / 256     #: smaller knob moves than this (0..1) are ignored
SAID_AGAIN_S = 1.0       #: a line a pad or a client can trigger is said again after this long (else the 1st, 10th, 100th ... time)


class SceneSlots(Protocol):
    """What the actions need of the scene store (``appliance.box.scenes.Scenes``): how many
    slots there are, and storing and recalling the engine's music in one."""

    slots: int

    def store(self, slot: int, engine: Engine) -> object: ...

    def recall(self, slot: int, engine: Engine) -> bool: ...


class Actions:
    """The box's verbs, called from GPIO callbacks, the MIDI map and the control socket."""

    def __init__(self, engine: Engine, transport: Transport, scenes: SceneSlots | None = None,
                 tempo_range: tuple[float, float] = (60.0, 180.0),
                 clock: Callable[[], float] = time.monotonic, follows_external_clock: bool = False) -> None:
        self.engine = engine
        self.transport = transport
        self.scenes = scenes
        self.tempo_range = (float(tempo_range[0]), float(tempo_range[1]))
        self.clock = clock
        self.follows_external_clock = follows_external_clock
        self.tap_tempo = TapTempo()
        self.on_action: list[Callable[[str], None]] = []
        self._lock = threading.RLock()
        self._warned_tempo = False
        self._news = RateLimitedLog(log, every_s=SAID_AGAIN_S)   # a pad hammered is said now and then

    # -- buttons

    def do(self, action: str) -> None:
        """Run an action by name (``freeze``, ``scene_2``, ``store_scene_1`` ...)."""
        if action.startswith("store_scene_"):
            self.store_scene(int(action.rsplit("_", 1)[1]))
        elif action.startswith("scene_"):
            self.recall_scene(int(action.rsplit("_", 1)[1]))
        elif action.startswith("style_"):
            self.engine.style(action.removeprefix("style_"))
        elif action in ("freeze", "clear", "resample", "prior", "tap", "end"):
            getattr(self, action)()
        else:
            raise ValueError(f"unknown action {action!r}")
        for callback in list(self.on_action):
            try:
                callback(action)
            except Exception:
                log.exception("controls: on_action callback failed")

    def freeze(self) -> bool:
        return self.engine.freeze()

    def clear(self) -> None:
        self.engine.clear()

    def resample(self) -> None:
        self.engine.resample()

    def prior(self) -> None:
        self.engine.prior()

    def end(self) -> bool:
        return self.engine.end()

    def tap(self) -> None:
        now = self.clock()
        with self._lock:
            ignored = self.tap_tempo.ignored
            bpm = self.tap_tempo.tap(now)
            bounced = self.tap_tempo.ignored > ignored
        if bounced:
            self._news.note("tap bounce", logging.INFO, "controls: a tap right after the last one "
                            "was taken for a double trigger and ignored (the pad or button bounces)")
        elif bpm is not None and self.set_bpm(bpm, now):
            self._news.note("tap", logging.INFO, "controls: tap tempo %.1f BPM", bpm)
        self._news.flush()

    def recall_scene(self, slot: int) -> bool:
        if self.scenes is None or not 1 <= slot <= self.scenes.slots:
            self._no_scene(slot)
            return False
        return bool(self.scenes.recall(slot, self.engine))

    def store_scene(self, slot: int) -> bool:
        if self.scenes is None or not 1 <= slot <= self.scenes.slots:
            self._no_scene(slot)
            return False
        self.scenes.store(slot, self.engine)
        return True

    def _no_scene(self, slot: int) -> None:
        self._news.note(f"no scene {slot}", logging.INFO, "controls: no scene %d (state.scenes sets how many)", slot)
        self._news.flush()

    # -- knobs

    def knob_value(self, name: str) -> float:
        """Where the knob's parameter stands now, as 0..1 of its range."""
        if name == "tempo":
            low, high = self.tempo_range
            return min(1.0, max(0.0, (float(self.transport.bpm) - low) / (high - low)))
        field, low, high = KNOB_FIELDS[name]
        return (float(getattr(self.engine.controls, field)) - low) / (high - low)

    def knob(self, name: str, position: float) -> bool:
        """Set a knob to ``position`` 0..1 of its range; False when the move is too small."""
        position = min(1.0, max(0.0, float(position)))
        with self._lock:
            if abs(position - self.knob_value(name)) < DEADBAND:
                return False
            if name == "tempo":
                low, high = self.tempo_range
                return self.set_bpm(round(low + position * (high - low), 1), self.clock())
            field, low, high = KNOB_FIELDS[name]
            value = low + position * (high - low)
            self.engine.set_controls(**{field: round(value, 4)})
            return True

    def nudge(self, name: str, detents: int) -> bool:
        """Turn a knob by encoder detents (one sweep is :data:`DETENTS_PER_SWEEP`); tempo
        moves 1 bpm a detent."""
        if name == "tempo":
            with self._lock:
                low, high = self.tempo_range
                bpm = min(high, max(low, round(float(self.transport.bpm)) + detents))
                return self.set_bpm(bpm, self.clock())
        return self.knob(name, self.knob_value(name) + detents / DETENTS_PER_SWEEP)

    def set_bpm(self, bpm: float, now: float) -> bool:
        if self.follows_external_clock or self.transport.source == "external":
            if not self._warned_tempo:
                log.info("controls: tempo follows the MIDI clock in; the tempo knob and tap "
                         "are ignored (tempo.clock: internal to use them)")
                self._warned_tempo = True
            return False
        if abs(float(self.transport.bpm) - bpm) < 0.05:
            return False
        self.transport.set_bpm(bpm, now)
        log.debug("tempo %.1f bpm", bpm)
        return True

"""Scenes: a few slots of groove + z noise + knobs, stored and recalled from buttons or MIDI."""
from __future__ import annotations

from dataclasses import dataclass, field
import logging
import threading
from typing import Any, Callable, Mapping

import numpy as np

from appliance.box.codec import (StateError, controls_from, controls_json, controls_obj, eps_from,
                                 flag_from, groove_from, groove_json, low_json, pattern_from, pattern_json)
from appliance.core.actions import SAID_AGAIN_S
from appliance.core.clock import RateLimitedLog
from appliance.core.engine import Engine
from appliance.core.groove import Groove, Pattern

log = logging.getLogger("appliance.box.state")


@dataclass(frozen=True)
class Scene:
    """One slot: a groove, its z noise, the knobs and the prior flag; and, when it was stored
    while frozen, the pattern being held (played back as it is)."""

    groove: Groove
    eps: tuple[float, ...] | None = None
    controls: Mapping[str, Any] = field(default_factory=dict)
    prior: bool = False
    pattern: Pattern | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"groove": groove_json(self.groove), "eps": self.eps,
                               "controls": dict(self.controls), "prior": self.prior}
        if self.groove.low.any():
            out["low"] = low_json(self.groove)
        if self.pattern is not None:
            out["pattern"] = pattern_json(self.pattern)
        return out

    @classmethod
    def from_json(cls, data: Any) -> "Scene":
        if not isinstance(data, dict):
            raise StateError("a scene is not a mapping")
        return cls(groove=groove_from(data.get("groove"), data.get("low")), eps=eps_from(data.get("eps")),
                   controls=controls_from(data.get("controls")),
                   prior=flag_from(data.get("prior", False), "prior"),
                   pattern=pattern_from(data.get("pattern")))

    def apply(self, engine: Engine) -> None:
        """Recall: the prior flag is set explicitly (False too), so a scene stored from the
        groove is not played from the prior because the box was on the prior when recalled."""
        engine.restore(groove=self.groove,
                       eps=None if self.eps is None else np.asarray(self.eps, np.float32),
                       controls=controls_obj(self.controls), prior=self.prior,
                       pattern=self.pattern)


class Scenes:
    """A few slots of groove + eps + knobs, stored and recalled from buttons or MIDI."""

    def __init__(self, slots: int = 4, saved: Mapping[int, Scene] | None = None) -> None:
        self.slots = slots
        self._lock = threading.Lock()
        # slots above ``slots`` are kept, out of reach, not dropped: a smaller ``state.scenes``
        # set back gives them back
        self._scenes: dict[int, Scene] = {k: v for k, v in (saved or {}).items() if k >= 1}
        beyond = sorted(k for k in self._scenes if k > slots)
        if beyond:
            log.warning("scenes %s kept but out of reach while state.scenes is %d: set it to %d to "
                        "recall them", ", ".join(map(str, beyond)), slots, beyond[-1])
        self.on_change: list[Callable[[], None]] = []
        self._news = RateLimitedLog(log, every_s=SAID_AGAIN_S)   # a pad hammered is said now and then

    def _check(self, slot: int) -> None:
        if not 1 <= slot <= self.slots:
            raise ValueError(f"scene {slot} is not in 1..{self.slots}")

    def store(self, slot: int, engine: Engine) -> Scene:
        self._check(slot)
        scene = Scene(groove=engine.groove, eps=tuple(float(x) for x in engine.eps),
                      controls=controls_json(engine.controls),
                      prior=bool(engine.from_prior),
                      pattern=engine.held_pattern)
        with self._lock:
            self._scenes[slot] = scene
        self._say(f"scene {slot} stored", "scene %d stored (%d groove hits)", slot, scene.groove.hits)
        for callback in list(self.on_change):
            callback()
        return scene

    def recall(self, slot: int, engine: Engine) -> bool:
        self._check(slot)
        with self._lock:
            scene = self._scenes.get(slot)
        if scene is None:
            self._say(f"scene {slot} empty", "scene %d is empty; nothing recalled", slot)
            return False
        scene.apply(engine)
        self._say(f"scene {slot} recalled", "scene %d recalled", slot)
        return True

    def _say(self, kind: str, text: str, *args: object) -> None:
        self._news.note(kind, logging.INFO, text, *args)
        self._news.flush()

    def get(self, slot: int) -> Scene | None:
        with self._lock:
            return self._scenes.get(slot)

    def snapshot(self) -> dict[int, Scene]:
        with self._lock:
            return dict(self._scenes)

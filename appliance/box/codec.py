"""JSON for the music the box keeps (state file, scenes): grooves, patterns, z noise, knobs.

Readers check what they read: a value out of range raises :class:`StateError`, never a
half-built groove.
"""
from __future__ import annotations

from dataclasses import asdict, fields
import logging
import math
from typing import Any, Mapping

import numpy as np

from appliance.core import styles
from appliance.core.generator import Controls
from appliance.core.groove import NUM_VOICES, STEPS, STEPS_PER_BAR, Groove, Pattern

log = logging.getLogger("appliance.box.state")


class StateError(Exception):
    """A state file that cannot be used (cut short, corrupt, or not ours)."""


def groove_json(groove: Groove) -> list[list[float]]:
    """Each step's hit, velocity, offset and register (low)."""
    return [[float(x) for x in row] + [float(low)] for row, low in zip(groove.steps, groove.low)]   # float32 → float64 is exact


def groove_from(data: Any) -> Groove:
    if data is None:
        return Groove.empty()
    try:
        steps = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError):
        raise StateError("the groove is not a table of numbers") from None
    if steps.shape not in ((STEPS, 3), (STEPS, 4)) or not np.isfinite(steps).all():
        raise StateError(f"the groove has shape {steps.shape}, not ({STEPS}, 4) (or 3, before the register)")
    low = steps[:, 3] if steps.shape[1] == 4 else np.zeros(STEPS)
    if ((steps[:, 0] < 0) | (steps[:, 0] > 1) | (steps[:, 1] < 0) | (steps[:, 1] > 1)
            | (steps[:, 2] < -0.5) | (steps[:, 2] > 0.5) | (low < 0) | (low > 1)).any():
        raise StateError("the groove has values out of range")
    return Groove(steps[:, :3].astype(np.float32), low.astype(np.float32))


def flag_from(data: Any, what: str) -> bool:
    if not isinstance(data, bool):
        raise StateError(f"{what} is not true/false")
    return data


def pattern_json(pattern: Pattern) -> list[list[list[float]]]:
    """The pattern's 32 steps, then its fill bar's 16 when it has one."""
    rows = pattern.steps if pattern.fill is None else np.concatenate([pattern.steps, pattern.fill])
    return [[[float(x) for x in voice] for voice in step] for step in rows]


def pattern_from(data: Any) -> Pattern | None:
    """A held pattern; one that does not fit is dropped (logged): it is regenerated instead."""
    if data is None:
        return None
    try:
        steps = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError):
        steps = None
    if (steps is None or steps.shape not in ((STEPS, NUM_VOICES, 3), (STEPS + STEPS_PER_BAR, NUM_VOICES, 3))
            or not np.isfinite(steps).all()
            or ((steps[..., 0] < 0) | (steps[..., 0] > 1) | (steps[..., 1] < 0) | (steps[..., 1] > 1)
                | (steps[..., 2] < -0.5) | (steps[..., 2] > 0.5)).any()):
        log.warning("state: the saved held pattern does not fit; it is made again from the groove")
        return None
    steps = steps.astype(np.float32)
    return Pattern(steps[:STEPS], steps[STEPS:] if len(steps) > STEPS else None)


MAX_EPS = 4096        #: z noise values (the model has a few dozen)
MAX_CONTROLS = 64     #: knob entries in a controls mapping


def eps_from(data: Any) -> tuple[float, ...] | None:
    if data is None:
        return None
    if isinstance(data, list) and len(data) > MAX_EPS:
        raise StateError(f"eps has {len(data)} values (at most {MAX_EPS})")
    if not isinstance(data, list) or not data or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
            for x in data):
        raise StateError("eps is not a list of numbers")
    return tuple(float(x) for x in data)


def controls_from(data: Any) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise StateError("controls is not a mapping")
    if len(data) > MAX_CONTROLS:
        raise StateError(f"controls has {len(data)} entries (at most {MAX_CONTROLS})")
    known = _controls_fields()
    out = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in known}
    if "style" in out and out["style"] not in styles.NAMES:
        # names change between versions: a style this one does not offer is none, the rest kept
        log.warning("state: style %.40r is not one this box offers; playing none", out.pop("style"))
    try:
        controls_obj(out)
    except (TypeError, ValueError) as e:
        raise StateError(f"controls: {e}") from None
    return out


def _controls_fields() -> set[str]:
    return {f.name for f in fields(Controls)}


def controls_obj(data: Mapping[str, Any]) -> Controls | None:
    if not data:
        return None
    return Controls(**dict(data))


def controls_json(controls: Controls) -> dict[str, Any]:
    d = asdict(controls)
    if d.get("thresholds") is not None:
        d["thresholds"] = [float(x) for x in d["thresholds"]]
    return d

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
    """Each step's hit, velocity and offset (its register is :func:`low_json`'s, a key of its own,
    so a box from before the register still reads the file)."""
    return [[float(x) for x in row] for row in groove.steps]   # float32 → float64 is exact


def low_json(groove: Groove) -> list[int]:
    """The steps of the groove's register (where a low note landed)."""
    return [int(step) for step in np.flatnonzero(groove.low)]


def groove_from(data: Any, low: Any = None) -> Groove:
    """The groove saved as :func:`groove_json`, and its register as :func:`low_json` (None: none,
    as a file from before the register)."""
    if data is None:
        return Groove.empty()
    try:
        steps = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError):
        raise StateError("the groove is not a table of numbers") from None
    if steps.shape != (STEPS, 3) or not np.isfinite(steps).all():
        raise StateError(f"the groove has shape {steps.shape}, not ({STEPS}, 3)")
    if ((steps[:, 0] < 0) | (steps[:, 0] > 1) | (steps[:, 1] < 0) | (steps[:, 1] > 1)
            | (steps[:, 2] < -0.5) | (steps[:, 2] > 0.5)).any():
        raise StateError("the groove has values out of range")
    return Groove(steps.astype(np.float32), _low_from(low))


def _low_from(data: Any) -> np.ndarray:
    low = np.zeros(STEPS, np.float32)
    if data is None:
        return low
    if not isinstance(data, list) or len(data) > STEPS or not all(
            isinstance(step, int) and not isinstance(step, bool) and 0 <= step < STEPS for step in data):
        raise StateError(f"the groove's register is not a list of steps 0..{STEPS - 1}")
    low[data] = 1.0
    return low


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

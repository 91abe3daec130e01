"""What ``groovebox status | freeze | clear | resample | prior | end | learn | timing`` does: the
control socket's commands, answered from the running box."""
from __future__ import annotations

from dataclasses import asdict
import math
from typing import TYPE_CHECKING, Any, Callable

from appliance.box.diagnose import PortsView, keyboard_problem, why_silent
from appliance.core.groove import HIT, NUM_VOICES, OFFSET, STEPS, VELOCITY, VOICES, Groove, Pattern

if TYPE_CHECKING:
    from appliance.box.service import Service

MESSAGES = {"clear": "overdub cleared", "resample": "new variation", "prior": "playing from scratch",
            "end": "the song ends on the next bar line"}


def control(box: "Service", command: str, request: dict[str, Any]) -> dict[str, Any]:
    """One command from the socket; ValueError (sent back as the error) when it is not one."""
    engine = box.engine
    assert engine is not None
    if command == "status":
        return {"status": status(box)}
    if command == "timing":
        player = box.player
        return {"timing": list(player.timing) if player else [], "clock": "monotonic"}
    if command == "learn":
        if box.controls is None:
            raise ValueError("MIDI learn is not available (controls are off; see the log)")
        return {"message": box.controls.learn(str(request.get("action", "")))}
    if command == "end" and (engine.ended or engine.player.ending is not None or not engine.transport.running):
        return {"message": "the song has ended; the box waits for the next" if engine.ended
                else "an ending is on its way" if engine.player.ending is not None
                else "nothing plays: no song to end"}
    if command in ("freeze", "clear", "resample", "prior", "end"):
        if box.controls is not None:
            box.controls.actions.do(command)
        else:
            buttons: dict[str, Callable[[], object]] = {
                "freeze": engine.freeze, "clear": engine.clear, "resample": engine.resample,
                "prior": engine.prior, "end": engine.end}
            buttons[command]()
        if command == "freeze":
            return {"frozen": engine.frozen}
        return {"message": MESSAGES[command]}
    raise ValueError(f"unknown command {command!r}")


#: the last groove and pattern drawn, by identity: both are immutable and change at most a few
#: times a bar, while ``groovebox monitor`` asks several times a second; every status is
#: built holding the GIL the player needs, so what has not changed is not drawn again.
_drawn: dict[str, tuple[object, Any]] = {}


def _groove_view(groove: Groove) -> tuple[list[list[float]], str]:
    cached = _drawn.get("groove")
    if cached is None or cached[0] is not groove:
        steps = groove.steps
        hits = [[int(s), round(float(steps[s, VELOCITY]), 4), round(float(steps[s, OFFSET]), 4)]
                for s in range(STEPS) if steps[s, HIT] > 0.5]
        cached = _drawn["groove"] = (groove, (hits, groove.grid()))
    return cached[1]


def _pattern_view(pattern: Pattern) -> tuple[list[list[float]], str]:
    cached = _drawn.get("pattern")
    if cached is None or cached[0] is not pattern:
        steps = pattern.steps
        hits = [[int(s), int(v), round(float(steps[s, v, VELOCITY]), 4),
                 round(float(steps[s, v, OFFSET]), 4)]
                for s in range(STEPS) for v in range(NUM_VOICES) if steps[s, v, HIT] > 0.5]
        cached = _drawn["pattern"] = (pattern, (hits, pattern.grid()))
    return cached[1]


def _learn_view(box: "Service") -> dict[str, Any] | None:
    """What ``groovebox learn`` waits on: the action being learnt (None once learnt or timed out)
    and the last binding learnt; None with the controls off."""
    if box.controls is None:
        return None
    midimap = box.controls.midimap
    learning, last = midimap.learn_state()
    return {"learning": learning, "timeout_s": midimap.config.learn_timeout_s,
            "learned": None if last is None else {"action": last.action, "control": last.control, "at": last.at}}


def status(box: "Service") -> dict[str, Any]:
    """Everything ``groovebox status`` shows, as plain JSON values."""
    engine, transport, midi, player = box.engine, box.transport, box.midi, box.player
    assert engine is not None and transport is not None
    now = box.clock()
    position = transport.position(now)
    view = midi.view() if midi is not None else PortsView(usb_off="not started")
    stats = engine.stats()
    if player is not None:   # dropped when queued (the engine's player) or when due (the player thread)
        stats["late_drops"] += player.late_drops
    groove_hits, groove_grid = _groove_view(engine.groove)
    hits, pattern_grid = _pattern_view(engine.pattern)
    settings = engine.settings
    return {
        "running": transport.running,
        "bpm": round(transport.bpm, 3),
        "clock_mode": transport.mode,
        "clock_source": transport.source,
        "clock_counts": {"missed": transport.follower.missed, "extra": transport.follower.extra,
                         "other_input": midi.clocks_ignored if midi is not None else 0},
        "heard_back": midi.heard_back if midi is not None else 0,
        "now": now,
        "position": position,
        "step": int(math.floor(position)) % STEPS,
        "ports": {"inputs": list(view.inputs), "outputs": list(view.outputs)},
        "din": view.din,
        "state": box.autosaver.trouble if box.autosaver is not None else "",
        "frozen": engine.frozen,
        "engine": stats,
        "groove_grid": groove_grid,
        "pattern_grid": pattern_grid,
        "pattern": hits,
        "voices": list(VOICES),
        "notes": list(settings.notes),
        "pedal_hat": settings.pedal_hat,
        "channels": list(settings.channels),
        "output_timing_ms": player.timing_ms() if player else None,
        "realtime": bool(player and player.realtime),
        "inputs_seen": midi.inputs_seen if midi is not None else 0,
        "uptime_s": round(now - box.started_at, 1),
        "groove": groove_hits,
        "controls": {k: v for k, v in asdict(engine.controls).items() if k != "thresholds"},
        "why_silent": why_silent(
            running=transport.running, clock_mode=transport.mode, clock_source=transport.source,
            waiting_for=stats["waiting_for"], frozen=stats["frozen"],
            pattern_hits=stats["pattern_hits"], groove_hits=stats["groove_hits"],
            density=engine.controls.density, ports=view),
        "keyboard": keyboard_problem(view),
        "learn": _learn_view(box),
        "midi": {"api": view.api, "inputs": list(view.input_patterns),
                 "outputs": list(view.output_patterns), "sources": list(view.sources),
                 "destinations": list(view.destinations), "connect": list(view.hints)},
    }

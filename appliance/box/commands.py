"""What ``groovebox status | freeze | clear | resample | prior | learn | timing`` does: the
control socket's commands, answered from the running box."""
from __future__ import annotations

from dataclasses import asdict
import math
from typing import TYPE_CHECKING, Any

from appliance.box.diagnose import PortsView, keyboard_problem, why_silent
from appliance.core.groove import HIT, NUM_VOICES, OFFSET, STEPS, VELOCITY, VOICES

if TYPE_CHECKING:
    from appliance.box.service import Service

MESSAGES = {"clear": "overdub cleared", "resample": "new variation", "prior": "playing from scratch"}


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
    if command in ("freeze", "clear", "resample", "prior"):
        if box.controls is not None:
            box.controls.actions.do(command)
        else:
            {"freeze": engine.freeze, "clear": engine.clear, "resample": engine.resample,
             "prior": engine.prior}[command]()
        if command == "freeze":
            return {"frozen": engine.frozen}
        return {"message": MESSAGES[command]}
    raise ValueError(f"unknown command {command!r}")


def status(box: "Service") -> dict[str, Any]:
    """Everything ``groovebox status`` shows, as plain JSON values."""
    engine, transport, midi, player = box.engine, box.transport, box.midi, box.player
    assert engine is not None and transport is not None
    now = box.clock()
    position = transport.position(now)
    view = midi.view() if midi is not None else PortsView(usb_off="not started")
    stats = engine.stats()
    groove = engine.groove.steps
    pattern = engine.pattern.steps
    hits = [[int(s), int(v), round(float(pattern[s, v, VELOCITY]), 4),
             round(float(pattern[s, v, OFFSET]), 4)]
            for s in range(STEPS) for v in range(NUM_VOICES) if pattern[s, v, HIT] > 0.5]
    settings = engine.settings
    return {
        "running": transport.running,
        "bpm": round(transport.bpm, 3),
        "clock_mode": transport.mode,
        "clock_source": transport.source,
        "now": now,
        "position": position,
        "step": int(math.floor(position)) % STEPS,
        "ports": {"inputs": list(view.inputs), "outputs": list(view.outputs)},
        "din": view.din,
        "frozen": engine.frozen,
        "engine": stats,
        "groove_grid": engine.groove.grid(),
        "pattern_grid": engine.pattern.grid(),
        "pattern": hits,
        "voices": list(VOICES),
        "notes": list(settings.notes),
        "channels": list(settings.channels),
        "output_timing_ms": player.timing_ms() if player else None,
        "realtime": bool(player and player.realtime),
        "inputs_seen": midi.inputs_seen if midi is not None else 0,
        "uptime_s": round(now - box.started_at, 1),
        "groove": [[int(s), round(float(groove[s, VELOCITY]), 4), round(float(groove[s, OFFSET]), 4)]
                   for s in range(STEPS) if groove[s, HIT] > 0.5],
        "controls": {k: v for k, v in asdict(engine.controls).items() if k != "thresholds"},
        "why_silent": why_silent(
            running=transport.running, clock_mode=transport.mode, clock_source=transport.source,
            waiting_for=stats["waiting_for"], frozen=stats["frozen"],
            pattern_hits=stats["pattern_hits"], groove_hits=stats["groove_hits"],
            density=engine.controls.density, ports=view),
        "keyboard": keyboard_problem(view),
        "midi": {"api": view.api, "inputs": list(view.input_patterns),
                 "outputs": list(view.output_patterns), "sources": list(view.sources),
                 "destinations": list(view.destinations), "connect": list(view.hints)},
    }

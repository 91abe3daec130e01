"""SIGHUP: apply a changed config to the running box without dropping the beat.

What the service calls on SIGHUP (``systemctl reload groovebox``)::

    config = appliance.box.reload.reload_file(config_path, config, engine, transport,
                                              controls=controls, autosaver=autosaver)

which loads the file (a broken one is refused: one error line, the running config stays),
applies it with :func:`apply_config` and keeps it as the last good config.

Live (the engine takes them at its next step; the player never stops):
  generator.* → engine.set_controls (only the keys that changed in the file, so a knob
  turned since is left alone); loop.*, player.* → engine.update_settings; tempo.bpm →
  the internal clock (position stays continuous); gpio.*, midi_map.* → the controls are
  rebuilt; state.save_every_s, state.scenes, log_level.
Restart needed (logged as a warning, listed with "(restart)"): model.*, midi.*, din.*,
tempo.clock, tempo.send_clock, state.dir, control.socket, start.* (it is how the box starts).
"""
from __future__ import annotations

from dataclasses import fields, replace
import logging
import os
import time
from typing import Any, Callable

from appliance.box.config import Config, ConfigError, flatten, load, save_last_good
from appliance.box.controls import ControlsHandle
from appliance.box.state import Autosaver
from appliance.core.engine import Engine, EngineSettings
from appliance.core.transport import Transport

log = logging.getLogger(__name__)

RESTART_PREFIXES = ("model.", "midi.", "din.", "tempo.clock", "tempo.send_clock", "state.dir",
                    "control.", "start.")


def needs_restart(key: str) -> bool:
    return key.startswith(RESTART_PREFIXES)


def diff(old: Config, new: Config) -> dict[str, tuple[Any, Any]]:
    a, b = flatten(old), flatten(new)
    return {k: (a[k], b[k]) for k in b if a.get(k) != b[k]}


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def apply_config(new_config: Config, engine: Engine, transport: Transport, *,
                 old: Config | None = None, controls: ControlsHandle | None = None,
                 autosaver: Autosaver | None = None, now: float | None = None) -> list[str]:
    """Apply ``new_config``; returns one line per changed key (``"player.channel: 10 → 11"``,
    ``"model.dir: … (restart)"``).

    ``old`` is the config running now; without it, the config the controls were started (or
    last reloaded) with, else the engine's own state."""
    if old is None and controls is not None:
        old = controls.config
    if old is None:
        old = _baseline(engine, transport, new_config)
    changes = diff(old, new_config)
    lines = []
    for key, (before, after) in changes.items():
        line = f"{key}: {_show(before)} → {_show(after)}"
        if needs_restart(key):
            line += " (restart)"
        lines.append(line)
    restart = [k for k in changes if needs_restart(k)]
    if restart:
        unit = os.environ.get("GROOVEBOX_UNIT")     # the unit names itself; elsewhere (make run) no systemd
        log.warning("reload: %s changed; takes effect after %s", ", ".join(restart),
                    f"`sudo systemctl restart {unit}`" if unit else "a restart of the box (Ctrl-C, then start it again)")

    # the drummer's knobs: only what the file changed
    old_controls, new_controls = old.controls_dict(), new_config.controls_dict()
    control_changes = {k: v for k, v in new_controls.items() if old_controls.get(k) != v}
    if control_changes:
        engine.set_controls(**control_changes)

    # loop and player settings
    old_settings, new_settings = _settings(old), new_config.engine_settings()
    setting_changes = {f.name: getattr(new_settings, f.name) for f in fields(new_settings)
                       if getattr(new_settings, f.name) != getattr(old_settings, f.name)}
    if setting_changes:
        engine.update_settings(**setting_changes)

    # tempo of the internal clock
    if "tempo.bpm" in changes and new_config.tempo.clock != "external":
        transport.set_bpm(new_config.tempo.bpm, time.monotonic() if now is None else now)

    if "log_level" in changes:
        logging.getLogger().setLevel(new_config.log_level.upper())
    if autosaver is not None and "state.save_every_s" in changes:
        autosaver.every_s = new_config.state.save_every_s
    if controls is not None:
        if "state.scenes" in changes and controls.scenes is not None:
            controls.scenes.slots = new_config.state.scenes
        controls.reconfigure(new_config)
    return lines   # said once, by the caller (reload_file)


def reload_file(path: str | os.PathLike[str], running: Config, engine: Engine,
                transport: Transport, *, override: Callable[[Config], Config] | None = None,
                **kw: Any) -> Config:
    """Load ``path`` and apply it over ``running``; returns the config that runs now. A
    broken file is refused (one error line, every problem in it) and ``running`` stays;
    one that applies is kept as the last good config. ``override``: what the command line
    set over the file at the start (``--midi-api``), set over the new file too, so that it is
    no change."""
    try:
        loaded = load(path)
    except ConfigError as e:
        log.error("reload refused, the box keeps its running config: %s", " | ".join(e.problems))
        return running
    new = override(loaded) if override is not None else loaded
    changed = apply_config(new, engine, transport, old=running, **kw)
    save_last_good(loaded)
    log.info("config reloaded from %s: %s", path, "; ".join(changed) if changed else "nothing changed")
    return new


def _settings(config: Config) -> EngineSettings:
    return config.engine_settings()


def _baseline(engine: Engine, transport: Transport, new: Config) -> Config:
    """No running config given: compare with what the engine runs now, so everything that
    differs is applied (the knobs included)."""
    settings = engine.settings
    controls = engine.controls

    class _Current(Config):   # a Config whose core mapping is the engine's own state
        def engine_settings(self) -> EngineSettings:
            return settings

        def controls_dict(self) -> dict[str, Any]:
            return {"density": controls.density, "temperature": controls.temperature,
                    "velocity_scale": controls.velocity_scale, "humanise": controls.humanise,
                    "max_hits_per_voice": controls.max_hits_per_voice,
                    "thresholds": controls.thresholds, "style": controls.style,
                    "style_amount": controls.style_amount}

    current = _Current(**{f.name: getattr(new, f.name) for f in fields(Config)})
    return replace(
        current,
        tempo=replace(new.tempo, bpm=float(transport.bpm)),
        generator=replace(new.generator, density=controls.density, variation=controls.temperature,
                          velocity_scale=controls.velocity_scale, humanise=controls.humanise,
                          max_hits_per_voice=controls.max_hits_per_voice,
                          thresholds=controls.thresholds, style=controls.style,
                          style_amount=controls.style_amount),
        loop=replace(new.loop, swap_at=settings.swap_at, forget_passes=settings.forget_passes,
                     forget_once=settings.forget_once,
                     section_change=settings.section_change, rest_thin=settings.rest_thin,
                     drift=settings.drift, crash_every=settings.crash_every, fill_every=settings.fill_every,
                     hear_eighths=settings.hear_eighths, dynamics=settings.dynamics,
                     mf_velocity=settings.mf_velocity, end_after_bars=settings.end_after_bars,
                     stop_time=settings.stop_time,
                     input_channel=settings.input_channel or 0, split_note=settings.split_note),
        player=replace(new.player, lookahead_ms=settings.lookahead * 1000.0,
                       gate_steps=settings.gate))

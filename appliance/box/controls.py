"""Controls: the front panel (GPIO) and the keyboard's own knobs and pads (MIDI map).

What the service calls::

    controls = appliance.box.controls.start(config, engine, transport, scenes=scenes)
    # every incoming MIDI message, before the engine sees it:
    if not controls.handle(message, t):
        engine.handle(message, t)
    # `groovebox learn ACTION` over the control socket:
    reply = controls.learn(action)          # ValueError (with a did-you-mean) → send it back
    # on SIGHUP, through appliance.box.reload.apply_config(..., controls=controls)
    controls.reconfigure(new_config)
    controls.close()                        # on exit

The GPIO panel is only built when ``gpio.enabled``; when no pin factory works here the
panel is off with one warning, and the MIDI map still works.
"""
from __future__ import annotations

import logging
from pathlib import Path
import time
from typing import TYPE_CHECKING, Callable

import mido

from appliance.box.config import Config
from appliance.box.scenes import Scenes
from appliance.core.actions import Actions
from appliance.core.engine import Engine
from appliance.core.transport import Transport
from appliance.io.midimap import LEARNED_FILE, MidiMap
from appliance.io.panel import NoPinFactory, Panel

if TYPE_CHECKING:
    from gpiozero import Factory

log = logging.getLogger(__name__)

__all__ = ["Actions", "ControlsHandle", "MidiMap", "start"]


class ControlsHandle:
    """What :func:`start` returns: the actions, the MIDI map and the GPIO panel (or None)."""

    def __init__(self, config: Config, engine: Engine, transport: Transport, scenes: Scenes | None,
                 pin_factory: "Factory | None", clock: Callable[[], float], threads: bool) -> None:
        self.engine = engine
        self.transport = transport
        self.scenes = scenes
        self.clock = clock
        self._pin_factory = pin_factory
        self._threads = threads
        self.panel: Panel | None = None
        self.config = config
        self.actions = self._actions(config)
        self.midimap = self._midimap(config)
        self._open_panel(config)

    def _actions(self, config: Config) -> Actions:
        return Actions(self.engine, self.transport, self.scenes,
                       tempo_range=_tempo_range(config), clock=self.clock,
                       follows_external_clock=config.tempo.clock == "external")

    def _midimap(self, config: Config) -> MidiMap:
        midimap = MidiMap(config.midi_map, self.actions,
                          learned_path=Path(config.state.dir) / LEARNED_FILE, clock=self.clock)
        midimap.on_message.append(self._activity)
        return midimap

    def _open_panel(self, config: Config) -> None:
        if not config.gpio.enabled:
            log.info("gpio: front panel disabled (gpio.enabled: false)")
            return
        try:
            self.panel = Panel(config.gpio, self.actions, pin_factory=self._pin_factory,
                               clock=self.clock)
        except NoPinFactory as e:
            log.warning("gpio: front panel off: %s; MIDI-mapped controls still work "
                        "(gpio.enabled: false silences this)", e)
            return
        except Exception as e:
            log.warning("gpio: front panel off: %s (check the gpio: section); MIDI-mapped "
                        "controls still work", e)
            return
        if self._threads:
            self.panel.start()

    def _activity(self, t: float) -> None:
        if self.panel is not None:
            self.panel.activity()

    # -- what the service calls

    def handle(self, message: mido.Message, t: float) -> bool:
        """True when ``message`` was a control (do not record it into the groove)."""
        return self.midimap.handle(message, t)

    def learn(self, action: str) -> str:
        return self.midimap.learn(action)

    def do(self, action: str) -> None:
        self.actions.do(action)

    def reconfigure(self, config: Config) -> list[str]:
        """Apply new gpio/midi_map/tempo settings: the panel is rebuilt, the map reloaded.
        The engine is untouched, so the beat goes on."""
        changed = []
        if (config.gpio, config.tempo.clock) != (self.config.gpio, self.config.tempo.clock):
            self.actions.tempo_range = _tempo_range(config)
            self.actions.follows_external_clock = config.tempo.clock == "external"
        if config.gpio != self.config.gpio:
            if self.panel is not None:
                self.panel.close()
                self.panel = None
            self._open_panel(config)
            changed.append("gpio")
        learning = self.midimap.learning
        beyond = self.midimap.out_of_reach(learning) if learning else ""
        if config.midi_map != self.config.midi_map or config.state.dir != self.config.state.dir:
            old = self.midimap
            old.close()
            fresh = self._midimap(config)            # whole before it is the map (`groovebox learn` reads it)
            if config.state.dir == self.config.state.dir:
                fresh.keep_learned(old)             # learned and maybe not on disk yet (a full disk)
                fresh.last_learned = old.last_learned
            if learning and not beyond:
                fresh.learn(learning, now=old.learning_since)   # learning survives a reload, its time running on ...
            self.midimap = fresh
            changed.append("midi_map")
        if learning and beyond:                      # ... unless the reload took its scene away
            self.midimap.cancel_learn()
            log.warning("learn %s stopped by the reload: %s", learning, beyond)
        self.config = config
        return changed

    def close(self) -> None:
        if self.midimap is not None:
            self.midimap.flush()         # learned bindings reach the disk before exit
            self.midimap.close()
        if self.panel is not None:
            self.panel.close()
            self.panel = None


def start(config: Config, engine: Engine, transport: Transport, *, scenes: Scenes | None = None,
          pin_factory: "Factory | None" = None, clock: Callable[[], float] = time.monotonic,
          threads: bool = True) -> ControlsHandle:
    """Build the controls for ``config`` around a running engine.

    ``pin_factory`` overrides ``gpio.pin_factory`` (tests pass a MockFactory); ``threads``
    False leaves polling the panel to the caller (``handle.panel.poll(now)``)."""
    return ControlsHandle(config, engine, transport, scenes, pin_factory, clock, threads)


def _tempo_range(config: Config) -> tuple[float, float]:
    """The tempo knob's lowest and highest BPM (two numbers: the config checks it)."""
    low, high = config.gpio.tempo_range
    return low, high

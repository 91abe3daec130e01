"""The daemon, ``groovebox run``: wires the adapters to the engine and keeps the beat.

Threads:
  - the player thread (``player_thread.py``, SCHED_FIFO where allowed) calls
    ``engine.tick(now)``, keeps the returned events in a heap, sleeps until the earliest is
    due and sends it; it never waits for the model;
  - MIDI input (the rtmidi poller, the DIN reader) goes through ``midi_routing.py`` to the
    clock, the MIDI map and ``engine.handle(message, arrival_time)``, arrival times from the
    MIDI system's stamps; the DIN writer empties the UART's output queue;
  - the engine's inference worker, the hotplug watcher, the control socket (its commands:
    ``commands.py``), the autosaver, the GPIO poller;
  - the main thread handles signals and pings the systemd watchdog (``notify.py``) while the
    player thread is alive and not stuck.

systemd: ``READY=1`` once the model is loaded and the ports are open; ``WATCHDOG=1`` every
half WatchdogSec; ``RELOADING=1``/``READY=1`` around a SIGHUP reload; ``STOPPING=1`` on
SIGTERM, after which every sounding note gets its note-off before the process exits.
"""
from __future__ import annotations

import argparse
from dataclasses import replace
import faulthandler
import logging
import os
from pathlib import Path
import queue
import signal
import sys
import time
from types import FrameType
from typing import Any, Callable, NoReturn


from appliance.box import commands, realtime
from appliance.box.cli import default_model_dir, early_hups
from appliance.box.config import Config, ConfigError, load_with_fallback, pads_on_the_keys
from appliance.box.control_socket import ControlServer, default_socket_path
from appliance.box.controls import ControlsHandle, start as start_controls
from appliance.box.midi_routing import MidiRouting
from appliance.box.notify import sd_notify, watchdog_interval
from appliance.box.player_thread import PlayerThread
from appliance.box.reload import reload_file
from appliance.box.scenes import Scenes
from appliance.box.state import Autosaver, StateBusy, StateStore, file_knobs, snapshot
from appliance.core.clock import ClockSwitch
from appliance.core.engine import Engine
from appliance.core.generator import Generator, ModelError
from appliance.core.start import Starter
from appliance.io.midi.clock import ClockSender

log = logging.getLogger(__name__)

DEFAULT_CONFIG = Path("/etc/groovebox/config.yaml")
STUCK_S = 2.0             #: a player heartbeat older than this stops the watchdog pings
FLUSH_S = 0.25            #: time for the last note-offs to leave before the ports close


# --- the service -----------------------------------------------------------------------------

class Service:
    """Everything the box runs, wired. ``start()`` brings it up, ``close()`` takes it down."""

    def __init__(self, config: Config, config_path: Path | None = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 override: Callable[[Config], Config] | None = None) -> None:
        self.config = config
        self.config_path = config_path
        #: what the command line sets over the file (``--midi-api``), over a reloaded file too
        self.override = override
        self.clock = clock
        self.started_at = clock()
        self.generator: Generator | None = None
        self.transport: ClockSwitch | None = None
        self.engine: Engine | None = None
        self.midi: MidiRouting | None = None
        self.controls: ControlsHandle | None = None
        self.scenes: Scenes | None = None
        self.autosaver: Autosaver | None = None
        self.store: StateStore | None = None
        self.control_server: ControlServer | None = None
        self.player: PlayerThread | None = None
        # Signal handlers only set a flag and put on a SimpleQueue (reentrant, unlike an Event,
        # whose lock a handler can find held by the very thread it interrupts: a deadlock).
        self._stop_asked = False
        self._wakeups: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._reload_asked = False
        self._closed = False

    # -- bring up ---------------------------------------------------------------------------
    def start(self) -> None:
        """Bring the box up; StateBusy (before anything opens) when another box plays on its state."""
        c = self.config
        self.store = StateStore(c.state.dir)
        self.store.claim()
        realtime.shorten_gil_switch_interval()
        realtime.raise_process_priority()
        self.generator = Generator(c.model.dir, precision=c.model.precision, seed=c.model.seed)
        self.transport = ClockSwitch(c.tempo.clock, c.tempo.bpm, clock=self.clock)
        start = c.start_settings()
        starter = (Starter(start, self.transport, now=self.clock()) if start.mode != "now"
                   else None)
        self.engine = Engine(self.generator, self.transport, settings=c.engine_settings(),
                             controls=c.controls(), clock=self.clock, starter=starter)
        self._restore_state()
        self._start_controls()
        self.midi = MidiRouting(c, self.transport, self.engine, controls=self.controls,
                                quiet=self._quiet)
        self.midi.open()
        self._start_control_socket()
        sender = None
        if c.tempo.send_clock:
            self.transport.sending = True     # a clock at its own tempo may be its own, echoed
            sender = ClockSender(self.transport, on_start=self.transport.own_start)
        self.player = PlayerThread(self.engine, self.transport, self.midi.send,
                                   clock_sender=sender, clock=self.clock)
        self.player.start()
        ports = self.midi.ports_line()
        doing = f"ready, {starter.describe()}" if starter is not None else "playing"
        log.info("groovebox %s: %.1f BPM, clock %s, %s", doing, self.transport.bpm, c.tempo.clock,
                 ports)
        sd_notify(f"READY=1\nSTATUS={doing} at {self.transport.bpm:.1f} BPM; {ports}")

    def _restore_state(self) -> None:
        c, engine, transport = self.config, self.engine, self.transport
        assert engine is not None and transport is not None, "made by start()"
        store = self.store
        assert store is not None, "claimed by start()"
        try:
            saved = store.load()
        except Exception as exc:  # the state is never a reason not to start
            log.warning("state: cannot use %s (%s); starting clean, not saving", c.state.dir, exc)
            return
        self.scenes = Scenes(c.state.scenes, saved.scenes if saved else None)
        if saved is not None:
            saved.apply(engine, transport, now=self.clock(), file=file_knobs(c))
            log.info("state: restored from %s", c.state.dir)
        scenes = self.scenes
        # the file's knobs as they are now: a reload changes them, and a restart compares
        self.autosaver = Autosaver(store, lambda: snapshot(engine, transport, scenes, file_knobs(self.config)),
                                   every_s=c.state.save_every_s).start()
        autosaver = self.autosaver
        engine.on_change.append(lambda kind: autosaver.poke())
        self.scenes.on_change.append(autosaver.poke)

    def _start_controls(self) -> None:
        engine, transport = self.engine, self.transport
        assert engine is not None and transport is not None, "made by start()"
        said = pads_on_the_keys(self.config)
        if said:
            log.warning("midi map: %s", said.strip().removeprefix("note: "))
        try:
            self.controls = start_controls(self.config, engine, transport, scenes=self.scenes)
        except Exception:
            log.exception("controls: failed to start; buttons and the MIDI map are off")

    def _quiet(self) -> None:
        """Opening a MIDI port waits for a gap between two notes (see PlayerThread)."""
        if self.player is not None:
            self.player.wait_for_gap()

    def _start_control_socket(self) -> None:
        path = default_socket_path(self.config.control.socket)
        try:
            self.control_server = ControlServer(path, self).start()
        except OSError as exc:
            log.error("control socket off: %s (groovebox status will not reach this box)", exc)

    # -- run until a signal -----------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        """Before READY=1: a signal sent as soon as the box is up must find them."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_stop_signal)
        signal.signal(signal.SIGHUP, self._on_reload_signal)
        if early_hups:   # a SIGHUP while the box was starting: the file may have changed since it was read
            self._reload_asked = True

    def run_forever(self) -> int:
        interval = watchdog_interval()
        period = min(interval or 1.0, 1.0)
        warned = False
        while not self._stop_asked:
            try:
                self._wakeups.get(timeout=period)
            except queue.Empty:
                pass
            if self._stop_asked:
                break
            if self.transport is not None:
                self.transport.flush_news()     # clock news noticed on the player's thread
            if self.engine is not None:
                self.engine.flush_news()        # an ending noticed on the player's thread
            if self.player is not None and not self.player.is_alive():
                log.error("player thread died; exiting so that systemd restarts the box")
                self.close()
                return 1
            if self._reload_asked:
                self._reload_asked = False
                self.reload()
            if interval is not None:
                if self.player_healthy():
                    sd_notify("WATCHDOG=1")
                    warned = False
                elif not warned:
                    dead = self.player is not None and not self.player.is_alive()
                    log.error("player thread %s: no more watchdog pings, systemd will restart "
                              "the box", "is dead" if dead else "is stuck")
                    warned = True
        sd_notify("STOPPING=1")
        log.info("stopping: all notes off")
        self.close()
        return 0

    def player_healthy(self) -> bool:
        player = self.player
        return (player is not None and player.is_alive()
                and self.clock() - player.heartbeat < STUCK_S)

    def _on_stop_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._stop_asked = True
        self._wakeups.put(signum)

    def _on_reload_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._reload_asked = True
        self._wakeups.put(signum)

    def reload(self) -> None:
        """SIGHUP: read the config again; a bad file is refused and the old one kept."""
        if self.config_path is None:
            log.warning("reload: started without a config file; nothing to reload")
            return
        assert self.engine is not None and self.transport is not None
        sd_notify("RELOADING=1")
        try:
            self.config = reload_file(self.config_path, self.config, self.engine, self.transport,
                                      controls=self.controls, autosaver=self.autosaver,
                                      override=self.override)
        except Exception:
            log.exception("reload failed; the box keeps playing")
        finally:
            sd_notify("READY=1")

    # -- take down ----------------------------------------------------------------------------
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.player is not None:
            self.player.stop()
            self.player.join(timeout=5)
            if self.player.is_alive():
                log.error("player thread did not stop; sending note-offs from here")
                self.player.notes_off()
        elif self.engine is not None and self.midi is not None:
            for message in self.engine.all_notes_off():
                self.midi.send(message)
        time.sleep(FLUSH_S)                 # let the last note-offs leave the MIDI system
        # MIDI first: no controller message can reach the MIDI map after it saved what it learnt.
        for part in (self.midi, self.control_server, self.controls, self.autosaver):
            if part is not None:
                try:
                    part.close()
                except Exception:
                    log.exception("closing %s failed", type(part).__name__)
        if self.engine is not None:
            self.engine.close()
        if self.store is not None:
            self.store.release()

    # -- the control socket ---------------------------------------------------------------------
    def control(self, command: str, request: dict[str, Any]) -> dict[str, Any]:
        return commands.control(self, command, request)

    def status(self) -> dict[str, Any]:
        return commands.status(self)


# --- entry point -----------------------------------------------------------------------------

def _load_config(path: Path | None) -> tuple[Config, Path | None]:
    """The config to start with. A broken file never keeps the box silent: it starts on the last
    config that loaded (kept in $STATE_DIRECTORY, systemd's StateDirectory, else state.dir) or the defaults,
    and one error line says what to fix."""
    if path is None:
        if not DEFAULT_CONFIG.exists():
            config = Config()
            found = default_model_dir()   # a checkout's models/, where the installed box's is not there
            if not Path(config.model.dir).is_dir() and found.is_dir():
                config = replace(config, model=replace(config.model, dir=str(found)))
            log.warning("no config file (%s is missing); playing with the defaults, the model in %s",
                        DEFAULT_CONFIG, config.model.dir)
            return config, None
        path = DEFAULT_CONFIG
    config, _problems = load_with_fallback(path)     # the last good copy: config.last_good_dir
    return config, path


def exit_now(code: int) -> NoReturn:
    """End ``groovebox run`` without Python's teardown, once the log is out. The teardown would
    delete the JACK clients, and unregistering their ports can crash libjack (JackBackend.leave);
    the exit takes them down at once. What must be kept (the state, what the MIDI map learnt, the
    last note-offs on USB and DIN) was closed by Service.close."""
    log.info("stopped (exit code %d)", code)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def main(args: argparse.Namespace) -> int:
    """``groovebox run [--config FILE]``: play until SIGTERM. 0 on a clean stop, 1 when the box
    cannot start (the log says why). A broken config starts the box on the last good one."""
    try:
        config, path = _load_config(getattr(args, "config", None))
    except ConfigError as exc:
        for line in str(exc).splitlines():
            log.error("%s", line)
        return 2
    override = None
    if getattr(args, "midi_api", None):
        api = args.midi_api

        def override(loaded: Config) -> Config:
            return replace(loaded, midi=replace(loaded.midi, api=api))
        config = override(config)
    cli_level = getattr(args, "log_level", None)
    if cli_level in (None, "info") and not os.environ.get("GROOVEBOX_LOG_LEVEL"):
        logging.getLogger().setLevel(config.log_level.upper())
    # A crash in a native library (JACK, rtmidi, onnxruntime) leaves every thread's Python stack
    # on stderr, so the journal says where, not only that the service died of a signal.
    faulthandler.enable()
    service = Service(config, path, override=override)
    service.install_signal_handlers()
    try:
        service.start()
    except (ModelError, StateBusy) as exc:
        log.error("cannot start: %s", exc)
        service.close()
        return 1
    except Exception:
        log.exception("cannot start")
        service.close()
        return 1
    try:
        return service.run_forever()
    finally:
        service.close()   # whatever ends it: all notes off, the state saved (once: close is idempotent)

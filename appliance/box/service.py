"""The daemon, ``groovebox run``: wires the adapters to the engine and keeps the beat.

Threads:
  - the player thread (SCHED_FIFO where allowed) calls ``engine.tick(now)``, keeps the
    returned events in a heap, sleeps until the earliest is due and sends it; it never
    waits for the model;
  - MIDI input (the rtmidi poller, the DIN reader) feeds the clock, the MIDI map and
    ``engine.handle(message, arrival_time)``, arrival times from the MIDI system's stamps;
  - the engine's inference worker, the hotplug watcher, the control socket, the autosaver;
  - the main thread handles signals and pings the systemd watchdog while the player thread
    is alive and not stuck.

systemd: ``READY=1`` once the model is loaded and the ports are open; ``WATCHDOG=1`` every
half WatchdogSec; ``RELOADING=1``/``READY=1`` around a SIGHUP reload; ``STOPPING=1`` on
SIGTERM, after which every sounding note gets its note-off before the process exits.
"""
from __future__ import annotations

import argparse
from collections import deque
import heapq
import itertools
import logging
import math
import os
from pathlib import Path
import signal
import socket
import threading
import time
from typing import Any, Callable

import mido
import numpy as np

from appliance.box.config import Config, ConfigError, load as load_config, load_with_fallback, save_last_good
from appliance.box.control_socket import ControlServer, default_socket_path
from appliance.box.controls import start as start_controls
from appliance.core.engine import Engine
from appliance.core.generator import Generator, ModelError
from appliance.core.groove import HIT, NUM_VOICES, OFFSET, STEPS, VELOCITY, VOICES
from appliance.io.midi.din import DinPort
from appliance.io.midi.backends import open_backend
from appliance.io.midi.ports import MidiPorts, PortError
from appliance.core.clock import ClockSender, ClockSwitch
from appliance.box import realtime
from appliance.box.reload import apply_config, remember
from appliance.box.state import Autosaver, Scenes, StateStore, snapshot

log = logging.getLogger(__name__)

DEFAULT_CONFIG = Path("/etc/groovebox/config.yaml")
TICK_S = 0.010            #: the player wakes at least this often to ask the engine for events
QUIET_GAP_S = 0.015       #: a gap between notes long enough to open a MIDI port in
STUCK_S = 2.0             #: a player heartbeat older than this stops the watchdog pings
FLUSH_S = 0.25            #: time for the last note-offs to leave before the ports close


# --- systemd notify --------------------------------------------------------------------------

def sd_notify(state: str) -> bool:
    """Send one notify datagram to $NOTIFY_SOCKET (no systemd package needed)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
        return True
    except OSError as exc:
        log.warning("systemd notify failed (%s): %s", address.lstrip("\0"), exc)
        return False


def watchdog_interval() -> float | None:
    """Half of WatchdogSec, when systemd asked for pings for this process."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid.isdigit() and int(pid) != os.getpid()):
        return None
    try:
        return max(0.05, int(usec) / 1e6 / 2)
    except ValueError:
        return None


# --- the player thread -----------------------------------------------------------------------

class PlayerThread(threading.Thread):
    """engine.tick → a heap of events → each sent when due. All notes off on stop and exit."""

    def __init__(self, engine: Engine, transport: Any, send: Callable[[mido.Message], None], *,
                 clock_sender: ClockSender | None = None, use_realtime: bool = True,
                 clock: Callable[[], float] = time.monotonic, timing_log: int = 4096) -> None:
        super().__init__(name="groovebox-player", daemon=True)
        self.engine = engine
        self.transport = transport
        self.send = send
        self.clock_sender = clock_sender
        self.use_realtime = use_realtime
        self.clock = clock
        self.heartbeat = clock()
        self.realtime = False
        self.sent = 0
        self.tick_errors = 0
        #: (ideal time, sent time, channel, note) of recent note-ons: the player's own view
        self.timing: deque[tuple[float, float, int, int]] = deque(maxlen=timing_log)
        self._stop_event = threading.Event()
        self._off_lock = threading.Lock()
        self._next_due = 0.0   # when the player next has to send something (or may have to)
        self._seq = itertools.count()
        self._was_running = transport.running
        self._sounding: dict[tuple[int, int], int] = {}

    def wait_for_gap(self, gap: float = QUIET_GAP_S, timeout: float = 1.0) -> bool:
        """Block until nothing is due for ``gap`` seconds (True), or ``timeout`` (False).

        For work that holds the GIL in one piece (rtmidi opening a port): done in the gap
        between two notes, it never makes a note late."""
        clock = self.clock
        deadline = clock() + timeout
        while self.is_alive():
            now = clock()
            ahead = self._next_due - now
            if ahead >= gap:
                return True
            if now >= deadline:
                return False
            time.sleep(min(max(ahead, 0.0) + 0.0005, 0.005, max(deadline - now, 0.0)))
        return True

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        if self.use_realtime:
            self.realtime = realtime.make_current_thread_realtime()
        heap: list[tuple[float, int, mido.Message]] = []
        try:
            while not self._stop_event.is_set():
                try:
                    self._cycle(heap)
                except Exception:  # nothing may stop the beat: log, and go on
                    self.tick_errors += 1
                    if self.tick_errors in (1, 10, 100) or self.tick_errors % 10000 == 0:
                        log.exception("player cycle failed (%d times); the player carries on",
                                      self.tick_errors)
                    self._stop_event.wait(TICK_S)
        finally:
            self._release(heap)
            if self.clock_sender is not None and getattr(self.transport, "source", "internal") == "internal":
                self.send(mido.Message("stop"))      # the master goes away: tell the slaves

    def _cycle(self, heap: list[tuple[float, int, mido.Message]]) -> None:
        """One turn: ask the engine, send what is due, sleep until the next thing is."""
        transport, engine, clock = self.transport, self.engine, self.clock
        now = clock()
        self.heartbeat = now
        self._send_due(heap)            # what is due goes out before any other work
        running = transport.running
        if self._was_running and not running:
            self._release(heap)
        self._was_running = running
        lookahead = engine.settings.lookahead
        for event in engine.tick(now):
            heapq.heappush(heap, (event.time, next(self._seq), event.message))
        if self.clock_sender is not None and getattr(transport, "source", "internal") == "internal":
            for when, message in self.clock_sender.due(now, now + lookahead):
                heapq.heappush(heap, (when, next(self._seq), message))
        self._send_due(heap)
        now = clock()
        # Events come back from tick at most a look-ahead early: with an empty heap nothing
        # is due before now + look-ahead − one tick.
        self._next_due = min(heap[0][0] if heap else math.inf, now + lookahead - TICK_S)
        wait = min(heap[0][0] if heap else math.inf, now + TICK_S) - clock()
        if wait > 0:
            self._stop_event.wait(wait)

    def _send_due(self, heap: list[tuple[float, int, mido.Message]]) -> None:
        clock = self.clock
        while heap and heap[0][0] <= clock():
            due, _, message = heapq.heappop(heap)
            self._out(message)
            if message.type == "note_on":
                self.timing.append((due, clock(), message.channel, message.note))

    def _out(self, message: mido.Message) -> None:
        """Send, keeping count of the notes that sound (the last line against hanging notes)."""
        self.send(message)
        self.sent += 1
        if message.type == "note_on" and message.velocity > 0:
            key = (message.channel, message.note)
            self._sounding[key] = self._sounding.get(key, 0) + 1
        elif message.type in ("note_off", "note_on"):
            key = (message.channel, message.note)
            if self._sounding.get(key, 0) > 1:
                self._sounding[key] -= 1
            else:
                self._sounding.pop(key, None)

    def _release(self, heap: list[tuple[float, int, mido.Message]]) -> None:
        """Stop or exit: drop what was to be played, send every note-off now."""
        offs = [message for _, _, message in sorted(heap) if message.type == "note_off"]
        heap.clear()
        for message in offs:
            self._out(message)
        self.notes_off()

    def notes_off(self) -> None:
        """A note-off for every note still sounding: the engine's and those this thread
        sent without their note-off yet (idempotent)."""
        with self._off_lock:
            offs = {(m.channel, m.note) for m in self.engine.all_notes_off()}
            offs.update(self._sounding)
            self._sounding.clear()
            for channel, note in sorted(offs):
                self.send(mido.Message("note_off", channel=channel, note=note, velocity=0))

    def timing_ms(self) -> dict[str, float] | None:
        if not self.timing:
            return None
        errors = np.abs(np.array([sent - ideal for ideal, sent, *_ in list(self.timing)])) * 1000
        return {"p50": float(np.percentile(errors, 50)), "p99": float(np.percentile(errors, 99)),
                "max": float(errors.max()), "count": int(errors.size)}


# --- the service -----------------------------------------------------------------------------

class Service:
    """Everything the box runs, wired. ``start()`` brings it up, ``close()`` takes it down."""

    def __init__(self, config: Any, config_path: Path | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.config_path = config_path
        self.clock = clock
        self.started_at = clock()
        self.generator: Generator | None = None
        self.transport: ClockSwitch | None = None
        self.engine: Engine | None = None
        self.ports: MidiPorts | None = None
        self.din: DinPort | None = None
        self.din_off: str | None = None      #: why DIN is off although enabled
        self.controls: Any = None
        self.scenes: Any = None
        self.autosaver: Any = None
        self.control_server: ControlServer | None = None
        self.player: PlayerThread | None = None
        self.inputs_seen = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._reload_asked = False
        self._closed = False

    # -- bring up ---------------------------------------------------------------------------
    def start(self) -> None:
        c = self.config
        realtime.shorten_gil_switch_interval()
        realtime.raise_process_priority()
        self.generator = Generator(c.model.dir, precision=c.model.precision, seed=c.model.seed)
        self.transport = ClockSwitch(c.tempo.clock, c.tempo.bpm, clock=self.clock)
        self.engine = Engine(self.generator, self.transport, settings=c.engine_settings(),
                             controls=c.controls(), clock=self.clock)
        remember(c, self.engine)
        self._restore_state()
        self._start_controls()
        self._open_usb()
        self._open_din()
        self._start_control_socket()
        sender = ClockSender(self.transport) if c.tempo.send_clock else None
        self.player = PlayerThread(self.engine, self.transport, self.send, clock_sender=sender,
                                   clock=self.clock)
        self.player.start()
        log.info("groovebox playing: %.1f BPM, clock %s, %s", self.transport.bpm,
                 c.tempo.clock, self._ports_line())
        sd_notify(f"READY=1\nSTATUS=playing at {self.transport.bpm:.1f} BPM; {self._ports_line()}")

    def _restore_state(self) -> None:
        c = self.config
        try:
            store = StateStore(c.state.dir)
            saved = store.load()
        except Exception as exc:  # the state is never a reason not to start
            log.warning("state: cannot use %s (%s); starting clean, not saving", c.state.dir, exc)
            return
        self.scenes = Scenes(c.state.scenes, saved.scenes if saved else None)
        if saved is not None:
            saved.apply(self.engine, self.transport, now=self.clock())
            log.info("state: restored from %s", c.state.dir)
        engine, transport, scenes = self.engine, self.transport, self.scenes
        self.autosaver = Autosaver(store, lambda: snapshot(engine, transport, scenes),
                                   every_s=c.state.save_every_s).start()
        engine.on_change.append(lambda kind: self.autosaver.poke())
        if hasattr(scenes, "on_change"):
            scenes.on_change.append(self.autosaver.poke)

    def _start_controls(self) -> None:
        try:
            self.controls = start_controls(self.config, self.engine, self.transport,
                                           scenes=self.scenes)
        except Exception:
            log.exception("controls: failed to start; buttons and the MIDI map are off")

    def _open_usb(self) -> None:
        m = self.config.midi
        backend = None
        try:
            backend = open_backend(m.api, client_name=m.client_name)
        except PortError as first:
            other = "jack" if m.api == "alsa" else "alsa"
            try:
                backend = open_backend(other, client_name=m.client_name)
                log.warning("USB MIDI: %s; %s works here, using it (set midi.api: %s)",
                            first, other.upper(), other)
            except PortError:
                log.error("USB MIDI off: %s", first)
        if backend is None:
            return
        self.ports = MidiPorts(backend, inputs=tuple(m.inputs) or ("*",),
                               outputs=tuple(m.outputs) or ("*",), virtual=m.virtual,
                               on_message=self.on_input, quiet=self._quiet)
        try:
            self.ports.start()
        except Exception as exc:
            log.error("USB MIDI off: cannot open ports (%s)", exc)
            self.ports.close()
            self.ports = None

    def _quiet(self) -> None:
        if self.player is not None:
            self.player.wait_for_gap()

    def _open_din(self) -> None:
        d = self.config.din
        if not d.enabled:
            return
        din = DinPort(d.device, d.baud, input=d.input, output=d.output, on_message=self.on_input)
        if din.open():
            self.din = din
        else:
            self.din_off = f"off: cannot open {d.device} (see the log)"

    def _start_control_socket(self) -> None:
        path = default_socket_path(self.config.control.socket)
        try:
            self.control_server = ControlServer(path, self).start()
        except OSError as exc:
            log.error("control socket off: %s (groovebox status will not reach this box)", exc)

    def _ports_line(self) -> str:
        usb = self.ports.connected() if self.ports is not None else {"inputs": [], "outputs": []}
        din = f", DIN {self.din.device}" if self.din is not None else ""
        return (f"in: {', '.join(usb['inputs']) or 'waiting'}; "
                f"out: {', '.join(usb['outputs']) or 'waiting'}{din}")

    # -- MIDI ---------------------------------------------------------------------------------
    def on_input(self, message: mido.Message, t: float) -> None:
        """Every message from every input (rtmidi's thread, the DIN reader)."""
        self.inputs_seen += 1
        transport, engine = self.transport, self.engine
        if transport is None or engine is None:
            return
        if transport.feed(message, t):
            return
        if message.type not in ("note_on", "note_off", "control_change", "program_change",
                                "pitchwheel", "aftertouch", "polytouch"):
            return
        controls = self.controls
        if controls is not None:
            try:
                if controls.handle(message, t):
                    return
            except Exception:
                log.exception("controls failed on %s", message)
        engine.handle(message, t)

    def send(self, message: mido.Message) -> None:
        if self.ports is not None:
            self.ports.send(message)
        if self.din is not None:
            self.din.send(message)

    # -- run until a signal -----------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        """Before READY=1: a signal sent as soon as the box is up must find them."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_stop_signal)
        signal.signal(signal.SIGHUP, self._on_reload_signal)

    def run_forever(self) -> int:
        interval = watchdog_interval()
        period = min(interval or 1.0, 1.0)
        warned = False
        while not self._stop.is_set():
            self._wake.wait(period)
            self._wake.clear()
            if self._stop.is_set():
                break
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
                    log.error("player thread %s: no more watchdog pings, systemd will restart "
                              "the box", "is dead" if not self.player.is_alive() else "is stuck")
                    warned = True
        sd_notify("STOPPING=1")
        log.info("stopping: all notes off")
        self.close()
        return 0

    def player_healthy(self) -> bool:
        player = self.player
        return (player is not None and player.is_alive()
                and self.clock() - player.heartbeat < STUCK_S)

    def _on_stop_signal(self, signum: int, _frame: Any) -> None:
        self._stop.set()
        self._wake.set()

    def _on_reload_signal(self, signum: int, _frame: Any) -> None:
        self._reload_asked = True
        self._wake.set()

    def reload(self) -> None:
        """SIGHUP: read the config again; a bad file is refused and the old one kept."""
        if self.config_path is None:
            log.warning("reload: started without a config file; nothing to reload")
            return
        sd_notify("RELOADING=1")
        try:
            try:
                new = load_config(self.config_path)
            except ConfigError as exc:
                log.error("reload refused, the box keeps its running config: %s",
                          " | ".join(str(exc).splitlines()))
                return
            changed = apply_config(new, self.engine, self.transport, old=self.config,
                                   controls=self.controls, autosaver=self.autosaver)
            self.config = new
            save_last_good(new)
            log.info("config reloaded from %s: %s", self.config_path,
                     "; ".join(changed) if changed else "nothing changed")
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
        elif self.engine is not None:
            for message in self.engine.all_notes_off():
                self.send(message)
        time.sleep(FLUSH_S)                 # let the last note-offs leave the MIDI system
        for part in (self.control_server, self.controls, self.ports, self.din, self.autosaver):
            if part is not None:
                try:
                    part.close()
                except Exception:
                    log.exception("closing %s failed", type(part).__name__)
        if self.engine is not None:
            self.engine.close()

    # -- the control socket ---------------------------------------------------------------------
    def control(self, command: str, request: dict[str, Any]) -> dict[str, Any]:
        engine = self.engine
        assert engine is not None
        actions = getattr(self.controls, "actions", None)
        if command == "status":
            return {"status": self.status()}
        if command == "timing":
            player = self.player
            return {"timing": list(player.timing) if player else [], "clock": "monotonic"}
        if command == "learn":
            if self.controls is None:
                raise ValueError("MIDI learn is not available (controls are off; see the log)")
            return {"message": self.controls.learn(str(request.get("action", "")))}
        if command in ("freeze", "clear", "resample", "prior"):
            if actions is not None:
                actions.do(command)
            else:
                getattr(engine, command)()
            if command == "freeze":
                return {"frozen": engine.frozen}
            return {"message": {"clear": "overdub cleared", "resample": "new variation",
                                "prior": "playing from scratch"}[command]}
        raise ValueError(f"unknown command {command!r}")

    def status(self) -> dict[str, Any]:
        engine, transport = self.engine, self.transport
        assert engine is not None and transport is not None
        now = self.clock()
        position = transport.position(now)
        ports = self.ports.connected() if self.ports is not None else {"inputs": [], "outputs": []}
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
            "ports": ports,
            "din": (f"{self.din.device} ({'connected' if self.din.connected else 'lost'})"
                    if self.din is not None else self.din_off),
            "frozen": engine.frozen,
            "engine": engine.stats(),
            "groove_grid": engine.groove.grid(),
            "pattern_grid": engine.pattern.grid(),
            "pattern": hits,
            "voices": list(VOICES),
            "notes": list(settings.notes),
            "channels": list(settings.channels),
            "output_timing_ms": self.player.timing_ms() if self.player else None,
            "realtime": bool(self.player and self.player.realtime),
            "inputs_seen": self.inputs_seen,
            "uptime_s": round(now - self.started_at, 1),
        }


# --- entry point -----------------------------------------------------------------------------

def _load_config(path: Path | None) -> tuple[Config, Path | None]:
    """The config to start with. A broken file never keeps the box silent: it starts on the last
    config that loaded (kept in $STATE_DIRECTORY, systemd's StateDirectory) or the defaults,
    and one error line says what to fix."""
    if path is None:
        if not DEFAULT_CONFIG.exists():
            log.warning("no config file (%s is missing); playing with the defaults", DEFAULT_CONFIG)
            return Config(), None
        path = DEFAULT_CONFIG
    state_directory = os.environ.get("STATE_DIRECTORY", "").split(":")[0] or None
    config, _problems = load_with_fallback(path, fallback_dir=state_directory)
    return config, path


def main(args: argparse.Namespace) -> int:
    """``groovebox run [--config FILE]``: play until SIGTERM. 0 on a clean stop, 1 when the box
    cannot start (the log says why). A broken config starts the box on the last good one."""
    try:
        config, path = _load_config(getattr(args, "config", None))
    except ConfigError as exc:
        for line in str(exc).splitlines():
            log.error("%s", line)
        return 2
    cli_level = getattr(args, "log_level", None)
    if cli_level in (None, "info") and not os.environ.get("GROOVEBOX_LOG_LEVEL"):
        logging.getLogger().setLevel(config.log_level.upper())
    service = Service(config, path)
    service.install_signal_handlers()
    try:
        service.start()
    except ModelError as exc:
        log.error("cannot start: %s", exc)
        service.close()
        return 1
    except Exception:
        log.exception("cannot start")
        service.close()
        return 1
    return service.run_forever()

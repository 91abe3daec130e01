"""The box's MIDI: the USB ports and the DIN port opened from the config, every message in
routed (clock → controls → engine), every message out sent to every port."""
from __future__ import annotations

import logging
import math
import threading
from typing import Callable

import mido

from appliance.box.config import Config
from appliance.box.controls import ControlsHandle
from appliance.box.diagnose import PortsView
from appliance.box.echo import OwnNotes
from appliance.core.clock import CLOCK_EVENTS, ClockSwitch, RateLimitedLog
from appliance.core.engine import Engine
from appliance.io.midi.backends import open_backend, resolve_api
from appliance.io.midi.clock import feed_clock
from appliance.io.midi.din import DinPort
from appliance.io.midi.hints import alsa_sequencer_present, connect_hints, no_midi_system, numbered
from appliance.io.midi.backend import NoServer, PortBackend, PortError, port_key
from appliance.io.midi.ports import MidiPorts

log = logging.getLogger("appliance.box.service")

#: what the controls and the engine may take; anything else in is dropped
PLAYED = frozenset({"note_on", "note_off", "control_change", "program_change", "pitchwheel",
                    "aftertouch", "polytouch"})
#: a clock input that has been quiet this long hands the clock over to the other (the follower's ``lost_after``)
CLOCK_HANDOVER_S = 0.5
#: a Start on a second input this soon after the followed one's is the same master on two cables
PRESS_S = 0.1


def _shown(source: str | None) -> str:
    """An input as the log names it: DIN, USB, or USB (the device's port)."""
    if source in ("usb", "din", None):
        return str(source).upper()
    return f"USB ({source.split(' ', 1)[1]})"


class MidiRouting:
    """USB MIDI and DIN for one config. ``controls`` (the MIDI map) may be set later."""

    def __init__(self, config: Config, transport: ClockSwitch, engine: Engine, *,
                 controls: ControlsHandle | None = None,
                 quiet: Callable[[], None] | None = None) -> None:
        self.config = config
        self.transport = transport
        self.engine = engine
        self.controls = controls
        self.quiet = quiet
        self.ports: MidiPorts | None = None
        self.din: DinPort | None = None
        self.usb_off = ""                    #: why USB MIDI is off
        self._own_ports: tuple[str, str] = ("", "")   #: our virtual ports as the system lists them
        self.inputs_seen = 0
        self._inputs_lock = threading.Lock()   # two input threads count (USB and DIN)
        self._clock_input: str | None = None   # the input whose clock is followed (_on_usb, _on_din)
        self._clock_heard = 0.0
        self._clock_pressed = -math.inf      # when the followed input last sent Start or Continue
        self._songpos: dict[str, tuple[float, mido.Message]] = {}   # each input's last Song Position
        self.clocks_ignored = 0              #: clock messages from the input not followed (_clock_from)
        self.own_notes = OwnNotes(grain=self._stamp_grain)
        self.heard_back = 0                  #: the box's own notes heard back (a MIDI thru), dropped
        self._news = RateLimitedLog(log)

    def open(self) -> None:
        self._open_usb()
        self._open_din()

    # -- in -----------------------------------------------------------------------------------
    def on_input(self, message: mido.Message, t: float, source: str = "usb") -> None:
        """Every message from every input (the rtmidi poller, the DIN reader)."""
        with self._inputs_lock:
            self.inputs_seen += 1
            theirs = message.type in CLOCK_EVENTS and not self._clock_from(source, t, message.type)
            self.clocks_ignored += theirs
            where = None
            if message.type == "songpos" and theirs:       # kept for a Continue that takes over
                self._songpos[source] = (t, message)
            elif message.type in ("songpos", "start", "continue"):
                where = self._songpos.pop(source, None)
                if theirs or message.type != "continue":
                    where = None
        if where is not None:
            feed_clock(self.transport, where[1], where[0])  # where that Continue goes on from
        if theirs:
            self._news.note("two clocks", logging.WARNING, "MIDI clock comes in on %s and %s: the "
                            "first is followed, the other ignored until it presses play (one clock "
                            "master on one cable is enough)", _shown(self._clock_input), _shown(source))
        self._news.flush()                  # no lock held
        if theirs:
            return
        if feed_clock(self.transport, message, t) or message.type not in PLAYED:
            return
        if self.own_notes.heard_back(message, t, source):
            with self._inputs_lock:
                self.heard_back += 1
            self._news.note("heard back", logging.WARNING, "the box hears its own drums back on %s, "
                            "byte for byte, and leaves them out of the groove: turn MIDI thru (soft "
                            "thru, echo) off on the drum machine", _shown(source))
            self._news.flush()
            return
        controls = self.controls
        if controls is not None:
            try:
                if controls.handle(message, t):
                    return
            except Exception:
                log.exception("controls failed on %s", message)
        self.engine.handle(message, t)

    def _clock_from(self, source: str, t: float, kind: str) -> bool:
        """Whether a clock message from ``source`` is followed (lock held). One master's clock
        on both USB and DIN comes in twice, a few milliseconds apart, and two masters' clocks
        (a sequencer and a keyboard sending its own, or the box's own coming back through a
        drum machine's MIDI thru) interleave: counted together, the box heard twice the clocks.
        The input that sent one first is followed until it has been quiet for
        ``CLOCK_HANDOVER_S``, or until another presses play: a Start or Continue (not the box's
        own echo, and not the followed input's own Start on a second cable, ``PRESS_S``)."""
        if (self._clock_input is not None and source != self._clock_input
                and t - self._clock_heard <= CLOCK_HANDOVER_S):
            pressed = (kind in ("start", "continue") and t - self._clock_pressed > PRESS_S
                       and not self.transport.own_echo(t))
            if not pressed:
                return False
            self._news.note("pressed", logging.INFO, "MIDI clock: %s pressed play; its clock is "
                            "followed now", _shown(source))
        self._clock_input, self._clock_heard = source, t
        self.transport.stamp_grain = self._stamp_grain(source)
        if kind in ("start", "continue"):
            self._clock_pressed = t
        return True

    def _stamp_grain(self, source: str = "usb") -> float:
        """How coarse an input's times are: one JACK cycle for USB on JACK; 0 for DIN."""
        ports = self.ports
        return ports.stamp_grain if ports is not None and source != "din" else 0.0

    def _on_din(self, message: mido.Message, t: float) -> None:
        self.on_input(message, t, source="din")

    def _on_usb(self, message: mido.Message, t: float, port: str) -> None:
        """Each USB device is its own clock source where the MIDI system tells them apart
        (ALSA); on JACK they all come in as one, "usb"."""
        self.on_input(message, t, source=f"usb {port_key(port)}" if port else "usb")

    # -- out ----------------------------------------------------------------------------------
    def send(self, message: mido.Message) -> None:
        self.own_notes.sent(message)
        if self.ports is not None:
            self.ports.send(message)
        if self.din is not None:
            self.din.send(message)

    # -- what is connected --------------------------------------------------------------------
    def connected(self) -> dict[str, list[str]]:
        return self.ports.connected() if self.ports is not None else {"inputs": [], "outputs": []}

    def din_status(self) -> str | None:
        if self.din is None:
            return None     # not enabled
        din, trouble = self.din, self.din.trouble()
        state = ("connected" if din.connected else "lost, tried again every 2 s" if din.was_connected
                 else "cannot open it, tried again every 2 s: check din.device and the UART (see the log)")
        return f"{din.device} ({state}{'; ' + trouble if trouble else ''})"

    def connect_hints(self) -> list[str]:
        """Which port to connect to which, with the command (the log at start, status)."""
        ports = self.ports
        if ports is None:
            return [] if alsa_sequencer_present() else [no_midi_system()]
        box_in, box_out = self._own_ports
        if not box_in:
            return []
        sources, destinations = ports.seen
        connected = ports.connected()
        heard = [n for n in connected["inputs"] if not n.endswith("(virtual)")]
        played_to = [n for n in connected["outputs"] if not n.endswith("(virtual)")]
        return connect_hints(ports.backend.api, box_in, box_out, sources, destinations,
                             heard, played_to)

    def view(self) -> PortsView:
        """The MIDI side as status shows it, from what the ports already keep (cheap)."""
        ports, din = self.ports, self.din
        din_line, din_ok, hints = self.din_status(), din is not None and din.connected, tuple(self.connect_hints())
        if ports is None:
            return PortsView(usb_off=self.usb_off or "see the log", din=din_line, din_ok=din_ok, hints=hints)
        connected = ports.connected()
        sources, destinations = ports.seen
        inputs, outputs = ports.patterns
        return PortsView(api=ports.backend.api, input_patterns=tuple(inputs),
                         output_patterns=tuple(outputs), sources=tuple(sources),
                         destinations=tuple(destinations), inputs=tuple(connected["inputs"]),
                         outputs=tuple(connected["outputs"]), din=din_line, din_ok=din_ok, hints=hints)

    def ports_line(self) -> str:
        usb = self.connected()
        din = "" if self.din is None else f", DIN {self.din.device}" + ("" if self.din.connected else " (not open yet)")
        return (f"in: {', '.join(usb['inputs']) or 'waiting'}; "
                f"out: {', '.join(usb['outputs']) or 'waiting'}{din}")

    def close(self) -> None:
        """The service's stop (the process ends next): DIN closes, the USB ports are left to the
        exit (:meth:`MidiPorts.leave`)."""
        stops: list[tuple[str, Callable[[], None]]] = []
        if self.ports is not None:
            stops.append(("MidiPorts", self.ports.leave))
        if self.din is not None:
            stops.append(("DinPort", self.din.close))
        for name, stop in stops:
            try:
                stop()
            except Exception:
                log.exception("closing %s failed", name)

    # -- opening ------------------------------------------------------------------------------
    def _backend(self) -> PortBackend | None:
        """The configured MIDI system, else the other one when it works here (logged)."""
        m = self.config.midi
        self._api = m.api
        try:
            return open_backend(m.api, client_name=m.client_name)
        except PortError as first:
            other = "jack" if m.api == "alsa" else "alsa"
            try:
                backend = open_backend(other, client_name=m.client_name)
                self._api = other
            except PortError as second:
                self.usb_off = str(first)
                log.error("USB MIDI off: %s", first)
                jack = first if resolve_api(m.api) == "jack" else second if other == "jack" else None
                if not alsa_sequencer_present() and (jack is None or isinstance(jack, NoServer)):
                    self.usb_off = no_midi_system()
                    log.error("USB MIDI off: %s", self.usb_off)
                return None
            log.warning("USB MIDI: %s; %s works here, using it (set midi.api: %s)",
                        first, other.upper(), other)
            return backend

    def _open_usb(self) -> None:
        backend = self._backend()
        if backend is None:
            return
        m = self.config.midi
        self.ports = MidiPorts(backend, inputs=tuple(m.inputs) or ("*",),
                               outputs=tuple(m.outputs) or ("*",), virtual=m.virtual,
                               on_message=self._on_usb, quiet=self.quiet,
                               # a JACK server that dies and comes back: the same system again
                               reopen=lambda: open_backend(self._api, client_name=m.client_name))
        try:
            self.ports.start()
        except Exception as exc:
            self.usb_off = f"cannot open ports ({exc})"
            log.error("USB MIDI off: cannot open ports (%s)", exc)
            self.ports.close()
            self.ports = None
            return
        box_in, box_out = self.ports.virtual_names
        if box_in:     # once, before the player runs: listing ports is an rtmidi call on ALSA
            self._own_ports = (numbered(box_in, backend.destinations(own=True)),
                               numbered(box_out, backend.sources(own=True)))
        for line in self.connect_hints():
            log.info("%s", line)

    def _open_din(self) -> None:
        d = self.config.din
        if not d.enabled:
            return
        self.din = DinPort(d.device, d.baud, input=d.input, output=d.output, on_message=self._on_din)
        self.din.open()      # not there yet: tried again every 2 s

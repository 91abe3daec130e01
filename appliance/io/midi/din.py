"""5-pin DIN MIDI on a serial device (the Pi's UART), through pyserial.

With the ``midi-uart0`` overlay a requested 38400 baud puts 31250 on the wire, hence a
configurable baud rate. Input bytes go through :class:`MidiParser` on a reader thread;
output goes through a bounded queue to a writer thread (the player never waits for the
UART), with running status (refreshed every second so a receiver that missed a status byte
recovers). A missing device leaves DIN off with one log line; a device that vanishes while
open is retried every ``retry_s`` seconds, quietly, and comes back on its own.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Callable

import mido
import serial

from appliance.io.midi.backend import stale_controls
from appliance.io.midi.parser import MidiEncoder, MidiParser

log = logging.getLogger(__name__)

MessageCallback = Callable[[mido.Message, float], None]

#: a note-on that waited longer than this for the UART is dropped, never played late (the
#: player's own ``max_late``): after a stall, a drum machine got 94 stale hits in 250 ms
STALE_S = 0.05


class DinPort:
    """One UART, in and/or out. ``open()`` returns False (and logs why) when the device
    cannot be opened; the rest of the box carries on without DIN."""

    def __init__(self, device: str = "/dev/ttyAMA0", baud: int = 38400, *,
                 input: bool = True, output: bool = True,
                 on_message: MessageCallback | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 retry_s: float = 2.0, status_refresh_s: float = 1.0,
                 note_off_as_note_on: bool = True) -> None:
        self.device = device
        self.baud = baud
        self.input = input
        self.output = output
        self.on_message = on_message
        self.clock = clock
        self.retry_s = retry_s
        self.status_refresh_s = status_refresh_s
        self.parser = MidiParser()
        self._encoder = MidiEncoder(note_off_as_note_on=note_off_as_note_on)
        self._serial: serial.Serial | None = None
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_status_write = 0.0
        self.write_errors = 0
        self.sent = 0
        self.dropped = 0
        self._garbage_reported = 0
        self._long_reported = 0
        self.stale = 0                   #: note-ons dropped after waiting longer than ``STALE_S``
        self._outbox: queue.Queue[tuple[mido.Message, float] | None] = queue.Queue(maxsize=1024)
        self._writer: threading.Thread | None = None

    @property
    def connected(self) -> bool:
        return self._serial is not None

    def open(self) -> bool:
        if not self._open_serial(first=True):
            return False
        self._thread = threading.Thread(target=self._run, name="din-midi", daemon=True)
        self._thread.start()
        self._writer = threading.Thread(target=self._write_loop, name="din-midi-out", daemon=True)
        self._writer.start()
        return True

    def _open_serial(self, first: bool) -> bool:
        try:
            port = serial.Serial(self.device, self.baud, timeout=0.1, write_timeout=0.05)
        except (serial.SerialException, OSError, ValueError) as exc:
            if first:
                log.warning("DIN MIDI off: cannot open serial device %s (%s); check din.device "
                            "and that the UART is enabled (dtoverlay=midi-uart0), "
                            "USB MIDI carries on", self.device, _reason(exc))
            return False
        with self._write_lock:
            self._serial = port
            self._encoder.reset()
        self.parser.reset()
        if not first:
            log.info("DIN MIDI back on %s", self.device)
        else:
            log.info("DIN MIDI on %s at %d baud (in=%s, out=%s)", self.device, self.baud,
                     self.input, self.output)
        return True

    def send(self, message: mido.Message) -> None:
        """Queue one message for the writer thread; never blocks, never raises. A full queue
        (a stuck UART) drops the message and counts it."""
        if not self.output or self._serial is None:
            return
        try:
            self._outbox.put_nowait((message, self.clock()))
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("DIN MIDI output stuck on %s: %d message(s) dropped", self.device,
                            self.dropped)

    def _write_loop(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._outbox.get(timeout=0.2)
            except queue.Empty:
                continue
            if item is None:
                return
            message, queued = item
            if message.type == "note_on" and message.velocity > 0 and self.clock() - queued > STALE_S:
                self.stale += 1            # note-offs still go: nothing is left hanging
                if self.stale == 1 or self.stale % 1000 == 0:
                    log.warning("DIN MIDI output on %s held up: %d note(s) dropped rather than "
                                "played late", self.device, self.stale)
                continue
            self._write(message)

    def flush(self, timeout: float = 1.0) -> None:
        """Wait (a little) until the queued messages are written."""
        deadline = self.clock() + timeout
        while not self._outbox.empty() and self.clock() < deadline:
            time.sleep(0.005)

    def _write(self, message: mido.Message) -> None:
        with self._write_lock:
            port = self._serial
            if port is None:
                return
            now = self.clock()
            if now - self._last_status_write > self.status_refresh_s:
                self._encoder.reset()
            data = self._encoder.encode(message)
            if data and data[0] >= 0x80 and data[0] < 0xF8:
                self._last_status_write = now
            try:
                port.write(data)
                self.sent += 1
            except (serial.SerialException, OSError) as exc:
                self.write_errors += 1
                self._encoder.reset()
                if self.write_errors == 1 or self.write_errors % 1000 == 0:
                    log.warning("DIN MIDI write failed on %s (%s), %d so far",
                                self.device, _reason(exc), self.write_errors)

    def _run(self) -> None:
        while not self._stop.is_set():
            port = self._serial
            if port is None:
                if self._stop.wait(self.retry_s):
                    return
                self._open_serial(first=False)
                continue
            try:
                data = port.read(max(1, port.in_waiting))
            except (serial.SerialException, OSError, TypeError) as exc:
                if self._stop.is_set():
                    return
                log.warning("DIN MIDI lost on %s (%s); retrying every %.0f s",
                            self.device, _reason(exc), self.retry_s)
                self._drop_serial()
                continue
            if not data or not self.input:
                continue
            t = self.clock()
            messages = list(self.parser.feed(data))
            stale = stale_controls([m.bytes() for m in messages])   # a knob read at its newest value
            for k, message in enumerate(messages):
                if k in stale:
                    continue
                if self.on_message is not None:
                    try:
                        self.on_message(message, t)
                    except Exception:  # a bug downstream must not kill the reader
                        log.exception("DIN MIDI input handler failed")
            self._report_garbage()

    def _report_garbage(self) -> None:
        stats = self.parser.stats
        if stats.long_sysex and (self._long_reported == 0 or stats.long_sysex >= 10 * self._long_reported):
            self._long_reported = stats.long_sysex
            log.warning("DIN MIDI on %s: %d SysEx message(s) longer than %d bytes skipped (a patch "
                        "dump or a firmware update on this cable? the box needs none)",
                        self.device, stats.long_sysex, self.parser.max_sysex)
        bad = stats.dropped_bytes + stats.broken_sysex
        if bad and (self._garbage_reported == 0 or bad >= 10 * self._garbage_reported):
            self._garbage_reported = bad
            log.warning("DIN MIDI on %s: %d stray byte(s) dropped so far, %d good messages; "
                        "if this grows, check din.baud (38400 with the midi-uart0 overlay) and "
                        "the MIDI IN wiring (optocoupler)", self.device, bad, stats.messages)

    def trouble(self) -> str:
        """What went wrong on this cable so far, in words ("" when nothing did): the status's
        ``din`` line, so a bad cable or a wrong ``din.baud`` shows at the desk too."""
        stats = self.parser.stats
        said = ((stats.dropped_bytes + stats.broken_sysex, "{} stray bytes in"),
                (stats.long_sysex, "{} long SysEx skipped"),
                (self.stale, "{} late notes dropped"),
                (self.dropped, "{} messages dropped (output stuck)"),
                (self.write_errors, "{} write errors"))
        return "; ".join(text.format(n) for n, text in said if n)

    def _drop_serial(self) -> None:
        with self._write_lock:
            port, self._serial = self._serial, None
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError):
                pass

    def close(self) -> None:
        if self._writer is not None:
            self.flush()                 # the last note-offs go out first
        self._stop.set()
        for thread in (self._thread, self._writer):
            if thread is not None:
                thread.join(timeout=2.0)
        self._drop_serial()


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

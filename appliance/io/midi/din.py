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
import termios
import threading
import time
from typing import Callable

import mido
import serial

from appliance.io.midi.backend import stale_controls
from appliance.io.midi.din_line import HeldLine, SlaveClock
from appliance.io.midi.parser import MidiEncoder, MidiParser

log = logging.getLogger(__name__)

MessageCallback = Callable[[mido.Message, float], None]

#: what a serial device that went away (a USB-serial adapter pulled) raises: pyserial's own, the
#: OS's, and termios.error, which is no OSError (tcflush on a hung-up tty: EIO)
SERIAL_ERRORS = (serial.SerialException, OSError, termios.error)

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
        self.was_connected = False       #: the device was open once (lost, not missing from the start)
        self.caught_up = 0               #: times the slave was put back after the UART held its clock up
        self.held_up = 0                 #: times the line was found held up and its queue discarded
        self.failures = 0                #: unexpected errors the reader or the writer carried on after
        self.line = HeldLine()           # the writer thread's own, under the write lock
        self._open_failed = ""           # why the last try to open the device failed
        self.slave = SlaveClock()        # the writer thread's own
        self._outbox: queue.Queue[tuple[mido.Message, float] | None] = queue.Queue(maxsize=1024)
        self._writer: threading.Thread | None = None

    @property
    def connected(self) -> bool:
        return self._serial is not None

    def open(self) -> bool:
        """Open the device and start the reader and writer; False when it is not there yet: it is
        tried again every ``retry_s`` (a USB-serial adapter plugged in after boot), as after a loss."""
        opened = self._open_serial(first=True)
        self._thread = threading.Thread(target=self._run, name="din-midi", daemon=True)
        self._thread.start()
        self._writer = threading.Thread(target=self._write_loop, name="din-midi-out", daemon=True)
        self._writer.start()
        return opened

    def _open_serial(self, first: bool) -> bool:
        try:
            port = serial.Serial(self.device, self.baud, timeout=0.1, write_timeout=0.05)
        except (*SERIAL_ERRORS, ValueError) as exc:
            reason, said = _reason(exc), self._open_failed
            self._open_failed = reason
            if first:
                log.warning("DIN MIDI off: cannot open serial device %s (%s); check din.device "
                            "and that the UART is enabled (dtoverlay=midi-uart0); tried again every "
                            "%.0f s, USB MIDI carries on", self.device, reason, self.retry_s)
            elif reason != said:           # it came, but cannot be opened (under the service: a restart)
                log.warning("DIN MIDI: %s still cannot be opened, now: %s%s", self.device, reason,
                            "; the service was started before its driver was loaded, so it may not "
                            "open it: restart the box (sudo systemctl restart groovebox)"
                            if "Operation not permitted" in reason else "")
            return False
        self._open_failed = ""
        with self._write_lock:
            self._serial = port
            self._encoder.reset()
        self.parser.reset()
        self.was_connected, was = True, self.was_connected
        if not first and was:
            log.info("DIN MIDI back on %s", self.device)
        elif not first:
            log.info("DIN MIDI on %s at %d baud (in=%s, out=%s): it came after the start", self.device,
                     self.baud, self.input, self.output)
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
            try:
                self._write_item(*item)
            except Exception:  # noqa: BLE001 - one message must never end DIN output for the night
                self._failed("output")

    def _write_item(self, message: mido.Message, queued: float) -> None:
        if message.type == "clock":
            self._write_clock(self.clock() - queued > STALE_S)
            return
        if message.type == "note_on" and message.velocity > 0 and self.clock() - queued > STALE_S:
            self.stale += 1            # note-offs still go: nothing is left hanging
            if self.stale == 1 or self.stale % 1000 == 0:
                log.warning("DIN MIDI output on %s held up: %d note(s) dropped rather than "
                            "played late", self.device, self.stale)
            return
        self._write_and_count(message)

    def _write_and_count(self, message: mido.Message) -> bool:
        """Write, and keep count of where the slave stands: a failed write discarded what the tty
        held, clocks perhaps among it."""
        written = self._write(message)
        if written:
            self.slave.passed(message)
        else:
            self.slave.failed(message)
        return written

    def _write_clock(self, stale: bool) -> None:
        """One clock: a stale one is dropped (the slave is put back later, never rushed through
        a burst); the first fresh one on a sixteenth after that brings Stop, Song Position, Continue."""
        slave, clock = self.slave, mido.Message("clock")
        if stale:
            slave.failed(clock)
            return
        first = slave.catch_up()
        if first is None:
            return
        if first:
            for message in first:          # all three, or it is tried again on the next sixteenth
                if not self._write(message):
                    slave.failed(clock)
                    return
            slave.caught_up()
            self.caught_up += 1
            if self.caught_up in (1, 10, 100) or self.caught_up % 1000 == 0:
                log.warning("DIN MIDI output on %s was held up: the drum machine's clock is put back on "
                            "sixteenth %d (Song Position and Continue; %d time(s) so far)",
                            self.device, first[1].pos, self.caught_up)
        self._write_and_count(clock)

    def flush(self, timeout: float = 1.0) -> None:
        """Wait (a little) until the queued messages are written."""
        deadline = self.clock() + timeout
        while not self._outbox.empty() and self.clock() < deadline:
            time.sleep(0.005)

    def _write(self, message: mido.Message) -> bool:
        """Write one message; False if it did not go (what the tty held is then discarded:
        stale bytes never come out in a burst when the line frees)."""
        with self._write_lock:
            port = self._serial
            if port is None:
                return False
            now = self.clock()
            if self._held(port, now):
                return False
            if now - self._last_status_write > self.status_refresh_s:
                self._encoder.reset()
            data = self._encoder.encode(message)
            if data and data[0] >= 0x80 and data[0] < 0xF8:
                self._last_status_write = now
            return self._put(port, message, data, now)

    def _put(self, port: serial.Serial, message: mido.Message, data: bytes, now: float) -> bool:
        """Bytes onto the wire (under the write lock); False, and what the tty held discarded, on a failure."""
        try:
            port.write(data)
        except SERIAL_ERRORS as exc:
            self.write_errors += 1
            self._discard(port, now, message)
            if self.write_errors == 1 or self.write_errors % 1000 == 0:
                log.warning("DIN MIDI write failed on %s (%s), %d so far",
                            self.device, _reason(exc), self.write_errors)
            return False
        self.sent += 1
        self.line.wrote(message, len(data))
        return True

    def _discard(self, port: serial.Serial, now: float, failed: mido.Message | None = None) -> None:
        """Throw away what waits in the tty (under the write lock): the notes that went into it are
        owed their note-offs once the line frees, and the slave is put back."""
        try:
            port.reset_output_buffer()
        except SERIAL_ERRORS:
            pass
        self._encoder.reset()
        self.line.discarded(now, failed)
        self.slave.lost()

    def _held(self, port: serial.Serial, now: float) -> bool:
        """Whether the line is held up (under the write lock): then what waits in the tty is
        discarded; once bytes leave again, the note-offs owed go first."""
        try:
            waiting = port.out_waiting
        except (*SERIAL_ERRORS, ValueError):
            waiting = 0
        if self.line.looked(waiting, now):
            self._discard(port, now)
            self.held_up += 1
            if self.held_up in (1, 10, 100) or self.held_up % 1000 == 0:
                log.warning("DIN MIDI output on %s is held up (the far end takes no bytes: a held CTS, "
                            "a stuck adapter?): what waited is dropped, %d time(s) so far", self.device,
                            self.held_up)
            return True
        for channel, note in self.line.to_pay():
            off = mido.Message("note_off", channel=channel, note=note, velocity=0)
            if not self._put(port, off, self._encoder.encode(off), now):
                return True                # the rest stays owed
            self.line.paid((channel, note))
        return False

    def _run(self) -> None:
        while not self._stop.is_set():
            port = self._serial
            if port is None:
                if self._stop.wait(self.retry_s):
                    return
                try:
                    self._open_serial(first=False)
                except Exception as exc:  # noqa: BLE001 - the retries must outlive a device that misbehaves
                    reason = f"{type(exc).__name__}: {exc}"
                    if reason != self._open_failed:      # once a reason, not every retry
                        self._open_failed = reason
                        log.exception("DIN MIDI: opening %s failed; tried again every %.0f s",
                                      self.device, self.retry_s)
                continue
            try:
                data = port.read(max(1, port.in_waiting))
            except (*SERIAL_ERRORS, TypeError) as exc:
                if self._stop.is_set():
                    return
                log.warning("DIN MIDI lost on %s (%s); retrying every %.0f s",
                            self.device, _reason(exc), self.retry_s)
                self._drop_serial()
                continue
            if not data or not self.input:
                continue
            try:
                self._hear(data, self.clock())
            except Exception:  # noqa: BLE001 - a bug in here must not end DIN input for the night
                self._failed("input")

    def _hear(self, data: bytes, t: float) -> None:
        messages = list(self.parser.feed(data))
        stale = stale_controls([m.bytes() for m in messages])   # a knob read at its newest value
        for k, message in enumerate(messages):
            if k in stale or self.on_message is None:
                continue
            try:
                self.on_message(message, t)
            except Exception:  # noqa: BLE001 - a bug downstream costs one message, not the rest
                self._failed("input")
        self._report_garbage()

    def _failed(self, side: str) -> None:
        """An unexpected error the reader or the writer carries on after: counted, and logged
        the 1st, 10th, 100th … time."""
        self.failures += 1
        if self.failures in (1, 10, 100) or self.failures % 1000 == 0:
            log.exception("DIN MIDI %s on %s failed (%d time(s)); it carries on", side, self.device,
                          self.failures)

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
                (self.write_errors, "{} write errors"),
                (self.held_up, "line held up {} time(s)"),
                (self.failures, "{} unexpected errors (see the log)"),
                (self.caught_up, "the drum machine's clock put back {} time(s) after a stall"))
        return "; ".join(text.format(n) for n, text in said if n)

    def _drop_serial(self) -> None:
        with self._write_lock:
            port, self._serial = self._serial, None
        if port is not None:
            try:
                port.close()
            except SERIAL_ERRORS:
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

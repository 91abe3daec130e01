"""MIDI byte streams ↔ mido messages, for wires that carry raw bytes (DIN over a UART).

The parser survives what real cables deliver: running status, realtime bytes (clock,
start, stop) in the middle of a message or a sysex, sysex of any length (bounded), and
garbage. A stray data byte with no status is dropped; after garbage the parser resyncs at
the next status byte. Nothing it is fed can raise.

The encoder writes running status: a channel message with the same status byte as the
previous one goes out without it, which is what makes a dense drum part fit on a
31250 baud wire.

Written here because mido's own ``mido.Parser`` does not serve a DIN wire: it ignores
running status (``90 3C 64 3D 64`` gives one note, not two), which every keyboard sends.
"""
from __future__ import annotations

from dataclasses import dataclass

import mido

SYSEX_START = 0xF0
SYSEX_END = 0xF7

#: Data bytes that follow each status byte (channel messages by their high nibble).
_CHANNEL_LENGTH = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}
_COMMON_LENGTH = {0xF1: 1, 0xF2: 2, 0xF3: 1, 0xF6: 0}
_REALTIME = frozenset({0xF8, 0xFA, 0xFB, 0xFC, 0xFE, 0xFF})


@dataclass
class ParserStats:
    messages: int = 0
    dropped_bytes: int = 0   #: stray data bytes, undefined status bytes
    broken_sysex: int = 0    #: sysex cut short by a status byte
    long_sysex: int = 0      #: sysex longer than the limit, skipped to its end whole


class MidiParser:
    """Feed it bytes, get messages back: ``parser.feed(data) -> list[mido.Message]``."""

    def __init__(self, max_sysex: int = 4096) -> None:
        self.max_sysex = max_sysex
        self.stats = ParserStats()
        self._running = 0            # running status (channel messages only)
        self._status = 0             # status of the message being assembled
        self._needed = 0             # data bytes still missing
        self._data: list[int] = []
        self._sysex: list[int] | None = None
        self._skipping = False       # inside a sysex too long to keep: its data is not stray

    def reset(self) -> None:
        self._running = self._status = self._needed = 0
        self._data = []
        self._sysex = None
        self._skipping = False

    def feed(self, data: bytes | bytearray | list[int]) -> list[mido.Message]:
        out: list[mido.Message] = []
        for byte in data:
            message = self.feed_byte(byte & 0xFF)
            if message is not None:
                out.append(message)
        return out

    def feed_byte(self, byte: int) -> mido.Message | None:
        if byte >= 0xF8:                       # realtime: anywhere, disturbs nothing
            if byte in _REALTIME:
                return self._emit([byte])
            self.stats.dropped_bytes += 1      # 0xF9, 0xFD are undefined
            return None
        if self._skipping:
            if byte < 0x80:
                return None
            self._skipping = False
            if byte == SYSEX_END:
                return None
        if self._sysex is not None:
            if byte < 0x80:
                if len(self._sysex) < self.max_sysex:
                    self._sysex.append(byte)
                else:                          # too long: skip it whole, to its end
                    self._sysex = None
                    self.stats.long_sysex += 1
                    self._status = 0
                    self._skipping = True
                return None
            if byte == SYSEX_END:
                data, self._sysex = self._sysex, None
                return self._emit([SYSEX_START, *data, SYSEX_END])
            # Any other status byte ends the sysex (MIDI 1.0); it is then parsed as usual.
            self._sysex = None
            self.stats.broken_sysex += 1
        if byte >= 0x80:
            return self._status_byte(byte)
        return self._data_byte(byte)

    def _status_byte(self, byte: int) -> mido.Message | None:
        if byte < 0xF0:
            self._running = self._status = byte
            self._needed = _CHANNEL_LENGTH[byte & 0xF0]
            self._data = []
            return None
        self._running = 0                      # system common cancels running status
        self._status = 0
        if byte == SYSEX_START:
            self._sysex = []
            return None
        if byte in _COMMON_LENGTH:
            if _COMMON_LENGTH[byte] == 0:
                return self._emit([byte])
            self._status, self._needed, self._data = byte, _COMMON_LENGTH[byte], []
            return None
        self.stats.dropped_bytes += 1          # a stray 0xF7, or undefined 0xF4 / 0xF5
        return None

    def _data_byte(self, byte: int) -> mido.Message | None:
        if not self._status:
            if not self._running:
                self.stats.dropped_bytes += 1
                return None
            self._status = self._running        # running status: reuse the last status
            self._needed = _CHANNEL_LENGTH[self._running & 0xF0]
            self._data = []
        self._data.append(byte)
        if len(self._data) < self._needed:
            return None
        status, data = self._status, self._data
        self._status, self._data = 0, []
        return self._emit([status, *data])

    def _emit(self, raw: list[int]) -> mido.Message | None:
        try:
            message = mido.Message.from_bytes(raw)
        except (ValueError, TypeError):
            self.stats.dropped_bytes += len(raw)
            return None
        self.stats.messages += 1
        return message


class MidiEncoder:
    """Messages → bytes with running status. ``note_off_as_note_on`` sends note-offs as
    note-on velocity 0 so that a whole drum part can share one status byte."""

    def __init__(self, note_off_as_note_on: bool = False) -> None:
        self.note_off_as_note_on = note_off_as_note_on
        self._running = 0

    def reset(self) -> None:
        """Forget the running status (after a write error, or to resync a receiver)."""
        self._running = 0

    def encode(self, message: mido.Message) -> bytes:
        if self.note_off_as_note_on and message.type == "note_off":
            message = mido.Message("note_on", channel=message.channel, note=message.note,
                                   velocity=0)
        raw = message.bytes()
        status = raw[0]
        if status >= 0xF8:                     # realtime does not touch running status
            return bytes(raw)
        if status >= 0xF0:
            self._running = 0
            return bytes(raw)
        if status == self._running:
            return bytes(raw[1:])
        self._running = status
        return bytes(raw)

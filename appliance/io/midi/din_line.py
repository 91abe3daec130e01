"""What a DIN output cable has let through: the slaved drum machine's clock, and a line held up.

No serial port here: :class:`~appliance.io.midi.din.DinPort`'s writer thread tells these what it
wrote and what its tty's queue holds, and asks what to send first.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import mido

from appliance.core.clock import CLOCKS_PER_STEP

#: a line whose tty queue has not gone down for this long is held up (a held CTS, a stuck
#: USB-serial adapter): at 31250 baud a few bytes leave in a millisecond
HELD_S = 0.05

Key = tuple[int, int]   #: (channel, note)


@dataclass
class SlaveClock:
    """Where the drum machine slaved to this cable stands, counted from the clock bytes that went
    out: clocks dropped while the UART was held up leave it ``behind``, to be put back with Stop,
    Song Position and Continue on the next sixteenth (a burst of 631 stale clocks after a 15 s
    stall threw a slave 26 beats ahead: a stage tech's review, session 52)."""

    running: bool = False
    index: int = 0           #: clocks since Start (Song Position · 6)
    behind: bool = False

    def passed(self, message: mido.Message) -> None:
        """A clock, Start, Continue, Stop or Song Position went out."""
        if message.type == "clock":
            self.index += 1
        elif message.type == "start":
            self.running, self.index, self.behind = True, 0, False
        elif message.type == "continue":
            self.running = True
        elif message.type == "stop":
            self.running, self.behind = False, False
        elif message.type == "songpos":
            self.index = message.pos * CLOCKS_PER_STEP

    def failed(self, message: mido.Message) -> None:
        """A message that did not go out (or may have been thrown away with the tty's queue): the
        box's transport moved on all the same, and the slave is put back when it can be."""
        if message.type == "stop":
            self.running, self.behind = False, False     # the box stopped: nothing to catch up
            return
        if message.type == "clock":
            self.index += 1
        elif message.type in ("start", "continue"):
            self.running, self.index = True, 0 if message.type == "start" else self.index
        elif message.type == "songpos":
            self.index = message.pos * CLOCKS_PER_STEP
        self.behind = self.behind or self.running

    def lost(self) -> None:
        """What the tty held was thrown away: clocks perhaps among it."""
        self.behind = self.behind or self.running

    def catch_up(self) -> list[mido.Message] | None:
        """Before the next clock: None to drop it (not yet on a sixteenth; counted), [] when the
        slave is where the box is, else Stop, Song Position and Continue to send first (the
        caller says :meth:`caught_up` once they all went out)."""
        if not self.behind:
            return []
        if self.index % CLOCKS_PER_STEP:
            self.index += 1
            return None
        return [mido.Message("stop"), mido.Message("songpos", pos=self.index // CLOCKS_PER_STEP % 16384),
                mido.Message("continue")]

    def caught_up(self) -> None:
        self.behind = False


@dataclass
class HeldLine:
    """Whether the far end takes the bytes, from the tty's queue (``out_waiting``): a queue that
    has not gone down for ``HELD_S`` is held up, and is thrown away (no stale burst when it frees:
    the age counts, not the bytes; a code review measured 1 s of stale drums at 128 bytes). The
    notes that may have been thrown away with it are owed a note-off, paid once bytes leave again."""

    drained_at: float = 0.0          #: when the queue last went down (or was empty)
    waiting: int = 0                 #: bytes in the queue when last looked
    written: int = 0                 #: bytes written since
    freed: bool = True               #: bytes have left since the last discard
    recent: set[Key] = field(default_factory=set)    #: notes written since the queue was last empty
    owed: set[Key] = field(default_factory=set)      #: note-offs to send once the line frees

    def looked(self, waiting: int, now: float) -> bool:
        """The queue holds ``waiting`` bytes now: True if the line is held up (discard it)."""
        moved = waiting < self.waiting + self.written     # some of it left
        self.waiting, self.written = waiting, 0
        if moved:
            self.freed = True
        if moved or waiting == 0:
            self.drained_at = now
            if waiting == 0:
                self.recent.clear()
            return False
        return now - self.drained_at > HELD_S

    def wrote(self, message: mido.Message, size: int) -> None:
        self.written += size
        if message.type in ("note_on", "note_off"):
            self.recent.add((message.channel, message.note))

    def discarded(self, now: float, failed: mido.Message | None = None) -> None:
        """The queue was thrown away (held up, or a write timed out on ``failed``)."""
        self.owed |= self.recent
        if failed is not None and failed.type in ("note_on", "note_off"):
            self.owed.add((failed.channel, failed.note))
        self.recent.clear()
        self.waiting = self.written = 0
        self.drained_at, self.freed = now, False

    def to_pay(self) -> list[Key]:
        """The note-offs owed, once the line has let bytes through since its discard."""
        return sorted(self.owed) if self.freed else []

    def paid(self, key: Key) -> None:
        self.owed.discard(key)

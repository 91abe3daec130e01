"""The box's own drums heard back: a drum machine with MIDI thru (or echo) on returns every
note the box sends it, and heard as the player's, they would join the groove: the drummer
listening to itself. A note on, or off, on the channel and note of one the box sent less than
``ECHO_S`` before is its own, and is dropped (``MidiRouting.on_input``)."""
from __future__ import annotations

from collections import deque
import threading
import time
from typing import Callable

import mido

ECHO_S = 0.1          #: a note heard this soon after the box sent it, on its channel and note, is its own
KEPT = 512            #: the notes sent that are remembered (a few bars of a busy pattern)


def _kind(message: mido.Message) -> str:
    """"on" or "off" (a note-on at velocity 0 is an off: running status on the way back)."""
    return "on" if message.type == "note_on" and message.velocity > 0 else "off"


class OwnNotes:
    """The notes the box sent lately, and whether one heard is one of them coming back."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._sent: deque[tuple[float, str, int, int]] = deque(maxlen=KEPT)
        self._lock = threading.Lock()      # the player sends, the input threads hear

    def sent(self, message: mido.Message) -> None:
        if message.type in ("note_on", "note_off"):
            with self._lock:
                self._sent.append((self.clock(), _kind(message), message.channel, message.note))

    def heard_back(self, message: mido.Message, t: float) -> bool:
        """Whether ``message`` (arrived at ``t``) is one the box sent; each sent note matches once."""
        if message.type not in ("note_on", "note_off"):
            return False
        kind = _kind(message)
        with self._lock:
            for i, (at, k, channel, note) in enumerate(self._sent):
                if k == kind and channel == message.channel and note == message.note \
                        and -0.01 <= t - at <= ECHO_S:
                    del self._sent[i]
                    return True
        return False

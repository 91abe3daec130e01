"""OwnNotes: the box's own drums heard back through a drum machine's MIDI thru."""
from __future__ import annotations

import mido

from appliance.box.echo import ECHO_S, OwnNotes


class Now:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_a_note_the_box_sent_comes_back_once_and_only_on_its_channel_note_and_time() -> None:
    now = Now(10.0)
    own = OwnNotes(clock=now)
    kick = mido.Message("note_on", channel=9, note=36, velocity=100)
    own.sent(kick)
    own.sent(mido.Message("note_off", channel=9, note=36))
    assert not own.heard_back(mido.Message("note_on", channel=0, note=36, velocity=100), 10.003)  # the keyboard
    assert not own.heard_back(mido.Message("note_on", channel=9, note=38, velocity=100), 10.003)
    assert own.heard_back(kick, 10.003)
    assert not own.heard_back(kick, 10.004)                       # each note sent matches once
    assert own.heard_back(mido.Message("note_on", channel=9, note=36, velocity=0), 10.004)   # an off
    now.t = 20.0
    own.sent(kick)
    assert not own.heard_back(kick, 20.0 + ECHO_S + 0.01)           # too late to be its own
    assert not own.heard_back(mido.Message("control_change", channel=9, control=7, value=1), 20.0)

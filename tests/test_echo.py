"""OwnNotes: the box's own drums heard back through a drum machine's MIDI thru."""
from __future__ import annotations

import mido

from appliance.box.echo import ARM, ARMED_S, ECHO_S, OwnNotes


class Now:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def kick(velocity: int = 100, channel: int = 0, note: int = 60) -> mido.Message:
    """volca-drum's kick: middle C on channel 1, the keyboard's own channel."""
    return mido.Message("note_on", channel=channel, note=note, velocity=velocity)


def test_a_player_on_the_drums_channel_and_note_is_heard() -> None:
    """No echo anywhere: the player's middle C 15 ms after each kick is the player's, even at
    the kick's velocity now and then (one match is not an echo)."""
    now = Now(10.0)
    own = OwnNotes(clock=now)
    for bar in range(16):
        now.t = 10.0 + bar * 0.5
        own.sent(kick(100))
        own.sent(mido.Message("note_off", channel=0, note=60))
        velocity = 100 if bar == 3 else 80 + bar
        assert not own.heard_back(kick(velocity), now.t + 0.015, "usb keys")
        assert not own.heard_back(mido.Message("note_off", channel=0, note=60), now.t + 0.02, "usb keys")
    assert not own.echoes("usb keys")


def test_an_input_that_echoes_is_found_and_only_its_echoes_are_dropped() -> None:
    """Byte for byte back within ECHO_S: after ARM matches the input echoes, and from then on
    each sent note is dropped once per input (USB and DIN both echoing), note-offs too; its
    own pads, and anything too late, are heard."""
    now = Now(10.0)
    own = OwnNotes(clock=now)
    verdicts = []
    for k in range(ARM + 3):
        now.t = 10.0 + k * 0.25
        own.sent(kick(100 - k))
        verdicts.append(own.heard_back(kick(100 - k), now.t + 0.004, "usb TR-8"))
    assert verdicts == [False] * (ARM - 1) + [True] * 4 and own.echoes("usb TR-8")   # ARM - 1 heard
    now.t = 12.0
    own.sent(kick(90, channel=9, note=36))
    own.sent(mido.Message("note_off", channel=9, note=36))
    assert own.heard_back(kick(90, channel=9, note=36), 12.003, "usb TR-8")
    assert not own.heard_back(kick(90, channel=9, note=36), 12.004, "usb TR-8")     # once per input
    assert not own.heard_back(kick(90, channel=9, note=36), 12.005, "din")          # not an echoing input
    assert own.heard_back(mido.Message("note_on", channel=9, note=36, velocity=0), 12.006, "usb TR-8")
    assert not own.heard_back(kick(70, channel=9, note=38), 12.007, "usb TR-8")     # its own pad
    own.sent(kick(90, channel=9, note=36))
    assert not own.heard_back(kick(90, channel=9, note=36), 12.0 + ECHO_S + 0.02, "usb TR-8")
    assert not own.heard_back(mido.Message("control_change", channel=9, control=7, value=1), 12.0, "usb TR-8")
    now.t = 12.0 + ARMED_S + 1.0                                   # no echo for a while: not armed
    assert not own.echoes("usb TR-8")


def test_a_sparse_echo_is_found_and_a_note_heard_before_keeps_its_note_off() -> None:
    """Half notes at 60 BPM (one every 2 s) come back: found after ARM in a row all the same.
    The notes heard before that were taken as played, so their note-offs are heard too (the
    engine would hold those keys down otherwise); a dropped note's note-off is dropped."""
    now = Now(10.0)
    own = OwnNotes(clock=now)
    verdicts = []
    for k in range(ARM + 2):
        now.t = 10.0 + 2.0 * k
        own.sent(kick(90, channel=9, note=36 + k))
        verdicts.append(own.heard_back(kick(90, channel=9, note=36 + k), now.t + 0.003, "usb"))
        now.t += 0.5
        own.sent(mido.Message("note_off", channel=9, note=36 + k))
        verdicts.append(own.heard_back(mido.Message("note_off", channel=9, note=36 + k), now.t + 0.003, "usb"))
    assert verdicts == [False] * (2 * (ARM - 1)) + [True] * 6


def test_a_player_at_the_boxs_velocity_right_behind_its_hits_is_heard() -> None:
    """A fixed-velocity keyboard (127) on the drums' channel and note, played on each downbeat
    just after the box's kick: exact matches, but a player's lag wanders (here 5-35 ms), an
    echo's does not, so the input is not taken for one that echoes."""
    import random
    rng = random.Random(3)
    now = Now(10.0)
    own = OwnNotes(clock=now)
    dropped = 0
    for bar in range(64):
        now.t = 10.0 + 2.0 * bar
        own.sent(kick(127))
        dropped += own.heard_back(kick(127), now.t + rng.uniform(0.005, 0.035), "usb keys")
    assert dropped <= 3


def test_an_echo_is_found_with_a_player_on_the_same_input() -> None:
    """On JACK every USB device is one input: the player's notes come between the echoes and
    break no run; the echoes are found, the player's notes are heard."""
    now = Now(10.0)
    own = OwnNotes(clock=now)
    echoes, played = [], []
    for beat in range(12):
        now.t = 10.0 + 0.7 * beat
        own.sent(kick(100 - beat, channel=9, note=36))
        echoes.append(own.heard_back(kick(100 - beat, channel=9, note=36), now.t + 0.003, "usb"))
        played.append(own.heard_back(kick(64, channel=0, note=60 + beat), now.t + 0.2, "usb"))
    assert echoes == [False] * (ARM - 1) + [True] * (12 - ARM + 1) and not any(played)


def test_an_echo_through_large_jack_cycles_is_found() -> None:
    """On a JACK server with 1024-frame cycles (21 ms at 48 kHz) a note leaves at the next
    cycle's start and is stamped with the time of the cycle it is read in: each echo's lag
    wanders over a whole cycle. Told the cycle (``grain``), the input is found to echo; with a
    millisecond's grain it is not."""
    import random
    cycle = 1024 / 48000
    for grain, found in ((cycle, True), (0.0, False)):
        rng = random.Random(5)
        now = Now(10.0)
        own = OwnNotes(clock=now, grain=lambda source, g=grain: g if source == "usb" else 0.0)
        dropped = []
        for step in range(24):
            now.t = 10.0 + 0.1 * step + rng.uniform(0.0, cycle)     # the player thread's own time
            own.sent(kick(90 + step % 5, channel=9, note=36))
            sent_out = (now.t // cycle + 1) * cycle                  # the next cycle's start
            read = (sent_out + 0.002) // cycle * cycle + cycle       # back 2 ms later, read a cycle on
            dropped.append(own.heard_back(kick(90 + step % 5, channel=9, note=36), read, "usb"))
        assert own.echoes("usb") is found
        assert (sum(dropped) >= 24 - ARM) is found, dropped

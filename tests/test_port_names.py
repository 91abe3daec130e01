"""The box's own JACK ports are named as the docs say, and a second box by the same name is
never taken for a keyboard or a drum machine (its drums would be recorded as notes); a box
restarted after a kill finds its own ports (scripts/jack_kill_restart.py is the slow proof)."""
from __future__ import annotations

import pytest

from appliance.box.config import loads
from appliance.box.midi_routing import MidiRouting
from appliance.io.midi import backend as backend_module
from appliance.io.midi.jack import JackBackend, JackPatchbay, _ours
from tests.jackserver import jack  # noqa: F401


def test_two_boxes_on_one_jack_server_keep_out_of_each_other(jack):
    first = JackBackend("gb-names")
    second = None
    try:
        assert (first.input_port, first.output_port) == ("gb-names:in", "gb-names-out:out")
        second = JackBackend("gb-names")
        # JACK numbers the second box's clients; the names stay recognisable.
        assert second.input_port.startswith("gb-names-") and second.input_port.endswith(":in")
        assert second.output_port.startswith("gb-names-out-") and second.output_port.endswith(":out")
        for box, other in ((first, second), (second, first)):
            assert other.output_port not in box.sources(), "another box's drums are no keyboard"
            assert other.input_port not in box.destinations()
            assert other.output_port in box.sources(own=True)
        assert not first.is_own("gb-names-outboard:out") and not first.is_own("synth:in")
    finally:
        for box in (second, first):
            if box is not None:
                box.close()


def test_the_new_port_is_found_when_a_killed_box_left_its_name_behind() -> None:
    """JACK frees a killed box's port between the two lists; the new one takes its name."""
    assert _ours(["kbd:out", "gb-out:out"], {"kbd:out"}, "gb-out", "out") == "gb-out:out"
    # nothing new by name: the killed box's port was freed and ours took its name
    assert _ours(["kbd:out", "gb-out:out"], {"kbd:out", "gb-out:out"}, "gb-out", "out") == "gb-out:out"
    # a second box by the same name: JACK numbered ours
    assert _ours(["gb-out:out", "gb-out-01:out"], {"gb-out:out"}, "gb-out", "out") == "gb-out-01:out"
    assert _ours(["gb-outboard:out", "gb-out:out"], {"gb-outboard:out", "gb-out:out"}, "gb-out",
                 "out") == "gb-out:out"
    with pytest.raises(backend_module.PortError, match="which JACK port is ours"):
        _ours(["gb-out:out", "gb-out-01:out"], {"gb-out:out", "gb-out-01:out"}, "gb-out", "out")


def test_a_box_started_a_second_after_one_was_killed_opens_its_ports(jack, monkeypatch) -> None:
    """systemd restarts a crashed box a second later. A box killed while it plays leaves its
    ports to JACK for seconds (14-19 s on a jackd without real-time here); when JACK frees them
    while the new box makes its own, the new ports take the old names and nothing looks new.
    Before, that left USB MIDI off (3 times in 4 on such a server). Here the killed box's ports
    are in the list taken before, and gone by the time the new ones are made."""
    listed = {"sources": JackPatchbay.sources, "destinations": JackPatchbay.destinations}
    stale = {"sources": "gb-killed-out:out", "destinations": "gb-killed:in"}
    first = {"sources": True, "destinations": True}

    def with_the_killed_box(kind: str):
        def ports(self: JackPatchbay) -> list[str]:
            names = listed[kind](self)
            if first[kind]:
                first[kind] = False
                names = names + [stale[kind]]
            return names
        return ports
    monkeypatch.setattr(JackPatchbay, "sources", with_the_killed_box("sources"))
    monkeypatch.setattr(JackPatchbay, "destinations", with_the_killed_box("destinations"))
    box = JackBackend("gb-killed")
    try:
        assert (box.input_port, box.output_port) == ("gb-killed:in", "gb-killed-out:out")
        assert box.output_port in box.sources(own=True) and box.input_port in box.destinations(own=True)
    finally:
        box.close()


def test_a_jack_server_that_answers_is_not_called_missing(monkeypatch, caplog) -> None:
    """USB MIDI off because JACK refused: the log does not say there is no JACK server."""
    def refuse(api: str, client_name: str = "groovebox"):
        if api == "jack":
            raise backend_module.PortError("cannot tell which JACK port is ours")
        raise backend_module.PortError("no ALSA sequencer")
    monkeypatch.setattr("appliance.box.midi_routing.open_backend", refuse)
    monkeypatch.setattr("appliance.box.midi_routing.alsa_sequencer_present", lambda: False)
    routing = MidiRouting(loads("midi: {api: jack}\n"), transport=None, engine=None)   # type: ignore[arg-type]
    caplog.set_level("ERROR")
    assert routing._backend() is None
    assert "which JACK port is ours" in routing.usb_off and "no JACK server" not in caplog.text

    def missing(api: str, client_name: str = "groovebox"):
        if api == "jack":
            raise backend_module.NoServer("cannot open the JACK MIDI system")
        raise backend_module.PortError("no ALSA sequencer")
    monkeypatch.setattr("appliance.box.midi_routing.open_backend", missing)
    assert routing._backend() is None
    assert "no JACK server" in routing.usb_off


def test_a_sysex_start_with_no_end_does_not_deafen_the_box(jack) -> None:
    """rtmidi's JACK input drops every event after a stray F0 until one ends with F7: the box
    sends its own input one every EOX_EVERY_S, and does not pass it on."""
    import threading
    import time

    import rtmidi

    heard: list[list[int]] = []
    got = threading.Event()

    def hear(data: list[int], t: float) -> None:
        heard.append(list(data))
        got.set()

    box = JackBackend("gb-eox")
    keyboard = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="gb-eox-keys")
    keyboard.open_virtual_port("out")
    try:
        assert box.is_own(box.eox_port) and box.eox_port not in box.sources()
        box.open_input("gb-eox-keys:out", hear)
        keyboard.send_message([0x90, 60, 100])
        assert got.wait(10), "the keyboard is heard"
        keyboard.send_message([0xF0, 0x01, 0x02, 0x03])       # a sysex start, never ended
        time.sleep(0.05)
        deadline = time.monotonic() + 10
        while [0x90, 61, 100] not in heard and time.monotonic() < deadline:
            keyboard.send_message([0x90, 61, 100])
            time.sleep(0.1)
        assert [0x90, 61, 100] in heard, "the box hears notes again after a stray sysex start"
        assert [0xF7] not in heard, "the end-of-sysex is the box's own, not the keyboard's"
    finally:
        keyboard.close_port()
        keyboard.delete()
        box.close()


def test_ten_thousand_notes_at_once_print_nothing_and_the_box_hears_on(jack, capfd) -> None:
    """rtmidi prints a line to stderr (journald) for every message past a full input queue."""
    import threading
    import time

    import rtmidi

    heard: list[list[int]] = []
    lock = threading.Lock()

    def hear(data: list[int], t: float) -> None:
        with lock:
            heard.append(list(data))

    box = JackBackend("gb-flood")
    keyboard = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="gb-flood-keys")
    keyboard.open_virtual_port("out")
    try:
        box.open_input("gb-flood-keys:out", hear)
        time.sleep(0.2)
        for i in range(10_000):
            keyboard.send_message([0x90, 36 + i % 48, 100])
        deadline = time.monotonic() + 20
        while [0x90, 30, 1] not in heard and time.monotonic() < deadline:
            keyboard.send_message([0x90, 30, 1])
            time.sleep(0.1)
        assert [0x90, 30, 1] in heard, "the box hears the keyboard after the flood"
        assert "queue limit" not in capfd.readouterr().err
    finally:
        keyboard.close_port()
        keyboard.delete()
        box.close()

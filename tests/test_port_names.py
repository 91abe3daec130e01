"""The box's own JACK ports are named as the docs say, and a second box by the same name is
never taken for a keyboard or a drum machine (its drums would be recorded as notes)."""
from __future__ import annotations

from appliance.io.midi.jack import JackBackend
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

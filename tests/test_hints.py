"""The connect lines the box logs and status shows: the real port names, the right tool."""
from appliance.io.midi.hints import connect_hints, no_midi_system, numbered

ALSA_SOURCES = ["Midi Through:Midi Through Port-0 14:0", "Keystation 49:Keystation 49 MIDI 1 24:0"]
ALSA_DESTINATIONS = ["Midi Through:Midi Through Port-0 14:0", "FLUID Synth (1234):Synth input port (1234:0) 128:0"]
ALSA_OWN_IN = ["groovebox:in 130:0"]
ALSA_OWN_OUT = ["groovebox:out 131:0"]


def test_alsa_lines_use_client_port_numbers_and_skip_midi_through():
    box_in, box_out = numbered("groovebox:in", ALSA_OWN_IN), numbered("groovebox:out", ALSA_OWN_OUT)
    keyboard, drums = connect_hints("alsa", box_in, box_out, ALSA_SOURCES, ALSA_DESTINATIONS)
    assert keyboard.endswith("aconnect 24:0 130:0"), keyboard
    assert drums.endswith("aconnect 131:0 128:0"), drums
    assert "Midi Through" not in keyboard + drums


def test_jack_lines_use_full_names_and_say_what_is_connected_already():
    keyboard, drums = connect_hints("jack", "groovebox:in", "groovebox-out:out",
                                    ["a2j:Keystation [24] (capture): MIDI 1"], [],
                                    played_to=[])
    assert keyboard.endswith("jack_connect 'a2j:Keystation [24] (capture): MIDI 1' groovebox:in")
    assert "nothing listens yet" in drums and "jack_connect groovebox-out:out" in drums
    keyboard, drums = connect_hints("jack", "groovebox:in", "groovebox-out:out", ["keys:out"],
                                    ["synth:in"], heard=["keys:out"], played_to=["synth:in"])
    assert "listening to keys:out" in keyboard and "playing to synth:in" in drums


def test_nothing_there_says_what_to_install():
    line = no_midi_system()
    assert "/dev/snd/seq" in line and "apt-get install jackd2" in line and "make run" in line

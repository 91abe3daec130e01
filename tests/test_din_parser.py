"""The DIN byte parser and encoder: running status, realtime inside messages, sysex, garbage."""
from __future__ import annotations

import mido
from hypothesis import given, settings, strategies as st

from appliance.io.midi.parser import MidiEncoder, MidiParser


def kinds(messages):
    return [m.type for m in messages]


def test_plain_messages():
    p = MidiParser()
    out = p.feed(bytes([0x90, 36, 100, 0x80, 36, 0, 0xB0, 7, 99, 0xC0, 5]))
    assert out == [mido.Message("note_on", note=36, velocity=100),
                   mido.Message("note_off", note=36, velocity=0),
                   mido.Message("control_change", control=7, value=99),
                   mido.Message("program_change", program=5)]


def test_running_status_across_feeds():
    p = MidiParser()
    out = p.feed(bytes([0x99, 36, 100, 38]))
    out += p.feed(bytes([90, 42, 0]))
    assert out == [mido.Message("note_on", channel=9, note=36, velocity=100),
                   mido.Message("note_on", channel=9, note=38, velocity=90),
                   mido.Message("note_on", channel=9, note=42, velocity=0)]


def test_realtime_inside_a_message_keeps_it_whole():
    p = MidiParser()
    out = p.feed(bytes([0x90, 0xF8, 60, 0xFA, 100, 61, 0xFC, 101]))
    assert out == [mido.Message("clock"), mido.Message("start"),
                   mido.Message("note_on", note=60, velocity=100),
                   mido.Message("stop"),
                   mido.Message("note_on", note=61, velocity=101)]


def test_sysex_with_clock_inside_and_running_status_cancelled():
    p = MidiParser()
    out = p.feed(bytes([0x90, 60, 100, 0xF0, 0x7E, 0xF8, 0x01, 0xF7, 61, 100, 0x90, 62, 1]))
    assert out == [mido.Message("note_on", note=60, velocity=100),
                   mido.Message("clock"),
                   mido.Message("sysex", data=(0x7E, 0x01)),
                   mido.Message("note_on", note=62, velocity=1)]
    assert p.stats.dropped_bytes == 2   # 61 100 after the sysex had no status to run on


def test_garbage_resyncs_at_the_next_status_byte():
    p = MidiParser()
    out = p.feed(bytes([0x01, 0x02, 0xF4, 0x33, 0xF9, 0xF7, 0x90, 60, 100]))
    assert out == [mido.Message("note_on", note=60, velocity=100)]
    assert p.stats.dropped_bytes == 6


def test_interrupted_message_and_sysex_are_dropped():
    p = MidiParser()
    out = p.feed(bytes([0x90, 60, 0xB0, 1, 2, 0xF0, 1, 2, 3, 0x80, 60, 0]))
    assert out == [mido.Message("control_change", control=1, value=2),
                   mido.Message("note_off", note=60, velocity=0)]
    assert p.stats.broken_sysex == 1


def test_sysex_longer_than_the_limit_is_dropped_and_bounded():
    p = MidiParser(max_sysex=16)
    out = p.feed(bytes([0xF0] + [0x11] * 10_000 + [0xF7, 0x90, 1, 2]))
    assert out == [mido.Message("note_on", note=1, velocity=2)]
    # Skipped whole, to its end: its bytes are not stray (a fault harness heard a patch dump
    # blamed on the baud rate and the wiring, session 47).
    assert p.stats.long_sysex == 1 and p.stats.dropped_bytes == 0 and p.stats.broken_sysex == 0
    out = p.feed(bytes([0xF0] + [0x11] * 100 + [0x90, 3, 4, 0xF0, 1, 0xF7]))   # cut short by a status
    assert out == [mido.Message("note_on", note=3, velocity=4), mido.Message("sysex", data=(1,))]
    assert p.stats.long_sysex == 2 and p.stats.dropped_bytes == 0


def test_system_common_and_songpos():
    p = MidiParser()
    out = p.feed(bytes([0xF2, 0x10, 0x01, 0xF6, 0xF3, 4]))
    assert out == [mido.Message("songpos", pos=0x10 + 128), mido.Message("tune_request"),
                   mido.Message("song_select", song=4)]


def test_encoder_running_status():
    e = MidiEncoder()
    raw = b"".join(e.encode(m) for m in [
        mido.Message("note_on", channel=9, note=36, velocity=100),
        mido.Message("clock"),
        mido.Message("note_on", channel=9, note=38, velocity=90),
        mido.Message("note_off", channel=9, note=36, velocity=0),
        mido.Message("note_off", channel=9, note=38, velocity=0),
        mido.Message("songpos", pos=3),
        mido.Message("note_off", channel=9, note=38, velocity=0),
    ])
    assert raw == bytes([0x99, 36, 100, 0xF8, 38, 90, 0x89, 36, 0, 38, 0,
                         0xF2, 3, 0, 0x89, 38, 0])


def test_encoder_note_off_as_note_on_shares_the_status():
    e = MidiEncoder(note_off_as_note_on=True)
    raw = b"".join(e.encode(m) for m in [
        mido.Message("note_on", channel=9, note=36, velocity=100),
        mido.Message("note_off", channel=9, note=36, velocity=64),
    ])
    assert raw == bytes([0x99, 36, 100, 36, 0])


channel_messages = st.one_of(
    st.builds(lambda c, n, v: mido.Message("note_on", channel=c, note=n, velocity=v),
              st.integers(0, 15), st.integers(0, 127), st.integers(0, 127)),
    st.builds(lambda c, n, v: mido.Message("note_off", channel=c, note=n, velocity=v),
              st.integers(0, 15), st.integers(0, 127), st.integers(0, 127)),
    st.builds(lambda c, n, v: mido.Message("control_change", channel=c, control=n, value=v),
              st.integers(0, 15), st.integers(0, 127), st.integers(0, 127)),
    st.builds(lambda c, p: mido.Message("program_change", channel=c, program=p),
              st.integers(0, 15), st.integers(0, 127)),
    st.builds(lambda c, p: mido.Message("pitchwheel", channel=c, pitch=p),
              st.integers(0, 15), st.integers(-8192, 8191)),
    st.sampled_from([mido.Message("clock"), mido.Message("start"), mido.Message("stop")]),
    st.builds(lambda d: mido.Message("sysex", data=d), st.lists(st.integers(0, 127), max_size=20)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(channel_messages, max_size=40), st.data())
def test_round_trip_with_running_status_and_realtime_sprinkled(messages, data):
    enc = MidiEncoder()
    stream = bytearray()
    for m in messages:
        chunk = enc.encode(m)
        # A clock byte may land between any two bytes of any message.
        if len(chunk) > 1 and data.draw(st.booleans()):
            cut = data.draw(st.integers(1, len(chunk) - 1))
            chunk = chunk[:cut] + b"\xf8" + chunk[cut:]
        stream += chunk
    parsed = MidiParser().feed(stream)
    assert [m for m in parsed if m.type != "clock"] == [m for m in messages if m.type != "clock"]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_never_raises_and_the_parser_recovers(noise):
    p = MidiParser()
    p.feed(noise)
    # Whatever came before, a complete message after a status byte comes through.
    assert p.feed(bytes([0x92, 40, 50])) == [mido.Message("note_on", channel=2, note=40,
                                                          velocity=50)]

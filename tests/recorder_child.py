"""The JACK MIDI input behind tests.jackserver.Recorder, in a process of its own.

    python -m tests.recorder_child CLIENT PORT

Opens CLIENT:PORT through python-rtmidi on the JACK server ``JACK_DEFAULT_SERVER`` names,
writes ``ready`` once the port is there, then one line per message: its arrival time on
``time.monotonic``'s clock (one clock for every process of the machine) and its bytes in hex.

It never closes its port. RtMidi's JACK ``closePort`` unregisters the port while JACK's process
thread may still be reading it, and now and then that is a segmentation fault (seen in the
test process itself, session 43). So the Recorder ends this process instead (SIGKILL, or its
stdin closing when the test process dies): the JACK server drops a client that is gone, and its
port with it, as a drum machine unplugged.
"""
from __future__ import annotations

import os
import sys
import threading
import time


def _exit_when_stdin_closes() -> None:
    sys.stdin.buffer.read()
    os._exit(0)          # no destructors: RtMidi's would close the port


def main() -> None:
    import rtmidi

    from appliance.io.midi.backend import ArrivalClock

    client, port = sys.argv[1], sys.argv[2]
    arrival = ArrivalClock()
    midi_in = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=client, queue_size_limit=65536)
    midi_in.ignore_types(sysex=True, timing=False, active_sense=True)
    midi_in.open_virtual_port(port)
    threading.Thread(target=_exit_when_stdin_closes, daemon=True).start()
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    while True:
        got = False
        while True:
            event = midi_in.get_message()
            if event is None:
                break
            got = True
            data, delta = event
            out.write(f"{arrival.stamp(delta)!r} {bytes(data).hex()}\n")
        if got:
            out.flush()
        else:
            time.sleep(0.0005)


if __name__ == "__main__":
    main()

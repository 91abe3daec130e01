"""The JACK MIDI input behind tests.jackserver.Recorder, in a process of its own.

    python -m tests.recorder_child CLIENT PORT

Opens CLIENT:PORT through python-rtmidi on the JACK server ``JACK_DEFAULT_SERVER`` names,
writes ``ready`` once the port is there, then one line per message: its arrival time on
``time.monotonic``'s clock (one clock for every process of the machine) and its bytes in hex.

When its stdin closes (the Recorder's close, or the test process gone) it closes its port
and exits. RtMidi's JACK ``closePort`` unregisters the port while JACK's process thread may
still be reading it, and now and then that is a segmentation fault (seen in the test process
itself, session 43): here it can only end this process, and the JACK server drops a client
that is gone, as a drum machine unplugged. Closing first, rather than being killed, spares the
server a stalled cycle (a killed client is an xrun on a synchronous server). The Recorder kills
it only when it has not gone within a few seconds.

The messages go to the file descriptor stdout had at start; stdout itself is pointed at stderr,
so nothing a library prints can be read as a message.
"""
from __future__ import annotations

import os
import sys
import threading
import time


def _stop_when_stdin_closes(stop: threading.Event) -> None:
    sys.stdin.buffer.read()
    stop.set()


def main() -> None:
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)                  # whatever else writes to stdout lands on stderr
    import rtmidi

    from appliance.io.midi.backend import ArrivalClock

    client, port = sys.argv[1], sys.argv[2]
    arrival = ArrivalClock()
    midi_in = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=client, queue_size_limit=65536)
    midi_in.ignore_types(sysex=True, timing=False, active_sense=True)
    midi_in.open_virtual_port(port)
    stop = threading.Event()
    threading.Thread(target=_stop_when_stdin_closes, args=(stop,), daemon=True).start()
    out.write("ready\n")
    out.flush()
    while not stop.is_set():
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
    midi_in.close_port()           # from this thread: RtMidi's delete from another one crashes
    midi_in.delete()
    os._exit(0)


if __name__ == "__main__":
    main()

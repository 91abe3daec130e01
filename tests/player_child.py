"""The JACK MIDI output behind tests.jackserver.Player, in a process of its own.

    python -m tests.player_child CLIENT PORT

Opens CLIENT:PORT through python-rtmidi on the JACK server ``JACK_DEFAULT_SERVER`` names,
writes ``ready`` once the port is there, then sends each line of its stdin (a message's bytes in
hex, whatever they are: a test sends garbage too) out of the port as it comes.

When its stdin closes (the Player's close, or the test process gone) it closes its port and
exits. A keyboard in the test process itself closed its JACK client right after the box's own
``MidiPorts`` in the same process closed theirs, and now and then that was a segmentation fault
in libjack (session 60, under load; tests/recorder_child.py has the same story for inputs): here
it can only end this process, and the JACK server drops a client that is gone, as a keyboard
unplugged.
"""
from __future__ import annotations

import os
import sys


def main() -> None:
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)                  # whatever else writes to stdout lands on stderr
    import rtmidi

    client, port = sys.argv[1], sys.argv[2]
    midi_out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=client)
    midi_out.open_virtual_port(port)
    out.write("ready\n")
    out.flush()
    for line in sys.stdin.buffer:
        try:
            data = bytes.fromhex(line.decode("ascii"))
        except ValueError:
            continue
        if data:
            try:
                midi_out.send_message(list(data))
            except Exception as error:   # (rtmidi refuses some garbage: said, and the next line goes on)
                sys.stderr.write(f"player_child: {data.hex()}: {error}\n")
    midi_out.close_port()
    midi_out.delete()
    os._exit(0)


if __name__ == "__main__":
    main()

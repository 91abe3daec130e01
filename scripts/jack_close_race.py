"""Why the box's stop leaves its JACK ports to the process's exit (JackBackend.leave).

Opens an rtmidi JACK input, waits 0–10 ms, closes it (``close_port`` and ``delete``, what a stop
used to do), ``--closes`` times, in a child process, ``--runs`` times, on a dummy JACK server of
its own at 16-frame periods, beside two CPU hogs (``--hogs``). Prints each run's end: "done" or
the signal that killed it.

    python scripts/jack_close_race.py [--runs 5] [--closes 1500] [--hogs 2]

Session 27, on the 2-core build machine: 2 of 5 runs died of SIGSEGV (gdb, on a scratch run
of the same loop: libjack's ``JackClient::HandleLatencyCallback`` on the notification thread
while the main thread was in ``jack_port_unregister``; jack2 issue 216). docs/ARCHITECTURE.md,
"Lessons from the live tests".
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import time


def closes(count: int) -> None:
    """The child: open and close a JACK input ``count`` times."""
    import rtmidi
    for _ in range(count):
        midi_in = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="race-in")
        midi_in.open_virtual_port("in")
        time.sleep(random.random() * 0.01)
        midi_in.close_port()
        midi_in.delete()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--closes", type=int, default=1500)
    p.add_argument("--hogs", type=int, default=2, help="CPU hogs beside the runs")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child is not None:
        closes(args.child)
        return 0
    jackd = shutil.which("jackd")
    if jackd is None:
        sys.exit("jackd is missing (apt-get install jackd2)")
    name = f"race{os.getpid()}"
    env = {**os.environ, "JACK_DEFAULT_SERVER": name, "JACK_NO_AUDIO_RESERVATION": "1"}
    server = subprocess.Popen([jackd, "--name", name, "--no-realtime", "-d", "dummy", "-p", "16", "-r", "48000"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    hogs = [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(args.hogs)]
    crashed = 0
    try:
        time.sleep(2)
        for run in range(1, args.runs + 1):
            child = subprocess.run([sys.executable, __file__, "--child", str(args.closes)], env=env,
                                   capture_output=True, text=True)
            code = child.returncode
            died = -code if code < 0 else (code - 128 if code > 128 else 0)
            verdict = f"died of {signal.Signals(died).name}" if died else ("done" if code == 0 else f"exit {code}")
            crashed += bool(died)
            print(f"run {run}/{args.runs}: {args.closes} closes: {verdict}", flush=True)
    finally:
        for process in (*hogs, server):
            process.terminate()
            process.wait(timeout=10)
    print(f"{crashed} of {args.runs} runs crashed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

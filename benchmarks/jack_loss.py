"""MIDI lost between two JACK clients, asynchronous against synchronous (``-S``) server.

A clock source client sends 336 clocks (six beats at 100 BPM, eight at 140) to a receiver
client in another process, on a private dummy-driver server with 64-frame periods (as the
tests run); counts what did not arrive. Run alone: ``python -m benchmarks.jack_loss``.
"""
from __future__ import annotations

import os
from pathlib import Path
import subprocess
import sys
import tempfile
import time

from benchmarks.live import _start_jack, _stop

RUNS = 5
CLOCKS = [(100.0, 144), (140.0, 192)]

RECEIVER = r"""
import sys, time
import rtmidi
midi_in = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="loss-in", queue_size_limit=4096)
midi_in.ignore_types(timing=False)
midi_in.open_virtual_port("in")
print("ready", flush=True)
got, quiet = 0, None
while True:
    message = midi_in.get_message()
    if message:
        got += message[0][0] == 0xF8
        quiet = None
        continue
    if got and quiet is None:
        quiet = time.monotonic()
    if quiet is not None and time.monotonic() - quiet > 1.0:
        break
    time.sleep(0.001)
print(got, flush=True)
"""

SENDER = r"""
import os, sys, time
import rtmidi
out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="loss-out")
out.open_virtual_port("out")
try:
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
except (OSError, AttributeError):
    pass
print("ready", flush=True)
sys.stdin.readline()
due = time.monotonic()
for bpm, clocks in [(100.0, 144), (140.0, 192)]:
    for _ in range(clocks):
        due += 60.0 / bpm / 24
        while time.monotonic() < due:
            time.sleep(0.0005)
        out.send_message([0xF8])
time.sleep(0.2)
print("sent", flush=True)
"""


def one_run(sync: bool) -> int:
    """Clocks lost in one run."""
    name = f"gb-loss-{os.getpid()}"
    with tempfile.TemporaryDirectory() as tmp:
        jackd, _ = _start_jack(name, Path(tmp) / "jackd.log", period=64, sync=sync)
        env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_AUDIO_RESERVATION="1")
        procs = []
        try:
            receiver = subprocess.Popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True, env=env)
            procs.append(receiver)
            assert receiver.stdout.readline().strip() == "ready"
            sender = subprocess.Popen([sys.executable, "-c", SENDER], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True, env=env)
            procs.append(sender)
            assert sender.stdout.readline().strip() == "ready"
            subprocess.run(["jack_connect", "loss-out:out", "loss-in:in"], env=env, check=True, timeout=20)
            time.sleep(0.3)
            sender.stdin.write("go\n")
            sender.stdin.flush()
            sender.stdout.readline()
            got = int(receiver.stdout.readline())
            return sum(n for _, n in CLOCKS) - got
        finally:
            for proc in procs:
                proc.kill()
                proc.wait(timeout=10)
            _stop(jackd)


def main() -> None:
    sent = sum(n for _, n in CLOCKS)
    for sync in (False, True):
        lost = [one_run(sync) for _ in range(RUNS)]
        print(f"JACK {'synchronous (-S)' if sync else 'asynchronous'}: clocks lost in {RUNS} runs of "
              f"{sent}: {lost} (total {sum(lost)})")


if __name__ == "__main__":
    main()

"""A box killed while it plays, and a new one started a second later, on one JACK server.

What systemd does after a crash (``RestartSec=1s``). The killed box's ports stay with JACK for
seconds; when JACK frees them while the new box makes its own, the new ports take the old names
and "the port that is new" finds nothing. JackBackend then finds its ports by its client's name
(``jack._ours``). On a jackd of its own (dummy driver, no real-time), ``--runs`` times: a child
opens a JackBackend, plays a drum note every 20 ms into a listening client, is SIGKILLed; a
second later a new JackBackend by the same name opens. Prints each run: its ports, or the error,
and how long opening took.

    python scripts/jack_kill_restart.py [--runs 4] [--old]

``--old`` finds the ports as before session 40 (the one name new since the list before).
Session 40, on the 2-core build machine: with ``--old`` 3 of 4 runs failed ("cannot tell which
JACK port is ours"), as the fault harness found (17 of 30 service restarts left USB MIDI off);
without it 0 of 4. Opening took 14-19 s in every run: JACK's time to notice the killed client.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
import shutil
import signal
import subprocess
import sys
import time

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CHILD = """import time
from appliance.io.midi.jack import JackBackend
box = JackBackend("gb-killed")
out = box.open_output("gb-killed-drums:in")
print(box.output_port, flush=True)
while True:
    out.send([0x99, 36, 100]); time.sleep(0.01); out.send([0x89, 36, 0]); time.sleep(0.01)
"""


def _old_ours(listed: list[str], before: set[str], client: str, port: str) -> str:
    from appliance.io.midi.backend import PortError
    new = set(listed) - before
    if len(new) != 1:
        raise PortError(f"cannot tell which JACK port is ours ({sorted(new)})")
    return next(iter(new))


def run_once(env: dict[str, str]) -> str:
    from appliance.io.midi import jack
    from appliance.io.midi.backend import PortError
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout is not None
    child.stdout.readline()
    time.sleep(1.0)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    time.sleep(1.0)
    start = time.monotonic()
    try:
        box = jack.JackBackend("gb-killed")
    except PortError as exc:
        return f"FAILED ({exc}) after {time.monotonic() - start:.1f} s"
    ports = f"{box.input_port}, {box.output_port}"
    box.close()
    return f"ports {ports} in {time.monotonic() - start:.1f} s"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=4)
    p.add_argument("--old", action="store_true", help="find the ports as before session 40")
    args = p.parse_args(argv)
    jackd = shutil.which("jackd")
    if jackd is None:
        sys.exit("jackd is missing (apt-get install jackd2)")
    name = f"killrestart{os.getpid()}"
    os.environ.update(JACK_DEFAULT_SERVER=name, JACK_NO_AUDIO_RESERVATION="1")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    server = subprocess.Popen([jackd, "--name", name, "--no-realtime", "-S", "-d", "dummy", "-r", "48000",
                               "-p", "256"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    failed = 0
    try:
        time.sleep(2)
        import rtmidi
        from appliance.io.midi import jack
        if args.old:
            jack._ours = _old_ours
        drums = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="gb-killed-drums")
        drums.open_virtual_port("in")
        for run in range(1, args.runs + 1):
            line = run_once(env)
            failed += line.startswith("FAILED")
            print(f"run {run}/{args.runs}: {line}", flush=True)
        drums.close_port()
        drums.delete()
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=20)
    print(f"{failed} of {args.runs} runs could not find their ports")
    return 0


if __name__ == "__main__":
    sys.exit(main())

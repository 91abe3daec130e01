"""The JACK server dying while the box builds its JACK backend: does the process come through?

Each run starts a dummy JACK server of its own, then a child process that builds a
``JackBackend`` while the server is stopped (SIGTERM) ``--delays`` milliseconds after the
child starts, and waits for the backend to see the server gone. Prints each run's end: "done",
"hung" (no end in ``--timeout`` seconds), or the signal that killed it.

    python scripts/jack_gone_race.py [--rounds 2] [--delays 0,2,5,10,20,30,50]

Session 48, on the 2-core build machine:
- the shutdown flag a ctypes callback (Python on libjack's notification thread), and the
  patchbay closed after rtmidi failed: 7 of 56 runs hung, 2 died of SIGSEGV;
- the flag a semaphore posted by C (``jack._ServerGone``): 0 of 42 hung here, but a review saw 3
  of 71 hang inside libjack (a notification thread cancelled holding libjack's own lock), and
  SIGSEGVs went on (2 of 40, 4 of 24: the close of a client libjack had already freed);
- a failed build leaves its clients to the exit when rtmidi could not open a client, or when
  the server went within a second (``JackBackend._give_up``): 0 of 60 (delays 15-30 ms, where
  the faults were) and 0 of 32 (0-100 ms); 0 of 36 (15-30 ms) once a refused port, on a live
  server, closes what was made. docs/ARCHITECTURE.md, "Lessons from the live tests".
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time

CHILD = r"""
import os, signal, sys, threading, time
from appliance.io.midi.jack import JackBackend
delay = float(sys.argv[1]) / 1000
threading.Timer(delay, lambda: os.kill(int(os.environ["JACKD_PID"]), signal.SIGTERM)).start()
start = time.monotonic()
try:
    backend = JackBackend("gone-race")
    while not backend.gone and time.monotonic() - start < 5:
        time.sleep(0.01)
except Exception as exc:     # NoServer, PortError: the server went first, as it may
    print(type(exc).__name__, flush=True)
print("END", flush=True)
os._exit(0)
"""


def _server(jackd: str, name: str, env: dict[str, str]) -> subprocess.Popen | None:
    server = subprocess.Popen([jackd, "--name", name, "--no-realtime", "-S", "-d", "dummy", "-p", "256"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        up = subprocess.run(["jack_wait", "-c"], env=env, capture_output=True, text=True, timeout=10)
        if up.stdout.strip() == "running":
            return server
        time.sleep(0.2)
    server.terminate()
    server.wait(timeout=10)
    return None


def _run(delay_ms: int, env: dict[str, str], timeout: float) -> str:
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(delay_ms)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        out, _ = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
        return "hung"
    if child.returncode < 0:
        return f"died of {signal.Signals(-child.returncode).name}"
    return "done" if "END" in out else f"exit {child.returncode}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--delays", default="0,2,5,10,20,30,50", help="ms after the child starts")
    p.add_argument("--timeout", type=float, default=30.0)
    args = p.parse_args(argv)
    jackd = shutil.which("jackd")
    if jackd is None:
        sys.exit("jackd is missing (apt-get install jackd2)")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    name = f"gonerace{os.getpid()}"
    base = {**os.environ, "JACK_DEFAULT_SERVER": name, "JACK_NO_AUDIO_RESERVATION": "1",
            "PYTHONPATH": repo}
    bad = total = 0
    for _ in range(args.rounds):
        for delay in (int(d) for d in args.delays.split(",")):
            server = _server(jackd, name, base)
            if server is None:
                print(f"{delay} ms: jackd did not start", flush=True)
                continue
            verdict = _run(delay, {**base, "JACKD_PID": str(server.pid)}, args.timeout)
            if server.poll() is None:
                server.terminate()
            server.wait(timeout=10)
            total += 1
            bad += verdict != "done"
            print(f"server stopped {delay} ms in: {verdict}", flush=True)
    print(f"{bad} of {total} runs did not come through")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""What watching costs the box (``python -m benchmarks.monitor``): the running service on a
private JACK server, its control socket asked for the status as ``groovebox monitor`` does;
the figures are the status round trip, and the player's own send error (sent minus ideal
time of every drum note-on) in alternating phases without and with a status poll at 8 Hz
(twice the monitor's default rate).
"""
from __future__ import annotations

import os
from pathlib import Path
import shutil
import tempfile
import time

import numpy as np

from benchmarks.live import REPO, _request, _start_jack, _stop, start_service

PHASE_S = 15.0            #: each phase, without and with the poll
POLL_HZ = 8.0
ROUND_TRIPS = 300


def _phase(sock: Path, poll: bool) -> tuple[float, float]:
    start = time.monotonic()
    while time.monotonic() - start < PHASE_S:
        if poll:
            _request(sock, "status")
        time.sleep(1.0 / POLL_HZ)
    return start, time.monotonic()


def main() -> None:
    import rtmidi

    work = Path(tempfile.mkdtemp(prefix="groovebox-monitor-"))
    name = f"groovebox-monitor-{os.getpid()}"
    jack, jack_mode = _start_jack(name, work / "jackd.log")
    env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_AUDIO_RESERVATION="1",
               PYTHONPATH=str(REPO))
    os.environ.update(JACK_DEFAULT_SERVER=name, JACK_NO_AUDIO_RESERVATION="1")
    service = drums = None
    try:
        drums = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="bench-drums", queue_size_limit=65536)
        drums.open_virtual_port("in")
        service, sock, _ = start_service(work, env, client_name="gb-monitor", inputs="nothing",
                                         needs_input=False, extra="generator: {density: 0.8}")
        time.sleep(2.0)
        trips = []
        for _ in range(ROUND_TRIPS):
            t = time.perf_counter()
            _request(sock, "status")
            trips.append((time.perf_counter() - t) * 1000)
        phases = [(poll, _phase(sock, poll)) for poll in (False, True, False, True)]
        timing = _request(sock, "timing")["timing"]
        realtime = _request(sock, "status")["status"]["realtime"]
    finally:
        if drums is not None:
            drums.close_port()
            drums.delete()
        if service is not None:
            _stop(service)
        _stop(jack)
    print(f"monitor: the status over the control socket, {ROUND_TRIPS} requests in a row: "
          f"p50 {np.percentile(trips, 50):.2f} ms, p99 {np.percentile(trips, 99):.2f} ms, "
          f"max {max(trips):.2f} ms (JACK dummy, jackd {jack_mode}; player "
          f"{'SCHED_FIFO' if realtime else 'NOT real-time'})")
    for poll in (False, True):
        errors = np.array([sent - ideal for ideal, sent, *_ in timing
                           for p, (t0, t1) in phases if p == poll and t0 <= ideal <= t1]) * 1000
        if not errors.size:
            raise RuntimeError("no drum notes were sent")
        label = f"status polled at {POLL_HZ:g} Hz" if poll else "nobody watching"
        print(f"    player send error, {label:<24} ({errors.size} drum notes over "
              f"{2 * PHASE_S:.0f} s): p50 {np.percentile(errors, 50):.3f} ms, "
              f"p99 {np.percentile(errors, 99):.3f} ms, max {errors.max():.3f} ms")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

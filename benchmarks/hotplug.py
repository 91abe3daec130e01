"""Hotplug under load, measured (``python -m benchmarks.hotplug``): the running service on a
private JACK server while a keyboard is plugged in and pulled out again and again, with a
busy process on every core. On JACK the box only patches (no rtmidi port calls, which hold
the GIL), so the player must not stall: the figure is the player's own send error (sent
minus ideal time of every drum note-on) over the hotplug window, and how long the box took
to connect each new keyboard.
"""
from __future__ import annotations

import os
from pathlib import Path
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks.live import HOG, REPO, _request, _start_jack, _stop, start_service

PLUGS = 20                #: keyboard plug-ins (each followed by a pull-out)
LATE_S = 0.015            #: what tests/test_service_live.py calls late


def _wait(condition, timeout: float) -> float | None:
    """Seconds until ``condition()`` held, or None."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():
            return time.monotonic() - start
        time.sleep(0.02)
    return None


def _plug_cycles(sock: Path) -> list[float]:
    """Plug a keyboard in, play a note, pull it out, PLUGS times; seconds to connect each."""
    import mido
    import rtmidi
    connect_s = []
    for i in range(PLUGS):
        keys = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="bench-keys")
        keys.open_virtual_port("out")
        took = _wait(lambda: bool(_request(sock, "status")["status"]["ports"]["inputs"]), 10)
        if took is None:
            raise RuntimeError(f"plug {i}: the box did not connect the keyboard in 10 s")
        connect_s.append(took)
        keys.send_message(mido.Message("note_on", note=48 + i, velocity=100).bytes())
        keys.close_port()
        keys.delete()
        if _wait(lambda: not _request(sock, "status")["status"]["ports"]["inputs"], 10) is None:
            raise RuntimeError(f"plug {i}: the box did not see the keyboard go in 10 s")
    return connect_s


def main() -> None:
    import rtmidi

    work = Path(tempfile.mkdtemp(prefix="groovebox-hotplug-"))
    name = f"groovebox-hotplug-{os.getpid()}"
    jack, jack_mode = _start_jack(name, work / "jackd.log")
    env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_AUDIO_RESERVATION="1",
               PYTHONPATH=str(REPO))
    os.environ.update(JACK_DEFAULT_SERVER=name, JACK_NO_AUDIO_RESERVATION="1")
    procs: list[subprocess.Popen] = []
    drums = None
    try:
        drums = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="bench-drums", queue_size_limit=65536)
        drums.open_virtual_port("in")
        service, sock, _ = start_service(work, env, client_name="gb-hotplug", needs_input=False,
                                         extra="generator: {density: 0.8}\nloop: {swap_at: step}")
        procs.append(service)
        hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(os.cpu_count() or 2)]
        procs.extend(hogs)
        time.sleep(1.0)
        t0 = time.monotonic()
        drops_before = _request(sock, "status")["status"]["engine"]["late_drops"]
        connect_s = _plug_cycles(sock)
        t1 = time.monotonic()
        for hog in hogs:
            _stop(hog, signal.SIGKILL)
        status = _request(sock, "status")["status"]
        timing = _request(sock, "timing")["timing"]
    finally:
        if drums is not None:
            drums.close_port()
            drums.delete()
        for proc in reversed(procs):
            _stop(proc)
        _stop(jack)
    errors = np.array([sent - ideal for ideal, sent, *_ in timing if t0 <= ideal <= t1]) * 1000
    if not errors.size:
        raise RuntimeError("no drum notes were sent during the hotplug window")
    late = int((errors > LATE_S * 1000).sum()) + status["engine"]["late_drops"] - drops_before   # dropped: later still
    print(f"hotplug: {PLUGS} keyboard plug-ins and pull-outs in {t1 - t0:.1f} s on JACK (dummy, "
          f"jackd {jack_mode}) with {len(hogs)} CPU hogs; player thread "
          f"{'SCHED_FIFO' if status['realtime'] else 'NOT real-time'}")
    print(f"    player send error over {errors.size} drum notes: p50 {np.percentile(errors, 50):.3f} ms, "
          f"p99 {np.percentile(errors, 99):.3f} ms, max {errors.max():.3f} ms; "
          f"{late} later than {LATE_S * 1000:.0f} ms or dropped as too late "
          f"[target 0: {'ok' if late == 0 else 'MISSED'}]")
    print(f"    keyboard connected after p50 {np.percentile(connect_s, 50) * 1000:.0f} ms, "
          f"max {max(connect_s) * 1000:.0f} ms (the port list is scanned every 0.5 s)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

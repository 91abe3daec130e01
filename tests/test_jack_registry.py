"""The tests' JACK servers give back JACK's 8 registry slots (tests/jackserver.py).

A jackd that dies without unregistering keeps its slot; ``dead_servers`` must read every
slot of the registry (a wrong slot size once hid all but the first, and CI ran out of
servers: "Too many servers already active"), and ``reclaim_dead_slots`` must free them."""
from __future__ import annotations

import os
import subprocess

from tests.jackserver import (JackServer, _wait_running, dead_servers, popen_jackd,
                              reclaim_dead_slots)


def _killed_servers(count: int) -> list[str]:
    """Start COUNT dummy jackd servers, then SIGKILL them (no unregistering)."""
    reclaim_dead_slots()
    names, processes = [], []
    for i in range(count):
        name = f"groovebox-registry-{os.getpid()}-{i}"
        env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_AUDIO_RESERVATION="1")
        process = popen_jackd(name, ["--no-realtime", "-d", "dummy", "-p", "256"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              stdin=subprocess.DEVNULL)
        processes.append(process)
        assert _wait_running(JackServer(name, process, ""), timeout=30), f"{name} did not start"
        names.append(name)
    for process in processes:
        process.kill()
        process.wait(timeout=10)
    return names


def test_every_dead_server_slot_is_found_and_taken_back():
    names = _killed_servers(2)      # slots past the first: the session server holds one
    dead = dead_servers()
    assert set(names) <= set(dead), dead
    reclaim_dead_slots()
    assert not set(names) & set(dead_servers())

"""sd_notify written by hand (path and abstract sockets), the watchdog interval, and the
health check that decides whether the watchdog gets its ping."""
from __future__ import annotations

import os
import socket
import threading
import time

from appliance.box.notify import sd_notify, watchdog_interval
from appliance.box.player_thread import PlayerThread
from appliance.box.config import Config
from appliance.box.service import Service


def listen(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(5)
    return sock


def test_notify_to_a_path_socket(tmp_path, monkeypatch):
    path = str(tmp_path / "notify")
    sock = listen(path)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    assert sd_notify("READY=1\nSTATUS=playing")
    assert sock.recv(4096) == b"READY=1\nSTATUS=playing"
    sock.close()


def test_notify_to_an_abstract_socket(monkeypatch):
    name = f"groovebox-test-{os.getpid()}"
    sock = listen("\0" + name)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    assert sd_notify("WATCHDOG=1")
    assert sock.recv(4096) == b"WATCHDOG=1"
    sock.close()


def test_no_notify_socket_is_quietly_nothing(monkeypatch, caplog):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sd_notify("READY=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", "/nonexistent/notify")
    assert sd_notify("READY=1") is False
    assert "systemd notify failed" in caplog.text


def test_watchdog_interval_is_half_of_watchdog_sec(monkeypatch):
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_USEC", "5000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval() == 2.5
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))   # meant for another process
    assert watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval() == 2.5


class Stuck(threading.Thread):
    """A player thread that is alive but stopped beating."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.heartbeat = time.monotonic()
        self.release = threading.Event()

    def run(self) -> None:
        self.release.wait(30)


def test_health_needs_a_live_and_beating_player():
    service = Service(Config())
    assert not service.player_healthy()               # no player yet
    stuck = Stuck()
    stuck.start()
    service.player = stuck                            # type: ignore[assignment]
    assert service.player_healthy()
    stuck.heartbeat = time.monotonic() - 10           # alive, but stuck for 10 s
    assert not service.player_healthy()
    stuck.release.set()
    stuck.join(timeout=5)
    stuck.heartbeat = time.monotonic()
    assert not service.player_healthy()               # dead
    assert issubclass(PlayerThread, threading.Thread)

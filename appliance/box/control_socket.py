"""The control socket: the running box's status and actions, for ``groovebox status|freeze|…``.

A UNIX stream socket (mode 0660, under $RUNTIME_DIRECTORY or /run/groovebox). One request a
connection: the client sends one JSON line, the box answers one JSON line::

    {"command": "status"}                   → {"ok": true, "status": {...}}
    {"command": "freeze"}                   → {"ok": true, "frozen": true}
    {"command": "learn", "action": "clear"} → {"ok": true, ...}
    anything wrong                          → {"ok": false, "error": "one line"}

The server never blocks the box: it runs on its own thread, reads at most 64 KiB with a
2 s timeout, and a client that misbehaves only loses its own answer.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import stat
import sys
import threading
import time
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

SOCKET_NAME = "control.sock"
MAX_REQUEST = 64 * 1024
TIMEOUT_S = 2.0
COMMANDS = ("status", "freeze", "clear", "resample", "prior", "learn", "timing")


class ControlTarget(Protocol):
    """What the server asks of the box (the service implements it)."""

    def control(self, command: str, request: dict[str, Any]) -> dict[str, Any]: ...


# --- where the socket lives --------------------------------------------------------------------

def _uid() -> int:
    return os.getuid() if hasattr(os, "getuid") else 0


def default_socket_path(configured: str | None = None) -> Path:
    """``control.socket`` from the config, else $RUNTIME_DIRECTORY (systemd), else
    /run/groovebox when it is ours, else $XDG_RUNTIME_DIR/groovebox, else /tmp/groovebox-UID."""
    if configured:
        return Path(configured)
    runtime = os.environ.get("RUNTIME_DIRECTORY")
    if runtime:
        return Path(runtime.split(":")[0]) / SOCKET_NAME
    run = Path("/run/groovebox")
    if (run.is_dir() and os.access(run, os.W_OK)) or (not run.exists() and os.access("/run", os.W_OK)):
        return run / SOCKET_NAME
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(xdg) / "groovebox" / SOCKET_NAME
    return Path(f"/tmp/groovebox-{_uid()}") / SOCKET_NAME


def client_candidates(explicit: str | os.PathLike[str] | None = None) -> list[Path]:
    if explicit:
        return [Path(explicit)]
    out = []
    if os.environ.get("GROOVEBOX_SOCKET"):
        out.append(Path(os.environ["GROOVEBOX_SOCKET"]))
    out.append(Path("/run/groovebox") / SOCKET_NAME)
    if os.environ.get("XDG_RUNTIME_DIR"):
        out.append(Path(os.environ["XDG_RUNTIME_DIR"]) / "groovebox" / SOCKET_NAME)
    out.append(Path(f"/tmp/groovebox-{_uid()}") / SOCKET_NAME)
    return out


# --- the server ----------------------------------------------------------------------------------

class ControlServer:
    """Serves ``target.control(command, request)`` on a UNIX socket."""

    def __init__(self, path: str | os.PathLike[str], target: ControlTarget, mode: int = 0o660) -> None:
        self.path = Path(path)
        self.target = target
        self.mode = mode
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> "ControlServer":
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        if self.path.exists() or self.path.is_symlink():
            if _answers(self.path):
                raise OSError(f"another groovebox is already answering on {self.path}")
            if not stat.S_ISSOCK(self.path.lstat().st_mode):
                raise OSError(f"{self.path} exists and is not a socket; remove it or set control.socket")
            self.path.unlink()              # a stale socket from a crash
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o117)
        try:
            sock.bind(str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, self.mode)
        sock.listen(64)
        sock.settimeout(0.5)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="control-socket", daemon=True)
        self._thread.start()
        log.info("control socket %s", self.path)
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        try:
            self.path.unlink()
        except OSError:
            pass

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            with conn:
                conn.settimeout(TIMEOUT_S)
                try:
                    reply = self._answer(_read_line(conn))
                except (OSError, ValueError) as exc:
                    reply = {"ok": False, "error": f"bad request: {exc}"}
                try:
                    conn.sendall(json.dumps(reply).encode() + b"\n")
                    _drain(conn)
                except OSError:
                    pass

    def _answer(self, raw: bytes) -> dict[str, Any]:
        try:
            request = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return {"ok": False, "error": "bad request: not a JSON line"}
        if not isinstance(request, dict) or request.get("command") not in COMMANDS:
            return {"ok": False, "error": f"unknown command; one of {', '.join(COMMANDS)}"}
        try:
            result = self.target.control(request["command"], request)
        except (ValueError, KeyError, LookupError) as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:   # the box keeps playing whatever a request does
            log.exception("control command %s failed", request.get("command"))
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        return {"ok": True, **result}


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while b"\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_REQUEST:
            raise ValueError("request too long")
    return data.split(b"\n", 1)[0]


def _drain(conn: socket.socket, limit: int = 1 << 20) -> None:
    """Read what the client still sends (briefly, boundedly) so that closing does not reset
    the connection before it has read the answer."""
    conn.shutdown(socket.SHUT_WR)
    conn.settimeout(0.2)
    seen = 0
    try:
        while seen < limit:
            chunk = conn.recv(65536)
            if not chunk:
                return
            seen += len(chunk)
    except OSError:
        return


def _answers(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.5)
            probe.connect(str(path))
            return True
    except OSError:
        return False


# --- the client ----------------------------------------------------------------------------------

class ControlError(Exception):
    """The box could not be reached or refused; the message says what to do."""


def request(command: str, socket_path: str | os.PathLike[str] | None = None,
            timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
    """Send one command to the running box and return its answer (raises ControlError)."""
    candidates = client_candidates(socket_path)
    path = next((p for p in candidates if p.exists()), None)
    if path is None:
        tried = ", ".join(str(p) for p in candidates)
        raise ControlError(f"no running groovebox found (looked for {tried}); is the service "
                           "running? (systemctl status groovebox, or make run)")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            _connect(sock, path, timeout)
            sock.sendall(json.dumps({"command": command, **fields}).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except PermissionError:
        raise ControlError(f"not allowed to talk to {path}: join the groovebox group "
                           "(sudo adduser $USER groovebox) or use sudo") from None
    except OSError as exc:
        raise ControlError(f"the box at {path} does not answer ({exc.strerror or exc}); "
                           "is it running?") from None
    try:
        reply = json.loads(data.decode("utf-8"))
    except ValueError:
        raise ControlError(f"the box at {path} gave an answer that is not JSON") from None
    if not reply.get("ok"):
        raise ControlError(reply.get("error", "the box refused"))
    return reply


def _connect(sock: socket.socket, path: Path, timeout: float) -> None:
    """Connect, waiting out a full backlog (many clients at once on a busy box)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            sock.connect(str(path))
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


def format_status(status: dict[str, Any]) -> str:
    """The status as a musician reads it."""
    lines = []
    waiting = status.get("engine", {}).get("waiting_for")
    playing = "playing" if status.get("running") else "waiting" if waiting else "stopped"
    lines.append(f"groovebox {playing} at {status.get('bpm', 0):.1f} BPM, clock "
                 f"{status.get('clock_source', '?')} ({status.get('clock_mode', '?')}), "
                 f"step {status.get('step', 0) + 1}/32")
    for reason in status.get("why_silent") or []:
        lines.append(f"silent:  {reason}")
    ports = status.get("ports", {})
    lines.append("inputs:  " + (", ".join(ports.get("inputs", [])) or "none"))
    lines.append("outputs: " + (", ".join(ports.get("outputs", [])) or "none"))
    din = status.get("din")
    if din:
        lines.append(f"DIN:     {din}")
    stats = status.get("engine", {})
    lines.append(f"freeze {'ON' if status.get('frozen') else 'off'};  "
                 f"inference p50 {stats.get('latency_ms_p50', 0):.1f} ms, "
                 f"p99 {stats.get('latency_ms_p99', 0):.1f} ms;  "
                 f"{stats.get('generations', 0)} patterns, "
                 f"{stats.get('misses', 0)} deadline misses since start")
    timing = status.get("output_timing_ms")
    priority = "real-time (SCHED_FIFO)" if status.get("realtime") else "normal priority"
    if timing:
        lines.append(f"player {priority}; notes sent p50 {timing['p50']:.2f} ms, "
                     f"p99 {timing['p99']:.2f} ms, max {timing['max']:.2f} ms off schedule")
    else:
        lines.append(f"player {priority}")
    for hint in status.get("midi", {}).get("connect", []):
        lines.append(f"connect: {hint}")
    lines.append("")
    lines.append(status.get("groove_grid", ""))
    lines.append("")
    lines.append(status.get("pattern_grid", ""))
    return "\n".join(lines) + "\n"


def client_main(args: argparse.Namespace) -> int:
    """``groovebox status|freeze|clear|resample|prior [--socket PATH]``, ``groovebox learn ACTION``."""
    command = args.command
    fields: dict[str, Any] = {}
    if command == "learn":
        fields["action"] = args.action
    try:
        reply = request(command, getattr(args, "socket", None), **fields)
    except ControlError as exc:
        sys.stderr.write(f"groovebox {command}: {exc}\n")
        return 2 if "no running groovebox" in str(exc) or "does not answer" in str(exc) else 1
    out = sys.stdout
    if command == "status":
        out.write(format_status(reply["status"]))
    elif command == "freeze":
        out.write(f"freeze {'on' if reply.get('frozen') else 'off'}\n")
    elif command == "learn":
        out.write(reply.get("message", f"learning {args.action}: move a knob or press a pad") + "\n")
    else:
        out.write(reply.get("message", f"{command}: done") + "\n")
    return 0

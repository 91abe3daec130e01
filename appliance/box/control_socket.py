"""The control socket: the running box's status and actions, for ``groovebox status|freeze|…``.

A UNIX stream socket (mode 0660, under $RUNTIME_DIRECTORY or /run/groovebox). One request a
connection: the client sends one JSON line, the box answers one JSON line::

    {"command": "status"}                   → {"ok": true, "status": {...}}
    {"command": "freeze"}                   → {"ok": true, "frozen": true}
    {"command": "learn", "action": "clear"} → {"ok": true, ...}
    anything wrong                          → {"ok": false, "error": "one line"}

``groovebox learn ACTION`` then asks for the status until its ``learn`` block says what the box
bound (``learned``) or that it stopped learning (``learning`` no longer the action: timed out,
another learn took over, a reload took its scene away), and says so (``--no-wait``: at once). A
reload keeps learning, its time running on.

The server never blocks the box and no client can kill or starve it: one thread serves every
connection at once through ``selectors`` (non-blocking sockets). Each request is bounded in
size (64 KiB), JSON nesting (8 levels) and time (2 s from connecting to the last byte of the
answer, however slowly the bytes come); at most 32 connections are open at once (a new one
beyond that lets go of those that hung up, else pushes out the oldest idle one, else the oldest). Whatever a request makes fail, RecursionError included,
costs that client its answer only. The socket's directory must belong to the box and be
writable by nobody else (one log line and no socket otherwise).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import select
import selectors
import socket
import stat
import sys
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from appliance.box.diagnose import clock_trouble, heard_back_trouble
from appliance.core.clock import RateLimitedLog

log = logging.getLogger(__name__)

SOCKET_NAME = "control.sock"
MAX_REQUEST = 64 * 1024
MAX_DEPTH = 8             #: JSON nesting a request may have (a real one has 1)
TIMEOUT_S = 2.0           #: from connect to the last byte of the answer
MAX_CLIENTS = 32          #: open connections; one more lets the hung-up go, else the oldest idle one
DRAIN_S = 0.2             #: after answering, read what the client still sends this long
COMMANDS = ("status", "freeze", "clear", "resample", "prior", "end", "learn", "timing")


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

class _Conn:
    """One client: what it sent, what it is owed, and when its time is up."""

    __slots__ = ("sock", "deadline", "inbuf", "outbuf", "answered", "seen")

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.inbuf = b""
        self.outbuf = b""
        self.answered = False   # the answer is queued; from then on only draining
        self.seen = 0


class ControlServer:
    """Serves ``target.control(command, request)`` on a UNIX socket (see the module doc)."""

    def __init__(self, path: str | os.PathLike[str], target: ControlTarget, mode: int = 0o660,
                 clock: Any = time.monotonic) -> None:
        self.path = Path(path)
        self.target = target
        self.mode = mode
        self.clock = clock
        self.dropped = 0          #: connections cut off (too slow, too many)
        self._news = RateLimitedLog(log)   #: a flood of clients is said now and then, not each time
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._conns: dict[int, _Conn] = {}

    def start(self) -> "ControlServer":
        _private_directory(self.path.parent)
        if self.path.exists() or self.path.is_symlink():
            if _answers(self.path):
                raise OSError(f"another groovebox is already answering on {self.path}")
            mode = self.path.lstat().st_mode
            if stat.S_ISDIR(mode):   # never "remove it": that may be /tmp
                raise OSError(f"control.socket {self.path} is a directory; give the socket's own path "
                              f"in it, e.g. {self.path / 'groovebox.sock'}")
            if not stat.S_ISSOCK(mode):
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
        sock.setblocking(False)
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

    # -- the loop -----------------------------------------------------------------------------
    def _serve(self) -> None:
        assert self._sock is not None
        with selectors.DefaultSelector() as selector:
            self._selector = selector
            selector.register(self._sock, selectors.EVENT_READ, None)
            while not self._stop.is_set():
                try:
                    self._turn(selector)
                except Exception:   # the server outlives anything a client makes happen
                    log.exception("control socket: unexpected failure; serving on")
                    time.sleep(0.05)
            for fd in list(self._conns):
                self._drop(fd)

    def _turn(self, selector: selectors.BaseSelector) -> None:
        now = self.clock()
        soonest = min((c.deadline for c in self._conns.values()), default=now + 0.5)
        events = selector.select(timeout=max(0.0, min(0.5, soonest - now)))
        for key, mask in events:
            client: _Conn | None = key.data
            if client is None:
                self._accept()
                continue
            if self._conns.get(key.fd) is not client:   # dropped in this turn (its fd may be a new client's)
                continue
            try:
                if mask & selectors.EVENT_READ:
                    self._readable(client)
                if key.fd in self._conns and mask & selectors.EVENT_WRITE:
                    self._writable(client)
            except OSError:
                self._drop(client.sock.fileno())
        now = self.clock()
        for fd, conn in list(self._conns.items()):
            if now >= conn.deadline:
                if not conn.answered:
                    self.dropped += 1
                    try:   # one line saying why, if it fits in the socket buffer; no waiting
                        conn.sock.send(json.dumps({"ok": False, "error": "bad request: not a "
                                                   f"whole line within {TIMEOUT_S:g} s"}).encode()
                                       + b"\n")
                    except OSError:
                        pass
                self._drop(fd)

    def _accept(self) -> None:
        assert self._sock is not None
        for _ in range(64):
            try:
                sock, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            sock.setblocking(False)
            if len(self._conns) >= MAX_CLIENTS:
                self._make_room()
            conn = _Conn(sock, self.clock() + TIMEOUT_S)
            self._conns[sock.fileno()] = conn
            self._selector.register(sock, selectors.EVENT_READ, conn)

    def _make_room(self) -> None:
        """One client too many: those that have hung up go first (not yet read, they still
        count), then the oldest that has sent nothing; one with a request in is cut off last
        (a fault harness's connect-and-close loop cut the real ``groovebox status`` off)."""
        idle = []
        hung_up = select.poll()
        for fd in self._conns:
            hung_up.register(fd, select.POLLRDHUP)
        for fd, events in hung_up.poll(0):   # hung up, its bytes read or not (a peek sees the bytes)
            if events & (select.POLLRDHUP | select.POLLHUP | select.POLLERR):
                self._drop(fd)
        for fd, conn in list(self._conns.items()):
            try:
                waiting = conn.sock.recv(1, socket.MSG_PEEK)
            except BlockingIOError:
                waiting = None   # connected, nothing sent
            except OSError:
                waiting = b""
            if waiting == b"":
                self._drop(fd)   # hung up
            elif waiting is None and not conn.inbuf and not conn.answered:
                idle.append(conn)
        if len(self._conns) < MAX_CLIENTS:
            return
        victim = min(idle or self._conns.values(), key=lambda c: c.deadline)
        self.dropped += 1
        self._drop(victim.sock.fileno())
        self._news.note("flood", logging.WARNING, "control socket %s: more than %d clients "
                        "at once, the oldest %s cut off (a program opening connections in a "
                        "loop?); the music is not affected", self.path, MAX_CLIENTS,
                        "idle one" if idle else "one")
        self._news.flush()

    def _readable(self, conn: _Conn) -> None:
        chunk = conn.sock.recv(65536)
        if conn.answered:                         # draining after the answer
            conn.seen += len(chunk)
            if not chunk or conn.seen > (1 << 20):
                self._drop(conn.sock.fileno())
            return
        if chunk:
            conn.inbuf += chunk
            if b"\n" not in conn.inbuf and len(conn.inbuf) <= MAX_REQUEST:
                return
        if len(conn.inbuf.split(b"\n", 1)[0]) > MAX_REQUEST:
            reply = {"ok": False, "error": f"bad request: request too long (at most {MAX_REQUEST} bytes)"}
        else:
            reply = self._answer(conn.inbuf.split(b"\n", 1)[0])
        conn.inbuf = b""
        conn.outbuf = json.dumps(reply).encode() + b"\n"
        conn.answered = True
        self._writable(conn)

    def _writable(self, conn: _Conn) -> None:
        if conn.outbuf:
            sent = conn.sock.send(conn.outbuf)
            conn.outbuf = conn.outbuf[sent:]
        fd = conn.sock.fileno()
        if conn.outbuf:
            self._selector.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)
            return
        # All sent: stop writing, and read what the client still sends for a moment so that
        # closing does not reset the connection before it has read the answer.
        self._selector.modify(conn.sock, selectors.EVENT_READ, conn)
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._drop(fd)
            return
        conn.deadline = min(conn.deadline, self.clock() + DRAIN_S)

    def _drop(self, fd: int) -> None:
        conn = self._conns.pop(fd, None)
        if conn is None:
            return
        try:
            self._selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()

    # -- one request ----------------------------------------------------------------------------
    def _answer(self, raw: bytes) -> dict[str, Any]:
        try:
            text = raw.decode("utf-8")
            if _depth(text) > MAX_DEPTH:
                return {"ok": False, "error": f"bad request: nested deeper than {MAX_DEPTH} levels"}
            request = json.loads(text)
        except (UnicodeDecodeError, ValueError, RecursionError):
            return {"ok": False, "error": "bad request: not a JSON line"}
        if not isinstance(request, dict) or request.get("command") not in COMMANDS:
            return {"ok": False, "error": f"unknown command; one of {', '.join(COMMANDS)}"}
        try:
            result = self.target.control(request["command"], request)
        except (ValueError, KeyError, LookupError) as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:   # the box keeps playing whatever a request does
            log.exception("control command %s failed", request.get("command"))
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        return {"ok": True, **result}


def _depth(text: str) -> int:
    """How deeply the JSON text nests ``[`` and ``{`` (strings skipped), without parsing it."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


def _private_directory(directory: Path) -> None:
    """Make the socket's directory (0750) or check it: ours, and writable by nobody else.
    A directory someone else owns is refused (they could swap the socket); one of ours that
    others may write to is closed up, with one log line."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o750)
    st = directory.stat()
    if st.st_uid != _uid():
        raise OSError(f"{directory} is not owned by this user (uid {_uid()}, it belongs to uid "
                      f"{st.st_uid}); remove it or set control.socket to a directory of ours")
    if st.st_mode & stat.S_ISVTX:
        raise OSError(f"{directory} is shared (sticky, like /tmp); give the socket a directory "
                      "of its own (control.socket)")
    if stat.S_IMODE(st.st_mode) & 0o022:
        os.chmod(directory, stat.S_IMODE(st.st_mode) & ~0o022 & 0o7777)
        log.warning("control socket: %s was writable by others (mode %o); closed it to %o",
                    directory, stat.S_IMODE(st.st_mode), stat.S_IMODE(directory.stat().st_mode))


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
        if isinstance(exc, (ConnectionResetError, BrokenPipeError)):   # cut off while it sent
            raise ControlError(f"the box at {path} cut the connection off (it serves {MAX_CLIENTS} "
                               "clients at once and another program may be flooding its socket, or "
                               "it is restarting); try again") from None
        raise ControlError(f"the box at {path} does not answer ({exc.strerror or exc}); "
                           "is it running?") from None
    if not data:
        raise ControlError(f"the box at {path} closed the connection without an answer; is it "
                           "restarting, or busy with many clients?")
    try:
        reply = json.loads(data.decode("utf-8"))
    except ValueError:
        raise ControlError(f"the box at {path} gave an answer that is not JSON") from None
    if not isinstance(reply, dict) or (reply.get("ok") and command == "status"
                                       and not isinstance(reply.get("status"), dict)):
        raise ControlError(f"the box at {path} gave an answer of the wrong shape (another "
                           "program on its socket, or another groovebox version?)")
    if not reply.get("ok"):
        raise ControlError(str(reply.get("error", "the box refused")))
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
    playing = "waiting" if waiting else "playing" if status.get("running") else "stopped"
    lines.append(f"groovebox {playing} at {status.get('bpm', 0):.1f} BPM, clock "
                 f"{status.get('clock_source', '?')} ({status.get('clock_mode', '?')}), "
                 f"step {status.get('step', 0) + 1}/32")
    for reason in status.get("why_silent") or []:
        lines.append(f"silent:  {reason}")
    if status.get("state"):
        lines.append(str(status["state"]))     # "state: cannot save to …"
    ports = status.get("ports", {})
    lines.append("inputs:  " + (", ".join(ports.get("inputs", [])) or "none"))
    lines.append("outputs: " + (", ".join(ports.get("outputs", [])) or "none"))
    din = status.get("din")
    if din:
        lines.append(f"DIN:     {din}")
    clock = clock_trouble(status.get("clock_counts") or {})
    if clock:
        lines.append(f"clock:   {clock}")
    thru = heard_back_trouble(int(status.get("heard_back") or 0))
    if thru:
        lines.append(f"thru:    {thru}")
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


LEARN_POLL_S = 0.2   #: how often ``groovebox learn`` asks the box whether it has learnt
LEARN_SLACK_S = 5.0  #: ... and how long past the box's own learn timeout it waits at most


def _exit_code(exc: ControlError) -> int:
    """2 when no box answers (none running, or it does not answer), 1 for any other trouble."""
    return 2 if "no running groovebox" in str(exc) or "does not answer" in str(exc) else 1


def _learn_block(socket_path: Path | None) -> dict[str, Any] | None:
    """The status's ``learn`` block (None: a box that does not report it, an older one)."""
    block = request("status", socket_path)["status"].get("learn")
    if block is not None and not isinstance(block, dict):
        raise TypeError("learn is not an object")
    return block


def _wait_for_learn(action: str, socket_path: Path | None, before: Any) -> int:
    """Wait until the box has learnt ``action`` (a binding other than ``before``) and say what it
    bound, or say why it learnt nothing: no control came in time, another learn took over, or
    the box stopped learning (a reload took its scene away, a restart)."""
    started = time.monotonic()
    while True:
        try:
            learn = _learn_block(socket_path)
            if learn is None:
                sys.stdout.write("this box does not say what it learns (an older version?): its log does "
                                 "(journalctl -u groovebox)\n")
                return 0
            learned, learning, timeout = learn.get("learned"), learn.get("learning"), float(learn.get("timeout_s") or 30.0)
            timeout = min(max(timeout, 0.0), 3600.0)
            if isinstance(learned, dict) and learned != before and learned.get("action") == action:
                control = "".join(c for c in str(learned.get("control"))[:40] if c.isprintable())
                sys.stdout.write(f"{action} is now {control}\n")
                return 0
        except ControlError as exc:
            sys.stderr.write(f"groovebox learn: {exc}\n")
            return _exit_code(exc)
        except (AttributeError, TypeError, ValueError, KeyError, OverflowError):
            sys.stderr.write("groovebox learn: the box's status is not one this groovebox can read "
                             "(another program on its socket, or another groovebox version?)\n")
            return 1
        waited = time.monotonic() - started
        if learning == action and waited > timeout + LEARN_SLACK_S:
            sys.stderr.write(f"groovebox learn: stopped waiting after {waited:.0f} s; the box still says it learns "
                             f"{action} (its log says when it binds)\n")
            return 1
        if learning != action:
            other = "".join(c for c in str(learning)[:40] if c.isprintable())
            why = (f"another `groovebox learn {other}` took over" if learning
                   else f"no control came within {timeout:g} s (is the keyboard connected? groovebox status "
                   "counts the inputs seen)" if waited >= timeout - 1.0
                   else "the box stopped learning (a reload or a restart; its log says which)")
            sys.stderr.write(f"groovebox learn: nothing learnt for {action}: {why}\n")
            return 1
        time.sleep(LEARN_POLL_S)


def client_main(args: argparse.Namespace) -> int:
    """``groovebox status|freeze|clear|resample|prior|end [--socket PATH]``, ``groovebox learn ACTION``."""
    command = args.command
    fields: dict[str, Any] = {}
    before: dict[str, Any] | None = None
    if command == "learn":
        fields["action"] = args.action
    try:
        if command == "learn" and getattr(args, "wait", True):
            before = (_learn_block(getattr(args, "socket", None)) or {}).get("learned")
        reply = request(command, getattr(args, "socket", None), **fields)
    except ControlError as exc:
        sys.stderr.write(f"groovebox {command}: {exc}\n")
        return _exit_code(exc)
    except (AttributeError, TypeError, KeyError):
        sys.stderr.write(f"groovebox {command}: the box's answer is not one this groovebox can read "
                         "(another program on its socket, or another groovebox version?)\n")
        return 1
    except KeyboardInterrupt:
        return 130
    out = sys.stdout
    if command == "status":
        try:
            text = format_status(reply["status"])
        except (AttributeError, TypeError, KeyError, ValueError):
            sys.stderr.write(f"groovebox status: the box's status is not one this groovebox can "
                             f"read (another program on its socket, or another groovebox version?)\n")
            return 1
        out.write(text)
    elif command == "freeze":
        out.write(f"freeze {'on' if reply.get('frozen') else 'off'}\n")
    elif command == "learn":
        out.write(str(reply.get("message", f"learning {args.action}: move a knob or press a pad")) + "\n")
        out.flush()
        if getattr(args, "wait", True):
            try:
                return _wait_for_learn(args.action, getattr(args, "socket", None), before)
            except KeyboardInterrupt:
                sys.stderr.write(f"groovebox learn: stopped waiting; the box still learns {args.action} "
                                 "until its learn timeout (the next control it sees)\n")
                return 130
    else:
        out.write(str(reply.get("message", f"{command}: done")) + "\n")
    return 0

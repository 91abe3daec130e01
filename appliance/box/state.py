"""The live state on disk: saved atomically, restored on start, never a reason not to start.

What is kept: the groove, the z noise (eps), the knobs (Controls), freeze, whether the pattern
came from the prior, the tempo of the internal clock, and the scenes (a few slots of groove +
eps + knobs + prior, stored and recalled from buttons or MIDI: ``appliance.box.scenes``).  While frozen, the pattern
being held is kept too, and played back as it is: the groove may have moved on since the
freeze (the looper keeps listening), so regenerating would not give the same drums.  Restoring
a state, or recalling a scene, gives back the pattern that was playing.

The tempo saved is the internal clock's (clamped to MIN_BPM..MAX_BPM, 40..300), never a followed MIDI
clock's, which may be slower or faster than the internal clock allows; a saved tempo that is
out of range is dropped with one log line, the rest of the state is kept.

A save writes a temp file in the same directory, fsyncs it, renames it over ``state.json``
and fsyncs the directory, so a pulled power cord or a kill -9 leaves either the old state or
the new one, never half of either.  The file carries a SHA-256 of its body; a file that is
cut short, corrupt or from a future version is set aside (renamed ``state.json.corrupt-…``)
with one log line, and the box starts clean.

What the service calls::

    store = StateStore(config.state.dir)
    saved = store.load()                               # LiveState or None; never raises
    scenes = Scenes(config.state.scenes, saved.scenes if saved else None)
    if saved is not None:
        saved.apply(engine, transport, now=time.monotonic())   # engine.restore(...) + tempo
    autosaver = Autosaver(store, lambda: snapshot(engine, transport, scenes),
                          every_s=config.state.save_every_s).start()
    engine.on_change.append(lambda kind: autosaver.poke())
    scenes.on_change.append(autosaver.poke)
    ...
    autosaver.close()                                  # on exit: stops and saves once more
"""
from __future__ import annotations

from dataclasses import dataclass, field
import fcntl
import hashlib
import json
import logging
import math
import os
from pathlib import Path
import threading
import time
from typing import Any, Callable, Mapping

import numpy as np

from appliance.box.codec import (StateError, controls_from, controls_json, controls_obj, eps_from,
                                 flag_from, groove_from, groove_json, low_json, pattern_from, pattern_json)
from appliance.box.config import Config
from appliance.box.scenes import Scene, Scenes
from appliance.core.engine import Engine
from appliance.core.groove import Groove, Pattern
from appliance.core.transport import MAX_BPM, MIN_BPM, Transport, clamp_bpm
from appliance.io.files import atomic_write, fsync_dir

log = logging.getLogger(__name__)

#: the config file's names of the knobs the state keeps (:func:`file_knobs`)
FILE_KEYS = {"density": "generator.density", "temperature": "generator.variation",
             "velocity_scale": "generator.velocity_scale", "humanise": "generator.humanise",
             "max_hits_per_voice": "generator.max_hits_per_voice", "thresholds": "generator.thresholds",
             "style": "generator.style", "style_amount": "generator.style_amount", "bpm": "tempo.bpm"}
LOCK_FILE = "running.lock"   #: holds the pid of the box that plays on this directory
MAGIC = "groovebox-state"
VERSION = 1
STATE_FILE = "state.json"
KEEP_CORRUPT = 5  #: set-aside files kept; older ones are removed
MAX_BYTES = 8 << 20   #: a state file is a few hundred KiB at most; anything larger is not ours
MAX_SCENES = 64       #: scene slots a file may hold


# --------------------------------------------------------------------------- what is saved

@dataclass(frozen=True)
class LiveState:
    groove: Groove = field(default_factory=Groove.empty)
    eps: tuple[float, ...] | None = None
    controls: Mapping[str, Any] = field(default_factory=dict)
    frozen: bool = False
    bpm: float | None = None
    scenes: Mapping[int, Scene] = field(default_factory=dict)
    prior: bool = False
    pattern: Pattern | None = None   #: the held pattern, kept only while frozen
    file: Mapping[str, Any] | None = None   #: the config file's knobs it ran under (:func:`file_knobs`)

    def apply(self, engine: Engine, transport: Transport | None = None,
              now: float | None = None, file: Mapping[str, Any] | None = None) -> None:
        """Put this state back into a running engine (and an internal clock's tempo): the
        same groove, z noise, knobs and prior flag give the same pattern; a frozen state
        plays the pattern it held. ``file``: the knobs of the config file the box starts on
        (:func:`file_knobs`); a knob the file changed since this state was saved is the
        file's (edited over SSH, then a restart), the others are the knobs as last played."""
        controls, bpm = dict(self.controls), self.bpm
        newer = self._newer_in(file)
        for key, value in newer.items():
            if key == "bpm":
                bpm = value
            elif controls:
                controls[key] = value
        if newer:
            log.info("state: %s changed in the config file since the last run: the file's value "
                     "plays, the other knobs as they were left", ", ".join(
                         f"{FILE_KEYS.get(k, k)} {v:g}" if isinstance(v, float) else f"{FILE_KEYS.get(k, k)} {v}"
                         for k, v in newer.items()))
        engine.restore(groove=self.groove,
                       eps=None if self.eps is None else np.asarray(self.eps, np.float32),
                       controls=controls_obj(controls), frozen=self.frozen,
                       prior=self.prior,
                       pattern=self.pattern if self.frozen else None)
        if bpm is not None and transport is not None:
            try:
                transport.set_bpm(bpm, time.monotonic() if now is None else now)
            except ValueError as e:
                log.warning("state: saved tempo not restored: %s", e)

    def _newer_in(self, file: Mapping[str, Any] | None) -> dict[str, Any]:
        """The knobs ``file`` sets otherwise than the file this state ran under (none when
        either is unknown: a state saved before the file was kept plays as saved)."""
        if file is None or self.file is None:
            return {}
        was, now = self.file, file
        newer = {k: v for k, v in now.get("controls", {}).items() if was.get("controls", {}).get(k) != v}
        if now.get("bpm") is not None and now.get("bpm") != was.get("bpm"):
            newer["bpm"] = now["bpm"]
        return newer

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"groove": groove_json(self.groove), "eps": self.eps,
                               "controls": dict(self.controls), "frozen": self.frozen, "bpm": self.bpm,
                               "prior": self.prior,
                               "scenes": {str(k): s.to_json() for k, s in sorted(self.scenes.items())}}
        if self.groove.low.any():
            out["low"] = low_json(self.groove)
        if self.frozen and self.pattern is not None:
            out["pattern"] = pattern_json(self.pattern)
        if self.file is not None:
            out["file"] = {"controls": dict(self.file.get("controls", {})), "bpm": self.file.get("bpm")}
        return out

    @classmethod
    def from_json(cls, data: Any) -> "LiveState":
        if not isinstance(data, dict):
            raise StateError("the body is not a mapping")
        bpm = data.get("bpm")
        if bpm is not None and not (isinstance(bpm, (int, float)) and not isinstance(bpm, bool)
                                    and MIN_BPM <= bpm <= MAX_BPM):
            log.warning("state: saved tempo %r is not in %g..%g BPM; keeping the configured "
                        "tempo (the rest of the state is restored)", bpm, MIN_BPM, MAX_BPM)
            bpm = None
        frozen = data.get("frozen", False)
        if not isinstance(frozen, bool):
            raise StateError("freeze is not true/false")
        prior = flag_from(data.get("prior", False), "prior")
        pattern = pattern_from(data.get("pattern")) if frozen else None
        scenes_raw = data.get("scenes") or {}
        if not isinstance(scenes_raw, dict):
            raise StateError("scenes is not a mapping")
        if len(scenes_raw) > MAX_SCENES:
            raise StateError(f"{len(scenes_raw)} scenes (at most {MAX_SCENES})")
        scenes: dict[int, Scene] = {}
        for key, value in scenes_raw.items():
            try:
                slot = int(key)
            except ValueError:
                raise StateError(f"scene slot {key!r} is not a number") from None
            scenes[slot] = Scene.from_json(value)
        return cls(groove=groove_from(data.get("groove"), data.get("low")), eps=eps_from(data.get("eps")),
                   controls=controls_from(data.get("controls")), frozen=frozen,
                   bpm=None if bpm is None else float(bpm), scenes=scenes, prior=prior,
                   pattern=pattern, file=_file_from(data.get("file")))


def _file_from(data: Any) -> dict[str, Any] | None:
    """The file's knobs as saved (None: not kept, a state from before they were)."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise StateError("file is not a mapping")
    bpm = data.get("bpm")
    if bpm is not None and not (isinstance(bpm, (int, float)) and not isinstance(bpm, bool) and math.isfinite(bpm)):
        raise StateError("file.bpm is not a number")
    return {"controls": controls_from(data.get("controls")), "bpm": None if bpm is None else float(bpm)}


def file_knobs(config: Config) -> dict[str, Any]:
    """The knobs a config file sets that the state keeps too (the generator's and the tempo),
    as :class:`LiveState` keeps them: what a restart compares to tell a file edited since."""
    return {"controls": controls_from(controls_json(config.controls())), "bpm": float(config.tempo.bpm)}


# --------------------------------------------------------------------------- the file format

def encode(state: LiveState) -> bytes:
    """``groovebox-state 1 sha256=HEX bytes=N`` then N bytes of JSON."""
    body = json.dumps(state.to_json(), sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha256(body).hexdigest()
    return f"{MAGIC} {VERSION} sha256={digest} bytes={len(body)}\n".encode() + body


def decode(data: bytes) -> LiveState:
    head, sep, body = data.partition(b"\n")
    if not sep:
        raise StateError("cut short (no header line)")
    parts = head.decode("ascii", "replace").split(" ")
    if len(parts) != 4 or parts[0] != MAGIC:
        raise StateError("not a groovebox state file")
    if parts[1] != str(VERSION):
        raise StateError(f"version {parts[1]} (this box reads {VERSION})")
    try:
        digest = parts[2].removeprefix("sha256=")
        length = int(parts[3].removeprefix("bytes="))
    except ValueError:
        raise StateError("bad header") from None
    if len(body) != length:
        raise StateError(f"cut short ({len(body)} of {length} bytes)")
    if hashlib.sha256(body).hexdigest() != digest:
        raise StateError("checksum mismatch (corrupt)")
    try:
        return LiveState.from_json(json.loads(body))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise StateError(f"bad JSON: {str(e)[:120]}") from None
    except RecursionError:
        raise StateError("bad JSON: nested too deeply") from None


class StateBusy(Exception):
    """Another groovebox plays on this state directory."""


class StateStore:
    """``state.json`` in one directory (``state.dir``, /var/lib/groovebox on the Pi)."""

    def __init__(self, directory: str | os.PathLike[str], name: str = STATE_FILE) -> None:
        self.dir = Path(directory)
        self.path = self.dir / name
        self._claim: int | None = None   # the lock file's descriptor while this process holds the directory

    def claim(self) -> None:
        """Hold the directory while this box runs (``LOCK_FILE``, flock'd: the kernel lets go
        when the process ends, by kill -9 too). A second box on the same state played the
        drums twice and wrote over the first one's state (a fault harness: 33 → 69 drum notes
        in 3 s): it raises StateBusy, naming the first. A directory that cannot be made or
        locked is no reason not to start (saving then says what is wrong). The directory itself
        is locked, so a read-only one is held too (a stage tech's review: an SD card remounted
        read-only let two boxes play, the lock file not writable); ``LOCK_FILE`` names the pid."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass
        try:
            fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = self._holder()
            raise StateBusy(f"another groovebox{f' (pid {holder})' if holder.isdigit() else ''} plays on "
                            f"the state directory {self.dir}: stop it first (systemctl stop groovebox, or "
                            "Ctrl-C in the terminal of `make run`), or give this one its own state.dir") from None
        except OSError:
            os.close(fd)
            return
        self._claim = fd
        try:
            atomic_write(self.dir / LOCK_FILE, f"{os.getpid()}\n".encode())
        except OSError:
            pass     # read-only: held all the same, the message then names no pid

    def _holder(self) -> str:
        """The pid the box holding the directory wrote, or ''."""
        try:
            with open(self.dir / LOCK_FILE, "rb") as f:
                return f.read(32).decode("ascii", "replace").strip()
        except OSError:
            return ""

    def release(self) -> None:
        """Let go of the directory (``claim``); the box's last act, after the exit save."""
        fd, self._claim = self._claim, None
        if fd is not None:
            os.close(fd)

    def save(self, state: LiveState) -> None:
        self.save_bytes(encode(state))

    def save_bytes(self, data: bytes) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, data)

    def load(self) -> LiveState | None:
        """The saved state, or None (no file yet, or it was unusable and set aside)."""
        self._remove_leftovers()
        try:
            if self.path.exists() and not self.path.is_file():    # a FIFO there would block the start
                raise OSError(f"{self.path} is not a regular file")
            with open(self.path, "rb") as f:
                data = f.read(MAX_BYTES + 1)
        except FileNotFoundError:
            log.info("state: no saved state at %s; starting clean", self.path)
            return None
        except OSError as e:
            log.error("state: cannot read %s (%s); starting clean", self.path, e)
            return None
        try:
            if len(data) > MAX_BYTES:
                raise StateError(f"larger than {MAX_BYTES >> 20} MiB")
            state = decode(data)
        except StateError as e:
            aside = self._set_aside()
            log.warning("state: %s is unusable (%s); set aside as %s; starting clean",
                        self.path, e, aside if aside else "(could not rename)")
            return None
        log.info("state: restored from %s (%d groove hits, %d scenes)",
                 self.path, state.groove.hits, len(state.scenes))
        return state

    def _set_aside(self) -> Path | None:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
        try:
            os.replace(self.path, target)
            fsync_dir(self.dir)
        except OSError:
            return None
        old = sorted(self.dir.glob(f"{self.path.name}.corrupt-*"), key=lambda p: p.stat().st_mtime)
        for p in old[:-KEEP_CORRUPT]:
            try:
                p.unlink()
            except OSError:
                pass
        return target

    def _remove_leftovers(self) -> None:
        for p in self.dir.glob(f".{self.path.name}.tmp-*"):
            try:
                p.unlink()
            except OSError:
                pass


def snapshot(engine: Engine, transport: Transport | None = None,
             scenes: Scenes | None = None, file: Mapping[str, Any] | None = None) -> LiveState:
    """The live state of a running engine, ready to save (``file``: :func:`file_knobs` of the
    config it runs on)."""
    frozen = bool(engine.frozen)
    return LiveState(groove=engine.groove, eps=tuple(float(x) for x in engine.eps),
                     controls=controls_json(engine.controls), frozen=frozen,
                     bpm=internal_bpm(transport),
                     scenes={} if scenes is None else scenes.snapshot(),
                     prior=bool(engine.from_prior),
                     pattern=engine.held_pattern, file=file)


def internal_bpm(transport: Transport | None) -> float | None:
    """The tempo worth saving: the box's own clock's (:attr:`Transport.own_bpm`, kept even
    while it follows a MIDI clock), clamped to MIN_BPM..MAX_BPM."""
    bpm = None if transport is None else transport.own_bpm
    if bpm is None or not math.isfinite(bpm):
        return None
    return clamp_bpm(bpm)


# --------------------------------------------------------------------------- the autosaver

class Autosaver:
    """Saves the live state when it changed, at most every ``every_s`` seconds, and on close.

    It saves from the start, before the player plays (a knob turned while the box waits for
    the first note is kept); a restored freeze not yet playing is saved as restored
    (``Engine.held_pattern``), not as the player's still-empty pattern.

    ``snapshot`` is called from the autosaver's own thread; it must be cheap and thread-safe
    (engine properties are)."""

    def __init__(self, store: StateStore, snapshot: Callable[[], LiveState],
                 every_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.snapshot = snapshot
        self.every_s = float(every_s)
        self.clock = clock
        self.saves = 0
        self._last_body: bytes | None = None
        self._last_save: float | None = None
        self._last_error: str | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "Autosaver":
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="groovebox-autosave",
                                            daemon=True)
            self._thread.start()
        return self

    def poke(self, *_: Any) -> None:
        """Something changed: save at the next chance the rate limit allows."""
        self._wake.set()

    def maybe_save(self, now: float | None = None) -> bool:
        """Save if the state changed and the last save is at least ``every_s`` old."""
        now = self.clock() if now is None else now
        if self._last_save is not None and now - self._last_save < self.every_s:
            return False
        return self.save_now(now)

    def save_now(self, now: float | None = None) -> bool:
        """Save if the state changed since the last save; True if a file was written."""
        with self._lock:
            try:
                body = encode(self.snapshot())
            except Exception:
                log.exception("state: cannot take a snapshot")
                return False
            if body == self._last_body:
                return False
            try:
                self.store.save_bytes(body)
            except OSError as e:
                # Tried again no sooner than a save would be: on a full disk, retrying at every
                # change cost 0.4 of a core under a note flood (a fault harness, session 47).
                self._last_save = self.clock() if now is None else now
                # (the reason, not the exception: its temp file's name is new each time)
                message = f"state: cannot save to {self.store.path}: {e.strerror or e}; the box plays on"
                if message != self._last_error:
                    log.error("%s", message)
                    self._last_error = message
                return False
            if self._last_error is not None:
                log.info("state: saved to %s again", self.store.path)
            self._last_error = None
            self._last_body = body
            self._last_save = self.clock() if now is None else now
            self.saves += 1
            return True

    @property
    def trouble(self) -> str:
        """Why the state is not being saved ('' while saves work): the status says it too, so the
        desk knows a power cut would lose what changed (a stage tech's review: only the log said)."""
        return self._last_error or ""

    def close(self) -> None:
        """Stop the thread and save once more (the exit save)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.save_now()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=self.every_s)
            self._wake.clear()
            if self._stop.is_set():
                break
            if self._last_save is not None:
                rest = self.every_s - (self.clock() - self._last_save)
                if rest > 0 and self._stop.wait(rest):
                    break
            self.maybe_save()

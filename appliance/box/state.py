"""The live state on disk: saved atomically, restored on start, never a reason not to start.

What is kept: the groove, the z noise (eps), the knobs (Controls), freeze, whether the pattern
came from the prior, the tempo of the internal clock, and the scenes (a few slots of groove +
eps + knobs + prior, stored and recalled from buttons or MIDI).  While frozen, the pattern
being held is kept too, and played back as it is: the groove may have moved on since the
freeze (the looper keeps listening), so regenerating would not give the same drums.  Restoring
a state, or recalling a scene, gives back the pattern that was playing.

The tempo saved is the internal clock's (clamped to 40..300 BPM), never a followed MIDI
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

from dataclasses import asdict, dataclass, field, fields
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

from appliance.core.groove import NUM_VOICES, STEPS, Groove, Pattern
from appliance.core.transport import MAX_BPM, MIN_BPM

log = logging.getLogger(__name__)

MAGIC = "groovebox-state"
VERSION = 1
STATE_FILE = "state.json"
KEEP_CORRUPT = 5  #: set-aside files kept; older ones are removed


class StateError(Exception):
    """A state file that cannot be used (cut short, corrupt, or not ours)."""


# --------------------------------------------------------------------------- atomic files

def atomic_write(path: str | os.PathLike[str], data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old file or the new one.

    temp file in the same directory → write → fsync → rename over ``path`` → fsync the
    directory (so the rename itself survives a power cut)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    try:
        dfd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:   # some filesystems refuse fsync on a directory
        pass
    finally:
        os.close(dfd)


# --------------------------------------------------------------------------- what is saved

@dataclass(frozen=True)
class Scene:
    """One slot: a groove, its z noise, the knobs and the prior flag; and, when it was stored
    while frozen, the pattern being held (played back as it is)."""

    groove: Groove
    eps: tuple[float, ...] | None = None
    controls: Mapping[str, Any] = field(default_factory=dict)
    prior: bool = False
    pattern: Pattern | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"groove": _groove_json(self.groove), "eps": self.eps,
               "controls": dict(self.controls), "prior": self.prior}
        if self.pattern is not None:
            out["pattern"] = _pattern_json(self.pattern)
        return out

    @classmethod
    def from_json(cls, data: Any) -> "Scene":
        if not isinstance(data, dict):
            raise StateError("a scene is not a mapping")
        return cls(groove=_groove_from(data.get("groove")), eps=_eps_from(data.get("eps")),
                   controls=_controls_from(data.get("controls")),
                   prior=_flag_from(data.get("prior", False), "prior"),
                   pattern=_pattern_from(data.get("pattern")))

    def apply(self, engine: Any) -> None:
        """Recall: the prior flag is set explicitly (False too), so a scene stored from the
        groove is not played from the prior because the box was on the prior when recalled."""
        engine.restore(groove=self.groove,
                       eps=None if self.eps is None else np.asarray(self.eps, np.float32),
                       controls=_controls_obj(self.controls), prior=self.prior,
                       pattern=self.pattern)


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

    def apply(self, engine: Any, transport: Any = None, now: float | None = None) -> None:
        """Put this state back into a running engine (and an internal clock's tempo): the
        same groove, z noise, knobs and prior flag give the same pattern; a frozen state
        plays the pattern it held."""
        engine.restore(groove=self.groove,
                       eps=None if self.eps is None else np.asarray(self.eps, np.float32),
                       controls=_controls_obj(self.controls), frozen=self.frozen,
                       prior=self.prior,
                       pattern=self.pattern if self.frozen else None)
        if self.bpm is not None and transport is not None and hasattr(transport, "set_bpm"):
            try:
                transport.set_bpm(self.bpm, time.monotonic() if now is None else now)
            except ValueError as e:
                log.warning("state: saved tempo not restored: %s", e)

    def to_json(self) -> dict[str, Any]:
        out = {"groove": _groove_json(self.groove), "eps": self.eps,
               "controls": dict(self.controls), "frozen": self.frozen, "bpm": self.bpm,
               "prior": self.prior,
               "scenes": {str(k): s.to_json() for k, s in sorted(self.scenes.items())}}
        if self.frozen and self.pattern is not None:
            out["pattern"] = _pattern_json(self.pattern)
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
        prior = _flag_from(data.get("prior", False), "prior")
        pattern = _pattern_from(data.get("pattern")) if frozen else None
        scenes_raw = data.get("scenes") or {}
        if not isinstance(scenes_raw, dict):
            raise StateError("scenes is not a mapping")
        scenes: dict[int, Scene] = {}
        for key, value in scenes_raw.items():
            try:
                slot = int(key)
            except ValueError:
                raise StateError(f"scene slot {key!r} is not a number") from None
            scenes[slot] = Scene.from_json(value)
        return cls(groove=_groove_from(data.get("groove")), eps=_eps_from(data.get("eps")),
                   controls=_controls_from(data.get("controls")), frozen=frozen,
                   bpm=None if bpm is None else float(bpm), scenes=scenes, prior=prior,
                   pattern=pattern)


def _groove_json(groove: Groove) -> list[list[float]]:
    return [[float(x) for x in row] for row in groove.steps]   # float32 → float64 is exact


def _groove_from(data: Any) -> Groove:
    if data is None:
        return Groove.empty()
    try:
        steps = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError):
        raise StateError("the groove is not a table of numbers") from None
    if steps.shape != (STEPS, 3) or not np.isfinite(steps).all():
        raise StateError(f"the groove has shape {steps.shape}, not ({STEPS}, 3)")
    if ((steps[:, 0] < 0) | (steps[:, 0] > 1) | (steps[:, 1] < 0) | (steps[:, 1] > 1)
            | (steps[:, 2] < -0.5) | (steps[:, 2] > 0.5)).any():
        raise StateError("the groove has values out of range")
    return Groove(steps.astype(np.float32))


def _flag_from(data: Any, what: str) -> bool:
    if not isinstance(data, bool):
        raise StateError(f"{what} is not true/false")
    return data


def _pattern_json(pattern: Pattern) -> list[list[list[float]]]:
    return [[[float(x) for x in voice] for voice in step] for step in pattern.steps]


def _pattern_from(data: Any) -> Pattern | None:
    """A held pattern; one that does not fit is dropped (logged): it is regenerated instead."""
    if data is None:
        return None
    try:
        steps = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError):
        steps = None
    if (steps is None or steps.shape != (STEPS, NUM_VOICES, 3) or not np.isfinite(steps).all()
            or ((steps[..., 0] < 0) | (steps[..., 0] > 1) | (steps[..., 1] < 0) | (steps[..., 1] > 1)
                | (steps[..., 2] < -0.5) | (steps[..., 2] > 0.5)).any()):
        log.warning("state: the saved held pattern does not fit; it is made again from the groove")
        return None
    return Pattern(steps.astype(np.float32))


def _eps_from(data: Any) -> tuple[float, ...] | None:
    if data is None:
        return None
    if not isinstance(data, list) or not data or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
            for x in data):
        raise StateError("eps is not a list of numbers")
    return tuple(float(x) for x in data)


def _controls_from(data: Any) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise StateError("controls is not a mapping")
    known = _controls_fields()
    out = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in known}
    try:
        _controls_obj(out)
    except (TypeError, ValueError) as e:
        raise StateError(f"controls: {e}") from None
    return out


def _controls_fields() -> set[str]:
    from appliance.core.generator import Controls
    return {f.name for f in fields(Controls)}


def _controls_obj(data: Mapping[str, Any]) -> Any:
    if not data:
        return None
    from appliance.core.generator import Controls
    return Controls(**dict(data))


def controls_json(controls: Any) -> dict[str, Any]:
    d = asdict(controls)
    if d.get("thresholds") is not None:
        d["thresholds"] = [float(x) for x in d["thresholds"]]
    return d


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
        raise StateError(f"bad JSON: {e}") from None


class StateStore:
    """``state.json`` in one directory (``state.dir``, /var/lib/groovebox on the Pi)."""

    def __init__(self, directory: str | os.PathLike[str], name: str = STATE_FILE) -> None:
        self.dir = Path(directory)
        self.path = self.dir / name

    def save(self, state: LiveState) -> None:
        self.save_bytes(encode(state))

    def save_bytes(self, data: bytes) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, data)

    def load(self) -> LiveState | None:
        """The saved state, or None (no file yet, or it was unusable and set aside)."""
        self._remove_leftovers()
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            log.info("state: no saved state at %s; starting clean", self.path)
            return None
        except OSError as e:
            log.error("state: cannot read %s (%s); starting clean", self.path, e)
            return None
        try:
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


# --------------------------------------------------------------------------- scenes

class Scenes:
    """A few slots of groove + eps + knobs, stored and recalled from buttons or MIDI."""

    def __init__(self, slots: int = 4, saved: Mapping[int, Scene] | None = None) -> None:
        self.slots = slots
        self._lock = threading.Lock()
        self._scenes: dict[int, Scene] = {k: v for k, v in (saved or {}).items()
                                          if 1 <= k <= slots}
        self.on_change: list[Callable[[], None]] = []

    def _check(self, slot: int) -> None:
        if not 1 <= slot <= self.slots:
            raise ValueError(f"scene {slot} is not in 1..{self.slots}")

    def store(self, slot: int, engine: Any) -> Scene:
        self._check(slot)
        frozen = bool(getattr(engine, "frozen", False))
        scene = Scene(groove=engine.groove, eps=tuple(float(x) for x in engine.eps),
                      controls=controls_json(engine.controls),
                      prior=bool(getattr(engine, "from_prior", False)),
                      pattern=engine.pattern if frozen else None)
        with self._lock:
            self._scenes[slot] = scene
        log.info("scene %d stored (%d groove hits)", slot, scene.groove.hits)
        for callback in list(self.on_change):
            callback()
        return scene

    def recall(self, slot: int, engine: Any) -> bool:
        self._check(slot)
        with self._lock:
            scene = self._scenes.get(slot)
        if scene is None:
            log.info("scene %d is empty; nothing recalled", slot)
            return False
        scene.apply(engine)
        log.info("scene %d recalled", slot)
        return True

    def get(self, slot: int) -> Scene | None:
        with self._lock:
            return self._scenes.get(slot)

    def snapshot(self) -> dict[int, Scene]:
        with self._lock:
            return dict(self._scenes)


def snapshot(engine: Any, transport: Any = None, scenes: Scenes | None = None) -> LiveState:
    """The live state of a running engine, ready to save."""
    frozen = bool(engine.frozen)
    return LiveState(groove=engine.groove, eps=tuple(float(x) for x in engine.eps),
                     controls=controls_json(engine.controls), frozen=frozen,
                     bpm=internal_bpm(transport),
                     scenes={} if scenes is None else scenes.snapshot(),
                     prior=bool(getattr(engine, "from_prior", False)),
                     pattern=engine.pattern if frozen else None)


def internal_bpm(transport: Any) -> float | None:
    """The tempo worth saving: the internal clock's (a ``ClockSwitch`` keeps it in
    ``.internal`` even while it follows a MIDI clock), clamped to 40..300 BPM."""
    if transport is None:
        return None
    clock = getattr(transport, "internal", transport)
    try:
        bpm = float(clock.bpm)
    except (AttributeError, TypeError, ValueError):
        return None
    if not math.isfinite(bpm):
        return None
    return min(max(bpm, MIN_BPM), MAX_BPM)


# --------------------------------------------------------------------------- the autosaver

class Autosaver:
    """Saves the live state when it changed, at most every ``every_s`` seconds, and on close.

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
                message = f"state: cannot save to {self.store.path}: {e}; the box plays on"
                if message != self._last_error:
                    log.error("%s", message)
                    self._last_error = message
                return False
            self._last_error = None
            self._last_body = body
            self._last_save = self.clock() if now is None else now
            self.saves += 1
            return True

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

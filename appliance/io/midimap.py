"""The keyboard's own knobs, pads and keys as the box's controls, and learn mode.

The table comes from ``midi_map`` in the config ({cc: action or knob}, {note: action}, on
``midi_map.channel`` or any channel).  ``groovebox learn ACTION`` arms :meth:`MidiMap.learn`;
the next CC (or note, for an action) the box sees is bound to it, kept in
``state.dir/midimap.json`` (written atomically), and wins over the config's table.  Learning
an action or knob again moves it.

The service hands every incoming message to :meth:`MidiMap.handle` *before* the engine:
True means the message was a control and must not be recorded into the groove.

  - a CC bound to a knob sets it: 0..127 sweeps the knob's range;
  - a CC bound to an action fires when its value crosses 64 upwards (a pad or a button
    sending 127/0, a sustain pedal);
  - a note bound to an action fires on note-on; its note-off is swallowed too.

Learned bindings that cannot be written (a full or read-only disk) keep working and are tried
again every ``SAVE_RETRY_S`` and at exit until they are on disk; one line says the failure, one
the save that worked after it. A reload that rebuilds the map keeps them until they are on
disk (``keep_learned``); deleting the file is how a player forgets what was learned.
"""
from __future__ import annotations

from dataclasses import dataclass
import difflib
import json
import logging
from pathlib import Path
import threading
import time
from typing import Callable, Mapping, Protocol

import mido

from appliance.core.actions import ACTIONS, KNOBS, SAID_AGAIN_S, Actions
from appliance.core.clock import RateLimitedLog
from appliance.io.pickup import Pickup
from appliance.io.files import atomic_write

log = logging.getLogger(__name__)

LEARNED_FILE = "midimap.json"
MAX_LEARNED_BYTES = 1 << 20   #: a learned map is a few KB; a bigger file is not one
SAVE_RETRY_S = 5.0           #: learned bindings that could not be saved (a full disk) are tried again after this
Key = tuple[str, int, int]   #: ("cc" | "note", number 0..127, channel 1..16 or 0 = any)


@dataclass(frozen=True)
class Learned:
    """The last binding learnt: the action, the control ("cc 20 channel 1") and when (the map's clock)."""

    action: str
    control: str
    at: float


class MidiMapSettings(Protocol):
    """What the map reads of its settings (``appliance.box.config.MidiMapConfig``)."""

    @property
    def channel(self) -> int: ...
    @property
    def cc(self) -> Mapping[int, str]: ...
    @property
    def notes(self) -> Mapping[int, str]: ...
    @property
    def learn_timeout_s(self) -> float: ...
    @property
    def pickup(self) -> bool: ...


class MidiMap:
    def __init__(self, config: MidiMapSettings, actions: Actions, learned_path: str | Path | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.actions = actions
        self.learned_path = Path(learned_path) if learned_path is not None else None
        self.clock = clock
        self.on_message: list[Callable[[float], None]] = []
        self.on_learned: list[Callable[[str, str], None]] = []
        self._lock = threading.RLock()
        self._saver = _LatestWriter()
        self._unsaved = False                   # learned bindings not on disk yet (a failed write)
        self._retry: threading.Timer | None = None
        self._closed = False
        self._table: dict[Key, str] = {}
        for number, name in config.cc.items():
            self._table[("cc", number, config.channel)] = name
        for number, name in config.notes.items():
            self._table[("note", number, config.channel)] = name
        self._learned: dict[Key, str] = self._load_learned()
        self._cc_values: dict[Key, int] = {}
        self._pickups: dict[Key, Pickup] = {}   # a knob CC's soft takeover (``midi_map.pickup``)
        self._learning: str | None = None
        self.last_learned: Learned | None = None   #: what ``groovebox learn`` waits for
        self._news = RateLimitedLog(log, every_s=SAID_AGAIN_S)   # what a player or a client can repeat fast
        self._learn_since = 0.0

    # -- the table

    def bindings(self) -> dict[Key, str]:
        """Everything bound: the config's table overlaid with what was learned."""
        with self._lock:
            merged = dict(self._table)
            learned_names = set(self._learned.values())
            merged = {k: v for k, v in merged.items() if v not in learned_names}
            merged.update(self._learned)
            return merged

    def _lookup(self, kind: str, number: int, channel: int) -> tuple[Key, str] | None:
        bindings = self.bindings()
        for key in ((kind, number, channel), (kind, number, 0)):
            if key in bindings:
                return key, bindings[key]
        return None

    # -- learn mode

    @property
    def learning(self) -> str | None:
        return self._learning

    def learn(self, action: str, now: float | None = None) -> str:
        """Bind the next CC or note to ``action`` (or knob). Returns what to tell the player;
        ValueError with a did-you-mean for an unknown name."""
        if action not in ACTIONS and action not in KNOBS:
            close = difflib.get_close_matches(action, [*ACTIONS, *KNOBS], n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            named = action if len(action) <= 40 else action[:40] + "…"   # a client's junk is not echoed whole
            plain = [a for a in ACTIONS if not a.startswith(("scene_", "store_scene_", "style_"))]
            styles = [a for a in ACTIONS if a.startswith("style_")]
            raise ValueError(f"cannot learn '{named}'{hint} (actions: {', '.join(plain)}, scene_N, "
                             f"store_scene_N, {', '.join(styles)}; knobs: {', '.join(KNOBS)})")
        beyond = self.out_of_reach(action)
        if beyond:
            raise ValueError(f"cannot learn '{action}': {beyond}")
        with self._lock:
            self._learning = action
            self._learn_since = self.clock() if now is None else now
        what = "turn a knob (CC)" if action in KNOBS else "press a pad or key, or move a CC"
        self._news.note(f"learning {action}", logging.INFO, "midi map: learning %s: %s within %.0f s", action,
                        what, self.config.learn_timeout_s)
        self._news.flush()
        return f"learning {action}: {what} within {self.config.learn_timeout_s:g} s"

    @property
    def learning_since(self) -> float:
        """When the current (or last) learn began, on the map's clock."""
        return self._learn_since

    def learn_state(self, now: float | None = None) -> tuple[str | None, Learned | None]:
        """(the action being learnt, None once it is learnt, cancelled or past ``learn_timeout_s``;
        the last binding learnt), read together (:attr:`learning` stays set until the next
        message says the time is up)."""
        with self._lock:
            now = self.clock() if now is None else now
            if self._learning is None or now - self._learn_since > self.config.learn_timeout_s:
                return None, self.last_learned
            return self._learning, self.last_learned

    def out_of_reach(self, action: str) -> str:
        """Why a scene action cannot be learnt on this box ("" when it can): a scene beyond
        ``state.scenes``."""
        scenes = self.actions.scenes
        if action.startswith(("scene_", "store_scene_")) and scenes is not None \
                and int(action.rsplit("_", 1)[1]) > scenes.slots:
            return f"this box keeps {scenes.slots} scenes (state.scenes; up to 8)"
        return ""

    def cancel_learn(self) -> None:
        with self._lock:
            self._learning = None

    def flush(self, timeout: float = 5.0) -> bool:
        """Write what is not on disk yet, wait for it; True when the learned bindings are on
        disk, False after ``timeout`` or when the write failed."""
        if self._unsaved:
            self._save_learned()
        return self._saver.flush(timeout) and not self._unsaved

    def close(self) -> None:
        """No more retries (the map is replaced, or the box stops: call :meth:`flush` first)."""
        with self._lock:
            self._closed = True
            if self._retry is not None:
                self._retry.cancel()
                self._retry = None

    def keep_learned(self, old: "MidiMap") -> None:
        """A reload rebuilds the map from the file: if ``old`` learned bindings the disk
        refused, they are taken over and written from here (otherwise the file is what was
        learned, or what the player left of it: deleting it forgets them)."""
        with old._lock:
            learned, unsaved = dict(old._learned), old._unsaved
        if unsaved:
            with self._lock:
                self._learned, self._unsaved = learned, True   # a failure already said stays said
            self._save_learned()

    def _bind(self, key: Key, action: str) -> None:
        """Learn ``key`` for ``action``; the file is written by a helper thread, never under
        the lock or on the MIDI input thread (an fsync can take long on an SD card)."""
        with self._lock:
            for k in [k for k, v in self._learned.items() if v == action or k == key]:
                del self._learned[k]
            self._learned[key] = action
            self._learning = None
            kind, number, channel = key
            self.last_learned = Learned(action, f"{kind} {number} channel {channel}", self.clock())
        self._save_learned()
        log.info("midi map: %s %d on channel %d now %s", kind, number, channel, action)
        for callback in list(self.on_learned):
            callback(action, f"{kind} {number} channel {channel}")

    # -- messages

    def handle(self, message: mido.Message, t: float) -> bool:
        """A message from the keyboard; True if it was a control (do not record it)."""
        for callback in list(self.on_message):
            try:
                callback(t)
            except Exception:
                log.exception("midi map: on_message callback failed")
        kind = message.type
        if kind not in ("note_on", "note_off", "control_change"):
            return False
        channel = message.channel + 1
        is_cc = kind == "control_change"
        number = message.control if is_cc else message.note
        value = message.value if is_cc else message.velocity
        note_on = kind == "note_on" and value > 0
        said: str | None = None
        learn: tuple[Key, str] | None = None
        with self._lock:
            if self._learning is not None:
                if t - self._learn_since > self.config.learn_timeout_s:
                    said = f"midi map: nothing learned for {self._learning} (timed out)"
                    self._learning = None
                elif is_cc or note_on:
                    if not is_cc and self._learning in KNOBS:
                        said = (f"midi map: {self._learning} needs a knob (a CC), not a note; "
                                "still listening")
                    else:
                        learn = (("cc" if is_cc else "note", number, channel), self._learning)
                        if is_cc:
                            self._cc_values[learn[0]] = value
            found = None if learn else self._lookup("cc" if is_cc else "note", number, channel)
            if found is not None:
                key, name = found
                if is_cc:
                    last = self._cc_values.get(key, 0)
                    self._cc_values[key] = value
        if said is not None:
            self._news.note(said, logging.INFO, "%s", said)
            self._news.flush()
        if learn is not None:
            self._bind(*learn)          # logs and writes outside the lock
            return True
        if found is None:
            return False
        try:
            if is_cc and name in KNOBS:
                self._turn(key, name, value)
            elif is_cc:
                if last < 64 <= value:
                    self.actions.do(name)
            elif note_on:
                self.actions.do(name)
        except Exception:
            log.exception("midi map: %s failed", name)
        return True

    def _turn(self, key: Key, name: str, value: int) -> None:
        """A knob's CC: it sets the knob once it has reached or crossed where the knob stands
        (soft takeover; a musician's review: the tempo knob's first nudge jumped 100 → 112 BPM)."""
        with self._lock:
            pickup = self._pickups.setdefault(key, Pickup(self.config.pickup))
        current = self.actions.knob_value(name)
        if not pickup.takes(value / 127.0, current):
            kind, number, _ = key
            self._news.note(f"pickup {name}", logging.INFO,
                            "midi map: %s %d (%s) at %d waits until it reaches %d, where %s stands "
                            "(soft takeover: midi_map.pickup)", kind.upper(), number, name, value,
                            round(current * 127), name)
            self._news.flush()
            return
        self.actions.knob(name, value / 127.0)
        pickup.sent = self.actions.knob_value(name)

    # -- learned bindings on disk

    def _load_learned(self) -> dict[Key, str]:
        if self.learned_path is None or not self.learned_path.exists():
            return {}
        try:
            if not self.learned_path.is_file():      # a FIFO there would block the start
                raise ValueError("not a regular file")
            if self.learned_path.stat().st_size > MAX_LEARNED_BYTES:
                raise ValueError(f"over {MAX_LEARNED_BYTES} bytes")
            data = json.loads(self.learned_path.read_text())
            out: dict[Key, str] = {}
            for item in data["bindings"]:
                kind, number, channel, name = item["kind"], int(item["number"]), int(item["channel"]), item["action"]
                if kind not in ("cc", "note") or not 0 <= number <= 127 or not 0 <= channel <= 16 \
                        or (name not in ACTIONS and name not in KNOBS) or (kind == "note" and name in KNOBS):
                    raise ValueError(f"bad binding {item!r}")
                out[(kind, number, channel)] = name
            return out
        except (OSError, ValueError, KeyError, TypeError, OverflowError, RecursionError) as e:
            # (1e999 is a float JSON reads, int() cannot; 10,000 brackets are deeper than it parses)
            aside = self.learned_path.with_name(self.learned_path.name + ".corrupt")
            try:
                self.learned_path.replace(aside)
            except OSError:
                pass
            log.warning("midi map: %s is unusable (%.120s); set aside as %s; learned bindings "
                        "start empty", self.learned_path, str(e) or type(e).__name__, aside)
            return {}

    def _learned_bytes(self) -> bytes:
        """The learned bindings as the file holds them (caller holds the lock)."""
        data = {"bindings": [{"kind": k, "number": n, "channel": c, "action": a}
                             for (k, n, c), a in sorted(self._learned.items())]}
        return (json.dumps(data, indent=1) + "\n").encode()

    def _save_learned(self) -> None:
        """Write the learned bindings as they are when the writer gets to them (a retry
        never writes an older set over a newer one)."""
        if self.learned_path is None:
            return
        path = self.learned_path

        def write() -> None:
            with self._lock:
                data = self._learned_bytes()
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(path, data)
            except OSError as e:
                self._failed(f"midi map: cannot save learned bindings to {path}: {e}; "
                             f"they work, and saving is tried again every {SAVE_RETRY_S:.0f} s")
                return
            with self._lock:
                was, self._unsaved = self._unsaved, False   # learned again meanwhile: its own write follows
            if was:
                log.info("midi map: learned bindings saved to %s after all", path)
        self._saver.submit(write)

    def _failed(self, message: str) -> None:
        """A write failed: say so once, and try again later (a full disk gets room)."""
        with self._lock:
            first, self._unsaved = not self._unsaved, True
            if self._closed or (self._retry is not None and self._retry.is_alive()):
                timer = None
            else:
                timer = self._retry = threading.Timer(SAVE_RETRY_S, self._try_again)
                timer.daemon = True
        if first:
            log.error("%s", message)
        if timer is not None:
            timer.start()

    def _try_again(self) -> None:
        with self._lock:
            self._retry = None
            again = self._unsaved and not self._closed
        if again:
            self._save_learned()


class _LatestWriter:
    """Runs the newest of the writes handed to it on its own short-lived thread; a write
    handed over while one runs replaces any still waiting (only the last state matters)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._waiting: Callable[[], None] | None = None
        self._busy = False

    def submit(self, write: Callable[[], None]) -> None:
        with self._cond:
            self._waiting = write
            if self._busy:
                return
            self._busy = True
        threading.Thread(target=self._run, name="midimap-save", daemon=True).start()

    def _run(self) -> None:
        while True:
            with self._cond:
                write, self._waiting = self._waiting, None
                if write is None:
                    self._busy = False
                    self._cond.notify_all()
                    return
            write()

    def flush(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: not self._busy, timeout)

"""The player thread: the engine's events out to the MIDI ports, each when it is due."""
from __future__ import annotations

from collections import deque
import heapq
import itertools
import logging
import math
import threading
import time
from typing import Callable

import mido
import numpy as np

from appliance.box import realtime
from appliance.core.engine import Engine
from appliance.core.transport import Transport
from appliance.io.midi.clock import ClockSender

log = logging.getLogger("appliance.box.service")

TICK_S = 0.010            #: the player wakes at least this often to ask the engine for events
QUIET_GAP_S = 0.015       #: a gap between notes long enough to open a MIDI port in
TIMING_EVERY_S = 1.0      #: the output-timing percentiles in status are at most this old


class PlayerThread(threading.Thread):
    """engine.tick → a heap of events → each sent when due. All notes off on stop and exit.

    Which notes sound is the engine's player's to know (``engine.all_notes_off()``); this
    thread only holds the events handed to it and not yet due, whose note-offs it sends too.
    """

    def __init__(self, engine: Engine, transport: Transport, send: Callable[[mido.Message], None], *,
                 clock_sender: ClockSender | None = None, use_realtime: bool = True,
                 clock: Callable[[], float] = time.monotonic, timing_log: int = 4096) -> None:
        super().__init__(name="groovebox-player", daemon=True)
        self.engine = engine
        self.transport = transport
        self.send = send
        self.clock_sender = clock_sender
        self.use_realtime = use_realtime
        self.clock = clock
        self.heartbeat = clock()
        self.realtime = False
        self.sent = 0
        self.tick_errors = 0
        #: note-ons more than the player's ``max_late`` late by the time this thread got to them
        #: (held up by the engine's lock or the CPU): dropped, never played as a flam. The rule is
        #: the player's own, on the true clock: one the player let through 45 ms late (a held-back
        #: step, the first downbeat) and sent 10 ms later is past it too
        self.late_drops = 0
        #: (ideal time, sent time, channel, note) of recent note-ons: the player's own view
        self.timing: deque[tuple[float, float, int, int]] = deque(maxlen=timing_log)
        self._timing_cache: tuple[float, dict[str, float]] | None = None
        self._stop_event = threading.Event()
        self._off_lock = threading.Lock()
        self._next_due = 0.0   # when the player next has to send something (or may have to)
        self._seq = itertools.count()
        self._was_running = transport.running
        self._heap: list[tuple[float, int, mido.Message]] = []   # due time, order, message

    def wait_for_gap(self, gap: float = QUIET_GAP_S, timeout: float = 1.0) -> bool:
        """Block until nothing is due for ``gap`` seconds (True), or ``timeout`` (False).

        For work that holds the GIL in one piece (rtmidi opening a port): done in the gap
        between two notes, it never makes a note late."""
        clock = self.clock
        deadline = clock() + timeout
        while self.is_alive():
            now = clock()
            ahead = self._next_due - now
            if ahead >= gap:
                return True
            if now >= deadline:
                return False
            time.sleep(min(max(ahead, 0.0) + 0.0005, 0.005, max(deadline - now, 0.0)))
        return True

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        if self.use_realtime:
            self.realtime = realtime.make_current_thread_realtime()
        heap = self._heap
        try:
            while not self._stop_event.is_set():
                try:
                    self._cycle(heap)
                except Exception:  # nothing may stop the beat: log, and go on
                    self.tick_errors += 1
                    if self.tick_errors in (1, 10, 100) or self.tick_errors % 10000 == 0:
                        log.exception("player cycle failed (%d times); the player carries on",
                                      self.tick_errors)
                    self._stop_event.wait(TICK_S)
        finally:
            self.notes_off()        # stop or exit: drop what was to be played, release what sounds
            if self.clock_sender is not None and self.transport.source == "internal":
                self.send(mido.Message("stop"))      # the master goes away: tell the slaves

    def _cycle(self, heap: list[tuple[float, int, mido.Message]]) -> None:
        """One turn: ask the engine, send what is due, sleep until the next thing is."""
        transport, engine, clock = self.transport, self.engine, self.clock
        now = clock()
        self.heartbeat = now
        self._send_due(heap)            # what is due goes out before any other work
        running = transport.running
        if self._was_running and not running:
            self.notes_off()
        self._was_running = running
        lookahead = engine.settings.lookahead
        events = engine.tick(now)
        cut = engine.withdrawn()
        if cut is not None:     # an ending pressed with its last chord, a jump: what was to follow is not played
            heap[:] = [entry for entry in heap if entry[2].type != "note_on" or entry[0] < cut]
            heapq.heapify(heap)
        for event in events:
            heapq.heappush(heap, (event.time, next(self._seq), event.message))
        if self.clock_sender is not None:       # the box's clock only while it is the master
            internal = transport.source == "internal"
            for when, message in (self.clock_sender.due(now, now + lookahead) if internal
                                  else self.clock_sender.hand_over(now)):
                heapq.heappush(heap, (when, next(self._seq), message))
        self._send_due(heap)
        now = clock()
        # Events come back from tick at most a look-ahead early: with an empty heap nothing
        # is due before now + look-ahead − one tick.
        self._next_due = min(heap[0][0] if heap else math.inf, now + lookahead - TICK_S)
        wait = min(heap[0][0] if heap else math.inf, now + TICK_S) - clock()
        if wait > 0:
            self._stop_event.wait(wait)

    def _send_due(self, heap: list[tuple[float, int, mido.Message]]) -> None:
        clock, too_late = self.clock, self.engine.player.settings.max_late
        while heap and heap[0][0] <= clock():
            due, _, message = heapq.heappop(heap)
            if message.type == "note_on" and message.velocity and clock() - due > too_late:
                self.late_drops += 1   # its note-off goes out as due: harmless
                continue
            self._out(message)
            if message.type == "note_on":
                self.timing.append((due, clock(), message.channel, message.note))

    def _out(self, message: mido.Message) -> None:
        self.send(message)
        self.sent += 1

    def notes_off(self) -> None:
        """A note-off for every note that may sound: those the engine's player handed out
        without their note-off yet, and the note-offs waiting here (idempotent; callable
        from another thread when this one is stuck)."""
        with self._off_lock:
            waiting = list(self._heap)
            self._heap.clear()
            offs = {(m.channel, m.note) for _, _, m in waiting if m.type == "note_off"}
            offs.update((m.channel, m.note) for m in self.engine.all_notes_off())
            for channel, note in sorted(offs):
                self._out(mido.Message("note_off", channel=channel, note=note, velocity=0))

    def timing_ms(self) -> dict[str, float] | None:
        """Percentiles of how far recent note-ons left off schedule. Reduced at most once
        a second (a few ms of numpy over 4096 entries): ``groovebox monitor`` asks for the
        status several times a second, and every call holds the GIL the player needs."""
        now = self.clock()
        cached = self._timing_cache
        if cached is not None and now - cached[0] < TIMING_EVERY_S:
            return cached[1]
        if not self.timing:
            return None
        errors = np.abs(np.fromiter((sent - ideal for ideal, sent, *_ in list(self.timing)),
                                    np.float64)) * 1000
        p50, p99 = np.percentile(errors, (50, 99))
        result = {"p50": float(p50), "p99": float(p99), "max": float(errors.max()),
                  "count": int(errors.size)}
        self._timing_cache = (now, result)
        return result

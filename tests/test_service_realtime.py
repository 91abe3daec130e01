"""SCHED_FIFO for the player thread where allowed; one log line where it is not; the player
thread on a virtual engine: all notes off when the transport stops and when it exits."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import mido
import pytest

from appliance.box import realtime
from appliance.core.engine import Engine, EngineSettings
from appliance.core.generator import Generator
from appliance.box.player_thread import PlayerThread
from appliance.core.transport import InternalClock

PROBE = r"""
import logging, os, resource, sys, threading
logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
from appliance.box import realtime
if sys.argv[1] == "unprivileged":
    resource.setrlimit(resource.RLIMIT_RTPRIO, (0, 0))
    if os.geteuid() == 0:           # root ignores the limit: become nobody
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
result = {}
def player():
    result["ok"] = realtime.make_current_thread_realtime(20)
    result["rt"] = realtime.is_realtime()
t = threading.Thread(target=player)
t.start(); t.join()
print("RESULT", result["ok"], result["rt"], realtime.is_realtime())
"""


def probe(mode: str) -> str:
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                          timeout=60, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_not_allowed_is_one_log_line_and_the_thread_plays_on():
    out = probe("unprivileged")
    assert "RESULT False False False" in out
    lines = [l for l in out.splitlines() if not l.startswith("RESULT")]
    assert len(lines) == 1 and "LimitRTPRIO" in lines[0]


def test_allowed_gives_only_the_calling_thread_sched_fifo():
    if realtime.allowed_priority() <= 0:
        pytest.fail("this machine allows no real-time priority; run the tests as root or "
                    "with an rtprio limit")
    out = probe("privileged")
    assert "RESULT True True False" in out        # the thread is FIFO, the main thread is not
    assert "SCHED_FIFO at priority 20" in out


@pytest.fixture(scope="module")
def tiny_generator(tiny_model_dir):
    return Generator(tiny_model_dir, precision="fp32", seed=1)


def test_player_thread_sends_on_time_and_releases_every_note(tiny_generator):
    transport = InternalClock(bpm=240, start=time.monotonic())
    engine = Engine(tiny_generator, transport, EngineSettings(swap_at="step"))
    sent: list[tuple[float, mido.Message]] = []
    lock = threading.Lock()

    def send(message: mido.Message) -> None:
        with lock:
            sent.append((time.monotonic(), message))

    player = PlayerThread(engine, transport, send, use_realtime=False)
    player.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and sum(m.type == "note_on" for _, m in sent) < 10:
            time.sleep(0.05)
        assert sum(m.type == "note_on" for _, m in sent) >= 10
        transport.stop(time.monotonic())              # the transport stops: all notes off
        stopped_at = time.monotonic()

        def released() -> bool:
            with lock:
                return _sounding(sent) == set()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not released():
            time.sleep(0.01)
        assert released()
        time.sleep(0.3)                               # a quiet window, watched
        with lock:
            assert [m for t, m in sent if t > stopped_at + 0.1 and m.type == "note_on"
                    and m.velocity > 0] == []         # nothing plays while stopped
            after_stop = len(sent)
        transport.start(time.monotonic(), position=0.0)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(sent) == after_stop:
            time.sleep(0.05)
        assert len(sent) > after_stop                 # and it plays again
    finally:
        player.stop()
        player.join(timeout=10)
        engine.close()
    assert not player.is_alive()
    assert _sounding(sent) == set()                   # exit: all notes off
    timing = player.timing_ms()
    assert timing is not None and timing["count"] >= 10
    assert player.heartbeat > 0


def test_a_failing_engine_does_not_stop_the_player(tiny_generator, caplog):
    transport = InternalClock(bpm=120, start=time.monotonic())
    engine = Engine(tiny_generator, transport, EngineSettings())
    calls = {"n": 0}
    real_tick = engine.tick

    def flaky(now):
        calls["n"] += 1
        if calls["n"] % 3 == 0:
            raise RuntimeError("a bad day")
        return real_tick(now)

    engine.tick = flaky
    player = PlayerThread(engine, transport, lambda m: None, use_realtime=False)
    player.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and player.tick_errors < 3:
            time.sleep(0.02)
        assert player.is_alive()
        assert player.tick_errors >= 3
        assert time.monotonic() - player.heartbeat < 1.0
    finally:
        player.stop()
        player.join(timeout=10)
        engine.close()
    assert "player cycle failed" in caplog.text


def test_a_note_the_player_thread_gets_to_too_late_is_dropped_and_counted(tiny_generator):
    """The engine's lock or the CPU held the thread up (a fault harness's note flood sent a loop
    point's crash 70-270 ms late): a note-on past ``max_late`` is dropped, never played as a flam."""
    from appliance.core.player import Event
    transport = InternalClock(bpm=120, start=time.monotonic())
    engine = Engine(tiny_generator, transport, EngineSettings())
    handed = []

    def held_up(now):
        if handed:
            return []
        handed.append(now)
        return [Event(now - 0.2, mido.Message("note_on", channel=9, note=49, velocity=100)),
                Event(now - 0.2 + 0.01, mido.Message("note_off", channel=9, note=49, velocity=0)),
                Event(now + 0.02, mido.Message("note_on", channel=9, note=36, velocity=100))]

    engine.tick = held_up
    sent = []
    player = PlayerThread(engine, transport, sent.append, use_realtime=False)
    player.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and player.late_drops < 2 and not any(
                m.type == "note_on" and m.note == 36 for m in sent):
            time.sleep(0.01)
    finally:
        player.stop()
        player.join(timeout=10)
        engine.close()
    assert not [m for m in sent if m.type == "note_on" and m.note == 49 and m.velocity], "the late crash"
    kick = [m for m in sent if m.type == "note_on" and m.note == 36]
    assert player.late_drops == (1 if kick else 2), "the kick on time (or, the thread starved, dropped too)"


def test_notes_withdrawn_by_an_ending_are_not_sent_but_its_crash_is(tiny_generator):
    """An end pressed with the last chord, after its line was handed out: what the thread holds from
    the cut on is dropped (its note-offs kept); the tick's own crash, due after the cut, is played."""
    from appliance.core.player import Event
    transport = InternalClock(bpm=120, start=time.monotonic())
    engine = Engine(tiny_generator, transport, EngineSettings())
    ticks: list[float] = []

    def ending(now):
        ticks.append(now)
        if len(ticks) == 1:     # the step after the line, handed out a look-ahead early
            return [Event(now + 0.2, mido.Message("note_on", channel=9, note=42, velocity=90)),
                    Event(now + 0.25, mido.Message("note_off", channel=9, note=42, velocity=0))]
        if len(ticks) == 2:     # the end: the crash, now
            return [Event(now + 0.05, mido.Message("note_on", channel=9, note=49, velocity=100))]
        return []

    engine.tick = ending
    engine.withdrawn = lambda: ticks[0] + 0.1 if len(ticks) == 2 else None
    sent = []
    player = PlayerThread(engine, transport, sent.append, use_realtime=False)
    player.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (ticks and time.monotonic() > ticks[0] + 0.4):
            time.sleep(0.01)
    finally:
        player.stop()
        player.join(timeout=10)
        engine.close()
    assert [m.note for m in sent if m.type == "note_on"] == [49], "the crash, and nothing withdrawn"
    assert any(m.type == "note_off" and m.note == 42 for m in sent), "a withdrawn note's note-off is harmless"


def _sounding(events) -> set[tuple[int, int]]:
    on: dict[tuple[int, int], int] = {}
    for _, m in events:
        if m.type not in ("note_on", "note_off"):
            continue
        key = (m.channel, m.note)
        if m.type == "note_on" and m.velocity > 0:
            on[key] = on.get(key, 0) + 1
        elif on.get(key):
            on[key] -= 1
    return {k for k, n in on.items() if n > 0}

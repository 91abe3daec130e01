"""State on disk: round trip, every truncation, kill -9 mid-save, autosave rate, scenes."""
from __future__ import annotations

import logging
import os
from pathlib import Path
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from appliance.core.engine import EngineSettings
from appliance.core.generator import Controls
from appliance.core.groove import STEPS, Groove
from appliance.box.scenes import Scene, Scenes
from appliance.box.state import Autosaver, LiveState, StateStore, decode, encode, snapshot

ROOT = Path(__file__).resolve().parents[1]


def a_groove(seed: int) -> Groove:
    rng = np.random.default_rng(seed)
    steps = np.zeros((STEPS, 3), np.float32)
    hits = rng.random(STEPS) < 0.4
    steps[hits, 0] = 1
    steps[hits, 1] = rng.uniform(0.2, 1.0, hits.sum())
    steps[hits, 2] = rng.uniform(-0.5, 0.49, hits.sum())
    return Groove(steps, rng.random(STEPS) < 0.4)    # with its register (the left hand's steps)


def a_state(seed: int = 1, scenes: int = 2) -> LiveState:
    rng = np.random.default_rng(seed)
    return LiveState(
        groove=a_groove(seed), eps=tuple(float(x) for x in rng.standard_normal(64)),
        controls={"density": 0.7, "temperature": 1.3, "humanise": 0.5},
        frozen=bool(seed % 2), bpm=100.0 + seed,
        scenes={i: Scene(a_groove(seed + i), tuple(float(x) for x in rng.standard_normal(64)),
                         {"density": 0.25}) for i in range(1, scenes + 1)})


def same(a: LiveState, b: LiveState) -> bool:
    return encode(a) == encode(b)


def test_round_trip(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    state = a_state()
    store.save(state)
    back = store.load()
    assert back is not None and same(back, state)
    assert back.groove == state.groove and back.bpm == state.bpm and back.frozen == state.frozen
    assert Controls(**back.controls).temperature == 1.3


def test_the_grooves_register_is_saved_and_an_older_save_loads_without_one(tmp_path: Path) -> None:
    """The register is a key of its own ("low": its steps), so a box from before it reads the
    file (its groove rows stay three numbers); a file from before it loads with none."""
    from appliance.box.codec import StateError, groove_from, groove_json, low_json
    groove = a_groove(3)
    assert groove.low.any() and groove_from(groove_json(groove), low_json(groove)) == groove
    assert all(len(row) == 3 for row in groove_json(groove))
    assert groove_from(groove_json(groove)) == Groove(groove.steps)      # saved before the register
    for bad in ([40], [1.5], "0,1", [True], list(range(33))):
        with pytest.raises(StateError, match="register"):
            groove_from(groove_json(groove), bad)
    state = a_state()
    assert "low" in state.to_json() and all("low" in s for s in state.to_json()["scenes"].values())
    StateStore(tmp_path).save(state)
    back = StateStore(tmp_path).load()
    assert back is not None and back.groove == state.groove and back.scenes[1].groove == state.scenes[1].groove


def test_a_held_pattern_keeps_its_fill_bar_and_an_older_save_loads_without_one() -> None:
    from appliance.box.codec import pattern_from, pattern_json
    from appliance.core.groove import NUM_VOICES, STEPS_PER_BAR, Pattern
    steps = np.zeros((STEPS, NUM_VOICES, 3), np.float32)
    steps[0::4, 0] = (1, 0.8, 0.1)
    fill = steps[STEPS_PER_BAR:].copy()
    fill[12:, 4] = (1, 0.9, -0.1)
    held = Pattern(steps, fill)
    assert pattern_from(pattern_json(held)) == held
    assert pattern_from(pattern_json(Pattern(steps))) == Pattern(steps)       # 32 steps: no fill
    assert pattern_from(pattern_json(held)[:40]) is None                       # half a fill: dropped


def test_no_file_starts_clean(tmp_path: Path) -> None:
    assert StateStore(tmp_path / "never-made").load() is None


@pytest.mark.timeout(30)
def test_a_fifo_where_the_state_is_kept_starts_clean_not_blocked(tmp_path: Path) -> None:
    """Reading a FIFO blocks until something writes to it: the box would never start."""
    import os
    store = StateStore(tmp_path)
    os.mkfifo(store.path)
    assert store.load() is None


def test_cut_at_every_byte_offset_never_stops_the_start(tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    data = encode(a_state(scenes=0))
    store = StateStore(tmp_path)
    caplog.set_level(logging.WARNING, logger="appliance.box.state")
    for cut in range(len(data)):
        store.path.write_bytes(data[:cut])
        caplog.clear()
        assert store.load() is None, f"a file cut at byte {cut} was taken as good"
        assert not store.path.exists(), "the cut file must be set aside"
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 1 and "set aside as" in lines[0] and "starting clean" in lines[0]
    # the box goes on saving and loading after all that
    store.save(a_state(3))
    assert same(store.load(), a_state(3))
    assert len(list(tmp_path.glob("state.json.corrupt-*"))) <= 5


def test_every_flipped_byte_is_caught(tmp_path: Path) -> None:
    data = bytearray(encode(a_state(scenes=0)))
    store = StateStore(tmp_path)
    for i in range(0, len(data), 7):
        bad = bytearray(data)
        bad[i] ^= 0x5A
        store.path.write_bytes(bytes(bad))
        assert store.load() is None


@pytest.mark.parametrize("body", [
    b"", b"\x00" * 100, b"{}", b"groovebox-state 2 sha256=00 bytes=2\n{}",
    b"groovebox-state 1 sha256=zz bytes=x\n{}", "é".encode() * 10,
])
def test_garbage_is_set_aside(tmp_path: Path, body: bytes) -> None:
    store = StateStore(tmp_path)
    store.path.write_bytes(body)
    assert store.load() is None
    assert list(tmp_path.glob("state.json.corrupt-*"))


def test_good_checksum_bad_values_is_set_aside(tmp_path: Path) -> None:
    import hashlib
    import json
    good = a_state().to_json()
    for broken in ({**good, "prior": "yes"}, {**good, "groove": [[2, 0, 0]] * STEPS},
                   {**good, "controls": {"density": 7}}, {**good, "eps": ["x"]},
                   {**good, "frozen": "yes"}, [1, 2, 3]):
        body = json.dumps(broken).encode()
        head = f"groovebox-state 1 sha256={hashlib.sha256(body).hexdigest()} bytes={len(body)}\n"
        StateStore(tmp_path).path.write_bytes(head.encode() + body)
        assert StateStore(tmp_path).load() is None


CHILD = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, {root!r})
    from tests.test_state import a_state
    from appliance.box import state as st
    from appliance.io import files

    where = sys.argv[2]
    store = st.StateStore(sys.argv[1])
    real_write, real_replace, real_fsync_dir = os.write, os.replace, files.fsync_dir

    def announce(what):
        sys.stdout.write(what + "\\n"); sys.stdout.flush(); time.sleep(60)

    def slow_write(fd, data):           # write a little at a time, stop halfway and wait
        n = real_write(fd, bytes(data[:512]))
        if where == "write" and n < len(data):
            announce("mid-write")
        return n

    def replace(a, b):
        if where == "rename":
            announce("before-rename")
        real_replace(a, b)

    def fsync_dir(d):
        real_fsync_dir(d)
        if where == "dirsync":
            announce("after-rename")

    os.write = slow_write
    os.replace = replace
    files.fsync_dir = fsync_dir
    files.os.write = slow_write
    store.save(a_state(2, scenes=8))
""")


@pytest.mark.parametrize("where,expect", [("write", 1), ("rename", 1), ("dirsync", 2)])
def test_kill_9_in_the_middle_of_a_save_keeps_the_previous_state(
        tmp_path: Path, where: str, expect: int) -> None:
    store = StateStore(tmp_path)
    store.save(a_state(1, scenes=8))          # the previous state
    child = tmp_path / "child.py"
    child.write_text(CHILD.format(root=str(ROOT)))
    proc = subprocess.Popen([sys.executable, str(child), str(tmp_path), where],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = proc.stdout.readline().strip()
        assert line in ("mid-write", "before-rename", "after-rename"), line
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    if where == "write":
        assert list(tmp_path.glob(".state.json.tmp-*")), "the kill must land mid-save"
    back = store.load()
    assert back is not None, "a kill -9 mid-save lost the state"
    assert same(back, a_state(expect, scenes=8))
    assert not list(tmp_path.glob(".state.json.tmp-*")), "the dead save's temp file is cleaned up"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_autosaver_saves_changes_at_most_every_few_seconds(tmp_path: Path) -> None:
    clock = FakeClock()
    current = {"state": a_state(1)}
    saver = Autosaver(StateStore(tmp_path), lambda: current["state"], every_s=5.0, clock=clock)
    assert saver.maybe_save() is True and saver.saves == 1
    assert saver.maybe_save() is False           # nothing changed
    current["state"] = a_state(2)
    clock.now = 3.0
    assert saver.maybe_save() is False           # changed, but too soon
    clock.now = 5.0
    assert saver.maybe_save() is True and saver.saves == 2
    current["state"] = a_state(3)
    clock.now = 6.0
    saver.close()                                # the exit save ignores the rate limit
    assert saver.saves == 3
    assert same(StateStore(tmp_path).load(), a_state(3))


def test_autosaver_survives_a_disk_that_refuses(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    saver = Autosaver(StateStore(blocker / "state"), lambda: a_state(1), every_s=1.0, clock=FakeClock())
    assert saver.save_now() is False
    assert saver.save_now() is False
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "the box plays on" in errors[0].getMessage()


def test_a_full_disk_is_tried_at_the_save_rate_not_at_every_change(tmp_path: Path, caplog) -> None:
    """On a full state disk the autosaver tried at every change (16-75 times a second under a
    note flood, 0.4 of a core: a fault harness, session 47), and room coming back was not said."""
    caplog.set_level(logging.INFO)
    clock = FakeClock()
    store = StateStore(tmp_path)
    attempts: list[float] = []
    full = {"on": True}

    def save_bytes(data: bytes) -> None:
        attempts.append(clock.now)
        if full["on"]:
            raise OSError(28, "No space left on device")
        StateStore.save_bytes(store, data)

    store.save_bytes = save_bytes
    current = {"n": 0}
    saver = Autosaver(store, lambda: a_state(current["n"] % 7 + 1), every_s=1.0, clock=clock)
    for k in range(100):                    # a change every 20 ms for 2 s
        clock.now = k * 0.02
        current["n"] += 1
        saver.maybe_save()
    assert len(attempts) <= 3
    assert "No space left on device" in saver.trouble, "the status says it too"
    full["on"] = False
    clock.now = 3.0
    current["n"] += 1
    assert saver.maybe_save() is True
    assert saver.trouble == ""
    lines = [r for r in caplog.records if r.name == "appliance.box.state"]
    assert [r.levelno for r in lines] == [logging.ERROR, logging.INFO]   # the failure, and room again


def test_autosaver_thread_saves_on_poke_and_close(tmp_path: Path) -> None:
    current = {"state": a_state(1)}
    store = StateStore(tmp_path)
    saver = Autosaver(store, lambda: current["state"], every_s=1.0).start()
    current["state"] = a_state(4)
    saver.poke()
    saver.close()
    assert same(store.load(), a_state(4))


class RecordingEngine:
    """Just the engine's state surface, to check what scenes and restore pass on."""

    def __init__(self) -> None:
        self.groove = a_groove(9)
        self.eps = np.arange(64, dtype=np.float32) / 64
        self.controls = Controls(density=0.6)
        self.frozen = False
        self.held_pattern = None
        self.from_prior = False
        self.restored: list[dict] = []

    def restore(self, **kw: object) -> None:
        self.restored.append(kw)


def test_scenes_store_and_recall(tmp_path: Path) -> None:
    engine = RecordingEngine()
    scenes = Scenes(4)
    poked = []
    scenes.on_change.append(lambda: poked.append(1))
    assert scenes.recall(2, engine) is False
    scenes.store(2, engine)
    assert poked == [1]
    engine.groove = Groove.empty()
    assert scenes.recall(2, engine) is True
    got = engine.restored[-1]
    assert got["groove"] == a_groove(9)
    assert np.allclose(got["eps"], engine.eps) and got["controls"] == Controls(density=0.6)
    with pytest.raises(ValueError):
        scenes.store(5, engine)
    # scenes go through the state file
    store = StateStore(tmp_path)
    store.save(snapshot(engine, None, scenes))
    again = Scenes(4, store.load().scenes)
    assert again.get(2) is not None and again.get(2).groove == a_groove(9)


def test_scenes_above_a_smaller_state_scenes_are_kept_out_of_reach(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """state.scenes lowered from 4 to 2 and set back: scenes 3 and 4 come back, not lost."""
    engine = RecordingEngine()
    four = Scenes(4)
    for slot in (1, 2, 3, 4):
        four.store(slot, engine)
    store = StateStore(tmp_path)
    store.save(snapshot(engine, None, four))
    with caplog.at_level(logging.WARNING):
        two = Scenes(2, store.load().scenes)
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(said) == 1 and "3, 4" in said[0]
    with pytest.raises(ValueError):
        two.recall(3, engine)
    two.store(1, engine)
    store.save(snapshot(engine, None, two))   # a save while they are out of reach
    back = Scenes(4, store.load().scenes)
    assert sorted(back.snapshot()) == [1, 2, 3, 4]
    assert back.recall(4, engine) is True


# --------------------------------------------------------------------------- tempo and restore

def _write_body(store: StateStore, data: object) -> None:
    import hashlib
    import json
    body = json.dumps(data).encode()
    head = f"groovebox-state 1 sha256={hashlib.sha256(body).hexdigest()} bytes={len(body)}\n"
    store.path.write_bytes(head.encode() + body)


def test_a_bad_saved_tempo_is_dropped_not_the_state(tmp_path: Path, caplog) -> None:
    good = a_state().to_json()
    store = StateStore(tmp_path)
    for bpm in (35.0, 1000, "fast", True):
        _write_body(store, {**good, "bpm": bpm})
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="appliance.box.state"):
            back = store.load()
        assert back is not None, f"bpm {bpm!r} threw the whole state away"
        assert back.bpm is None and back.groove == a_state().groove and len(back.scenes) == 2
        assert [r.message for r in caplog.records if "tempo" in r.message] and len(caplog.records) == 1
        assert not list(tmp_path.glob("state.json.corrupt-*"))


def test_the_internal_clocks_tempo_is_saved_not_a_followed_clocks() -> None:
    import mido
    from appliance.core.clock import ClockSwitch
    from appliance.io.midi.clock import feed_clock
    engine = RecordingEngine()
    switch = ClockSwitch("external", 120.0, clock=lambda: 0.0)
    t, dt = 0.0, 60 / 35 / 24                       # a drum machine's clock at 35 BPM
    feed_clock(switch, mido.Message("start"), t)
    for _ in range(100):
        feed_clock(switch, mido.Message("clock"), t)
        t += dt
    assert switch.bpm < 40
    state = snapshot(engine, switch, None)
    assert state.bpm == 120.0
    assert decode(encode(state)).bpm == 120.0      # and it reads back

    class Slow:                                     # any transport: clamped into 40..300
        own_bpm = 20.0
    assert snapshot(engine, Slow(), None).bpm == 40.0
    Slow.own_bpm = 400.0
    assert snapshot(engine, Slow(), None).bpm == 300.0


def _run(engine, t0: float, t1: float, notes: tuple[int, ...] = (), velocity: int = 100) -> None:
    import mido
    for i in notes:
        engine.handle(mido.Message("note_on", note=60, velocity=velocity), t0 + i * 0.125)
    t = t0
    while t < t1:
        engine.tick(t)
        t += 0.01


def _restored(generator, state: LiveState):
    """A fresh real engine started from the state as it comes back from the file."""
    from tests.conftest import make_engine
    back = decode(encode(state))
    engine = make_engine(generator)
    back.apply(engine, engine.transport, now=0.0)
    _run(engine, 0.0, 0.5)
    return engine, back


def test_restore_into_a_real_engine_gives_back_the_same_pattern(generator) -> None:
    from tests.conftest import make_engine
    # plain: groove + z + knobs (no drift of z's noise at the loop point, so the playing
    # pattern is the one the saved noise makes)
    engine = make_engine(generator, controls=Controls(density=0.7), settings=EngineSettings(drift=0.0))
    _run(engine, 0.0, 4.0, notes=tuple(range(0, 32, 3)))
    again, _ = _restored(generator, snapshot(engine, engine.transport))
    assert again.pattern == engine.pattern and not again.from_prior
    assert again.controls == engine.controls

    # after "hold resample": from the prior, until the groove changes
    engine.prior()
    _run(engine, 4.0, 8.0)
    assert engine.from_prior
    again, back = _restored(generator, snapshot(engine, engine.transport))
    assert back.prior and again.from_prior and again.pattern == engine.pattern

    # frozen, while the groove moved on (the looper keeps listening): the held pattern
    engine = make_engine(generator)
    _run(engine, 0.0, 4.0, notes=tuple(range(0, 32, 4)))
    engine.freeze(True)
    held = engine.pattern
    _run(engine, 4.0, 8.0, notes=tuple(range(1, 32, 2)), velocity=110)
    assert engine.pattern == held and engine.groove.hits > 8
    again, back = _restored(generator, snapshot(engine, engine.transport))
    assert back.pattern == held and again.frozen and again.pattern == held
    # and unfreezing follows the groove that was played meanwhile, as it would have live
    again.freeze(False)
    engine.freeze(False)
    _run(again, 0.5, 2.0)
    _run(engine, 8.0, 9.5)
    assert again.pattern == engine.pattern

    # a recalled scene, stored plain, recalled after a prior: the stored pattern (no drift of
    # z's noise and no thinning for the rest that follows, so it stays that pattern)
    engine = make_engine(generator, settings=EngineSettings(drift=0.0, rest_thin=0.0))
    _run(engine, 0.0, 4.0, notes=tuple(range(0, 32, 3)))
    scenes = Scenes(4)
    scenes.store(1, engine)
    stored = engine.pattern
    engine.prior()
    _run(engine, 4.0, 8.0)
    assert engine.pattern != stored
    saved = Scenes(4, decode(encode(snapshot(engine, engine.transport, scenes))).scenes)
    assert saved.recall(1, engine)
    _run(engine, 8.0, 12.0)
    assert engine.pattern == stored and not engine.from_prior

    # a scene stored while frozen gives back the held pattern
    engine.freeze(True)
    held = engine.pattern
    _run(engine, 12.0, 16.0, notes=tuple(range(1, 32, 2)), velocity=110)
    scenes.store(2, engine)
    engine.freeze(False)
    _run(engine, 16.0, 20.0)
    assert engine.pattern != held
    saved = Scenes(4, decode(encode(snapshot(engine, engine.transport, scenes))).scenes)
    assert saved.recall(2, engine)
    _run(engine, 20.0, 24.0)
    assert engine.pattern == held


# --- bounds and slow starts (issue 13) ---------------------------------------------------------

def _signed(body: bytes) -> bytes:
    import hashlib
    return (f"groovebox-state 1 sha256={hashlib.sha256(body).hexdigest()} bytes={len(body)}\n"
            .encode() + body)


def test_deeply_nested_json_with_a_good_checksum_is_set_aside_and_saving_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = StateStore(tmp_path)
    store.path.write_bytes(_signed(b"[" * 100_000 + b"]" * 100_000))
    assert store.load() is None
    assert list(tmp_path.glob("state.json.corrupt-*"))
    assert max(len(r.getMessage()) for r in caplog.records) < 400
    store.save(a_state(3))                      # saving is not off: the next start has it
    assert same(StateStore(tmp_path).load(), a_state(3))


def test_every_list_in_the_state_file_is_bounded(tmp_path: Path) -> None:
    import json
    good = a_state().to_json()
    many_scenes = {str(i): good["scenes"]["1"] for i in range(1, 1001)}
    for broken in ({**good, "eps": [0.5] * 100_000}, {**good, "scenes": many_scenes},
                   {**good, "controls": {f"k{i}": i for i in range(100_000)}}):
        StateStore(tmp_path).path.write_bytes(_signed(json.dumps(broken).encode()))
        assert StateStore(tmp_path).load() is None
    StateStore(tmp_path).path.write_bytes(_signed(b" " * (64 << 20)))   # a 64 MiB file
    assert StateStore(tmp_path).load() is None


def test_a_restored_freeze_not_yet_playing_is_saved_as_restored(tmp_path: Path, generator) -> None:
    """A slow start (ports, JACK), or a box waiting for the first note: the autosaver saves,
    and keeps the held pattern, not the player's still-empty one."""
    from tests.conftest import make_engine
    engine = make_engine(generator)
    _run(engine, 0.0, 4.0, notes=tuple(range(0, 32, 3)))
    engine.freeze(True)
    held = engine.pattern
    assert held.hits > 0
    store = StateStore(tmp_path)
    store.save(snapshot(engine, engine.transport))

    again = make_engine(generator)              # the restart: restored, player not yet running
    store.load().apply(again, again.transport, now=0.0)
    saver = Autosaver(store, lambda: snapshot(again, again.transport), every_s=0.0, clock=FakeClock())
    assert not again.live
    again.set_controls(density=0.9)             # a knob turned before the first note
    assert saver.save_now() is True
    saver.close()                               # a crash or stop in the window
    kept = store.load()
    assert kept.frozen and kept.pattern == held and kept.controls["density"] == 0.9
    _run(again, 0.0, 0.5)                       # the player is up and plays the held pattern
    assert again.live and again.pattern == held
    saver = Autosaver(store, lambda: snapshot(again, again.transport), every_s=0.0, clock=FakeClock())
    again.freeze(False)
    assert saver.save_now() is True
    assert store.load().frozen is False


def test_knobs_and_freeze_set_while_waiting_for_the_first_note_are_saved(tmp_path: Path, generator) -> None:
    """start.mode first-note: nothing plays yet, the player turns density and presses freeze,
    the power goes; the box comes back with them."""
    from tests.conftest import make_engine
    engine = make_engine(generator)
    assert not engine.live
    store = StateStore(tmp_path)
    saver = Autosaver(store, lambda: snapshot(engine, engine.transport), every_s=0.0, clock=FakeClock())
    engine.set_controls(density=1.0)
    engine.freeze(True)
    assert saver.save_now() is True
    kept = store.load()
    assert kept.frozen and kept.controls["density"] == 1.0


# --------------------------------------------------------------------------- one box per state directory

def test_a_second_box_on_the_same_state_directory_is_refused_naming_the_first(tmp_path: Path) -> None:
    """A fault harness: two `groovebox run` on one config both played (the drums twice) and
    wrote over each other's state. The first holds the directory; the second is told whose it is."""
    from appliance.box.state import StateBusy
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from appliance.box.state import StateStore
        StateStore({str(tmp_path)!r}).claim()
        print("held", flush=True)
        time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(StateBusy) as busy:
            StateStore(tmp_path).claim()
        assert f"pid {holder.pid}" in str(busy.value) and str(tmp_path) in str(busy.value)
    finally:
        holder.kill()                          # kill -9: the kernel lets go of the lock
        holder.wait(timeout=30)
    mine = StateStore(tmp_path)
    mine.claim()
    with pytest.raises(StateBusy):
        StateStore(tmp_path).claim()           # the same process, another box: refused too
    mine.release()
    StateStore(tmp_path).claim()


def test_a_state_directory_whose_lock_file_cannot_be_written_is_held_all_the_same(tmp_path: Path) -> None:
    """A stage tech's review: on a state directory remounted read-only the lock file could not be
    made, the claim gave up, and two boxes played. The directory itself is locked; here the lock
    file is a directory, which no box can write either."""
    from appliance.box.state import LOCK_FILE, StateBusy
    (tmp_path / LOCK_FILE).mkdir()
    first = StateStore(tmp_path)
    first.claim()
    with pytest.raises(StateBusy, match="another groovebox plays on"):
        StateStore(tmp_path).claim()
    first.release()
    StateStore(tmp_path).claim()


def test_the_service_refuses_before_it_loads_the_model_or_opens_a_port(tmp_path: Path) -> None:
    from appliance.box.config import loads
    from appliance.box.service import Service
    from appliance.box.state import StateBusy
    first = StateStore(tmp_path / "state")
    first.claim()
    config = loads(f"state: {{dir: {tmp_path / 'state'}}}\nmodel: {{dir: {tmp_path / 'no-model'}}}\n")
    service = Service(config)
    with pytest.raises(StateBusy):            # not ModelError: nothing was loaded
        service.start()
    assert service.generator is None and service.midi is None
    service.close()
    first.release()


def test_a_state_directory_that_cannot_be_locked_is_no_reason_not_to_start(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    StateStore(blocker / "state").claim()      # cannot be made: carries on, saving will say why


# --------------------------------------------------------------------------- the config file edited between runs

def test_a_knob_edited_in_the_file_since_the_last_run_wins_the_others_stay_as_played(
        tmp_path: Path, generator, caplog: pytest.LogCaptureFixture) -> None:
    """A fault harness: bpm 120 → 90 and density 0.5 → 0.9 in the file, then a restart: the box
    came back at 120 and 0.5 (the saved state won), and a reload said "nothing changed"."""
    from appliance.box.config import loads
    from appliance.box.state import file_knobs
    from tests.conftest import make_engine
    before = loads("generator: {density: 0.5, humanise: 1.0}\ntempo: {bpm: 120}\n")
    engine = make_engine(generator)
    engine.set_controls(humanise=0.4)                        # turned on stage
    store = StateStore(tmp_path)
    store.save(snapshot(engine, engine.transport, file=file_knobs(before)))

    same = make_engine(generator)                            # restarted on the same file
    with caplog.at_level(logging.INFO):
        store.load().apply(same, same.transport, now=0.0, file=file_knobs(before))
    assert same.controls.humanise == 0.4 and same.controls.density == engine.controls.density
    assert not [r for r in caplog.records if "changed in the config file" in r.getMessage()]

    edited = loads("generator: {density: 0.9, humanise: 1.0}\ntempo: {bpm: 90}\n")
    again = make_engine(generator)                           # the file edited over SSH, then a restart
    caplog.clear()
    with caplog.at_level(logging.INFO):
        store.load().apply(again, again.transport, now=0.0, file=file_knobs(edited))
    assert again.controls.density == 0.9 and again.transport.bpm == 90
    assert again.controls.humanise == 0.4                    # not edited: as it was left
    said = [r.getMessage() for r in caplog.records if "changed in the config file" in r.getMessage()]
    assert len(said) == 1 and "generator.density 0.9" in said[0] and "tempo.bpm 90" in said[0]

    old = LiveState(groove=a_groove(3), controls={"density": 0.3})   # saved before the file was kept
    store.save(old)
    older = make_engine(generator)
    store.load().apply(older, older.transport, now=0.0, file=file_knobs(edited))
    assert older.controls.density == 0.3

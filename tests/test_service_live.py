"""The live service end to end, as a real process on a real JACK server: a keyboard phrase in,
drums out at the right steps (USB and DIN), control commands, hotplug, a flood of notes."""
from __future__ import annotations

import os
import select
import threading
import time
import tty

import mido
import pytest

from appliance.io.midi.parser import MidiParser
from tests.jackserver import (REPO, Player, Recorder, ServiceProcess, expected_hits, jack,  # noqa: F401
                              wait_until)

BPM = 240.0
SPS = 60.0 / BPM / 4          # seconds a step
TOLERANCE_S = 0.015           # JACK periods (1.3 ms each way) + scheduling on a loaded box


class DinWire:
    """The far end of the box's UART: a pty master, read on a thread."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.master)
        self.device = os.ttyname(self.slave)
        self.parser = MidiParser()
        self.messages: list[mido.Message] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(self.master, 4096)
                except OSError:
                    return
                self.messages.extend(self.parser.feed(data))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


@pytest.fixture(scope="module")
def box(jack, tmp_path_factory):
    directory = tmp_path_factory.mktemp("live")
    din = DinWire()
    keys = Player("e2e-keys")
    drums = Recorder("e2e-drums")
    # crash_every 0, fill_every 0: crashes and fills as the pattern has them (what is played is compared with it)
    config = f"""
model: {{dir: {REPO}/models/groove-vae, precision: int8, seed: 3}}
generator: {{density: 0.6}}
tempo: {{bpm: {BPM}, clock: internal}}
loop: {{swap_at: step, crash_every: 0, fill_every: 0}}
midi: {{api: jack, client_name: gb-live, inputs: [e2e-keys, nothing-like-this], outputs: [e2e-drums]}}
din: {{enabled: true, device: {din.device}, baud: 38400}}
gpio: {{enabled: false}}
state: {{dir: {directory}/state}}
control: {{socket: {directory}/control.sock}}
"""
    service = ServiceProcess(jack, str(directory), config)
    try:
        service.wait_ready()
        yield service, keys, drums, din
    finally:
        code = service.stop()
        keys.close()
        drums.close()
        din.close()
        assert code == 0, service.log()[-3000:]


def play_phrase(keys: Player, status: dict, steps: list[int]) -> list[float]:
    """Play notes on these loop steps, in time, on the next pass of the loop; return the step
    (from that pass's start) each note was really sent at: a busy machine can hold this up."""
    sps = 60.0 / status["bpm"] / 4
    now = time.monotonic()
    here = status["position"] + (now - status["now"]) / sps
    start = (int(here) // 32 + 1) * 32
    sent = []
    for i, step in enumerate(steps):
        due = status["now"] + (start + step - status["position"]) * sps
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sent.append(status["position"] + (time.monotonic() - status["now"]) / sps - start)
        keys.send(mido.Message("note_on", note=60 + i % 12, velocity=100))
        keys.send(mido.Message("note_off", note=60 + i % 12, velocity=0))
    return sent


def test_ready_with_ports_din_and_the_missing_pattern_logged(box):
    service, _keys, _drums, din = box
    status = service.status()
    assert status["running"] and status["clock_source"] == "internal"
    assert status["ports"]["inputs"] == ["e2e-keys:out"]
    assert status["ports"]["outputs"] == ["e2e-drums:in"]
    assert status["din"].startswith(din.device)
    log = service.log()
    line = next(l for l in log.splitlines() if "nothing-like-this" in l)   # one line says
    assert "e2e-keys:out" in line                                          # what there is


def test_keyboard_phrase_in_drums_out_at_the_right_steps(box, jack):
    service, keys, drums, din = box
    service.request("freeze")  # toggles; make sure it is off
    if service.status()["frozen"]:
        service.request("freeze")
    before = service.status()
    phrase = [0, 3, 6, 8, 10, 12, 14, 16, 19, 22, 24, 28]
    xruns_before = jack.xruns()
    sent = play_phrase(keys, before, phrase)
    # The steps the notes were sent on: the phrase, unless this test was held up half a step or
    # more (CI, beside other work: two notes a step apart then land on one step). A note may be
    # lost on the way only where jackd itself reported late cycles meanwhile.
    played = [round(s) for s in sent]
    held_up = max(s - p for s, p in zip(sent, phrase))
    hits = len(set(played))
    lost = 1 if jack.xruns() > xruns_before else 0
    assert wait_until(lambda: service.status()["engine"]["groove_hits"] >= hits - lost, 20), (
        service.status()["engine"]["groove_hits"], sent, jack.xruns() - xruns_before)
    assert wait_until(lambda: service.status()["engine"]["generations"]
                      > before["engine"]["generations"], 20)
    status = service.status()
    groove_row = status["groove_grid"].split("groove", 1)[1].strip().replace("|", "")
    # Every note on the step it was sent on (counted from the first: the first note may start
    # the box), or one later where the box got it late.
    got = [i for i, c in enumerate(groove_row) if c != " "]
    assert hits - lost - (held_up >= 0.5) <= len(got) <= hits, (got, sent)
    if held_up < 0.5 and len(got) == hits:
        assert all(0 <= (g - got[0]) - p <= 1 for g, p in zip(got, phrase)), (got, phrase)
    else:
        assert all(any(abs((g - got[0]) - (p - played[0])) <= 1 for p in played) for g in got), (got, sent)
    # Hold the pattern, let it take over, then listen to two whole loops.
    assert service.request("freeze")["frozen"] is True
    status = service.status()                        # frozen: this pattern, and only it
    assert status["pattern"], "the model played nothing"
    drums.clear()
    din_before = len(din.messages)
    xruns_before = jack.xruns()
    t0 = time.monotonic() + 0.1
    time.sleep(2 * 32 * SPS + 0.3)
    t1 = time.monotonic() - 0.1
    xruns = jack.xruns() - xruns_before
    got = [(t, m) for t, m in drums.events if m.type == "note_on" and m.velocity > 0
           and t0 <= t <= t1]
    want = expected_hits(status, t0 + TOLERANCE_S, t1 - TOLERANCE_S)
    assert len(want) >= 4
    unmatched = []
    for t, channel, note in want:
        if not any(m.note == note and m.channel == channel and abs(at - t) <= TOLERANCE_S
                   for at, m in got):
            unmatched.append((round(t - t0, 4), channel, note))
    # Every hit, unless JACK itself reported late cycles meanwhile (a host that takes the CPU
    # away): then no more than it reported late cycles, and a tenth of the hits at most (two at
    # least), may have been lost or held up on the way, not by the box (a fresh clone's CI beside
    # three busy processes: 15 xruns, three hits in one 256 ms stall); a fifth of them where
    # jackd reported a hundred or more (an idle CI run: 642 xruns in the two loops, 5 hits
    # late). Nothing played, or the wrong pattern, still fails.
    allowed = 0 if not xruns else min(xruns, max(2, len(want) // 10)) if xruns < 100 else len(want) // 5
    assert len(unmatched) <= allowed, (f"expected hits that did not arrive in time: {unmatched[:10]} "
                                       f"({xruns} JACK xruns meanwhile)")
    extra = [(round(at - t0, 4), m.note) for at, m in got
             if not any(m.note == n and abs(at - t) <= TOLERANCE_S
                        for t, _c, n in expected_hits(status, t0 - 1, t1 + 1))]
    assert len(extra) <= allowed, f"notes that are not in the pattern: {extra[:10]} ({xruns} JACK xruns meanwhile)"
    # Every note-on has its note-off, and the same drums go out on DIN.
    offs = [m for _t, m in drums.events if m.type == "note_off"
            or (m.type == "note_on" and m.velocity == 0)]
    assert len(offs) >= len(got) - 9
    def din_notes() -> int:
        return sum(1 for m in din.messages[din_before:] if m.type == "note_on" and m.velocity > 0)
    assert wait_until(lambda: din_notes() >= len(want) - 9, 10), (din_notes(), len(want))
    service.request("freeze")


def test_control_commands_act_on_the_running_box(box, capsys):
    import argparse

    from appliance.box.control_socket import client_main
    service, _keys, _drums, _din = box

    def run(command: str) -> str:
        code = client_main(argparse.Namespace(command=command, socket=service.socket_path))
        assert code == 0
        return capsys.readouterr().out

    out = run("status")
    assert "BPM" in out and "kick" in out and "groove" in out and "deadline misses" in out
    assert "inference p50" in out
    first = service.status()["frozen"]
    assert run("freeze").strip() == f"freeze {'off' if first else 'on'}"
    assert service.status()["frozen"] is (not first)
    run("freeze")
    generations = service.status()["engine"]["generations"]
    run("resample")
    assert wait_until(lambda: service.status()["engine"]["generations"] > generations, 20)
    run("clear")
    assert wait_until(lambda: service.status()["engine"]["groove_hits"] == 0, 10)
    run("prior")
    code = client_main(argparse.Namespace(command="status", socket=os.path.join(
        service.directory, "nope.sock")))
    assert code == 2
    assert "no running groovebox" in capsys.readouterr().err


def test_status_through_the_cli_binary(box):
    import subprocess
    import sys
    service, *_ = box
    done = subprocess.run([sys.executable, "-m", "appliance.box.cli", "status", "--socket",
                           service.socket_path], capture_output=True, text=True, timeout=60,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "clock internal" in done.stdout and "e2e-keys:out" in done.stdout
    assert "snare" in done.stdout


def test_keyboard_unplugged_and_back_plays_again(box):
    service, keys, _drums, _din = box
    t0 = time.monotonic()
    drops_before = service.status()["engine"]["late_drops"]
    keys.close()
    assert wait_until(lambda: service.status()["ports"]["inputs"] == [], 10)
    assert service.status()["running"]               # the beat never stopped
    again = Player("e2e-keys")
    try:
        assert wait_until(lambda: service.status()["ports"]["inputs"] == ["e2e-keys:out"], 10)
        seen = service.status()["inputs_seen"]
        again.send(mido.Message("note_on", note=40, velocity=127))
        assert wait_until(lambda: service.status()["inputs_seen"] > seen, 10)
        assert wait_until(lambda: service.status()["engine"]["groove_hits"] >= 1, 10)
    finally:
        # Hand the fixture a keyboard that works (the old object is closed).
        keys.take_over(again)
    # Hotplug never stalls the player: rtmidi port calls hold the GIL (35 ms to 6 s on a busy
    # JACK, seen), so on JACK the box only patches (GIL-free) and elsewhere works between
    # two notes. No drum note went out late meanwhile (the player's own log).
    timing = service.request("timing")["timing"]
    late = [(round(ideal - t0, 3), round((sent - ideal) * 1000, 1))
            for ideal, sent, _channel, _note in timing if ideal >= t0 and sent - ideal > 0.015]
    assert late == []
    assert service.status()["engine"]["late_drops"] == drops_before, "none dropped as too late either"


def held_groove(service, keys: Player, hits: int = 8) -> dict:
    """Play a phrase until the drums answer it with ``hits`` or more, then freeze that pattern;
    the status of the frozen box. (The tests before leave one note and then a rest, which thins
    the drums toward nothing: a busy machine froze an empty pattern there.)"""
    for _ in range(3):
        if service.status()["frozen"]:
            service.request("freeze")
        before = service.status()
        play_phrase(keys, before, [0, 4, 6, 8, 12, 16, 20, 22, 24, 28])
        wait_until(lambda: service.status()["engine"]["generations"] > before["engine"]["generations"]
                   and len(service.status()["pattern"]) >= hits, 20)
        service.request("freeze")
        assert wait_until(lambda: service.status()["frozen"], 10)
        status = service.status()
        if len(status["pattern"]) >= hits:
            return status
    raise AssertionError(f"the drums never answered a phrase with {hits} hits: {status['pattern']}")


def test_a_flood_of_notes_neither_grows_memory_nor_breaks_the_beat(box):
    service, keys, drums, _din = box
    status = held_groove(service, keys)
    rss_before = service.rss_mb()
    drums.clear()
    t0 = time.monotonic()
    sent = 0
    stop_at = t0 + 2.0
    while time.monotonic() < stop_at:                # 10,000 note-ons a second, 2 seconds
        for i in range(50):
            keys.send(mido.Message("note_on", note=30 + (sent + i) % 60, velocity=1 + (sent + i) % 127))
        sent += 50
        time.sleep(0.005)
    t1 = time.monotonic()
    # a flood: a player plays ~20 notes a second (this sender, on a loaded machine, reaches
    # 1,500-10,000 a second)
    assert sent / (t1 - t0) >= 1000
    # Counted as they arrive; a starved input thread may lose what overflows rtmidi's queue.
    # Wait until the count settles (the backlog worked off), so the next test starts clean.
    seen = [-1]

    def settled() -> bool:
        now_seen = service.status()["inputs_seen"]
        done, seen[0] = now_seen == seen[0], now_seen
        return done
    assert wait_until(settled, 30, step=0.5)
    assert seen[0] >= sent * 0.5
    after = service.status()
    assert after["running"]
    got = [(t, m) for t, m in drums.events if m.type == "note_on" and m.velocity > 0
           and t0 <= t <= t1]
    want = expected_hits(status, t0 + 0.2, t1 - 0.05)
    def off_by(limit: float) -> list[tuple[float, int]]:
        return [(round(t - t0, 3), n) for t, c, n in want
                if not any(m.note == n and abs(at - t) <= limit for at, m in got)]
    assert len(want) >= 4
    # Every hit is played; on a busy 2-core machine one of them may be late (seen once in a full
    # CI run: a snare 30+ ms late, 0.5 s into the flood), never two: played late, or, past the
    # player's max_late (50 ms), dropped and counted (late_drops), never played later.
    drops = after["engine"]["late_drops"] - status["engine"]["late_drops"]
    assert len(off_by(0.1)) <= drops, f"drum hits lost during the flood: {off_by(0.1)[:10]}, {drops} late drops"
    assert len(off_by(0.03)) <= 1, f"drum hits late during the flood: {off_by(0.03)[:10]}"
    assert service.rss_mb() - rss_before < 40, "memory grew with the flood"
    service.request("freeze")


def test_a_knob_storm_is_read_at_its_newest_value_and_the_box_keeps_up(box):
    """A fault harness turned a mapped knob 6,000 times a second for 15 s, and the box worked
    through every value, 36 s behind the keyboard: each batch it reads keeps a knob's newest."""
    service, keys, _drums, _din = box
    if service.status()["frozen"]:
        service.request("freeze")          # each knob move asks the model for a pattern ...
    play_phrase(keys, service.status(), list(range(0, 32, 2)))   # ... of a busy groove

    def density() -> float:
        return service.status()["controls"]["density"]
    assert service.request("learn", action="density")["ok"]
    keys.send(mido.Message("control_change", control=21, value=10))   # learned: this CC is density now

    def turned_down() -> bool:   # from where density stands (soft takeover) down to 0
        keys.send(mido.Message("control_change", control=21, value=round(density() * 127)))
        keys.send(mido.Message("control_change", control=21, value=0))
        return density() == 0.0
    assert wait_until(turned_down, 20, step=0.2), "the knob was not learned"
    sent, t0 = 0, time.monotonic()
    while sent < 30_000:
        for _ in range(100):
            keys.send(mido.Message("control_change", control=21, value=1 + sent % 126))
            sent += 1
        time.sleep(0.0005)
    keys.send(mido.Message("control_change", control=21, value=127))
    storm_s = time.monotonic() - t0
    # without: 4.3 s to catch up on this machine (0.006 s with); under load, longer
    assert wait_until(lambda: density() == 1.0, 2, step=0.1), \
        f"{sent} knob moves in {storm_s:.1f} s: still working through them 2 s on (density {density()})"
    keys.send(mido.Message("control_change", control=21, value=round(0.6 * 127)))   # as the box began
    assert wait_until(lambda: abs(density() - 0.6) < 0.01, 10)
    assert service.status()["running"]


def test_a_keyboard_on_din_is_heard_too(box):
    service, _keys, _drums, din = box
    before = service.status()["inputs_seen"]
    # Running status and a clock byte inside a note, as a real DIN keyboard might send.
    os.write(din.master, bytes([0x90, 50, 0xF8, 90, 52, 91, 0x80, 50, 0]))
    assert wait_until(lambda: service.status()["inputs_seen"] >= before + 3, 10)


def test_learn_binds_a_knob_of_the_keyboard_to_an_action(box, capsys):
    import argparse

    from appliance.box.control_socket import client_main
    service, keys, _drums, _din = box
    done: list[int] = []
    client = threading.Thread(target=lambda: done.append(client_main(argparse.Namespace(
        command="learn", action="clear", socket=service.socket_path))))
    client.start()      # `groovebox learn` waits for the control and says which it bound
    assert wait_until(lambda: (service.status()["learn"] or {}).get("learning") == "clear", 10)
    keys.send(mido.Message("control_change", control=20, value=127))   # this CC is now "clear"
    keys.send(mido.Message("control_change", control=20, value=0))
    client.join(20)
    assert done == [0]
    out = capsys.readouterr().out
    assert "learning clear" in out and "clear is now cc 20 channel" in out
    keys.send(mido.Message("note_on", note=61, velocity=127))
    assert wait_until(lambda: service.status()["engine"]["groove_hits"] >= 1, 10)
    keys.send(mido.Message("control_change", control=20, value=127))   # press: clear
    assert wait_until(lambda: service.status()["engine"]["groove_hits"] == 0, 10)
    assert client_main(argparse.Namespace(command="learn", action="frezee",
                                          socket=service.socket_path)) == 1
    assert "did you mean 'freeze'" in capsys.readouterr().err


def test_stop_time_hits_are_answered_live_and_the_drums_lay_out_between_them(box, jack):
    """Two bars of quarter chords, four bars of one short chord on each 1, two bars of chords:
    from the second hit the drums play a crash and a kick with each hit, at once, and nothing
    between (appliance/core/stops.py), through the real JACK server."""
    service, keys, drums, _din = box
    if service.status()["frozen"]:
        service.request("freeze")
    status = service.status()
    sps = 60.0 / status["bpm"] / 4
    start = (int(status["position"] + (time.monotonic() - status["now"]) / sps) // 32 + 1) * 32
    steps = [bar * 16 + beat * 4 for bar in (0, 1, 6, 7) for beat in range(4)] + [bar * 16 for bar in range(2, 6)]
    drums.clear()
    xruns_before = jack.xruns()
    sent = {}
    for step in sorted(steps):
        delay = status["now"] + (start + step - status["position"]) * sps - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sent[step] = time.monotonic()
        for note in (48, 60, 64):
            keys.send(mido.Message("note_on", note=note, velocity=96))
        time.sleep(sps)                                     # let go a sixteenth later
        for note in (48, 60, 64):
            keys.send(mido.Message("note_off", note=note, velocity=0))
    time.sleep(1.0)
    notes = [(t, m.note) for t, m in drums.events if m.type == "note_on" and m.velocity > 0]
    slack = 0 if jack.xruns() == xruns_before else 2        # late JACK cycles: a note may land a bar off
    for bar in (4, 5):                                       # the third and fourth hits
        hit = sent[bar * 16]
        in_bar = [(round(t - hit, 3), n) for t, n in notes if hit - 4 * sps <= t < hit + 12 * sps]
        answer = {n for t, n in in_bar if -0.005 <= t <= 0.05}
        assert {36, 49} <= answer, f"bar {bar + 1}: the hit's crash and kick within 50 ms: {in_bar}"
        assert len(in_bar) <= len(answer) + slack, f"bar {bar + 1}: the drums lay out after the hit: {in_bar}"
    back = sent[6 * 16]
    assert wait_until(lambda: sum(1 for t, m in drums.events if t > back + sps and m.type == "note_on") >= 4, 10), \
        "the drums come back in with the chords"
    service.request("clear")

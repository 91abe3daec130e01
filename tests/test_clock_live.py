"""External MIDI clock, live: a clock source on JACK at 100 then 140 BPM; the service follows
it, and its drums land on the source's grid (at the right steps of the loop)."""
from __future__ import annotations

import time

from tests.jackserver import REPO, Recorder, ServiceProcess, jack, wait_until  # noqa: F401

TOLERANCE_S = 0.010


SOURCE = r"""
import json, os, sys, time
import rtmidi
out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="clk-src")
out.open_virtual_port("out")
try:
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
except (OSError, AttributeError):
    pass
plan = json.loads(sys.argv[1])          # [[bpm, clocks], ...]
print("ready", flush=True)
sys.stdin.readline()
sent = []
due = time.monotonic() + 0.05
out.send_message([0xFA])                # Start
for bpm, clocks in plan:
    for _ in range(clocks):
        due += 60.0 / bpm / 24
        while True:
            left = due - time.monotonic()
            if left <= 0:
                break
            time.sleep(left if left < 0.002 else left - 0.001)
        sent.append(time.monotonic())
        out.send_message([0xF8])
print(json.dumps(sent), flush=True)
sys.stdin.readline()                    # stay until told (the port vanishing is a cable pull)
"""


class ClockSource:
    """A MIDI clock master in its own process (its timing is not disturbed by this one):
    Start, then 24 clocks a beat following a plan of (bpm, clocks); remembers its send times."""

    def __init__(self, jack, plan: list[tuple[float, int]]) -> None:
        import json
        import subprocess
        import sys
        self.proc = subprocess.Popen([sys.executable, "-c", SOURCE, json.dumps(plan)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=jack.env())
        assert self.proc.stdout.readline().strip() == "ready"
        self.ticks: list[float] = []

    def go(self) -> None:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def finish(self) -> None:
        import json
        self.ticks = json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("bye\n")
                self.proc.stdin.flush()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=10)
            except Exception:
                self.proc.kill()


def test_follows_100_then_140_bpm_and_plays_on_the_sources_grid(jack, tmp_path, tiny_model_dir):
    drums = Recorder("clk-drums")
    config = f"""
model: {{dir: {tiny_model_dir}, seed: 11}}
generator: {{density: 0.7, humanise: 0.0}}
tempo: {{bpm: 120, clock: external}}
loop: {{swap_at: step}}
midi: {{api: jack, client_name: gb-clk, inputs: [clk-src], outputs: [clk-drums]}}
gpio: {{enabled: false}}
state: {{dir: {tmp_path}/state}}
control: {{socket: {tmp_path}/control.sock}}
"""
    change = 6 * 24                                        # six beats at 100, eight at 140
    source = ClockSource(jack, [(100.0, change), (140.0, 8 * 24)])
    service = ServiceProcess(jack, str(tmp_path), config)
    try:
        service.wait_ready()
        assert wait_until(lambda: service.status()["ports"]["inputs"] == ["clk-src:out"], 10)
        assert not service.status()["running"]            # external: waits for a clock
        source.go()
        started = time.monotonic()
        time.sleep(started + 5.5 * 0.6 - time.monotonic())
        at_100 = service.status()
        time.sleep(started + 6 * 0.6 + 7.5 * 60 / 140 - time.monotonic())
        at_140 = service.status()
        source.finish()                                    # the clock stops (no Stop sent)
        silent_at = source.ticks[-1]
        assert wait_until(lambda: not service.status()["running"], 10)
        time.sleep(1.0)
        stopped = service.status()
    finally:
        code = service.stop()
        source.close()
    events = list(drums.events)
    drums.close()
    assert code == 0, service.log()[-3000:]

    assert at_100["clock_source"] == "external" and at_100["running"]
    assert abs(at_100["bpm"] - 100) < 1.0, at_100["bpm"]
    assert abs(at_140["bpm"] - 140) < 1.0, at_140["bpm"]
    assert not stopped["running"]

    ticks = source.ticks
    settled = [(ticks[48], ticks[change - 1]), (ticks[change + 48], ticks[-1])]
    pattern = {(step, at_140["notes"][voice]) for step, voice, _v, _o in at_140["pattern"]}
    assert pattern, "the model played nothing"
    checked = 0
    for t, m in events:
        if m.type != "note_on" or m.velocity == 0:
            continue
        if not any(a <= t <= b for a, b in settled):
            continue
        n = min(range(len(ticks)), key=lambda i: abs(ticks[i] - t))
        error = t - ticks[n]
        assert abs(error) <= TOLERANCE_S, f"note {m.note} {error * 1000:.1f} ms off the clock"
        assert n % 6 == 0, f"note {m.note} on clock {n}, not on a sixteenth"
        assert ((n // 6) % 32, m.note) in pattern, f"note {m.note} on step {(n // 6) % 32}"
        checked += 1
    assert checked >= 10
    # The clock went away: the drums stopped (one step's slack) and no note was left hanging.
    late = [t for t, m in events if m.type == "note_on" and m.velocity > 0 and t > silent_at + 1.0]
    assert late == []
    on = {}
    for _, m in events:
        if m.type in ("note_on", "note_off"):
            key = (m.channel, m.note)
            on[key] = on.get(key, 0) + (1 if m.type == "note_on" and m.velocity > 0 else -1)
    assert [k for k, v in on.items() if v > 0] == [], "notes left hanging"


def test_as_master_sends_start_24_clocks_a_beat_and_stop(jack, tmp_path, tiny_model_dir):
    slave = Recorder("clk-slave")
    config = f"""
model: {{dir: {tiny_model_dir}, seed: 2}}
generator: {{density: 0.8, humanise: 0.0}}
tempo: {{bpm: 150, clock: internal, send_clock: true}}
midi: {{api: jack, client_name: gb-master, inputs: [nothing], outputs: [clk-slave]}}
gpio: {{enabled: false}}
state: {{dir: {tmp_path}/state}}
control: {{socket: {tmp_path}/control.sock}}
"""
    service = ServiceProcess(jack, str(tmp_path), config)
    try:
        service.wait_ready()
        assert slave.wait_for(lambda ev: sum(m.type == "clock" for _, m in ev) >= 24 * 6, 30)
    finally:
        code = service.stop()
    time.sleep(0.2)
    events = list(slave.events)
    slave.close()
    assert code == 0, service.log()[-2000:]
    kinds = [m.type for _, m in events]
    assert "start" in kinds or "continue" in kinds
    assert kinds[-1] == "stop"
    clocks = [t for t, m in events if m.type == "clock"]
    gaps = [b - a for a, b in zip(clocks, clocks[1:])]
    period = 60.0 / 150 / 24
    assert abs(sum(gaps) / len(gaps) - period) < 0.0005
    assert max(abs(g - period) for g in gaps) < 0.005
    # Drums on the grid the clock draws: every note-on within 3 ms of a sixth clock
    # (humanise 0), counting from the first clock after Start.
    first = clocks[0]
    notes = [t for t, m in events if m.type == "note_on" and m.velocity > 0 and t >= first]
    assert notes
    for t in notes:
        k = round((t - first) / period)
        assert abs(t - (first + k * period)) < 0.003 and k % 6 == 0


def test_auto_follows_a_clock_then_carries_on_alone_when_it_goes(jack, tmp_path, tiny_model_dir):
    drums = Recorder("auto-drums")
    config = f"""
model: {{dir: {tiny_model_dir}, seed: 4}}
generator: {{density: 0.8}}
tempo: {{bpm: 120, clock: auto}}
midi: {{api: jack, client_name: gb-auto, inputs: [clk-src], outputs: [auto-drums]}}
gpio: {{enabled: false}}
state: {{dir: {tmp_path}/state}}
control: {{socket: {tmp_path}/control.sock}}
"""
    source = ClockSource(jack, [(96.0, 24 * 5)])             # five beats at 96, then silence
    service = ServiceProcess(jack, str(tmp_path), config)
    try:
        service.wait_ready()
        before = service.status()
        assert before["running"] and before["clock_source"] == "internal" and before["bpm"] == 120
        assert wait_until(lambda: service.status()["ports"]["inputs"] == ["clk-src:out"], 10)
        source.go()
        assert wait_until(lambda: service.status()["clock_source"] == "external", 10)
        source.finish()                                        # the master vanishes, no Stop
        following = service.status()
        assert abs(following["bpm"] - 96) < 1.0
        assert wait_until(lambda: service.status()["clock_source"] == "internal", 10)
        alone = service.status()
        assert alone["running"] and abs(alone["bpm"] - 96) < 1.0   # at the master's tempo
        drums.clear()
        assert drums.wait_for(lambda ev: sum(m.type == "note_on" for _, m in ev) >= 4, 20)
    finally:
        code = service.stop()
        source.close()
        drums.close()
    assert code == 0, service.log()[-2000:]
    assert "carrying on at 96" in service.log()

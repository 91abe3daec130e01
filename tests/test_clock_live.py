"""External MIDI clock, live: a clock source on JACK at 100 then 140 BPM; the service follows
it, and its drums land on the source's grid (at the right steps of the loop)."""
from __future__ import annotations

import time

import pytest

from tests.jackserver import (REPO, Recorder, ServiceProcess, cycle_frames, jack, played_note,  # noqa: F401
                              wait_until)

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


def sent_bpm(ticks: list[float], t: float) -> float:
    """The tempo of the last beat of clocks the source sent before ``t`` (least squares)."""
    beat = [x for x in ticks if x <= t][-25:]
    n = range(len(beat))
    mean_n, mean_t = sum(n) / len(beat), sum(beat) / len(beat)
    slope = (sum((i - mean_n) * (x - mean_t) for i, x in zip(n, beat))
             / sum((i - mean_n) ** 2 for i in n))
    return 60.0 / (slope * 24)


def sent_before(ticks: list[float], t: float) -> str:
    """What the source sent in the beat before ``t``, for a failure's message: the gaps."""
    beat = [x for x in ticks if t - 0.7 <= x <= t]
    gaps = [round((b - a) * 1000, 1) for a, b in zip(beat, beat[1:])]
    return f"the source's last {len(gaps)} gaps (ms): {gaps}"


def notes_near(events, ticks: list[float], t: float) -> list[tuple[float, float]]:
    """(ms from ``t``, ms off the nearest sixteenth) of the notes within a beat of ``t``."""
    out = []
    for at, m in events:
        if m.type == "note_on" and m.velocity and abs(at - t) <= 0.5:
            n = min(range(0, len(ticks), 6), key=lambda i: abs(ticks[i] - at))
            out.append((round((at - t) * 1000, 1), round((at - ticks[n]) * 1000, 1)))
    return out


def test_follows_100_then_140_bpm_and_plays_on_the_sources_grid(jack, tmp_path, tiny_model_dir):
    drums = Recorder("clk-drums")
    # crash_every 0, fill_every 0: crashes and fills as the pattern has them (what is played is compared with it)
    config = f"""
model: {{dir: {tiny_model_dir}, seed: 11}}
generator: {{density: 0.7, humanise: 0.0}}
tempo: {{bpm: 120, clock: external}}
loop: {{swap_at: step, crash_every: 0, fill_every: 0}}
midi: {{api: jack, client_name: gb-clk, inputs: [clk-src], outputs: [clk-drums]}}
gpio: {{enabled: false}}
state: {{dir: {tmp_path}/state}}
control: {{socket: {tmp_path}/control.sock}}
"""
    change = 6 * 24                                        # six beats at 100, eight at 140
    source = ClockSource(jack, [(100.0, change), (140.0, 8 * 24)])
    service = ServiceProcess(jack, str(tmp_path), config)
    xruns_before = jack.xruns()
    try:
        service.wait_ready()
        assert wait_until(lambda: service.status()["ports"]["inputs"] == ["clk-src:out"], 10)
        assert not service.status()["running"]            # external: waits for a clock
        source.go()
        started = time.monotonic()
        samples = []                                       # the box's view while it plays
        while time.monotonic() < started + 6 * 0.6 + 8 * 60 / 140 + 0.5:
            samples.append(service.status())
            time.sleep(0.05)
        source.finish()                                    # the clock stops (no Stop sent)
        silent_at = source.ticks[-1]
        assert wait_until(lambda: not service.status()["running"], 10)
        stopped = service.status()
    finally:
        code = service.stop()
        source.close()
    events = drums.settle()
    drums.close()
    assert code == 0, service.log()[-3000:]

    ticks = source.ticks
    settled = [(ticks[48], ticks[change - 1]), (ticks[change + 48], ticks[-1])]
    # What the box said while each tempo had settled (two beats after a change), by the
    # status's own timestamp: however late a status came under load, it is judged by when.
    at_100s = [s for s in samples if settled[0][0] <= s["now"] <= settled[0][1]]
    at_140s = [s for s in samples if settled[1][0] <= s["now"] <= settled[1][1]]
    assert at_100s and at_140s, (len(samples), settled)
    # Within 1 BPM of the source's tempo, or of the tempo it sent in the beat the box read
    # (a busy machine holds the source up too: clocks 12-23 ms apart at 140 were seen here;
    # the box leaves such bursts out, a plain fit of the sent clocks does not).
    for at in at_100s:
        assert at["clock_source"] == "external" and at["running"]
        off = min(abs(at["bpm"] - 100), abs(at["bpm"] - sent_bpm(ticks, at["now"])))
        assert off < 1.0, (at["bpm"], sent_before(ticks, at["now"]))
    for at in at_140s:
        off = min(abs(at["bpm"] - 140), abs(at["bpm"] - sent_bpm(ticks, at["now"])))
        assert off < 1.0, (at["bpm"], sent_before(ticks, at["now"]))
    at_140 = at_140s[-1]
    assert not stopped["running"]
    # A real clock, late now and then on a busy machine, is never taken for extra bytes.
    assert stopped["clock_counts"]["extra"] == 0 and stopped["clock_counts"]["other_input"] == 0

    pattern = {(step, played_note(at_140, step, voice)) for step, voice, _v, _o in at_140["pattern"]}
    assert pattern, "the model played nothing"
    checked, off = 0, {}
    xruns = jack.xruns() - xruns_before
    for t, m in events:
        if m.type != "note_on" or m.velocity == 0:
            continue
        if not any(a <= t <= b for a, b in settled):
            continue
        # Against the nearest sixteenth clock: a sender held up by a busy machine sends two
        # clocks back to back, and the note on the first can be nearer the second's time stamp
        # (CI: "note on clock 49"). Within 10 ms of a sixteenth (107 ms apart at 140) is on it.
        n = min(range(0, len(ticks), 6), key=lambda i: abs(ticks[i] - t))
        error = t - ticks[n]
        if abs(error) > TOLERANCE_S:   # judged below, by the moments it happened at
            off.setdefault(round(t, 3), f"note {m.note} {error * 1000:.1f} ms off the sixteenths, on clock {n}; "
                                        f"{sent_before(ticks, ticks[n])}; the notes around it: "
                                        f"{notes_near(events, ticks, t)}")
            continue
        assert ((n // 6) % 32, m.note) in pattern, f"note {m.note} on step {(n // 6) % 32}"
        checked += 1
    # Every note on its sixteenth, unless jackd itself reported late cycles meanwhile (a host
    # that takes the CPU away): then a moment or two of notes held up, no more than it reported
    # (an idle run here: three notes of one step 12.7 ms late, once in ten runs).
    allowed = 0 if not xruns else min(xruns, 2)
    assert len(off) <= allowed, (f"{len(off)} moments off the sixteenths, {xruns} JACK xruns meanwhile: "
                                 f"{list(off.values())[:2]}")
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
    xruns_before = jack.xruns()
    try:
        service.wait_ready()
        assert slave.wait_for(lambda ev: sum(m.type == "clock" for _, m in ev) >= 24 * 6, 30)
    finally:
        code = service.stop()
    assert slave.wait_for(lambda ev: bool(ev) and ev[-1][1].type == "stop", 10)
    xruns = jack.xruns() - xruns_before
    events = list(slave.events)
    slave.close()
    assert code == 0, service.log()[-2000:]
    kinds = [m.type for _, m in events]
    assert "start" in kinds or "continue" in kinds
    assert kinds[-1] == "stop"
    clocks = [t for t, m in events if m.type == "clock"]
    gaps = [b - a for a, b in zip(clocks, clocks[1:])]
    period = 60.0 / 150 / 24
    assert len(clocks) >= 24 * 6
    # Tempo held, no clock lost or doubled. A busy machine makes clocks late, never early, so
    # time is read off the clocks that came on time: each clock's lateness against clock 0 on
    # a 150 BPM grid, and the least of it in the first and in the last quarter. Those agree
    # within 3 ms (0.1 % of tempo over six beats) if the box kept time; a lost clock moves the
    # last quarter a period later, a doubled one a period earlier. (First to last alone read a
    # last clock held up 134 ms on a busy CI machine as eight lost.) One clock may go missing
    # only where jackd itself reported late cycles (an xrun can drop a client's MIDI for that
    # cycle on the way, whatever the box sent).
    late = [t - clocks[0] - i * period for i, t in enumerate(clocks)]
    quarter = len(late) // 4
    drift = min(late[-quarter:]) - min(late[:quarter])
    lost = round(drift / period)
    assert lost == 0 or (lost == 1 and xruns > 0), f"{lost} clock(s) lost (doubled if negative), {xruns} jackd xruns"
    assert abs(drift - lost * period) < 0.003, f"the clock drifted {drift * 1000:.1f} ms in {len(clocks)} clocks"
    # 19 in 20 gaps within 5 ms of the period (usually under 3 ms; 4.2 ms once in 12 runs on
    # an idle machine).
    # Where jackd itself reported late cycles, its own lateness is in every arrival time here
    # (the dummy driver runs without realtime): then 15 ms (a busy CI machine: 8.9 ms).
    wobble = sorted(abs(g - period) for g in gaps)
    limit = 0.005 if xruns == 0 else 0.015
    assert wobble[int(len(wobble) * 0.95)] < limit, f"p95 {wobble[int(len(wobble) * 0.95)]}, {xruns} jackd xruns"
    # Drums on the grid the clock draws: every note-on at a sixth clock (humanise 0),
    # counting from the first clock after Start (each note against the clock received
    # nearest it, so one late clock does not shift the rest); nine in ten within 5 ms of it
    # (3 ms unloaded; two CPU hogs beside a load of 20 gave a p90 of 4.3 ms).
    # Only notes inside the clocks' span: at the stop the clock ends first, and a note the player
    # had already scheduled can sound after the last clock, where there is no grid to hold it to
    # (seen twice in 34 runs, 84 ms past the last sixteenth clock).
    # A note further off than two clocks must have come with a box held up: right after its
    # sixteenth's clock and before the next clock (the box sends a note and its sixteenth's
    # clock due together, so held up after that clock it sends the note with the clocks it owes,
    # all late: CI, a note 83.5 ms after its sixteenth in one cycle with the next five clocks), or
    # in a burst of clocks that came late together (held up before it planned the note, the box
    # sends the clocks it owes first: CI under load, a note 85 ms off after four such clocks). A
    # note timed wrong by the box comes among clocks sent on time, a period apart.
    first = clocks[0]
    sixteenths = clocks[::6]
    errors = []
    count = 0                                              # clocks received so far
    last_two = [float("-inf"), float("-inf")]              # when the last two clocks came
    for t, m in events:
        if m.type == "clock":
            count += 1
            last_two = [last_two[1], t]
            continue
        if m.type != "note_on" or m.velocity == 0 or not first <= t <= clocks[-1] + period / 2:
            continue
        error = min(abs(t - c) for c in sixteenths)
        if error >= 2 * period:
            burst = last_two[1] - last_two[0] < period / 2
            assert count % 6 == 1 or burst, f"a note {error * 1000:.1f} ms off the sixteenths, after clock {count - 1}"
        errors.append(error)
    assert errors
    errors.sort()
    assert errors[int(len(errors) * 0.9)] < 0.005, f"p90 {errors[int(len(errors) * 0.9)] * 1000:.1f} ms"


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
    xruns_before = jack.xruns()
    try:
        service.wait_ready()
        before = service.status()
        assert before["running"] and before["clock_source"] == "internal" and before["bpm"] == 120
        assert wait_until(lambda: service.status()["ports"]["inputs"] == ["clk-src:out"], 10)
        source.go()
        assert wait_until(lambda: service.status()["clock_source"] == "external", 10)
        source.finish()                                        # the master vanishes, no Stop
        following = service.status()
        # Within 1 BPM; within 10 (still far from its own 120) where jackd reported late cycles,
        # which hold clocks up on the way (a busy CI machine: 6.3 BPM off).
        slack = 1.0 if jack.xruns() == xruns_before else 10.0
        assert abs(following["bpm"] - 96) < slack, (following["bpm"], jack.xruns() - xruns_before)
        assert wait_until(lambda: service.status()["clock_source"] == "internal", 10)
        alone = service.status()
        assert alone["running"] and abs(alone["bpm"] - 96) < slack   # at the master's tempo
        drums.clear()
        assert drums.wait_for(lambda ev: sum(m.type == "note_on" for _, m in ev) >= 4, 20)
    finally:
        code = service.stop()
        source.close()
        drums.close()
    assert code == 0, service.log()[-2000:]


@pytest.mark.parametrize("bpm", [105.0, 122.0, 150.0])
def test_a_clock_through_a_desktops_long_jack_cycles_is_followed_clock_for_clock(
        jack, tmp_path, tiny_model_dir, bpm):
    """A JACK server with 1024-frame cycles (21 ms at 48 kHz, as desktops run it) gives every
    clock read in a cycle the cycle's time. At 150 BPM (a clock every 17 ms) a cycle often
    holds two: the box never found the clock steady and did not follow it. At 122 (20.5 ms)
    it followed, but took the second clock of a cycle for an extra byte now and then (14 of
    384 in 16 beats: its drums more than two steps behind the master); at 105 (23.8 ms) it
    took a cycle with no clock in it for a lost clock (36 in 16 beats, six steps ahead). Told the cycle by JACK,
    it follows at once, counts every clock, and shows the master's tempo."""
    config = f"""
model: {{dir: {tiny_model_dir}, seed: 4}}
tempo: {{bpm: 100, clock: auto}}
midi: {{api: jack, client_name: gb-long, inputs: [clk-src], outputs: []}}
gpio: {{enabled: false}}
state: {{dir: {tmp_path}/state}}
control: {{socket: {tmp_path}/control.sock}}
"""
    with cycle_frames(jack, 1024):
        source = ClockSource(jack, [(bpm, 24 * 16)])
        service = ServiceProcess(jack, str(tmp_path), config)
        try:
            service.wait_ready()
            assert wait_until(lambda: service.status()["ports"]["inputs"] == ["clk-src:out"], 10)
            source.go()
            started = time.monotonic()
            assert wait_until(lambda: service.status()["clock_source"] == "external", 10), service.log()[-2000:]
            time.sleep(max(0.0, started + 14 * 60 / bpm - time.monotonic()))   # 14 of the 16 beats
            following = service.status()
            source.finish()
        finally:
            code = service.stop()
            source.close()
    assert code == 0, service.log()[-2000:]
    assert following["clock_source"] == "external"
    assert following["clock_counts"]["extra"] == 0 and following["clock_counts"]["missed"] == 0, following["clock_counts"]
    assert following["bpm"] == pytest.approx(bpm, abs=1.5)

"""The count-in through the running box (JACK): four taps on a pad set the tempo, nothing sounds
until the next bar, and the first drum note-on falls on that downbeat."""
from __future__ import annotations

import time

import mido

from tests.jackserver import Player, Recorder, ServiceProcess, jack, wait_until  # noqa: F401


def test_count_in_on_a_pad_starts_the_drums_on_the_next_bar(jack, tmp_path, tiny_model_dir):
    drums = Recorder("cnt-drums")
    pads = Player("cnt-pads")
    config = f"""
model: {{dir: {tiny_model_dir}, seed: 3}}
generator: {{density: 0.9, humanise: 0.0}}
tempo: {{bpm: 120, clock: internal}}
start: {{mode: count-in, count_in_notes: [36], count_in_beats: 4}}
loop: {{swap_at: step}}
midi: {{api: jack, client_name: gb-cnt, inputs: [cnt-pads], outputs: [cnt-drums]}}
gpio: {{enabled: false}}
state: {{dir: {tmp_path}/state}}
control: {{socket: {tmp_path}/control.sock}}
"""
    service = ServiceProcess(jack, str(tmp_path), config)
    try:
        service.wait_ready()
        assert wait_until(lambda: "cnt-pads:out" in service.status()["ports"]["inputs"], 10)
        assert "count-in" in service.status()["engine"]["waiting_for"]
        beat = 60.0 / 90.0                                   # the band's tempo: 90 BPM
        pads.send(mido.Message("note_on", note=60, velocity=90))   # not the count-in pad
        time.sleep(0.3)
        taps = []
        for _ in range(4):
            taps.append(time.monotonic())
            pads.send(mido.Message("note_on", note=36, velocity=110))
            time.sleep(beat)
        # The tempo comes from the taps as the box heard them (their arrival stamps); a busy
        # machine moves the taps a little, so the expectation is from when they were sent.
        played = (taps[-1] - taps[0]) / 3
        assert wait_until(lambda: abs(service.status()["bpm"] - 60.0 / played) < 3.0, 10), \
            (service.status()["bpm"], 60.0 / played)
        assert drums.wait_for(lambda ev: any(m.type == "note_on" for _, m in ev), 20)
        status = service.status()
        assert status["running"] and status["engine"]["waiting_for"] == ""
        assert status["groove"] == [], "the count-in is not recorded into the groove"
        first = min(t for t, m in drums.events if m.type == "note_on")
        downbeat = taps[-1] + played
        # Where the box put its bar line, from its own transport: position 0 (a loop start).
        sps = 60.0 / status["bpm"] / 4
        box_downbeat = status["now"] - (status["position"] % 32) * sps
        while box_downbeat - first > 16 * sps:
            box_downbeat -= 32 * sps
        assert abs(box_downbeat - downbeat) < 0.06, (box_downbeat - downbeat)
        assert first >= box_downbeat - 0.02, "nothing before the bar"
        assert first - box_downbeat < 0.03, "the downbeat itself is played"
    finally:
        service.stop()
        drums.close()
        pads.close()


def test_the_end_command_ends_the_song_and_the_next_note_starts_the_next(jack, tmp_path, tiny_model_dir):
    drums = Recorder("end-drums")
    keys = Player("end-keys")
    config = f"""
model: {{dir: {tiny_model_dir}, seed: 3}}
generator: {{density: 0.9, humanise: 0.0}}
tempo: {{bpm: 150, clock: internal}}
start: {{mode: first-note}}
loop: {{swap_at: step}}
midi: {{api: jack, client_name: gb-end, inputs: [end-keys], outputs: [end-drums]}}
gpio: {{enabled: false}}
state: {{dir: {tmp_path}/state}}
control: {{socket: {tmp_path}/control.sock}}
"""
    service = ServiceProcess(jack, str(tmp_path), config)
    try:
        service.wait_ready()
        assert wait_until(lambda: "end-keys:out" in service.status()["ports"]["inputs"], 10)
        keys.send(mido.Message("note_on", note=48, velocity=100))
        assert drums.wait_for(lambda ev: sum(m.type == "note_on" for _, m in ev) >= 8, 20), "the song plays"
        bar_s = 60.0 / 150 * 4
        # press mid-bar: a press just after a bar line is the last chord's, and ends on that line
        downbeat = next(t for t, m in drums.events if m.type == "note_on")
        time.sleep((bar_s / 2 - (time.monotonic() - downbeat) % bar_s) % bar_s)
        pressed = time.monotonic()
        reply = service.request("end")
        assert "next bar line" in reply["message"]
        assert wait_until(lambda: "first note" in service.status()["engine"]["waiting_for"], 4 * bar_s + 10), \
            "a bar after the last hit the box waits for the next song"
        status = service.status()
        assert "first note" in status["engine"]["waiting_for"] and not status["running"]
        assert status["groove"] == [], "the overdub is cleared"
        after = [(t, m.note) for t, m in drums.events if m.type == "note_on" and t > pressed]
        last = [note for t, note in after if t > after[-1][0] - 0.005]
        assert sorted(last) == [36, 49], f"the last hit is the crash and the kick: {after[-6:]}"
        assert after[-1][0] - pressed < bar_s + 0.2, "on the next bar line"
        ended = time.monotonic()
        time.sleep(bar_s)
        assert not [t for t, m in drums.events if m.type == "note_on" and t > ended], "silent between songs"
        drums.clear()
        keys.send(mido.Message("note_on", note=50, velocity=100))
        assert drums.wait_for(lambda ev: any(m.type == "note_on" for _, m in ev), 10), "the next song starts"
        assert service.status()["engine"]["waiting_for"] == ""
    finally:
        service.stop()
        drums.close()
        keys.close()

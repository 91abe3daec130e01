"""SIGHUP reload on a virtual clock: the beat goes on, only what changed is applied."""
from __future__ import annotations

from dataclasses import replace
import logging
from pathlib import Path

import numpy as np
import pytest

from appliance.box.config import Config, load, loads
from appliance.box.controls import start
from appliance.core.engine import Engine, VirtualExecutor
from appliance.core.groove import VOICES
from appliance.box.reload import apply_config, reload_file
from appliance.box.state import Autosaver, LiveState, StateStore
from appliance.core.transport import InternalClock

DT = 0.005


def engine_for(generator, config: Config, eps: np.ndarray) -> Engine:
    engine = Engine(generator, InternalClock(bpm=config.tempo.bpm, start=0.0),
                    config.engine_settings(), config.controls(), executor=VirtualExecutor(),
                    clock=lambda: 0.0)
    engine.restore(eps=eps)
    return engine


def run(engine: Engine, start: float, end: float) -> list:
    events, now = [], start
    while now < end - 1e-9:
        events.extend(engine.tick(now))
        now += DT
    return events


def hits(events: list) -> list[tuple[float, int, int]]:
    return sorted((round(e.time, 6), e.message.note, e.message.channel)
                  for e in events if e.message.type == "note_on" and e.message.velocity > 0)


BASE = loads("generator: {density: 0.8}\nplayer: {drum_map: gm}\ngpio: {enabled: false}\n")


def test_a_reload_keeps_the_beat(generator) -> None:
    eps = generator.new_eps()
    steady = engine_for(generator, BASE, eps)
    reloaded = engine_for(generator, BASE, eps)
    reload_at = 4.02                      # in the middle of the loop, between steps
    before = run(steady, 0.0, 8.0)
    first = run(reloaded, 0.0, reload_at)
    new = replace(BASE, player=replace(BASE.player, channel=11, notes={"kick": 35},
                                       lookahead_ms=80.0))
    changed = apply_config(new, reloaded, reloaded.transport, old=BASE, now=reload_at)
    assert set(changed) == {"player.channel: 10 → 11", "player.lookahead_ms: 50 → 80",
                            "player.notes: {} → {'kick': 35}"}
    second = run(reloaded, reload_at, 8.0)
    assert hits(before), "the engine must be playing"
    # the same hits at the same times, none dropped, none doubled; from the step after the
    # reload on they come on channel 11 (index 10) with the kick on 35
    # (up to 8 s: past it the reloaded engine's longer look-ahead has scheduled further)
    got = [h for h in hits(first + second) if h[0] < 8.0]
    steady_hits = [h for h in hits(before) if h[0] < 8.0]
    assert [t for t, _, _ in got] == [t for t, _, _ in steady_hits], "the beat must not move"
    settled = reload_at + 0.125 + 0.08     # one step plus the new look-ahead
    renamed = 0
    for (t, note, channel), (_, note0, channel0) in zip(got, steady_hits):
        new_mapping = (35 if note0 == 36 else note0, 10)
        if t > settled:
            assert (note, channel) == new_mapping, t
            renamed += note == 35
        else:
            assert (note, channel) in ((note0, channel0), new_mapping), t
    assert renamed, "the kick plays on with its new note"
    steady.close()
    reloaded.close()


def test_density_applies_and_knobs_turned_since_are_left_alone(generator) -> None:
    eps = generator.new_eps()
    engine = engine_for(generator, BASE, eps)
    run(engine, 0.0, 1.0)
    engine.set_controls(temperature=1.7)           # a knob turned on stage
    new = replace(BASE, generator=replace(BASE.generator, density=0.3))
    assert apply_config(new, engine, engine.transport, old=BASE, now=1.0) == ["generator.density: 0.8 → 0.3"]
    assert engine.controls.density == 0.3 and engine.controls.temperature == 1.7
    events = run(engine, 1.0, 6.0)
    assert hits(events), "still playing after the reload"
    engine.close()


def test_tempo_reload_keeps_the_position_continuous(generator) -> None:
    engine = engine_for(generator, BASE, generator.new_eps())
    run(engine, 0.0, 2.0)
    position = engine.transport.position(2.0)
    apply_config(replace(BASE, tempo=replace(BASE.tempo, bpm=90.0)), engine, engine.transport,
                 old=BASE, now=2.0)
    assert engine.transport.bpm == 90.0
    assert engine.transport.position(2.0) == pytest.approx(position)
    engine.close()


@pytest.mark.parametrize("unit", ["groovebox.service", None])
def test_restart_only_keys_are_reported(generator, caplog, monkeypatch, unit: str | None) -> None:
    """Under systemd the line names the unit's restart; elsewhere (make run, a newcomer's
    review: it told a desktop to `sudo systemctl restart`) a restart of the box."""
    if unit:
        monkeypatch.setenv("GROOVEBOX_UNIT", unit)
    else:
        monkeypatch.delenv("GROOVEBOX_UNIT", raising=False)
    engine = engine_for(generator, BASE, generator.new_eps())
    new = replace(BASE, model=replace(BASE.model, precision="fp32"),
                  midi=replace(BASE.midi, inputs=("Keystation",)))
    caplog.set_level(logging.WARNING, logger="appliance.box.reload")
    changed = apply_config(new, engine, engine.transport, old=BASE, now=0.0)
    assert "model.precision: int8 → fp32 (restart)" in changed
    assert "midi.inputs: [] → [Keystation] (restart)" in changed
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and (f"systemctl restart {unit}" in warnings[0] if unit
                                   else "systemctl" not in warnings[0] and "restart of the box" in warnings[0])
    engine.close()


def test_what_the_command_line_set_is_no_change_on_a_reload(generator, tmp_path: Path, caplog) -> None:
    """`make run` starts the box with --midi-api jack over a file that says alsa: a reload of
    the same file said "midi.api: jack → alsa (restart)" (a newcomer's review)."""
    path = tmp_path / "config.yaml"
    path.write_text(f"state: {{dir: {tmp_path}}}\nmidi: {{api: alsa}}\ntempo: {{bpm: 100}}\n")
    running = replace(load(path), midi=replace(load(path).midi, api="jack"))
    engine = engine_for(generator, running, generator.new_eps())
    path.write_text(f"state: {{dir: {tmp_path}}}\nmidi: {{api: alsa}}\ntempo: {{bpm: 110}}\n")
    caplog.set_level(logging.INFO, logger="appliance.box.reload")
    now = reload_file(path, running, engine, engine.transport,
                      override=lambda c: replace(c, midi=replace(c.midi, api="jack")))
    assert now.midi.api == "jack" and now.tempo.bpm == 110
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "midi.api" not in said and "tempo.bpm: 100 → 110" in said
    engine.close()


def test_an_invalid_file_is_refused_and_the_old_config_stays(generator, tmp_path: Path,
                                                             caplog) -> None:
    engine = engine_for(generator, BASE, generator.new_eps())
    path = tmp_path / "config.yaml"
    path.write_text("generator:\n  density: 0.2\nplayer:\n  channel: 17\n")
    before = (engine.controls, engine.settings)
    assert reload_file(path, BASE, engine, engine.transport) is BASE
    assert (engine.controls, engine.settings) == before
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and f"{path}:4 player.channel: 17 is not in 1..16" in errors[0]
    engine.close()


def test_an_empty_file_is_refused_and_the_last_good_copy_kept(generator, tmp_path: Path, caplog,
                                                              monkeypatch) -> None:
    """A 0-byte file (a crashed editor, a full disk) is not every default: the reload is refused."""
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    engine = engine_for(generator, BASE, generator.new_eps())
    path = tmp_path / "config.yaml"
    path.write_text("generator:\n  density: 0.2\n")
    good = reload_file(path, BASE, engine, engine.transport)
    kept = (tmp_path / "state" / "config.last-good.yaml").read_text()
    assert good is not BASE and "density: 0.2" in kept
    for empty in ("", "  \n\n"):
        path.write_text(empty)
        caplog.clear()
        assert reload_file(path, good, engine, engine.transport) is good
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and "empty" in errors[0]
        assert (tmp_path / "state" / "config.last-good.yaml").read_text() == kept
    engine.close()


def test_without_a_remembered_config_the_engine_state_is_the_baseline(generator) -> None:
    engine = Engine(generator, InternalClock(bpm=120.0, start=0.0), executor=VirtualExecutor(),
                    clock=lambda: 0.0)
    new = loads("generator: {density: 0.9}\nplayer: {drum_map: tr-8s, channel: 10}\n"
                "loop: {swap_at: bar}\n")
    changed = apply_config(new, engine, engine.transport, now=0.0)
    assert "generator.density: 0.5 → 0.9" in changed
    assert engine.controls.density == 0.9 and engine.settings.swap_at == "bar"
    engine.close()


def test_reload_rebuilds_controls_and_the_autosaver_rate(generator, tmp_path: Path) -> None:
    config = replace(BASE, state=replace(BASE.state, dir=str(tmp_path)))
    engine = engine_for(generator, config, generator.new_eps())
    controls = start(config, engine, engine.transport, threads=False)
    saver = Autosaver(StateStore(tmp_path), lambda: LiveState(), every_s=5.0)
    new = replace(config, midi_map=replace(config.midi_map, cc={21: "density"}),
                  state=replace(config.state, save_every_s=2.0))
    apply_config(new, engine, engine.transport, controls=controls, autosaver=saver, now=0.0)
    assert saver.every_s == 2.0
    assert controls.midimap.bindings() == {("cc", 21, 0): "density"}
    controls.close()
    engine.close()


def test_voice_order_is_what_the_notes_override_uses() -> None:
    c = loads("player: {notes: {ride: 59}}\n")
    notes, _ = c.drum_notes()
    assert notes[VOICES.index("ride")] == 59


def test_the_controls_remember_the_running_config(generator, tmp_path: Path) -> None:
    """The service passes only controls=: knobs turned since start survive a reload."""
    config = replace(BASE, state=replace(BASE.state, dir=str(tmp_path)))
    engine = Engine(generator, InternalClock(bpm=120.0, start=0.0), config.engine_settings(),
                    config.controls(), executor=VirtualExecutor(), clock=lambda: 0.0)
    controls = start(config, engine, engine.transport, threads=False)
    engine.set_controls(density=0.1)               # a knob on stage
    new = replace(config, player=replace(config.player, channel=12))
    assert apply_config(new, engine, engine.transport, controls=controls, now=0.0) == [
        "player.channel: 10 → 12"]
    assert engine.controls.density == 0.1 and engine.settings.channels == (12,) * 9
    controls.close()
    engine.close()

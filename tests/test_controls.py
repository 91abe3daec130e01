"""The actions shared by buttons, pads and knobs: tap tempo, knob ranges, clocks, scenes."""
from __future__ import annotations

import logging

import pytest

from appliance.core.actions import DETENTS_PER_SWEEP, Actions, TapTempo
from appliance.core.generator import Controls
from appliance.core.clock import ClockSwitch
from appliance.box.scenes import Scenes
from tests.conftest import make_engine


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_tap_tempo_median_of_the_last_gaps_and_timeout() -> None:
    tap = TapTempo()
    assert tap.tap(0.0) is None
    assert tap.tap(0.5) == pytest.approx(120.0)
    assert tap.tap(1.0) == pytest.approx(120.0)
    assert tap.tap(1.9) == pytest.approx(120.0)      # one late tap does not drag the median
    assert tap.tap(10.0) is None                     # a long pause starts a new count
    assert tap.tap(10.25) == 240.0
    assert TapTempo().tap(0.0) is None
    slow = TapTempo()
    slow.tap(0.0)
    assert slow.tap(1.9) == pytest.approx(40.0)      # clamped to the clock's range


@pytest.mark.parametrize("bounce_s", [0.005, 0.03, 0.05, 0.15])
def test_a_double_triggered_tap_is_a_bounce_not_300_bpm(bounce_s, generator, caplog) -> None:
    """A pad that double-triggers, or a button bouncing past its debounce, set 300 BPM
    (a fault harness's probe, session 47)."""
    caplog.set_level(logging.INFO)
    now = Clock()
    engine = make_engine(generator, controls=Controls())
    actions = Actions(engine, engine.transport, clock=now)
    engine.transport.set_bpm(96.0, 0.0)
    for beat in range(4):
        now.now = beat * 0.625
        actions.tap()
        now.now += bounce_s
        actions.tap()
    assert engine.transport.bpm == pytest.approx(96.0, abs=0.1)
    assert actions.tap_tempo.ignored == 4
    assert any("double trigger" in r.getMessage() for r in caplog.records)
    tap = TapTempo()
    assert [tap.tap(t) for t in (0.0, 0.005, 0.25, 0.252, 0.5)] == [None, None, 240.0, None, 240.0]


def test_knob_positions_map_onto_each_range(generator) -> None:
    engine = make_engine(generator, controls=Controls())
    actions = Actions(engine, engine.transport, tempo_range=(80.0, 160.0), clock=lambda: 0.0)
    actions.knob("variation", 0.75)
    actions.knob("humanise", 0.0)
    actions.knob("velocity_scale", 1.0)
    actions.knob("tempo", 0.25)
    c = engine.controls
    assert (c.temperature, c.humanise, c.velocity_scale) == (1.5, 0.0, 2.0)
    assert engine.transport.bpm == 100.0
    assert actions.knob_value("variation") == pytest.approx(0.75)
    assert actions.knob("variation", 0.7501) is False   # under the deadband: no regeneration
    actions.knob("density", 2.0)                         # clamped
    assert engine.controls.density == 1.0
    actions.nudge("density", -DETENTS_PER_SWEEP // 2)
    assert engine.controls.density == pytest.approx(0.5)
    actions.nudge("tempo", 3)
    assert engine.transport.bpm == 103.0
    actions.nudge("tempo", 1000)
    assert engine.transport.bpm == 160.0


def test_tempo_controls_leave_an_external_clock_alone(generator, caplog) -> None:
    engine = make_engine(generator)
    switch = ClockSwitch("external", 120.0, clock=lambda: 0.0)
    actions = Actions(engine, switch, clock=lambda: 0.0, follows_external_clock=True)
    caplog.set_level(logging.INFO, logger="appliance.core.actions")
    assert actions.knob("tempo", 1.0) is False
    actions.tap()
    actions.tap()
    lines = [r.getMessage() for r in caplog.records if "MIDI clock" in r.getMessage()]
    assert len(lines) == 1


def test_actions_by_name_scenes_and_mistakes(generator) -> None:
    engine = make_engine(generator)
    engine.tick(0.0)
    clock = Clock()
    seen = []
    actions = Actions(engine, engine.transport, Scenes(2), clock=clock)
    actions.on_action.append(seen.append)
    actions.do("freeze")
    assert engine.frozen is True
    actions.do("store_scene_2")
    assert actions.scenes.get(2) is not None
    assert actions.recall_scene(3) is False            # only 2 slots
    actions.do("scene_2")
    clock.now = 0.5
    actions.do("tap")
    clock.now = 1.0
    actions.do("tap")
    assert engine.transport.bpm == pytest.approx(120.0)
    assert seen == ["freeze", "store_scene_2", "scene_2", "tap", "tap"]
    with pytest.raises(ValueError):
        actions.do("explode")
    no_scenes = Actions(engine, engine.transport)
    assert no_scenes.store_scene(1) is False

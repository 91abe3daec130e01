"""The front panel through gpiozero's real classes on its MockFactory: every button, encoder,
MCP3008 channel and LED, driven at the pin (and, for the MCP3008, at the SPI bit) level."""
from __future__ import annotations

from dataclasses import replace
import gc

import mido
import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory, MockSPIDevice

from appliance.box import config as cfg
from appliance.box.config import GpioConfig, KnobConfig, KnobsConfig, LedsConfig
from appliance.box.controls import start
from appliance.core.actions import Actions
from appliance.io.panel import NoPinFactory, Panel, make_pin_factory
from appliance.core.generator import Controls
from appliance.box.scenes import Scenes
from tests.conftest import make_engine


class MockMCP3008(MockSPIDevice):
    """The chip's side of the SPI conversation (start bit, single/diff, 3 channel bits,
    then a null bit and 10 result bits), answering from ``voltages``."""

    def __init__(self, factory: MockFactory, clock: int = 11, mosi: int = 10, miso: int = 9,
                 select: int = 8, vref: float = 3.3) -> None:
        super().__init__(clock, mosi, miso, select, pin_factory=factory)
        self.vref = vref
        self.voltages = [0.0] * 8
        self.state = "idle"

    def set(self, channel: int, fraction: float) -> None:
        self.voltages[channel] = fraction * self.vref

    def on_start(self) -> None:
        super().on_start()
        self.state = "idle"

    def on_bit(self) -> None:
        if self.state == "idle":
            if self.rx_buf[-1]:
                self.state = "mode"
                self.rx_buf = []
        elif self.state == "mode":
            self.state = "single" if self.rx_buf[-1] else "diff"
            self.rx_buf = []
        elif self.state in ("single", "diff"):
            if len(self.rx_buf) == 3:
                channel = self.rx_word()
                volts = min(max(self.voltages[channel], 0.0), self.vref)
                self.tx_word(round(volts / self.vref * 1023), 12)   # sample, null, 10 bits
                self.state = "result"
        elif self.state == "result":
            if not self.tx_buf:
                self.state = "idle"
                self.rx_buf = []


@pytest.fixture(autouse=True)
def fresh_pins():
    """Each test on its own MockFactory, also as gpiozero's global default (its software
    SPI bus consults that one), and nothing left over for the next test."""
    from gpiozero import Device
    saved = Device.pin_factory
    yield
    gc.collect()
    Device.pin_factory = saved


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def panel_config(**changes: object) -> GpioConfig:
    base = GpioConfig(
        buttons={"freeze": 17, "clear": 27, "resample": 22, "tap": 23, "scene_1": 24,
                 "store_scene_1": 25},
        knobs=KnobsConfig(density=KnobConfig(mcp3008=0), variation=KnobConfig(mcp3008=1),
                          tempo=KnobConfig(mcp3008=2), humanise=KnobConfig(mcp3008=3),
                          velocity_scale=KnobConfig(encoder=(20, 21))),
        leds=LedsConfig(beat=5, freeze=6, activity=13), pickup=False, smoothing=0.0)
    return replace(base, **changes)


@pytest.fixture
def rig(generator):
    factory = MockFactory()
    chip = MockMCP3008(factory)
    clock = Clock()
    engine = make_engine(generator, controls=Controls(density=0.5))
    engine.tick(0.0)
    scenes = Scenes(4)
    actions = Actions(engine, engine.transport, scenes, tempo_range=(60.0, 180.0), clock=clock)
    panel = Panel(panel_config(), actions, pin_factory=factory, clock=clock)
    yield factory, chip, clock, engine, panel
    panel.close()
    chip.close()
    engine.close()


def press(factory: MockFactory, pin: int) -> None:
    factory.pin(pin).drive_low()


def release(factory: MockFactory, pin: int) -> None:
    factory.pin(pin).drive_high()


def click(factory: MockFactory, clock: Clock, pin: int) -> None:
    press(factory, pin)
    clock.now += 0.1
    release(factory, pin)
    clock.now += 0.1


def test_freeze_button_toggles_and_the_freeze_led_follows(rig) -> None:
    factory, chip, clock, engine, panel = rig
    assert engine.frozen is False
    click(factory, clock, 17)
    assert engine.frozen is True
    panel.poll()
    assert factory.pin(6).state is True
    click(factory, clock, 17)
    panel.poll()
    assert engine.frozen is False and factory.pin(6).state is False


def test_buttons_are_debounced(rig) -> None:
    factory, chip, clock, engine, panel = rig
    # a contact that chatters for 5 ms: one press
    for _ in range(5):
        press(factory, 17)
        clock.now += 0.001
        release(factory, 17)
        clock.now += 0.001
    press(factory, 17)
    clock.now += 0.2
    panel.poll()
    release(factory, 17)
    clock.now += 0.2
    panel.poll()
    assert engine.frozen is True, "a chattering press must count once"


def test_a_bounce_ending_released_is_settled_by_the_poll(rig) -> None:
    factory, chip, clock, engine, panel = rig
    press(factory, 17)
    clock.now += 0.002
    release(factory, 17)          # ignored as a bounce; the pin now reads released
    clock.now += 0.05
    panel.poll()                  # the poll notices and settles the release
    assert panel.buttons["freeze"].pressed is False
    clock.now += 0.05
    click(factory, clock, 17)     # so the next press counts
    assert engine.frozen is False  # pressed twice in all: on, then off


def test_clear_button_empties_the_groove(rig) -> None:
    factory, chip, clock, engine, panel = rig
    engine.handle(mido.Message("note_on", note=60, velocity=100), 0.01)
    assert engine.groove.hits == 1
    click(factory, clock, 27)
    assert engine.groove.hits == 0


def test_resample_tap_is_new_eps_and_hold_is_from_the_prior(rig, monkeypatch) -> None:
    factory, chip, clock, engine, panel = rig
    calls = []
    monkeypatch.setattr(engine, "resample", lambda: calls.append("resample"))
    monkeypatch.setattr(engine, "prior", lambda: calls.append("prior"))
    click(factory, clock, 22)
    assert calls == ["resample"]
    press(factory, 22)
    clock.now += 0.5
    panel.poll()
    assert calls == ["resample"]          # not held long enough yet
    clock.now += 0.6
    panel.poll()
    assert calls == ["resample", "prior"]  # fires while still held
    release(factory, 22)
    clock.now += 0.1
    panel.poll()
    assert calls == ["resample", "prior"]  # and the release adds nothing


def test_tap_button_sets_the_tempo(rig) -> None:
    factory, chip, clock, engine, panel = rig
    for _ in range(4):
        press(factory, 23)
        clock.now += 0.05
        release(factory, 23)
        clock.now += 0.45                  # a tap every 0.5 s = 120 bpm ...
    assert engine.transport.bpm == pytest.approx(120.0)
    for _ in range(4):
        press(factory, 23)
        clock.now += 0.05
        release(factory, 23)
        clock.now += 0.55                  # ... every 0.6 s = 100 bpm
    assert engine.transport.bpm == pytest.approx(100.0, abs=0.5)


def test_scene_buttons_store_and_recall(rig) -> None:
    factory, chip, clock, engine, panel = rig
    engine.handle(mido.Message("note_on", note=60, velocity=100), 0.01)
    click(factory, clock, 25)              # store scene 1
    click(factory, clock, 27)              # clear
    assert engine.groove.hits == 0
    click(factory, clock, 24)              # recall scene 1
    assert engine.groove.hits == 1


@pytest.mark.parametrize("name,channel,field,low,high", [
    ("density", 0, "density", 0.0, 1.0),
    ("variation", 1, "temperature", 0.0, 2.0),
    ("humanise", 3, "humanise", 0.0, 2.0),
])
def test_every_mcp3008_pot_moves_its_control(rig, name, channel, field, low, high) -> None:
    factory, chip, clock, engine, panel = rig
    for fraction in (0.0, 0.25, 1.0):
        chip.set(channel, fraction)
        panel.poll()
        assert getattr(engine.controls, field) == pytest.approx(low + fraction * (high - low), abs=0.01)


def test_tempo_pot_spans_the_tempo_range(rig) -> None:
    factory, chip, clock, engine, panel = rig
    chip.set(2, 0.5)
    panel.poll()
    assert engine.transport.bpm == pytest.approx(120.0, abs=0.2)
    chip.set(2, 1.0)
    panel.poll()
    assert engine.transport.bpm == pytest.approx(180.0, abs=0.2)


def test_pot_noise_is_smoothed_and_ignored(generator) -> None:
    factory = MockFactory()
    chip = MockMCP3008(factory)
    engine = make_engine(generator)
    actions = Actions(engine, engine.transport)
    calls = []
    real = engine.set_controls
    engine.set_controls = lambda **kw: calls.append(kw) or real(**kw)  # type: ignore[method-assign]
    panel = Panel(panel_config(smoothing=0.5, buttons={}), actions, pin_factory=factory, clock=Clock())
    try:
        chip.set(0, 0.5)
        for i in range(20):              # one ADC count of jitter
            chip.set(0, 0.5 + (i % 2) / 1023)
            panel.poll()
        assert len([c for c in calls if "density" in c]) == 0, "jitter must not regenerate"
        chip.set(0, 0.9)
        values = []
        for _ in range(8):
            panel.poll()
            values.append(engine.controls.density)
        assert values[0] < 0.9 and values[-1] == pytest.approx(0.9, abs=0.01)
        assert values == sorted(values), "smoothing glides, it does not jump about"
    finally:
        panel.close()
        chip.close()


def pickup_panel(generator) -> tuple[MockMCP3008, object, Panel]:
    """A panel of pots with pickup on, density standing at 0.5: (the MCP3008, the engine, the panel)."""
    factory = MockFactory()
    chip = MockMCP3008(factory)
    engine = make_engine(generator, controls=Controls(density=0.5))
    panel = Panel(panel_config(pickup=True, buttons={}), Actions(engine, engine.transport),
                  pin_factory=factory, clock=Clock())
    return chip, engine, panel


def test_pickup_waits_for_the_pot_to_reach_the_value(generator) -> None:
    chip, engine, panel = pickup_panel(generator)
    try:
        chip.set(0, 0.1)
        panel.poll()
        assert engine.controls.density == 0.5        # a pot far off does nothing ...
        chip.set(0, 0.3)
        panel.poll()
        assert engine.controls.density == 0.5
        chip.set(0, 0.6)                             # ... until it passes the value
        panel.poll()
        assert engine.controls.density == pytest.approx(0.6, abs=0.01)
        engine.set_controls(density=0.2)             # moved elsewhere (a CC): pick up again
        chip.set(0, 0.7)
        panel.poll()
        assert engine.controls.density == 0.2
    finally:
        panel.close()
        chip.close()


def test_a_pot_that_waits_for_its_value_says_so_when_turned(generator, caplog) -> None:
    """The README promised the log says where a pot waits (a stage tech's review: the density pot
    at 0.2 with density at 0.5 did nothing, and nothing was said). Once per turn, not per poll."""
    chip, engine, panel = pickup_panel(generator)
    try:
        with caplog.at_level("INFO", logger="appliance.io.panel"):
            chip.set(0, 0.2)
            for _ in range(20):
                panel.poll()
        said = [r.getMessage() for r in caplog.records if "knob density" in r.getMessage()]
        assert len(said) == 1 and "density at 20%" in said[0] and "50%" in said[0], said
    finally:
        panel.close()
        chip.close()


def test_a_button_down_at_start_does_nothing_until_it_is_let_go(generator, caplog) -> None:
    """A button held through a restart (or stuck, or a normally-closed switch) toggled a restored
    freeze at the first poll (a stage tech's review). It is taken as down: nothing until it is let
    go and pressed again, and one line says so."""
    from gpiozero.pins.mock import MockPin

    class HeldDown(MockPin):
        def _set_pull(self, value: str) -> None:
            super()._set_pull(value)
            self.drive_low()          # the switch holds the line low against the pull-up

    factory = MockFactory()
    factory.pin(17, pin_class=HeldDown)
    engine = make_engine(generator)
    clock = Clock()
    with caplog.at_level("WARNING", logger="appliance.io.panel"):
        panel = Panel(panel_config(buttons={"freeze": 17, "resample": 22}), Actions(engine, engine.transport),
                      pin_factory=factory, clock=clock)
    try:
        assert "freeze button (GPIO 17) is down at start" in caplog.text
        for _ in range(3):
            clock.now += 0.1
            panel.poll()
        assert engine.frozen is False
        release(factory, 17)
        clock.now += 0.1
        panel.poll()
        assert engine.frozen is False, "letting it go is no press"
        click(factory, clock, 17)
        assert engine.frozen is True, "the next press is"
    finally:
        panel.close()


def test_a_pot_unpicked_from_elsewhere_does_not_see_a_false_crossing(generator) -> None:
    """Picked up by crossing downwards, then a CC/scene moves the value below the resting pot:
    the side seen before the change must not count as a crossing on the next poll."""
    factory = MockFactory()
    chip = MockMCP3008(factory)
    engine = make_engine(generator, controls=Controls(density=0.5))
    panel = Panel(panel_config(pickup=True, buttons={}), Actions(engine, engine.transport),
                  pin_factory=factory, clock=Clock())
    try:
        chip.set(0, 0.9)
        panel.poll()
        assert engine.controls.density == 0.5        # above the value: not picked up
        chip.set(0, 0.4)
        panel.poll()                                 # crossed downwards: picked up
        assert engine.controls.density == pytest.approx(0.4, abs=0.01)
        chip.set(0, 0.9)
        panel.poll()
        assert engine.controls.density == pytest.approx(0.9, abs=0.01)
        engine.set_controls(density=0.2)             # a CC or a scene moves it away
        for _ in range(3):                           # the pot rests where it was
            panel.poll()
            assert engine.controls.density == 0.2
        chip.set(0, 0.21)                            # reaching the new value picks it up again
        panel.poll()
        assert engine.controls.density == pytest.approx(0.21, abs=0.01)
    finally:
        panel.close()
        chip.close()


def test_invert_turns_a_pot_round(generator) -> None:
    factory = MockFactory()
    chip = MockMCP3008(factory)
    engine = make_engine(generator)
    knobs = replace(panel_config().knobs, density=KnobConfig(mcp3008=0, invert=True))
    panel = Panel(panel_config(knobs=knobs, buttons={}), Actions(engine, engine.transport),
                  pin_factory=factory, clock=Clock())
    try:
        chip.set(0, 0.2)
        panel.poll()
        assert engine.controls.density == pytest.approx(0.8, abs=0.01)
    finally:
        panel.close()
        chip.close()


def turn(factory: MockFactory, a: int, b: int, detents: int) -> None:
    """Quadrature at the pins: clockwise is A then B going low, then A then B going high."""
    pa, pb = factory.pin(a), factory.pin(b)
    for _ in range(abs(detents)):
        first, second = (pa, pb) if detents > 0 else (pb, pa)
        first.drive_low()
        second.drive_low()
        first.drive_high()
        second.drive_high()


def test_rotary_encoder_nudges_its_knob(rig) -> None:
    factory, chip, clock, engine, panel = rig
    start = engine.controls.velocity_scale
    turn(factory, 20, 21, +4)
    assert engine.controls.velocity_scale == pytest.approx(start + 4 * 2.0 / 32, abs=1e-3)
    turn(factory, 20, 21, -6)
    assert engine.controls.velocity_scale == pytest.approx(start - 2 * 2.0 / 32, abs=1e-3)


def test_every_knob_can_be_an_encoder(generator) -> None:
    factory = MockFactory()
    engine = make_engine(generator, bpm=120.0)
    pins = {"density": (5, 6), "variation": (12, 13), "tempo": (16, 19), "humanise": (20, 21),
            "velocity_scale": (24, 25)}
    knobs = KnobsConfig(**{k: KnobConfig(encoder=v) for k, v in pins.items()})
    gpio = panel_config(knobs=knobs, buttons={}, leds=LedsConfig(None, None, None))
    panel = Panel(gpio, Actions(engine, engine.transport), pin_factory=factory, clock=Clock())
    try:
        before = engine.controls
        for name, (a, b) in pins.items():
            turn(factory, a, b, +2)
        after = engine.controls
        assert after.density > before.density and after.temperature > before.temperature
        assert after.humanise > before.humanise and after.velocity_scale > before.velocity_scale
        assert engine.transport.bpm == pytest.approx(122.0)
    finally:
        panel.close()


def test_beat_led_every_quarter_accented_at_the_loop_start(rig) -> None:
    factory, chip, clock, engine, panel = rig
    chip.set(2, 0.5)                               # the tempo pot at 120 bpm
    panel.poll(0.0)
    assert engine.transport.bpm == pytest.approx(120.0, abs=0.2)
    led = factory.pin(5)
    step = 60.0 / engine.transport.bpm / 4
    lit = {}
    for i in range(64):                            # two loops, at each 16th's middle
        t = (i + 0.5) * step
        panel.poll(t)
        lit[i] = led.state
    on = [i for i in range(32) if lit[i]]
    assert on == [0, 1, 2, 4, 8, 12, 16, 20, 24, 28], on   # 3 steps at the loop start, 1 a beat
    assert [i - 32 for i in range(32, 64) if lit[i]] == on


def test_activity_led_flickers_on_midi_in(rig) -> None:
    factory, chip, clock, engine, panel = rig
    led = factory.pin(13)
    panel.activity(1.0)
    assert led.state is True
    panel.poll(1.02)
    assert led.state is True
    panel.poll(1.06)
    assert led.state is False


def test_start_builds_the_panel_from_the_config(generator, tmp_path) -> None:
    factory = MockFactory()
    chip = MockMCP3008(factory)
    engine = make_engine(generator)
    config = replace(cfg.Config(), state=replace(cfg.Config().state, dir=str(tmp_path)))
    handle = start(config, engine, engine.transport, pin_factory=factory, threads=False)
    try:
        assert handle.panel is not None
        assert set(handle.panel.buttons) == {"freeze", "clear", "resample", "tap"}
        assert set(handle.panel.knobs) == {"density", "variation", "tempo", "humanise"}
        assert set(handle.panel.leds) == {"beat", "freeze", "activity"}
        # a MIDI message flickers the activity LED through the MIDI map
        handle.handle(mido.Message("note_on", note=60, velocity=90), 0.0)
        assert factory.pin(13).state is True
    finally:
        handle.close()
        chip.close()
    # closing frees every pin: a second panel can take them
    again = start(config, engine, engine.transport, pin_factory=factory, threads=False)
    again.close()


def test_no_gpio_here_leaves_the_box_playing(generator, tmp_path, caplog, monkeypatch) -> None:
    engine = make_engine(generator)
    config = replace(cfg.Config(), state=replace(cfg.Config().state, dir=str(tmp_path)),
                     gpio=replace(cfg.Config().gpio, pin_factory="lgpio"))

    def broken(name: str):
        raise NoPinFactory("no GPIO pin factory (lgpio): No module named 'lgpio'; "
                           "on Raspberry Pi OS: sudo apt install python3-lgpio")
    monkeypatch.setattr("appliance.io.panel.make_pin_factory", broken)
    handle = start(config, engine, engine.transport, threads=False)
    assert handle.panel is None
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "python3-lgpio" in warnings[0] and "MIDI-mapped" in warnings[0]
    handle.close()


def test_make_pin_factory_names() -> None:
    assert isinstance(make_pin_factory("mock"), MockFactory)
    try:
        import lgpio  # noqa: F401
    except ImportError:
        with pytest.raises(NoPinFactory, match="python3-lgpio"):
            make_pin_factory("lgpio")


def test_a_failing_knob_is_logged_once_and_the_rest_goes_on(rig, caplog) -> None:
    factory, chip, clock, engine, panel = rig
    pot = panel.knobs["density"]
    real = pot.read

    def broken() -> float:
        raise OSError("SPI transfer failed")
    pot.read = broken
    chip.set(1, 1.0)
    for _ in range(5):
        panel.poll()
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "density" in errors[0]
    assert engine.controls.temperature == pytest.approx(2.0, abs=0.01)   # the others still read
    pot.read = real
    panel.poll()
    assert any("reads again" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("channel", range(8))
def test_any_of_the_eight_mcp3008_channels_can_carry_a_knob(generator, channel: int) -> None:
    factory = MockFactory()
    chip = MockMCP3008(factory)
    engine = make_engine(generator)
    knobs = KnobsConfig(density=KnobConfig(mcp3008=channel), variation=None, tempo=None,
                        humanise=None, velocity_scale=None)
    panel = Panel(panel_config(knobs=knobs, buttons={}), Actions(engine, engine.transport),
                  pin_factory=factory, clock=Clock())
    try:
        for other in range(8):
            chip.set(other, 0.9)      # every other channel far off ...
        chip.set(channel, 0.3)        # ... only ours says 0.3
        panel.poll()
        assert engine.controls.density == pytest.approx(0.3, abs=0.01)
    finally:
        panel.close()
        chip.close()


def test_sweeping_a_pot_while_playing_keeps_every_hit_on_its_step_once(generator) -> None:
    """Virtual clock: the density pot swept up and down while the engine plays; each new
    pattern comes in at a swap point, so no note is doubled and none is cut off."""
    factory = MockFactory()
    chip = MockMCP3008(factory)
    engine = make_engine(generator, controls=Controls(density=0.5, humanise=0.0))  # on the grid
    knobs = KnobsConfig(density=KnobConfig(mcp3008=0), variation=None, tempo=None,
                        humanise=None, velocity_scale=None)
    clock = Clock()
    panel = Panel(panel_config(knobs=knobs, buttons={}, smoothing=0.3), Actions(engine, engine.transport),
                  pin_factory=factory, clock=clock)
    events = []
    try:
        t = 0.0
        while t < 8.0:
            if int(t / 0.02) != int((t - 0.005) / 0.02):        # the panel's 20 ms poll
                chip.set(0, 0.5 + 0.45 * np.sin(t * 3.0))
                clock.now = t
                panel.poll(t)
            events.extend(engine.tick(t))
            t += 0.005
    finally:
        panel.close()
        chip.close()
    step = 60.0 / engine.transport.bpm / 4
    ons = [e for e in events if e.message.type == "note_on" and e.message.velocity > 0]
    offs = [e for e in events if e.message.type == "note_off" or
            (e.message.type == "note_on" and e.message.velocity == 0)]
    assert engine.stats()["generations"] > 5, "the sweep must have regenerated the pattern"
    assert len(ons) > 20 and abs(len(ons) - len(offs)) <= 9   # every note ends (bar the last few)
    slots = [(e.message.note, round(e.time / step, 6)) for e in ons]
    assert all(float(pos).is_integer() for _, pos in slots), "every hit on a step"
    assert len(slots) == len(set(slots)), "a voice played twice on one step"
    assert [e.time for e in events] == sorted(e.time for e in events)


def test_reconfigure_rebuilds_the_panel_on_the_same_pins(generator, tmp_path) -> None:
    """A reload with a changed gpio: section closes every part and opens them again (no
    pin left reserved; garbage collection switched off to prove it does not help)."""
    gc.disable()
    try:
        factory = MockFactory()
        chip = MockMCP3008(factory)
        engine = make_engine(generator)
        config = replace(cfg.Config(), state=replace(cfg.Config().state, dir=str(tmp_path)))
        handle = start(config, engine, engine.transport, pin_factory=factory, threads=False)
        for hold in (1.5, 2.0, 2.5):
            config = replace(config, gpio=replace(config.gpio, hold_s=hold))
            assert handle.reconfigure(config) == ["gpio"]
            assert handle.panel is not None and handle.panel.hold_s == hold
        click = factory.pin(17)
        click.drive_low()
        assert engine.frozen is True
        handle.close()
        chip.close()
    finally:
        gc.enable()

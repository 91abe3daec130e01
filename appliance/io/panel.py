"""The front panel over gpiozero: buttons, pots (MCP3008 over SPI) or rotary encoders, LEDs.

Everything goes through gpiozero's own classes (Button, RotaryEncoder, MCP3008, LED) on a pin
factory: lgpio on a Pi 4/5 (Debian package python3-lgpio; the venv sees it through
--system-site-packages), then whatever gpiozero finds (RPi.GPIO, pigpio, native).  Where no
factory works (a desktop, a container) the panel is off, one log line says so, and the box
plays on with its MIDI-mapped controls.  Tests use gpiozero's MockFactory.

Buttons (to ground, internal pull-ups):
  - debounced here, against the panel's clock (``gpio.bounce_ms``), the same on every
    pin factory;
  - freeze toggles; clear empties the overdub; resample draws a new z on release, and held
    for ``gpio.hold_s`` plays from the prior instead (fires as soon as the hold is reached);
  - tap is tap tempo (a fourth button; two taps or more set the internal clock);
  - any action of :data:`appliance.core.actions.ACTIONS` can have a button (scenes too).
Knobs: a pot on an MCP3008 channel (read every ``gpio.knob_poll_ms``, smoothed, with
pickup so nothing jumps after a restore) or a rotary encoder (detents nudge the value).
LEDs: beat (each quarter; held longer at the loop start), freeze (lit while frozen),
activity (flickers on MIDI in; :meth:`Panel.activity`).
"""
from __future__ import annotations

from importlib.metadata import entry_points
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol
import warnings

from appliance.core.actions import DEADBAND, KNOBS, Actions
from appliance.core.clock import RateLimitedLog
from appliance.core.engine import Engine
from appliance.core.transport import Transport
from appliance.core.groove import STEPS, STEPS_PER_BEAT
from appliance.io.pickup import Pickup

if TYPE_CHECKING:
    from gpiozero import Factory

log = logging.getLogger(__name__)

BEAT_FLASH_STEPS = 1.0      #: a beat LED flash lasts one 16th ...
ACCENT_FLASH_STEPS = 3.0    #: ... and three at the loop start
ACTIVITY_FLASH_S = 0.05
PICKUP_SAID_S = 5.0         #: a pot turned while it waits for its value says so at most this often


class KnobSettings(Protocol):
    """One knob: a pot on an MCP3008 channel, or a rotary encoder on two pins."""

    @property
    def mcp3008(self) -> int | None: ...
    @property
    def encoder(self) -> tuple[int, ...] | None: ...
    @property
    def invert(self) -> bool: ...


class PanelSettings(Protocol):
    """What the panel reads of its settings (``appliance.box.config.GpioConfig``, the
    ``gpio:`` section): ``knobs`` has a :class:`KnobSettings` or None for each name in
    :data:`~appliance.core.actions.KNOBS`, ``leds`` a pin or None for beat, freeze, activity."""

    @property
    def pin_factory(self) -> str: ...
    @property
    def buttons(self) -> Mapping[str, int]: ...
    @property
    def hold_s(self) -> float: ...
    @property
    def bounce_ms(self) -> float: ...
    @property
    def knobs(self) -> Any: ...
    @property
    def leds(self) -> Any: ...
    @property
    def spi_port(self) -> int: ...
    @property
    def spi_device(self) -> int: ...
    @property
    def knob_poll_ms(self) -> float: ...
    @property
    def smoothing(self) -> float: ...
    @property
    def pickup(self) -> bool: ...


class NoPinFactory(RuntimeError):
    """No GPIO here; the message says why and what to install."""


def make_pin_factory(name: str) -> "Factory":
    """A gpiozero pin factory for ``gpio.pin_factory`` (None = gpiozero's own choice)."""
    with warnings.catch_warnings():   # gpiozero warns once per factory it falls back from
        warnings.simplefilter("ignore")
        return _make_pin_factory(name)


def _make_pin_factory(name: str) -> "Factory":
    from gpiozero import Device
    try:
        if name == "auto":
            # gpiozero's own choice, in its own order (and $GPIOZERO_PIN_FACTORY if set)
            Device.ensure_pin_factory()
            return Device.pin_factory
        # gpiozero's registry of factories by name (what $GPIOZERO_PIN_FACTORY names)
        for entry in entry_points(group="gpiozero_pin_factories"):
            if entry.name == name:
                return entry.load()()
        raise LookupError(f"gpiozero knows no pin factory {name!r}")
    except Exception as e:   # ImportError, BadPinFactory, OSError from /dev/gpiochip*
        hint = ("on Raspberry Pi OS: sudo apt install python3-lgpio" if name in ("auto", "lgpio")
                else f"is the {name} library installed?")
        raise NoPinFactory(f"no GPIO pin factory ({name}): {e}; {hint}") from e


class _PanelButton:
    """A gpiozero Button plus debouncing and press/hold/release logic on the panel's clock."""

    def __init__(self, action: str, pin: int, panel: "Panel", factory: "Factory") -> None:
        from gpiozero import Button
        self.action = action
        self.panel = panel
        self.button = Button(pin, pull_up=True, bounce_time=None, pin_factory=factory)
        # down already at start (held through a restart, stuck, a normally-closed switch): taken as
        # down, so it does nothing until it is let go and pressed again (it toggled a restored freeze)
        self.pressed = bool(self.button.is_pressed)
        self.pressed_at = 0.0
        self.last_edge = -1e9
        self.held_fired = self.pressed
        if self.pressed:
            log.warning("gpio: the %s button (GPIO %d) is down at start: nothing until it is let go "
                        "(held through the restart, or a stuck or normally-closed switch?)", action, pin)
        self.button.when_pressed = self._edge
        self.button.when_released = self._edge

    def _edge(self, *_: Any) -> None:
        self.reconcile(self.panel.clock())

    def reconcile(self, now: float) -> None:
        """Bring the debounced state in line with the pin, unless it is still bouncing."""
        with self.panel.lock:
            level = bool(self.button.is_pressed)
            if level == self.pressed or now - self.last_edge < self.panel.bounce_s:
                return
            self.last_edge = now
            self.pressed = level
            if level:
                self.pressed_at = now
                self.held_fired = False
                if self.action != "resample":
                    self.panel.fire(self.action)
            elif self.action == "resample" and not self.held_fired:
                self.panel.fire("resample")

    def poll(self, now: float) -> None:
        self.reconcile(now)
        if (self.action == "resample" and self.pressed and not self.held_fired
                and now - self.pressed_at >= self.panel.hold_s):
            self.held_fired = True
            self.panel.fire("prior")

    def close(self) -> None:
        self.button.close()


class _Pot:
    """A pot on one MCP3008 channel: smoothed, with a deadband and pickup."""

    def __init__(self, name: str, channel: int, invert: bool, panel: "Panel", factory: "Factory",
                 port: int, device: int) -> None:
        from gpiozero import MCP3008
        self.name = name
        self.panel = panel
        self.invert = invert
        self.adc = MCP3008(channel=channel, port=port, device=device, pin_factory=factory)
        self.smoothed: float | None = None
        self.pickup = Pickup(panel.config.pickup)
        self.waits_at: float | None = None   # where it was when it last said it waits

    def read(self) -> float:
        value = float(self.adc.value)
        return 1.0 - value if self.invert else value

    def poll(self, now: float) -> None:
        raw = self.read()
        alpha = 1.0 - self.panel.config.smoothing
        self.smoothed = raw if self.smoothed is None else self.smoothed + alpha * (raw - self.smoothed)
        position = self.smoothed
        pickup = self.pickup
        current = self.panel.actions.knob_value(self.name)
        if not pickup.takes(position, current):
            if self.waits_at is None or abs(position - self.waits_at) >= DEADBAND:   # turned, not taken
                self.waits_at = position
                self.panel.news.note(f"pickup {self.name}", logging.INFO,
                                     "gpio: knob %s at %d%% waits until it reaches %d%%, where %s stands "
                                     "(soft takeover: gpio.pickup)", self.name, round(position * 100),
                                     round(current * 100), self.name)
                self.panel.news.flush()
            return
        self.waits_at = None
        if pickup.sent is None or abs(position - pickup.sent) >= DEADBAND:
            self.panel.actions.knob(self.name, position)
            pickup.sent = self.panel.actions.knob_value(self.name)

    def close(self) -> None:
        self.adc.close()


class _Encoder:
    """A rotary encoder: each detent nudges the knob."""

    def __init__(self, name: str, pins: tuple[int, ...], invert: bool, panel: "Panel",
                 factory: "Factory") -> None:
        from gpiozero import RotaryEncoder
        self.name = name
        self.panel = panel
        sign = -1 if invert else 1
        self.encoder = RotaryEncoder(pins[0], pins[1], max_steps=0, pin_factory=factory)
        self.encoder.when_rotated_clockwise = lambda: panel.nudge(name, sign)
        self.encoder.when_rotated_counter_clockwise = lambda: panel.nudge(name, -sign)

    def poll(self, now: float) -> None:
        pass

    def close(self) -> None:
        self.encoder.close()


class Panel:
    """Buttons, knobs and LEDs built from ``config.gpio``; :meth:`poll` reads pots and drives
    LEDs (a thread calls it every ``knob_poll_ms`` once :meth:`start` is called)."""

    def __init__(self, config: PanelSettings, actions: Actions, engine: Engine | None = None,
                 transport: Transport | None = None, pin_factory: "Factory | None" = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        from gpiozero import LED
        self.config = config
        self.actions = actions
        self.engine = engine if engine is not None else actions.engine
        self.transport = transport if transport is not None else actions.transport
        self.clock = clock
        self.lock = threading.RLock()
        self.news = RateLimitedLog(log, every_s=PICKUP_SAID_S, clock=clock)   # a pot's wait, said when turned
        self.bounce_s = config.bounce_ms / 1000.0
        self.hold_s = config.hold_s
        factory = pin_factory if pin_factory is not None else make_pin_factory(config.pin_factory)
        self.factory = factory
        from gpiozero import Device
        if Device.pin_factory is None:
            # gpiozero's software SPI bus (used when spidev is absent, and by MockFactory)
            # asks for the global default factory even when handed one
            Device.pin_factory = factory
        self.buttons: dict[str, _PanelButton] = {}
        self.knobs: dict[str, _Pot | _Encoder] = {}
        self.leds: dict[str, Any] = {}
        self._activity_until = -1e9
        self._failing: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            for action, pin in config.buttons.items():
                self.buttons[action] = _PanelButton(action, pin, self, factory)
            for name in KNOBS:
                knob = getattr(config.knobs, name)
                if knob is None:
                    continue
                if knob.encoder is not None:
                    self.knobs[name] = _Encoder(name, knob.encoder, knob.invert, self, factory)
                else:
                    self.knobs[name] = _Pot(name, knob.mcp3008, knob.invert, self, factory,
                                            config.spi_port, config.spi_device)
            for name in ("beat", "freeze", "activity"):
                pin = getattr(config.leds, name)
                if pin is not None:
                    self.leds[name] = LED(pin, pin_factory=factory)
        except Exception:
            self.close()
            raise
        log.info("gpio: %d buttons, %d knobs, %d LEDs", len(self.buttons), len(self.knobs),
                 len(self.leds))

    # -- what the parts call

    def fire(self, action: str) -> None:
        try:
            self.actions.do(action)
        except Exception:
            log.exception("gpio: %s failed", action)

    def nudge(self, name: str, detents: int) -> None:
        try:
            self.actions.nudge(name, detents)
        except Exception:
            log.exception("gpio: knob %s failed", name)

    def activity(self, now: float | None = None) -> None:
        """A MIDI message came in: flicker the activity LED."""
        now = self.clock() if now is None else now
        self._activity_until = now + ACTIVITY_FLASH_S
        led = self.leds.get("activity")
        if led is not None:
            led.on()

    # -- the poll

    def poll(self, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        for button in list(self.buttons.values()):
            button.poll(now)
        for knob in list(self.knobs.values()):
            try:
                knob.poll(now)
            except Exception as e:
                if knob.name not in self._failing:   # once, not every poll
                    self._failing.add(knob.name)
                    log.error("gpio: reading knob %s failed: %s (the knob is ignored until "
                              "it reads again)", knob.name, e)
            else:
                if knob.name in self._failing:
                    self._failing.discard(knob.name)
                    log.info("gpio: knob %s reads again", knob.name)
        self._drive_leds(now)

    def beat_lit(self, now: float) -> bool:
        if not self.transport.running:
            return False
        position = float(self.transport.position(now))
        in_beat = position % STEPS_PER_BEAT
        loop_start = position % STEPS < STEPS_PER_BEAT
        return in_beat < (ACCENT_FLASH_STEPS if loop_start else BEAT_FLASH_STEPS)

    def _drive_leds(self, now: float) -> None:
        beat = self.leds.get("beat")
        if beat is not None:
            beat.value = self.beat_lit(now)
        freeze = self.leds.get("freeze")
        if freeze is not None:
            freeze.value = bool(self.engine.frozen)
        activity = self.leds.get("activity")
        if activity is not None and now >= self._activity_until and activity.is_lit:
            activity.off()

    # -- life

    def start(self) -> "Panel":
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="groovebox-panel", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        period = self.config.knob_poll_ms / 1000.0
        while not self._stop.wait(period):
            try:
                self.poll()
            except Exception:
                log.exception("gpio: poll failed")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        self._thread = None
        for led in self.leds.values():
            try:
                led.off()
            except Exception:
                pass
        for part in [*self.buttons.values(), *self.knobs.values(), *self.leds.values()]:
            try:
                part.close()
            except Exception:
                pass
        self.buttons.clear()
        self.knobs.clear()
        self.leds.clear()

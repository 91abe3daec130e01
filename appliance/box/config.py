"""The box's one YAML file, as a tree of frozen dataclasses with a default for every key.

    config = appliance.box.config.load("/etc/groovebox/config.yaml")   # raises ConfigError
    config.player.channel                                           # 10
    engine = Engine(generator, transport, settings=config.engine_settings(),
                    controls=config.controls())

Errors name the file, the line, the key and what is allowed, one problem a line::

    config.yaml:14 player.channel: 17 is not in 1..16
    config.yaml:3 player.chanel: unknown key; did you mean 'channel'?
    config.yaml:7: bad YAML: mapping values are not allowed here (column 9)

``groovebox config check FILE`` is :func:`check_main`; examples/config.yaml documents every
key with its default (a test loads it and compares it with ``Config()``).

Relative paths in the file (``model.dir``, ``state.dir``, ``control.socket``) are taken
relative to the directory that holds the config file.

A file that loads is also one the core accepts: :func:`loads` builds ``engine_settings()``
and ``controls()`` and turns anything they refuse into one problem line at the key that feeds
it, so a config that passes ``config check`` never fails when the service starts.

What the service calls:
  - at start: ``config, problems = load_with_fallback(path)``: a broken file never stops
    the box; it runs the last config that loaded (kept as ``config.last-good.yaml``: :func:`last_good_dir`)
    or the defaults, and one error line says what to fix. When the file is good,
    ``load_with_fallback`` has already called ``save_last_good`` for it;
  - on SIGHUP: ``appliance.box.reload.reload_file(path, engine, transport, controls=...)``
    (refuses a broken file, keeps the old config, updates the last-good copy), or
    ``load`` + ``appliance.box.reload.apply_config`` and then ``save_last_good(config)``.

``save_last_good(config)`` usage notes:
  - call it only after a config has been *applied* successfully (after start-up with it,
    or after a reload that went through), never for a file that was refused: the copy is
    what the next start falls back to;
  - it writes ``config.source_text`` (the file exactly as loaded, comments and all)
    atomically to ``config.last-good.yaml`` in ``$STATE_DIRECTORY`` when that is set, else in
    ``config.state.dir`` (:func:`last_good_dir`); a config built in code (no ``source_text``)
    is not kept (returns None);
  - it never raises: an unwritable ``state.dir`` is one warning line and None; an unchanged
    copy is not rewritten (no flash wear on every SIGHUP);
  - ``load_with_fallback(path)`` reads the copy back from the same place, with the *default*
    ``state.dir`` standing in for the file's when ``$STATE_DIRECTORY`` is not set (a broken
    file cannot say where its state is).
"""
from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
import argparse
import difflib
import logging
import os
import re
import stat
from decimal import Decimal
from pathlib import Path
import sys
import types
import typing
from typing import Any, Callable, Union

import yaml

from appliance.core import drummaps, styles
from appliance.core.dynamics import DYNAMICS, MF_VELOCITY
from appliance.core.actions import ACTIONS, KNOBS
from appliance.core.engine import EngineSettings
from appliance.core.generator import Controls
from appliance.core.start import StartSettings
from appliance.io.files import atomic_write
from appliance.core.groove import NUM_VOICES, VOICES
from appliance.core.model_files import MODEL_FILES
from appliance.core.transport import MAX_BPM, MIN_BPM

log = logging.getLogger(__name__)

#: the least look-ahead the box plays (player.lookahead_ms under it is raised to it): the player
#: thread's turn (appliance/box/player_thread.py TICK_S); with less, a fault hunt's 1 ms sent
#: notes up to 9 ms late (p99), while 10 ms and more send them on time
LOOKAHEAD_FLOOR_MS = 10.0

PIN_FACTORIES = ("auto", "lgpio", "rpigpio", "pigpio", "native", "mock")
#: BCM GPIO numbers the 40-pin header offers.
PINS = (2, 27)
SPI0_PINS = {7: "SPI CE1", 8: "SPI CE0", 9: "SPI MISO", 10: "SPI MOSI", 11: "SPI SCLK"}
UART_PINS = {14: "UART TX", 15: "UART RX"}


MAX_FILE = 1 << 20      #: a config is a few KiB; a file past this is refused before parsing
MAX_EVENTS = 8000       #: YAML events (keys, values, brackets) in a file: examples/config.yaml has 234
MAX_ITEMS = 64          #: items in any list or mapping unless a key says otherwise
MAX_TEXT = 1024         #: characters in any text value unless a key says otherwise
MAX_PROBLEMS = 20       #: problems reported one a line; the rest are counted
#: JACK client names are at most 63 bytes and ALSA's 63; the box adds port names after a
#: colon, so a client name is short and has no colon
CLIENT_NAME_MAX = 32


def opt(default: Any = MISSING, *, range: tuple[float, float] | None = None,
        choices: tuple[str, ...] | None = None, doc: str = "",
        key_range: tuple[int, int] | None = None, key_choices: tuple[str, ...] | None = None,
        length: int | None = None, factory: Callable[[], Any] | None = None,
        normalise: Callable[[str], str] | None = None, above: bool = False,
        max_items: int = MAX_ITEMS, max_text: int = MAX_TEXT) -> Any:
    """A config key: its default and what is allowed (checked by :func:`load`).
    ``above``: the low end of ``range`` itself is not allowed (``(0, 1]``).
    ``max_items`` bounds a list or mapping, ``max_text`` each text value."""
    meta = dict(range=range, choices=choices, doc=doc, key_range=key_range,
                key_choices=key_choices, length=length, normalise=normalise, above=above,
                max_items=max_items, max_text=max_text)
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


# --------------------------------------------------------------------------- the schema

@dataclass(frozen=True)
class ModelConfig:
    dir: str = opt("/opt/groovebox/models/groove-vae",
                   doc="model directory (encoder/decoder .onnx, their .int8 versions, model.json)")
    precision: str = opt("int8", choices=("int8", "fp32"))
    seed: int | None = opt(None, range=(0, 2**32 - 1), doc="null = a new z every start")


@dataclass(frozen=True)
class GeneratorConfig:
    density: float = opt(0.5, range=(0.0, 1.0))
    variation: float = opt(1.0, range=(0.0, 2.0), doc="the sampling temperature")
    velocity_scale: float = opt(1.0, range=(0.0, 2.0))
    humanise: float = opt(1.0, range=(0.0, 2.0))
    max_hits_per_voice: int = opt(32, range=(0, 32))
    thresholds: tuple[float, ...] | None = opt(None, range=(0.01, 0.99), length=NUM_VOICES)
    style: str = opt(styles.NONE, choices=styles.NAMES, doc="a style's nudge of the drummer (appliance.core.styles)")
    style_amount: float = opt(1.0, range=(0.0, styles.MAX_AMOUNT))


@dataclass(frozen=True)
class TempoConfig:
    bpm: float = opt(120.0, range=(MIN_BPM, MAX_BPM))
    clock: str = opt("internal", choices=("internal", "external", "auto"))
    send_clock: bool = opt(False)


@dataclass(frozen=True)
class StartConfig:
    """How the box starts playing (see appliance/core/start.py)."""

    mode: str = opt("first-note", choices=("first-note", "count-in", "now"),
                    doc="first-note = silent until the keyboard plays, that note is beat one; "
                        "count-in = N quarter notes set the tempo, the loop starts on the next "
                        "bar; now = play from the moment the box is up")
    count_in_notes: tuple[int, ...] = opt(factory=tuple, range=(0, 127),
                                          doc="keys/pads that count in; empty = any key")
    count_in_beats: int = opt(4, range=(2, 8))


@dataclass(frozen=True)
class LoopConfig:
    forget_passes: int = opt(4, range=(0, 64),
                             doc="passes without a step until it is forgotten; 0 = never")
    forget_once: int = opt(1, range=(0, 64),
                           doc="passes until a step played in one pass only is forgotten; 0 = like any other")
    section_change: float = opt(0.3, range=(0.0, 1.0),
                                doc="a pass sharing less than this with the groove starts a new section; 0 = off")
    rest_thin: float = opt(0.25, range=(0.0, 1.0), doc="density taken off per bar of rest (no note, no key held, a steady step of the groove left out)")
    end_after_bars: int = opt(8, range=(0, 64),
                              doc="bars of rest after which the song ends: the drums stop and wait for the next song; 0 = never")
    drift: float = opt(0.2, range=(0.0, 1.0), doc="how far the variation wanders each pass")
    crash_every: int = opt(8, range=(0, 64),
                           doc="bars between crashes besides the start, a new section, a return, each after a big fill (12: a blues chorus); 0 = as the model plays them")
    fill_every: int = opt(4, range=(0, 64),
                          doc="a pickup fill ends every phrase this long, the big fill every crash_every bars (every second phrase without it); 0 = as the model plays them")
    stop_time: bool = opt(True, doc="from the second short hit on a bar's 1 in a row with nothing else in the bar, the drums play the hits with you and lay out between them")
    hear_eighths: bool = opt(True, doc="busy sixteenths (arpeggios, an ostinato: at one level or one figure every beat) are heard accented on the eighths")
    dynamics: float = opt(DYNAMICS, range=(0.0, 1.0),
                          doc="the drums' level follows yours as (yours / mf_velocity) ** this below it; 0 = one level")
    mf_velocity: int = opt(MF_VELOCITY, range=(1, 127),
                           doc="the velocity you play mezzo-forte at: from there up the drums play their full level")
    swap_at: str = opt("beat", choices=("step", "beat", "bar"),
                        doc="where a new pattern may start: the next beat, bar line or 16th step")
    input_channel: int = opt(0, range=(0, 16), doc="0 = every channel")
    split_note: int = opt(55, range=(0, 128), doc="notes below this one are the left hand's: a model that hears the groove's register reads where they land (the shipped model does not yet; 55 = the G below middle C, where keyboards split; 0 = no left hand)")


@dataclass(frozen=True)
class PlayerConfig:
    lookahead_ms: float = opt(50.0, range=(1.0, 500.0), doc="how far ahead notes are scheduled, in milliseconds (the box plays at least 10, the player thread's turn: less sent notes up to 9 ms late)")
    gate_steps: float = opt(0.5, range=(0.0, 1.0), above=True,
                            doc="note length in steps, more than 0 and at most 1")
    channel: int = opt(10, range=(1, 16))
    drum_map: str = opt("gm", choices=tuple(drummaps.names()), normalise=drummaps.canonical)
    notes: dict[str, int] = opt(factory=dict, range=(0, 127), key_choices=VOICES)


@dataclass(frozen=True)
class MidiConfig:
    api: str = opt("alsa", choices=("alsa", "jack"))
    client_name: str = opt("groovebox", max_text=CLIENT_NAME_MAX,
                           doc="the MIDI client's name: 1..32 characters, no colon")
    inputs: tuple[str, ...] = opt(factory=tuple, doc="port name patterns; empty = every input",
                                  max_items=32, max_text=256)
    outputs: tuple[str, ...] = opt(factory=tuple, doc="port name patterns; empty = every output",
                                   max_items=32, max_text=256)
    virtual: bool = opt(False)


@dataclass(frozen=True)
class DinConfig:
    enabled: bool = opt(False)
    device: str = opt("/dev/ttyAMA0")
    baud: int = opt(38400, range=(1200, 4000000))
    input: bool = opt(True)
    output: bool = opt(True)


@dataclass(frozen=True)
class KnobConfig:
    """One knob: a pot on an MCP3008 channel, or a rotary encoder on two pins."""

    mcp3008: int | None = opt(None, range=(0, 7))
    encoder: tuple[int, ...] | None = opt(None, range=PINS, length=2)
    invert: bool = opt(False, doc="turn the direction round")


@dataclass(frozen=True)
class KnobsConfig:
    density: KnobConfig | None = opt(factory=lambda: KnobConfig(mcp3008=0))
    variation: KnobConfig | None = opt(factory=lambda: KnobConfig(mcp3008=1))
    tempo: KnobConfig | None = opt(factory=lambda: KnobConfig(mcp3008=2))
    humanise: KnobConfig | None = opt(factory=lambda: KnobConfig(mcp3008=3))
    velocity_scale: KnobConfig | None = opt(None)

    @classmethod
    def none(cls) -> "KnobsConfig":
        """``knobs: null`` (or an empty ``knobs:``): no knobs at all."""
        return cls(**{name: None for name in KNOBS})


@dataclass(frozen=True)
class LedsConfig:
    beat: int | None = opt(5, range=PINS)
    freeze: int | None = opt(6, range=PINS)
    activity: int | None = opt(13, range=PINS)

    @classmethod
    def none(cls) -> "LedsConfig":
        """``leds: null`` (or an empty ``leds:``): no LEDs at all."""
        return cls(beat=None, freeze=None, activity=None)


@dataclass(frozen=True)
class GpioConfig:
    enabled: bool = opt(True)
    pin_factory: str = opt("auto", choices=PIN_FACTORIES)
    buttons: dict[str, int] = opt(
        factory=lambda: {"freeze": 17, "clear": 27, "resample": 22, "tap": 23},
        range=PINS, key_choices=ACTIONS)
    hold_s: float = opt(1.0, range=(0.2, 5.0), doc="resample held this long plays from the prior")
    bounce_ms: float = opt(20.0, range=(0.0, 200.0))
    knobs: KnobsConfig = opt(factory=KnobsConfig)
    spi_port: int = opt(0, range=(0, 0), doc="SPI0 on GPIO7..11: the boot config and the udev "
                                               "rule set up spidev0.0 and spidev0.1 only")
    spi_device: int = opt(0, range=(0, 1), doc="chip select: 0 = CE0 (GPIO8), 1 = CE1 (GPIO7)")
    knob_poll_ms: float = opt(20.0, range=(5.0, 500.0))
    smoothing: float = opt(0.3, range=(0.0, 0.95), doc="0 = raw; higher = smoother, slower")
    pickup: bool = opt(True, doc="a pot takes over only once it reaches the current value")
    tempo_range: tuple[float, ...] = opt(factory=lambda: (60.0, 180.0), range=(MIN_BPM, MAX_BPM),
                                         length=2)
    leds: LedsConfig = opt(factory=LedsConfig)


@dataclass(frozen=True)
class MidiMapConfig:
    channel: int = opt(0, range=(0, 16), doc="0 = a mapped CC/note counts on any channel")
    cc: dict[int, str] = opt(factory=dict, key_range=(0, 127), choices=ACTIONS + KNOBS,
                             max_items=128)
    notes: dict[int, str] = opt(factory=dict, key_range=(0, 127), choices=ACTIONS, max_items=128)
    learn_timeout_s: float = opt(30.0, range=(1.0, 600.0))
    pickup: bool = opt(True, doc="a knob's CC takes over only once it reaches the value it controls")


@dataclass(frozen=True)
class StateConfig:
    dir: str = opt("/var/lib/groovebox")
    save_every_s: float = opt(5.0, range=(1.0, 3600.0))
    scenes: int = opt(4, range=(0, 8))


@dataclass(frozen=True)
class ControlConfig:
    socket: str | None = opt(None, doc="null = the service's default (/run/groovebox/control.sock)")


@dataclass(frozen=True)
class Config:
    model: ModelConfig = opt(factory=ModelConfig)
    generator: GeneratorConfig = opt(factory=GeneratorConfig)
    tempo: TempoConfig = opt(factory=TempoConfig)
    start: StartConfig = opt(factory=StartConfig)
    loop: LoopConfig = opt(factory=LoopConfig)
    player: PlayerConfig = opt(factory=PlayerConfig)
    midi: MidiConfig = opt(factory=MidiConfig)
    din: DinConfig = opt(factory=DinConfig)
    gpio: GpioConfig = opt(factory=GpioConfig)
    midi_map: MidiMapConfig = opt(factory=MidiMapConfig)
    state: StateConfig = opt(factory=StateConfig)
    control: ControlConfig = opt(factory=ControlConfig)
    log_level: str = opt("info", choices=("debug", "info", "warning", "error"))
    source: str | None = field(default=None, compare=False, repr=False)  #: file it came from
    source_text: str | None = field(default=None, compare=False, repr=False)  #: and its text

    # --- the mapping onto the core, so the service does not repeat it

    def drum_notes(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(notes, channels), 9 each, from the drum map, ``player.notes`` and ``player.channel``."""
        return drummaps.resolve(self.player.drum_map, self.player.notes, self.player.channel)

    def engine_settings(self) -> EngineSettings:
        """The engine's settings for this config."""
        notes, channels = self.drum_notes()
        return EngineSettings(
            swap_at=self.loop.swap_at, lookahead=max(self.player.lookahead_ms, LOOKAHEAD_FLOOR_MS) / 1000.0,
            gate=self.player.gate_steps, notes=notes, channels=channels,
            pedal_hat=drummaps.pedal_hat(self.player.drum_map),
            input_channel=self.loop.input_channel or None, split_note=self.loop.split_note,
            forget_passes=self.loop.forget_passes, forget_once=self.loop.forget_once,
            section_change=self.loop.section_change,
            rest_thin=self.loop.rest_thin, drift=self.loop.drift, crash_every=self.loop.crash_every,
            fill_every=self.loop.fill_every, hear_eighths=self.loop.hear_eighths, dynamics=self.loop.dynamics,
            mf_velocity=self.loop.mf_velocity, end_after_bars=self.loop.end_after_bars,
            stop_time=self.loop.stop_time)

    def start_settings(self) -> StartSettings:
        """The core's start behaviour; an external clock starts the box itself."""
        mode = "now" if self.tempo.clock == "external" else self.start.mode
        return StartSettings(mode=mode, count_in_notes=tuple(self.start.count_in_notes),
                             count_in_beats=self.start.count_in_beats)

    def controls(self) -> Controls:
        """The generator's controls for this config (variation → temperature)."""
        return Controls(**self.controls_dict())

    def controls_dict(self) -> dict[str, Any]:
        g = self.generator
        return dict(density=g.density, temperature=g.variation, velocity_scale=g.velocity_scale,
                    humanise=g.humanise, max_hits_per_voice=g.max_hits_per_voice,
                    thresholds=None if g.thresholds is None else tuple(g.thresholds),
                    style=g.style, style_amount=g.style_amount)


# --------------------------------------------------------------------------- errors

class ConfigError(Exception):
    """A config file that cannot be used. ``problems`` holds one line per mistake."""

    def __init__(self, problems: list[str]) -> None:
        problems = [p if len(p) <= 300 else p[:297] + "..." for p in problems]
        self.count = len(problems)     #: every problem found, told or not
        if len(problems) > MAX_PROBLEMS:
            problems = problems[:MAX_PROBLEMS] + [
                f"... and {len(problems) - MAX_PROBLEMS} more problems like these"]
        self.problems = problems
        super().__init__("\n".join(self.problems))


def _exponent(text: str) -> str:
    """A number in exponent form YAML 1.1 takes for text (``1e9``, ``2E-3``), written out; else ''."""
    if not re.fullmatch(r"[-+]?\d+(\.\d*)?[eE][-+]?\d+", text.strip()):
        return ""
    written = f"{Decimal(text.strip()):f}"
    return written.rstrip("0").rstrip(".") if "." in written else written


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a yes/no)"
    if isinstance(value, (int, float)):
        return f"{value} (a number)"
    if isinstance(value, str):
        return f"'{value if len(value) <= 40 else value[:37] + '...'}' (text)"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return repr(value)


def _fmt_num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _close(word: str, allowed: typing.Iterable[str]) -> str:
    allowed = [str(a) for a in allowed]
    close = difflib.get_close_matches(str(word), allowed, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else f" (allowed: {', '.join(allowed)})"


# --------------------------------------------------------------------------- the loader

class _Builder:
    """Walks the composed YAML nodes along the dataclasses, collecting problems."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.problems: list[str] = []
        self.lines: dict[str, int] = {}
        self._loader = yaml.SafeLoader("")
        self.checks = _Checks(self)

    def where(self, node: yaml.Node | None, path: str) -> str:
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        return f"{self.filename}{line} {path}"

    def problem(self, node: yaml.Node | None, path: str, text: str) -> None:
        self.problems.append(f"{self.where(node, path)}: {text}")

    def problem_at(self, path: str, text: str) -> None:
        """A problem found after building: the line of ``path`` or of its nearest parent."""
        probe = path
        while probe and probe not in self.lines:
            probe = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", probe)
        line = f":{self.lines[probe]}" if probe in self.lines else ""
        self.problems.append(f"{self.filename}{line} {path}: {text}")

    def scalar(self, node: yaml.Node) -> Any:
        return self._loader.construct_object(node, deep=True)

    # -- dataclasses

    def build(self, cls: type, node: yaml.Node | None, path: str) -> Any:
        if node is None or (isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")):
            return cls()
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, path or "(top)",
                         f"expected a mapping of keys ({', '.join(f.name for f in _fields(cls))}), "
                         f"got {_describe(self.scalar(node)) if isinstance(node, yaml.ScalarNode) else 'a list'}")
            return cls()
        hints = typing.get_type_hints(cls)
        known = {f.name: f for f in _fields(cls)}
        values: dict[str, Any] = {}
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = self.scalar(key_node)
            key_path = f"{path}.{key}" if path else str(key)
            if not isinstance(key, str) or key not in known:
                home = [name for name in known   # a section's key at the top: its indent lost
                        if isinstance(key, str) and is_dataclass(hints[name])
                        and key in {g.name for g in _fields(hints[name])}]
                self.problem(key_node, key_path, "unknown key" + (
                    "; did you mean " + " or ".join(f"{name}.{key}" for name in home)
                    + f"? (indent it under {' or '.join(name + ':' for name in home)})" if home
                    else _close(str(key), known)))
                continue
            if key in seen:
                self.problem(key_node, key_path, "appears twice; keep one")
                continue
            seen.add(key)
            self.lines[key_path] = key_node.start_mark.line + 1
            f = known[key]
            values[key] = self.value(hints[key], f.metadata, value_node, key_path,
                                     default=_default(f))
        obj = cls(**values)
        self.checks.run(obj, node, path)
        return obj

    # -- one value of a given type

    def value(self, tp: Any, meta: typing.Mapping[str, Any], node: yaml.Node, path: str,
              default: Any) -> Any:
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin in (Union, types.UnionType) and type(None) in args:
            inner = next(a for a in args if a is not type(None))
            if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
                return None
            if is_dataclass(inner):
                return self.build(typing.cast(type, inner), node, path)
            return self.value(inner, meta, node, path, default)
        if is_dataclass(tp):
            if (hasattr(tp, "none") and isinstance(node, yaml.ScalarNode)
                    and node.tag.endswith(":null")):
                return tp.none()   # `leds: null` means no LEDs, not the defaults
            return self.build(typing.cast(type, tp), node, path)
        if origin is tuple:
            return self.sequence(args[0], meta, node, path, default)
        if origin is dict:
            return self.mapping(args[0], args[1], meta, node, path, default)
        if not isinstance(node, yaml.ScalarNode):
            self.problem(node, path, f"expected {_kind(tp)}, got a {'list' if isinstance(node, yaml.SequenceNode) else 'mapping'}")
            return default
        return self.atom(tp, meta, self.scalar(node), node, path, default)

    def atom(self, tp: Any, meta: typing.Mapping[str, Any], raw: Any, node: yaml.Node,
             path: str, default: Any) -> Any:
        ok = (isinstance(raw, tp) and not (tp is not bool and isinstance(raw, bool))) or (
            tp is float and isinstance(raw, int) and not isinstance(raw, bool))
        if not ok:
            hint = ""
            if tp is bool and isinstance(raw, str):
                hint = "; write true or false"
            elif tp in (int, float) and isinstance(raw, str) and _exponent(raw):
                hint = f"; YAML reads {raw} as text: write it out ({_exponent(raw)})"
            elif tp in (int, float) and isinstance(raw, str):
                hint = "; write a plain number without quotes or units"
            elif tp is int and isinstance(raw, float):
                hint = "; a whole number is needed"
            self.problem(node, path, f"expected {_kind(tp)}, got {_describe(raw)}{hint}")
            return default
        value: Any = float(raw) if tp is float else raw
        if tp is str and len(value) > meta.get("max_text", MAX_TEXT):
            self.problem(node, path, f"{len(value)} characters; at most "
                                     f"{meta.get('max_text', MAX_TEXT)}")
            return default
        if tp is str and meta.get("normalise") is not None:
            value = meta["normalise"](value)
        rng = meta.get("range")
        if rng is not None and tp in (int, float) and meta.get("above") and not (rng[0] < value <= rng[1]):
            self.problem(node, path, f"{_fmt_num(value)} is not in ({_fmt_num(rng[0])}, {_fmt_num(rng[1])}]"
                                     f" (more than {_fmt_num(rng[0])}, at most {_fmt_num(rng[1])})")
            return default
        if rng is not None and tp in (int, float) and rng[0] == rng[1] and value != rng[0]:
            doc = meta.get("doc")
            self.problem(node, path, f"{_fmt_num(value)} is not allowed; only {_fmt_num(rng[0])}"
                                     + (f" ({doc})" if doc else ""))
            return default
        if rng is not None and tp in (int, float) and not (rng[0] <= value <= rng[1]):
            self.problem(node, path, f"{_fmt_num(value)} is not in {_fmt_num(rng[0])}..{_fmt_num(rng[1])}")
            return default
        choices = meta.get("choices")
        if choices is not None and tp is str and value not in choices:
            self.problem(node, path, f"'{value}' is not allowed" + _close(value, choices)
                         + ("" if len(choices) > 12 or "allowed" in _close(value, choices)
                            else f" (allowed: {', '.join(choices)})"))
            return default
        return value

    def sequence(self, item_tp: Any, meta: typing.Mapping[str, Any], node: yaml.Node,
                 path: str, default: Any) -> Any:
        if isinstance(node, yaml.ScalarNode) and item_tp is str:
            raw = self.scalar(node)
            if isinstance(raw, str):   # a single pattern is a list of one
                return (raw,)
        if not isinstance(node, yaml.SequenceNode):
            raw = self.scalar(node) if isinstance(node, yaml.ScalarNode) else {}
            self.problem(node, path, f"expected a list of {_kind(item_tp, plural=True)}, got {_describe(raw)}")
            return default
        most = meta.get("max_items", MAX_ITEMS)
        if len(node.value) > most:
            self.problem(node, path, f"{len(node.value)} items; at most {most}")
            return default
        length = meta.get("length")
        if length is not None and len(node.value) != length:
            self.problem(node, path, f"expected {length} {_kind(item_tp, plural=True)}, got {len(node.value)}")
            return default
        out = []
        before = len(self.problems)
        for i, item in enumerate(node.value):
            self.lines[f"{path}[{i}]"] = item.start_mark.line + 1
            out.append(self.value(item_tp, meta, item, f"{path}[{i}]", None))
        return default if len(self.problems) > before else tuple(out)

    def mapping(self, key_tp: Any, val_tp: Any, meta: typing.Mapping[str, Any], node: yaml.Node,
                path: str, default: Any) -> Any:
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
            return {}
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, path, "expected a mapping")
            return default
        most = meta.get("max_items", MAX_ITEMS)
        if len(node.value) > most:
            self.problem(node, path, f"{len(node.value)} entries; at most {most}")
            return default
        out: dict[Any, Any] = {}
        before = len(self.problems)
        key_meta = dict(range=meta.get("key_range"), choices=meta.get("key_choices"))
        for key_node, value_node in node.value:
            key_raw = self.scalar(key_node)
            key_path = f"{path}.{key_raw}"
            self.lines[key_path] = key_node.start_mark.line + 1
            key = self.atom(key_tp, key_meta, key_raw, key_node, key_path, None)
            if key is None:
                continue
            if key in out:
                self.problem(key_node, key_path, "appears twice; keep one")
                continue
            out[key] = self.value(val_tp, meta, value_node, key_path, None)
        return default if len(self.problems) > before else out


class _Checks:
    """Checks that span keys (a pin taken twice, the SPI pins, what the core refuses), run on
    each dataclass once it is built; the problems go to the builder's list."""

    def __init__(self, builder: "_Builder") -> None:
        self.builder = builder

    def run(self, obj: Any, node: yaml.Node, path: str) -> None:
        checks: dict[type, Callable[[Any, yaml.Node, str], None]] = {
            KnobConfig: self.knob, GpioConfig: self.gpio, MidiConfig: self.midi, Config: self.config}
        check = checks.get(type(obj))
        if check is not None:
            check(obj, node, path)

    def knob(self, obj: KnobConfig, node: yaml.Node, path: str) -> None:
        if (obj.mcp3008 is None) == (obj.encoder is None):
            self.builder.problem(node, path, "give exactly one of mcp3008: CHANNEL (a pot) or "
                                             "encoder: [PIN_A, PIN_B] (a rotary encoder)")

    def written(self, path: str) -> bool:
        """Whether the file itself has the key at ``path`` (not just its default)."""
        return path in self.builder.lines

    def clash(self, path: str, first: str, second: str, text: str) -> None:
        """``second`` wants what ``first`` already has: one problem, at the key the user
        wrote (the later one when both are written), naming the other and saying when it
        is only a default."""
        a, b = f"{path}.{first}", f"{path}.{second}"
        here, there = (a, b) if self.written(a) and not self.written(b) else (b, a)
        if self.written(there):
            other = there
        elif there.startswith(f"{path}.buttons."):
            other = f"{there} (a default button; the buttons you list under {path}.buttons replace all the defaults)"
        else:
            other = f"{there} (a default; give it another value, or null to leave it out)"
        self.builder.problem_at(here, f"{text} is already used by {other}")

    def gpio(self, obj: GpioConfig, node: yaml.Node, path: str) -> None:
        used: dict[int, str] = {}
        channels: dict[int, str] = {}
        uses_spi = False
        for pin, what in gpio_claims(obj):
            if pin in used:
                self.clash(path, used[pin], what, f"GPIO{pin}")
            else:
                used[pin] = what
        for name in KNOBS:
            knob = getattr(obj.knobs, name)
            if knob is None or knob.mcp3008 is None:
                continue
            uses_spi = True
            what = f"knobs.{name}.mcp3008"
            if knob.mcp3008 in channels:
                self.clash(path, channels[knob.mcp3008], what, f"MCP3008 channel {knob.mcp3008}")
            else:
                channels[knob.mcp3008] = what
        if uses_spi:
            for pin, what in SPI0_PINS.items():
                if pin in used:
                    self.builder.problem_at(f"{path}.{used[pin]}",
                                            f"GPIO{pin} is the MCP3008's {what}; pick another pin")
        lo, hi = obj.tempo_range
        if lo >= hi:
            self.builder.problem_at(f"{path}.tempo_range", f"the low end ({_fmt_num(lo)}) must be below the high end ({_fmt_num(hi)})")

    def midi(self, obj: MidiConfig, node: yaml.Node, path: str) -> None:
        name = obj.client_name
        if not name.strip() or ":" in name or not name.isprintable():
            self.builder.problem_at(f"{path}.client_name", f"'{name[:40]}' cannot name a MIDI "
                                    f"client: 1..{CLIENT_NAME_MAX} printable characters, no colon")

    def config(self, obj: Config, node: yaml.Node, path: str) -> None:
        if obj.din.enabled and obj.gpio.enabled:
            for p, what in gpio_claims(obj.gpio):
                if p in UART_PINS:
                    self.builder.problem_at(f"gpio.{what}", f"GPIO{p} is the DIN MIDI {UART_PINS[p]}; pick another pin")
        mapped = {n: a for n, a in obj.midi_map.notes.items() if n in obj.start.count_in_notes}
        if obj.start.mode == "count-in":
            for note, action in sorted(mapped.items()):
                self.builder.problem_at(
                    "start.count_in_notes", f"note {note} is mapped to {action} (midi_map.notes); "
                    "the map takes it first, so it could never count in: pick another note")
        if self.builder.problems:
            return
        # what the core itself checks: a config that loads must never fail there
        for build, where in ((obj.engine_settings, "player"), (obj.controls, "generator"),
                             (obj.start_settings, "start")):
            try:
                build()
            except (ValueError, KeyError, TypeError) as e:
                text = str(e.args[0]) if e.args else str(e)
                self.builder.problem_at(_core_key(text, where), text)


#: words in the core's ValueErrors → the config key that feeds them
_CORE_KEYS = (
    ("gate", "player.gate_steps"), ("lookahead", "player.lookahead_ms"),
    ("input_channel", "loop.input_channel"), ("split_note", "loop.split_note"), ("forget_passes", "loop.forget_passes"), ("forget_once", "loop.forget_once"),
    ("section_change", "loop.section_change"), ("rest_thin", "loop.rest_thin"), ("end_after_bars", "loop.end_after_bars"), ("drift", "loop.drift"), ("crash_every", "loop.crash_every"), ("fill_every", "loop.fill_every"),
    ("swap_at", "loop.swap_at"), ("notes", "player.notes"), ("channels", "player.channel"),
    ("drum map", "player.drum_map"), ("max_hits_per_voice", "generator.max_hits_per_voice"),
    ("density", "generator.density"), ("temperature", "generator.variation"),
    ("velocity_scale", "generator.velocity_scale"), ("humanise", "generator.humanise"),
    ("thresholds", "generator.thresholds"), ("style_amount", "generator.style_amount"),
    ("style", "generator.style"),
)


def _core_key(text: str, fallback: str) -> str:
    for word, key in _CORE_KEYS:
        if word in text:
            return key
    return fallback


def gpio_claims(gpio: GpioConfig) -> list[tuple[int, str]]:
    """Every header pin the panel takes, as (pin, key under ``gpio``), in file order."""
    claims: list[tuple[int, str]] = [(pin, f"buttons.{action}") for action, pin in gpio.buttons.items()]
    for name in KNOBS:
        knob = getattr(gpio.knobs, name)
        if knob is not None and knob.encoder is not None:
            claims += [(knob.encoder[0], f"knobs.{name}.encoder"),
                       (knob.encoder[1], f"knobs.{name}.encoder")]
    for name in ("beat", "freeze", "activity"):
        pin = getattr(gpio.leds, name)
        if pin is not None:
            claims.append((pin, f"leds.{name}"))
    return claims


def _fields(cls: type) -> list[Any]:
    return [f for f in fields(cls) if f.name not in ("source", "source_text")]


def _default(f: Any) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return None


def _kind(tp: Any, plural: bool = False) -> str:
    names = {int: ("a whole number", "whole numbers"), float: ("a number", "numbers"),
             bool: ("true or false", "true/false values"), str: ("text", "texts")}
    return names.get(tp, (getattr(tp, "__name__", str(tp)),) * 2)[1 if plural else 0]


def _resolve_paths(config: Config, base: Path) -> Config:
    def rel(p: str) -> str:
        return p if os.path.isabs(p) else str((base / p).resolve())
    socket = config.control.socket
    return replace(
        config,
        model=replace(config.model, dir=rel(config.model.dir)),
        state=replace(config.state, dir=rel(config.state.dir)),
        control=replace(config.control, socket=rel(socket) if socket is not None else None))


def _line_above(text: str, error: yaml.MarkedYAMLError) -> str:
    """Where a YAML structure error the parser noticed late really is, when that is an earlier
    line: where a list or map left open began, the key whose colon the scanner looked for, or
    the line with content before the one it stopped at when that line lost its colon or the
    block its indent ('' when the line it names is the one)."""
    lines, mark, what = text.splitlines(), error.problem_mark, error.problem or ""
    if mark is None:
        return ""
    context = error.context or ""
    if error.context_mark is not None and error.context_mark.line < mark.line and \
            ("flow" in context or "simple key" in context):
        line = error.context_mark.line
        why = ": a list or map opened there is not closed" if "flow" in context else ": a key needs a colon after it"
    else:
        line = next((k for k in range(min(mark.line, len(lines)) - 1, -1, -1)
                     if lines[k].strip() and not lines[k].lstrip().startswith("#")), -1)
        if line >= 0 and "mapping values" in what and ":" in lines[line] and mark.line < len(lines):
            def indent(text: str) -> int:     # a list item's keys sit past its "- "
                found = re.match(r"[ ]*(?:-[ ]+)*", text)      # (it matches at least "")
                return len(found.group(0)) if found else 0
            deeper = (indent(lines[mark.line]) > indent(lines[line])
                      and not lines[line].split("#")[0].rstrip().endswith(":"))   # (a section's key has its keys deeper)
            return (f"; it is indented deeper than line {line + 1} ({lines[line].strip()[:40]!r}): the keys of one "
                    "block take the same indent") if deeper else ""
        if line < 0 or not ("<block end>" in what or "mapping values" in what):
            return ""
        why = (": a key needs a colon and a space after it (density: 0.5), and the keys of one block "
               "the same indent")
    return f"; the mistake may be earlier, on line {line + 1} ({lines[line].strip()[:40]!r}){why}"


def loads(text: str, filename: str = "<config>", base: Path | None = None) -> Config:
    """Parse YAML text; ConfigError lists every problem found."""
    try:
        _not_too_many_items(text, filename)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        col = f" (column {mark.column + 1})" if mark is not None else ""
        what = e.problem or e.context or "cannot be read"
        if "'\\t'" in what:
            what += "; indent with spaces, not tabs"
        hint = "" if "'\\t'" in what else _line_above(text, e)
        raise ConfigError([f"{filename}{line}: bad YAML: {what}{col}{hint}"]) from None
    except yaml.YAMLError as e:   # e.g. a tab or a control character
        raise ConfigError([f"{filename}: bad YAML: {e}"]) from None
    except RecursionError:
        raise ConfigError([f"{filename}: bad YAML: nested too deeply"]) from None
    builder = _Builder(filename)
    config = builder.build(Config, root, "")
    if builder.problems:
        raise ConfigError(builder.problems)
    config = replace(config, source=filename, source_text=text)
    return _resolve_paths(config, base) if base is not None else config


def _not_too_many_items(text: str, filename: str) -> None:
    """Refuse a file of more than ``MAX_EVENTS`` YAML events before building its tree: a 1 MiB
    file of small mappings took 8.5 s and 300 MB to compose, on the thread that pings the
    watchdog (a fault harness: 11.6 s without a ping, the drums with a 1 s hole). Counted with
    libyaml's parser where PyYAML has it, and stopped at the cap, so any file costs
    milliseconds. A YAML error here is left to ``yaml.compose``, whose message is the one shown."""
    loader = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader   # PyYAML built without libyaml: Python's
    events = 0
    try:
        for _ in yaml.parse(text, Loader=loader):
            events += 1
            if events > MAX_EVENTS:
                raise ConfigError([f"{filename}: more than {MAX_EVENTS} YAML items; a groovebox config has a few "
                                   "hundred (is this the right file?)"])
    except yaml.YAMLError:
        return


def load(path: str | os.PathLike[str]) -> Config:
    """Read and check the config file at ``path``; ConfigError names file:line key."""
    p = Path(path)
    try:
        # not blocking: a named pipe at the path would hold a reload (and the watchdog) forever
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ConfigError([f"{p}: cannot read: not a file (a directory or a pipe?); give the "
                               "path of the YAML file"])
        with open(fd, "rb") as f:
            data = f.read(MAX_FILE + 1)
    except OSError as e:
        raise ConfigError([f"{p}: cannot read: {e}"]) from None
    if len(data) > MAX_FILE:
        raise ConfigError([f"{p}: larger than {MAX_FILE >> 20} MiB; a groovebox config is a few "
                           "KiB (is this the right file?)"])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise ConfigError([f"{p}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x} at column "
                           f"{column}); save the file as UTF-8"]) from None
    _not_empty(text, p)
    return loads(text, filename=str(p), base=p.resolve().parent)


def _not_empty(text: str, path: Path) -> None:
    """An empty file is what a crashed editor or a full disk leaves behind, not a wish for every
    default (a file of comments only is one): it is refused, and the box keeps what it had."""
    if not text.strip():
        raise ConfigError([f"{path}: the file is empty (an editor that crashed, or a full disk?); "
                           f"restore it from {LAST_GOOD} in the state directory, or from "
                           "examples/config.yaml for every default"])


LAST_GOOD = "config.last-good.yaml"


def last_good_dir(config: Config | None = None) -> Path:
    """Where the last config that loaded is kept and looked for: ``$STATE_DIRECTORY`` when set
    (systemd's StateDirectory; ``make run`` sets it to desktop.yaml's), else the config's
    ``state.dir`` (the default one when the file did not load: a broken file cannot say)."""
    state_directory = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(state_directory) if state_directory else Path((config or Config()).state.dir)


def save_last_good(config: Config) -> Path | None:
    """Keep a copy of a config that loaded (``config.last-good.yaml`` in :func:`last_good_dir`,
    written atomically) for :func:`load_with_fallback`. None when there is nothing to keep or the
    directory is not writable (logged)."""
    if config.source_text is None:
        return None
    target = last_good_dir(config) / LAST_GOOD
    text = config.source_text.encode("utf-8")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # compared as bytes: a copy torn by a power cut (0xFF pages) is no text, and is replaced;
        # only a regular file is read (a FIFO there would block the start), anything else replaced
        if target.is_file() and target.read_bytes() == text:
            return target
        atomic_write(target, text)
    except OSError as e:
        log.warning("config: cannot keep a last-good copy in %s: %s", target.parent, e)
        return None
    return target


def load_with_fallback(path: str | os.PathLike[str],
                       fallback_dir: str | os.PathLike[str] | None = None) -> tuple[Config, list[str]]:
    """For starting the service: the config at ``path``, or, when it has mistakes, the last
    one that loaded (kept in ``state.dir``), or else the defaults; the box starts either
    way. Returns (config, problems); problems are logged as one error line.

    ``fallback_dir`` is where to look for the last good copy (default: :func:`last_good_dir`,
    where :func:`save_last_good` keeps it)."""
    p = Path(path)
    try:
        config = load(p)
    except ConfigError as e:
        problems = e.problems
    else:
        save_last_good(config)
        return config, []
    keep = (Path(fallback_dir) if fallback_dir is not None else last_good_dir()) / LAST_GOOD
    fallback: Config | None = None
    if keep.is_file():
        try:
            text = keep.read_text(encoding="utf-8")
            _not_empty(text, keep)
            fallback = loads(text, filename=str(keep), base=p.resolve().parent)
        except (OSError, UnicodeDecodeError, ConfigError):
            fallback = None
    using = f"running with the last good config ({keep})" if fallback is not None else \
        "running with the defaults"
    # the unit names itself (Environment=GROOVEBOX_UNIT=%n); elsewhere (make run) a signal reloads
    unit = os.environ.get("GROOVEBOX_UNIT")
    reload = f"`systemctl reload {unit}`" if unit else f"reload the box (`kill -HUP {os.getpid()}`, or stop and start it)"
    log.error("config: %s; %s. Fix the file, check it with `groovebox config check %s`, then %s",
              "; ".join(problems), using, p, reload)
    return (fallback if fallback is not None else Config()), problems


def defaults() -> Config:
    return Config()


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """{"player.channel": 10, ...}: every leaf key of a config (sub)tree."""
    out: dict[str, Any] = {}
    for f in _fields(type(obj)):
        value = getattr(obj, f.name)
        path = f"{prefix}{f.name}"
        if is_dataclass(value):
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def check_main(args: Any) -> int:
    """``groovebox config check FILE``: 0 and a summary when the file is good, 1 and one
    line per problem when not, 2 on a usage mistake.

    ``args`` is the argument list (``["check", FILE]`` or ``[FILE]``) or an argparse
    namespace with a ``file`` attribute (what ``appliance.box.cli`` passes)."""
    if isinstance(args, argparse.Namespace):
        args = [str(args.file)]
    args = list(args)
    if args and args[0] == "check":
        args = args[1:]
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print("usage: groovebox config check FILE", file=sys.stderr)
        return 2
    try:
        config = load(args[0])
    except ConfigError as e:
        for line in e.problems:
            print(line, file=sys.stderr)
        print(f"{args[0]}: {e.count} problem(s)", file=sys.stderr)
        return 1
    notes, channels = config.drum_notes()
    print(f"{args[0]}: OK")
    warning = model_warning(config)
    if warning:   # not the file's mistake, but the box will not start without a model
        print(f"  warning: {warning}", file=sys.stderr)
    if config.player.lookahead_ms < LOOKAHEAD_FLOOR_MS:
        print(f"  note: player.lookahead_ms {_fmt_num(config.player.lookahead_ms)} is under the player's "
              f"{LOOKAHEAD_FLOOR_MS:g} ms turn: the box plays {LOOKAHEAD_FLOOR_MS:g}")
    print(f"  drum map {config.player.drum_map}: "
          + " ".join(f"{v}={n}/ch{c}" for v, n, c in zip(VOICES, notes, channels)))
    print(f"  tempo {_fmt_num(config.tempo.bpm)} bpm, clock {config.tempo.clock}; "
          f"model {config.model.dir} ({config.model.precision})")
    channel = config.loop.input_channel
    print("  keyboard from " + (", ".join(repr(p) for p in config.midi.inputs) or "every MIDI input")
          + (" and DIN" if config.din.enabled else "")
          + (f", channel {channel} only" if channel else ", every channel")
          + "; drums to " + (", ".join(repr(p) for p in config.midi.outputs) or "every MIDI output")
          + (" and DIN" if config.din.enabled else ""))
    both = [p for p in config.midi.inputs if p in config.midi.outputs]
    if both and not channel:
        print(f"  note: {', '.join(repr(p) for p in both)} is heard and played to, on every channel: "
              "the drum machine's own notes (its pads, its pattern, a MIDI thru) would join the "
              "groove; set loop.input_channel to the keyboard's channel")
    if config.gpio.enabled:
        print("  buttons " + ", ".join(f"{a}=GPIO{p}" for a, p in config.gpio.buttons.items()))
    for number, action in sorted(config.midi_map.cc.items()):
        print(f"  CC {number} -> {action}")
    for number, action in sorted(config.midi_map.notes.items()):
        print(f"  note {number} -> {action}")
    said = pads_on_the_keys(config)
    if said:
        print(said)
    return 0


def model_warning(config: Config) -> str:
    """Why `groovebox run` would not start on this machine with this file's model ('' if it
    would): files missing, or graphs onnxruntime cannot load (a truncated copy passed the check)."""
    missing = [name for name in MODEL_FILES if not (Path(config.model.dir) / name).is_file()]
    if missing:
        return (f"model.dir {config.model.dir} lacks {', '.join(missing)}: `groovebox run` will not start on "
                "this machine; point model.dir at a model directory (models/groove-vae)")
    from appliance.core.generator import Generator, ModelError
    try:
        Generator(config.model.dir, precision=config.model.precision)
    except ModelError as error:
        return f"{error}: `groovebox run` will not start on this machine"
    return ""


def pads_on_the_keys(config: Config) -> str:
    """A note mapped where the keyboard plays is taken from its keys: a musician's review mapped
    README's 36/37/38 on every channel and the left hand's C2 froze the loop every bar."""
    m, heard = config.midi_map, config.loop.input_channel
    if not m.notes or (m.channel and m.channel != heard):   # pads on a channel of their own
        return ""
    where = "on every channel" if not m.channel else f"on channel {m.channel}, the keyboard's"
    return (f"  note: notes {', '.join(map(str, sorted(m.notes)))} are mapped {where}: the keyboard's own keys "
            "with these numbers press them instead of playing; set midi_map.channel to the pads' channel "
            "(10 on most keyboards)")


if __name__ == "__main__":   # python -m appliance.box.config check FILE
    raise SystemExit(check_main(sys.argv[1:]))

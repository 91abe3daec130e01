"""The engine on a virtual clock: a keyboard performance (MIDI file) in → the drum part out."""
from __future__ import annotations

from dataclasses import dataclass
import logging
import math
from pathlib import Path
import time

import mido

from appliance.core.engine import Engine, EngineSettings, VirtualExecutor
from appliance.core.generator import Controls, Generator
from appliance.core.groove import STEPS, STEPS_PER_BAR, STEPS_PER_BEAT, Pattern
from appliance.core.transport import InternalClock, check_bpm

log = logging.getLogger(__name__)

OUT_TICKS_PER_BEAT = 480
TICK_SECONDS = 0.01  #: how often the virtual player wakes up


class RenderError(Exception):
    """A performance that cannot be rendered; the message says why in one line."""


@dataclass(frozen=True)
class Performance:
    """Keyboard messages at positions in steps (tempo-independent), and the file's tempo."""

    notes: list[tuple[float, mido.Message]]  #: (position in steps, channel message)
    bpm: float | None                         #: the file's first tempo, if it has one
    tempo_changes: int
    drum_channel_only: bool


@dataclass(frozen=True)
class RenderResult:
    pattern: Pattern
    bars: int
    bpm: float
    wall_seconds: float
    stats: dict

    @property
    def bars_per_second(self) -> float:
        return self.bars / self.wall_seconds if self.wall_seconds > 0 else math.inf


def read_performance(path: Path) -> Performance:
    """Read a MIDI file's channel messages at their positions in steps."""
    try:
        midi = mido.MidiFile(str(path))
    except FileNotFoundError:
        raise RenderError(f"{path}: no such file") from None
    except (OSError, EOFError, ValueError, KeyError, IndexError) as error:
        raise RenderError(f"{path}: not a MIDI file ({str(error) or 'the file ends early'})") from None
    tracks = midi.tracks
    if midi.type == 2:
        with_notes = [track for track in tracks if any(m.type == "note_on" for m in track)]
        tracks = with_notes[:1]
        log.warning("%s is a type-2 file (independent sequences): rendering its first sequence", path)
    tempos: list[int] = []
    notes: list[tuple[float, mido.Message]] = []
    for track in tracks:
        ticks = 0
        for message in track:
            ticks += message.time
            if message.type == "set_tempo":
                tempos.append(message.tempo)
            elif not message.is_meta and message.type != "sysex":
                position = ticks / midi.ticks_per_beat * STEPS_PER_BEAT
                notes.append((position, message.copy(time=0)))
    notes.sort(key=lambda item: item[0])  # stable: each track keeps its own order
    onsets = [m for _, m in notes if m.type == "note_on" and m.velocity > 0]
    if not onsets:
        raise RenderError(f"{path}: no notes to hear (the file has no note-on messages)")
    bpm = round(mido.tempo2bpm(tempos[0]), 2) if tempos else None
    return Performance(notes, bpm, max(0, len(set(tempos)) - 1), all(m.channel == 9 for m in onsets))


def render(path_in: str | Path, path_out: str | Path, *, model_dir: str | Path,
           bpm: float | None = None, passes: int = 1, seed: int | None = None,
           controls: Controls = Controls(), settings: EngineSettings = EngineSettings(),
           precision: str = "int8", latency: float = 0.0) -> RenderResult:
    """Play the performance ``passes`` times through the engine and write what the box plays.

    The output is a type-1 file: the keyboard track as played, and the drum track.
    """
    path_in, path_out = Path(path_in), Path(path_out)
    if passes < 1:
        raise RenderError(f"--passes {passes}: play the performance at least once")
    performance = read_performance(path_in)
    try:
        bpm = check_bpm(bpm if bpm is not None else (performance.bpm or 120.0))
    except ValueError as error:
        raise RenderError(f"{path_in}: {error}; give --bpm") from None
    if performance.tempo_changes:
        log.info("%s changes tempo %d times: notes keep their place in the bar, played at %g BPM",
                 path_in, performance.tempo_changes, bpm)
    if performance.drum_channel_only:
        log.warning("%s has notes only on channel 10 (a drum track?): heard as the groove anyway", path_in)

    last_onset = max(position for position, m in performance.notes if m.type == "note_on" and m.velocity)
    length = max(STEPS, math.ceil((last_onset + 0.5) / STEPS) * STEPS)  # whole loops, by the last note-on
    total_steps = length * passes
    generator = Generator(model_dir, precision=precision, seed=seed)
    transport = InternalClock(bpm=bpm, start=0.0)
    engine = Engine(generator, transport, settings, controls, executor=VirtualExecutor(latency),
                    clock=lambda: 0.0)
    # Each pass ends at the loop point: what was still held then is let go there, except in the last.
    inputs = [(transport.time_at((position if k == passes - 1 else min(position, length - 1e-6)) + k * length),
               message)
              for k in range(passes) for position, message in performance.notes]

    started = time.perf_counter()
    drums: list[tuple[float, mido.Message]] = []
    last = transport.time_at(total_steps - 0.5) - settings.lookahead - 1e-9
    now, index = 0.0, 0
    while now <= last:
        while index < len(inputs) and inputs[index][0] <= now:
            engine.handle(inputs[index][1], inputs[index][0])
            index += 1
        drums.extend((event.time, event.message) for event in engine.tick(now))
        now += TICK_SECONDS
    drums.extend((event.time, event.message) for event in engine.player.drain())
    wall = time.perf_counter() - started
    engine.close()

    try:
        write_file(path_out, bpm, inputs, drums)
    except OSError as error:
        raise RenderError(f"{path_out}: cannot write the drum file ({error.strerror or error})") from None
    return RenderResult(engine.pattern, total_steps // STEPS_PER_BAR, bpm, wall, engine.stats())


def write_file(path: Path, bpm: float, keyboard: list[tuple[float, mido.Message]],
               drums: list[tuple[float, mido.Message]]) -> None:
    """A type-1 file any DAW opens: tempo + keyboard track, drum track."""
    seconds_per_tick = 60.0 / bpm / OUT_TICKS_PER_BEAT

    def track(name: str, timed: list[tuple[float, mido.Message]], tempo: bool) -> mido.MidiTrack:
        out = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0)])
        if tempo:
            out.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
            out.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
        previous = 0
        for seconds, message in timed:
            ticks = max(0, round(seconds / seconds_per_tick))
            ticks = max(ticks, previous)
            out.append(message.copy(time=ticks - previous))
            previous = ticks
        out.append(mido.MetaMessage("end_of_track", time=0))
        return out

    midi = mido.MidiFile(type=1, ticks_per_beat=OUT_TICKS_PER_BEAT)
    midi.tracks.append(track("keyboard", sorted(keyboard, key=lambda item: item[0]), tempo=True))
    midi.tracks.append(track("groovebox drums", drums, tempo=False))
    path.parent.mkdir(parents=True, exist_ok=True)
    midi.save(str(path))

"""The engine on a virtual clock: a keyboard performance (MIDI file) in → the drum part out."""
from __future__ import annotations

from dataclasses import dataclass
import functools
import logging
import math
from pathlib import Path
import time

import mido
import numpy as np

from appliance.core.engine import Engine, EngineSettings, VirtualExecutor
from appliance.core import dynamics
from appliance.core.fills import accent_level
from appliance.core.generator import Controls, Generator
from appliance.core.groove import STEPS, STEPS_PER_BAR, STEPS_PER_BEAT, VOICES, Pattern
from appliance.core.phrase import MARK_WINDOW, entry_downbeat, run_lands
from appliance.core.player import PlayerSettings
from appliance.core.transport import InternalClock, check_bpm

log = logging.getLogger(__name__)

OUT_TICKS_PER_BEAT = 480
TICK_SECONDS = 0.01  #: how often the virtual player wakes up
MAX_REST_BARS = 8    #: a silence longer than this stops the drums until the next note (render) ...
REST_AHEAD_LOOPS = 3  #: ... when more than this many loops of it are still to come (else it is played through)
ENDING_RING = 2 * STEPS_PER_BEAT  #: steps the last chord must ring for the drums to end with it
CHORD_SPREAD = 0.5   #: steps a chord's notes spread over (a rolled one: up to a beat)
TAG_ONSETS = 3       #: short notes after the last chord that still leave it the ending (a tag) ...
TAG_LEVEL = 0.8      #: ... softer than this × the chord, or struck while it rings (else a stinger: the ending) ...
TAG_SOFT = 0.5       #: ... and a bar on, after it let go, softer than this × the chord (a piano's soft tag; louder: the song goes on)
TAG_HITS = 2          #: the chords before a button in a bar that leaves out its 1 that are the band's tag ("two")
DUE_LATE = 2 * STEPS_PER_BEAT  #: a last chord less than this after a bar line was due on it (a ritardando)
ENDING_AFTER = STEPS  #: steps of song before the last chord for it to be an ending (a loop's worth)
BUTTON_EARLY = 0.5    #: steps before a bar line a short last chord may fall and still be the button that ends the song ...
BUTTON_LATE = 1.0     #: ... and after it (laid back a 16th)
BUTTON_ACCENT = 1.15  #: a short last chord this many times as loud as the loudest of the bars before it ...
ACCENT_STEP = 10 / 127  #: ... or this much louder (a loud band's accent under 127) ...
BUTTON_PUSH = STEPS_PER_BEAT / 2   #: ... or at 127 after 127 all along, this many steps before a bar line ...
PUSH_SLACK = 0.5      #: ... give or take this (a 32nd) ...
BUTTON_BARS = 2       #: ... this many is the button too (one no louder than the figure is a loop cut off)
COLD_BUSY = 2         #: chords in each of the two bars before a stop, for a bar's rest after it to be a cold stop
COLD_CHAIN = 8        #: at most this many stops a bar apart before the last chord (hit, hit, hit; a stop-time ending)
COLD_FORM = 2         #: a part that rested so this many times before its stops rests as its form: no cold stop
HITS_APART = STEPS_PER_BEAT - CHORD_SPREAD   #: the band's hits into its last chord come a beat or more apart (a 32nd's give) ...
HITS_REST = 1.0       #: ... each let go this many steps (a sixteenth) or more before the next ...
HITS_NOTES = 2        #: ... each a chord of this many notes or more (a single note is a line: a walk-up, a plink)
FIGURE_BUSIER = 2     #: a bar before them, up to the last chord's place, with a chord where each hit is, is the part's
                      #: own figure unless it holds this many times as many chords as the hits (the band played on between)
RELEASE_SLACK = 1.0   #: steps a last note may ring past a bar line, the band still stopping there (legato)
OPENING_BARS = 2      #: bars from the first note over which render reads the level a part comes in at
DRIFT_NOTES = 6      #: a 2-bar window needs this many notes to say where the part's eighths fall ...
DRIFT_AGREE = 0.5    #: ... and its notes this much agreement on it (the length of their mean phase vector)
DRIFT_DEGREES = 70   #: a window whose eighths sit this far (degrees of an eighth) from the song's start is off
DRIFT_WINDOWS = 3    #: the part drifts when this many windows, and DRIFT_SHARE of those that say, are off
DRIFT_SHARE = 0.2
#: a part played at a steady tempo other than the file's (:func:`keeps_its_own_tempo`): its notes sit on a
#: grid this many times the file's, tried from PLAYED_RATIOS[0] to [1] by PLAYED_STEP ...
PLAYED_RATIOS, PLAYED_STEP = (0.5, 2.0), 0.001
PLAYED_AGREE = 0.6     #: ... this well (the length of their mean phase vector on the sixteenths) ...
PLAYED_BETTER = 3.0    #: ... and this many times better than on the file's own grid ...
PLAYED_APART = 0.012   #: ... a grid this close to a simple multiple of the file's (1, 3/4, 3/2 …) being the file's own
SIMPLE_RATIOS = (1 / 2, 2 / 3, 3 / 4, 1, 4 / 3, 3 / 2, 5 / 3, 7 / 4, 2)
GM_KIT = (35, 59)          #: General MIDI's kit keys (kick to ride) ...
GUIDE_DRUMS = 0.8          #: ... a channel-10 part this much on them beside a keyboard part is a guide drum track ...
GUIDE_BESIDE = 16          #: ... the keyboard part, on the other channels, this many notes or more
FILE_GRIDS = (1.0, 4 / 3, 1 / 2, 2 / 3)   #: the file's own subdivisions, in steps (see _on_the_files)
PLAYED_NOTES = 20      #: the least onsets that say (in a part, or a window of it) ...
PLAYED_WINDOW = 64     #: ... judged 4 bars at a time for a drift (:func:`off_the_beat`)


#: what to do about a part that does not keep the file's beat (--bpm moves both together)
PLAY_TO_A_CLICK = ("in the sequencer, set the file's tempo to the one it was played at, keeping the notes "
                   "where they are in time, or play it again to a click")

CRASH, KICK, SNARE = VOICES.index("crash"), VOICES.index("kick"), VOICES.index("snare")
BARS_PER_WINDOW = STEPS // STEPS_PER_BAR


class RenderError(Exception):
    """A performance that cannot be rendered; the message says why in one line."""


@dataclass(frozen=True)
class Performance:
    """Keyboard messages at positions in steps (tempo-independent), and the file's tempo."""

    notes: list[tuple[float, mido.Message]]  #: (position in steps, channel message)
    bpm: float | None                         #: the file's first tempo, if it has one
    tempo_changes: int
    drum_channel_only: bool
    ticks_per_beat: int = 480
    meters: tuple[tuple[int, int, float], ...] = ()  #: time signatures other than 4/4 or 2/2: (numerator, denominator, position in steps)
    drums_left_out: int = 0                   #: notes of a channel-10 track beside the keyboard's, left out


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


FOUR_FOUR = {(4, 4), (2, 2)}   #: meters whose bars are the box's bars


def read_performance(path: Path) -> Performance:
    """Read a MIDI file's channel messages at their positions in steps."""
    try:
        midi = mido.MidiFile(str(path))
    except FileNotFoundError:
        raise RenderError(f"{path}: no such file") from None
    except (OSError, EOFError, ValueError, KeyError, IndexError) as error:
        raise RenderError(f"{path}: not a MIDI file ({str(error) or 'the file ends early'})") from None
    if not 0 < midi.ticks_per_beat < 0x8000:   # 0 divides by zero; the top bit set is SMPTE time
        raise RenderError(f"{path}: its header says {midi.ticks_per_beat} ticks per beat; the box reads files timed "
                          "in ticks per beat (export it again from your DAW)")
    tracks = midi.tracks
    if midi.type == 2:
        with_notes = [track for track in tracks if any(m.type == "note_on" for m in track)]
        tracks = with_notes[:1]
        log.warning("%s is a type-2 file (independent sequences): rendering its first sequence", path)
    tempos: list[int] = []
    meters: list[tuple[int, int, float]] = []
    notes: list[tuple[float, mido.Message]] = []
    for track in tracks:
        ticks = 0
        for message in track:
            ticks += message.time
            if message.type == "set_tempo" and message.tempo > 0:   # a tempo of 0 µs a beat is no tempo
                tempos.append(message.tempo)
            elif message.type == "time_signature" and (message.numerator, message.denominator) not in FOUR_FOUR:
                meters.append((message.numerator, message.denominator, ticks / midi.ticks_per_beat * STEPS_PER_BEAT))
            elif not message.is_meta and message.type != "sysex":
                position = ticks / midi.ticks_per_beat * STEPS_PER_BEAT
                notes.append((position, message.copy(time=0)))
    notes.sort(key=lambda item: item[0])  # stable: each track keeps its own order
    onsets = [m for _, m in notes if m.type == "note_on" and m.velocity > 0]
    if not onsets:
        raise RenderError(f"{path}: no notes to hear (the file has no note-on messages)")
    bpm = round(mido.tempo2bpm(tempos[0]), 2) if tempos else None
    left_out = 0
    drums = [m.note for m in onsets if m.channel == 9]
    if drums and len(onsets) - len(drums) >= GUIDE_BESIDE \
            and sum(GM_KIT[0] <= n <= GM_KIT[1] for n in drums) >= GUIDE_DRUMS * len(drums):
        # a DAW's export with a guide drum track (on a kit's keys, beside a keyboard part): the
        # keyboard is the rest, and the drums the box writes take that track's place (heard, it
        # changed the drums; copied, it played over them). A keyboard on channel 10 beside a
        # count-in on another is the keyboard (a code review).
        left_out = len(drums)
        notes = [(position, m) for position, m in notes if not (hasattr(m, "channel") and m.channel == 9)]
    return Performance(notes, bpm, max(0, len(set(tempos)) - 1), all(m.channel == 9 for m in onsets),
                       midi.ticks_per_beat, tuple(sorted(meters, key=lambda m: m[2])), left_out)


def opening_level(performance: Performance) -> float | None:
    """The level the part comes in at (``dynamics.played``): the mean of the louder half of its
    steps' loudest notes over ``OPENING_BARS`` bars from its first note (None: no notes)."""
    onsets = [(position, m.velocity / 127) for position, m in performance.notes if m.type == "note_on" and m.velocity]
    if not onsets:
        return None
    first = min(position for position, _ in onsets)
    loudest: dict[int, float] = {}
    for position, velocity in onsets:
        if position < first + OPENING_BARS * STEPS_PER_BAR:
            step = math.floor(position + 0.5)
            loudest[step] = max(loudest.get(step, 0.0), velocity)
    velocities = sorted(loudest.values())
    return float(np.mean(velocities[len(velocities) // 2:]))


def downbeat_steps(performance: Performance, *, downbeat_ticks: int | None = None,
                   pickup_beats: float | None = None, ticks_per_beat: int = 480) -> float:
    """Where bar 1 falls, in steps from the file's start: at a tick (``--downbeat``), or
    ``pickup_beats`` after the first note (``--pickup``: the first note is a pickup that many
    beats before bar 1); by default the bar line the first note comes in on (:func:`first_bar`)."""
    if downbeat_ticks is not None and pickup_beats is not None:
        raise RenderError("give --downbeat or --pickup, not both")
    if downbeat_ticks is not None:
        last = max(position for position, m in performance.notes if m.type == "note_on" and m.velocity)
        downbeat = downbeat_ticks / ticks_per_beat * STEPS_PER_BEAT     # as read_performance places the notes
        if downbeat_ticks < 0 or downbeat > last:
            raise RenderError(f"--downbeat {downbeat_ticks}: bar 1 falls at a tick from 0 to the part's last "
                              f"note, {round(last / STEPS_PER_BEAT * ticks_per_beat)}")
        log.info("bar 1 at quarter note %g of the file (--downbeat %d)", downbeat / STEPS_PER_BEAT + 1, downbeat_ticks)
        return downbeat
    if pickup_beats is not None:
        if not 0 <= pickup_beats <= 64:
            raise RenderError(f"--pickup {pickup_beats:g}: beats before bar 1, 0..64")
        first = min(position for position, m in performance.notes if m.type == "note_on" and m.velocity)
        log.info("bar 1 at quarter note %g of the file (--pickup %g)", (first + pickup_beats * STEPS_PER_BEAT)
                 / STEPS_PER_BEAT + 1, pickup_beats)
        return first + pickup_beats * STEPS_PER_BEAT
    return first_bar(performance)


def first_bar(performance: Performance) -> float:
    """Where a file's bar 1 falls when it does not say: the downbeat the player comes in on
    (:func:`entry_downbeat`): the bar line within half a beat of the first note; the one before it
    when the first note comes by beat 2's "e" (a part that begins after a rest on beat 1), unless
    its notes run on into the next bar line (a pickup from beat 2: :func:`run_lands`); the next
    one from the "and" of 2 on (a pickup, however it is timed). Whole bars of silence before it are
    not played: the drums come in with the player."""
    onsets = sorted(position for position, m in performance.notes if m.type == "note_on" and m.velocity)
    if not onsets:
        return 0.0
    first = onsets[0]
    downbeat = float(entry_downbeat(first))
    if first - downbeat > MARK_WINDOW and _runs_into_next_bar(onsets, int(downbeat)):
        downbeat += STEPS_PER_BAR
    where = f"quarter note {downbeat / STEPS_PER_BEAT + 1:g} of the file" if downbeat else "the file's start"
    log.info("bar 1 taken at %s, %s (--pickup BEATS or --downbeat TICK say otherwise)", where,
             "its first notes a pickup into it" if downbeat - first > MARK_WINDOW else "the bar its first note comes in")
    return downbeat


def _runs_into_next_bar(onsets: list[float], entry: int) -> bool:
    """Whether the first notes, in the bar at ``entry``, run on into the next bar line."""
    latest = onsets[0]
    for position in onsets[1:]:
        lands = run_lands(entry, latest, position)
        if lands is not None:
            return lands
        latest = position
    return False


def render(path_in: str | Path, path_out: str | Path, *, model_dir: str | Path,
           bpm: float | None = None, passes: int = 1, seed: int | None = None,
           controls: Controls = Controls(), settings: EngineSettings = EngineSettings(),
           precision: str = "int8", latency: float = 0.0, downbeat_ticks: int | None = None,
           pickup_beats: float | None = None, max_rest_bars: int = MAX_REST_BARS,
           ending: bool = True) -> RenderResult:
    """Play the performance ``passes`` times through the engine and write what the box plays.

    The output is a type-1 file: the keyboard track as played, and the drum track, on the
    input file's own time line. Bar 1 falls where ``downbeat_ticks``/``pickup_beats`` say (the
    engine's loop starts there; the drums come in on bar 1, a pickup before it is heard).
    A silence longer than ``max_rest_bars`` with more than ``REST_AHEAD_LOOPS`` loops of it
    still to come stops the drums until the next note, and the virtual clock skips it (0 plays
    through every silence). With ``ending``, a last chord that
    rings on for two beats or more, or a short one on a bar line or accented (the band's
    button), ends the song: the drums hit the crash and the kick with it, as loud as it, and stop
    (:func:`final_chord`); a part that just stops ends at the bar line where it stopped
    (:func:`band_stops`). The band starts where the player comes in (bar 1, or a later
    bar when ``downbeat_ticks`` puts bar 1 before the first note): the drums come in there with a
    crash, as after a count-in, at the level the part comes in at, whether the player's first
    note is on the 1 or later in the bar.
    """
    path_in, path_out = Path(path_in), Path(path_out)
    _check(path_in, path_out, passes, max_rest_bars, seed)
    performance = read_performance(path_in)
    downbeat = downbeat_steps(performance, downbeat_ticks=downbeat_ticks, pickup_beats=pickup_beats,
                              ticks_per_beat=performance.ticks_per_beat)
    bpm = _tempo(performance, bpm, path_in, downbeat)
    # The engine's time line: bar 1 on a loop point, whole loops of lead-in before it for a pickup.
    lead_in = math.ceil(downbeat / STEPS) * STEPS
    shift = lead_in - downbeat                       # engine position = file position + shift
    notes = [(position + shift, message) for position, message in performance.notes]
    last_onset = max(position for position, m in notes if m.type == "note_on" and m.velocity)
    length = max(lead_in + STEPS, math.ceil((last_onset + 0.5) / STEPS) * STEPS)  # whole loops
    song = length - lead_in                          # one pass of the song, from bar 1
    total_steps = lead_in + song * passes
    generator = Generator(model_dir, precision=precision, seed=seed)
    transport = InternalClock(bpm=bpm, start=0.0)
    engine = Engine(generator, transport, settings, controls, executor=VirtualExecutor(latency),
                    clock=lambda: 0.0)
    engine.player.phrase_from(lead_in)   # fills end the song's 4-bar phrases, not the lead-in's
    _band_starts(engine, performance, notes, lead_in)
    # Passes end at the loop point (held notes let go, but in the last); later ones start at bar 1, no pickup.
    inputs = [(transport.time_at((position if k == passes - 1 else min(position, length - 1e-6)) + k * song),
               message)
              for k in range(passes) for position, message in notes if not (k and position < lead_in)]
    inputs.sort(key=lambda item: item[0])

    started = time.perf_counter()
    drums = _play(engine, transport, inputs, total_steps, settings.lookahead, (max_rest_bars, shift),
                  [lead_in + k * song for k in range(1, passes)])
    wall = time.perf_counter() - started
    engine.close()
    if ending:
        drums = _ending(drums, performance, downbeat, shift + (passes - 1) * song, transport, engine)
    _write(path_out, bpm, inputs, drums, transport, shift, lead_in)
    return RenderResult(engine.pattern, song * passes // STEPS_PER_BAR, bpm, wall, engine.stats())


def _check(path_in: Path, path_out: Path, passes: int, max_rest_bars: int, seed: int | None = None) -> None:
    """The options a render cannot take, each as one line that says what to give."""
    if path_in.exists() and (path_out.resolve() == path_in.resolve()
                             or path_out.exists() and path_out.samefile(path_in)):    # a link to it, too
        raise RenderError(f"-o {path_out} is the keyboard file itself: give another -o (the drum file would overwrite it)")
    if passes < 1:
        raise RenderError(f"--passes {passes}: play the performance at least once")
    if max_rest_bars < 0:
        raise RenderError(f"--max-rest {max_rest_bars}: bars of silence, 0 (play through) or more")
    if seed is not None and seed < 0:
        raise RenderError(f"--seed {seed}: give 0 or more")


def _band_starts(engine: Engine, performance: Performance, notes: list[tuple[float, mido.Message]],
                 lead_in: int) -> None:
    """The band starts where the player comes in (``notes`` on the engine's time line), on bar 1 at
    ``lead_in`` or later (``--downbeat`` before the first note): the drums come in there with a
    crash, at the level the part comes in at (:func:`opening_level`)."""
    first = min(position for position, m in notes if m.type == "note_on" and m.velocity)
    engine.player.mark(max(lead_in, entry_downbeat(first)), 0.0, begins=True)
    level = opening_level(performance)
    if level is not None:
        engine.open_at(level)


def _write(path_out: Path, bpm: float, inputs: list[tuple[float, mido.Message]], drums: list[tuple[float, mido.Message]],
           transport: InternalClock, shift: float, lead_in: float) -> None:
    """Back onto the file's time line, and out: the drums come in on bar 1 (``lead_in`` on the
    engine's line; a hit pushed early, just before it). A bar 1 off the file's own bar lines (a
    ``--pickup`` or ``--downbeat``) gets a short first bar, so the file's bar lines are the song's."""
    step_seconds = transport.time_at(1.0) - transport.time_at(0.0)
    offset = shift * step_seconds
    start = (lead_in - 0.5) * step_seconds - 1e-9
    drums = _balanced([(t - offset, m) for t, m in drums if t >= start or m.type == "note_off"])
    keyboard = [(t - offset, m) for t, m in inputs]
    try:
        write_file(path_out, bpm, keyboard, drums, pickup_bar(short_first_bar(lead_in - shift), step_seconds))
    except OSError as error:
        raise RenderError(f"{path_out}: cannot write the drum file ({error.strerror or error})") from None


def _tempo(performance: Performance, bpm: float | None, path_in: Path, downbeat: float) -> float:
    """The tempo to render at (given, else the file's, else 120); says what it does with the file."""
    try:
        bpm = check_bpm(bpm if bpm is not None else (performance.bpm or 120.0))
    except ValueError as error:
        raise RenderError(f"--bpm: {error}" if bpm is not None else f"{path_in}: {error}; give --bpm") from None
    drift = drifts_from(performance, downbeat)
    own = drift is None and keeps_its_own_tempo(performance)
    if drift is not None:
        log.warning("%s: from bar %d its eighths sit 0.4 of a sixteenth or more off where they sat at the start "
                    "(%d of %d 2-bar windows): if it was played without a click, the drums, which keep the file's "
                    "beat, will not follow it; %s", path_in, *drift, PLAY_TO_A_CLICK)
    elif own:
        log.warning("%s: its notes sit on a steady beat of their own, not on the file's %g BPM: if it was "
                    "played without a click, the drums, which keep the file's beat, will not follow it; %s",
                    path_in, performance.bpm or 120.0, PLAY_TO_A_CLICK)
    elif (off := off_the_beat(performance)) is not None:
        log.warning("%s: its notes leave the file's %g BPM beat (%d of %d 4-bar stretches sit on another): if it "
                    "was played without a click, the drums, which keep the file's beat, will not follow it; %s",
                    path_in, performance.bpm or 120.0, *off, PLAY_TO_A_CLICK)
    if performance.tempo_changes:
        log.warning("%s changes tempo %d times: the box plays one tempo, so the notes keep their place in the "
                    "bar at %g BPM and the keyboard track is written at that tempo too (a ritardando drawn as a "
                    "tempo map is played straight); give --bpm for another", path_in, performance.tempo_changes, bpm)
    if performance.meters:
        numerator, denominator, position = performance.meters[0]
        where = "" if position == 0 else f" from quarter note {position / STEPS_PER_BEAT + 1:g}"
        log.warning("%s is in %d/%d%s: the box plays 4/4 only, so it hears and plays 4/4 bars over it "
                    "(give a 4/4 part, or expect the drums' bar lines off the part's)",
                    path_in, numerator, denominator, where)
    if performance.drum_channel_only:
        log.warning("%s has notes only on channel 10 (a drum track?): heard as the groove anyway", path_in)
    if performance.drums_left_out:
        log.warning("%s: its %d notes on channel 10 (a drum track beside the keyboard's?) are left out: the box "
                    "hears the other channels, and the drums it writes take their place", path_in,
                    performance.drums_left_out)
    return bpm


def _play(engine: Engine, transport: InternalClock, inputs: list[tuple[float, mido.Message]],
          total_steps: int, lookahead: float, rest: tuple[int, float],
          bar_ones: list[int]) -> list[tuple[float, mido.Message]]:
    """Run the engine on the virtual clock through the inputs; the drum events it played.
    ``rest``: (``max_rest_bars``, the steps from the file's time line to the engine's). A silence
    longer than ``max_rest_bars``, with more than ``REST_AHEAD_LOOPS`` loops of it to come, stops
    the drums and the clock skips to the loop point before the next note (one log line). At each
    of ``bar_ones`` (steps: a later pass's bar 1) the phrases count from bar 1 again."""
    max_rest_bars, shift = rest
    drums: list[tuple[float, mido.Message]] = []
    step_seconds = transport.time_at(1.0) - transport.time_at(0.0)
    loop_seconds = STEPS * step_seconds
    rest_seconds = max_rest_bars * STEPS_PER_BAR * step_seconds
    last = transport.time_at(total_steps - 0.5) - lookahead - 1e-9
    now, index, heard = 0.0, 0, 0.0
    while now <= last:
        if bar_ones and now >= transport.time_at(bar_ones[0]) - lookahead - 2 * TICK_SECONDS:
            engine.player.phrase_from(bar_ones.pop(0))
        while index < len(inputs) and inputs[index][0] <= now:
            engine.handle(inputs[index][1], inputs[index][0])
            heard = inputs[index][0]
            index += 1
        if max_rest_bars and index < len(inputs) and now - heard > rest_seconds \
                and inputs[index][0] - now > REST_AHEAD_LOOPS * loop_seconds:
            drums.extend((event.time, event.message) for event in engine.player.drain())
            drums.extend((now, message) for message in engine.all_notes_off())
            back = math.floor(inputs[index][0] / loop_seconds) * loop_seconds
            bar = [file_bar(transport.position(t) - shift, short_first_bar(-shift)) for t in (heard, now, back)]
            log.info("silent from bar %d: the drums stop in bar %d, %d bars on (--max-rest), and come back at "
                     "bar %d, the loop point before the next note", bar[0], bar[1], max_rest_bars, bar[2])
            now = heard = back
            continue
        events = engine.tick(now)
        cut = engine.withdrawn()
        if cut is not None:     # as the box: what waited to be sent from the cut on is not played
            drums = [(t, m) for t, m in drums if m.type != "note_on" or t < max(cut, now)]
        drums.extend((event.time, event.message) for event in events)
        now += TICK_SECONDS
    drums.extend((event.time, event.message) for event in engine.player.drain())
    return drums


@dataclass(frozen=True)
class Chord:
    """A chord the band ends on (the song's last, or its cold stop before it): where it starts
    (steps in the file) and how loud (0..1)."""

    start: float
    velocity: float
    waits: bool = True   #: when it comes under DUE_LATE after a bar line, the drums wait from that line (a ritardando's late chord)


def sounding(performance: Performance) -> list[tuple[float, float, float]]:
    """Every note as (onset, release, velocity 0..1): the release is its note-off, or the sustain
    pedal's lifting when the pedal (CC 64) is down then; a note never let go sounds to the end."""
    held: dict[tuple[int, int], list[tuple[float, float]]] = {}
    ended: list[tuple[float, float, float, int]] = []   # (onset, note-off, velocity, channel)
    pedal_ups: dict[int, list[tuple[float, float]]] = {}   # channel → (down from, up at)
    down: dict[int, float] = {}
    end = max(position for position, _ in performance.notes)
    for position, m in performance.notes:
        if m.type == "note_on" and m.velocity:
            held.setdefault((m.channel, m.note), []).append((position, m.velocity / 127))
        elif m.type in ("note_on", "note_off") and held.get((m.channel, m.note)):
            onset, velocity = held[(m.channel, m.note)].pop(0)
            ended.append((onset, position, velocity, m.channel))
        elif m.type == "control_change" and m.control == 64:
            if m.value >= 64 and m.channel not in down:
                down[m.channel] = position
            elif m.value < 64 and m.channel in down:
                pedal_ups.setdefault(m.channel, []).append((down.pop(m.channel), position))
    for channel, since in down.items():
        pedal_ups.setdefault(channel, []).append((since, end))
    out = [(onset, end, velocity) for notes in held.values() for onset, velocity in notes]
    for onset, off, velocity, channel in ended:
        lifted = [up for since, up in pedal_ups.get(channel, []) if since <= off < up]
        out.append((onset, max([off, *lifted]), velocity))
    return sorted(out)


def final_chord(performance: Performance, downbeat: float = 0.0) -> Chord | None:
    """The chord that ends the song, if one does: the last chord held (:func:`held_chord`), else
    the band's button (:func:`button`). A part that stops on short notes off the bar line at its
    own level (a loop cut after its figure) has no ending (:func:`band_stops`), nor does a single chord.
    ``downbeat``: bar 1, in steps."""
    notes = sounding(performance)
    return held_chord(notes) or button(notes, downbeat)


def held_chord(notes: list[tuple[float, float, float]]) -> Chord | None:
    """The last notes that ring ENDING_RING steps or more (held, or under the pedal), with at
    most TAG_ONSETS short notes after them (a tag), softer or struck while they ring, and within a
    bar unless softer and struck while they ring (a pedalled chord's soft last notes); its
    start is the first note of it still sounding then, up to a beat before (a rolled chord, a
    pushed one); more than half of the notes struck with it ring on. The song before it lasts
    ENDING_AFTER steps or more, and the bar from it is not the part's loop again
    (:func:`plays_its_loop`)."""
    ringing = [n for n in notes if n[1] - n[0] >= ENDING_RING]
    if not ringing:
        return None
    last = ringing[-1][0]
    chord = [n for n in ringing if last - STEPS_PER_BEAT <= n[0] and n[1] >= last]
    start, loudest = min(onset for onset, _, _ in chord), max(velocity for _, _, velocity in chord)
    after = [(onset, velocity) for onset, _, velocity in notes if onset > last + CHORD_SPREAD]
    tags = chord_starts([onset for onset, _ in after])
    rings_to = max(off for _, off, _ in chord)
    late = [(onset, velocity) for onset, velocity in after if onset > last + STEPS_PER_BAR and velocity >= TAG_SOFT * loudest
            and (onset >= rings_to - CHORD_SPREAD or velocity >= TAG_LEVEL * loudest)]
    if len(tags) > TAG_ONSETS or late \
            or any(velocity >= TAG_LEVEL * loudest for onset, velocity in after if onset >= rings_to - CHORD_SPREAD):
        return None     # too many notes after it, a loud one or one after it let go a bar on, or a stinger
    struck = [n for n in notes if start - CHORD_SPREAD <= n[0] <= last + CHORD_SPREAD]
    if start - notes[0][0] < ENDING_AFTER or 2 * len(chord) <= len(struck) or plays_its_loop(notes, start):
        return None     # a bass note held under the figure going on; the loop's own held chord
    return Chord(start, loudest)


def plays_its_loop(notes: list[tuple[float, float, float]], start: float) -> bool:
    """Whether the bar from ``start`` plays the part's loop again: two chords or more, each where
    the part played one a loop before, the one at ``start`` let go no more than a beat later than
    then (a hip-hop loop's held chord and its lick, cut off: no ending)."""
    def bar_from(at: float) -> list[float]:
        return chord_starts([o for o, _, _ in notes if at - CHORD_SPREAD <= o < at + STEPS_PER_BAR - CHORD_SPREAD])

    now, then = bar_from(start), bar_from(start - STEPS)
    if len(now) < 2 or not all(any(abs(a - STEPS - b) <= CHORD_SPREAD for b in then) for a in now):
        return False
    held = [off - onset for onset, off, _ in notes if abs(onset - start) <= CHORD_SPREAD]
    before = [off - onset for onset, off, _ in notes if abs(onset - start + STEPS) <= CHORD_SPREAD]
    return bool(before) and max(held) <= max(before) + STEPS_PER_BEAT


def button(notes: list[tuple[float, float, float]], downbeat: float) -> Chord | None:
    """A short last chord with nothing after it, a loop's worth of song before it: the stab the
    band ends on, on a bar line (:func:`on_the_line`) or accented anywhere (:func:`accented`: a
    push on the "and" of 4, a hit on beat 2), or at 127 pushed on the "and" of 4 (a part played at
    127 all along has no accent, and ends on its push). Its notes are the last onsets each within
    ``CHORD_SPREAD`` of the next (a roll, a flam)."""
    if not notes:
        return None
    onsets = sorted({onset for onset, _, _ in notes})
    start = onsets[-1]
    for onset in reversed(onsets[:-1]):
        if start - onset > CHORD_SPREAD:
            break
        start = onset
    loudest = max(velocity for onset, _, velocity in notes if onset >= start)
    if start - notes[0][0] < ENDING_AFTER:
        return None
    bar_line = downbeat + round((start - downbeat) / STEPS_PER_BAR) * STEPS_PER_BAR
    if on_the_line(notes, start, bar_line):
        return Chord(start, loudest)
    before = [velocity for onset, _, velocity in notes if start - BUTTON_BARS * STEPS_PER_BAR <= onset < start]
    pushed_at_127 = (loudest >= 1.0 and bool(before) and float(np.median(before)) >= 1.0
                     and abs(bar_line - BUTTON_PUSH - start) <= PUSH_SLACK)
    if accented(notes, start, loudest) or pushed_at_127 or leaves_out_the_one(notes, start, downbeat, loudest):
        # a stab in the bar's first beat is a late downbeat (the drums wait from the bar line);
        # one from beat 2 on is where the band put it (the drums play up to it)
        return Chord(start, loudest, waits=(start - downbeat) % STEPS_PER_BAR < STEPS_PER_BEAT - BUTTON_EARLY)
    return None


def on_the_line(notes: list[tuple[float, float, float]], start: float, bar_line: float) -> bool:
    """A chord at ``start`` on ``bar_line``: ``BUTTON_EARLY`` before it to ``BUTTON_LATE`` after
    (laid back), nothing else in its beat before it."""
    return (-BUTTON_EARLY <= start - bar_line <= BUTTON_LATE
            and not any(bar_line - BUTTON_EARLY <= onset < start for onset, _, _ in notes))


def accented(notes: list[tuple[float, float, float]], start: float, loudest: float) -> bool:
    """A chord at ``start`` louder than everything in the ``BUTTON_BARS`` bars before it (give or
    take ``CHORD_SPREAD``: the figure's own accent a loop before, played a little early), by
    ``BUTTON_ACCENT`` × or ``ACCENT_STEP``, or up to 127 (a part played at 127 all along has no
    accent)."""
    reach = BUTTON_BARS * STEPS_PER_BAR + CHORD_SPREAD
    before = [velocity for onset, _, velocity in notes if start - reach <= onset < start]
    return (bool(before) and loudest > max(before)
            and loudest >= min(1.0, BUTTON_ACCENT * max(before), max(before) + ACCENT_STEP))


def leaves_out_the_one(notes: list[tuple[float, float, float]], start: float, downbeat: float,
                       loudest: float) -> bool:
    """Whether the part's last bar, holding ``start``, leaves out the 1 that the part played in
    each of the ``BUTTON_BARS`` bars before it (a 32nd early to a 16th late), and its last chord,
    at ``start``, on an eighth after the 1 and after another chord in the bar, is as loud as the
    middle of those bars' notes: the band's tag ("shave and a haircut, two bits"; one chord alone
    after the 1 is a loop cut off)."""
    line = downbeat + math.floor((start - downbeat + BUTTON_EARLY) / STEPS_PER_BAR) * STEPS_PER_BAR
    eighth = STEPS_PER_BEAT / 2
    if start - line < eighth or abs((start - line + eighth / 2) % eighth - eighth / 2) > BUTTON_EARLY:
        return False     # on the 1 (on_the_line's), or off the eighths (a drifting part's)
    ones = [line - k * STEPS_PER_BAR for k in range(BUTTON_BARS + 1)]
    played = [any(-BUTTON_EARLY <= onset - one <= BUTTON_LATE for onset, _, _ in notes) for one in ones]
    before = [velocity for onset, _, velocity in notes if line - BUTTON_BARS * STEPS_PER_BAR - BUTTON_EARLY <= onset < line]
    tag = chord_starts([onset for onset, _, _ in notes if line - BUTTON_EARLY <= onset <= start])
    return (not played[0] and all(played[1:]) and len(tag) >= 2 and bool(before)
            and loudest >= float(np.median(before)))


def band_stops(notes: list[tuple[float, float, float]], downbeat: float) -> float | None:
    """Where a part with no ending chord stops (steps; None: a part shorter than a loop plays its
    loops out): the first bar line after its last note at which nothing sounds any more
    (``RELEASE_SLACK``), or the loop's end when the part rested in the bar after it a loop before
    (a figure whose second bar is a rest: the song goes on through it)."""
    if not notes or notes[-1][0] - notes[0][0] < ENDING_AFTER:
        return None
    release = max(off for _, off, _ in notes)
    line = downbeat + (math.floor((notes[-1][0] - downbeat) / STEPS_PER_BAR) + 1) * STEPS_PER_BAR
    while release > line + RELEASE_SLACK:
        line += STEPS_PER_BAR
    early = BUTTON_EARLY      # a note a 32nd early belongs to the next bar
    rested = not any(line - STEPS - early <= onset < line - STEPS + STEPS_PER_BAR - early for onset, _, _ in notes)
    if round((line - downbeat) / STEPS_PER_BAR) % BARS_PER_WINDOW and rested:
        line += STEPS_PER_BAR
    return line


def cold_stops(notes: list[tuple[float, float, float]], chord: Chord, downbeat: float) -> list[Chord]:
    """The band's cold stops before ``chord``, if it made them: chords that would each have ended
    the song there (held, or a button), each followed by a bar's rest (:func:`rests`), up to
    ``COLD_CHAIN`` a bar apart (hit, hit, hit), the first after a busy part (``COLD_BUSY`` chords
    or more in each of its two bars before: :func:`busy_before`); none when the part rested so
    ``COLD_FORM`` times before, once the band was playing (an intro's hits do not count), as its
    form (a call and its response, a section of hits and rests)."""
    resting, heads = rests(notes), chord_starts([onset for onset, _, _ in notes])
    stops: list[Chord] = []
    end = chord.start
    while len(stops) < COLD_CHAIN:
        before = [n for n in notes if n[0] < end]
        stop = (held_chord(before) or button(before, downbeat)) if before else None
        if stop is None or not any(-CHORD_SPREAD <= rest - stop.start <= STEPS_PER_BEAT for rest in resting):
            return []     # (a rolled chord's rest is its last note's)
        stops.insert(0, stop)
        if busy_before(heads, stop.start):
            grooving = next((head for head in heads if busy_before(heads, head)), stop.start)   # after any intro
            form = sum(1 for rest in resting if grooving <= rest < stop.start - CHORD_SPREAD)
            return [] if form >= COLD_FORM else stops
        end = stop.start
    return []


def band_hits(notes: list[tuple[float, float, float]], first: Chord, downbeat: float) -> list[Chord]:
    """The band's hits into its ending (``first``: its last chord, or the first of its cold stops),
    if it played them: from a bar line, in ``first``'s bar or the bar before, short chords
    (``HITS_NOTES`` notes or more) a beat or more apart and under a bar (``HITS_APART``; a bar's
    rest is a cold stop's), each let go a sixteenth before the next (``HITS_REST``), each as loud
    as the two bars before them (their median) or louder, after two bars that grooved (a chord
    under ``HITS_APART`` after another in each), and not the part's own figure (a chord a bar
    before each, up to the last chord's place under ``FIGURE_BUSIER`` × as busy as the hits). A boogie's stab on the 1
    before its last chord on the "and" of 2; a rock band's kicks on 1, the "and" of 2 and 4. The
    drums hit them with the band and lay out between (they grooved on through them, a musician's
    review)."""
    heads = chord_starts([onset for onset, _, _ in notes if onset < first.start - CHORD_SPREAD])
    bar = downbeat + math.floor((first.start - downbeat + BUTTON_EARLY) / STEPS_PER_BAR) * STEPS_PER_BAR
    hits: list[Chord] = []
    after = first.start
    for head in reversed(heads):
        struck = [n for n in notes if head <= n[0] <= head + CHORD_SPREAD]
        if (head < bar - STEPS_PER_BAR - BUTTON_EARLY or not HITS_APART <= after - head < STEPS_PER_BAR - BUTTON_EARLY
                or max(off for _, off, _ in struck) > after - HITS_REST or len(struck) < HITS_NOTES):
            break
        hits.insert(0, Chord(head, max(velocity for _, _, velocity in struck), waits=False))
        after = head
    while hits and not on_the_line(notes, hits[0].start, downbeat + round(
            (hits[0].start - downbeat) / STEPS_PER_BAR) * STEPS_PER_BAR):
        hits.pop(0)
    if not hits or not all(grooved(heads, hits[0].start - k * STEPS_PER_BAR) for k in range(2)):
        return []
    before = [velocity for onset, _, velocity in notes if hits[0].start - 2 * STEPS_PER_BAR <= onset < hits[0].start]
    if min(hit.velocity for hit in hits) < float(np.median(before)):
        return []     # softer than the band: the piano's plinks before the band's last chord (a Basie ending)
    before_them = [head for head in heads
                   if hits[0].start - STEPS_PER_BAR - CHORD_SPREAD <= head < first.start - STEPS_PER_BAR - CHORD_SPREAD]
    if len(before_them) < FIGURE_BUSIER * len(hits) and all(
            any(abs(hit.start - STEPS_PER_BAR - head) <= CHORD_SPREAD for head in before_them) for hit in hits):
        return []     # the part's own figure up to its last chord, a bar on (give or take a lead-in, a bass note)
    return hits


def tag_before(notes: list[tuple[float, float, float]], chord: Chord, downbeat: float) -> list[Chord]:
    """The band's tag's chords before its last (``chord``, a button: a held chord after a late 1 is
    a ritardando's), when the tag leaves out its bar's 1 (:func:`leaves_out_the_one`: "two" of
    "shave and a haircut, two bits"): the drums rest on
    the 1 with the band (they played it, two musicians' reviews) and hit each with the snare and
    the kick, the last chord with the crash. At most ``TAG_HITS`` chords of ``HITS_NOTES`` notes
    or more, an eighth or more apart: a single-note run into the button is not a tag (a code
    review heard a snare and a kick on each of its notes)."""
    if not leaves_out_the_one(notes, chord.start, downbeat, chord.velocity):
        return []
    line = downbeat + math.floor((chord.start - downbeat + BUTTON_EARLY) / STEPS_PER_BAR) * STEPS_PER_BAR
    heads = chord_starts([onset for onset, _, _ in notes if line - BUTTON_EARLY <= onset < chord.start - CHORD_SPREAD])
    places = [*heads, chord.start]
    struck = [[n for n in notes if head <= n[0] <= head + CHORD_SPREAD] for head in heads]
    if (not heads or len(heads) > TAG_HITS or any(b - a < STEPS_PER_BEAT / 2 - CHORD_SPREAD for a, b in zip(places, places[1:]))
            or any(len(chord_notes) < HITS_NOTES for chord_notes in struck)):
        return []     # a run or a line into the button, not the band's "two": the drums play up to it
    return [Chord(head, max(velocity for _, _, velocity in chord_notes)) for head, chord_notes in zip(heads, struck)]


def struck_on_the_line(notes: list[tuple[float, float, float]], chord: Chord, downbeat: float) -> bool:
    """Whether the band struck a chord (``HITS_NOTES`` notes or more) on the bar line before
    ``chord``, which comes later in that bar (the comp's last quarter, a stab the hits left out;
    within a 32nd of the line: a ritardando's notes drag later, and its line of single notes
    into the last chord may cross it), and the chord falls on an eighth after it, within a 32nd
    (a smooth ritardando's dragged "and" of 4 may land on the line, its last chord off the
    eighths): the chord was not due on the line, a ritardando's late one, and the drums play up
    to it."""
    line = downbeat + math.floor((chord.start - downbeat + BUTTON_EARLY) / STEPS_PER_BAR) * STEPS_PER_BAR
    struck = [onset for onset, _, _ in notes if abs(onset - line) <= BUTTON_EARLY and onset < chord.start - CHORD_SPREAD]
    eighth = STEPS_PER_BEAT / 2
    on_an_eighth = abs((chord.start - line + eighth / 2) % eighth - eighth / 2) <= BUTTON_EARLY
    return len(struck) >= HITS_NOTES and on_an_eighth


def grooved(heads: list[float], at: float) -> bool:
    """Whether the bar before ``at`` holds a chord under ``HITS_APART`` after another (``heads``:
    chord starts; quarters played a touch early are not, as they are not hits either)."""
    bar = [onset for onset in heads if at - STEPS_PER_BAR <= onset < at]
    return any(b - a < HITS_APART for a, b in zip(bar, bar[1:]))


def busy_before(heads: list[float], at: float) -> bool:
    """Whether each of the two bars before ``at`` holds ``COLD_BUSY`` chords or more (``heads``:
    the part's chord starts)."""
    bars = [(at - (k + 1) * STEPS_PER_BAR, at - k * STEPS_PER_BAR) for k in range(2)]
    return all(sum(1 for onset in heads if a <= onset < b) >= COLD_BUSY for a, b in bars)


def rests(notes: list[tuple[float, float, float]]) -> list[float]:
    """The chords (their starts) after which the part rests a bar, the next chord a bar or more
    later: nothing sounds for a bar after everything let go; or everything let go within half a
    bar (a stab on the 1 and the next on the next 1, a half-note stop); or the chord rang on to a
    short cut-off at least as loud as it (a fermata, a stinger). Whole notes a bar apart (a pad),
    a fade's softer chords, are not rests."""
    heads = chord_starts([onset for onset, _, _ in notes])
    out = []
    for here, after in zip(heads, heads[1:]):
        if after - here < STEPS_PER_BAR - BUTTON_EARLY:
            continue
        release = max(off for onset, off, _ in notes if onset < after)
        level = max(velocity for onset, _, velocity in notes if here <= onset <= here + CHORD_SPREAD)
        cut_off = [(off - onset, velocity) for onset, off, velocity in notes if after <= onset <= after + CHORD_SPREAD]
        short_and_loud = max(length for length, _ in cut_off) < ENDING_RING and max(v for _, v in cut_off) >= level
        if (after - release >= STEPS_PER_BAR or release - here <= STEPS_PER_BAR / 2 + RELEASE_SLACK
                or (release >= after - RELEASE_SLACK and short_and_loud)):
            out.append(here)
    return out


def chord_starts(onsets: list[float]) -> list[float]:
    """The onsets that start a chord: each more than ``CHORD_SPREAD`` after the one before."""
    ordered = sorted(set(onsets))
    return [onset for i, onset in enumerate(ordered) if i == 0 or onset - ordered[i - 1] > CHORD_SPREAD]


def keeps_its_own_tempo(performance: Performance) -> bool:
    """Whether the part's notes sit on a steady grid other than the file's all through (played
    without a click, into a sequencer at its default tempo). Each grid 0.5–2 × the file's is
    judged by how well the notes' phases on its sixteenths agree (``PLAYED_AGREE``, and
    ``PLAYED_BETTER`` × how well they sit on the file's own subdivisions: :func:`_on_the_files`);
    grids near a simple multiple of the file's (3/4, 3/2 …) are the file's own read another way.
    Which tempo it was played at is not said: a part in eighths sits as well on a grid half as
    fast, or 3/2 as fast, and timing spread favours the slower (a code review)."""
    onsets = _onsets(performance)[:4000]
    if len(onsets) < PLAYED_NOTES:
        return False
    return _elsewhere(onsets)


def _elsewhere(onsets: np.ndarray) -> bool:
    """The onsets sit on another grid, clearly better than on the file's own."""
    return bool(_agree(onsets, _other_grids()).max() >= max(PLAYED_AGREE, PLAYED_BETTER * _on_the_files(onsets)))


def _onsets(performance: Performance) -> np.ndarray:
    return np.unique(np.round([position for position, m in performance.notes if m.type == "note_on" and m.velocity], 2))


def _agree(onsets: np.ndarray, ratios: np.ndarray, period: float = 1.0) -> np.ndarray:
    """How well the onsets' phases agree on a grid ``ratios`` × the file's, of ``period`` steps."""
    return np.abs(np.exp(2j * np.pi / period * np.outer(ratios, onsets)).mean(axis=1))


@functools.lru_cache(maxsize=1)
def _other_grids() -> np.ndarray:
    ratios = np.arange(PLAYED_RATIOS[0], PLAYED_RATIOS[1] + PLAYED_STEP / 2, PLAYED_STEP)
    simple = np.array(SIMPLE_RATIOS)
    return ratios[np.min(np.abs(ratios[:, None] / simple[None, :] - 1.0), axis=1) >= PLAYED_APART]


def _on_the_files(onsets: np.ndarray) -> float:
    """How well the onsets sit on the file's own grid: its sixteenths, eighth triplets (a swing),
    32nds, sixteenth triplets, quintuplets or septuplets (a run quantized to any of them; with
    the sixteenths alone a tremolo's 32nds read as another tempo: a code review)."""
    return float(max(_agree(onsets, np.array([1.0]), period=period)[0] for period in FILE_GRIDS))


def off_the_beat(performance: Performance) -> tuple[int, int] | None:
    """Whether the part leaves the file's beat (played without a click: a drift, a tempo other than
    the file's): (the ``PLAYED_WINDOW``-step windows whose notes sit on another steady grid rather
    than the file's, as :func:`keeps_its_own_tempo` judges a whole part, the windows with ``PLAYED_NOTES``
    onsets or more), when they are 2 or more and a third of those; else None."""
    onsets = _onsets(performance)
    said = off = 0
    for start in np.arange(0.0, onsets.max(initial=0.0) + 1.0, PLAYED_WINDOW):
        notes = onsets[(onsets >= start) & (onsets < start + PLAYED_WINDOW)] - start
        if len(notes) < PLAYED_NOTES:
            continue
        said += 1
        off += _elsewhere(notes)
    return (off, said) if off >= 2 and 3 * off >= said else None


def drifts_from(performance: Performance, downbeat: float = 0.0) -> tuple[int, int, int] | None:
    """Whether the part drifts off the file's beat: (the first bar of a window that is off, the
    windows off, the windows that say), or None. Each 2-bar window from bar 1 with DRIFT_NOTES
    notes or more says where its eighths fall: the mean of its notes' phases on the eighth-note
    grid, when they agree (DRIFT_AGREE). A window off by DRIFT_DEGREES from the first two that
    say is off. A steady push, drag or swing is the same all song and is not a drift; sixteenths
    and triplets all over the grid say nothing. What the eighths' phase cannot tell from a drift:
    a section whose rhythm moves them (straight after swung, syncopated sixteenths), or a feel
    that changes by 70 ms; what it misses: a part at a steady tempo 4 % or more off the file's,
    which turns through a whole eighth inside a window."""
    onsets = np.array([position for position, m in performance.notes if m.type == "note_on" and m.velocity]) - downbeat
    onsets = onsets[onsets >= -0.5]
    angles: list[tuple[int, float]] = []
    for window in range(int(onsets.max(initial=0.0) // STEPS) + 1):
        notes = onsets[(onsets >= window * STEPS - 0.5) & (onsets < (window + 1) * STEPS - 0.5)]
        if len(notes) >= DRIFT_NOTES:
            mean = np.exp(1j * np.pi * notes).mean()   # period 2 steps: an eighth note
            if abs(mean) >= DRIFT_AGREE:
                angles.append((window, float(np.angle(mean))))
    if len(angles) < DRIFT_WINDOWS + 2:
        return None
    start = float(np.angle(sum(np.exp(1j * a) for _, a in angles[:2])))
    off = [window for window, a in angles[2:]
           if abs(np.degrees(np.angle(np.exp(1j * (a - start))))) >= DRIFT_DEGREES]
    if len(off) < DRIFT_WINDOWS or len(off) < DRIFT_SHARE * (len(angles) - 2):
        return None
    return off[0] * BARS_PER_WINDOW + 1, len(off), len(angles) - 2


def _ending(drums: list[tuple[float, mido.Message]], performance: Performance, downbeat: float, shift: float,
            transport: InternalClock, engine: Engine) -> list[tuple[float, mido.Message]]:
    """The drums with the song's ending, if it has one (:func:`final_chord`, after the band's
    cold stops before it, :func:`cold_stops`), else stopped where the band stops
    (:func:`band_stops`); ``downbeat``: bar 1 on the file's time line; ``shift``: steps from the
    file's time line to the last pass's on the engine's."""
    notes = sounding(performance)
    chord = final_chord(performance, downbeat)
    if chord is None:
        line = band_stops(notes, downbeat)
        cut = transport.time_at(line + shift - 0.5) if line is not None else math.inf
        return [(t, m) for t, m in drums if t < cut or m.type != "note_on"]
    hits = [*cold_stops(notes, chord, downbeat), chord]
    tag = tag_before(notes, chord, downbeat) if len(hits) == 1 and held_chord(notes) is None else []
    hits = [*(tag or band_hits(notes, hits[0], downbeat)), *hits]
    at = hits[0].start + shift
    if hits[0].waits and struck_on_the_line(notes, hits[0], downbeat):
        hits[0] = Chord(hits[0].start, hits[0].velocity, waits=False)   # the band played the 1: no ritardando
    # The bar line the first hit was due on: the one before it when it comes under DUE_LATE after
    # it and waits (a ritardando's late chord: the drums wait from there), else the next (a push,
    # a stab on beat 2: the crash on the bar line before it is the hit's, not the pattern's).
    line = math.floor((at + 0.5) / STEPS_PER_BAR) * STEPS_PER_BAR
    due = line if (at - line < DUE_LATE and hits[0].waits) or tag else line + STEPS_PER_BAR
    cut = transport.time_at(min(due, at) - 0.5)
    crash = engine.player.settings.notes[CRASH]
    ahead = transport.time_at(line - 0.5) if at - line < DUE_LATE else cut
    kept = [(t, m) for t, m in drums
            if m.type != "note_on" or t < min(cut, ahead) or (t < cut and m.note != crash)]
    step_seconds = transport.time_at(1.0) - transport.time_at(0.0)
    for hit in hits:
        kept += _crash_and_kick(transport.time_at(hit.start + shift), step_seconds, engine.player.settings,
                                _ending_level(hit, engine, drums), (SNARE, KICK) if hit in tag else (CRASH, KICK))
    return kept


def _ending_level(chord: Chord, engine: Engine, drums: list[tuple[float, mido.Message]]) -> float:
    """The ending crash's level (0..1): as loud as the chord by the level law (dynamics.py),
    against the groove the pattern follows; a chord louder than the groove lifts the crash over
    the pattern's accents by the law's exponent; one as loud as the loudest the player played is
    the song's biggest crash (``drums``: the song's)."""
    law = engine.settings.dynamics, engine.settings.mf_velocity / 127
    played = dynamics.played(engine.groove)
    scale = (min(dynamics.MAX_SCALE, (chord.velocity / played) ** law[0]) if chord.velocity > played > 0.0
             else min(1.0, dynamics.law(chord.velocity, *law) / dynamics.law(played, *law)))
    level = accent_level(engine.pattern.steps) * scale
    if chord.velocity >= engine.loudest:
        level = max([level] + [m.velocity / 127 for _, m in drums
                               if m.type == "note_on" and m.note == engine.player.settings.notes[CRASH]])
    return level


def _crash_and_kick(at: float, step_seconds: float, settings: PlayerSettings, level: float,
                    voices: tuple[int, ...] = (CRASH, KICK)) -> list[tuple[float, mido.Message]]:
    """The crash and the kick (or ``voices``) at ``at`` (seconds), at ``level`` (0..1), with their note-offs."""
    velocity = max(1, min(127, round(level * 127)))
    out: list[tuple[float, mido.Message]] = []
    for voice in voices:
        channel, note = settings.channels[voice] - 1, settings.notes[voice]
        out.append((at, mido.Message("note_on", channel=channel, note=note, velocity=velocity)))
        out.append((at + settings.gate * step_seconds, mido.Message("note_off", channel=channel, note=note, velocity=0)))
    return out


def _balanced(drums: list[tuple[float, mido.Message]]) -> list[tuple[float, mido.Message]]:
    """Drop note-offs whose note-on was dropped (before bar 1, or cut by a skipped silence)."""
    sounding: dict[tuple[int, int], int] = {}
    out = []
    for t, message in sorted(drums, key=lambda item: item[0]):
        key = (message.channel, message.note)
        if message.type == "note_on":
            sounding[key] = sounding.get(key, 0) + 1
        elif sounding.get(key):
            sounding[key] -= 1
        else:
            continue
        out.append((t, message))
    return out


def short_first_bar(downbeat: float) -> int:
    """Steps of the short first bar a file gets when bar 1 (``downbeat``, steps into the file) is
    off its bar lines by whole sixteenths (a pickup); 0: none (on a bar line, or off the sixteenths)."""
    steps = downbeat % STEPS_PER_BAR
    return round(steps) if abs(steps - round(steps)) <= 1e-6 and 0 < round(steps) < STEPS_PER_BAR else 0


def file_bar(position: float, short: int) -> int:
    """The bar (from 1) of a position (steps) in the file written, after a short first bar of ``short`` steps."""
    if not short:
        return math.floor(position / STEPS_PER_BAR) + 1
    return 1 if position < short else math.floor((position - short) / STEPS_PER_BAR) + 2


def pickup_bar(steps: int, step_seconds: float) -> list[tuple[float, mido.MetaMessage]]:
    """The time signatures of a file whose first bar is ``steps`` long (:func:`short_first_bar`):
    that many quarters, eighths or sixteenths, then 4/4 from bar 1; [] for none."""
    if not steps:
        return []
    numerator, denominator = next((steps // unit, 4 * STEPS_PER_BEAT // unit) for unit in (4, 2, 1) if steps % unit == 0)
    return [(0.0, mido.MetaMessage("time_signature", numerator=numerator, denominator=denominator)),
            (steps * step_seconds, mido.MetaMessage("time_signature", numerator=4, denominator=4))]


def write_file(path: Path, bpm: float, keyboard: list[tuple[float, mido.Message]],
               drums: list[tuple[float, mido.Message]],
               meters: list[tuple[float, mido.MetaMessage]] | None = None) -> None:
    """A type-1 file any DAW opens: tempo + keyboard track, drum track; 4/4, or ``meters``
    (seconds, time signature) in the first track."""
    seconds_per_tick = 60.0 / bpm / OUT_TICKS_PER_BEAT
    meters = meters or []

    def track(name: str, timed: list[tuple[float, mido.Message]], tempo: bool) -> mido.MidiTrack:
        out = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0)])
        if tempo:
            out.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
            if not meters:
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
    midi.tracks.append(track("keyboard", sorted([*meters, *keyboard], key=lambda item: item[0]), tempo=True))
    midi.tracks.append(track("groovebox drums", drums, tempo=False))
    path.parent.mkdir(parents=True, exist_ok=True)
    midi.save(str(path))

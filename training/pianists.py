"""Pop piano accompaniment as a pianist records it, and the drummer measured on it.

    python -m training.pianists [models/groove-vae] [--seeds 1 2] [--density 0.5] [--write DIR]

training/comping.py's songs are played exactly on the grid. A recorded pianist is not: every
note a little early or late (10–35 ms), a push and a drag over each phrase, the sustain pedal
down through the bar, a song form whose sections change level (pp to ff), a one-beat stop or
two, and a ritardando into a last chord held for two bars. Four of the ten parts were also
played without a click, so they drift off the file's tempo (a gradual 3.5 % faster or 4 %
slower, or rubato phrase by phrase); `groovebox render` warns about those, and the drums,
which keep the file's tempo, cannot follow them.

Each part is rendered through the box's own `render` (int8, the defaults, the given density and
seeds) and measured by training/drumstats.py on issue 8's four figures: identical consecutive
2-bar windows, hits per 2 bars, backbeat accent (and the same outside fill bars) and velocity
SD, and how often the time moves between the ride and the closed hat; pooled (weighted by windows)
over the parts played to a click. Deterministic: the same seed, the same files.

    python -m training.pianists --dynamics [--law 0.7]

measures how the drums follow the sections' levels instead (appliance/core/dynamics.py): per
dynamic marking (pp to ff), the piano's level (the louder half of its notes) and the drums' mean
velocity, backbeat (snare on 2 and 4), crash and hits per 2 bars, over every section of every
part from its third bar (the groove memory hears a new level within a pass), and how the drums'
level moves with the piano's (the slope of log drums on log piano over each render's sections).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
import logging
import math
from pathlib import Path
import random
import tempfile
from typing import Callable

import mido
import numpy as np

from appliance.core.dynamics import DYNAMICS
from appliance.core.engine import EngineSettings
from appliance.core.generator import Controls
from appliance.core.groove import STEPS_PER_BAR, VOICES
from appliance.core.render import render
from training import drumstats
from training.playalong import drum_notes

REPO = Path(__file__).resolve().parent.parent
TPB = 480
LEVELS = {"pp": 32, "p": 46, "mp": 60, "mf": 74, "f": 90, "ff": 106}
ROOTS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}

#: what a hand plays in a bar: (beat in the bar, length in beats, hand, accent in velocity)
#: hand: "L" bass octave, "l" one bass note, "R" a chord, "A<k>" the k-th note of a broken chord
Figure = list[tuple[float, float, str, int]]


def four_on_the_floor(i: int) -> Figure:
    """Roots on every beat, chords on every beat (2 and 4 leaned on), a push on 4-and every other bar."""
    out = [(float(k), 0.9, "L", 4 if k in (0, 2) else 0) for k in range(4)]
    out += [(float(k), 0.8, "R", 6 if k in (1, 3) else 0) for k in range(4)]
    return out + ([(3.5, 0.45, "R", 8)] if i % 2 else [])


def whole_notes(i: int) -> Figure:
    """A ballad: bass and chord held through the bar, a chord again on 3 every other bar."""
    return [(0.0, 3.95, "L", 0), (0.02, 3.9, "R", -2)] + ([(2.0, 1.9, "R", -10)] if i % 2 else [])


def broken_eighths(i: int) -> Figure:
    """A held bass note under a broken chord in eighths."""
    return [(0.0, 3.9, "l", 6)] + [(k * 0.5, 0.9, f"A{(0, 1, 2, 3, 2, 1, 2, 1)[k]}", 0 if k % 2 == 0 else -6)
                                   for k in range(8)]


def broken_sixteenths(i: int) -> Figure:
    """Bass on 1 and 3 under a broken chord in sixteenths."""
    return [(0.0, 1.9, "l", 6), (2.0, 1.9, "l", 2)] + [(k * 0.25, 0.3, f"A{k % 4}", 2 if k % 4 == 0 else -8)
                                                       for k in range(16)]


def funk(i: int) -> Figure:
    """Syncopated stabs over a bass line, a two-bar figure."""
    stabs = ([(0, 0.2), (0.75, 0.15), (1.5, 0.2), (2.25, 0.15), (2.75, 0.2), (3.5, 0.3)] if i % 2 == 0 else
             [(0, 0.2), (0.5, 0.15), (1.25, 0.15), (2, 0.2), (2.75, 0.15), (3.25, 0.15), (3.75, 0.2)])
    out = [(float(p), d, "R", 8 if (p * 4) % 2 else 0) for p, d in stabs]
    return out + [(0.0, 0.4, "l", 6), (1.75, 0.2, "l", 0), (2.5, 0.4, "l", 2), (3.75, 0.2, "l", -4)]


def quarter_triplets(i: int) -> Figure:
    """A 6/8 feel in 4/4: bass on 1 and 3, a broken chord in quarter-note triplets."""
    return [(0.0, 1.9, "L", 4), (2.0, 1.9, "l", 0)] + [(k * 2 / 3, 0.6, f"A{(0, 1, 2, 3, 2, 1)[k]}",
                                                        4 if k % 3 == 0 else -6) for k in range(6)]


def pumping_eighths(i: int) -> Figure:
    """Bass octaves on 1 and 3, chords on every eighth."""
    return [(0.0, 1.9, "L", 4), (2.0, 1.9, "L", 0)] + [(k * 0.5, 0.45, "R", 6 if k % 2 == 0 else -4)
                                                       for k in range(8)]


def soul(i: int) -> Figure:
    """Half notes in both hands, a push into the next phrase every fourth bar."""
    out = [(0.0, 1.9, "L", 2), (2.0, 1.9, "l", 0), (0.0, 1.9, "R", 0), (2.0, 1.5, "R", -4)]
    return out + ([(3.5, 0.45, "R", 4)] if i % 4 == 3 else [])


def stride(i: int) -> Figure:
    """Bass on 1 and 3, chords on 2 and 4, a push every fourth bar."""
    out = [(0.0, 0.9, "L", 4), (1.0, 0.6, "R", 6), (2.0, 0.9, "l", 0), (3.0, 0.6, "R", 6)]
    return out + ([(3.5, 0.4, "R", 8)] if i % 4 == 3 else [])


INTRO, VERSE, PRE, CHORUS, BRIDGE = ("C", "G", "Am", "F"), ("Am", "F", "C", "G"), ("F", "G", "Em", "Am"), \
    ("C", "G", "Am", "F"), ("F", "Am", "G", "G")


def pop_form(levels: str, *, verse: int = 8, chorus: int = 8, bridge: int = 8) -> tuple[tuple[str, int, str, tuple[str, ...]], ...]:
    """Intro 4, verse, pre-chorus 4, chorus, verse, chorus, bridge, chorus; ``levels``: the eight
    sections' dynamics, e.g. "p mp mf f mp f p ff"."""
    lv = levels.split()
    return (("intro", 4, lv[0], INTRO), ("verse", verse, lv[1], VERSE), ("pre", 4, lv[2], PRE),
            ("chorus", chorus, lv[3], CHORUS), ("verse", verse, lv[4], VERSE), ("chorus", chorus, lv[5], CHORUS),
            ("bridge", bridge, lv[6], BRIDGE), ("chorus", chorus, lv[7], CHORUS))


@dataclass(frozen=True)
class Part:
    """A pianist's part: a song form played with a figure, and how the pianist plays it."""

    name: str
    bpm: float
    figure: Callable[[int], Figure]
    sections: tuple[tuple[str, int, str, tuple[str, ...]], ...]   #: (label, bars, dynamic, chords a bar)
    seed: int
    jitter_ms: float                 #: each chord's timing SD
    push: float = 0.0                #: tempo swells and sags by this over each 4-bar phrase
    drift: float = 0.0               #: tempo off the file's by this much by the end (no click)
    rubato: float = 0.0              #: each bar's tempo off by this SD (no click)
    rit_bars: int = 2                #: bars of ritardando (35 % slower) before and through the last chord
    held_bars: int = 2               #: the last chord, held
    stops: tuple[int, ...] = field(default=())   #: bars (from 1) whose beat 4 the band leaves out
    pedal: bool = True

    @property
    def bars(self) -> int:
        return sum(s[1] for s in self.sections) + self.held_bars

    @property
    def to_a_click(self) -> bool:
        return self.drift == 0.0 and self.rubato == 0.0


PARTS: tuple[Part, ...] = (
    Part("pop four-on-the-floor, 120", 120, four_on_the_floor, pop_form("p mp mf f mp f p ff"), 1, 15, stops=(20, 44)),
    Part("ballad, rubato, 72", 72, whole_notes, pop_form("pp p mp mf p f pp f"), 2, 30, rubato=0.05, rit_bars=4),
    Part("broken eighths, drifting faster, 96", 96, broken_eighths, pop_form("p mp mp f mp f p f"), 3, 20,
         push=0.02, drift=0.035),
    Part("broken sixteenths, 84", 84, broken_sixteenths, pop_form("pp p mp mf p f pp f"), 4, 12, push=0.03),
    Part("funk, 100", 100, funk, (("intro", 4, "mf", ("Am", "D")), ("verse", 16, "mf", ("Am", "D")),
                                  ("chorus", 8, "f", ("F", "G", "Em", "Am")), ("verse", 16, "mf", ("Am", "D")),
                                  ("chorus", 8, "f", ("F", "G", "Em", "Am")), ("chorus", 8, "ff", ("F", "G", "Em", "Am"))),
         5, 10, stops=(20, 28, 52), pedal=False),
    Part("6/8 feel in triplets, 126", 126, quarter_triplets, pop_form("p mp mf f mp f p f"), 6, 25, push=0.02),
    Part("pumping eighths, dragging, 132", 132, pumping_eighths, pop_form("mf mf f ff mf ff mp ff"), 7, 20,
         drift=-0.04, stops=(36,)),
    Part("song form pp to ff, 108", 108, four_on_the_floor, pop_form("pp p mf ff p ff pp ff"), 8, 18, push=0.02,
         stops=(20, 44)),
    Part("soul ballad, rubato, 70", 70, soul, pop_form("p p mp f p f pp ff", bridge=4), 9, 25, push=0.025,
         rubato=0.03, rit_bars=3),
    Part("stride, 140", 140, stride, pop_form("mf mf f ff mf ff mp ff", chorus=16), 10, 35, push=0.015, stops=(36, 70)),
)


def _chord(name: str) -> tuple[int, tuple[int, int, int]]:
    """A chord symbol's root (0..11) and triad (semitones above C)."""
    root = ROOTS[name[0]]
    third = 3 if name[1:].startswith("m") else 4
    return root, (root, root + third, root + 7)


def beat_seconds(part: Part, rng: random.Random) -> list[float]:
    """When the pianist plays each beat (seconds), the ritardando, pushes, drift and rubato in it."""
    beats = part.bars * 4 + 4
    rit_from = (part.bars - part.held_bars - part.rit_bars) * 4
    seconds, bar_tempo = [0.0], 0.0
    for beat in range(beats):
        tempo = part.bpm * (1 + part.drift * beat / (part.bars * 4))
        tempo *= 1 + part.push * math.sin(2 * math.pi * (beat % 16) / 16)
        if part.rubato and beat % 4 == 0:
            bar_tempo = rng.gauss(0, part.rubato)
        tempo *= 1 + bar_tempo
        if beat >= rit_from:
            tempo *= 1 - 0.35 * min(1.0, (beat - rit_from) / ((part.rit_bars + part.held_bars) * 4))
        seconds.append(seconds[-1] + 60.0 / tempo)
    return seconds


class _Pianist:
    """Plays a part: its notes and pedal as (tick, order, message), the file's tempo map constant."""

    def __init__(self, part: Part) -> None:
        self.part = part
        self.rng = random.Random(part.seed)
        self.seconds = beat_seconds(part, self.rng)
        self.events: list[tuple[int, int, mido.Message]] = []   # order: note-offs first at a tick

    def at(self, beat: float) -> float:
        whole = int(math.floor(beat))
        return self.seconds[whole] + (beat - whole) * (self.seconds[whole + 1] - self.seconds[whole])

    def tick(self, second: float) -> int:
        return max(0, round(second * self.part.bpm / 60 * TPB))

    def note(self, beat: float, length: float, pitch: int, velocity: float, late: float) -> None:
        on = self.tick(self.at(beat) + late + self.rng.gauss(0, 0.004))
        off = max(on + 20, self.tick(self.at(beat + length) + late - 0.02))
        velocity = int(max(8, min(127, velocity + self.rng.gauss(0, 6))))
        self.events.append((on, 1, mido.Message("note_on", note=pitch, velocity=velocity)))
        self.events.append((off, 0, mido.Message("note_off", note=pitch, velocity=0)))

    def pedal(self, beat: float, down: bool) -> None:
        self.events.append((self.tick(self.at(beat) + (0.06 if down else -0.03)), 2 if down else 0,
                            mido.Message("control_change", control=64, value=127 if down else 0)))

    def bar(self, start: float, i: int, chord: str, level: str, stop: bool) -> None:
        """Bar ``i`` of a section from beat ``start``; a stop leaves out its beat 4."""
        root, triad = _chord(chord)
        if self.part.pedal:
            self.pedal(start, True)
            self.pedal(start + (3.0 if stop else 3.97), False)
        for beat, length, hand, accent in self.part.figure(i):
            if stop and beat >= 3.0 - 0.01:
                continue
            length = min(length, 2.9 - beat) if stop else length
            late, velocity = self.rng.gauss(0, self.part.jitter_ms / 1000), LEVELS[level] + accent
            if hand == "L":
                self.note(start + beat, length, 36 + root, velocity, late)
                self.note(start + beat, length, 48 + root, velocity - 6, late)
            elif hand == "l":
                self.note(start + beat, length, 36 + root + (7 if self.rng.random() < 0.3 else 0), velocity, late)
            elif hand == "R":
                for pitch in triad:
                    self.note(start + beat, length, 60 + pitch + (12 if pitch < 4 else 0), velocity - 4,
                              late + self.rng.gauss(0, 0.006))
            else:
                broken = (48 + triad[0], 60 + triad[1], 60 + triad[2], 72 + triad[0])
                self.note(start + beat, length, broken[int(hand[1:]) % 4], velocity - 8, late)

    def last_chord(self, start: float) -> None:
        """Bass octave and triad, held, the pedal down."""
        root, triad = _chord(self.part.sections[-1][3][0])
        level, late = LEVELS[self.part.sections[-1][2]], self.rng.gauss(0, self.part.jitter_ms / 1000)
        held = self.part.held_bars * 4 - 0.2
        for pitch in (36 + root, 48 + root, *(60 + p for p in triad)):
            self.note(start, held, pitch, level, late)
        if self.part.pedal:
            self.pedal(start, True)
            self.pedal(start + held + 0.1, False)


def midi_file(part: Part) -> mido.MidiFile:
    """The part as a type-1 file at the part's tempo (the file's tempo map is constant: where the
    pianist's own tempo moves off it, as without a click, the notes move off its grid)."""
    pianist = _Pianist(part)
    bar0 = 0
    for _, bars, level, chords in part.sections:
        for i in range(bars):
            pianist.bar((bar0 + i) * 4, i, chords[i % len(chords)], level, bar0 + i + 1 in part.stops)
        bar0 += bars
    pianist.last_chord(bar0 * 4)
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(part.bpm), time=0),
                            mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0)])
    now = 0
    for when, _, message in sorted(pianist.events, key=lambda e: (e[0], e[1])):
        track.append(message.copy(time=when - now))
        now = when
    midi = mido.MidiFile(type=1, ticks_per_beat=TPB)
    midi.tracks.append(track)
    return midi


def measure(model_dir: Path, seeds: tuple[int, ...] = (1, 2), density: float = 0.5,
            keep: Path | None = None) -> list[tuple[Part, int, dict[str, float], int]]:
    """(part, seed, figures, 2-bar windows) of every part rendered with each seed."""
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        where = keep or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        for n, part in enumerate(PARTS, start=1):
            keys = where / f"p{n:02d}.mid"
            midi_file(part).save(str(keys))
            for seed in seeds:
                drums = where / f"p{n:02d}_drums_s{seed}.mid"
                render(keys, drums, model_dir=model_dir, seed=seed, controls=Controls(density=density))
                windows = drumstats.windows_from_notes(drum_notes(drums, 0), bars=part.bars)
                out.append((part, seed, drumstats.stats(windows), len(windows)))
    return out


def markdown(rows: list[tuple[Part, int, dict[str, float], int]], density: float) -> str:
    lines = [f"Density {density:g}, seeds {sorted({s for _, s, _, _ in rows})}; * played without a click "
             "(drifts off the file's tempo: not pooled).", "",
             "| part | seed | identical windows | hits per 2 bars | backbeat accent | outside fill bars | velocity SD "
             "| ride ↔ hat per 32 bars | time dropped (groove bars) |", "|---|---|---|---|---|---|---|---|---|"]
    for part, seed, figures, _ in rows:
        lines.append(f"| {part.name}{'' if part.to_a_click else ' *'} | {seed} | {figures['identical_windows']:.0%} "
                     f"| {figures['hits']:.1f} | {figures['backbeat_accent']:.2f} | {figures['backbeat_accent_grooves']:.2f} "
                     f"| {figures['velocity_sd']:.1f} | {figures['timekeeper_switches_per_32_bars']:.1f} "
                     f"| {figures['time_dropped_bars']:.0%} |")
    for title, chosen in (("pooled, to a click", [r for r in rows if r[0].to_a_click]), ("pooled, all", rows)):
        pooled = drumstats.pooled([(f, n) for _, _, f, n in chosen])
        lines.append(f"| **{title}** | | {pooled['identical_windows']:.0%} | {pooled['hits']:.1f} "
                     f"| {pooled['backbeat_accent']:.2f} | {pooled['backbeat_accent_grooves']:.2f} | {pooled['velocity_sd']:.1f} "
                     f"| {pooled['timekeeper_switches_per_32_bars']:.1f} | {pooled['time_dropped_bars']:.0%} |")
    return "\n".join(lines)


MARKS = tuple(LEVELS)
SETTLE_BARS = 2   #: a section's first bars, left out of its level (the memory hears a new level within a pass)


def section_levels(model_dir: Path, seeds: tuple[int, ...] = (1, 2), density: float = 0.5,
                   law: float = DYNAMICS) -> list[dict]:
    """Per section of every part and seed, from its third bar: the marking, the piano's level (the
    louder half of its notes), the drums' mean velocity, backbeat, crash (medians; of 127) and hits per 2 bars."""
    snare, crash = VOICES.index("snare"), VOICES.index("crash")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, part in enumerate(PARTS, start=1):
            keys, midi = Path(tmp) / f"p{n:02d}.mid", midi_file(part)
            midi.save(str(keys))
            tick, piano = 0, []
            for message in midi.tracks[0]:
                tick += message.time
                if message.type == "note_on" and message.velocity:
                    piano.append((tick / TPB / 4, message.velocity))
            notes = np.array(piano)
            for seed in seeds:
                drums = Path(tmp) / f"p{n:02d}_drums_s{seed}.mid"
                render(keys, drums, model_dir=model_dir, seed=seed, controls=Controls(density=density),
                       settings=EngineSettings(dynamics=law))
                hits = drum_notes(drums, 0)
                first = 0
                for label, bars, mark, _ in part.sections:
                    lo, hi, first = first + SETTLE_BARS, first + bars, first + bars
                    played = np.sort(notes[(notes[:, 0] >= lo) & (notes[:, 0] < hi), 1])
                    inside = hits[(hits[:, 0] >= lo * STEPS_PER_BAR) & (hits[:, 0] < hi * STEPS_PER_BAR)]
                    if hi - lo < 2 or not len(inside) or not len(played):
                        continue
                    beat = np.round(inside[:, 0]).astype(int) % STEPS_PER_BAR
                    backbeat = inside[(inside[:, 1] == snare) & np.isin(beat, (4, 12)), 2]
                    crashes = inside[inside[:, 1] == crash, 2]
                    rows.append({"part": n, "seed": seed, "section": label, "mark": mark,
                                 "piano": float(played[len(played) // 2:].mean()),
                                 "drums": float(inside[:, 2].mean() * 127),
                                 "backbeat": float(np.median(backbeat) * 127) if len(backbeat) else math.nan,
                                 "crash": float(np.median(crashes) * 127) if len(crashes) else math.nan,
                                 "hits": len(inside) / (hi - lo) * 2})
    return rows


def dynamics_markdown(rows: list[dict], law: float) -> str:
    lines = [f"Drums' level law {law:g}; every section from its bar {SETTLE_BARS + 1}, both seeds (medians of "
             "each section's backbeat and crash, averaged):", "",
             "| marking | piano (louder half) | drums' mean | backbeat | crash | hits per 2 bars | sections |",
             "|---|---|---|---|---|---|---|"]
    for mark in MARKS:
        chosen = [r for r in rows if r["mark"] == mark]
        if chosen:
            mean = {k: float(np.nanmean([r[k] for r in chosen])) for k in ("piano", "drums", "backbeat", "crash", "hits")}
            lines.append(f"| {mark} | {mean['piano']:.0f} | {mean['drums']:.1f} | {mean['backbeat']:.1f} "
                         f"| {mean['crash']:.1f} | {mean['hits']:.1f} | {len(chosen)} |")
    slopes = []
    for key in sorted({(r["part"], r["seed"]) for r in rows}):
        mine = [r for r in rows if (r["part"], r["seed"]) == key]
        x, y = np.log([r["piano"] for r in mine]), np.log([r["drums"] for r in mine])
        if x.std() > 0.05:
            slopes.append(float(np.polyfit(x, y, 1)[0]))
    if slopes:
        lines += ["", f"log drums' mean on log piano, per render: median slope {np.median(slopes):.2f} "
                      f"({min(slopes):.2f}–{max(slopes):.2f}, {len(slopes)} renders)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.ERROR)   # the drifting parts' warnings are the point, not news
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path, nargs="?", default=REPO / "models" / "groove-vae")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    p.add_argument("--density", type=float, default=0.5)
    p.add_argument("--write", type=Path, default=None, help="keep the parts and the drum files in this directory")
    p.add_argument("--dynamics", action="store_true", help="how the drums follow the sections' levels instead")
    p.add_argument("--law", type=float, default=DYNAMICS, help="with --dynamics: the drums' level law (loop.dynamics)")
    args = p.parse_args(argv)
    if args.dynamics:
        print(dynamics_markdown(section_levels(args.model_dir, tuple(args.seeds), args.density, args.law), args.law))
        return
    print(markdown(measure(args.model_dir, tuple(args.seeds), args.density, args.write), args.density))


if __name__ == "__main__":
    main()

"""Keyboard comping a player would bring to the box: songs of sections, with chords, held notes,
rests, pickups and section changes, played by simulated hands (timing drifts, dynamics breathe,
the player varies a bar now and then). Seeded; numpy and mido only.

These are the inputs `make evaluate` renders through the engine to measure the drummer
(training/playalong.py). They are the project's own phrases, written for that purpose; no
recording is copied.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np

TPB = 480

# One bar of a style: (beat, length in beats, pitches, velocity); pitches relative to the chord root.
Bar = list[tuple[float, float, tuple[int, ...], int]]
TRIAD = (0, 4, 7)
SEVENTH = (0, 4, 7, 10)


def _bass(beat: float, length: float, velocity: int) -> tuple[float, float, tuple[int, ...], int]:
    return (beat, length, (-24,), velocity)


STYLES: dict[str, Bar] = {
    # a held chord on 1, the bass under it: a ballad's first verse
    "held": [_bass(0, 3.9, 70), (0, 3.9, TRIAD, 62)],
    # whole-bar chord re-struck on 3
    "half": [_bass(0, 1.9, 76), (0, 1.9, TRIAD, 68), _bass(2, 1.9, 70), (2, 1.9, TRIAD, 60)],
    # pop eighths: bass on 1 and 3, chords on every eighth, accents on the backbeat
    "eighths": [_bass(0, 0.9, 92), _bass(2, 0.9, 84)]
    + [(b / 2, 0.4, TRIAD, 88 if b in (2, 6) else 64) for b in range(8)],
    # funk: syncopated sixteenth stabs and a bass line
    "funk": [_bass(0, 0.4, 100), _bass(0.75, 0.2, 72), _bass(1.5, 0.4, 80), _bass(2.5, 0.2, 70),
             _bass(3.25, 0.2, 76), (1.0, 0.2, SEVENTH, 96), (1.75, 0.2, SEVENTH, 58),
             (2.25, 0.2, SEVENTH, 62), (3.0, 0.2, SEVENTH, 98), (3.5, 0.2, SEVENTH, 60)],
    # off-beat chords (reggae/ska skank)
    "offbeat": [_bass(0, 0.9, 86), _bass(2.5, 0.9, 74)]
    + [(b + 0.5, 0.3, TRIAD, 84) for b in range(4)],
    # bossa: bass on 1 and 3 (with the push), syncopated chords
    "bossa": [_bass(0, 1.4, 78), _bass(1.5, 0.5, 64), _bass(2, 1.4, 74), _bass(3.5, 0.5, 62),
              (0, 0.4, SEVENTH, 66), (0.75, 0.4, SEVENTH, 60), (1.5, 0.4, SEVENTH, 64),
              (2.5, 0.4, SEVENTH, 62), (3.25, 0.4, SEVENTH, 60)],
    # a rocking quarter-note pulse with a pushed chord on the "and" of 4
    "quarters": [_bass(0, 0.9, 96), (0, 0.9, TRIAD, 90), (1, 0.9, TRIAD, 74), (2, 0.9, TRIAD, 86),
                 (3, 0.4, TRIAD, 72), (3.5, 0.5, TRIAD, 84)],
    "rest": [],
    # "arpeggio" (busy broken chords, a new rhythm every bar) is made up bar by bar in play()
}
BUSY = "arpeggio"

#: Chord roots (MIDI) a progression walks through, one per bar.
PROGRESSIONS = ((60, 67, 69, 65), (62, 67, 60, 60), (57, 65, 60, 67), (64, 69, 62, 67))


@dataclass(frozen=True)
class Song:
    name: str
    bpm: float
    sections: tuple[tuple[str, int], ...]   #: (style, bars)
    pickup_beats: float = 0.0               #: beats played before bar 1 (an off-bar start)

    @property
    def bars(self) -> int:
        return sum(bars for _, bars in self.sections)


#: The songs `make evaluate` plays, 38–56 bars each, every one with section changes and a rest.
SONGS: tuple[Song, ...] = (
    Song("pop ballad", 76, (("held", 4), ("half", 8), ("eighths", 8), ("rest", 2), ("half", 8),
                            ("eighths", 8), ("held", 4))),
    Song("funk", 104, (("funk", 8), ("quarters", 8), ("funk", 8), ("rest", 4), ("funk", 8),
                       ("quarters", 8))),
    Song("rock", 126, (("quarters", 8), ("eighths", 8), ("quarters", 8), ("rest", 2), ("eighths", 8),
                       ("half", 6)), pickup_beats=1.0),
    Song("reggae", 90, (("offbeat", 8), ("held", 4), ("offbeat", 8), ("rest", 2), ("offbeat", 8),
                        ("quarters", 8))),
    Song("bossa", 120, (("bossa", 16), ("half", 8), ("bossa", 16), ("rest", 4), ("bossa", 8))),
    # a busy pianist: broken chords in sixteenths, a different rhythm every bar, so that within a
    # few bars every step of the loop has been played (what made the old overdub stand still)
    Song("piano arpeggios", 84, ((BUSY, 16), ("held", 4), (BUSY, 16), ("rest", 2), (BUSY, 10))),
)


def play(song: Song, seed: int = 0) -> list[tuple[float, int, int, float]]:
    """(beat, pitch, velocity, length in beats) of every note, bar 1 at beat 0 (a pickup is
    negative). Hands: timing drifts (SD ≈ 0.025 beat), dynamics breathe over 4 bars, one
    bar in six drops or doubles a stab, a phrase's last bar holds its chord."""
    rng = np.random.default_rng(seed)
    notes: list[tuple[float, int, int, float]] = []
    bar = 0
    progression = PROGRESSIONS[seed % len(PROGRESSIONS)]
    for style, bars in song.sections:
        for k in range(bars):
            root = progression[bar % len(progression)]
            if style == BUSY:
                tones = (-12, 0, 4, 7, 12, 7, 4, 0)
                pattern: Bar = [(i / 4, 0.3, (tones[i % len(tones)],), int(rng.integers(48, 100)))
                           for i in range(16) if i % 4 == 0 or rng.random() < 0.55]
            else:
                pattern = list(STYLES[style])
            if pattern and rng.random() < 1 / 6:          # the player varies this bar
                if len(pattern) > 3 and rng.random() < 0.5:
                    pattern.pop(int(rng.integers(2, len(pattern))))
                else:
                    beat = float(rng.integers(0, 8)) / 2 + 0.25
                    pattern.append((beat, 0.2, TRIAD, int(rng.integers(50, 80))))
            if pattern and k == bars - 1 and bars >= 4 and style not in ("held", "rest"):
                pattern = [n for n in pattern if n[0] < 2] + [(2.0, 1.9, TRIAD, 80)]
            lift = 8 * np.sin(2 * np.pi * (bar % 4) / 4)
            for beat, length, pitches, velocity in pattern:
                for pitch in pitches:
                    jitter = rng.normal(0, 0.025)
                    v = int(np.clip(velocity + lift + rng.integers(-9, 10), 1, 127))
                    notes.append((bar * 4 + beat + jitter, root + pitch, v, length))
            bar += 1
    if song.pickup_beats:
        root = progression[0]
        for i in range(int(song.pickup_beats * 2)):
            beat = -song.pickup_beats + i / 2 + rng.normal(0, 0.02)
            notes.append((beat, root + 7 - 2 * i, int(rng.integers(70, 90)), 0.4))
    notes.sort()
    return notes


def midi_file(song: Song, seed: int = 0) -> tuple[mido.MidiFile, int]:
    """The song as a type-1 MIDI file, and the tick where bar 1 falls (the pickup comes first)."""
    notes = play(song, seed)
    shift = song.pickup_beats
    events: list[tuple[int, mido.Message]] = []
    for beat, pitch, velocity, length in notes:
        start = max(0, round((beat + shift) * TPB))
        events.append((start, mido.Message("note_on", note=pitch, velocity=velocity)))
        events.append((start + max(1, round(length * TPB * 0.95)), mido.Message("note_off", note=pitch)))
    events.sort(key=lambda e: (e[0], e[1].type == "note_on"))
    track = mido.MidiTrack([mido.MetaMessage("track_name", name=song.name, time=0),
                            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(song.bpm), time=0)])
    now = 0
    for tick, message in events:
        track.append(message.copy(time=tick - now))
        now = tick
    midi = mido.MidiFile(type=1, ticks_per_beat=TPB)
    midi.tracks.append(track)
    return midi, round(shift * TPB)


def write(song: Song, path: Path, seed: int = 0) -> int:
    """Write the song; returns the tick of bar 1."""
    midi, downbeat = midi_file(song, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    midi.save(str(path))
    return downbeat


def onsets_per_window(song: Song, seed: int = 0) -> np.ndarray:
    """Keyboard note-ons in each 2-bar window from bar 1 (for the follow correlation)."""
    windows = int(np.ceil(song.bars / 2))
    counts = np.zeros(windows)
    for beat, *_ in play(song, seed):
        w = int(np.floor((beat + 0.125) / 8))
        if 0 <= w < windows:
            counts[w] += 1
    return counts


"""Writes examples/keyboard_phrase.mid: four bars of keyboard comping, played by a person.

Left hand: a bass line on 1 and the "and" of 2. Right hand: chord stabs on the backbeat, a soft
eighth-note pulse between them, a pickup before bar 3 and a held chord at the end.
Timing drifts by a few milliseconds and the dynamics breathe, as a human's do. Seeded.
"""
from pathlib import Path
import random

import mido

BPM = 96
TPB = 480
OUT = Path(__file__).resolve().parent.parent / "examples" / "keyboard_phrase.mid"

# (beat within the bar, duration in beats, notes, velocity)
BASS = [(0, 0.75, [36], 96), (1.5, 0.5, [36], 70), (2.75, 0.25, [43], 62), (3.0, 0.5, [46], 78)]
CHORDS = [(1.0, 0.5, [60, 63, 67], 100), (3.0, 0.5, [58, 62, 65], 104), (3.75, 0.25, [58, 62, 65], 58)]
PULSE = [(beat + 0.5, 0.25, [67], 44) for beat in range(4)]  # a soft eighth-note pulse on the "and"s


def phrase() -> list[tuple[float, int, int, int]]:
    """(beat, note, velocity, duration in ticks) for every note of the four bars."""
    rng = random.Random(11)
    notes = []
    for bar in range(4):
        for beat, length, pitches, velocity in BASS + CHORDS + PULSE:
            if bar == 3 and beat >= 3:        # the last beat: a held chord instead
                continue
            lift = 6 if bar % 2 == 0 else -4  # the dynamics breathe over two bars
            for pitch in pitches:
                jitter = rng.gauss(0, 0.03)    # about 20 ms at 96 BPM
                v = max(1, min(127, velocity + lift + rng.randint(-8, 8)))
                notes.append((bar * 4 + beat + jitter, pitch, v, int(length * TPB * 0.9)))
        if bar == 1:                          # a pickup into the second time round
            notes.append((bar * 4 + 3.5 + rng.gauss(0, 0.02), 48, 66, TPB // 4))
    for pitch in (55, 60, 63, 67):            # the push into the next time round
        notes.append((15.0 - 0.04 + rng.gauss(0, 0.01), pitch, 100, TPB))
    return notes


def main() -> None:
    events = []
    for beat, pitch, velocity, duration in phrase():
        start = max(0, round(beat * TPB))
        events.append((start, mido.Message("note_on", note=pitch, velocity=velocity)))
        events.append((start + duration, mido.Message("note_off", note=pitch, velocity=0)))
    events.sort(key=lambda e: (e[0], e[1].type == "note_on"))
    track = mido.MidiTrack([mido.MetaMessage("track_name", name="keys", time=0),
                            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(BPM), time=0)])
    now = 0
    for tick, message in events:
        track.append(message.copy(time=tick - now))
        now = tick
    midi = mido.MidiFile(type=1, ticks_per_beat=TPB)
    midi.tracks.append(track)
    OUT.parent.mkdir(exist_ok=True)
    midi.save(str(OUT))


if __name__ == "__main__":
    main()

"""Loops as MIDI files and as audio through FluidSynth with a General MIDI SoundFont (the report's
listening set). Needs the fluidsynth command and a GM SoundFont (Debian: fluidsynth,
fluid-soundfont-gm); soundfile turns FluidSynth's output into small mono 16-bit WAV files.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import mido
import numpy as np
import soundfile

from appliance.core.groove import GM_NOTES, HIT, OFFSET, STEPS, STEPS_PER_BEAT, VELOCITY

TICKS_PER_BEAT = 480
TICKS_PER_STEP = TICKS_PER_BEAT // STEPS_PER_BEAT
DRUM_CHANNEL = 9          #: MIDI channel 10
GROOVE_NOTE = 76          #: GM hi wood block: the groove, heard as one sound
KEYBOARD_CHORD = (48, 55, 64, 67)  #: what the keyboard-like player presses on each hit (C major)
SAMPLE_RATE = 22050
SOUNDFONTS = (Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"), Path("/usr/share/sounds/sf2/default-GM.sf2"),
              Path("/usr/share/soundfonts/default.sf2"))


class AudioError(Exception):
    """FluidSynth or the SoundFont is missing, or a rendering failed; the message says which."""


def find_soundfont(path: Path | None = None) -> Path:
    candidates = (path,) if path is not None else SOUNDFONTS
    for candidate in candidates:
        if candidate is not None and candidate.is_file():
            return candidate
    raise AudioError(f"no General MIDI SoundFont at {', '.join(str(c) for c in candidates)}: "
                     f"install fluid-soundfont-gm (make report does, as root)")


def _timed(events: list[tuple[int, mido.Message]], bpm: float, name: str) -> mido.MidiFile:
    midi = mido.MidiFile(type=0, ticks_per_beat=TICKS_PER_BEAT)
    track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0),
                            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0),
                            mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0)])
    previous = 0
    for tick, message in sorted(events, key=lambda e: (e[0], e[1].type == "note_on")):  # offs first
        track.append(message.copy(time=tick - previous))
        previous = tick
    track.append(mido.MetaMessage("end_of_track", time=TICKS_PER_BEAT))  # a beat of ring-out
    midi.tracks.append(track)
    return midi


def _notes(cells: list[tuple[float, int, float]], repeats: int, channel: int, gate: float = 0.5) -> list:
    """(position in steps, note, velocity 0..1) per loop → note on/off events over `repeats` loops."""
    events = []
    for r in range(repeats):
        for position, note, velocity in cells:
            start = max(0, round((position + r * STEPS) * TICKS_PER_STEP))
            vel = int(np.clip(round(velocity * 127), 1, 127))
            events.append((start, mido.Message("note_on", channel=channel, note=note, velocity=vel)))
            events.append((start + round(gate * TICKS_PER_STEP),
                           mido.Message("note_off", channel=channel, note=note, velocity=0)))
    return events


def pattern_midi(pattern: np.ndarray, bpm: float, repeats: int = 2,
                 notes: tuple[int, ...] = GM_NOTES) -> mido.MidiFile:
    """A drum pattern [32, 9, 3] on channel 10 (GM kit), looped `repeats` times."""
    cells = [(step + float(pattern[step, voice, OFFSET]), notes[voice], float(pattern[step, voice, VELOCITY]))
             for step in range(STEPS) for voice in range(pattern.shape[1]) if pattern[step, voice, HIT] > 0.5]
    return _timed(_notes(cells, repeats, DRUM_CHANNEL), bpm, "drums")


def groove_midi(groove: np.ndarray, bpm: float, repeats: int = 2, note: int = GROOVE_NOTE) -> mido.MidiFile:
    """A groove [32, 3] as one percussion sound, so its rhythm, dynamics and timing can be heard."""
    cells = [(step + float(groove[step, OFFSET]), note, float(groove[step, VELOCITY]))
             for step in range(STEPS) if groove[step, HIT] > 0.5]
    return _timed(_notes(cells, repeats, DRUM_CHANNEL), bpm, "groove")


def keyboard_midi(groove: np.ndarray, bpm: float, repeats: int = 1) -> mido.MidiFile:
    """A keyboard-like performance of a groove: a chord on channel 1 (piano) on every hit."""
    cells = [(step + float(groove[step, OFFSET]), note, float(groove[step, VELOCITY]))
             for step in range(STEPS) if groove[step, HIT] > 0.5 for note in KEYBOARD_CHORD]
    return _timed(_notes(cells, repeats, 0, gate=0.9), bpm, "keyboard")


def render_wav(midi_path: Path, wav_path: Path, soundfont: Path, gain: float = 0.8) -> float:
    """MIDI → mono 16-bit WAV through FluidSynth; returns the audio's RMS (0..1 full scale)."""
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise AudioError("the fluidsynth command is missing: install fluidsynth (make report does, as root)")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "out.wav"
        result = subprocess.run([exe, "-ni", "-q", "-g", str(gain), "-r", str(SAMPLE_RATE), "-F", str(raw),
                                 "-T", "wav", "-O", "s16", str(soundfont), str(midi_path)],
                                capture_output=True, text=True, timeout=120)
        if result.returncode != 0 or not raw.exists():
            raise AudioError(f"fluidsynth failed on {midi_path}: {result.stderr.strip()[-300:]}")
        audio, rate = soundfile.read(raw, dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    soundfile.write(wav_path, mono, rate, subtype="PCM_16")
    return rms(mono)


def rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0


def wav_rms(path: Path) -> float:
    audio, _ = soundfile.read(path, dtype="float32", always_2d=True)
    return rms(audio)

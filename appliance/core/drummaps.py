"""Drum maps: which note (and channel) each of the nine voices plays on a given drum machine.

Chosen by name in the config (``player.drum_map``); ``player.notes`` overrides single voices.
Voice order is :data:`appliance.core.groove.VOICES`: kick, snare, closed hat, open hat, low tom,
mid tom, high tom, crash, ride.

Where a machine has fewer sounds than nine voices, the nearest sound doubles up (e.g. the
volca beats has two toms, so the mid tom plays the low tom).  ``channels`` is ``None`` when
the machine listens on one channel for every sound (then ``player.channel`` is used), or
nine channels when each part has its own (the Korg volca drum and Elektron Model:Cycles:
one MIDI channel per track, factory default channels 1..6).

``pedal_hat`` is the note of the hi-hat pedal: a closed hat that sounds with the ride or crash is
played with the foot (appliance.core.limbs) and goes out on it. Only the General MIDI map has one
(44); the TR-8S, volca beats, drumlogue, volca drum and Model:Cycles have no pedal-hat sound, so
there such a closed hat is not played.

``confirmed`` says whether the notes were checked against the maker's MIDI implementation
chart (or a chart transcribed from it) while writing this file; the unconfirmed ones come
from secondary sources and say so in ``source``.
"""
from __future__ import annotations

from dataclasses import dataclass
import difflib

from appliance.core.groove import GM_NOTES, GM_PEDAL_HAT, NUM_VOICES, VOICES


@dataclass(frozen=True)
class DrumMap:
    name: str
    title: str
    notes: tuple[int, ...]                 #: 9 notes in VOICES order
    channels: tuple[int, ...] | None       #: 9 channels 1..16, or None = player.channel
    source: str
    confirmed: bool
    pedal_hat: int | None = None           #: the hi-hat pedal's note (closed hat under ride/crash); None = none

    def __post_init__(self) -> None:
        if len(self.notes) != NUM_VOICES or not all(0 <= n <= 127 for n in self.notes):
            raise ValueError(f"drum map {self.name}: need {NUM_VOICES} notes in 0..127")
        if self.pedal_hat is not None and not 0 <= self.pedal_hat <= 127:
            raise ValueError(f"drum map {self.name}: the pedal hat note must be in 0..127")
        if self.channels is not None and (
                len(self.channels) != NUM_VOICES or not all(1 <= c <= 16 for c in self.channels)):
            raise ValueError(f"drum map {self.name}: need {NUM_VOICES} channels in 1..16")

    def note_for(self, voice: str) -> int:
        return self.notes[VOICES.index(voice)]


def _notes(**by_voice: int) -> tuple[int, ...]:
    return tuple(by_voice[v] for v in VOICES)


PRESETS: dict[str, DrumMap] = {m.name: m for m in (
    DrumMap(
        "gm", "General MIDI (channel 10 drum kit)", GM_NOTES, None,
        "General MIDI Level 1 percussion key map (pedal hi-hat 44)", True, pedal_hat=GM_PEDAL_HAT),
    DrumMap(
        "tr-8s", "Roland TR-8S / TR-8 (default instrument notes)",
        _notes(kick=36, snare=38, closed_hat=42, open_hat=46, low_tom=43, mid_tom=47,
               high_tom=50, crash=49, ride=51),
        None,
        "TR-8 note chart (BD 36, RS 37, SD 38, HC 39, CH 42, LT 43, OH 46, MT 47, CC 49, "
        "HT 50, RC 51, channel 10); the TR-8S keeps the TR-8's default note assignment",
        True),
    DrumMap(
        "volca-beats", "Korg volca beats",
        _notes(kick=36, snare=38, closed_hat=42, open_hat=46, low_tom=43, mid_tom=43,
               high_tom=50, crash=49, ride=42),
        None,
        "volca beats MIDI implementation (kick 36, snare 38, lo tom 43, hi tom 50, CH 42, "
        "OH 46, clap 39, claves 75, agogo 67, crash 49); mid tom doubles the lo tom, ride "
        "plays the closed hat",
        True),
    DrumMap(
        "drumlogue", "Korg drumlogue",
        _notes(kick=36, snare=40, closed_hat=42, open_hat=46, low_tom=45, mid_tom=45,
               high_tom=50, crash=52, ride=53),
        None,
        "drumlogue MIDI implementation chart (BD 36, RS 37, CP 39, SD 40, CH 42, LT 45, OH 46, "
        "HT 50, SP1 52, SP2 53); crash and ride go to the two sample parts",
        True),
    DrumMap(
        "volca-drum", "Korg volca drum (parts 1-6 on channels 1-6)",
        (60,) * NUM_VOICES,
        # part 1 kick, 2 snare, 3 closed hat, 4 open hat, 5 toms, 6 cymbals
        (1, 2, 3, 4, 5, 5, 5, 6, 6),
        "UNCONFIRMED: one MIDI channel per part (factory default 1..6) from secondary "
        "sources; the note number that triggers a part at its set pitch was not confirmed "
        "from Korg's chart (60 used)",
        False),
    DrumMap(
        "model-cycles", "Elektron Model:Cycles (tracks 1-6 on channels 1-6)",
        (60,) * NUM_VOICES,
        # T1 kick, T2 snare, T3 metal (hats), T4 perc (open hat), T5 tone (toms), T6 chord
        (1, 2, 3, 4, 5, 5, 5, 3, 3),
        "UNCONFIRMED: Model-series tracks each listen on their own channel (auto channel "
        "aside), factory default 1..6; the trigger note (60 = the track's pitch unchanged) "
        "was not confirmed from Elektron's manual",
        False),
)}

#: Other spellings people will type.
ALIASES: dict[str, str] = {
    "general-midi": "gm", "tr-8": "tr-8s", "tr8s": "tr-8s", "tr8": "tr-8s",
    "volca-beats-2": "volca-beats", "model:cycles": "model-cycles", "cycles": "model-cycles",
}


def names() -> list[str]:
    return sorted(PRESETS)


def canonical(name: str) -> str:
    """The preset's own spelling of ``name`` (aliases, case, ``_`` and spaces forgiven);
    ``name`` unchanged when it is no preset."""
    key = name.strip().lower().replace("_", "-").replace(" ", "-")
    key = ALIASES.get(key, key)
    return key if key in PRESETS else name


def get(name: str) -> DrumMap:
    """The preset called ``name`` (case and ``_``/space insensitive); KeyError with a
    did-you-mean otherwise."""
    key = name.strip().lower().replace("_", "-").replace(" ", "-")
    key = ALIASES.get(key, key)
    if key in PRESETS:
        return PRESETS[key]
    close = difflib.get_close_matches(key, list(PRESETS) + list(ALIASES), n=1, cutoff=0.5)
    hint = f"; did you mean '{ALIASES.get(close[0], close[0])}'?" if close else ""
    raise KeyError(f"unknown drum map '{name}'{hint} (allowed: {', '.join(names())})")


def pedal_hat(name: str) -> int | None:
    """The preset's hi-hat pedal note, None where the machine has no pedal sound (a closed hat
    under the ride or crash is then not played: a drummer plays it with the foot)."""
    return get(name).pedal_hat


def resolve(name: str, overrides: dict[str, int] | None = None,
            channel: int = 10) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(notes, channels) for the engine: the preset, single voices overridden by
    ``overrides`` ({voice: note}), every voice on ``channel`` unless the preset has
    per-part channels."""
    preset = get(name)
    notes = list(preset.notes)
    for voice, note in (overrides or {}).items():
        notes[VOICES.index(voice)] = int(note)
    channels = preset.channels if preset.channels is not None else (channel,) * NUM_VOICES
    return tuple(notes), tuple(channels)

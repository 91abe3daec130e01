"""Groove MIDI Dataset → 2-bar windows of (groove, pattern) arrays, cached, plus augmentations.

A window is 2 bars of 4/4 (32 sixteenth steps) starting on a bar line; windows hop one bar from
each file's start. Every note lands on the nearest step of the window it falls in (a note at
relative position p belongs to the window if −0.5 ≤ p < 31.5; a late note just before the next
window's downbeat belongs to that window, it does not wrap). Per (step, voice) the loudest note
and its offset win. The groove is the pattern flattened: a hit wherever any voice hits, with the
velocity and offset of the loudest voice on that step (ties go to the lower voice index).

Only `beat` files are used (not `fill`): the box loops a 2-bar groove, fills are transitions,
and fill files are mostly shorter than 2 bars (all 519 train fills together hold ~620 bars, under
4 % of the beat data). Only 4/4. The info.csv split is used as is; test is never used for tuning.
"""
from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import mido
import numpy as np

from appliance.core.groove import HIT, NUM_VOICES, OFFSET, STEPS, STEPS_PER_BAR, STEPS_PER_BEAT, VELOCITY, VOICES
from training import humanize

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
CACHE_DIR = REPO / "training" / "cache"
CACHE_VERSION = 1  # bump when the windowing/flattening rules change

#: GMD pitch → voice name (the reduced 9-voice mapping of Gillick et al. 2019).
PITCH_TO_VOICE_NAME: dict[int, str] = {
    36: "kick",
    38: "snare", 37: "snare", 40: "snare",
    42: "closed_hat", 22: "closed_hat", 44: "closed_hat",
    46: "open_hat", 26: "open_hat",
    43: "low_tom", 58: "low_tom",
    47: "mid_tom", 45: "mid_tom",
    50: "high_tom", 48: "high_tom",
    49: "crash", 52: "crash", 55: "crash", 57: "crash",
    51: "ride", 53: "ride", 59: "ride",
}
PITCH_TO_VOICE: dict[int, int] = {p: VOICES.index(v) for p, v in PITCH_TO_VOICE_NAME.items()}

SPLITS = ("train", "validation", "test")


class DatasetError(Exception):
    """GMD_DIR is missing, empty, or holds nothing usable; the message says which."""


class BrokenMidi(Exception):
    """One MIDI file could not be read."""


def gmd_dir(path: str | os.PathLike | None = None) -> Path:
    """The GMD root: `path`, else $GMD_DIR, else ../shared/data/gmd beside the repo."""
    if path is None:
        path = os.environ.get("GMD_DIR") or (REPO.parent / "shared" / "data" / "gmd")
    return Path(path).expanduser().resolve()


@dataclass(frozen=True)
class FileEntry:
    midi: Path
    split: str
    style: str
    bpm: float


def list_files(root: Path, split: str, beat_types: tuple[str, ...] = ("beat",)) -> list[FileEntry]:
    """4/4 files of one split from info.csv, in info.csv order."""
    if not root.exists():
        raise DatasetError(f"GMD_DIR {root} does not exist: set GMD_DIR to the Groove MIDI Dataset "
                           f"v1.0.0 folder (the one holding info.csv and drummer1..drummer10)")
    if not root.is_dir():
        raise DatasetError(f"GMD_DIR {root} is not a directory")
    info = root / "info.csv"
    if not info.exists():
        content = "it is empty" if not any(root.iterdir()) else "it has no info.csv"
        raise DatasetError(f"GMD_DIR {root} is not the Groove MIDI Dataset: {content}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    with info.open(newline="") as f:
        reader = csv.DictReader(f)
        needed = {"split", "beat_type", "time_signature", "midi_filename", "bpm", "style"}
        if reader.fieldnames is None or not needed <= set(reader.fieldnames):
            raise DatasetError(f"{info} lacks the columns {sorted(needed)}")
        rows = [r for r in reader if r["split"] == split and r["time_signature"] == "4-4"
                and r["beat_type"] in beat_types]
    if not rows:
        raise DatasetError(f"{info} lists no 4/4 {'/'.join(beat_types)} files in split {split!r}")
    return [FileEntry(root / r["midi_filename"], split, r["style"], float(r["bpm"])) for r in rows]


def read_notes(path: Path) -> np.ndarray:
    """Drum onsets of one MIDI file as float array [n, 3]: (position in steps, voice, velocity 0..1).

    Positions come from ticks (GMD files are recorded to a click at the file's tempo, so beats are
    ticks_per_beat apart). Pitches outside the 9-voice map are dropped. Raises BrokenMidi."""
    try:
        midi = mido.MidiFile(str(path))
        tpb = midi.ticks_per_beat
        if not tpb or tpb <= 0:
            raise BrokenMidi(f"{path}: no ticks per beat")
        out: list[tuple[float, int, float]] = []
        for track in midi.tracks:
            tick = 0
            for msg in track:
                tick += msg.time
                if msg.type == "note_on" and msg.velocity > 0 and msg.note in PITCH_TO_VOICE:
                    out.append((tick / tpb * STEPS_PER_BEAT, PITCH_TO_VOICE[msg.note], msg.velocity / 127.0))
    except BrokenMidi:
        raise
    except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise BrokenMidi(f"{path}: {type(exc).__name__}: {exc}") from exc
    notes = np.array(out, dtype=np.float64).reshape(-1, 3)
    return notes[np.argsort(notes[:, 0], kind="stable")]


def windows_from_notes(notes: np.ndarray) -> np.ndarray:
    """Notes [n,3] → patterns [W, 32, 9, 3]: 2-bar windows, 1-bar hop from position 0.

    A window starting at bar b exists when the file reaches into bar b+1 (its last note falls
    after the start of the window's second bar). Empty windows are kept here (see drop_empty)."""
    if len(notes) == 0:
        return np.zeros((0, STEPS, NUM_VOICES, 3), np.float32)
    last = float(notes[:, 0].max())
    n_windows = max(0, int(np.floor((last + 0.5) / STEPS_PER_BAR)))  # bars fully begun after bar 0
    out = np.zeros((n_windows, STEPS, NUM_VOICES, 3), np.float32)
    for w in range(n_windows):
        rel = notes[:, 0] - w * STEPS_PER_BAR
        inside = (rel >= -0.5) & (rel < STEPS - 0.5)
        for pos, voice, vel in zip(rel[inside], notes[inside, 1].astype(int), notes[inside, 2]):
            step = int(np.floor(pos + 0.5))
            offset = pos - step
            cell = out[w, step, voice]
            if cell[HIT] == 0 or vel > cell[VELOCITY]:
                cell[HIT], cell[VELOCITY], cell[OFFSET] = 1.0, vel, offset
    np.clip(out[..., OFFSET], -0.5, 0.4999, out=out[..., OFFSET])
    return out


def flatten(patterns: np.ndarray, voice_mask: np.ndarray | None = None) -> np.ndarray:
    """Patterns [..., 32, 9, 3] → grooves [..., 32, 3]: hit where any (kept) voice hits, with the
    velocity and offset of the loudest one (ties: lower voice index)."""
    hits = patterns[..., HIT] > 0.5
    if voice_mask is not None:
        hits = hits & voice_mask[..., None, :].astype(bool)
    loud = np.where(hits, patterns[..., VELOCITY], -1.0)
    idx = loud.argmax(axis=-1)
    any_hit = hits.any(axis=-1)
    vel = np.take_along_axis(patterns[..., VELOCITY], idx[..., None], -1)[..., 0]
    off = np.take_along_axis(patterns[..., OFFSET], idx[..., None], -1)[..., 0]
    groove = np.stack([any_hit, vel * any_hit, off * any_hit], axis=-1).astype(np.float32)
    return groove


@dataclass
class Split:
    """The windows of one split. patterns [N,32,9,3], grooves [N,32,3], file_ids [N]."""

    name: str
    patterns: np.ndarray
    grooves: np.ndarray
    file_ids: np.ndarray
    files: list[str]
    skipped: list[str] = field(default_factory=list)  # "path: reason" for broken files

    def __len__(self) -> int:
        return len(self.patterns)

    @cached_property
    def inputs(self) -> np.ndarray:
        """The drummers' grooves with their register: [N,32,4] (a model hears the channels it has)."""
        return humanize.as_heard(np.concatenate([self.grooves, register(self.patterns)[..., None]], -1))

    def subset(self, n: int) -> "Split":
        return Split(self.name, self.patterns[:n], self.grooves[:n], self.file_ids[:n], self.files, self.skipped)


def build_split(root: Path, split: str, files: list[FileEntry] | None = None) -> Split:
    """Parse every file of the split (broken files are skipped, logged and counted)."""
    files = list_files(root, split) if files is None else files
    patterns, file_ids, skipped = [], [], []
    for i, entry in enumerate(files):
        try:
            notes = read_notes(entry.midi)
        except BrokenMidi as exc:
            log.warning("skipping broken MIDI file %s", exc)
            skipped.append(str(exc))
            continue
        w = windows_from_notes(notes)
        w = w[w[..., HIT].reshape(len(w), STEPS * NUM_VOICES).any(axis=1)]  # windows that hold hits
        patterns.append(w)
        file_ids.append(np.full(len(w), i, np.int32))
    if not patterns or sum(len(p) for p in patterns) == 0:
        raise DatasetError(f"no usable windows in split {split!r} of {root} "
                           f"({len(skipped)} of {len(files)} files broken)")
    pats = np.concatenate(patterns)
    if skipped:
        log.warning("%s: skipped %d broken file(s) of %d", split, len(skipped), len(files))
    return Split(split, pats, flatten(pats), np.concatenate(file_ids),
                 [str(f.midi.relative_to(root)) if f.midi.is_relative_to(root) else str(f.midi) for f in files],
                 skipped)


_LOADED: dict[Path, Split] = {}  # cache files already read by this process


def load_split(split: str, root: str | os.PathLike | None = None, cache_dir: Path | None = CACHE_DIR) -> Split:
    """Windows of one split, from the cache when the file list and rules have not changed."""
    base = gmd_dir(root)
    files = list_files(base, split)
    key_src = json.dumps([CACHE_VERSION, str(base), [(str(f.midi), f.midi.stat().st_size if f.midi.exists() else -1)
                                                       for f in files]])
    key = hashlib.sha1(key_src.encode()).hexdigest()[:12]
    path = cache_dir / f"gmd-{split}-{key}.npz" if cache_dir is not None else None
    if path is not None and path in _LOADED:
        return _LOADED[path]
    if path is not None and path.exists():
        z = np.load(path, allow_pickle=False)
        meta = json.loads(str(z["meta"]))
        log.info("%s: %d windows from cache %s", split, len(z["patterns"]), path)
        loaded = Split(split, z["patterns"], z["grooves"], z["file_ids"], meta["files"], meta["skipped"])
        for array in (loaded.patterns, loaded.grooves, loaded.file_ids):
            array.flags.writeable = False  # shared by every caller in this process
        _LOADED[path] = loaded
        return loaded
    log.info("%s: parsing %d MIDI files under %s", split, len(files), base)
    data = build_split(base, split, files)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")  # two runs may build the same cache at once
        np.savez_compressed(tmp, patterns=data.patterns, grooves=data.grooves, file_ids=data.file_ids,
                            meta=json.dumps({"files": data.files, "skipped": data.skipped}))
        os.replace(tmp, path)
        log.info("%s: %d windows cached in %s", split, len(data), path)
    return data


# ---------------------------------------------------------------------------------------------
# Augmentation: make a drummer's groove look more like what a keyboard player gives.
# The target pattern never changes; only the groove the encoder sees does.

@dataclass(frozen=True)
class Augment:
    p_subset: float = 0.2     # groove from a random subset of the voices (a keyboard plays a few parts)
    keep_voice: float = 0.5   # probability of keeping each voice in a subset
    p_curve: float = 0.15     # a different velocity curve: v' = clip(gain · v^gamma)
    gamma: tuple[float, float] = (0.6, 1.6)
    gain: tuple[float, float] = (0.85, 1.15)
    p_jitter: float = 0.15    # timing jitter added to the groove's offsets
    jitter: float = 0.04      # standard deviation, in steps
    p_hands: float = 0.0      # instead: the groove a person tapping the loop with two hands gives (humanize.py)
    p_keys: float = 0.0       # instead: the groove of a keyboard player comping along (humanize.py)
    p_arpeggio: float = 0.0   # of those keyboard players, the share whose right hand plays even sixteenths
    p_stride: float = 0.0     # of those keyboard players, the share with a stride left hand where the drums have a backbeat
    p_whole: float = 0.0      # of those keyboard players, the share whose left hand plays whole or half notes
    p_double: float = 0.0     # of those keyboard players, the share whose left hand doubles the chords
    one_sided_known: bool = False  # a groove all on one side keeps its register (unknown: only the blanked ones)
    p_blind: float = 0.0      # with the register: the share of grooves whose register is unknown (0: one pad, one key)

    @classmethod
    def none(cls) -> "Augment":
        return cls(p_subset=0.0, p_curve=0.0, p_jitter=0.0, p_hands=0.0, p_keys=0.0)

    @property
    def active(self) -> bool:
        return any(p > 0 for p in (self.p_subset, self.p_curve, self.p_jitter, self.p_hands, self.p_keys))


def augment_grooves(patterns: np.ndarray, rng: np.random.Generator, aug: Augment,
                    with_register: bool = False) -> np.ndarray:
    """Grooves [B,32,3] (4 with the register) for a batch of patterns [B,32,9,3] with the
    augmentations applied."""
    return augment_with_people(patterns, rng, aug, with_register)[0]


def register(patterns: np.ndarray, voice_mask: np.ndarray | None = None) -> np.ndarray:
    """[..., 32]: 1 where the kick hits, if kept: a drummer's groove's register (training/register_probe.py;
    humanize.as_heard then drops it where the box would hear none)."""
    kicks = patterns[..., humanize.KICK, HIT] > 0.5
    if voice_mask is not None:
        kicks = kicks & voice_mask[..., None, humanize.KICK].astype(bool)
    return kicks.astype(np.float32)


def augment_with_people(patterns: np.ndarray, rng: np.random.Generator,
                        aug: Augment, with_register: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """augment_grooves, and which grooves [B] came from a simulated person (hands or keys); with
    ``with_register``, grooves [B,32,4] whose fourth channel is where the low voices or hand landed."""
    b = len(patterns)
    mask = np.ones((b, NUM_VOICES), bool)
    if aug.p_subset > 0:
        chosen = rng.random(b) < aug.p_subset
        keep = rng.random((b, NUM_VOICES)) < aug.keep_voice
        present = patterns[..., HIT].max(axis=1) > 0.5                      # [B, 9]
        # never leave a groove empty: keep the loudest-sum present voice if the subset lost all
        empty = ~(keep & present).any(axis=1)
        fallback = np.argmax(np.where(present, patterns[..., VELOCITY].sum(axis=1), -1), axis=1)
        keep[empty, fallback[empty]] = True
        mask[chosen] = keep[chosen]
    grooves = flatten(patterns, mask)
    if with_register:
        grooves = humanize.as_heard(np.concatenate([grooves, register(patterns, mask)[..., None]], -1),
                                    aug.one_sided_known)
    hit = grooves[..., HIT] > 0.5
    if aug.p_curve > 0:
        chosen = rng.random(b) < aug.p_curve
        gamma = np.exp(rng.uniform(np.log(aug.gamma[0]), np.log(aug.gamma[1]), b))
        gain = rng.uniform(*aug.gain, b)
        curved = np.clip(gain[:, None] * np.power(grooves[..., VELOCITY], gamma[:, None]), 0.0, 1.0)
        grooves[..., VELOCITY] = np.where(chosen[:, None] & hit, curved, grooves[..., VELOCITY])
    if aug.p_jitter > 0:
        chosen = rng.random(b) < aug.p_jitter
        noise = rng.normal(0.0, aug.jitter, (b, STEPS)) * chosen[:, None] * hit
        grooves[..., OFFSET] = np.clip(grooves[..., OFFSET] + noise, -0.5, 0.4999) * hit
    person: np.ndarray = np.zeros(b, bool)
    if aug.p_hands > 0 or aug.p_keys > 0:  # a person's groove replaces the drummer's (one source per groove)
        source = rng.random(b)
        hands = source < aug.p_hands
        keys = (source >= aug.p_hands) & (source < aug.p_hands + aug.p_keys)
        if hands.any():
            grooves[hands] = humanize.hands_grooves(patterns[hands], rng, humanize.Hands().varied(rng),
                                                    register=with_register, one_sided_known=aug.one_sided_known)
        if keys.any():
            grooves[keys] = humanize.keys_grooves(patterns[keys], rng, humanize.Keys(p_arpeggio=aug.p_arpeggio,
                                                                                p_stride=aug.p_stride,
                                                                                p_whole=aug.p_whole,
                                                                                p_double=aug.p_double),
                                                  register=with_register, one_sided_known=aug.one_sided_known)
        person = hands | keys
    if with_register and aug.p_blind > 0:
        grooves[rng.random(b) < aug.p_blind, :, 3] = 0.0
    return grooves.astype(np.float32), person


def main() -> None:
    """Build (or check) the cache of all three splits and print their sizes."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    for split in SPLITS:
        s = load_split(split)
        print(f"{split:<10} {len(s.files):4d} files  {len(s):6d} windows  {len(s.skipped)} skipped  "
              f"hits/window {s.patterns[..., HIT].sum((1, 2)).mean():.1f}")


if __name__ == "__main__":
    main()

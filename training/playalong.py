"""The drummer playing along, measured: keyboard comping rendered through the engine, its drum
part's statistics next to GMD drummers' own (make evaluate).

    python -m training.playalong [models/groove-vae] [--densities 0 0.25 0.5 0.75 1] [--json out.json]

The keyboard input is training/comping.py's songs (38–56 bars each: chords, held notes, rests,
section changes, a pickup), rendered by `groovebox render`'s own code on a virtual clock with the
box's defaults (one pass, seed 1 + song index). The drummers' figures come from the GMD
validation split's beat files, cut into 2-bar windows from each file's first bar, by the same
code (training/drumstats.py). Never the test split. Needs onnxruntime, numpy and mido only.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
import sys
import tempfile
from typing import Any

import mido
import numpy as np

from appliance.core.engine import EngineSettings
from appliance.core.generator import Controls
from appliance.core.groove import GM_NOTES, GM_PEDAL_HAT, STEPS_PER_BEAT, VOICES
from appliance.core.render import render
from training import comping, drumstats
from training import dataset as ds

log = logging.getLogger("training.playalong")

REPO = Path(__file__).resolve().parent.parent
DENSITIES = (0.0, 0.25, 0.5, 0.75, 1.0)
#: the pedal hat (a closed hat under the ride or crash, appliance.core.limbs) counts as the closed hat
NOTE_TO_VOICE = {note: voice for voice, note in enumerate(GM_NOTES)} | {GM_PEDAL_HAT: VOICES.index("closed_hat")}


def drum_notes(path: Path, downbeat_ticks: int) -> np.ndarray:
    """The drum track of a rendered file as notes [n, 3] (steps from bar 1, voice, velocity)."""
    midi = mido.MidiFile(str(path))
    out = []
    tick = 0
    for message in midi.tracks[1]:
        tick += message.time
        if message.type == "note_on" and message.velocity > 0 and message.note in NOTE_TO_VOICE:
            out.append(((tick - downbeat_ticks) / midi.ticks_per_beat * STEPS_PER_BEAT,
                        NOTE_TO_VOICE[message.note], message.velocity / 127.0))
    return np.array(out, np.float64).reshape(-1, 3)


def box_performances(model_dir: Path, density: float, settings: EngineSettings = EngineSettings(),
                     songs: tuple[comping.Song, ...] = comping.SONGS,
                     precision: str = "int8") -> list[tuple[np.ndarray, np.ndarray]]:
    """(drum windows, keyboard onsets per window) of every song rendered at this density."""
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, song in enumerate(songs):
            keys = Path(tmp) / f"song{i}.mid"
            downbeat = comping.write(song, keys, seed=i)
            drums = Path(tmp) / f"drums{i}.mid"
            render(keys, drums, model_dir=model_dir, seed=1 + i, controls=Controls(density=density),
                   settings=settings, precision=precision, downbeat_ticks=downbeat)
            played = drum_notes(drums, round(downbeat * mido.MidiFile(str(drums)).ticks_per_beat / comping.TPB))
            windows = drumstats.windows_from_notes(played, bars=song.bars)
            out.append((windows, comping.onsets_per_window(song, seed=i)))
    return out


def gmd_performances(split: str = "validation", root: str | None = None) -> list[np.ndarray]:
    """Every beat file of a GMD split as non-overlapping 2-bar windows from its first bar."""
    if split == "test":
        raise ValueError("the drummers' figures come from validation: never tune on test")
    out = []
    for entry in ds.list_files(ds.gmd_dir(root), split):
        try:
            notes = ds.read_notes(entry.midi)
        except ds.BrokenMidi as error:
            log.warning("skipping %s", error)
            continue
        windows = drumstats.windows_from_notes(notes)
        if len(windows) >= 2:
            out.append(windows)
    return out


def rest_returns(song: comping.Song, seed: int) -> list[int]:
    """Bars (from 0) where the player comes back after one or more bars without a note-on."""
    played = np.zeros(song.bars, bool)
    for beat, *_ in comping.play(song, seed):
        bar = int(np.floor((beat + 0.125) / 4))
        if 0 <= bar < song.bars:
            played[bar] = True
    return [b for b in range(1, song.bars) if played[b] and not played[b - 1] and played[:b].any()]


def song_figures(performances: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """drumstats over the comping songs' drum windows, phrases counting from bar 1 and each return."""
    return drumstats.pooled([(drumstats.stats(w, (0, *rest_returns(song, seed=i))), len(w))
                             for i, (song, (w, _)) in enumerate(zip(comping.SONGS, performances))])


def return_crashes(performances: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Share of the returns from a rest (comping songs) whose bar has a crash."""
    hits = []
    for i, (song, (windows, _)) in enumerate(zip(comping.SONGS, performances)):
        crash_bars = np.asarray((windows[..., drumstats.CRASH, 0] > 0.5).reshape(-1, 16).any(axis=1))
        hits += [bool(crash_bars[b]) for b in rest_returns(song, seed=i) if b < len(crash_bars)]
    return float(np.mean(hits)) if hits else float("nan")


def measure(model_dir: Path, densities: tuple[float, ...] = DENSITIES, gmd_root: str | None = None,
            settings: EngineSettings = EngineSettings()) -> dict:
    gmd = gmd_performances("validation", gmd_root)
    result: dict[str, Any] = {"gmd_validation": drumstats.pooled([(drumstats.stats(w), len(w)) for w in gmd]),
              "gmd_files": len(gmd), "box": {}, "songs": [s.name for s in comping.SONGS],
              "bars": sum(s.bars for s in comping.SONGS)}
    for density in densities:
        performances = box_performances(model_dir, density, settings)
        figures = song_figures(performances)
        follow = [drumstats.follow_correlation(w, k) for w, k in performances]
        figures["follow_r"] = float(np.nanmean(follow))
        figures["return_crash"] = return_crashes(performances)
        result["box"][f"{density:g}"] = figures
        log.info("density %g: %.1f hits per 2 bars", density, figures["hits"])
    return result


#: The memory designs compared in docs/ARCHITECTURE.md (python -m training.playalong --alternatives).
ALTERNATIVES: dict[str, dict] = {
    "keep everything (the old default)": dict(forget_passes=0, forget_once=0, section_change=0.0, rest_thin=0.0, drift=0.0),
    "forget after 2 passes": dict(forget_passes=2, forget_once=0, section_change=0.0, rest_thin=0.0, drift=0.0),
    "forget after 4 passes": dict(forget_passes=4, forget_once=0, section_change=0.0, rest_thin=0.0, drift=0.0),
    "forget after 8 passes": dict(forget_passes=8, forget_once=0, section_change=0.0, rest_thin=0.0, drift=0.0),
    "forget 4 + new section": dict(forget_passes=4, forget_once=0, section_change=0.3, rest_thin=0.0, drift=0.0),
    "forget 4 + new section + rest thins": dict(forget_passes=4, forget_once=0, section_change=0.3, rest_thin=0.25, drift=0.0),
    "+ drift 0.2": dict(forget_passes=4, forget_once=0, section_change=0.3, rest_thin=0.25, drift=0.2),
    "the default (+ a one-off goes after 1 pass)": dict(forget_passes=4, forget_once=1, section_change=0.3, rest_thin=0.25, drift=0.2),
}


def alternatives(model_dir: Path, density: float = 0.5) -> str:
    """One row per memory design: how often the part repeats, does it follow the player."""
    lines = ["| memory | hits per 2 bars | identical consecutive 2-bar windows | r(drum hits, keyboard notes) |"
             " hits in rest windows / others |", "|---|---|---|---|---|"]
    for name, knobs in ALTERNATIVES.items():
        performances = box_performances(model_dir, density, EngineSettings(**knobs))
        figures = song_figures(performances)
        follow = float(np.nanmean([drumstats.follow_correlation(w, k) for w, k in performances]))
        rest, other = [], []
        for windows, keys in performances:
            hits = (windows[..., 0] > 0.5).sum(axis=(1, 2))[: len(keys)]
            rest.extend(hits[keys[: len(hits)] == 0])
            other.extend(hits[keys[: len(hits)] > 0])
        ratio = np.mean(rest) / np.mean(other) if rest and other else float("nan")
        lines.append(f"| {name} | {figures['hits']:.1f} | {figures['identical_windows']:.0%} | {follow:+.2f} "
                     f"| {ratio:.2f} |")
    return "\n".join(lines)


LABELS = {
    "hits": "hits per 2 bars", "backbeat_accent": "backbeat accent (×)",
    "backbeat_accent_grooves": "backbeat accent outside fill bars (×)", "velocity_sd": "velocity SD (0..127)",
    "timing_sd_steps": "timing SD (steps)", "colour_per_2_bars": "open hat + toms + crash per 2 bars",
    "fills_per_8_bars": "fills per 8 bars", "fills_at_phrase_end": "fills ending a 4-bar phrase (share)",
    "fills_ending_snare": "fills whose last stroke is the snare (share)",
    "fills_ending_floor_tom": "fills whose last stroke is the floor tom (share)",
    "fills_flat_last_beat": "fills whose last beat is one velocity (share)",
    "crash_after_fill": "crash after a fill minus its last stroke (velocity)",
    "crashes_per_8_bars": "crashes per 8 bars",
    "snare_rolls_per_8_bars": "snare rolls (4+ sixteenths in a row, outside fills) per 8 bars",
    "snare_long_run_bars": "bars with 8+ snare sixteenths in a row (outside fills, share)",
    "ride_and_hats_bars": "bars keeping time on the ride and the closed hat both (outside fills, share)",
    "time_dropped_bars": "groove bars with cymbals on fewer than 4 steps (share)",
    "timekeeper_switches_per_32_bars": "time moving between ride and closed hat, per 32 bars",
    "open_hat_bars": "bars with an open hat (share)", "open_hat_per_bar": "open hats per bar that has one",
    "open_hat_with_ride": "bars with an open hat that also play the ride (share)",
    "identical_windows": "identical consecutive 2-bar windows", "follow_r": "r(drum hits, keyboard notes)",
    "bar2_share": "bar 2 hits / mean of bars 3-10", "crash_run_bars": "longest run of bars with a crash (mean per song)",
    "return_crash": "returns from a rest with a crash",
    "two_hats_per_16_bars": "open + closed hat on one step per 16 bars",
    "unplayable_per_16_bars": "steps one drummer cannot play per 16 bars",
}


def markdown(result: dict) -> str:
    densities = list(result["box"])
    gmd = result["gmd_validation"]
    head = "| | " + " | ".join(f"box d={d}" for d in densities) + " | GMD drummers (validation) |"
    lines = [f"Keyboard input: {len(result['songs'])} comping songs, {result['bars']} bars "
             f"(training/comping.py); GMD: {result['gmd_files']} validation beat files.", "",
             head, "|---|" + "---|" * (len(densities) + 1)]
    keys = [*LABELS, *(f"hits_{v}" for v in ds.VOICES)]
    for key in keys:
        label = LABELS.get(key, key.replace("hits_", "hits: "))
        cells = [result["box"][d].get(key, float("nan")) for d in densities]
        fmt = "{:.0%}" if key in ("identical_windows", "return_crash", "fills_at_phrase_end", "fills_ending_snare",
                                   "fills_ending_floor_tom", "fills_flat_last_beat", "open_hat_bars", "open_hat_with_ride",
                                   "snare_long_run_bars", "ride_and_hats_bars", "time_dropped_bars") else "{:.2f}"
        row = [("–" if np.isnan(c) else fmt.format(c)) for c in cells]
        g = gmd.get(key, float("nan"))
        lines.append(f"| {label} | " + " | ".join(row) + f" | {'–' if np.isnan(g) else fmt.format(g)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path, nargs="?", default=REPO / "models" / "groove-vae")
    p.add_argument("--gmd-dir", default=None)
    p.add_argument("--densities", type=float, nargs="+", default=list(DENSITIES))
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--alternatives", action="store_true", help="compare the groove-memory designs instead")
    p.add_argument("--fill-every", type=int, default=EngineSettings().fill_every,
                   help="the box's fill phrasing (0 = the model's toms as they are)")
    p.add_argument("--swap-at", choices=("step", "beat", "bar"), default=EngineSettings().swap_at,
                   help="where a new pattern may start (the box's default: %(default)s)")
    args = p.parse_args(argv)
    logging.getLogger("appliance").setLevel(logging.WARNING)
    if args.alternatives:
        print(alternatives(args.model_dir))
        return
    try:
        result = measure(args.model_dir, tuple(args.densities), args.gmd_dir,
                         EngineSettings(fill_every=args.fill_every, swap_at=args.swap_at))
    except ds.DatasetError as error:
        raise SystemExit(f"playalong: {error}") from None
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()

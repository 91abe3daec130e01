"""Fit the styles' shifts of z (appliance/core/styles.py) and measure what they do.

    python -m training.styles models/groove-vae            # fit and measure, print the tables
    python -m training.styles models/groove-vae --write    # ... and store the shifts in model.json
    python -m training.styles models/groove-vae --parts    # ... and the reviewers' parts by style

A style's shift is the mean of the fp32 encoder's mu over the GMD training grooves of that
style, less the mean over all training grooves. Two checks, on grooves the shifts never saw:

- **Does the right style help?** Validation loops whose GMD style belongs to an offered style
  (at least 40 windows), heard as simulated hands and keys (the fixed sets, seed 8): hit F1 at
  the card's thresholds with no style, with their own style, and with a wrong one (bossa, or funk
  for bossa), at amount 1.
- **Does the drummer play the style?** All validation loops as simulated keys, decoded with each
  style: how far the drums' step profile (how often each voice plays on each step of the bar) is
  from that style's own drummers' profile (training grooves), with no style and with it. The
  distance is the mean absolute difference over the 16 steps × 9 voices; and which styles'
  drummers the drums are then nearest to (the style's own should come first).

With ``--parts``, a musician's check: the reviewers' keyboard parts (training/review_parts)
whose names say their style (bossa, funk, shuffle, hiphop, samba, afro, second line) rendered
through the box (int8, seed 1) without a style and with their own. For each,
whose drummers the drums' step profile over the whole render is nearest to, and the snare's
share on beats 2 and 4 (a rock backbeat plays all its snares there).
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
from pathlib import Path
import tempfile

import mido

import numpy as np

from appliance.core.generator import Controls
from appliance.core.model_files import REGISTER_PATH, model_files, path_card
from appliance.core.groove import GM_NOTES, GM_PEDAL_HAT, HIT, NUM_VOICES, STEPS_PER_BAR, STEPS_PER_BEAT
from appliance.core.render import render
from appliance.core.styles import NONE, STYLES, matches
from training import dataset as ds
from training import humanize, metrics
from training.onnx_model import OnnxModel, known_register, paths

log = logging.getLogger(__name__)

MIN_FILES, MIN_WINDOWS = 2, 100   #: what a style needs in the training split
MIN_CHECKED = 40                   #: validation windows a style needs to be checked on
WRONG = {"bossa": "funk"}          #: the wrong style each is checked against (else bossa)
COMMAND = "python -m training.styles MODEL_DIR --write"
PARTS = Path(__file__).resolve().parent / "review_parts"
#: words in a reviewer's part name → the style it is in
PART_WORDS = {"bossa": "bossa", "funk": "funk", "shuffle": "shuffle", "hiphop": "hiphop", "samba": "samba",
              "afro": "afrobeat", "second_line": "secondline"}
VOICE_OF = {note: voice for voice, note in enumerate(GM_NOTES)} | {GM_PEDAL_HAT: GM_NOTES.index(42)}
SNARE = 1


def gmd_styles(split: ds.Split, root: Path) -> np.ndarray:
    """Each window's GMD style label (info.csv)."""
    with open(root / "info.csv", newline="") as f:
        label = {row["midi_filename"]: row["style"] for row in csv.DictReader(f)}
    return np.array([label[split.files[i]] for i in split.file_ids])


def drummers_of(split: ds.Split, mine: np.ndarray) -> list[str]:
    """The GMD drummers (``drummerN``) who played the windows ``mine``."""
    return sorted({split.files[i].split("/")[0] for i in set(split.file_ids[mine].tolist())},
                  key=lambda d: int(d.removeprefix("drummer")) if d.removeprefix("drummer").isdigit() else 0)


def style_of(labels: np.ndarray, name: str) -> np.ndarray:
    return np.array([matches(str(label), name) for label in labels], bool)


def encode_all(model: OnnxModel, grooves: np.ndarray, batch: int = 512) -> np.ndarray:
    return np.concatenate([model.encode(grooves[i:i + batch])[0] for i in range(0, len(grooves), batch)])


def decode_all(model: OnnxModel, z: np.ndarray, batch: int = 512) -> np.ndarray:
    return np.concatenate([model.decode(z[i:i + batch])[0] for i in range(0, len(z), batch)])


def fit(model: OnnxModel, split: ds.Split, labels: np.ndarray, register: bool = False) -> dict[str, dict]:
    """{name: shift, windows, files} for every style with enough training grooves; ``register``:
    over the grooves the register encoder hears (model.json's register_path), through it."""
    heard = known_register(split.inputs) if register else np.ones(len(split), bool)
    mu = encode_all(model, split.inputs[heard])
    centre = mu.mean(axis=0)
    fitted = {}
    for name in STYLES:
        mine = style_of(labels, name)[heard]
        files = len(set(split.file_ids[heard][mine].tolist()))
        if files < MIN_FILES or mine.sum() < MIN_WINDOWS:
            log.warning("style %s: %d files, %d windows in %s; not fitted", name, files, mine.sum(), split.name)
            continue
        fitted[name] = {"shift": (mu[mine].mean(axis=0) - centre).astype(np.float32),
                        "windows": int(mine.sum()), "files": files, "drummers": drummers_of(split, _within(heard, mine))}
    return fitted


def _within(heard: np.ndarray, mine: np.ndarray) -> np.ndarray:
    """``mine`` (a mask over the ``heard`` windows) as a mask over all windows."""
    out = np.zeros(len(heard), bool)
    out[np.flatnonzero(heard)[mine]] = True
    return out


def profile(hits: np.ndarray) -> np.ndarray:
    """How often each voice plays on each step of the bar (hits per bar), [16, 9], over windows [N, 32, 9]."""
    bars = hits.reshape(len(hits), 2, STEPS_PER_BAR, hits.shape[-1]).astype(np.float64)
    return bars.mean(axis=(0, 1))


def helps(model: OnnxModel, thresholds: np.ndarray, split: ds.Split, labels: np.ndarray,
          fitted: dict[str, dict], register: bool = False) -> list[dict]:
    """F1 on the validation style's hands and keys: no style, its own, a wrong one (``register``:
    of those whose register is known, as the register encoder hears them)."""
    patterns = np.asarray(split.patterns)
    true = patterns[..., HIT] > 0.5
    inputs = {kind: humanize.human_set(patterns, kind, 8, register=True) for kind in ("hands", "keys")}
    heard = {kind: known_register(grooves) if register else np.ones(len(grooves), bool) for kind, grooves in inputs.items()}
    mus = {kind: encode_all(model, grooves) for kind, grooves in inputs.items()}
    rows = []
    for name in fitted:
        mine = style_of(labels, name)
        if mine.sum() < MIN_CHECKED:
            continue
        wrong = WRONG.get(name, "bossa")
        row = {"style": name, "windows": int(mine.sum()), "wrong": wrong,
               "drummers": drummers_of(split, mine), "fitted on": fitted[name]["drummers"]}
        for kind, mu in mus.items():
            ours = mine & heard[kind]
            for label, shift in ((NONE, 0.0), ("own", fitted[name]["shift"]), ("wrong", fitted[wrong]["shift"])):
                probs = decode_all(model, mu[ours] + shift)
                row[f"{kind} {label}"] = metrics.hit_scores(probs >= thresholds, true[ours])[0].f1
        rows.append(row)
    return rows


def drummers(train: ds.Split, labels: np.ndarray, fitted: dict[str, dict]) -> dict[str, np.ndarray]:
    """Each style's drummers' step profile over their training grooves."""
    return {name: profile(np.asarray(train.patterns)[style_of(labels, name)][..., HIT] > 0.5) for name in fitted}


def plays(model: OnnxModel, thresholds: np.ndarray, train: ds.Split, train_labels: np.ndarray,
          validation: ds.Split, fitted: dict[str, dict], register: bool = False) -> list[dict]:
    """Distance of the drums' step profile over validation keys from each style's drummers'
    (``register``: the keys whose register is known)."""
    keys = humanize.human_set(np.asarray(validation.patterns), "keys", 8, register=True)
    mu = encode_all(model, keys[known_register(keys)] if register else keys)
    plain = profile(decode_all(model, mu) >= thresholds)
    targets = drummers(train, train_labels, fitted)
    rows = []
    for name, entry in fitted.items():
        styled = profile(decode_all(model, mu + entry["shift"]) >= thresholds)
        distance = {other: float(np.abs(styled - target).mean()) for other, target in targets.items()}
        rows.append({"style": name, "none": float(np.abs(plain - targets[name]).mean()),
                     "style_on": distance[name], "nearest": sorted(distance, key=distance.__getitem__)[:3]})
    return rows


def drums_profile(path: Path) -> np.ndarray:
    """The step profile [16, 9] of a rendered file's drums (file bars, bar 1 at tick 0)."""
    midi = mido.MidiFile(str(path))
    step_ticks = midi.ticks_per_beat / STEPS_PER_BEAT
    counts, last = np.zeros((STEPS_PER_BAR, NUM_VOICES)), 0
    for message in mido.merge_tracks(midi.tracks):
        last += message.time
        if message.type == "note_on" and message.velocity and message.channel == 9 and message.note in VOICE_OF:
            counts[int(round(last / step_ticks)) % STEPS_PER_BAR, VOICE_OF[message.note]] += 1
    bars = max(1.0, last / (step_ticks * STEPS_PER_BAR))
    return counts / bars


def style_parts(only: tuple[str, ...] = ()) -> list[tuple[Path, str]]:
    """The reviewers' parts whose names say one style (of ``only``, when given)."""
    out = []
    for path in sorted(PARTS.glob("*/*.mid")):
        found = [style for word, style in PART_WORDS.items() if word in path.stem.lower()]
        if len(found) == 1 and found[0] in STYLES and (not only or found[0] in only):
            out.append((path, found[0]))
    return out


def with_styles(model_dir: Path, fitted: dict[str, dict], into: Path) -> Path:
    """A model directory in ``into``: ``model_dir``'s graphs (linked) and its card with ``fitted``'s shifts."""
    for name in model_files(model_dir):
        if name != "model.json":
            (into / name).symlink_to((model_dir / name).resolve())
    (into / "model.json").write_text((model_dir / "model.json").read_text())
    write(into, fitted, [], [])
    return into


def parts(model_dir: Path, fitted: dict[str, dict], targets: dict[str, np.ndarray], seed: int = 1,
          only: tuple[str, ...] = ()) -> list[dict]:
    """Each style-named part (of the styles ``only``), rendered without a style and with its own
    (the shifts ``fitted``, whatever the card on disk holds)."""
    rows = []
    before = logging.root.manager.disable
    logging.disable(logging.WARNING)      # each render's own lines (where bar 1 falls, a drifting tempo)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rows = _render_parts(with_styles(model_dir, fitted, Path(tmp)), Path(tmp), targets, seed, only)
    finally:
        logging.disable(before)
    return rows


def _render_parts(model_dir: Path, tmp: Path, targets: dict[str, np.ndarray], seed: int,
                  only: tuple[str, ...]) -> list[dict]:
    rows = []
    for path, style in style_parts(only):
        row: dict[str, object] = {"part": f"{path.parent.name}/{path.stem}", "style": style}
        for label, name in (("none", NONE), ("style", style)):
            out = tmp / "drums.mid"
            render(path, out, model_dir=model_dir, seed=seed, controls=Controls(style=name))
            drums = drums_profile(out)
            distance = {other: float(np.abs(drums - target).mean()) for other, target in targets.items()}
            snare = drums[:, SNARE]
            row[f"{label} nearest"] = sorted(distance, key=distance.__getitem__)[0]
            row[f"{label} backbeat"] = float(snare[[4, 12]].sum() / snare.sum()) if snare.sum() else 0.0
        rows.append(row)
    return rows


def parts_markdown(rows: list[dict]) -> str:
    lines = ["| style | parts | nearest its own drummers: none → style | snare on 2 and 4: none → style |",
             "|---|---|---|---|"]
    for style in dict.fromkeys(r["style"] for r in rows):
        mine = [r for r in rows if r["style"] == style]
        own = [sum(r[f"{label} nearest"] == style for r in mine) for label in ("none", "style")]
        backbeat = [np.mean([r[f"{label} backbeat"] for r in mine]) for label in ("none", "style")]
        lines.append(f"| {style} | {len(mine)} | {own[0]} → {own[1]} | {backbeat[0]:.2f} → {backbeat[1]:.2f} |")
    return "\n".join(lines)


def markdown(help_rows: list[dict], play_rows: list[dict]) -> str:
    lines = ["| validation loops (windows; drummers) | hands: none / own / wrong | keys: none / own / wrong |",
             "|---|---|---|"]
    for r in help_rows:
        lines.append(f"| {r['style']} ({r['windows']}; {', '.join(r['drummers'])}) | "
                     + " | ".join(" / ".join(f"{r[f'{kind} {x}']:.3f}" for x in (NONE, "own", "wrong"))
                                  for kind in ("hands", "keys")) + " |")
    lines += ["", "| style | profile distance to its drummers: none → style | nearest drummers with the style |",
              "|---|---|---|"]
    for r in play_rows:
        lines.append(f"| {r['style']} | {r['none']:.4f} → {r['style_on']:.4f} | {', '.join(r['nearest'])} |")
    return "\n".join(lines)


def write(model_dir: Path, fitted: dict[str, dict], help_rows: list[dict], play_rows: list[dict],
          register: bool = False) -> None:
    """The shifts and their checks into model.json (``register``: its register_path block)."""
    path = model_dir / "model.json"
    card = json.loads(path.read_text())
    block = card.setdefault(REGISTER_PATH, {}) if register else card
    block["styles"] = {name: {"shift": " ".join(f"{x:.5f}" for x in entry["shift"]), "windows": entry["windows"],
                             "files": entry["files"], "drummers": entry["drummers"], "gmd": list(STYLES[name]),
                             "length": round(float(np.linalg.norm(entry["shift"])), 3)}
                      for name, entry in fitted.items()}
    if help_rows or play_rows:
        block.setdefault("metrics", {})["styles"] = {
            "command": COMMAND, "helps (validation, amount 1)": help_rows, "plays (validation keys)": play_rows}
    path.write_text(json.dumps(card, indent=2) + "\n")
    log.info("wrote %d styles into %s", len(fitted), path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--write", action="store_true", help="store the shifts and checks in model.json")
    parser.add_argument("--parts", action="store_true", help="render the reviewers' style-named parts too")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    root = ds.gmd_dir()
    train, validation = ds.load_split("train"), ds.load_split("validation")
    train_labels, validation_labels = gmd_styles(train, root), gmd_styles(validation, root)
    card = json.loads((args.model_dir / "model.json").read_text())
    for register in paths(args.model_dir, fitting=True):   # (an encoder's fit kept from a base model: not again)
        if register:
            print("\nThe register encoder's grooves (model.json's register_path):\n")
        model = OnnxModel(args.model_dir, "fp32", threads=args.threads, plain=not register)
        thresholds = np.asarray(path_card(card, register)["thresholds"], np.float32)
        fitted = fit(model, train, train_labels, register)
        for name, entry in fitted.items():
            log.info("style %s: %d files, %d windows, |shift| %.2f, %s", name, entry["files"], entry["windows"],
                     float(np.linalg.norm(entry["shift"])), ", ".join(entry["drummers"]))
        help_rows = helps(model, thresholds, validation, validation_labels, fitted, register)
        play_rows = plays(model, thresholds, train, train_labels, validation, fitted, register)
        print(markdown(help_rows, play_rows))
        if args.parts and register:
            log.info("--parts renders the encoder's styles only (the register encoder's: not yet)")
        elif args.parts:
            print()
            print(parts_markdown(parts(args.model_dir, fitted, drummers(train, train_labels, fitted))))
        if args.write:
            write(args.model_dir, fitted, help_rows, play_rows, register)


if __name__ == "__main__":
    main()

"""What hearing busy, even sixteenths on the eighths does (appliance/core/listening.py), measured.

    python -m training.hearing [models/groove-vae]

Two tables, each as played (``loop.hear_eighths: false``) and as the box hears it:
- GMD validation loops as the drummers' own grooves and the fixed simulated people
  (training/humanize.py, seed 8: hands, keys, arpeggios), one 2-bar groove at a time: the share
  heard on the eighths, pooled hit F1 against the drummers' patterns at the model's tuned
  thresholds, and at density 0.5 through the box's chooser: hits, snare hits and snare rolls
  (training/drumstats.py) per 2 bars and the backbeat accent;
- the comping songs of `make evaluate` rendered through the engine (training/playalong.py):
  hits, snare hits, snare rolls and backbeat per song.
The int8 graphs, as the box plays them. Never the test split.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from appliance.core import listening
from appliance.core.engine import EngineSettings
from appliance.core.generator import Calibration, Controls, shape_pattern
from appliance.core.groove import HIT, Groove
from training import comping, drumstats, humanize, playalong
from training import dataset as ds
from training.metrics import hit_scores
from training.onnx_model import OnnxModel

REPO = Path(__file__).resolve().parent.parent
KINDS = ("drummers", "hands", "keys", "arpeggios")


def heard_grooves(grooves: np.ndarray) -> tuple[np.ndarray, int]:
    """Each groove as the box hears it on its own (listening.heard), and how many were changed."""
    out = np.array([listening.heard(Groove(g)).steps for g in grooves])
    return out, int(sum(listening.busy_and_even(Groove(g)) for g in grooves))


def figures(model: OnnxModel, card: dict, grooves: np.ndarray, patterns: np.ndarray) -> dict[str, float]:
    """Pooled hit F1 at the tuned thresholds; at density 0.5 (every second window: no overlap) the
    box's hits, snare hits, snare rolls per 8 bars and backbeat accent."""
    thresholds = np.asarray(card["thresholds"], np.float32)
    calibration = Calibration.from_card(card)
    probabilities, velocities, offsets = model.predict(grooves)
    out = {"f1": hit_scores(probabilities >= thresholds, patterns[..., HIT] > 0.5)[0].f1}
    pick = np.arange(0, len(grooves), 2)
    played = np.array([shape_pattern(p, v, o, thresholds, Controls(), calibration).steps
                       for p, v, o in zip(probabilities[pick], velocities[pick], offsets[pick])])
    stats = drumstats.stats(played)
    out.update(hits=stats["hits"], snare=stats["hits_snare"], rolls=stats["snare_rolls_per_8_bars"],
               backbeat=stats["backbeat_accent"])
    return out


def measure(model_dir: Path, gmd_root: str | None = None) -> dict:
    val = ds.load_split("validation", gmd_root)
    card = json.loads((model_dir / "model.json").read_text())
    model = OnnxModel(model_dir, "int8", threads=2)
    loops = {}
    for kind in KINDS:
        grooves = val.grooves if kind == "drummers" else humanize.human_set(val.patterns, kind, humanize.SEED_VALIDATION)
        heard, changed = heard_grooves(grooves)
        loops[kind] = {"windows": len(grooves), "heard_on_the_eighths": changed,
                       "as_played": figures(model, card, grooves, val.patterns),
                       "heard": figures(model, card, heard, val.patterns)}
    songs = {}
    for label, on in (("as_played", False), ("heard", True)):
        for song, (windows, _keys) in zip(comping.SONGS, playalong.box_performances(
                model_dir, 0.5, EngineSettings(hear_eighths=on))):
            s = drumstats.stats(windows)
            songs.setdefault(song.name, {})[label] = {"hits": s["hits"], "snare": s["hits_snare"],
                                                      "rolls": s["snare_rolls_per_8_bars"], "backbeat": s["backbeat_accent"]}
    return {"loops": loops, "songs": songs}


def markdown(result: dict) -> str:
    lines = ["GMD validation loops, one 2-bar groove at a time (as played → heard on the eighths):", "",
             "| input | heard on the eighths | hit F1 | hits / 2 bars at 0.5 | snare | snare rolls / 8 bars | backbeat |",
             "|---|---|---|---|---|---|---|"]
    for kind, r in result["loops"].items():
        a, h = r["as_played"], r["heard"]
        lines.append(f"| {kind} | {r['heard_on_the_eighths']} of {r['windows']} | {a['f1']:.4f} → {h['f1']:.4f} "
                     f"| {a['hits']:.1f} → {h['hits']:.1f} | {a['snare']:.1f} → {h['snare']:.1f} "
                     f"| {a['rolls']:.2f} → {h['rolls']:.2f} | {a['backbeat']:.2f} → {h['backbeat']:.2f} |")
    lines += ["", "Comping songs through the engine at density 0.5 (as played → heard on the eighths):", "",
              "| song | hits / 2 bars | snare | snare rolls / 8 bars | backbeat |", "|---|---|---|---|---|"]
    for name, r in result["songs"].items():
        a, h = r["as_played"], r["heard"]
        lines.append(f"| {name} | {a['hits']:.1f} → {h['hits']:.1f} | {a['snare']:.1f} → {h['snare']:.1f} "
                     f"| {a['rolls']:.2f} → {h['rolls']:.2f} | {a['backbeat']:.2f} → {h['backbeat']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path, nargs="?", default=REPO / "models" / "groove-vae")
    p.add_argument("--gmd-dir", default=None)
    args = p.parse_args(argv)
    try:
        result = measure(args.model_dir, args.gmd_dir)
    except ds.DatasetError as error:
        raise SystemExit(f"hearing: {error}") from None
    print(markdown(result))


if __name__ == "__main__":
    main()

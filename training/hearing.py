"""What hearing busy, even sixteenths on the eighths does (appliance/core/listening.py), measured.

    python -m training.hearing [models/groove-vae]

Two tables, each as played (``loop.hear_eighths: false``) and as the box hears it:
- GMD validation loops as the drummers' own grooves and the fixed simulated people
  (training/humanize.py, seed 8: hands, keys, arpeggios), one 2-bar groove at a time: the share
  heard on the eighths, pooled hit F1 against the drummers' patterns at the model's tuned
  thresholds, and at density 0.5 through the box's chooser: hits, snare hits and snare rolls
  (training/drumstats.py) per 2 bars and the backbeat accent;
- the comping songs of `make evaluate` rendered through the engine (training/playalong.py):
  hits, snare hits, snare rolls and backbeat per song;
- flat sixteenths (a note on every step at one velocity, ± 4 of 127, six seeds), straight,
  swung (the in-between sixteenths 0.28 of a step late, about 64 % swing) and ahead of the clock
  (every note 0.2 of a step early), at velocities 30–120: snare hits per 2 bars at density 0.5,
  how many of the four backbeats have a snare, kicks on beats 1 and 3 and on the in-between
  sixteenths, the hats' and ride's median velocity over the backbeat's (beside GMD's busy
  drummers' own figures), and how late the drums' hits on the eighths and on the in-between
  sixteenths come (mean offsets, steps); the same for an Alberti bass (every
  sixteenth at 52–57 of 127) under a melody at 56–90, and for sixteenths at 55 with the eighths
  1.5 and 2 × as loud (an accented ostinato);
- at density 0.25, those rows' kicks on 1 and 3 and snares on 2 and 4, and the drummers' F1
  through the box's chooser (its backbone at 0.5 first, ``generator.pattern_hits``), and the
  chooser alone with its sure cells first (``generator.SURE``) and by margin alone;
- at density 0, 0.25 and 0.5, the box's chooser against its sure cells first alone over the
  validation drummers' grooves and simulated hands: F1, hits, bars with a snare on 2 and 4;
- the drums' level (:func:`dynamics_markdown`).
The int8 graphs, as the box plays them. Never the test split.

    python -m training.hearing --dynamics [models/groove-vae]

prints only the drums' level (appliance/core/dynamics.py; no GMD needed), at density 0.5, z = mu:
their mean velocity over plain eighths at the flat sixteenths' velocities, as the model plays
them (its own answer to a quieter groove, ``dynamics.MODEL_DYNAMICS``) and as the box plays them
(by ``dynamics.DYNAMICS``), and over flat sixteenths heard on the eighths (``listening.BALANCE``
brings them level with the box over eighths); and the drums' mean velocity and the backbeat's
over whole notes, half notes, quarters and eighths at velocities 25, 45, 70 and 100, as the
model plays them and as the box does.
"""
from __future__ import annotations

import argparse
import json
import logging
import warnings
from pathlib import Path

import numpy as np

from appliance.core import dynamics as law, generator, listening
from appliance.core.engine import EngineSettings
from appliance.core.generator import Calibration, Controls, shape_pattern
from appliance.core.groove import HIT, OFFSET, STEPS, STEPS_PER_BEAT, VELOCITY, Groove
from training import comping, drumstats, humanize, playalong
from training import dataset as ds
from training.metrics import hit_scores
from training.onnx_model import OnnxModel

REPO = Path(__file__).resolve().parent.parent
KINDS = ("drummers", "hands", "keys", "arpeggios")


def box_reads(model: OnnxModel, heard: list[listening.Heard]) -> tuple[np.ndarray, np.ndarray]:
    """The grooves the model reads and the velocity scales the drums are played with, as
    Generator.generate chooses them: a loud groove's reading at dynamics.LOUD, lifted, where the
    model's own reading of it thins out (dynamics.thins); z = mu."""
    grooves = np.array([h.groove.model_input(4) for h in heard], np.float32)
    scales = np.array([h.velocity_scale for h in heard], np.float64)
    loud = [i for i, h in enumerate(heard) if h.loud is not None]
    if loud:
        own = model.predict(grooves[loud])[0].sum(axis=(1, 2))
        louds = [heard[i].loud for i in loud]
        down = model.predict(np.array([h.groove.model_input(4) for h in louds if h is not None], np.float32))[0].sum(axis=(1, 2))
        for i, brought, mine, theirs in zip(loud, louds, own, down):
            if brought is not None and law.thins(float(mine), float(theirs)):
                grooves[i], scales[i] = brought.groove.model_input(4), min(2.0, scales[i] * brought.lift)
    return grooves, scales


def heard_grooves(grooves: np.ndarray, model: OnnxModel) -> tuple[np.ndarray, np.ndarray, int]:
    """Each groove as the box hears it on its own (listening.heard) and the model reads it
    (:func:`box_reads`), the velocity scale it plays it with, and how many grooves were heard on
    the eighths."""
    as_grooves = [Groove(g[:, :3], g[:, 3] if g.shape[-1] > 3 else np.zeros(len(g))) for g in grooves]
    grooves_read, scales = box_reads(model, [listening.heard(g) for g in as_grooves])
    return grooves_read, scales, int(sum(listening.busy_and_even(g) for g in as_grooves))


def figures(model: OnnxModel, card: dict, grooves: np.ndarray, patterns: np.ndarray,
            velocity_scales: np.ndarray | None = None) -> dict[str, float]:
    """Pooled hit F1 at the tuned thresholds; at density 0.5 (every second window: no overlap) the
    box's hits, snare hits, snare rolls per 8 bars and backbeat accent."""
    thresholds = np.asarray(card["thresholds"], np.float32)
    calibration = Calibration.from_card(card)
    probabilities, velocities, offsets = model.predict(grooves)
    out = {"f1": hit_scores(probabilities >= thresholds, patterns[..., HIT] > 0.5)[0].f1}
    pick = np.arange(0, len(grooves), 2)
    scales = np.ones(len(grooves)) if velocity_scales is None else velocity_scales
    played = np.array([shape_pattern(p, v, o, thresholds, Controls(velocity_scale=float(k)), calibration).steps
                       for p, v, o, k in zip(probabilities[pick], velocities[pick], offsets[pick], scales[pick])])
    stats = drumstats.stats(played)
    out.update(hits=stats["hits"], snare=stats["hits_snare"], rolls=stats["snare_rolls_per_8_bars"],
               backbeat=stats["backbeat_accent"])
    return out


LEVELS = (30, 45, 62, 80, 100, 120)   #: velocities (of 127) of the flat sixteenths
SWING = 0.28                           #: steps the swung in-between sixteenths come late
AHEAD = -0.2                           #: steps every note of the part ahead of the clock comes early
FEELS = {"straight": (0.0, 0.0), "swung": (SWING, 0.0), "ahead": (0.0, AHEAD)}
SEEDS = 6


def flat_sixteenths(velocity: int, swing: float, seed: int, push: float = 0.0) -> np.ndarray:
    """A groove [32, 3] with a note on every step at one velocity (± 4 of 127), the in-between
    sixteenths ``swing`` steps late and every note ``push`` steps late (early when negative)."""
    rng = np.random.default_rng(seed)
    groove = np.zeros((STEPS, 3), np.float32)
    groove[:, HIT] = 1.0
    groove[:, VELOCITY] = np.clip((velocity + 4 * rng.standard_normal(STEPS)) / 127, 0.02, 1.0)
    groove[:, OFFSET] = 0.03 * rng.standard_normal(STEPS) + push
    groove[1::2, OFFSET] += swing
    groove[:, OFFSET] = np.clip(groove[:, OFFSET], -0.5, 0.49)
    return groove


#: an Alberti bass's melody: its onsets (steps) in each of four bars (two 2-bar grooves)
MELODY = ((0, 4, 6, 8, 14), (0, 4, 8), (0, 2, 4, 8, 12), (0, 8, 12))
MELODY_LEVELS = (56, 62, 74, 90)   #: velocities (of 127) of the melody over the bass at 52–57


def alberti(melody: int, seed: int) -> np.ndarray:
    """A groove [32, 3]: an Alberti bass (a note on every sixteenth at 52, 57 on the beats, ± 3)
    under a melody at ``melody`` (the groove hears the louder), bars (seed % 2) · 2 and the next
    of ``MELODY``, every note ± 0.03 steps."""
    rng = np.random.default_rng(seed)
    velocity = np.where(np.arange(STEPS) % STEPS_PER_BEAT == 0, 57.0, 52.0) + 3 * rng.standard_normal(STEPS)
    first = 2 * (seed % 2)
    for bar in range(2):
        for step in MELODY[first + bar]:
            velocity[bar * 16 + step] = max(velocity[bar * 16 + step], melody + 3 * rng.standard_normal())
    groove = np.zeros((STEPS, 3), np.float32)
    groove[:, HIT] = 1.0
    groove[:, VELOCITY] = np.clip(velocity / 127, 0.02, 1.0)
    groove[:, OFFSET] = np.clip(0.03 * rng.standard_normal(STEPS), -0.5, 0.49)
    return groove


OSTINATO_ACCENTS = (1.5, 2.0)   #: a pianist's sixteenth ostinato: the eighths this × the sixteenths between


def ostinato(ratio: float, seed: int) -> np.ndarray:
    """Flat sixteenths at 55 of 127 with the eighths ``ratio`` × as loud: one accented figure, every beat."""
    groove = flat_sixteenths(55, 0.0, seed)
    groove[0::2, VELOCITY] = np.clip(groove[0::2, VELOCITY] * ratio, 0.02, 1.0)
    return groove


def levels(model: OnnxModel, card: dict) -> dict:
    """Snare hits, backbeats (of 4) and the drums' offsets on the eighths and in between at density
    0.5 over flat sixteenths and over an Alberti bass under a melody, as played and as heard."""
    thresholds = np.asarray(card["thresholds"], np.float32)
    calibration = Calibration.from_card(card)

    def row(played: np.ndarray) -> dict:
        heard = [listening.heard(Groove(g)) for g in played]
        out = {}
        for label, grooves, scales, feels in (
                ("as_played", played, [1.0] * len(played), [()] * len(played)),
                ("heard", *box_reads(model, heard), [h.feel for h in heard])):
            snare: list[float] = []
            backbeats: list[float] = []
            on: list[float] = []
            between: list[float] = []
            kicks: list = []
            kicks_between: list = []
            hats: list[float] = []
            backbeat: list[float] = []
            for p, v, o, k, feel in zip(*model.predict(grooves), scales, feels):
                steps = listening.felt(shape_pattern(p, v, o, thresholds, Controls(velocity_scale=k),
                                                     calibration), feel).steps
                hits = steps[..., HIT] > 0
                snare.append(hits[:, SNARE].sum())
                backbeats.append(hits[BACKBEATS, SNARE].sum())
                kicks.append(hits[DOWNBEATS, KICK].sum())
                kicks_between.append(hits[1::2, KICK].sum())
                hats.extend(steps[:, HATS, VELOCITY][hits[:, HATS]])
                backbeat.extend(steps[BACKBEATS, SNARE, VELOCITY][hits[BACKBEATS, SNARE]])
                on.append(steps[0::2][..., OFFSET][hits[0::2]].mean())
                between.append(steps[1::2][..., OFFSET][hits[1::2]].mean())
            out[label] = {"snare": float(np.mean(snare)), "backbeats": float(np.mean(backbeats)),
                          "kicks": float(np.mean(kicks)), "kicks_between": float(np.mean(kicks_between)),
                          "hats": float(np.median(hats) / np.median(backbeat)) if hats and backbeat else 0.0,
                          "on": float(np.mean(on)), "between": float(np.mean(between))}
        return out

    out: dict = {}
    for name, (swing, push) in FEELS.items():
        for velocity in LEVELS:
            out[f"{name} {velocity}"] = row(np.array([flat_sixteenths(velocity, swing, seed, push)
                                                      for seed in range(SEEDS)]))
    for melody in MELODY_LEVELS:
        out[f"Alberti, melody {melody}"] = row(np.array([alberti(melody, seed) for seed in range(SEEDS)]))
    for ratio in OSTINATO_ACCENTS:
        out[f"eighths {ratio} × the 16ths at 55"] = row(np.array([ostinato(ratio, seed) for seed in range(SEEDS)]))
    return out


def dynamics(model: OnnxModel, card: dict) -> dict[int, dict[str, float]]:
    """The drums' mean velocity (of 127) at density 0.5 over plain eighths, as the model plays them
    ("eighths") and as the box does ("box"), and over flat sixteenths heard on the eighths ("heard";
    "unbalanced" without ``listening.BALANCE``), at each of LEVELS."""
    thresholds = np.asarray(card["thresholds"], np.float32)
    calibration = Calibration.from_card(card)

    def level(grooves: np.ndarray, scales: list[float] | np.ndarray) -> float:
        played = [shape_pattern(p, v, o, thresholds, Controls(velocity_scale=k), calibration).steps
                  for p, v, o, k in zip(*model.predict(grooves), scales)]
        return float(np.mean([s[..., VELOCITY][s[..., HIT] > 0].mean() * 127 for s in played]))

    out = {}
    for velocity in LEVELS:
        sixteenths = np.array([flat_sixteenths(velocity, 0.0, seed) for seed in range(SEEDS)])
        eighths = sixteenths.copy()
        eighths[:, 1::2] = 0.0
        heard = [listening.heard(Groove(g)) for g in sixteenths]
        grooves = np.array([h.groove.steps for h in heard])
        out[velocity] = {"eighths": level(eighths, [1.0] * SEEDS),
                         "box": level(*box_reads(model, [listening.heard(Groove(g)) for g in eighths])),
                         "heard": level(grooves, [h.velocity_scale for h in heard]),
                         "unbalanced": level(grooves, [h.velocity_scale / listening.BALANCE for h in heard])}
    return out


FLOOR = generator.VELOCITY_FLOOR * 127   #: the softest hit, of 127
RHYTHMS = {"whole notes": (0, 16), "half notes": (0, 8, 16, 24), "quarters": tuple(range(0, 32, 4)),
           "eighths": tuple(range(0, 32, 2))}
RHYTHM_LEVELS = (25, 45, 70, 100)


def by_rhythm(model: OnnxModel, card: dict) -> dict[str, dict[int, dict[str, float]]]:
    """Per rhythm and velocity: the drums' mean velocity and the backbeat's (of 127) at density
    0.5, as the model plays them ("model", "model_backbeat") and as the box does ("box")."""
    thresholds = np.asarray(card["thresholds"], np.float32)
    calibration = Calibration.from_card(card)
    out: dict[str, dict[int, dict[str, float]]] = {}
    for name, steps in RHYTHMS.items():
        for velocity in RHYTHM_LEVELS:
            groove = np.zeros((32, 3), np.float32)
            groove[list(steps), HIT], groove[list(steps), VELOCITY] = 1.0, velocity / 127
            (read,), (scaled,) = box_reads(model, [listening.heard(Groove(groove))])
            row = {}
            for key, cells, scale in (("model", groove, 1.0), ("box", read, scaled)):
                (p,), (v,), (o,) = model.predict(np.asarray(cells, np.float32)[None])
                played = shape_pattern(p, v, o, thresholds, Controls(velocity_scale=scale), calibration).steps
                hits = played[..., HIT] > 0
                backbeat = played[BACKBEATS, SNARE, VELOCITY][hits[BACKBEATS, SNARE]]
                row[key] = float(played[..., VELOCITY][hits].mean() * 127)
                row[f"{key}_backbeat"] = float(backbeat.mean() * 127) if backbeat.size else float("nan")
            out.setdefault(name, {})[velocity] = row
    return out


def dynamics_markdown(levels: dict[int, dict[str, float]], rhythms: dict[str, dict[int, dict[str, float]]]) -> str:
    at_80 = levels[80]["eighths"]
    lines = [f"The drums' mean velocity at density 0.5 over plain eighths as the model plays them (over that at 80, "
             f"and (v / 80) ** MODEL_DYNAMICS {law.MODEL_DYNAMICS}) and as the box does (over the model's at 80, and "
             f"the law: (v / 80) ** DYNAMICS {law.DYNAMICS} of the level at 80 above the softest hit, {FLOOR:.0f}; "
             f"over LOUD {law.LOUD * 127:.0f}, (v / LOUD) ** DYNAMICS of the box's level there), "
             f"and over flat sixteenths heard on the eighths (listening.BALANCE {listening.BALANCE}):", "",
             "| notes at | model over eighths | over 80 | (v / 80) ** MODEL_DYNAMICS | box over eighths | over 80 "
             "| the law | box over sixteenths heard | heard with BALANCE 1 |",
             "|---|---|---|---|---|---|---|---|---|"]
    loud = levels.get(round(law.LOUD * 127), {}).get("box")   # from LOUD up the law goes on from the box there
    for velocity, level in levels.items():
        expected = (FLOOR + (at_80 - FLOOR) * min(1.0, velocity / 80) ** law.DYNAMICS) / at_80
        if velocity > law.LOUD * 127 and loud is not None:
            expected = (FLOOR + (loud - FLOOR) * (velocity / 127 / law.LOUD) ** law.DYNAMICS) / at_80
        lines.append(f"| {velocity} | {level['eighths']:.1f} | {level['eighths'] / at_80:.2f} "
                     f"| {min(1.0, velocity / 80) ** law.MODEL_DYNAMICS:.2f} | {level['box']:.1f} "
                     f"| {level['box'] / at_80:.2f} | {expected:.2f} "
                     f"| {level['heard']:.1f} | {level['unbalanced']:.1f} |")
    ratios = [level["box"] / level["unbalanced"] for level in levels.values()]
    lines += ["", f"Box over eighths / heard with BALANCE 1, geometric mean: {float(np.exp(np.mean(np.log(ratios)))):.3f}.",
              "", "| rhythm | notes at | model: all / backbeat | box: all / backbeat |", "|---|---|---|---|"]
    for name, rows in rhythms.items():
        for velocity, r in rows.items():
            lines.append(f"| {name} | {velocity} | {r['model']:.0f} / {r['model_backbeat']:.0f} "
                         f"| {r['box']:.0f} / {r['box_backbeat']:.0f} |")
    return "\n".join(lines)


KICK, SNARE = ds.VOICES.index("kick"), ds.VOICES.index("snare")
BACKBEATS = [4, 12, 20, 28]
DOWNBEATS = [0, 8, 16, 24]   #: beats 1 and 3 of each bar
HATS = [ds.VOICES.index("closed_hat"), ds.VOICES.index("open_hat"), ds.VOICES.index("ride")]


THIN = 0.25   #: the density at which :func:`thin` looks at what a thin pattern keeps
BOX = "the box: its backbone at 0.5 first"


def thin(model: OnnxModel, card: dict, val: ds.Split) -> dict[str, dict[str, float]]:
    """At density ``THIN``, the box's chooser (the backbone it plays at 0.5 first:
    ``generator.pattern_hits``), and the chooser alone with its sure cells first
    (``generator.SURE``) and without (a ``sure`` above 1): over the validation drummers' own
    grooves, pooled hit F1 through the chooser; over the flat sixteenths, Alberti and ostinato
    rows heard on the eighths, the share of beats 1 and 3 with a kick and of 2 and 4 with a snare."""
    calibration = Calibration.from_card(card)
    bias = np.asarray(calibration.voice_bias, np.float64)
    rows = [flat_sixteenths(v, 0.0, seed) for v in LEVELS for seed in range(SEEDS)]
    rows += [alberti(m, seed) for m in MELODY_LEVELS for seed in range(SEEDS)]
    rows += [ostinato(r, seed) for r in OSTINATO_ACCENTS for seed in range(SEEDS)]
    heard = np.array([listening.on_the_eighths(Groove(g)).groove.steps for g in rows])
    drummers = model.predict(val.inputs)[0]
    parts = model.predict(heard)[0]

    def chosen(probabilities: np.ndarray, label: str) -> np.ndarray:
        if label == BOX:
            return generator.pattern_hits_for(probabilities, bias, THIN, calibration)
        sure = generator.SURE if label == "sure first" else 1.01
        counts = np.array([generator.target_hits(p, THIN, calibration) for p in probabilities])
        return generator.choose_hits_for(probabilities, bias, counts, sure)

    out = {}
    for label in (BOX, "sure first", "by margin alone"):
        f1 = hit_scores(chosen(drummers, label), val.patterns[..., HIT] > 0.5)[0].f1
        hits = chosen(parts, label)
        out[label] = {"f1": float(f1), "kicks": float(hits[:, DOWNBEATS, KICK].mean()),
                      "backbeats": float(hits[:, BACKBEATS, SNARE].mean())}
    return out


THINNING = (0.0, 0.25, 0.5)   #: the densities :func:`thinning` compares the choosers at


def backbeat_bars(hits: np.ndarray) -> float:
    """The share of bars of windows [N, 32, 9] with a snare on both 2 and 4."""
    return float((hits[:, BACKBEATS[0::2], SNARE] & hits[:, BACKBEATS[1::2], SNARE]).mean())


def thinning(model: OnnxModel, card: dict, val: ds.Split) -> dict:
    """The box's chooser (``generator.pattern_hits``) against its sure cells first alone, at the
    densities ``THINNING``, over the validation drummers' own grooves and the fixed simulated
    hands: pooled hit F1 against the drummers' patterns, hits per 2 bars, and bars with a snare on
    2 and 4 (the drummers' own: ``own``)."""
    calibration = Calibration.from_card(card)
    bias = np.asarray(calibration.voice_bias, np.float64)
    true = val.patterns[..., HIT] > 0.5
    out: dict = {"own": backbeat_bars(true)}
    for kind in ("drummers", "hands"):
        grooves = val.inputs if kind == "drummers" else humanize.human_set(val.patterns, kind, humanize.SEED_VALIDATION,
                                                                         register=True)
        probabilities = model.predict(grooves)[0]
        for density in THINNING:
            counts = np.array([generator.target_hits(p, density, calibration) for p in probabilities])
            for label, hits in ((BOX, generator.pattern_hits_for(probabilities, bias, density, calibration)),
                                ("sure first", generator.choose_hits_for(probabilities, bias, counts))):
                out[f"{kind} {density} {label}"] = {"f1": float(hit_scores(hits, true)[0].f1),
                                                    "hits": float(hits.sum(axis=(1, 2)).mean()),
                                                    "backbeats": backbeat_bars(hits)}
    return out


def measure(model_dir: Path, gmd_root: str | None = None) -> dict:
    val = ds.load_split("validation", gmd_root)
    card = json.loads((model_dir / "model.json").read_text())
    model = OnnxModel(model_dir, "int8", threads=2)
    loops = {}
    for kind in KINDS:
        grooves = val.inputs if kind == "drummers" else humanize.human_set(val.patterns, kind, humanize.SEED_VALIDATION,
                                                                         register=True)
        heard, scales, changed = heard_grooves(grooves, model)
        loops[kind] = {"windows": len(grooves), "heard_on_the_eighths": changed,
                       "as_played": figures(model, card, grooves, val.patterns),
                       "heard": figures(model, card, heard, val.patterns, scales)}
    hit = val.grooves[..., HIT] > 0.5
    busy = hit[:, 1::2].sum(axis=1) >= listening.BUSY_STEPS
    kicks = val.patterns[busy][..., KICK, HIT] > 0.5
    own = val.patterns[busy]
    hats = own[:, :, HATS, VELOCITY][own[:, :, HATS, HIT] > 0.5]
    backbeat = own[:, BACKBEATS, SNARE, VELOCITY][own[:, BACKBEATS, SNARE, HIT] > 0.5]
    played = np.where(hit[busy], val.grooves[busy][..., VELOCITY], np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)      # a groove with no note on its "&"s
        beats_over_ands = np.nanmean(played[:, 0::STEPS_PER_BEAT], 1) / np.nanmean(played[:, 2::STEPS_PER_BEAT], 1)
        backbeat_over_beats = (np.nanmean(played[:, BACKBEATS], 1) / np.nanmean(played[:, DOWNBEATS], 1))
    busy_drummers = {"grooves": int(busy.sum()), "kicks": float(kicks[:, DOWNBEATS].sum(axis=1).mean()),
                     "beats_over_ands": [float(q) for q in np.nanpercentile(beats_over_ands, [25, 50, 75])],
                     "backbeat_over_beats": float(np.nanmedian(backbeat_over_beats)),
                     "kicks_between": float(kicks[:, 1::2].sum(axis=1).mean()),
                     "hats": float(np.median(hats) / np.median(backbeat))}
    drummers_level = float(val.grooves[..., VELOCITY][hit].mean())
    songs: dict[str, dict] = {}
    for label, on in (("as_played", False), ("heard", True)):
        for song, (windows, _keys) in zip(comping.SONGS, playalong.box_performances(
                model_dir, 0.5, EngineSettings(hear_eighths=on))):
            s = drumstats.stats(windows)
            songs.setdefault(song.name, {})[label] = {"hits": s["hits"], "snare": s["hits_snare"],
                                                      "rolls": s["snare_rolls_per_8_bars"], "backbeat": s["backbeat_accent"]}
    return {"loops": loops, "songs": songs, "levels": levels(model, card), "dynamics": dynamics(model, card), "rhythms": by_rhythm(model, card),
            "thin": thin(model, card, val), "thinning": thinning(model, card, val),
            "drummers_level": drummers_level, "busy_drummers": busy_drummers}


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
    lines += ["", f"Flat sixteenths, an Alberti bass under a melody and an accented ostinato, at density 0.5, {SEEDS} seeds "
              "(as played → heard on the eighths):", "",
              "| sixteenths | snare hits / 2 bars | backbeats with a snare (of 4) | kicks on 1 and 3 (of 4) "
              "| kicks on the in-between sixteenths | hats and ride / backbeat (median velocity) "
              "| drums on the eighths late by (steps) | drums in between late by |",
              "|---|---|---|---|---|---|---|---|"]
    for name, r in result["levels"].items():
        a, h = r["as_played"], r["heard"]
        lines.append(f"| {name} | {a['snare']:.1f} → {h['snare']:.1f} | {a['backbeats']:.1f} → {h['backbeats']:.1f} "
                     f"| {a['kicks']:.1f} → {h['kicks']:.1f} | {a['kicks_between']:.1f} → {h['kicks_between']:.1f} "
                     f"| {a['hats']:.2f} → {h['hats']:.2f} "
                     f"| {a['on']:+.2f} → {h['on']:+.2f} | {a['between']:+.2f} → {h['between']:+.2f} |")
    busy = result["busy_drummers"]
    lines += ["", f"GMD validation drummers over their {busy['grooves']} grooves as busy (their own patterns): "
              f"kicks on 1 and 3 {busy['kicks']:.1f} of 4, on the in-between sixteenths {busy['kicks_between']:.1f}, "
              f"hats and ride / backbeat {busy['hats']:.2f}. In their grooves (every voice, the loudest on a step) "
              "the beats' mean velocity over the \"&\"s' is "
              + " / ".join(f"{q:.2f}" for q in busy["beats_over_ands"]) + " (quartiles), and beats 2 and 4 over 1 and 3 "
              f"{busy['backbeat_over_beats']:.2f} (median)."]
    lines += ["", f"At density {THIN}, the box's chooser (the kick on 1 and snare on 2 and 4 it plays at 0.5 first), "
              f"and the chooser alone with its sure cells (p ≥ {generator.SURE}) first by place in the beat, "
              "or all by margin (the flat sixteenths, Alberti and ostinato rows heard on the eighths; the validation "
              "drummers' own grooves):", "",
              "| chooser | beats 1 and 3 with a kick | 2 and 4 with a snare | drummers' F1 through the chooser |",
              "|---|---|---|---|"]
    for label, r in result["thin"].items():
        lines.append(f"| {label} | {r['kicks']:.2f} | {r['backbeats']:.2f} | {r['f1']:.4f} |")
    lines += ["", thinning_markdown(result["thinning"])]
    lines += ["", f"The drummers' own grooves' mean velocity (validation, every note): {result['drummers_level']:.3f} "
              f"(listening.LEVEL {listening.LEVEL})."]
    lines += ["", dynamics_markdown(result["dynamics"], result["rhythms"])]
    return "\n".join(lines)


def thinning_markdown(result: dict) -> str:
    """:func:`thinning` as a table."""
    lines = ["Turning the density down over the validation drummers' grooves and simulated hands, the box's "
             "chooser (its backbone at 0.5 first) against its sure cells first alone (pooled hit F1 / hits per "
             f"2 bars / bars with a snare on 2 and 4; the drummers' own bars: {result['own']:.2f}):", "",
             "| input | density | the box | sure first alone |", "|---|---|---|---|"]
    for kind in ("drummers", "hands"):
        for density in THINNING:
            cells = [result[f"{kind} {density} {label}"] for label in (BOX, "sure first")]
            lines.append(f"| {kind} | {density} | " + " | ".join(
                f"{c['f1']:.4f} / {c['hits']:.1f} / {c['backbeats']:.2f}" for c in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path, nargs="?", default=REPO / "models" / "groove-vae")
    p.add_argument("--gmd-dir", default=None)
    p.add_argument("--dynamics", action="store_true", help="only the drums' level (no GMD needed)")
    args = p.parse_args(argv)
    if args.dynamics:
        card = json.loads((args.model_dir / "model.json").read_text())
        model = OnnxModel(args.model_dir, "int8")
        print(dynamics_markdown(dynamics(model, card), by_rhythm(model, card)))
        return
    try:
        result = measure(args.model_dir, args.gmd_dir)
    except ds.DatasetError as error:
        raise SystemExit(f"hearing: {error}") from None
    print(markdown(result))


if __name__ == "__main__":
    main()

"""Listen and look: one self-contained HTML report of a model (make report).

    python -m training.report [models/groove-vae] [--out out/report] [--loops 12]

On the GMD test split (z = mu, the card's thresholds, int8 like the box) and on keyboard-like
input played through the engine on a virtual clock (appliance.core.render, the box's default
controls), it writes out/report/index.html with, beside it, figures/ (PNG), audio/ (WAV) and
midi/:
- musical features per pattern (training/features.py) as distributions, generated vs ground truth,
  over all genres and per genre, with KL divergence and overlapping area in tables;
- velocity heat-maps per voice (step × velocity), ground truth vs generated;
- the latent map: t-SNE of the test grooves' mu coloured by genre, interactive (plotly, its
  JavaScript inlined: the page opens from a file with no server and no network);
- a listening set of held-out loops from different genres: the groove, the drummer's pattern, the
  model's pattern, a keyboard-like performance of the groove and what the box plays to it;
- the model card's metrics and the sweep's table (from models/README.md).
"""
from __future__ import annotations

import argparse
import html
import json
import logging
import math
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from appliance.core.generator import Calibration, Controls, shape_pattern  # noqa: E402
from appliance.core.model_files import path_card  # noqa: E402
from appliance.core.groove import HIT, NUM_VOICES, STEPS, VELOCITY, VOICES  # noqa: E402
from appliance.core.render import render  # noqa: E402
from training import audio, features as feat  # noqa: E402
from training import dataset as ds  # noqa: E402
from training.onnx_model import OnnxModel, heard_by_register  # noqa: E402

log = logging.getLogger("training.report")

REPO = Path(__file__).resolve().parent.parent
README = REPO / "models" / "README.md"
SOURCES = ("drummer", "model", "keyboard")  #: ground truth, model on the drummer's groove, box on keyboard input
LABELS = {"drummer": "drummer (ground truth)", "model": "model, drummer's groove",
          "keyboard": "box, keyboard-like input"}
COLOURS = {"drummer": "#333333", "model": "#d9480f", "keyboard": "#1c7ed6"}
MAIN_FEATURES = ("density", "syncopation", "velocity mean", "velocity spread", "timing mean",
                 "timing spread", "swing", "low band", "mid band", "high band", "complexity")
GENRE_FEATURES = ("density", "syncopation", "velocity mean", "timing mean", "swing", "complexity")
KEYBOARD_AUGMENT = ds.Augment(p_subset=1.0, p_curve=1.0, p_jitter=1.0)  #: as training.ablation


@dataclass
class Settings:
    model_dir: Path
    out: Path
    gmd_dir: str | None = None
    loops: int = 12                 #: listening-set loops
    keyboard_windows: int = 120     #: test windows played through the engine as keyboard-like input
    max_windows: int = 0            #: 0: the whole test split
    precision: str = "int8"
    seed: int = 0
    soundfont: Path | None = None
    cache: bool = True
    readme: Path = README


@dataclass
class Data:
    """Everything the report shows, computed once."""

    genres: np.ndarray               #: [N] genre of each window
    files: list[str]                 #: [N] MIDI file of each window
    bpm: np.ndarray                  #: [N]
    grooves: np.ndarray              #: [N,32,4] (with the register)
    patterns: dict[str, np.ndarray]  #: source → [n,32,9,3] (keyboard: a subset)
    keyboard_index: np.ndarray       #: windows of the keyboard subset
    mu: np.ndarray                   #: [N,Z]
    feats: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


# ---- data --------------------------------------------------------------------------------------

def spread_index(n: int, k: int) -> np.ndarray:
    """k indices spread evenly over range(n) (all of them when k is 0 or ≥ n)."""
    return np.arange(n) if k <= 0 or k >= n else np.unique(np.linspace(0, n - 1, k).round().astype(int))


def shape(probs: np.ndarray, vel: np.ndarray, off: np.ndarray, card: dict, grooves: np.ndarray) -> np.ndarray:
    """Decoder outputs [N,32,9] → patterns [N,32,9,3] as the box shapes them (its default controls,
    the card's thresholds and calibration for the encoder that heard each groove)."""
    fits = [(np.asarray(c["thresholds"], np.float32), Calibration.from_card(c))
            for c in (card, path_card(card, register=True))]
    heard = heard_by_register(card, grooves)
    return np.stack([shape_pattern(p, v, o, fits[h][0], Controls(), fits[h][1]).steps
                     for p, v, o, h in zip(probs, vel, off, heard.astype(int))]).astype(np.float32)


def keyboard_performance(groove: np.ndarray, bpm: float, path: Path) -> None:
    audio.keyboard_midi(groove, bpm).save(str(path))


def through_engine(groove: np.ndarray, bpm: float, settings: Settings, work: Path, name: str,
                   passes: int = 2) -> tuple[np.ndarray, Path]:
    """A keyboard-like performance of `groove` played `passes` times into the engine: its pattern
    at the end, and the rendered file (keyboard track + the box's drum track)."""
    perf, out = work / f"{name}-keys.mid", work / f"{name}-box.mid"
    keyboard_performance(groove, bpm, perf)
    result = render(perf, out, model_dir=settings.model_dir, bpm=bpm, passes=passes, seed=settings.seed,
                    precision=settings.precision)
    return np.array(result.pattern.steps), out


def load(settings: Settings, work: Path) -> Data:
    root = ds.gmd_dir(settings.gmd_dir)
    test = ds.load_split("test", settings.gmd_dir, cache_dir=ds.CACHE_DIR if settings.cache else None)
    entries = {str(e.midi.relative_to(root)) if e.midi.is_relative_to(root) else str(e.midi): e
               for e in ds.list_files(root, "test")}
    index = spread_index(len(test), settings.max_windows)
    files = [test.files[i] for i in test.file_ids[index]]
    genres = np.array([entries[f].style.split("/")[0] if f in entries else "unknown" for f in files])
    bpm = np.array([entries[f].bpm if f in entries else 120.0 for f in files])
    grooves, truth = test.inputs[index], test.patterns[index]   # (with the register: a model may hear it)
    card = json.loads((settings.model_dir / "model.json").read_text())
    model = OnnxModel(settings.model_dir, settings.precision, threads=2)
    mus: list[np.ndarray] = []
    outs: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    for i in range(0, len(grooves), 256):
        mu, _ = model.encode(grooves[i:i + 256])
        mus.append(mu)
        for o, a in zip(outs, model.decode(mu)):
            o.append(a)
    probs, vel, off = (np.concatenate(o) for o in outs)
    generated = shape(probs, vel, off, card, grooves)

    kb_index = spread_index(len(index), settings.keyboard_windows)
    kb_grooves = ds.augment_grooves(truth[kb_index], np.random.default_rng(settings.seed), KEYBOARD_AUGMENT)
    started = time.monotonic()
    kb_patterns = np.stack([through_engine(g, float(bpm[i]), settings, work, f"kb{n}")[0]
                            for n, (i, g) in enumerate(zip(kb_index, kb_grooves))])
    log.info("%d keyboard-like loops through the engine in %.0f s", len(kb_index), time.monotonic() - started)
    data = Data(genres, files, bpm, grooves, {"drummer": truth, "model": generated, "keyboard": kb_patterns},
                kb_index, np.concatenate(mus))
    data.feats = {source: feat.features(p) for source, p in data.patterns.items()}
    return data


def genre_mask(data: Data, source: str, genre: str | None) -> np.ndarray:
    genres = data.genres[data.keyboard_index] if source == "keyboard" else data.genres
    return np.ones(len(genres), bool) if genre is None else genres == genre


# ---- figures -----------------------------------------------------------------------------------

class Figures:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.saved: list[str] = []

    def save(self, fig: plt.Figure, name: str) -> str:
        fig.savefig(self.folder / name, dpi=90, bbox_inches="tight")
        plt.close(fig)
        self.saved.append(name)
        return f"figures/{name}"


def _hist(ax: plt.Axes, data: Data, name: str, genre: str | None, sources=SOURCES) -> None:
    values = {s: data.feats[s][name][genre_mask(data, s, genre)] for s in sources}
    values = {s: v for s, v in values.items() if len(v)}
    _, _, edges = feat.histograms(np.concatenate(list(values.values())), np.zeros(0), bins=30)
    for s, v in values.items():
        ax.hist(v, bins=list(edges), density=True, histtype="step" if s != "drummer" else "stepfilled",
                alpha=0.35 if s == "drummer" else 1.0, color=COLOURS[s], linewidth=1.5, label=f"{LABELS[s]} ({len(v)})")
    ax.set_title(name, fontsize=9)
    ax.set_xlabel(feat.FEATURES[name], fontsize=7)
    ax.tick_params(labelsize=7)


def feature_grid(figs: Figures, data: Data, names: tuple[str, ...], genre: str | None, file: str,
                 sources=SOURCES) -> str:
    cols = 4 if len(names) > 6 else 3
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows + 0.5))
    for ax, name in zip(axes.flat, names):
        _hist(ax, data, name, genre, sources)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return figs.save(fig, file)


def voice_density_figure(figs: Figures, data: Data) -> str:
    fig, ax = plt.subplots(figsize=(9, 3.2))
    width = 0.27
    x = np.arange(NUM_VOICES)
    for k, s in enumerate(SOURCES):
        means = [data.feats[s][f"density {v}"].mean() for v in VOICES]
        ax.bar(x + (k - 1) * width, means, width, color=COLOURS[s], label=LABELS[s], alpha=0.85)
    ax.set_xticks(x, VOICES, fontsize=8)
    ax.set_ylabel("hits per step (mean)")
    ax.legend(fontsize=8, frameon=False)
    ax.set_title("Density per voice")
    fig.tight_layout()
    return figs.save(fig, "voice_density.png")


def heatmap_figure(figs: Figures, data: Data, voice: int) -> str:
    """Step × velocity counts of one voice: drummer vs model vs box (each normalised to its windows)."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 2.6), sharey=True)
    bins = np.linspace(0, 1, 17)
    grids = {}
    for s in SOURCES:
        p = data.patterns[s][:, :, voice]
        hit = p[..., HIT] > 0.5
        steps = np.broadcast_to(np.arange(STEPS), hit.shape)[hit]
        grids[s] = np.histogram2d(steps, p[..., VELOCITY][hit], bins=(np.arange(STEPS + 1), bins))[0].T / max(len(p), 1)
    top = max(g.max() for g in grids.values()) or 1.0
    for ax, s in zip(axes, SOURCES):
        im = ax.imshow(grids[s], origin="lower", aspect="auto", extent=(0, STEPS, 0, 1), cmap="magma", vmin=0, vmax=top)
        ax.set_title(LABELS[s], fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.set_xticks(range(0, STEPS + 1, 4))
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("velocity", fontsize=8)
    fig.colorbar(im, ax=axes, fraction=0.02, label="hits per window")
    fig.suptitle(f"{VOICES[voice]}: where hits fall and how loud", fontsize=10, y=1.06)
    return figs.save(fig, f"heatmap_{VOICES[voice]}.png")


def overlap_matrix_figure(figs: Figures, genres: list[str], matrix: np.ndarray, names: tuple[str, ...]) -> str:
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(names), 0.9 + 0.32 * len(genres)))
    im = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(len(genres)), genres, fontsize=8)
    for (i, j), v in np.ndenumerate(matrix):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6, color="white" if v < 0.6 else "black")
    fig.colorbar(im, ax=ax, label="overlapping area")
    ax.set_title("Overlapping area, model vs drummer, per genre (1 = same distribution)", fontsize=10)
    fig.tight_layout()
    return figs.save(fig, "overlap_by_genre.png")


def f1_figure(figs: Figures, card: dict) -> str | None:
    test = card.get("metrics", {}).get("test", {})
    if not test:
        return None
    fig, ax = plt.subplots(figsize=(8, 2.8))
    x = np.arange(NUM_VOICES)
    for k, precision in enumerate(("fp32", "int8")):
        if precision in test:
            ax.bar(x + (k - 0.5) * 0.38, [test[precision]["f1_per_voice"][v] for v in VOICES], 0.38,
                   label=precision, color=("#495057", "#d9480f")[k])
    ax.set_xticks(x, VOICES, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("hit F1 (test)")
    ax.legend(fontsize=8, frameon=False)
    ax.set_title("Hit F1 per voice on the test split (model card)")
    fig.tight_layout()
    return figs.save(fig, "f1_per_voice.png")


def sweep_figure(figs: Figures, rows: list[dict]) -> str | None:
    done = [r for r in rows if r.get("val F1") not in (None, "–")]
    if not done:
        return None
    done.sort(key=lambda r: int(re.sub(r"\D.*", "", r["trial"]) or 0))
    numbers = [int(re.sub(r"\D.*", "", r["trial"])) for r in done]
    values = [float(r["val F1"]) for r in done]
    fig, ax = plt.subplots(figsize=(7, 2.8))
    colours = ["#2b8a3e" if r["state"] == "complete" else "#adb5bd" for r in done]
    ax.scatter(numbers, values, c=colours)
    ax.plot(numbers, np.maximum.accumulate(values), color="#2b8a3e", linewidth=1, label="best so far")
    ax.set_xlabel("trial (grey: pruned, value at its last epoch)")
    ax.set_ylabel("validation hit F1")
    ax.legend(fontsize=8, frameon=False)
    ax.set_title("Sweep: validation F1 per trial")
    fig.tight_layout()
    return figs.save(fig, "sweep.png")


def latent_map(data: Data, seed: int) -> str:
    """t-SNE of mu coloured by genre, as a plotly div with its JavaScript inlined."""
    import plotly.graph_objects as go
    from sklearn.manifold import TSNE

    n = len(data.mu)
    xy = TSNE(n_components=2, init="pca", random_state=seed,
              perplexity=float(min(30.0, max(2.0, (n - 1) / 3)))).fit_transform(data.mu.astype(np.float64))
    fig = go.Figure()
    for genre in sorted(set(data.genres)):
        m = data.genres == genre
        fig.add_trace(go.Scatter(
            x=xy[m, 0], y=xy[m, 1], mode="markers", name=f"{genre} ({m.sum()})",
            marker={"size": 5, "opacity": 0.75},
            customdata=np.stack([data.genres[m], np.array(data.files)[m]], axis=-1),
            hovertemplate="%{customdata[0]}<br>%{customdata[1]}<extra></extra>"))
    fig.update_layout(height=560, margin={"l": 10, "r": 10, "t": 30, "b": 10}, template="plotly_white",
                      title="t-SNE of the test grooves' latent mean (mu), coloured by genre",
                      xaxis={"showticklabels": False}, yaxis={"showticklabels": False})
    return fig.to_html(full_html=False, include_plotlyjs=True, config={"displaylogo": False, "responsive": True})


# ---- tables ------------------------------------------------------------------------------------

def table(header: list[str], rows: list[list], cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c if isinstance(c, Raw) else html.escape(str(c))}</td>" for c in r)
                   + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


class Raw(str):
    """Table cell HTML that is not escaped."""


def distances(data: Data, genre: str | None, source: str, names) -> dict[str, tuple[float, float]]:
    out = {}
    t = genre_mask(data, "drummer", genre)
    g = genre_mask(data, source, genre)
    for name in names:
        a, b = data.feats["drummer"][name][t], data.feats[source][name][g]
        out[name] = (feat.kl_divergence(a, b), feat.overlapping_area(a, b)) if len(a) and len(b) else (math.nan, math.nan)
    return out


def _f(x: float | None, d: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{d}f}"


def card_tables(card: dict) -> str:
    test = card.get("metrics", {}).get("test")
    parts = []
    arch = card.get("architecture", {})
    if arch:
        parts.append(table(["architecture", "value"], [[k, v] for k, v in arch.items()]))
    if test:
        rows = []
        for precision in ("fp32", "int8"):
            r = test[precision]
            rows.append([f"model {precision}", _f(r["hit"]["precision"]), _f(r["hit"]["recall"]), _f(r["hit"]["f1"]),
                         _f(r["velocity_mse_tp"], 4), _f(r["offset_mse_tp"], 4)])
        c = test["fp32"]["baselines"]["copy_groove"]
        rows.append(["copy-the-groove (fp32 hits)", "", "", _f(c["f1"]), _f(c["velocity_mse_tp"], 4), _f(c["offset_mse_tp"], 4)])
        parts.append(f"<p>Test split, {test['fp32']['windows']} windows; {html.escape(test.get('protocol', ''))}.</p>")
        parts.append(table(["", "hit P", "hit R", "hit F1", "velocity MSE (TP)", "offset MSE (TP)"], rows))
        parts.append(table(["F1 per voice"] + list(VOICES),
                           [[p] + [_f(test[p]["f1_per_voice"][v]) for v in VOICES] for p in ("fp32", "int8")]))
    else:
        parts.append("<p>The model card holds no test metrics (run <code>make evaluate</code>).</p>")
    training = card.get("training", {})
    if training.get("command"):
        parts.append(f"<p>Trained with <code>{html.escape(training['command'])}</code> "
                     f"({training.get('epochs', '?')} epochs, {training.get('seconds', '?')} s).</p>")
    return "\n".join(parts)


def sweep_rows(readme: Path) -> tuple[str, list[dict]]:
    """The sweep's table from models/README.md (between the sweep-table markers)."""
    if not readme.exists():
        return "", []
    m = re.search(r"<!-- sweep-table -->(.*?)<!-- /sweep-table -->", readme.read_text(), re.S)
    if not m:
        return "", []
    lines = [ln.strip() for ln in m.group(1).strip().splitlines()]
    intro = " ".join(ln for ln in lines if ln and not ln.startswith("|"))
    rows_md = [ln for ln in lines if ln.startswith("|")]
    if len(rows_md) < 2:
        return intro, []
    header = [c.strip() for c in rows_md[0].strip("|").split("|")]
    rows = [dict(zip(header, (c.strip() for c in ln.strip("|").split("|")))) for ln in rows_md[2:]]
    return intro, rows


# ---- listening set -----------------------------------------------------------------------------

def pick_loops(data: Data, count: int, seed: int) -> list[int]:
    """`count` windows from as many genres as there are, the larger genres first; windows that
    hold at least 8 groove hits where possible."""
    rng = np.random.default_rng(seed)
    genres = sorted(set(data.genres), key=lambda g: (-(data.genres == g).sum(), g))
    pools = {}
    for g in genres:
        idx = np.flatnonzero(data.genres == g)
        busy = idx[data.grooves[idx, :, HIT].sum(axis=1) >= 8]
        pools[g] = list(rng.permutation(busy if len(busy) else idx))
    chosen: list[int] = []
    while len(chosen) < count and any(pools.values()):
        for g in genres:
            if pools[g] and len(chosen) < count:
                chosen.append(int(pools[g].pop()))
    return chosen


def listening_set(data: Data, settings: Settings, out: Path, work: Path) -> tuple[str, int, list[float]]:
    soundfont = audio.find_soundfont(settings.soundfont)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    (out / "midi").mkdir(parents=True, exist_ok=True)
    rows, players, levels = [], 0, []
    rng = np.random.default_rng(settings.seed + 1)
    for n, i in enumerate(pick_loops(data, settings.loops, settings.seed)):
        bpm = float(data.bpm[i])
        name = f"loop{n + 1:02d}-{re.sub(r'[^a-z0-9]+', '-', data.genres[i].lower())}"
        keys_groove = ds.augment_grooves(data.patterns["drummer"][i:i + 1], rng, KEYBOARD_AUGMENT)[0]
        _, box_file = through_engine(keys_groove, bpm, settings, work, name, passes=3)
        files = {
            "groove": audio.groove_midi(data.grooves[i], bpm),
            "drummer": audio.pattern_midi(data.patterns["drummer"][i], bpm),
            "model": audio.pattern_midi(data.patterns["model"][i], bpm),
            "keys": audio.keyboard_midi(keys_groove, bpm, repeats=3),
        }
        cells = {}
        for kind, midi in files.items():
            midi.save(str(out / "midi" / f"{name}-{kind}.mid"))
        shutil.copy(box_file, out / "midi" / f"{name}-keys+box.mid")
        for kind in (*files, "keys+box"):
            mid = out / "midi" / f"{name}-{kind}.mid"
            wav = out / "audio" / f"{name}-{kind}.wav"
            levels.append(audio.render_wav(mid, wav, soundfont))
            players += 1
            cells[kind] = Raw(f'<audio controls preload="metadata" src="audio/{wav.name}"></audio>'
                              f'<br><a href="midi/{mid.name}">MIDI</a>')
        rows.append([Raw(f"<b>{n + 1}</b>"), data.genres[i], Raw(f"<code>{html.escape(data.files[i])}</code>"),
                     f"{bpm:g}", cells["groove"], cells["drummer"], cells["model"], cells["keys"], cells["keys+box"]])
    header = ["#", "genre", "file (GMD test)", "BPM", "groove (what the model hears)", "drummer",
              "model", "keyboard-like performance", "keyboard + the box (listens 1 loop, then plays)"]
    return table(header, rows, "listen"), players, levels


# ---- the page ----------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1280px;padding:1em 2em;color:#212529}
h1{margin-bottom:.2em} h2{border-bottom:2px solid #dee2e6;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.85em} td,th{border:1px solid #dee2e6;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f1f3f5} figure{margin:1em 0} figcaption{font-size:.85em;color:#495057}
img{max-width:100%} audio{width:190px;height:32px} table.listen td{font-size:.9em}
.note{background:#fff9db;border-left:4px solid #fab005;padding:.5em 1em;font-size:.9em}
details{margin:.6em 0} summary{cursor:pointer;font-weight:600}
"""


def figure(src: str, caption: str) -> str:
    return f'<figure><img src="{src}" alt="{html.escape(caption)}"><figcaption>{html.escape(caption)}</figcaption></figure>'


def _intro(data: Data, settings: Settings, card: dict, genres: list[str]) -> list[str]:
    model_name = card.get("name", settings.model_dir.name)
    return [f"<h1>groovebox: listen and look — {html.escape(model_name)}</h1>",
            f"<p>Model <code>{html.escape(str(settings.model_dir))}</code> ({settings.precision}, as the box runs it) "
            f"on the Groove MIDI Dataset test split: {len(data.genres)} two-bar windows from "
            f"{len(set(data.files))} files in {len(genres)} genres. <b>Model</b>: the drummer's own groove "
            f"encoded, z = mu, shaped as the box shapes it (default controls, the card's thresholds and "
            f"calibration). <b>Box</b>: {len(data.keyboard_index)} of those windows turned "
            f"into keyboard-like performances (a chord on every groove hit; a random subset of the voices, "
            f"another velocity curve and timing jitter, as training.ablation's keyboard-like grooves) and "
            f"played twice into the engine on a virtual clock with the box's default controls "
            f"(appliance.core.render); its pattern after the second pass.</p>"]


def _features_section(figs: Figures, data: Data) -> list[str]:
    body = ["<h2>1. Features, generated vs ground truth</h2>",
            "<p>Definitions in <code>training/features.py</code>. Timing in sixteenth steps (+ late, − early).</p>",
            figure(feature_grid(figs, data, MAIN_FEATURES, None, "features_all.png"),
                   "Every feature over all genres (densities normalised)."),
            figure(voice_density_figure(figs, data), "Mean density of each voice.")]
    names = tuple(feat.FEATURES)
    d_model, d_kb = distances(data, None, "model", names), distances(data, None, "keyboard", names)
    rows = [[n, f"{np.mean(data.feats['drummer'][n]):.3f}", f"{np.mean(data.feats['model'][n]):.3f}",
             f"{np.mean(data.feats['keyboard'][n]):.3f}", _f(d_model[n][0]), _f(d_model[n][1]),
             _f(d_kb[n][0]), _f(d_kb[n][1])] for n in names]
    body.append("<p>Distances between each generated distribution and the drummers' (30-bin histograms on "
                "shared bins; KL(drummer ‖ generated) in nats, lower is closer; overlapping area 0..1, higher is "
                f"closer). The box uses {len(data.keyboard_index)} windows, so its distances carry more sampling "
                "noise.</p>")
    body.append(table(["feature", "mean drummer", "mean model", "mean box", "KL model", "OA model", "KL box",
                       "OA box"], rows))
    return body


def _genre_section(figs: Figures, data: Data, genres: list[str]) -> list[str]:
    body = ["<h2>2. Features per genre</h2>"]
    matrix = np.full((len(genres), len(MAIN_FEATURES)), np.nan)
    kl_rows, oa_rows = [], []
    for gi, g in enumerate(genres):
        dg = distances(data, g, "model", MAIN_FEATURES)
        matrix[gi] = [dg[n][1] for n in MAIN_FEATURES]
        count = int((data.genres == g).sum())
        kl_rows.append([g, count] + [_f(dg[n][0], 2) for n in MAIN_FEATURES])
        oa_rows.append([g, count] + [_f(dg[n][1], 2) for n in MAIN_FEATURES])
    body.append(figure(overlap_matrix_figure(figs, genres, matrix, MAIN_FEATURES),
                       "Overlapping area of model vs drummer, per genre and feature."))
    body.append("<details open><summary>Overlapping area per genre (model vs drummer)</summary>"
                + table(["genre", "windows", *MAIN_FEATURES], oa_rows) + "</details>")
    body.append("<details><summary>KL divergence per genre (model vs drummer)</summary>"
                + table(["genre", "windows", *MAIN_FEATURES], kl_rows) + "</details>")
    for g in genres:
        safe = re.sub(r"[^a-z0-9]+", "-", g.lower())
        body.append(figure(feature_grid(figs, data, GENRE_FEATURES, g, f"features_{safe}.png",
                                        sources=("drummer", "model")),
                           f"{g}: {(data.genres == g).sum()} windows, drummer vs model."))
    return body


def _heatmap_section(figs: Figures, data: Data) -> list[str]:
    return ["<h2>3. Velocity heat-maps per voice</h2>",
            "<p>Hits per window at each step (x) and velocity (y, 16 bins), drummer vs model vs box; "
            "one colour scale per voice.</p>",
            *(figure(heatmap_figure(figs, data, v), f"{VOICES[v]}: step × velocity.") for v in range(NUM_VOICES))]


def _listening_section(settings: Settings, listen_html: str) -> list[str]:
    return ["<h2>5. Listening set</h2>",
            f"<p>{settings.loops} held-out loops from different genres, each played twice at its file's tempo "
            f"(the keyboard ones three times), rendered with FluidSynth and a General MIDI SoundFont "
            f"({html.escape(audio.find_soundfont(settings.soundfont).name)}). The groove is heard as one wood "
            f"block. The MIDI files are beside the audio.</p>", listen_html]


def _card_and_sweep_section(figs: Figures, card: dict, readme: Path) -> list[str]:
    body = ["<h2>6. The model card's metrics</h2>"]
    f1 = f1_figure(figs, card)
    if f1:
        body.append(figure(f1, "Hit F1 per voice, test split."))
    body.append(card_tables(card))
    body.append("<h2>7. The sweep</h2>")
    intro, srows = sweep_rows(readme)
    if not srows:
        return body + ["<p>No sweep table in models/README.md yet (<code>make sweep</code>).</p>"]
    sf = sweep_figure(figs, srows)
    if sf:
        body.append(figure(sf, "Validation F1 of each trial of the sweep."))
    body.append(f"<p>{html.escape(intro)} From models/README.md (<code>make sweep</code>).</p>")
    body.append(table(list(srows[0].keys()), [list(r.values()) for r in srows]))
    return body


def build(settings: Settings) -> dict:
    """Write the report; returns what it holds (counts, timings)."""
    started = time.monotonic()
    out = settings.out
    for sub in ("figures", "audio", "midi"):
        shutil.rmtree(out / sub, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    figs = Figures(out / "figures")
    card = json.loads((settings.model_dir / "model.json").read_text())
    timings = {}
    with tempfile.TemporaryDirectory(prefix="groovebox-report-") as tmp:
        t = time.monotonic()
        data = load(settings, Path(tmp))
        timings["data, model and engine"] = time.monotonic() - t
        t = time.monotonic()
        listen_html, players, levels = listening_set(data, settings, out, Path(tmp))
        timings["listening set"] = time.monotonic() - t
    t = time.monotonic()
    genres = sorted(set(data.genres), key=lambda g: (-(data.genres == g).sum(), g))
    body = [*_intro(data, settings, card, genres), *_features_section(figs, data),
            *_genre_section(figs, data, genres), *_heatmap_section(figs, data)]
    t2 = time.monotonic()
    body += ["<h2>4. The latent map</h2>", "<p>Hover a point for its genre and file; click a genre in the legend "
             "to hide it, double-click to show it alone.</p>" + latent_map(data, settings.seed)]
    timings["latent map"] = time.monotonic() - t2
    body += [*_listening_section(settings, listen_html), *_card_and_sweep_section(figs, card, settings.readme)]
    timings["figures and page"] = time.monotonic() - t - timings["latent map"]
    total = time.monotonic() - started
    body.append(f'<p class="note">Written by <code>python -m training.report</code> in {total:.0f} s '
                f"({', '.join(f'{k} {v:.0f} s' for k, v in timings.items())}); {len(figs.saved)} figures, "
                f"{players} audio players.</p>")
    title = html.escape(card.get("name", settings.model_dir.name))
    (out / "index.html").write_text(f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>'
                                    f'groovebox report: {title}</title><style>{CSS}</style></head><body>'
                                    f'{"".join(body)}</body></html>')
    summary = {"index": str(out / "index.html"), "figures": len(figs.saved) + 1, "png_figures": len(figs.saved),
               "audio_players": players, "min_rms": min(levels) if levels else 0.0,
               "windows": len(data.genres), "keyboard_windows": len(data.keyboard_index), "genres": len(genres),
               "seconds": round(total, 1), "timings": {k: round(v, 1) for k, v in timings.items()}}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path, nargs="?", default=REPO / "models" / "groove-vae")
    p.add_argument("--out", type=Path, default=REPO / "out" / "report")
    p.add_argument("--gmd-dir", default=None)
    p.add_argument("--loops", type=int, default=12)
    p.add_argument("--keyboard-windows", type=int, default=120)
    p.add_argument("--max-windows", type=int, default=0, help="0: the whole test split")
    p.add_argument("--precision", choices=("int8", "fp32"), default="int8")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--soundfont", type=Path, default=None)
    args = p.parse_args(argv)
    if not (args.model_dir / "model.json").exists():
        raise SystemExit(f"report: {args.model_dir} holds no model.json")
    try:
        summary = build(Settings(args.model_dir, args.out, args.gmd_dir, args.loops, args.keyboard_windows,
                                 args.max_windows, args.precision, args.seed, args.soundfont))
    except (ds.DatasetError, audio.AudioError) as exc:
        raise SystemExit(f"report: {exc}") from None
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()

"""make report's page for a tiny model, opened in headless Chromium: no console error, no broken
image, no missing or silent audio file (and the check itself notices a missing one)."""
from __future__ import annotations

import csv
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import mido
import numpy as np
import pytest

from training import audio, report

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
GENRES = {"rock": 100, "funk": 96, "jazz": 140}


def needs(ok: bool, what: str) -> None:
    if not ok:
        pytest.skip(f"{what} is missing: `make test` installs it as root (scripts/apt-install.sh)")


def fake_gmd(root: Path) -> Path:
    """Six 4-bar drum files in three genres behind an info.csv: every one is in the test split."""
    rng = np.random.default_rng(3)
    rows = []
    for g, (genre, bpm) in enumerate(GENRES.items()):
        for k in range(2):
            name = f"drummer1/session1/{g}{k}_{genre}_{bpm}_beat_4-4.mid"
            midi = mido.MidiFile(ticks_per_beat=480)
            track = mido.MidiTrack()
            events = []
            for step in range(64):  # hats on eighths, kick on 1 and 3, snare on 2 and 4, some extras
                for note, every, phase, p in ((42, 2, 0, 0.95), (36, 8, 0, 0.9), (38, 8, 4, 0.9),
                                              (36, 1, 0, 0.1), (51, 4, 0, 0.2)):
                    if step % every == phase and rng.random() < p:
                        tick = max(0, int(step * 120 + rng.normal(0, 12)))
                        events.append((tick, note, int(rng.integers(40, 120))))
            now = 0
            for tick, note, vel in sorted(events):  # drum hits: note-ons are all that count
                track.append(mido.Message("note_on", channel=9, note=note, velocity=vel, time=tick - now))
                now = tick
            midi.tracks.append(track)
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            midi.save(str(root / name))
            rows.append({"drummer": "drummer1", "session": "drummer1/session1", "id": f"{g}{k}", "style": f"{genre}/x",
                         "bpm": bpm, "beat_type": "beat", "time_signature": "4-4", "midi_filename": name,
                         "audio_filename": "", "duration": 10, "split": "test"})
    with (root / "info.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


@contextmanager
def chromium():
    """Debian's chromium, headless, with a fresh profile (playwright drives it; no browser download)."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile, sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(profile, executable_path=str(CHROMIUM), headless=True,
                                                       args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def check_page(browser, index: Path) -> list[str]:
    """Open the page; every console error, page error, failed request, broken image and audio
    element that cannot load, one line each."""
    problems: list[str] = []
    page = browser.new_page()
    try:
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        # media elements abort their own first request once they have the metadata: not a failure
        page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} {r.failure}")
                if "ERR_ABORTED" not in (r.failure or "") else None)
        page.goto(index.resolve().as_uri(), wait_until="load", timeout=60_000)
        page.wait_for_function(
            "Array.from(document.querySelectorAll('audio')).every(a => a.readyState >= 1 || a.error)",
            timeout=60_000)
        for src, complete, width in page.evaluate(
                "Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])"):
            if not complete or width == 0:
                problems.append(f"broken image: {src}")
        for src, error, duration in page.evaluate(
                "Array.from(document.querySelectorAll('audio')).map(a => "
                "[a.getAttribute('src'), a.error && a.error.code, a.duration])"):
            if error or not duration or duration != duration:  # NaN: nothing loaded
                problems.append(f"audio cannot play: {src} (error {error})")
        traces = page.evaluate("document.querySelectorAll('.js-plotly-plot .scatterlayer .trace').length")
        if traces == 0:
            problems.append("the latent map drew no points")
    finally:
        page.close()
    return problems


@pytest.mark.timeout(900)  # a report, a browser and 15 FluidSynth renders, on a busy 2-core machine
def test_the_report_of_a_tiny_model_opens_with_every_figure_and_sound(tiny_model_dir: Path, tmp_path: Path) -> None:
    needs(CHROMIUM.exists(), "chromium")
    needs(shutil.which("fluidsynth") is not None, "fluidsynth")
    needs(any(p.is_file() for p in audio.SOUNDFONTS), "fluid-soundfont-gm")
    gmd = fake_gmd(tmp_path / "gmd")
    out = tmp_path / "report"
    summary = report.build(report.Settings(tiny_model_dir, out, str(gmd), loops=3, keyboard_windows=3, cache=False))

    index = out / "index.html"
    page = index.read_text()
    assert "<script" in page and not re.search(r"<script[^>]*\ssrc=", page)  # plotly inlined: opens offline
    assert summary["audio_players"] == page.count("<audio") == 3 * 5
    assert summary["png_figures"] == page.count("<img") >= 8 + len(GENRES)
    assert summary["genres"] == len(GENRES)
    wavs = sorted((out / "audio").glob("*.wav"))
    assert len(wavs) == summary["audio_players"]
    quiet = {w.name: audio.wav_rms(w) for w in wavs if audio.wav_rms(w) < 1e-3}
    assert not quiet, f"silent audio: {quiet}"
    assert len(list((out / "midi").glob("*.mid"))) == summary["audio_players"]

    with chromium() as browser:
        assert check_page(browser, index) == []

        # the check is not blind: a missing sound and a missing figure are both reported
        next(iter(wavs)).unlink()
        next(iter((out / "figures").glob("heatmap_*.png"))).unlink()
        problems = check_page(browser, index)
    assert any(p.startswith("broken image: figures/heatmap_") for p in problems), problems
    assert any(p.startswith(f"audio cannot play: audio/{wavs[0].name}") for p in problems), problems

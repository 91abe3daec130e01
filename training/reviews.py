"""The reviewers' parts: every keyboard part a musician review wrote, rendered through the box.

    python -m training.reviews [--write] [--seeds 1 2] [--jobs 2] [SET[/PART] ...]

Each musician review of the phrasing (sessions 24 to 32) wrote keyboard parts of its own to
probe a change: pickups, rests, holds, stops, returns on an offbeat, comping that lays out,
reggae, swing, gospel... Session 33 added three probes of its own (review-s33) and two reviews
(review-s33b, -s33c), sessions 34 and 35 one each (review-s34, -s35), session 36 two (review-s36,
-s36b), session 37 one of starts and endings (review-s37, not scored: its expectations are in
words), session 38 two of endings (review-s38, -s38b, the same). The 338 parts live in training/review_parts/<review>/. Ten reviews also wrote
down, before anything was rendered, what a drummer would play in each part (`expect.json`: the
bars that must have a crash, the bars where one is fine, the bars where a fill belongs, the last
bar, and for a pickup where bar 1's first note falls); the probes have the same, written from
their forms.

This command renders every part through the box's own `render` (int8, the defaults, seeds 1
and 2), and writes one line per render: its crash bars and tom bars (file bars, bar 1 at tick
0; a hit a 32nd early counts in the bar), its drum hits, a digest of its drum notes, and, where
the review wrote expectations, its score. A score is four counts:

- missing: bars that must have a crash and have none;
- spurious: crash bars that are neither must nor fine (the last chord's bar and the bar before
  are not scored);
- fills off: bars with toms outside the fill bars (the last bar is not scored);
- lead: drum hits in a pickup's bar more than a 32nd before its first note (drums under the
  pickup's silence).

Without `--write` it compares with training/review_parts/renders.txt and prints what moved:
the parts whose crash or tom bars changed, those whose other notes changed, and the score
totals per review, before and after. Nothing is written. The digest follows the int8 model's
arithmetic, so another CPU may move it (docs/ARCHITECTURE.md, "The reviewers' parts").
"""
from __future__ import annotations

import argparse
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
import functools
import hashlib
import json
import logging
from pathlib import Path
import sys
import tempfile

import mido

from appliance.core.render import render

log = logging.getLogger("training.reviews")

REPO = Path(__file__).resolve().parent.parent
PARTS = REPO / "training" / "review_parts"
RENDERS = PARTS / "renders.txt"
MODEL = REPO / "models" / "groove-vae"
SEEDS = (1, 2)
CRASHES = frozenset({49, 57})                      #: GM crash 1 and 2
TOMS = frozenset({41, 43, 45, 47, 48, 50})         #: GM low floor tom .. high tom
DRUM_CHANNEL = 9
SCORE_KEYS = ("missing", "spurious", "fills_off", "lead")


@dataclass(frozen=True)
class Expect:
    """What a drummer plays in a part, written by its reviewer before it was rendered."""

    must: frozenset[int]
    ok: frozenset[int]
    fill: frozenset[int]
    last: int
    first: tuple[int, float] | None = None   #: (bar, beat) of a pickup's first note

    @classmethod
    def from_json(cls, data: dict) -> Expect:
        first = data.get("first")
        return cls(frozenset(data["must"]), frozenset(data["ok"]), frozenset(data["fill"]), int(data["last"]),
                   (int(first[0]), float(first[1])) if first else None)


@dataclass
class Bar:
    """What the drums play in one file bar."""

    hits: int = 0
    crash: bool = False
    toms: int = 0
    beats: tuple[float, ...] = ()              #: where each hit falls, in beats from 1


def drum_hits(path: Path) -> Iterator[tuple[int, float, int]]:
    """Each drum hit of a file as (file bar, 1 at tick 0; beat in it, from 1; GM note); a hit a
    32nd early counts in the bar."""
    midi = mido.MidiFile(str(path))
    tpb = midi.ticks_per_beat
    for track in midi.tracks:
        tick = 0
        for message in track:
            tick += message.time
            if message.type != "note_on" or not message.velocity or message.channel != DRUM_CHANNEL:
                continue
            number = int((tick + tpb / 8) // (4 * tpb)) + 1
            yield number, (tick - (number - 1) * 4 * tpb) / tpb + 1, message.note


def drum_bars(path: Path) -> dict[int, Bar]:
    """File bar (1 at tick 0) -> what the drums play in it."""
    out: dict[int, Bar] = {}
    for number, beat, note in drum_hits(path):
        bar = out.setdefault(number, Bar())
        bar.hits += 1
        bar.crash |= note in CRASHES
        bar.toms += note in TOMS
        bar.beats += (beat,)
    return out


def digest(path: Path) -> str:
    """12 hex digits over the drum notes (time, note, velocity): the same digest, the same drums."""
    midi = mido.MidiFile(str(path))
    sha = hashlib.sha256()
    for track in midi.tracks:
        tick = 0
        for message in track:
            tick += message.time
            if message.type == "note_on" and message.channel == DRUM_CHANNEL:
                sha.update(f"{tick} {message.note} {message.velocity};".encode())
    return sha.hexdigest()[:12]


def score(expect: Expect, bars: dict[int, Bar]) -> dict[str, int]:
    """The four counts of the module's docstring for one render."""
    played = {number for number, bar in bars.items() if bar.crash}
    crashes = {number for number in played if number < expect.last - 1}
    toms = {number for number, bar in bars.items() if bar.toms and number < expect.last}
    lead = 0
    if expect.first:
        at_bar, at_beat = expect.first
        lead = sum(beat < at_beat - 0.125 for beat in bars.get(at_bar, Bar()).beats)
    return {"missing": len(expect.must - played), "spurious": len(crashes - expect.must - expect.ok),
            "fills_off": len(toms - expect.fill), "lead": lead}


@dataclass(frozen=True)
class Heard:
    """One render of one part, as a line of renders.txt."""

    part: str                                  #: review/part
    seed: int
    hits: int
    crashes: tuple[int, ...]
    toms: tuple[int, ...]
    digest: str
    score: tuple[int, ...] | None = None       #: SCORE_KEYS, where the review wrote expectations

    def line(self) -> str:
        score = "" if self.score is None else " score " + "/".join(map(str, self.score))
        return (f"{self.part} s{self.seed} hits {self.hits} crash {_bars(self.crashes)} "
                f"toms {_bars(self.toms)} digest {self.digest}{score}")

    @classmethod
    def parse(cls, line: str) -> Heard:
        words = line.split()
        fields = dict(zip(words[2::2], words[3::2]))
        score = tuple(map(int, fields["score"].split("/"))) if "score" in fields else None
        return cls(words[0], int(words[1][1:]), int(fields["hits"]), _numbers(fields["crash"]),
                   _numbers(fields["toms"]), fields["digest"], score)

    @property
    def key(self) -> tuple[str, int]:
        """(part, seed): one line per key in renders.txt."""
        return self.part, self.seed


def _bars(numbers: Iterable[int]) -> str:
    """Bar numbers as renders.txt writes them ("-" for none)."""
    return ",".join(map(str, numbers)) or "-"


def _numbers(text: str) -> tuple[int, ...]:
    """Bar numbers as renders.txt wrote them."""
    return () if text == "-" else tuple(map(int, text.split(",")))


def parts(only: Iterable[str] = ()) -> list[str]:
    """Every part as review/part, sorted; ``only`` keeps the reviews or parts named."""
    names = sorted(str(path.relative_to(PARTS).with_suffix("")) for path in PARTS.glob("*/*.mid"))
    wanted = tuple(only)
    return [name for name in names if not wanted or any(name == w or name.startswith(w.rstrip("/") + "/")
                                                        for w in wanted)]


@functools.cache
def expectations() -> dict[str, Expect]:
    """review/part -> what its reviewer expected, for the reviews that wrote it down."""
    out = {}
    for path in sorted(PARTS.glob("*/expect.json")):
        for name, data in json.loads(path.read_text(encoding="utf-8")).items():
            out[f"{path.parent.name}/{name}"] = Expect.from_json(data)
    return out


def hear(part: str, seed: int, model_dir: Path = MODEL) -> Heard:
    """Render one part through the box and read what the drums played."""
    expect = expectations().get(part)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "drums.mid"
        render(PARTS / f"{part}.mid", out, model_dir=model_dir, seed=seed)
        bars = drum_bars(out)
        heard_digest = digest(out)
    counts = None if expect is None else tuple(score(expect, bars)[key] for key in SCORE_KEYS)
    return Heard(part, seed, sum(bar.hits for bar in bars.values()),
                 tuple(sorted(n for n, bar in bars.items() if bar.crash)),
                 tuple(sorted(n for n, bar in bars.items() if bar.toms)), heard_digest, counts)


def _hear(job: tuple[str, int, Path]) -> Heard:
    """One render in a worker process; a failure names the part."""
    logging.disable(logging.WARNING)        # a part's own warnings (a drifting tempo) are its point
    part, seed, _ = job
    try:
        return hear(*job)
    except Exception as error:
        raise RuntimeError(f"{part} seed {seed}: {error}") from error


def hear_all(names: list[str], seeds: Iterable[int] = SEEDS, jobs: int = 2,
             model_dir: Path = MODEL) -> list[Heard]:
    """Every part at every seed, ``jobs`` renders at a time, in the order of ``names``."""
    work = [(name, seed, model_dir) for name in names for seed in seeds]
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(_hear, work, chunksize=4))


def read(path: Path = RENDERS) -> dict[tuple[str, int], Heard]:
    """renders.txt as (part, seed) -> Heard; no file, no lines."""
    if not path.exists():
        return {}
    heard = (Heard.parse(line) for line in path.read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith("#"))
    return {h.key: h for h in heard}


def totals(heard: Iterable[Heard]) -> dict[str, list[int]]:
    """review -> the score's four counts summed over its parts and seeds."""
    out: dict[str, list[int]] = {}
    for h in heard:
        if h.score is not None:
            row = out.setdefault(h.part.split("/")[0], [0] * len(SCORE_KEYS))
            for k, count in enumerate(h.score):
                row[k] += count
    return out


def compare(old: dict[tuple[str, int], Heard], new: list[Heard]) -> list[str]:
    """Report lines: what moved from ``old`` to ``new``, and the score totals of both."""
    lines = []
    moved = [h for h in new if h.key in old and (old[h.key].crashes, old[h.key].toms) != (h.crashes, h.toms)]
    notes = [h for h in new if h.key in old and h not in moved and old[h.key].digest != h.digest]
    fresh = [h for h in new if h.key not in old]
    for h in moved:
        was = old[h.key]
        lines.append(f"{h.part} s{h.seed}: crash {_bars(was.crashes)} -> {_bars(h.crashes)}; "
                     f"toms {_bars(was.toms)} -> {_bars(h.toms)}")
    lines += [f"{h.part} s{h.seed}: other notes only (hits {old[h.key].hits} -> {h.hits})" for h in notes]
    if old:
        lines += [f"{h.part} s{h.seed}: not in renders.txt" for h in fresh]
    same = len(new) - len(moved) - len(notes) - len(fresh)
    lines.append(f"{len(new)} renders: {len(moved)} moved crash or tom bars, {len(notes)} other notes only, "
                 f"{same} the same, {len(fresh)} new")
    before = totals(old[h.key] for h in new if h.key in old)
    for review, after in sorted(totals(new).items()):
        totals_were = "/".join(map(str, before.get(review, []))) or "-"
        lines.append(f"{review} (missing/spurious/fills off/lead): {totals_were} -> {'/'.join(map(str, after))}")
    return lines


def write(heard: list[Heard], path: Path = RENDERS) -> None:
    """Merge ``heard`` into renders.txt, sorted: lines of parts no longer in the corpus go, and
    the lines of other parts stay (a run over some reviews records only theirs)."""
    known = set(parts())
    merged = {key: h for key, h in (read(path) | {h.key: h for h in heard}).items() if key[0] in known}
    header = ("# python -m training.reviews --write: one line per render of training/review_parts "
              "(see its docstring)\n")
    path.write_text(header + "".join(merged[key].line() + "\n" for key in sorted(merged)), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """``python -m training.reviews``: render, compare, and with ``--write`` record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="reviews or review/part names (default: all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--jobs", type=int, default=2, help="renders at a time")
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--write", action="store_true", help="write the renders into renders.txt")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    if args.write and (tuple(args.seeds) != SEEDS or args.model.resolve() != MODEL.resolve()):
        log.error("--write records the shipped model at seeds %s only: drop --seeds and --model",
                  " ".join(map(str, SEEDS)))
        return 2
    names = parts(args.only)
    if not names:
        log.error("no part matches %s: the reviews are %s", " ".join(args.only),
                  " ".join(sorted({name.split("/")[0] for name in parts()})))
        return 2
    heard = hear_all(names, args.seeds, args.jobs, args.model)
    for line in compare(read(), heard):
        log.info("%s", line)
    if args.write:
        write(heard)
        log.info("wrote %s", RENDERS.relative_to(REPO))
    return 0


if __name__ == "__main__":
    sys.exit(main())

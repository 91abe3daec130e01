"""The reviewers' parts (training/reviews.py): the corpus, its record, its scoring, and a fast
check of `make reviews`' recipe on two parts (the whole corpus is the slow proof)."""
from __future__ import annotations

from pathlib import Path

import mido
import pytest

from training import reviews
from training.reviews import Bar, Expect, Heard


def test_every_part_has_a_render_line_for_each_seed_and_nothing_else() -> None:
    recorded = reviews.read()
    assert len(reviews.parts()) == 361
    assert set(recorded) == {(part, seed) for part in reviews.parts() for seed in reviews.SEEDS}


def test_every_expectation_names_a_part_and_reads_as_a_form() -> None:
    expected = reviews.expectations()
    assert len(expected) == 134
    for part, expect in expected.items():
        assert part in reviews.parts(), part
        bars = expect.must | expect.ok | expect.fill
        assert bars and min(bars) >= 1 and max(expect.must | expect.ok, default=1) <= expect.last, part
        assert expect.first is None or 1 <= expect.first[1] < 5, part


def test_only_keeps_a_review_or_a_part() -> None:
    s31 = reviews.parts(["review-s31"])
    assert len(s31) == 15 and all(name.startswith("review-s31/") for name in s31)
    assert reviews.parts(["review-s31/q04_pop_pickup_beat2"]) == ["review-s31/q04_pop_pickup_beat2"]
    assert reviews.parts(["review-s3"]) == []


def test_score_counts_missing_and_spurious_crashes_fills_off_the_phrase_and_hits_under_a_pickup() -> None:
    expect = Expect(must=frozenset({1, 9}), ok=frozenset({17}), fill=frozenset({4, 8}), last=20, first=(1, 3.0))
    bars = {1: Bar(hits=4, beats=(1.0, 2.0, 2.9, 3.0)),           # two hits before the pickup on 3
            4: Bar(toms=3), 5: Bar(toms=1),                        # a fill on 4 (fine), toms on 5 (off)
            9: Bar(crash=True), 13: Bar(crash=True),               # 9 must, 13 spurious
            17: Bar(crash=True), 19: Bar(crash=True, toms=2)}      # 17 fine; 19's crash is the ending's
    # (not scored), its toms are off the phrase
    assert reviews.score(expect, bars) == {"missing": 1, "spurious": 1, "fills_off": 2, "lead": 2}


def _drums(path: Path, hits: list[tuple[int, int]]) -> Path:
    """A file whose drum track plays (tick, note) hits, 480 ticks a beat."""
    midi = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    now = 0
    for tick, note in sorted(hits):
        track.append(mido.Message("note_on", channel=9, note=note, velocity=90, time=tick - now))
        track.append(mido.Message("note_on", channel=9, note=note, velocity=0, time=0))
        now = tick
    midi.save(str(path))
    return path


def test_a_hit_a_32nd_early_counts_in_the_next_bar(tmp_path: Path) -> None:
    bar = 4 * 480
    path = _drums(tmp_path / "d.mid", [(0, 36), (bar - 70, 49), (bar - 50, 45), (bar + 480, 38)])
    bars = reviews.drum_bars(path)
    assert bars[1] == Bar(hits=2, crash=True, toms=0, beats=(1.0, pytest.approx(3 + 410 / 480 + 1)))
    assert bars[2].hits == 2 and bars[2].toms == 1 and not bars[2].crash
    assert bars[2].beats[0] == pytest.approx(1 - 50 / 480)


def test_the_digest_follows_the_drum_notes(tmp_path: Path) -> None:
    one = reviews.digest(_drums(tmp_path / "a.mid", [(0, 36), (480, 38)]))
    assert one == reviews.digest(_drums(tmp_path / "b.mid", [(0, 36), (480, 38)]))
    assert one != reviews.digest(_drums(tmp_path / "c.mid", [(0, 36), (481, 38)]))


def test_a_line_reads_back_as_it_was_written() -> None:
    for heard in (Heard("review-s31/q04", 2, 812, (2, 10), (), "0123456789ab", (0, 2, 4, 0)),
                  Heard("review24/p01", 1, 5, (), (4, 8), "ba9876543210")):
        assert Heard.parse(heard.line()) == heard


def test_compare_names_what_moved_and_the_totals_before_and_after() -> None:
    old = {("r/a", 1): Heard("r/a", 1, 10, (1, 9), (4,), "aaa", (0, 0, 0, 0)),
           ("r/b", 1): Heard("r/b", 1, 10, (1,), (4,), "bbb", (1, 0, 0, 0)),
           ("r/c", 1): Heard("r/c", 1, 10, (1,), (4,), "ccc", None)}
    new = [Heard("r/a", 1, 11, (1, 17), (4,), "aab", (0, 1, 0, 0)),
           Heard("r/b", 1, 12, (1,), (4,), "bbc", (1, 0, 0, 0)),
           Heard("r/c", 1, 10, (1,), (4,), "ccc", None)]
    lines = reviews.compare(old, new)
    assert lines[0] == "r/a s1: crash 1,9 -> 1,17; toms 4 -> 4"
    assert lines[1].startswith("r/b s1: other notes only")
    assert "3 renders: 1 moved crash or tom bars, 1 other notes only, 1 the same, 0 new" in lines
    assert lines[-1].endswith("1/0/0/0 -> 1/1/0/0")


def test_write_keeps_other_parts_lines_and_drops_parts_no_longer_in_the_corpus(tmp_path: Path) -> None:
    record = tmp_path / "renders.txt"
    kept = Heard("review-s31/q04_pop_pickup_beat2", 2, 5, (2,), (), "aaa", (0, 0, 0, 0))
    gone = Heard("review-s31/no_such_part", 1, 5, (1,), (), "bbb")
    record.write_text(kept.line() + "\n" + gone.line() + "\n", encoding="utf-8")
    new = Heard("review-s31/q04_pop_pickup_beat2", 1, 6, (2, 10), (4,), "ccc", (0, 1, 0, 0))
    reviews.write([new], record)
    assert reviews.read(record) == {kept.key: kept, new.key: new}


def test_write_is_refused_for_another_model_or_seeds() -> None:
    assert reviews.main(["review-s31/q04_pop_pickup_beat2", "--write", "--seeds", "3"]) == 2


@pytest.mark.parametrize("part", ["review-s31/q04_pop_pickup_beat2", "review-s30b/r04_rock_hit_hold"])
def test_a_part_renders_as_recorded(part: str) -> None:
    """The same recipe as `make reviews` on two parts: a pickup into bar 1, and a keys fill from
    beat 2 that brings a held band back. The crash bars (the phrasing's) and the crashes missing
    and spurious exactly; the tom bars, which the model's fills decide, within a bar (the int8
    arithmetic may round otherwise on another CPU, so the digest is not compared)."""
    recorded = reviews.read()[(part, 1)]
    heard = reviews.hear(part, 1)
    assert heard.crashes == recorded.crashes
    assert heard.score is not None and recorded.score is not None
    assert (heard.score[0], heard.score[1]) == (recorded.score[0], recorded.score[1])
    assert len(set(heard.toms) ^ set(recorded.toms)) <= 1
    assert heard.score[3] == 0                        # no drums under the pickup's silence

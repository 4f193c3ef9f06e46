"""Corpus preparation helpers that need no music21: program choice, scheduling and synthetic drums."""

from __future__ import annotations

import random

import pytest

from engine.symbolic.corpus import FOLK, choose_programs, schedule
from engine.symbolic.drums import CRASH, HAT, KICK, SNARE, bar_starts, drum_track

TPQ = 480


@pytest.mark.parametrize("n_parts", [1, 2, 3, 4, 5, 8])
def test_programs_are_distinct(n_parts: int) -> None:
    for seed in range(20):
        _, programs = choose_programs(n_parts, random.Random(seed))
        assert len(programs) == n_parts == len(set(programs))
        assert all(0 <= p <= 127 for p in programs)


def test_schedule_interleaves_collections() -> None:
    rels = [f"bach/b{i}.mxl" for i in range(5)] + [f"mozart/m{i}.mxl" for i in range(2)] + ["essenFolksong/a.abc"]
    order = schedule(rels)
    assert sorted(order) == sorted(rels)
    assert order[:2] == ["bach/b0.mxl", "mozart/m0.mxl"]
    assert order[-1].split("/")[0] in FOLK


def test_bar_starts_follow_meter_changes() -> None:
    bars = bar_starts([(0, 4, 4), (2 * 4 * TPQ, 6, 8)], 2 * 4 * TPQ + 2 * 3 * TPQ, TPQ)
    assert [b[0] for b in bars] == [0, 1920, 3840, 5280]
    assert bars[-1][1:] == (6, 8)


@pytest.mark.parametrize(("meter", "snare_quarters"), [((4, 4), {1.0, 3.0}), ((6, 8), {1.5}), ((3, 4), {1.0, 2.0})])
def test_drum_patterns(meter: tuple[int, int], snare_quarters: set[float]) -> None:
    bar = meter[0] * 4 * TPQ // meter[1]
    track = drum_track([(0, *meter)], 16 * bar, random.Random(1), TPQ)
    assert track.is_drum
    pitches = {n.pitch for n in track.notes}
    assert {KICK, SNARE, HAT} <= pitches and CRASH in pitches
    for index in range(16):
        on_downbeat = {n.pitch for n in track.notes if n.time == index * bar}
        assert KICK in on_downbeat
    first_bar_snares = {n.time / TPQ for n in track.notes if n.pitch == SNARE and n.time < bar}
    assert first_bar_snares == snare_quarters
    assert max(n.time for n in track.notes) < 16 * bar

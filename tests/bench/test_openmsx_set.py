"""The OpenMSX held-out set (bench/openmsx_set.py, ``bench_midi_quality.py --set openmsx``) loads and splits as the
bench expects, and its converter groups, chooses and cuts as its docstring says.

Material: the committed excerpts in bench/data/midi_quality/openmsx/, cut from OpenMSX 0.4.2, OpenTTD's General
MIDI songs as Debian's openttd-openmsx installs them (GPL-2.0, /usr/share/doc/openttd-openmsx/copyright; composers
in that folder's README.md). The one test that rebuilds a piece from the package is skipped where it is missing;
the others use the committed files or scores built here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from symusic.core import NoteTick, ScoreTick, TempoTick, TimeSignatureTick, TrackTick

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import bench_midi_quality  # noqa: E402
import openmsx_set  # noqa: E402

MANIFEST = json.loads((openmsx_set.SET_DIR / "manifest.json").read_text())
PIECES = list(MANIFEST["pieces"].items())


def test_the_set_holds_ten_to_twenty_small_credited_pieces() -> None:
    assert 10 <= len(PIECES) <= 20
    readme = (openmsx_set.SET_DIR / "README.md").read_text()
    for name, meta in PIECES:
        assert (openmsx_set.SET_DIR / name).stat().st_size < 20_000
        assert meta["composer"] and meta["title"] and meta["licence"].startswith("GPL-2.0")
        assert f"| {name} | {meta['title']} | {meta['composer']} |" in readme
    composers = [meta["composer"] for _, meta in PIECES]
    assert max(composers.count(c) for c in composers) <= openmsx_set.PER_COMPOSER


@pytest.mark.parametrize(("name", "meta"), PIECES, ids=[name for name, _ in PIECES])
def test_a_piece_splits_into_four_region_bars_and_the_composers_next_eight(
    name: str, meta: dict[str, Any], tmp_path: Path
) -> None:
    region, region_content, reference, score = bench_midi_quality.load_piece(openmsx_set.SET_DIR / name, meta, tmp_path)
    assert (meta["region_bars"], meta["reference_bars"]) == (4, 8)
    assert score.ticks_per_quarter == 480
    assert [f"{t.numerator}/{t.denominator}" for t in score.time_signatures] == [meta["meter"]]
    assert f"{region.meter.numerator}/{region.meter.denominator}" == meta["meter"]
    assert region.length_bars == 4
    bar = region.bar_ticks
    assert max(n.time for t in score.tracks for n in t.notes) < 12 * bar  # nothing past the reference
    pitched = [t for t in score.tracks if not t.is_drum]
    assert len(pitched) >= 2
    # every kept part plays in the region, and pitched notes start in each of its 4 bars
    assert all(any(n.time < 4 * bar for n in t.notes) for t in score.tracks)
    assert {n.time // bar for t in pitched for n in t.notes if n.time < 4 * bar} == {0, 1, 2, 3}
    # the composer's continuation: pitched notes start in at least 6 of the next 8 bars, on the region's parts
    assert len({n.time // bar for t in pitched for n in t.notes if n.time >= 4 * bar}) >= 6
    assert reference.notes and {n.channel for n in reference.notes} <= {n.channel for n in region_content.notes}


def _score(meters: list[tuple[int, int, int]], bars_of_notes: float, programs: list[tuple[int, bool]]) -> ScoreTick:
    score = ScoreTick(480)
    score.tempos.append(TempoTick(0, 100.0))
    for at, num, den in meters:
        score.time_signatures.append(TimeSignatureTick(at, num, den))
    for program, is_drum in programs:
        track = TrackTick(f"track {program}", program, is_drum)
        for at in range(0, int(bars_of_notes * 1920), 480):
            track.notes.append(NoteTick(at, 240, 60 + program % 12, 90))
        score.tracks.append(track)
    return score


def test_tracks_of_one_program_become_one_part_and_every_drum_track_one_drum_part() -> None:
    score = _score([(0, 4, 4)], 1, [(1, False), (1, False), (16, True), (0, True)])
    score.tracks.append(TrackTick("empty", 33, False))
    parts = openmsx_set.parts_of(score)
    assert [(p.name, int(p.program), bool(p.is_drum), len(p.notes), n) for p, n in parts] == [
        ("bright_acoustic_piano", 1, False, 8, 2),
        ("drums", 0, True, 8, 2),
    ]


def test_the_region_skips_twelve_bars_with_a_meter_change_in_them() -> None:
    # 4/4 for 8 bars, one bar of 2/4 (ticks 15360-16320), then 4/4: the windows from bars 0, 4 and 8 hold the 2/4 bar
    score = _score([(0, 4, 4), (15360, 2, 4), (16320, 4, 4)], 30, [(0, False), (33, False)])
    parts = [p for p, _ in openmsx_set.parts_of(score)]
    chosen = openmsx_set.choose(score, parts)
    assert chosen is not None
    start, lines, meter = chosen
    assert (start, meter) == (12, (4, 4))
    assert lines[0] == 16320 + 3 * 1920 and len(lines) == 13 and lines[-1] - lines[0] == 12 * 1920


def test_the_cut_keeps_the_region_s_parts_and_clips_notes_at_the_reference_s_end() -> None:
    score = _score([(0, 3, 4)], 20, [(0, False), (40, False)])
    score.tempos.append(TempoTick(1440 * 5, 90.0))
    late = TrackTick("late", 56, False)  # enters after the region: left out
    late.notes.append(NoteTick(1440 * 9, 480, 70, 90))
    score.tracks.append(late)
    score.tracks[0].notes.append(NoteTick(1440 * 15, 1440 * 3, 48, 90))  # rings past the 12th bar
    lines = [1440 * (4 + i) for i in range(13)]
    piece = openmsx_set.cut(score, [p for p, _ in openmsx_set.parts_of(score)], lines, (3, 4))
    assert [int(t.program) for t in piece.tracks] == [40, 0]  # highest mean pitch first; no trumpet
    assert [(t.time, round(t.qpm)) for t in piece.tempos] == [(0, 100), (1440, 90)]
    assert [(t.numerator, t.denominator) for t in piece.time_signatures] == [(3, 4)]
    held = next(n for n in piece.tracks[1].notes if n.pitch == 48)
    assert (held.time, held.time + held.duration) == (1440 * 11, 1440 * 12)


def test_rebuilding_a_piece_from_the_package_gives_the_committed_notes() -> None:
    name = "busy_schedule.mid"
    source = openmsx_set.SOURCE / name
    if not source.is_file():
        pytest.skip(f"{source} is missing: apt-get install {openmsx_set.PACKAGE}")
    built = openmsx_set.build(source)
    assert not isinstance(built, str), built
    piece, meta = built
    committed = ScoreTick(openmsx_set.SET_DIR / name)

    def notes(score: ScoreTick) -> list[tuple[int, bool, int, int, int]]:
        return sorted(
            (int(t.program), bool(t.is_drum), n.time, n.duration, n.pitch) for t in score.tracks for n in t.notes
        )

    assert notes(piece) == notes(committed)
    assert {k: MANIFEST["pieces"][name][k] for k in meta} == meta
    assert openmsx_set.catalogue()[name] == {"title": "Busy Schedule", "composer": "mimm"}

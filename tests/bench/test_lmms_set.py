"""bench/lmms_set.py reads a real LMMS project and puts its notes on the right bars at the right tempo.

The project is CapDan-ReggaeTry.mmpz by Der Daniel (CapDan), Artistic-2.0 (/usr/share/doc/lmms-common/copyright),
as Debian's lmms-common installs it; the test is skipped where that package is missing. The expected values were
read from the project's XML: head bpm 180 in 4/4; the E-Piano's first pattern at tick 1536 (bar 9) starts with
key 60 at pos 48, len 24 (base note 57); the beat/bassline track "Drum I" (the first one) is placed at ticks 0 and
384 for 384 ticks each, and its "BD 03" pattern (32 steps, two bars) has kicks at 0, 96, 168, 192 and 288.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import lmms_set  # noqa: E402

PROJECT = lmms_set.PROJECTS / "demos" / "CapDan" / "CapDan-ReggaeTry.mmpz"


@pytest.fixture(scope="module")
def project() -> tuple[dict[str, object], list[lmms_set.Part], list[str]]:
    if not PROJECT.is_file():
        pytest.skip(f"{PROJECT} is missing: apt-get install lmms-common")
    return lmms_set.read_project(PROJECT)


def test_the_head_gives_tempo_and_meter(project: tuple[dict[str, object], list[lmms_set.Part], list[str]]) -> None:
    info, _, _ = project
    assert info == {"bpm": 180.0, "meter": (4, 4)}


def test_a_pitched_note_lands_on_its_song_tick_and_pitch(
    project: tuple[dict[str, object], list[lmms_set.Part], list[str]],
) -> None:
    _, parts, _ = project
    piano = next(p for p in parts if p.name == "E-Piano")
    assert piano.drum is None
    # pattern at 1536 + note pos 48; key 60 with base note 57 sounds three semitones above A4: C5, MIDI 72
    assert min(piano.notes)[:3] == (1584, 24, 72)


def test_beat_bassline_kicks_repeat_where_the_track_is_placed(
    project: tuple[dict[str, object], list[lmms_set.Part], list[str]],
) -> None:
    _, parts, _ = project
    kick = next(p for p in parts if p.name == "BD 03")
    assert kick.drum == 36
    starts = sorted(s for s, *_ in kick.notes)
    assert starts[:10] == [0, 96, 168, 192, 288, 384, 480, 552, 576, 672]


def test_the_region_starts_where_two_pitched_parts_play_and_scales_to_480_ticks(
    project: tuple[dict[str, object], list[lmms_set.Part], list[str]],
) -> None:
    info, parts, _ = project
    start = lmms_set.choose_region(parts)
    assert start == 8  # bar 9: the pitched parts enter at tick 1536
    score, described = lmms_set.to_score(info, parts, start)
    assert score.ticks_per_quarter == 480
    assert round(score.tempos[0].qpm) == 180
    names = [d["track"] for d in described]
    assert names[-1] == "Drums" and "E-Piano" in names
    piano = score.tracks[names.index("E-Piano")]
    assert (piano.notes[0].start, piano.notes[0].pitch) == (480, 72)  # beat 2 of the region's first bar
    assert score.tracks[-1].is_drum
    assert max(n.start for t in score.tracks for n in t.notes) < 12 * 1920


def test_tracks_guessed_the_same_program_keep_parts_of_their_own() -> None:
    used: set[int] = set()
    assert [lmms_set.distinct_program(p, used) for p in (81, 81, 38, 87, 87)] == [81, 82, 38, 87, 80]


def test_a_part_that_lmms_arpeggiates_is_marked() -> None:
    # EsoXLB-CPU.mmpz (E.SoX, Artistic-2.0): its "Arpeggio" track has arp-enabled="1" in <arpeggiator>
    path = lmms_set.PROJECTS / "demos" / "EsoXLB-CPU.mmpz"
    if not path.is_file():
        pytest.skip(f"{path} is missing: apt-get install lmms-common")
    _, parts, _ = lmms_set.read_project(path)
    assert {p.name: p.expands for p in parts}["Arpeggio"] == "arpeggiator"
    assert all(p.expands == "" for p in parts if p.name == "Standard-Preset")

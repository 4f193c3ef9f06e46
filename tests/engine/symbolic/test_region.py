"""Reading MIDI regions: tempo, meter, bar grid, parts, and clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import midi_fixtures as fx
import mido
import pytest
from symusic import Score

from engine.api import MAX_REGION_BEATS, Meter, Prompt
from engine.errors import BadInputError
from engine.symbolic.region import bar_lines, prompt_window, read_region


def read(path: Path, **kwargs: object) -> object:
    return read_region(Prompt(midi_path=path, **kwargs))  # type: ignore[arg-type]


@pytest.mark.parametrize(("num", "den"), fx.METERS)
def test_meters_and_bar_grid(tmp_path: Path, num: int, den: int) -> None:
    region = read_region(Prompt(midi_path=fx.meter(tmp_path, num, den)))
    assert region.meter == Meter(num, den)
    assert region.length_bars == 4
    assert region.bar_ticks == fx.bar_ticks((num, den))
    assert region.place_at_tick == 4 * fx.bar_ticks((num, den))
    assert region.length_beats == pytest.approx(4 * fx.bar_quarters((num, den)))


def test_region_ending_mid_bar_rounds_up(tmp_path: Path) -> None:
    region = read_region(Prompt(midi_path=fx.pickup(tmp_path)))
    assert region.length_bars == 4 and region.length_beats == 16.0
    assert any("rounded up" in n for n in region.notes)


def test_tempo_changes_continue_at_the_last_tempo(tmp_path: Path) -> None:
    region = read_region(Prompt(midi_path=fx.tempo_changes(tmp_path)))
    assert region.tempo_bpm == pytest.approx(90.0)
    # 2 bars at 120 then 2 bars at 90
    assert region.place_at_seconds == pytest.approx(8 * 0.5 + 8 * 60 / 90)
    assert any("tempo changes" in n for n in region.notes)


def test_overrides_win(tmp_path: Path) -> None:
    path = fx.region(tmp_path, meter=(4, 4), tempo_bpm=120.0, bars=2)
    region = read_region(Prompt(midi_path=path, tempo_bpm=95.0, meter=Meter(3, 4)))
    assert region.tempo_bpm == 95.0 and region.meter == Meter(3, 4)
    assert region.length_bars == 3  # 8 quarters of notes in 3/4 -> rounded up to 3 bars


def test_parts_merge_tracks_by_program_and_keep_drums(tmp_path: Path) -> None:
    region = read_region(Prompt(midi_path=fx.type0(tmp_path)))
    programs = [p.program for p in region.parts]
    assert -1 in programs and len(programs) == len(set(programs)) == 3
    drums = read_region(Prompt(midi_path=fx.drums_only(tmp_path)))
    assert [p.program for p in drums.parts] == [-1]
    forty = read_region(Prompt(midi_path=fx.forty_tracks(tmp_path)))
    assert len(forty.parts) == 40


def test_three_hour_file_keeps_only_the_last_bars_in_the_prompt(tmp_path: Path) -> None:
    region = read_region(Prompt(midi_path=fx.three_hours(tmp_path)))
    assert region.length_bars == fx.THREE_HOURS_BARS
    window = prompt_window(region, 8)
    assert window.end() <= 8 * region.bar_ticks
    assert window.note_num() == 8


@pytest.mark.parametrize(
    ("maker", "message"),
    [
        (fx.no_notes, "no notes"),
        (fx.not_midi, "not a MIDI file"),
        (fx.truncated, "truncated or corrupt"),
        (fx.empty_file, "empty"),
    ],
)
def test_bad_files_say_what_is_wrong(tmp_path: Path, maker, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BadInputError, match=message):
        read_region(Prompt(midi_path=maker(tmp_path)))


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="no such file"):
        read_region(Prompt(midi_path=tmp_path / "nope.mid"))
    with pytest.raises(BadInputError, match="not a file"):
        read_region(Prompt(midi_path=tmp_path))


def _one_note_then_silence(path: Path, last_beat: float, tpq: int = 96) -> Path:
    """A note on beat 0 and one ending ``last_beat`` quarter notes later (a DAW export with a stray late note)."""
    mid = mido.MidiFile(ticks_per_beat=tpq)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.Message("note_on", note=60, velocity=90, time=0))
    track.append(mido.Message("note_off", note=60, velocity=0, time=tpq))
    track.append(mido.Message("note_on", note=62, velocity=90, time=round((last_beat - 2) * tpq)))
    track.append(mido.Message("note_off", note=62, velocity=0, time=tpq))
    mid.save(path)
    return path


def test_a_region_longer_than_the_bound_is_refused_before_its_bar_grid_is_built(tmp_path: Path) -> None:
    path = _one_note_then_silence(tmp_path / "late.mid", MAX_REGION_BEATS + 64)
    with pytest.raises(BadInputError, match="Segue reads regions of at most 32768 beats"):
        read_region(Prompt(midi_path=path))
    ok = read_region(Prompt(midi_path=_one_note_then_silence(tmp_path / "long.mid", MAX_REGION_BEATS)))
    assert ok.length_bars == MAX_REGION_BEATS / 4


def test_bar_lines_are_bounded_whatever_the_end_tick(tmp_path: Path) -> None:
    score = Score(str(_one_note_then_silence(tmp_path / "r.mid", 8)))
    tpq = int(score.ticks_per_quarter)
    for end_tick in (round((MAX_REGION_BEATS + 1) * tpq), 10**15, 2**62):  # 10**15 was one list entry per bar
        with pytest.raises(BadInputError, match="at most 32768 beats"):
            bar_lines(score, end_tick)
    lines = bar_lines(score, round(MAX_REGION_BEATS * tpq), Meter(1, 32))  # the shortest bar there is
    assert len(lines) == MAX_REGION_BEATS * 8 + 1

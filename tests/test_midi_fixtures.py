"""The MIDI fixtures in tests/support/midi_fixtures.py write what they advertise."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import midi_fixtures as fx
import mido
import pytest


@dataclass
class Summary:
    midi_type: int
    tracks: int
    tpq: int
    meters: list[tuple[int, int, int]]  # (tick, numerator, denominator)
    tempos: list[tuple[int, float]]  # (tick, bpm)
    notes: list[tuple[int, int, int, int]]  # (on_tick, off_tick, channel, pitch)
    programs: dict[int, int]  # channel -> program
    end_tick: int  # latest end-of-track

    def bars(self) -> int:
        """Bars up to the first bar line at or after the end (single meter)."""
        _, num, den = self.meters[0]
        return math.ceil(self.end_tick / fx.bar_ticks((num, den), self.tpq))


def summarize(path: Path) -> Summary:
    mid = mido.MidiFile(path)
    meters, tempos, notes, programs, ends = [], [], [], {}, []
    for track in mid.tracks:
        tick = 0
        sounding: dict[tuple[int, int], int] = {}
        for msg in track:
            tick += msg.time
            if msg.type == "time_signature":
                meters.append((tick, msg.numerator, msg.denominator))
            elif msg.type == "set_tempo":
                tempos.append((tick, round(mido.tempo2bpm(msg.tempo), 3)))
            elif msg.type == "program_change":
                programs[msg.channel] = msg.program
            elif msg.type == "note_on" and msg.velocity > 0:
                sounding[(msg.channel, msg.note)] = tick
            elif msg.type in ("note_off", "note_on"):
                on = sounding.pop((msg.channel, msg.note))
                notes.append((on, tick, msg.channel, msg.note))
            elif msg.type == "end_of_track":
                ends.append(tick)
        assert not sounding, f"hanging notes in {path.name}: {sounding}"
    return Summary(
        mid.type,
        len(mid.tracks),
        mid.ticks_per_beat,
        sorted(meters),
        sorted(tempos),
        sorted(notes),
        programs,
        max(ends),
    )


def assert_every_bar_has_notes(s: Summary, bars: int) -> None:
    _, num, den = s.meters[0]
    bar = fx.bar_ticks((num, den), s.tpq)
    assert {on // bar for on, *_ in s.notes} == set(range(bars))


def assert_on_16th_grid(s: Summary) -> None:
    assert all(on % (s.tpq // 4) == 0 and off % (s.tpq // 4) == 0 for on, off, *_ in s.notes)


def test_default_region(tmp_path: Path) -> None:
    s = summarize(fx.region(tmp_path))
    assert (s.midi_type, s.tracks) == (1, 2)
    assert s.meters == [(0, 4, 4)]
    assert s.tempos == [(0, 120.0)]
    assert s.end_tick == 4 * 4 * fx.TPQ and s.bars() == 4
    assert_every_bar_has_notes(s, 4)
    assert_on_16th_grid(s)
    assert {pitch % 12 for *_, pitch in s.notes} <= fx.C_MAJOR
    assert s.programs == {0: 0}


def test_region_parts_and_key(tmp_path: Path) -> None:
    g_major = {7, 9, 11, 0, 2, 4, 6}
    path = fx.region(
        tmp_path / "g.mid",
        meter=(3, 4),
        tempo_bpm=90,
        bars=2,
        parts=[(4, False), (33, False), (0, True)],
        scale=fx.MAJOR,
        tonic=55,
    )
    assert path == tmp_path / "g.mid"
    s = summarize(path)
    assert s.tracks == 4 and s.bars() == 2 and s.tempos == [(0, 90.0)]
    assert s.programs == {0: 4, 1: 33, 9: 0}
    melodic = {pitch % 12 for _, _, ch, pitch in s.notes if ch != fx.DRUM_CHANNEL}
    assert melodic <= g_major and 6 in melodic
    assert {pitch for _, _, ch, pitch in s.notes if ch == fx.DRUM_CHANNEL} <= set(fx.DRUM_PITCHES)


def test_forty_tracks(tmp_path: Path) -> None:
    s = summarize(fx.forty_tracks(tmp_path))
    assert s.tracks == fx.FORTY + 1  # plus the conductor
    assert s.bars() == 4
    assert len({(ch, pitch) for _, _, ch, pitch in s.notes}) > 16
    assert fx.DRUM_CHANNEL not in {ch for _, _, ch, _ in s.notes}


def test_three_hours_is_small_and_fast(tmp_path: Path) -> None:
    start = time.perf_counter()
    path = fx.three_hours(tmp_path)
    assert time.perf_counter() - start < 5.0
    assert path.stat().st_size < 256 * 1024
    s = summarize(path)
    assert s.bars() == fx.THREE_HOURS_BARS
    assert_every_bar_has_notes(s, fx.THREE_HOURS_BARS)
    assert mido.MidiFile(path).length == pytest.approx(3 * 3600, abs=1.0)


def test_tempo_changes(tmp_path: Path) -> None:
    s = summarize(fx.tempo_changes(tmp_path))
    assert s.tempos == [(0, 120.0), (2 * 4 * fx.TPQ, 90.0)]
    assert s.bars() == 4
    assert mido.MidiFile(fx.tempo_changes(tmp_path)).length == pytest.approx(2 * 2.0 + 2 * 4 * 60 / 90)


def test_drums_only(tmp_path: Path) -> None:
    s = summarize(fx.drums_only(tmp_path))
    assert s.tracks == 2 and s.bars() == 4
    assert s.notes and {ch for _, _, ch, _ in s.notes} == {fx.DRUM_CHANNEL}
    assert {pitch for *_, pitch in s.notes} == {36, 38, 42}


def test_no_notes(tmp_path: Path) -> None:
    s = summarize(fx.no_notes(tmp_path))
    assert s.tracks == 3 and s.notes == []
    assert s.tempos == [(0, 120.0)] and s.meters == [(0, 4, 4)]
    assert s.programs == {0: 0, 1: 33}
    assert s.bars() == 4


@pytest.mark.parametrize(("num", "den"), fx.METERS)
def test_meter(tmp_path: Path, num: int, den: int) -> None:
    s = summarize(fx.meter(tmp_path, num, den))
    assert s.meters == [(0, num, den)]
    assert s.end_tick == 4 * fx.bar_ticks((num, den)) and s.bars() == 4
    assert_every_bar_has_notes(s, 4)
    assert_on_16th_grid(s)


def test_pickup_ends_mid_bar(tmp_path: Path) -> None:
    s = summarize(fx.pickup(tmp_path))
    end = round(fx.PICKUP_LENGTH_QUARTERS * fx.TPQ)
    bar = fx.bar_ticks((4, 4))
    assert end % bar != 0
    assert max(off for _, off, *_ in s.notes) == end == s.end_tick
    assert s.bars() == 4  # rounded up to the next bar line
    assert_every_bar_has_notes(s, 4)


def test_type0(tmp_path: Path) -> None:
    s = summarize(fx.type0(tmp_path))
    assert (s.midi_type, s.tracks) == (0, 1)
    assert s.programs == {0: 0, 1: 33, fx.DRUM_CHANNEL: 0}
    assert {ch for _, _, ch, _ in s.notes} == {0, 1, fx.DRUM_CHANNEL}
    assert s.tempos == [(0, 120.0)] and s.meters == [(0, 4, 4)] and s.bars() == 4


@pytest.mark.parametrize("writer", [fx.not_midi, fx.truncated, fx.empty_file])
def test_broken_files_do_not_read(tmp_path: Path, writer) -> None:  # type: ignore[no-untyped-def]
    path = writer(tmp_path)
    assert path.suffix == ".mid" and path.exists()
    with pytest.raises((OSError, EOFError, ValueError)):
        mido.MidiFile(path)


def test_truncated_keeps_header(tmp_path: Path) -> None:
    data = fx.truncated(tmp_path).read_bytes()
    assert data.startswith(b"MThd") and len(data) > 14
    assert [p.name for p in tmp_path.iterdir()] == ["truncated.mid"]


def test_not_midi_and_empty(tmp_path: Path) -> None:
    assert not fx.not_midi(tmp_path).read_bytes().startswith(b"MThd")
    assert fx.empty_file(tmp_path).stat().st_size == 0

"""MIDI files in and out: the writer (exact end of track, channels, programs, names, no overwrite), the readers."""

from __future__ import annotations

from pathlib import Path

import mido
import pytest

from engine.api import Meter
from engine.errors import BadInputError, EngineError
from engine.midi_io import (
    Conductor,
    Note,
    PartNotes,
    build_midi,
    end_of_track_tick,
    midi_bytes,
    parse_midi_bytes,
    read_midi_file,
    save_midi,
    tempo_to_bpm,
)


def test_tracks_channels_and_exact_end(tmp_path: Path) -> None:
    parts = [
        PartNotes("drums", -1, (Note(0, 60, 36, 100),)),
        PartNotes("bass", 33, (Note(0, 480, 40, 90), Note(1200, 500, 43, 90))),  # the last note runs past the end
        PartNotes("keys", 4, ()),
    ]
    mid = build_midi(480, Conductor(((0, 96.0),), ((0, Meter(6, 8)),)), parts, end_tick=1440)
    path = tmp_path / "c.mid"
    save_midi(mid, path)
    back = mido.MidiFile(str(path))
    assert back.type == 1 and len(back.tracks) == 4
    assert all(sum(m.time for m in t) == 1440 for t in back.tracks)
    tempo = next(m for m in back.tracks[0] if m.type == "set_tempo")
    sig = next(m for m in back.tracks[0] if m.type == "time_signature")
    assert round(mido.tempo2bpm(tempo.tempo), 6) == 96.0 and (sig.numerator, sig.denominator) == (6, 8)
    assert [t.name for t in back.tracks[1:]] == ["drums", "bass", "keys"]
    drum_notes = [m for m in back.tracks[1] if m.type == "note_on"]
    assert drum_notes and all(m.channel == 9 for m in drum_notes)
    bass = back.tracks[2]
    assert next(m for m in bass if m.type == "program_change").program == 33
    assert {m.channel for m in bass if not m.is_meta} == {0}
    assert {m.channel for m in back.tracks[3] if not m.is_meta} == {1}
    # the note that ran past the end is cut at the end: its note-off is the last event before end_of_track
    tick, offs = 0, []
    for m in bass:
        tick += m.time
        if m.type == "note_off":
            offs.append(tick)
    assert offs == [480, 1440]


def test_repeated_notes_retrigger(tmp_path: Path) -> None:
    part = PartNotes("p", 0, (Note(0, 240, 60, 80), Note(240, 240, 60, 80)))
    mid = build_midi(480, Conductor(((0, 120.0),), ((0, Meter(4, 4)),)), [part], 1920)
    kinds = [m.type for m in mid.tracks[1] if m.type in ("note_on", "note_off")]
    assert kinds == ["note_on", "note_off", "note_on", "note_off"]


def test_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "c.mid"
    path.write_bytes(b"the producer's file")
    mid = build_midi(480, Conductor(((0, 120.0),), ((0, Meter(4, 4)),)), [], 1920)
    with pytest.raises(EngineError, match="already exists"):
        save_midi(mid, path)
    assert path.read_bytes() == b"the producer's file"
    assert list(tmp_path.iterdir()) == [path]


def test_a_file_read_back_gives_the_bytes_it_was_written_from(tmp_path: Path) -> None:
    part = PartNotes("p", 0, (Note(0, 240, 60, 80),))
    mid = build_midi(480, Conductor(((0, 100.0),), ((0, Meter(3, 4)),)), [part], 1440)
    path = tmp_path / "c.mid"
    save_midi(mid, path)
    assert path.read_bytes() == midi_bytes(mid)
    back = read_midi_file(path)
    assert midi_bytes(parse_midi_bytes(path.read_bytes())) == midi_bytes(back)
    assert round(tempo_to_bpm(next(m for m in back.tracks[0] if m.type == "set_tempo").tempo), 6) == 100.0
    assert end_of_track_tick(path) == 1440


def test_a_broken_file_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "broken.mid"
    path.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01")  # a header cut short
    with pytest.raises(BadInputError, match="broken.mid is not a readable MIDI file"):
        read_midi_file(path)
    with pytest.raises(BadInputError, match="the take is not a readable MIDI file"):
        parse_midi_bytes(path.read_bytes(), "the take")
    assert end_of_track_tick(path) == 0  # unknown, not an error: the region's notes decide its length

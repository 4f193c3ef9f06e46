"""engine.smf: Standard MIDI Files read and written by our own code; broken files refused by name, never a hang.

Every file here is written byte by byte in the test from the SMF 1.0 layout (no outside material).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import tracemalloc
from pathlib import Path

import pytest

from engine import smf
from engine.errors import BadInputError
from engine.smf import Event, MidiFile

ROOT = Path(__file__).resolve().parents[2]


def header(fmt: int = 1, tracks: int = 1, division: int = 96, extra: bytes = b"") -> bytes:
    body = fmt.to_bytes(2, "big") + tracks.to_bytes(2, "big") + division.to_bytes(2, "big") + extra
    return b"MThd" + len(body).to_bytes(4, "big") + body


def chunk(kind: bytes, body: bytes, length: int | None = None) -> bytes:
    return kind + (len(body) if length is None else length).to_bytes(4, "big") + body


def eot(delta: int = 0) -> bytes:
    return smf.encode_vlq(delta) + b"\xff\x2f\x00"


def every_kind() -> tuple[Event, ...]:
    return (
        smf.text_event(smf.TRACK_NAME, "Café"),
        smf.tempo_event(smf.bpm_to_tempo(97.3)),
        smf.time_signature_event(7, 8),
        smf.meta_event(0x60, b"\x01\x02"),  # a meta type without a name: kept as it is
        smf.program_change(3, 33, time=5),
        smf.note_on(3, 60, 100),
        smf.note_on(3, 64, 90, time=0x0FFFFFFF),  # the largest delta time
        Event(1, smf.POLYTOUCH | 3, b"\x40\x10"),
        Event(0, smf.CONTROL_CHANGE | 3, b"\x07\x64"),
        Event(0, smf.AFTERTOUCH | 3, b"\x20"),
        Event(0, smf.PITCHWHEEL | 3, b"\x00\x40"),
        Event(2, smf.SYSEX, b"\x7e\x7f\x09\x01\xf7"),
        Event(0, smf.ESCAPE, b"\xf3\x01"),  # an escape: any bytes, sent as they are
        smf.note_off(3, 60),
        smf.end_of_track(7),
    )


@pytest.mark.parametrize("fmt", [0, 1, 2])
def test_a_file_reads_back_as_it_was_written(fmt: int) -> None:
    tracks = (every_kind(),) if fmt == 0 else (every_kind(), (smf.end_of_track(),), every_kind()[3:])
    midi = MidiFile(fmt, 480, tracks)
    assert smf.parse(smf.encode(midi)) == midi
    assert smf.parse(smf.encode(MidiFile(fmt, 1, ()))) == MidiFile(fmt, 1, ())


def test_events_say_what_they_are() -> None:
    name, tempo, meter, unknown, program, on = every_kind()[:6]
    assert (name.type, name.text, name.data) == ("track_name", "Café", "Café".encode("latin-1"))
    assert (tempo.type, tempo.tempo, round(smf.tempo_to_bpm(tempo.tempo), 3)) == ("set_tempo", 616650, 97.3)
    assert (meter.type, meter.numerator, meter.denominator, meter.data) == ("time_signature", 7, 8, b"\x07\x03\x18\x08")
    assert unknown.type == "unknown_meta" and unknown.is_meta
    assert (program.type, program.channel, program.program, program.is_channel) == ("program_change", 3, 33, True)
    assert (on.type, on.note, on.velocity) == ("note_on", 60, 100)
    assert [e.type for e in every_kind()[7:13]] == [
        "polytouch", "control_change", "aftertouch", "pitchwheel", "sysex", "sysex_escape",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="no channel"):
        _ = tempo.channel
    with pytest.raises(ValueError, match="not a set_tempo"):
        _ = on.tempo
    assert smf.text_event(smf.TEXT, "Bass ♯").text == "Bass ?"  # outside Latin-1


def test_channel_messages_share_a_running_status_and_meta_events_break_it() -> None:
    track = (smf.note_on(0, 60, 100), smf.note_on(0, 64, 100, 10), smf.text_event(smf.TEXT, "x"), smf.note_on(0, 67, 1))
    body = b"\x00\x90\x3c\x64" + b"\x0a\x40\x64" + b"\x00\xff\x01\x01x" + b"\x00\x90\x43\x01" + eot()
    assert smf.encode(MidiFile(0, 96, (track,))) == header(0) + chunk(b"MTrk", body)
    # read: running status goes on across a meta event (some writers rely on it)
    kept = b"\x00\x90\x3c\x64" + b"\x00\xff\x01\x01x" + b"\x05\x3c\x00" + eot()
    events = smf.parse(header(0) + chunk(b"MTrk", kept)).tracks[0]
    assert events[2] == smf.note_on(0, 60, 0, 5) and len(events) == 4


def test_unknown_chunks_and_a_longer_header_are_skipped() -> None:
    track = b"\x00\x99\x24\x64" + eot(96)
    data = header(1, 1, 96, extra=b"\x00\x00") + chunk(b"XFIH", b"\x00" * 9) + chunk(b"MTrk", track) + b"junk after"
    midi = smf.parse(data)
    assert midi == MidiFile(1, 96, ((smf.note_on(9, 36, 100), smf.end_of_track(96)),))


def test_end_of_track_events_inside_a_track_move_to_its_end_keeping_every_time() -> None:
    track = (smf.note_on(0, 60, 9, 4), smf.end_of_track(3), smf.note_off(0, 60, 0, 2), smf.end_of_track(1))
    back = smf.parse(smf.encode(MidiFile(1, 96, (track,)))).tracks[0]
    assert back == (smf.note_on(0, 60, 9, 4), smf.note_off(0, 60, 0, 5), smf.end_of_track(1))
    assert smf.parse(smf.encode(MidiFile(1, 96, ((),)))).tracks == ((smf.end_of_track(),),)


def test_data_bytes_above_127_are_refused_or_clipped() -> None:
    data = header(0) + chunk(b"MTrk", b"\x00\x90\x3c\xc8" + eot())
    with pytest.raises(BadInputError, match="data byte above 127"):
        smf.parse(data)
    assert smf.parse(data, clip=True).tracks[0][0] == smf.note_on(0, 60, 127)


TRACK = b"\x00\x90\x3c\x64\x60\x80\x3c\x00" + eot()
BROKEN = {
    "empty": (b"", "the file is empty"),
    "wrong magic": (b"RIFF\x00\x00\x00\x04RMID", "not MThd"),
    "a header cut short": (b"MThd\x00\x00\x00\x06\x00\x01", "header is cut short"),
    "a header chunk too short": (b"MThd\x00\x00\x00\x02\x00\x01\x00\x01\x00\x60", "header chunk declares 2 bytes"),
    "format 3": (header(3) + chunk(b"MTrk", TRACK), "format 3"),
    "SMPTE division": (header(division=0xE728) + chunk(b"MTrk", TRACK), "SMPTE"),
    "no ticks": (header(division=0) + chunk(b"MTrk", TRACK), "0 ticks per quarter"),
    "a track chunk cut short": ((header() + chunk(b"MTrk", TRACK))[:-3], "declares 12 bytes but the file ends 9"),
    "a missing track": (header(tracks=2) + chunk(b"MTrk", TRACK), "declares 2 tracks but holds 1"),
    "a chunk head cut short": (header() + b"MTr", "inside a chunk head"),
    "a huge chunk": (header() + chunk(b"MTrk", TRACK, length=0xFFFFFFF0), "declares 4294967280 bytes"),
    "a 5-byte number": (header() + chunk(b"MTrk", b"\x81\x80\x80\x80\x00\x90\x3c\x64" + eot()), "longer than 4"),
    "a number cut short": (header() + chunk(b"MTrk", b"\x00\x90\x3c\x64\x81"), "inside a variable-length"),
    "a huge meta event": (header() + chunk(b"MTrk", b"\x00\xff\x01\xff\xff\xff\x7fabc"), "declares 268435455"),
    "a huge sysex": (header() + chunk(b"MTrk", b"\x00\xf0\x8f\x00\x7e\xf7"), "sysex event in track 1"),
    "an event cut short": (header() + chunk(b"MTrk", b"\x00\x90\x3c"), "inside a channel message"),
    "a delta without event": (header() + chunk(b"MTrk", b"\x00\x90\x3c\x64\x00"), "without its event"),
    "no running status yet": (header() + chunk(b"MTrk", b"\x00\x3c\x64" + eot()), "data byte where a status"),
    "a sysex ends running status": (
        header() + chunk(b"MTrk", b"\x00\x90\x3c\x64\x00\xf0\x01\xf7\x00\x3c\x00"),
        "data byte where a status",
    ),  # fmt: skip
    "a clock byte": (header() + chunk(b"MTrk", b"\x00\xf8" + eot()), "status byte 0xF8"),
    "a short tempo": (header() + chunk(b"MTrk", b"\x00\xff\x51\x02\x07\xa1" + eot()), "set_tempo event in track 1"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_file_gets_a_clear_error_that_names_it(case: str) -> None:
    data, words = BROKEN[case]
    with pytest.raises(BadInputError, match=r"^take\.mid is not a readable MIDI file \(") as caught:
        smf.parse(data, "take.mid")
    assert words in str(caught.value) and str(caught.value).endswith("as a Standard MIDI File (.mid)")


def test_huge_declared_lengths_allocate_nothing() -> None:
    cases = [BROKEN[c][0] for c in ("a huge chunk", "a huge meta event", "a huge sysex")]
    tracemalloc.start()
    try:
        for data in cases:
            with pytest.raises(BadInputError):
                smf.parse(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024


def test_only_regular_files_of_a_bounded_size_are_read(tmp_path: Path) -> None:
    good = tmp_path / "good.mid"
    good.write_bytes(header() + chunk(b"MTrk", TRACK))
    assert len(smf.read_file(good).tracks[0]) == 3
    with pytest.raises(BadInputError, match=r"good\.mid is not a readable MIDI file \(it is larger than 20 bytes\)"):
        smf.read_file(good, limit=20)
    with pytest.raises(BadInputError, match=r"not a regular file.*give the path of a \.mid file"):
        smf.read_file(tmp_path)
    with pytest.raises(BadInputError, match=r"missing\.mid is not a readable MIDI file \(No such file"):
        smf.read_file(tmp_path / "missing.mid")
    if Path("/dev/zero").exists():
        with pytest.raises(BadInputError, match="/dev/zero is not a readable MIDI file .*not a regular file"):
            smf.read_file(Path("/dev/zero"))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "take.mid"
    os.mkfifo(fifo)
    errors: list[BaseException] = []

    def read() -> None:
        try:
            smf.read_file(fifo)
        except BaseException as e:  # handed to the test's thread
            errors.append(e)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=30)
    if reader.is_alive():  # blocked in open(): release it before failing
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("reading a FIFO waited for a writer")
    assert len(errors) == 1 and isinstance(errors[0], BadInputError)
    assert "take.mid is not a readable MIDI file (it is not a regular file" in str(errors[0])


def test_events_and_files_refuse_what_a_midi_file_cannot_hold() -> None:
    for make in (
        lambda: smf.note_on(16, 60, 1),
        lambda: smf.note_on(0, 128, 1),
        lambda: smf.program_change(0, -1),
        lambda: smf.tempo_event(1 << 24),
        lambda: smf.time_signature_event(3, 6),
        lambda: smf.note_on(0, 60, 1, time=-1),
        lambda: Event(0, 0xF8),
        lambda: Event(0, 0x90, b"\x3c"),
        lambda: MidiFile(3, 96, ()),
        lambda: MidiFile(1, 0x8000, ()),
    ):
        with pytest.raises(ValueError):
            make()
    with pytest.raises(ValueError):
        smf.encode_vlq(0x10000000)
    assert [smf.encode_vlq(v) for v in (0, 0x7F, 0x80, 0x3FFF, 0x4000, 0x0FFFFFFF)] == [
        b"\x00", b"\x7f", b"\x81\x00", b"\xff\x7f", b"\x81\x80\x00", b"\xff\xff\xff\x7f",
    ]  # fmt: skip


def test_the_engines_midi_file_modules_load_no_mido() -> None:
    modules = "engine.smf, engine.midi_io, engine.provenance.midi, engine.provenance.stamp, engine.evaluate.midi"
    code = f"import sys, {modules}; print('mido' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

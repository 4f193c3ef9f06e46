"""engine.smf against mido (which the bridge keeps for its MIDI ports): the engine writes the same bytes mido wrote
for it, reads real MIDI files to the same notes, tempos, meters, texts and end ticks as mido, and writes what it
read back as the bytes mido writes.

The expectation of the writer comes from mido here: `mido_build_midi` is the engine's writer as it was on mido
(engine/midi_io.py before issue 20), fed the same parts.

Real material, read where it is installed (each folder is skipped when absent; the repository's own files are
always there):
- music21's package folder (music21/midi/testPrimitive/*.mid, music21/omr/*.mid): music21's own test MIDI files,
  BSD-3-Clause (music21's LICENSE); they exercise sysex, running status, odd meta events and more.
- /usr/share/games/openttd/baseset/openmsx/*.mid: the OpenMSX music set (Debian openttd-openmsx), GPL-2.0.
- /usr/share/ardour7/media/*.mid: Ardour's bundled MIDI clip (Debian ardour), GPL-2.0-or-later.
- bench/data/midi_quality/**/*.mid and examples/regions/*.mid: this repository's pieces (their manifests and
  READMEs say where each came from: the music21 corpus, LMMS and OpenMSX songs).
"""

from __future__ import annotations

import importlib.util
import io
import random
from collections.abc import Sequence
from pathlib import Path

import mido
import pytest

from engine import smf
from engine.api import Meter
from engine.midi_io import Conductor, Note, PartNotes, build_midi, end_of_track_tick, save_midi

ROOT = Path(__file__).resolve().parents[2]


def mido_build_midi(tpq: int, conductor: Conductor, parts: Sequence[PartNotes], end_tick: int) -> bytes:
    """The engine's writer as it was on mido (channels, order of events, end of track), as bytes."""
    melodic = [c for c in range(16) if c != 9]
    channels, index = [], 0
    for part in parts:
        channels.append(9 if part.is_drum else melodic[index % 15])
        index += 0 if part.is_drum else 1

    def track(events: list[tuple[int, int, mido.Message | mido.MetaMessage]]) -> mido.MidiTrack:
        events.sort(key=lambda e: (e[0], e[1]))
        out, now = mido.MidiTrack(), 0
        for tick, _order, msg in events:
            out.append(msg.copy(time=tick - now))
            now = tick
        out.append(mido.MetaMessage("end_of_track", time=end_tick - now))
        return out

    mid = mido.MidiFile(type=1, ticks_per_beat=tpq)
    meta: list[tuple[int, int, mido.Message | mido.MetaMessage]] = []
    meta += [(t, 0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))) for t, bpm in conductor.tempos]
    for t, m in conductor.meters:
        meta.append((t, 0, mido.MetaMessage("time_signature", numerator=m.numerator, denominator=m.denominator)))
    mid.tracks.append(track(meta))
    for part, channel in zip(parts, channels, strict=True):
        events: list[tuple[int, int, mido.Message | mido.MetaMessage]] = [
            (0, 0, mido.MetaMessage("track_name", name=part.name))
        ]
        if not part.is_drum:
            events.append((0, 1, mido.Message("program_change", channel=channel, program=part.program)))
        for n in part.notes:
            off = min(n.start + n.duration, end_tick)
            if n.start >= end_tick or off <= n.start:
                continue
            velocity = max(1, min(127, n.velocity))
            events.append((n.start, 3, mido.Message("note_on", channel=channel, note=n.pitch, velocity=velocity)))
            events.append((off, 2, mido.Message("note_off", channel=channel, note=n.pitch, velocity=0)))
        mid.tracks.append(track(events))
    buffer = io.BytesIO()
    mid.save(file=buffer)
    return buffer.getvalue()


def random_parts(rng: random.Random, count: int, end_tick: int) -> list[PartNotes]:
    parts = []
    for i in range(count):
        notes = tuple(
            Note(rng.randrange(0, end_tick + 50), rng.choice((0, 1, 7, 120, 480, 5000)), rng.randrange(128),
                 rng.choice((0, 1, 64, 127, 200)))
            for _ in range(rng.randrange(0, 60))
        )  # fmt: skip
        parts.append(PartNotes(f"part {i} Café", -1 if rng.random() < 0.2 else rng.randrange(128), notes))
    return parts


CASES = [
    (480, Conductor(((0, 96.0),), ((0, Meter(6, 8)),)), 1440),
    (96, Conductor(((0, 120.0), (384, 97.3), (768, 181.7)), ((0, Meter(4, 4)), (384, Meter(7, 8)))), 1536),
    (960, Conductor(((0, 60.0), (0, 75.5)), ((0, Meter(3, 2)), (1920, Meter(5, 4)))), 20 * 960),
    (24, Conductor((), ()), 96),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_the_files_the_engine_writes_are_the_bytes_mido_wrote(case: int, tmp_path: Path) -> None:
    tpq, conductor, end = CASES[case]
    rng = random.Random(case)  # a fixed draw: the same parts on every machine
    for count in (0, 1, 3, 17):  # 17 parts: the melodic channels wrap around, drums stay on channel 10
        parts = random_parts(rng, count, end)
        path = tmp_path / f"{count}.mid"
        save_midi(build_midi(tpq, conductor, parts, end), path)
        assert path.read_bytes() == mido_build_midi(tpq, conductor, parts, end), (case, count)


def test_the_engines_pipelines_files_read_back_as_mido_reads_them(tmp_path: Path) -> None:
    part = PartNotes("keys", 4, (Note(0, 240, 60, 80), Note(240, 240, 60, 80), Note(240, 480, 64, 90)))
    path = tmp_path / "c.mid"
    save_midi(build_midi(480, CASES[1][1], [PartNotes("drums", -1, (Note(0, 10, 36, 99),)), part], 1536), path)
    assert view(smf.read_file(path)) == mido_view(mido.MidiFile(str(path)))


def real_files() -> list[Path]:
    folders = [ROOT / "bench" / "data" / "midi_quality", ROOT / "examples" / "regions"]
    folders += [Path("/usr/share/games/openttd/baseset/openmsx"), Path("/usr/share/ardour7/media")]
    spec = importlib.util.find_spec("music21")  # located, not imported (importing music21 takes seconds)
    if spec is not None and spec.origin is not None:
        folders.append(Path(spec.origin).parent)
    return sorted(p for folder in folders if folder.is_dir() for p in folder.rglob("*") if p.suffix.lower() == ".mid")


TEXTS = ("text", "copyright", "track_name", "instrument_name", "lyrics", "marker", "cue_marker", "device_name")


def mido_view(mid: mido.MidiFile) -> tuple[int, list[list[tuple[object, ...]]]]:
    """Per track, at absolute ticks: every channel message's bytes, sysex data, tempo, meter, text, the other meta
    events by name, and the end tick."""
    tracks = []
    for track in mid.tracks:
        tick, out = 0, []
        for msg in track:
            tick += msg.time
            if msg.type == "sysex":
                out.append((tick, "sysex", *msg.data))
            elif not msg.is_meta:
                out.append((tick, "channel", *msg.bytes()))
            elif msg.type == "set_tempo":
                out.append((tick, "tempo", msg.tempo))
            elif msg.type == "time_signature":
                out.append((tick, "meter", msg.numerator, msg.denominator))
            elif msg.type in TEXTS:
                out.append((tick, msg.type, msg.name if "name" in msg.type else msg.text))
            else:
                out.append((tick, msg.type))
        out.append((tick, "end"))
        tracks.append(out)
    return mid.ticks_per_beat, tracks


def view(midi: smf.MidiFile) -> tuple[int, list[list[tuple[object, ...]]]]:
    """What :func:`mido_view` gives, from engine.smf's reading (mido drops a sysex event's F0 and F7 bytes)."""
    tracks = []
    for track in midi.tracks:
        tick, out = 0, []
        for event in track:
            tick += event.time
            if event.type == "sysex":
                out.append((tick, "sysex", *event.data.removeprefix(b"\xf0").removesuffix(b"\xf7")))
            elif event.is_channel:
                out.append((tick, "channel", event.status, *event.data))
            elif event.type == "set_tempo":
                out.append((tick, "tempo", event.tempo))
            elif event.type == "time_signature":
                out.append((tick, "meter", event.numerator, event.denominator))
            elif event.type in TEXTS:
                out.append((tick, event.type, event.text))
            else:
                out.append((tick, event.type))
        out.append((tick, "end"))
        tracks.append(out)
    return midi.ticks_per_quarter, tracks


def test_real_midi_files_read_as_mido_reads_them_and_write_back_as_mido_writes_them() -> None:
    files = real_files()
    assert len(files) >= 40  # the repository's own pieces at least (61 of them)
    for path in files:
        theirs = mido.MidiFile(str(path))
        ours = smf.read_file(path)
        assert ours.format == theirs.type, path
        assert view(ours) == mido_view(theirs), path
        assert end_of_track_tick(path) == max((sum(m.time for m in t) for t in theirs.tracks), default=0), path
        saved = io.BytesIO()
        theirs.save(file=saved)
        assert smf.encode(ours) == saved.getvalue(), path  # written again: mido's bytes (what provenance re-encodes)


def test_tempo_and_bpm_convert_as_mido_converts_them() -> None:
    rng = random.Random(3)
    for bpm in [20.0, 60.0, 96.0, 97.3, 120.0, 181.7, 300.0] + [rng.uniform(20, 300) for _ in range(500)]:
        assert smf.bpm_to_tempo(bpm) == mido.bpm2tempo(bpm), bpm
    for tempo in [1, 250_000, 500_000, 616_650, 0xFFFFFF] + [rng.randrange(1, 1 << 24) for _ in range(500)]:
        assert smf.tempo_to_bpm(tempo) == mido.tempo2bpm(tempo), tempo

"""Awkward MIDI regions a producer may send, written on demand into a test's ``tmp_path``.

Not a test module: ``import midi_fixtures`` (pytest puts tests/support on ``sys.path``).

Every writer takes the folder to write into (or a full ``.../name.mid`` path) and returns the file's Path.
Unless said otherwise a region is a type-1 file at ``TPQ`` ticks per quarter note: a conductor track (tempo and
time signature at tick 0) followed by one track per part, each with a track name and a program change at
tick 0; every bar has notes, on a 16th-note grid, drawn from the C major scale (change it with ``tonic`` and
``scale``); every track's end-of-track
sits on the region's last bar line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import mido

TPQ = 480
MAJOR = (0, 2, 4, 5, 7, 9, 11)  # the default scale: semitones above the tonic
NATURAL_MINOR = (0, 2, 3, 5, 7, 8, 10)
C_MAJOR = frozenset(MAJOR)  # pitch classes of the default key (tonic 60, middle C)
DRUM_CHANNEL = 9  # channel 10
DRUM_PITCHES = (36, 42, 38, 42)  # kick, closed hat, snare, closed hat
MELODIC_CHANNELS = tuple(c for c in range(16) if c != DRUM_CHANNEL)
FORTY = 40
THREE_HOURS_BARS = 5400  # 3 h at 120 BPM in 4/4: 2 s a bar
METERS = ((3, 4), (6, 8), (7, 8), (5, 4))

Part = tuple[int, bool]  # (General MIDI program 0..127, is_drum)


def bar_quarters(meter: tuple[int, int]) -> float:
    """Quarter notes in one bar of ``meter`` (6/8 -> 3.0, 7/8 -> 3.5)."""
    return meter[0] * 4 / meter[1]


def bar_ticks(meter: tuple[int, int], tpq: int = TPQ) -> int:
    """Ticks in one bar of ``meter``."""
    return round(bar_quarters(meter) * tpq)


def _target(path: Path, name: str) -> Path:
    path = Path(path)
    if path.suffix.lower() == ".mid":
        path.parent.mkdir(parents=True, exist_ok=True)
        return path
    path.mkdir(parents=True, exist_ok=True)
    return path / name


def _channels(parts: Sequence[Part]) -> list[int]:
    melodic = iter(MELODIC_CHANNELS * (len(parts) // len(MELODIC_CHANNELS) + 1))
    return [DRUM_CHANNEL if is_drum else next(melodic) for _, is_drum in parts]


def _part_notes(
    index: int,
    is_drum: bool,
    bars: int,
    meter: tuple[int, int],
    notes_per_bar: int,
    scale: Sequence[int],
    tonic: int,
    tpq: int,
) -> list[tuple[int, int, int, int]]:
    """(on_tick, off_tick, pitch, velocity) for one part: ``notes_per_bar`` notes in every bar, 16th grid."""
    sixteenth = tpq // 4
    per_bar = round(bar_quarters(meter) * 4)  # 16ths in a bar
    count = max(1, min(notes_per_bar, per_bar))
    onsets = [j * per_bar // count for j in range(count)] + [per_bar]
    register = tonic + 12 * ((index % 3) - 1)  # parts spread over three octaves around the tonic
    notes = []
    for bar in range(bars):
        start = bar * bar_ticks(meter, tpq)
        for j in range(count):
            on = start + onsets[j] * sixteenth
            off = start + onsets[j + 1] * sixteenth
            if is_drum:
                pitch = DRUM_PITCHES[j % len(DRUM_PITCHES)]
            else:
                step = bar + 2 * j + index
                pitch = register + scale[step % len(scale)] + 12 * ((step // len(scale)) % 2)
            notes.append((on, off, pitch, 100 if j == 0 else 80))
    return notes


def _track(name: str, events: list[tuple[int, int, mido.Message | mido.MetaMessage]], end: int) -> mido.MidiTrack:
    """A track from (tick, order, message) events; order sorts note-offs (0) before note-ons (1)."""
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("track_name", name=name, time=0))
    now = 0
    for tick, _, message in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(message.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=max(0, end - now)))
    return track


def region(
    path: Path,
    meter: tuple[int, int] = (4, 4),
    tempo_bpm: float = 120.0,
    bars: int = 4,
    parts: Sequence[Part] = ((0, False),),
    *,
    name: str = "region.mid",
    scale: Sequence[int] = MAJOR,
    tonic: int = 60,
    notes_per_bar: int = 4,
    with_notes: bool = True,
    tempo_changes: Sequence[tuple[int, float]] = (),
    length_quarters: float | None = None,
    midi_type: int = 1,
    tpq: int = TPQ,
) -> Path:
    """Generic region: ``bars`` bars of ``meter`` at ``tempo_bpm``, one track per (program, is_drum) part.

    ``notes_per_bar`` notes per part in every bar on the 16th grid, pitches from ``scale`` (semitones above
    ``tonic``, a MIDI pitch: 55 with ``MAJOR`` is G major) in octaves around the tonic; drums on channel 10
    (kick/hat/snare). ``tempo_changes``: (bar number from 1, bpm) set on that bar's downbeat.
    ``length_quarters``: end notes and end-of-track there instead of on the last bar line (``bars`` is then
    ignored). ``with_notes=False``: tracks, names, programs, tempo and meter but no notes. ``midi_type=0``: all
    parts on one track (still one channel and program each).
    """
    out = _target(path, name)
    end = bars * bar_ticks(meter, tpq) if length_quarters is None else round(length_quarters * tpq)
    written_bars = math.ceil(end / bar_ticks(meter, tpq))
    conductor: list[tuple[int, int, mido.Message | mido.MetaMessage]] = [
        (0, 0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo_bpm))),
        (0, 0, mido.MetaMessage("time_signature", numerator=meter[0], denominator=meter[1])),
    ]
    for bar_number, bpm in tempo_changes:
        tick = (bar_number - 1) * bar_ticks(meter, tpq)
        conductor.append((tick, 0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))))

    part_events: list[tuple[str, list[tuple[int, int, mido.Message | mido.MetaMessage]]]] = []
    for index, ((program, is_drum), channel) in enumerate(zip(parts, _channels(parts), strict=True)):
        part_name = "Drums" if is_drum else f"Part {index + 1} (program {program})"
        events: list[tuple[int, int, mido.Message | mido.MetaMessage]] = [
            (0, 0, mido.Message("program_change", channel=channel, program=0 if is_drum else program))
        ]
        if with_notes:
            for on, off, pitch, velocity in _part_notes(
                index, is_drum, written_bars, meter, notes_per_bar, scale, tonic, tpq
            ):
                if on >= end:
                    continue
                events.append((on, 1, mido.Message("note_on", channel=channel, note=pitch, velocity=velocity)))
                events.append((min(off, end), 0, mido.Message("note_off", channel=channel, note=pitch)))
        part_events.append((part_name, events))

    mid = mido.MidiFile(type=midi_type, ticks_per_beat=tpq)
    if midi_type == 0:
        merged = conductor + [e for _, events in part_events for e in events]
        mid.tracks.append(_track(out.stem, merged, end))
    else:
        mid.tracks.append(_track(out.stem, conductor, end))
        for part_name, events in part_events:
            mid.tracks.append(_track(part_name, events, end))
    mid.save(out)
    return out


def forty_tracks(path: Path) -> Path:
    """40 instrument tracks (programs 0..39, channels reused, no drums) plus the conductor track; 4 bars 4/4."""
    return region(path, parts=[(p, False) for p in range(FORTY)], name="forty_tracks.mid", notes_per_bar=2)


def three_hours(path: Path) -> Path:
    """3 hours (5400 bars of 4/4 at 120 BPM), one sparse piano part: one note a bar, tens of KB on disk."""
    return region(path, bars=THREE_HOURS_BARS, notes_per_bar=1, name="three_hours.mid")


def tempo_changes(path: Path) -> Path:
    """4 bars of 4/4 at 120 BPM that change to 90 BPM on the downbeat of bar 3."""
    return region(path, parts=[(0, False), (33, False)], tempo_changes=[(3, 90.0)], name="tempo_changes.mid")


def drums_only(path: Path) -> Path:
    """4 bars of 4/4 at 120 BPM, a single drum track on channel 10 and nothing else."""
    return region(path, parts=[(0, True)], notes_per_bar=8, name="drums_only.mid")


def no_notes(path: Path) -> Path:
    """Tempo, meter and two named tracks with program changes, 4 bars long, but not a single note."""
    return region(path, parts=[(0, False), (33, False)], with_notes=False, name="no_notes.mid")


def meter(path: Path, num: int, den: int) -> Path:
    """4 bars of ``num/den`` (e.g. 3/4, 6/8, 7/8, 5/4) at 120 BPM with piano and bass."""
    return region(path, meter=(num, den), parts=[(0, False), (33, False)], name=f"meter_{num}-{den}.mid")


PICKUP_LENGTH_QUARTERS = 14.0  # 3 bars of 4/4 and half of the 4th


def pickup(path: Path) -> Path:
    """4/4 at 120 BPM whose last note (and end-of-track) ends on beat 3 of bar 4: rounds up to 4 bars."""
    return region(path, bars=4, length_quarters=PICKUP_LENGTH_QUARTERS, name="pickup.mid")


def not_midi(path: Path) -> Path:
    """A text file named .mid (no 'MThd' header)."""
    out = _target(path, "not_midi.mid")
    out.write_text("This is not a MIDI file: it is the notes for the chorus.\n", encoding="utf-8")
    return out


def truncated(path: Path) -> Path:
    """A valid 4-bar two-part region cut in half mid-file (header intact, last track chunk short)."""
    out = _target(path, "truncated.mid")
    full = region(out.parent, parts=[(0, False), (33, False)], name="truncated_full.mid")
    data = full.read_bytes()
    full.unlink()
    out.write_bytes(data[: len(data) // 2])
    return out


def empty_file(path: Path) -> Path:
    """A 0-byte file named .mid."""
    out = _target(path, "empty.mid")
    out.write_bytes(b"")
    return out


def type0(path: Path) -> Path:
    """Type-0 file: one track holding tempo, meter and three parts (piano, bass, drums) on their own channels."""
    return region(path, parts=[(0, False), (33, False), (0, True)], midi_type=0, name="type0.mid")

"""Write multi-part MIDI files (type 1) with a conductor track, exact end of track, atomically.

A :class:`PartNotes` is one instrument: its notes in absolute ticks. Tracks get their own channel (drums on
channel 10), a track name and a program change, so every DAW shows one track per part.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import mido

from engine.api import Meter
from engine.atomic import write_bytes
from engine.errors import EngineError

DRUM_CHANNEL = 9


@dataclass(frozen=True)
class Note:
    start: int  # ticks
    duration: int  # ticks, > 0
    pitch: int
    velocity: int


@dataclass(frozen=True)
class PartNotes:
    name: str
    program: int  # 0..127, -1 for drums
    notes: tuple[Note, ...] = field(default_factory=tuple)

    @property
    def is_drum(self) -> bool:
        return self.program == -1


@dataclass(frozen=True)
class Conductor:
    """Tempo and meter events, in absolute ticks: ``tempos`` (tick, bpm), ``meters`` (tick, Meter)."""

    tempos: tuple[tuple[int, float], ...]
    meters: tuple[tuple[int, Meter], ...]


def _channels(parts: Sequence[PartNotes]) -> list[int]:
    melodic = [c for c in range(16) if c != DRUM_CHANNEL]
    out: list[int] = []
    next_index = 0
    for part in parts:
        if part.is_drum:
            out.append(DRUM_CHANNEL)
        else:
            out.append(melodic[next_index % len(melodic)])
            next_index += 1
    return out


def _to_delta(events: list[tuple[int, int, mido.Message | mido.MetaMessage]]) -> list[mido.Message]:
    events.sort(key=lambda e: (e[0], e[1]))
    track: list[mido.Message] = []
    now = 0
    for tick, _order, msg in events:
        track.append(msg.copy(time=tick - now))
        now = tick
    return track


def build_midi(
    ticks_per_quarter: int, conductor: Conductor, parts: Sequence[PartNotes], end_tick: int
) -> mido.MidiFile:
    """A type-1 file: conductor track then one track per part; every track ends at exactly ``end_tick``."""
    mid = mido.MidiFile(type=1, ticks_per_beat=ticks_per_quarter)
    meta: list[tuple[int, int, mido.Message | mido.MetaMessage]] = []
    for tick, bpm in conductor.tempos:
        meta.append((tick, 0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))))
    for tick, meter in conductor.meters:
        meta.append(
            (
                tick,
                0,
                mido.MetaMessage("time_signature", numerator=meter.numerator, denominator=meter.denominator),
            )
        )
    conductor_track = mido.MidiTrack(_to_delta(meta))
    conductor_track.append(mido.MetaMessage("end_of_track", time=end_tick - sum(m.time for m in conductor_track)))
    mid.tracks.append(conductor_track)
    for part, channel in zip(parts, _channels(parts), strict=True):
        events: list[tuple[int, int, mido.Message | mido.MetaMessage]] = [
            (0, 0, mido.MetaMessage("track_name", name=part.name)),
        ]
        if not part.is_drum:
            events.append((0, 1, mido.Message("program_change", channel=channel, program=part.program)))
        for note in part.notes:
            off = min(note.start + note.duration, end_tick)
            if note.start >= end_tick or off <= note.start:
                continue
            velocity = max(1, min(127, note.velocity))
            # note-offs before note-ons at the same tick, so repeated notes retrigger
            events.append((note.start, 3, mido.Message("note_on", channel=channel, note=note.pitch, velocity=velocity)))
            events.append((off, 2, mido.Message("note_off", channel=channel, note=note.pitch, velocity=0)))
        track = mido.MidiTrack(_to_delta(events))
        used = sum(m.time for m in track)
        track.append(mido.MetaMessage("end_of_track", time=end_tick - used))
        mid.tracks.append(track)
    return mid


def save_midi(mid: mido.MidiFile, path: Path) -> None:
    """Write ``mid`` to ``path`` atomically; never overwrites an existing file."""
    if path.exists():
        raise EngineError(f"{path} already exists; Segue never overwrites files")
    buffer = io.BytesIO()
    mid.save(file=buffer)
    write_bytes(path, buffer.getbuffer(), overwrite=False)

"""MIDI files in and out: the one module of the engine that uses mido (an import-linter contract checks it).

Writing: :func:`build_midi` makes a type-1 file with a conductor track and one track per :class:`PartNotes` (its own
channel, drums on channel 10, a track name and a program change, so every DAW shows one track per part), every
track ending exactly at the given tick; :func:`save_midi` writes it atomically, never over an existing file.
Reading: :func:`read_midi_file` and :func:`parse_midi_bytes` give a :class:`MidiFile` or a
:class:`~engine.errors.BadInputError` that names the file; :func:`end_of_track_tick` reads the clip end DAWs store.
The mido types the callers walk (:class:`MidiFile`, :class:`MidiTrack`, :class:`Message`, :class:`MetaMessage`)
are re-exported from here.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import mido
from mido import Message, MetaMessage, MidiFile, MidiTrack

from engine.api import Meter
from engine.atomic import write_bytes
from engine.errors import BadInputError, EngineError

__all__ = [
    "DRUM_CHANNEL",
    "Conductor",
    "Message",
    "MetaMessage",
    "MidiFile",
    "MidiTrack",
    "Note",
    "PartNotes",
    "build_midi",
    "end_of_track_tick",
    "midi_bytes",
    "parse_midi_bytes",
    "read_midi_file",
    "save_midi",
    "tempo_to_bpm",
]

END_OF_TRACK_READ_LIMIT = 4 * 1024 * 1024  # end_of_track_tick reads files up to this size (bytes)
_READ_ERRORS = (OSError, EOFError, ValueError, KeyError, IndexError)  # what mido raises on a broken file

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


def _to_delta(events: list[tuple[int, int, Message | MetaMessage]]) -> list[Message]:
    events.sort(key=lambda e: (e[0], e[1]))
    track: list[Message] = []
    now = 0
    for tick, _order, msg in events:
        track.append(msg.copy(time=tick - now))
        now = tick
    return track


def build_midi(ticks_per_quarter: int, conductor: Conductor, parts: Sequence[PartNotes], end_tick: int) -> MidiFile:
    """A type-1 file: conductor track then one track per part; every track ends at exactly ``end_tick``."""
    mid = MidiFile(type=1, ticks_per_beat=ticks_per_quarter)
    meta: list[tuple[int, int, Message | MetaMessage]] = []
    for tick, bpm in conductor.tempos:
        meta.append((tick, 0, MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))))
    for tick, meter in conductor.meters:
        meta.append(
            (
                tick,
                0,
                MetaMessage("time_signature", numerator=meter.numerator, denominator=meter.denominator),
            )
        )
    conductor_track = MidiTrack(_to_delta(meta))
    conductor_track.append(MetaMessage("end_of_track", time=end_tick - sum(m.time for m in conductor_track)))
    mid.tracks.append(conductor_track)
    for part, channel in zip(parts, _channels(parts), strict=True):
        events: list[tuple[int, int, Message | MetaMessage]] = [
            (0, 0, MetaMessage("track_name", name=part.name)),
        ]
        if not part.is_drum:
            events.append((0, 1, Message("program_change", channel=channel, program=part.program)))
        for note in part.notes:
            off = min(note.start + note.duration, end_tick)
            if note.start >= end_tick or off <= note.start:
                continue
            velocity = max(1, min(127, note.velocity))
            # note-offs before note-ons at the same tick, so repeated notes retrigger
            events.append((note.start, 3, Message("note_on", channel=channel, note=note.pitch, velocity=velocity)))
            events.append((off, 2, Message("note_off", channel=channel, note=note.pitch, velocity=0)))
        track = MidiTrack(_to_delta(events))
        used = sum(m.time for m in track)
        track.append(MetaMessage("end_of_track", time=end_tick - used))
        mid.tracks.append(track)
    return mid


def save_midi(mid: MidiFile, path: Path) -> None:
    """Write ``mid`` to ``path`` atomically; never overwrites an existing file."""
    if path.exists():
        raise EngineError(f"{path} already exists; Segue never overwrites files")
    write_bytes(path, midi_bytes(mid), overwrite=False)


def midi_bytes(mid: MidiFile) -> bytes:
    """``mid`` encoded as a Standard MIDI File."""
    buffer = io.BytesIO()
    mid.save(file=buffer)
    return buffer.getvalue()


def read_midi_file(path: Path, clip: bool = False) -> MidiFile:
    """Parse the MIDI file at ``path`` (``clip``: data bytes above 127 are clipped, as some DAWs write them)."""
    try:
        return MidiFile(str(path), clip=clip)
    except _READ_ERRORS as e:
        raise BadInputError(f"{path} is not a readable MIDI file ({e})") from e


def parse_midi_bytes(data: bytes, name: str = "the MIDI file") -> MidiFile:
    """Parse a Standard MIDI File held in memory; ``name`` says which file in the error."""
    try:
        return MidiFile(file=io.BytesIO(data))
    except _READ_ERRORS as e:
        raise BadInputError(f"{name} is not a readable MIDI file ({e})") from e


def end_of_track_tick(path: Path) -> int:
    """The latest end-of-track marker of the file's tracks (DAWs set it to the clip's end); 0 when unknown or the
    file is over :data:`END_OF_TRACK_READ_LIMIT` bytes."""
    if path.stat().st_size > END_OF_TRACK_READ_LIMIT:
        return 0
    try:
        mid = read_midi_file(path, clip=True)
    except BadInputError:
        return 0
    return max((sum(msg.time for msg in track) for track in mid.tracks), default=0)


def tempo_to_bpm(tempo: int) -> float:
    """A ``set_tempo`` event's microseconds per quarter note as beats per minute."""
    return float(mido.tempo2bpm(tempo))

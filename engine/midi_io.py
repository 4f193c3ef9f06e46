"""MIDI files in and out for the engine, on its own Standard MIDI File code (:mod:`engine.smf`; no mido).

Writing: :func:`build_midi` makes a type-1 file with a conductor track and one track per :class:`PartNotes` (its own
channel, drums on channel 10, a track name and a program change, so every DAW shows one track per part), every
track ending exactly at the given tick; :func:`save_midi` writes it atomically, never over an existing file.
Reading: :func:`read_midi_file` and :func:`parse_midi_bytes` give a :class:`MidiFile` or a
:class:`~engine.errors.BadInputError` that names the file; :func:`end_of_track_tick` reads the clip end DAWs store.
The file types the callers walk (:class:`MidiFile`, its tracks of :class:`Event`) are :mod:`engine.smf`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine import smf
from engine.api import Meter
from engine.atomic import write_bytes
from engine.errors import BadInputError, EngineError
from engine.smf import Event, MidiFile, tempo_to_bpm

__all__ = [
    "DRUM_CHANNEL",
    "Conductor",
    "Event",
    "MidiFile",
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


def _to_delta(events: list[tuple[int, int, Event]], end_tick: int) -> tuple[Event, ...]:
    """Events at absolute ticks, sorted by (tick, order), with delta times; an end of track at ``end_tick``."""
    events.sort(key=lambda e: (e[0], e[1]))
    track: list[Event] = []
    now = 0
    for tick, _order, event in events:
        track.append(event.with_time(tick - now))
        now = tick
    track.append(smf.end_of_track(end_tick - now))
    return tuple(track)


def build_midi(ticks_per_quarter: int, conductor: Conductor, parts: Sequence[PartNotes], end_tick: int) -> MidiFile:
    """A type-1 file: conductor track then one track per part; every track ends at exactly ``end_tick``."""
    meta: list[tuple[int, int, Event]] = []
    for tick, bpm in conductor.tempos:
        meta.append((tick, 0, smf.tempo_event(smf.bpm_to_tempo(bpm))))
    for tick, meter in conductor.meters:
        meta.append((tick, 0, smf.time_signature_event(meter.numerator, meter.denominator)))
    tracks = [_to_delta(meta, end_tick)]
    for part, channel in zip(parts, _channels(parts), strict=True):
        events: list[tuple[int, int, Event]] = [(0, 0, smf.text_event(smf.TRACK_NAME, part.name))]
        if not part.is_drum:
            events.append((0, 1, smf.program_change(channel, part.program)))
        for note in part.notes:
            off = min(note.start + note.duration, end_tick)
            if note.start >= end_tick or off <= note.start:
                continue
            velocity = max(1, min(127, note.velocity))
            # note-offs before note-ons at the same tick, so repeated notes retrigger
            events.append((note.start, 3, smf.note_on(channel, note.pitch, velocity)))
            events.append((off, 2, smf.note_off(channel, note.pitch, 0)))
        tracks.append(_to_delta(events, end_tick))
    return MidiFile(1, ticks_per_quarter, tuple(tracks))


def save_midi(mid: MidiFile, path: Path) -> None:
    """Write ``mid`` to ``path`` atomically; never overwrites an existing file."""
    if path.exists():
        raise EngineError(f"{path} already exists; Segue never overwrites files")
    write_bytes(path, midi_bytes(mid), overwrite=False)


def midi_bytes(mid: MidiFile) -> bytes:
    """``mid`` encoded as a Standard MIDI File."""
    return smf.encode(mid)


def read_midi_file(path: Path, clip: bool = False) -> MidiFile:
    """Parse the MIDI file at ``path`` (``clip``: data bytes above 127 are clipped, as some DAWs write them)."""
    return smf.read_file(path, clip=clip)


def parse_midi_bytes(data: bytes, name: str = "the MIDI file") -> MidiFile:
    """Parse a Standard MIDI File held in memory; ``name`` says which file in the error."""
    return smf.parse(data, name)


def end_of_track_tick(path: Path) -> int:
    """The latest end-of-track marker of the file's tracks (DAWs set it to the clip's end); 0 when unknown or the
    file is over :data:`END_OF_TRACK_READ_LIMIT` bytes."""
    if path.stat().st_size > END_OF_TRACK_READ_LIMIT:
        return 0
    try:
        mid = smf.read_file(path, clip=True, limit=END_OF_TRACK_READ_LIMIT)
    except BadInputError:
        return 0
    return max((sum(event.time for event in track) for track in mid.tracks), default=0)

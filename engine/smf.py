"""Standard MIDI Files (SMF 1.0) read and written by our own code: the engine needs no MIDI library for files.

The format, in short. A file is a series of chunks, each an 8-byte head (four ASCII letters, a 32-bit big-endian
length) and that many bytes. The first is the header ``MThd``: format (0: one track, 1: tracks played together,
2: independent patterns), the number of track chunks, and the division: ticks per quarter note, or, with its top
bit set, SMPTE frames and ticks per frame (Segue works in beats and refuses those). ``MTrk`` chunks hold the
tracks; chunks of other kinds are skipped, as the specification asks. A track is a series of events, each after
a delta time in ticks, written as a variable-length quantity (7 bits a byte, most significant first, the top bit
set on every byte but the last; at most 4 bytes). Events are channel messages (a status byte 0x80-0xEF, its kind
in the top and its channel in the low four bits, then one or two data bytes below 0x80; "running status": a data
byte where a status byte is expected repeats the last channel status), sysex events (``F0`` or ``F7``, a length,
the bytes) and meta events (``FF``, a type, a length, the bytes: tempo 0x51, time signature 0x58, track name 0x03,
end of track 0x2F ...).

Reading (:func:`parse`, :func:`read_file`) trusts no declared length: each one is checked against the bytes that
are there before anything is sliced, so a broken file is a :class:`~engine.errors.BadInputError` that names it and
says what is wrong, never a hang or a huge allocation; :func:`read_file` opens only regular files of a bounded size
(a FIFO or a device is refused without waiting on it). Like common readers it keeps running status across meta
events (some writers rely on it); sysex events cancel it. Writing (:func:`encode`) uses running status, drops
end-of-track events inside a track (their delta time passes to the next event) and ends every track with one.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from engine.errors import BadInputError

__all__ = [
    "Event",
    "MidiFile",
    "bpm_to_tempo",
    "encode",
    "encode_vlq",
    "end_of_track",
    "meta_event",
    "note_off",
    "note_on",
    "parse",
    "program_change",
    "read_file",
    "tempo_event",
    "tempo_to_bpm",
    "text_event",
    "time_signature_event",
]

MAX_FILE_BYTES = 64 * 1024 * 1024  # read_file refuses larger files (a DAW region is a few kB)
MAX_VLQ = 0x0FFFFFFF  # the largest variable-length quantity (4 bytes)
WHAT_TO_DO = "export it again from the DAW as a Standard MIDI File (.mid)"

NOTE_OFF, NOTE_ON, POLYTOUCH, CONTROL_CHANGE, PROGRAM_CHANGE, AFTERTOUCH, PITCHWHEEL = range(0x80, 0xF0, 0x10)
SYSEX, ESCAPE, META = 0xF0, 0xF7, 0xFF
# meta event types
TEXT, COPYRIGHT, TRACK_NAME, END_OF_TRACK, SET_TEMPO, TIME_SIGNATURE, SEQUENCER_SPECIFIC = (
    0x01,
    0x02,
    0x03,
    0x2F,
    0x51,
    0x58,
    0x7F,
)

_CHANNEL_KINDS = {  # kind -> (name, data bytes); the names are the ones mido and most tools use
    NOTE_OFF: ("note_off", 2),
    NOTE_ON: ("note_on", 2),
    POLYTOUCH: ("polytouch", 2),
    CONTROL_CHANGE: ("control_change", 2),
    PROGRAM_CHANGE: ("program_change", 1),
    AFTERTOUCH: ("aftertouch", 1),
    PITCHWHEEL: ("pitchwheel", 2),
}
_META_NAMES = {
    0x00: "sequence_number",
    TEXT: "text",
    COPYRIGHT: "copyright",
    TRACK_NAME: "track_name",
    0x04: "instrument_name",
    0x05: "lyrics",
    0x06: "marker",
    0x07: "cue_marker",
    0x09: "device_name",
    0x20: "channel_prefix",
    0x21: "midi_port",
    END_OF_TRACK: "end_of_track",
    SET_TEMPO: "set_tempo",
    0x54: "smpte_offset",
    TIME_SIGNATURE: "time_signature",
    0x59: "key_signature",
    SEQUENCER_SPECIFIC: "sequencer_specific",
}
_META_LENGTHS = {SET_TEMPO: 3, TIME_SIGNATURE: 4}  # fixed by the specification; checked on reading


@dataclass(frozen=True, slots=True)
class Event:
    """One event of a track, ``time`` ticks after the event before it (its delta time).

    ``status``: 0x80-0xEF a channel message (kind and channel), 0xF0 or 0xF7 a sysex event, 0xFF a meta event.
    ``data``: a channel message's data bytes; a sysex event's bytes after its length, as stored (the closing F7
    included); a meta event's payload. ``meta``: a meta event's type byte, -1 for other events. The properties
    read the fields of the kinds that have them (``note`` of a note event, ``tempo`` of a tempo event ...).
    """

    time: int
    status: int
    data: bytes = b""
    meta: int = -1

    def __post_init__(self) -> None:
        if not isinstance(self.time, int) or not 0 <= self.time <= MAX_VLQ:
            raise ValueError(f"an event's delta time must be a whole number of ticks in 0..{MAX_VLQ}: {self.time!r}")
        if self.is_channel:
            size = _CHANNEL_KINDS[self.status & 0xF0][1]
            if len(self.data) != size or any(b > 0x7F for b in self.data):
                raise ValueError(f"a {self.type} message takes {size} data bytes in 0..127, not {self.data!r}")
        elif self.status == META:
            if not 0 <= self.meta <= 0xFF:
                raise ValueError(f"a meta event's type is a byte, not {self.meta!r}")
        elif self.status not in (SYSEX, ESCAPE):
            raise ValueError(f"0x{self.status:02X} is not the status of an event a MIDI file may hold")
        if len(self.data) > MAX_VLQ:
            raise ValueError(f"an event holds at most {MAX_VLQ} bytes")

    @property
    def is_meta(self) -> bool:
        return self.status == META

    @property
    def is_channel(self) -> bool:
        return 0x80 <= self.status < 0xF0

    @property
    def type(self) -> str:
        """The kind by name: note_on, note_off, program_change ..., set_tempo, time_signature, track_name,
        end_of_track ... (``unknown_meta`` for a meta type without a name), sysex, sysex_escape (``F7``)."""
        if self.is_channel:
            return _CHANNEL_KINDS[self.status & 0xF0][0]
        if self.status == META:
            return _META_NAMES.get(self.meta, "unknown_meta")
        return "sysex" if self.status == SYSEX else "sysex_escape"

    def with_time(self, time: int) -> Event:
        return replace(self, time=time)

    def _field(self, kinds: tuple[int, ...], index: int) -> int:
        if not self.is_channel or self.status & 0xF0 not in kinds:
            raise ValueError(f"a {self.type} event has no such field")
        return self.data[index]

    @property
    def channel(self) -> int:
        """A channel message's channel, 0..15 (channel 10 of the DAWs is 9)."""
        if not self.is_channel:
            raise ValueError(f"a {self.type} event has no channel")
        return self.status & 0x0F

    @property
    def note(self) -> int:
        return self._field((NOTE_OFF, NOTE_ON, POLYTOUCH), 0)

    @property
    def velocity(self) -> int:
        return self._field((NOTE_OFF, NOTE_ON), 1)

    @property
    def program(self) -> int:
        return self._field((PROGRAM_CHANGE,), 0)

    def _meta_payload(self, kind: int) -> bytes:
        if self.status != META or self.meta != kind:
            raise ValueError(f"a {self.type} event is not a {_META_NAMES[kind]} event")
        return self.data

    @property
    def tempo(self) -> int:
        """A tempo event's microseconds per quarter note."""
        return int.from_bytes(self._meta_payload(SET_TEMPO)[:3], "big")

    @property
    def numerator(self) -> int:
        return self._meta_payload(TIME_SIGNATURE)[0]

    @property
    def denominator(self) -> int:
        return int(2 ** self._meta_payload(TIME_SIGNATURE)[1])

    @property
    def text(self) -> str:
        """A meta event's payload as text (Latin-1, so every byte is a character): text, copyright, track name ..."""
        if self.status != META:
            raise ValueError(f"a {self.type} event holds no text")
        return self.data.decode("latin-1")


@dataclass(frozen=True)
class MidiFile:
    """A Standard MIDI File: its format (0, 1 or 2), ticks per quarter note, and its tracks of :class:`Event`."""

    format: int
    ticks_per_quarter: int
    tracks: tuple[tuple[Event, ...], ...]

    def __post_init__(self) -> None:
        if self.format not in (0, 1, 2):
            raise ValueError(f"a MIDI file's format is 0, 1 or 2, not {self.format!r}")
        if not isinstance(self.ticks_per_quarter, int) or not 1 <= self.ticks_per_quarter <= 0x7FFF:
            raise ValueError(f"ticks per quarter note must be in 1..32767, not {self.ticks_per_quarter!r}")
        if len(self.tracks) > 0xFFFF:
            raise ValueError("a MIDI file holds at most 65535 tracks")


# --- making events ------------------------------------------------------------------------------------------------


def _channel_message(kind: int, channel: int, data: Sequence[int], time: int) -> Event:
    if not isinstance(channel, int) or not 0 <= channel <= 15:
        raise ValueError(f"a MIDI channel is 0..15, not {channel!r}")
    if any(not isinstance(b, int) or not 0 <= b <= 0x7F for b in data):
        raise ValueError(f"{_CHANNEL_KINDS[kind][0]} values must be in 0..127, not {tuple(data)!r}")
    return Event(time, kind | channel, bytes(data))


def note_on(channel: int, note: int, velocity: int, time: int = 0) -> Event:
    return _channel_message(NOTE_ON, channel, (note, velocity), time)


def note_off(channel: int, note: int, velocity: int = 0, time: int = 0) -> Event:
    return _channel_message(NOTE_OFF, channel, (note, velocity), time)


def program_change(channel: int, program: int, time: int = 0) -> Event:
    return _channel_message(PROGRAM_CHANGE, channel, (program,), time)


def meta_event(kind: int, payload: bytes, time: int = 0) -> Event:
    return Event(time, META, bytes(payload), kind)


def text_event(kind: int, text: str, time: int = 0) -> Event:
    """A text-like meta event (text, copyright, track name ...) in Latin-1; other characters become ``?``."""
    return meta_event(kind, text.encode("latin-1", errors="replace"), time)


def tempo_event(tempo: int, time: int = 0) -> Event:
    """A tempo event: ``tempo`` microseconds per quarter note (3 bytes)."""
    if not isinstance(tempo, int) or not 0 <= tempo <= 0xFFFFFF:
        raise ValueError(f"a tempo is 0..16777215 microseconds per quarter note, not {tempo!r}")
    return meta_event(SET_TEMPO, tempo.to_bytes(3, "big"), time)


def time_signature_event(numerator: int, denominator: int, time: int = 0) -> Event:
    """A time signature event; the metronome fields are the usual 24 clocks a click, 8 32nd notes a quarter."""
    power = denominator.bit_length() - 1
    if not 0 <= numerator <= 0xFF or denominator < 1 or denominator != 1 << power or power > 0xFF:
        raise ValueError(f"{numerator}/{denominator} is not a time signature a MIDI file can hold")
    return meta_event(TIME_SIGNATURE, bytes((numerator, power, 24, 8)), time)


def end_of_track(time: int = 0) -> Event:
    return meta_event(END_OF_TRACK, b"", time)


def bpm_to_tempo(bpm: float) -> int:
    """Beats (quarter notes) per minute as microseconds per quarter note, rounded to the nearest."""
    return int(round(60_000_000 / bpm))


def tempo_to_bpm(tempo: int) -> float:
    """Microseconds per quarter note as beats (quarter notes) per minute."""
    return 60_000_000 / tempo


# --- writing -----------------------------------------------------------------------------------------------------


def encode_vlq(value: int) -> bytes:
    """A variable-length quantity: 7 bits a byte, most significant first, the top bit set on all but the last."""
    if not 0 <= value <= MAX_VLQ:
        raise ValueError(f"a variable-length quantity is 0..{MAX_VLQ}, not {value}")
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _track_bytes(track: Sequence[Event]) -> bytes:
    body = bytearray()
    running = -1
    carry = 0  # the delta time of dropped end-of-track events passes to the next event
    for event in track:
        if event.status == META and event.meta == END_OF_TRACK:
            carry += event.time
            continue
        body += encode_vlq(event.time + carry)
        carry = 0
        if event.is_channel:
            if event.status != running:
                body.append(event.status)
            running = event.status
            body += event.data
        else:
            body.append(event.status)
            if event.status == META:
                body.append(event.meta)
            body += encode_vlq(len(event.data))
            body += event.data
            running = -1
    body += encode_vlq(carry) + bytes((META, END_OF_TRACK, 0))
    return bytes(body)


def encode(midi: MidiFile) -> bytes:
    """``midi`` as the bytes of a Standard MIDI File."""
    out = bytearray(b"MThd" + (6).to_bytes(4, "big"))
    for value in (midi.format, len(midi.tracks), midi.ticks_per_quarter):
        out += value.to_bytes(2, "big")
    for track in midi.tracks:
        body = _track_bytes(track)
        out += b"MTrk" + len(body).to_bytes(4, "big") + body
    return bytes(out)


# --- reading -----------------------------------------------------------------------------------------------------


class _Broken(Exception):
    """What is wrong with the bytes; :func:`parse` turns it into a BadInputError that names the file."""


class _Reader:
    def __init__(self, data: bytes, clip: bool) -> None:
        self.data = data
        self.clip = clip

    def file(self) -> MidiFile:
        data = self.data
        if not data:
            raise _Broken("the file is empty")
        if data[:4] != b"MThd":
            raise _Broken(f"it starts with {data[:4]!r}, not MThd as a Standard MIDI File does")
        if len(data) < 14:
            raise _Broken(f"its header is cut short ({len(data)} bytes; a header takes 14)")
        length = int.from_bytes(data[4:8], "big")
        if length < 6 or 8 + length > len(data):
            raise _Broken(f"its header chunk declares {length} bytes, which is not 6 or more within the file")
        fmt, count, division = (int.from_bytes(data[i : i + 2], "big") for i in (8, 10, 12))
        if fmt > 2:
            raise _Broken(f"it declares format {fmt}; Standard MIDI Files are format 0, 1 or 2")
        if division & 0x8000:
            raise _Broken("its time base is SMPTE frames; Segue reads files timed in ticks per quarter note")
        if division == 0:
            raise _Broken("it declares 0 ticks per quarter note")
        tracks: list[tuple[Event, ...]] = []
        pos = 8 + length
        while len(tracks) < count:
            if pos >= len(data):
                raise _Broken(f"it declares {count} tracks but holds {len(tracks)} (the file is cut short?)")
            if len(data) - pos < 8:
                raise _Broken(f"it ends inside a chunk head at byte {pos}")
            kind = data[pos : pos + 4]
            size = int.from_bytes(data[pos + 4 : pos + 8], "big")
            body = pos + 8
            if size > len(data) - body:
                raise _Broken(
                    f"its chunk {kind.decode('latin-1')!r} at byte {pos} declares {size} bytes but the file ends"
                    f" {len(data) - body} bytes later"
                )
            if kind == b"MTrk":
                tracks.append(self.track(body, body + size, len(tracks) + 1))
            pos = body + size  # other chunks are skipped
        return MidiFile(fmt, division, tuple(tracks))

    def vlq(self, pos: int, end: int, number: int) -> tuple[int, int]:
        data = self.data
        value = 0
        for i in range(pos, min(pos + 4, end)):
            byte = data[i]
            value = (value << 7) | (byte & 0x7F)
            if byte < 0x80:
                return value, i + 1
        if end - pos < 4:
            raise _Broken(f"track {number} ends inside a variable-length number at byte {pos}")
        raise _Broken(f"track {number} holds a variable-length number longer than 4 bytes at byte {pos}")

    def sized(self, pos: int, end: int, number: int, what: str) -> tuple[bytes, int]:
        """The bytes of a sysex or meta event after their length, and the position after them."""
        size, pos = self.vlq(pos, end, number)
        if size > end - pos:
            raise _Broken(f"a {what} in track {number} at byte {pos} declares {size} bytes, past the track's end")
        return self.data[pos : pos + size], pos + size

    def track(self, pos: int, end: int, number: int) -> tuple[Event, ...]:
        data = self.data
        events: list[Event] = []
        running = -1
        while pos < end:
            time, pos = self.vlq(pos, end, number)
            if pos >= end:
                raise _Broken(f"track {number} ends after a delta time, without its event")
            status = data[pos]
            if status >= 0x80:
                pos += 1
            elif running < 0:
                raise _Broken(f"track {number} has a data byte where a status byte belongs, at byte {pos}")
            else:
                status = running  # running status: the data bytes follow
            if status == META:
                if pos >= end:
                    raise _Broken(f"track {number} ends inside a meta event")
                kind = data[pos]
                payload, pos = self.sized(pos + 1, end, number, "meta event")
                if kind in _META_LENGTHS and len(payload) != _META_LENGTHS[kind]:
                    raise _Broken(
                        f"a {_META_NAMES[kind]} event in track {number} holds {len(payload)} bytes, not"
                        f" {_META_LENGTHS[kind]}"
                    )
                events.append(Event(time, META, payload, kind))
            elif status in (SYSEX, ESCAPE):
                payload, pos = self.sized(pos, end, number, "sysex event")
                events.append(Event(time, status, payload))
                running = -1
            elif status > 0xF0:
                raise _Broken(f"track {number} holds status byte 0x{status:02X}, which a MIDI file may not hold")
            else:
                size = _CHANNEL_KINDS[status & 0xF0][1]
                if size > end - pos:
                    raise _Broken(f"track {number} ends inside a channel message")
                raw = data[pos : pos + size]
                if any(b > 0x7F for b in raw):
                    if not self.clip:
                        raise _Broken(f"track {number} has a data byte above 127 at byte {pos}")
                    raw = bytes(min(b, 0x7F) for b in raw)
                events.append(Event(time, status, raw))
                running = status
                pos += size
        return tuple(events)


def parse(data: bytes, name: str = "the MIDI file", clip: bool = False) -> MidiFile:
    """Read a Standard MIDI File held in memory; ``name`` says which file in the error. ``clip``: data bytes above
    127 become 127 (some DAWs write them) instead of refusing the file."""
    try:
        return _Reader(bytes(data), clip).file()
    except _Broken as e:
        raise BadInputError(f"{name} is not a readable MIDI file ({e}); {WHAT_TO_DO}") from None


def read_file(path: Path, clip: bool = False, limit: int = MAX_FILE_BYTES) -> MidiFile:
    """Read the MIDI file at ``path``: a regular file of at most ``limit`` bytes (a FIFO or a device is refused
    without waiting on it)."""
    return parse(read_regular_file(path, limit), str(path), clip)


def read_regular_file(path: Path, limit: int) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes, else a BadInputError."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)  # non-blocking: opening a FIFO with no writer does not wait
    except OSError as e:
        raise BadInputError(f"{path} is not a readable MIDI file ({e.strerror}); give the path of a .mid file") from e
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise BadInputError(
            f"{path} is not a readable MIDI file (it is not a regular file but a folder, a pipe or a device);"
            " give the path of a .mid file"
        )
    with os.fdopen(fd, "rb") as file:
        data = file.read(limit + 1)
    if len(data) > limit:
        raise BadInputError(
            f"{path} is not a readable MIDI file (it is larger than {limit} bytes); export just the region to a"
            " .mid file"
        )
    return data

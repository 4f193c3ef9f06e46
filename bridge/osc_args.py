"""What each OSC message to Segue must carry: the table's row (:class:`Route`), the check of its arguments
(:func:`check_arguments`: types, count, key/value pairs), and the checks of the values that name files and regions
(:func:`daw_region`), parts (:func:`parse_parts`) and of a datagram's type tags before python-osc decodes it
(:func:`precheck`). Every bound is :mod:`engine.api`'s; each error says which argument is wrong and how."""

from __future__ import annotations

import logging
import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.events import DawRegion
from bridge.inputs import ACCEPTED_FORMATS, sniff_format
from engine.api import (
    MAX_AUDIO_FILE_BYTES,
    MAX_MIDI_FILE_BYTES,
    Meter,
    Prompt,
)
from engine.errors import BadInputError

log = logging.getLogger(__name__)

MAX_STRING_CHARS = 4096
_KNOWN_TYPE_TAGS = frozenset("ihfdsbrmtTFN[]")
_MAX_BUNDLE_DEPTH = 8
_SHOWN_CHARS = 80
Sender = tuple[str, int]
Handler = Callable[[Sender, list[Any]], None]


@dataclass(frozen=True)
class Route:
    """One address of the table: argument types (``"ssfffiis"``), their names for messages, the handler."""

    types: str
    names: tuple[str, ...]
    handler: Handler
    optional: int = 0  # how many of the last arguments may be left out (the handler gets fewer values)
    # then any number of ``s:key value`` pairs, after every typed argument (optional ones included); the handler
    # gets them as one more value, a list of (key, value), when there are any
    pairs: bool = False

    @property
    def signature(self) -> str:
        shown = [f"{t}:{n}" for t, n in zip(self.types, self.names, strict=True)]
        if self.optional:
            shown[-self.optional :] = [f"[{text}]" for text in shown[-self.optional :]]
        if self.pairs:
            shown.append("[s:key value ...]")
        return " ".join(shown) or "no arguments"


def check_arguments(address: str, route: Route, args: Sequence[Any]) -> list[Any]:
    """The arguments as Python values of the route's types; :class:`BadInputError` naming the first problem.
    A route with optional trailing arguments takes any count from the required ones to all of them."""
    most = len(route.types)
    least = most - route.optional
    pairs = key_value_pairs(address, route, args[most:]) if route.pairs and len(args) > most else None
    if pairs is not None:
        args = args[:most]
    if not least <= len(args) <= most:
        expected = f"{least} to {most}" if route.optional else str(most)
        raise BadInputError(f"{address} expects {expected} argument(s) ({route.signature}), got {len(args)}")
    values: list[Any] = []
    given = zip(route.types[: len(args)], route.names[: len(args)], args, strict=True)
    for position, (kind, name, value) in enumerate(given, start=1):
        where = f"{address}: argument {position} ({kind}:{name})"
        if kind == "s":
            if not isinstance(value, str):
                raise BadInputError(f"{where} must be a string, got {osc_type(value)}")
            if len(value) > MAX_STRING_CHARS:
                raise BadInputError(f"{where} is {len(value)} characters long; the limit is {MAX_STRING_CHARS}")
            values.append(value)
        elif kind == "f":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise BadInputError(f"{where} must be a number, got {osc_type(value)}")
            if not math.isfinite(value):
                raise BadInputError(f"{where} must be a finite number, got {value}")
            values.append(float(value))
        elif kind == "i":
            if isinstance(value, float) and math.isfinite(value) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                raise BadInputError(f"{where} must be a whole number, got {osc_type(value)} {short(repr(value))}")
            values.append(value)
        else:  # a programming error in the table, not bad input
            raise ValueError(f"unknown type {kind!r} in the route of {address}")
    return values if pairs is None else [*values, pairs]


def key_value_pairs(address: str, route: Route, rest: Sequence[Any]) -> list[tuple[str, Any]]:
    """The ``s:key value`` pairs after a route's typed arguments (values are checked by whoever reads them)."""
    most = len(route.types)
    if len(rest) % 2:
        raise BadInputError(
            f"{address} expects {most - route.optional} to {most} argument(s) ({route.signature}), then key/value "
            f"pairs after all {most} of them; got {most + len(rest)}, so the last key has no value"
        )
    pairs = []
    for index in range(0, len(rest), 2):
        key = rest[index]
        if not isinstance(key, str) or not key or len(key) > MAX_STRING_CHARS:
            raise BadInputError(
                f"{address}: argument {most + index + 1} must be a key (a string such as 'similarity'), got "
                f"{osc_type(key)} {short(repr(key))}; key/value pairs go after all {most} typed arguments "
                f"({route.signature})"
            )
        pairs.append((key, rest[index + 1]))
    return pairs


def parse_parts(text: str, mode: str) -> tuple[str, ...]:
    """``s:parts`` of ``/segue/generate``: ``"bass,piano"``, or ``""`` for the model's default set."""
    if not text.strip():
        return ()
    if mode != "accompany":
        raise BadInputError(f"/segue/generate: parts are only for mode 'accompany', got {short(text)!r} with {mode!r}")
    names = tuple(name.strip().lower() for name in text.split(","))
    if any(not name for name in names):
        raise BadInputError(f"/segue/generate: parts are names separated by commas (bass,piano), got {short(text)!r}")
    return names


def daw_region(address: str, values: list[Any], pairs: Sequence[tuple[str, Any]]) -> DawRegion:
    """The region of ``/segue/region`` (``values``: its 8 arguments) or of ``/segue/region/stems`` (the same, and
    the (name, path) ``pairs`` of its stems). Every bound is engine.api.Prompt's (checked here, before any file is
    read): the stems' names, their count (at most engine.api.MAX_STEMS), the tempo, meter and positions. Then
    every file must exist and be of its kind (:func:`region_file`). Sample rates, lengths and channel counts of
    the stems are the engine's to check when the job starts (the job fails naming each stem)."""
    audio, midi, start, length, tempo, num, den, track = values
    if den <= 0 or den & (den - 1):
        raise BadInputError(f"{address}: meter_den must be a power of two (1, 2, 4, 8, ...), got {den}")
    meter = Meter(num, den)  # checks the ranges, BadInputError names them
    if not audio and not midi and not pairs:
        raise BadInputError(f"{address}: give an audio path, a MIDI path, or both (both were empty)")
    for position, (name, path) in enumerate(pairs):
        if not isinstance(path, str):
            raise BadInputError(
                f"{address}: argument {9 + 2 * position + 1} (the path of stem {short(name)!r}) must be a string, "
                f"got {osc_type(path)}"
            )
        if not path:
            raise BadInputError(f"{address}: stem {short(name)!r} needs the path of its audio file, got ''")
    stems = tuple((name, Path(path)) for name, path in pairs)
    try:  # the engine's own bounds (engine.api.Prompt), checked now rather than when a job starts
        Prompt(Path(midi or audio or "stems"), None, tempo_bpm=tempo, meter=meter, length_beats=length,
               start_beats=start, stems=stems)  # fmt: skip
    except BadInputError as e:
        raise BadInputError(f"{address}: {e}") from e
    audio_path = region_file(audio, "audio", address) if audio else None
    midi_path = region_file(midi, "midi", address) if midi else None
    checked = tuple((name, region_file(str(path), "audio", address, f"stem {name}")) for name, path in stems)
    return DawRegion(audio_path, midi_path, start, length, tempo, meter, track, checked)


def region_file(text: str, role: str, address: str = "/segue/region", what: str = "") -> Path:
    """An existing regular file of the expected role (by content), absolute; :class:`BadInputError` otherwise.

    The path is taken as it is (no ``~``: that is the DAW's to expand). Whatever is wrong with it (missing, not a
    regular file, unreadable, not MIDI or audio, too large) gets the same answer, so that OSC cannot be used to
    learn which files exist; the reason is logged here. A FIFO or device is refused without being opened."""
    what = what or f"the {role} path"
    path = Path(text)
    if not path.is_absolute():
        raise BadInputError(f"{address}: {what} must be absolute, got {short(text)!r}")
    try:
        found = sniff_format(path)
    except BadInputError as e:
        log.info("%s: %s", address, short(str(e)))
        raise BadInputError(
            f"{address}: cannot read a region at {short(text)}: it does not exist or is not a MIDI/audio file "
            f"Segue reads (a Standard MIDI File up to {MAX_MIDI_FILE_BYTES // 2**20} MiB; WAV, FLAC or AIFF up to "
            f"{MAX_AUDIO_FILE_BYTES // 2**30} GiB)"
        ) from e
    if found != role:
        raise BadInputError(f"{address}: {path} is a {found} file, given as {what}; {ACCEPTED_FORMATS}")
    return path.resolve()


def precheck(data: bytes) -> str:
    """Why ``data`` is not worth parsing, or "". Rejects type tags python-osc does not know (it would log each)."""
    if not data.startswith((b"/", b"#bundle\0")):
        return "it starts with neither '/' nor '#bundle'"
    return check_tags(data, 0)


def check_tags(data: bytes, depth: int) -> str:
    if depth > _MAX_BUNDLE_DEPTH:
        return "bundles nested too deeply"
    if data.startswith(b"#bundle\0"):
        index = 16
        while index + 4 <= len(data):
            (size,) = struct.unpack(">i", data[index : index + 4])
            if size <= 0 or index + 4 + size > len(data):
                return "a bundle element has a bad size"
            problem = check_tags(data[index + 4 : index + 4 + size], depth + 1)
            if problem:
                return problem
            index += 4 + size
        return ""
    end = data.find(b"\0")
    tags_start = (end // 4 + 1) * 4 if end >= 0 else len(data)
    if tags_start >= len(data) or data[tags_start : tags_start + 1] != b",":
        return ""  # no type tag string (or python-osc reports the problem itself)
    tags_end = data.find(b"\0", tags_start)
    tags = data[tags_start + 1 : tags_end if tags_end >= 0 else len(data)]
    unknown = set(tags.decode("latin-1")) - _KNOWN_TYPE_TAGS
    return f"unknown type tags {''.join(sorted(unknown))[:10]!r}" if unknown else ""


def osc_type(value: Any) -> str:
    names = {bool: "a bool", int: "an int", float: "a float", str: "a string", bytes: "a blob", list: "an array"}
    return names.get(type(value), "nil" if value is None else type(value).__name__)


def short(text: str) -> str:
    return text if len(text) <= _SHOWN_CHARS else f"{text[:_SHOWN_CHARS]}... ({len(text)} characters)"

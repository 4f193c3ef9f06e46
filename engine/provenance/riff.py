"""RIFF/WAVE chunks and Broadcast Wave (BWF) ``bext``: read a file's chunks, copy it with a ``bext`` chunk, and
put chunks into a WAV held in memory (:func:`with_chunks`). Stdlib only: the bridge uses it for placement.

The ``bext`` chunk follows EBU Tech 3285 version 1 (602 fixed bytes, then the coding history)::

    Description          256  ASCII, NUL padded
    Originator            32  ASCII
    OriginatorReference   32  ASCII
    OriginationDate       10  "yyyy-mm-dd"
    OriginationTime        8  "hh-mm-ss"
    TimeReference          8  uint64 little-endian: the first sample's position, in samples at the file's rate
    Version                2  uint16 little-endian (1)
    UMID                  64  zero bytes (none)
    Reserved             190  zero bytes
    CodingHistory          *  ASCII lines ending in CR LF

DAWs (REAPER, Ardour, Pro Tools, Nuendo...) read ``TimeReference`` as the clip's "original position" and can
insert the file there. :func:`copy_with_bext` leaves every other chunk and the audio bytes exactly as they were;
a ``bext`` chunk the source already had is replaced. RIFF chunks are word aligned: a chunk of odd size is followed
by one pad byte that its size does not count but the RIFF size does.
"""

from __future__ import annotations

import bisect
import io
import re
import shutil
import struct
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from engine.errors import BadInputError

BEXT_ID = b"bext"
BEXT_FIXED_SIZE = 602
_BEXT_LAYOUT = struct.Struct("<256s32s32s10s8sQH64s190s")
assert _BEXT_LAYOUT.size == BEXT_FIXED_SIZE
MAX_RIFF_SIZE = 0xFFFF_FFFF
MAX_TIME_REFERENCE = 2**64 - 1
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"\d{2}[-:_. ]\d{2}[-:_. ]\d{2}")
_COPY_BLOCK = 1 << 20


@dataclass(frozen=True)
class Bext:
    """The fields of a ``bext`` chunk. Text is stored as ASCII (other characters are simplified or become ``?``)
    and cut to its field's length; an empty date or time is stored as NULs."""

    description: str = ""
    originator: str = ""
    originator_reference: str = ""
    origination_date: str = ""  # "yyyy-mm-dd"
    origination_time: str = ""  # "hh-mm-ss"
    time_reference: int = 0  # samples, at the file's sample rate
    version: int = 1
    umid: bytes = bytes(64)
    coding_history: str = ""


@dataclass(frozen=True)
class Chunk:
    """One RIFF chunk: its four-byte id, where its data starts in the file, and the data's size (no pad byte)."""

    id: bytes
    offset: int
    size: int


@dataclass(frozen=True)
class WaveFormat:
    """The parts of a ``fmt`` chunk that placement needs."""

    format_tag: int
    channels: int
    sample_rate: int
    bits_per_sample: int


def ascii_text(text: str) -> str:
    """``text`` in printable ASCII: accents dropped ("ä" -> "a"), anything else becomes ``?``."""
    decomposed = unicodedata.normalize("NFKD", text)
    out = []
    for ch in decomposed:
        if unicodedata.combining(ch):
            continue
        out.append(ch if " " <= ch <= "~" or ch in "\r\n" else "?")
    return "".join(out)


def _field(text: str, size: int) -> bytes:
    return ascii_text(text).encode("ascii")[:size]


def pack_bext(bext: Bext) -> bytes:
    """The data of a ``bext`` chunk (without its 8-byte header and pad byte)."""
    if isinstance(bext.time_reference, bool) or not isinstance(bext.time_reference, int):
        raise TypeError(f"time_reference must be an int number of samples, got {bext.time_reference!r}")
    if not 0 <= bext.time_reference <= MAX_TIME_REFERENCE:
        raise ValueError(f"time_reference must be in 0..2**64-1 samples, got {bext.time_reference}")
    if not 0 <= bext.version <= 0xFFFF:
        raise ValueError(f"version must be in 0..65535, got {bext.version}")
    if len(bext.umid) != 64:
        raise ValueError(f"umid must be 64 bytes, got {len(bext.umid)}")
    if bext.origination_date and not _DATE.fullmatch(bext.origination_date):
        raise ValueError(f"origination_date must look like yyyy-mm-dd, got {bext.origination_date!r}")
    if bext.origination_time and not _TIME.fullmatch(bext.origination_time):
        raise ValueError(f"origination_time must look like hh-mm-ss, got {bext.origination_time!r}")
    fixed = _BEXT_LAYOUT.pack(
        _field(bext.description, 256),
        _field(bext.originator, 32),
        _field(bext.originator_reference, 32),
        _field(bext.origination_date, 10),
        _field(bext.origination_time, 8),
        bext.time_reference,
        bext.version,
        bext.umid,
        bytes(190),
    )
    return fixed + ascii_text(bext.coding_history).encode("ascii")


def unpack_bext(data: bytes) -> Bext:
    """Parse a ``bext`` chunk's data; :class:`BadInputError` if it is shorter than the fixed 602 bytes."""
    if len(data) < BEXT_FIXED_SIZE:
        raise BadInputError(f"a bext chunk needs at least {BEXT_FIXED_SIZE} bytes, this one has {len(data)}")
    desc, orig, ref, date, time, time_ref, version, umid, _ = _BEXT_LAYOUT.unpack_from(data)

    def text(raw: bytes) -> str:
        return raw.split(b"\0", 1)[0].decode("ascii", errors="replace")

    return Bext(
        description=text(desc),
        originator=text(orig),
        originator_reference=text(ref),
        origination_date=text(date),
        origination_time=text(time),
        time_reference=time_ref,
        version=version,
        umid=umid,
        coding_history=text(data[BEXT_FIXED_SIZE:]),
    )


def read_chunks(path: Path) -> list[Chunk]:
    """The chunks of a RIFF/WAVE file, in file order; :class:`BadInputError` if it is not one or is cut short.

    A RIFF size that disagrees with the file's length is tolerated (the shorter one wins), as readers do; a chunk
    that runs past the end is not.
    """
    try:
        with path.open("rb") as f:
            return _scan(f, str(path))
    except OSError as e:
        raise BadInputError(f"cannot read {path}: {e.strerror or e}") from e


def parse_chunks(data: bytes, name: str = "the WAV data") -> list[Chunk]:
    """:func:`read_chunks` of a WAV file held in memory."""
    return _scan(io.BytesIO(data), name)


def _scan(f: BinaryIO, name: str) -> list[Chunk]:
    header = f.read(12)
    file_size = f.seek(0, 2)
    if len(header) < 12 or header[8:12] != b"WAVE":
        raise BadInputError(f"{name} is not a WAV file (no RIFF/WAVE header)")
    if header[:4] in (b"RF64", b"BW64"):
        raise BadInputError(f"{name} is an RF64 file (over 4 GiB); a bext chunk is not added to those")
    if header[:4] != b"RIFF":
        raise BadInputError(f"{name} is not a RIFF file (starts with {header[:4]!r})")
    (riff_size,) = struct.unpack_from("<I", header, 4)
    end = min(8 + riff_size, file_size)
    chunks = []
    pos = 12
    while pos + 8 <= end:
        f.seek(pos)
        chunk_id, size = struct.unpack("<4sI", f.read(8))
        if pos + 8 + size > file_size:
            raise BadInputError(
                f"{name}: chunk {chunk_id!r} at byte {pos} claims {size} bytes, past the end of the file "
                f"({file_size} bytes); the file is truncated or damaged"
            )
        chunks.append(Chunk(chunk_id, pos + 8, size))
        pos += 8 + size + (size & 1)
    return chunks


def chunk_bytes(data: bytes, chunk_id: bytes, chunks: list[Chunk] | None = None) -> bytes | None:
    """The data of the first chunk ``chunk_id`` of a WAV held in memory, or None."""
    chunk = _find(parse_chunks(data) if chunks is None else chunks, chunk_id)
    return None if chunk is None else data[chunk.offset : chunk.offset + chunk.size]


def with_chunks(
    data: bytes, new: dict[bytes, bytes], drop: tuple[bytes, ...] = (), name: str = "the WAV data"
) -> bytes:
    """A WAV held in memory with the chunks ``new`` (id -> data) put just before its ``data`` chunk.

    Chunks of those ids already there, and those in ``drop``, are removed; every other chunk and the audio bytes
    stay exactly as they were, in order. :class:`BadInputError` if ``data`` has no ``fmt``/``data`` chunk or the
    result would pass RIFF's 4 GiB limit.
    """
    return b"".join(chunk_parts(data, new, drop, name))


def chunk_parts(
    data: bytes, new: dict[bytes, bytes], drop: tuple[bytes, ...] = (), name: str = "the WAV data"
) -> list[bytes | memoryview]:
    """What :func:`with_chunks` joins, in order: the audio and the other chunks kept are views of ``data``, not
    copies (:class:`PartsReader` reads them as one file)."""
    for chunk_id in (*new, *drop):
        if len(chunk_id) != 4:
            raise ValueError(f"a RIFF chunk id has 4 bytes, got {chunk_id!r}")
    chunks = [c for c in parse_chunks(data, name) if c.id not in new and c.id not in drop]
    audio = _find(chunks, b"data")
    if _find(chunks, b"fmt ") is None or audio is None:
        raise BadInputError(f"{name} lacks a fmt or data chunk; it is not a usable WAV file")
    view = memoryview(data)
    parts: list[bytes | memoryview] = [b"RIFF", b"", b"WAVE"]
    for chunk in chunks:
        if chunk is audio:
            parts.extend(_chunk(chunk_id, body) for chunk_id, body in new.items())
        parts.append(view[chunk.offset - 8 : chunk.offset + chunk.size])
        if chunk.size & 1:
            parts.append(b"\0")
    size = sum(len(part) for part in parts) - 8
    if size > MAX_RIFF_SIZE:
        raise BadInputError(f"{name} with its metadata would pass RIFF's 4 GiB limit")
    parts[1] = struct.pack("<I", size)
    return parts


class PartsReader(io.RawIOBase):
    """A read-only, seekable file over byte strings and views laid end to end (no copy of them is made)."""

    def __init__(self, parts: list[bytes | memoryview]) -> None:
        super().__init__()
        self._parts = [memoryview(p).cast("B") for p in parts]
        self._starts = []
        total = 0
        for part in self._parts:
            self._starts.append(total)
            total += len(part)
        self._size, self._pos = total, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        out = memoryview(buffer).cast("B")
        done = 0
        index = bisect.bisect_right(self._starts, self._pos) - 1
        while done < len(out) and 0 <= index < len(self._parts) and self._pos < self._size:
            part, start = self._parts[index], self._starts[index]
            piece = part[self._pos - start : self._pos - start + len(out) - done]
            out[done : done + len(piece)] = piece
            done += len(piece)
            self._pos += len(piece)
            index += 1
        return done


def _chunk(chunk_id: bytes, body: bytes) -> bytes:
    return chunk_id + struct.pack("<I", len(body)) + body + (b"\0" if len(body) & 1 else b"")


def _find(chunks: list[Chunk], chunk_id: bytes) -> Chunk | None:
    return next((c for c in chunks if c.id == chunk_id), None)


def read_chunk_data(path: Path, chunk: Chunk) -> bytes:
    with path.open("rb") as f:
        f.seek(chunk.offset)
        return f.read(chunk.size)


def read_format(path: Path, chunks: list[Chunk] | None = None) -> WaveFormat:
    """The ``fmt`` chunk of a WAV file; :class:`BadInputError` if it has none or it is too short."""
    chunks = read_chunks(path) if chunks is None else chunks
    fmt = _find(chunks, b"fmt ")
    if fmt is None or fmt.size < 16:
        raise BadInputError(f"{path} has no valid fmt chunk; it is not a usable WAV file")
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", read_chunk_data(path, fmt)[:16])
    return WaveFormat(tag, channels, rate, bits)


def read_bext(path: Path) -> Bext | None:
    """The file's ``bext`` chunk, or None if it has none."""
    chunks = read_chunks(path)
    chunk = _find(chunks, BEXT_ID)
    return None if chunk is None else unpack_bext(read_chunk_data(path, chunk))


def coding_history(fmt: WaveFormat, text: str) -> str:
    """One EBU R98 coding-history line for a linear PCM file, e.g. ``A=PCM,F=48000,W=24,M=stereo,T=Segue``."""
    mode = {1: "mono", 2: "stereo"}.get(fmt.channels)
    parts = ["A=PCM", f"F={fmt.sample_rate}", f"W={fmt.bits_per_sample}"]
    if mode is not None:
        parts.append(f"M={mode}")
    parts.append(f"T={text.replace(',', ';')}")
    return ",".join(parts) + "\r\n"


def copy_with_bext(source: Path, out: BinaryIO, bext: Bext) -> int:
    """Write ``source`` to ``out`` with ``bext`` as a chunk just before ``data``; returns the bytes written.

    Every other chunk is copied byte for byte, in order (an old ``bext`` chunk is dropped). Raises
    :class:`BadInputError` if ``source`` is not a RIFF/WAVE file with ``fmt`` and ``data`` chunks, or if the result
    would pass the 4 GiB limit of RIFF.
    """
    chunks = [c for c in read_chunks(source) if c.id != BEXT_ID]
    data = _find(chunks, b"data")
    if _find(chunks, b"fmt ") is None or data is None:
        raise BadInputError(f"{source} lacks a fmt or data chunk; it is not a usable WAV file")
    payload = pack_bext(bext)
    layout: list[tuple[bytes, Chunk | bytes]] = []
    for chunk in chunks:
        if chunk is data:
            layout.append((BEXT_ID, payload))
        layout.append((chunk.id, chunk))
    riff_size = 4 + sum(8 + _size(body) + (_size(body) & 1) for _, body in layout)
    if riff_size > MAX_RIFF_SIZE:
        raise BadInputError(f"{source} with a bext chunk would be {riff_size + 8} bytes, over RIFF's 4 GiB limit")
    written = out.write(b"RIFF" + struct.pack("<I", riff_size) + b"WAVE")
    with source.open("rb") as f:
        for chunk_id, body in layout:
            size = _size(body)
            written += out.write(chunk_id + struct.pack("<I", size))
            if isinstance(body, bytes):
                written += out.write(body)
            else:
                f.seek(body.offset)
                written += _copy_exactly(f, out, size, source)
            if size & 1:
                written += out.write(b"\0")
    return written


def _size(body: Chunk | bytes) -> int:
    return len(body) if isinstance(body, bytes) else body.size


def _copy_exactly(src: BinaryIO, dst: BinaryIO, size: int, source: Path) -> int:
    left = size
    while left:
        block = src.read(min(left, _COPY_BLOCK))
        if not block:
            raise BadInputError(f"{source} ended while copying; it changed or is damaged")
        dst.write(block)
        left -= len(block)
    return size


def copy_plain(source: Path, out: BinaryIO) -> int:
    """Copy ``source``'s bytes to ``out`` unchanged; returns the bytes written."""
    with source.open("rb") as f:
        shutil.copyfileobj(f, out, _COPY_BLOCK)
    return out.tell()

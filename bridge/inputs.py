"""What the user handed us on the command line: sniff each file's format by content and hash it.

Formats are detected from the first bytes, never from the name: ``MThd`` is a Standard MIDI File;
``RIFF``/``RF64``/``BW64`` + ``WAVE``, ``fLaC`` and ``FORM`` + ``AIFF``/``AIFC`` are audio. A region file is opened
only when it is a regular file (:func:`open_region_file`), and its size is checked before anything reads or hashes
it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from engine.api import MAX_AUDIO_FILE_BYTES, MAX_MIDI_FILE_BYTES
from engine.errors import BadInputError

log = logging.getLogger(__name__)

SourceRole = Literal["midi", "audio"]

ACCEPTED_FORMATS = "a MIDI file (.mid/.midi) and/or an audio file (WAV, FLAC or AIFF)"
_MIDI_SUFFIXES = (".mid", ".midi", ".smf", ".kar")
_AUDIO_SUFFIXES = (".wav", ".wave", ".flac", ".aif", ".aiff", ".aifc", ".bwf", ".rf64")
MAX_REGION_FILE_BYTES: dict[SourceRole, int] = {"midi": MAX_MIDI_FILE_BYTES, "audio": MAX_AUDIO_FILE_BYTES}


@dataclass(frozen=True)
class RegionFiles:
    """The region's files, at most one of each role. Paths are absolute."""

    midi_path: Path | None = None
    audio_path: Path | None = None

    @property
    def paths(self) -> tuple[Path, ...]:
        return tuple(p for p in (self.midi_path, self.audio_path) if p is not None)


def sniff_format(path: Path) -> SourceRole:
    """Return ``"midi"`` or ``"audio"`` from the file's first bytes; :class:`BadInputError` otherwise.

    Only a regular file is opened (a FIFO, device or socket is refused without blocking), and one over the size
    limit of its kind (:data:`~engine.api.MAX_MIDI_FILE_BYTES`, :data:`~engine.api.MAX_AUDIO_FILE_BYTES`) is
    refused from its size."""
    with open_region_file(path) as (f, size):
        head = f.read(12)
    role = _role_of(head)
    if role is None:
        hint = ""
        if path.suffix.lower() in _MIDI_SUFFIXES + _AUDIO_SUFFIXES:
            hint = f" (its name ends in {path.suffix}, but its content is not that format; is it damaged?)"
        elif head[:4] == b"RIFF" and head[8:12] == b"RMID":
            hint = " (an RIFF-wrapped MIDI file: export it from your DAW as a Standard MIDI File)"
        raise BadInputError(f"{path} is not a format Segue reads{hint}; give {ACCEPTED_FORMATS}")
    _check_size(path, size, role)
    expected = "midi" if path.suffix.lower() in _MIDI_SUFFIXES else None
    expected = "audio" if path.suffix.lower() in _AUDIO_SUFFIXES else expected
    if expected is not None and expected != role:
        log.info("%s: name says %s but content is %s; going by content", path, expected, role)
    return role


@contextlib.contextmanager
def open_region_file(path: Path) -> Iterator[tuple[BinaryIO, int]]:
    """``(file, size in bytes)`` of a regular, non-empty file no larger than the largest region file
    (:data:`~engine.api.MAX_AUDIO_FILE_BYTES`); :class:`BadInputError` naming the problem otherwise.

    Checked from ``os.stat`` before ``open``, then again on the open descriptor (the path may change in between),
    and opened with ``O_NONBLOCK``: a FIFO, device or socket given as a region is refused, never waited on."""
    try:
        info = os.stat(path)
    except FileNotFoundError as e:
        raise BadInputError(f"{path}: no such file; give {ACCEPTED_FORMATS}") from e
    except (OSError, ValueError) as e:  # too long a name, a loop of links, no permission, a NUL byte
        raise BadInputError(f"cannot read {path}: {_reason(e)}; give {ACCEPTED_FORMATS}") from e
    _check_regular(path, info)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise BadInputError(f"cannot read {path}: {_reason(e)}") from e
    try:
        info = os.fstat(fd)
        _check_regular(path, info)
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with f:
        yield f, int(info.st_size)


def _check_regular(path: Path, info: os.stat_result) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise BadInputError(f"{path} is a folder; give {ACCEPTED_FORMATS}")
    if not stat.S_ISREG(info.st_mode):
        raise BadInputError(f"{path} is not a regular file (a pipe, device or socket); give {ACCEPTED_FORMATS}")
    if info.st_size == 0:
        raise BadInputError(f"{path} is empty; give {ACCEPTED_FORMATS}")
    _check_size(path, int(info.st_size), None)


def _check_size(path: Path, size: int, role: SourceRole | None) -> None:
    limit = MAX_REGION_FILE_BYTES[role] if role is not None else max(MAX_REGION_FILE_BYTES.values())
    if size > limit:
        what = f"a {'MIDI' if role == 'midi' else 'audio'} region" if role else "a region file"
        raise BadInputError(
            f"{path} is {size / 2**20:.0f} MiB; {what} may be at most {limit // 2**20} MiB: export a shorter region"
        )


def _role_of(head: bytes) -> SourceRole | None:
    if head.startswith(b"MThd"):
        return "midi"
    if head[:4] in (b"RIFF", b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return "audio"
    if head.startswith(b"fLaC"):
        return "audio"
    if head.startswith(b"FORM") and head[8:12] in (b"AIFF", b"AIFC"):
        return "audio"
    return None


def _reason(e: BaseException) -> str:
    return (e.strerror if isinstance(e, OSError) else None) or str(e)


def classify_inputs(paths: list[Path]) -> RegionFiles:
    """Sort one or two input files into a MIDI file and an audio file of the same region."""
    if not 1 <= len(paths) <= 2:
        raise BadInputError(f"give one or two input files ({ACCEPTED_FORMATS}), got {len(paths)}")
    found: dict[SourceRole, Path] = {}
    for raw in paths:
        path = raw.expanduser().resolve()
        role = sniff_format(path)
        if role in found:
            raise BadInputError(
                f"{found[role]} and {path} are both {role} files; give one MIDI file and/or one audio file "
                "of the same region"
            )
        found[role] = path
    return RegionFiles(midi_path=found.get("midi"), audio_path=found.get("audio"))


def sha256_file(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a region file's content, read in chunks. The file must be regular and within the size
    limit of its kind (from its first bytes; other content: the largest limit), checked before hashing."""
    digest = hashlib.sha256()
    with open_region_file(path) as (f, size):
        head = f.read(12)
        _check_size(path, size, _role_of(head))
        digest.update(head)
        done = len(head)
        while chunk := f.read(chunk_bytes):
            done += len(chunk)
            if done > size:  # it grew after the check: hash no more than was allowed
                _check_size(path, done, _role_of(head))
            digest.update(chunk)
    return digest.hexdigest()

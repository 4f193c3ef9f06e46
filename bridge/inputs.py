"""What the user handed us on the command line: sniff each file's format by content and hash it.

Formats are detected from the first bytes, never from the name: ``MThd`` is a Standard MIDI File;
``RIFF``/``RF64``/``BW64`` + ``WAVE``, ``fLaC`` and ``FORM`` + ``AIFF``/``AIFC`` are audio.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from engine.errors import BadInputError

log = logging.getLogger(__name__)

SourceRole = Literal["midi", "audio"]

ACCEPTED_FORMATS = "a MIDI file (.mid/.midi) and/or an audio file (WAV, FLAC or AIFF)"
_MIDI_SUFFIXES = (".mid", ".midi", ".smf", ".kar")
_AUDIO_SUFFIXES = (".wav", ".wave", ".flac", ".aif", ".aiff", ".aifc", ".bwf", ".rf64")


@dataclass(frozen=True)
class RegionFiles:
    """The region's files, at most one of each role. Paths are absolute."""

    midi_path: Path | None = None
    audio_path: Path | None = None

    @property
    def paths(self) -> tuple[Path, ...]:
        return tuple(p for p in (self.midi_path, self.audio_path) if p is not None)


def sniff_format(path: Path) -> SourceRole:
    """Return ``"midi"`` or ``"audio"`` from the file's first bytes; :class:`BadInputError` otherwise."""
    if not path.exists():
        raise BadInputError(f"{path}: no such file; give {ACCEPTED_FORMATS}")
    if path.is_dir():
        raise BadInputError(f"{path} is a folder; give {ACCEPTED_FORMATS}")
    try:
        with path.open("rb") as f:
            head = f.read(12)
    except OSError as e:
        raise BadInputError(f"cannot read {path}: {e.strerror or e}") from e
    if not head:
        raise BadInputError(f"{path} is empty; give {ACCEPTED_FORMATS}")
    role: SourceRole | None = None
    if head.startswith(b"MThd"):
        role = "midi"
    elif head[:4] in (b"RIFF", b"RF64", b"BW64") and head[8:12] == b"WAVE":
        role = "audio"
    elif head.startswith(b"fLaC"):
        role = "audio"
    elif head.startswith(b"FORM") and head[8:12] in (b"AIFF", b"AIFC"):
        role = "audio"
    if role is None:
        hint = ""
        if path.suffix.lower() in _MIDI_SUFFIXES + _AUDIO_SUFFIXES:
            hint = f" (its name ends in {path.suffix}, but its content is not that format; is it damaged?)"
        elif head[:4] == b"RIFF" and head[8:12] == b"RMID":
            hint = " (an RIFF-wrapped MIDI file: export it from your DAW as a Standard MIDI File)"
        raise BadInputError(f"{path} is not a format Segue reads{hint}; give {ACCEPTED_FORMATS}")
    expected = "midi" if path.suffix.lower() in _MIDI_SUFFIXES else None
    expected = "audio" if path.suffix.lower() in _AUDIO_SUFFIXES else expected
    if expected is not None and expected != role:
        log.info("%s: name says %s but content is %s; going by content", path, expected, role)
    return role


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
    """Hex SHA-256 of a file's content, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()

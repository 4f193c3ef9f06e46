"""Copies of a placed variant that a producer can find, in ``<job_dir>/place/``, named after the track.

Naming rule (every field slugged to ``[a-z0-9-]``, so ``_`` only separates fields)::

    <track>_<job>_<variant>_<part>.wav     part: "mix" for continuation.wav, the part's name for stems/<part>.wav
    <track>_<job>_<variant>.mid            continuation.mid, unchanged (tempo and meter are at tick 0)

``track`` is the DAW track's name ("Lead Vox #2/ä" -> ``lead-vox-2-a``; ``segue`` when empty), ``job`` the job
id's last segment (its random suffix, ``3f2a``) or, for ids without one, 6 hex digits of its SHA-256, and
``variant`` the variant's id (``v01``). Names are at most 32 characters per field. A name is never reused: when it
is taken, ``-2``, ``-3``... up to ``-99`` go before the extension, and after that placement refuses.

Each copy is written to a hidden temp file in ``place/``, flushed, and then given its name by a hard link, which
fails when the name is taken (no overwrite, no half-written file under a real name).

WAV copies carry a BWF ``bext`` chunk (:mod:`bridge.bwf`) whose ``TimeReference`` is the placement's position on
the DAW timeline in samples at the file's rate, so a DAW can put the file back at its original position; that
only happens when the position is known (the DAW sent the region's start). Otherwise the copy is plain, and a
note is logged. A file that carries Segue's provenance (:mod:`engine.provenance`) keeps it: its ``bext`` fields
but the time reference, its ``iXML``, and a C2PA manifest signed again over the new bytes.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Literal

from bridge import __version__
from bridge.bwf import Bext, ascii_text, coding_history, copy_plain, copy_with_bext, read_format
from bridge.jobs import JobRecord, VariantRecord
from engine.atomic import write_first_free
from engine.errors import BadInputError, EngineError, SegueError
from engine.provenance.record import ProvenanceSettings
from engine.provenance.stamp import placed_copy

log = logging.getLogger(__name__)

PLACE_DIR = "place"
MAX_COPIES = 99
MIX_PART = "mix"
_FIELD_MAX_CHARS = 32
_JOB_SHORT = re.compile(r"[a-z0-9]{3,12}")


@dataclass(frozen=True)
class PlacedFile:
    """One file of a placed variant: its role in the job (``audio``, ``midi``, ``stem:<part>``) and where it is."""

    role: str
    kind: Literal["audio", "midi"]
    path: Path
    time_reference: int | None = None  # samples at the file's rate, when a bext chunk was written


def slug(text: str, fallback: str) -> str:
    """``text`` as a file-name field: lower-case ASCII letters, digits and ``-``; ``fallback`` if nothing is left."""
    field = re.sub(r"[^a-z0-9]+", "-", ascii_text(text).lower()).strip("-")
    return field[:_FIELD_MAX_CHARS].rstrip("-") or fallback


def job_short(job_id: str) -> str:
    """The job id's last segment (``...-continue-3f2a`` -> ``3f2a``), or 6 hex digits of its hash."""
    last = job_id.rsplit("-", 1)[-1].lower()
    if _JOB_SHORT.fullmatch(last) and last != job_id.lower():
        return last
    return hashlib.sha256(job_id.encode("utf-8")).hexdigest()[:6]


def placed_stem(track: str, job_id: str, variant_id: str, part: str = "") -> str:
    """The file name without extension or copy number: ``<track>_<job>_<variant>[_<part>]``."""
    name = f"{slug(track, 'segue')}_{job_short(job_id)}_{slug(variant_id, 'variant')}"
    return f"{name}_{slug(part, 'part')}" if part else name


def place_variant(
    job_dir: Path,
    record: JobRecord,
    variant: VariantRecord,
    track: str,
    position_seconds: float | None,
) -> list[PlacedFile]:
    """Write the named copies of ``variant``'s mix, stems and MIDI into ``job_dir/place/``; mix first, MIDI last.

    ``position_seconds`` is where the files go on the DAW timeline (None when unknown: no bext chunk). Raises
    :class:`BadInputError` if a file the job lists is missing or outside the job folder, :class:`EngineError`
    if the copies cannot be written.
    """
    roles = [("audio", MIX_PART)] + [(r, r.split(":", 1)[1]) for r in variant.files if r.startswith("stem:")]
    sources = {role: _source(job_dir, variant, role) for role, _ in [*roles, ("midi", "")]}  # all checked first
    place_dir = job_dir / PLACE_DIR
    try:
        place_dir.mkdir(exist_ok=True)
    except OSError as e:
        raise EngineError(f"cannot create {place_dir}: {e.strerror or e}; check the job folder is writable") from e
    placed = []
    for role, part in roles:
        source = sources[role]
        if source is None:
            continue
        name = placed_stem(track, record.id, variant.id, part)
        label = _Label(
            variant.id,
            description=f"Segue {record.mode} {variant.id} {part} for track {track}; job {record.id}",
            reference=f"SEGUE-{job_short(record.id)}-{variant.id}",
        )
        path, time_ref = _place_wav(source, place_dir, name, position_seconds, label)
        placed.append(PlacedFile(role, "audio", path, time_ref))
    midi = sources["midi"]
    if midi is not None:
        name = placed_stem(track, record.id, variant.id)
        placed.append(PlacedFile("midi", "midi", _write_claimed(place_dir, name, midi.suffix or ".mid", midi, None)))
    log.info("job %s %s: placed %d file(s) in %s", record.id, variant.id, len(placed), place_dir)
    return placed


def place_or_original(
    job_dir: Path, record: JobRecord, variant: VariantRecord, track: str, position_seconds: float | None
) -> list[PlacedFile]:
    """:func:`place_variant`, or (when the copies cannot be made) the job's own files with a logged warning, so
    that the DAW still gets something to place."""
    try:
        return place_variant(job_dir, record, variant, track, position_seconds)
    except SegueError as e:
        log.warning("job %s %s: no named copies (%s); placing the job's own files", record.id, variant.id, e)
    originals = []
    for role, rel in variant.files.items():
        if role in ("audio", "midi") or role.startswith("stem:"):
            kind: Literal["audio", "midi"] = "midi" if role == "midi" else "audio"
            originals.append(PlacedFile(role, kind, job_dir / rel))
    return originals


def _source(job_dir: Path, variant: VariantRecord, role: str) -> Path | None:
    rel = variant.files.get(role)
    if rel is None:
        return None
    source = job_dir / rel
    try:
        source.resolve().relative_to(job_dir.resolve())
    except ValueError:
        raise BadInputError(f"{variant.id} {role}: {rel!r} lies outside the job folder {job_dir}") from None
    if not source.is_file():
        raise BadInputError(f"{variant.id} {role}: {source} is missing; the job folder is incomplete")
    return source


@dataclass(frozen=True)
class _Label:
    """What a placed WAV's bext chunk says it is (and the variant the log names)."""

    variant_id: str
    description: str
    reference: str  # the bext originator reference


def _place_wav(
    source: Path, place_dir: Path, name: str, position_seconds: float | None, label: _Label
) -> tuple[Path, int | None]:
    """Copy ``source`` as ``place_dir/name``: with a bext time reference at ``position_seconds`` when it is known
    (a generated file keeps its own chunks and is signed again), else a plain copy. Returns the copy and the time
    reference written."""
    suffix = source.suffix or ".wav"
    if position_seconds is None:
        log.info("%s: the DAW position is unknown; %s gets no bext time reference", label.variant_id, name)
        return _write_claimed(place_dir, name, suffix, source, None), None
    if position_seconds < 0:
        log.warning("%s: position %.3f s is before the timeline's start; no bext", label.variant_id, position_seconds)
        return _write_claimed(place_dir, name, suffix, source, None), None
    try:
        fmt = read_format(source)
        if fmt.sample_rate <= 0:
            raise BadInputError(f"{source} declares a sample rate of {fmt.sample_rate} Hz")
        time_reference = round(position_seconds * fmt.sample_rate)
        placed = placed_copy(source, time_reference, _provenance_settings())
        if placed is not None:  # a generated file: its bext and iXML kept, a new time reference, signed again
            copy = _claim_new(place_dir, name, suffix, lambda out: out.write(placed), source)
            return copy, time_reference
        now = datetime.now()
        bext = Bext(
            description=label.description,
            originator="Segue",
            originator_reference=label.reference,
            origination_date=f"{now:%Y-%m-%d}",
            origination_time=f"{now:%H-%M-%S}",
            time_reference=time_reference,
            coding_history=coding_history(fmt, f"Segue {__version__}"),
        )
        return _write_claimed(place_dir, name, suffix, source, bext), bext.time_reference
    except BadInputError as e:
        log.warning("%s: cannot add a bext chunk (%s); writing a plain copy", label.variant_id, e)
        return _write_claimed(place_dir, name, suffix, source, None), None


def _provenance_settings() -> ProvenanceSettings:
    try:
        return ProvenanceSettings.load()
    except BadInputError as e:
        log.warning("%s; using the default provenance settings", e)
        return ProvenanceSettings()


def _write_claimed(place_dir: Path, stem: str, suffix: str, source: Path, bext: Bext | None) -> Path:
    """Copy ``source`` (with ``bext`` when given) to a temp file, then claim the first free name for it."""

    def write(out: BinaryIO) -> object:
        return copy_plain(source, out) if bext is None else copy_with_bext(source, out, bext)

    return _claim_new(place_dir, stem, suffix, write, source)


def _claim_new(place_dir: Path, stem: str, suffix: str, write: Callable[[BinaryIO], object], mode_from: Path) -> Path:
    """Write once (engine.atomic: checked, fsynced; a full disk says so), under the first free numbered name."""
    names = (f"{stem}{'' if number == 1 else f'-{number}'}{suffix}" for number in range(1, MAX_COPIES + 1))
    target = write_first_free(place_dir, names, write, like=mode_from)
    if target is None:
        raise EngineError(f"{place_dir} already holds {stem}{suffix} and {MAX_COPIES - 1} numbered copies; move some")
    log.debug("wrote %s", target)
    return target

"""Write provenance into a job's files: ``bext`` + ``iXML`` (+ a C2PA manifest) in WAVs, meta events in MIDI.

:func:`stamp_job` runs once a job's files are all written (the bridge's runner, the engine's server): it rewrites
each WAV and MIDI file the job lists atomically (:mod:`engine.atomic`: a temp file, fsynced, checked, renamed), with
the audio data and the notes untouched (the audio is compared with the engine's before the file gets its name).
:func:`placed_copy` makes a placement copy (a new ``bext`` time reference, re-signed).

A file that already carries a Segue record (a remote engine's download) is checked first: a C2PA signature that
no longer holds is reported (the file changed on the way); the model's licence and version it states are kept
when this computer does not know the model.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from engine import atomic
from engine.errors import BadInputError, EngineError, SegueError
from engine.provenance.ixml import IXML_ID, build_ixml, parse_ixml
from engine.provenance.midi import stamp_midi_bytes, strip_midi_bytes
from engine.provenance.record import (
    UNKNOWN_LICENCE,
    ProvenanceRecord,
    ProvenanceSettings,
    job_without_region_name,
    records_for_job,
)
from engine.provenance.riff import (
    BEXT_ID,
    Bext,
    Chunk,
    PartsReader,
    WaveFormat,
    chunk_bytes,
    chunk_parts,
    coding_history,
    pack_bext,
    parse_chunks,
    read_chunk_data,
    read_chunks,
    unpack_bext,
    with_chunks,
)
from engine.provenance.signing import (
    C2PA_CHUNK_ID,
    Credentials,
    check_wav,
    load_credentials,
    sign_wav,
    sign_wav_stream,
)

log = logging.getLogger(__name__)

WAV_SUFFIXES = (".wav", ".wave", ".bwf")
MIDI_SUFFIXES = (".mid", ".midi", ".smf")
STAMP_WORKERS = 2  # files stamped at once (the bench: bench/bench_provenance.py)


@dataclass(frozen=True)
class StampReport:
    """What :func:`stamp_job` did: files stamped, files signed, and what went wrong (the job still stands)."""

    stamped: tuple[str, ...] = ()
    signed: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()


def bext_for(record: ProvenanceRecord, fmt: WaveFormat, time_reference: int = 0) -> Bext:
    """The ``bext`` chunk of a generated file: the "AI-generated" description first (DAWs show its start)."""
    region = f"; region {record.region_name}" if record.region_name else ""
    created = _parse_time(record.created)
    suffix = record.job.rsplit("-", 1)[-1][:12] or "job"
    return Bext(
        description=f"{record.short}; {record.mode} {record.variant} {record.role}; job {record.job}{region}",
        originator=f"Segue {record.segue_version}",
        originator_reference=f"SEGUE-{suffix}-{record.variant}",
        origination_date=f"{created:%Y-%m-%d}",
        origination_time=f"{created:%H-%M-%S}",
        time_reference=time_reference,
        coding_history=coding_history(fmt, f"Segue {record.segue_version} AI-generated"),
    )


def _parse_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return datetime.now().astimezone()


def _format_of(data: bytes, name: str) -> WaveFormat:
    import struct

    fmt = chunk_bytes(data, b"fmt ")
    if fmt is None or len(fmt) < 16:
        raise BadInputError(f"{name} has no valid fmt chunk; it is not a usable WAV file")
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", fmt[:16])
    return WaveFormat(tag, channels, rate, bits)


def stamp_wav_bytes(
    data: bytes,
    record: ProvenanceRecord,
    credentials: Credentials | None,
    title: str,
    bext: Bext | None = None,
) -> bytes:
    """``data`` with Segue's ``bext`` (or the given one) and ``iXML`` chunks before its audio, any old C2PA
    manifest dropped, and a new one signed when ``credentials`` are given. The audio bytes are checked unchanged."""
    chunks = parse_chunks(data, title)
    stamped = with_chunks(data, _our_chunks(data, record, title, bext), (C2PA_CHUNK_ID,), title)
    if credentials is not None:
        stamped = sign_wav(stamped, record, credentials, title)
    if not _same_audio(stamped, data, title, chunks):  # a plain if: holds under python -O
        raise EngineError(f"stamping {title} changed its audio data; the file was left as it was")
    return stamped


def _our_chunks(data: bytes, record: ProvenanceRecord, title: str, bext: Bext | None = None) -> dict[bytes, bytes]:
    """Segue's ``bext`` (or the given one) and ``iXML`` chunks for ``data``."""
    bext = bext or bext_for(record, _format_of(data, title))
    return {BEXT_ID: pack_bext(bext), IXML_ID: build_ixml(record)}


def _same_audio(stamped: bytes, data: bytes, name: str, chunks: list[Chunk]) -> bool:
    """Whether both WAVs' ``data`` chunks hold the same bytes (compared in place: no 5 MB copies)."""
    new = next((c for c in parse_chunks(stamped, name) if c.id == b"data"), None)
    old = next((c for c in chunks if c.id == b"data"), None)
    if new is None or old is None:
        return new is old
    return new.size == old.size and stamped.startswith(memoryview(data)[old.offset : old.offset + old.size], new.offset)


def read_record(data: bytes, name: str) -> ProvenanceRecord | None:
    """Segue's record in a WAV's ``iXML`` chunk, or None."""
    raw = chunk_bytes(data, IXML_ID, parse_chunks(data, name))
    if raw is None:
        return None
    try:
        return parse_ixml(raw).record
    except BadInputError:
        return None


def stamp_job(
    job_dir: Path, job: Mapping[str, Any], settings: ProvenanceSettings, workers: int = STAMP_WORKERS
) -> StampReport:
    """Stamp every WAV and MIDI file a finished job lists (``job.json``'s shape). Never raises for one file: what
    goes wrong is logged and returned in :attr:`StampReport.problems` (the job's files stay as they were).

    ``workers``: files stamped at once, on threads: C2PA signing (native) and ``fsync`` run outside the GIL, so one
    file is flushed while the next is signed (``bench/bench_provenance.py``: the same CPU, less wall time). The
    report lists the files in the job's order. A listed path that leads out of the job folder (``..``, a link) is
    not stamped. A signed WAV is written as the C2PA SDK makes it (:func:`_write_signed`).
    """
    records = records_for_job(job, settings)
    credentials, problems = None, []
    if settings.sign and any(PurePosixPath(rel).suffix.lower() in WAV_SUFFIXES for rel in records):
        try:
            credentials = load_credentials(settings)
        except SegueError as e:
            problems.append(f"no C2PA signature: {e}")
        except ImportError as e:  # cryptography comes with the provenance extra
            problems.append(f"no C2PA signature: {e}")
    kinds = WAV_SUFFIXES + MIDI_SUFFIXES
    todo = [(rel, record) for rel, record in records.items() if PurePosixPath(rel).suffix.lower() in kinds]

    def one(item: tuple[str, ProvenanceRecord]) -> _Stamped:
        return _stamp_file(job_dir, item[0], item[1], credentials)

    if workers > 1 and len(todo) > 1:
        with ThreadPoolExecutor(min(workers, len(todo)), thread_name_prefix="segue-stamp") as pool:
            done = list(pool.map(one, todo))
    else:
        done = [one(item) for item in todo]
    stamped = [d.rel for d in done if d.stamped]
    signed = [d.rel for d in done if d.signed]
    problems += [p for d in done for p in d.problems]
    for problem in problems:
        log.warning("job %s: %s", job.get("id", "?"), problem)
    log.info("job %s: provenance in %d file(s), %d signed", job.get("id", "?"), len(stamped), len(signed))
    return StampReport(tuple(stamped), tuple(signed), tuple(problems))


@dataclass(frozen=True)
class _Stamped:
    rel: str
    stamped: bool
    signed: bool
    problems: tuple[str, ...]


def _stamp_file(job_dir: Path, rel: str, record: ProvenanceRecord, credentials: Credentials | None) -> _Stamped:
    """Read one of the job's files, stamp it and write it back atomically (its audio checked unchanged)."""
    path = job_dir / rel
    problems: list[str] = []
    outside = _outside(job_dir, rel)
    if outside:
        return _Stamped(rel, False, False, (f"{rel}: not stamped ({outside})",))
    try:
        data = path.read_bytes()
        if path.suffix.lower() not in WAV_SUFFIXES:
            atomic.write_bytes(path, stamp_midi_bytes(data, record, rel), overwrite=True)
            return _Stamped(rel, True, False, tuple(problems))
        record, problem = _keep_remote_facts(data, record, rel)
        if problem:
            problems.append(problem)
        if credentials is not None:
            try:
                _write_signed(path, data, record, credentials)
                return _Stamped(rel, True, True, tuple(problems))
            except EngineError as e:
                problems.append(f"{rel}: not signed ({e})")
        atomic.write_bytes(path, stamp_wav_bytes(data, record, None, path.name), overwrite=True)
    except (SegueError, OSError) as e:
        problems.append(f"{rel}: no provenance written ({e})")
        return _Stamped(rel, False, False, tuple(problems))
    return _Stamped(rel, True, False, tuple(problems))


def _write_signed(path: Path, data: bytes, record: ProvenanceRecord, credentials: Credentials) -> None:
    """:func:`stamp_wav_bytes` with a signature, written to ``path`` atomically as the C2PA SDK makes it: it reads
    the stamped file as views of ``data`` and writes straight into the temp file (no copies of the audio in
    memory); the temp file's audio is checked against ``data``'s and its manifest found before it gets the name."""
    chunks = parse_chunks(data, path.name)
    parts = chunk_parts(data, _our_chunks(data, record, path.name), (C2PA_CHUNK_ID,), path.name)

    def fill(tmp: Path) -> None:
        with open(tmp, "x+b") as out:
            sign_wav_stream(PartsReader(parts), out, record, credentials, path.name)  # type: ignore[arg-type]

    def check(tmp: Path) -> str | None:
        try:
            written = read_chunks(tmp)
        except BadInputError as e:
            return str(e)
        audio = next((c for c in written if c.id == b"data"), None)
        old = next(c for c in chunks if c.id == b"data")
        if audio is None or audio.size != old.size:
            return "its audio data is not the engine's"
        if not read_chunk_data(tmp, audio).startswith(memoryview(data)[old.offset : old.offset + old.size]):
            return "its audio data is not the engine's"
        if not any(c.id == C2PA_CHUNK_ID for c in written):
            return "the C2PA manifest is missing"
        return None

    atomic.write_with(path, fill, overwrite=True, check=check)


def _outside(job_dir: Path, rel: str) -> str:
    """Why ``rel`` is not a file the job made in ``job_dir`` ('' when it is): stamping rewrites a file and says
    it was generated, so a path that leads elsewhere (``..``, absolute, a link) is left alone."""
    pure = PurePosixPath(rel)
    if pure.is_absolute() or ".." in pure.parts:
        return "the path leads out of the job folder"
    path = job_dir / pure
    if path.is_symlink() or not path.resolve().is_relative_to(job_dir.resolve()):
        return "a link to a file outside the job: Segue stamps only the files it wrote"
    return ""


def _keep_remote_facts(data: bytes, record: ProvenanceRecord, rel: str) -> tuple[ProvenanceRecord, str]:
    """A file that came stamped (from a remote engine): check its signature, keep what it knew of the model."""
    chunks = parse_chunks(data, rel)
    if not any(c.id == IXML_ID for c in chunks):
        return record, ""
    earlier = read_record(data, rel)
    status = check_wav(data, any(c.id == C2PA_CHUNK_ID for c in chunks))
    problem = ""
    if status.present and status.checked and not status.signature_holds:
        failures = ", ".join(status.failures) or status.problem or status.state
        problem = f"{rel}: the engine's C2PA signature does not hold ({failures}): the file changed after it was signed"
    if earlier is not None and earlier.model == record.model:
        changes: dict[str, Any] = {}
        if record.licence == UNKNOWN_LICENCE and earlier.licence != UNKNOWN_LICENCE:
            changes["licence"] = earlier.licence
        if not record.model_version and earlier.model_version:
            changes["model_version"] = earlier.model_version
        record = dataclasses.replace(record, **changes)
    return record, problem


def placed_copy(source: Path, time_reference: int, settings: ProvenanceSettings) -> bytes | None:
    """The bytes of a placement copy of ``source`` with ``time_reference`` (samples) in its ``bext``, its other
    ``bext`` fields and ``iXML`` kept, and signed again when the settings sign; None when ``source`` carries no
    Segue record (the caller then adds a plain ``bext``)."""
    try:
        data = source.read_bytes()
    except OSError as e:
        raise BadInputError(f"cannot read {source}: {e.strerror or e}") from e
    record = read_record(data, str(source))
    if record is None:
        return None
    if not settings.region_name:
        record = dataclasses.replace(record, region_name=None, job=job_without_region_name(record.job))
    old = chunk_bytes(data, BEXT_ID)
    base = unpack_bext(old) if old is not None else bext_for(record, _format_of(data, str(source)))
    bext = dataclasses.replace(base, time_reference=time_reference)
    credentials = None
    if settings.sign:
        try:
            credentials = load_credentials(settings)
        except (SegueError, ImportError) as e:
            log.warning("%s: the placed copy is not signed (%s)", source.name, e)
    try:
        return stamp_wav_bytes(data, record, credentials, source.name, bext)
    except EngineError as e:
        if credentials is None:
            raise
        log.warning("%s: the placed copy is not signed (%s)", source.name, e)
        return stamp_wav_bytes(data, record, None, source.name, bext)


def stamp_result(
    job_dir: Path,
    job_id: str,
    request: Any,
    result: Any,
    engine_name: str,
    settings: ProvenanceSettings,
) -> StampReport:
    """:func:`stamp_job` for an engine's :class:`~engine.api.GenerationResult` of ``request`` (the server's jobs,
    which have no ``job.json``). The region's files are named only when the settings allow and the names are the
    user's (the server stores its uploads as ``region.*``: it leaves the name out)."""
    import hashlib

    from engine.api import to_jsonable

    sources = []
    prompt = request.prompt
    for role, path in (("midi", prompt.midi_path), ("audio", prompt.audio_path)):
        if path is None:
            continue
        digest = hashlib.sha256()
        with Path(path).open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        sources.append({"path": str(path), "role": role, "sha256": digest.hexdigest()})
    data = to_jsonable(result)
    params = to_jsonable(request.params)
    job = {
        "id": job_id,
        "mode": data.get("mode"),
        "kind": data.get("kind"),
        "model": data.get("model"),
        "engine": engine_name,
        "params": params if isinstance(params, dict) else {},
        "region": {
            "sources": sources,
            "tempo_bpm": data.get("region", {}).get("tempo_bpm"),
            "meter": data.get("region", {}).get("meter"),
            "parts": data.get("region", {}).get("parts", []),
        },
        "variants": data.get("variants", []),
        "file_sources": data.get("file_sources", {}),
    }
    uploads_named_by_us = all(PurePosixPath(s["path"]).stem == "region" for s in sources)
    if uploads_named_by_us:
        settings = dataclasses.replace(settings, region_name=False)
    return stamp_job(job_dir, job, settings)


def strip_provenance(data: bytes, name: str = "the file") -> bytes:
    """A WAV or MIDI file's bytes without what Segue stamped into it (``bext``, ``iXML``, ``C2PA`` chunks; Segue's
    meta events): what the engine wrote. Other data is returned as it is."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        chunks = [c for c in parse_chunks(data, name) if c.id not in (BEXT_ID, IXML_ID, C2PA_CHUNK_ID)]
        body = b"".join(data[c.offset - 8 : c.offset + c.size] + (b"\0" if c.size & 1 else b"") for c in chunks)
        return b"RIFF" + (4 + len(body)).to_bytes(4, "little") + b"WAVE" + body
    if data[:4] == b"MThd":
        return strip_midi_bytes(data, name)
    return data

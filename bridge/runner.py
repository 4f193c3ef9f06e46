"""Run a generation job: create its folder, call the engine, record the outcome in ``job.json``.

The engine is used only through :mod:`engine.api`. Whatever happens, the manifest ends in a final status:
``done`` only when the engine returned and every file it listed is in the job folder; ``failed`` (with the
message) or ``cancelled`` otherwise, with any variant folders left behind named in ``error.partial_variants``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from bridge import segue_version
from bridge.inputs import sha256_file
from bridge.jobs import (
    FINAL_STATUSES,
    ErrorRecord,
    JobRecord,
    ParamsRecord,
    PlaceAt,
    RegionRecord,
    SourceRecord,
    Status,
    VariantRecord,
    create_job_dir,
    discard_job_dir,
    job_to_json,
    load_job,
    now_iso,
    partial_variant_dirs,
    release_job,
    write_job,
)
from engine.api import CancelToken, Engine, GenerationRequest, GenerationResult, controls_of
from engine.errors import BadInputError, CancelledError, DiskFullError, EngineError
from engine.provenance.record import ProvenanceSettings
from engine.provenance.stamp import StampReport, stamp_job

log = logging.getLogger(__name__)

OnProgress = Callable[[float, str], None]


def create_job(request: GenerationRequest, out_dir: Path, engine_name: str) -> JobRecord:
    """Hash the region's files, create ``out_dir/<job_id>/`` and write its ``queued`` manifest.

    The job folder is ``out_dir / record.id``. Raises :class:`BadInputError` (and creates nothing) if a
    source file cannot be read or the output folder cannot be created, :class:`~engine.errors.DiskFullError`
    (and leaves no folder) if the disk is full.
    """
    prompt = request.prompt
    sources = []
    # the stems (several tracks' audio of the region) are sources too, role "stem:<name>", in the order given
    given = [("midi", prompt.midi_path), ("audio", prompt.audio_path)]
    given += [(f"stem:{name}", Path(path)) for name, path in prompt.stems]
    for role, path in given:
        if path is None:
            continue
        try:
            sources.append(SourceRecord(str(path), role, sha256_file(path), path.stat().st_size))
        except OSError as e:
            raise BadInputError(f"cannot read the region file {path}: {e.strerror or e}") from e
    stem_source = prompt.midi_path or prompt.audio_path
    stem = stem_source.stem if stem_source is not None else "region"
    if stem_source is None and prompt.stems:  # stems only: the job is named after the tracks ("drums-bass")
        stem = "-".join(name for name, _ in prompt.stems[:3])
    job_id, job_dir = create_job_dir(out_dir, stem, request.params.mode)
    params = request.params
    created = now_iso()
    record = JobRecord(
        id=job_id,
        status="queued",
        mode=params.mode,
        kind="midi" if prompt.midi_path is not None else "audio",
        model=request.model,
        engine=engine_name,
        params=ParamsRecord(
            params.bars,
            params.variants,
            params.temperature,
            params.top_p,
            params.seed,
            params.parts,
            params.output,
            **controls_of(params),
        ),
        region=RegionRecord(
            sources=tuple(sources),
            tempo_bpm=prompt.tempo_bpm,
            meter=str(prompt.meter) if prompt.meter is not None else None,
            length_beats=prompt.length_beats,
            start_beats=prompt.start_beats,
            sample_rate=request.sample_rate,
        ),
        created=created,
        updated=created,
        segue_version=segue_version(),
    )
    try:
        write_job(job_dir, record)
    except BaseException as e:  # a full disk: no job folder stays behind claiming a job
        discard_job_dir(job_dir)
        if isinstance(e, DiskFullError):
            raise DiskFullError(str(out_dir), e.free_mb) from e
        raise
    log.info("job %s queued in %s", job_id, job_dir)
    return record


def execute_job(
    engine: Engine,
    request: GenerationRequest,
    out_dir: Path,
    record: JobRecord,
    on_progress: OnProgress | None = None,
    cancel: CancelToken | None = None,
    provenance: ProvenanceSettings | None = None,
) -> JobRecord:
    """Run a job made by :func:`create_job` and return its final record.

    Before the job is ``done``, its WAV and MIDI files get their provenance (:mod:`engine.provenance`) as
    ``provenance`` says (None: the settings file and ``SEGUE_PROVENANCE_*``).

    Returns the record when the job is ``done``, ``cancelled`` (:class:`CancelledError` from the engine), or
    ``failed`` with an engine error (the traceback is logged at DEBUG). Records ``failed`` and re-raises on
    :class:`BadInputError`; records ``cancelled`` and re-raises on :class:`KeyboardInterrupt`.
    """
    job_dir = out_dir / record.id
    cancel = cancel or CancelToken()
    started = time.perf_counter()
    record = _update(job_dir, record, status="running", started=now_iso())

    def progress(fraction: float, message: str) -> None:
        if on_progress is None:
            return
        try:
            on_progress(min(1.0, max(0.0, float(fraction))), message)
        except Exception:  # a broken display must not fail the job
            log.debug("progress callback failed", exc_info=True)

    try:
        result = engine.generate(request, job_dir, progress, cancel)
    except CancelledError as e:
        return _finish(job_dir, record, "cancelled", e, started)
    except BadInputError as e:
        _finish(job_dir, record, "failed", e, started)
        raise
    except Exception as e:
        log.debug("job %s: the engine failed", record.id, exc_info=True)
        return _finish(job_dir, record, "failed", e, started)
    except KeyboardInterrupt as e:
        _finish(job_dir, record, "cancelled", e, started)
        raise
    except BaseException as e:
        _finish(job_dir, record, "failed", e, started)
        raise
    problem = _check_result(job_dir, result)
    if problem:
        return _finish(job_dir, record, "failed", EngineError(problem), started)
    record = _with_result(record, request, result, time.perf_counter() - started)
    record = _stamp(job_dir, record, provenance)
    return _update(job_dir, record, status="done")


def _stamp(job_dir: Path, record: JobRecord, settings: ProvenanceSettings | None) -> JobRecord:
    """Write provenance into the job's files; what could not be written is said in the region's notes."""
    if settings is None:
        try:
            settings = ProvenanceSettings.load()
        except BadInputError as e:
            log.warning("%s; using the default provenance settings", e)
            settings = ProvenanceSettings()
    try:
        report = stamp_job(job_dir, job_to_json(record), settings)
    except Exception as e:  # the job's files are all there: a provenance bug must not fail it
        log.warning("job %s: provenance not written (%s: %s)", record.id, type(e).__name__, e, exc_info=True)
        report = StampReport(problems=(f"not written ({type(e).__name__}: {e})",))
    if not report.problems:
        return record
    said = "; ".join("provenance: " + p for p in report.problems[:3])
    notes = f"{record.region.notes}; {said}" if record.region.notes else said
    return dataclasses.replace(record, region=dataclasses.replace(record.region, notes=notes))


def run_job(
    engine: Engine,
    request: GenerationRequest,
    out_dir: Path,
    on_progress: OnProgress | None = None,
    cancel: CancelToken | None = None,
) -> JobRecord:
    """Create a job folder under ``out_dir``, run the engine in it and return the final record."""
    record = create_job(request, out_dir, engine.name)
    return execute_job(engine, request, out_dir, record, on_progress, cancel)


def _update(job_dir: Path, record: JobRecord, status: Status, **changes: Any) -> JobRecord:
    now = now_iso()
    if status in FINAL_STATUSES:
        changes["finished"] = now
    new = dataclasses.replace(record, status=status, updated=now, **changes)
    write_job(job_dir, new)
    log.info("job %s: %s", new.id, status)
    return new


def failure_message(error: BaseException) -> str:
    """What a failed job says about ``error``, for people."""
    if isinstance(error, MemoryError):
        detail = f" ({error})" if str(error) else ""
        return (
            f"Segue ran out of memory{detail}: ask for fewer bars or variants, or close other programs, and run "
            "it again"
        )
    if isinstance(error, KeyboardInterrupt):
        return "cancelled by the user (interrupted)"
    return str(error) or type(error).__name__


def _finish(job_dir: Path, record: JobRecord, status: Status, error: BaseException, started: float) -> JobRecord:
    message = failure_message(error)
    partial = partial_variant_dirs(job_dir)
    if partial:
        message += f" (incomplete variant folders left in the job folder: {', '.join(partial)})"
    timings = {**record.timings, "wall_seconds": round(time.perf_counter() - started, 3)}
    return _update(
        job_dir,
        record,
        status=status,
        error=ErrorRecord(message=message, type=type(error).__name__, partial_variants=partial),
        timings=timings,
    )


def _check_result(job_dir: Path, result: GenerationResult) -> str:
    """Why the engine's result cannot be called done, or "" if it can."""
    if not result.variants:
        return "the engine returned no variants"
    missing = []
    for variant in result.variants:
        if not variant.files:
            missing.append(f"{variant.id}: no files")
        for rel in variant.files.values():
            pure = PurePosixPath(rel)
            if pure.is_absolute() or ".." in pure.parts or not (job_dir / pure).is_file():
                missing.append(rel)
    if missing:
        return "the engine reported files that are not in the job folder: " + ", ".join(missing[:5])
    return ""


def _with_result(
    record: JobRecord, request: GenerationRequest, result: GenerationResult, wall_seconds: float
) -> JobRecord:
    info = result.region
    start = request.prompt.start_beats
    region = dataclasses.replace(
        record.region,
        tempo_bpm=info.tempo_bpm,
        meter=str(info.meter),
        length_beats=info.length_beats,
        length_bars=info.length_bars,
        sample_rate=info.sample_rate,
        parts=tuple(info.parts),
        notes=info.notes,
    )
    variants = tuple(
        VariantRecord(v.id, v.seed, dict(v.files), v.duration_seconds, tuple(v.parts)) for v in result.variants
    )
    return dataclasses.replace(
        record,
        kind=result.kind,
        mode=result.mode,
        model=result.model,
        region=region,
        place_at=PlaceAt(
            beats=result.place_at_beats,
            seconds=result.place_at_seconds,
            timeline_beats=start + result.place_at_beats if start is not None else None,
        ),
        variants=variants,
        timings={**{k: float(v) for k, v in result.timings.items()}, "wall_seconds": round(wall_seconds, 3)},
        file_sources=dict(result.file_sources),
    )


def mark_stopped(job_dir: Path) -> JobRecord:
    """Record a job as ``cancelled`` when its worker was abandoned (a second Ctrl-C); keeps a final status."""
    record = load_job(job_dir)
    if record.status in FINAL_STATUSES:
        return record
    error = ErrorRecord(
        message="stopped by the user before the engine finished; the variant folders may be incomplete",
        type="KeyboardInterrupt",
        partial_variants=partial_variant_dirs(job_dir),
    )
    return _update(job_dir, record, status="cancelled", error=error)


def ensure_failed(job_dir: Path, record: JobRecord, error: BaseException) -> JobRecord:
    """The job's final record after ``error`` escaped :func:`execute_job`: what job.json says when it is final
    (execute_job recorded it), else ``failed`` with the reason, written when the disk and memory allow (if not,
    the job is let go, and the next start recovers it as interrupted)."""
    try:
        on_disk = load_job(job_dir)
        if on_disk.status in ("done", "failed", "cancelled"):
            return on_disk
    except BaseException:  # noqa: S110 - unreadable: write the failure below
        pass
    now = now_iso()
    message = failure_message(error)
    failed = dataclasses.replace(
        record, status="failed", updated=now, finished=now, error=ErrorRecord(message, type(error).__name__)
    )
    try:
        write_job(job_dir, failed)
    except BaseException as e:
        release_job(job_dir)
        log_quietly(f"job {record.id}: could not record its failure ({message})", e)
    return failed


def log_quietly(what: str, error: BaseException) -> None:
    """Log an error with its traceback, or, when even that fails (no memory left), as little as possible."""
    try:
        log.error("%s", what, exc_info=error)
    except BaseException:  # noqa: S110 - logging itself failed: nothing more can be done
        pass


def record_cancelled(job_dir: Path, record: JobRecord, message: str) -> None:
    now = now_iso()
    error = ErrorRecord(message=message, type="CancelledError")
    write_job(job_dir, dataclasses.replace(record, status="cancelled", updated=now, finished=now, error=error))
    log.info("job %s: cancelled (%s)", record.id, message)

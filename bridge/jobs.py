"""Jobs on disk: one folder per job, ``OUT/<job_id>/job.json`` as its manifest (see shared/DESIGN.md).

``job.json`` is rewritten atomically (:func:`engine.atomic.write_bytes`: a temp file in the same folder, checked,
then renamed) at every status change: ``queued`` -> ``running`` -> ``done`` | ``failed`` | ``cancelled``. A job
folder is never reused or overwritten: it is created with ``mkdir(exist_ok=False)`` and a new random suffix is
tried on a collision. Job ids sort by time and say what the job is: ``20261121-235959-myregion-continue-3f2a``.

The process that makes a job folder owns it (:mod:`engine.ownership`: a lock on ``.owner``) until it writes the
job's final status, so a job whose owner died (``kill -9``, a power cut) can be told from one that another Segue
is running: :func:`recover_jobs`, called when the CLI, the bridge and the app start, marks the dead ones
``failed`` ("interrupted: ...") and removes the temp files they left. When the disk fills up mid-job, the folder's
reserve is given back so that the final ``failed`` status can still be written.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import secrets
import shutil
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, get_args

from engine import atomic
from engine.api import to_jsonable
from engine.errors import BadInputError, DiskFullError
from engine.ownership import FolderClaim, manifest_status, stale_folders

log = logging.getLogger(__name__)

JOB_FILE = "job.json"
SCHEMA_VERSION = 1
Status = Literal["queued", "running", "done", "failed", "cancelled"]
STATUSES: tuple[str, ...] = get_args(Status)
FINAL_STATUSES = ("done", "failed", "cancelled")
_CREATE_ATTEMPTS = 20
INTERRUPTED = "interrupted: Segue stopped while this job ran; run it again"
_claims: dict[Path, FolderClaim] = {}  # the job folders this process owns (absolute path -> claim)
_claims_lock = threading.Lock()
_STEM_MAX_CHARS = 32


@dataclass(frozen=True)
class ParamsRecord:
    bars: int
    variants: int
    temperature: float
    top_p: float
    seed: int | None  # as requested; None: random (each variant's seed is in its record)
    parts: tuple[str, ...] = ()  # accompany: the parts asked for; () = the model's default set
    output: str = "auto"  # what an audio region becomes: auto | audio | midi | both
    # the producer's controls as asked for (engine.api.GenerationParams); None: the engine's measured default
    similarity: float | None = None
    keep_opening: bool | None = None
    density: float | None = None
    part_density: Mapping[str, float] = field(default_factory=dict)  # part -> factor
    hold_notes: bool | None = None
    end_on_tonic: bool | None = None


@dataclass(frozen=True)
class SourceRecord:
    path: str  # absolute
    role: str  # "midi" | "audio" | "stem:<name>" (one track's audio of the region, in the order given)
    sha256: str
    size_bytes: int


@dataclass(frozen=True)
class RegionRecord:
    sources: tuple[SourceRecord, ...]
    tempo_bpm: float | None = None
    meter: str | None = None  # "4/4"
    length_beats: float | None = None  # quarter notes
    length_bars: int | None = None
    start_beats: float | None = None  # on the DAW timeline, when the DAW told it
    sample_rate: int | None = None
    parts: tuple[str, ...] = ()
    notes: str = ""  # what the engine adjusted, said plainly


@dataclass(frozen=True)
class PlaceAt:
    beats: float  # from the region's start
    seconds: float  # from the region's start
    timeline_beats: float | None = None  # start_beats + beats, when the region's position is known


@dataclass(frozen=True)
class VariantRecord:
    id: str
    seed: int
    files: Mapping[str, str]  # role -> path relative to the job folder
    duration_seconds: float
    parts: tuple[str, ...] = ()


@dataclass(frozen=True)
class ErrorRecord:
    message: str
    type: str  # the exception's class name, e.g. "BadInputError"
    partial_variants: tuple[str, ...] = ()  # variant folders left behind; their files are incomplete


@dataclass(frozen=True)
class JobRecord:
    """The manifest of one job, as stored in ``job.json``. Copy with :func:`dataclasses.replace`."""

    id: str
    status: Status
    mode: str
    kind: str  # "midi" | "audio"
    model: str
    engine: str
    params: ParamsRecord
    region: RegionRecord
    created: str  # ISO 8601 with the local UTC offset
    updated: str
    segue_version: str
    place_at: PlaceAt | None = None
    variants: tuple[VariantRecord, ...] = ()
    error: ErrorRecord | None = None
    timings: Mapping[str, float] = field(default_factory=dict)
    # which engine and model wrote each file role ("audio": "audio:segue-audio-small", "midi": "midi:..."),
    # when a job mixes engines (a region given as audio and MIDI)
    file_sources: Mapping[str, str] = field(default_factory=dict)
    started: str | None = None
    finished: str | None = None
    schema_version: int = SCHEMA_VERSION

    @property
    def finished_ok(self) -> bool:
        return self.status == "done"


def now_iso() -> str:
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


def sanitize_stem(stem: str) -> str:
    """A file stem made safe and short for a folder name.

    ``"My Region (take 2)"`` -> ``"my-region-take-2"``.
    """
    text = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")
    return text[:_STEM_MAX_CHARS].rstrip("-") or "region"


def make_job_id(stem: str, mode: str, when: datetime | None = None, suffix: str | None = None) -> str:
    """``<yyyymmdd>-<hhmmss>-<stem>-<mode>-<4 hex>``, local time, so ids sort by creation time."""
    when = when or datetime.now()
    suffix = suffix or secrets.token_hex(2)
    return f"{when:%Y%m%d-%H%M%S}-{sanitize_stem(stem)}-{sanitize_stem(mode)}-{suffix}"


def create_job_dir(out_dir: Path, stem: str, mode: str) -> tuple[str, Path]:
    """Create a new, empty job folder under ``out_dir``; never reuses an existing one."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        if atomic.is_disk_full(e):
            raise atomic.disk_full_error(out_dir, None) from e
        raise BadInputError(
            f"cannot create the output folder {out_dir}: {e.strerror or e}; choose another one (--out DIR)"
        ) from e
    for _ in range(_CREATE_ATTEMPTS):
        job_id = make_job_id(stem, mode)
        job_dir = out_dir / job_id
        try:
            job_dir.mkdir(exist_ok=False)
        except FileExistsError:
            log.debug("job folder %s exists; trying another suffix", job_dir)
            continue
        except OSError as e:
            if atomic.is_disk_full(e):
                raise atomic.disk_full_error(out_dir, None) from e
            raise BadInputError(f"cannot create a job folder in {out_dir}: {e.strerror or e}") from e
        try:
            claim = FolderClaim.take(job_dir)
        except BaseException as e:
            shutil.rmtree(job_dir, ignore_errors=True)  # only what we just made: the folder and its .owner
            if isinstance(e, DiskFullError):
                raise DiskFullError(str(out_dir), e.free_mb) from e
            raise
        with _claims_lock:
            _claims[job_dir.absolute()] = claim
        return job_id, job_dir
    raise BadInputError(f"could not find a free job folder name in {out_dir} after {_CREATE_ATTEMPTS} tries")


def job_to_json(record: JobRecord) -> dict[str, Any]:
    """Plain JSON values (dicts, lists, strings, numbers, null) in the documented key order."""
    data: dict[str, Any] = to_jsonable(record)
    return data


def dumps_job(record: JobRecord) -> str:
    return json.dumps(job_to_json(record), indent=2, ensure_ascii=False) + "\n"


def write_job(job_dir: Path, record: JobRecord) -> Path:
    """Write ``job_dir/job.json`` atomically: readers see the old or the new manifest, never half of one.

    A final status ends this process's ownership of the folder. When the disk is full, the folder's reserve is
    used for a final status; :class:`~engine.errors.DiskFullError` if even that does not fit.
    """
    target = job_dir / JOB_FILE
    data = dumps_job(record).encode("utf-8")
    with _claims_lock:
        claim = _claims.get(job_dir.absolute())
    if claim is not None and record.status in FINAL_STATUSES:
        claim.retry_on_full(lambda: atomic.write_bytes(target, data))
        release_job(job_dir)
    else:
        atomic.write_bytes(target, data)
    log.debug("job %s: wrote %s (%s)", record.id, target, record.status)
    return target


def release_job(job_dir: Path) -> None:
    """Stop owning ``job_dir`` (its final status is written, or it is being removed). Safe to call twice."""
    with _claims_lock:
        claim = _claims.pop(job_dir.absolute(), None)
    if claim is not None:
        claim.release()


def discard_job_dir(job_dir: Path) -> None:
    """Remove a job folder this process has just made and could not start (nothing of the user's is in it)."""
    release_job(job_dir)
    shutil.rmtree(job_dir, ignore_errors=True)


def recover_jobs(out_dir: Path) -> list[str]:
    """Mark the jobs under ``out_dir`` that say ``queued`` or ``running`` but that no live Segue owns (their
    process was killed) ``failed`` with :data:`INTERRUPTED`, and remove the temp files dead writers left.
    Returns the ids of the jobs recovered. Never raises: what cannot be recovered is logged."""
    recovered: list[str] = []
    try:
        for job_dir, _status, claim in stale_folders(out_dir, manifest_status):
            try:
                record = load_job(job_dir)
                now = now_iso()
                partial = partial_variant_dirs(job_dir)
                error = ErrorRecord(message=INTERRUPTED, type="interrupted", partial_variants=partial)
                done = dataclasses.replace(record, status="failed", updated=now, finished=now, error=error)
                atomic.write_bytes(job_dir / JOB_FILE, dumps_job(done).encode("utf-8"))
                recovered.append(record.id)
                log.warning("job %s was %s when its Segue stopped: marked failed", record.id, record.status)
            except (BadInputError, DiskFullError, OSError) as e:
                log.warning("could not recover the job in %s: %s", job_dir, e)
            finally:
                claim.release()
    except OSError as e:
        log.warning("could not look for interrupted jobs in %s: %s", out_dir, e)
    return recovered


def load_job(path: Path) -> JobRecord:
    """Read a job folder's (or a job.json file's) manifest; :class:`BadInputError` if it is not one."""
    file = path / JOB_FILE if path.is_dir() else path
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise BadInputError(f"{file} does not exist; is {path} a Segue job folder?") from e
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadInputError(f"cannot read {file}: {e}") from e
    try:
        return job_from_json(data)
    except (KeyError, TypeError, ValueError) as e:
        raise BadInputError(f"{file} is not a valid Segue job manifest: {e}") from e


def job_from_json(data: Any) -> JobRecord:
    """Rebuild a :class:`JobRecord` from :func:`job_to_json`'s output; keys this version does not know are
    ignored, so an older Segue can still list a newer one's jobs."""
    if not isinstance(data, dict):
        raise TypeError("the manifest must be a JSON object")
    if data.get("status") not in STATUSES:
        raise ValueError(f"unknown status {data.get('status')!r}; expected one of {', '.join(STATUSES)}")
    region = _known(RegionRecord, data["region"])
    region["sources"] = tuple(SourceRecord(**_known(SourceRecord, s)) for s in region["sources"])
    region["parts"] = tuple(region.get("parts", ()))
    job = _known(JobRecord, data)
    params = _known(ParamsRecord, data["params"])
    params["parts"] = tuple(str(p) for p in params.get("parts", ()))  # job.json files before parts: ()
    params["output"] = str(params.get("output", "auto"))
    params["part_density"] = {str(k): float(v) for k, v in (params.get("part_density") or {}).items()}
    job["params"] = ParamsRecord(**params)
    job["region"] = RegionRecord(**region)
    if job.get("place_at") is not None:
        job["place_at"] = PlaceAt(**_known(PlaceAt, job["place_at"]))
    if job.get("error") is not None:
        error = _known(ErrorRecord, job["error"])
        error["partial_variants"] = tuple(error.get("partial_variants", ()))
        job["error"] = ErrorRecord(**error)
    variants = []
    for v in job.get("variants", ()):
        variant = _known(VariantRecord, v)
        variant["files"] = dict(variant["files"])
        variant["parts"] = tuple(variant.get("parts", ()))
        variants.append(VariantRecord(**variant))
    job["variants"] = tuple(variants)
    job["timings"] = {str(k): float(v) for k, v in job.get("timings", {}).items()}
    job["file_sources"] = {str(k): str(v) for k, v in job.get("file_sources", {}).items()}
    return JobRecord(**job)


def _known(cls: type[Any], data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise TypeError(f"{cls.__name__} must be a JSON object, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def list_jobs(out_dir: Path) -> list[tuple[Path, JobRecord]]:
    """Every job folder under ``out_dir`` with a readable manifest, oldest first (by ``created``).

    Folders without one, or with a damaged one, are logged and skipped.
    """
    if not out_dir.is_dir():
        return []
    jobs: list[tuple[Path, JobRecord]] = []
    for child in sorted(out_dir.iterdir()):
        if not (child / JOB_FILE).is_file():
            continue
        try:
            jobs.append((child, load_job(child)))
        except BadInputError as e:
            log.warning("skipping %s: %s", child, e)
    return sorted(jobs, key=lambda job: (_created_key(job[1]), job[1].id))


def _created_key(record: JobRecord) -> float:
    """Creation time as a number (ids sort only to the second); unreadable timestamps sort first."""
    try:
        return datetime.fromisoformat(record.created).timestamp()
    except ValueError:
        return 0.0


def partial_variant_dirs(job_dir: Path) -> tuple[str, ...]:
    """Names of the variant folders (``v01``...) present in a job folder."""
    return tuple(sorted(p.name for p in job_dir.glob("v[0-9][0-9]*") if p.is_dir()))

"""The server's jobs on its own disk: ``DATA/jobs/<job_id>/job.json``, the uploads, the engine's files.

::

    DATA/jobs/<id>/job.json          the server's manifest (status, request, inputs, progress, result, files);
                                     written atomically at every change
    DATA/jobs/<id>/region/region.mid the uploads, under names the server picks (region.mid, region.wav, ...)
    DATA/jobs/<id>/v01/...           what the engine wrote, exactly as in a local job folder

Each job also lives in memory as a :class:`ServerJob` with its events (status and progress, numbered, so a
client that lost its stream can ask for what it missed). The server owns each job folder until the job is final
(:mod:`engine.ownership`, as local jobs are owned). When the server starts, jobs left ``running`` by a server
that stopped are marked ``failed`` with a message that says so; ``queued`` ones are queued again; a job that
another live server owns (two servers on one data folder) is left to it. The temp files a stopped server left
are removed. Finished jobs keep their files until a client deletes them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.api import CancelToken
from engine.atomic import disk_full_error, is_disk_full, write_json
from engine.errors import DiskFullError
from engine.ownership import FolderClaim, manifest_status, stale_folders
from engine.wire import is_job_id

log = logging.getLogger(__name__)

JOB_FILE = "job.json"
REGION_DIR = "region"
FINAL = ("done", "failed", "cancelled")
INTERRUPTED = (
    "the Segue server stopped while this job was running (it was restarted at {when}); its partial files "
    "were discarded: submit the job again"
)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def write_json_atomically(path: Path, data: Any) -> None:
    write_json(path, data)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ServerJob:
    """One job: its folder, its manifest (a plain dict, saved as job.json) and its numbered events."""

    def __init__(self, folder: Path, record: dict[str, Any], claim: FolderClaim | None = None) -> None:
        self.folder = folder
        self.claim = claim  # this server owns the folder until the job is final
        self.cancel = CancelToken()
        self._record = record
        self._lock = threading.Lock()
        self._events: list[dict[str, Any]] = []
        self._add_event("status", self._status_data())

    @property
    def id(self) -> str:
        return str(self._record["id"])

    @property
    def status(self) -> str:
        with self._lock:
            return str(self._record["status"])

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(self._record))  # type: ignore[no-any-return]

    def events_after(self, seq: int) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self._events if e["seq"] > seq]

    def update(self, **changes: Any) -> dict[str, Any]:
        """Change the manifest, save it, and add a status event when the status changed."""
        with self._lock:
            old_status = self._record["status"]
            if old_status in FINAL and changes.get("status", old_status) != old_status:
                return dict(self._record)  # a final status is final (a cancel racing the end)
            self._record.update(changes, updated=now_iso())
            final = self._record["status"] in FINAL
            if final and not self._record.get("finished"):
                self._record["finished"] = self._record["updated"]
            record = self._record
            if final and self.claim is not None:  # a full disk: the folder's reserve makes room for the last word
                self.claim.retry_on_full(lambda: write_json_atomically(self.folder / JOB_FILE, record))
                self.claim.release()
                self.claim = None
            else:
                write_json_atomically(self.folder / JOB_FILE, self._record)
            if self._record["status"] != old_status:
                self._add_event("status", self._status_data())
            return dict(self._record)

    def progress(self, fraction: float, message: str) -> None:
        """Progress is kept in memory (events) and saved now and then, not at every step."""
        fraction = max(0.0, min(1.0, float(fraction)))
        with self._lock:
            last = self._record.get("progress") or {}
            self._record["progress"] = {"fraction": fraction, "message": message}
            self._add_event("progress", {"fraction": fraction, "message": message})
            save = fraction - float(last.get("fraction", 0.0)) >= 0.1 or message != last.get("message")
            if save:
                write_json_atomically(self.folder / JOB_FILE, self._record)

    def _status_data(self) -> dict[str, Any]:
        return {"status": self._record["status"], "error": self._record.get("error")}

    def _add_event(self, kind: str, data: dict[str, Any]) -> None:
        self._events.append({"seq": len(self._events) + 1, "event": kind, "data": data})
        if len(self._events) > 2000:  # a long job's progress: keep the first (status) and the recent ones
            del self._events[1:1000]


class JobStore:
    """Every job of this server, loaded from ``DATA/jobs`` at start."""

    def __init__(self, data_dir: Path, server_id: str = "") -> None:
        self.root = data_dir / "jobs"
        self.server_id = server_id
        self._jobs: dict[str, ServerJob] = {}
        self._lock = threading.Lock()

    def load(self) -> list[ServerJob]:
        """Read the jobs on disk; returns the ``queued`` ones, to be queued again (oldest first)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            from engine.errors import BadInputError

            raise BadInputError(f"cannot create the server's data folder {self.root}: {e.strerror or e}") from e
        for trash in self.root.glob(".deleted-*"):  # a deletion the last server did not finish
            shutil.rmtree(trash, ignore_errors=True)
        requeue: list[ServerJob] = []
        restarted = now_iso()
        stale = {folder: claim for folder, _status, claim in stale_folders(self.root, manifest_status)}
        for folder in sorted(self.root.iterdir()):
            manifest = folder / JOB_FILE
            if not folder.is_dir() or not is_job_id(folder.name) or not manifest.is_file():
                continue
            try:
                record = json.loads(manifest.read_text(encoding="utf-8"))
                if not isinstance(record, dict) or record.get("id") != folder.name:
                    raise ValueError("the manifest's id is not its folder's name")
            except (OSError, ValueError) as e:
                log.warning("skipping job folder %s: %s", folder, e)
                continue
            claim = stale.pop(folder, None)
            if record.get("status") in ("running", "queued") and claim is None:
                log.warning("job %s belongs to another running server; left to it", folder.name)
                continue
            job = ServerJob(folder, record, claim)
            if record.get("status") == "running":
                for partial in folder.glob("v[0-9][0-9]*"):
                    shutil.rmtree(partial, ignore_errors=True)
                message = INTERRUPTED.format(when=restarted)
                job.update(status="failed", error={"message": message, "type": "interrupted"})
                log.warning("job %s was running when the server stopped: marked failed", job.id)
            elif record.get("status") == "queued":
                requeue.append(job)
            with self._lock:
                self._jobs[job.id] = job
        log.info("loaded %d job(s) from %s (%d queued again)", len(self._jobs), self.root, len(requeue))
        return sorted(requeue, key=lambda j: str(j.snapshot().get("created", "")))

    def create(self, record: dict[str, Any]) -> ServerJob:
        """A new job folder with a fresh id; ``record`` gets ``id``, ``status`` and times."""
        for _ in range(20):
            stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
            prefix = f"{self.server_id}-" if self.server_id else ""
            job_id = f"{prefix}{stamp}-{secrets.token_hex(4)}"
            folder = self.root / job_id
            try:
                folder.mkdir(parents=True, exist_ok=False)
            except FileExistsError:
                continue
            created = now_iso()
            full = {"id": job_id, "status": "queued", "created": created, "updated": created, **record}
            try:
                claim = FolderClaim.take(folder)
                (folder / REGION_DIR).mkdir()
                write_json_atomically(folder / JOB_FILE, full)
            except BaseException as e:  # a full disk: no folder is left claiming a job
                shutil.rmtree(folder, ignore_errors=True)
                if is_disk_full(e) and not isinstance(e, DiskFullError):
                    raise disk_full_error(folder, None) from e
                raise
            job = ServerJob(folder, full, claim)
            with self._lock:
                self._jobs[job_id] = job
            return job
        raise RuntimeError("could not find a free job id")  # pragma: no cover - 32 random bits, 20 tries

    def get(self, job_id: str) -> ServerJob | None:
        if not is_job_id(job_id):
            return None
        with self._lock:
            return self._jobs.get(job_id)

    def all(self) -> list[ServerJob]:
        with self._lock:
            return list(self._jobs.values())

    def queued_count(self) -> int:
        return sum(1 for job in self.all() if job.status == "queued")

    def prune(self, keep_s: float) -> list[str]:
        """Delete the finished jobs that finished more than ``keep_s`` seconds ago; returns their ids."""
        cutoff = datetime.now(UTC).timestamp() - keep_s
        removed = []
        for job in self.all():
            record = job.snapshot()
            if record.get("status") not in FINAL:
                continue
            try:
                finished = datetime.fromisoformat(str(record.get("finished") or record.get("updated"))).timestamp()
            except ValueError:
                continue
            if finished < cutoff:
                self.delete(job)
                removed.append(job.id)
        if removed:
            log.info("removed %d finished job(s) older than %.1f days", len(removed), keep_s / 86400)
        return removed

    def close(self) -> None:
        """Stop owning the job folders (the server stops): what is still queued or running is another server's
        to take. Safe to call twice."""
        for job in self.all():
            claim, job.claim = job.claim, None
            if claim is not None:
                claim.release()

    def delete(self, job: ServerJob) -> None:
        with self._lock:
            self._jobs.pop(job.id, None)
        if job.claim is not None:  # a job that could not be stored (its upload did not fit)
            job.claim.release()
            job.claim = None
        trash = job.folder.with_name(f".deleted-{job.id}")
        os.replace(job.folder, trash)  # atomic: a half-deleted job is never listed
        shutil.rmtree(trash, ignore_errors=True)

    def __iter__(self) -> Iterator[ServerJob]:
        return iter(self.all())

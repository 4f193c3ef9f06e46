"""One worker thread per device, all taking jobs from one queue; each has its own engine.

A job's variants run as one batch on its worker's device (the engine batches them). A job cancelled while
queued never starts; one cancelled while running stops at the engine's next check of its token.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

from engine.api import Engine, GenerationRequest, to_jsonable
from engine.errors import BadInputError, CancelledError, EngineError, SegueError
from engine.server.store import JobStore, ServerJob, now_iso, sha256_file
from engine.wire import check_result_path

log = logging.getLogger(__name__)

STOPPED = "the Segue server was stopped while this job was running; submit the job again"
EngineFactory = Callable[[str], Engine]
"""``factory(device) -> Engine``: the local engine on that device, or a test's fake."""


def local_engine_factory(device: str) -> Engine:
    """The local engine on ``device``, with ``SEGUE_THREADS`` threads and the ``SEGUE_*`` decode settings (as
    :func:`engine.entrypoints.open_engine`)."""
    from engine.environment import Environment
    from engine.local import LocalEngine

    environment = Environment.read()
    return LocalEngine(device=device, threads=environment.threads, decode=environment.decode)


class Workers:
    def __init__(self, store: JobStore, devices: tuple[str, ...], factory: EngineFactory) -> None:
        self.store = store
        self.devices = devices
        self._factory = factory
        self._queue: queue.Queue[tuple[ServerJob, GenerationRequest]] = queue.Queue()
        self._engines: dict[str, Engine] = {}
        self._engine_lock = threading.Lock()
        self._busy: dict[str, str | None] = dict.fromkeys(devices)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(d,), name=f"segue-worker-{d}", daemon=True) for d in devices
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Cancel the running jobs and let the workers finish; what is still running is failed at next start."""
        self._stop.set()
        for job in self.store.all():
            if job.status == "running":
                job.cancel.cancel()
        for thread in self._threads:
            thread.join(timeout_s / max(1, len(self._threads)))
        self.store.close()  # the queued jobs stay queued on disk, for the next server to take

    def submit(self, job: ServerJob, request: GenerationRequest) -> None:
        self._queue.put((job, request))

    def engine(self, device: str | None = None) -> Engine:
        """The engine of ``device`` (default: the first), made on first use."""
        device = device or self.devices[0]
        with self._engine_lock:
            if device not in self._engines:
                self._engines[device] = self._factory(device)
            return self._engines[device]

    def device_states(self) -> list[dict[str, Any]]:
        return [{"name": d, "busy": self._busy[d] is not None, "job_id": self._busy[d]} for d in self.devices]

    def _run(self, device: str) -> None:
        try:  # load the engine now, not on the first job (the local engine imports torch)
            self.engine(device)
        except Exception:  # each job will report it
            log.exception("the engine for %s could not start", device)
        while not self._stop.is_set():
            try:
                job, request = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if job.status != "queued" or job.cancel.cancelled:
                continue  # cancelled (or deleted) while it waited
            self._busy[device] = job.id
            try:
                self._execute(job, request, device)
            except Exception:  # a worker never dies
                log.exception("job %s: unexpected failure on %s", job.id, device)
            finally:
                self._busy[device] = None

    def _execute(self, job: ServerJob, request: GenerationRequest, device: str) -> None:
        job.update(status="running", device=device, started=now_iso())
        log.info("job %s: running on %s", job.id, device)
        try:
            engine = self.engine(device)
            result = engine.generate(request, job.folder, job.progress, job.cancel)
            _stamp(job, request, result)
            files = _result_files(job, result.variants)
        except CancelledError:
            if self._stop.is_set():  # the server is stopping, not the user cancelling
                job.update(status="failed", error={"message": STOPPED, "type": "interrupted"})
            else:
                job.update(status="cancelled", error={"message": "cancelled by the user", "type": "cancelled"})
            return
        except BadInputError as e:
            job.update(status="failed", error={"message": str(e), "type": "bad_input"})
            return
        except SegueError as e:
            job.update(status="failed", error={"message": str(e), "type": "engine"})
            return
        except Exception as e:
            log.exception("job %s failed", job.id)
            message = f"unexpected error on the server: {type(e).__name__}: {e}"
            job.update(status="failed", error={"message": message, "type": "engine"})
            return
        job.update(status="done", result=to_jsonable(result), files=files, progress={"fraction": 1.0,
                   "message": "done"})  # fmt: skip
        log.info("job %s: done (%d file(s))", job.id, len(files))


def _stamp(job: ServerJob, request: GenerationRequest, result: Any) -> None:
    """Provenance in the job's files (engine.provenance), before they are hashed for the client; a failure is
    logged, never the job's end."""
    try:
        import socket

        from engine.provenance.record import ProvenanceSettings
        from engine.provenance.stamp import stamp_result

        engine_name = f"segue serve on {socket.gethostname()}"
        stamp_result(job.folder, job.id, request, result, engine_name, ProvenanceSettings.load())
    except Exception:  # the files are all there; a provenance bug must not fail the job
        log.warning("job %s: provenance not written", job.id, exc_info=True)


def _result_files(job: ServerJob, variants: Any) -> list[dict[str, Any]]:
    """Every file the engine listed, checked to be a result path inside the job folder, with size and hash."""
    files = []
    for variant in variants:
        for rel in variant.files.values():
            try:
                pure: PurePosixPath = check_result_path(rel)
            except BadInputError as e:
                raise EngineError(f"the engine reported a file outside the variant folders: {rel!r}") from e
            path = job.folder / pure
            if not path.is_file():
                raise EngineError(f"the engine reported a file it did not write: {rel}")
            files.append({"path": rel, "size_bytes": path.stat().st_size, "sha256": sha256_file(path)})
    return files

"""The HTTP API of ``segue serve`` (FastAPI): submit, follow, cancel, download, list models and devices.

Every route but ``GET /v1/health`` needs ``Authorization: Bearer TOKEN`` when the server has a token (compared
in constant time). Requests from browsers (an ``Origin`` header) are refused, and a server without a token
answers only requests addressed to a loopback name, so a web page cannot drive it. Uploads are limited in size
before and while they are read, recognised by their content, and stored under names the server picks.
"""

# No `from __future__ import annotations` here: FastAPI reads the route functions' annotations at run time, and
# they name objects local to create_app (the bearer scheme).
import asyncio
import json
import logging
import tempfile
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, File, Form, Header, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from engine.api import MAX_STEMS, GenerationRequest
from engine.atomic import write_stream
from engine.errors import BadInputError, DiskFullError
from engine.server.config import ServerConfig
from engine.server.guard import GuardMiddleware, token_detail, token_matches
from engine.server.store import FINAL, REGION_DIR, JobStore, ServerJob, sha256_file
from engine.server.views import (
    DeviceView,
    Health,
    JobView,
    ModelView,
    ResultFile,
    errors,
    public_record,
    view,
)
from engine.server.workers import EngineFactory, Workers, local_engine_factory
from engine.wire import (
    API_PREFIX,
    check_upload_name,
    parse_request_json,
    request_from_json,
    sniff_upload,
    stem_names,
)

log = logging.getLogger(__name__)

SSE_POLL_S = 0.1
PRUNE_EVERY_S = 3600.0
SSE_KEEPALIVE_S = 1.0
INTERNAL_ERROR = "internal error on the server; its log has the details"


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("segue")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def create_app(config: ServerConfig, engine_factory: EngineFactory | None = None) -> FastAPI:
    """The app for ``config`` (checked first). Jobs are loaded and the workers started when the app starts."""
    config.check()
    store = JobStore(config.data_dir, config.server_id)
    workers = Workers(store, config.devices, engine_factory or local_engine_factory)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for job in store.load():
            try:
                workers.submit(job, _request_of(job))
            except BadInputError as e:
                job.update(status="failed", error={"message": f"cannot run again: {e}", "type": "bad_input"})
        workers.start()
        app.state.running = True
        pruner = asyncio.create_task(_prune_now_and_then(store, config.keep_days * 86400))
        yield
        app.state.running = False
        pruner.cancel()
        await asyncio.to_thread(workers.stop)

    app = FastAPI(
        title="Segue engine server",
        version=_version(),
        description="Continue a DAW region with Segue's engines on this machine (docs/remote.md).",
        lifespan=lifespan,
        openapi_url=None,  # served below, behind the token
        docs_url=None,
        redoc_url=None,
    )
    app.state.store, app.state.workers, app.state.running = store, workers, False
    bearer = HTTPBearer(auto_error=False, description="the token given to `segue serve --token`")

    def require_token(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if config.token is None:
            return
        if credentials is None or not token_matches(credentials.credentials, config.token):
            what = "a missing" if credentials is None else "a wrong"
            raise HTTPException(401, detail=token_detail(what), headers={"WWW-Authenticate": "Bearer"})

    public = APIRouter(prefix=API_PREFIX, responses=errors(403, 421))
    private = APIRouter(
        prefix=API_PREFIX, dependencies=[Depends(require_token)], responses=errors(400, 401, 403, 413, 421)
    )

    _info_routes(public, private, app, workers)
    _job_routes(private, app, store, workers, config)
    _file_routes(private, store)
    app.include_router(public)
    app.include_router(private)

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(require_token)])
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own answer repeats what was sent ("input"), which may be the bytes of an uploaded file
        detail = [{"type": str(e.get("type", "")), "loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))}
                  for e in exc.errors()]  # fmt: skip
        return JSONResponse(status_code=422, content={"detail": detail})

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)  # the detail stays here
        return JSONResponse(status_code=500, content={"detail": INTERNAL_ERROR})

    app.add_exception_handler(DiskFullError, _disk_full)
    app.add_middleware(GuardMiddleware, config=config)
    return app


def _info_routes(public: APIRouter, private: APIRouter, app: FastAPI, workers: Workers) -> None:
    """Health (no token), the installed models and the devices."""

    @public.get("/health", response_model=Health, summary="is the server up (no token needed)")
    def health() -> Health:
        return Health(status="ok" if app.state.running else "starting", version=_version())

    @private.get("/models", response_model=list[ModelView], summary="the models installed on this server")
    def models() -> list[ModelView]:
        return [
            ModelView(
                name=m.name,
                kind=m.kind,
                description=m.description,
                parameters=m.parameters,
                modes=list(m.modes),
                parts=list(m.parts),
            )  # fmt: skip
            for m in workers.engine().models()
        ]

    @private.get("/devices", response_model=list[DeviceView], summary="the devices and what each one runs")
    def devices() -> list[DeviceView]:
        return [DeviceView(**d) for d in workers.device_states()]


def _job_routes(private: APIRouter, app: FastAPI, store: JobStore, workers: Workers, config: ServerConfig) -> None:
    """Submit, list, follow, cancel and delete jobs."""

    @private.get("/jobs", response_model=list[JobView], summary="every job on this server, oldest first")
    def list_jobs() -> list[JobView]:
        views = [view(job) for job in store.all()]
        return sorted(views, key=lambda v: (v.created, v.id))

    _submit_route(private, store, workers, config)

    @private.get(
        "/jobs/{job_id}", response_model=JobView, summary="a job's status, progress and result", responses=errors(404)
    )
    def get_job(job_id: str) -> JobView:
        return view(_find_job(store, job_id))

    @private.get(
        "/jobs/{job_id}/events",
        summary="a job's status and progress as server-sent events (resume with Last-Event-ID)",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}, **errors(404)},
    )
    async def job_events(
        job_id: str,
        after: Annotated[int, Query(ge=0, description="send only events after this id")] = 0,
        last_event_id: Annotated[str | None, Header()] = None,
    ) -> StreamingResponse:
        job = _find_job(store, job_id)
        start = after
        if last_event_id is not None and last_event_id.strip().isdigit():
            start = max(start, int(last_event_id.strip()))
        return StreamingResponse(
            _event_stream(job, start, lambda: bool(app.state.running)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @private.post(
        "/jobs/{job_id}/cancel",
        response_model=JobView,
        status_code=202,
        summary="cancel a job",
        responses=errors(404, 409),
    )
    def cancel_job(job_id: str) -> JobView:
        job = _find_job(store, job_id)
        if job.status in FINAL:
            raise HTTPException(409, detail=f"job {job_id} is already {job.status}")
        job.cancel.cancel()
        if job.status == "queued":
            job.update(status="cancelled", error={"message": "cancelled by the user", "type": "cancelled"})
        return view(job)

    @private.delete(
        "/jobs/{job_id}", status_code=204, summary="delete a finished job and its files", responses=errors(404, 409)
    )
    def delete_job(job_id: str) -> Response:
        job = _find_job(store, job_id)
        if job.status not in FINAL:
            raise HTTPException(409, detail=f"job {job_id} is {job.status}; cancel it first")
        store.delete(job)
        return Response(status_code=204)


def _submit_route(private: APIRouter, store: JobStore, workers: Workers, config: ServerConfig) -> None:
    """``POST /jobs``: check the request and its uploads, store them, queue the job."""

    @private.post("/jobs", response_model=JobView, status_code=201, summary="submit a job", responses=errors(415, 503))
    def submit(
        request: Annotated[str, Form(description="the parameters, JSON (see engine/wire.py request_to_json)")],
        midi: Annotated[UploadFile | None, File(description="the region as a Standard MIDI File")] = None,
        audio: Annotated[UploadFile | None, File(description="the region as WAV, FLAC or AIFF")] = None,
        stem: Annotated[
            list[UploadFile] | None,
            File(
                description="one track's audio of the region (WAV, FLAC or AIFF), once per name in the request's "
                "'stems', in that order"
            ),
        ] = None,
    ) -> JobView:
        uploads = {"midi": midi, "audio": audio}
        suffixes = {role: _check_upload(role, up) for role, up in uploads.items() if up is not None}
        placeholders: dict[str, Any] = {f"{role}_path": Path(f"{role}{s}") for role, s in suffixes.items()}
        stems = list(stem or [])
        try:  # NaN, deep nesting and numbers no region can have are refused here, before anything is stored
            data = parse_request_json(request)
            names = stem_names(data)
            if len(stems) > MAX_STEMS:
                raise BadInputError(f"at most {MAX_STEMS} stems per region, got {len(stems)} stem uploads")
            stem_suffixes = [_check_upload("audio", up, f"stem {i + 1}") for i, up in enumerate(stems)]
            placeholders["stem_paths"] = [Path(f"stem{s}") for s in stem_suffixes]
            parsed = request_from_json(data, **placeholders)
        except BadInputError as e:
            raise HTTPException(400, detail=str(e)) from e
        _check_model(parsed.model)
        if store.queued_count() >= config.max_queued_jobs:
            raise HTTPException(503, detail=f"the server's queue is full ({config.max_queued_jobs} jobs); try later")
        job = store.create({"request": data, "inputs": {}})
        try:
            inputs = _store_uploads(job, uploads, suffixes, list(zip(names, stems, stem_suffixes, strict=True)))
            job.update(inputs=inputs)
        except DiskFullError:  # the upload did not fit: no job is left waiting for it (507 below)
            store.delete(job)
            raise
        workers.submit(job, _request_of(job))
        log.info("job %s queued (%s)", job.id, ", ".join(inputs))
        return view(job)

    def _check_model(name: str) -> None:
        if name in ("", "default"):
            return
        names = [m.name for m in workers.engine().models()]
        if name not in names:  # never a path or another loader on the server
            raise HTTPException(
                400,
                detail=f"model {name!r} is not installed on this server; its models: {', '.join(names) or 'none'}",
            )


def _file_routes(private: APIRouter, store: JobStore) -> None:
    """A finished job's files: the list, one file, all of them as a zip."""

    def _done_files(job: ServerJob) -> list[dict[str, Any]]:
        record = job.snapshot()
        if record["status"] != "done":
            raise HTTPException(409, detail=f"job {job.id} is {record['status']}; its files exist once it is done")
        files: list[dict[str, Any]] = record.get("files") or []
        return files

    @private.get(
        "/jobs/{job_id}/files",
        response_model=list[ResultFile],
        summary="a finished job's files",
        responses=errors(404, 409),
    )
    def list_files(job_id: str) -> list[ResultFile]:
        return [ResultFile(**f) for f in _done_files(_find_job(store, job_id))]

    @private.get(
        "/jobs/{job_id}/files/{file_path:path}",
        summary="download one file of a finished job (a path from its file list)",
        response_class=FileResponse,
        responses={200: {"content": {"application/octet-stream": {}}}, **errors(404, 409)},
    )
    def download(job_id: str, file_path: str) -> FileResponse:
        job = _find_job(store, job_id)
        listed = {f["path"]: f for f in _done_files(job)}
        if file_path not in listed:  # only paths the engine wrote; the client's text never builds a path
            raise HTTPException(404, detail=f"job {job_id} has no file {file_path!r}")
        rel = listed[file_path]["path"]
        media = "audio/midi" if rel.endswith(".mid") else "audio/wav" if rel.endswith(".wav") else None
        return FileResponse(job.folder / rel, media_type=media or "application/octet-stream")

    @private.get(
        "/jobs/{job_id}/result.zip",
        summary="every file of a finished job in one zip (job folder layout)",
        response_class=StreamingResponse,
        responses={200: {"content": {"application/zip": {}}}, **errors(404, 409)},
    )
    def download_zip(job_id: str) -> StreamingResponse:
        job = _find_job(store, job_id)
        files = _done_files(job)
        spool = tempfile.TemporaryFile()
        with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_STORED) as archive:
            for f in files:
                archive.write(job.folder / f["path"], arcname=f["path"])
        spool.seek(0)
        return StreamingResponse(
            _chunks(spool),
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="{job.id}.zip"'},
        )


def _store_uploads(
    job: ServerJob,
    uploads: dict[str, UploadFile | None],
    suffixes: dict[str, str],
    stems: list[tuple[str, UploadFile, str]],
) -> dict[str, Any]:
    """Save the region's uploads (and its stems: name, upload, suffix) in the job's folder under names the server
    picks; returns the job's ``inputs`` record (file, size, SHA-256 of each)."""
    inputs: dict[str, Any] = {}
    for role, upload in uploads.items():
        if upload is None:
            continue
        rel = f"{REGION_DIR}/region{suffixes[role]}"
        _save_upload(upload, job.folder / rel)
        path = job.folder / rel
        inputs[role] = {"file": rel, "size_bytes": path.stat().st_size, "sha256": sha256_file(path)}
    stored = []
    for index, (name, upload, suffix) in enumerate(stems):
        rel = f"{REGION_DIR}/stem-{index + 1:02d}{suffix}"  # the server's name, not the client's
        path = job.folder / rel
        _save_upload(upload, path)
        stored.append({"name": name, "file": rel, "size_bytes": path.stat().st_size, "sha256": sha256_file(path)})
    if stored:
        inputs["stems"] = stored
    return inputs


def _find_job(store: JobStore, job_id: str) -> ServerJob:
    job = store.get(job_id)
    if job is None:
        raise HTTPException(404, detail=f"no job {job_id!r} on this server")
    return job


async def _prune_now_and_then(store: JobStore, keep_s: float) -> None:
    """Old finished jobs go at start and then every hour."""
    while True:
        try:
            await asyncio.to_thread(store.prune, keep_s)
        except OSError as e:
            log.warning("could not remove old jobs: %s", e)
        await asyncio.sleep(PRUNE_EVERY_S)


def _request_of(job: ServerJob) -> GenerationRequest:
    record = job.snapshot()
    inputs = dict(record.get("inputs", {}))
    stems = inputs.pop("stems", [])
    paths: dict[str, Any] = {f"{role}_path": job.folder / info["file"] for role, info in inputs.items()}
    paths["stem_paths"] = [job.folder / info["file"] for info in stems]
    return request_from_json(record["request"], **paths)


def _check_upload(role: str, upload: UploadFile, what: str = "") -> str:
    """The suffix the server stores the upload with; 400/415 with what is wrong (``what``: the upload's name in
    the message, default its role)."""
    what = what or role
    try:
        check_upload_name(upload.filename)
    except BadInputError as e:
        raise HTTPException(400, detail=str(e)) from e
    upload.file.seek(0)
    head = upload.file.read(16)
    upload.file.seek(0)
    if not head:
        raise HTTPException(400, detail=f"the {what} upload is empty")
    sniffed = sniff_upload(head)
    if sniffed is None or sniffed[0] != role:
        expected = "a Standard MIDI File (MThd)" if role == "midi" else "WAV, FLAC or AIFF audio"
        found = f"{sniffed[0]} data" if sniffed else "an unknown format"
        raise HTTPException(415, detail=f"the {what} upload is not {expected}: it holds {found}")
    return sniffed[1]


def _save_upload(upload: UploadFile, path: Path) -> None:
    write_stream(path, iter(lambda: upload.file.read(1 << 20), b""), overwrite=False)  # never over a file


async def _disk_full(request: Any, exc: Exception) -> JSONResponse:
    """507 Insufficient Storage, in the words every Segue client uses; the server's own path stays in its log."""
    log.error("the disk is full: %s", exc)
    free_mb = exc.free_mb if isinstance(exc, DiskFullError) else 1
    return JSONResponse(status_code=507, content={"detail": str(DiskFullError("the Segue server", free_mb))})


def _chunks(spool: Any) -> Iterator[bytes]:
    try:
        while block := spool.read(1 << 20):
            yield block
    finally:
        spool.close()


async def _event_stream(job: ServerJob, after: int, running: Callable[[], bool]) -> AsyncIterator[bytes]:
    """``id``/``event``/``data`` records; ends after the job's final status, or when the server stops."""
    seq = after
    idle = 0.0
    while True:
        final = job.status in FINAL
        for event in job.events_after(seq):
            seq = int(event["seq"])
            payload = json.dumps(public_record(dict(event["data"]), job.folder), ensure_ascii=False)
            yield f"id: {seq}\nevent: {event['event']}\ndata: {payload}\n\n".encode()
            idle = 0.0
        if final:
            yield b"event: end\ndata: {}\n\n"
            return
        if not running():
            return  # the server is stopping: the client reconnects (to this server restarted, or gives up)
        await asyncio.sleep(SSE_POLL_S)
        idle += SSE_POLL_S
        if idle >= SSE_KEEPALIVE_S:
            yield b": keepalive\n\n"
            idle = 0.0

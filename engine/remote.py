"""The client of ``segue serve``: an :class:`engine.api.Engine` that runs jobs on a server (httpx, no torch).

``entrypoints.open_engine("http://gpu-box:8750", token=...)`` returns a :class:`RemoteEngine`; the bridge and the GUI
use it exactly as the local engine. :meth:`RemoteEngine.generate` uploads the region, follows the job's
server-sent events into the progress callback (reconnecting when the stream drops), sends a cancel when the
token is cancelled, and downloads every file into the local job folder, checked against the server's size and
SHA-256, so the folder is the one a local run writes. Then the job is deleted on the server.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from engine.api import CancelToken, GenerationRequest, GenerationResult, ModelInfo, ProgressCallback
from engine.atomic import write_stream
from engine.errors import BadInputError, CancelledError, DiskFullError, EngineError
from engine.wire import API_PREFIX, check_result_path, check_token, model_from_json, request_to_json, result_from_json

log = logging.getLogger(__name__)

FINAL = ("done", "failed", "cancelled")
TOKEN_HINT = "give the token `segue serve` was started with (--token TOKEN or $SEGUE_TOKEN)"


def _noop(fraction: float, message: str) -> None:
    pass


@dataclass(frozen=True)
class Timeouts:
    """Seconds. ``read_s`` also bounds a silent event stream (the server sends a keepalive every second);
    ``reconnect_s``: how long a lost server may stay unreachable during a job before the job fails."""

    connect_s: float = 5.0
    read_s: float = 30.0
    upload_s: float = 300.0
    reconnect_s: float = 60.0


@dataclass(frozen=True)
class _Event:
    id: int | None
    event: str
    data: dict[str, Any]


class RemoteEngine:
    """Runs jobs on the Segue server at ``url`` (``http://host:8750``), with bearer ``token``."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeouts: Timeouts | None = None,
        keep_on_server: bool = False,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise BadInputError(f"{url!r} is not a server URL; use http://HOST:PORT (e.g. http://gpu-box:8750)")
        self.url = url.rstrip("/")
        if token:
            check_token(token, "the remote engine")  # one the server could never match is refused here
        self._token = token or None
        self.timeouts = timeouts or Timeouts()
        self.keep_on_server = keep_on_server
        self._transport = transport

    @property
    def name(self) -> str:
        return f"remote ({self.url})"

    def _client(self) -> httpx.Client:
        """A client per job: its cookie jar carries a load balancer's sticky cookie for that job only."""
        t = self.timeouts
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        return httpx.Client(
            base_url=self.url + API_PREFIX,
            headers=headers,
            timeout=httpx.Timeout(t.read_s, connect=t.connect_s),
            follow_redirects=False,
            transport=self._transport,
        )

    # -- the Engine protocol -------------------------------------------------------------------------------

    def models(self) -> list[ModelInfo]:
        with self._client() as client:
            response = self._call(client, "GET", "/models", "listing the models")
        return [model_from_json({**m, "path": f"{self.url} ({m.get('name', '')})"}) for m in _json(response, list)]

    def health(self) -> dict[str, Any]:
        """``{"status": "ok", "version": ...}`` (needs no token)."""
        with self._client() as client:
            data: dict[str, Any] = _json(self._call(client, "GET", "/health", "checking its health"), dict)
            return data

    def generate(
        self,
        request: GenerationRequest,
        job_dir: Path,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> GenerationResult:
        report = progress or _noop
        cancel = cancel or CancelToken()
        cancel.raise_if_cancelled()
        with self._client() as client:
            report(0.0, f"uploading the region to {self.url}")
            job_id = self._submit(client, request)
            log.info("job %s submitted to %s", job_id, self.url)
            finished = threading.Event()
            watcher = threading.Thread(
                target=self._watch_cancel, args=(client, job_id, cancel, finished), name="segue-remote-cancel",
                daemon=True,
            )  # fmt: skip
            watcher.start()
            try:
                view = self._follow(client, job_id, report)
            finally:
                finished.set()
                watcher.join(self.timeouts.connect_s + 1)
            status = view["status"]
            if status == "cancelled":
                raise CancelledError("cancelled by the user")
            if status == "failed":
                error = view.get("error") or {}
                message = str(error.get("message", "no reason given"))
                if error.get("type") == "bad_input":
                    raise BadInputError(message)
                raise EngineError(f"the Segue server at {self.url} failed job {job_id}: {message}")
            result = result_from_json(view.get("result") or {})
            report(1.0, "downloading the variants")
            self._download(client, job_id, view.get("files") or [], job_dir)
            if not self.keep_on_server:
                with contextlib.suppress(EngineError, BadInputError):
                    self._call(client, "DELETE", f"/jobs/{job_id}", "deleting the finished job")
        report(1.0, "done")
        return result

    # -- steps ---------------------------------------------------------------------------------------------

    def _submit(self, client: httpx.Client, request: GenerationRequest) -> str:
        prompt = request.prompt
        files: list[tuple[str, tuple[str, Any, str]]] = []  # a list: one "stem" field per stem, in their order
        audio = "application/octet-stream"
        given = [("midi", prompt.midi_path, "audio/midi", "region"), ("audio", prompt.audio_path, audio, "region")]
        given += [("stem", path, audio, name) for name, path in prompt.stems]
        with contextlib.ExitStack() as stack:
            for role, path, media, base in given:
                if path is None:
                    continue
                try:
                    handle = stack.enter_context(Path(path).open("rb"))
                except OSError as e:
                    raise BadInputError(f"cannot read the region file {path}: {e.strerror or e}") from e
                files.append((role, (f"{base}{Path(path).suffix.lower()}", handle, media)))
            response = self._call(
                client,
                "POST",
                "/jobs",
                "submitting the job",
                data={"request": json.dumps(request_to_json(request))},
                files=files,
                timeout=httpx.Timeout(self.timeouts.upload_s, connect=self.timeouts.connect_s),
            )
        job_id = _json(response, dict).get("id")
        if not isinstance(job_id, str):
            raise EngineError(f"the server at {self.url} answered the submission without a job id")
        return job_id

    def _watch_cancel(self, client: httpx.Client, job_id: str, cancel: CancelToken, finished: threading.Event) -> None:
        while not finished.wait(0.05):
            if cancel.cancelled:
                try:
                    self._call(client, "POST", f"/jobs/{job_id}/cancel", "cancelling the job", ok=(202, 409))
                except (EngineError, BadInputError) as e:
                    log.warning("could not cancel job %s on %s: %s", job_id, self.url, e)
                return

    def _follow(self, client: httpx.Client, job_id: str, report: ProgressCallback) -> dict[str, Any]:
        """Follow the job's events until it is final; reconnect (from the last event) when the stream drops."""
        last_seq = 0
        lost_since: float | None = None
        delay = 0.1
        while True:
            try:
                with client.stream(
                    "GET", f"/jobs/{job_id}/events", headers={"Last-Event-ID": str(last_seq)}
                ) as response:
                    if response.status_code != 200:
                        response.read()
                        self._raise_for(response, "following the job")
                    lost_since, delay = None, 0.1
                    for event in _parse_sse(response.iter_lines()):
                        if event.id is not None:
                            last_seq = event.id
                        if event.event == "progress":
                            report(float(event.data.get("fraction", 0.0)), str(event.data.get("message", "")))
                        elif event.event == "status" and event.data.get("status") == "queued":
                            report(0.0, "waiting in the server's queue")
                        elif event.event == "end":
                            break
                view: dict[str, Any] = _json(self._call(client, "GET", f"/jobs/{job_id}", "reading the job"), dict)
                if view.get("status") in FINAL:
                    return view
            except httpx.TransportError as e:  # the stream dropped or the server is (re)starting
                lost_since = self._wait_or_give_up(job_id, lost_since, delay, _describe(e), e)
                delay = min(2.0, delay * 2)
            except EngineError as e:  # a 5xx from a server (or a proxy) while it restarts
                if "answered 5" not in str(e):
                    raise
                lost_since = self._wait_or_give_up(job_id, lost_since, delay, str(e), e)
                delay = min(2.0, delay * 2)

    def _wait_or_give_up(
        self, job_id: str, lost_since: float | None, delay: float, why: str, error: Exception
    ) -> float:
        now = time.monotonic()
        if lost_since is None:
            log.warning("lost the event stream of job %s at %s (%s); reconnecting", job_id, self.url, why)
            lost_since = now
        elif now - lost_since > self.timeouts.reconnect_s:
            raise EngineError(
                f"lost the Segue server at {self.url} while job {job_id} was running and could not reconnect "
                f"for {self.timeouts.reconnect_s:.0f} s ({why}); check that `segue serve` still runs there, "
                "then submit the job again"
            ) from error
        time.sleep(delay)
        return lost_since

    def _download(self, client: httpx.Client, job_id: str, files: list[dict[str, Any]], job_dir: Path) -> None:
        """Each file to its place in the job folder, atomically, never over an existing file; checked by size
        and SHA-256. Two retries per file when the connection drops."""
        for info in files:
            rel = check_result_path(str(info.get("path")))
            target = job_dir / rel
            if target.exists():
                raise EngineError(f"{target} already exists; Segue never overwrites files")
            target.parent.mkdir(parents=True, exist_ok=True)
            for attempt in range(3):
                try:
                    self._download_one(client, job_id, str(rel), target, info)
                    break
                except httpx.TransportError as e:
                    if attempt == 2:
                        raise EngineError(
                            f"downloading {rel} of job {job_id} from {self.url} failed three times ({_describe(e)})"
                        ) from e
                    time.sleep(0.5 * (attempt + 1))

    def _download_one(self, client: httpx.Client, job_id: str, rel: str, target: Path, info: dict[str, Any]) -> None:
        digest = hashlib.sha256()

        def damaged(tmp: Path) -> str | None:  # read back before the file gets its name
            size = tmp.stat().st_size
            if size != info.get("size_bytes") or digest.hexdigest() != info.get("sha256"):
                return f"{rel} of job {job_id} arrived damaged ({size} bytes, hash differs); try again"
            return None

        with client.stream("GET", f"/jobs/{job_id}/files/{rel}") as response:
            if response.status_code != 200:
                response.read()
                self._raise_for(response, f"downloading {rel}")

            def blocks() -> Iterator[bytes]:
                for block in response.iter_bytes(1 << 20):
                    digest.update(block)
                    yield block

            write_stream(target, blocks(), overwrite=False, check=damaged)  # never over an existing file

    # -- HTTP ----------------------------------------------------------------------------------------------

    def _call(
        self, client: httpx.Client, method: str, path: str, what: str, ok: tuple[int, ...] = (), **kwargs: Any
    ) -> httpx.Response:
        try:
            response = client.request(method, path, **kwargs)
        except httpx.TransportError as e:
            raise EngineError(
                f"cannot reach the Segue server at {self.url} while {what} ({_describe(e)}); check that "
                "`segue serve` runs there and that the URL (--engine) is right"
            ) from e
        if response.status_code in ok or 200 <= response.status_code < 300:
            return response
        self._raise_for(response, what)
        raise AssertionError("unreachable")  # pragma: no cover

    def _raise_for(self, response: httpx.Response, what: str) -> None:
        code, detail = response.status_code, _detail(response)
        if code == 401:
            raise EngineError(f"the Segue server at {self.url} refused the token ({detail}); {TOKEN_HINT}")
        if code in (400, 413, 415, 422):
            raise BadInputError(f"the Segue server at {self.url} refused the job: {detail}")
        if code == 507:  # the server's disk is full: the same words as a full disk here
            free = re.search(r"free (\d+) MB", detail)
            raise DiskFullError(f"the Segue server at {self.url}", int(free.group(1)) if free else 1)
        raise EngineError(f"the Segue server at {self.url} answered {code} while {what}: {detail}")


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _detail(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200].strip() or response.reason_phrase
    if isinstance(data, dict) and "detail" in data:
        detail = data["detail"]
        return detail if isinstance(detail, str) else json.dumps(detail)[:300]
    return json.dumps(data)[:300]


def _json(response: httpx.Response, kind: type) -> Any:
    try:
        data = response.json()
    except ValueError as e:
        raise EngineError(f"the server at {response.request.url} did not answer JSON; is it a Segue server?") from e
    if not isinstance(data, kind):
        raise EngineError(f"the server at {response.request.url} answered an unexpected {type(data).__name__}")
    return data


def _parse_sse(lines: Iterator[str]) -> Iterator[_Event]:
    """Server-sent events from the stream's lines (``id:``, ``event:``, ``data:``; ``:`` comments)."""
    event_id: int | None = None
    name, data = "message", list[str]()
    for line in lines:
        if not line:
            if data or name != "message":
                try:
                    payload = json.loads("\n".join(data)) if data else {}
                except json.JSONDecodeError:
                    payload = {}
                yield _Event(event_id, name, payload if isinstance(payload, dict) else {})
            event_id, name, data = None, "message", list[str]()
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "id" and value.isdigit():
            event_id = int(value)
        elif field == "event":
            name = value
        elif field == "data":
            data.append(value)

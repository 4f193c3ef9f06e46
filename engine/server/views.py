"""What the HTTP API of ``segue serve`` shows: the response models of its schema, and job records and messages
made public (no path on the server, no exception class names; job.json and the server log keep the full text)."""

# No `from __future__ import annotations`: pydantic reads these annotations at run time.
import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from engine.server.store import REGION_DIR, ServerJob

PUBLIC_KEYS = ("id", "status", "created", "updated", "started", "finished", "device", "progress", "error",
               "request", "result", "files")  # fmt: skip


class Health(BaseModel):
    status: str
    version: str


class Progress(BaseModel):
    fraction: float
    message: str


class JobError(BaseModel):
    message: str
    type: str


class ResultFile(BaseModel):
    path: str
    size_bytes: int
    sha256: str


class JobView(BaseModel):
    id: str
    status: str
    created: str
    updated: str
    started: str | None = None
    finished: str | None = None
    device: str | None = None
    progress: Progress | None = None
    error: JobError | None = None
    request: dict[str, Any] = {}
    result: dict[str, Any] | None = None
    files: list[ResultFile] = []


class ModelView(BaseModel):
    name: str
    kind: str
    description: str = ""
    parameters: int = 0
    modes: list[str] = []
    parts: list[str] = []  # accompany models: the part names they can write


class ErrorView(BaseModel):
    detail: str


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    words = {
        400: "bad request (the detail says what to change)",
        401: "a missing or wrong token",
        403: "a browser (requests with an Origin header are refused)",
        404: "no such job, or no such file in it",
        409: "the job is not in a state for this (not done yet, or already finished)",
        413: "the upload is larger than the server's limit",
        415: "an upload is not MIDI (MThd) or WAV/FLAC/AIFF audio",
        421: "a server without a token answers only requests addressed to a loopback name",
        503: "the server's queue is full",
    }
    return {code: {"model": ErrorView, "description": words[code]} for code in codes}


class DeviceView(BaseModel):
    name: str
    busy: bool
    job_id: str | None = None


def view(job: ServerJob) -> JobView:
    record = public_record(job.snapshot(), job.folder)
    return JobView(**{k: record[k] for k in PUBLIC_KEYS if record.get(k) is not None})


_SERVER_PATH = re.compile(r"(?<![\w.~-])/[^\s/'\"]+(?:/[^\s/'\"]*)*")
_EXCEPTION_NAME = re.compile(r"\b(?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception|Interrupt|Exit)\b:?\s*")


def public_message(message: str, folder: Path) -> str:
    """A message the engine wrote for the job in ``folder`` as a client may see it: no path on the server (an
    upload is named by its role, anything else by a placeholder) and no exception class names. job.json and the
    server log keep the full text."""
    message = message.replace(f"{folder / REGION_DIR}{os.sep}", "the uploaded ").replace(f"{folder}{os.sep}", "")
    message = _SERVER_PATH.sub("(a file on the server)", message)
    return _EXCEPTION_NAME.sub("", message).strip() or "the engine failed; the server's log has the details"


def public_record(record: dict[str, Any], folder: Path) -> dict[str, Any]:
    """``record`` (a job view or an event's data) with its error and progress messages made public."""
    for key in ("error", "progress"):
        part = record.get(key)
        if isinstance(part, dict) and isinstance(part.get("message"), str):
            record[key] = {**part, "message": public_message(part["message"], folder)}
    if isinstance(record.get("message"), str):  # a progress event's data
        record["message"] = public_message(record["message"], folder)
    return record

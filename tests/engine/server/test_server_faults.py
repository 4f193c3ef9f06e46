"""The server under faults: a full disk is 507 with the plain message and leaves no job behind; a second server on
the same data folder leaves the first one's jobs alone. A real uvicorn on loopback."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import httpx
import pytest
from server_rig import TOKEN, thread_server, write_midi
from tmpfs import tmpfs

from engine import atomic
from engine.server.store import JobStore

AUTH = {"Authorization": f"Bearer {TOKEN}"}
PARAMS = json.dumps({"bars": 1, "variants": 1, "seed": 3})
DISK_FULL = r"^the disk is full at the Segue server: free \d+ MB and run again$"


def _jobs(data: Path) -> list[str]:
    root = data / "jobs"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def test_a_full_disk_is_507_with_the_disk_full_message_and_no_job_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    midi = write_midi(tmp_path / "r.mid").read_bytes()
    real_write = os.write
    full = {"on": False}

    def write(fd: int, data: bytes) -> int:
        if full["on"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(atomic.os, "write", write)
    with thread_server(tmp_path / "data") as server, httpx.Client(base_url=server.url, headers=AUTH) as client:
        full["on"] = True
        answer = client.post("/v1/jobs", data={"request": PARAMS}, files={"midi": ("r.mid", midi)})
        assert answer.status_code == 507, answer.text
        assert answer.json()["detail"].startswith("the disk is full at the Segue server: free ")
        assert str(tmp_path) not in answer.text  # the server's paths stay in its log
        assert _jobs(tmp_path / "data") == []
        full["on"] = False
        assert client.post("/v1/jobs", data={"request": PARAMS}, files={"midi": ("r.mid", midi)}).status_code == 201


def test_an_upload_that_does_not_fit_a_2_mb_disk_is_507_and_leaves_no_job(tmp_path: Path) -> None:
    midi = write_midi(tmp_path / "r.mid").read_bytes()
    big = midi + b"\0" * 3_000_000  # a MIDI file by its header, too big for the disk
    with tmpfs(tmp_path / "disk", "2m") as disk:
        with thread_server(disk / "data") as server, httpx.Client(base_url=server.url, headers=AUTH) as client:
            answer = client.post("/v1/jobs", data={"request": PARAMS}, files={"midi": ("r.mid", big)})
            assert answer.status_code == 507, answer.text
            assert answer.json()["detail"].startswith("the disk is full at the Segue server: free ")
            assert _jobs(disk / "data") == []
            assert [p for p in (disk / "data").rglob("*") if p.is_file()] == []  # no temp file, no torn upload


def test_a_second_server_leaves_the_queued_jobs_of_a_live_one_alone(tmp_path: Path) -> None:
    first = JobStore(tmp_path)
    first.load()
    job = first.create({"request": {}, "inputs": {}})
    second = JobStore(tmp_path)
    assert second.load() == [] and second.get(job.id) is None  # the first server still owns it
    first.close()  # the first server stops: its queued job is the next one's to run
    third = JobStore(tmp_path)
    assert [j.id for j in third.load()] == [job.id]
    third.close()


def test_a_remote_engine_hears_a_full_server_disk_in_the_same_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.api import GenerationParams, GenerationRequest, Prompt
    from engine.errors import DiskFullError
    from engine.remote import RemoteEngine

    region = write_midi(tmp_path / "r.mid")
    real_write = os.write

    def write(fd: int, data: bytes) -> int:  # the server's disk is full (the client writes nothing before it asks)
        raise OSError(errno.ENOSPC, "No space left on device")

    with thread_server(tmp_path / "data") as server:
        monkeypatch.setattr(atomic.os, "write", write)
        request = GenerationRequest(Prompt(midi_path=region), GenerationParams(bars=1, variants=1))
        full = r"^the disk is full at the Segue server at http://127\.0\.0\.1:\d+: free \d+ MB and run again$"
        with pytest.raises(DiskFullError, match=full):
            RemoteEngine(server.url, TOKEN).generate(request, tmp_path / "job")
        monkeypatch.setattr(atomic.os, "write", real_write)

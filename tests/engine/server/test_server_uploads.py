"""What the server takes in: size limits (declared and streamed), file types by content, names that try to reach
elsewhere, downloads that try to leave the job's result files, bad parameters. A real uvicorn on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_rig import TOKEN, RunningServer, thread_server, write_midi, write_wav

LIMIT = 64 * 1024
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PARAMS = json.dumps({"bars": 1, "variants": 1, "seed": 3})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with thread_server(tmp_path_factory.mktemp("data"), max_upload_bytes=LIMIT) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=10) as c:
        yield c


@pytest.fixture(scope="module")
def midi_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return write_midi(tmp_path_factory.mktemp("in") / "r.mid").read_bytes()


def submit(client: httpx.Client, files: dict[str, tuple[str, bytes]], params: str = PARAMS) -> httpx.Response:
    return client.post("/v1/jobs", data={"request": params}, files=files)


def wait_done(client: httpx.Client, job_id: str) -> dict[str, object]:
    with client.stream("GET", f"/v1/jobs/{job_id}/events") as response:
        for line in response.iter_lines():
            if line.startswith("event: end"):
                break
    view: dict[str, object] = client.get(f"/v1/jobs/{job_id}").json()
    return view


def all_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_a_declared_oversize_upload_is_refused_before_it_is_read(client: httpx.Client, midi_bytes: bytes) -> None:
    big = midi_bytes + b"\0" * (LIMIT + 1)
    response = submit(client, {"midi": ("region.mid", big)})
    assert response.status_code == 413
    assert "too large" in response.json()["detail"] and "--max-upload-mb" in response.json()["detail"]


def test_an_oversize_upload_without_a_length_is_cut_off_while_streaming(
    client: httpx.Client, midi_bytes: bytes
) -> None:
    boundary = "segueboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="request"\r\n\r\n{PARAMS}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="midi"; filename="region.mid"\r\n'
        "Content-Type: audio/midi\r\n\r\n"
    ).encode()

    def body() -> Iterator[bytes]:  # a generator: httpx sends it chunked, with no Content-Length
        yield head + midi_bytes
        for _ in range(40):
            yield b"\0" * 4096
        yield f"\r\n--{boundary}--\r\n".encode()

    response = client.post(
        "/v1/jobs", content=body(), headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413 and "too large" in response.json()["detail"]


@pytest.mark.parametrize(
    "name",
    ["../../../etc/cron.d/x.mid", "..\\..\\boot.mid", "/etc/passwd", "C:evil.mid", "..", "./../x.mid", "v01/../x.mid"],
)
def test_upload_names_that_try_to_reach_elsewhere_are_refused(
    client: httpx.Client, server: RunningServer, midi_bytes: bytes, name: str
) -> None:
    before = all_files(server.data_dir)
    response = submit(client, {"midi": (name, midi_bytes)})
    assert response.status_code == 400 and "not a plain file name" in response.json()["detail"]
    assert all_files(server.data_dir) == before


def test_control_characters_in_names_are_refused() -> None:
    from engine.errors import BadInputError
    from engine.wire import check_upload_name

    for name in ("a\x00b.mid", "a\nb.mid", "x" * 300):
        with pytest.raises(BadInputError):
            check_upload_name(name)
    check_upload_name("My Take (2).MID")


def test_uploads_are_stored_under_names_the_server_picks(
    client: httpx.Client, server: RunningServer, midi_bytes: bytes, tmp_path: Path
) -> None:
    wav = write_wav(tmp_path / "take.wav").read_bytes()
    response = submit(client, {"midi": ("My Take (2).MID", midi_bytes), "audio": ("take.wav", wav)})
    assert response.status_code == 201, response.text
    job_id = response.json()["id"]
    region = server.data_dir / "jobs" / job_id / "region"
    assert sorted(p.name for p in region.iterdir()) == ["region.mid", "region.wav"]
    assert (region / "region.mid").read_bytes() == midi_bytes
    assert wait_done(client, job_id)["status"] == "done"


@pytest.mark.parametrize(
    ("field", "content", "status", "words"),
    [
        ("midi", b"RIFF\x10\0\0\0WAVEfmt ", 415, "is not a Standard MIDI File (MThd): it holds audio data"),
        ("audio", b"MThd\0\0\0\x06\0\x01\0\x01\0\x60", 415, "is not WAV, FLAC or AIFF audio: it holds midi data"),
        ("midi", b"#!/bin/sh\nrm -rf /\n", 415, "an unknown format"),
        ("audio", b"<html></html>", 415, "an unknown format"),
        ("midi", b"", 400, "is empty"),
    ],
)
def test_file_types_are_recognised_by_content(
    client: httpx.Client, field: str, content: bytes, status: int, words: str
) -> None:
    response = submit(client, {field: ("region.mid" if field == "midi" else "region.wav", content)})
    assert response.status_code == status and words in response.json()["detail"]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ("not json", "is not JSON"),
        ("[1, 2]", "must be a JSON object"),
        (json.dumps({"bars": 0}), "bars must be a whole number in 1..64"),
        (json.dumps({"variants": 99}), "variants must be a whole number in 1..16"),
        (json.dumps({"temperature": "hot"}), "bad request parameter"),
        (json.dumps({"model": "/etc/segue-model"}), "is not installed on this server"),
        (json.dumps({"model": "musicgen:/models/x"}), "is not installed on this server"),
        (json.dumps({"sample_rate": 5}), "sample_rate must be"),
    ],
)
def test_bad_parameters_get_a_clear_400(client: httpx.Client, midi_bytes: bytes, params: str, words: str) -> None:
    response = submit(client, {"midi": ("region.mid", midi_bytes)}, params)
    assert response.status_code == 400 and words in response.json()["detail"], response.text


def test_a_job_needs_a_region(client: httpx.Client) -> None:
    response = submit(client, {}, PARAMS)
    assert response.status_code == 400 and "needs a MIDI file, an audio file, or both" in response.json()["detail"]


def test_downloads_never_leave_the_jobs_result_files(client: httpx.Client, midi_bytes: bytes) -> None:
    job_id = submit(client, {"midi": ("region.mid", midi_bytes)}).json()["id"]
    view = wait_done(client, job_id)
    listed = [f["path"] for f in view["files"]]  # type: ignore[attr-defined, index]
    assert listed == ["v01/continuation.mid", "v01/continuation.wav"]
    assert client.get(f"/v1/jobs/{job_id}/files/v01/continuation.mid").content.startswith(b"MThd")
    for attempt in (
        "job.json",
        "region/region.mid",  # on disk, but not a result
        "../job.json",
        "v01/../job.json",
        "%2e%2e/%2e%2e/job.json",
        "v01/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "..%2f..%2fjob.json",
        "/etc/passwd",
        "v01/continuation.mid/",
    ):
        response = client.get(f"/v1/jobs/{job_id}/files/{attempt}")
        assert response.status_code == 404, (attempt, response.status_code)
        assert b"MThd" not in response.content and b'"status"' not in response.content
    # The id's random suffix is hex and may hold no letter at all (CI drew "00243210"), so the upper-cased id is
    # only a different id when it differs; a sibling id that differs in one digit is always an unknown job.
    sibling = job_id[:-1] + ("1" if job_id[-1] != "1" else "2")
    bad_ids = ["..", "%2e%2e", "../jobs", "x" * 200, sibling]
    if job_id.upper() != job_id:
        bad_ids.append(job_id.upper())
    for bad_id in bad_ids:
        assert client.get(f"/v1/jobs/{bad_id}/files").status_code == 404, bad_id


def test_a_zip_holds_the_job_folder_layout(client: httpx.Client, midi_bytes: bytes, tmp_path: Path) -> None:
    import zipfile

    job_id = submit(client, {"midi": ("region.mid", midi_bytes)}).json()["id"]
    wait_done(client, job_id)
    response = client.get(f"/v1/jobs/{job_id}/result.zip")
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    (tmp_path / "r.zip").write_bytes(response.content)
    with zipfile.ZipFile(tmp_path / "r.zip") as archive:
        assert archive.namelist() == ["v01/continuation.mid", "v01/continuation.wav"]


def test_the_client_says_a_region_is_over_the_servers_limit(server: RunningServer, tmp_path: Path) -> None:
    from engine.api import GenerationParams, GenerationRequest, Prompt
    from engine.errors import BadInputError
    from engine.remote import RemoteEngine

    big = tmp_path / "big.mid"
    big.write_bytes(write_midi(tmp_path / "r.mid").read_bytes() + b"\0" * (2 * 1024 * 1024))
    request = GenerationRequest(Prompt(midi_path=big), GenerationParams(bars=1, variants=1))
    with pytest.raises(BadInputError) as error:
        RemoteEngine(server.url, TOKEN).generate(request, tmp_path)
    assert f"the Segue server at {server.url} refused the job: the upload is too large" in str(error.value)

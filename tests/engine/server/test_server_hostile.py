"""What a token holder (or anyone who can connect) cannot do to the server: numbers no region can have, NaN, a
request nested 5000 levels deep, a 422 that repeats an upload, errors that show the server's paths or exception
names, tokens that could never work, connections that stall in their headers or body. A real uvicorn on loopback,
with fake engines; every wait is bounded."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_rig import STEADY_MODEL, TOKEN, WAIT_S, FakeEngine, FakeEngines, RunningServer, thread_server, write_midi

from engine.api import CancelToken, GenerationRequest, GenerationResult, ModelInfo, ProgressCallback
from engine.errors import BadInputError
from engine.remote import RemoteEngine
from engine.server.config import ServerConfig
from engine.server.views import public_message

AUTH = {"Authorization": f"Bearer {TOKEN}"}
BAD_INPUT_MODEL, CRASH_MODEL = "fails-bad-input", "fails-crash"


class FailingEngine(FakeEngine):
    """A fake engine with two more models: one refuses the region naming its file, as the MIDI reader does; one
    crashes with an exception that names paths on the server."""

    def models(self) -> list[ModelInfo]:
        return [*super().models(), *(ModelInfo(n, "midi", f"/srv/{n}") for n in (BAD_INPUT_MODEL, CRASH_MODEL))]

    def generate(
        self,
        request: GenerationRequest,
        job_dir: Path,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> GenerationResult:
        if request.model == BAD_INPUT_MODEL:
            raise BadInputError(f"{request.prompt.midi_path} has no notes; select a region that contains notes")
        if request.model == CRASH_MODEL:
            raise RuntimeError(f"cannot map {job_dir}/v01/continuation.wav (see /usr/lib/python3.11/mmap.py)")
        return super().generate(request, job_dir, progress, cancel)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with thread_server(tmp_path_factory.mktemp("data"), lambda device: FailingEngine(device)) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=WAIT_S) as c:
        yield c


@pytest.fixture(scope="module")
def midi_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return write_midi(tmp_path_factory.mktemp("in") / "r.mid").read_bytes()


def submit(client: httpx.Client, midi: bytes, request: str) -> httpx.Response:
    return client.post("/v1/jobs", data={"request": request}, files={"midi": ("region.mid", midi)})


def finished_view(client: httpx.Client, job_id: str) -> tuple[dict[str, object], str]:
    """The job's view once it is final, and the text of its whole event stream."""
    with client.stream("GET", f"/v1/jobs/{job_id}/events") as response:
        stream = "\n".join(response.iter_lines())
    return client.get(f"/v1/jobs/{job_id}").json(), stream


@pytest.mark.parametrize(
    ("request_text", "words"),
    [
        ("[" * 5000 + "]" * 5000, "nested too deeply"),
        ('{"bars": 1, "x": ' + "[" * 5000 + "]" * 5000 + "}", "nested too deeply"),
        ('{"x": [[[[[[[[[1]]]]]]]]]}', "nested too deeply (at most 8 levels)"),
        ('{"start_beats": NaN}', "holds NaN, which is not a JSON number"),
        ('{"tempo_bpm": Infinity}', "holds Infinity"),
        ('{"length_beats": 1e30}', "region length (length_beats) must be a positive number of beats"),
        ('{"length_beats": 1e308}', "up to 32768"),
        ('{"start_beats": 1e308}', "region start (start_beats) must be"),
        ('{"length_beats": ' + "9" * 400 + "}", "length_beats must be a finite number"),
        ('{"temperature": ' + "9" * 400 + "}", "bad request parameter"),
        ('{"bars": ' + "9" * 5000 + "}", "a number too long to read"),
        ('{"bars": 1, "padding": "' + "x" * 70_000 + '"}', "the limit is 65536"),
    ],
)
def test_requests_no_engine_can_run_are_a_400_and_make_no_job(
    client: httpx.Client, midi_bytes: bytes, request_text: str, words: str
) -> None:
    before = len(client.get("/v1/jobs").json())
    response = submit(client, midi_bytes, request_text)
    assert response.status_code == 400, response.text[:200]
    assert words in response.json()["detail"]
    assert len(client.get("/v1/jobs").json()) == before


def test_a_422_does_not_repeat_what_was_sent(client: httpx.Client, midi_bytes: bytes) -> None:
    secret = "MThd-the-first-bytes-of-a-users-song"
    as_text = client.post("/v1/jobs", data={"request": "{}", "midi": secret})  # a file sent as a text field
    as_file = client.post("/v1/jobs", files={"request": ("r.json", secret.encode()), "midi": ("r.mid", midi_bytes)})
    for response in (as_text, as_file):
        assert response.status_code == 422
        assert secret not in response.text and "input" not in response.json()["detail"][0]
        assert response.json()["detail"][0]["loc"][0] == "body"  # still says which field is wrong


def test_failed_jobs_show_no_server_paths_or_exception_names(
    client: httpx.Client, midi_bytes: bytes, server: RunningServer
) -> None:
    bad = submit(client, midi_bytes, json.dumps({"bars": 1, "variants": 1, "model": BAD_INPUT_MODEL})).json()["id"]
    crash = submit(client, midi_bytes, json.dumps({"bars": 1, "variants": 1, "model": CRASH_MODEL})).json()["id"]
    bad_view, bad_stream = finished_view(client, bad)
    crash_view, crash_stream = finished_view(client, crash)
    assert bad_view["error"] == {
        "message": "the uploaded region.mid has no notes; select a region that contains notes",
        "type": "bad_input",
    }
    crash_message = crash_view["error"]["message"]  # type: ignore[index]
    assert crash_message.startswith("unexpected error on the server: cannot map v01/continuation.wav (see ")
    for text in (json.dumps(bad_view), bad_stream, json.dumps(crash_view), crash_stream):
        assert str(server.data_dir) not in text and "/usr/lib" not in text and "RuntimeError" not in text
        assert "BadInputError" not in text and "'/" not in text
    # the server keeps the whole story for its operator
    record = json.loads((server.data_dir / "jobs" / crash / "job.json").read_text())
    assert "RuntimeError" in record["error"]["message"] and "/usr/lib/python3.11/mmap.py" in record["error"]["message"]


def test_public_messages_keep_what_the_user_needs(tmp_path: Path) -> None:
    folder = tmp_path / "jobs" / "job-1"
    assert public_message("tempo 5 is out of 10..400 in 4/4 and/or 6/8", folder) == (
        "tempo 5 is out of 10..400 in 4/4 and/or 6/8"
    )
    assert public_message(f"{folder}/region/region.wav is truncated", folder) == "the uploaded region.wav is truncated"
    assert public_message("EngineError: CUDA out of memory at /opt/x.so", folder) == (
        "CUDA out of memory at (a file on the server)"
    )
    assert public_message("MemoryError", folder) == "the engine failed; the server's log has the details"


@pytest.mark.parametrize(
    ("token", "words"),
    [
        (TOKEN + " ", "starts or ends with a space"),
        (" " + TOKEN, "starts or ends with a space"),
        (" " * 16, "starts or ends with a space"),
        (TOKEN + "\t", "starts or ends with a space or another blank"),
        ("test token 0123456789abcdef", "holds a space"),
        ("test-token-\x07-0123456789", "a control character"),
        ("short", "it has 5"),
    ],
)
def test_tokens_that_could_never_work_are_refused_at_both_ends(token: str, words: str, tmp_path: Path) -> None:
    with pytest.raises(BadInputError) as server_error:
        ServerConfig(token=token, data_dir=tmp_path).check()
    with pytest.raises(BadInputError) as client_error:
        RemoteEngine("http://127.0.0.1:8750", token)
    for error in (server_error, client_error):
        assert "the token must be at least 16 printable ASCII characters without spaces" in str(error.value)
        assert words in str(error.value)
    ServerConfig(token="~!#$%&'*+-.^_`|0123456789", data_dir=tmp_path).check()  # any printable ASCII but space


# -- stalled connections -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def impatient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server that waits 1 s for headers and for each piece of a body."""
    with thread_server(
        tmp_path_factory.mktemp("impatient"), FakeEngines(), header_timeout_s=1.0, body_timeout_s=1.0
    ) as running:
        yield running


def _connect(server: RunningServer) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=WAIT_S)
    sock.settimeout(WAIT_S)
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (socket.timeout after WAIT_S if it never does)."""
    received = b""
    while chunk := sock.recv(65_536):
        received += chunk
    return received


def test_a_connection_that_sends_nothing_is_closed(impatient: RunningServer) -> None:
    with _connect(impatient) as sock:
        assert _read_until_closed(sock) == b""


def test_headers_sent_a_byte_at_a_time_are_cut_off(impatient: RunningServer) -> None:
    with _connect(impatient) as sock:
        sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        closed = False
        for _ in range(int(WAIT_S / 0.2)):  # a header byte every 0.2 s never completes the request
            try:
                sock.sendall(b"X")
            except OSError:  # the server closed the connection
                closed = True
                break
            time.sleep(0.2)
        assert closed or _read_until_closed(sock) == b""


def test_a_body_that_stops_arriving_is_answered_408(impatient: RunningServer) -> None:
    with _connect(impatient) as sock:
        head = (
            f"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 100000\r\n\r\n"
        )
        sock.sendall(head.encode() + b"--xyz\r\n")
        answer = _read_until_closed(sock).decode("latin-1")
    assert answer.startswith("HTTP/1.1 408 ")
    assert "the request body stopped arriving (7 bytes came, then nothing for 1 s)" in answer


def test_slow_jobs_and_kept_alive_connections_still_work(impatient: RunningServer, tmp_path: Path) -> None:
    midi = write_midi(tmp_path / "r.mid").read_bytes()
    with httpx.Client(base_url=impatient.url, headers=AUTH, timeout=WAIT_S) as client:
        request = json.dumps({"bars": 1, "variants": 1, "model": STEADY_MODEL})  # reports progress for ~1 s
        job_id = submit(client, midi, request).json()["id"]
        view, stream = finished_view(client, job_id)  # an event stream open longer than the body timeout
        assert view["status"] == "done" and "event: end" in stream
        time.sleep(0.5)  # the same connection, idle for less than uvicorn's keep-alive timeout
        assert client.get("/v1/health").json()["status"] == "ok"
    assert re.fullmatch(r"[a-z0-9-]+", job_id)

"""Jobs through the client and a real uvicorn: the job folder a remote run leaves, progress, cancel mid-job, the
queue and one worker per device, deletion after download."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_rig import (
    PARTS,
    SLOW_MODEL,
    STEADY_MODEL,
    TOKEN,
    WAIT_S,
    FakeEngine,
    FakeEngines,
    RunningServer,
    thread_server,
    write_midi,
)

from bridge.runner import run_job
from engine.api import CancelToken, GenerationParams, GenerationRequest, Prompt
from engine.errors import BadInputError, CancelledError
from engine.provenance.stamp import strip_provenance
from engine.remote import RemoteEngine

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture()
def engines() -> FakeEngines:
    return FakeEngines()


@pytest.fixture()
def server(tmp_path: Path, engines: FakeEngines) -> Iterator[RunningServer]:
    with thread_server(tmp_path / "data", engines, devices=("cpu",)) as running:
        yield running


def request_for(tmp_path: Path, model: str = "default", variants: int = 2) -> GenerationRequest:
    region = write_midi(tmp_path / "in" / "my region.mid")
    return GenerationRequest(Prompt(midi_path=region), GenerationParams(bars=1, variants=variants, seed=5), model)


def folder_files(job_dir: Path) -> dict[str, bytes]:
    """The files as the engine wrote them: without the provenance stamped into them afterwards."""
    files = sorted(p for p in job_dir.rglob("*") if p.is_file())
    return {str(p.relative_to(job_dir)): strip_provenance(p.read_bytes()) for p in files}


def server_jobs(server: RunningServer) -> list[dict[str, object]]:
    jobs: list[dict[str, object]] = httpx.get(f"{server.url}/v1/jobs", headers=AUTH).json()
    return jobs


def wait_until(condition: object, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_a_remote_job_folder_is_the_one_the_engine_writes_here(tmp_path: Path, server: RunningServer) -> None:
    request = request_for(tmp_path)
    seen: list[tuple[float, str]] = []
    record = run_job(RemoteEngine(server.url, TOKEN), request, tmp_path / "remote", lambda f, m: seen.append((f, m)))
    assert record.status == "done", record.error
    assert record.engine == f"remote ({server.url})"
    local_dir = tmp_path / "local"
    local_dir.mkdir()
    FakeEngine().generate(request, local_dir)
    remote_files = folder_files(tmp_path / "remote" / record.id)
    assert remote_files.pop("job.json")
    assert remote_files == folder_files(local_dir)
    assert [v.files for v in record.variants] == [
        {"midi": "v01/continuation.mid", "audio": "v01/continuation.wav"},
        {"midi": "v02/continuation.mid", "audio": "v02/continuation.wav"},
    ]
    assert (0.5, "variant 1") in seen and seen[-1] == (1.0, "done")
    assert server_jobs(server) == []  # deleted on the server once downloaded


def test_an_accompany_request_reaches_the_server_engine_with_its_parts(
    tmp_path: Path, server: RunningServer, engines: FakeEngines
) -> None:
    region = write_midi(tmp_path / "in" / "melody.mid")
    params = GenerationParams(mode="accompany", bars=2, variants=1, seed=3, parts=("bass", "alto"), output="midi")
    record = run_job(RemoteEngine(server.url, TOKEN), GenerationRequest(Prompt(midi_path=region), params), tmp_path)
    assert record.status == "done", record.error
    (seen,) = engines.engines["cpu"].requests
    assert seen.params == params  # parts, output and the rest, as sent
    assert record.mode == "accompany" and record.params.parts == ("bass", "alto") and record.params.output == "midi"
    assert record.place_at is not None and record.place_at.beats == 0.0
    (variant,) = record.variants
    assert variant.parts == ("bass", "alto")
    assert {"stem:bass", "stem:alto"} <= set(variant.files)
    assert (tmp_path / record.id / "v01" / "stems" / "alto.wav").is_file()  # downloaded with the rest
    (model, *_) = RemoteEngine(server.url, TOKEN).models()  # the parts a model knows come over too
    assert model.modes == ("continue", "accompany") and model.parts == PARTS


class DroppingTransport(httpx.HTTPTransport):
    """Drops the first event stream after a few chunks, as a flaky network or a proxy would."""

    def __init__(self) -> None:
        super().__init__()
        self.resumed_from: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if not request.url.path.endswith("/events"):
            return response
        self.resumed_from.append(request.headers.get("last-event-id", ""))
        if len(self.resumed_from) > 1:
            return response
        inner = response.stream

        class Dropping(httpx.SyncByteStream):
            def __iter__(self) -> Iterator[bytes]:
                for index, chunk in enumerate(inner):  # type: ignore[union-attr]
                    yield chunk
                    if index >= 1:
                        raise httpx.ReadError("dropped by the test")

            def close(self) -> None:
                inner.close()  # type: ignore[union-attr]

        return httpx.Response(response.status_code, headers=response.headers, stream=Dropping(), request=request)


def test_a_dropped_event_stream_is_resumed_from_the_last_event(tmp_path: Path, server: RunningServer) -> None:
    transport = DroppingTransport()
    seen: list[float] = []
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    engine = RemoteEngine(server.url, TOKEN, transport=transport)
    result = engine.generate(request_for(tmp_path, STEADY_MODEL), job_dir, lambda f, m: seen.append(f))
    assert len(transport.resumed_from) >= 2 and transport.resumed_from[0] == "0"
    assert int(transport.resumed_from[1]) > 0  # resumed where it stopped, not from the start
    steps = [f for f in seen if 0 < f < 0.5]
    assert steps == sorted(steps) and len(steps) == len(set(steps))  # nothing missed twice, nothing replayed
    assert [v.id for v in result.variants] == ["v01", "v02"] and (job_dir / "v02" / "continuation.wav").is_file()


def test_keep_on_server_leaves_the_job_downloadable(tmp_path: Path, server: RunningServer) -> None:
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    RemoteEngine(server.url, TOKEN, keep_on_server=True).generate(request_for(tmp_path), job_dir)
    (job,) = server_jobs(server)
    assert job["status"] == "done" and len(job["files"]) == 4  # type: ignore[arg-type]


def test_cancel_mid_job_reaches_the_engine(tmp_path: Path, server: RunningServer, engines: FakeEngines) -> None:
    cancel = CancelToken()
    outcome: list[BaseException] = []
    job_dir = tmp_path / "job"
    job_dir.mkdir()

    def work() -> None:
        try:
            RemoteEngine(server.url, TOKEN).generate(request_for(tmp_path, SLOW_MODEL), job_dir, cancel=cancel)
        except BaseException as e:
            outcome.append(e)

    thread = threading.Thread(target=work)
    thread.start()
    wait_until(lambda: "cpu" in engines.engines and engines.engines["cpu"].holding.is_set(), "the job to run")
    started = time.monotonic()
    cancel.cancel()
    thread.join(WAIT_S)
    assert not thread.is_alive() and isinstance(outcome[0], CancelledError)
    assert time.monotonic() - started < 5.0
    (job,) = server_jobs(server)
    assert job["status"] == "cancelled"
    assert list(job_dir.iterdir()) == []  # nothing half-downloaded


def test_jobs_queue_behind_one_device_and_cancel_while_queued(tmp_path: Path, server: RunningServer) -> None:
    client = httpx.Client(base_url=server.url, headers=AUTH, timeout=10)
    region = write_midi(tmp_path / "r.mid").read_bytes()

    def submit(model: str) -> str:
        files = {"midi": ("r.mid", region)}
        response = client.post("/v1/jobs", data={"request": f'{{"model": "{model}", "bars": 1}}'}, files=files)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    first, second = submit(SLOW_MODEL), submit("fake-midi")
    wait_until(lambda: client.get(f"/v1/jobs/{first}").json()["status"] == "running", "the first job to run")
    assert client.get(f"/v1/jobs/{second}").json()["status"] == "queued"
    assert client.get("/v1/devices").json() == [{"name": "cpu", "busy": True, "job_id": first}]
    assert client.post(f"/v1/jobs/{second}/cancel").status_code == 202
    assert client.get(f"/v1/jobs/{second}").json()["status"] == "cancelled"
    assert client.post(f"/v1/jobs/{first}/cancel").status_code == 202
    wait_until(lambda: client.get(f"/v1/jobs/{first}").json()["status"] == "cancelled", "the cancel")
    assert client.post(f"/v1/jobs/{first}/cancel").status_code == 409
    assert client.delete(f"/v1/jobs/{first}").status_code == 204
    assert client.get(f"/v1/jobs/{first}").status_code == 404
    client.close()


def test_one_worker_per_device_runs_jobs_side_by_side(tmp_path: Path) -> None:
    engines = FakeEngines()
    with thread_server(tmp_path / "data", engines, devices=("cuda:0", "cuda:1")) as server:
        client = httpx.Client(base_url=server.url, headers=AUTH, timeout=10)
        region = write_midi(tmp_path / "r.mid").read_bytes()
        ids = [
            client.post(
                "/v1/jobs", data={"request": f'{{"model": "{SLOW_MODEL}"}}'}, files={"midi": ("r.mid", region)}
            ).json()["id"]  # fmt: skip
            for _ in range(2)
        ]
        wait_until(lambda: all(d["busy"] for d in client.get("/v1/devices").json()), "both devices to be busy")
        assert {d["job_id"] for d in client.get("/v1/devices").json()} == set(ids)
        for job_id in ids:
            client.post(f"/v1/jobs/{job_id}/cancel")
        client.close()
    assert sorted(engines.engines) == ["cuda:0", "cuda:1"]


def test_a_refused_job_is_bad_input_for_the_cli(tmp_path: Path, server: RunningServer) -> None:
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    with pytest.raises(BadInputError, match="is not installed on this server"):
        RemoteEngine(server.url, TOKEN).generate(request_for(tmp_path, "no-such-model"), job_dir)

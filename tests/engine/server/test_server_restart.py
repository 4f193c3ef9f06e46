"""Killing the server mid-job loses no finished job: a server process is killed (SIGKILL) while a job runs and a
client follows it, then started again on the same port and data folder."""

from __future__ import annotations

import hashlib
import json
import signal
import threading
import time
from pathlib import Path

import httpx
from server_rig import SLOW_MODEL, TOKEN, WAIT_S, free_port, start_process, write_midi

from engine.api import GenerationParams, GenerationRequest, Prompt
from engine.errors import EngineError
from engine.remote import RemoteEngine, Timeouts

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_a_killed_server_keeps_finished_jobs_and_fails_the_interrupted_one(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    url = f"http://127.0.0.1:{port}"
    region = write_midi(tmp_path / "region.mid")
    proc = start_process(data, port)
    try:
        client = httpx.Client(base_url=url, headers=AUTH, timeout=10)
        files = {"midi": ("region.mid", region.read_bytes())}
        finished = client.post("/v1/jobs", data={"request": '{"bars": 1, "variants": 2}'}, files=files).json()["id"]
        deadline = time.monotonic() + WAIT_S
        while client.get(f"/v1/jobs/{finished}").json()["status"] != "done":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        before = {f["path"]: f["sha256"] for f in client.get(f"/v1/jobs/{finished}/files").json()}

        # a client follows a slow job; the server dies under it
        outcome: list[BaseException] = []
        progress: list[float] = []
        job_dir = tmp_path / "job"
        job_dir.mkdir()
        request = GenerationRequest(Prompt(midi_path=region), GenerationParams(bars=1, variants=1), SLOW_MODEL)
        engine = RemoteEngine(url, TOKEN, timeouts=Timeouts(read_s=5, reconnect_s=WAIT_S))

        def follow() -> None:
            try:
                engine.generate(request, job_dir, lambda f, m: progress.append(f))
            except BaseException as e:
                outcome.append(e)

        thread = threading.Thread(target=follow)
        thread.start()
        deadline = time.monotonic() + WAIT_S
        while not any(0 < f < 1 for f in progress):  # the slow job is running and reporting
            assert time.monotonic() < deadline and thread.is_alive()
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(WAIT_S)
        time.sleep(0.3)  # the client has lost its stream and is retrying
        assert thread.is_alive()

        proc = start_process(data, port)
        thread.join(WAIT_S)
        assert not thread.is_alive()
        assert isinstance(outcome[0], EngineError)
        assert "stopped while this job was running" in str(outcome[0]) and "submit the job again" in str(outcome[0])
        assert list(job_dir.iterdir()) == []

        jobs = {j["id"]: j for j in client.get("/v1/jobs").json()}
        assert jobs[finished]["status"] == "done"
        (interrupted,) = [j for j in jobs.values() if j["id"] != finished]
        assert interrupted["status"] == "failed" and interrupted["error"]["type"] == "interrupted"
        manifest = json.loads((data / "jobs" / interrupted["id"] / "job.json").read_text())
        assert manifest["status"] == "failed"
        for path, sha in before.items():  # the finished job is still whole and downloadable
            body = client.get(f"/v1/jobs/{finished}/files/{path}").content
            assert hashlib.sha256(body).hexdigest() == sha
        client.close()
    finally:
        proc.kill()
        proc.wait(WAIT_S)


def test_a_client_gives_up_on_a_server_that_stays_away(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    url = f"http://127.0.0.1:{port}"
    region = write_midi(tmp_path / "region.mid")
    proc = start_process(data, port)
    engine = RemoteEngine(url, TOKEN, timeouts=Timeouts(read_s=2, reconnect_s=1.0))
    request = GenerationRequest(Prompt(midi_path=region), GenerationParams(bars=1, variants=1), SLOW_MODEL)
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    progress: list[float] = []
    outcome: list[BaseException] = []

    def follow() -> None:
        try:
            engine.generate(request, job_dir, lambda f, m: progress.append(f))
        except BaseException as e:
            outcome.append(e)

    thread = threading.Thread(target=follow)
    thread.start()
    try:
        deadline = time.monotonic() + WAIT_S
        while not any(0 < f < 1 for f in progress):  # the job runs on the server
            assert time.monotonic() < deadline and thread.is_alive()
            time.sleep(0.02)
        proc.kill()
        thread.join(WAIT_S)
        assert not thread.is_alive() and isinstance(outcome[0], EngineError)
        message = str(outcome[0])
        assert f"lost the Segue server at {url}" in message and "check that `segue serve` still runs there" in message
    finally:
        proc.kill()
        proc.wait(WAIT_S)


def test_a_stopped_server_fails_the_running_job_and_runs_the_queued_one_after_a_restart(tmp_path: Path) -> None:
    from server_rig import FakeEngines, thread_server

    data = tmp_path / "data"
    region = write_midi(tmp_path / "region.mid").read_bytes()
    engines = FakeEngines()
    with thread_server(data, engines) as server:
        client = httpx.Client(base_url=server.url, headers=AUTH, timeout=10)
        ids = [
            client.post(
                "/v1/jobs",
                data={"request": json.dumps({"model": model, "bars": 1, "variants": 1})},
                files={"midi": ("r.mid", region)},
            ).json()["id"]  # fmt: skip
            for model in (SLOW_MODEL, "fake-midi")
        ]
        deadline = time.monotonic() + WAIT_S
        while not ("cpu" in engines.engines and engines.engines["cpu"].holding.is_set()):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        client.close()
    running, queued = (json.loads((data / "jobs" / i / "job.json").read_text()) for i in ids)
    assert running["status"] == "failed" and "was stopped while this job was running" in running["error"]["message"]
    assert queued["status"] == "queued"
    with thread_server(data, FakeEngines()) as server:
        client = httpx.Client(base_url=server.url, headers=AUTH, timeout=10)
        deadline = time.monotonic() + WAIT_S
        while client.get(f"/v1/jobs/{ids[1]}").json()["status"] != "done":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert client.get(f"/v1/jobs/{ids[0]}").json()["status"] == "failed"
        client.close()


def test_finished_jobs_nobody_deleted_go_after_keep_days(tmp_path: Path) -> None:
    from server_rig import thread_server

    data = tmp_path / "data"
    region = write_midi(tmp_path / "region.mid").read_bytes()
    with thread_server(data) as server:
        client = httpx.Client(base_url=server.url, headers=AUTH, timeout=10)
        ids = [
            client.post(
                "/v1/jobs", data={"request": '{"bars": 1, "variants": 1}'}, files={"midi": ("r.mid", region)}
            ).json()["id"]  # fmt: skip
            for _ in range(2)
        ]
        deadline = time.monotonic() + WAIT_S
        while any(client.get(f"/v1/jobs/{i}").json()["status"] != "done" for i in ids):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        client.close()
    manifest = data / "jobs" / ids[0] / "job.json"
    record = json.loads(manifest.read_text())
    record["finished"] = "2020-01-01T00:00:00.000+00:00"  # long ago
    manifest.write_text(json.dumps(record))
    (data / "jobs" / f".deleted-{ids[1]}x").mkdir()  # a deletion a crashed server did not finish
    with thread_server(data, keep_days=7) as server:
        client = httpx.Client(base_url=server.url, headers=AUTH, timeout=10)
        deadline = time.monotonic() + WAIT_S
        while client.get(f"/v1/jobs/{ids[0]}").status_code != 404:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert client.get(f"/v1/jobs/{ids[1]}").json()["status"] == "done"
        client.close()
    assert sorted(p.name for p in (data / "jobs").iterdir()) == [ids[1]]

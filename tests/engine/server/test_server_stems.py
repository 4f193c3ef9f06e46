"""Stems (several tracks' audio of one region) through the client and a real uvicorn: each stem is uploaded with
its name, stored under a name the server picks, handed to the server's engine in order, and recorded (names,
paths, SHA-256) in the job.json the client writes here. Bad stem uploads are refused before anything is stored.

Material: short sine tones written by the test (server_rig.write_wav)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_rig import TOKEN, FakeEngines, RunningServer, thread_server, write_midi, write_wav

from bridge.runner import run_job
from engine.api import MAX_STEMS, GenerationParams, GenerationRequest, Meter, Prompt
from engine.remote import RemoteEngine

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_stems_reach_the_server_engine_by_name_and_land_in_the_local_job_json(tmp_path: Path) -> None:
    engines = FakeEngines()
    tracks = {name: write_wav(tmp_path / "in" / f"{name}.wav", seconds=0.2 + 0.1 * i)  # distinct content
              for i, name in enumerate(("drums", "bass", "keys"))}  # fmt: skip
    prompt = Prompt(tempo_bpm=120.0, meter=Meter(4, 4), stems=tuple(tracks.items()))
    request = GenerationRequest(prompt, GenerationParams(bars=1, variants=1, seed=2))
    with thread_server(tmp_path / "data", engines, devices=("cpu",)) as server:
        record = run_job(RemoteEngine(server.url, TOKEN, keep_on_server=True), request, tmp_path / "out")
        (seen,) = engines.engines["cpu"].requests
        assert [name for name, _ in seen.prompt.stems] == ["drums", "bass", "keys"]
        for (name, server_path), local in zip(seen.prompt.stems, tracks.values(), strict=True):
            assert Path(server_path).read_bytes() == local.read_bytes(), name
            assert Path(server_path).name.startswith("stem-") and name not in Path(server_path).name
        assert seen.prompt.audio_path is None and seen.prompt.midi_path is None
        (server_job,) = [json.loads(p.read_text()) for p in (tmp_path / "data").rglob("job.json")]
    assert [s["name"] for s in server_job["inputs"]["stems"]] == ["drums", "bass", "keys"]
    assert [s["sha256"] for s in server_job["inputs"]["stems"]] == [sha(p) for p in tracks.values()]
    assert record.status == "done", record.error
    region = json.loads((tmp_path / "out" / record.id / "job.json").read_text())["region"]
    assert [(s["role"], s["path"], s["sha256"]) for s in region["sources"]] == [
        (f"stem:{name}", str(path), sha(path)) for name, path in tracks.items()
    ]
    assert "drums-bass-keys" in record.id


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with thread_server(tmp_path_factory.mktemp("data")) as running:
        yield running


@pytest.fixture(scope="module")
def wav_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return write_wav(tmp_path_factory.mktemp("in") / "t.wav", seconds=0.05).read_bytes()


def post(server: RunningServer, names: list[str], files: list[tuple[str, tuple[str, bytes]]]) -> httpx.Response:
    request = json.dumps({"bars": 1, "variants": 1, "tempo_bpm": 120.0, "stems": names})
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=10) as client:
        return client.post("/v1/jobs", data={"request": request}, files=files)


def stored_jobs(server: RunningServer) -> int:
    return len(list(server.data_dir.rglob("job.json")))


def test_a_stem_count_that_differs_from_the_names_is_refused_before_anything_is_stored(
    server: RunningServer, wav_bytes: bytes
) -> None:
    before = stored_jobs(server)
    response = post(server, ["drums", "bass"], [("stem", ("drums.wav", wav_bytes))])
    assert response.status_code == 400
    assert "names 2 stem(s) (drums, bass) and 1 stem file(s)" in response.json()["detail"]
    assert stored_jobs(server) == before


def test_too_many_stems_a_bad_name_or_a_stem_that_is_not_audio_are_refused(
    server: RunningServer, wav_bytes: bytes, tmp_path: Path
) -> None:
    before = stored_jobs(server)
    many = [f"t{i}" for i in range(MAX_STEMS + 1)]
    response = post(server, many, [("stem", (f"{n}.wav", wav_bytes)) for n in many])
    assert response.status_code == 400 and f"at most {MAX_STEMS} stems" in response.json()["detail"]
    response = post(server, ["Drums Kit"], [("stem", ("d.wav", wav_bytes))])
    assert response.status_code == 400 and "a stem name is lowercase letters" in response.json()["detail"]
    midi = write_midi(tmp_path / "r.mid").read_bytes()
    response = post(server, ["drums"], [("stem", ("d.mid", midi))])
    assert response.status_code == 415 and "the stem 1 upload is not WAV, FLAC or AIFF" in response.json()["detail"]
    assert stored_jobs(server) == before

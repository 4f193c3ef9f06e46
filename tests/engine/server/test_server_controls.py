"""The producer's controls reach the server's engine unchanged through the client and a real uvicorn, and land
in the job.json the client writes here."""

from __future__ import annotations

import json
from pathlib import Path

from server_rig import TOKEN, FakeEngines, thread_server, write_midi

from bridge.runner import run_job
from engine.api import GenerationParams, GenerationRequest, Prompt
from engine.remote import RemoteEngine


def test_the_controls_reach_the_server_engine_and_the_local_job_json(tmp_path: Path) -> None:
    engines = FakeEngines()
    region = write_midi(tmp_path / "in" / "region.mid")
    params = GenerationParams(
        bars=1,
        variants=1,
        seed=4,
        similarity=0.25,
        keep_opening=True,
        density=2.0,
        part_density=(("bass", 0.5),),
        hold_notes=False,
        end_on_tonic=True,
    )
    with thread_server(tmp_path / "data", engines, devices=("cpu",)) as server:
        record = run_job(RemoteEngine(server.url, TOKEN), GenerationRequest(Prompt(midi_path=region), params), tmp_path)
    assert record.status == "done", record.error
    (seen,) = engines.engines["cpu"].requests
    assert seen.params == params
    recorded = json.loads((tmp_path / record.id / "job.json").read_text())["params"]
    assert recorded["similarity"] == 0.25 and recorded["keep_opening"] is True and recorded["density"] == 2.0
    assert recorded["part_density"] == {"bass": 0.5} and recorded["hold_notes"] is False
    assert recorded["end_on_tonic"] is True

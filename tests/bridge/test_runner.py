from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from fake_engine import FakeEngine, write_midi_region

import bridge.runner as runner
from bridge.jobs import JobRecord, load_job
from bridge.runner import run_job
from engine.api import CancelToken, GenerationParams, GenerationRequest, Meter, Prompt
from engine.errors import BadInputError, EngineError


@pytest.fixture
def request_(tmp_path: Path) -> GenerationRequest:
    midi = write_midi_region(tmp_path / "in" / "My Region.mid")
    return GenerationRequest(
        Prompt(midi_path=midi, meter=Meter(4, 4), start_beats=16.0),
        GenerationParams(bars=2, variants=2, temperature=0.9, top_p=0.8, seed=7),
        model="default",
    )


@pytest.fixture
def statuses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every status written to job.json, in order."""
    seen: list[str] = []
    real = runner.write_job

    def spy(job_dir: Path, record: JobRecord) -> Path:
        seen.append(record.status)
        return real(job_dir, record)

    monkeypatch.setattr(runner, "write_job", spy)
    return seen


def _job_dir(out: Path) -> Path:
    (job_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return job_dir


def test_done_job_records_everything(tmp_path: Path, request_: GenerationRequest, statuses: list[str]) -> None:
    engine = FakeEngine()
    progress: list[tuple[float, str]] = []
    out = tmp_path / "out"
    record = run_job(engine, request_, out, on_progress=lambda f, m: progress.append((f, m)))

    assert statuses == ["queued", "running", "done"]
    assert engine.seen_status == ["running"]
    job_dir = _job_dir(out)
    assert job_dir.name == record.id and "-my-region-continue-" in record.id
    assert sorted(p.name for p in job_dir.iterdir()) == ["job.json", "v01", "v02"]  # no temp files
    data = json.loads((job_dir / "job.json").read_text())
    assert load_job(job_dir) == record
    assert data["status"] == "done" and data["error"] is None
    assert (data["mode"], data["kind"], data["model"], data["engine"]) == ("continue", "midi", "fake-midi", "fake")
    expected = {"bars": 2, "variants": 2, "temperature": 0.9, "top_p": 0.8, "seed": 7, "parts": [], "output": "auto"}
    controls = {"similarity": None, "keep_opening": None, "density": None, "part_density": {}, "hold_notes": None}
    assert data["params"] == {**expected, **controls, "end_on_tonic": None}  # None: the engine's default
    source = data["region"]["sources"][0]
    midi_bytes = (tmp_path / "in" / "My Region.mid").read_bytes()
    assert source["role"] == "midi" and source["sha256"] == hashlib.sha256(midi_bytes).hexdigest()
    assert data["region"]["tempo_bpm"] == 120.0 and data["region"]["meter"] == "4/4"
    assert data["region"]["start_beats"] == 16.0 and data["region"]["sample_rate"] == 8000
    assert data["region"]["parts"] == ["piano"] and data["region"]["notes"] == "used the last tempo"
    assert data["place_at"] == {"beats": 8.0, "seconds": 4.0, "timeline_beats": 24.0}
    assert [v["id"] for v in data["variants"]] == ["v01", "v02"]
    assert [v["seed"] for v in data["variants"]] == [7, 8]
    for variant in data["variants"]:
        assert variant["duration_seconds"] == 4.0
        for rel in variant["files"].values():
            assert (job_dir / rel).is_file()
    assert data["timings"]["generate_seconds"] == 0.01 and data["timings"]["wall_seconds"] >= 0
    assert data["created"] <= data["started"] <= data["finished"] == data["updated"]
    assert data["segue_version"]
    assert [f for f, _ in progress] == [0.5, 1.0]


def test_bad_input_from_the_engine_is_recorded_then_raised(
    tmp_path: Path, request_: GenerationRequest, statuses: list[str]
) -> None:
    engine = FakeEngine(fail=BadInputError("the region has no notes; give a region with notes"))
    with pytest.raises(BadInputError, match="no notes"):
        run_job(engine, request_, tmp_path / "out")
    record = load_job(_job_dir(tmp_path / "out"))
    assert statuses == ["queued", "running", "failed"]
    assert record.status == "failed" and record.error is not None
    assert record.error.message.startswith("the region has no notes") and record.error.type == "BadInputError"
    assert record.variants == ()


def test_engine_failure_returns_a_failed_record_and_marks_partial_variants(
    tmp_path: Path, request_: GenerationRequest
) -> None:
    engine = FakeEngine(fail=RuntimeError("CUDA out of memory"), fail_at=2)
    record = run_job(engine, request_, tmp_path / "out")
    assert record.status == "failed" and record.error is not None
    assert "CUDA out of memory" in record.error.message and record.error.type == "RuntimeError"
    assert record.error.partial_variants == ("v01",)
    assert "incomplete variant folders" in record.error.message
    assert load_job(_job_dir(tmp_path / "out")) == record


def test_cancel_is_recorded(tmp_path: Path, request_: GenerationRequest) -> None:
    record = run_job(FakeEngine(cancel_at=2), request_, tmp_path / "out", cancel=CancelToken())
    assert record.status == "cancelled" and record.error is not None
    assert record.error.type == "CancelledError" and record.error.partial_variants == ("v01",)
    assert load_job(_job_dir(tmp_path / "out")).status == "cancelled"


def test_a_cancelled_token_stops_before_any_variant(tmp_path: Path, request_: GenerationRequest) -> None:
    token = CancelToken()
    token.cancel()
    record = run_job(FakeEngine(), request_, tmp_path / "out", cancel=token)
    assert record.status == "cancelled" and record.error is not None and record.error.partial_variants == ()


def test_keyboard_interrupt_in_the_engine_marks_cancelled_and_propagates(
    tmp_path: Path, request_: GenerationRequest
) -> None:
    with pytest.raises(KeyboardInterrupt):
        run_job(FakeEngine(fail=KeyboardInterrupt()), request_, tmp_path / "out")
    assert load_job(_job_dir(tmp_path / "out")).status == "cancelled"


def test_never_done_when_the_files_are_not_there(tmp_path: Path, request_: GenerationRequest) -> None:
    record = run_job(FakeEngine(lie=True), request_, tmp_path / "out")
    assert record.status == "failed" and record.error is not None
    assert "stems/piano.wav" in record.error.message and record.error.type == EngineError.__name__


def test_a_broken_progress_display_does_not_fail_the_job(tmp_path: Path, request_: GenerationRequest) -> None:
    def broken(fraction: float, message: str) -> None:
        raise ValueError("display gone")

    assert run_job(FakeEngine(), request_, tmp_path / "out", on_progress=broken).status == "done"


def test_unreadable_source_creates_nothing(tmp_path: Path) -> None:
    request = GenerationRequest(Prompt(midi_path=tmp_path / "gone.mid"))
    with pytest.raises(BadInputError, match="gone.mid"):
        run_job(FakeEngine(), request, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_two_jobs_get_two_folders(tmp_path: Path, request_: GenerationRequest) -> None:
    a = run_job(FakeEngine(), request_, tmp_path / "out")
    b = run_job(FakeEngine(), request_, tmp_path / "out")
    assert a.id != b.id and len(list((tmp_path / "out").iterdir())) == 2


def test_mark_stopped_keeps_final_statuses(tmp_path: Path, request_: GenerationRequest) -> None:
    record = run_job(FakeEngine(), request_, tmp_path / "out")
    assert runner.mark_stopped(tmp_path / "out" / record.id).status == "done"
    queued = runner.create_job(request_, tmp_path / "out2", "fake")
    stopped = runner.mark_stopped(tmp_path / "out2" / queued.id)
    assert stopped.status == "cancelled" and stopped.finished is not None

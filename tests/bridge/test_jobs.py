from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path

import pytest

import bridge.jobs as jobs
from bridge.jobs import (
    ErrorRecord,
    JobRecord,
    ParamsRecord,
    PlaceAt,
    RegionRecord,
    SourceRecord,
    VariantRecord,
    create_job_dir,
    job_from_json,
    job_to_json,
    list_jobs,
    load_job,
    make_job_id,
    sanitize_stem,
    write_job,
)
from engine import atomic
from engine.errors import BadInputError, EngineError


def _record(job_id: str = "20261121-235959-region-continue-3f2a", status: str = "done") -> JobRecord:
    return JobRecord(
        id=job_id,
        status=status,  # type: ignore[arg-type]
        mode="continue",
        kind="midi",
        model="fake-midi",
        engine="fake",
        params=ParamsRecord(4, 2, 1.0, 0.95, 7),
        region=RegionRecord(
            sources=(SourceRecord("/music/region.mid", "midi", "ab" * 32, 123),),
            tempo_bpm=120.0,
            meter="4/4",
            length_beats=8.0,
            length_bars=2,
            start_beats=16.0,
            sample_rate=44100,
            parts=("piano",),
        ),
        created="2026-11-21T23:59:59.000+01:00",
        updated="2026-11-21T23:59:59.500+01:00",
        segue_version="0.1.0",
        place_at=PlaceAt(8.0, 4.0, 24.0),
        variants=(VariantRecord("v01", 7, {"midi": "v01/continuation.mid"}, 8.0, ("piano",)),),
        error=ErrorRecord("boom", "EngineError", ("v02",)) if status == "failed" else None,
        timings={"wall_seconds": 1.5},
    )


def test_job_ids_are_recognisable_and_sort_by_time() -> None:
    from datetime import datetime

    early = make_job_id("My Region (take 2)", "continue", datetime(2026, 11, 21, 23, 59, 59), "3f2a")
    late = make_job_id("aaa", "continue", datetime(2026, 11, 22, 0, 0, 0), "0000")
    assert early == "20261121-235959-my-region-take-2-continue-3f2a"
    assert sorted([late, early]) == [early, late]
    assert re.fullmatch(r"\d{8}-\d{6}-[a-z0-9-]+-continue-[0-9a-f]{4}", make_job_id("x", "continue"))


@pytest.mark.parametrize(
    ("stem", "expected"),
    [("Bass Line!!", "bass-line"), ("../../etc/passwd", "etc-passwd"), ("日本", "region"), ("x" * 80, "x" * 32)],
)
def test_sanitize_stem(stem: str, expected: str) -> None:
    assert sanitize_stem(stem) == expected


def test_never_reuses_an_existing_job_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    suffixes = iter(["aaaa", "aaaa", "bbbb"])
    monkeypatch.setattr(jobs.secrets, "token_hex", lambda n: next(suffixes))
    first_id, first = create_job_dir(tmp_path, "region", "continue")
    (first / "keep.txt").write_text("the user's")
    second_id, second = create_job_dir(tmp_path, "region", "continue")
    assert first_id.endswith("-aaaa") and second_id.endswith("-bbbb") and first != second
    assert (first / "keep.txt").read_text() == "the user's"
    assert [p.name for p in second.iterdir()] == [".owner"]  # only its owner lock: nothing of the first job


def test_gives_up_with_a_clear_error_when_every_name_is_taken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "make_job_id", lambda stem, mode: "same")
    (tmp_path / "same").mkdir()
    with pytest.raises(BadInputError, match="free job folder name"):
        create_job_dir(tmp_path, "region", "continue")


def test_output_folder_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(BadInputError, match="cannot create the output folder"):
        create_job_dir(blocker / "out", "region", "continue")


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record = _record()
    write_job(tmp_path, record)
    assert [p.name for p in tmp_path.iterdir()] == ["job.json"]
    before = (tmp_path / "job.json").read_text()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(atomic.os, "replace", broken_replace)
    with pytest.raises(EngineError, match="Input/output error"):
        write_job(tmp_path, _record(status="failed"))
    assert (tmp_path / "job.json").read_text() == before  # the old manifest is intact
    assert [p.name for p in tmp_path.iterdir()] == ["job.json"]


def test_json_round_trip_and_schema(tmp_path: Path) -> None:
    record = _record(status="failed")
    write_job(tmp_path, record)
    data = json.loads((tmp_path / "job.json").read_text())
    for key in (
        "id",
        "status",
        "mode",
        "kind",
        "model",
        "engine",
        "params",
        "region",
        "place_at",
        "variants",
        "error",
        "timings",
        "created",
        "updated",
        "segue_version",
    ):
        assert key in data
    controls = {"similarity", "keep_opening", "density", "part_density", "hold_notes", "end_on_tonic"}
    assert set(data["params"]) == {"bars", "variants", "temperature", "top_p", "seed", "parts", "output", *controls}
    assert data["region"]["sources"][0]["sha256"] == "ab" * 32
    assert data["error"]["message"] == "boom"
    assert load_job(tmp_path) == record
    assert load_job(tmp_path / "job.json") == record
    assert job_from_json({**job_to_json(record), "added_in_a_later_version": 1}) == record


def test_accompany_parts_and_output_round_trip_and_old_manifests_load(tmp_path: Path) -> None:
    import dataclasses

    record = dataclasses.replace(
        _record(), mode="accompany", params=ParamsRecord(2, 3, 1.0, 0.95, None, ("bass", "alto"), "midi")
    )
    write_job(tmp_path, record)
    data = json.loads((tmp_path / "job.json").read_text())
    assert data["params"]["parts"] == ["bass", "alto"] and data["params"]["output"] == "midi"
    loaded = load_job(tmp_path)
    assert loaded == record and loaded.params.parts == ("bass", "alto")
    old = job_to_json(_record())  # a job.json written before parts and output existed
    del old["params"]["parts"], old["params"]["output"]
    params = job_from_json(old).params
    assert params.parts == () and params.output == "auto" and params.bars == 4


@pytest.mark.parametrize("content", ["not json", "[]", '{"status": "finished"}', '{"status": "done"}'])
def test_load_rejects_what_is_not_a_manifest(tmp_path: Path, content: str) -> None:
    (tmp_path / "job.json").write_text(content)
    with pytest.raises(BadInputError, match="job.json"):
        load_job(tmp_path)
    with pytest.raises(BadInputError, match="does not exist"):
        load_job(tmp_path / "elsewhere")


def test_list_jobs_sorted_and_skips_other_folders(tmp_path: Path) -> None:
    for job_id in ("20261122-000000-b-continue-0000", "20261121-000000-a-continue-0000"):
        (tmp_path / job_id).mkdir()
        write_job(tmp_path / job_id, _record(job_id))
    (tmp_path / "not-a-job").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "job.json").write_text("{")
    (tmp_path / "stray.txt").write_text("")
    found = list_jobs(tmp_path)
    assert [r.id for _, r in found] == ["20261121-000000-a-continue-0000", "20261122-000000-b-continue-0000"]
    assert found[0][0] == tmp_path / found[0][1].id
    assert list_jobs(tmp_path / "missing") == []
    assert os.path.isdir(tmp_path / "broken")  # never touched

"""Named copies in ``<job_dir>/place/``: names, bext time references, no overwrite, and the service's events."""

from __future__ import annotations

import dataclasses
import logging
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile
from fake_engine import SAMPLE_RATE, FakeEngine, write_midi, write_midi_region

from bridge import placement
from bridge.bwf import read_bext, read_chunk_data, read_chunks
from bridge.events import BridgeEvent, DawRegion, JobDone, Placement
from bridge.jobs import JobRecord, ParamsRecord, RegionRecord, VariantRecord
from bridge.placement import job_short, place_or_original, place_variant, placed_stem, slug
from bridge.service import BridgeService
from engine.api import CancelToken, GenerationRequest, GenerationResult, Meter, ProgressCallback
from engine.errors import BadInputError, EngineError

JOB_ID = "20260131-235959-region-continue-3f2a"


def write_wav(path: Path, sample_rate: int = 48_000, seconds: float = 0.1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    audio = np.random.default_rng(1).uniform(-0.5, 0.5, size=(int(sample_rate * seconds), 2))
    soundfile.write(path, audio.astype(np.float32), sample_rate, subtype="PCM_24", format="WAV")
    return path


def make_job(tmp_path: Path, stems: tuple[str, ...] = ("Piano", "Strings & Pads")) -> tuple[Path, JobRecord]:
    job_dir = tmp_path / JOB_ID
    files = {"midi": "v01/continuation.mid", "audio": "v01/continuation.wav", "full_audio": "v01/full.wav"}
    write_midi(job_dir / files["midi"], 2)
    write_wav(job_dir / files["audio"])
    write_wav(job_dir / files["full_audio"])
    for part in stems:
        files[f"stem:{part}"] = f"v01/stems/{part}.wav"
        write_wav(job_dir / files[f"stem:{part}"])
    variant = VariantRecord("v01", 7, files, 4.0, stems)
    record = JobRecord(
        id=JOB_ID,
        status="done",
        mode="continue",
        kind="midi",
        model="fake",
        engine="fake",
        params=ParamsRecord(2, 1, 1.0, 0.95, 7),
        region=RegionRecord(sources=(), tempo_bpm=120.0, meter="4/4", start_beats=17.0),
        created="2026-01-31T23:59:59.000+00:00",
        updated="2026-01-31T23:59:59.000+00:00",
        segue_version="0",
        variants=(variant,),
    )
    return job_dir, record


def data_bytes(path: Path) -> bytes:
    (data,) = [c for c in read_chunks(path) if c.id == b"data"]
    return read_chunk_data(path, data)


def test_names_are_safe_and_say_what_the_file_is() -> None:
    assert placed_stem("Lead Vox #2/ä", JOB_ID, "v01", "mix") == "lead-vox-2-a_3f2a_v01_mix"
    assert placed_stem("Lead Vox #2/ä", JOB_ID, "v01") == "lead-vox-2-a_3f2a_v01"
    assert placed_stem("", JOB_ID, "v03", "Strings & Pads") == "segue_3f2a_v03_strings-pads"
    assert slug("../../etc/passwd", "x") == "etc-passwd" and slug("鼓", "segue") == "segue"
    assert slug("my_track", "x") == "my-track"  # "_" separates fields only
    assert len(slug("a" * 100, "x")) == 32
    assert job_short("weird id") == job_short("weird id") and len(job_short("weird id")) == 6
    assert job_short("20260131-235959-region-continue-3f2a") == "3f2a"


def test_variant_is_placed_with_a_time_reference(tmp_path: Path) -> None:
    job_dir, record = make_job(tmp_path)
    placed = place_variant(job_dir, record, record.variants[0], "Lead Vox #2/ä", 12.5)
    place = job_dir / "place"
    assert [(p.role, p.kind, p.path.name) for p in placed] == [
        ("audio", "audio", "lead-vox-2-a_3f2a_v01_mix.wav"),
        ("stem:Piano", "audio", "lead-vox-2-a_3f2a_v01_piano.wav"),
        ("stem:Strings & Pads", "audio", "lead-vox-2-a_3f2a_v01_strings-pads.wav"),
        ("midi", "midi", "lead-vox-2-a_3f2a_v01.mid"),
    ]
    assert all(p.path.parent == place for p in placed)
    assert sorted(p.name for p in place.iterdir()) == sorted(p.path.name for p in placed)  # no temp files left
    for p in placed[:3]:
        bext = read_bext(p.path)
        assert bext is not None and bext.time_reference == p.time_reference == 600_000  # 12.5 s at 48 kHz
        assert bext.originator == "Segue" and "3f2a" in bext.originator_reference
        assert data_bytes(p.path) == data_bytes(job_dir / record.variants[0].files[p.role])
        a, _ = soundfile.read(p.path, dtype="int32")
        b, _ = soundfile.read(job_dir / record.variants[0].files[p.role], dtype="int32")
        assert np.array_equal(a, b)
    assert placed[3].path.read_bytes() == (job_dir / "v01/continuation.mid").read_bytes()


def test_time_reference_uses_the_file_sample_rate(tmp_path: Path) -> None:
    job_dir, record = make_job(tmp_path, stems=())
    (job_dir / "v01/continuation.wav").unlink()
    write_wav(job_dir / "v01/continuation.wav", 44_100)
    placed = place_variant(job_dir, record, record.variants[0], "Bass", 2.0)
    assert placed[0].time_reference == 88_200


def test_repeated_placement_never_overwrites(tmp_path: Path) -> None:
    job_dir, record = make_job(tmp_path, stems=())
    first = place_variant(job_dir, record, record.variants[0], "Keys", 1.0)
    before = {p.path: p.path.read_bytes() for p in first}
    second = place_variant(job_dir, record, record.variants[0], "Keys", 3.0)
    assert [p.path.name for p in second] == ["keys_3f2a_v01_mix-2.wav", "keys_3f2a_v01-2.mid"]
    assert {p.path: p.path.read_bytes() for p in first} == before  # untouched
    assert [p.time_reference for p in second] == [144_000, None]


def test_refuses_when_every_name_is_taken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(placement, "MAX_COPIES", 2)
    job_dir, record = make_job(tmp_path, stems=())
    for _ in range(2):
        place_variant(job_dir, record, record.variants[0], "Keys", None)
    with pytest.raises(EngineError, match="already holds keys_3f2a_v01_mix.wav and 1 numbered"):
        place_variant(job_dir, record, record.variants[0], "Keys", None)
    assert not [p for p in (job_dir / "place").iterdir() if p.name.startswith(".")]


def test_plain_copy_when_the_position_is_unknown(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    job_dir, record = make_job(tmp_path, stems=())
    with caplog.at_level(logging.INFO, logger="bridge.placement"):
        placed = place_variant(job_dir, record, record.variants[0], "Keys", None)
    assert placed[0].time_reference is None and read_bext(placed[0].path) is None
    assert placed[0].path.read_bytes() == (job_dir / "v01/continuation.wav").read_bytes()
    assert "DAW position is unknown" in caplog.text


def test_a_wav_that_cannot_take_a_bext_is_copied_plain(tmp_path: Path) -> None:
    job_dir, record = make_job(tmp_path, stems=())
    (job_dir / "v01/continuation.wav").write_bytes(b"RF64" + bytes(100))  # not something we can add bext to
    placed = place_variant(job_dir, record, record.variants[0], "Keys", 1.0)
    assert placed[0].time_reference is None
    assert placed[0].path.read_bytes() == b"RF64" + bytes(100)


def test_missing_or_escaping_files(tmp_path: Path) -> None:
    job_dir, record = make_job(tmp_path, stems=())
    (job_dir / "v01/continuation.mid").unlink()
    with pytest.raises(BadInputError, match="continuation.mid is missing"):
        place_variant(job_dir, record, record.variants[0], "Keys", 1.0)
    assert not (job_dir / "place").exists()  # every file is checked before any copy is made
    sneaky = dataclasses.replace(record.variants[0], files={"audio": "../../outside.wav"})
    with pytest.raises(BadInputError, match="outside the job folder"):
        place_variant(job_dir, record, sneaky, "Keys", 1.0)
    originals = place_or_original(job_dir, record, record.variants[0], "Keys", 1.0)  # falls back, logs a warning
    assert [(p.role, p.path) for p in originals] == [
        ("midi", job_dir / "v01/continuation.mid"),
        ("audio", job_dir / "v01/continuation.wav"),
    ]


class StemEngine(FakeEngine):
    """The FakeEngine plus one stem per variant, as the local engine writes them."""

    def generate(
        self,
        request: GenerationRequest,
        job_dir: Path,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> GenerationResult:
        result = super().generate(request, job_dir, progress, cancel)
        variants = []
        for v in result.variants:
            write_wav(job_dir / v.id / "stems" / "piano.wav", SAMPLE_RATE)
            variants.append(dataclasses.replace(v, files={**v.files, "stem:piano": f"{v.id}/stems/piano.wav"}))
        return dataclasses.replace(result, variants=tuple(variants))


@pytest.mark.parametrize("engine", [FakeEngine(), StemEngine()], ids=["no-stems", "stems"])
def test_service_places_named_copies(tmp_path: Path, engine: FakeEngine) -> None:
    events: list[BridgeEvent] = []
    done = threading.Event()

    def listen(event: BridgeEvent) -> None:
        events.append(event)
        if isinstance(event, Placement) and event.kind == "midi" and event.variant_id == "v02":
            done.set()

    service = BridgeService(engine, tmp_path / "out", place="all")
    service.add_listener(listen)
    service.start()
    midi = write_midi_region(tmp_path / "region.mid").resolve()
    service.set_region(DawRegion(None, midi, 32.0, 8.0, 120.0, Meter(4, 4), "Lead Vox #2/ä"))
    try:
        service.generate("continue", 1, 2)
        assert done.wait(10), events
        (job,) = [e for e in events if isinstance(e, JobDone)]
        place = job.job_json_path.parent / "place"
        short = job.job_id.rsplit("-", 1)[1]
        placements = [e for e in events if isinstance(e, Placement)]
        assert [(p.file_path.name, p.kind) for p in placements] == [
            (f"lead-vox-2-a_{short}_v01_mix.wav", "audio"),
            (f"lead-vox-2-a_{short}_v01.mid", "midi"),
            (f"lead-vox-2-a_{short}_v02_mix.wav", "audio"),
            (f"lead-vox-2-a_{short}_v02.mid", "midi"),
        ]
        for p in placements:
            assert p.file_path.parent == place and p.file_path.is_file()
            assert (p.position_beats, p.position_seconds) == (40.0, 20.0)
        bext = read_bext(placements[0].file_path)
        assert bext is not None and bext.time_reference == 20 * SAMPLE_RATE
        stems = sorted(f.name for f in place.glob("*_piano.wav"))  # copied for the producer, no events
        expected = [f"lead-vox-2-a_{short}_v0{i}_piano.wav" for i in (1, 2)] if isinstance(engine, StemEngine) else []
        assert stems == expected

        # /segue/choose later, from a fresh service (after a restart): the position comes from job.json
        again = BridgeService(FakeEngine(), tmp_path / "out")
        chosen = again.choose(job.job_id, 2)
        assert [p.file_path.name for p in chosen] == [
            f"segue_{short}_v02_mix.wav",  # the track name is not in job.json
            f"segue_{short}_v02.mid",
        ]
        bext = read_bext(chosen[0].file_path)
        assert bext is not None and bext.time_reference == 20 * SAMPLE_RATE
        again.close()
    finally:
        service.close()

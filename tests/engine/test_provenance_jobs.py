"""Every file of every job kind says where it came from: continue MIDI, accompany, continue audio and an audio region
transcribed to MIDI, each run once through the runner with the shipped models (1 bar, 1 variant, one thread); the
placement copy keeps it; a file that changed after the engine signed it is reported when the client stamps it.

Material: examples/regions/pop_100bpm_4-4.mid and melody_96bpm_4-4.mid (written for Segue, MIT like the repository);
the audio region is melody_96bpm_4-4.mid rendered through the soundfont (engine.audio.example_region).
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest
import soundfile as sf

from bridge.jobs import JobRecord, job_to_json
from bridge.placement import place_variant
from bridge.runner import run_job
from engine.api import GenerationParams, GenerationRequest, Meter, Prompt
from engine.provenance.record import ProvenanceSettings, model_facts
from engine.provenance.report import FileProvenance, inspect_file
from engine.provenance.riff import BEXT_ID, parse_chunks
from engine.provenance.signing import c2pa_available
from engine.provenance.stamp import stamp_job

pytest.importorskip("torch")
ROOT = Path(__file__).resolve().parents[2]
REGIONS = ROOT / "examples" / "regions"
needs_c2pa = pytest.mark.skipif(not c2pa_available(), reason="c2pa-python (the provenance extra) is not installed")
HAS_TRANSCRIPTION = importlib.util.find_spec("basic_pitch") is not None and importlib.util.find_spec("onnxruntime")
KINDS = ["continue_midi", "accompany", "continue_audio", "transcribed"]


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[Path, JobRecord]]]:
    """The four job kinds, run once each with the local engine; their own config folder (and local key)."""
    from engine.audio.example_region import render_region
    from engine.local import LocalEngine

    base = tmp_path_factory.mktemp("provenance-jobs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEGUE_CONFIG_DIR", str(base / "config"))
        for name in ("REGION_NAME", "SIGN", "KEY_FILE", "CERTIFICATE_FILE"):
            patch.delenv(f"SEGUE_PROVENANCE_{name}", raising=False)
        engine = LocalEngine(device="cpu", threads=1)
        melody = render_region(REGIONS / "melody_96bpm_4-4.mid", base / "sung melody.wav", 44_100)  # 4 bars
        audio = Prompt(audio_path=melody, tempo_bpm=96.0, meter=Meter(4, 4))
        requests = {
            "continue_midi": GenerationRequest(
                Prompt(midi_path=REGIONS / "pop_100bpm_4-4.mid"), GenerationParams(bars=1, variants=1, seed=3)
            ),
            "accompany": GenerationRequest(
                Prompt(midi_path=REGIONS / "melody_96bpm_4-4.mid"),
                GenerationParams(mode="accompany", variants=1, seed=3, parts=("bass",)),
            ),
            "continue_audio": GenerationRequest(audio, GenerationParams(bars=1, variants=1, seed=3, output="audio")),
            "transcribed": GenerationRequest(audio, GenerationParams(bars=1, variants=1, seed=3, output="midi")),
        }
        done = {}
        for kind, request in requests.items():
            if kind == "transcribed" and not HAS_TRANSCRIPTION:
                continue
            record = run_job(engine, request, base / kind)
            assert record.status == "done", record.error
            done[kind] = (base / kind / record.id, record)
        yield done


def files_of(record: JobRecord) -> dict[str, str]:
    return {rel: role for variant in record.variants for role, rel in variant.files.items()}


def check_record(found: FileProvenance, record: JobRecord, role: str) -> None:
    data = job_to_json(record)
    provenance = found.record
    assert provenance is not None, f"{found.path} carries no record"
    assert (provenance.job, provenance.variant, provenance.role) == (record.id, "v01", role)
    assert provenance.mode == record.mode and provenance.seed == record.variants[0].seed
    expected_model = record.file_sources.get(role, f":{record.model}").split(":", 1)[1]
    assert provenance.model == expected_model
    licence, version = model_facts(provenance.model)  # read from the model's folder here
    assert (provenance.licence, provenance.model_version) == (licence, version)
    if provenance.model in ("segue-midi-small", "segue-accompany-small", "segue-audio-small"):  # neural, shipped
        assert licence == "non-commercial use only"  # what their configs and cards say
        assert version.startswith("sha256:") and len(version) == 23
    assert provenance.region_sha256 == tuple(s["sha256"] for s in data["region"]["sources"])
    assert provenance.region_name == ", ".join(Path(s["path"]).name for s in data["region"]["sources"])
    assert provenance.engine == "local" and provenance.generated


@pytest.mark.parametrize("kind", KINDS)
def test_every_file_of_every_job_kind_carries_its_provenance(
    kind: str, jobs: dict[str, tuple[Path, JobRecord]]
) -> None:
    if kind not in jobs:
        pytest.skip("basic-pitch is not installed (make venv installs it)")
    job_dir, record = jobs[kind]
    files = files_of(record)
    assert any(rel.endswith(".wav") for rel in files) and (kind == "continue_audio" or any(
        rel.endswith(".mid") for rel in files))  # fmt: skip
    for rel, role in files.items():
        found = inspect_file(job_dir / rel)
        check_record(found, record, role)
        # full.*: the region, then what was generated
        source_type = "compositeWithTrainedAlgorithmicMedia" if role.startswith("full") else "trainedAlgorithmicMedia"
        mark = ("Partly " if role.startswith("full") else "") + "AI-generated by Segue"
        assert found.record is not None and found.record.digital_source_type == source_type
        if found.kind == "wav":
            assert found.bext is not None and found.bext.description.startswith(mark)
            assert found.ixml is not None and found.ixml.fields["PROJECT"] == f"Segue job {record.id}"
            assert sf.info(str(job_dir / rel)).frames > 0
            if c2pa_available():
                assert found.signature_holds is True, (rel, found.c2pa)
                assert found.c2pa is not None and found.c2pa.digital_source_type == source_type
            sizes = found.chunk_sizes
            assert sizes["bext"] + sizes["iXML"] + sizes.get("C2PA", 0) < 12 * 1024
        else:
            assert found.midi is not None and found.midi.copyrights and found.midi.texts
            assert found.midi.texts[0].startswith(mark)


@needs_c2pa
def test_metadata_survives_the_placement_copy(jobs: dict[str, tuple[Path, JobRecord]]) -> None:
    job_dir, record = jobs["continue_midi"]
    variant = record.variants[0]
    placed = place_variant(job_dir, record, variant, "Keys", 12.5)
    assert {p.kind for p in placed} == {"audio", "midi"}
    for copy in placed:
        source = inspect_file(job_dir / variant.files[copy.role])
        found = inspect_file(copy.path)
        assert found.record == source.record
        if copy.kind == "audio":
            rate = sf.info(str(copy.path)).samplerate
            assert found.bext is not None and source.bext is not None
            assert found.bext.time_reference == copy.time_reference == round(12.5 * rate)
            assert found.bext.description == source.bext.description
            assert found.ixml == source.ixml
            assert found.signature_holds is True
            assert [c.id for c in parse_chunks(copy.path.read_bytes())].count(BEXT_ID) == 1
            assert sf.read(copy.path)[0].tolist() == sf.read(job_dir / variant.files[copy.role])[0].tolist()
    unplaced = place_variant(job_dir, record, variant, "Keys", None)  # position unknown: a plain copy
    for copy in unplaced:
        assert copy.path.read_bytes() == (job_dir / variant.files[copy.role]).read_bytes()


@needs_c2pa
def test_a_file_changed_after_the_engine_signed_it_is_reported(
    jobs: dict[str, tuple[Path, JobRecord]], tmp_path: Path
) -> None:
    """As the client does after a remote job's download: stamping again checks the signature it came with."""
    job_dir, record = jobs["continue_audio"]
    copy_dir = tmp_path / record.id
    for rel in files_of(record):
        (copy_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (copy_dir / rel).write_bytes((job_dir / rel).read_bytes())
    rel = record.variants[0].files["audio"]
    data = bytearray((copy_dir / rel).read_bytes())
    data[next(c for c in parse_chunks(bytes(data)) if c.id == b"data").offset + 100] ^= 1
    (copy_dir / rel).write_bytes(bytes(data))
    report = stamp_job(copy_dir, job_to_json(record), ProvenanceSettings())
    assert len(report.problems) == 1 and rel in report.problems[0] and "does not hold" in report.problems[0]
    assert set(report.signed) == set(files_of(record))  # all stamped and signed again all the same
    assert hashlib.sha256((copy_dir / rel).read_bytes()).digest() != hashlib.sha256(bytes(data)).digest()

"""stamp_job on a finished job's folder: every file it stamps is verifiable afterwards (its C2PA signature holds,
its audio and notes are the engine's), whether it stamps one file at a time or several; it rewrites only the files
the job lists and made, never a file of the user's (one beside the job folder, one a link points at, one the user
put into the job folder); a MIDI file's provenance inserted as bytes reads back as the decoded path writes it;
the reader the C2PA SDK signs from reads its parts as one file.

Material: noise written here; examples/regions/*.mid (written for Segue, MIT like the repository).
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from provenance_env import isolated_config

from engine.midi_io import parse_midi_bytes
from engine.provenance import midi as provenance_midi
from engine.provenance.midi import read_midi_provenance, stamp_midi_bytes
from engine.provenance.record import ProvenanceRecord, ProvenanceSettings
from engine.provenance.report import inspect_file
from engine.provenance.riff import PartsReader, chunk_bytes, parse_chunks
from engine.provenance.signing import c2pa_available
from engine.provenance.stamp import stamp_job, strip_provenance
from engine.render.wavfile import write_wav

ROOT = Path(__file__).resolve().parents[2]
REGIONS = ROOT / "examples" / "regions"
RATE = 44_100
needs_c2pa = pytest.mark.skipif(not c2pa_available(), reason="c2pa-python (the provenance extra) is not installed")


@pytest.fixture(autouse=True)
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own config folder: its own local key, no settings file of the user's."""
    return isolated_config(tmp_path, monkeypatch)


def make_job(folder: Path, variants: int = 2) -> dict[str, Any]:
    """A finished job's folder as the engine leaves it (mix, full mix, two stems, continuation.mid, full.mid)."""
    rng = np.random.default_rng(5)
    records = []
    for v in range(1, variants + 1):
        vid = f"v{v:02d}"
        files = {
            "midi": f"{vid}/continuation.mid",
            "full_midi": f"{vid}/full.mid",
            "audio": f"{vid}/continuation.wav",
            "full_audio": f"{vid}/full.wav",
            "stem:bass": f"{vid}/stems/bass.wav",
            "stem:keys": f"{vid}/stems/keys.wav",
        }
        for rel in files.values():
            if rel.endswith(".wav"):
                audio = rng.uniform(-0.4, 0.4, size=(2, RATE // 4)).astype(np.float32)
                write_wav(folder / rel, audio, RATE)
            else:
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(REGIONS / "pop_100bpm_4-4.mid", folder / rel)
        records.append({"id": vid, "seed": 7 + v, "files": files, "parts": ["bass", "keys"]})
    return {
        "id": "20261207-120000-pop-continue-3f2a",
        "mode": "continue",
        "kind": "midi",
        "model": "segue-midi-small",
        "engine": "local (cpu)",
        "params": {"bars": 1},
        "region": {"sources": [{"path": "/music/pop.mid", "sha256": "ab" * 32}], "tempo_bpm": 100.0},
        "variants": records,
        "segue_version": "0.1.0",
    }


def listed(job: dict[str, Any]) -> list[str]:
    return [rel for variant in job["variants"] for rel in variant["files"].values()]


@needs_c2pa
@pytest.mark.parametrize("workers", [1, 2])
def test_every_file_stamped_is_verifiable_and_keeps_the_engines_audio_and_notes(tmp_path: Path, workers: int) -> None:
    job_dir = tmp_path / "job"
    job = make_job(job_dir)
    before = {rel: (job_dir / rel).read_bytes() for rel in listed(job)}
    report = stamp_job(job_dir, job, ProvenanceSettings(), workers=workers)
    assert report.problems == ()
    assert list(report.stamped) == listed(job)  # in the job's order, whatever the workers
    assert list(report.signed) == [rel for rel in listed(job) if rel.endswith(".wav")]
    for rel, original in before.items():
        data = (job_dir / rel).read_bytes()
        found = inspect_file(job_dir / rel)
        assert found.record is not None and found.record.role in job["variants"][int(rel[1:3]) - 1]["files"]
        assert strip_provenance(data, rel) == original  # the engine's bytes, with only Segue's provenance added
        if rel.endswith(".wav"):
            assert found.c2pa is not None and found.c2pa.signature_holds, (rel, found.c2pa)
            assert chunk_bytes(data, b"data") == chunk_bytes(original, b"data")
    damaged = bytearray((job_dir / "v01/stems/bass.wav").read_bytes())
    audio = next(c for c in parse_chunks(bytes(damaged)) if c.id == b"data")
    damaged[audio.offset + audio.size // 2] ^= 0x01  # a sample's low bit: the signature must notice
    (job_dir / "v01/stems/bass.wav").write_bytes(bytes(damaged))
    status = inspect_file(job_dir / "v01/stems/bass.wav").c2pa
    assert status is not None and not status.signature_holds


def test_a_user_file_the_job_points_at_is_never_rewritten(tmp_path: Path) -> None:
    job_dir = tmp_path / "job"
    job = make_job(job_dir, variants=1)
    mine = tmp_path / "my mix.wav"  # the user's, beside the job folder
    write_wav(mine, np.zeros((2, 100), np.float32), RATE)
    theirs = mine.read_bytes()
    link = job_dir / "v01" / "stems" / "keys.wav"
    link.unlink()
    os.symlink(mine, link)  # the job's stem is a link to the user's file
    job["variants"][0]["files"]["stem:vocal"] = "../my mix.wav"  # and a path that leads out of the job
    loose = job_dir / "v01" / "my notes.wav"  # a file the user put into the job folder; the job does not list it
    shutil.copy(mine, loose)
    report = stamp_job(job_dir, job, ProvenanceSettings(sign=False))
    assert mine.read_bytes() == theirs and loose.read_bytes() == theirs
    assert link.is_symlink()
    assert inspect_file(mine).record is None
    assert "v01/stems/keys.wav" not in report.stamped and "../my mix.wav" not in report.stamped
    assert any(p.startswith("v01/stems/keys.wav: not stamped") for p in report.problems)
    assert any(p.startswith("../my mix.wav: not stamped") for p in report.problems)
    assert "v01/stems/bass.wav" in report.stamped  # the job's own files are still stamped


def test_a_midi_file_stamped_as_bytes_reads_as_the_decoded_path_writes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = ProvenanceRecord(
        job="20261207-120000-pop-continue-3f2a", variant="v01", role="midi", mode="continue", kind="midi",
        model="segue-midi-small", licence="non-commercial use only", seed=7, params={"bars": 1},
        region_sha256=("ab" * 32,), segue_version="0.1.0", created="2026-12-07T12:00:00+00:00",
    )  # fmt: skip
    for path in sorted(REGIONS.glob("*.mid")):
        original = path.read_bytes()
        fast = stamp_midi_bytes(original, rec, path.name)
        with monkeypatch.context() as patch:
            patch.setattr(provenance_midi, "_inserted", lambda *args: None)
            decoded = stamp_midi_bytes(original, rec, path.name)
        new, old = parse_midi_bytes(fast, path.name), parse_midi_bytes(decoded, path.name)
        assert [list(track) for track in new.tracks] == [list(track) for track in old.tracks], path.name
        assert read_midi_provenance(fast, path.name).record == rec
        assert fast.endswith(original[original.index(b"MTrk") + 8 :])  # every event of the engine's, byte for byte
        again = stamp_midi_bytes(fast, rec, path.name)  # stamped before: decoded, Segue's old events replaced
        assert len(read_midi_provenance(again, path.name).texts) == len(read_midi_provenance(fast).texts)


def test_the_parts_reader_reads_its_parts_as_one_file_from_any_position() -> None:
    parts: list[bytes | memoryview] = [b"RIFF", b"", b"abc", memoryview(b"0123456789")[2:7], b"xyz"]
    whole = b"".join(parts)
    reader = PartsReader(parts)
    assert reader.read() == whole
    for start in range(len(whole) + 1):
        for size in (1, 2, 5, 100):
            reader.seek(start)
            assert reader.read(size) == whole[start : start + size], (start, size)
    assert reader.seek(-3, io.SEEK_END) == len(whole) - 3 and reader.read() == b"xyz"
    with pytest.raises(ValueError):
        reader.seek(-1)

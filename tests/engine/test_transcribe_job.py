"""An audio region continued as MIDI (engine/pipelines/transcribed.py through LocalEngine and the CLI): `segue continue
region.wav --as midi` writes the MIDI engine's files with the exact bar length, the transcription is kept in the
job folder and named in the manifest, `segue eval` scores the job; routing for auto/audio/both; bad input."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import mido
import numpy as np
import pytest
import soundfile as sf

from bridge import cli
from engine import entrypoints
from engine.api import Engine, GenerationParams, GenerationRequest, Prompt
from engine.errors import EngineError
from engine.local import LocalEngine
from engine.pipelines.transcribed import TRANSCRIBED_MIDI, transcription_route
from engine.render.wavfile import write_wav

pytest.importorskip("onnxruntime")
if importlib.util.find_spec("basic_pitch") is None:
    pytest.skip("basic-pitch is not installed (make venv installs it)", allow_module_level=True)

from test_transcribe import MELODY, TEMPO, notes_of, render_region  # noqa: E402

RATE = 44_100
BAR_SAMPLES = round(4 * 60 / TEMPO * RATE)  # 4/4 at 100 BPM: 2.4 s


@pytest.fixture(scope="module")
def engine() -> LocalEngine:
    return LocalEngine(device="cpu", threads=1)


@pytest.fixture(scope="module")
def melody_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_region(tmp_path_factory.mktemp("region") / "region.wav", notes_of(MELODY), 0, RATE, 2, bars=4)


def segue(engine: LocalEngine, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    def factory(spec: str, **options: Any) -> Engine:
        return engine

    code = cli.main(list(argv), engine_factory=factory)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_continues_an_audio_region_as_midi(
    engine: LocalEngine, melody_wav: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = segue(
        engine, capsys, "continue", str(melody_wav), "--tempo", "100", "--bars", "2", "--variants", "2",
        "--as", "midi", "--seed", "5", "--out", str(tmp_path / "out"), "--json",
    )  # fmt: skip
    assert code == 0, err
    job = json.loads(out)
    job_dir = tmp_path / "out" / job["id"]
    assert job["status"] == "done" and job["kind"] == "midi"
    assert job["region"]["length_bars"] == 4 and job["place_at"]["beats"] == 16.0
    notes = job["region"]["notes"]
    assert notes.startswith("transcribed from audio: ") and "monophonic" in notes and "region/transcribed.mid" in notes
    transcribed = mido.MidiFile(job_dir / TRANSCRIBED_MIDI)
    assert all(sum(m.time for m in t) == 16 * transcribed.ticks_per_beat for t in transcribed.tracks)
    assert len(job["variants"]) == 2
    for variant in job["variants"]:
        files = variant["files"]
        assert {"midi", "audio", "full_midi", "full_audio"} <= set(files)
        stems = [role for role in files if role.startswith("stem:")]
        assert stems == ["stem:melody"]
        mid = mido.MidiFile(job_dir / files["midi"])
        assert all(sum(m.time for m in t) == 2 * 4 * mid.ticks_per_beat for t in mid.tracks), "exactly 2 bars"
        for role in ("audio", "stem:melody"):
            info = sf.info(str(job_dir / files[role]))
            assert info.samplerate == RATE and info.frames == 2 * BAR_SAMPLES, role
        assert all(source.startswith("midi:") for source in job["file_sources"].values())
    scores, _, _ = entrypoints.evaluate(job_dir)  # `segue eval` scores such a job
    assert scores["kind"] == "midi" and len(scores["variants"]) == 2
    checks = {c["name"]: c for c in scores["variants"][0]["checks"]}
    assert checks["midi_length"]["ok"] and checks["audio_length"]["ok"] and checks["midi_tempo"]["ok"]


def test_an_audio_region_with_no_notes_is_bad_input_at_the_cli(
    engine: LocalEngine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wav = tmp_path / "hiss.wav"
    write_wav(wav, (0.2 * np.random.default_rng(1).standard_normal((2, 2 * BAR_SAMPLES))).astype(np.float32), RATE)
    code, _, err = segue(engine, capsys, "continue", str(wav), "--tempo", "100", "--as", "midi",
                         "--out", str(tmp_path / "out"))  # fmt: skip
    assert code == 2 and "no pitched content" in err


def test_the_transcription_is_never_overwritten(engine: LocalEngine, melody_wav: Path, tmp_path: Path) -> None:
    job_dir = tmp_path / "job"
    (job_dir / "region").mkdir(parents=True)
    (job_dir / TRANSCRIBED_MIDI).write_bytes(b"mine")
    request = GenerationRequest(Prompt(audio_path=melody_wav, tempo_bpm=TEMPO), GenerationParams(output="midi"))
    with pytest.raises(EngineError, match="never overwrites"):
        engine.generate(request, job_dir)
    assert (job_dir / TRANSCRIBED_MIDI).read_bytes() == b"mine"


def test_routing(engine: LocalEngine, melody_wav: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def route(output: str, midi: bool = False, model: str = "default") -> tuple[str | None, tuple[str, ...]]:
        prompt = Prompt(audio_path=melody_wav, midi_path=melody_wav if midi else None, tempo_bpm=TEMPO)
        return transcription_route(engine.loaded, GenerationRequest(prompt, GenerationParams(output=output), model))

    assert route("midi") == ("midi", ()) and route("both") == ("both", ())
    assert route("audio") == (None, ()) and route("midi", midi=True) == (None, ())  # a MIDI file needs no transcribing
    assert route("auto") == (None, ())  # the shipped audio model continues the audio, as before
    monkeypatch.setattr(engine.loaded, "installed_audio_default", lambda: None)
    chosen, notes = route("auto")
    assert chosen == "midi" and "no audio model is installed" in notes[0]
    assert route("auto", model="musicgen:/nowhere") == (None, ())  # an audio model named: the audio engine


def test_both_gives_audio_and_midi_in_one_job(
    engine: LocalEngine, melody_wav: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from audio_fakes import save_tiny_model_dir

    audio_model = save_tiny_model_dir(tmp_path / "models" / "tiny-audio")
    code, out, err = segue(
        engine, capsys, "continue", str(melody_wav), "--tempo", "100", "--bars", "1", "--variants", "1",
        "--as", "both", "--model", str(audio_model), "--out", str(tmp_path / "out"), "--json",
    )  # fmt: skip
    assert code == 0, err
    job = json.loads(out)
    files = job["variants"][0]["files"]
    assert {"audio", "full_audio", "midi", "full_midi", "midi_audio", "full_midi_audio", "stem:melody"} <= set(files)
    sources = job["file_sources"]
    assert sources["audio"].startswith("audio:") and sources["midi"].startswith("midi:")
    assert sources["midi_audio"].startswith("midi:")
    assert job["region"]["notes"].startswith("transcribed from audio: ")
    job_dir = tmp_path / "out" / job["id"]
    for role in ("audio", "midi_audio"):
        assert sf.info(str(job_dir / files[role])).frames == BAR_SAMPLES, role


def test_midi_output_of_a_region_given_as_audio_and_midi_uses_its_midi(
    engine: LocalEngine, melody_wav: Path, tmp_path: Path
) -> None:
    prompt = Prompt(audio_path=melody_wav, midi_path=melody_wav.with_suffix(".mid"))  # render_region wrote both
    request = GenerationRequest(prompt, GenerationParams(bars=1, variants=1, seed=2, output="midi"))
    result = engine.generate(request, tmp_path)
    assert result.kind == "midi" and not (tmp_path / TRANSCRIBED_MIDI).exists()
    assert "transcribed" not in result.region.notes and "midi" in result.variants[0].files


def test_a_remote_midi_job_gives_the_local_files(
    melody_wav: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--as midi through `segue serve`: the same variant files, byte for byte, and the same manifest (the
    transcription itself stays in the server's job folder)."""
    from server_rig import TOKEN, thread_server

    from engine.provenance.stamp import strip_provenance
    from engine.server.workers import local_engine_factory

    monkeypatch.setenv("SEGUE_THREADS", "1")
    args = ["continue", str(melody_wav), "--tempo", "100", "--bars", "1", "--variants", "2", "--as", "midi",
            "--seed", "3", "--json"]  # fmt: skip
    runs = {}
    with thread_server(tmp_path / "data", local_engine_factory, devices=("cpu",)) as server:
        for name, extra in (("local", []), ("remote", ["--engine", server.url, "--token", TOKEN])):
            assert cli.main([*args, "--out", str(tmp_path / name), *extra]) == 0
            job = json.loads(capsys.readouterr().out)
            job_dir = tmp_path / name / job["id"]
            # as the engine wrote them: the provenance stamped afterwards names each side's job
            files = [p for p in sorted(job_dir.rglob("*")) if p.is_file() and p.name != "job.json"]
            runs[name] = job, {str(p.relative_to(job_dir)): strip_provenance(p.read_bytes()) for p in files}
    (local, local_files), (remote, remote_files) = runs["local"], runs["remote"]
    assert local_files.pop(str(TRANSCRIBED_MIDI)) and remote_files == local_files
    assert {"v01/continuation.mid", "v01/continuation.wav", "v02/stems/melody.wav"} <= set(remote_files)
    for key in ("kind", "model", "variants", "file_sources", "place_at"):
        assert remote[key] == local[key], key
    assert remote["region"]["notes"] == local["region"]["notes"]


def test_auto_without_an_audio_model_transcribes_and_says_so(
    engine: LocalEngine, melody_wav: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine.loaded, "installed_audio_default", lambda: None)
    request = GenerationRequest(Prompt(audio_path=melody_wav, tempo_bpm=TEMPO), GenerationParams(bars=1, variants=1))
    result = engine.generate(request, tmp_path)
    assert result.kind == "midi" and (tmp_path / TRANSCRIBED_MIDI).is_file()
    assert result.region.notes.startswith("transcribed from audio: ")
    assert "the audio was transcribed and continued as MIDI: no audio model is installed" in result.region.notes
    info = sf.info(str(tmp_path / result.variants[0].files["audio"]))
    assert info.frames == BAR_SAMPLES and info.samplerate == RATE

"""`segue continue region.wav ...` end to end with the local engine and a tiny audio model folder made here
(the real codec class with random weights, a random prior): job folder, files, lengths, manifest, errors.

Random weights test the plumbing only; without a trained model the CLI must say that none is installed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mido
import numpy as np
import pytest
import soundfile as sf
import torch
from audio_fakes import musical_region, save_tiny_model_dir, write_region

from bridge import cli
from engine import checkpoints
from engine.api import CancelToken, Engine, GenerationParams, GenerationRequest, Prompt
from engine.errors import BadInputError, CancelledError, EngineError
from engine.local import LocalEngine
from engine.nn.model import GPT, PRESETS, GPTConfig
from engine.symbolic.tokenizer import make_tokenizer
from engine.symbolic.weights import save_symbolic

RATE = 48_000
TEMPO = 240.0  # 2/4 at 240 BPM: a bar is 0.5 s (125 frames of the tiny codec)


@pytest.fixture(scope="module")
def audio_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model_dir(tmp_path_factory.mktemp("models") / "segue-audio-small")


@pytest.fixture(scope="module")
def engine() -> LocalEngine:
    return LocalEngine(device="cpu")


@pytest.fixture
def no_installed_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if no model were installed (not even the shipped ones in engine/models)."""
    monkeypatch.setattr(checkpoints, "search_dirs", lambda: [])


def segue(engine: LocalEngine, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    def factory(spec: str, **options: Any) -> Engine:
        return engine

    code = cli.main(list(argv), engine_factory=factory)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_writes_the_audio_job_folder(
    tmp_path: Path, engine: LocalEngine, audio_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    region_audio = musical_region(2.0, RATE, 2)  # 4 bars of 2/4
    region = write_region(tmp_path / "take.wav", region_audio, RATE)
    code, out, err = segue(
        engine, capsys, "continue", str(region), "--tempo", str(TEMPO), "--meter", "2/4", "--bars", "1",
        "--variants", "2", "--seed", "7", "--model", str(audio_model), "--out", str(tmp_path / "out"), "--json",
    )  # fmt: skip
    assert code == 0, err
    job = json.loads(out)
    job_dir = tmp_path / "out" / job["id"]
    assert json.loads((job_dir / "job.json").read_text()) == job
    assert job["status"] == "done" and job["kind"] == "audio" and job["model"] == "segue-audio-small"
    assert job["region"]["sample_rate"] == RATE and job["region"]["length_bars"] == 4
    assert job["region"]["tempo_bpm"] == TEMPO and job["region"]["meter"] == "2/4"
    assert job["place_at"] == {"beats": 8.0, "seconds": 2.0, "timeline_beats": None}
    assert job["file_sources"] == {"audio": "audio:segue-audio-small", "full_audio": "audio:segue-audio-small"}
    assert [v["seed"] for v in job["variants"]] == [7, 8]
    expected = round(0.5 * RATE)
    for variant in job["variants"]:
        assert set(variant["files"]) == {"audio", "full_audio"} and variant["duration_seconds"] == 0.5
        audio, rate = sf.read(job_dir / variant["files"]["audio"], always_2d=True)
        full, _ = sf.read(job_dir / variant["files"]["full_audio"], always_2d=True)
        assert rate == RATE and audio.shape == (expected, 2), "exactly N bars, the region's rate and channels"
        assert full.shape == (region_audio.shape[1] + expected, 2)
        assert np.allclose(full[: region_audio.shape[1]], region_audio.T, atol=1e-4), "the region, untouched"
        assert np.allclose(full[region_audio.shape[1] :], audio, atol=1e-4), "then the continuation"
        assert np.abs(audio).max() > 1e-3
    assert job["timings"]["audio_frames"] > 0


def test_without_an_audio_model_the_cli_says_how_to_get_one(
    tmp_path: Path, engine: LocalEngine, no_installed_models: None, capsys: pytest.CaptureFixture[str]
) -> None:
    region = write_region(tmp_path / "take.wav", musical_region(2.0, RATE, 2), RATE)
    code, _, err = segue(engine, capsys, "continue", str(region), "--tempo", "120", "--out", str(tmp_path / "out"))
    assert code == 2
    assert "no audio model is installed" in err and "segue train audio --data AUDIO_DIR --out MODEL_DIR" in err


def test_audio_without_a_tempo_names_the_option(tmp_path: Path, engine: LocalEngine, audio_model: Path) -> None:
    region = write_region(tmp_path / "take.wav", musical_region(2.0, RATE, 2), RATE)
    request = GenerationRequest(prompt=Prompt(audio_path=region), model=str(audio_model))
    (tmp_path / "job").mkdir()
    with pytest.raises(BadInputError, match="needs its tempo: give --tempo BPM"):
        engine.generate(request, tmp_path / "job")


def test_cancel_during_sampling_and_never_overwrite(tmp_path: Path, engine: LocalEngine, audio_model: Path) -> None:
    region = write_region(tmp_path / "take.wav", musical_region(2.0, RATE, 1), RATE)
    request = GenerationRequest(
        prompt=Prompt(audio_path=region, tempo_bpm=TEMPO),
        params=GenerationParams(bars=4, variants=1, seed=1),
        model=str(audio_model),
    )
    cancel = CancelToken()
    seen: list[str] = []

    def progress(fraction: float, message: str) -> None:
        seen.append(message)
        if message == "generating audio" and fraction > 0.2:
            cancel.cancel()

    (tmp_path / "job").mkdir()
    with pytest.raises(CancelledError):
        engine.generate(request, tmp_path / "job", progress, cancel)
    assert "writing variant 1" not in seen and not (tmp_path / "job" / "v01").exists()
    (tmp_path / "job" / "v01").mkdir()
    with pytest.raises(EngineError, match="never overwrites"):
        engine.generate(request, tmp_path / "job")


def write_midi(path: Path, bars: int, tempo: float) -> Path:
    """Piano quarter notes in 2/4, ``bars`` bars."""
    mid = mido.MidiFile(type=1, ticks_per_beat=480)
    mid.tracks.append(mido.MidiTrack([
        mido.MetaMessage("time_signature", numerator=2, denominator=4),
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo)),
    ]))  # fmt: skip
    track = mido.MidiTrack([mido.MetaMessage("track_name", name="Keys"), mido.Message("program_change", program=0)])
    for i in range(2 * bars):
        track.append(mido.Message("note_on", note=60 + 2 * (i % 4), velocity=90, time=0))
        track.append(mido.Message("note_off", note=60 + 2 * (i % 4), velocity=0, time=480))
    mid.tracks.append(track)
    mid.save(str(path))
    return path


@pytest.fixture(scope="module")
def midi_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tokenizer = make_tokenizer()
    torch.manual_seed(0)
    model = GPT(GPTConfig(**{**PRESETS["tiny"].to_dict(), "vocab_size": len(tokenizer)}))
    out = tmp_path_factory.mktemp("midi") / "tiny-midi"
    save_symbolic(model, tokenizer, out)
    return out


def test_audio_and_midi_of_one_region_in_one_job(
    tmp_path: Path,
    engine: LocalEngine,
    audio_model: Path,
    midi_model: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The MIDI goes through the symbolic engine, the audio through the audio engine (the installed default,
    segue-concat since issue 15), into the same variant folders; the manifest says which files came from which."""
    monkeypatch.setenv("SEGUE_MODELS_DIR", str(audio_model.parent))
    midi = write_midi(tmp_path / "take.mid", 3, TEMPO)
    audio = write_region(tmp_path / "take.wav", musical_region(2.0, RATE, 2), RATE)  # a quiet 4th bar
    code, out, err = segue(
        engine, capsys, "continue", str(audio), str(midi), "--bars", "1", "--variants", "1", "--seed", "2",
        "--model", str(midi_model), "--out", str(tmp_path / "out"), "--json",
    )  # fmt: skip
    assert code == 0, err
    job = json.loads(out)
    folder = tmp_path / "out" / job["id"] / "v01"
    assert job["kind"] == "audio" and job["model"] == "segue-concat + tiny-midi"
    assert job["region"]["length_bars"] == 4 and "the audio lasts 1 bar(s) longer" in job["region"]["notes"]
    files = job["variants"][0]["files"]
    assert {"audio", "full_audio", "midi", "full_midi", "midi_audio", "full_midi_audio"} <= set(files)
    assert files["audio"] == "v01/continuation.wav" and files["midi_audio"] == "v01/continuation_midi.wav"
    sources = job["file_sources"]
    assert sources["audio"] == sources["full_audio"] == "audio:segue-concat"
    assert sources["midi"] == sources["midi_audio"] == "midi:tiny-midi"
    assert all(sources[role] == "midi:tiny-midi" for role in files if role.startswith("stem:"))
    assert sf.info(str(folder / "continuation.wav")).frames == RATE // 2
    assert sf.info(str(folder / "continuation_midi.wav")).frames == RATE // 2
    assert sf.info(str(folder / "continuation_midi.wav")).samplerate == RATE, "rendered at the region's rate"


def test_audio_and_midi_without_an_audio_model_continue_the_midi(
    tmp_path: Path, engine: LocalEngine, midi_model: Path, no_installed_models: None
) -> None:
    midi = write_midi(tmp_path / "take.mid", 2, TEMPO)
    audio = write_region(tmp_path / "take.wav", musical_region(1.0, RATE, 2), RATE)
    request = GenerationRequest(
        prompt=Prompt(midi_path=midi, audio_path=audio),
        params=GenerationParams(bars=1, variants=1, seed=1),
        model=str(midi_model),
    )
    (tmp_path / "job").mkdir()
    result = engine.generate(request, tmp_path / "job")
    assert result.kind == "midi" and "the audio was not continued: no audio model is installed" in result.region.notes
    assert (tmp_path / "job" / "v01" / "continuation.mid").is_file()

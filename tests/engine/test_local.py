"""The local engine end to end on a tiny checkpoint made in the test: files, lengths, tempo, meter, parts.

The tiny model has random weights: these tests check the plumbing (bar-exact files, right tempo and meter,
the region's instruments), never musical quality. The shipped model is checked in tests marked slow.
"""

from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf
import torch

from engine.api import CancelToken, GenerationParams, GenerationRequest, Meter, Prompt
from engine.errors import BadInputError, CancelledError, EngineError
from engine.local import LocalEngine
from engine.nn.model import GPT, PRESETS, GPTConfig
from engine.symbolic.tokenizer import make_tokenizer
from engine.symbolic.weights import save_symbolic

TPQ = 480


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tokenizer = make_tokenizer()
    torch.manual_seed(0)
    model = GPT(GPTConfig(**{**PRESETS["tiny"].to_dict(), "vocab_size": len(tokenizer)}))
    out = tmp_path_factory.mktemp("ckpt") / "tiny-random"
    save_symbolic(model, tokenizer, out, {"description": "random weights, for tests only"})
    return out


@pytest.fixture(scope="module")
def engine() -> LocalEngine:
    return LocalEngine(device="cpu")


def write_region(path: Path, meter: tuple[int, int], tempo_bpm: float, bars: int, drums: bool = True) -> Path:
    """Piano and bass on every beat, plus drums; ``bars`` whole bars."""
    mid = mido.MidiFile(type=1, ticks_per_beat=TPQ)
    conductor = mido.MidiTrack(
        [
            mido.MetaMessage("time_signature", numerator=meter[0], denominator=meter[1]),
            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo_bpm)),
        ]
    )
    mid.tracks.append(conductor)
    beat = TPQ * 4 // meter[1]
    beats = meter[0] * bars
    parts = [("Keys", 0, 0, [60, 64, 67, 65]), ("Bass", 1, 33, [36, 43, 41, 38])]
    if drums:
        parts.append(("Kit", 9, -1, [36, 42, 38, 42]))
    for name, channel, program, pitches in parts:
        track = mido.MidiTrack([mido.MetaMessage("track_name", name=name)])
        if program >= 0:
            track.append(mido.Message("program_change", channel=channel, program=program))
        for i in range(beats):
            pitch = pitches[i % len(pitches)]
            track.append(mido.Message("note_on", channel=channel, note=pitch, velocity=90, time=0))
            track.append(mido.Message("note_off", channel=channel, note=pitch, velocity=0, time=beat))
        mid.tracks.append(track)
    mid.save(str(path))
    return path


def generate(engine: LocalEngine, ckpt: Path, region: Path, job_dir: Path, **params: object) -> object:
    defaults: dict[str, object] = {"bars": 2, "variants": 2, "seed": 3}
    defaults.update(params)
    request = GenerationRequest(
        prompt=Prompt(midi_path=region),
        params=GenerationParams(**defaults),  # type: ignore[arg-type]
        model=str(ckpt),
    )
    job_dir.mkdir()
    return engine.generate(request, job_dir)


@pytest.mark.parametrize(
    ("meter", "tempo"),
    [((4, 4), 100.0), ((3, 4), 138.0), ((6, 8), 96.0), ((7, 8), 120.0)],
)
def test_files_are_bar_exact(
    engine: LocalEngine, tiny_checkpoint: Path, tmp_path: Path, meter: tuple[int, int], tempo: float
) -> None:
    region = write_region(tmp_path / "region.mid", meter, tempo, bars=2)
    result = generate(engine, tiny_checkpoint, region, tmp_path / "job", bars=3)
    bar_quarters = Meter(*meter).quarters_per_bar
    bar_seconds = bar_quarters * 60.0 / tempo
    assert result.region.tempo_bpm == pytest.approx(tempo, abs=0.01)  # type: ignore[attr-defined]
    assert result.region.meter == Meter(*meter)  # type: ignore[attr-defined]
    assert result.place_at_beats == pytest.approx(2 * bar_quarters)  # type: ignore[attr-defined]
    assert [v.seed for v in result.variants] == [3, 4]  # type: ignore[attr-defined]
    for variant in result.variants:  # type: ignore[attr-defined]
        folder = tmp_path / "job" / variant.id
        mid = mido.MidiFile(str(folder / "continuation.mid"))
        end = round(3 * bar_quarters * mid.ticks_per_beat)
        assert all(sum(m.time for m in track) == end for track in mid.tracks), "every track ends at N bars"
        metas = [m for m in mid.tracks[0] if m.is_meta]
        tempo_msg = next(m for m in metas if m.type == "set_tempo")
        sig = next(m for m in metas if m.type == "time_signature")
        assert mido.tempo2bpm(tempo_msg.tempo) == pytest.approx(tempo, abs=0.01)
        assert (sig.numerator, sig.denominator) == meter
        names = [t.name for t in mid.tracks[1:]]
        assert sorted(names) == ["bass", "keys", "kit"], "one track per region part, named after it"
        expected = round(3 * bar_seconds * 44_100)
        audio, rate = sf.read(folder / "continuation.wav", always_2d=True)
        assert rate == 44_100 and abs(len(audio) - expected) <= 1
        assert sf.info(str(folder / "continuation.wav")).subtype == "PCM_24"
        stems = sorted((folder / "stems").glob("*.wav"))
        assert [s.stem for s in stems] == sorted(["keys", "bass", "kit"])
        for stem in stems:
            assert abs(sf.info(str(stem)).frames - expected) <= 1
        full = sf.info(str(folder / "full.wav"))
        assert abs(full.frames - round(5 * bar_seconds * 44_100)) <= 1
        assert np.abs(audio).max() > 0.001, "the continuation is not silent"


def test_region_with_tempo_override_and_no_drums(engine: LocalEngine, tiny_checkpoint: Path, tmp_path: Path) -> None:
    region = write_region(tmp_path / "r.mid", (4, 4), 120.0, bars=1, drums=False)
    request = GenerationRequest(
        prompt=Prompt(midi_path=region, tempo_bpm=90.0),
        params=GenerationParams(bars=1, variants=1, seed=1),
        model=str(tiny_checkpoint),
    )
    (tmp_path / "job").mkdir()
    result = engine.generate(request, tmp_path / "job")
    assert result.region.tempo_bpm == 90.0
    assert result.place_at_seconds == pytest.approx(4 * 60 / 90)
    assert set(result.variants[0].parts) == {"keys", "bass"}
    full = mido.MidiFile(str(tmp_path / "job/v01/full.mid"))
    tempos = [m for m in full.tracks[0] if m.type == "set_tempo"]
    assert [round(mido.tempo2bpm(m.tempo), 3) for m in tempos] == [90.0]


def test_never_overwrites_an_existing_variant(engine: LocalEngine, tiny_checkpoint: Path, tmp_path: Path) -> None:
    region = write_region(tmp_path / "r.mid", (4, 4), 120.0, bars=1)
    job = tmp_path / "job"
    (job / "v01").mkdir(parents=True)
    (job / "v01" / "mine.txt").write_text("the producer's file")
    request = GenerationRequest(Prompt(midi_path=region), GenerationParams(bars=1, variants=1), str(tiny_checkpoint))
    with pytest.raises(EngineError, match="already exists"):
        engine.generate(request, job)
    assert (job / "v01" / "mine.txt").read_text() == "the producer's file"


def test_cancel_stops_the_job(engine: LocalEngine, tiny_checkpoint: Path, tmp_path: Path) -> None:
    region = write_region(tmp_path / "r.mid", (4, 4), 120.0, bars=1)
    token = CancelToken()
    token.cancel()
    request = GenerationRequest(Prompt(midi_path=region), GenerationParams(bars=4, variants=2), str(tiny_checkpoint))
    (tmp_path / "job").mkdir()
    with pytest.raises(CancelledError):
        engine.generate(request, tmp_path / "job", cancel=token)
    assert not (tmp_path / "job" / "v01").exists()


def test_progress_is_reported_in_order(engine: LocalEngine, tiny_checkpoint: Path, tmp_path: Path) -> None:
    region = write_region(tmp_path / "r.mid", (4, 4), 120.0, bars=1)
    seen: list[float] = []
    request = GenerationRequest(Prompt(midi_path=region), GenerationParams(bars=2, variants=2), str(tiny_checkpoint))
    (tmp_path / "job").mkdir()
    engine.generate(request, tmp_path / "job", progress=lambda f, m: seen.append(f))
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)


def test_unsupported_modes_and_inputs_are_bad_input(engine: LocalEngine, tiny_checkpoint: Path, tmp_path: Path) -> None:
    region = write_region(tmp_path / "r.mid", (4, 4), 120.0, bars=1)
    (tmp_path / "job").mkdir()
    accompany = GenerationRequest(Prompt(midi_path=region), GenerationParams(mode="accompany"), str(tiny_checkpoint))
    with pytest.raises(BadInputError, match="accompany"):
        engine.generate(accompany, tmp_path / "job")
    wav = tmp_path / "r.wav"
    sf.write(wav, 0.1 * np.ones((44_100, 1)), 44_100)
    audio_only = GenerationRequest(Prompt(audio_path=wav, tempo_bpm=120.0), GenerationParams(), str(tiny_checkpoint))
    with pytest.raises(BadInputError, match="an audio region needs an audio model"):
        engine.generate(audio_only, tmp_path / "job")
    with pytest.raises(BadInputError, match="no model named"):
        engine.generate(GenerationRequest(Prompt(midi_path=region), GenerationParams(), "nope"), tmp_path / "job")


@pytest.mark.parametrize("maker", ["drums_only", "forty_tracks", "three_hours", "type0", "tempo_changes"])
def test_awkward_regions_still_give_bar_exact_files(
    engine: LocalEngine, tiny_checkpoint: Path, tmp_path: Path, maker: str
) -> None:
    import midi_fixtures as fx

    region_path = getattr(fx, maker)(tmp_path)
    result = generate(engine, tiny_checkpoint, region_path, tmp_path / "job", bars=1, variants=1)
    parts = result.region.parts  # type: ignore[attr-defined]
    folder = tmp_path / "job" / "v01"
    mid = mido.MidiFile(str(folder / "continuation.mid"))
    assert len(mid.tracks) == 1 + len(parts), "one track per region part"
    if maker == "drums_only":
        assert parts == ("drums",)
        assert all(m.channel == 9 for t in mid.tracks for m in t if m.type == "note_on")
    seconds = result.variants[0].duration_seconds  # type: ignore[attr-defined]
    assert seconds == pytest.approx(result.region.meter.quarters_per_bar * 60 / result.region.tempo_bpm)  # type: ignore[attr-defined]
    assert abs(sf.info(str(folder / "continuation.wav")).frames - round(seconds * 44_100)) <= 1

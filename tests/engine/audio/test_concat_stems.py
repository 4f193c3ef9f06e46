"""Stems: several tracks of one region continued together by segue-concat (one structure), each returned as a stem
beside the mix; and the bad input (different lengths, different rates, a stem with another channel count).

Material: hydrogen-drumkits' recorded hits (ColomboAcousticDrumkit, GPL-2+) sequenced here into a groove, one
track per instrument (kick, snare, hats); numpy drums when hydrogen-drumkits is not installed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from concat_material import synthetic_groove

from engine.api import GenerationParams, GenerationRequest, Meter, Prompt
from engine.errors import BadInputError
from engine.local import LocalEngine
from engine.render.wavfile import write_wav

RATE, TEMPO = 44_100, 110.0


@pytest.fixture(scope="module")
def engine() -> LocalEngine:
    return LocalEngine(device="cpu")


def tracks(channels: tuple[int, ...] = (2, 2, 1)) -> dict[str, np.ndarray]:
    """Three tracks of one 4-bar groove: the same numpy drums split by what plays (kick / snare / hats), each at
    its own level, the last one mono."""
    full = synthetic_groove(TEMPO, 4, RATE, 2, seed=9)
    eighth = round(30.0 / TEMPO * RATE)
    out: dict[str, np.ndarray] = {}
    for name, keep, n in zip(("kick", "snare", "hats"), ((0, 4), (2, 6), (1, 3, 5, 7)), channels, strict=True):
        mask = np.zeros(full.shape[1], np.float32)
        for e in range(full.shape[1] // eighth):
            if e % 8 in keep:
                mask[e * eighth : (e + 1) * eighth] = 1.0
        part = 0.6 * full * mask
        out[name] = part.mean(axis=0, keepdims=True) if n == 1 else part
    return out


def stem_prompt(tmp_path: Path, parts: dict[str, np.ndarray], rates: dict[str, int] | None = None) -> Prompt:
    tmp_path = Path(tempfile.mkdtemp(dir=tmp_path))
    stems = tuple(
        (name, write_wav(tmp_path / f"{name}.wav", audio, (rates or {}).get(name, RATE)))
        for name, audio in parts.items()
    )
    return Prompt(tempo_bpm=TEMPO, meter=Meter(4, 4), stems=stems)


def test_stems_are_continued_together_and_add_up_to_the_mix(engine: LocalEngine, tmp_path: Path) -> None:
    parts = tracks()
    request = GenerationRequest(
        prompt=stem_prompt(tmp_path, parts), params=GenerationParams(bars=4, variants=2, seed=3)
    )
    (tmp_path / "job").mkdir()
    result = engine.generate(request, tmp_path / "job")
    assert result.model == "segue-concat" and result.region.parts == ("kick", "snare", "hats")
    assert "the mix is the sum of the 3 stems" in result.region.notes
    expected = round(4 * 4 * 60.0 / TEMPO * RATE)  # 4 bars of 4/4, exactly
    for variant in result.variants:
        assert {f"stem:{n}" for n in parts} <= set(variant.files) and variant.parts == ("kick", "snare", "hats")
        mix, _ = sf.read(str(tmp_path / "job" / variant.files["audio"]), always_2d=True, dtype="float32")
        total = np.zeros_like(mix)
        for name, source in parts.items():
            stem, rate = sf.read(str(tmp_path / "job" / variant.files[f"stem:{name}"]), always_2d=True, dtype="float32")
            assert rate == RATE and stem.shape == (expected, source.shape[0]), name
            total += stem if stem.shape[1] == mix.shape[1] else np.repeat(stem, mix.shape[1], axis=1)
        assert np.abs(total - mix).max() < 0.02, "one structure: the stems add up to the mix"
        assert result.file_sources[f"stem:{next(iter(parts))}"] == "audio:segue-concat"


def test_stems_of_different_lengths_or_rates_are_refused(engine: LocalEngine, tmp_path: Path) -> None:
    parts = tracks()
    parts["hats"] = parts["hats"][:, : parts["hats"].shape[1] // 2]
    (tmp_path / "a").mkdir()
    with pytest.raises(BadInputError, match="the stems are of different lengths .*hats 4.36"):
        engine.generate(GenerationRequest(prompt=stem_prompt(tmp_path, parts)), tmp_path / "a")
    (tmp_path / "b").mkdir()
    with pytest.raises(BadInputError, match="share one sample rate: kick 44100 Hz, snare 48000 Hz"):
        engine.generate(GenerationRequest(prompt=stem_prompt(tmp_path, tracks(), {"snare": 48_000})), tmp_path / "b")


def test_stems_need_the_concatenative_engine_and_valid_names(engine: LocalEngine, tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="a stem name is given twice"):
        Prompt(tempo_bpm=TEMPO, stems=(("kick", tmp_path / "a.wav"), ("kick", tmp_path / "b.wav")))
    (tmp_path / "c").mkdir()
    request = GenerationRequest(prompt=stem_prompt(tmp_path, tracks()), model="segue-audio-small")
    with pytest.raises(BadInputError, match="stems are continued by segue-concat"):
        engine.generate(request, tmp_path / "c")

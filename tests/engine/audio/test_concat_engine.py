"""segue-concat, the default audio engine: routing, determinism by seed, variety, exact length at odd rates and
meters, the controls, the plan in units.json, and bad input (too short, silence, noise, a wrong tempo).

Material: numpy drums (tests/support/concat_material.py: synthetic_groove), made here; the measures on real
recordings are in test_concat_measures.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from concat_material import synthetic_groove

from engine.api import GenerationParams, GenerationRequest, Meter, Prompt
from engine.audio.concat.units import slice_grid
from engine.checkpoints import DEFAULT_MODELS, find_checkpoint, model_info
from engine.errors import BadInputError
from engine.evaluate.audio import join_click
from engine.local import LocalEngine
from engine.render.wavfile import write_wav


@pytest.fixture(scope="module")
def engine() -> LocalEngine:
    return LocalEngine(device="cpu")


def region_file(tmp_path: Path, audio: np.ndarray, rate: int, name: str = "region.wav") -> Path:
    return write_wav(tmp_path / name, audio, rate)


FOUR_FOUR = Meter(4, 4)


def generate(engine: LocalEngine, tmp_path: Path, region: Path, tempo: float, meter: Meter = FOUR_FOUR,
             job: str = "job", **params: object) -> tuple[object, Path]:  # fmt: skip
    request = GenerationRequest(
        prompt=Prompt(audio_path=region, tempo_bpm=tempo, meter=meter),
        params=GenerationParams(**{"bars": 4, "variants": 2, "seed": 5, **params}),  # type: ignore[arg-type]
    )
    job_dir = tmp_path / job
    job_dir.mkdir()
    return engine.generate(request, job_dir), job_dir


def read(job_dir: Path, variant: object, role: str = "audio") -> tuple[np.ndarray, int]:
    data, rate = sf.read(str(job_dir / variant.files[role]), always_2d=True, dtype="float32")  # type: ignore[attr-defined]
    return data.T, int(rate)


def test_segue_concat_is_the_default_audio_model_and_is_listed_with_what_it_does() -> None:
    assert DEFAULT_MODELS["audio"] == "segue-concat"
    info = model_info(find_checkpoint("default", kind="audio"))
    assert info.name == "segue-concat" and info.kind == "audio"
    assert "own sound" in info.description and "never plays a sound the region does not contain" in info.description


@pytest.mark.parametrize(
    ("rate", "channels", "tempo", "meter"),
    [(22_050, 1, 97.5, Meter(4, 4)), (96_000, 2, 133.0, Meter(4, 4)), (44_100, 2, 84.0, Meter(6, 8)),
     (48_000, 1, 150.0, Meter(7, 8))],
)  # fmt: skip
def test_exactly_n_bars_at_the_regions_rate_and_channels(
    engine: LocalEngine, tmp_path: Path, rate: int, channels: int, tempo: float, meter: Meter
) -> None:
    bars_in_region = 4
    audio = synthetic_groove(tempo, bars_in_region, rate, channels, meter.quarters_per_bar)
    result, job_dir = generate(engine, tmp_path, region_file(tmp_path, audio, rate), tempo, meter, bars=3)
    assert result.kind == "audio" and result.model == "segue-concat"  # type: ignore[attr-defined]
    expected = round(3 * meter.quarters_per_bar * 60.0 / tempo * rate)
    for variant in result.variants:  # type: ignore[attr-defined]
        cont, file_rate = read(job_dir, variant)
        assert file_rate == rate and cont.shape == (channels, expected)
        full, _ = read(job_dir, variant, "full_audio")
        assert np.allclose(full[:, : audio.shape[1]], audio, atol=2e-4), "full.wav: the region, untouched"
        seam = join_click(full, audio.shape[1], rate)
        assert seam is not None and not seam.click, seam
        units = json.loads((job_dir / variant.id / "units.json").read_text())
        assert units["engine"] == "segue-concat" and len(units["bars"]) == 3
        assert units["slices_per_bar"] == slice_grid(meter).slices_per_bar
        for join in units["joins"]:  # no click at any join (the join measure at each)
            at = join["at"]
            found = join_click(cont[:, max(0, at - rate // 2) : at + rate // 2], min(at, rate // 2), rate)
            assert found is None or not found.click, (join, found)


def test_variants_are_deterministic_given_the_seed_and_differ(engine: LocalEngine, tmp_path: Path) -> None:
    """The same seed gives the same variants; the first depends on its seed alone (a later variant that comes out
    like an earlier one is planned again, so it depends on the earlier ones too: documented)."""
    rate, tempo = 44_100, 120.0
    region = region_file(tmp_path, synthetic_groove(tempo, 4, rate, seed=3), rate)
    first, dir_a = generate(engine, tmp_path, region, tempo, job="a", variants=3, bars=8, seed=40)
    again, dir_b = generate(engine, tmp_path, region, tempo, job="b", variants=3, bars=8, seed=40)
    alone, dir_c = generate(engine, tmp_path, region, tempo, job="c", variants=1, bars=8, seed=40)
    a = [read(dir_a, v)[0] for v in first.variants]  # type: ignore[attr-defined]
    b = [read(dir_b, v)[0] for v in again.variants]  # type: ignore[attr-defined]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True)), "same seed, same variants"
    assert np.array_equal(a[0], read(dir_c, alone.variants[0])[0])  # type: ignore[attr-defined]
    for i in range(3):
        for j in range(i + 1, 3):
            corr = float(np.corrcoef(a[i].ravel(), a[j].ravel())[0, 1])
            assert corr < 0.98, f"variants {i + 1} and {j + 1} are the same (correlation {corr:.3f})"


def test_the_controls_are_recorded_and_keep_opening_opens_with_the_first_bar(
    engine: LocalEngine, tmp_path: Path
) -> None:
    rate, tempo = 44_100, 110.0
    region = region_file(tmp_path, synthetic_groove(tempo, 4, rate, seed=4), rate)
    result, job_dir = generate(engine, tmp_path, region, tempo, job="k", variants=1, bars=4, keep_opening=True,
                               similarity=0.9)  # fmt: skip
    assert "similarity 0.9, keep_opening true" in result.region.notes  # type: ignore[attr-defined]
    units = json.loads((job_dir / "v01" / "units.json").read_text())
    assert units["similarity"] == 0.9 and units["keep_opening"] is True
    assert units["bars"][0]["role"] == "opening" and units["bars"][0]["slices"] == [[0, p] for p in range(8)]
    default, job_dir = generate(engine, tmp_path, region, tempo, job="d", variants=1, bars=2)
    assert "(default)" in default.region.notes  # type: ignore[attr-defined]


def test_a_region_shorter_than_one_bar_is_refused(engine: LocalEngine, tmp_path: Path) -> None:
    rate, tempo = 44_100, 120.0
    audio = synthetic_groove(tempo, 1, rate)[:, :rate]  # half a bar
    with pytest.raises(BadInputError, match="less than one bar .* needs at least one whole bar"):
        generate(engine, tmp_path, region_file(tmp_path, audio, rate), tempo)


def test_silence_is_refused(engine: LocalEngine, tmp_path: Path) -> None:
    rate = 44_100
    with pytest.raises(BadInputError, match="silent"):
        generate(engine, tmp_path, region_file(tmp_path, np.zeros((2, 4 * rate), np.float32), rate), 120.0)


def test_noise_is_continued_with_noise_and_a_note(engine: LocalEngine, tmp_path: Path) -> None:
    """Documented handling: steady noise has no onsets; slices are cut on the grid alone and the notes say so."""
    rate = 44_100
    noise = (0.1 * np.random.default_rng(2).standard_normal((2, 8 * rate))).astype(np.float32)
    result, job_dir = generate(engine, tmp_path, region_file(tmp_path, noise, rate), 120.0)
    assert "clear onsets in the region: its slices are cut on the grid alone" in result.region.notes  # type: ignore[attr-defined]
    cont, _ = read(job_dir, result.variants[0])  # type: ignore[attr-defined]
    assert cont.shape == (2, 8 * rate) and 0.05 < float(np.std(cont)) < 0.2


def test_a_tempo_the_onsets_disagree_with_says_by_how_much(engine: LocalEngine, tmp_path: Path) -> None:
    rate = 44_100
    region = region_file(tmp_path, synthetic_groove(120.0, 4, rate, seed=6), rate)
    with pytest.raises(BadInputError) as caught:
        generate(engine, tmp_path, region, 111.0)  # 7.5 % slow
    message = str(caught.value)
    assert "the onsets disagree with the grid at 111 BPM" in message and "ms per bar" in message
    found = re.search(r"fit (\d+\.\d) BPM", message)
    assert found is not None and 114.0 <= float(found.group(1)) <= 126.0, message  # near the real 120


def test_a_region_that_does_not_start_on_a_bar_line_says_where_the_grid_was_taken_from(
    engine: LocalEngine, tmp_path: Path
) -> None:
    rate = 44_100
    groove = synthetic_groove(120.0, 5, rate, seed=7)
    late = groove[:, round(0.45 * rate) : round(0.45 * rate) + 8 * rate]  # cut 50 ms before a 1/16 line, mid-bar
    with pytest.raises(BadInputError) as caught:
        generate(engine, tmp_path, region_file(tmp_path, late, rate), 120.0)
    message = str(caught.value)
    assert "off its 1/16 grid at 120 BPM" in message and "counted back from the region's end" in message, message
    found = re.search(r"sit ([+-]\d+) ms", message)
    assert found is not None and abs(int(found.group(1)) - 50) <= 12, message  # its hits come 50 ms after its grid

"""Bar lock, join and loudness of audio continuations (a smooth stand-in codec and a tiny random prior)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from audio_fakes import SmoothCodec, musical_region, tiny_model, write_region

from engine.api import Meter
from engine.audio.audio_io import probe_audio
from engine.audio.continuation import (
    BarGrid,
    RegionAudio,
    continue_audio,
    limit_peaks,
    locate_region,
    loudness_db,
    match_loudness,
    read_region_tail,
)
from engine.audio.prior import AudioModel
from engine.audio.sampling import Draws

FAST = SmoothCodec(sample_rate=8000, hop=400)  # 20 frames per second: quick tests


@pytest.fixture(scope="module")
def model() -> AudioModel:
    return tiny_model(FAST, block_size=64)


def region_from(tmp_path: Path, seconds: float, rate: int, channels: int, grid: BarGrid) -> RegionAudio:
    path = write_region(tmp_path / "region.wav", musical_region(seconds, rate, channels), rate)
    info = probe_audio(path)
    bars, seam, _ = locate_region(info, grid)
    return read_region_tail(info, grid, bars, seam, seam)


def rms_db(audio: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))))


@pytest.mark.parametrize(
    ("rate", "tempo", "meter", "channels"),
    [
        (44_100, 120.0, (4, 4), 2),
        (48_000, 97.5, (7, 8), 2),
        (8_000, 97.5, (4, 4), 1),
        (96_000, 133.0, (7, 8), 6),
    ],
)
def test_exactly_n_bars_at_the_regions_rate_and_channels(
    tmp_path: Path, model: AudioModel, rate: int, tempo: float, meter: tuple[int, int], channels: int
) -> None:
    grid = BarGrid(tempo, Meter(*meter))
    region = region_from(tmp_path, 2 * grid.bar_seconds, rate, channels, grid)
    assert region.bars == 2 and region.seam_sample == round(2 * grid.bar_seconds * rate)
    result = continue_audio(model, region, 2, Draws(seeds=[1, 2]))
    expected = round(2 * grid.bar_seconds * rate)  # 97.5 BPM in 7/8 at 48 kHz: 206,769 samples
    assert [v.shape for v in result.variants] == [(channels, expected)] * 2
    assert not np.array_equal(result.variants[0], result.variants[1])
    assert all(np.isfinite(v).all() and np.abs(v).max() <= 1.0 for v in result.variants)


def test_the_join_has_no_click(tmp_path: Path) -> None:
    """At the seam of region + continuation the sample step is no larger than the region's own typical steps,
    in every channel, for every variant, and the continuation is as loud as the region (within 3 dB)."""
    model = tiny_model(SmoothCodec(sample_rate=8000, hop=80), block_size=64)  # audible frequencies for BS.1770
    grid = BarGrid(120.0, Meter(4, 4))
    region = region_from(tmp_path, 4.0, 44_100, 2, grid)
    result = continue_audio(model, region, 1, Draws(seeds=[1, 2, 3]))
    steps = np.abs(np.diff(region.audio, axis=1))
    typical = np.percentile(steps, 99, axis=1)
    for variant in result.variants:
        seam_step = np.abs(variant[:, 0] - region.audio[:, -1])
        assert (seam_step <= typical).all(), (seam_step, typical)
        ours, theirs = loudness_db(variant, 44_100), loudness_db(region.audio[:, -88_200:], 44_100)
        assert abs(ours - theirs) < 3.0, (ours, theirs)


def test_loudness_follows_each_channel() -> None:
    rate = 8000
    reference = musical_region(1.0, rate, 2)
    reference[1] *= 0.25  # the right channel 12 dB down
    mono = musical_region(1.0, rate, 1, level=0.02, seed=3)[0]
    gains, note = match_loudness(mono, reference, rate)
    balance = rms_db(reference[0]) - rms_db(reference[1])
    assert abs(20 * np.log10(gains[0] / gains[1]) - balance) < 0.5, "the region's balance between channels"
    ours = loudness_db(gains[:, None] * mono[None, :], rate)
    assert abs(ours - loudness_db(reference, rate)) < 0.1 and note == ""
    clicks = np.zeros(rate, np.float32)
    clicks[::400] = 0.1  # all peak, little loudness: matching it would clip
    hot, note = match_loudness(clicks, reference * 3, rate)
    assert float(np.max(hot)) * 0.1 == pytest.approx(0.98) and "to avoid clipping" in note
    _, note = match_loudness(np.zeros(rate, np.float32), reference, rate)
    assert note == "silent"


def test_a_region_longer_than_the_context_is_primed_on_its_last_bars(tmp_path: Path, model: AudioModel) -> None:
    grid = BarGrid(120.0, Meter(4, 4))
    region = region_from(tmp_path, 10.0, 22_050, 1, grid)  # 5 bars; the context holds 32 frames = 1.6 s
    result = continue_audio(model, region, 1, Draws(seeds=[4]))
    assert result.prompt.bars == 0 and "longer than the audio model's context" in result.notes[0]
    model_long = tiny_model(FAST, block_size=200)  # 100 frames of prompt = 5 s: two whole bars
    result = continue_audio(model_long, region, 1, Draws(seeds=[4]))
    assert result.prompt.bars == 2 and result.prompt.frames == 80
    assert "primed on its last 2 bars (4.0 s)" in result.notes[0]


@pytest.mark.parametrize("rate", [8_000, 44_100, 48_000, 96_000])
def test_bs1770_reference_tone(rate: int) -> None:
    """BS.1770: a full-scale 1 kHz sine in one channel reads -3.01 LUFS; 20 dB down, -23.01; silence gates out."""
    t = np.arange(3 * rate) / rate
    tone = 0.1 * np.sin(2 * np.pi * 1000 * t)
    tolerance = 0.2 if rate < 16_000 else 0.06  # the shelf's design is warped near a low Nyquist frequency
    assert loudness_db(tone[None], rate) == pytest.approx(-23.01, abs=tolerance)
    assert loudness_db(np.stack([tone, np.zeros_like(tone)]), rate) == pytest.approx(-23.01, abs=tolerance)
    quiet_start = np.concatenate([np.zeros(2 * rate), tone])[None]
    assert loudness_db(quiet_start, rate) == pytest.approx(-23.01, abs=0.5), "the gates drop the silence"
    assert loudness_db(np.zeros((2, rate)), rate) == -120.0


def test_the_limiter_turns_down_peaks_only() -> None:
    """A continuation whose peaks stand far above its loudness (a crest the region does not have) keeps the
    region's loudness: only the peaks are limited, under the ceiling, with one gain for both channels."""
    rate = 48_000
    rng = np.random.default_rng(0)
    body = 0.03 * rng.standard_normal(rate * 2)
    body[::12000] = 0.9  # a spike every 0.25 s
    audio = np.stack([body, 0.5 * body]) * 3.0
    limited, reduction = limit_peaks(audio, rate)
    assert float(np.abs(limited).max()) <= 0.98 + 1e-9 and 8.0 < reduction < 10.0
    assert np.allclose(limited[1], 0.5 * limited[0]), "the channels' balance is kept"
    quiet = np.abs(audio[0]) < 0.5
    assert float(np.median(limited[0][quiet] / audio[0][quiet])) > 0.9, "most of the signal is untouched"
    assert abs(loudness_db(limited.astype(np.float32), rate) - loudness_db(audio.astype(np.float32), rate)) < 1.5
    same, none = limit_peaks(audio * 0.2, rate)
    assert none == 0.0 and np.array_equal(same, audio * 0.2), "nothing to do under the ceiling"

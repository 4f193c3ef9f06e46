"""Reading any region file: formats, rates, channels, sample types; every bad input gets a clear error."""

from __future__ import annotations

import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from audio_fakes import musical_region, write_region

from engine.api import Meter
from engine.audio.audio_io import check_audio, probe_audio, read_audio, resample, to_mono
from engine.audio.continuation import BarGrid, locate_region, read_region_tail
from engine.errors import BadInputError

GRID = BarGrid(120.0, Meter(4, 4))


@pytest.mark.parametrize(
    ("fmt", "subtype", "rate", "channels"),
    [
        ("WAV", "PCM_16", 44_100, 2),
        ("WAV", "PCM_24", 48_000, 1),
        ("WAV", "PCM_32", 96_000, 2),
        ("WAV", "FLOAT", 22_050, 2),
        ("WAV", "PCM_16", 8_000, 1),
        ("WAV", "PCM_24", 48_000, 6),
        ("FLAC", "PCM_24", 44_100, 2),
        ("AIFF", "PCM_16", 44_100, 2),
    ],
)
def test_reads_formats_rates_channels(tmp_path: Path, fmt: str, subtype: str, rate: int, channels: int) -> None:
    audio = musical_region(0.5, rate, channels)
    path = tmp_path / f"r.{fmt.lower()}"
    sf.write(str(path), audio.T, rate, subtype=subtype, format=fmt)
    info = probe_audio(path)
    assert (info.sample_rate, info.channels, info.frames) == (rate, channels, audio.shape[1])
    got = read_audio(path, 100, 300, info)
    assert got.shape == (channels, 200) and got.dtype == np.float32
    assert np.allclose(got, audio[:, 100:300], atol=1e-3)
    assert to_mono(got).shape == (200,)
    assert abs(resample(got, rate, 24_000).shape[1] - round(200 * 24_000 / rate)) <= 1


def test_nan_and_inf_are_errors(tmp_path: Path) -> None:
    audio = musical_region(0.5, 8000, 1)
    audio[0, 1234] = np.nan
    path = write_region(tmp_path / "nan.wav", audio, 8000, "FLOAT")
    with pytest.raises(BadInputError, match=r"NaN or infinite .* 0\.154 s"):
        check_audio(read_audio(path), path, 8000)
    audio[0, 1234] = np.inf
    path = write_region(tmp_path / "inf.wav", audio, 8000, "FLOAT")
    with pytest.raises(BadInputError, match="NaN or infinite"):
        check_audio(read_audio(path), path, 8000)


def test_silence_is_an_error_and_clipping_a_note(tmp_path: Path) -> None:
    silent = write_region(tmp_path / "silent.wav", np.zeros((2, 8000), np.float32), 8000)
    with pytest.raises(BadInputError, match=r"silent \(peak -inf dBFS\).*nothing to continue"):
        check_audio(read_audio(silent), silent, 8000)
    loud = np.clip(musical_region(1.0, 8000, 2) * 10, -1, 1)
    clipped = write_region(tmp_path / "clip.wav", loud, 8000, "PCM_16")
    check = check_audio(read_audio(clipped), clipped, 8000)
    assert check.clipped_samples > 100 and "the region clips" in check.notes[0]
    assert check_audio(musical_region(1.0, 8000, 2), clipped, 8000).notes == ()


def test_one_sample_and_empty_files(tmp_path: Path) -> None:
    one = write_region(tmp_path / "one.wav", np.full((1, 1), 0.5, np.float32), 44_100)
    with pytest.raises(BadInputError, match=r"only 1 sample\(s\) long .* at least one beat"):
        locate_region(probe_audio(one), GRID)
    empty = write_region(tmp_path / "empty.wav", np.zeros((1, 0), np.float32), 44_100)
    with pytest.raises(BadInputError, match="holds no audio"):
        probe_audio(empty)


def test_corrupt_and_truncated_files(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(range(256)) * 4)
    with pytest.raises(BadInputError, match="damaged, truncated or not audio"):
        probe_audio(garbage)
    good = write_region(tmp_path / "good.wav", musical_region(1.0, 8000, 2), 8000)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(BadInputError, match=r"truncated: its header promises 1\.000 s of audio but it holds 0\.[45]"):
        probe_audio(cut)
    sf.write(str(tmp_path / "good.flac"), musical_region(2.0, 8000, 1).T, 8000)
    flac = tmp_path / "cut.flac"
    flac.write_bytes((tmp_path / "good.flac").read_bytes()[:2000])
    with pytest.raises(BadInputError, match="damaged or truncated|truncated"):
        info = probe_audio(flac)
        read_audio(flac, 0, None, info)


def _sparse_wav(path: Path, seconds: float, rate: int, channels: int, tail: np.ndarray) -> None:
    """A 16-bit WAV of ``seconds`` whose body is a hole in the file (no disk, no time) and whose end is ``tail``."""
    frames = round(seconds * rate)
    data_bytes = frames * channels * 2
    header = b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * channels * 2, channels * 2, 16)
    header += b"data" + struct.pack("<I", data_bytes)
    with path.open("wb") as f:
        f.write(header)
        f.truncate(len(header) + data_bytes)
        f.seek(len(header) + data_bytes - tail.size * 2)
        f.write((np.clip(tail.T, -1, 1) * 32767).astype("<i2").tobytes())


def test_two_hour_file_reads_only_its_last_bars(tmp_path: Path) -> None:
    path = tmp_path / "two-hours.wav"
    rate, tail = 44_100, musical_region(8.0, 44_100, 2)
    _sparse_wav(path, 7200.0, rate, 2, tail)
    info = probe_audio(path)
    assert info.seconds == pytest.approx(7200.0)
    bars, seam, notes = locate_region(info, GRID)
    assert bars == 3600 and seam == info.frames and notes == ()
    tracemalloc.start()
    region = read_region_tail(info, GRID, bars, seam, 4 * rate)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # two hours of 16-bit stereo are 1.27 GB: a peak of 20 MB proves only the tail was read (no timing: the
    # machine's load would decide a time limit, not the code)
    assert peak < 20e6, "two hours are never read into memory"
    assert region.audio.shape == (2, 4 * rate)
    assert np.allclose(region.audio, tail[:, -4 * rate :], atol=1e-4)
    assert "only its last 4.0 s were read" in region.notes[-1]


def test_region_rounds_up_to_the_next_bar_line(tmp_path: Path) -> None:
    rate = 48_000
    exact = write_region(tmp_path / "exact.wav", musical_region(4.0 + 0.01, rate, 2), rate)
    assert locate_region(probe_audio(exact), GRID)[:2] == (2, 4 * rate), "a hair past a bar line is that bar line"
    tail = write_region(tmp_path / "tail.wav", musical_region(5.0, rate, 2), rate)
    bars, seam, notes = locate_region(probe_audio(tail), GRID)
    assert (bars, seam) == (3, 6 * rate) and "ends 2.00 beats before a bar line" in notes[0]
    region = read_region_tail(probe_audio(tail), GRID, bars, seam, seam)
    assert region.audio.shape == (2, seam) and not region.audio[:, 5 * rate :].any(), "silence up to the bar line"
    assert locate_region(probe_audio(tail), GRID, length_beats=8.0)[:2] == (2, 4 * rate), "the DAW's length wins"


def test_a_region_off_the_bar_grid_ends_on_the_daws_bar_line(tmp_path: Path) -> None:
    """A region starting on beat 3 of a 4/4 bar (start 10 beats), 6 beats long: it ends on the bar line at beat 16,
    6 beats after its start, and holds parts of 2 bars."""
    rate = 8000
    path = write_region(tmp_path / "off.wav", musical_region(3.0, rate, 1), rate)  # 6 beats at 120 BPM
    bars, seam, notes = locate_region(probe_audio(path), GRID, start_beats=10.0)
    assert (bars, seam) == (2, 3 * rate) and "starts 2.00 beats into a bar" in notes[0]
    bars, seam, notes = locate_region(probe_audio(path), GRID, start_beats=12.0)
    assert (bars, seam) == (2, 4 * rate) and "ends 2.00 beats before a bar line" in notes[0]

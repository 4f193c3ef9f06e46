"""The WAV writer: 24-bit on disk, atomic, never overwrites unless asked, refuses NaN/inf."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.errors import BadInputError, EngineError
from engine.render.wavfile import read_sample_rate, write_wav


def tone(sample_rate: int = 48000, seconds: float = 0.1) -> np.ndarray:
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    return np.stack([left, -left]).astype(np.float32)


def test_writes_24_bit(tmp_path: Path) -> None:
    audio = tone()
    path = write_wav(tmp_path / "stems" / "piano.wav", audio, 48000)
    info = sf.info(str(path))
    assert info.subtype == "PCM_24"
    assert info.format == "WAV"
    assert info.channels == 2
    assert info.frames == audio.shape[1]
    assert read_sample_rate(path) == 48000
    data, _ = sf.read(str(path), dtype="float32", always_2d=True)
    np.testing.assert_allclose(data.T, audio, atol=2e-7)
    assert [p.name for p in path.parent.iterdir()] == ["piano.wav"]  # no temp file left


def test_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "mix.wav"
    path.write_bytes(b"user's own file")
    with pytest.raises(EngineError, match="already exists"):
        write_wav(path, tone(), 48000)
    assert path.read_bytes() == b"user's own file"
    assert [p.name for p in tmp_path.iterdir()] == ["mix.wav"]
    write_wav(path, tone(), 44100, overwrite=True)
    assert read_sample_rate(path) == 44100


def test_rejects_bad_audio(tmp_path: Path) -> None:
    bad = tone()
    bad[0, 10] = np.nan
    with pytest.raises(EngineError, match="NaN"):
        write_wav(tmp_path / "a.wav", bad, 48000)
    bad[0, 10] = np.inf
    with pytest.raises(EngineError):
        write_wav(tmp_path / "a.wav", bad, 48000)
    with pytest.raises(BadInputError, match=r"\[samples, channels\]"):
        write_wav(tmp_path / "a.wav", tone().T, 48000)
    with pytest.raises(BadInputError):
        write_wav(tmp_path / "a.wav", tone()[0], 48000)
    with pytest.raises(BadInputError):
        write_wav(tmp_path / "a.wav", tone(), 0)
    assert list(tmp_path.iterdir()) == []


def test_clips_beyond_full_scale(tmp_path: Path) -> None:
    loud = tone() * 4
    path = write_wav(tmp_path / "loud.wav", loud, 48000)
    data, _ = sf.read(str(path), dtype="float32")
    assert float(np.max(np.abs(data))) <= 1.0


def test_read_sample_rate_errors(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="no such"):
        read_sample_rate(tmp_path / "missing.wav")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all")
    with pytest.raises(BadInputError, match="not a readable audio file"):
        read_sample_rate(junk)


@pytest.mark.parametrize("channels", [1, 2, 3])
@pytest.mark.parametrize("samples", [0, 1, 4_801])
def test_the_file_is_byte_for_byte_what_libsndfile_writes(tmp_path: Path, channels: int, samples: int) -> None:
    """Segue encodes 24-bit WAVs with numpy (about twice as fast); the bytes must be libsndfile's own, rounding,
    clipping at full scale, odd-size padding and header included."""
    import io

    rng = np.random.default_rng(channels * 10_000 + samples)
    audio = np.clip(rng.standard_normal((channels, samples)) * 0.4, -1.0, 1.0).astype(np.float32)
    if samples > 8:
        audio[0, :8] = [1.0, -1.0, 0.99999994, -0.99999994, 0.5 / 2**23, -0.5 / 2**23, 1.5 / 2**23, 0.0]
    buffer = io.BytesIO()
    sf.write(buffer, audio.T, 44_100, subtype="PCM_24", format="WAV")
    path = write_wav(tmp_path / "x.wav", audio, 44_100)
    assert path.read_bytes() == buffer.getvalue()

"""Write 24-bit PCM WAV files atomically, never over an existing file unless asked; read a file's sample rate.

The WAV is encoded in memory and written through :func:`engine.atomic.write_bytes`: a hidden temp file in the
target's folder, flushed to disk, read back (its frames, channels and rate must be the ones asked for), and only
then given its name. A reader never sees a half-written or short file, a full disk is
:class:`~engine.errors.DiskFullError`, and a crash leaves at most a temp file of our own behind.
"""

from __future__ import annotations

import logging
import math
import os
import struct
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf

from engine.atomic import write_bytes
from engine.errors import BadInputError, EngineError

log = logging.getLogger(__name__)

SUBTYPE = "PCM_24"
MAX_CHANNELS = 64
MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 768_000


def _check_audio(audio: npt.NDArray[np.floating], sample_rate: int) -> npt.NDArray[np.floating]:
    """Validate ``[channels, samples]`` float audio; returns it (clipped to +-1.0 if it went beyond)."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer):
        raise BadInputError(f"sample_rate must be an integer number of Hz, got {sample_rate!r}")
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise BadInputError(f"sample_rate must be in {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz, got {sample_rate}")
    array = np.asarray(audio)
    if not np.issubdtype(array.dtype, np.floating):
        raise BadInputError(f"audio must be floating point in -1..1, got dtype {array.dtype}")
    if array.ndim != 2:
        raise BadInputError(f"audio must have shape [channels, samples], got {array.ndim} dimensions {array.shape}")
    channels, samples = array.shape
    if channels > MAX_CHANNELS:
        hint = "; it looks like [samples, channels]: pass audio.T" if samples <= MAX_CHANNELS else ""
        raise BadInputError(f"audio has {channels} channels (shape {array.shape}), at most {MAX_CHANNELS}{hint}")
    if channels == 0:
        raise BadInputError("audio has no channels; expected shape [channels, samples]")
    # one pass each for the extremes: NaN propagates through min/max and inf shows in them
    lo, hi = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise EngineError("refusing to write audio that contains NaN or infinite samples")
    peak = max(-lo, hi)
    if peak > 1.0:
        log.warning("audio peaks at %+.2f dBFS; samples beyond full scale are clipped", 20 * math.log10(peak))
        array = np.clip(array, -1.0, 1.0)
    return array


def _encode(audio: npt.NDArray[np.floating], sample_rate: int) -> bytes | memoryview:
    """A 24-bit PCM WAV of ``audio [channels, samples]`` (within +-1.0) in memory: the 44-byte header libsndfile
    writes, then the samples as libsndfile converts float to 24 bits (float32 x 2^31, rounded to nearest even,
    clipped, its top three bytes), byte for byte the file ``soundfile.write(..., subtype="PCM_24")`` makes, in
    about half its time (numpy, no per-block callbacks)."""
    channels, samples = audio.shape
    scaled = np.empty((samples, channels), np.float32)  # interleaved
    np.multiply(audio.T, np.float32(2.0**31), out=scaled, casting="unsafe")
    np.rint(scaled, out=scaled)
    np.minimum(scaled, np.float32(2.0**31 - 128), out=scaled)  # the largest float32 below 2^31: 0x7FFFFF on top
    words = scaled.astype("<i4").reshape(-1).view(np.uint8)
    size = 3 * samples * channels
    pad = size % 2
    data = np.empty(44 + size + pad, np.uint8)
    data[44 : 44 + size : 3], data[45 : 45 + size : 3], data[46 : 46 + size : 3] = words[1::4], words[2::4], words[3::4]
    if pad:
        data[-1] = 0
    block = 3 * channels
    data[:44] = np.frombuffer(
        b"RIFF" + struct.pack("<I", 36 + size + pad) + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, sample_rate, sample_rate * block, block, 24)
        + b"data" + struct.pack("<I", size),
        np.uint8,
    )  # fmt: skip
    return data.data


def write_wav(
    path: str | os.PathLike[str],
    audio: npt.NDArray[np.floating],
    sample_rate: int,
    *,
    overwrite: bool = False,
) -> Path:
    """Write float ``audio [channels, samples]`` as a 24-bit PCM WAV at ``path``, atomically; returns the path.

    Missing parent folders are created. Raises :class:`EngineError` if ``path`` exists and ``overwrite`` is
    False (the existing file is left untouched), if the audio holds NaN/inf, or if the file does not read back
    as written; :class:`~engine.errors.DiskFullError` when the disk is full. Samples beyond +-1.0 are clipped
    with a warning.
    """
    target = Path(path)
    frames = _check_audio(audio, sample_rate)
    if target.exists() and not overwrite:
        raise EngineError(f"{target} already exists; choose another output folder or pass overwrite=True")
    if target.is_dir():
        raise EngineError(f"{target} is a folder; give a file name ending in .wav")
    try:
        encoded = _encode(frames, int(sample_rate))
    except (ValueError, MemoryError) as e:
        raise EngineError(f"could not encode {target} as WAV: {e}") from e
    expected = (frames.shape[1], frames.shape[0], int(sample_rate))

    def check(tmp: Path) -> str | None:
        """Read the written file's header back: its frames, channels and rate must be the ones asked for."""
        try:
            info = sf.info(str(tmp))
        except (sf.SoundFileError, RuntimeError) as e:
            return f"the file does not read back as WAV ({e})"
        found = (int(info.frames), int(info.channels), int(info.samplerate))
        if found != expected:
            return "it reads back as {} frames, {} channels at {} Hz, not {} frames, {} channels at {} Hz".format(
                *found, *expected
            )
        return None

    write_bytes(target, encoded, overwrite=overwrite, check=check)
    log.debug("wrote %s (%d channels, %d samples, %d Hz)", target, frames.shape[0], frames.shape[1], sample_rate)
    return target


def read_sample_rate(path: str | os.PathLike[str]) -> int:
    """Sample rate in Hz of an audio file soundfile can read (WAV, FLAC, AIFF, OGG, ...)."""
    target = Path(path)
    if not target.is_file():
        raise BadInputError(f"{target}: no such audio file")
    try:
        return int(sf.info(str(target)).samplerate)
    except (sf.SoundFileError, RuntimeError) as e:
        raise BadInputError(f"{target} is not a readable audio file ({e}); give a WAV, FLAC or AIFF file") from e

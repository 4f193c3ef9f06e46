"""Write 24-bit PCM WAV files atomically, never over an existing file unless asked; read a file's sample rate.

The WAV is encoded in memory and written through :func:`engine.atomic.write_bytes`: a hidden temp file in the
target's folder, flushed to disk, read back (its frames, channels and rate must be the ones asked for), and only
then given its name. A reader never sees a half-written or short file, a full disk is
:class:`~engine.errors.DiskFullError`, and a crash leaves at most a temp file of our own behind.
"""

from __future__ import annotations

import io
import logging
import math
import os
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


def _check_audio(audio: npt.NDArray[np.floating], sample_rate: int) -> npt.NDArray[np.float32]:
    """Validate ``[channels, samples]`` float audio; returns float32 ``[samples, channels]`` for soundfile."""
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
    if not np.all(np.isfinite(array)):
        raise EngineError("refusing to write audio that contains NaN or infinite samples")
    peak = float(np.max(np.abs(array), initial=0.0))
    if peak > 1.0:
        log.warning("audio peaks at %+.2f dBFS; samples beyond full scale are clipped", 20 * math.log10(peak))
        array = np.clip(array, -1.0, 1.0)
    return np.ascontiguousarray(array.T, dtype=np.float32)


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
    buffer = io.BytesIO()  # made in memory: soundfile's own writes cannot tell a full disk (it asserts)
    try:
        sf.write(buffer, frames, int(sample_rate), subtype=SUBTYPE, format="WAV")
    except (sf.SoundFileError, RuntimeError) as e:
        raise EngineError(f"could not encode {target} as WAV: {e}") from e
    expected = (frames.shape[0], frames.shape[1], int(sample_rate))

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

    write_bytes(target, buffer.getbuffer(), overwrite=overwrite, check=check)
    log.debug("wrote %s (%d channels, %d samples, %d Hz)", target, frames.shape[1], frames.shape[0], sample_rate)
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

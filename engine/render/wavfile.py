"""Write 24-bit PCM WAV files atomically, never over an existing file unless asked; read a file's sample rate.

The audio goes to a hidden temp file in the target's folder, is flushed to disk, and then appears under its name
in one step (a hard link, which fails if the name is taken, or ``os.replace`` when overwriting is allowed). A
reader never sees a half-written file, and a crash leaves at most a ``.*.tmp`` file of our own behind.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf

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
    False (the existing file is left untouched), or if the audio holds NaN/inf. Samples beyond +-1.0 are clipped
    with a warning.
    """
    target = Path(path)
    frames = _check_audio(audio, sample_rate)
    if target.exists() and not overwrite:
        raise EngineError(f"{target} already exists; choose another output folder or pass overwrite=True")
    if target.is_dir():
        raise EngineError(f"{target} is a folder; give a file name ending in .wav")
    target.parent.mkdir(parents=True, exist_ok=True)

    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w+b") as f:
            sf.write(f, frames, int(sample_rate), subtype=SUBTYPE, format="WAV")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644 & ~_umask())
        if overwrite:
            os.replace(tmp, target)
        else:
            _link_no_clobber(tmp, target)
    except FileExistsError as e:
        raise EngineError(
            f"{target} appeared while it was being written; it was left untouched. Choose another output folder"
        ) from e
    except (OSError, sf.SoundFileError, RuntimeError) as e:
        raise EngineError(f"could not write {target}: {e}; check the folder is writable and has free space") from e
    finally:
        tmp.unlink(missing_ok=True)
    log.debug("wrote %s (%d channels, %d samples, %d Hz)", target, frames.shape[1], frames.shape[0], sample_rate)
    return target


def _link_no_clobber(tmp: Path, target: Path) -> None:
    """Give ``tmp`` the name ``target`` only if that name is free (atomic on POSIX via ``link``)."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise
    except OSError:  # file systems without hard links (some network or FAT mounts)
        if target.exists():
            raise FileExistsError(target) from None
        os.replace(tmp, target)


def _umask() -> int:
    """The process umask, read without changing it (``os.umask`` would race with other threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def read_sample_rate(path: str | os.PathLike[str]) -> int:
    """Sample rate in Hz of an audio file soundfile can read (WAV, FLAC, AIFF, OGG, ...)."""
    target = Path(path)
    if not target.is_file():
        raise BadInputError(f"{target}: no such audio file")
    try:
        return int(sf.info(str(target)).samplerate)
    except (sf.SoundFileError, RuntimeError) as e:
        raise BadInputError(f"{target} is not a readable audio file ({e}); give a WAV, FLAC or AIFF file") from e

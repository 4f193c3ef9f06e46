"""Reading a region's audio: WAV, FLAC or AIFF at any sample rate, any channel count, 16/24/32-bit int or float.

Files are opened with soundfile (libsndfile) and only the part that is needed is read (a two-hour file costs the
last few bars, not two hours of memory). Every problem is a :class:`BadInputError` that names the file, what is
wrong and what to do: a damaged or truncated file, no audio, NaN/inf samples, silence. Clipping is reported as a
note, not an error. Resampling uses soxr (high quality).

Audio is float32 ``[channels, samples]`` everywhere here.
"""

from __future__ import annotations

import logging
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf

from engine.errors import BadInputError

log = logging.getLogger(__name__)

Audio = npt.NDArray[np.float32]
FORMATS = "WAV, FLAC or AIFF"
SILENCE_PEAK = 10 ** (-80 / 20)  # below -80 dBFS everywhere: nothing to continue
CLIP_LEVEL = 0.998  # |sample| at or above this is at full scale
CLIP_FRACTION = 5e-4  # more than this share of samples at full scale: the region clips
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)  # data sizes streaming writers leave when they do not know the length


@dataclass(frozen=True)
class AudioInfo:
    path: Path
    sample_rate: int
    channels: int
    frames: int  # samples per channel
    format: str  # "WAV", "FLAC", "AIFF", ...
    subtype: str  # "PCM_16", "PCM_24", "FLOAT", ...

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


def probe_audio(path: Path) -> AudioInfo:
    """Read an audio file's header; :class:`BadInputError` if it is missing, damaged, truncated or empty."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"{path}: no such audio file")
    try:
        raw = sf.info(str(path))
    except (sf.SoundFileError, RuntimeError, OSError) as e:
        raise BadInputError(
            f"cannot read {path} as audio ({_reason(e)}); it is damaged, truncated or not audio: give a {FORMATS} "
            "file (export the region again)"
        ) from e
    info = AudioInfo(path, int(raw.samplerate), int(raw.channels), int(raw.frames), str(raw.format), str(raw.subtype))
    if info.channels < 1 or info.sample_rate < 1:
        raise BadInputError(f"{path} has {info.channels} channels at {info.sample_rate} Hz; it is damaged")
    if info.frames == 0:
        raise BadInputError(f"{path} holds no audio (0 samples); export the region again")
    _check_not_truncated(path, info)
    return info


def _reason(e: BaseException) -> str:
    text = str(e).strip()
    return text.split(":", 1)[-1].strip() if text.startswith("Error") else text


def _check_not_truncated(path: Path, info: AudioInfo) -> None:
    """A WAV/AIFF whose data chunk is cut short (an interrupted export or copy) reads as a shorter file without
    complaint from libsndfile: compare the header's promise with the file's size."""
    promised = _declared_data_bytes(path)
    if promised is None:
        return
    declared_bytes, available_bytes = promised
    if available_bytes >= declared_bytes:
        return
    frame_bytes = _frame_bytes(info)
    if frame_bytes:
        promised_seconds = declared_bytes / frame_bytes / info.sample_rate
        held_seconds = available_bytes / frame_bytes / info.sample_rate
        detail = f"its header promises {promised_seconds:.3f} s of audio but it holds {held_seconds:.3f} s"
    else:  # compressed samples in a WAV: say it in bytes
        detail = f"its header promises {declared_bytes} bytes of audio but it holds {available_bytes}"
    raise BadInputError(f"{path} is truncated: {detail} (an interrupted export or copy?); export the region again")


def _frame_bytes(info: AudioInfo) -> int:
    sizes = {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}
    return sizes.get(info.subtype, 0) * info.channels


def _declared_data_bytes(path: Path) -> tuple[int, int] | None:
    """(bytes the data chunk declares, bytes actually there) for RIFF/WAVE and FORM/AIFF files, else None."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(12)
            if len(head) < 12:
                return None
            if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
                endian, data_id = "<", b"data"
            elif head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
                endian, data_id = ">", b"SSND"
            else:
                return None  # RF64/BW64 and FLAC: libsndfile checks these itself
            offset = 12
            while offset + 8 <= size:
                f.seek(offset)
                chunk = f.read(8)
                chunk_id = chunk[:4]
                (chunk_size,) = struct.unpack(endian + "I", chunk[4:8])
                if chunk_id == data_id:
                    if chunk_size in _UNKNOWN_SIZES:
                        return None
                    extra = 8 if data_id == b"SSND" else 0  # AIFF: offset and block size before the samples
                    return chunk_size - extra, size - (offset + 8 + extra)
                offset += 8 + chunk_size + (chunk_size & 1)
    except (OSError, struct.error):
        return None
    return None


def read_audio(path: Path, start: int = 0, stop: int | None = None, info: AudioInfo | None = None) -> Audio:
    """Samples ``[start, stop)`` of the file as float32 ``[channels, samples]`` (only those are read)."""
    info = info or probe_audio(path)
    stop = info.frames if stop is None else min(int(stop), info.frames)
    start = max(0, min(int(start), stop))
    try:
        with sf.SoundFile(str(path)) as f:
            if start:
                f.seek(start)
            data = f.read(stop - start, dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, OSError) as e:
        raise BadInputError(
            f"cannot read the audio of {path} ({_reason(e)}); the file is damaged or truncated: export the region again"
        ) from e
    if data.shape[0] < stop - start:
        raise BadInputError(
            f"{path} ends after {(start + data.shape[0]) / info.sample_rate:.3f} s although its header says "
            f"{info.seconds:.3f} s; the file is truncated: export the region again"
        )
    return np.ascontiguousarray(data.T)


@dataclass(frozen=True)
class AudioCheck:
    peak: float
    clipped_samples: int
    notes: tuple[str, ...]


def check_audio(audio: Audio, path: Path, sample_rate: int, start_seconds: float = 0.0) -> AudioCheck:
    """Reject NaN/inf and silence (:class:`BadInputError`); note clipping. ``audio`` is ``[channels, samples]``."""
    finite = np.isfinite(audio)
    if not bool(finite.all()):
        bad = int(audio.size - int(finite.sum()))
        first = int(np.argmin(finite.all(axis=0)))
        raise BadInputError(
            f"{path} holds {bad} NaN or infinite sample(s) (the first at {start_seconds + first / sample_rate:.3f} s);"
            " the file is damaged or was written by a misbehaving plug-in: bounce the region again"
        )
    peak = float(np.max(np.abs(audio), initial=0.0))
    where = f"the last {audio.shape[1] / sample_rate:.1f} s of {path}" if start_seconds > 0 else str(path)
    if peak < SILENCE_PEAK:
        level = "-inf" if peak == 0 else f"{20 * math.log10(peak):.0f}"
        raise BadInputError(
            f"{where} is silent (peak {level} dBFS): there is nothing to continue; check that the right track "
            "was bounced and that it was not muted"
        )
    clipped = int(np.count_nonzero(np.abs(audio) >= CLIP_LEVEL))
    notes: tuple[str, ...] = ()
    if clipped > max(3, CLIP_FRACTION * audio.size):
        notes = (
            f"the region clips ({clipped} samples at full scale, {100 * clipped / audio.size:.1f}%): the "
            "continuation matches its loudness, not its distortion; lower the level before bouncing",
        )
    return AudioCheck(peak, clipped, notes)


def to_mono(audio: Audio) -> npt.NDArray[np.float32]:
    """The mean of the channels: ``[channels, samples] -> [samples]``."""
    mono: npt.NDArray[np.float32] = audio.mean(axis=0, dtype=np.float32)
    return mono


def resample(audio: npt.NDArray[np.float32], from_rate: int, to_rate: int) -> npt.NDArray[np.float32]:
    """Resample ``[samples]`` or ``[channels, samples]`` (soxr, high quality); the same array when rates match."""
    if from_rate == to_rate:
        return audio
    import soxr

    if audio.ndim == 1:
        out = soxr.resample(audio, from_rate, to_rate, quality="HQ")
    else:
        out = soxr.resample(np.ascontiguousarray(audio.T), from_rate, to_rate, quality="HQ").T
    return np.ascontiguousarray(out, dtype=np.float32)

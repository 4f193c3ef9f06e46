"""Signal pieces of the audio measures, shared with the audio engine (segue-concat's units): mono, spectrograms,
mel filters, onsets and their grid, and per-beat chroma. numpy only."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
GRID_WINDOW_S = 0.025
RISE_OVER_MEDIAN = 1.5  # an onset's flux stands this far over the median around it (steady noise: about 1.2)
CHROMA_FMIN, CHROMA_FMAX = 80.0, 4000.0


def mono(audio: npt.NDArray[np.floating]) -> Array:
    """[channels, samples] or [samples] -> [samples], float64."""
    a = np.asarray(audio, dtype=np.float64)
    return a.mean(axis=0) if a.ndim == 2 else a


def frame_params(sample_rate: int) -> tuple[int, int]:
    """(n_fft, hop) of about 46 ms and 11.6 ms at any rate (2048 / 512 at 44.1 kHz)."""
    n_fft = 1 << max(8, round(math.log2(sample_rate * 0.0464)))
    return n_fft, n_fft // 4


def power_spectrogram(x: Array, n_fft: int, hop: int) -> Array:
    """|STFT|^2 [frames, bins] of mono ``x`` with a Hann window (zero-padded to one frame at least)."""
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    x = np.ascontiguousarray(x, dtype=np.float64)
    frames = 1 + (len(x) - n_fft) // hop
    strided = np.lib.stride_tricks.as_strided(x, (frames, n_fft), (x.strides[0] * hop, x.strides[0]), writeable=False)
    spectrum = np.fft.rfft(strided * np.hanning(n_fft), axis=1)
    return np.asarray(spectrum.real**2 + spectrum.imag**2, dtype=np.float64)


def mel_filterbank(n_fft: int, sample_rate: int, n_mels: int, fmin: float = 30.0, fmax: float | None = None) -> Array:
    """Triangular mel filters [n_mels, bins] (HTK mel scale), each summing the power of its band."""
    fmax = min(fmax or sample_rate / 2, sample_rate / 2)
    mel = np.linspace(2595 * np.log10(1 + fmin / 700), 2595 * np.log10(1 + fmax / 700), n_mels + 2)
    hz = 700 * (10 ** (mel / 2595) - 1)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    bank = np.zeros((n_mels, len(freqs)))
    for m in range(n_mels):
        lo, mid, hi = hz[m], hz[m + 1], hz[m + 2]
        rise = (freqs - lo) / max(mid - lo, 1e-9)
        fall = (hi - freqs) / max(hi - mid, 1e-9)
        bank[m] = np.maximum(0.0, np.minimum(rise, fall))
        if not bank[m].any():  # a band narrower than a bin: the nearest bin
            bank[m, int(np.argmin(np.abs(freqs - mid)))] = 1.0
    return bank


def log_mel(x: Array, sample_rate: int, n_mels: int = 64) -> Array:
    """Natural log of 64-band mel power [frames, n_mels] (frames of :func:`frame_params`; floor 1e-10)."""
    n_fft, hop = frame_params(sample_rate)
    power = power_spectrogram(x, n_fft, hop)
    return np.log(power @ mel_filterbank(n_fft, sample_rate, n_mels).T + 1e-10)


def detect_onsets(x: Array, sample_rate: int) -> Array:
    """Onset times in seconds of mono ``x``: peaks of the log spectral flux (frames of ~23 ms, hop ~5.8 ms) over
    an adaptive threshold (median of the surrounding 0.5 s + half its spread, and at least 1.5 x that median:
    steady noise has no onsets), at least 30 ms apart."""
    peak = float(np.max(np.abs(x), initial=0.0))
    if peak <= 1e-6:
        return np.zeros(0)
    n_fft = 1 << max(7, round(math.log2(sample_rate * 0.0232)))
    hop = n_fft // 4
    mag = np.sqrt(power_spectrogram(x / peak, n_fft, hop))
    flux = np.maximum(0.0, np.diff(np.log1p(1000.0 * mag), axis=0)).mean(axis=1)
    if len(flux) < 3:
        return np.zeros(0)
    radius = max(1, round(0.25 * sample_rate / hop))
    padded = np.pad(flux, radius, mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1)
    median = np.median(windows, axis=1)
    spread = np.percentile(windows, 90, axis=1) - median
    threshold = np.maximum(median + 0.5 * spread, RISE_OVER_MEDIAN * median) + 0.02 * float(flux.max())
    near = max(1, round(0.03 * sample_rate / hop))
    local = np.lib.stride_tricks.sliding_window_view(np.pad(flux, near, mode="edge"), 2 * near + 1).max(axis=1)
    frames = np.flatnonzero((flux >= local) & (flux > threshold))
    kept: list[int] = []
    for f in frames.tolist():
        if not kept or f - kept[-1] >= near:
            kept.append(f)
    # flux frame f compares STFT frames f and f+1: an attack shows once it is inside the later frame
    times = (np.asarray(kept, dtype=np.float64) + 1) * hop + n_fft - hop  # (calibrated on clicks: +-3 ms)
    return np.asarray(times / sample_rate)


def grid_share(onsets_s: Array, step_s: float, origin_s: float = 0.0, window_s: float = GRID_WINDOW_S) -> float | None:
    """Share of onsets within ``window_s`` of the grid ``origin_s + k * step_s`` (None without onsets)."""
    if len(onsets_s) == 0:
        return None
    phase = np.mod(onsets_s - origin_s, step_s)
    distance = np.minimum(phase, step_s - phase)
    return float(np.mean(distance <= window_s))


def beat_chromas(x: Array, sample_rate: int, beat_samples: float, beats: int, end: int | None = None) -> Array:
    """Chroma of each of ``beats`` beats of mono ``x`` [beats, 12], each from one Hann-windowed spectrum of the
    whole beat (a resolution of a few Hz: semitones apart down to 80 Hz) and summing to 1 (zeros for silence).
    Beats start at sample 0, or, with ``end``, are counted back from that sample (a region ending on a bar line)."""
    length = int(beat_samples)
    if beats <= 0 or length < 16:
        return np.zeros((max(0, beats), 12))
    starts = [round(k * beat_samples) for k in range(beats)]
    if end is not None:
        starts = [end - round((beats - k) * beat_samples) for k in range(beats)]
    frames = np.zeros((beats, length))
    for k, a in enumerate(starts):
        lo, hi = max(0, a), min(len(x), a + length)
        if hi > lo:
            frames[k, lo - a : hi - a] = x[lo:hi]
    n_fft = 1 << math.ceil(math.log2(length))
    power = np.abs(np.fft.rfft(frames * np.hanning(length), n=n_fft, axis=1)) ** 2
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    band = (freqs >= CHROMA_FMIN) & (freqs <= min(CHROMA_FMAX, sample_rate / 2))
    pcs = (np.round(12 * np.log2(freqs[band] / 440.0)).astype(int) + 9) % 12
    out = np.zeros((beats, 12))
    for pc in range(12):
        out[:, pc] = power[:, band][:, pcs == pc].sum(axis=1)
    total = out.sum(axis=1, keepdims=True)
    return np.asarray(np.where(total > 1e-20, out / np.maximum(total, 1e-30), 0.0))


def chroma_clarity(chromas: Array) -> float:
    """How clearly the beats hold a few pitch classes: the mean share of each beat's energy in its 4 strongest
    pitch classes, from 0 (spread evenly, 4/12: noise, most drums) to 1 (four notes or fewer)."""
    if not len(chromas) or not np.any(chromas.sum(axis=1) > 0):
        return 0.0
    top = np.sort(chromas, axis=1)[:, -4:].sum(axis=1)
    return float(np.clip((np.mean(top) - 1 / 3) / (2 / 3), 0.0, 1.0))

"""Measures on audio: beat-tracked tempo, chroma key, BS.1770 loudness, a click at the join, spectral variety.

numpy only. The tempo estimator is a plain one (spectral-flux onset strength, its autocorrelation, a broad prior
around 110 BPM, octave errors folded towards a reference when one is given); it is a check, not a beat tracker
for sparse or rubato material, and the report prints its estimates so a reader can judge them.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.audio.loudness import integrated_loudness
from engine.evaluate.music import Key, estimate_key

Array = npt.NDArray[np.float64]
N_FFT = 2048
HOP = 512
MIN_BPM, MAX_BPM = 50.0, 220.0
CLICK_WINDOW_S = 0.002
CLICK_CONTEXT_S = 0.5


def mono(audio: npt.NDArray[np.floating]) -> Array:
    """[channels, samples] or [samples] -> [samples], float64."""
    a = np.asarray(audio, dtype=np.float64)
    return a.mean(axis=0) if a.ndim == 2 else a


def _stft_magnitude(x: Array) -> Array:
    """|STFT| [frames, bins] with a Hann window (zero-padded to one frame at least)."""
    if len(x) < N_FFT:
        x = np.pad(x, (0, N_FFT - len(x)))
    frames = 1 + (len(x) - N_FFT) // HOP
    index = np.arange(N_FFT)[None, :] + HOP * np.arange(frames)[:, None]
    spectrum: Array = np.abs(np.fft.rfft(x[index] * np.hanning(N_FFT), axis=1))
    return spectrum


def onset_strength(x: Array) -> Array:
    """Half-wave rectified spectral flux of the log magnitude, one value per hop."""
    mag = np.log1p(100.0 * _stft_magnitude(x))
    flux = np.maximum(0.0, np.diff(mag, axis=0)).sum(axis=1)
    flux -= flux.mean()
    return np.asarray(flux, dtype=np.float64)


def estimate_tempo(x: Array, sample_rate: int, reference_bpm: float | None = None) -> float | None:
    """The tempo (BPM) of mono audio ``x``, or None for under 4 s or no onsets. With ``reference_bpm``, candidates
    at twice, half, 3/2 or 2/3 the best lag are preferred when they lie closer to the reference (octave errors)."""
    if len(x) < 4 * sample_rate:
        return None
    env = onset_strength(x)
    if not np.any(env > 0):
        return None
    frame_rate = sample_rate / HOP
    ac = np.correlate(env, env, mode="full")[len(env) - 1 :]
    lags = np.arange(len(ac))
    lo = max(1, int(frame_rate * 60.0 / MAX_BPM))
    hi = min(len(ac) - 1, int(frame_rate * 60.0 / MIN_BPM) + 1)
    if hi <= lo + 2:
        return None
    bpm = 60.0 * frame_rate / np.maximum(lags[lo:hi], 1)
    prior = np.exp(-0.5 * (np.log2(bpm / 110.0) / 1.0) ** 2)
    score = ac[lo:hi] * prior
    k = int(np.argmax(score)) + lo
    # parabolic interpolation of the peak for sub-frame lag precision
    if 1 <= k < len(ac) - 1:
        a, b, c = ac[k - 1], ac[k], ac[k + 1]
        denom = a - 2 * b + c
        shift = 0.5 * (a - c) / denom if denom != 0 else 0.0
    else:
        shift = 0.0
    tempo = 60.0 * frame_rate / (k + shift)
    if reference_bpm is not None:
        candidates = [tempo * f for f in (1.0, 2.0, 0.5, 1.5, 2.0 / 3.0)]
        tempo = min(candidates, key=lambda t: abs(math.log(t / reference_bpm)))
    return float(tempo)


def chroma(x: Array, sample_rate: int) -> Array:
    """Energy per pitch class (12), from the STFT bins between 55 Hz and 2 kHz."""
    mag = _stft_magnitude(x) ** 2
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / sample_rate)
    band = (freqs >= 55.0) & (freqs <= 2000.0)
    pcs = np.round(12 * np.log2(freqs[band] / 440.0)).astype(int) % 12
    pcs = (pcs + 9) % 12  # A = 9
    energy = mag[:, band].sum(axis=0)
    return np.bincount(pcs, weights=energy, minlength=12).astype(np.float64)


def audio_key(x: Array, sample_rate: int) -> Key | None:
    return estimate_key(chroma(x, sample_rate))


def loudness_lufs(audio: npt.NDArray[np.floating], sample_rate: int) -> float:
    a = np.asarray(audio, dtype=np.float64)
    return integrated_loudness(a if a.ndim == 2 else a[None, :], sample_rate)


@dataclass(frozen=True)
class Join:
    step_ratio: float  # the sample step at the seam / the 99th percentile of the steps just before it
    burst_db: float  # second-difference energy in 2 ms at the seam over its median in the second around it

    @property
    def click(self) -> bool:
        """A click: a step larger than the region's own largest steps, and a broadband burst 10 dB over its
        surroundings."""
        return self.step_ratio > 1.0 and self.burst_db > 10.0


def join_click(full: npt.NDArray[np.floating], seam: int, sample_rate: int) -> Join | None:
    """Measure the join at sample ``seam`` of ``full [channels, samples]`` (None when there is no seam inside)."""
    a = np.asarray(full, dtype=np.float64)
    a = a if a.ndim == 2 else a[None, :]
    if not 2 < seam < a.shape[1] - 2:
        return None
    context = int(CLICK_CONTEXT_S * sample_rate)
    before = a[:, max(0, seam - context) : seam]
    steps_before = np.abs(np.diff(before, axis=1))
    p99 = float(np.percentile(steps_before, 99)) if steps_before.size else 0.0
    seam_step = float(np.abs(a[:, seam] - a[:, seam - 1]).max())
    step_ratio = seam_step / p99 if p99 > 0 else (math.inf if seam_step > 0 else 0.0)
    hp = np.abs(np.diff(a, n=2, axis=1)).max(axis=0) ** 2
    w = max(1, int(CLICK_WINDOW_S * sample_rate))
    lo, hi = max(0, seam - context), min(len(hp), seam + context)
    windows = [hp[s : s + w].sum() for s in range(lo, hi - w, w)]
    at_seam = float(hp[max(0, seam - w // 2 - 1) : seam + w // 2 + 1].sum())
    median = float(np.median(windows)) if windows else 0.0
    burst_db = 10 * math.log10((at_seam + 1e-20) / (median + 1e-20))
    return Join(step_ratio, burst_db)


def _log_spectrum(x: Array) -> Array:
    mag = _stft_magnitude(x)
    bands = np.array_split(np.arange(mag.shape[1]), 64)
    return np.log1p(100.0 * np.stack([mag[:, b].mean(axis=1) for b in bands], axis=1))


def variety(signals: list[Array]) -> tuple[float | None, int]:
    """Mean pairwise distance between the variants' log band spectrograms (RMS difference over the RMS of both),
    and how many pairs are identical sample for sample."""
    specs = [_log_spectrum(s) for s in signals]
    distances, identical = [], 0
    for (i, a), (j, b) in itertools.combinations(enumerate(specs), 2):
        n = min(len(a), len(b))
        num = float(np.sqrt(np.mean((a[:n] - b[:n]) ** 2)))
        den = float(np.sqrt(0.5 * (np.mean(a[:n] ** 2) + np.mean(b[:n] ** 2)))) or 1.0
        distances.append(num / den)
        identical += bool(len(signals[i]) == len(signals[j]) and np.array_equal(signals[i], signals[j]))
    return (float(np.mean(distances)) if distances else None), identical

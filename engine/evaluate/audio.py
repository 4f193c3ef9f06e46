"""Measures on audio: beat-tracked tempo, chroma key, BS.1770 loudness, a click at the join, spectral variety.

numpy only. The tempo estimator is a plain one (spectral-flux onset strength, its autocorrelation, a broad prior
around 110 BPM, octave errors folded towards a reference when one is given); it is a check, not a beat tracker
for sparse or rubato material, and the report prints its estimates so a reader can judge them.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.evaluate.loudness import integrated_loudness
from engine.evaluate.music import Key, estimate_key
from engine.evaluate.signal import (
    GRID_WINDOW_S,
    beat_chromas,
    chroma_clarity,
    detect_onsets,
    frame_params,
    grid_share,
    log_mel,
    mono,
    power_spectrogram,
)

Array = npt.NDArray[np.float64]
N_FFT = 2048
HOP = 512
MIN_BPM, MAX_BPM = 50.0, 220.0
CLICK_WINDOW_S = 0.002
CLICK_CONTEXT_S = 0.5


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
    count = max(0, -(-(hi - w - lo) // w))  # the windows starting at lo, lo + w, ... before hi - w
    windows = hp[lo : lo + count * w].reshape(count, w).sum(axis=1) if count else np.zeros(0)
    at_seam = float(hp[max(0, seam - w // 2 - 1) : seam + w // 2 + 1].sum())
    median = float(np.median(windows)) if len(windows) else 0.0
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


# -- measures of a continuation made of its region's own sound (issue 15; also used by engine.audio.concat) --------

FD_MARGIN = 15.0  # log-mel Frechet distance to the region <= the region's first-half vs second-half distance + this
COPY_CORRELATION = 0.98  # a continuation bar this correlated (zero lag) with a region bar is a verbatim copy
MAX_COPY_SHARE = 0.5
HF_CUTOFF_HZ = 11_000.0
HF_TOLERANCE_DB = 3.0
HF_FLOOR_DB = -60.0  # band energy this far below the full band's counts as "none" (both sides: a pass)
GRID_SLACK = 0.1  # the continuation's share of onsets on the 1/16 grid may be this much lower than the region's
LOUDNESS_LU = 1.0
MIN_GRID_ONSETS = 4


def _sqrtm_psd(m: Array) -> Array:
    values, vectors = np.linalg.eigh((m + m.T) / 2)
    return np.asarray((vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T)


def frechet_distance(a: Array, b: Array) -> float:
    """Frechet distance between Gaussians fitted to the rows of ``a`` and ``b`` [frames, dims] (FAD's formula)."""
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_a = _sqrtm_psd(cov_a)
    cross = _sqrtm_psd(root_a @ cov_b @ root_a)
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(cross))


def mel_distances(region: Array, continuation: Array, sample_rate: int) -> tuple[float, float]:
    """(log-mel Frechet distance continuation vs region, region's first half vs its second half); mono input."""
    reg, cont = log_mel(region, sample_rate), log_mel(continuation, sample_rate)
    half = len(reg) // 2
    return frechet_distance(reg, cont), frechet_distance(reg[:half], reg[half:])


def bar_copies(
    region: npt.NDArray[np.floating], continuation: npt.NDArray[np.floating], bar_samples: float
) -> list[float]:
    """For each whole bar of ``continuation [C, n]``, its largest zero-lag normalised correlation with a whole bar
    of ``region [C, m]`` (region bars counted back from its end, which is a bar line)."""
    reg = np.asarray(region, dtype=np.float64)
    cont = np.asarray(continuation, dtype=np.float64)
    reg, cont = (reg if reg.ndim == 2 else reg[None]), (cont if cont.ndim == 2 else cont[None])
    length = int(math.floor(bar_samples))
    n_reg, n_cont = int(reg.shape[1] // bar_samples), int(cont.shape[1] // bar_samples + 1e-9)
    if n_reg == 0 or length == 0:
        return []
    ends = [reg.shape[1] - round(k * bar_samples) for k in range(n_reg)]
    rows = np.stack([reg[:, e - length : e].ravel() for e in ends])
    rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    best = []
    for b in range(n_cont):
        start = round(b * bar_samples)
        v = cont[:, start : start + length].ravel()
        norm = float(np.linalg.norm(v))
        best.append(float((rows @ v).max() / norm) if norm > 1e-12 else 0.0)
    return best


def band_energy_db(
    audio: npt.NDArray[np.floating], sample_rate: int, cutoff_hz: float = HF_CUTOFF_HZ
) -> tuple[float, float]:
    """(mean power above ``cutoff_hz`` in dB, the same band relative to the whole spectrum in dB)."""
    x = mono(audio)
    n_fft, hop = frame_params(sample_rate)
    power = power_spectrogram(x, n_fft, hop).mean(axis=0)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    band = float(power[freqs >= cutoff_hz].sum())
    total = float(power.sum())
    return 10 * math.log10(band + 1e-20), 10 * math.log10((band + 1e-20) / (total + 1e-20))


HARMONY_MIN = 0.8  # a tonal region's continuation: each bar's beats correlate this well with a region bar's
TONAL_MIN = 0.5  # a region is tonal when its beats' chroma has this clarity (1: one chord's notes, 0: noise)


def _correlations(a: Array, b: Array) -> Array:
    """Pearson correlation of every row of ``a`` with every row of ``b`` (12 pitch classes) [len(a), len(b)]."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    return np.asarray((a @ b.T) / np.maximum(np.outer(na, nb), 1e-20))


@dataclass(frozen=True)
class Harmony:
    """Per bar of a continuation: how well its beats' chroma follows, beat by beat, the region bar it follows best
    (mean Pearson correlation over the bar's beats, at the same beats of that region bar)."""

    bars: tuple[float, ...]
    clarity: float  # the region's chroma clarity (:func:`chroma_clarity`)

    @property
    def mean(self) -> float:
        return float(np.mean(self.bars)) if self.bars else 0.0

    @property
    def worst(self) -> float:
        return float(min(self.bars)) if self.bars else 0.0


def harmony(region: Array, continuation: Array, sample_rate: int, tempo_bpm: float, bar_quarters: float) -> Harmony:
    """:class:`Harmony` of mono ``continuation`` (starting on a bar line) against mono ``region`` (ending on
    one). Beats are quarter notes (eighths when a bar holds no whole number of quarters). A slice of one chord in a
    bar of another lowers its bar's value; a continuation that plays the region's bars' chords in another order
    does not."""
    unit_quarters = 1.0 if abs(bar_quarters - round(bar_quarters)) < 1e-6 else 0.5
    per_bar = max(1, round(bar_quarters / unit_quarters))
    beat = unit_quarters * 60.0 / tempo_bpm * sample_rate
    bar = per_bar * beat
    n_reg, n_cont = int(len(region) / bar + 1e-6), int(len(continuation) / bar + 1e-6)
    if n_reg == 0 or n_cont == 0:
        return Harmony((), 0.0)
    reg = beat_chromas(region, sample_rate, beat, n_reg * per_bar, end=len(region)).reshape(n_reg, per_bar, 12)
    cont = beat_chromas(continuation, sample_rate, beat, n_cont * per_bar).reshape(n_cont, per_bar, 12)
    scores = []
    for b in range(n_cont):
        # [per_bar, n_reg]: each beat of this bar against the same beat of every region bar
        corr = np.stack([np.diag(_correlations(cont[b], reg[r])) for r in range(n_reg)], axis=1)
        scores.append(float(corr.mean(axis=0).max()))
    return Harmony(tuple(scores), chroma_clarity(reg.reshape(-1, 12)))


@dataclass(frozen=True)
class Measure:
    """One of :func:`sound_measures`: ``ok`` None when not measurable (said in ``detail``)."""

    name: str
    value: float | str | None
    ok: bool | None
    detail: str


def _clicks_at(audio: Array, at: int, sample_rate: int, context: int) -> bool:
    if not 0 <= at < audio.shape[1]:
        return False
    lo = max(0, at - context)
    found = join_click(audio[:, lo : at + context], at - lo, sample_rate)
    return found is not None and found.click


def unit_clicks(
    region: npt.NDArray[np.floating],
    continuation: npt.NDArray[np.floating],
    sample_rate: int,
    joins: list[dict[str, int]],
) -> tuple[int, int]:
    """(joins heard as a click, joins measured): the join measure (:func:`join_click`) at every join of a
    concatenative continuation; a join counts when it clicks and the region, at the same moment of the sound
    that comes in or goes out, does not (a drum hit on the grid is not a click of ours)."""
    reg = np.asarray(region, dtype=np.float64)
    cont = np.asarray(continuation, dtype=np.float64)
    reg, cont = (reg if reg.ndim == 2 else reg[None]), (cont if cont.ndim == 2 else cont[None])
    context = int(CLICK_CONTEXT_S * sample_rate) + 4
    clicks = measured = 0
    for join in joins:
        at = int(join["at"])
        lo = max(0, at - context)
        found = join_click(cont[:, lo : at + context], at - lo, sample_rate)
        if found is None:
            continue
        measured += 1
        if not found.click:
            continue
        if any(
            _clicks_at(reg, reg.shape[1] + int(join[key]), sample_rate, context)
            for key in ("source_from_seam", "source_out_from_seam")
            if key in join
        ):
            continue
        clicks += 1
    return clicks, measured


@dataclass(frozen=True)
class _RegionProfile:
    mel: Array
    halves_fd: float
    onsets: Array
    band: tuple[float, float]
    lufs: float


_PROFILES: dict[bytes, _RegionProfile] = {}


def _region_profile(region: Array, sample_rate: int) -> _RegionProfile:
    """What the measures need of the region, computed once for all the variants of a job."""
    key = hashlib.blake2b(np.ascontiguousarray(region).tobytes(), digest_size=16).digest() + str(sample_rate).encode()
    if key not in _PROFILES:
        reg_m = mono(region)
        mel = log_mel(reg_m, sample_rate)
        half = len(mel) // 2
        band = band_energy_db(region, sample_rate) if sample_rate / 2 >= HF_CUTOFF_HZ + 1000 else (0.0, 0.0)
        profile = _RegionProfile(mel, frechet_distance(mel[:half], mel[half:]), detect_onsets(reg_m, sample_rate),
                                 band, loudness_lufs(region, sample_rate))  # fmt: skip
        _PROFILES.clear()  # one job at a time
        _PROFILES[key] = profile
    return _PROFILES[key]


def sound_measures(
    region: npt.NDArray[np.floating],
    continuation: npt.NDArray[np.floating],
    sample_rate: int,
    tempo_bpm: float,
    bar_quarters: float,
    joins: list[dict[str, int]] | None = None,
) -> list[Measure]:
    """Issue 15's measures of an audio continuation against its region (both ``[C, n]``, the region ending on the
    bar line where the continuation starts): it sounds like the region, is more than a copy, keeps the region's
    bandwidth, groove, loudness and (in a tonal region) harmony, and (with the engine's ``joins``) has no click at any
    join."""
    out: list[Measure] = []
    reg = np.asarray(region, dtype=np.float64)
    profile = _region_profile(reg, sample_rate)
    cont_m = mono(continuation)
    fd, halves = frechet_distance(profile.mel, log_mel(cont_m, sample_rate)), profile.halves_fd
    out.append(Measure("mel_fd", round(fd, 2), fd <= halves + FD_MARGIN,
                       f"log-mel (64 bands) Frechet distance to the region; <= the region's halves' {halves:.1f} + "
                       f"{FD_MARGIN:g}"))  # fmt: skip
    bar_samples = bar_quarters * 60.0 / tempo_bpm * sample_rate
    best = bar_copies(region, continuation, bar_samples)
    if best:
        share = float(np.mean(np.asarray(best) >= COPY_CORRELATION))
        out.append(Measure("copied_bars", round(share, 3), share <= MAX_COPY_SHARE,
                           f"share of bars that are verbatim region bars (correlation >= {COPY_CORRELATION}); at "
                           f"most {MAX_COPY_SHARE}"))  # fmt: skip
    if sample_rate / 2 < HF_CUTOFF_HZ + 1000:
        out.append(Measure("hf_db", "n/a", None, f"no band above {HF_CUTOFF_HZ / 1000:g} kHz at {sample_rate} Hz"))
    else:
        (reg_db, reg_rel), (cont_db, cont_rel) = profile.band, band_energy_db(continuation, sample_rate)
        none = reg_rel < HF_FLOOR_DB and cont_rel < HF_FLOOR_DB
        out.append(Measure("hf_db", round(cont_db - reg_db, 2), none or abs(cont_db - reg_db) <= HF_TOLERANCE_DB,
                           f"energy above {HF_CUTOFF_HZ / 1000:g} kHz, continuation minus region (within "
                           f"{HF_TOLERANCE_DB:g} dB, or both under {HF_FLOOR_DB:g} dB of the whole)"))  # fmt: skip
    step = 60.0 / tempo_bpm / 4
    if len(profile.onsets) < MIN_GRID_ONSETS:
        out.append(Measure("grid_share_diff", "n/a", None, f"the region has {len(profile.onsets)} clear onsets"))
    else:
        reg_share = grid_share(profile.onsets, step, origin_s=reg.shape[-1] / sample_rate) or 0.0
        cont_share = grid_share(detect_onsets(cont_m, sample_rate), step) or 0.0
        out.append(Measure("grid_share_diff", round(cont_share - reg_share, 3), cont_share >= reg_share - GRID_SLACK,
                           f"share of onsets within {GRID_WINDOW_S * 1000:g} ms of the 1/16 grid, continuation "
                           f"{cont_share:.2f} minus region {reg_share:.2f} (>= -{GRID_SLACK:g})"))  # fmt: skip
    diff = loudness_lufs(continuation, sample_rate) - profile.lufs
    out.append(
        Measure(
            "loudness_lu",
            round(diff, 2),
            abs(diff) <= LOUDNESS_LU,
            f"BS.1770 loudness, continuation minus region (within {LOUDNESS_LU:g} LU)",
        )
    )
    chords = harmony(mono(reg), cont_m, sample_rate, tempo_bpm, bar_quarters)
    if chords.bars:
        tonal = chords.clarity >= TONAL_MIN
        out.append(Measure("harmony", round(chords.mean, 3), (chords.mean >= HARMONY_MIN) if tonal else None,
                           f"per-beat chroma correlation of each bar with the region bar it follows best, mean over "
                           f"the bars (worst {chords.worst:.2f}); at least {HARMONY_MIN:g} "
                           + ("" if tonal else f"where the region is tonal (its chroma clarity {chords.clarity:.2f} "
                              f"< {TONAL_MIN:g}: not checked)")))  # fmt: skip
    if joins is not None:
        clicks, measured = unit_clicks(region, continuation, sample_rate, joins)
        out.append(Measure("unit_clicks", clicks, clicks == 0,
                           f"joins that click (the join measure at each of {measured} joins; a click the region "
                           "has at the same moment does not count)"))  # fmt: skip
    return out


def max_pairwise_correlation(signals: list[Array]) -> float | None:
    """The largest zero-lag normalised correlation between two of the (mono) signals."""
    best = None
    for a, b in itertools.combinations(signals, 2):
        n = min(len(a), len(b))
        den = float(np.linalg.norm(a[:n]) * np.linalg.norm(b[:n]))
        value = float(a[:n] @ b[:n]) / den if den > 0 else 0.0
        best = value if best is None else max(best, value)
    return best


def bar_line_click(region: npt.NDArray[np.floating], bar_samples: float, sample_rate: int) -> float | None:
    """The loudest click (burst dB of :func:`join_click`) the region makes at one of its own bar lines (counted
    back from its end, which is a bar line), or None when it makes none."""
    reg = np.asarray(region, dtype=np.float64)
    reg = reg if reg.ndim == 2 else reg[None]
    context = int(CLICK_CONTEXT_S * sample_rate) + 4
    loudest = None
    k = 1
    while reg.shape[1] - round(k * bar_samples) > 2:
        at = reg.shape[1] - round(k * bar_samples)
        lo = max(0, at - context)
        found = join_click(reg[:, lo : at + context], at - lo, sample_rate)
        if found is not None and found.click:
            loudest = found.burst_db if loudest is None else max(loudest, found.burst_db)
        k += 1
    return loudest

"""Units: the region cut on its bar grid, each slice described by what matters for matching.

A slice is an eighth note (a sixteenth in x/16 meters); a bar of 4/4 holds 8. Slices are counted back from the
seam (the bar line where the continuation starts), so slice boundaries are the DAW's bar grid even when the
region's file does not start on a bar line. Each slice gets a feature vector (MFCC mean and attack, chroma,
loudness, onset strength) and a metrical class (downbeat, half bar, beat, off-beat, ...): a unit heard on a beat
is only ever taken from a position of the same metrical weight. The onsets actually present refine the joins
(:mod:`engine.audio.concat.decode`) and check the grid: a tempo that does not fit the audio is refused here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.api import Meter
from engine.audio.continuation import BarGrid
from engine.errors import BadInputError
from engine.evaluate import signal

Array = npt.NDArray[np.float64]
MAX_BARS = 32  # the region's last bars that are analysed (a longer region: its last 32 bars)
N_MELS = 40
N_MFCC = 13
GRAM_SAMPLES = 12_000  # a slice is decimated to about this many samples for the copy measure's inner products
TEMPO_MIN_ONSETS = 8
TEMPO_SEARCH = 0.12  # alternative tempi within +-12 % are tried when the onsets do not fit the grid


@dataclass(frozen=True)
class SliceGrid:
    """Slices of a bar: ``slices_per_bar`` slices of ``slice_quarters`` quarter notes, and each position's metrical
    class (0 downbeat, 1 half bar, 2 beat, 3 eighth inside a half-note beat, 4 off-beat)."""

    meter: Meter
    slice_quarters: float
    classes: tuple[int, ...]

    @property
    def slices_per_bar(self) -> int:
        return len(self.classes)


def slice_grid(meter: Meter) -> SliceGrid:
    """Eighth-note slices (sixteenths for x/16) and their metrical classes; compound x/8 meters beat in threes."""
    den, num = meter.denominator, meter.numerator
    slice_quarters = 0.5 if den <= 8 else 4.0 / den
    per_bar = round(meter.quarters_per_bar / slice_quarters)
    if den <= 4:
        per_beat = round((4.0 / den) / slice_quarters)
    else:
        per_beat = 3 if (num % 3 == 0 and num > 3) else 1
    beats = per_bar // per_beat
    classes = []
    for p in range(per_bar):
        if p == 0:
            classes.append(0)
        elif p % per_beat == 0:
            classes.append(1 if beats % 2 == 0 and beats >= 4 and p == per_bar // 2 else 2)
        else:
            classes.append(3 if per_beat == 4 and p % 2 == 0 else 4)
    return SliceGrid(meter, slice_quarters, tuple(classes))


@dataclass(frozen=True)
class RegionUnits:
    """The analysed region. ``audio [C, n]`` holds its last ``bars`` whole bars (ending on the seam);
    ``starts [S + 1]`` are slice boundaries in samples of ``audio`` (S = bars x slices per bar)."""

    audio: npt.NDArray[np.float32]
    sample_rate: int
    grid: BarGrid
    slices: SliceGrid
    bars: int
    starts: npt.NDArray[np.int64]
    onsets: npt.NDArray[np.int64]  # onset positions in samples of ``audio``
    features: Array  # [S, D], standardised
    onset_strength: Array  # [S], z-scored: how strong an attack the slice opens with
    gram: Array  # [S, S] inner products of the slices (the copy measure; decimated)
    notes: tuple[str, ...] = ()
    chroma: Array | None = None  # [S, 12] each slice's pitch-class energy, summing to 1 (the harmony of the prior)
    clarity: float = 0.0  # how clearly the slices hold a few pitch classes: 0 noise or drums, 1 chords and notes

    @property
    def count(self) -> int:
        return len(self.starts) - 1

    @property
    def positions(self) -> npt.NDArray[np.int64]:
        return np.arange(self.count) % self.slices.slices_per_bar

    @property
    def classes(self) -> npt.NDArray[np.int64]:
        return np.asarray(self.slices.classes, dtype=np.int64)[self.positions]


def analyse_region(
    audio: npt.NDArray[np.float32], sample_rate: int, grid: BarGrid, region_bars: int, audio_samples: int
) -> RegionUnits:
    """Cut ``audio [C, m]`` (the region up to the seam) into slices and describe each. ``audio_samples``: how much
    of the region is the file's own sound (a region rounded up to a bar line ends in zeros).

    :class:`BadInputError` when the region holds less than one bar of its own sound, or when its onsets clearly
    fit another tempo (see :func:`check_tempo`)."""
    bar_samples = grid.bar_seconds * sample_rate
    if audio_samples < bar_samples * (1 - 1 / 64):
        raise BadInputError(
            f"the region holds {audio_samples / sample_rate:.2f} s of audio, less than one bar "
            f"({grid.bar_seconds:.2f} s at {grid.tempo_bpm:g} BPM in {grid.meter}); the concatenative engine plays "
            "only sounds the region contains and needs at least one whole bar: select a longer region, or use the "
            "neural engine (--model segue-audio-small)"
        )
    notes: list[str] = []
    bars = min(region_bars, int(audio.shape[1] / bar_samples + 1e-6), MAX_BARS)
    if bars < region_bars:
        why = f"its last {MAX_BARS}" if region_bars > MAX_BARS else f"its {bars} whole bar(s)"
        notes.append(f"the continuation is made of {why} of the region's {region_bars} bars")
    length = grid.samples(bars, sample_rate)
    audio = np.ascontiguousarray(audio[:, audio.shape[1] - length :], dtype=np.float32)
    slices = slice_grid(grid.meter)
    per_bar = slices.slices_per_bar
    count = bars * per_bar
    starts = np.array([grid.samples(k / per_bar, sample_rate) for k in range(count + 1)], dtype=np.int64)
    mono = audio.mean(axis=0).astype(np.float64)
    onset_times = signal.detect_onsets(mono, sample_rate)
    onsets = np.round(onset_times * sample_rate).astype(np.int64)
    notes += check_tempo(onset_times, grid, audio.shape[1] / sample_rate)
    features, strength = _features(mono, sample_rate, starts, onsets)
    chroma = signal.beat_chromas(mono, sample_rate, length / count, count, end=length)
    return RegionUnits(
        audio, sample_rate, grid, slices, bars, starts, onsets, features, strength, _gram(audio, starts), tuple(notes),
        chroma, signal.chroma_clarity(chroma),
    )  # fmt: skip


def check_tempo(onsets_s: Array, grid: BarGrid, seconds: float) -> list[str]:
    """Notes on how the onsets sit on the 1/16 grid; :class:`BadInputError` when they clearly fit another tempo
    within +-12 % (the region was given the wrong tempo), or the same grid moved by a fraction of a sixteenth (the
    region does not start on a bar line)."""
    if len(onsets_s) < TEMPO_MIN_ONSETS:
        return [f"only {len(onsets_s)} clear onsets in the region: its slices are cut on the grid alone"]
    sixteenth = 60.0 / grid.tempo_bpm / 4
    share = signal.grid_share(onsets_s, sixteenth) or 0.0
    best_tempo, best_share = grid.tempo_bpm, share
    for factor in np.linspace(1 - TEMPO_SEARCH, 1 + TEMPO_SEARCH, 241):
        tempo = grid.tempo_bpm * float(factor)
        s = signal.grid_share(onsets_s, 60.0 / tempo / 4) or 0.0
        if s > best_share + 1e-9:
            best_tempo, best_share = tempo, s
    phase = np.mod(onsets_s, sixteenth)
    offset_ms = 1000 * np.where(phase > sixteenth / 2, phase - sixteenth, phase)
    if share < 0.6 and best_share >= max(0.75, share + 0.25) and abs(best_tempo / grid.tempo_bpm - 1) > 0.005:
        drift = float(np.polyfit(onsets_s, offset_ms, 1)[0]) * grid.bar_seconds if len(onsets_s) > 2 else 0.0
        raise BadInputError(
            f"the onsets disagree with the grid at {grid.tempo_bpm:g} BPM: only {share:.0%} of the region's "
            f"{len(onsets_s)} onsets lie within {signal.GRID_WINDOW_S * 1000:.0f} ms of its 1/16 grid (median distance "
            f"{float(np.median(np.abs(offset_ms))):.0f} ms, drifting {drift:+.0f} ms per bar), while "
            f"{best_share:.0%} fit {best_tempo:.1f} BPM: give the region's real tempo (--tempo {best_tempo:.1f}?) "
            f"and check that it starts on a bar line"
        )
    shifts = np.arange(64) * sixteenth / 64
    moved = [signal.grid_share(onsets_s, sixteenth, origin_s=float(d)) or 0.0 for d in shifts]
    best = int(np.argmax(moved))
    if share < 0.6 and moved[best] >= max(0.75, share + 0.25):
        rel = np.mod(onsets_s - shifts[best] + sixteenth / 2, sixteenth) - sixteenth / 2  # onsets around that grid
        shift = float(shifts[best] + np.median(rel[np.abs(rel) <= signal.GRID_WINDOW_S]))
        shift_ms = 1000 * (shift - sixteenth * round(shift / sixteenth))
        raise BadInputError(
            f"the region's onsets sit {shift_ms:+.0f} ms off its 1/16 grid at {grid.tempo_bpm:g} BPM: "
            f"{moved[best]:.0%} of its {len(onsets_s)} onsets fit a grid moved by that much, {share:.0%} the grid "
            "itself, whose bar lines are counted back from the region's end (the file's first sample taken as a "
            "bar line, unless the DAW gave the region's position): trim the region to start on a bar line, or give "
            "its position in the DAW"
        )
    if share < 0.5:
        return [
            f"{share:.0%} of the region's onsets lie on its 1/16 grid at {grid.tempo_bpm:g} BPM (swing or a "
            "free performance?): slices are cut on the grid, joins follow the onsets"
        ]
    return []


def _features(
    mono: Array, rate: int, starts: npt.NDArray[np.int64], onsets: npt.NDArray[np.int64]
) -> tuple[Array, Array]:
    """Per slice: MFCC mean, MFCC of its first quarter (the attack), chroma, loudness and onset strength,
    each group standardised over the region's slices; and the onset strength alone (z-scored)."""
    n_fft, hop = signal.frame_params(rate)
    power = signal.power_spectrogram(np.pad(mono, (n_fft // 2, n_fft // 2)), n_fft, hop)
    mel = np.log(power @ signal.mel_filterbank(n_fft, rate, N_MELS).T + 1e-10)
    k = np.arange(N_MELS)
    dct = np.cos(np.pi / N_MELS * (k[None, :] + 0.5) * np.arange(N_MFCC)[:, None])
    mfcc = mel @ dct.T
    chroma_map = _chroma_map(n_fft, rate)
    chroma = power @ chroma_map.T
    flux = np.concatenate([[0.0], np.maximum(0.0, np.diff(mel, axis=0)).mean(axis=1)])

    def frame_of(sample: int) -> int:
        return min(len(mel) - 1, max(0, round(sample / hop)))

    rows, strength = [], []
    window = round(0.03 * rate)
    for a, b in zip(starts[:-1].tolist(), starts[1:].tolist(), strict=True):
        fa, fb = frame_of(a), max(frame_of(a) + 1, frame_of(b))
        fq = max(fa + 1, frame_of(a + (b - a) // 4))
        c = chroma[fa:fb].mean(axis=0)
        c = c / (c.sum() + 1e-12)
        seg = mono[a:b]
        loud = 10 * math.log10(float(np.mean(seg**2)) + 1e-12) if len(seg) else -120.0
        near = onsets[(onsets >= a - window) & (onsets < a + window)]
        attack = float(flux[fa : min(len(flux), fa + 4)].max()) + (0.5 if len(near) else 0.0)
        rows.append((mfcc[fa:fb].mean(axis=0), mfcc[fa:fq].mean(axis=0), c, [loud], [attack]))
        strength.append(attack)
    groups = [np.array([r[g] for r in rows], dtype=np.float64) for g in range(5)]
    weights = (1.0, 1.0, 0.7, 1.0, 1.0)
    scaled = [w * _standardise(g) / math.sqrt(g.shape[1]) for g, w in zip(groups, weights, strict=True)]
    return np.concatenate(scaled, axis=1), _standardise(np.array(strength)[:, None])[:, 0]


def _standardise(x: Array) -> Array:
    return np.asarray((x - x.mean(axis=0)) / (x.std(axis=0) + 1e-9))


def _chroma_map(n_fft: int, rate: int) -> Array:
    freqs = np.fft.rfftfreq(n_fft, 1.0 / rate)
    band = (freqs >= 55.0) & (freqs <= 4000.0)
    out = np.zeros((12, len(freqs)))
    pcs = (np.round(12 * np.log2(np.maximum(freqs[band], 1.0) / 440.0)).astype(int) + 9) % 12
    out[pcs, np.flatnonzero(band)] = 1.0
    return out


def _gram(audio: npt.NDArray[np.float32], starts: npt.NDArray[np.int64]) -> Array:
    """Inner products of every pair of slices (channels together; decimated to about GRAM_SAMPLES per slice)."""
    length = int(np.min(np.diff(starts)))
    step = max(1, length // GRAM_SAMPLES)
    rows = np.stack([audio[:, a : a + length : step].ravel() for a in starts[:-1].tolist()]).astype(np.float64)
    return np.asarray(rows @ rows.T * step)

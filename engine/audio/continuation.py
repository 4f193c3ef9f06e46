"""Continue an audio region on the bar grid: prompt -> codes -> K sampled variants -> audio, exactly N bars.

The flow (one call per job):

1. **Bar lock** (:func:`locate_region`): the tempo and meter come from the DAW (or ``--tempo``/``--meter``); the
   file's first sample is a bar line. The region ends on the first bar line at or after the end of the audio (an
   end within 1/64 bar after a bar line is that bar line); the continuation starts there (the *seam*).
2. **Prompt** (:func:`plan_prompt`): the region's last whole bars that fit the prior's context, mixed to mono,
   resampled to the codec's rate (soxr) and encoded. The prompt ends exactly on the seam; it starts on a bar line
   (to within one codec frame, rounded outwards). A region longer than the context is primed on its last bars,
   and the result's notes say so.
3. **Sampling** (:func:`engine.audio.sampling.sample_frames`): K variants in one batch, windowed past the context.
4. **Audio**: the last prompt frames and the new frames are decoded together (so the decoder sees the seam in
   context), resampled to the region's rate, cut at the seam, and exactly ``round(N x bar x rate)`` samples kept.
5. **Loudness** (:func:`match_loudness`): per-channel gains that keep the region's balance between channels and
   give the continuation the BS.1770 integrated loudness of the prompt's bars; lowered if it would clip.
6. **Join** (:func:`join_at_seam`): the decoded prompt frames just before the seam tell how far the codec's
   rendering of the region is from the region itself at its last sample; that difference is added to the start of
   the continuation and faded out over :data:`SEAM_FADE_SECONDS` (a raised cosine), so the region's last sample
   and the continuation's first one are as close as two neighbouring samples of the continuation: no click,
   whether the DAW plays ``continuation.wav`` after the region or you listen to ``full.wav``. The last
   :data:`END_FADE_SECONDS` fade out.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import torch

from engine.api import CancelToken, Meter
from engine.audio.audio_io import Audio, AudioInfo, check_audio, read_audio, resample, to_mono
from engine.audio.prior import AudioModel
from engine.audio.sampling import Draws, ProgressFn, SamplingOptions, max_prompt_frames, sample_frames
from engine.errors import BadInputError
from engine.evaluate.loudness import SILENT_LUFS, integrated_loudness

log = logging.getLogger(__name__)

BAR_TOLERANCE = 1 / 64  # of a bar: audio ending this close after a bar line ends on that bar line
SEAM_FADE_SECONDS = 0.010
END_FADE_SECONDS = 0.005
OVERLAP_SECONDS = 0.1  # decoded prompt audio before the seam
MAX_GAIN_DB = 30.0
PEAK_CEILING = 0.98
EXTRA_FRAMES = 2  # sampled beyond N bars so the resampler's edge never reaches the kept samples


@dataclass(frozen=True)
class BarGrid:
    """Constant tempo and meter from the region's start; sample positions of bar lines at any rate."""

    tempo_bpm: float
    meter: Meter

    @property
    def bar_seconds(self) -> float:
        return self.meter.quarters_per_bar * 60.0 / self.tempo_bpm

    @property
    def beat_seconds(self) -> float:
        return 60.0 / self.tempo_bpm * 4.0 / self.meter.denominator

    def samples(self, bars: float, sample_rate: int) -> int:
        """Samples in ``bars`` bars at ``sample_rate`` (rounded to the nearest sample)."""
        return round(bars * self.bar_seconds * sample_rate)


@dataclass(frozen=True)
class RegionAudio:
    """The part of the region the audio engine uses: ``audio [C, n]`` holds samples ``[seam - n, seam)`` of the
    file at its own rate (zeros past the end of the file, when the region was rounded up to a bar line)."""

    info: AudioInfo
    grid: BarGrid
    bars: int  # the region's length in bars: the continuation starts on the bar line after bar `bars`
    seam_sample: int  # that bar line, in samples of the file
    audio: Audio
    notes: tuple[str, ...] = ()

    @property
    def sample_rate(self) -> int:
        return self.info.sample_rate

    @property
    def channels(self) -> int:
        return self.info.channels

    @property
    def start_sample(self) -> int:
        return self.seam_sample - int(self.audio.shape[1])

    @property
    def seam_seconds(self) -> float:
        return self.seam_sample / self.sample_rate


def locate_region(
    info: AudioInfo,
    grid: BarGrid,
    length_beats: float | None = None,
    seam_seconds: float | None = None,
    start_beats: float | None = None,
) -> tuple[int, int, tuple[str, ...]]:
    """(bars, seam sample, notes): where the region ends on the bar grid.

    ``seam_seconds`` (from a MIDI file of the same region, whose tempo map knows best) or ``length_beats`` (from
    the DAW) override the file's length. ``start_beats`` (the region's place on the DAW's timeline, bar lines at
    multiples of a bar from 0) moves the grid when the region does not start on a bar line; otherwise the file's
    first sample is a bar line.
    """
    rate = info.sample_rate
    beat_samples = grid.beat_seconds * rate
    if info.frames < beat_samples:
        raise BadInputError(
            f"{info.path} is only {info.frames} sample(s) long ({1000 * info.seconds:.2f} ms); a region must hold at "
            f"least one beat ({grid.beat_seconds:.3f} s at {grid.tempo_bpm:g} BPM in {grid.meter})"
        )
    notes: list[str] = []
    if seam_seconds is not None:
        bars = max(1, round(seam_seconds / grid.bar_seconds))
        return bars, round(seam_seconds * rate), ()
    bar_beats = grid.meter.quarters_per_bar
    if length_beats is not None:
        length = length_beats / bar_beats
        source = f"the region's length ({length_beats:g} beats)"
    else:
        length = info.frames / (grid.bar_seconds * rate)
        source = f"the audio ({info.seconds:.3f} s)"
    offset = 0.0  # bars from the bar line before the region's start to its start
    if start_beats is not None:
        offset = (start_beats / bar_beats) % 1.0
        if min(offset, 1.0 - offset) <= BAR_TOLERANCE:
            offset = 0.0
        else:
            notes.append(
                f"the region starts {offset * bar_beats:.2f} beats into a bar: the bar lines are the DAW's "
                f"(from beat {start_beats:g})"
            )
    end = offset + length  # in bars from the bar line before the start
    bars = max(1, math.ceil(end - BAR_TOLERANCE))
    if bars - end > BAR_TOLERANCE:
        notes.append(
            f"{source} ends {(bars - end) * bar_beats:.2f} beats before a bar line: the region is taken as "
            f"{bars} bars and the continuation starts on the bar line after it"
        )
    return bars, grid.samples(bars - offset, rate), tuple(notes)


def read_region_tail(info: AudioInfo, grid: BarGrid, bars: int, seam_sample: int, read_samples: int) -> RegionAudio:
    """Read the last ``read_samples`` before the seam (zeros past the end of the file) and check them."""
    start = max(0, seam_sample - read_samples)
    stop = min(seam_sample, info.frames)
    audio = read_audio(info.path, start, stop, info) if stop > start else np.zeros((info.channels, 0), np.float32)
    if seam_sample - start > audio.shape[1]:
        audio = np.concatenate(
            [audio, np.zeros((info.channels, seam_sample - start - audio.shape[1]), np.float32)], axis=1
        )
    checked = check_audio(audio, info.path, info.sample_rate, start / info.sample_rate)
    notes = checked.notes
    if start > 0:
        notes += (f"the audio is long ({info.seconds:.0f} s): only its last {read_samples / info.sample_rate:.1f} s "
                  "were read",)  # fmt: skip
    return RegionAudio(info, grid, bars, seam_sample, np.ascontiguousarray(audio, dtype=np.float32), notes)


@dataclass(frozen=True)
class PromptPlan:
    frames: int  # codec frames of the prompt, ending on the seam
    bars: int  # whole bars it holds (0: less than one bar fits the context)
    notes: tuple[str, ...] = ()


def plan_prompt(model: AudioModel, grid: BarGrid, region_bars: int, options: SamplingOptions) -> PromptPlan:
    """The region's last whole bars that fit the prompt budget of the prior's context."""
    codec = model.codec
    limit = max_prompt_frames(model.prior.config.block_size, options)
    bar_frames = grid.bar_seconds * codec.sample_rate / codec.hop_length
    bars = min(region_bars, int(limit / bar_frames + 1e-9))
    while bars > 0 and math.ceil(bars * bar_frames - 1e-6) > limit:
        bars -= 1
    if bars == 0:
        note = (
            f"one bar ({grid.bar_seconds:.1f} s) is longer than the audio model's context ({limit} frames, "
            f"{limit / codec.frame_rate:.1f} s): primed on the region's last {limit / codec.frame_rate:.1f} s"
        )
        return PromptPlan(limit, 0, (note,))
    notes: tuple[str, ...] = ()
    if bars < region_bars:
        notes = (
            f"the region ({region_bars} bars) is longer than the audio model's context: primed on its last "
            f"{bars} bars ({bars * grid.bar_seconds:.1f} s)",
        )
    return PromptPlan(math.ceil(bars * bar_frames - 1e-6), bars, notes)


def prompt_samples_needed(model: AudioModel, plan: PromptPlan, sample_rate: int) -> int:
    """Region samples before the seam that the prompt is made of (with a margin for the resampler)."""
    codec = model.codec
    return math.ceil(plan.frames * codec.hop_length * sample_rate / codec.sample_rate) + sample_rate // 50 + 64


def encode_prompt(model: AudioModel, region: RegionAudio, plan: PromptPlan) -> torch.Tensor:
    """The prompt's codes ``[Q, P]``: the region's last ``P * hop`` codec-rate samples up to the seam, in mono."""
    codec = model.codec
    need = prompt_samples_needed(model, plan, region.sample_rate)
    mono = to_mono(region.audio[:, -need:])
    at_codec_rate = resample(mono, region.sample_rate, codec.sample_rate)
    length = plan.frames * codec.hop_length
    if at_codec_rate.shape[0] < length:  # the region is shorter than the prompt: silence before it
        at_codec_rate = np.concatenate([np.zeros(length - at_codec_rate.shape[0], np.float32), at_codec_rate])
    wav = torch.from_numpy(np.ascontiguousarray(at_codec_rate[-length:]))[None, None]
    with torch.inference_mode():
        codes = codec.encode(wav)
    return codes[0, :, : plan.frames].cpu()


def match_loudness(
    mono: npt.NDArray[np.float32], reference: Audio, sample_rate: int, peak_ceiling: float | None = PEAK_CEILING
) -> tuple[npt.NDArray[np.float64], str]:
    """Per-channel gains for a mono signal so that it has ``reference``'s loudness ``[C, m]``, and a note.

    The channels keep the reference's balance (each gets the reference channel's RMS); the whole is then set to
    the reference's BS.1770 integrated loudness (:mod:`engine.evaluate.loudness`). The gain is capped at
    :data:`MAX_GAIN_DB` and, unless ``peak_ceiling`` is None (the caller limits peaks itself, see
    :func:`limit_peaks`), lowered so the peak stays under ``peak_ceiling``.
    """
    out_rms = float(np.sqrt(np.mean(np.square(mono, dtype=np.float64)))) if mono.size else 0.0
    ref_rms = np.sqrt(np.mean(np.square(reference, dtype=np.float64), axis=1))
    if out_rms < 1e-7 or float(ref_rms.max(initial=0.0)) < 1e-9:
        return np.ones(reference.shape[0]), "silent"
    gains = ref_rms / out_rms
    target = integrated_loudness(reference, sample_rate)
    ours = integrated_loudness(gains[:, None] * mono[None, :], sample_rate)
    if target > SILENT_LUFS and ours > SILENT_LUFS:
        gains *= 10 ** ((target - ours) / 20)
    note = ""
    top = float(gains.max())
    cap = 10 ** (MAX_GAIN_DB / 20)
    if top > cap:
        gains *= cap / top
        note = f"quieter than the region (its gain was capped at +{MAX_GAIN_DB:.0f} dB)"
    peak = float(np.max(np.abs(mono), initial=0.0)) * float(gains.max())
    if peak_ceiling is not None and peak > peak_ceiling:
        gains *= peak_ceiling / peak
        note = f"{20 * math.log10(peak / peak_ceiling):.1f} dB below the region's loudness, to avoid clipping"
    return gains, note


LIMITER_BLOCK_SECONDS = 0.0025  # the limiter's gain moves in steps of this, looking one step ahead
LIMITER_RELEASE_SECONDS = 0.05  # time for its gain to recover most of the way to 1 after a peak
MAX_LIMIT_DB = 12.0  # beyond this much peak reduction the continuation is made quieter instead


def limit_peaks(audio: npt.NDArray[np.float64], sample_rate: int, ceiling: float = PEAK_CEILING) -> tuple[
        npt.NDArray[np.float64], float]:  # fmt: skip
    """A look-ahead peak limiter: ``audio [C, n]`` with every sample within ``ceiling``, and the largest gain
    reduction in dB. One gain for all channels (their balance is kept); it falls ahead of a peak (one block of
    :data:`LIMITER_BLOCK_SECONDS`), ramps linearly between block centres and recovers exponentially
    (:data:`LIMITER_RELEASE_SECONDS`), so only the peaks are turned down, not the whole continuation."""
    n = audio.shape[1]
    peak = np.abs(audio).max(axis=0) if n else np.zeros(0)
    if n == 0 or float(peak.max()) <= ceiling:
        return audio, 0.0
    block = max(1, round(LIMITER_BLOCK_SECONDS * sample_rate))
    blocks = math.ceil(n / block)
    padded = np.concatenate([peak, np.zeros(blocks * block - n)])
    need = np.minimum(1.0, ceiling / np.maximum(padded.reshape(blocks, block).max(axis=1), 1e-12))
    ahead = need.copy()  # the gain of a block also covers its neighbours' peaks (the ramps cross them)
    ahead[1:] = np.minimum(ahead[1:], need[:-1])
    ahead[:-1] = np.minimum(ahead[:-1], need[1:])
    recover = 1.0 - math.exp(-block / (LIMITER_RELEASE_SECONDS * sample_rate))
    gain = np.empty(blocks)
    level = 1.0
    for i, g in enumerate(ahead.tolist()):  # release: recover towards 1, never above what a block allows
        level = min(g, level + (1.0 - level) * recover)
        gain[i] = level
    centres = (np.arange(blocks) + 0.5) * block
    curve = np.interp(np.arange(n), centres, gain)
    return audio * curve[None, :], float(-20 * math.log10(max(1e-12, float(gain.min()))))


def loudness_db(audio: Audio, sample_rate: int) -> float:
    """The loudness :func:`match_loudness` matches: BS.1770 integrated loudness in LUFS. ``audio [C, n]``."""
    return integrated_loudness(audio, sample_rate)


def join_at_seam(
    continuation: npt.NDArray[np.float64],
    decoded_before_seam: npt.NDArray[np.float64],
    region_last: Audio,
    sample_rate: int,
) -> npt.NDArray[np.float64]:
    """Carry the difference between the region's last sample and its decoded rendering into the continuation,
    fading it out over :data:`SEAM_FADE_SECONDS`. ``continuation [C, n]``, the others ``[C]``."""
    length = min(continuation.shape[1], max(1, round(SEAM_FADE_SECONDS * sample_rate)))
    fade = 0.5 * (1.0 + np.cos(np.pi * np.arange(length) / length))
    offset = region_last.astype(np.float64) - decoded_before_seam
    out = continuation.copy()
    out[:, :length] += offset[:, None] * fade[None, :]
    return out


def fade_out(audio: npt.NDArray[np.float64], sample_rate: int) -> npt.NDArray[np.float64]:
    length = min(audio.shape[1], max(1, round(END_FADE_SECONDS * sample_rate)))
    out = audio.copy()
    out[:, -length:] *= 0.5 * (1.0 + np.cos(np.pi * (np.arange(length) + 1) / length))
    return out


def _loud_without_clipping(
    audio: npt.NDArray[np.float64], seam: int, target: float, sample_rate: int
) -> tuple[npt.NDArray[np.float64], float]:
    """``audio [C, n]`` (decoded lead-in, then the continuation from ``seam``) at loudness ``target`` with its peaks
    limited (:func:`limit_peaks`); make-up gain after limiting, twice at most. When that would take more than
    :data:`MAX_LIMIT_DB` of limiting, the whole is turned down instead (and is quieter than the region)."""
    if target <= SILENT_LUFS or not np.any(audio[:, seam:]):
        return audio, 0.0
    limited, reduction = limit_peaks(audio, sample_rate)
    for _ in range(2):
        ours = loudness_db(limited[:, seam:].astype(np.float32), sample_rate)
        if ours <= SILENT_LUFS or abs(target - ours) < 0.1:
            break
        audio = audio * 10 ** ((target - ours) / 20)
        limited, reduction = limit_peaks(audio, sample_rate)
    if reduction > MAX_LIMIT_DB:
        limited, _ = limit_peaks(audio * 10 ** (-(reduction - MAX_LIMIT_DB) / 20), sample_rate)
        reduction = MAX_LIMIT_DB
    return limited, reduction


@dataclass(frozen=True)
class AudioContinuation:
    variants: tuple[Audio, ...]  # each [C, N bars] at the region's rate, starting on the seam
    prompt: PromptPlan
    notes: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)


def continue_audio(
    model: AudioModel,
    region: RegionAudio,
    bars: int,
    draws: Draws,
    options: SamplingOptions | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> AudioContinuation:
    """Sample ``len(draws.seeds)`` continuations of ``region``, each exactly ``bars`` bars at the region's rate."""
    options = options or SamplingOptions()
    codec = model.codec
    rate, grid = region.sample_rate, region.grid
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    plan = plan_prompt(model, grid, region.bars, options)
    prompt = encode_prompt(model, region, plan)
    timings["encode_seconds"] = time.perf_counter() - t0

    out_samples = grid.samples(bars, rate)
    frames = math.ceil(out_samples * codec.sample_rate / rate / codec.hop_length) + EXTRA_FRAMES
    t0 = time.perf_counter()
    codes = sample_frames(model.prior, prompt, frames, draws, options, progress, cancel)
    timings["sample_seconds"] = time.perf_counter() - t0
    timings["frames"] = float(frames)
    timings["steps_per_second"] = (frames + codec.n_codebooks - 1) / max(1e-9, timings["sample_seconds"])

    t0 = time.perf_counter()
    overlap = min(plan.frames, max(2, math.ceil(OVERLAP_SECONDS * codec.frame_rate)))
    lead = prompt[:, -overlap:][None].repeat(len(draws.seeds), 1, 1)
    with torch.inference_mode():
        decoded = codec.decode(torch.cat([lead, codes], dim=2))[:, 0].float().cpu().numpy()  # [K, samples]
    decoded = resample(np.ascontiguousarray(decoded), codec.sample_rate, rate)  # K variants as channels
    seam = round(overlap * codec.hop_length * rate / codec.sample_rate)
    reference = region.audio[:, -min(region.audio.shape[1], max(1, grid.samples(max(1, plan.bars), rate))) :]
    region_last = region.audio[:, -1]
    variants: list[Audio] = []
    notes: list[str] = []
    target = loudness_db(reference, rate)
    for index, row in enumerate(decoded.astype(np.float64), start=1):
        row = row[: seam + out_samples]
        if row.shape[0] < seam + out_samples:  # never expected: EXTRA_FRAMES covers the resampler's rounding
            row = np.concatenate([row, np.zeros(seam + out_samples - row.shape[0])])
        body = row[seam:]
        gains, note = match_loudness(body.astype(np.float32), reference, rate, peak_ceiling=None)
        if note == "silent":
            notes.append(f"variant {index} is silent: the model returned silence")
        elif note:
            notes.append(f"variant {index}: {note}")
        audio, reduction = _loud_without_clipping(gains[:, None] * row[None, :], seam, target, rate)
        if reduction > 0.5:
            notes.append(f"variant {index}: its peaks were limited by up to {reduction:.1f} dB to keep the region's "
                         "loudness without clipping")  # fmt: skip
        quieter = target - loudness_db(audio[:, seam:].astype(np.float32), rate)
        if note != "silent" and quieter > 0.5:
            notes.append(f"variant {index}: {quieter:.1f} dB below the region's loudness, to avoid clipping")
        joined = join_at_seam(audio[:, seam:], audio[:, seam - 1], region_last, rate)
        variants.append(np.ascontiguousarray(fade_out(joined, rate), dtype=np.float32))
    timings["decode_seconds"] = time.perf_counter() - t0
    return AudioContinuation(tuple(variants), plan, plan.notes + tuple(notes), timings)

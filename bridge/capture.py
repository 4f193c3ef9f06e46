"""Capture the DAW's output while its transport plays a region, trimmed to the bar grid (for DAWs that cannot bounce).

Pure core, thin adapter. :class:`CaptureSession` has no threads and no audio API: it is fed audio blocks stamped
with a frame counter and clock events stamped on the same frame counter, and :meth:`CaptureSession.finish` cuts
the audio from the first bar line at/after the transport start to the last whole bar before the stop (or after
``max_bars``). :func:`fit_tempo_map` turns the frames of the individual MIDI clocks of a take into a tempo map;
:class:`StampMap` turns the timestamps of MIDI messages into capture frames. :class:`SoundDeviceRecorder` opens a
sounddevice input stream and hands blocks from the callback thread to a queue; the owner thread drains it
(:meth:`SoundDeviceRecorder.pump`). The take itself (clock, device, file, progress, cancel) is run by
:mod:`bridge.capture_take`.

Latency sign convention: ``latency_frames`` is the audio frame at which a musical position is heard in the capture
minus the frame at which the clock reports that position. Positive: the audio arrives *later* than the clock says
(buffering between the DAW's output and our input). Negative: the audio arrives *earlier*. Ardour 7 sends its MIDI
clock compensated for its playback latency, so its master output reaches JACK 2048 frames before the clock: use
``latency_frames=-2048`` for Ardour (see NOTES.md). ``jack_midi_clock`` and a transport-aware ``jack_metro`` need 0.
Bars count from song position 0 with one meter throughout; tempo may change during the capture (piecewise constant).

Timing model. MIDI clock is 24 clocks per quarter note; the first clock after Start/Continue is the start position.
The tempo of a take is not the clock follower's running estimate but a least-squares line through the frames of
*all* the clocks of the take (hundreds of them), so the noise of single timestamps averages out; the tempo is then
snapped to the coarsest round value (1, 0.5, 0.1, 0.01, 0.001 BPM) that lies within 4 standard errors of the fit
(at most 0.05 BPM away), because DAW tempos are typed-in numbers: a 120 BPM take is then exactly 96000 frames per bar
at 48 kHz instead of 95999.6. A tempo change shows as clocks that leave the line on one side for several clocks in a
row; the map then starts a new segment there.

Timestamps. mido stamps nothing, so the clock input stamps each message with ``time.perf_counter()`` and the
recorder stamps each audio callback the same way. On JACK both run in the same process cycle: a MIDI message and
the audio block of its cycle are stamped within a fraction of a millisecond of each other (measured at 256-frame
periods: typically 0.1-0.6 ms, on a loaded machine too), so :class:`StampMap` maps a message to the middle of the
block of its cycle (the true offset inside the period is unknown; over a take the error is about gcd(clock period,
JACK period) / 2 frames: 4 at 120 BPM / 256 frames). Audio lost inside a take is found on PortAudio's device
timeline (:func:`find_audio_gaps`), not from xrun flags alone: JACK reports every client's xrun to every client.
Elsewhere (a sound card and a MIDI driver with their own timing) stamps are continuous and a message maps to the
frame that was "now" at its stamp, interpolated from the callbacks. The mode is detected from the stamps of the take.
"""

from __future__ import annotations

import bisect
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bridge.clock import PPQN, ClockState
from engine import api
from engine.errors import BadInputError

log = logging.getLogger(__name__)

_EPS_BEATS = 1e-6  # a transport start within this of a bar line counts as on it
SNAP_GRIDS_BPM = (1.0, 0.5, 0.1, 0.01, 0.001)
SNAP_SIGMAS = 4.0
SNAP_MAX_BPM = 0.05
MIN_SEGMENT_CLOCKS = 24  # one beat: a tempo segment is fitted on at least this many clocks before it may end
CHANGE_CLOCKS = 6  # clocks in a row off the line on one side: a tempo change
QUANTIZED_FRACTION = 0.15  # stamps typically this close to a callback (fraction of a block) share its cycle (JACK)


@dataclass(frozen=True)
class Capture:
    """The trimmed capture: ``audio`` float32 ``[channels, samples]`` starting on the bar line ``start_beats``."""

    audio: npt.NDArray[np.float32]
    sample_rate_hz: int
    start_beats: float
    length_bars: int
    beats_per_bar: float
    tempo_bpm: float = 0.0  # at the start of the take (the first segment); 0.0 if unknown
    tempo_changes: int = 0  # how many times the tempo changed inside the take
    start_frame: int = 0  # capture frame of the first sample (audio frame, latency included)

    @property
    def length_beats(self) -> float:
        return self.length_bars * self.beats_per_bar


@dataclass(frozen=True)
class TempoSegment:
    """From clock frame ``frame`` (at song position ``beats``, quarter notes) on, the tempo is ``tempo_bpm``."""

    frame: float
    beats: float
    tempo_bpm: float


# -- tempo from the clocks of a take -------------------------------------------------------------------------------


def snap_tempo(tempo_bpm: float, error_bpm: float) -> float:
    """The coarsest round tempo of :data:`SNAP_GRIDS_BPM` within ``error_bpm`` of ``tempo_bpm``, or ``tempo_bpm``."""
    allowed = min(max(error_bpm, 1e-9 * tempo_bpm), SNAP_MAX_BPM)
    for grid in SNAP_GRIDS_BPM:
        snapped = round(tempo_bpm / grid) * grid
        if snapped > 0 and abs(snapped - tempo_bpm) <= allowed:
            return round(snapped, 6)
    return tempo_bpm


class _Line:
    """Incremental least squares ``frame = a + b * index``."""

    def __init__(self) -> None:
        self.n = 0
        self.sx = self.sy = self.sxx = self.sxy = 0.0

    def add(self, x: float, y: float) -> None:
        self.n += 1
        self.sx += x
        self.sy += y
        self.sxx += x * x
        self.sxy += x * y

    def fit(self) -> tuple[float, float] | None:
        d = self.n * self.sxx - self.sx * self.sx
        if self.n < 2 or d <= 0:
            return None
        b = (self.n * self.sxy - self.sx * self.sy) / d
        return (self.sy - b * self.sx) / self.n, b


def _robust_fit(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], tolerance: float) -> tuple[float, float, float]:
    """Least squares ``y = a + b x`` without the points further than ``tolerance`` from a first fit.
    Returns (a, b, standard error of b)."""
    keep = np.ones(len(x), dtype=bool)
    for _ in range(2):
        b, a = np.polyfit(x[keep], y[keep], 1)
        residual = y - (a + b * x)
        new_keep = np.abs(residual) <= max(tolerance, 1e-9)
        if new_keep.sum() < 2 or np.array_equal(new_keep, keep):
            break
        keep = new_keep
    b, a = np.polyfit(x[keep], y[keep], 1)
    n = int(keep.sum())
    residual = y[keep] - (a + b * x[keep])
    sxx = float(np.sum((x[keep] - x[keep].mean()) ** 2))
    se = math.sqrt(float(np.sum(residual**2)) / max(n - 2, 1) / sxx) if sxx > 0 else math.inf
    return float(a), float(b), se


def fit_tempo_map(
    clock_frames: Sequence[float],
    start_beats: float,
    sample_rate_hz: int,
    *,
    tolerance_frames: float | None = None,
    quantum_frames: float | None = None,
    snap: bool = True,
) -> list[TempoSegment]:
    """The tempo map of a take from the frames of its consecutive MIDI clocks.

    ``clock_frames[0]`` is the first clock after Start/Continue (song position ``start_beats``); clock ``i`` is at
    ``start_beats + i / 24``. ``tolerance_frames``: how far a clock may land off the line before it counts towards a
    tempo change (default: 4 ms, or more when the frames are coarse). :class:`BadInputError` with fewer than 2.

    ``quantum_frames``: the frames are quantized to blocks of this size (JACK periods: each clock is known only to
    lie in its period, see :class:`StampMap`). Then a single tempo through the whole take is tried first, and each
    segment is fitted with :func:`_quantized_fit` (least squares is misled by quantization, see there).
    """
    frames = np.asarray(clock_frames, dtype=np.float64)
    if len(frames) < 2:
        raise BadInputError(
            "fewer than two MIDI clocks arrived during the take, so its tempo is unknown; "
            "is the DAW sending MIDI clock (not only Start/Stop)?"
        )
    tol = tolerance_frames if tolerance_frames is not None else 0.004 * sample_rate_hz
    quantum = quantum_frames if quantum_frames is not None and quantum_frames > 0 else None
    one_line = quantum is not None and _quantized_fit(np.arange(len(frames), dtype=np.float64), frames, quantum)
    if one_line:
        positions, starts = np.arange(len(frames), dtype=np.float64), [0]
    else:
        positions, starts = _positions_and_segments(frames, tol)
    segments: list[TempoSegment] = []
    for k, first in enumerate(starts):
        last = starts[k + 1] if k + 1 < len(starts) else len(frames)
        x, y = positions[first:last], frames[first:last]
        if len(x) < 2:  # a lone clock at the very end: it belongs to the previous tempo
            continue
        quantized = _quantized_fit(x, y, quantum) if quantum is not None and len(x) >= MIN_SEGMENT_CLOCKS else None
        a, b, se = quantized.line if quantized else _robust_fit(x, y, tol)
        if not (math.isfinite(b) and b > 0):
            raise BadInputError("the MIDI clocks of the take do not advance; is the DAW's transport really playing?")
        tempo = 60.0 * sample_rate_hz / (PPQN * b)
        if snap and quantized:
            # every tempo in the range fits every clock within its quantum, the true one among them
            slow, fast = (60.0 * sample_rate_hz / (PPQN * s) for s in (quantized.highest, quantized.lowest))
            tempo = snap_tempo_within(tempo, slow, fast)
        elif snap and math.isfinite(se):
            tempo = snap_tempo(tempo, SNAP_SIGMAS * tempo * se / b)
        if snap:
            b = 60.0 * sample_rate_hz / (PPQN * tempo)
            residual = y - b * x
            if quantized:
                a = float((residual.max() + residual.min()) / 2)
            else:
                inliers = np.abs(residual - np.median(residual)) <= max(tol, 1e-9)
                a = float(np.mean(residual[inliers])) if inliers.any() else float(np.median(residual))
        beats = start_beats + positions[first] / PPQN
        frame = a + b * positions[first]
        if snap and segments and segments[-1].tempo_bpm == tempo:
            step = frame - (segments[-1].frame + (beats - segments[-1].beats) * b * PPQN)
            raise BadInputError(
                f"the MIDI clock and the audio went out of step by {step:+.0f} frames at beat {beats:g} while the "
                f"tempo stayed {tempo:g} BPM: a dropout lost audio or MIDI clock messages; play the region again"
            )
        segments.append(TempoSegment(frame, beats, tempo))
    if len(segments) > 1:
        log.info("tempo map of the take: %s", ", ".join(f"{s.tempo_bpm:g} BPM at {s.beats:g}" for s in segments))
    return segments


def snap_tempo_within(tempo_bpm: float, slowest_bpm: float, fastest_bpm: float) -> float:
    """The coarsest round tempo of :data:`SNAP_GRIDS_BPM` in ``[slowest_bpm, fastest_bpm]`` (the closest to
    ``tempo_bpm`` of that grid), or ``tempo_bpm`` when none is."""
    for grid in SNAP_GRIDS_BPM:
        candidates = [k * grid for k in range(math.ceil(slowest_bpm / grid), math.floor(fastest_bpm / grid) + 1)]
        if candidates:
            closest: float = min(candidates, key=lambda t: abs(t - tempo_bpm))
            return round(closest, 6)
    return tempo_bpm


@dataclass(frozen=True)
class _QuantizedLine:
    line: tuple[float, float, float]  # a, b, a standard error of b (a quarter of the range of slopes that fit)
    lowest: float  # the smallest and largest slopes that fit every clock within its quantum
    highest: float


def _quantized_fit(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], quantum: float) -> _QuantizedLine | None:
    """A line ``y = a + b x`` through clocks whose frames ``y`` are only known to a ``quantum`` (each clock lies
    within half a quantum of its frame): the middle of the slopes that fit every clock, or None when even the best
    line leaves a spread of residuals over ``1.1 x quantum`` (a tempo change or a dropout: not one line).

    Why not least squares: with clocks slightly closer together than the JACK period (1000 frames at 120 BPM /
    48 kHz in 1024-frame periods) dozens of clocks in a row land one period apart before two share one period;
    the residuals form a sawtooth as tall as a period, and a least-squares line over a bar or two is tilted by it
    (119.8 BPM for 120 over one bar; an incremental line through the first beat reads the period itself, 117.19
    BPM, as seen with Ardour). The spread of the residuals is a convex function of the slope: its minimum is found
    by a ternary search, the range of slopes that fit by bisection on each side.
    """
    b_ls, _ = np.polyfit(x, y, 1)
    if not (math.isfinite(b_ls) and b_ls > 0):
        return None

    def spread(b: float) -> float:
        r = y - b * x
        return float(r.max() - r.min())

    lo, hi = 0.8 * float(b_ls), 1.25 * float(b_ls)
    for _ in range(100):
        m1, m2 = lo + (hi - lo) / 3, hi - (hi - lo) / 3
        if spread(m1) <= spread(m2):
            hi = m2
        else:
            lo = m1
    best_b = (lo + hi) / 2
    best = spread(best_b)
    if best > 1.1 * quantum:
        return None
    limit = max(quantum, best) + 0.02 * quantum  # a little more when jitter spread the clocks beyond a quantum

    def edge(outside: float) -> float:
        inside = float(best_b)
        for _ in range(60):
            mid = (inside + outside) / 2
            if spread(mid) <= limit:
                inside = mid
            else:
                outside = mid
        return inside

    lowest, highest = edge(0.8 * b_ls), edge(1.25 * b_ls)
    b = (lowest + highest) / 2
    r = y - b * x
    return _QuantizedLine((float((r.max() + r.min()) / 2), float(b), (highest - lowest) / 4), lowest, highest)


def _positions_and_segments(frames: npt.NDArray[np.float64], tol: float) -> tuple[npt.NDArray[np.float64], list[int]]:
    """The position of each clock (in clocks since the first) and the indices where a new tempo begins (0 first).

    Clocks leaving the line on one side for :data:`CHANGE_CLOCKS` clocks in a row are either a *hole* (they all sit
    a whole number of clock periods late: MIDI messages were lost, e.g. in a JACK xrun; the positions after it are
    shifted by that number) or a tempo change (a new segment starts at the first of them).
    """
    positions = np.arange(len(frames), dtype=np.float64)
    starts = [0]
    shift = 0
    line = _Line()
    run: list[tuple[int, float]] = []  # consecutive outliers (index, residual)
    i = 0
    while i < len(frames):
        position = i + shift
        positions[i] = position
        fit = line.fit() if line.n >= MIN_SEGMENT_CLOCKS else None
        if fit is None:
            line.add(position, frames[i])
            i += 1
            continue
        residual = frames[i] - (fit[0] + fit[1] * position)
        if abs(residual) <= tol:
            line.add(position, frames[i])
            run.clear()
        elif run and (residual > 0) != (run[-1][1] > 0):
            run = [(i, residual)]
        else:
            run.append((i, residual))
            if len(run) >= CHANGE_CLOCKS:
                first = run[0][0]
                lost = round(float(np.median([r for _, r in run])) / fit[1])
                if lost >= 1 and all(abs(r - lost * fit[1]) <= tol for _, r in run):
                    shift += lost
                    log.info("capture: %d MIDI clock(s) lost before clock %d; counted them", lost, first)
                else:
                    starts.append(first)
                    line = _Line()
                run.clear()
                i = first
                continue
        i += 1
    return positions, starts


def find_audio_gaps(
    starts: Sequence[int], lengths: Sequence[int], device_times: Sequence[float], sample_rate_hz: int
) -> list[int] | None:
    """Frames (of our contiguous counter) where the input lost audio, seen on the device's own timeline.

    ``device_times[i]``: the device time (seconds; PortAudio's ``inputBufferAdcTime``, JACK's frame time there)
    of block ``i``'s first sample. While nothing is lost, ``time * rate - start`` stays put (a late callback makes
    a one-block blip); a lost period raises it for good by the period. Returns the frames where it rises by more
    than half a block, judged on medians of 8 blocks before and after; None when the times are not usable.
    """
    window = 8
    t = np.asarray(device_times, dtype=np.float64)
    if len(t) < 2 * window or not np.all(np.isfinite(t)) or float(np.ptp(t)) <= 0.0:
        return None
    first = np.asarray(starts, dtype=np.float64)
    drift = t * sample_rate_hz - first
    half_block = 0.5 * float(np.median(np.asarray(lengths, dtype=np.float64)))
    gaps: list[int] = []
    i = window
    while i <= len(drift) - window:
        if float(np.median(drift[i : i + window]) - np.median(drift[i - window : i])) > half_block:
            lo = max(1, i - window)
            j = lo + int(np.argmax(np.diff(drift[lo - 1 : i + window])))  # the block where it jumped
            gaps.append(int(first[j]))
            i = j + window
        else:
            i += 1
    return gaps


# -- timestamps to frames ------------------------------------------------------------------------------------------


class StampMap:
    """Map timestamps (seconds, the clock input's base) to capture frames, from the audio callbacks' stamps.

    :meth:`add` one entry per callback: its stamp, the frame of the block's first sample, the block's length.
    """

    def __init__(self, sample_rate_hz: int) -> None:
        self.sample_rate_hz = sample_rate_hz
        self._stamps: list[float] = []
        self._starts: list[int] = []
        self._lengths: list[int] = []

    def __len__(self) -> int:
        return len(self._stamps)

    def add(self, stamp: float, start_frame: int, frames: int) -> None:
        if self._stamps and stamp < self._stamps[-1]:
            stamp = self._stamps[-1]  # keep the list sorted; perf_counter does not go back, fakes might
        self._stamps.append(float(stamp))
        self._starts.append(int(start_frame))
        self._lengths.append(int(frames))

    def forget_before(self, stamp: float) -> None:
        """Drop the callbacks stamped before ``stamp`` (keeps one), to bound memory while waiting for a take."""
        cut = max(0, bisect.bisect_left(self._stamps, stamp) - 1)
        if cut:
            del self._stamps[:cut], self._starts[:cut], self._lengths[:cut]

    def _nearest(self, stamp: float) -> int:
        i = bisect.bisect_left(self._stamps, stamp)
        if i == 0:
            return 0
        if i == len(self._stamps):
            return i - 1
        return i if self._stamps[i] - stamp < stamp - self._stamps[i - 1] else i - 1

    def quantized(self, stamps: Sequence[float]) -> bool:
        """Whether ``stamps`` come in the audio's cycles (JACK): their median distance to the nearest callback is
        under :data:`QUANTIZED_FRACTION` of a block (measured on JACK at 256 frames under load: 0.02-0.08 of a block;
        stamps independent of the callbacks: a quarter of a block)."""
        if not self._stamps or not stamps:
            return False
        block_s = float(np.median(self._lengths)) / self.sample_rate_hz
        distances = [abs(self._stamps[self._nearest(s)] - s) for s in stamps]
        return float(np.median(distances)) < QUANTIZED_FRACTION * block_s

    def frames_of(self, stamps: Sequence[float], quantized: bool | None = None) -> list[float]:
        """The capture frame of each stamp (see the module doc); ``quantized`` None: detect it from ``stamps``."""
        if not self._stamps:
            raise BadInputError("no audio arrived during the take; check the input device and its connections")
        if quantized is None:
            quantized = self.quantized(stamps)
        if quantized:
            # a message and the audio block of its cycle are stamped a steady distance apart (which client JACK runs
            # first); centre the search on that distance so that a late stamp still finds its own cycle
            lag = float(np.median([s - self._stamps[self._nearest(s)] for s in stamps]))
            out = []
            for s in stamps:
                j = self._nearest(s - lag)
                out.append(self._starts[j] + (self._lengths[j] - 1) / 2.0)
            return out
        sr = self.sample_rate_hz
        # "now" at callback j is (about) the frame after its block; late callbacks only add delay, so the
        # earliest callbacks (the lower envelope) around a stamp give the offset between the two clocks
        ends = np.asarray(self._starts, dtype=np.float64) + np.asarray(self._lengths, dtype=np.float64)
        offsets = np.asarray(self._stamps) - ends / sr
        stamps_arr = np.asarray(self._stamps)
        out = []
        for s in stamps:
            lo, hi = np.searchsorted(stamps_arr, [s - 2.0, s + 2.0])
            window = offsets[lo:hi] if hi > lo else offsets[[self._nearest(s)]]
            out.append((s - float(window.min())) * sr)
        return out


# -- the session of one take ---------------------------------------------------------------------------------------


class CaptureSession:
    """Collect audio blocks and clock events of one take; not thread-safe. Frames: a block's ``start_frame`` and a
    clock event's ``frame`` count samples on one monotonic counter (the input stream's). ``meter`` is (numerator,
    denominator); a bar is ``numerator * 4 / denominator`` quarter notes.

    Two ways to give the timing: :meth:`start` (+ :meth:`tempo`) with the tempo known, or :meth:`start` and one
    :meth:`clock` per MIDI clock, from which :meth:`finish` fits the tempo map (:func:`fit_tempo_map`).
    """

    def __init__(
        self,
        sample_rate_hz: int,
        *,
        latency_frames: int = 0,
        meter: tuple[int, int] = (4, 4),
        preroll_frames: int | None = None,
        clock_tolerance_frames: float | None = None,
        clock_quantum_frames: float | None = None,
    ) -> None:
        if sample_rate_hz <= 0:
            raise BadInputError(f"sample_rate_hz must be > 0, got {sample_rate_hz}")
        num, den = meter
        if num < 1 or den not in (1, 2, 4, 8, 16, 32):
            raise BadInputError(f"meter must be (numerator >= 1, denominator a power of 2 up to 32), got {meter}")
        self.sample_rate_hz = sample_rate_hz
        self.latency_frames = int(latency_frames)
        self.beats_per_bar = num * 4.0 / den
        self.clock_tolerance_frames = clock_tolerance_frames
        self.clock_quantum_frames = clock_quantum_frames  # clocks known only to a JACK period (see fit_tempo_map)
        # Before the start keep enough audio for a negative latency (audio ahead of the clock), plus one second.
        self.preroll_frames = (
            max(0, -self.latency_frames) + sample_rate_hz if preroll_frames is None else preroll_frames
        )
        self._blocks: list[tuple[int, npt.NDArray[np.float32]]] = []  # (start_frame, [frames, channels])
        self._device_times: list[float] = []  # per held block: the device time of its first sample, or NaN
        self._channels: int | None = None
        self._end_frame: int | None = None  # one past the last frame received
        self._segments: list[tuple[float, float, float | None]] = []  # (clock frame, beats, tempo_bpm)
        self._clocks: list[float] = []  # frames of the MIDI clocks since the start (the first marks the start)
        self._stop_frame: float | None = None
        self._failure: str | None = None
        self._begun = False  # the take began (begin()); its timing may come later (start())
        self._xruns: list[int] = []  # frames of the blocks that came with an overflow/xrun flag

    def add_block(
        self, block: npt.ArrayLike, start_frame: int, sample_rate_hz: int, device_time: float | None = None
    ) -> None:
        """Take ``block`` float ``[frames, channels]`` (or ``[frames]`` mono) whose first frame is ``start_frame``;
        ``device_time``: the device's time of its first sample (seconds), to find lost audio
        (:func:`find_audio_gaps`)."""
        if sample_rate_hz != self.sample_rate_hz:
            raise BadInputError(
                f"the input runs at {sample_rate_hz} Hz but the capture expects {self.sample_rate_hz} Hz; "
                "set the DAW (or JACK) and the capture to the same sample rate"
            )
        data = np.asarray(block, dtype=np.float32)
        data = data[:, None] if data.ndim == 1 else data
        if data.ndim != 2:
            raise BadInputError(f"audio block must be [frames, channels], got shape {data.shape}")
        if self._channels is None:
            self._channels = data.shape[1]
        elif data.shape[1] != self._channels:
            raise BadInputError(f"audio block has {data.shape[1]} channels, earlier blocks had {self._channels}")
        if self._end_frame is not None and start_frame != self._end_frame:
            if self._stopped:  # the take is over; a later gap does not matter
                return
            if self._holding:
                self.mark_dropout(f"audio input skipped from frame {self._end_frame} to {start_frame} (xrun?)")
            self._blocks.clear()  # keep the held blocks contiguous
            self._device_times.clear()
        self._blocks.append((int(start_frame), data))
        self._device_times.append(math.nan if device_time is None else float(device_time))
        self._end_frame = int(start_frame) + data.shape[0]
        if not self._holding:  # bounded pre-roll while waiting for the transport
            keep_from = self._end_frame - self.preroll_frames
            while self._blocks and self._blocks[0][0] + self._blocks[0][1].shape[0] < keep_from:
                self._blocks.pop(0)
                self._device_times.pop(0)

    def xrun(self, frame: int) -> None:
        """The audio input reported lost frames just before ``frame`` (an overflow, a JACK xrun). The frame counter
        stays contiguous, so only an xrun *inside* the cut bars spoils the take (:meth:`finish` checks)."""
        self._xruns.append(int(frame))

    @property
    def end_frame(self) -> int | None:
        """One past the last audio frame received."""
        return self._end_frame

    @property
    def _started(self) -> bool:
        return bool(self._segments)

    @property
    def _holding(self) -> bool:
        """Keeping every block (the take began): a gap is a dropout, not a reason to trim the pre-roll."""
        return self._begun or self._started

    def begin(self) -> None:
        """The take began (the DAW's Start arrived) but its frame and tempo are known only later (:meth:`start`):
        keep all audio from now on, and treat gaps and xruns as dropouts."""
        self._begun = True

    @property
    def _stopped(self) -> bool:
        return self._stop_frame is not None

    @property
    def failure(self) -> str | None:
        """Why the take is spoiled, or None."""
        return self._failure

    def start(self, frame: float, position_beats: float, tempo_bpm: float | None = None) -> None:
        """The transport started at clock ``frame`` from ``position_beats`` (quarter notes); tempo may come later."""
        if not self._started:  # a second start (a loop) is ignored
            self._segments.append((float(frame), float(position_beats), self._check_tempo(tempo_bpm)))

    def clock(self, frame: float) -> None:
        """One MIDI clock at clock ``frame`` (after :meth:`start`; the first one is the start position)."""
        if self._started and not self._stopped:
            self._clocks.append(float(frame))

    def tempo(self, frame: float, tempo_bpm: float) -> None:
        """The tempo is ``tempo_bpm`` from clock ``frame`` on (the first one after an untimed start: from the start)."""
        bpm = self._check_tempo(tempo_bpm)
        if not self._started or self._stopped:
            return
        f0, b0, t0 = self._segments[-1]
        if t0 is None:
            self._segments[-1] = (f0, b0, bpm)
        elif bpm != t0:
            self._segments.append((float(frame), self._beats_at(float(frame)), bpm))

    def stop(self, frame: float) -> None:
        """The transport stopped at clock ``frame``."""
        self._stop_frame = float(frame) if self._started and not self._stopped else self._stop_frame

    def mark_dropout(self, reason: str) -> None:
        """The clock (or the audio) dropped out: the take is spoiled; :meth:`finish` raises with ``reason``."""
        if self._failure is None:
            log.warning("capture spoiled: %s", reason)
            self._failure = reason

    def follow(self, state: ClockState, frame: float) -> None:
        """Turn successive :class:`ClockState` readings (taken at clock ``frame``) into start/tempo/stop/dropout."""
        if state.playing and state.stale and self._started and not self._stopped:
            self.mark_dropout(f"the clock from {state.source} dropped out mid-capture")
        if state.playing and not self._started:
            self.start(frame, state.position_beats, state.tempo_bpm)
        elif state.playing and state.tempo_bpm is not None:
            self.tempo(frame, state.tempo_bpm)
        elif not state.playing and self._started:
            self.stop(frame)

    @staticmethod
    def _check_tempo(tempo_bpm: float | None) -> float | None:
        if tempo_bpm is not None and not (math.isfinite(tempo_bpm) and tempo_bpm > 0):
            raise BadInputError(f"tempo_bpm must be a positive number, got {tempo_bpm!r}")
        return tempo_bpm

    def _beats_at(self, frame: float) -> float:
        f0, b0, bpm = next(s for s in reversed(self._segments) if s[0] <= frame or s is self._segments[0])
        assert bpm is not None
        return b0 + (frame - f0) * bpm / (60.0 * self.sample_rate_hz)

    def _frame_at(self, beats: float) -> float:
        f0, b0, bpm = next(s for s in reversed(self._segments) if s[1] <= beats or s is self._segments[0])
        assert bpm is not None
        return f0 + (beats - b0) * 60.0 * self.sample_rate_hz / bpm

    def _fit_clocks(self) -> None:
        """Replace the segments by the tempo map fitted to the clocks (when there are clocks)."""
        if not self._clocks:
            return
        start_beats = self._segments[0][1]
        fitted = fit_tempo_map(
            self._clocks,
            start_beats,
            self.sample_rate_hz,
            tolerance_frames=self.clock_tolerance_frames,
            quantum_frames=self.clock_quantum_frames,
        )
        self._segments = [(s.frame, s.beats, s.tempo_bpm) for s in fitted]

    def audio_needed_until(self, end_beats: float) -> int | None:
        """The audio frame (exclusive) up to which audio is needed to cut the take at ``end_beats``, once the tempo
        is known (from the clocks so far); None before that."""
        if not self._started:
            return None
        if self._clocks and len(self._clocks) >= 2:
            segments = fit_tempo_map(
                self._clocks,
                self._segments[0][1],
                self.sample_rate_hz,
                tolerance_frames=self.clock_tolerance_frames,
                quantum_frames=self.clock_quantum_frames,
            )
            seg = next(s for s in reversed(segments) if s.beats <= end_beats or s is segments[0])
            frame = seg.frame + (end_beats - seg.beats) * 60.0 * self.sample_rate_hz / seg.tempo_bpm
        elif self._segments[-1][2] is not None:
            frame = self._frame_at(end_beats)
        else:
            return None
        return math.ceil(frame) + self.latency_frames + 1

    def _check_continuity(self, a0: int, a1: int) -> None:
        """:class:`BadInputError` when audio was lost between frames ``a0`` and ``a1``.

        With device times (PortAudio's): lost audio is found on the device's timeline, and overflow/xrun flags are
        only logged (JACK reports every client's xrun to every client; ours may have lost nothing). Without: a flag
        inside the take counts as lost audio."""
        gaps = find_audio_gaps(
            [f for f, _ in self._blocks], [b.shape[0] for _, b in self._blocks], self._device_times, self.sample_rate_hz
        )
        flagged = [f for f in self._xruns if a0 < f < a1]
        lost = flagged if gaps is None else [f for f in gaps if a0 < f < a1]
        if gaps is not None and flagged:
            log.info("capture: %d xrun flag(s) during the take, but no audio was lost", len(flagged))
        if lost:
            at = (lost[0] - a0) / self.sample_rate_hz
            raise BadInputError(
                f"the audio input dropped out during the take ({len(lost)} time(s), the first {at:.2f} s into it), "
                "so part of the audio is missing; play the region again. If it keeps happening, run JACK with "
                "realtime scheduling (jackd -R), use a larger period, or close other programs"
            )

    def finish(self, max_bars: int | None = None) -> Capture:
        """Cut the take to whole bars (at most ``max_bars``). :class:`BadInputError` for a spoiled take or less
        than one bar."""
        if self._failure is not None:
            raise BadInputError(f"capture failed: {self._failure}; play the region again")
        if not self._started:
            raise BadInputError("the transport never started during the capture; is the DAW sending clock?")
        self._fit_clocks()
        if self._segments[0][2] is None:
            raise BadInputError("no tempo arrived during the capture; is the DAW sending MIDI clock ticks?")
        if not self._blocks or self._end_frame is None or self._channels is None:
            raise BadInputError("no audio arrived during the capture; check the input device and its connections")
        bpb = self.beats_per_bar
        start_beats = self._segments[0][1]
        first_bar = math.ceil(start_beats / bpb - _EPS_BEATS)
        end_clock: float = self._end_frame - self.latency_frames  # the clock frame of the last audio we hold
        if self._stop_frame is not None:
            end_clock = min(end_clock, self._stop_frame)
        else:
            log.debug("capture finished without a transport stop; using the audio received so far")
        end_bar = math.floor(self._beats_at(end_clock) / bpb + _EPS_BEATS)
        if max_bars is not None:
            end_bar = min(end_bar, first_bar + max_bars)
        bars = end_bar - first_bar
        if bars < 1:
            raise BadInputError(
                f"less than one whole bar was captured (from {start_beats:g} to {self._beats_at(end_clock):g} "
                f"beats, {bpb:g} beats per bar); play at least to the bar line after the next one"
            )
        a0 = round(self._frame_at(first_bar * bpb)) + self.latency_frames
        a1 = round(self._frame_at(end_bar * bpb)) + self.latency_frames
        first_held = self._blocks[0][0]
        if a0 < first_held:
            raise BadInputError(
                f"the capture lacks the audio before frame {first_held} (needed from {a0}); start the recorder "
                f"before the transport, or check latency_frames={self.latency_frames}"
            )
        if a1 > self._end_frame:
            raise BadInputError(
                f"the capture lacks the audio after frame {self._end_frame} (needed up to {a1}); "
                f"check latency_frames={self.latency_frames}"
            )
        self._check_continuity(a0, a1)
        audio = np.concatenate([b for _, b in self._blocks], axis=0)[a0 - first_held : a1 - first_held]
        assert audio.shape[0] == a1 - a0, "blocks are contiguous inside a clean take"
        changes = sum(1 for s in self._segments[1:] if first_bar * bpb < s[1] < end_bar * bpb)
        log.info("captured %d bars from beat %g (%d frames)", bars, first_bar * bpb, a1 - a0)
        return Capture(
            audio=np.ascontiguousarray(audio.T),
            sample_rate_hz=self.sample_rate_hz,
            start_beats=first_bar * bpb,
            length_bars=bars,
            beats_per_bar=bpb,
            tempo_bpm=float(self._segments[0][2]),
            tempo_changes=changes,
            start_frame=a0,
        )


def save_capture(path: str | os.PathLike[str], audio: npt.NDArray[np.floating], sample_rate: int) -> Path:
    """Write ``audio [channels, samples]`` as a 24-bit WAV atomically, never over a file (the engine's writer)."""
    return api.write_audio(Path(path), np.asarray(audio, dtype=np.float32), sample_rate)


# -- sound devices (sounddevice / PortAudio) -----------------------------------------------------------------------


def _sounddevice() -> Any:
    """The sounddevice module with PortAudio initialized; :class:`BadInputError` saying what to install."""
    try:
        import sounddevice as sd
    except (ImportError, OSError) as e:  # OSError: the package is there but PortAudio is not
        raise BadInputError(
            "audio capture needs sounddevice and PortAudio: `pip install sounddevice` and the system's "
            f"libportaudio2; on a machine without a sound card, run a JACK server ({e})"
        ) from e
    if getattr(sd, "_initialized", 1) == 0:  # released by release_audio(): start PortAudio again (rescans devices)
        sd._initialize()
    return sd


def release_audio() -> None:
    """Shut PortAudio down (closing its JACK client) if sounddevice is loaded; the next recorder starts it again and
    sees the devices (and JACK server) of that moment. Call it before stopping the JACK server PortAudio talks to:
    PortAudio 19.6 aborts the process when it shuts down after its JACK server is gone."""
    import sys

    sd = sys.modules.get("sounddevice")
    if sd is None:
        return
    if _STUCK:
        log.warning("not shutting PortAudio down: an audio stream is stuck (restart Segue to recover it)")
        return
    while getattr(sd, "_initialized", 0) > 0:
        sd._terminate()


def _rescan(sd: Any) -> None:
    """Re-initialize PortAudio so that it sees devices and JACK servers that appeared after it started."""
    while getattr(sd, "_initialized", 0) > 0:
        sd._terminate()
    sd._initialize()


def input_devices() -> list[dict[str, Any]]:
    """The audio inputs PortAudio sees: index, name, host API, input channels, default rate."""
    sd = _sounddevice()
    apis = sd.query_hostapis()
    return [
        {
            "index": i,
            "name": d["name"],
            "hostapi": apis[d["hostapi"]]["name"],
            "channels": int(d["max_input_channels"]),
            "sample_rate_hz": int(d["default_samplerate"]),
        }
        for i, d in enumerate(sd.query_devices())
        if d["max_input_channels"] > 0
    ]


def describe_inputs() -> str:
    """One line naming the audio inputs (for error messages and ``segue doctor``)."""
    try:
        devices = input_devices()
    except Exception as e:
        return f"(cannot list audio inputs: {e})"
    if not devices:
        return "no audio inputs"
    return "; ".join(
        f"{d['index']}: {d['name']!r} ({d['hostapi']}, {d['channels']} ch, {d['sample_rate_hz']} Hz)" for d in devices
    )


def audio_inputs_check() -> dict[str, Any]:
    """``segue doctor``'s entry: the audio inputs capture can record from (never a failure)."""
    try:
        devices = input_devices()
    except BadInputError as e:
        return {"ok": None, "detail": str(e)}
    except Exception as e:
        return {"ok": None, "detail": f"cannot list audio inputs: {e}"}
    finally:
        release_audio()
    if not devices:
        return {"ok": None, "detail": "no audio inputs (capture needs one; without a sound card, run JACK)"}
    shown = ", ".join(f"{d['name']!r} ({d['hostapi']}, {d['channels']} ch, {d['sample_rate_hz']} Hz)" for d in devices)
    return {"ok": True, "detail": f"inputs: {shown}"}


_STUCK: list[Any] = []  # recorders whose stream did not stop (see SoundDeviceRecorder.close)

BlockSink = Callable[[npt.NDArray[np.float32], int, bool, float, float], None]
"""``sink(block [frames, channels], start_frame, overflow, stamp, device_time)``: one audio callback's block (stamp:
``perf_counter`` in the callback; device_time: PortAudio's ``inputBufferAdcTime``)."""


class SoundDeviceRecorder:
    """Record from a sounddevice input: ``device`` by name (substring, as sounddevice matches) or index; None: the
    default input. ``sample_rate_hz`` None: the device's own rate. ``channels`` None: up to 2 (what the device has).

    The stream callback only copies the block (with its ``time.perf_counter()`` stamp) onto a queue; call
    :meth:`pump` from the owner thread to hand the blocks to a sink. :meth:`close` may be called twice.
    """

    def __init__(
        self,
        *,
        device: str | int | None = None,
        channels: int | None = None,
        sample_rate_hz: int | None = None,
        blocksize: int = 0,
        now: Callable[[], float] = time.perf_counter,
    ) -> None:
        sd = _sounddevice()
        self._now = now
        self._queue: queue.SimpleQueue[tuple[npt.NDArray[np.float32], int, bool, float, float]] = queue.SimpleQueue()
        self.frames = 0  # frames received (callback thread)
        self._closed = False
        self._started = False
        try:
            info = self._device_info(sd, device)
        except BadInputError:
            _rescan(sd)  # a device (or a JACK server) that appeared after PortAudio started
            info = self._device_info(sd, device)
        self.device_name = str(info["name"])
        have = int(info["max_input_channels"])
        if channels is None:
            channels = min(2, have)
        elif not 1 <= channels <= have:
            raise BadInputError(f"audio input {self.device_name!r} has {have} input channel(s); --channels {channels}")
        rate = int(info["default_samplerate"]) if sample_rate_hz is None else int(sample_rate_hz)
        self.channels = channels
        try:
            self._stream: Any = sd.InputStream(
                device=info["index"],
                channels=channels,
                samplerate=rate,
                dtype="float32",
                blocksize=blocksize,
                callback=self._callback,
            )
        except Exception as e:  # sounddevice raises PortAudioError / ValueError
            own = int(info["default_samplerate"])
            if rate != own and ("sample rate" in str(e).lower() or "samplerate" in str(e).lower()):
                raise BadInputError(
                    f"audio input {self.device_name!r} cannot run at {rate} Hz; it runs at {own} Hz. Leave out the "
                    f"rate (the take is written at the device's rate) or set the DAW/JACK to {rate} Hz ({e})"
                ) from e
            raise BadInputError(f"cannot open audio input {self.device_name!r}: {e}") from e
        actual = int(self._stream.samplerate)
        if actual != rate:
            self.close()
            raise BadInputError(
                f"audio input {self.device_name!r} runs at {actual} Hz, not {rate} Hz; leave out the rate or set "
                f"the DAW/JACK to {rate} Hz"
            )
        self.sample_rate_hz = actual

    @staticmethod
    def _device_info(sd: Any, device: str | int | None) -> dict[str, Any]:
        try:
            info = dict(sd.query_devices(device, "input"))
        except Exception as e:  # ValueError: no such device; PortAudioError: no default input
            wanted = "the default audio input" if device is None else f"audio input {device!r}"
            raise BadInputError(
                f"cannot use {wanted} ({e}); inputs: {describe_inputs()}. Name one with --input "
                "(a name or its number; `segue doctor` lists them)"
            ) from e
        if int(info.get("max_input_channels", 0)) < 1:
            raise BadInputError(f"{info.get('name', device)!r} has no input channels; inputs: {describe_inputs()}")
        return info

    def _callback(self, indata: Any, frames: int, time_info: Any, status: Any) -> None:
        stamp = self._now()
        self._queue.put((indata.copy(), self.frames, bool(status.input_overflow), stamp, time_info.inputBufferAdcTime))
        self.frames += frames

    def start(self) -> None:
        self._stream.start()
        self._started = True

    def pump(self, sink: BlockSink) -> int:
        """Hand the queued blocks to ``sink`` (owner thread); returns how many."""
        count = 0
        while True:
            try:
                block, start, overflow, stamp, device_time = self._queue.get_nowait()
            except queue.Empty:
                return count
            sink(block, start, overflow, stamp, device_time)
            count += 1

    def close(self, sink: BlockSink | None = None, timeout_s: float = 3.0) -> None:
        """Stop and close the stream; the last blocks go to ``sink`` (or are dropped).

        Bounded: PortAudio's JACK host waits for one more process callback to stop a stream, and JACK may have
        dropped an overloaded client, so the stop runs on a helper thread; after ``timeout_s`` the stream is left
        behind (logged) and PortAudio is not shut down while it hangs (:func:`release_audio` skips it)."""
        if self._closed:
            return
        self._closed = True
        done = threading.Event()

        def stop() -> None:
            try:
                if self._started:
                    self._stream.stop()
                self._stream.close()
            except Exception:
                log.warning("closing the audio input failed", exc_info=True)
            finally:
                done.set()

        try:
            threading.Thread(target=stop, name="segue-capture-close", daemon=True).start()
            if not done.wait(timeout_s):
                _STUCK.append(self)
                log.warning(
                    "the audio input %r did not stop within %g s (JACK may have dropped its client); left behind",
                    self.device_name,
                    timeout_s,
                )
        finally:
            if sink is not None:
                self.pump(sink)

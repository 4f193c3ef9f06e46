"""The tempo of a take from the frames of its MIDI clocks: :func:`fit_tempo_map` (piecewise-constant tempo map,
robust least squares, or a minimax fit when the clocks are quantized to a JACK period), tempo snapping to typed-in
values, and :func:`find_audio_gaps` (audio lost inside a take, found on PortAudio's device timeline). Pure numpy,
no threads: used by :class:`bridge.capture.session.CaptureSession`; the timing model is in
:mod:`bridge.capture.session`'s doc.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bridge.clock import PPQN
from engine.errors import BadInputError

log = logging.getLogger(__name__)

SNAP_GRIDS_BPM = (1.0, 0.5, 0.1, 0.01, 0.001)
SNAP_SIGMAS = 4.0
SNAP_MAX_BPM = 0.05
MIN_SEGMENT_CLOCKS = 24  # one beat: a tempo segment is fitted on at least this many clocks before it may end
CHANGE_CLOCKS = 6  # clocks in a row off the line on one side: a tempo change


@dataclass(frozen=True)
class TempoSegment:
    """From clock frame ``frame`` (at song position ``beats``, quarter notes) on, the tempo is ``tempo_bpm``."""

    frame: float
    beats: float
    tempo_bpm: float


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
    lie in its period, see :class:`bridge.capture.session.StampMap`). Then a single tempo through the whole take is
    tried first, and each segment is fitted with :func:`_quantized_fit` (least squares is misled by quantization,
    see there).
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

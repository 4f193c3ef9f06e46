"""Capture the DAW's output while its transport plays a region, trimmed to the bar grid (for DAWs that cannot bounce).

Pure core, thin adapter. :class:`CaptureSession` has no threads and no audio API: it is fed audio blocks stamped
with a frame counter and clock events stamped on the same frame counter, and :meth:`CaptureSession.finish` cuts
the audio from the first bar line at/after the transport start to the last whole bar before the stop (or after
``max_bars``). :func:`bridge.capture.tempo.fit_tempo_map` turns the frames of the individual MIDI clocks of a take
into a tempo map; :class:`StampMap` turns the timestamps of MIDI messages into capture frames.
:class:`bridge.sound_devices.SoundDeviceRecorder` opens a sounddevice input stream and hands blocks from the
callback thread to a queue; the owner thread drains it (:meth:`SoundDeviceRecorder.pump`). The take itself (clock,
device, file, progress, cancel) is run by :mod:`bridge.capture.take`.

Latency sign convention: ``latency_frames`` is the audio frame at which a musical position is heard in the capture
minus the frame at which the clock reports that position. Positive: the audio arrives *later* than the clock says
(buffering between the DAW's output and our input). Negative: the audio arrives *earlier*. Ardour 7 sends its MIDI
clock compensated for its playback latency, so its master output reaches JACK 2048 frames before the clock: use
``latency_frames=-2048`` for Ardour (see NOTES.md). ``jack_midi_clock`` and a transport-aware ``jack_metro`` need 0.
Bars count from song position 0 with one meter throughout; tempo may change during the capture (piecewise constant).

How a take is timed (the tempo fitted to all its clocks and snapped to a typed-in value, the stamps of clock and
audio on JACK and elsewhere, how exact it is): docs/capture.md.
"""

from __future__ import annotations

import bisect
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bridge.capture.tempo import find_audio_gaps, fit_tempo_map
from bridge.clock import ClockState
from engine import entrypoints
from engine.errors import BadInputError

log = logging.getLogger(__name__)

_EPS_BEATS = 1e-6  # a transport start within this of a bar line counts as on it
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
    return entrypoints.write_audio(Path(path), np.asarray(audio, dtype=np.float32), sample_rate)

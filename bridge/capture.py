"""Capture the DAW's output while its transport plays a region, trimmed to the bar grid (for DAWs that cannot bounce).

Pure core, thin adapter: :class:`CaptureSession` has no threads and no audio API. It is fed audio blocks stamped
with a frame counter and clock events stamped on the same frame counter, and :meth:`CaptureSession.finish` cuts
the audio from the first bar line at/after the transport start to the last whole bar before the stop.
:class:`SoundDeviceRecorder` opens a sounddevice input stream and hands blocks from the callback thread to a queue;
the owner thread drains it into the session (:meth:`SoundDeviceRecorder.pump`).

Latency sign convention: ``latency_frames`` is the audio frame at which a musical position is heard in the capture
minus the frame at which the clock reports that position. Positive: the audio arrives *later* than the clock says
(buffering between the DAW's output and our input). Negative: the audio arrives *earlier*. Ardour 7 sends its MIDI
clock compensated for its playback latency, so its master output reaches JACK 2048 frames before the clock: use
``latency_frames=-2048`` for Ardour (see NOTES.md). Bars count from song position 0 with one meter throughout;
tempo may change during the capture (piecewise constant, as the clock reports it).
"""

from __future__ import annotations

import logging
import math
import os
import queue
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bridge.clock import ClockState
from engine import api
from engine.errors import BadInputError

log = logging.getLogger(__name__)

_EPS_BEATS = 1e-6  # a transport start within this of a bar line counts as on it


@dataclass(frozen=True)
class Capture:
    """The trimmed capture: ``audio`` float32 ``[channels, samples]`` starting on the bar line ``start_beats``."""

    audio: npt.NDArray[np.float32]
    sample_rate_hz: int
    start_beats: float
    length_bars: int
    beats_per_bar: float


class CaptureSession:
    """Collect audio blocks and clock events of one take; not thread-safe. Frames: a block's ``start_frame`` and a
    clock event's ``frame`` count samples on one monotonic counter (the input stream's). ``meter`` is (numerator,
    denominator); a bar is ``numerator * 4 / denominator`` quarter notes."""

    def __init__(
        self,
        sample_rate_hz: int,
        *,
        latency_frames: int = 0,
        meter: tuple[int, int] = (4, 4),
        preroll_frames: int | None = None,
    ) -> None:
        if sample_rate_hz <= 0:
            raise BadInputError(f"sample_rate_hz must be > 0, got {sample_rate_hz}")
        num, den = meter
        if num < 1 or den not in (1, 2, 4, 8, 16, 32):
            raise BadInputError(f"meter must be (numerator >= 1, denominator a power of 2 up to 32), got {meter}")
        self.sample_rate_hz = sample_rate_hz
        self.latency_frames = int(latency_frames)
        self.beats_per_bar = num * 4.0 / den
        # Before the start keep enough audio for a negative latency (audio ahead of the clock), plus one second.
        self.preroll_frames = (
            max(0, -self.latency_frames) + sample_rate_hz if preroll_frames is None else preroll_frames
        )
        self._blocks: list[tuple[int, npt.NDArray[np.float32]]] = []  # (start_frame, [frames, channels])
        self._channels: int | None = None
        self._end_frame: int | None = None  # one past the last frame received
        self._segments: list[tuple[float, float, float | None]] = []  # (clock frame, beats, tempo_bpm)
        self._stop_frame: float | None = None
        self._failure: str | None = None

    def add_block(self, block: npt.ArrayLike, start_frame: int, sample_rate_hz: int) -> None:
        """Take ``block`` float ``[frames, channels]`` (or ``[frames]`` mono) whose first frame is ``start_frame``."""
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
            if self._started:
                self.mark_dropout(f"audio input skipped from frame {self._end_frame} to {start_frame} (xrun?)")
            self._blocks.clear()  # keep the held blocks contiguous
        self._blocks.append((int(start_frame), data))
        self._end_frame = int(start_frame) + data.shape[0]
        if not self._started:  # bounded pre-roll while waiting for the transport
            keep_from = self._end_frame - self.preroll_frames
            while self._blocks and self._blocks[0][0] + self._blocks[0][1].shape[0] < keep_from:
                self._blocks.pop(0)

    @property
    def _started(self) -> bool:
        return bool(self._segments)

    @property
    def _stopped(self) -> bool:
        return self._stop_frame is not None

    def start(self, frame: float, position_beats: float, tempo_bpm: float | None = None) -> None:
        """The transport started at clock ``frame`` from ``position_beats`` (quarter notes); tempo may come later."""
        if not self._started:  # a second start (a loop) is ignored
            self._segments.append((float(frame), float(position_beats), self._check_tempo(tempo_bpm)))

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

    def finish(self) -> Capture:
        """Cut the take to whole bars. Raises :class:`BadInputError` for a spoiled take or less than one bar."""
        if self._failure is not None:
            raise BadInputError(f"capture failed: {self._failure}; play the region again")
        if not self._started:
            raise BadInputError("the transport never started during the capture; is the DAW sending clock?")
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
            log.info("capture finished without a transport stop; using the audio received so far")
        end_bar = math.floor(self._beats_at(end_clock) / bpb + _EPS_BEATS)
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
        audio = np.concatenate([b for _, b in self._blocks], axis=0)[a0 - first_held : a1 - first_held]
        assert audio.shape[0] == a1 - a0, "blocks are contiguous inside a clean take"
        log.info("captured %d bars from beat %g (%d frames)", bars, first_bar * bpb, a1 - a0)
        return Capture(
            audio=np.ascontiguousarray(audio.T),
            sample_rate_hz=self.sample_rate_hz,
            start_beats=first_bar * bpb,
            length_bars=bars,
            beats_per_bar=bpb,
        )


def save_capture(path: str | os.PathLike[str], audio: npt.NDArray[np.floating], sample_rate: int) -> Path:
    """Write ``audio [channels, samples]`` as a 24-bit WAV atomically, never over a file (the engine's writer)."""
    return api.write_audio(Path(path), np.asarray(audio, dtype=np.float32), sample_rate)


class SoundDeviceRecorder:
    """Record from a sounddevice input (``device`` by name or index; None: the default) into a session.

    The stream callback only copies the block onto a queue; call :meth:`pump` from the owner thread (and before
    each clock event) to move blocks into the session. :meth:`close` may be called twice.
    """

    def __init__(
        self, session: CaptureSession, *, device: str | int | None = None, channels: int = 2, blocksize: int = 0
    ) -> None:
        try:
            import sounddevice as sd
        except (ImportError, OSError) as e:  # OSError: the package is there but PortAudio is not
            raise BadInputError(
                "audio capture needs sounddevice and PortAudio: `pip install sounddevice` and the system's "
                f"libportaudio2; on a machine without a sound card, run a JACK server ({e})"
            ) from e
        self.session = session
        self._queue: queue.SimpleQueue[tuple[npt.NDArray[np.float32], int, bool]] = queue.SimpleQueue()
        self.frames = 0  # frames received (callback thread): stamp clock events with it
        self._closed = False
        try:
            self._stream: Any = sd.InputStream(
                device=device,
                channels=channels,
                samplerate=session.sample_rate_hz,
                dtype="float32",
                blocksize=blocksize,
                callback=self._callback,
            )
        except Exception as e:  # sounddevice raises PortAudioError / ValueError for missing devices
            raise BadInputError(f"cannot open audio input {device!r}: {e}") from e
        actual = int(self._stream.samplerate)
        if actual != session.sample_rate_hz:
            self.close()
            raise BadInputError(f"audio input runs at {actual} Hz, expected {session.sample_rate_hz} Hz")

    def _callback(self, indata: Any, frames: int, time_info: Any, status: Any) -> None:
        self._queue.put((indata.copy(), self.frames, bool(status.input_overflow)))
        self.frames += frames

    def start(self) -> None:
        self._stream.start()

    def pump(self) -> None:
        """Move queued blocks into the session (owner thread)."""
        while True:
            try:
                block, start, overflow = self._queue.get_nowait()
            except queue.Empty:
                return
            if overflow:
                self.session.mark_dropout(f"audio input overflowed at frame {start}")
            self.session.add_block(block, start, self.session.sample_rate_hz)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:  # stop and close, then collect the last blocks
            self._stream.stop()
            self._stream.close()
        finally:
            self.pump()

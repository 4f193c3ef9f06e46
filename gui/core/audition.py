"""Audition: play variants (alone, or the region then the variant), looped or not, A/B between two, through
sounddevice, on a worker thread. No Qt: :mod:`gui.adapters` turns the player's events into signals.

The player pulls: an :class:`AudioOutput` calls ``pull(frames)`` on its own (audio) thread and gets float32
``[frames, 2]``; the :class:`Playhead` behind it holds the buffer and the position under a short lock, so an A/B
switch swaps the buffer and keeps the position. Files are read and the output opened on the player's worker
thread, never on the caller's. With a transport (the DAW's MIDI clock) that is playing, a take starts on the
DAW's next bar line.

``sounddevice`` is imported only when a take is first played (:mod:`gui.core.sound_output`). A take is resampled to the
rate the device plays at. Where there is no PortAudio or no output device, :class:`SoundDeviceOutput` raises
:class:`AuditionError` with a message that says what to do, and the player reports it as :class:`AuditionFailed`:
the app goes on without sound, and the next Play looks for a device again. Tests use a fake output.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import soundfile

from bridge.events import TransportState
from engine.api import Meter
from gui.core.sound_output import CHANNELS, Audio, AuditionError, resample
from gui.core.sound_output import AudioOutput as AudioOutput  # the outputs, importable from here too
from gui.core.sound_output import FakeOutput as FakeOutput
from gui.core.sound_output import SoundDeviceOutput as SoundDeviceOutput

log = logging.getLogger(__name__)

_POLL_S = 0.05
MAX_BAR_WAIT_S = 8.0


@dataclass(frozen=True)
class AuditionStarted:
    key: str  # what plays: "v01", "v01+region", ...
    seconds: float
    waited_seconds: float = 0.0  # how long it waited for the DAW's next bar


@dataclass(frozen=True)
class AuditionStopped:
    key: str
    finished: bool  # True: it played to its end; False: stopped by the user or replaced


@dataclass(frozen=True)
class AuditionFailed:
    key: str
    message: str


AuditionEvent = AuditionStarted | AuditionStopped | AuditionFailed
AuditionListener = Callable[[AuditionEvent], None]
Transport = Callable[[], TransportState]


class Playhead:
    """The buffer being played and the position in it; ``pull`` is called on the audio thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer: Audio = np.zeros((0, CHANNELS), dtype=np.float32)
        self._position = 0
        self.loop = False
        self.finished = threading.Event()

    def load(self, buffer: Audio, keep_position: bool = False) -> None:
        with self._lock:
            position = self._position if keep_position else 0
            self._buffer = buffer
            self._position = position % len(buffer) if len(buffer) else 0
            self.finished.clear()

    def clear(self) -> None:
        with self._lock:
            self._buffer = np.zeros((0, CHANNELS), dtype=np.float32)
            self._position = 0

    @property
    def position(self) -> int:
        with self._lock:
            return self._position

    @property
    def length(self) -> int:
        with self._lock:
            return len(self._buffer)

    def pull(self, frames: int) -> Audio:
        """The next ``frames`` frames (silence past the end unless looping)."""
        out = np.zeros((frames, CHANNELS), dtype=np.float32)
        with self._lock:
            buffer, length = self._buffer, len(self._buffer)
            written = 0
            while written < frames and length:
                if self._position >= length:
                    if not self.loop:
                        self.finished.set()
                        break
                    self._position = 0
                take = min(frames - written, length - self._position)
                out[written : written + take] = buffer[self._position : self._position + take]
                self._position += take
                written += take
            if length and self._position >= length and not self.loop:
                self.finished.set()
        return out


def load_take(paths: tuple[Path, ...], gains: tuple[float, ...] = ()) -> tuple[Audio, int]:
    """Read and join the files (one after another) as ``[frames, 2]`` at the first file's sample rate; with
    ``gains`` (one per file), layer them instead, each at its gain (stems with some muted or soloed)."""
    if gains:
        return _layer(paths, gains)
    parts: list[Audio] = []
    rate = 0
    for path in paths:
        try:
            audio, file_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        except Exception as e:
            raise AuditionError(f"cannot play {path.name}: {e}") from e
        audio = _stereo(audio)
        if rate == 0:
            rate = int(file_rate)
        elif file_rate != rate:
            audio = resample(audio, int(file_rate), rate)
        parts.append(audio)
    if not parts or rate <= 0:
        raise AuditionError("nothing to play")
    return np.ascontiguousarray(np.concatenate(parts, axis=0), dtype=np.float32), rate


def _layer(paths: tuple[Path, ...], gains: tuple[float, ...]) -> tuple[Audio, int]:
    if len(gains) != len(paths):
        raise AuditionError(f"{len(gains)} gains for {len(paths)} stems")
    layers = [load_take((path,)) for path in paths]
    rate = layers[0][1]
    audio = [a if r == rate else resample(a, r, rate) for a, r in layers]
    mix = np.zeros((max(len(a) for a in audio), CHANNELS), dtype=np.float32)
    for layer, gain in zip(audio, gains, strict=True):
        mix[: len(layer)] += gain * layer
    return mix, rate


def _stereo(audio: npt.NDArray[Any]) -> Audio:
    if audio.shape[1] == 1:
        return np.repeat(audio, 2, axis=1).astype(np.float32)
    return audio[:, :2].astype(np.float32)


def seconds_to_next_bar(state: TransportState, meter: Meter) -> float:
    """How long until the DAW's next bar line, when it is playing at a known tempo; 0.0 otherwise."""
    if not state.playing or state.tempo_bpm <= 0:
        return 0.0
    bar = meter.quarters_per_bar
    into = state.position_beats % bar
    beats = 0.0 if into < 1e-6 else bar - into
    return min(MAX_BAR_WAIT_S, beats * 60.0 / state.tempo_bpm)


@dataclass(frozen=True)
class _Play:
    key: str
    paths: tuple[Path, ...]
    meter: Meter
    keep_position: bool  # an A/B switch: keep the position, start at once
    gains: tuple[float, ...] = ()  # layer the files at these gains (stems), else play them one after another
    audio: tuple[Audio, int] | None = None  # a take made in memory (the region's preview), instead of files


class Player:
    """Plays one take at a time on a worker thread; events go to the listener from that thread."""

    def __init__(
        self,
        output_factory: Callable[[], AudioOutput] = SoundDeviceOutput,
        transport: Transport | None = None,
        listener: AuditionListener | None = None,
    ) -> None:
        self._output_factory = output_factory
        self._output: AudioOutput | None = None
        self._transport = transport
        self._listener = listener
        self.playhead = Playhead()
        self._commands: queue.Queue[_Play | str] = queue.Queue()
        self._current: str | None = None
        self._rate = 0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def position_seconds(self) -> float:
        """How far into the take playing now (0.0 when stopped); any thread."""
        rate = self._rate
        return self.playhead.position / rate if rate and self._current is not None else 0.0

    @property
    def playing(self) -> str | None:
        """The key of the take playing now (None when stopped)."""
        return self._current

    def set_listener(self, listener: AuditionListener | None) -> None:
        self._listener = listener

    def set_loop(self, loop: bool) -> None:
        self.playhead.loop = loop

    def play(
        self, key: str, paths: tuple[Path, ...], meter: Meter | None = None, gains: tuple[float, ...] = ()
    ) -> None:
        """Play the files one after another, or with ``gains`` layered (from the DAW's next bar when its clock
        is running)."""
        self._send(_Play(key, paths, meter or Meter(), keep_position=False, gains=gains))

    def play_audio(self, key: str, audio: Audio, rate: int, meter: Meter | None = None) -> None:
        """Play a take made in memory (``[frames, 2]`` float32 at ``rate``)."""
        self._send(_Play(key, (), meter or Meter(), keep_position=False, audio=(audio, rate)))

    def switch(self, key: str, paths: tuple[Path, ...], gains: tuple[float, ...] = ()) -> None:
        """A/B, or a stem muted or soloed: play other files (or the same at other gains) from the same position."""
        self._send(_Play(key, paths, Meter(), keep_position=True, gains=gains))

    def stop(self) -> None:
        self._send("stop")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            thread = self._thread
        self._commands.put("close")
        if thread is not None:
            thread.join(2.0)

    def _send(self, command: _Play | str) -> None:
        with self._lock:
            if self._closed:
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="segue-audition", daemon=True)
                self._thread.start()
        self._commands.put(command)

    # -- the worker ------------------------------------------------------------------------------------------

    def _run(self) -> None:
        pending: _Play | str | None = None
        while True:
            command = pending if pending is not None else self._next()
            pending = None
            if command == "close":
                self._halt(finished=False)
                if self._output is not None:
                    self._output.close()
                return
            if command == "stop":
                self._halt(finished=False)
            elif isinstance(command, _Play):
                pending = self._start(command)
            elif self._current is not None and self.playhead.finished.is_set():
                self._halt(finished=True)

    def _next(self) -> _Play | str | None:
        try:
            return self._commands.get(timeout=_POLL_S)
        except queue.Empty:
            return None

    def _start(self, command: _Play) -> _Play | str | None:
        """Load and start a take; returns a command that arrived while waiting for the bar line."""
        try:
            buffer, rate = command.audio if command.audio is not None else load_take(command.paths, command.gains)
        except AuditionError as e:
            self._fail(command.key, str(e))
            return None
        waited = 0.0
        if not command.keep_position and self._transport is not None:
            try:
                delay = seconds_to_next_bar(self._transport(), command.meter)
            except Exception:
                log.debug("transport unavailable", exc_info=True)
                delay = 0.0
            if delay > 0:
                try:
                    interrupt = self._commands.get(timeout=delay)
                    return interrupt  # a newer command wins over this take
                except queue.Empty:
                    waited = delay
        previous = self._current
        if previous is not None and not command.keep_position:
            self._emit(AuditionStopped(previous, finished=False))
        try:
            if self._output is None:
                self._output = self._output_factory()
            rate_for = getattr(self._output, "rate_for", None)
            device_rate = int(rate_for(rate)) if rate_for is not None else rate
            if device_rate != rate:  # the device plays at its own rate (JACK at 48 kHz): resample, never refuse
                buffer, rate = resample(buffer, rate, device_rate), device_rate
            self.playhead.load(buffer, keep_position=command.keep_position and previous is not None)
            self._output.open(rate, self.playhead.pull)
        except AuditionError as e:
            self.playhead.clear()
            self._current = None
            self._fail(command.key, str(e))
            return None
        except Exception as e:  # a broken driver must not kill the player
            log.exception("audio output failed")
            self.playhead.clear()
            self._current = None
            self._fail(command.key, f"the sound output failed ({type(e).__name__}: {e})")
            return None
        self._current = command.key
        self._rate = rate
        self._emit(AuditionStarted(command.key, len(buffer) / rate, waited))
        return None

    def _halt(self, finished: bool) -> None:
        self.playhead.clear()
        if self._current is not None:
            key, self._current = self._current, None
            self._emit(AuditionStopped(key, finished))

    def _fail(self, key: str, message: str) -> None:
        log.warning("audition: %s", message)
        self._emit(AuditionFailed(key, message))

    def _emit(self, event: AuditionEvent) -> None:
        listener = self._listener
        if listener is None:
            return
        try:
            listener(event)
        except Exception:
            log.exception("an audition listener failed")

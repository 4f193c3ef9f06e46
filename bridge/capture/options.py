"""What a capture take needs and gives: its options, its result, the clock and audio it reads from, and where
its WAV goes."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from bridge.clock import ClockState
from bridge.sound_devices import (
    BlockSink,
    SoundDeviceRecorder,
)
from engine.api import Meter
from engine.errors import BadInputError, EngineError

log = logging.getLogger(__name__)

MAX_CAPTURE_BARS = 64
DEFAULT_WAIT_START_S = 120.0
POLL_S = 0.02  # the loop wakes 50 times a second: fewer GIL grabs while JACK's threads need it

Progress = Callable[[float, str], None]


class ClockSource(Protocol):
    """What a take needs from the clock input (:class:`bridge.daemon.MidiClockIn` is one)."""

    source: str
    port_name: str

    @property
    def connected(self) -> bool: ...

    def add_tap(self, tap: Callable[[Any, float, ClockState], None]) -> None: ...

    def remove_tap(self, tap: Callable[[Any, float, ClockState], None]) -> None: ...


class Recorder(Protocol):
    """What a take needs from the audio input (:class:`bridge.sound_devices.SoundDeviceRecorder` is one)."""

    sample_rate_hz: int
    channels: int
    device_name: str

    def start(self) -> None: ...

    def pump(self, sink: BlockSink) -> int: ...

    def close(self, sink: BlockSink | None = None) -> None: ...


RecorderFactory = Callable[["TakeOptions"], Recorder]


def open_sound_device(options: TakeOptions) -> Recorder:
    """The default recorder: sounddevice on ``options.device``."""
    return SoundDeviceRecorder(device=options.device, channels=options.channels, sample_rate_hz=options.sample_rate_hz)


@dataclass(frozen=True)
class TakeRuntime:
    """What a take runs on besides the MIDI clock: how it opens the audio input, the time it reads and waits on,
    and whether it shuts PortAudio down afterwards (``release``, closing its JACK client). The defaults are the
    real ones; tests hand in a simulated world."""

    open_recorder: RecorderFactory = open_sound_device
    now: Callable[[], float] = time.perf_counter
    sleep: Callable[[float], None] = time.sleep
    release: bool = True


@dataclass(frozen=True)
class TakeOptions:
    """How to record. ``bars`` None: until the DAW's Stop (at most ``max_bars``)."""

    bars: int | None = None
    meter: Meter = Meter(4, 4)
    latency_frames: int = 0
    device: str | int | None = None
    channels: int | None = None
    sample_rate_hz: int | None = None
    wait_start_s: float = DEFAULT_WAIT_START_S
    connect_timeout_s: float = 5.0
    stale_after_s: float = 0.5
    max_bars: int = MAX_CAPTURE_BARS
    realtime: bool = True  # run the recording loop SCHED_FIFO (best effort; see _realtime_thread)

    def check(self) -> None:
        """:class:`BadInputError` naming the first bad option."""
        if self.bars is not None and not 1 <= self.bars <= self.max_bars:
            raise BadInputError(f"bars must be in 1..{self.max_bars}, got {self.bars}")
        if not -10 * 192_000 <= self.latency_frames <= 10 * 192_000:
            raise BadInputError(f"latency_frames must be within 10 s of audio, got {self.latency_frames}")
        if self.sample_rate_hz is not None and not 1_000 <= self.sample_rate_hz <= 768_000:
            raise BadInputError(f"the sample rate must be in 1000..768000 Hz, got {self.sample_rate_hz}")
        if self.channels is not None and not 1 <= self.channels <= 64:
            raise BadInputError(f"channels must be in 1..64, got {self.channels}")
        if not (self.wait_start_s > 0 and self.connect_timeout_s >= 0 and self.stale_after_s > 0):
            raise BadInputError("wait_start_s and stale_after_s must be > 0, connect_timeout_s >= 0")


@dataclass(frozen=True)
class TakeResult:
    """A written take: ``path`` holds exactly ``length_bars`` bars from ``start_beats`` at ``tempo_bpm``."""

    path: Path
    sample_rate_hz: int
    channels: int
    frames: int
    start_beats: float
    length_bars: int
    length_beats: float
    tempo_bpm: float
    meter: Meter
    tempo_changes: int
    latency_frames: int
    ended_by: Literal["bars", "stop"]
    device: str
    clock_source: str
    clocks: int
    quantized_stamps: bool  # the clock stamps came in audio cycles (JACK)

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["path"], out["meter"] = str(self.path), str(self.meter)
        return out


def default_capture_path(folder: Path, now: datetime | None = None) -> Path:
    """``folder/capture-YYYYmmdd-HHMMSS.wav``, with ``-2``, ``-3``... when the name is taken."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    for n in range(1, 1000):
        path = folder / (f"capture-{stamp}.wav" if n == 1 else f"capture-{stamp}-{n}.wav")
        if not path.exists():
            return path
    raise EngineError(f"{folder} holds 999 captures from {stamp}; move some")


def check_out_path(path: Path) -> Path:
    """An absolute ``.wav`` path that does not exist yet (checked before recording, so no take is lost)."""
    path = path.expanduser().absolute()
    if path.suffix.lower() != ".wav":
        raise BadInputError(f"the capture is written as WAV: give a file name ending in .wav, got {path.name!r}")
    if path.exists():
        raise BadInputError(f"{path} already exists; Segue never overwrites files: choose another name with --out")
    if path.parent.exists() and not path.parent.is_dir():
        raise BadInputError(f"{path.parent} is not a folder")
    return path

"""The simulated JACK world of the capture tests (no sound device, no JACK): 256-frame cycles at 48 kHz, a DAW
that sends MIDI clock stamped in its cycle and plays clicks on the beats, a fake clock input and recorder, and
:func:`run_take`, a whole take through :func:`bridge.capture.take.record_take` in that world."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import numpy.typing as npt
import soundfile as sf

from bridge.capture.options import TakeOptions, TakeResult, TakeRuntime
from bridge.capture.take import record_take
from bridge.clock import ClockState

SR = 48_000
BPM = 120.0
FPB = SR * 60 // int(BPM)  # 24000 frames per beat
BAR = 4 * FPB
# A JACK clock stamp says only which 256-frame cycle the clock came in; clocks 1000 frames apart fall at offsets
# 0, 8, 16, ... in their cycles (gcd(1000, 256) = 8), so a take's grid can be off by up to about 8 frames
GRID_ERROR = 8


class FakeClock:
    """The clock input: taps get (message, stamp, state) as MidiClockIn gives them."""

    source = "midi-clock:fake"
    port_name = "fake"

    def __init__(self) -> None:
        self.taps: list[Callable[[Any, float, ClockState], None]] = []
        self.connected = True

    def add_tap(self, tap: Callable[[Any, float, ClockState], None]) -> None:
        self.taps.append(tap)

    def remove_tap(self, tap: Callable[[Any, float, ClockState], None]) -> None:
        self.taps.remove(tap)

    def emit(self, kind: str, stamp: float, position: float) -> None:
        for tap in list(self.taps):
            tap(SimpleNamespace(type=kind), stamp, ClockState(tempo_bpm=BPM, playing=True, position_beats=position))


class FakeRecorder:
    sample_rate_hz = SR
    device_name = "fake input"

    def __init__(self, world: World) -> None:
        self.world = world
        self.channels = 1
        self.blocks: list[tuple[npt.NDArray[np.float32], int, bool, float, float]] = []
        self.frames = 0
        self.started_at: int | None = None
        self.closed = False
        self.lock = threading.Lock()

    def start(self) -> None:
        self.started_at = self.world.cycle

    def pump(self, sink: Callable[..., None]) -> int:
        with self.lock:
            blocks, self.blocks = self.blocks, []
        for block in blocks:
            sink(*block)
        return len(blocks)

    def close(self, sink: Callable[..., None] | None = None) -> None:
        self.closed = True
        if sink is not None:
            self.pump(sink)


class World:
    """256-frame JACK cycles at 48 kHz and a DAW whose transport starts at ``start_s`` (at song position
    ``start_beats``) and stops at ``stop_s``: it sends MIDI clock (stamped in its cycle, like rtmidi on JACK) and
    plays single-sample clicks, 1.0 on bar lines and 0.5 on other beats, ``latency`` frames after the clock says."""

    def __init__(
        self,
        bpm: float = BPM,
        start_s: float = 0.5,
        stop_s: float | None = None,
        start_beats: float = 0.0,
        latency: int = 0,
        period: int = 256,
        t0: float = 100.0,
    ) -> None:
        self.T0 = self.t = t0
        self.cycle = 0
        self.period = period
        self.fpt = SR * 60 / bpm / 24
        self.start_frame = round(start_s * SR / period) * period
        self.stop_frame = None if stop_s is None else round(stop_s * SR)
        self.start_beats = start_beats
        self.latency = latency
        self.clock = FakeClock()
        self.recorder = FakeRecorder(self)
        self.lost_clocks: set[int] = set()  # clock numbers never delivered
        self.lost_cycles: set[int] = set()  # cycles our audio never gets
        self.flagged_cycles: set[int] = set()  # cycles whose block comes with an xrun flag
        self.clocks_until: float | None = None  # seconds: the clock stops there without a Stop (a dropout)
        self.audio_until: float | None = None  # seconds: our audio client stops being called there

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        target = self.t + seconds
        while self.T0 + (self.cycle + 1) * self.period / SR <= target:
            self._run_cycle(self.cycle)
            self.cycle += 1
        self.t = target

    def beat_frame(self, beats: float) -> float:
        return self.start_frame + (beats - self.start_beats) * 24 * self.fpt

    def _run_cycle(self, c: int) -> None:
        lo, hi = c * self.period, (c + 1) * self.period
        done = self.T0 + hi / SR
        stop = self.stop_frame if self.stop_frame is not None else math.inf
        if self.clocks_until is not None:
            stop = min(stop, round((self.clocks_until) * SR))
        if lo <= self.start_frame < hi:
            self.clock.emit("start" if self.start_beats == 0 else "continue", done - 0.0003, self.start_beats)
        k = max(0, math.ceil((lo - self.start_frame) / self.fpt))
        while self.start_frame + k * self.fpt < min(hi, stop):
            if k not in self.lost_clocks:
                self.clock.emit("clock", done - 0.0003 + 1e-6 * (k % 3), self.start_beats + k / 24)
            k += 1
        if self.stop_frame is not None and lo <= self.stop_frame < hi:
            self.clock.emit("stop", done - 0.0002, 0.0)
        rec = self.recorder
        if rec.started_at is None or c in self.lost_cycles:
            return
        if self.audio_until is not None and lo >= self.audio_until * SR:
            return
        block = np.zeros((self.period, 1), dtype=np.float32)
        first_beat = math.ceil(self.start_beats - 1e-9)
        for beat in range(first_beat, first_beat + 400):
            frame = round(self.beat_frame(beat)) + self.latency
            if frame >= hi or frame >= stop + self.latency:
                break
            if frame >= lo:
                block[frame - lo, 0] = 1.0 if beat % 4 == 0 else 0.5
        with rec.lock:
            rec.blocks.append((block, rec.frames, c in self.flagged_cycles, done + 0.0002, lo / SR))
        rec.frames += self.period


def run_take(world: World, tmp_path: Path, **options: Any) -> TakeResult:
    messages: list[str] = []
    opts = TakeOptions(realtime=False, wait_start_s=options.pop("wait_start_s", 10.0), **options)
    result = record_take(
        world.clock,  # type: ignore[arg-type]
        tmp_path / "take.wav",
        opts,
        progress=lambda fraction, message: messages.append(message),
        runtime=TakeRuntime(open_recorder=lambda o: world.recorder, now=world.now, sleep=world.sleep, release=False),
    )
    assert world.recorder.closed and not world.clock.taps
    return result


def clicks(path: Path) -> tuple[npt.NDArray[np.float64], dict[float, list[int]], int]:
    """The audio, where its bar (1.0) and beat (0.5) clicks are, and how far the grid is off (from the first beat
    click: a bar click a few frames before the first sample is not in the file)."""
    audio, rate = sf.read(str(path), always_2d=True)
    assert rate == SR
    found = {level: list(np.flatnonzero(np.isclose(audio[:, 0], level, atol=1e-3))) for level in (1.0, 0.5)}
    offset = int(found[0.5][0]) - FPB
    beats = [k * FPB + offset for k in range(audio.shape[0] // FPB + 1)]
    inside = [(k, f) for k, f in enumerate(beats) if 0 <= f < audio.shape[0]]
    assert found[1.0] == [f for k, f in inside if k % 4 == 0]
    assert found[0.5] == [f for k, f in inside if k % 4]
    return audio, found, offset

"""Capture without a sound device or JACK: the pure session on a synthetic click track (120 BPM, 48 kHz, 4/4), the
tempo map and timestamp mapping, whole takes in a simulated JACK world (256-frame cycles, clock stamped per cycle),
the bridge's controller and OSC addresses, and the CLI's checks."""

from __future__ import annotations

import math
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf
from fake_engine import FakeEngine
from osc_helpers import CLIENT, Recorder
from pythonosc.osc_message_builder import build_msg

import bridge.capture.tempo as capture_tempo
import bridge.sound_devices as sound_devices
from bridge.capture.controller import CaptureArmed, CaptureController, CaptureDone, CaptureFailed, CaptureProgress
from bridge.capture.options import TakeOptions, TakeResult, check_out_path, default_capture_path
from bridge.capture.session import CaptureSession, StampMap, save_capture
from bridge.capture.take import _realtime_thread, record_take
from bridge.capture.tempo import find_audio_gaps, fit_tempo_map, snap_tempo
from bridge.cli import main
from bridge.clock import ClockState
from bridge.daemon import region_of_take
from bridge.osc import OscBridge
from bridge.service import BridgeService
from bridge.sound_devices import SoundDeviceRecorder, release_audio
from engine.api import CancelToken, Meter
from engine.errors import BadInputError, CancelledError

SR = 48_000
BPM = 120.0
FPB = SR * 60 // int(BPM)  # 24000 frames per beat
BAR = 4 * FPB
CLOCK_START = 60_000  # clock frame of the transport start
BLOCK = 1024


def click_track(start_beats: float, stop_beats: float, latency: int, channels: int) -> npt.NDArray[np.float32]:
    """[frames, channels]: 1.0 on bar lines, 0.5 on other beats, at clock frame + ``latency``; silence elsewhere."""
    total = CLOCK_START + int((stop_beats - start_beats) * FPB) + max(latency, 0) + 3 * BLOCK
    audio = np.zeros((total, channels), dtype=np.float32)
    for beat in range(int(np.ceil(start_beats - 1e-6)), int(stop_beats) + 1):
        frame = CLOCK_START + round((beat - start_beats) * FPB) + latency
        if 0 <= frame < total:
            audio[frame] = 1.0 if beat % 4 == 0 else 0.5
    return audio


def take(
    start_beats: float,
    stop_beats: float,
    *,
    latency: int = 0,
    assumed_latency: int | None = None,
    channels: int = 2,
) -> CaptureSession:
    """Feed a whole take block by block, the clock events in between, as the recorder would."""
    audio = click_track(start_beats, stop_beats, latency, channels)
    session = CaptureSession(SR, latency_frames=latency if assumed_latency is None else assumed_latency)
    stop_frame = CLOCK_START + (stop_beats - start_beats) * FPB
    started = stopped = False
    for offset in range(0, audio.shape[0], BLOCK):
        if not started and offset >= CLOCK_START:
            session.start(CLOCK_START, start_beats, BPM)
            started = True
        if not stopped and offset >= stop_frame:
            session.stop(stop_frame)
            stopped = True
        session.add_block(audio[offset : offset + BLOCK], offset, SR)
    session.stop(stop_frame)
    return session


@pytest.mark.parametrize("latency", [0, 2048, -2048, 333])
def test_trimmed_capture_starts_on_the_bar_line_and_is_whole_bars(latency: int) -> None:
    cap = take(0.0, 16.0 + 0.01, latency=latency).finish()
    assert (cap.start_beats, cap.length_bars, cap.sample_rate_hz) == (0.0, 4, SR)
    assert cap.audio.shape == (2, 4 * BAR) and cap.audio.dtype == np.float32
    bars = np.flatnonzero(cap.audio[0] == 1.0)
    assert list(bars) == [0, BAR, 2 * BAR, 3 * BAR]
    assert len(np.flatnonzero(cap.audio[0] == 0.5)) == 12


def test_start_mid_bar_trims_to_the_next_bar_line() -> None:
    cap = take(2.5, 14.0, latency=-2048).finish()
    assert cap.start_beats == 4.0 and cap.length_bars == 2
    assert cap.audio[0, 0] == 1.0 and cap.audio.shape[1] == 2 * BAR


def test_stop_mid_bar_drops_the_partial_bar() -> None:
    cap = take(0.0, 3 * 4 + 2.5, latency=2048).finish()
    assert cap.length_bars == 3 and cap.audio.shape[1] == 3 * BAR
    assert np.flatnonzero(cap.audio[0] == 1.0).tolist() == [0, BAR, 2 * BAR]


def test_start_a_hair_after_a_bar_line_counts_as_on_it() -> None:
    cap = take(4.0 + 1e-9, 12.0).finish()
    assert cap.start_beats == 4.0 and cap.length_bars == 2 and cap.audio[0, 0] == 1.0


def test_less_than_one_bar_is_an_error() -> None:
    with pytest.raises(BadInputError, match="less than one whole bar"):
        take(1.0, 7.5).finish()


@pytest.mark.parametrize("channels", [1, 2])
def test_mono_and_stereo(channels: int) -> None:
    cap = take(0.0, 8.0, channels=channels).finish()
    assert cap.audio.shape == (channels, 2 * BAR)
    assert all(cap.audio[c, 0] == 1.0 for c in range(channels))


def test_mono_blocks_may_be_one_dimensional() -> None:
    session = CaptureSession(SR)
    session.start(0, 0.0, BPM)
    session.add_block(np.zeros(BAR + 10, dtype=np.float32), 0, SR)
    session.stop(BAR + 10)
    assert session.finish().audio.shape == (1, BAR)


def test_latency_sign_audio_earlier_than_clock_is_negative() -> None:
    """Ardour: master audio reaches JACK 2048 frames *before* the clock says so -> latency_frames=-2048."""
    right = take(0.0, 8.0, latency=-2048, assumed_latency=-2048).finish()
    assert right.audio[0, 0] == 1.0
    wrong = take(0.0, 8.0, latency=-2048, assumed_latency=2048).finish()
    assert wrong.audio[0, 0] == 0.0 and wrong.audio[0, BAR - 4096] == 1.0


def test_latency_sign_audio_later_than_clock_is_positive() -> None:
    right = take(0.0, 8.0, latency=2048, assumed_latency=2048).finish()
    assert right.audio[0, 0] == 1.0
    wrong = take(0.0, 8.0, latency=2048, assumed_latency=0).finish()
    assert wrong.audio[0, 0] == 0.0 and wrong.audio[0, 2048] == 1.0


def test_clock_dropout_mid_capture_is_an_error() -> None:
    session = CaptureSession(SR)
    session.follow(ClockState(tempo_bpm=BPM, playing=True, position_beats=0.0), 0)
    session.add_block(np.zeros((3 * BAR, 2), dtype=np.float32), 0, SR)
    session.follow(ClockState(tempo_bpm=BPM, playing=True, position_beats=4.0, stale=True), 2 * BAR)
    session.follow(ClockState(tempo_bpm=BPM, playing=False, position_beats=8.0), 2 * BAR + 10)
    with pytest.raises(BadInputError, match="dropped out"):
        session.finish()


def test_follow_maps_clock_states_to_a_clean_take() -> None:
    session = CaptureSession(SR)
    session.follow(ClockState(tempo_bpm=None, playing=True, position_beats=0.0), 0)
    session.follow(ClockState(tempo_bpm=BPM, playing=True, position_beats=0.5), FPB // 2)
    session.add_block(np.zeros((3 * BAR, 2), dtype=np.float32), 0, SR)
    session.follow(ClockState(tempo_bpm=BPM, playing=False, position_beats=8.5), 2 * BAR + FPB // 2)
    cap = session.finish()
    assert (cap.start_beats, cap.length_bars) == (0.0, 2)


def test_tempo_change_mid_take_follows_the_clock() -> None:
    session = CaptureSession(SR)
    session.start(0, 0.0, BPM)
    session.tempo(BAR, 60.0)  # bar 2 lasts twice as long
    session.add_block(np.zeros((4 * BAR, 1), dtype=np.float32), 0, SR)
    session.stop(3 * BAR + 5)
    cap = session.finish()
    assert cap.length_bars == 2 and cap.audio.shape[1] == 3 * BAR


def test_audio_gap_mid_capture_is_an_error() -> None:
    session = CaptureSession(SR)
    session.start(0, 0.0, BPM)
    session.add_block(np.zeros((BAR, 2), dtype=np.float32), 0, SR)
    session.add_block(np.zeros((2 * BAR, 2), dtype=np.float32), BAR + 512, SR)
    session.stop(2 * BAR)
    with pytest.raises(BadInputError, match="skipped"):
        session.finish()


def test_sample_rate_mismatch_is_an_error() -> None:
    session = CaptureSession(SR)
    with pytest.raises(BadInputError, match="44100 Hz but the capture expects 48000 Hz"):
        session.add_block(np.zeros((BLOCK, 2), dtype=np.float32), 0, 44_100)


def test_no_start_or_no_tempo_is_an_error() -> None:
    session = CaptureSession(SR)
    session.add_block(np.zeros((BAR, 2), dtype=np.float32), 0, SR)
    with pytest.raises(BadInputError, match="never started"):
        session.finish()
    session.start(0, 0.0)
    with pytest.raises(BadInputError, match="no tempo"):
        session.finish()


def test_save_capture_writes_a_24_bit_wav(tmp_path: object) -> None:
    cap = take(0.0, 4.0).finish()
    path = save_capture(Path(str(tmp_path)) / "cap.wav", cap.audio, cap.sample_rate_hz)
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (SR, 2, BAR, "PCM_24")


def test_recorder_without_sounddevice_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    with pytest.raises(BadInputError, match="pip install sounddevice"):
        SoundDeviceRecorder()


# -- the tempo map from the clocks, stamps to frames, lost audio -------------------------------------------------

FPT = FPB / 24  # 1000 frames per MIDI clock at 120 BPM
# A JACK clock stamp says only which 256-frame cycle the clock came in; clocks 1000 frames apart fall at offsets
# 0, 8, 16, ... in their cycles (gcd(1000, 256) = 8), so a take's grid can be off by up to about 8 frames
GRID_ERROR = 8


def test_fit_tempo_map_snaps_a_noisy_120_to_exactly_120() -> None:
    rng = np.random.default_rng(1)
    frames = 5000 + FPT * np.arange(193) + rng.uniform(-128, 128, 193)  # JACK-quantized: +-half a 256 period
    (seg,) = fit_tempo_map(list(frames), 0.0, SR, tolerance_frames=192)
    assert seg.tempo_bpm == 120.0 and seg.beats == 0.0 and abs(seg.frame - 5000) < 20


def test_fit_tempo_map_keeps_a_tempo_that_is_not_round() -> None:
    fpt = SR * 60 / 97.53 / 24
    (seg,) = fit_tempo_map(list(fpt * np.arange(400)), 2.0, SR)
    assert seg.tempo_bpm == pytest.approx(97.53, abs=1e-6) and seg.beats == 2.0


def test_snap_tempo_prefers_the_coarsest_round_value_within_the_error() -> None:
    assert snap_tempo(119.997, 0.004) == 120.0
    assert snap_tempo(97.502, 0.004) == 97.5
    assert snap_tempo(97.534, 0.002) == 97.534
    assert snap_tempo(97.53, 1.0) == 97.5 and snap_tempo(97.44, 1.0) == 97.4  # never moves more than 0.05 BPM
    assert snap_tempo(97.5312, 0.0) == 97.5312


def test_fit_tempo_map_follows_a_tempo_change() -> None:
    fast = FPT * np.arange(96)  # one bar at 120
    slow = fast[-1] + 2 * FPT * np.arange(1, 97)  # then 60 BPM
    segments = fit_tempo_map(list(np.concatenate([fast, slow])), 0.0, SR)
    assert [s.tempo_bpm for s in segments] == [120.0, 60.0]
    assert segments[1].beats == pytest.approx(96 / 24) and segments[1].frame == pytest.approx(fast[-1] + 2 * FPT)


def test_fit_tempo_map_counts_lost_clocks() -> None:
    frames = list(FPT * np.arange(200))
    del frames[100:102]  # two clocks lost (e.g. in a JACK xrun): the count is two short after them
    (seg,) = fit_tempo_map(frames, 0.0, SR)
    assert seg.tempo_bpm == 120.0 and abs(seg.frame) < 1e-6


def test_a_step_at_the_same_tempo_is_a_dropout() -> None:
    frames = FPT * np.arange(200)
    frames[100:] -= 256  # the audio lost a 256-frame period: the clocks land a period early from there on
    with pytest.raises(BadInputError, match="out of step by -256 frames"):
        fit_tempo_map(list(frames), 0.0, SR, tolerance_frames=192)


def test_fit_tempo_map_needs_two_clocks() -> None:
    with pytest.raises(BadInputError, match="fewer than two MIDI clocks"):
        fit_tempo_map([10.0], 0.0, SR)


def _stamp_map(period: int = 256, blocks: int = 400, t0: float = 10.0) -> StampMap:
    stamps = StampMap(SR)
    for c in range(blocks):
        stamps.add(t0 + (c + 1) * period / SR + 0.0002, c * period, period)
    return stamps


def test_stamp_map_puts_jack_stamps_in_the_middle_of_their_cycle() -> None:
    stamps = _stamp_map()
    cycle_stamps = [10.0 + (c + 1) * 256 / SR - 0.0003 for c in (5, 6, 100)]  # MIDI: just before the audio callback
    assert stamps.quantized(cycle_stamps)
    assert stamps.frames_of(cycle_stamps) == [5 * 256 + 127.5, 6 * 256 + 127.5, 100 * 256 + 127.5]


def test_stamp_map_interpolates_stamps_that_are_not_in_cycles() -> None:
    stamps = _stamp_map()
    # a sound card: "now" at a callback is the frame after its block; stamps anywhere in between
    times = [10.0 + 0.0002 + f / SR for f in (30_000.0, 30_100.0, 51_234.0)]
    assert not stamps.quantized(times)
    assert stamps.frames_of(times) == pytest.approx([30_000.0, 30_100.0, 51_234.0], abs=1e-6)


def test_find_audio_gaps_sees_a_lost_period_and_not_a_late_callback() -> None:
    starts = [256 * i for i in range(100)]
    times = [(256 * i + (256 if i >= 60 else 0)) / SR + 7.0 for i in range(100)]  # one period lost before block 60
    times[30] += 200 / SR  # a callback 200 frames late: a blip
    assert find_audio_gaps(starts, [256] * 100, times, SR) == [60 * 256]
    assert find_audio_gaps(starts, [256] * 100, [0.0] * 100, SR) is None  # no usable device times


def test_an_xrun_flag_fails_the_take_only_when_audio_was_lost_inside_it() -> None:
    def session(lost_at: int | None, flag_at: int | None) -> CaptureSession:
        s = CaptureSession(SR)
        s.start(0, 0.0, BPM)
        for i in range(3 * BAR // 256):
            shift = 256 if lost_at is not None and i * 256 >= lost_at else 0
            s.add_block(np.zeros((256, 1), dtype=np.float32), i * 256, SR, (i * 256 + shift) / SR)
            if flag_at == i * 256:
                s.xrun(i * 256)
        s.stop(2 * BAR + 10)
        return s

    assert session(None, BAR).finish().length_bars == 2  # a flag (another client's xrun), nothing lost: fine
    with pytest.raises(BadInputError, match="dropped out during the take"):
        session(BAR, BAR).finish()
    assert session(5 * BAR // 2, None).finish().length_bars == 2  # lost after the cut: fine
    no_times = CaptureSession(SR)
    no_times.start(0, 0.0, BPM)
    no_times.add_block(np.zeros((3 * BAR, 1), dtype=np.float32), 0, SR)
    no_times.xrun(BAR)  # without device times a flag inside the take is all we know
    no_times.stop(2 * BAR + 10)
    with pytest.raises(BadInputError, match="dropped out during the take"):
        no_times.finish()


# -- whole takes in a simulated JACK world -----------------------------------------------------------------------


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
        open_recorder=lambda o: world.recorder,
        now=world.now,
        sleep=world.sleep,
        release=False,
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


def test_take_of_two_bars_from_start(tmp_path: Path) -> None:
    world = World()
    result = run_take(world, tmp_path, bars=2)
    assert (result.length_bars, result.start_beats, result.tempo_bpm, result.ended_by) == (2, 0.0, 120.0, "bars")
    assert result.frames == 2 * BAR and result.quantized_stamps and result.sample_rate_hz == SR
    audio, _, offset = clicks(result.path)
    assert audio.shape == (2 * BAR, 1)
    assert abs(offset) <= GRID_ERROR


@pytest.mark.parametrize("latency", [-2048, 0, 3000])
def test_take_accounts_for_the_daw_latency(tmp_path: Path, latency: int) -> None:
    result = run_take(World(latency=latency), tmp_path, bars=1, latency_frames=latency)
    _, _, offset = clicks(result.path)
    assert result.frames == BAR and abs(offset) <= GRID_ERROR
    wrong = run_take(World(latency=latency), tmp_path / "wrong", bars=1, latency_frames=latency + 1000)
    assert clicks(wrong.path)[2] == pytest.approx(offset - 1000, abs=8)  # the sign convention, checked


def test_take_from_the_middle_of_a_bar_starts_at_the_next_bar_line(tmp_path: Path) -> None:
    result = run_take(World(start_beats=6.0), tmp_path, bars=1)  # Continue from beat 6 (bar 2, beat 3)
    assert (result.start_beats, result.length_bars, result.frames) == (8.0, 1, BAR)
    assert abs(clicks(result.path)[2]) <= GRID_ERROR


def test_take_until_the_daw_stops_keeps_the_whole_bars(tmp_path: Path) -> None:
    world = World(stop_s=0.5 + 2.6 * 2.0)  # stops 2.6 bars after the start
    result = run_take(world, tmp_path)
    assert (result.length_bars, result.ended_by, result.frames) == (2, "stop", 2 * BAR)


def test_take_at_an_odd_tempo_is_whole_bars_of_it(tmp_path: Path) -> None:
    result = run_take(World(bpm=97.5), tmp_path, bars=2)
    assert result.tempo_bpm == 97.5
    assert abs(result.frames - 2 * 4 * SR * 60 / 97.5) <= 1


def test_take_survives_lost_clocks_and_foreign_xruns(tmp_path: Path) -> None:
    world = World()
    world.lost_clocks = {50, 51}
    world.flagged_cycles = {300}  # JACK reports another client's xrun; our audio is whole
    result = run_take(world, tmp_path, bars=2)
    assert result.frames == 2 * BAR and abs(clicks(result.path)[2]) <= GRID_ERROR


def test_lost_audio_spoils_the_take(tmp_path: Path) -> None:
    world = World()
    world.lost_cycles = {400}
    world.flagged_cycles = {401}
    with pytest.raises(BadInputError, match="dropped out|out of step"):
        run_take(world, tmp_path, bars=2)
    assert not (tmp_path / "take.wav").exists() and world.recorder.closed


def test_no_start_says_what_to_do(tmp_path: Path) -> None:
    world = World(start_s=100.0)
    with pytest.raises(BadInputError, match="no Start from the DAW within 2 s.*no MIDI at all"):
        run_take(world, tmp_path, bars=1, wait_start_s=2.0)


def test_clock_without_start_means_the_daw_was_already_playing(tmp_path: Path) -> None:
    world = World(start_s=0.0)  # rolling before we arm: its Start is never seen
    world.sleep(0.1)
    with pytest.raises(BadInputError, match="clocks arrive but no Start came: stop the DAW and press play"):
        run_take(world, tmp_path, bars=1, wait_start_s=2.0)


def test_clock_dropout_mid_take_is_an_error(tmp_path: Path) -> None:
    world = World()
    world.clocks_until = 0.5 + 3.0
    with pytest.raises(BadInputError, match="stopped arriving mid-take.*without a Stop"):
        run_take(world, tmp_path, bars=4)


def test_audio_that_stops_arriving_is_an_error(tmp_path: Path) -> None:
    world = World()
    world.audio_until = 0.5 + 1.0  # JACK dropped our audio client mid-take
    with pytest.raises(BadInputError, match="stopped delivering audio"):
        run_take(world, tmp_path, bars=2)


def test_recorder_close_does_not_hang_on_a_stuck_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    class StuckStream:
        def stop(self) -> None:
            time.sleep(3)  # PortAudio waiting for a JACK callback that never comes

        def close(self) -> None:
            pass

    recorder = object.__new__(SoundDeviceRecorder)
    recorder._closed, recorder._started, recorder.device_name = False, True, "stuck"
    recorder._queue = queue.SimpleQueue()
    recorder._stream = StuckStream()
    stuck: list[Any] = []
    monkeypatch.setattr(sound_devices, "_STUCK", stuck)
    began = time.monotonic()
    recorder.close(timeout_s=0.2)
    assert time.monotonic() - began < 2 and recorder in stuck
    release_audio()  # does not shut PortAudio down under a stuck stream (it would hang too)


def test_no_clock_port(tmp_path: Path) -> None:
    world = World()
    world.clock.connected = False
    with pytest.raises(BadInputError, match="no MIDI clock: the MIDI input 'fake' is not available"):
        run_take(world, tmp_path, bars=1, connect_timeout_s=0.5)


def test_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "take.wav").write_bytes(b"mine")
    with pytest.raises(BadInputError, match="already exists; Segue never overwrites"):
        run_take(World(), tmp_path, bars=1)
    assert (tmp_path / "take.wav").read_bytes() == b"mine"
    with pytest.raises(BadInputError, match="ending in .wav"):
        check_out_path(tmp_path / "take.flac")


def test_cancel_writes_nothing(tmp_path: Path) -> None:
    world = World()
    cancel = CancelToken()
    sleep = world.sleep

    def sleep_then_cancel(seconds: float) -> None:
        sleep(seconds)
        if world.t > world.T0 + 1.5:
            cancel.cancel()

    with pytest.raises(CancelledError):
        record_take(
            world.clock,  # type: ignore[arg-type]
            tmp_path / "take.wav",
            TakeOptions(bars=4, realtime=False),
            cancel=cancel,
            open_recorder=lambda o: world.recorder,
            now=world.now,
            sleep=sleep_then_cancel,
            release=False,
        )
    assert not (tmp_path / "take.wav").exists() and world.recorder.closed


def test_default_capture_path_never_reuses_a_name(tmp_path: Path) -> None:
    when = datetime(2026, 1, 2, 3, 4, 5)
    first = default_capture_path(tmp_path, when)
    assert first.name == "capture-20260102-030405.wav"
    first.write_bytes(b"")
    assert default_capture_path(tmp_path, when).name == "capture-20260102-030405-2.wav"


def test_take_options_are_checked() -> None:
    with pytest.raises(BadInputError, match="bars must be in 1..64"):
        TakeOptions(bars=0).check()
    with pytest.raises(BadInputError, match="channels"):
        TakeOptions(channels=0).check()


def test_realtime_thread_is_undone() -> None:
    before = os.sched_getscheduler(0)
    undo = _realtime_thread()
    undo()
    undo()
    assert os.sched_getscheduler(0) == before


# -- the bridge's capture: controller, OSC, region ---------------------------------------------------------------


def test_controller_arms_a_take_and_hands_it_over(tmp_path: Path) -> None:
    world = World(t0=time.perf_counter())  # the take's thread reads the real clock: the world follows it
    done: list[TakeResult] = []
    events: list[Any] = []
    controller = CaptureController(
        world.clock,  # type: ignore[arg-type]
        tmp_path / "captures",
        TakeOptions(realtime=False),
        on_done=done.append,
        open_recorder=lambda o: world.recorder,
    )
    controller.add_listener(events.append)
    # the take's thread sleeps for real: drive the simulated world from here until it is done
    controller.arm(1, origin=("127.0.0.1", 9))
    with pytest.raises(BadInputError, match="already armed"):
        controller.arm(1)
    deadline = time.monotonic() + 20
    while controller.armed and time.monotonic() < deadline:
        time.sleep(0.01)
        world.sleep(time.perf_counter() - world.t)
    assert not controller.armed
    assert isinstance(events[0], CaptureArmed) and events[0].bars == 1
    assert isinstance(events[-1], CaptureDone), events[-1]
    assert done and done[0].path.parent == tmp_path / "captures" and done[0].length_bars == 1
    region = region_of_take(done[0])
    assert (region.audio_path, region.start_beats, region.length_beats, region.tempo_bpm) == (
        done[0].path,
        0.0,
        4.0,
        120.0,
    )
    assert not controller.cancel()
    controller.close()


def test_controller_without_a_clock_says_how_to_get_one(tmp_path: Path) -> None:
    controller = CaptureController(None, tmp_path, TakeOptions())
    with pytest.raises(BadInputError, match="--midi-clock-in PORT"):
        controller.arm(2)


class FakeController:
    def __init__(self) -> None:
        self.armed_with: list[tuple[int | None, Any]] = []
        self.listeners: list[Callable[[Any], None]] = []
        self.cancelled = 0

    def add_listener(self, listener: Callable[[Any], None]) -> None:
        self.listeners.append(listener)

    def arm(self, bars: int | None, origin: Any = None) -> None:
        self.armed_with.append((bars, origin))

    def cancel(self) -> bool:
        self.cancelled += 1
        return self.cancelled == 1


def test_osc_capture_addresses(tmp_path: Path) -> None:
    service = BridgeService(FakeEngine(), tmp_path / "out")  # type: ignore[arg-type]
    controller = FakeController()
    bridge = OscBridge(service, capture=controller)  # type: ignore[arg-type]
    sent = Recorder()
    bridge.attach(sent)

    def send(address: str, *args: Any) -> None:
        bridge.handle_datagram(build_msg(address, list(args)).dgram, CLIENT)

    send("/segue/capture/arm", 4)
    send("/segue/capture/arm", 0)
    send("/segue/capture/arm", 65)
    send("/segue/capture/arm", "four")
    assert controller.armed_with == [(4, CLIENT), (None, CLIENT)]
    errors = [args[0] for args in sent.of("/segue/error")]
    assert "bars must be in 0..64" in errors[0] and "must be a whole number" in errors[1]
    send("/segue/capture/cancel")
    send("/segue/capture/cancel")
    assert "no capture is armed" in sent.of("/segue/error")[-1][0]
    take = TakeResult(
        path=tmp_path / "c.wav",
        sample_rate_hz=SR,
        channels=2,
        frames=BAR,
        start_beats=8.0,
        length_bars=1,
        length_beats=4.0,
        tempo_bpm=120.0,
        meter=Meter(4, 4),
        tempo_changes=0,
        latency_frames=0,
        ended_by="bars",
        device="fake",
        clock_source="fake",
        clocks=97,
        quantized_stamps=True,
    )
    for event in (
        CaptureArmed(4, CLIENT),
        CaptureProgress(0.5, "recording bar 1 of 1", CLIENT),
        CaptureDone(take, CLIENT),
        CaptureFailed("no Start", False, CLIENT),
    ):
        controller.listeners[0](event)
    assert sent.of("/segue/capture/armed") == [[4]]
    assert sent.of("/segue/capture/progress") == [[0.5, "recording bar 1 of 1"]]
    assert sent.of("/segue/capture/done") == [[str(tmp_path / "c.wav"), 8.0, 4.0, 120.0]]
    assert sent.of("/segue/capture/failed") == [["no Start"]]
    service.close()


def test_cli_capture_refuses_an_existing_file_before_recording(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    existing = tmp_path / "mine.wav"
    existing.write_bytes(b"x")
    code = main(["capture", "--bars", "2", "--midi-clock-in", "p", "--out", str(existing)])
    assert code == 2 and "already exists" in capsys.readouterr().err
    code = main(["capture", "--bars", "0", "--midi-clock-in", "p", "--out", str(tmp_path / "n.wav")])
    assert code == 2 and "bars must be in 1..64" in capsys.readouterr().err
    code = main(["capture", "--help"])
    assert code == 0 and "--latency-frames" in capsys.readouterr().out


@pytest.mark.parametrize(("bpm", "period"), [(120.0, 1024), (120.0, 256), (97.5, 1024), (140.0, 1024)])
def test_jack_quantized_clocks_near_the_period_give_the_true_tempo(bpm: float, period: int) -> None:
    """Ardour at 120 BPM / 48 kHz sends a clock every 1000 frames; JACK delivers them per 1024-frame period, so
    each maps to the middle of its period: dozens of clocks in a row one period apart, then two in one period.
    The tempo is the clocks' tempo, not the period's (117.19 BPM), over one and over four bars; and a lost
    period in the middle is still a dropout, not a tempo."""
    rate = 48_000
    spacing = 60.0 * rate / (24 * bpm)
    for clocks in (4 * 24, 16 * 24):
        true = 1234.5 + spacing * np.arange(clocks)
        quantized = np.floor(true / period) * period + (period - 1) / 2.0
        [segment] = capture_tempo.fit_tempo_map(
            list(quantized), 0.0, rate, tolerance_frames=0.75 * period, quantum_frames=period
        )
        assert segment.tempo_bpm == pytest.approx(bpm, abs=0.01), (clocks, segment)
        assert abs(segment.frame - 1234.5) <= period / 2  # the first clock's frame, to within the quantization

    true = 1234.5 + 1000.0 * np.arange(8 * 24)
    true[100:] -= 1024  # JACK lost a period of our audio: the clocks land a period early from there on
    quantized = np.floor(true / 1024) * 1024 + 511.5
    with pytest.raises(BadInputError, match="out of step"):
        capture_tempo.fit_tempo_map(list(quantized), 0.0, 48_000, tolerance_frames=768, quantum_frames=1024)

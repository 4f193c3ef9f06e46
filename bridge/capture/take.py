"""One capture take, end to end: arm, wait for the DAW's Start, record, stop, trim to bars, write the WAV.

:func:`record_take` runs a take on the calling thread (``segue capture`` uses it with a progress bar and Ctrl-C);
:class:`bridge.capture.controller.CaptureController` runs takes on a thread for the bridge.

The clock comes from a :class:`~bridge.capture.options.ClockSource` (the bridge's
:class:`bridge.daemon.MidiClockIn`): every message with its ``perf_counter`` stamp, through a tap. The audio comes
from a recorder (:class:`bridge.sound_devices.SoundDeviceRecorder`), whose callbacks are stamped on the same
clock. During the take only stamps are collected; at the end :class:`~bridge.capture.session.StampMap` turns them
into capture frames and :class:`~bridge.capture.session.CaptureSession` fits the tempo map and cuts the bars (see
bridge/capture/session.py for the timing model).

What ends a take: the DAW's Stop, or ``bars`` whole bars after the first bar line (the clock position says when),
or ``max_bars``. What spoils one, with a message that says what to do: no clock port, no Start within
``wait_start_s``, the clock stopping mid-take without a Stop (a dropout or a vanished port), an audio dropout
(overflow or JACK xrun), a device that cannot be opened or runs at another rate, less than one whole bar.
The WAV is written atomically and never over an existing file (the name is checked before recording, too).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from bridge.capture.options import (
    POLL_S,
    ClockSource,
    Progress,
    Recorder,
    TakeOptions,
    TakeResult,
    TakeRuntime,
    check_out_path,
)
from bridge.capture.session import Capture, CaptureSession, StampMap, save_capture
from bridge.clock import PPQN, ClockState
from bridge.sound_devices import (
    PORTAUDIO_TIMEOUT_S,
    DeviceNotAnsweringError,
    release_audio,
    watched,
)
from engine.api import CancelToken
from engine.errors import BadInputError, CancelledError

log = logging.getLogger(__name__)


@dataclass
class _Event:
    kind: str  # start, continue, stop, clock, songpos
    stamp: float
    position_beats: float


class _Tap:
    """Collects the clock port's messages (port thread) for the take's loop (owner thread)."""

    def __init__(self) -> None:
        self._events: deque[_Event] = deque()
        self._lock = threading.Lock()

    def __call__(self, message: Any, stamp: float, state: ClockState) -> None:
        kind = str(getattr(message, "type", ""))
        if kind in ("clock", "start", "continue", "stop", "songpos"):
            with self._lock:
                self._events.append(_Event(kind, stamp, state.position_beats))

    def drain(self) -> list[_Event]:
        with self._lock:
            events = list(self._events)
            self._events.clear()
        return events


class _Take:
    """The state of one take between arming and cutting (owner thread only)."""

    def __init__(self, recorder: Recorder, options: TakeOptions, progress: Progress) -> None:
        self.recorder = recorder
        self.options = options
        self.progress = progress
        self.rate = recorder.sample_rate_hz
        meter = options.meter
        self.bpb = meter.quarters_per_bar
        self.session = CaptureSession(
            self.rate, latency_frames=options.latency_frames, meter=(meter.numerator, meter.denominator)
        )
        self.stamps = StampMap(self.rate)
        self.phase: Literal["armed", "starting", "rolling", "ending"] = "armed"
        self.start_beats = 0.0
        self.clocks: list[float] = []  # stamps of the clocks since the start (the first is the start position)
        self.end_stamp: float | None = None  # the Stop message, or the clock that completed the last bar
        self.ended_by: Literal["bars", "stop"] = "stop"
        self.ended_at: float | None = None  # when the end was seen (our clock)
        self.clocks_while_armed = 0
        self.warned_running = False
        self.last_event: float | None = None
        self.blocks = 0
        self.block_frames: list[int] = []

    # audio (recorder's sink)
    def on_block(
        self, block: npt.NDArray[np.float32], start: int, overflow: bool, stamp: float, device_time: float
    ) -> None:
        if overflow:
            self.session.xrun(start)
        self.session.add_block(block, start, self.rate, device_time)
        self.stamps.add(stamp, start, block.shape[0])
        self.blocks += 1
        if len(self.block_frames) < 64:
            self.block_frames.append(block.shape[0])
        if self.phase == "armed" and self.blocks % 256 == 0:
            self.stamps.forget_before(stamp - 5.0)

    @property
    def target_end_beats(self) -> float:
        first_bar = math.ceil(self.start_beats / self.bpb - 1e-6)
        bars = self.options.bars if self.options.bars is not None else self.options.max_bars
        return (first_bar + min(bars, self.options.max_bars)) * self.bpb

    # clock (tap events)
    def on_event(self, event: _Event, now: float) -> None:
        self.last_event = event.stamp
        kind = event.kind
        if self.phase == "armed":
            if kind in ("start", "continue"):
                self.phase = "starting"
                self.progress(0.0, f"the DAW started ({kind}); recording")
            elif kind == "clock":
                self.clocks_while_armed += 1
                if self.clocks_while_armed >= 2 * PPQN and not self.warned_running:
                    self.warned_running = True
                    self.progress(
                        0.0,
                        "the DAW is already playing: stop it, then press play (a take begins at the DAW's Start)",
                    )
        elif self.phase == "starting":
            if kind == "clock":
                self.start_beats = event.position_beats
                self.clocks.append(event.stamp)
                self.phase = "rolling"
                self.session.begin()  # keep all audio from here (and the pre-roll before it)
            elif kind == "stop":
                self.phase = "armed"  # started and stopped before the first clock: keep waiting
        elif self.phase == "rolling":
            if kind == "clock":
                self.clocks.append(event.stamp)
                position = self.start_beats + (len(self.clocks) - 1) / PPQN
                if position >= self.target_end_beats - 1e-9:
                    self._end("bars", event.stamp, now)
            elif kind in ("stop", "start", "continue"):  # a Start while rolling: the DAW relocated or looped
                self._end("stop", event.stamp, now)

    def record(self, tap: _Tap, port: str, cancel: CancelToken | None, runtime: TakeRuntime) -> None:
        """Armed, with the recorder started: pump the audio and the clock's events until the take is over and its
        tail is in. :class:`BadInputError` when it is spoiled, :class:`CancelledError` on ``cancel``."""
        recorder, options = self.recorder, self.options
        now, sleep = runtime.now, runtime.sleep
        armed_at = now()
        bars = f"{options.bars} bar(s)" if options.bars is not None else "until the DAW stops"
        self.progress(0.0, f"armed ({bars}, {recorder.device_name}, {self.rate} Hz): press play in the DAW")
        last_report = 0.0
        last_audio = armed_at
        while True:
            if cancel is not None and cancel.cancelled:
                raise CancelledError("capture cancelled")
            got = recorder.pump(self.on_block)
            if self.session.failure is not None:
                raise BadInputError(f"capture failed: {self.session.failure}; play the region again")
            t = now()
            if got:
                last_audio = t
            elif t - last_audio > max(1.0, options.stale_after_s):
                raise BadInputError(
                    f"the audio input {recorder.device_name!r} stopped delivering audio for {t - last_audio:.1f} s "
                    "(on JACK: the server may have dropped Segue's client after an overload; `jack_lsp` lists "
                    "PortAudio's ports while it is there). Arm again; if it keeps happening, restart Segue"
                )
            for event in tap.drain():
                self.on_event(event, t)
            if _take_over(self, options, t, armed_at, port):
                return
            if t - last_report >= 0.1:
                self.report()
                last_report = t
            sleep(POLL_S)

    def _end(self, why: Literal["bars", "stop"], stamp: float, now: float) -> None:
        self.phase, self.ended_by, self.end_stamp, self.ended_at = "ending", why, stamp, now

    def report(self) -> None:
        if self.phase != "rolling":
            return
        position = self.start_beats + (len(self.clocks) - 1) / PPQN
        first_bar_beats = math.ceil(self.start_beats / self.bpb - 1e-6) * self.bpb
        done = max(0.0, position - first_bar_beats)
        if self.options.bars is not None:
            total = self.options.bars * self.bpb
            bar = min(int(done // self.bpb) + 1, self.options.bars)
            what = f"recording bar {bar} of {self.options.bars}" if position >= first_bar_beats else "count-in"
            self.progress(min(done / total, 0.99), what)
        else:
            bar = int(done // self.bpb) + 1
            self.progress(0.0, f"recording bar {bar} (stop the DAW to end the take)")

    def tail_s(self) -> float:
        """How long to keep recording after the end: the audio of the last bar arrives ``latency`` later."""
        block = max(self.block_frames, default=1024)
        return max(0, self.options.latency_frames) / self.rate + 3 * block / self.rate + 0.05

    def cut(self) -> tuple[Capture, bool]:
        """Map the stamps to frames, fit the tempo, cut the bars."""
        if len(self.clocks) < 2:
            raise BadInputError(
                "the DAW stopped before two MIDI clocks arrived; play at least one whole bar after arming"
            )
        quantized = self.stamps.quantized(self.clocks)
        ends = [self.end_stamp] if self.end_stamp is not None else []
        frames = self.stamps.frames_of([*self.clocks, *ends], quantized=quantized)
        clock_frames = frames[: len(self.clocks)]
        block = float(np.median(self.block_frames)) if self.block_frames else 0.0
        # JACK-quantized stamps land up to half a period from the true frame; a clock mapped to a neighbouring
        # cycle, or a lost cycle, is a whole period off: three quarters of a period tells them apart
        self.session.clock_tolerance_frames = 0.75 * block if quantized and block else 0.004 * self.rate
        self.session.clock_quantum_frames = block if quantized and block else None
        self.session.start(clock_frames[0], self.start_beats)
        for f in clock_frames:
            self.session.clock(f)
        if self.ended_by == "stop" and self.end_stamp is not None:
            # the transport stopped after the last clock, never before it (both may share one JACK cycle)
            self.session.stop(max(frames[-1], clock_frames[-1]))
        # ended by the bar count: no stop; the take ends at the bar (the audio runs on for the tail)
        return self.session.finish(max_bars=self.options.bars or self.options.max_bars), quantized


def _nothing() -> None:
    pass


def _midi_inputs() -> str:
    """The MIDI inputs there are, or why there are none (for the no-clock error)."""
    from bridge.midiports import MidiPortError, list_ports

    try:
        inputs = list_ports().inputs
    except MidiPortError as e:
        return str(e)
    return "inputs: " + (", ".join(repr(name) for name in inputs) or "none")


def _realtime_thread(priority: int = 1) -> Callable[[], None]:
    """Best effort: run the calling thread SCHED_FIFO at the lowest realtime ``priority``; returns the undo (which
    may be called twice).

    Why: JACK calls our audio and MIDI callbacks on its realtime threads, and each needs the GIL. When this loop
    holds the GIL as an ordinary thread, a busy machine may preempt it for milliseconds and the callbacks miss
    their cycle (an xrun: the take is spoiled). As a realtime thread it is not preempted by ordinary processes.
    Measured on a loaded 2-core box (load 3-4), realtime JACK: 3 of 3 takes clean with this, 0 of 3 without.
    Where it is not allowed (no rtprio limit, another OS) the loop runs as it is."""
    setter = getattr(os, "sched_setscheduler", None)
    if setter is None:
        return _nothing
    try:
        policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
        if policy != os.SCHED_OTHER:
            return _nothing  # already realtime (or batch/idle on purpose): leave it
        setter(0, os.SCHED_FIFO, os.sched_param(priority))
    except (OSError, AttributeError) as e:
        log.debug("capture: no realtime scheduling for the recording loop (%s)", e)
        return _nothing
    done = False

    def undo() -> None:
        nonlocal done
        if not done:
            done = True
            try:
                setter(0, policy, param)
            except OSError:
                log.debug("capture: could not restore the scheduling policy", exc_info=True)

    return undo


def record_take(
    clock: ClockSource,
    out_path: Path,
    options: TakeOptions,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    runtime: TakeRuntime | None = None,
) -> TakeResult:
    """Record one take from ``clock`` and the recorder into ``out_path`` (a new .wav); see the module doc.

    :class:`BadInputError` for everything the producer can fix (the message says how), :class:`CancelledError`
    when ``cancel`` is set. ``runtime``: the audio input's opener, the time, and whether PortAudio is shut down
    afterwards (:class:`~bridge.capture.options.TakeRuntime`).
    """
    options.check()
    runtime = runtime or TakeRuntime()
    out_path = check_out_path(out_path)
    say = progress or (lambda fraction, message: None)
    port = clock.port_name
    _wait_for_clock(clock, options, cancel, runtime)
    tap = _Tap()
    recorder: Recorder | None = None
    clock.add_tap(tap)
    switch_interval = sys.getswitchinterval()
    # JACK runs our audio and MIDI callbacks on its (realtime) threads, and each needs the GIL: let a thread that
    # holds it hand it over after 1 ms instead of 5, so that a callback does not miss its cycle (an xrun)
    sys.setswitchinterval(min(switch_interval, 0.001))
    undo_realtime = _realtime_thread() if options.realtime else _nothing
    stuck = False  # a PortAudio call on this recorder was abandoned: it is not called again
    try:
        # PortAudio can block for good: each call is watched, so that a cancel is answered within 2 s
        recorder = watched("opening the audio input", lambda: runtime.open_recorder(options), cancel=cancel)
        take = _Take(recorder, options, say)
        try:
            watched(f"starting the audio input {recorder.device_name!r}", recorder.start, cancel=cancel)
        except (DeviceNotAnsweringError, CancelledError):
            stuck = True
            raise
        take.record(tap, port, cancel, runtime)
        closing = recorder
        try:  # the recorder bounds its own close; this bounds any other recorder's
            watched("closing the audio input", lambda: closing.close(take.on_block), timeout_s=PORTAUDIO_TIMEOUT_S + 1)
        except DeviceNotAnsweringError:
            stuck = True
            raise
        undo_realtime()
        if take.session.failure is not None:
            raise BadInputError(f"capture failed: {take.session.failure}; play the region again")
        capture, quantized = take.cut()
        say(0.99, "writing the take")
        path = save_capture(out_path, capture.audio, capture.sample_rate_hz)
    finally:
        undo_realtime()
        sys.setswitchinterval(switch_interval)
        clock.remove_tap(tap)
        if recorder is not None:
            try:
                if not stuck:
                    watched("closing the audio input", recorder.close)
            except Exception as e:  # the take's own outcome (or error) is what the caller hears
                log.warning("closing the audio input failed: %s", e)
            finally:
                if runtime.release:
                    release_audio()
    result = _take_result(take, capture, quantized, path, clock.source)
    say(1.0, f"captured {result.length_bars} bar(s) at {result.tempo_bpm:g} BPM")
    log.info("capture: %s", result)
    return result


def _wait_for_clock(clock: ClockSource, options: TakeOptions, cancel: CancelToken | None, runtime: TakeRuntime) -> None:
    """Until the clock's MIDI input is there (at most ``connect_timeout_s``); :class:`BadInputError` naming the
    inputs there are when it does not come."""
    now = runtime.now
    deadline = now() + options.connect_timeout_s
    while not clock.connected:
        if cancel is not None and cancel.cancelled:
            raise CancelledError("capture cancelled before it was armed")
        if now() >= deadline:
            raise BadInputError(
                f"no MIDI clock: the MIDI input {clock.port_name!r} is not available ({_midi_inputs()}); check that "
                "the DAW sends MIDI clock to it and that the name is right (`segue doctor` lists the MIDI inputs)"
            )
        runtime.sleep(POLL_S * 5)


def _take_over(take: _Take, options: TakeOptions, t: float, armed_at: float, port: str) -> bool:
    """Whether the take has ended and its tail is in; :class:`BadInputError` when the clock stopped mid-take
    without a Stop, or no Start came within ``wait_start_s`` of arming."""
    if take.phase == "ending":
        assert take.ended_at is not None
        return t - take.ended_at >= take.tail_s()
    if take.phase in ("rolling", "starting"):
        if take.last_event is not None and t - take.last_event > options.stale_after_s:
            where = take.start_beats + max(len(take.clocks) - 1, 0) / PPQN
            raise BadInputError(
                f"the MIDI clock from {port!r} stopped arriving mid-take (at beat {where:g}) without a Stop: "
                "a dropout or a vanished port; check the connection, then arm and play again"
            )
    elif t - armed_at > options.wait_start_s:
        hint = (
            "MIDI clocks arrive but no Start came: stop the DAW and press play again"
            if take.clocks_while_armed
            else f"no MIDI at all arrived on {port!r}: check that the DAW sends MIDI clock to it"
        )
        raise BadInputError(f"no Start from the DAW within {options.wait_start_s:g} s of arming; {hint}")
    return False


def _take_result(take: _Take, capture: Capture, quantized: bool, path: Path, source: str) -> TakeResult:
    options = take.options
    return TakeResult(
        path=path,
        sample_rate_hz=capture.sample_rate_hz,
        channels=int(capture.audio.shape[0]),
        frames=int(capture.audio.shape[1]),
        start_beats=capture.start_beats,
        length_bars=capture.length_bars,
        length_beats=capture.length_beats,
        tempo_bpm=capture.tempo_bpm,
        meter=options.meter,
        tempo_changes=capture.tempo_changes,
        latency_frames=options.latency_frames,
        ended_by=take.ended_by,
        device=take.recorder.device_name,
        clock_source=source,
        clocks=len(take.clocks),
        quantized_stamps=quantized,
    )

"""Whole takes in a simulated JACK world (256-frame cycles, clock stamped per cycle; tests/support/capture_rig.py):
bar lines, latency, the DAW's stop, lost clocks and audio, files never overwritten, cancel, the take's options."""

from __future__ import annotations

import os
import queue
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from capture_rig import BAR, GRID_ERROR, SR, World, clicks, run_take

import bridge.sound_devices as sound_devices
from bridge.capture.options import TakeOptions, TakeRuntime, check_out_path, default_capture_path
from bridge.capture.take import _realtime_thread, record_take
from bridge.sound_devices import SoundDeviceRecorder, release_audio
from engine.api import CancelToken
from engine.errors import BadInputError, CancelledError


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
            runtime=TakeRuntime(
                open_recorder=lambda o: world.recorder, now=world.now, sleep=sleep_then_cancel, release=False
            ),
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

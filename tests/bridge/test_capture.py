"""Capture without a sound device or JACK: the pure session on a synthetic click track (120 BPM, 48 kHz, 4/4),
saving it, and the recorder's checks. The tempo map: test_capture_tempo.py; whole takes: test_capture_take.py;
the bridge's controller, OSC addresses and CLI: test_capture_controller.py."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf
from capture_rig import BAR, BPM, FPB, SR

from bridge.capture.session import CaptureSession, save_capture
from bridge.clock import ClockState
from bridge.sound_devices import SoundDeviceRecorder
from engine.errors import BadInputError

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

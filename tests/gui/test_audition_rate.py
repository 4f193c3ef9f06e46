"""Audition at the device's own rate, through SoundDeviceOutput over a fake sounddevice module (no PortAudio, no
sound card): a device that plays only at 48 kHz gets a 44.1 kHz take resampled (PortAudio refuses the file's rate:
"Invalid sample rate [PaErrorCode -9997]"), and a device that appears after the first Play (a JACK server started
later) is found on the next Play, without a restart ("Error querying device -1" until then)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fake_engine import write_wav

from gui.core.audition import AuditionEvent, AuditionFailed, AuditionStarted, AuditionStopped, Player, SoundDeviceOutput
from gui.core.sound_output import resample


class PortAudioError(Exception):
    pass


class FakeSoundDevice:
    """What gui.core.sound_output uses of sounddevice. Like PortAudio, it lists its devices when it starts
    (``_initialize``): a device that appears later (``plug_in``) is seen only after it starts again."""

    def __init__(self, device_rate: int | None) -> None:
        self.plugged_rate = device_rate  # None: no output device on the machine (yet)
        self.seen_rate: int | None = None  # what PortAudio listed when it last started
        self._initialized = 0
        self.starts = 0
        self.streams: list[FakeStream] = []
        self._initialize()

    def plug_in(self, rate: int) -> None:
        self.plugged_rate = rate

    def _initialize(self) -> None:
        self._initialized += 1
        self.starts += 1
        self.seen_rate = self.plugged_rate

    def _terminate(self) -> None:
        self._initialized -= 1

    def _device(self) -> int:
        if self.seen_rate is None:
            raise PortAudioError("Error querying device -1")
        return self.seen_rate

    def check_output_settings(self, device: Any = None, samplerate: float = 0, **kwargs: Any) -> None:
        if int(samplerate) != self._device():
            raise PortAudioError("Invalid sample rate [PaErrorCode -9997]")

    def query_devices(self, device: Any = None, kind: str | None = None) -> dict[str, Any]:
        return {"name": "fake out", "default_samplerate": float(self._device()), "max_output_channels": 2}

    def OutputStream(self, samplerate: float, callback: Callable[..., None], **kwargs: Any) -> FakeStream:  # noqa: N802
        if int(samplerate) != self._device():
            raise PortAudioError("Error opening OutputStream: Invalid sample rate [PaErrorCode -9997]")
        stream = FakeStream(int(samplerate), callback)
        self.streams.append(stream)
        return stream


class FakeStream:
    def __init__(self, rate: int, callback: Callable[..., None]) -> None:
        self.rate, self.callback = rate, callback
        self.started = self.closed = False

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def run(self, seconds: float, block: int = 512) -> np.ndarray:
        """Pull ``seconds`` of sound the way PortAudio's callback thread does."""
        blocks = []
        for _ in range(int(seconds * self.rate) // block + 1):
            out = np.zeros((block, 2), dtype=np.float32)
            self.callback(out, block, None, None)
            blocks.append(out)
        return np.concatenate(blocks)


@pytest.fixture
def fake_sd(monkeypatch: pytest.MonkeyPatch) -> Callable[[int | None], FakeSoundDevice]:
    def make(rate: int | None) -> FakeSoundDevice:
        sd = FakeSoundDevice(rate)
        monkeypatch.setitem(sys.modules, "sounddevice", sd)
        return sd

    return make


def _wait(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert condition()


def test_a_44k_take_plays_through_a_48k_device_resampled(
    fake_sd: Callable[[int | None], FakeSoundDevice], tmp_path: Path
) -> None:
    sd = fake_sd(48_000)
    take = write_wav(tmp_path / "v01.wav", 0.5, sample_rate=44_100)  # a 220 Hz sine
    events: list[AuditionEvent] = []
    player = Player(SoundDeviceOutput, listener=events.append)
    try:
        player.play("v01", (take,))
        _wait(lambda: bool(events))
        assert isinstance(events[0], AuditionStarted), events  # not "Invalid sample rate"
        assert events[0].seconds == pytest.approx(0.5, abs=1e-3)  # the same length, in the device's frames
        (stream,) = sd.streams
        assert stream.rate == 48_000 and stream.started
        sound = stream.run(0.25)[:12_000, 0]  # a quarter second at 48 kHz
        crossings = np.count_nonzero(np.diff(np.signbit(sound)))
        assert crossings == pytest.approx(2 * 220 * 0.25, abs=3)  # still 220 Hz: resampled, not played fast
        stream.run(0.35)  # past the end
        _wait(lambda: any(isinstance(e, AuditionStopped) for e in events))
        assert player.position_seconds() == 0.0
    finally:
        player.close()


def test_a_device_that_appears_after_start_is_found_on_the_next_play(
    fake_sd: Callable[[int | None], FakeSoundDevice], tmp_path: Path
) -> None:
    sd = fake_sd(None)  # no output device yet (JACK not started)
    take = write_wav(tmp_path / "v01.wav", 0.3, sample_rate=44_100)
    events: list[AuditionEvent] = []
    player = Player(SoundDeviceOutput, listener=events.append)
    try:
        player.play("v01", (take,))
        _wait(lambda: bool(events))
        failed = events[-1]
        assert isinstance(failed, AuditionFailed)
        assert "No sound output is available" in failed.message and "start JACK" in failed.message
        sd.plug_in(48_000)  # the producer starts JACK, then presses Play again
        player.play("v01", (take,))
        _wait(lambda: isinstance(events[-1], AuditionStarted))
        assert [s.rate for s in sd.streams] == [48_000]
        assert sd.starts >= 2 and sd._initialized == 1  # PortAudio started again, once left running
    finally:
        player.close()


def test_resampling_keeps_the_length_and_the_pitch() -> None:
    rate_in, rate_out = 44_100, 48_000
    t = np.arange(rate_in) / rate_in
    tone = np.stack([np.sin(2 * np.pi * 1000 * t)] * 2, axis=1).astype(np.float32)
    out = resample(tone, rate_in, rate_out)
    assert out.shape == (rate_out, 2) and out.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(out[:, 0]))
    assert np.argmax(spectrum) == 1000  # 1 s at 48 kHz: bin n is n Hz

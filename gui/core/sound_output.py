"""Where audition's sound goes: :class:`SoundDeviceOutput` (a sounddevice/PortAudio stream) or :class:`FakeOutput`
(tests and the screenshot). No Qt.

A device plays at its own rate: :meth:`SoundDeviceOutput.rate_for` says which rate a take will be played at (the
file's when the device takes it, else the device's default, as a JACK server at 48 kHz asks), and the player
resamples the take to it (:func:`resample`) instead of refusing it. PortAudio lists its devices once, when it
starts: when no output answers, the output starts PortAudio again and asks once more, so a device plugged in (or a
JACK server started) after Segue started is found on the next Play.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from math import gcd
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from bridge.sound_devices import _rescan, watched
from engine.errors import SegueError

log = logging.getLogger(__name__)

Audio = npt.NDArray[np.float32]
"""float32 ``[frames, 2]``."""
CHANNELS = 2
NO_OUTPUT_ADVICE = (
    "Connect an audio interface or headphones (or start JACK), then press Play again; you can still drag the "
    "variants into your DAW."
)


class AuditionError(SegueError):
    """Sound cannot be played (no PortAudio, no output device, unreadable file); the message says what to do."""


class AudioOutput(Protocol):
    """An open-able sound output that pulls ``[frames, 2]`` float32 from ``pull`` on its own thread. An output may
    also have ``rate_for(sample_rate) -> int``: the rate it will play a take of that rate at (else: that rate)."""

    def open(self, sample_rate: int, pull: Callable[[int], Audio]) -> None: ...

    def close(self) -> None: ...


def resample(audio: Audio, rate_in: int, rate_out: int) -> Audio:
    """``[frames, channels]`` from ``rate_in`` to ``rate_out``: polyphase with an anti-alias filter (scipy), or
    linear interpolation where scipy is missing."""
    if rate_in == rate_out or len(audio) == 0:
        return audio
    try:
        from scipy.signal import resample_poly
    except ImportError:
        frames_out = int(round(len(audio) * rate_out / rate_in))
        x_in = np.arange(len(audio)) / rate_in
        x_out = np.arange(frames_out) / rate_out
        channels = [np.interp(x_out, x_in, audio[:, c]) for c in range(audio.shape[1])]
        return np.stack(channels, axis=1).astype(np.float32)
    common = gcd(rate_in, rate_out)
    out = resample_poly(audio, rate_out // common, rate_in // common, axis=0)
    return np.ascontiguousarray(out, dtype=np.float32)


class SoundDeviceOutput:
    """The default output: a low-latency sounddevice stream on ``device`` (None: the system default)."""

    def __init__(self, device: str | int | None = None) -> None:
        self.device = device
        self._stream: Any = None
        self._rate = 0
        self._pull: Callable[[int], Audio] | None = None

    def _module(self) -> Any:
        try:
            return importlib.import_module("sounddevice")
        except (ImportError, OSError) as e:
            raise AuditionError(
                f"Audition needs PortAudio, which is not installed ({e}). Install it (Debian/Ubuntu: "
                "apt install libportaudio2) and restart Segue; you can still drag the variants into your DAW."
            ) from e

    def rate_for(self, sample_rate: int) -> int:
        """The rate a take at ``sample_rate`` will play at: its own where the device takes it, else the device's
        default rate. Starts PortAudio again once when no output answers (a device that appeared since)."""
        if self._stream is not None and self._rate == sample_rate:
            return sample_rate
        sd = self._module()

        def choose() -> int:
            try:
                sd.check_output_settings(device=self.device, samplerate=sample_rate, channels=CHANNELS, dtype="float32")
                return sample_rate
            except Exception:
                info = sd.query_devices(self.device, "output")
                return int(info["default_samplerate"])

        try:
            return int(self._with_rescan("asking the sound output for its rate", choose))
        except Exception as e:
            raise AuditionError(f"No sound output is available ({e}). {NO_OUTPUT_ADVICE}") from e

    def open(self, sample_rate: int, pull: Callable[[int], Audio]) -> None:
        self._pull = pull
        if self._stream is not None and self._rate == sample_rate:
            return
        self.close()
        sd = self._module()

        def callback(outdata: Any, frames: int, time_info: Any, status: Any) -> None:
            puller = self._pull
            outdata[:] = puller(frames) if puller is not None else 0.0

        def start() -> Any:
            stream = sd.OutputStream(
                samplerate=sample_rate,
                channels=CHANNELS,
                dtype="float32",
                latency="low",
                device=self.device,
                callback=callback,
            )
            stream.start()
            return stream

        try:  # watched: PortAudio can block for good ("the audio device stopped answering: ...")
            stream = self._with_rescan("opening the sound output", start)
        except Exception as e:  # sounddevice.PortAudioError, ValueError for a bad device
            raise AuditionError(f"No sound output is available ({e}). {NO_OUTPUT_ADVICE}") from e
        self._stream, self._rate = stream, sample_rate

    def _with_rescan(self, what: str, action: Callable[[], Any]) -> Any:
        """``action`` under the PortAudio watchdog; when it fails and no stream is open, start PortAudio again
        (it lists devices only when it starts) and try once more."""
        try:
            return watched(what, action)
        except Exception as first:
            if self._stream is not None or "stopped answering" in str(first):
                raise
            log.info("%s failed (%s): looking for sound outputs again", what, first)
            sd = self._module()
            watched("looking for sound outputs again", lambda: _rescan(sd))
            return watched(what, action)

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                watched("closing the sound output", lambda: (stream.stop(), stream.close()))
            except Exception:
                log.debug("closing the audio stream failed", exc_info=True)


class FakeOutput:
    """An output without a device, for tests and the screenshot: ``pull`` it by hand to advance time.
    ``device_rate``: the one rate it plays at (0: any rate, as a take asks)."""

    def __init__(self, device_rate: int = 0) -> None:
        self.device_rate = device_rate
        self.rate = 0
        self.pull: Callable[[int], Audio] | None = None
        self.opened = 0
        self.closed = 0

    def rate_for(self, sample_rate: int) -> int:
        return self.device_rate or sample_rate

    def open(self, sample_rate: int, pull: Callable[[int], Audio]) -> None:
        if self.device_rate and sample_rate != self.device_rate:
            raise AuditionError(f"Invalid sample rate {sample_rate} (the device plays at {self.device_rate} Hz)")
        self.rate, self.pull = sample_rate, pull
        self.opened += 1

    def close(self) -> None:
        self.closed += 1

    def advance(self, seconds: float) -> Audio:
        if self.pull is None:
            return np.zeros((0, CHANNELS), dtype=np.float32)
        return self.pull(max(1, int(seconds * self.rate)))

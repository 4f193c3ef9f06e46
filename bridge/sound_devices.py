"""Sound devices for capture, through sounddevice (PortAudio): listing inputs (``segue doctor``), shutting PortAudio
down cleanly, and :class:`SoundDeviceRecorder`, whose stream callback only queues stamped blocks for the owner
thread to drain into a :class:`bridge.capture.session.CaptureSession`.

PortAudio can block for good (a JACK server that dropped our client, a driver that hangs), so every call into it
that the user waits on (opening, starting, stopping and closing a stream, listing devices, shutting PortAudio
down) goes through :func:`watched`: it runs on a daemon thread, and after :data:`PORTAUDIO_TIMEOUT_S` (or at once
when the user cancels) that thread is abandoned and :class:`DeviceNotAnsweringError` says "the audio device
stopped answering: ...". An abandoned call keeps PortAudio from being shut down (:func:`release_audio`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from engine.api import CancelToken
from engine.errors import BadInputError, CancelledError

log = logging.getLogger(__name__)
_STUCK: list[Any] = []  # PortAudio calls (threads) and recorders that did not return: PortAudio is not shut down

PORTAUDIO_TIMEOUT_S = 1.5  # a PortAudio call that takes longer is abandoned, so a cancel is answered within 2 s
_WATCH_POLL_S = 0.02
T = TypeVar("T")


class DeviceNotAnsweringError(BadInputError):
    """A PortAudio call did not return in time; its thread was abandoned (the producer checks the device)."""


def watched(
    what: str, call: Callable[[], T], *, timeout_s: float | None = None, cancel: CancelToken | None = None
) -> T:
    """``call()`` on a daemon thread, waited for at most ``timeout_s`` (default :data:`PORTAUDIO_TIMEOUT_S`) and
    not at all once ``cancel`` is set. Its result, or its exception, is passed on. When it does not return in
    time: :class:`DeviceNotAnsweringError` ("the audio device stopped answering: ``what`` ..."), or
    :class:`~engine.errors.CancelledError` when cancelled; the thread is left behind and PortAudio counts as stuck."""
    limit = PORTAUDIO_TIMEOUT_S if timeout_s is None else timeout_s
    outcome: list[Any] = []
    done = threading.Event()

    def run() -> None:
        try:
            outcome.append((True, call()))
        except BaseException as e:  # handed to the waiting thread
            outcome.append((False, e))
        finally:
            done.set()

    thread = threading.Thread(target=run, name=f"segue-portaudio ({what})", daemon=True)
    thread.start()
    deadline = time.monotonic() + limit
    while not done.wait(max(0.0, min(_WATCH_POLL_S, deadline - time.monotonic()))):
        if cancel is not None and cancel.cancelled:
            _STUCK.append(thread)
            log.warning("cancelled while %s did not return; its thread is left behind", what)
            raise CancelledError(f"cancelled while {what} did not return (the audio device is not answering)")
        if time.monotonic() >= deadline:
            _STUCK.append(thread)
            log.warning("%s did not return within %g s; its thread is left behind", what, limit)
            raise DeviceNotAnsweringError(
                f"the audio device stopped answering: {what} did not return within {limit:g} s. Check the audio "
                "interface (or the JACK server: it may have dropped Segue's client), then try again; if it keeps "
                "happening, restart Segue"
            )
    ok, value = outcome[0]
    if not ok:
        raise value
    result: T = value
    return result


def _sounddevice() -> Any:
    """The sounddevice module with PortAudio initialized; :class:`BadInputError` saying what to install."""
    try:
        import sounddevice as sd
    except (ImportError, OSError) as e:  # OSError: the package is there but PortAudio is not
        raise BadInputError(
            "audio capture needs sounddevice and PortAudio: `pip install sounddevice` and the system's "
            f"libportaudio2; on a machine without a sound card, run a JACK server ({e})"
        ) from e
    if getattr(sd, "_initialized", 1) == 0:  # released by release_audio(): start PortAudio again (rescans devices)
        sd._initialize()
    return sd


def release_audio() -> None:
    """Shut PortAudio down (closing its JACK client) if sounddevice is loaded; the next recorder starts it again and
    sees the devices (and JACK server) of that moment. Call it before stopping the JACK server PortAudio talks to:
    PortAudio 19.6 aborts the process when it shuts down after its JACK server is gone."""
    import sys

    sd = sys.modules.get("sounddevice")
    if sd is None:
        return
    if _STUCK:
        log.warning("not shutting PortAudio down: an audio stream is stuck (restart Segue to recover it)")
        return

    def terminate() -> None:
        while getattr(sd, "_initialized", 0) > 0:
            sd._terminate()

    try:
        watched("shutting PortAudio down", terminate)
    except DeviceNotAnsweringError as e:
        log.warning("%s", e)


def _rescan(sd: Any) -> None:
    """Re-initialize PortAudio so that it sees devices and JACK servers that appeared after it started."""
    while getattr(sd, "_initialized", 0) > 0:
        sd._terminate()
    sd._initialize()


def input_devices() -> list[dict[str, Any]]:
    """The audio inputs PortAudio sees: index, name, host API, input channels, default rate.
    :class:`DeviceNotAnsweringError` when PortAudio does not answer in time."""
    return watched("listing the audio devices", _input_devices)


def _input_devices() -> list[dict[str, Any]]:
    sd = _sounddevice()
    apis = sd.query_hostapis()
    return [
        {
            "index": i,
            "name": d["name"],
            "hostapi": apis[d["hostapi"]]["name"],
            "channels": int(d["max_input_channels"]),
            "sample_rate_hz": int(d["default_samplerate"]),
        }
        for i, d in enumerate(sd.query_devices())
        if d["max_input_channels"] > 0
    ]


def describe_inputs() -> str:
    """One line naming the audio inputs (for error messages and ``segue doctor``)."""
    try:
        devices = input_devices()
    except Exception as e:
        return f"(cannot list audio inputs: {e})"
    if not devices:
        return "no audio inputs"
    return "; ".join(
        f"{d['index']}: {d['name']!r} ({d['hostapi']}, {d['channels']} ch, {d['sample_rate_hz']} Hz)" for d in devices
    )


def audio_inputs_check() -> dict[str, Any]:
    """``segue doctor``'s entry: the audio inputs capture can record from (never a failure)."""
    try:
        devices = input_devices()
    except BadInputError as e:
        return {"ok": None, "detail": str(e)}
    except Exception as e:
        return {"ok": None, "detail": f"cannot list audio inputs: {e}"}
    finally:
        release_audio()
    if not devices:
        return {"ok": None, "detail": "no audio inputs (capture needs one; without a sound card, run JACK)"}
    shown = ", ".join(f"{d['name']!r} ({d['hostapi']}, {d['channels']} ch, {d['sample_rate_hz']} Hz)" for d in devices)
    return {"ok": True, "detail": f"inputs: {shown}"}


BlockSink = Callable[[npt.NDArray[np.float32], int, bool, float, float], None]
"""``sink(block [frames, channels], start_frame, overflow, stamp, device_time)``: one audio callback's block (stamp:
``perf_counter`` in the callback; device_time: PortAudio's ``inputBufferAdcTime``)."""


class SoundDeviceRecorder:
    """Record from a sounddevice input: ``device`` by name (substring, as sounddevice matches) or index; None: the
    default input. ``sample_rate_hz`` None: the device's own rate. ``channels`` None: up to 2 (what the device has).

    The stream callback only copies the block (with its ``time.perf_counter()`` stamp) onto a queue; call
    :meth:`pump` from the owner thread to hand the blocks to a sink. :meth:`close` may be called twice.
    """

    def __init__(
        self,
        *,
        device: str | int | None = None,
        channels: int | None = None,
        sample_rate_hz: int | None = None,
        blocksize: int = 0,
        now: Callable[[], float] = time.perf_counter,
    ) -> None:
        sd = _sounddevice()
        self._now = now
        self._queue: queue.SimpleQueue[tuple[npt.NDArray[np.float32], int, bool, float, float]] = queue.SimpleQueue()
        self.frames = 0  # frames received (callback thread)
        self._closed = False
        self._started = False
        try:
            info = self._device_info(sd, device)
        except BadInputError:
            _rescan(sd)  # a device (or a JACK server) that appeared after PortAudio started
            info = self._device_info(sd, device)
        self.device_name = str(info["name"])
        have = int(info["max_input_channels"])
        if channels is None:
            channels = min(2, have)
        elif not 1 <= channels <= have:
            raise BadInputError(f"audio input {self.device_name!r} has {have} input channel(s); --channels {channels}")
        rate = int(info["default_samplerate"]) if sample_rate_hz is None else int(sample_rate_hz)
        self.channels = channels
        try:
            self._stream: Any = sd.InputStream(
                device=info["index"],
                channels=channels,
                samplerate=rate,
                dtype="float32",
                blocksize=blocksize,
                callback=self._callback,
            )
        except Exception as e:  # sounddevice raises PortAudioError / ValueError
            own = int(info["default_samplerate"])
            if rate != own and ("sample rate" in str(e).lower() or "samplerate" in str(e).lower()):
                raise BadInputError(
                    f"audio input {self.device_name!r} cannot run at {rate} Hz; it runs at {own} Hz. Leave out the "
                    f"rate (the take is written at the device's rate) or set the DAW/JACK to {rate} Hz ({e})"
                ) from e
            raise BadInputError(f"cannot open audio input {self.device_name!r}: {e}") from e
        actual = int(self._stream.samplerate)
        if actual != rate:
            self.close()
            raise BadInputError(
                f"audio input {self.device_name!r} runs at {actual} Hz, not {rate} Hz; leave out the rate or set "
                f"the DAW/JACK to {rate} Hz"
            )
        self.sample_rate_hz = actual

    @staticmethod
    def _device_info(sd: Any, device: str | int | None) -> dict[str, Any]:
        try:
            info = dict(sd.query_devices(device, "input"))
        except Exception as e:  # ValueError: no such device; PortAudioError: no default input
            wanted = "the default audio input" if device is None else f"audio input {device!r}"
            raise BadInputError(
                f"cannot use {wanted} ({e}); inputs: {describe_inputs()}. Name one with --input "
                "(a name or its number; `segue doctor` lists them)"
            ) from e
        if int(info.get("max_input_channels", 0)) < 1:
            raise BadInputError(f"{info.get('name', device)!r} has no input channels; inputs: {describe_inputs()}")
        return info

    def _callback(self, indata: Any, frames: int, time_info: Any, status: Any) -> None:
        stamp = self._now()
        self._queue.put((indata.copy(), self.frames, bool(status.input_overflow), stamp, time_info.inputBufferAdcTime))
        self.frames += frames

    def start(self) -> None:
        self._stream.start()
        self._started = True

    def pump(self, sink: BlockSink) -> int:
        """Hand the queued blocks to ``sink`` (owner thread); returns how many."""
        count = 0
        while True:
            try:
                block, start, overflow, stamp, device_time = self._queue.get_nowait()
            except queue.Empty:
                return count
            sink(block, start, overflow, stamp, device_time)
            count += 1

    def close(self, sink: BlockSink | None = None, timeout_s: float = PORTAUDIO_TIMEOUT_S) -> None:
        """Stop and close the stream; the last blocks go to ``sink`` (or are dropped). Never raises.

        Bounded: PortAudio's JACK host waits for one more process callback to stop a stream, and JACK may have
        dropped an overloaded client, so the stop is :func:`watched`; after ``timeout_s`` the stream is left
        behind (logged) and PortAudio is not shut down while it hangs (:func:`release_audio` skips it)."""
        if self._closed:
            return
        self._closed = True

        def stop() -> None:
            if self._started:
                self._stream.stop()
            self._stream.close()

        try:
            watched(f"closing the audio input {self.device_name!r}", stop, timeout_s=timeout_s)
        except DeviceNotAnsweringError:
            _STUCK.append(self)
            log.warning(
                "the audio input %r did not stop (JACK may have dropped its client); left behind", self.device_name
            )
        except Exception:
            log.warning("closing the audio input failed", exc_info=True)
        finally:
            if sink is not None:
                self.pump(sink)

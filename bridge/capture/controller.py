"""The bridge's capture: one take at a time on a thread (``/segue/capture/arm``), its events to listeners."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bridge.capture.options import (
    ClockSource,
    RecorderFactory,
    TakeOptions,
    TakeResult,
    TakeRuntime,
    default_capture_path,
    open_sound_device,
)
from bridge.capture.take import record_take
from bridge.events import Event, Origin
from bridge.listeners import Listeners
from engine.api import CancelToken
from engine.errors import BadInputError, CancelledError, EngineError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CaptureArmed(Event):
    bars: int  # 0: until the DAW's Stop


@dataclass(frozen=True)
class CaptureProgress(Event):
    fraction: float
    message: str


@dataclass(frozen=True)
class CaptureDone(Event):
    result: TakeResult


@dataclass(frozen=True)
class CaptureFailed(Event):
    message: str
    cancelled: bool = False


CaptureEvent = CaptureArmed | CaptureProgress | CaptureDone | CaptureFailed


class CaptureController:
    """Arm takes for the bridge: one at a time, each on its own thread, written to ``folder`` under a fresh name.

    ``on_done(result)`` runs on the take's thread before :class:`CaptureDone` is sent (the bridge makes the take
    its current region there). Listeners are called on the take's thread.
    """

    def __init__(
        self,
        clock: ClockSource | None,
        folder: Path,
        options: TakeOptions,
        *,
        on_done: Callable[[TakeResult], None] | None = None,
        open_recorder: RecorderFactory = open_sound_device,
    ) -> None:
        options.check()
        self.clock = clock
        self.folder = folder
        self.options = options
        self._on_done = on_done
        self._open_recorder = open_recorder
        self._lock = threading.Lock()
        self._listeners: Listeners[CaptureEvent] = Listeners("a capture listener")
        self._thread: threading.Thread | None = None
        self._cancel: CancelToken | None = None
        self._closed = False

    def add_listener(self, listener: Callable[[CaptureEvent], None]) -> None:
        self._listeners.add(listener)

    @property
    def armed(self) -> bool:
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    def arm(self, bars: int | None, origin: Origin = None) -> None:
        """Arm a take of ``bars`` bars (None or 0: until the DAW's Stop); returns at once.
        :class:`BadInputError` when there is no clock, a take is already armed, or ``bars`` is out of range."""
        if self.clock is None:
            raise BadInputError(
                "capture needs the DAW's MIDI clock: start segue bridge with --midi-clock-in PORT "
                "(and --capture-input DEVICE for the audio)"
            )
        options = dataclasses.replace(self.options, bars=bars or None)
        options.check()
        with self._lock:
            if self._closed:
                raise BadInputError("the bridge is shutting down")
            if self._thread is not None and self._thread.is_alive():
                raise BadInputError("a capture is already armed; send /segue/capture/cancel first")
            self._cancel = CancelToken()
            self._thread = threading.Thread(
                target=self._run, args=(options, self._cancel, origin), name="segue-capture", daemon=True
            )
            self._thread.start()

    def cancel(self) -> bool:
        """Cancel the armed take; False if none is armed."""
        with self._lock:
            token = self._cancel if self._thread is not None and self._thread.is_alive() else None
        if token is None:
            return False
        token.cancel()
        return True

    def close(self, timeout: float = 5.0) -> None:
        with self._lock:
            self._closed = True
            thread, token = self._thread, self._cancel
        if token is not None:
            token.cancel()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _emit(self, event: CaptureEvent) -> None:
        self._listeners.emit(event)

    def _run(self, options: TakeOptions, cancel: CancelToken, origin: Origin) -> None:
        assert self.clock is not None
        self._emit(CaptureArmed(options.bars or 0, origin=origin))
        try:
            path = default_capture_path(self.folder)
            result = record_take(
                self.clock,
                path,
                options,
                progress=lambda fraction, message: self._emit(CaptureProgress(fraction, message, origin=origin)),
                cancel=cancel,
                runtime=TakeRuntime(open_recorder=self._open_recorder),
            )
            if self._on_done is not None:
                self._on_done(result)
        except CancelledError:
            self._emit(CaptureFailed("capture cancelled", True, origin=origin))
            return
        except Exception as e:
            if not isinstance(e, BadInputError | EngineError):
                log.exception("capture failed")
            message = str(e) if isinstance(e, BadInputError | EngineError) else f"{type(e).__name__}: {e}"
            self._emit(CaptureFailed(message, False, origin=origin))
            return
        self._emit(CaptureDone(result, origin=origin))

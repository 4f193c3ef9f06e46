"""Show a job's progress on a text stream (stderr): one updating bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import logging
import threading
import time
from typing import TextIO

log = logging.getLogger(__name__)

_BAR_CELLS = 24
_MIN_REDRAW_SECONDS = 0.1


class ProgressPrinter:
    """A progress callback ``(fraction, message)``. Safe to call from the engine's thread.

    On a terminal it redraws one line (``[#########...] 45%  generating``); elsewhere (a log file, a pipe) it
    writes a line when the message changes or every ``line_step`` of progress, so logs stay short.
    """

    def __init__(self, stream: TextIO, is_tty: bool | None = None, line_step: float = 0.1) -> None:
        self._stream = stream
        self._tty = stream.isatty() if is_tty is None else is_tty
        self._line_step = line_step
        self._lock = threading.Lock()
        self._last_message = ""
        self._last_fraction = -1.0
        self._last_draw = 0.0
        self._width = 0
        self._closed = False

    def __call__(self, fraction: float, message: str) -> None:
        with self._lock:
            if self._closed:
                return
            if self._tty:
                self._draw(fraction, message)
            elif message != self._last_message or fraction >= self._last_fraction + self._line_step:
                self._stream.write(f"{fraction * 100:5.1f}%  {message}\n")
                self._stream.flush()
                self._last_fraction = fraction
            self._last_message = message

    def _draw(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        if message == self._last_message and fraction < 1.0 and now - self._last_draw < _MIN_REDRAW_SECONDS:
            return
        filled = round(fraction * _BAR_CELLS)
        line = f"[{'#' * filled}{'.' * (_BAR_CELLS - filled)}] {fraction * 100:3.0f}%  {message}"
        pad = max(0, self._width - len(line))
        self._stream.write("\r" + line + " " * pad)
        self._stream.flush()
        self._width = len(line)
        self._last_draw = now

    def close(self) -> None:
        """End the updating line so that what follows starts on a fresh line. Later calls are ignored."""
        with self._lock:
            if self._tty and self._width and not self._closed:
                self._stream.write("\n")
                self._stream.flush()
            self._closed = True

    def note(self, text: str) -> None:
        """Write a message line without garbling the bar."""
        with self._lock:
            if self._tty and self._width:
                self._stream.write("\r" + " " * self._width + "\r")
                self._width = 0
            self._stream.write(text + "\n")
            self._stream.flush()

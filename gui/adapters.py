"""Thin Qt adapters: events from the bridge service, the OSC server, the engine and the player arrive on their
own threads; :class:`QtEventPump` turns each into a queued signal, so the session handles it on the GUI thread.

Also the GUI-side pieces that need Qt: the transport timer and the exception hook (a report dialog, on the GUI
thread only; other threads' errors are logged).
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections.abc import Callable
from types import TracebackType

from PyQt6.QtCore import QObject, Qt, QTimer, pyqtSignal, pyqtSlot
from PyQt6.QtWidgets import QMessageBox, QWidget

log = logging.getLogger(__name__)


class QtEventPump(QObject):
    """``post(event)`` from any thread; the event is handed to the handler (and ``delivered``) on the GUI thread."""

    delivered = pyqtSignal(object)  # not "event": that would hide QObject.event(), which Qt calls
    _posted = pyqtSignal(object)

    def __init__(self, handler: Callable[[object], None] | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._handler = handler
        self._posted.connect(self._deliver, Qt.ConnectionType.QueuedConnection)  # type: ignore[call-arg]

    def set_handler(self, handler: Callable[[object], None]) -> None:
        self._handler = handler

    def post(self, event: object) -> None:
        """Thread-safe: queue ``event`` for the GUI thread."""
        self._posted.emit(event)

    @pyqtSlot(object)
    def _deliver(self, event: object) -> None:
        if self._handler is not None:
            self._handler(event)
        self.delivered.emit(event)


class QtTicker(QObject):
    """Calls ``tick`` every ``interval_ms`` on the GUI thread (the transport readout)."""

    def __init__(self, tick: Callable[[], None], interval_ms: int = 66, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._tick = tick
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._on_timeout)

    def start(self) -> None:
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _on_timeout(self) -> None:
        try:
            self._tick()
        except Exception:
            log.exception("the transport display failed")
            self.timer.stop()


def install_excepthook(window: QWidget) -> None:
    """Show unexpected errors in a dialog (on the GUI thread) instead of dying; other threads only log."""
    gui_thread = threading.current_thread()

    def hook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        log.error("unexpected error", exc_info=(kind, value, tb))
        if threading.current_thread() is not gui_thread or issubclass(kind, KeyboardInterrupt):
            return
        text = "".join(traceback.format_exception(kind, value, tb))
        box = QMessageBox(window)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Segue: something went wrong")
        box.setText(f"Segue hit an unexpected error and kept running:\n\n{value}")
        box.setDetailedText(text)
        box.open()

    sys.excepthook = hook

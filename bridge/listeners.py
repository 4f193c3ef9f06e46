"""Listeners of a component's events (the bridge service, the capture controller, the Segue Link endpoint): added
and removed from any thread; each event goes to the listeners there were when it happened, on the emitting
thread; a listener that fails is logged and the others still hear the event."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

E = TypeVar("E")


class Listeners(Generic[E]):
    def __init__(self, what: str) -> None:
        self.what = what  # "a bridge listener", in the log line of a failure
        self._lock = threading.Lock()
        self._listeners: list[Callable[[E], None]] = []

    def add(self, listener: Callable[[E], None]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def remove(self, listener: Callable[[E], None]) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def emit(self, event: E) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:
                log.exception("%s failed on %s", self.what, type(event).__name__)

"""One daemon thread that handles the items put in its queue, one at a time and in order (the bridge's job worker
and its placement thread, :mod:`bridge.service`)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class QueueWorker(Generic[T]):
    """``handle(item)`` on the worker's thread for every :meth:`put` item, until :meth:`stop`. ``handle`` owns its
    errors: an exception out of it ends the thread."""

    def __init__(self, name: str, handle: Callable[[T], None]) -> None:
        self.name = name
        self._handle = handle
        self._queue: queue.Queue[T | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    @property
    def started(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def put(self, item: T) -> None:
        self._queue.put(item)

    def waiting(self) -> int:
        """How many items wait (about: the thread may be taking one)."""
        return self._queue.qsize()

    def drop_waiting(self) -> int:
        """Take the waiting items off the queue unhandled; returns how many there were."""
        dropped = 0
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return dropped
            dropped += item is not None

    def stop(self, timeout: float) -> bool:
        """End the thread after the items already put; wait up to ``timeout`` s for it (not when called from the
        thread itself). False if it is still running then."""
        self._queue.put(None)
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            self._handle(item)

"""The engine as the app holds it: opened in the background (the local engine loads torch, which takes seconds),
switchable between local and a server URL, and usable by the bridge service before it is ready.

:class:`EngineHandle` is an :class:`engine.api.Engine` that forwards to whatever :func:`engine.entrypoints.open_engine`
(or a test's factory) returned. The app never asks which kind it is. Its state changes go to a listener as
:class:`EngineState` values, from the opening thread. No Qt.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from engine.api import CancelToken, Engine, GenerationRequest, GenerationResult, ModelInfo, ProgressCallback
from engine.errors import EngineError, SegueError

log = logging.getLogger(__name__)

EngineFactory = Callable[..., Engine]
"""``factory(spec, **options) -> Engine``, like :func:`engine.entrypoints.open_engine`."""
OPEN_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class EngineState:
    spec: str  # "local" or a URL
    status: Literal["opening", "ready", "failed"]
    name: str = ""  # the engine's own name once ready, e.g. "local (cpu)"
    models: tuple[ModelInfo, ...] = ()
    message: str = ""  # why it failed, in words for the user


class EngineHandle:
    """An :class:`Engine` that opens the real one on a background thread (:meth:`open`)."""

    def __init__(self, factory: EngineFactory, listener: Callable[[EngineState], None] | None = None) -> None:
        self._factory = factory
        self._listener = listener
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._engine: Engine | None = None
        self._state = EngineState("", "failed", message="no engine chosen yet")
        self._generation = 0

    @property
    def state(self) -> EngineState:
        with self._lock:
            return self._state

    def set_listener(self, listener: Callable[[EngineState], None] | None) -> None:
        self._listener = listener

    def open(self, spec: str, token: str = "", wait: bool = False) -> None:
        """Open ``spec`` ("local" or a URL) on a background thread; jobs submitted meanwhile wait for it."""
        options: dict[str, Any] = {"token": token} if token and spec.startswith(("http://", "https://")) else {}
        with self._lock:
            self._generation += 1
            generation = self._generation
            previous, self._engine = self._engine, None
            self._ready.clear()
        _close(previous)
        self._set(EngineState(spec, "opening", name=f"{spec} (starting)"), generation)
        thread = threading.Thread(
            target=self._open, args=(spec, options, generation), name="segue-engine-open", daemon=True
        )
        thread.start()
        if wait:
            thread.join()

    def _open(self, spec: str, options: dict[str, Any], generation: int) -> None:
        try:
            engine = self._factory(spec, **options)
            models = tuple(engine.models())
        except SegueError as e:
            self._fail(spec, str(e), generation)
            return
        except Exception as e:  # torch missing, a broken install: say so, never crash the app
            log.debug("opening the engine failed", exc_info=True)
            hint = " (the local engine needs: pip install 'segue[engine]')" if spec == "local" else ""
            self._fail(spec, f"the engine could not start: {type(e).__name__}: {e}{hint}", generation)
            return
        with self._lock:
            current = generation == self._generation
            if current:
                self._engine = engine
                self._ready.set()
        if not current:  # the user chose another engine meanwhile
            _close(engine)
            return
        self._set(EngineState(spec, "ready", name=engine.name, models=models), generation)

    def check(self) -> None:
        """After a failure: an engine that can tell it is gone (an engine process that died) is marked failed, so
        the Connections panel shows it and Connect starts it again."""
        with self._lock:
            engine, state, generation = self._engine, self._state, self._generation
        if engine is None or getattr(engine, "alive", True):
            return
        with self._lock:
            if self._engine is engine:
                self._engine = None
        message = "the engine process stopped; press Connect to start it again"
        self._set(EngineState(state.spec, "failed", name=state.name, message=message), generation)

    def close(self) -> None:
        """Let go of the engine (an engine process is stopped)."""
        with self._lock:
            self._generation += 1
            engine, self._engine = self._engine, None
            self._ready.set()
        _close(engine)

    def _fail(self, spec: str, message: str, generation: int) -> None:
        log.warning("engine %s: %s", spec, message)
        with self._lock:
            if generation != self._generation:
                return
            self._ready.set()  # waiting jobs fail with the message instead of hanging
        self._set(EngineState(spec, "failed", name=spec, message=message), generation)

    def _set(self, state: EngineState, generation: int) -> None:
        with self._lock:
            if generation != self._generation:
                return
            self._state = state
        listener = self._listener
        if listener is not None:
            try:
                listener(state)
            except Exception:
                log.exception("an engine listener failed")

    def _current(self) -> Engine:
        if not self._ready.wait(OPEN_TIMEOUT_S):
            raise EngineError(f"the engine did not start within {OPEN_TIMEOUT_S:.0f} s")
        with self._lock:
            engine, state = self._engine, self._state
        if engine is None:
            raise EngineError(state.message or "no engine is available; choose one in Connections")
        return engine

    # -- the Engine protocol ---------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The real engine's name; waits for it to open (the service asks on its worker thread, the GUI never)."""
        try:
            return self._current().name
        except SegueError:
            return self.state.spec or "engine"

    def models(self) -> list[ModelInfo]:
        return list(self._current().models())

    def generate(
        self,
        request: GenerationRequest,
        job_dir: Path,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> GenerationResult:
        return self._current().generate(request, job_dir, progress, cancel)


def _close(engine: object) -> None:
    """Close an engine that has ``close()`` (an engine process); others have nothing to let go of."""
    close = getattr(engine, "close", None)
    if callable(close):
        try:
            close()
        except Exception:
            log.exception("closing the engine failed")

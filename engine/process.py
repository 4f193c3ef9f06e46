"""The local engine in a child process, for the desktop app (:mod:`gui.app`): the window's process never loads
torch, and the engine's C extensions (sampling, soundfont rendering), which hold Python's lock for tens or hundreds
of milliseconds, cannot pause the window.

:class:`ProcessEngine` is an :class:`engine.api.Engine`: ``generate`` sends the request to the child, relays its
progress, passes Cancel on, and returns its result or raises its error; files are written by the child into the
job folder as the in-process engine would. The child is started with ``spawn`` (never ``fork``: the app has
threads) and ignores Ctrl-C; :meth:`ProcessEngine.close` stops it, and it dies with the app.
"""

from __future__ import annotations

import logging
import multiprocessing
import pickle
import signal
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from engine import entrypoints
from engine.api import CancelToken, Engine, GenerationRequest, GenerationResult, ModelInfo, ProgressCallback
from engine.errors import EngineError

log = logging.getLogger(__name__)

EngineFactory = Callable[..., Engine]
START_TIMEOUT_S = 180.0  # torch and the model load in the child
_POLL_S = 0.05


class ProcessEngine:
    """``factory(spec, **options)`` (picklable: a module-level function) builds the engine in a child process."""

    def __init__(
        self,
        spec: str = "local",
        factory: EngineFactory = entrypoints.open_engine,
        options: dict[str, Any] | None = None,
        start_timeout_s: float = START_TIMEOUT_S,
    ) -> None:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        self._process = context.Process(
            target=serve, args=(theirs, factory, spec, options or {}), name="segue-engine", daemon=True
        )
        self._process.start()
        theirs.close()
        self._conn: Connection = ours
        self._lock = threading.Lock()  # one request at a time through the pipe
        reply = self._receive(start_timeout_s, "starting")
        if reply[0] == "error":
            self.close()
            raise reply[1]
        _, self._name, models = reply
        self._models: list[ModelInfo] = list(models)

    @property
    def name(self) -> str:
        return str(self._name)

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def models(self) -> list[ModelInfo]:
        return list(self._models)

    def generate(
        self,
        request: GenerationRequest,
        job_dir: Path,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> GenerationResult:
        with self._lock:
            self._send(("generate", request, job_dir), "generating")
            asked_to_cancel = False
            while True:
                if cancel is not None and cancel.cancelled and not asked_to_cancel:
                    self._send(("cancel",), "generating")
                    asked_to_cancel = True
                reply = self._receive(_POLL_S, "generating", wait=False)
                if reply[0] == "none":
                    continue
                if reply[0] == "progress":
                    if progress is not None:
                        progress(reply[1], reply[2])
                elif reply[0] == "result":
                    result: GenerationResult = reply[1]
                    return result
                elif reply[0] == "error":
                    raise reply[1]

    def close(self) -> None:
        """Stop the child (a running job is cancelled). Safe to call twice."""
        try:
            self._conn.send(("close",))
        except (OSError, ValueError):
            pass
        self._process.join(3.0)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(2.0)
        self._conn.close()

    def _send(self, message: tuple[Any, ...], doing: str = "") -> None:
        """A child that died while we wrote to it is explained like one that died while we read (the same
        event: which end of the pipe notices first is a race)."""
        try:
            self._conn.send(message)
        except (OSError, ValueError) as e:
            raise EngineError(self._gone(doing)) from e

    def _receive(self, timeout_s: float, doing: str, wait: bool = True) -> tuple[Any, ...]:
        """The child's next message; ``("none",)`` when ``wait`` is False and nothing came within the timeout."""
        try:
            ready = self._conn.poll(timeout_s)
        except (OSError, ValueError) as e:
            raise EngineError(self._gone(doing)) from e
        if not ready:
            if not self._process.is_alive():
                raise EngineError(self._gone(doing))
            if wait:
                raise EngineError(f"the engine process did not answer within {timeout_s:.0f} s while {doing}")
            return ("none",)
        try:
            message: tuple[Any, ...] = self._conn.recv()
        except (EOFError, OSError) as e:
            raise EngineError(self._gone(doing)) from e
        return message

    def _gone(self, doing: str) -> str:
        self._process.join(0.5)
        code = self._process.exitcode
        how = f" (exit code {code})" if code is not None else ""
        when = f" while {doing}" if doing else ""
        return (
            f"the engine process stopped{when}{how}; it may have run out of memory. Press Connect under "
            "Connections > Engine to start it again"
        )


def serve(conn: Connection, factory: EngineFactory, spec: str, options: dict[str, Any]) -> None:
    """The child: build the engine, say ready, then answer requests until ``close`` or the pipe ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the terminal is for the app, which closes us
    try:
        engine = factory(spec, **options)
        conn.send(("ready", engine.name, list(engine.models())))
    except BaseException as e:
        conn.send(("error", _portable(e)))
        return
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "close":
            return
        if message[0] == "generate":
            if _generate(conn, engine, message[1], message[2]):
                return


def _generate(conn: Connection, engine: Engine, request: GenerationRequest, job_dir: Path) -> bool:
    """Run one job, relaying progress; a thread listens for cancel meanwhile. True when asked to close."""
    token = CancelToken()
    done = threading.Event()
    closing = threading.Event()
    send_lock = threading.Lock()

    def send(message: tuple[Any, ...]) -> None:
        with send_lock:
            conn.send(message)

    def listen() -> None:
        while not done.is_set():
            try:
                if not conn.poll(_POLL_S):
                    continue
                message = conn.recv()
            except (EOFError, OSError):
                token.cancel()
                closing.set()
                return
            if message[0] in ("cancel", "close"):
                token.cancel()
                if message[0] == "close":
                    closing.set()

    listener = threading.Thread(target=listen, name="segue-engine-cancel", daemon=True)
    listener.start()
    try:
        result = engine.generate(request, job_dir, lambda f, m: send(("progress", f, m)), token)
        reply: tuple[Any, ...] = ("result", result)
    except BaseException as e:
        reply = ("error", _portable(e))
    done.set()
    listener.join()
    try:
        send(reply)
    except (OSError, ValueError):
        return True
    return closing.is_set()


def _portable(error: BaseException) -> BaseException:
    """The error itself when it survives pickling (SegueError and its kind: the runner tells cancel from failure
    by type), else an EngineError that names it."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return EngineError(f"{type(error).__name__}: {error}")
    return error


def process_engine_factory(spec: str, **options: Any) -> Engine:
    """:func:`engine.entrypoints.open_engine` for the app: ``"local"`` runs in a child process, a server URL in-process
    (it is only HTTP)."""
    if spec == "local":
        return ProcessEngine(spec, entrypoints.open_engine, options)
    return entrypoints.open_engine(spec, **options)

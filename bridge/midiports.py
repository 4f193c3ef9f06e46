"""The thin mido layer under the MIDI clock: port names, a clock input that reconnects, a clock output thread.

Backend: mido's, chosen by ``MIDO_BACKEND`` (default ``mido.backends.rtmidi``, i.e. python-rtmidi on ALSA).
Machines without an ALSA sequencer (no ``/dev/snd``) use JACK: ``MIDO_BACKEND=mido.backends.rtmidi/UNIX_JACK``
with a running JACK server (``JACK_DEFAULT_SERVER=NAME``). When no backend works, :func:`list_ports` raises a
:class:`MidiPortError` that says why and what to do; the bridge logs it and goes on without MIDI.

Clock is not filtered: rtmidi ignores timing messages by default, but mido 1.3's rtmidi backend opens every input
with ``MidiIn.ignore_types(sysex=False, timing=False, active_sense=True)`` (mido/backends/rtmidi.py,
``Input._open``), so 0xF8 clocks and Start/Continue/Stop/Song Position reach our callback; only Active Sensing is
dropped. A backend that filters clock would show as a port that never delivers ticks (``stale`` while playing).

Timestamps: mido's rtmidi callback drops rtmidi's per-message delta time, so :class:`ClockInput` stamps each
message with ``time.perf_counter()`` when the callback runs. Callbacks arrive on the backend's own thread
(rtmidi issue #194); :class:`ClockInput` feeds its :class:`~bridge.clock.ClockFollower` under a lock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import mido

from bridge.clock import ClockFollower, ClockSender, ClockState
from engine.errors import SegueError

log = logging.getLogger(__name__)

DEFAULT_BACKEND = "mido.backends.rtmidi"
CLOCK_TYPES = frozenset({"clock", "start", "continue", "stop", "songpos"})
MIN_RETRY_S, MAX_RETRY_S = 0.05, 60.0


class MidiPortError(SegueError, OSError):
    """No usable MIDI backend, or a port that cannot be opened. The message says why and what to do."""


class InputPort(Protocol):
    def close(self) -> None: ...


class OutputPort(Protocol):
    def send(self, msg: mido.Message) -> None: ...

    def close(self) -> None: ...


MessageCallback = Callable[[mido.Message], None]
Opener = Callable[[str, MessageCallback], InputPort]
"""``opener(name, callback)`` opens an input port that calls ``callback(message)`` on its own thread."""
Lister = Callable[[], list[str]]


@dataclass(frozen=True)
class PortNames:
    backend: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def backend_spec() -> str:
    """The mido backend Segue uses: ``$MIDO_BACKEND`` or :data:`DEFAULT_BACKEND` (``module[/API]``)."""
    return os.environ.get("MIDO_BACKEND", "").strip() or DEFAULT_BACKEND


def _backend(spec: str | None = None) -> Any:
    spec = spec or backend_spec()
    try:
        return mido.Backend(spec, load=True, use_environ=False)
    except ImportError as e:
        hint = " (pip install python-rtmidi)" if "rtmidi" in spec else ""
        raise MidiPortError(f"MIDI backend {spec} cannot be loaded: {e}{hint}") from e


def _unusable(spec: str, e: Exception) -> MidiPortError:
    hint = (
        "; no ALSA sequencer here? Start JACK and set MIDO_BACKEND=mido.backends.rtmidi/UNIX_JACK"
        if "/UNIX_JACK" not in spec
        else "; start JACK first (and set JACK_DEFAULT_SERVER if the server has a name)"
    )
    return MidiPortError(f"MIDI backend {spec} is not usable: {e}{hint}")


def list_ports(spec: str | None = None) -> PortNames:
    """Input and output port names; :class:`MidiPortError` when the backend cannot be used."""
    spec = spec or backend_spec()
    backend = _backend(spec)
    try:
        inputs = tuple(backend.get_input_names())
        outputs = tuple(backend.get_output_names())
    except Exception as e:  # rtmidi raises its own SystemError (an OSError) when ALSA/JACK is absent
        raise _unusable(spec, e) from e
    return PortNames(spec, inputs, outputs)


def input_names(spec: str | None = None) -> list[str]:
    return list(list_ports(spec).inputs)


class InputLister:
    """Lists input names again and again through one long-lived backend client.

    mido's ``get_input_names`` opens and closes a new rtmidi client per call; on JACK each open/close reconfigures
    the server's graph and, while our own port's callback waits for the GIL, stalls JACK's process cycle for up to
    seconds (measured in tests/integration/test_clock_jack.py). A watcher that polls every few seconds therefore
    keeps one rtmidi ``MidiIn`` (which opens no port) and asks it; other backends fall back to mido.
    """

    def __init__(self, spec: str | None = None) -> None:
        self.spec = spec or backend_spec()
        self._client: Any = None
        self._lock = threading.Lock()

    def __call__(self) -> list[str]:
        module, _, api = self.spec.partition("/")
        if module != "mido.backends.rtmidi":
            return input_names(self.spec)
        with self._lock:
            if self._client is None:
                try:
                    import rtmidi  # python-rtmidi, mido's default backend

                    rtapi = getattr(rtmidi, f"API_{api}") if api else rtmidi.API_UNSPECIFIED
                    self._client = rtmidi.MidiIn(rtapi, "segue-lister")
                except Exception as e:
                    raise _unusable(self.spec, e) from e
            try:
                return list(self._client.get_ports())
            except Exception as e:
                self._close_locked()
                raise _unusable(self.spec, e) from e

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.delete()


def open_input(name: str, callback: MessageCallback, spec: str | None = None) -> InputPort:
    """Open input port ``name`` with ``callback`` (called on the backend's thread); :class:`MidiPortError`."""
    spec = spec or backend_spec()
    backend = _backend(spec)
    try:
        port: InputPort = backend.open_input(name, callback=callback)
    except Exception as e:
        raise MidiPortError(f"cannot open MIDI input {name!r} ({spec}): {e}") from e
    return port


CALLBACK_DRAIN_S = 0.1  # how long close_input lets a callback already under way finish before it closes the port


def close_input(port: InputPort) -> None:
    """Close an input port opened with a callback, without the deadlock mido's own close can cause on JACK.

    mido 1.3's rtmidi ``Input.close`` sets ``callback = None``, which cancels the Python callback and registers
    mido's own queueing wrapper in its place, then calls ``close_port`` without releasing the GIL. On JACK,
    ``close_port`` unregisters the port and waits for the process cycle; when a clock message arrives in that
    cycle, the JACK thread waits for the GIL to run the wrapper, and the two wait for each other for ever (seen in
    CI: a ``MidiClockIn.close`` that hung in ``_rt.close_port``). So for rtmidi inputs the Python callback is
    cancelled for good first, the GIL is let go for :data:`CALLBACK_DRAIN_S` so a callback already waiting for it
    can finish, and only then is the port closed; no later cycle calls into Python. Other backends: their close.
    """
    rt = getattr(port, "_rt", None)
    if rt is None or not hasattr(rt, "cancel_callback") or getattr(port, "closed", False):
        port.close()
        return
    rt.cancel_callback()
    time.sleep(CALLBACK_DRAIN_S)
    try:
        rt.close_port()
        rt.delete()
    finally:
        port.closed = True  # type: ignore[attr-defined]  # mido's flag: its close() is now a no-op


# -- following clock ---------------------------------------------------------------------------------------


class ClockInput:
    """A :class:`ClockFollower` fed from any thread: :meth:`handle` is the port callback, :meth:`state` the reader."""

    def __init__(self, follower: ClockFollower, now: Callable[[], float] = time.perf_counter) -> None:
        self.follower = follower
        self._now = now
        self._lock = threading.Lock()

    def handle(self, message: mido.Message) -> None:
        if message.type not in CLOCK_TYPES:
            return
        timestamp = self._now()
        with self._lock:
            self.follower.feed(message, timestamp)

    def state(self) -> ClockState:
        with self._lock:
            return self.follower.state(self._now())


class _Worker:
    """A thread that runs until asked to stop: its stop flag, the lock that guards it, and :meth:`_end_thread`."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def _end_thread(self, timeout: float) -> None:
        """Ask the thread to stop and wait up to ``timeout`` s for it (not when called on the thread itself)."""
        self._stop.set()
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)


class ReconnectingInput(_Worker):
    """Keep input port ``name`` open: open it, watch that it is still listed, reopen it when it comes back.

    Retries every ``retry_s`` seconds until :meth:`close`; logs once per change (connected, waiting, lost).
    """

    def __init__(
        self,
        name: str,
        callback: MessageCallback,
        *,
        opener: Opener | None = None,
        lister: Lister | None = None,
        retry_s: float = 2.0,
    ) -> None:
        super().__init__()
        self.name = name
        self._callback = callback
        self._opener: Opener = opener or (lambda n, cb: open_input(n, cb))
        self._own_lister = InputLister() if lister is None else None
        self._lister: Lister = lister or self._own_lister  # type: ignore[assignment]
        self.retry_s = min(max(retry_s, MIN_RETRY_S), MAX_RETRY_S)
        self._port: InputPort | None = None
        self._said = ""  # the last state we logged
        self.connected = threading.Event()

    def start(self) -> None:
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name=f"segue-midi-in:{self.name}", daemon=True)
                self._thread.start()

    def close(self, timeout: float = 2.0) -> None:
        """Stop retrying and close the port. Safe to call twice."""
        self._end_thread(timeout)
        self._drop()
        if self._own_lister is not None:
            self._own_lister.close()

    def step(self) -> None:
        """One round of the loop: open the port if closed, or close it if it is no longer listed."""
        if self._port is None:
            self._try_open()
            return
        try:
            present = self.name in self._lister()
        except Exception as e:
            present, why = False, f"the MIDI backend failed: {e}"
        else:
            why = "it is no longer listed"
        if not present:
            self._drop()
            self._say("lost", logging.WARNING, f"lost ({why}); retrying every {self.retry_s:g} s")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.step()
            self._stop.wait(self.retry_s)

    def _try_open(self) -> None:
        try:
            names = self._lister()
            if self.name not in names:
                raise MidiPortError(f"no such input; inputs: {', '.join(names) or 'none'}")
            port = self._opener(self.name, self._callback)
        except Exception as e:
            self._say("waiting", logging.WARNING, f"not available ({e}); retrying every {self.retry_s:g} s")
            return
        with self._lock:
            if self._stop.is_set():
                close_input(port)
                return
            self._port = port
        self.connected.set()
        self._say("connected", logging.INFO, "connected")

    def _drop(self) -> None:
        with self._lock:
            port, self._port = self._port, None
        self.connected.clear()
        if port is not None:
            try:
                close_input(port)
            except Exception:
                log.debug("closing MIDI input %r failed", self.name, exc_info=True)

    def _say(self, state: str, level: int, text: str) -> None:
        """Log ``text`` only when the state changes (not on every retry)."""
        if state != self._said:
            self._said = state
            log.log(level, "MIDI input %r %s", self.name, text)


# -- sending clock -----------------------------------------------------------------------------------------


class ClockOutput(_Worker):
    """Send clock on an output port from a thread: Start (or Song Position + Continue), clocks, Stop.

    Deadlines are absolute (``time.perf_counter`` base, from :class:`ClockSender`), so late wake-ups do not drift.
    """

    def __init__(self, port: OutputPort, sender: ClockSender, now: Callable[[], float] = time.perf_counter) -> None:
        super().__init__()
        self.port = port
        self.sender = sender
        self._now = now
        self._closed = False

    def start(self, position_beats: float = 0.0) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the clock output is closed")
            if self._thread is not None:
                return
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, args=(position_beats,), name="segue-midi-clock-out", daemon=True
            )
            self._thread.start()

    def set_tempo(self, tempo_bpm: float) -> None:
        with self._lock:
            self.sender.set_tempo(tempo_bpm)

    def stop(self, timeout: float = 2.0) -> None:
        """Send Stop and end the thread (the port stays open for another :meth:`start`)."""
        self._end_thread(timeout)

    def close(self) -> None:
        """Stop and close the port. Safe to call twice."""
        self.stop()
        with self._lock:
            closed, self._closed = self._closed, True
        if not closed:
            self.port.close()

    def _run(self, position_beats: float) -> None:
        with self._lock:
            opening = self.sender.start(self._now(), position_beats)
        try:
            for item in opening:
                self.port.send(item.message)
            while True:
                with self._lock:
                    due = self.sender.tick_time(self.sender.next_tick)
                wait = due - self._now()
                if wait > 0 and self._stop.wait(wait) or self._stop.is_set():
                    break
                with self._lock:
                    self.sender.take_tick()
                self.port.send(mido.Message("clock"))
            for item in self.sender.stop(self._now()):
                self.port.send(item.message)
        except Exception:
            log.exception("sending MIDI clock failed; the clock output stopped")

"""What every DAW adapter offers, and :class:`OscLink`: one loopback UDP socket that talks a DAW's own OSC.

An adapter sends commands to the DAW's OSC port **from** the socket it listens on, so a DAW that answers the
sender (Ardour with ``address-only="0"``) reaches us without configuration. Feedback is decoded on the link's
thread and handed to per-address handlers; anything malformed (undecodable bytes, wrong argument types or values)
is logged with the sender (WARNING, rate-limited; the rest at DEBUG) and ignored.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, cast

from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from bridge.events import TransportState
from bridge.udp import UdpEndpoint
from engine.errors import BadInputError

log = logging.getLogger(__name__)

Address = tuple[str, int]
FeedbackHandler = Callable[[list[Any]], None]
"""Called on the link's thread with a feedback message's arguments; raises ValueError/TypeError if malformed."""
TypedArg = tuple[str, Any]
"""An OSC argument with its type tag (``("h", 48000)``); plain values get python-osc's inferred type."""

_WARNINGS_PER_SECOND = 5.0


@dataclass(frozen=True)
class Capabilities:
    """What an adapter can do with its DAW, and in plain words what it cannot."""

    read_tempo: bool
    read_position: bool
    transport_control: bool
    markers: bool
    import_files: bool
    limitations: str

    @classmethod
    def transport_only(cls, limitations: str) -> Capabilities:
        """Reads tempo and position, controls the transport; no markers, no file import (the OSC surfaces of Live,
        Bitwig and REAPER as we drive them)."""
        return cls(True, True, True, False, False, limitations)


class DawAdapter(Protocol):
    """A DAW spoken to in its own OSC. ``start``/``close`` may be called once each (``close`` twice is fine)."""

    name: str
    capabilities: Capabilities

    def start(self) -> None: ...

    def close(self) -> None: ...

    def transport(self) -> TransportState:
        """The DAW's transport as last reported; ``tempo_bpm`` 0.0 when unknown. Any thread."""
        ...

    def play(self) -> None: ...

    def stop(self) -> None: ...


class OscLink:
    """Send OSC to ``daw`` and receive its feedback on ``listen`` (port 0: any free one)."""

    def __init__(self, name: str, daw: Address, listen: Address = ("127.0.0.1", 0)) -> None:
        self.name = name
        self.daw = daw
        self.handlers: dict[str, FeedbackHandler] = {}
        self.on_any: Callable[[], None] | None = None  # called after every well-formed feedback message
        try:
            self._endpoint = UdpEndpoint(listen, self.handle_datagram, f"segue-{name}", "DAW feedback")
        except OSError as e:
            raise BadInputError(
                f"{name}: cannot listen for DAW feedback on {listen[0]}:{listen[1]}: {e.strerror or e}"
            ) from e
        self._lock = threading.Lock()
        self._warn_budget = _WARNINGS_PER_SECOND
        self._warn_time = time.monotonic()

    @property
    def address(self) -> Address:
        return self._endpoint.address

    def start(self) -> None:
        self._endpoint.start()

    def send(self, address: str, args: Sequence[Any | TypedArg] = ()) -> None:
        """Send to the DAW; a ``(type_tag, value)`` pair fixes the OSC type. Never raises for network errors."""
        builder = OscMessageBuilder(address=address)
        for arg in args:
            if isinstance(arg, tuple):
                builder.add_arg(arg[1], arg[0])
            else:
                builder.add_arg(arg)
        try:
            self._endpoint.sendto(builder.build().dgram, self.daw)
        except OSError as e:  # UDP: a DAW that is not there yet must not stop us
            log.debug("%s: could not send %s to %s:%s: %s", self.name, address, self.daw[0], self.daw[1], e)

    def handle_datagram(self, data: bytes, sender: Address) -> None:
        try:
            messages = [m.message for m in OscPacket(data).messages if isinstance(m.message, OscMessage)]
        except Exception as e:  # python-osc raises several unrelated ParseError classes
            self._warn("undecodable datagram (%d bytes) from %s:%s: %s", len(data), sender[0], sender[1], e)
            return
        for message in messages:
            handler = self.handlers.get(message.address)
            if handler is None:
                log.debug("%s: ignoring %s from %s:%s", self.name, message.address, *sender)
                continue
            try:
                handler(list(message.params))
            except (ValueError, TypeError, IndexError) as e:
                self._warn("malformed %s %r from %s:%s: %s", message.address, message.params, sender[0], sender[1], e)
                continue
            if self.on_any is not None:
                self.on_any()

    def _warn(self, fmt: str, *args: object) -> None:
        now = time.monotonic()
        with self._lock:
            self._warn_budget = min(_WARNINGS_PER_SECOND, self._warn_budget + (now - self._warn_time) * 5.0)
            self._warn_time = now
            loud = self._warn_budget >= 1.0
            if loud:
                self._warn_budget -= 1.0
        log.log(logging.WARNING if loud else logging.DEBUG, "%s: " + fmt, self.name, *args)

    def close(self) -> None:
        self._endpoint.close()


@dataclass(frozen=True)
class DawFeedback:
    """The transport as a DAW's feedback last said, and when: every adapter's state extends it with its own fields.
    ``tempo_bpm`` is None until the DAW says it (Ardour's OSC never does)."""

    tempo_bpm: float | None = None
    playing: bool = False
    feedback_at: float | None = None  # when the last well-formed feedback arrived (the adapter's clock)


S = TypeVar("S", bound=DawFeedback)


class PollingAdapter(Generic[S]):
    """What every DAW adapter shares (mido's ``BasePort`` shape: the base keeps the socket, the lock and the thread;
    a subclass fills in hooks). Its :class:`OscLink` to the DAW; its state, a frozen :class:`DawFeedback`
    dataclass, replaced under a lock; and, with ``interval_s``, a thread that calls :meth:`tick` that often until
    :meth:`close`. Hooks: :meth:`opened` (the link listens), :meth:`tick`, :meth:`heard` (any message from the DAW;
    by default it stamps ``feedback_at``), :meth:`position_beats` (for :meth:`transport`). ``close()`` may be
    called twice."""

    name = ""  # the DAW's name, e.g. "ardour"; its clock source is "ardour-osc:HOST:PORT"
    thread_name = ""  # the ticking thread's name
    stale_after_s: float | None = None  # feedback older than this makes the clock source "(stale)"; None: never

    def __init__(
        self, daw: Address, listen: Address, state: S, now: Callable[[], float], interval_s: float | None = None
    ) -> None:
        self.link = OscLink(self.name, daw, listen)
        self.interval_s = interval_s
        self._now = now
        self._state = state
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.link.on_any = self.heard

    @property
    def address(self) -> Address:
        """Where we listen for the DAW's feedback (and send from)."""
        return self.link.address

    def start(self) -> None:
        self.link.start()
        self.opened()
        if self.interval_s is not None:
            self._thread = threading.Thread(target=self._keep_ticking, name=self.thread_name, daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        self.link.close()

    def state(self) -> S:
        with self._lock:
            return self._state

    def transport(self) -> TransportState:
        """The DAW's transport as last reported (tempo 0.0 when unknown). Any thread."""
        state = self.state()
        return TransportState(
            tempo_bpm=state.tempo_bpm or 0.0,
            playing=state.playing,
            position_beats=self.position_beats(state),
            clock_source=self.clock_source(state),
        )

    def silent_for(self, state: S) -> float:
        """Seconds since the DAW's last feedback in ``state``; infinite if it never answered."""
        return math.inf if state.feedback_at is None else self._now() - state.feedback_at

    def stale(self, state: S) -> bool:
        """Whether the feedback in ``state`` is older than ``stale_after_s``."""
        return self.stale_after_s is not None and self.silent_for(state) > self.stale_after_s

    def clock_source(self, state: S) -> str:
        """``NAME-osc:HOST:PORT`` of the DAW, then `` (no feedback)`` if it never answered, or `` (stale)``."""
        source = f"{self.name}-osc:{self.link.daw[0]}:{self.link.daw[1]}"
        if state.feedback_at is None:
            return source + " (no feedback)"
        return source + " (stale)" if self.stale(state) else source

    def position_beats(self, state: S) -> float:
        """Where the playhead is, in quarter notes from the start, as ``state`` tells (0.0 when unknown)."""
        return 0.0

    def opened(self) -> None:
        """Once the link listens: subscribe, register, ask for the current values (the DAW's dialect)."""

    def tick(self) -> None:
        """Every ``interval_s`` on the adapter's thread."""

    def heard(self) -> None:
        self._update(feedback_at=self._now())

    def _update(self, **changes: Any) -> None:
        with self._lock:
            self._state = dataclasses.replace(cast(Any, self._state), **changes)

    def _keep_ticking(self) -> None:
        assert self.interval_s is not None
        while not self._stop.wait(self.interval_s):
            self.tick()


def bar_beats(bar: int, beat: int, fraction: float, beats_per_bar: int) -> float:
    """Quarter notes from the start of bar 1 to ``bar``/``beat`` (both 1-based) and ``fraction`` of a beat, with a
    fixed ``beats_per_bar`` (how Ardour's and REAPER's bar/beat feedback is counted)."""
    return (bar - 1) * beats_per_bar + (beat - 1) + fraction


def checked_beats_per_bar(value: int) -> int:
    """``beats_per_bar`` for :func:`bar_beats`; ValueError unless it is >= 1."""
    if value < 1:
        raise ValueError(f"beats_per_bar must be >= 1, got {value}")
    return value


def timeline_position(value: Any, what: str) -> float:
    """A position on the DAW's timeline to locate to: a finite number >= 0 (not a bool); ValueError naming
    ``what`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    if value < 0:
        raise ValueError(f"{what} must be >= 0, got {value}")
    return float(value)


def as_tempo(value: Any, what: str) -> float:
    """A tempo a DAW reports: a finite number in 1..1000 BPM; ValueError/TypeError naming ``what`` otherwise."""
    tempo = as_float(value, what)
    if not 1.0 <= tempo <= 1000.0:
        raise ValueError(f"{what} must be in 1..1000 BPM, got {tempo}")
    return tempo


def as_text(value: Any, what: str) -> str:
    """An OSC string; TypeError naming ``what`` otherwise."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, got {value!r}")
    return value


def as_int(value: Any, what: str) -> int:
    """An OSC int (or an int-valued float or decimal string, as Ardour sends samples); ValueError otherwise."""
    if isinstance(value, bool):
        raise TypeError(f"{what} must be a number, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return int(value.strip())
    raise TypeError(f"{what} must be an integer, got {value!r}")


def as_float(value: Any, what: str) -> float:
    """An OSC int or float that is finite; ValueError/TypeError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number, got {value!r}")
    result = float(value)
    if result != result or result in (float("inf"), float("-inf")):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return result

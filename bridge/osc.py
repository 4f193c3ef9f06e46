"""Segue's OSC address space (shared/DESIGN.md) over UDP, on top of :class:`bridge.service.BridgeService`.

Layers, as python-osc has them: :class:`OscBridge` decodes datagrams, checks every message against a table
(address -> argument types and handler, registered in a python-osc :class:`~pythonosc.dispatcher.Dispatcher`)
and answers through a send function, so it is testable without sockets; :class:`OscServer` binds the UDP socket.

Argument types: ``s`` must be an OSC string of at most :data:`MAX_STRING_CHARS` characters. ``f`` accepts
OSC floats, doubles and ints (ints become floats) and must be finite. ``i`` accepts OSC ints, and also floats
that hold a whole number (``4.0``), because many DAW scripts (Lua, Max, TouchOSC) send every number as a float;
``4.5`` or a bool (``T``/``F``) is an error. The argument count must match exactly.

Nothing here blocks: handlers only validate and hand work to the service, whose worker runs the jobs and whose
placement thread copies the files of a ``/segue/choose`` (its failures come back as ``/segue/error``). Anything
malformed (undecodable bytes, unknown addresses, wrong types, missing arguments, bad values, missing files) is
logged with the sender (WARNING, at most a few lines a second; the rest at DEBUG) and answered with
``/segue/error s:message``. Replies go to the configured DAW address if there is one, else to the sender; job
events go to the sender of the ``/segue/generate`` that made the job. Progress is sent at most 10 times a second.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import build_msg
from pythonosc.osc_packet import OscPacket
from pythonosc.osc_server import BlockingOSCUDPServer

from bridge import segue_version
from bridge.capture.controller import (
    CaptureArmed,
    CaptureController,
    CaptureDone,
    CaptureEvent,
    CaptureFailed,
    CaptureProgress,
)
from bridge.capture.options import MAX_CAPTURE_BARS
from bridge.controls import controls_from_pairs
from bridge.inputs import ACCEPTED_FORMATS, sniff_format
from bridge.service import (
    BridgeEvent,
    BridgeService,
    DawRegion,
    JobDone,
    JobFailed,
    JobProgress,
    JobStarted,
    Placement,
    RequestFailed,
)
from engine.api import (
    MAX_AUDIO_FILE_BYTES,
    MAX_BARS,
    MAX_MIDI_FILE_BYTES,
    MAX_VARIANTS,
    OUTPUTS,
    Meter,
    Output,
    Prompt,
)
from engine.errors import BadInputError

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9750
MAX_STRING_CHARS = 4096
MAX_DATAGRAM_BYTES = 65_535
PROGRESS_INTERVAL_S = 0.1
_KNOWN_TYPE_TAGS = frozenset("ihfdsbrmtTFN[]")
_MAX_BUNDLE_DEPTH = 8
_WARNINGS_PER_SECOND = 5.0
_SHOWN_CHARS = 80

Sender = tuple[str, int]
SendFunction = Callable[[Sender, str, Sequence[Any]], None]
"""``send(destination, osc_address, args)``; must not raise."""
Handler = Callable[[Sender, list[Any]], None]


@dataclass(frozen=True)
class Route:
    """One address of the table: argument types (``"ssfffiis"``), their names for messages, the handler."""

    types: str
    names: tuple[str, ...]
    handler: Handler
    optional: int = 0  # how many of the last arguments may be left out (the handler gets fewer values)
    # then any number of ``s:key value`` pairs, after every typed argument (optional ones included); the handler
    # gets them as one more value, a list of (key, value), when there are any
    pairs: bool = False

    @property
    def signature(self) -> str:
        shown = [f"{t}:{n}" for t, n in zip(self.types, self.names, strict=True)]
        if self.optional:
            shown[-self.optional :] = [f"[{text}]" for text in shown[-self.optional :]]
        if self.pairs:
            shown.append("[s:key value ...]")
        return " ".join(shown) or "no arguments"


class OscBridge:
    """Segue's OSC messages in and out; ``send`` is attached by :class:`OscServer` (or a test)."""

    def __init__(
        self, service: BridgeService, daw_address: Sender | None = None, capture: CaptureController | None = None
    ) -> None:
        self.service = service
        self.daw_address = daw_address
        self.capture = capture
        self._last_capture_progress = -math.inf
        self._send: SendFunction | None = None
        self._lock = threading.Lock()
        self._last_progress: dict[str, float] = {}
        self._warn_budget = _WARNINGS_PER_SECOND
        self._warn_time = time.monotonic()
        region_names = "audio_path midi_path start_beats length_beats tempo_bpm meter_num meter_den track"
        self.routes: dict[str, Route] = {
            "/segue/region": Route("ssfffiis", tuple(region_names.split()), self._on_region),
            # the same region, then one (s:name s:path) pair per track's audio (docs/osc.md)
            "/segue/region/stems": Route("ssfffiis", tuple(region_names.split()), self._on_region_stems, pairs=True),
            "/segue/generate": Route(
                "siiss", ("mode", "bars", "variants", "parts", "output"), self._on_generate, optional=2, pairs=True
            ),
            "/segue/cancel": Route("s", ("job_id",), self._on_cancel),
            "/segue/choose": Route("si", ("job_id", "variant"), self._on_choose),
            "/segue/status": Route("", (), self._on_status),
            "/segue/ping": Route("", (), self._on_ping),
            "/segue/capture/arm": Route("i", ("bars",), self._on_capture_arm),
            "/segue/capture/cancel": Route("", (), self._on_capture_cancel),
        }
        self.dispatcher = Dispatcher(strict_timing=False)  # never sleep on a bundle's future time tag
        for address, route in self.routes.items():
            self.dispatcher.map(address, self._checked, route, needs_reply_address=True)
        self.dispatcher.set_default_handler(self._unknown, needs_reply_address=True)
        service.add_listener(self.on_event)
        if capture is not None:
            capture.add_listener(self.on_capture_event)

    def attach(self, send: SendFunction) -> None:
        self._send = send

    def add_route(self, address: str, route: Route) -> None:
        """Understand one more address (bridge.link adds the Segue Link plugin's ``/segue/link/...``)."""
        self.routes[address] = route
        self.dispatcher.map(address, self._checked, route, needs_reply_address=True)

    def send_to(self, to: Sender, address: str, args: Sequence[Any]) -> None:
        """Send to ``to`` itself, never to the configured DAW address; dropped when no socket is attached."""
        if self._send is not None:
            self._send(to, address, args)

    # -- incoming --------------------------------------------------------------------------------------------

    def handle_datagram(self, data: bytes, sender: Sender) -> None:
        """Decode one UDP datagram (a message or a bundle) and dispatch every message in it. Never raises."""
        try:
            problem = _precheck(data)
            messages = [] if problem else [timed.message for timed in OscPacket(data).messages]
        except Exception as e:  # python-osc raises more than its ParseError on some garbage
            problem = f"{type(e).__name__}: {e}"
        if problem:
            self.reject(sender, f"could not decode a {len(data)}-byte datagram as OSC ({_short(problem)})")
            return
        for message in messages:
            self.dispatch(sender, message)

    def dispatch(self, sender: Sender, message: OscMessage) -> None:
        """Run the handlers the dispatcher finds for one message (its default handler for unknown addresses)."""
        for handler in self.dispatcher.handlers_for_address(message.address):
            try:
                handler.invoke(sender, message)
            except Exception as e:
                log.error("handler for %s from %s:%s failed", _short(message.address), *sender, exc_info=True)
                self.reject(sender, f"{_short(message.address)}: internal error ({type(e).__name__}: {e})")

    def _checked(self, sender: Sender, address: str, route_args: list[Route], *args: Any) -> None:
        route = route_args[0]
        try:
            values = check_arguments(address, route, args)
            route.handler(sender, values)
        except BadInputError as e:
            self.reject(sender, str(e))

    def _unknown(self, sender: Sender, address: str, *args: Any) -> None:
        self.reject(sender, f"unknown address {_short(address)}; Segue understands {', '.join(self.routes)}")

    def reject(self, sender: Sender, message: str) -> None:
        """Log a malformed message with its sender and answer ``/segue/error s:message``."""
        now = time.monotonic()
        with self._lock:
            self._warn_budget = min(_WARNINGS_PER_SECOND, self._warn_budget + (now - self._warn_time) * 5.0)
            self._warn_time = now
            loud = self._warn_budget >= 1.0
            self._warn_budget -= loud
        log.log(logging.WARNING if loud else logging.DEBUG, "from %s:%s: %s", sender[0], sender[1], message)
        self.reply(sender, "/segue/error", [message[:MAX_STRING_CHARS]])

    # -- handlers (values already checked against the route's types) -------------------------------------------

    def _on_region(self, sender: Sender, values: list[Any]) -> None:
        self.service.set_region(_daw_region("/segue/region", values, ()))

    def _on_region_stems(self, sender: Sender, values: list[Any]) -> None:
        pairs: list[tuple[str, Any]] = values[8] if len(values) > 8 else []
        if not pairs:
            raise BadInputError(
                "/segue/region/stems: give each track's audio after the region's 8 arguments, as pairs "
                "s:name s:path (e.g. drums /abs/drums.wav bass /abs/bass.wav); none were given"
            )
        self.service.set_region(_daw_region("/segue/region/stems", values[:8], pairs))

    def _on_generate(self, sender: Sender, values: list[Any]) -> None:
        mode, bars, variants = values[:3]
        parts_text = values[3] if len(values) > 3 else ""
        output = values[4] if len(values) > 4 else "auto"
        chosen_controls = controls_from_pairs(values[5], "/segue/generate") if len(values) > 5 else {}
        if mode not in ("continue", "accompany"):
            raise BadInputError(f"/segue/generate: mode must be 'continue' or 'accompany', got {_short(mode)!r}")
        if not 1 <= bars <= MAX_BARS:
            raise BadInputError(f"/segue/generate: bars must be in 1..{MAX_BARS}, got {bars}")
        if not 1 <= variants <= MAX_VARIANTS:
            raise BadInputError(f"/segue/generate: variants must be in 1..{MAX_VARIANTS}, got {variants}")
        if output not in OUTPUTS:
            raise BadInputError(f"/segue/generate: output must be one of {', '.join(OUTPUTS)}, got {_short(output)!r}")
        parts = _parts(parts_text, mode)
        chosen = cast(Output, output)  # checked against OUTPUTS above
        self.service.generate(mode, bars, variants, origin=sender, parts=parts, output=chosen, controls=chosen_controls)

    def _on_cancel(self, sender: Sender, values: list[Any]) -> None:
        self.service.cancel(values[0])

    def _on_choose(self, sender: Sender, values: list[Any]) -> None:
        job_id, variant = values
        if not 1 <= variant <= MAX_VARIANTS:
            raise BadInputError(f"/segue/choose: variant must be in 1..{MAX_VARIANTS}, got {variant}")
        self.service.submit_choice(job_id, variant, origin=sender)  # files are copied on the placement thread

    def _on_status(self, sender: Sender, values: list[Any]) -> None:
        state = self.service.transport()
        args = [float(state.tempo_bpm), int(state.playing), float(state.position_beats), state.clock_source]
        self.reply(sender, "/segue/status", args)

    def _on_ping(self, sender: Sender, values: list[Any]) -> None:
        self.reply(sender, "/segue/pong", [segue_version()])

    def _on_capture_arm(self, sender: Sender, values: list[Any]) -> None:
        bars = values[0]
        if not 0 <= bars <= MAX_CAPTURE_BARS:
            raise BadInputError(
                f"/segue/capture/arm: bars must be in 0..{MAX_CAPTURE_BARS} (0: until the DAW stops), got {bars}"
            )
        if self.capture is None:
            raise BadInputError("/segue/capture/arm: this bridge has no capture (start it with segue bridge)")
        self.capture.arm(bars or None, origin=sender)

    def _on_capture_cancel(self, sender: Sender, values: list[Any]) -> None:
        if self.capture is None or not self.capture.cancel():
            raise BadInputError("/segue/capture/cancel: no capture is armed")

    def on_capture_event(self, event: CaptureEvent) -> None:
        """The capture's listener (on the take's thread): ``/segue/capture/...`` to the sender of the arm."""
        to = event.origin
        if isinstance(event, CaptureArmed):
            self.reply(to, "/segue/capture/armed", [event.bars])
        elif isinstance(event, CaptureProgress):
            now = time.monotonic()
            with self._lock:
                if now - self._last_capture_progress < PROGRESS_INTERVAL_S and event.fraction < 1.0:
                    return
                self._last_capture_progress = now
            self.reply(to, "/segue/capture/progress", [float(event.fraction), event.message[:MAX_STRING_CHARS]])
        elif isinstance(event, CaptureDone):
            take = event.result
            args = [str(take.path), float(take.start_beats), float(take.length_beats), float(take.tempo_bpm)]
            self.reply(to, "/segue/capture/done", args)
        elif isinstance(event, CaptureFailed):
            self.reply(to, "/segue/capture/failed", [event.message[:MAX_STRING_CHARS]])

    # -- outgoing --------------------------------------------------------------------------------------------

    def on_event(self, event: BridgeEvent) -> None:
        """The service's listener (called on its worker thread): one OSC message per event."""
        to = event.origin
        if isinstance(event, JobProgress):
            now = time.monotonic()
            with self._lock:
                last = self._last_progress.get(event.job_id, -math.inf)
                if now - last < PROGRESS_INTERVAL_S and event.fraction < 1.0:
                    return
                self._last_progress[event.job_id] = now
            self.reply(to, "/segue/job/progress", [event.job_id, float(event.fraction)])
        elif isinstance(event, JobStarted):
            self.reply(to, "/segue/job/started", [event.job_id])
        elif isinstance(event, JobDone):
            self._forget(event.job_id)
            self.reply(to, "/segue/job/done", [event.job_id, str(event.job_json_path)])
        elif isinstance(event, JobFailed):
            self._forget(event.job_id)
            self.reply(to, "/segue/job/failed", [event.job_id, event.message[:MAX_STRING_CHARS]])
            if event.error_type == "DiskFullError":  # not the job's fault: the DAW shows it as an error
                self.reply(to, "/segue/error", [event.message[:MAX_STRING_CHARS]])
        elif isinstance(event, Placement):
            args = [str(event.file_path), event.position_beats, event.position_seconds, event.track_name, event.kind]
            self.reply(to, "/segue/place", args)
        elif isinstance(event, RequestFailed):
            self.reply(to, "/segue/error", [event.message[:MAX_STRING_CHARS]])

    def reply(self, sender: Sender | None, address: str, args: Sequence[Any]) -> None:
        """Send to the configured DAW address, else to ``sender``; dropped (DEBUG) when there is neither."""
        to = self.daw_address or sender
        if to is None or self._send is None:
            log.debug("no destination for %s; dropped", address)
            return
        self._send(to, address, args)

    def _forget(self, job_id: str) -> None:
        with self._lock:
            self._last_progress.pop(job_id, None)


def check_arguments(address: str, route: Route, args: Sequence[Any]) -> list[Any]:
    """The arguments as Python values of the route's types; :class:`BadInputError` naming the first problem.
    A route with optional trailing arguments takes any count from the required ones to all of them."""
    most = len(route.types)
    least = most - route.optional
    pairs = _key_value_pairs(address, route, args[most:]) if route.pairs and len(args) > most else None
    if pairs is not None:
        args = args[:most]
    if not least <= len(args) <= most:
        expected = f"{least} to {most}" if route.optional else str(most)
        raise BadInputError(f"{address} expects {expected} argument(s) ({route.signature}), got {len(args)}")
    values: list[Any] = []
    given = zip(route.types[: len(args)], route.names[: len(args)], args, strict=True)
    for position, (kind, name, value) in enumerate(given, start=1):
        where = f"{address}: argument {position} ({kind}:{name})"
        if kind == "s":
            if not isinstance(value, str):
                raise BadInputError(f"{where} must be a string, got {_osc_type(value)}")
            if len(value) > MAX_STRING_CHARS:
                raise BadInputError(f"{where} is {len(value)} characters long; the limit is {MAX_STRING_CHARS}")
            values.append(value)
        elif kind == "f":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise BadInputError(f"{where} must be a number, got {_osc_type(value)}")
            if not math.isfinite(value):
                raise BadInputError(f"{where} must be a finite number, got {value}")
            values.append(float(value))
        elif kind == "i":
            if isinstance(value, float) and math.isfinite(value) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                raise BadInputError(f"{where} must be a whole number, got {_osc_type(value)} {_short(repr(value))}")
            values.append(value)
        else:  # a programming error in the table, not bad input
            raise ValueError(f"unknown type {kind!r} in the route of {address}")
    return values if pairs is None else [*values, pairs]


def _key_value_pairs(address: str, route: Route, rest: Sequence[Any]) -> list[tuple[str, Any]]:
    """The ``s:key value`` pairs after a route's typed arguments (values are checked by whoever reads them)."""
    most = len(route.types)
    if len(rest) % 2:
        raise BadInputError(
            f"{address} expects {most - route.optional} to {most} argument(s) ({route.signature}), then key/value "
            f"pairs after all {most} of them; got {most + len(rest)}, so the last key has no value"
        )
    pairs = []
    for index in range(0, len(rest), 2):
        key = rest[index]
        if not isinstance(key, str) or not key or len(key) > MAX_STRING_CHARS:
            raise BadInputError(
                f"{address}: argument {most + index + 1} must be a key (a string such as 'similarity'), got "
                f"{_osc_type(key)} {_short(repr(key))}; key/value pairs go after all {most} typed arguments "
                f"({route.signature})"
            )
        pairs.append((key, rest[index + 1]))
    return pairs


def _parts(text: str, mode: str) -> tuple[str, ...]:
    """``s:parts`` of ``/segue/generate``: ``"bass,piano"``, or ``""`` for the model's default set."""
    if not text.strip():
        return ()
    if mode != "accompany":
        raise BadInputError(f"/segue/generate: parts are only for mode 'accompany', got {_short(text)!r} with {mode!r}")
    names = tuple(name.strip().lower() for name in text.split(","))
    if any(not name for name in names):
        raise BadInputError(f"/segue/generate: parts are names separated by commas (bass,piano), got {_short(text)!r}")
    return names


def _daw_region(address: str, values: list[Any], pairs: Sequence[tuple[str, Any]]) -> DawRegion:
    """The region of ``/segue/region`` (``values``: its 8 arguments) or of ``/segue/region/stems`` (the same, and
    the (name, path) ``pairs`` of its stems). Every bound is engine.api.Prompt's (checked here, before any file is
    read): the stems' names, their count (at most engine.api.MAX_STEMS), the tempo, meter and positions. Then
    every file must exist and be of its kind (:func:`_region_file`). Sample rates, lengths and channel counts of
    the stems are the engine's to check when the job starts (the job fails naming each stem)."""
    audio, midi, start, length, tempo, num, den, track = values
    if den <= 0 or den & (den - 1):
        raise BadInputError(f"{address}: meter_den must be a power of two (1, 2, 4, 8, ...), got {den}")
    meter = Meter(num, den)  # checks the ranges, BadInputError names them
    if not audio and not midi and not pairs:
        raise BadInputError(f"{address}: give an audio path, a MIDI path, or both (both were empty)")
    for position, (name, path) in enumerate(pairs):
        if not isinstance(path, str):
            raise BadInputError(
                f"{address}: argument {9 + 2 * position + 1} (the path of stem {_short(name)!r}) must be a string, "
                f"got {_osc_type(path)}"
            )
        if not path:
            raise BadInputError(f"{address}: stem {_short(name)!r} needs the path of its audio file, got ''")
    stems = tuple((name, Path(path)) for name, path in pairs)
    try:  # the engine's own bounds (engine.api.Prompt), checked now rather than when a job starts
        Prompt(Path(midi or audio or "stems"), None, tempo_bpm=tempo, meter=meter, length_beats=length,
               start_beats=start, stems=stems)  # fmt: skip
    except BadInputError as e:
        raise BadInputError(f"{address}: {e}") from e
    audio_path = _region_file(audio, "audio", address) if audio else None
    midi_path = _region_file(midi, "midi", address) if midi else None
    checked = tuple((name, _region_file(str(path), "audio", address, f"stem {name}")) for name, path in stems)
    return DawRegion(audio_path, midi_path, start, length, tempo, meter, track, checked)


def _region_file(text: str, role: str, address: str = "/segue/region", what: str = "") -> Path:
    """An existing regular file of the expected role (by content), absolute; :class:`BadInputError` otherwise.

    The path is taken as it is (no ``~``: that is the DAW's to expand). Whatever is wrong with it (missing, not a
    regular file, unreadable, not MIDI or audio, too large) gets the same answer, so that OSC cannot be used to
    learn which files exist; the reason is logged here. A FIFO or device is refused without being opened."""
    what = what or f"the {role} path"
    path = Path(text)
    if not path.is_absolute():
        raise BadInputError(f"{address}: {what} must be absolute, got {_short(text)!r}")
    try:
        found = sniff_format(path)
    except BadInputError as e:
        log.info("%s: %s", address, _short(str(e)))
        raise BadInputError(
            f"{address}: cannot read a region at {_short(text)}: it does not exist or is not a MIDI/audio file "
            f"Segue reads (a Standard MIDI File up to {MAX_MIDI_FILE_BYTES // 2**20} MiB; WAV, FLAC or AIFF up to "
            f"{MAX_AUDIO_FILE_BYTES // 2**30} GiB)"
        ) from e
    if found != role:
        raise BadInputError(f"{address}: {path} is a {found} file, given as {what}; {ACCEPTED_FORMATS}")
    return path.resolve()


def _precheck(data: bytes) -> str:
    """Why ``data`` is not worth parsing, or "". Rejects type tags python-osc does not know (it would log each)."""
    if not data.startswith((b"/", b"#bundle\0")):
        return "it starts with neither '/' nor '#bundle'"
    return _check_tags(data, 0)


def _check_tags(data: bytes, depth: int) -> str:
    if depth > _MAX_BUNDLE_DEPTH:
        return "bundles nested too deeply"
    if data.startswith(b"#bundle\0"):
        index = 16
        while index + 4 <= len(data):
            (size,) = struct.unpack(">i", data[index : index + 4])
            if size <= 0 or index + 4 + size > len(data):
                return "a bundle element has a bad size"
            problem = _check_tags(data[index + 4 : index + 4 + size], depth + 1)
            if problem:
                return problem
            index += 4 + size
        return ""
    end = data.find(b"\0")
    tags_start = (end // 4 + 1) * 4 if end >= 0 else len(data)
    if tags_start >= len(data) or data[tags_start : tags_start + 1] != b",":
        return ""  # no type tag string (or python-osc reports the problem itself)
    tags_end = data.find(b"\0", tags_start)
    tags = data[tags_start + 1 : tags_end if tags_end >= 0 else len(data)]
    unknown = set(tags.decode("latin-1")) - _KNOWN_TYPE_TAGS
    return f"unknown type tags {''.join(sorted(unknown))[:10]!r}" if unknown else ""


def _osc_type(value: Any) -> str:
    names = {bool: "a bool", int: "an int", float: "a float", str: "a string", bytes: "a blob", list: "an array"}
    return names.get(type(value), "nil" if value is None else type(value).__name__)


def _short(text: str) -> str:
    return text if len(text) <= _SHOWN_CHARS else f"{text[:_SHOWN_CHARS]}... ({len(text)} characters)"


class _UDPServer(BlockingOSCUDPServer):
    """One thread reads and handles every datagram in turn (handlers never block), so a flood of packets
    cannot pile up threads. Every datagram goes to :meth:`OscBridge.handle_datagram`."""

    max_packet_size = MAX_DATAGRAM_BYTES

    def __init__(self, address: Sender, bridge: OscBridge) -> None:
        self.bridge = bridge
        super().__init__(address, bridge.dispatcher)

    def server_bind(self) -> None:
        with contextlib.suppress(OSError):  # room for a burst of datagrams; the OS may cap it
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        super().server_bind()

    def verify_request(self, request: Any, client_address: Any) -> bool:
        return True  # garbage is answered with /segue/error by handle_datagram

    def finish_request(self, request: Any, client_address: Any) -> None:
        self.bridge.handle_datagram(bytes(request[0]), (str(client_address[0]), int(client_address[1])))

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.error("error handling a datagram from %s", client_address, exc_info=True)


class OscServer:
    """The UDP socket: ``OscServer(bridge, host, port)``, then :meth:`start`; :meth:`close` may be called twice.

    ``port=0`` binds a free port; :attr:`address` says which.
    """

    def __init__(self, bridge: OscBridge, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
        try:
            self._server = _UDPServer((host, port), bridge)
        except OSError as e:
            raise BadInputError(
                f"cannot listen for OSC on {host}:{port}: {e.strerror or e}; is another Segue bridge running? "
                "choose another port with --osc-port"
            ) from e
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        bridge.attach(self.send)

    @property
    def address(self) -> Sender:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        with self._lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="segue-osc", daemon=True
                )
                self._thread.start()
                log.info("listening for OSC on %s:%s", *self.address)

    def send(self, to: Sender, address: str, args: Sequence[Any]) -> None:
        try:
            self._server.socket.sendto(build_msg(address, list(args)).dgram, to)
        except (OSError, ValueError, TypeError) as e:  # UDP: a vanished receiver must not stop us
            log.debug("could not send %s to %s:%s: %s", address, to[0], to[1], e)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._server.shutdown()
            thread.join(5.0)
        self._server.server_close()

    def __enter__(self) -> OscServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def resolve_host(host: str) -> str:
    """``host`` as an address string; :class:`BadInputError` if it does not resolve."""
    try:
        return socket.gethostbyname(host)
    except OSError as e:
        raise BadInputError(f"cannot resolve the host {host!r}: {e}") from e

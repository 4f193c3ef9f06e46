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

import logging
import math
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import build_msg
from pythonosc.osc_packet import OscPacket

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
from bridge.events import BridgeEvent, JobDone, JobFailed, JobProgress, JobStarted, Placement, RequestFailed
from bridge.osc_args import (
    MAX_STRING_CHARS,
    Route,
    Sender,
    check_arguments,
    daw_region,
    parse_parts,
    precheck,
    short,
)
from bridge.service import BridgeService
from bridge.udp import UdpEndpoint
from engine.api import (
    MAX_BARS,
    MAX_VARIANTS,
    OUTPUTS,
    GenerationParams,
    Output,
)
from engine.errors import BadInputError

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9750
MAX_DATAGRAM_BYTES = 65_535
PROGRESS_INTERVAL_S = 0.1
_WARNINGS_PER_SECOND = 5.0

SendFunction = Callable[[Sender, str, Sequence[Any]], None]
"""``send(destination, osc_address, args)``; must not raise."""


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
            problem = precheck(data)
            messages = [] if problem else [timed.message for timed in OscPacket(data).messages]
        except Exception as e:  # python-osc raises more than its ParseError on some garbage
            problem = f"{type(e).__name__}: {e}"
        if problem:
            self.reject(sender, f"could not decode a {len(data)}-byte datagram as OSC ({short(problem)})")
            return
        for message in messages:
            self.dispatch(sender, message)

    def dispatch(self, sender: Sender, message: OscMessage) -> None:
        """Run the handlers the dispatcher finds for one message (its default handler for unknown addresses)."""
        for handler in self.dispatcher.handlers_for_address(message.address):
            try:
                handler.invoke(sender, message)
            except Exception as e:
                log.error("handler for %s from %s:%s failed", short(message.address), *sender, exc_info=True)
                self.reject(sender, f"{short(message.address)}: internal error ({type(e).__name__}: {e})")

    def _checked(self, sender: Sender, address: str, route_args: list[Route], *args: Any) -> None:
        route = route_args[0]
        try:
            values = check_arguments(address, route, args)
            route.handler(sender, values)
        except BadInputError as e:
            self.reject(sender, str(e))

    def _unknown(self, sender: Sender, address: str, *args: Any) -> None:
        self.reject(sender, f"unknown address {short(address)}; Segue understands {', '.join(self.routes)}")

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
        self.service.set_region(daw_region("/segue/region", values, ()))

    def _on_region_stems(self, sender: Sender, values: list[Any]) -> None:
        pairs: list[tuple[str, Any]] = values[8] if len(values) > 8 else []
        if not pairs:
            raise BadInputError(
                "/segue/region/stems: give each track's audio after the region's 8 arguments, as pairs "
                "s:name s:path (e.g. drums /abs/drums.wav bass /abs/bass.wav); none were given"
            )
        self.service.set_region(daw_region("/segue/region/stems", values[:8], pairs))

    def _on_generate(self, sender: Sender, values: list[Any]) -> None:
        mode, bars, variants = values[:3]
        parts_text = values[3] if len(values) > 3 else ""
        output = values[4] if len(values) > 4 else "auto"
        chosen_controls = controls_from_pairs(values[5], "/segue/generate") if len(values) > 5 else {}
        if mode not in ("continue", "accompany"):
            raise BadInputError(f"/segue/generate: mode must be 'continue' or 'accompany', got {short(mode)!r}")
        if not 1 <= bars <= MAX_BARS:
            raise BadInputError(f"/segue/generate: bars must be in 1..{MAX_BARS}, got {bars}")
        if not 1 <= variants <= MAX_VARIANTS:
            raise BadInputError(f"/segue/generate: variants must be in 1..{MAX_VARIANTS}, got {variants}")
        if output not in OUTPUTS:
            raise BadInputError(f"/segue/generate: output must be one of {', '.join(OUTPUTS)}, got {short(output)!r}")
        parts = parse_parts(parts_text, mode)
        chosen = cast(Output, output)  # checked against OUTPUTS above
        params = GenerationParams(
            mode=mode, bars=bars, variants=variants, parts=parts, output=chosen, **chosen_controls
        )
        self.service.submit(params, origin=sender)

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


class OscServer:
    """The UDP socket: ``OscServer(bridge, host, port)``, then :meth:`start`; :meth:`close` may be called twice.

    ``port=0`` binds a free port; :attr:`address` says which.
    """

    def __init__(self, bridge: OscBridge, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
        try:
            self._endpoint = UdpEndpoint(
                (host, port), bridge.handle_datagram, "segue-osc", "a datagram", max_packet_size=MAX_DATAGRAM_BYTES
            )
        except OSError as e:
            raise BadInputError(
                f"cannot listen for OSC on {host}:{port}: {e.strerror or e}; is another Segue bridge running? "
                "choose another port with --osc-port"
            ) from e
        bridge.attach(self.send)

    @property
    def address(self) -> Sender:
        return self._endpoint.address

    def start(self) -> None:
        self._endpoint.start()
        log.info("listening for OSC on %s:%s", *self.address)

    def send(self, to: Sender, address: str, args: Sequence[Any]) -> None:
        try:
            self._endpoint.sendto(build_msg(address, list(args)).dgram, to)
        except (OSError, ValueError, TypeError) as e:  # UDP: a vanished receiver must not stop us
            log.debug("could not send %s to %s:%s: %s", address, to[0], to[1], e)

    def close(self) -> None:
        self._endpoint.close()

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

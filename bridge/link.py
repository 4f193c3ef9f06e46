"""Segue's side of the Segue Link plugin (plugin/, issue 18): the ``/segue/link/...`` OSC addresses (docs/osc.md).

Each plugin instance says ``/segue/link/hello`` every 2 s from its own UDP socket; :class:`LinkRegistry` keeps the
instances (forgotten :data:`EXPIRY_S` seconds after their last hello, or on ``/segue/link/bye``) and their host's
transport (``/segue/link/transport``), which becomes a clock source (``link:<track>``) for ``/segue/status`` and
the app. :class:`LinkEndpoint` adds the addresses to an :class:`~bridge.osc.OscBridge` (its checks, its
``/segue/error`` answers), answers each hello with ``/segue/link/welcome``, sends ``/segue/link/play`` (a variant
to play in sync with the host) and ``/segue/link/capture``, and hands the plugin's ``/segue/link/loaded`` or
``/segue/link/error`` back to whoever asked for the play.

With ``place_through_link`` (``segue bridge --daw link``) every audio :class:`~bridge.events.Placement` of the
service is played through the instance on the region's track (else the instance that said hello last).

No Qt; handlers run on the OSC thread and never block. Listeners (the app) get :class:`LinkEvent` values.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bridge import segue_version
from bridge.capture.options import MAX_CAPTURE_BARS
from bridge.events import BridgeEvent, Event, Placement, TransportProvider, TransportState
from bridge.jobs import JobRecord, VariantRecord
from bridge.listeners import Listeners
from bridge.osc import OscBridge
from bridge.osc_args import Route, Sender
from engine.errors import BadInputError

log = logging.getLogger(__name__)

EXPIRY_S = 6.0  # an instance is forgotten this long after its last hello (it says hello every 2 s)
STALE_S = 2.0  # a playing transport without news for this long is reported "(stale)"
MAX_INSTANCES = 256
MAX_PENDING_PLAYS = 64
MAX_ID_CHARS = 128
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8_000, 768_000
MAX_TEMPO_BPM = 1_000.0
MAX_POSITION_BEATS = 1e9


@dataclass(frozen=True)
class LinkTransport:
    """One instance's host transport as it last said: quarter notes from the timeline start."""

    tempo_bpm: float
    meter_num: int
    meter_den: int
    position_beats: float
    playing: bool
    received_at: float  # the registry's clock (time.monotonic)


@dataclass(frozen=True)
class LinkInstance:
    """A Segue Link plugin instance that said hello; Segue answers to ``address`` (its hello's sender)."""

    instance_id: str
    track_name: str
    group: str
    sample_rate: int
    plugin_version: str
    address: Sender
    last_hello: float  # the registry's clock
    transport: LinkTransport | None = None


@dataclass(frozen=True)
class LinkPlaySent(Event):
    """``/segue/link/play`` went to ``instance``; its ``loaded`` or ``error`` answer follows."""

    instance: LinkInstance
    audio_path: Path
    position_beats: float


@dataclass(frozen=True)
class LinkLoaded(Event):
    instance_id: str
    audio_path: str
    seconds: float


@dataclass(frozen=True)
class LinkFailed(Event):
    """The plugin could not play a variant (``/segue/link/error``), or no instance was there to play it."""

    instance_id: str
    message: str


@dataclass(frozen=True)
class LinkChanged:
    """An instance said its first hello (``connected``) or bye (an expiry shows in :meth:`LinkRegistry.instances`)."""

    instance_id: str
    connected: bool


LinkEvent = LinkPlaySent | LinkLoaded | LinkFailed | LinkChanged
LinkListener = Callable[[LinkEvent], None]


class LinkRegistry:
    """The instances that said hello, with their transport. Thread-safe; ``now`` is injectable for tests."""

    def __init__(self, now: Callable[[], float] = time.monotonic, expiry_s: float = EXPIRY_S) -> None:
        self._now = now
        self.expiry_s = expiry_s
        self._lock = threading.Lock()
        self._instances: OrderedDict[str, LinkInstance] = OrderedDict()  # oldest hello first

    def hello(self, instance: LinkInstance) -> bool:
        """Add or refresh ``instance`` (its ``last_hello`` is set here); True if it is new. BadInputError when
        :data:`MAX_INSTANCES` live instances are already known."""
        with self._lock:
            self._expire()
            old = self._instances.pop(instance.instance_id, None)
            if old is None and len(self._instances) >= MAX_INSTANCES:
                raise BadInputError(f"/segue/link/hello: {MAX_INSTANCES} Segue Link instances are already connected")
            transport = old.transport if old is not None else None
            self._instances[instance.instance_id] = replace(instance, last_hello=self._now(), transport=transport)
        if old is None:
            log.info("Segue Link %s on track %r connected from %s:%s", instance.instance_id,
                     instance.track_name, *instance.address)  # fmt: skip
        return old is None

    def update_transport(self, instance_id: str, tempo: float, num: int, den: int, beats: float, play: bool) -> bool:
        """Record an instance's transport; False (and nothing kept) for an instance that has not said hello."""
        with self._lock:
            self._expire()
            known = self._instances.get(instance_id)
            if known is None:
                return False
            state = LinkTransport(tempo, num, den, beats, play, self._now())
            self._instances[instance_id] = replace(known, transport=state)
            return True

    def bye(self, instance_id: str) -> bool:
        with self._lock:
            gone = self._instances.pop(instance_id, None)
        if gone is not None:
            log.info("Segue Link %s on track %r said bye", instance_id, gone.track_name)
        return gone is not None

    def instances(self) -> tuple[LinkInstance, ...]:
        """The live instances, the most recent first hello last."""
        with self._lock:
            self._expire()
            return tuple(self._instances.values())

    def get(self, instance_id: str) -> LinkInstance | None:
        with self._lock:
            self._expire()
            return self._instances.get(instance_id)

    def target(self, track: str) -> LinkInstance | None:
        """The instance on ``track`` (the most recent one there), else the instance that said hello last."""
        live = self.instances()
        on_track = [i for i in live if track and i.track_name == track]
        chosen = on_track or list(live)
        return chosen[-1] if chosen else None  # instances() has the latest hello last

    def transport(self) -> TransportState | None:
        """The transport of the instance that reported last (its position run on while playing), or None."""
        reporting = [i for i in self.instances() if i.transport is not None]
        if not reporting:
            return None
        instance = max(reporting, key=lambda i: i.transport.received_at if i.transport else 0.0)
        state = instance.transport
        assert state is not None  # filtered above
        age = max(0.0, self._now() - state.received_at)
        position = state.position_beats + (age * state.tempo_bpm / 60.0 if state.playing else 0.0)
        stale = state.playing and age > STALE_S
        return TransportState(
            tempo_bpm=state.tempo_bpm,
            playing=state.playing,
            position_beats=position,
            clock_source=f"link:{instance.track_name or instance.instance_id}" + (" (stale)" if stale else ""),
        )

    def _expire(self) -> None:
        """Forget instances without a hello for ``expiry_s`` (the lock is held)."""
        limit = self._now() - self.expiry_s
        for instance_id in [k for k, v in self._instances.items() if v.last_hello < limit]:
            log.info("Segue Link %s: no hello for %.0f s; forgotten", instance_id, self.expiry_s)
            del self._instances[instance_id]


def link_transport(registry: LinkRegistry, fallback: TransportProvider | None) -> TransportProvider:
    """A transport provider where a Segue Link instance's host transport wins, else ``fallback``'s (MIDI clock,
    a DAW adapter), else nothing known."""

    def provide() -> TransportState:
        state = registry.transport()
        if state is not None:
            return state
        return fallback() if fallback is not None else TransportState()

    return provide


class LinkEndpoint:
    """The ``/segue/link/...`` addresses on ``bridge``. ``place_through_link``: play every audio placement of the
    bridge's service through an instance (``segue bridge --daw link``)."""

    def __init__(
        self, bridge: OscBridge, registry: LinkRegistry | None = None, place_through_link: bool = False
    ) -> None:
        self.bridge = bridge
        self.registry = registry if registry is not None else LinkRegistry()
        self.place_through_link = place_through_link
        self._lock = threading.Lock()
        self._pending: OrderedDict[tuple[str, str], Sender | None] = OrderedDict()  # (instance, path) -> asker
        self._listeners: Listeners[LinkEvent] = Listeners("a Segue Link listener")
        routes = {
            "/segue/link/hello": Route(
                "sssis", ("instance_id", "track_name", "group", "sample_rate", "plugin_version"), self._on_hello
            ),
            "/segue/link/transport": Route(
                "sfiifi",
                ("instance_id", "tempo_bpm", "meter_num", "meter_den", "position_beats", "playing"),
                self._on_transport,
            ),
            "/segue/link/bye": Route("s", ("instance_id",), self._on_bye),
            "/segue/link/loaded": Route("ssf", ("instance_id", "audio_path", "seconds"), self._on_loaded),
            "/segue/link/error": Route("ss", ("instance_id", "message"), self._on_error),
            "/segue/link/capture": Route("i", ("bars",), self._on_capture),
            "/segue/link/list": Route("", (), self._on_list),
        }
        for address, route in routes.items():
            bridge.add_route(address, route)
        if place_through_link:
            bridge.service.add_listener(self.on_service_event)

    def add_listener(self, listener: LinkListener) -> None:
        self._listeners.add(listener)

    def close(self) -> None:
        """Stop playing placements through the plugin (the routes stay with their bridge)."""
        self.bridge.service.remove_listener(self.on_service_event)

    # -- Segue -> plugin -------------------------------------------------------------------------------------------

    def play(
        self,
        audio_path: Path,
        position_beats: float,
        track: str = "",
        replace_input: bool = True,
        origin: Sender | None = None,
    ) -> LinkInstance:
        """Send ``/segue/link/play`` to the instance on ``track`` (else the latest); its answer goes to ``origin``
        (and the listeners). BadInputError when no instance is connected."""
        instance = self.registry.target(track)
        if instance is None:
            raise BadInputError(
                "no Segue Link plugin is connected: put Segue Link on a track in your DAW (plugin/README.md); it "
                "says hello to Segue on the OSC port by itself"
            )
        if not math.isfinite(position_beats):
            raise BadInputError(f"the position must be a finite number of beats, got {position_beats}")
        path = str(audio_path)
        with self._lock:
            self._pending[(instance.instance_id, path)] = origin
            self._pending.move_to_end((instance.instance_id, path))
            while len(self._pending) > MAX_PENDING_PLAYS:
                self._pending.popitem(last=False)
        self.bridge.send_to(instance.address, "/segue/link/play", [path, float(position_beats), int(replace_input)])
        log.info("Segue Link %s (%r): play %s at beat %g", instance.instance_id, instance.track_name, path,
                 position_beats)  # fmt: skip
        self._emit(LinkPlaySent(instance, audio_path, position_beats, origin=origin))
        return instance

    def play_variant(
        self, job_dir: Path, record: JobRecord, variant: VariantRecord, track: str = "", origin: Sender | None = None
    ) -> LinkInstance:
        """Play a variant's audio (``continuation.wav``) where it belongs on the timeline (``place_at``)."""
        relative = variant.files.get("audio")
        if not relative:
            raise BadInputError(f"{variant.id} of job {record.id} has no audio file to play in the DAW")
        return self.play(job_dir / relative, timeline_beats(record), track, origin=origin)

    def stop(self, track: str = "") -> LinkInstance | None:
        """``/segue/link/stop`` to the instance on ``track`` (else the latest); None when none is connected."""
        instance = self.registry.target(track)
        if instance is not None:
            self.bridge.send_to(instance.address, "/segue/link/stop", [])
        return instance

    def capture(self, bars: int, skip: Sender | None = None) -> list[LinkInstance]:
        """``/segue/link/capture i:bars`` to one instance of each capture group (every instance without a group)."""
        chosen: dict[str, LinkInstance] = {}
        for instance in self.registry.instances():
            if instance.address != skip:
                chosen[instance.group or f"\0{instance.instance_id}"] = instance  # the latest of its group
        for instance in chosen.values():
            self.bridge.send_to(instance.address, "/segue/link/capture", [int(bars)])
        return list(chosen.values())

    def on_service_event(self, event: BridgeEvent) -> None:
        """The service's listener with ``place_through_link``: an audio placement is played through the plugin."""
        if not isinstance(event, Placement) or event.kind != "audio":
            return
        try:
            self.play(event.file_path, event.position_beats, event.region_track, origin=event.origin)
        except BadInputError as e:
            message = f"job {event.job_id} {event.variant_id}: {e}"
            log.warning("%s", message)
            self._emit(LinkFailed("", message, origin=event.origin))
            if event.origin is not None:
                self.bridge.send_to(event.origin, "/segue/error", [message])

    # -- plugin -> Segue (values checked against the routes' types) ------------------------------------------------

    def _on_hello(self, sender: Sender, values: list[Any]) -> None:
        instance_id, track, group, rate, version = values
        _check_id("/segue/link/hello", instance_id)
        if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
            raise BadInputError(
                f"/segue/link/hello: sample_rate must be in {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz, got {rate}"
            )
        new = self.registry.hello(LinkInstance(instance_id, track, group, rate, version, sender, 0.0))
        self.bridge.send_to(sender, "/segue/link/welcome", [segue_version()])
        if new:
            self._emit(LinkChanged(instance_id, True))

    def _on_transport(self, sender: Sender, values: list[Any]) -> None:
        instance_id, tempo, num, den, beats, playing = values
        where = "/segue/link/transport"
        _check_id(where, instance_id)
        if not 0.0 < tempo <= MAX_TEMPO_BPM:
            raise BadInputError(f"{where}: tempo_bpm must be in (0, {MAX_TEMPO_BPM:g}], got {tempo:g}")
        if not 1 <= num <= 64 or not 1 <= den <= 64 or den & (den - 1):
            raise BadInputError(f"{where}: the meter must be 1..64 over a power of two up to 64, got {num}/{den}")
        if abs(beats) > MAX_POSITION_BEATS:
            raise BadInputError(f"{where}: position_beats must be within ±{MAX_POSITION_BEATS:g}, got {beats:g}")
        if playing not in (0, 1):
            raise BadInputError(f"{where}: playing must be 0 or 1, got {playing}")
        if not self.registry.update_transport(instance_id, tempo, num, den, beats, bool(playing)):
            log.debug("%s from %s:%s for %r, which has not said hello; ignored", where, *sender, instance_id)

    def _on_bye(self, sender: Sender, values: list[Any]) -> None:
        if self.registry.bye(values[0]):
            self._emit(LinkChanged(values[0], False))

    def _on_loaded(self, sender: Sender, values: list[Any]) -> None:
        instance_id, path, seconds = values
        origin = self._asker(instance_id, path)
        log.info("Segue Link %s loaded %s (%.3f s)", instance_id, path, seconds)
        self._emit(LinkLoaded(instance_id, path, seconds, origin=origin))
        if origin is not None and origin != sender:
            self.bridge.send_to(origin, "/segue/link/loaded", [instance_id, path, float(seconds)])

    def _on_error(self, sender: Sender, values: list[Any]) -> None:
        instance_id, message = values
        origin = self._asker(instance_id, None)
        log.warning("Segue Link %s: %s", instance_id, message)
        self._emit(LinkFailed(instance_id, message, origin=origin))
        if origin is not None and origin != sender:
            self.bridge.send_to(origin, "/segue/link/error", [instance_id, message])

    def _on_capture(self, sender: Sender, values: list[Any]) -> None:
        bars = values[0]
        if not 0 <= bars <= MAX_CAPTURE_BARS:
            raise BadInputError(
                f"/segue/link/capture: bars must be in 0..{MAX_CAPTURE_BARS} (0: the DAW's loop range), got {bars}"
            )
        if not self.capture(bars, skip=sender):
            raise BadInputError("/segue/link/capture: no Segue Link plugin is connected to capture with")

    def _on_list(self, sender: Sender, values: list[Any]) -> None:
        """``/segue/link/list`` -> ``/segue/link/list i:count`` then ``s:instance_id s:track_name`` per instance."""
        live = self.registry.instances()
        args: list[Any] = [len(live)]
        for instance in live:
            args += [instance.instance_id, instance.track_name]
        self.bridge.reply(sender, "/segue/link/list", args)

    def _asker(self, instance_id: str, path: str | None) -> Sender | None:
        """Who asked for this instance's play of ``path`` (None: its latest play), forgotten once answered."""
        with self._lock:
            if path is None:
                keys = [k for k in self._pending if k[0] == instance_id]
                key = keys[-1] if keys else None
            else:
                key = (instance_id, path)
            return self._pending.pop(key, None) if key is not None else None

    def _emit(self, event: LinkEvent) -> None:
        self._listeners.emit(event)


def timeline_beats(record: JobRecord) -> float:
    """Where a job's variants go on the DAW timeline, in quarter notes (``place_at``; 0 when unknown)."""
    place = record.place_at
    if place is None:
        return record.region.start_beats or 0.0
    if place.timeline_beats is not None:
        return place.timeline_beats
    return (record.region.start_beats or 0.0) + place.beats


def _check_id(address: str, instance_id: str) -> None:
    if not instance_id or len(instance_id) > MAX_ID_CHARS or not instance_id.isprintable():
        raise BadInputError(
            f"{address}: instance_id must be 1..{MAX_ID_CHARS} printable characters, got {instance_id[:40]!r}"
        )

"""``segue bridge`` as a running process: OSC server + :class:`BridgeService` + (optionally) a MIDI clock input.

:func:`serve` runs until its stop hook, Ctrl-C or SIGTERM. It prints nothing: what the user should read goes
through the ``say`` callback that the command line passes in. :func:`midi_ports_check` is ``segue doctor``'s view
of the MIDI ports.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import mido

from bridge.adapters import ADAPTERS, DAW_CHOICES, DEFAULT_DAW_PORTS, DawAdapter, open_adapter
from bridge.capture.controller import CaptureController
from bridge.capture.options import TakeOptions, TakeResult
from bridge.clock import ClockFollower, ClockState
from bridge.events import DawRegion, TransportProvider, TransportState
from bridge.link import LinkEndpoint, LinkRegistry, link_transport
from bridge.midiports import ClockInput, Lister, MidiPortError, Opener, ReconnectingInput, list_ports
from bridge.osc import DEFAULT_HOST, OscBridge, OscServer, resolve_host
from bridge.service import BridgeService, PlacePolicy
from bridge.watch import WatchFolder
from engine.api import Engine
from engine.errors import BadInputError
from engine.provenance.record import ProvenanceSettings

log = logging.getLogger(__name__)

DAW_ADAPTERS = DAW_CHOICES  # `segue bridge --daw`
"""``link``: the Segue Link plugin on a track (plugin/, docs/osc.md): placement plays the variant through it."""


@dataclass(frozen=True)
class BridgeRunning:
    """Handed to ``main(..., bridge_ready=...)`` once ``segue bridge`` listens: where, and how to stop it."""

    osc_address: tuple[str, int]
    stop: Callable[[], None]


@dataclass(frozen=True)
class BridgeOptions:
    out_dir: Path
    osc_host: str
    osc_port: int
    daw: str = "generic"
    daw_host: str | None = None
    daw_port: int | None = None
    place: PlacePolicy = "first"
    model: str = "default"
    midi_clock_in: str | None = None  # input port name
    capture: TakeOptions = TakeOptions()  # how /segue/capture/arm records (device, latency, meter)
    watch_dir: Path | None = None  # the "any DAW" watched folder (bridge.watch), when set
    provenance: ProvenanceSettings | None = None  # None: the provenance settings file (engine.provenance)


ClockTap = Callable[[mido.Message, float, ClockState], None]
"""``tap(message, timestamp_s, state)``: a message from the clock port, its ``perf_counter`` stamp, the follower's
state after it (see :meth:`MidiClockIn.add_tap`; audio capture uses it)."""


class MidiClockIn:
    """Follow MIDI clock from input port ``port_name`` (reconnecting) and report it as a :class:`TransportState`."""

    def __init__(
        self,
        port_name: str,
        *,
        opener: Opener | None = None,
        lister: Lister | None = None,
        retry_s: float = 2.0,
        now: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.source = f"midi-clock:{port_name}"
        self.port_name = port_name
        self.input = ClockInput(ClockFollower(source=self.source), now=now)
        self._now = now
        self._taps: list[ClockTap] = []
        self._taps_lock = threading.Lock()
        self.watcher = ReconnectingInput(port_name, self._handle, opener=opener, lister=lister, retry_s=retry_s)

    def _handle(self, message: mido.Message) -> None:
        """The port callback: feed the follower, then the taps (capture) with the stamp and the state after it."""
        if not self._taps:
            self.input.handle(message)
            return
        stamp = self._now()
        self.input.handle(message)
        with self._taps_lock:
            taps = list(self._taps)
        if taps:
            state = self.input.state()
            for tap in taps:
                tap(message, stamp, state)

    def add_tap(self, tap: ClockTap) -> None:
        """Also call ``tap(message, timestamp, state_after)`` for every message (on the port's thread)."""
        with self._taps_lock:
            self._taps.append(tap)

    def remove_tap(self, tap: ClockTap) -> None:
        with self._taps_lock:
            if tap in self._taps:
                self._taps.remove(tap)

    @property
    def connected(self) -> bool:
        """Whether the input port is open now."""
        return self.watcher.connected.is_set()

    def start(self) -> None:
        self.watcher.start()

    def close(self) -> None:
        self.watcher.close()

    def transport(self) -> TransportState:
        """The follower's state; the source gets `` (stale)`` while playing without clock (dropout, lost port)."""
        state = self.input.state()
        return TransportState(
            tempo_bpm=state.tempo_bpm or 0.0,
            playing=state.playing,
            position_beats=state.position_beats,
            clock_source=self.source + (" (stale)" if state.stale else ""),
        )


def combined_transport(clock: MidiClockIn | None, adapter: DawAdapter | None) -> TransportProvider | None:
    """The transport for ``/segue/status``: the clock alone, the adapter alone, or both.

    With both, the MIDI clock wins for tempo (when it knows one; else the adapter's), and play state and position
    come from the adapter, which reads the DAW's timeline directly.
    """
    if clock is None or adapter is None:
        return clock.transport if clock is not None else adapter.transport if adapter is not None else None

    def both() -> TransportState:
        timed, daw = clock.transport(), adapter.transport()
        return dataclasses.replace(
            daw,
            tempo_bpm=timed.tempo_bpm or daw.tempo_bpm,
            clock_source=f"{timed.clock_source} + {daw.clock_source}",
        )

    return both


def midi_ports_check() -> dict[str, Any]:
    """``segue doctor``'s entry: the MIDI input and output ports, or why there are none (never a failure)."""
    try:
        ports = list_ports()
    except MidiPortError as e:
        return {"ok": None, "detail": str(e)}
    inputs = ", ".join(ports.inputs) or "none"
    outputs = ", ".join(ports.outputs) or "none"
    return {"ok": True, "detail": f"{ports.backend}; inputs: {inputs}; outputs: {outputs}"}


def check_options(options: BridgeOptions) -> tuple[str, int] | None:
    """Validate the options (:class:`BadInputError`) and return the DAW's address, when one is set.

    With ``--daw generic`` that is where replies and job events go; with an adapter (``ardour``, ``reaper``,
    ``live``, ``bitwig``) it is the DAW's own OSC port (default per DAW), and Segue's replies go to their sender.
    """
    if options.daw == "link":
        if options.daw_host is not None or options.daw_port is not None:
            raise BadInputError(
                "--daw link talks to the Segue Link plugins that say hello to Segue (they are found by themselves); "
                "leave out --daw-host and --daw-port"
            )
        return None
    if options.daw != "generic" and options.daw not in ADAPTERS:
        raise BadInputError(
            f"--daw {options.daw}: the {options.daw} adapter is not available in this version yet; use --daw generic "
            f"(the DAW-side script speaks Segue's own OSC addresses, see the README) or one of {', '.join(ADAPTERS)}"
        )
    for name, port in (("--osc-port", options.osc_port), ("--daw-port", options.daw_port)):
        if port is not None and not 0 <= port <= 65535:
            raise BadInputError(f"{name} must be in 0..65535, got {port}")
    if options.midi_clock_in is not None and not options.midi_clock_in.strip():
        raise BadInputError("--midi-clock-in needs a port name (see `segue doctor` for the MIDI inputs)")
    if options.daw in ADAPTERS:  # the DAW's own OSC port
        port = options.daw_port if options.daw_port is not None else DEFAULT_DAW_PORTS[options.daw]
        return (resolve_host(options.daw_host or DEFAULT_HOST), int(port))
    if options.daw_port is not None:
        return (resolve_host(options.daw_host or DEFAULT_HOST), int(options.daw_port))
    if options.daw_host is not None:
        raise BadInputError("--daw-host needs --daw-port (the UDP port the DAW listens on)")
    return None


def serve(
    options: BridgeOptions,
    open_engine: Callable[[], Engine],
    say: Callable[[str], None],
    ready: Callable[[BridgeRunning], None] | None = None,
) -> None:
    """Serve Segue's OSC until ``stop``, Ctrl-C or SIGTERM; then cancel the running job and close everything."""
    daw_address = check_options(options)
    engine = open_engine()
    clock = MidiClockIn(options.midi_clock_in) if options.midi_clock_in is not None else None
    adapter = open_adapter(options.daw, daw_address) if daw_address and options.daw in ADAPTERS else None
    links = LinkRegistry()  # Segue Link plugins that say hello; their host's transport wins
    transport = link_transport(links, combined_transport(clock, adapter))
    service = BridgeService(engine, options.out_dir, place=options.place, model=options.model, transport=transport)
    service.provenance = options.provenance
    capture = CaptureController(
        clock,
        options.out_dir / "captures",
        options.capture,
        on_done=lambda take: service.set_region(region_of_take(take)),
    )
    bridge = OscBridge(service, None if adapter is not None else daw_address, capture=capture)
    LinkEndpoint(bridge, links, place_through_link=options.daw == "link")
    watch = WatchFolder(service, options.watch_dir) if options.watch_dir is not None else None
    try:
        server = OscServer(bridge, options.osc_host, options.osc_port)
    except BaseException:
        if adapter is not None:
            adapter.close()
        raise
    stop = threading.Event()
    previous: dict[int, Any] = {}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, on_signal)
    try:
        service.start()
        server.start()
        if watch is not None:
            watch.start()
            say(f"segue bridge: watching {watch.requests} for requests; placements go to {watch.placed}")
        if clock is not None:
            _say_midi(clock, say)
            clock.start()
        if adapter is not None and daw_address is not None:
            adapter.start()
            say(
                f"segue bridge: talking to {adapter.name} OSC at {daw_address[0]}:{daw_address[1]}; "
                f"limitations: {adapter.capabilities.limitations}"
            )
        host, port = server.address
        replies = f"{daw_address[0]}:{daw_address[1]}" if daw_address and adapter is None else "the sender"
        say(
            f"segue bridge: listening for OSC on {host}:{port} (engine {engine.name}, jobs in {options.out_dir}, "
            f"place {options.place}, replies to {replies}); Ctrl-C stops"
        )
        if ready is not None:
            ready(BridgeRunning((host, port), stop.set))
        while not stop.wait(0.2):
            pass
        say("segue bridge: stopping")
    finally:
        if watch is not None:
            watch.close()
        capture.close()
        if adapter is not None:
            adapter.close()
        if clock is not None:
            clock.close()
        service.close()
        server.close()
        for number, old in previous.items():
            signal.signal(number, old)


def region_of_take(take: TakeResult) -> DawRegion:
    """A captured take as the bridge's current region: ``/segue/generate`` continues it after its last bar."""
    return DawRegion(
        audio_path=take.path,
        midi_path=None,
        start_beats=take.start_beats,
        length_beats=take.length_beats,
        tempo_bpm=take.tempo_bpm,
        meter=take.meter,
        track="Segue capture",
    )


def _say_midi(clock: MidiClockIn, say: Callable[[str], None]) -> None:
    """Tell the user at once whether the clock port can be had; the bridge runs on either way."""
    name = clock.watcher.name
    try:
        inputs = list_ports().inputs
    except MidiPortError as e:
        say(f"segue bridge: MIDI clock from {name!r} unavailable: {e}; going on without it (retrying)")
        return
    if name not in inputs:
        say(
            f"segue bridge: no MIDI input {name!r} yet (inputs: {', '.join(inputs) or 'none'}); "
            "waiting for it to appear"
        )
    else:
        say(f"segue bridge: following MIDI clock from {name!r}")

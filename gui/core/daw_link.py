"""The bridge's OSC inside the app, watched: what the DAW sent (for the Connections panel), what was rejected, and
a region the DAW sent, each posted as an event for the GUI thread. No Qt."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pythonosc.osc_message import OscMessage

from bridge.adapters import ADAPTERS, DEFAULT_DAW_PORTS, DawAdapter
from bridge.events import DawRegion
from bridge.link import LinkEndpoint
from bridge.osc import OscBridge, OscServer
from bridge.osc_args import Sender
from bridge.service import BridgeService
from engine.errors import SegueError
from gui.core.settings import GuiSettings

Post = Callable[[object], None]
AdapterFactory = Callable[[str, tuple[str, int]], DawAdapter]


@dataclass(frozen=True)
class OscHeard:
    sender: Sender
    address: str
    summary: str
    when: str  # "14:03:22"
    from_plugin: bool = False  # a Segue Link instance sent it (its capture): not the DAW peer


@dataclass(frozen=True)
class OscRejected:
    sender: Sender
    message: str


@dataclass(frozen=True)
class RegionFromDaw:
    region: DawRegion


class WatchedOscBridge(OscBridge):
    """Segue's OSC, also telling the app what it heard; replies without a sender go to the last DAW heard."""

    def __init__(self, service: BridgeService, daw_address: Sender | None, post: Post) -> None:
        super().__init__(service, daw_address)
        self._post = post
        self.peer: Sender | None = None
        self.link: LinkEndpoint | None = None  # set by open_link: a Segue Link plugin is never the DAW peer

    def dispatch(self, sender: Sender, message: OscMessage) -> None:
        if message.address in _LINK_HEARTBEATS:  # a Segue Link plugin's hello and transport: many a second, and
            super().dispatch(sender, message)  # the plugin is not where placements go (the Connections list it)
            return
        before = self.service.region
        plugin = self._from_plugin(sender)
        if message.address.startswith("/segue/") and not plugin:
            self.peer = sender
        super().dispatch(sender, message)
        args = " ".join(_short_arg(a) for a in message.params)
        summary = f"{message.address} {args}".strip()
        self._post(OscHeard(sender, message.address, summary, time.strftime("%H:%M:%S"), plugin))
        after = self.service.region
        if after is not None and after is not before:
            self._post(RegionFromDaw(after))

    def _from_plugin(self, sender: Sender) -> bool:
        """Whether ``sender`` is a Segue Link instance (its captures come as /segue/region, but placements must
        not go back to it as /segue/place: it plays variants through /segue/link/play)."""
        return self.link is not None and any(i.address == sender for i in self.link.registry.instances())

    def reject(self, sender: Sender, message: str) -> None:
        super().reject(sender, message)
        self._post(OscRejected(sender, message))

    def reply(self, sender: Sender | None, address: str, args: Any) -> None:
        super().reply(sender if sender is not None else self.peer, address, args)


_LINK_HEARTBEATS = frozenset(("/segue/link/hello", "/segue/link/transport"))


def _short_arg(value: Any) -> str:
    text = Path(value).name if isinstance(value, str) and value.startswith("/") else str(value)
    return text if len(text) <= 24 else text[:21] + "..."


@dataclass(frozen=True)
class OpenLink:
    bridge: WatchedOscBridge
    server: OscServer
    adapter: DawAdapter | None
    detail: str  # "listening on 127.0.0.1:9750; talking to reaper at 127.0.0.1:8000"
    link: LinkEndpoint | None = None  # the Segue Link plugins' addresses on this server


def open_link(service: BridgeService, settings: GuiSettings, adapter_factory: AdapterFactory, post: Post) -> OpenLink:
    """Open the OSC server (and the DAW adapter the settings name) and start them; :class:`SegueError` with a
    message for the producer when that cannot be (a taken port, an unknown adapter)."""
    s = settings
    host = s.daw_host or "127.0.0.1"
    adapter: DawAdapter | None = None
    daw_address: Sender | None = None
    try:
        if s.daw in ADAPTERS:
            adapter = adapter_factory(s.daw, (host, s.daw_port or DEFAULT_DAW_PORTS[s.daw]))
        elif s.daw_port:
            daw_address = (host, s.daw_port)
        bridge = WatchedOscBridge(service, daw_address, post)
        try:
            server = OscServer(bridge, s.osc_host, s.osc_port)
        except BaseException as e:
            service.remove_listener(bridge.on_event)
            if isinstance(e, SegueError) and isinstance(e.__cause__, OSError):  # the port is taken
                why = e.__cause__.strerror or str(e.__cause__)
                raise SegueError(
                    f"Segue cannot listen for your DAW on UDP {s.osc_host}:{s.osc_port} ({why}). Is another "
                    "Segue or `segue bridge` running? Close it, or choose another port under Connections > DAW "
                    "and press Apply (and tell the DAW script the new port)."
                ) from e
            raise
        link = LinkEndpoint(bridge, place_through_link=s.daw == "link")
        link.add_listener(post)
        bridge.link = link
        server.start()
        if adapter is not None:
            adapter.start()
    except SegueError:
        if adapter is not None:
            adapter.close()
        raise
    except (OSError, ValueError) as e:  # a DAW host that does not resolve, an unknown adapter
        if adapter is not None:
            adapter.close()
        raise SegueError(str(e)) from e
    shown = f"{server.address[0]}:{server.address[1]}"
    talking = f"; talking to {s.daw} at {host}:{s.daw_port or DEFAULT_DAW_PORTS[s.daw]}" if adapter else ""
    return OpenLink(bridge, server, adapter, f"listening on {shown}{talking}", link)

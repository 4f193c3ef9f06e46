"""The session's connections (a part of :class:`gui.core.session.Session`): the embedded OSC server and the DAW adapter,
the watched folder, MIDI clock in, the engine, and what the generated files say about where they came from. Runs on
the GUI thread like the rest of the session; errors become messages."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from bridge.watch import WatchFolder
from engine.errors import BadInputError, SegueError
from engine.provenance.record import ProvenanceSettings
from gui.core.daw_link import open_link
from gui.core.session_part import SessionPart

if TYPE_CHECKING:
    pass


class SessionLinks(SessionPart):
    """The Connections panel's actions."""

    def apply_link(
        self,
        daw: str | None = None,
        osc_port: int | None = None,
        daw_host: str | None = None,
        daw_port: int | None = None,
    ) -> None:
        """(Re)open the embedded OSC server and the DAW adapter with these settings."""
        s = self.settings
        self._remember(
            daw=s.daw if daw is None else daw,
            osc_port=s.osc_port if osc_port is None else osc_port,
            daw_host=s.daw_host if daw_host is None else daw_host,
            daw_port=s.daw_port if daw_port is None else daw_port,
        )
        s = self.settings
        self.models.link.update(daw=s.daw, osc_port=s.osc_port, daw_host=s.daw_host, daw_port=s.daw_port)
        self._close_osc()
        if not self.deps.osc:
            self.models.link.update(status="off", detail="OSC is off")
            return
        try:
            link = open_link(self.service, s, self.deps.adapter_factory, self._post)
        except SegueError as e:
            self.models.link.update(status="error", detail="not listening (see the message above)")
            self.say("error", f"DAW connection: {e}")
            return
        self._links.osc, self._links.server, self._links.adapter = link.bridge, link.server, link.adapter
        self._links.link = link.link
        self.models.link.update(status="listening", detail=link.detail, osc_port=link.server.address[1])

    def _close_osc(self) -> None:
        links = self._links
        if links.server is not None:
            links.server.close()
        if links.osc is not None:
            self.service.remove_listener(links.osc.on_event)
        if links.adapter is not None:
            links.adapter.close()
        if links.link is not None:
            links.link.close()
        links.osc, links.server, links.adapter, links.link = None, None, None, None

    def set_watch_dir(self, folder: str) -> None:
        """Watch ``folder`` for region requests from DAW scripts that cannot use sockets (REAPER), and write the
        placements there; "" turns it off."""
        folder = folder.strip()
        if self._links.watch is not None:
            self._links.watch.close()
            self._links.watch = None
        self._remember(watch_dir=folder)
        self.models.link.update(watch_dir=folder, watch_detail="")
        if not folder:
            return
        path = Path(folder).expanduser().resolve()
        watch = WatchFolder(self.service, path)
        try:
            watch.start()
        except SegueError as e:
            watch.close()
            self.models.link.update(watch_detail=f"not watching: {e}")
            self.say("error", f"Watched folder: {e}")
            return
        self._links.watch = watch
        self.models.link.update(watch_detail=f"watching {watch.requests}")

    def _close_links(self) -> None:
        if self._links.watch is not None:
            self._links.watch.close()
            self._links.watch = None
        self._close_osc()
        if self._links.clock is not None:
            self._links.clock.close()
            self._links.clock = None

    def refresh_ports(self) -> None:
        try:
            ports = tuple(self.deps.midi_inputs())
            self.models.clock.update(ports=ports, ports_message="" if ports else "no MIDI inputs found")
        except Exception as e:  # MidiPortError, or a backend that cannot load
            self.models.clock.update(ports=(), ports_message=f"MIDI ports unavailable: {e}")

    def set_clock_port(self, port: str) -> None:
        """Follow MIDI clock from ``port`` ("" turns it off); a missing port is retried in the background."""
        if self._links.clock is not None:
            self._links.clock.close()
            self._links.clock = None
        self._remember(midi_clock_in=port)
        self.models.clock.update(port=port, connected=False)
        if not port:
            return
        try:
            clock = self.deps.clock_factory(port)
            clock.start()
        except Exception as e:
            self.say("error", f"MIDI clock from {port!r} is unavailable: {e}")
            return
        self._links.clock = clock

    def set_engine(self, spec: str, token: str = "") -> None:
        spec = spec.strip() or "local"
        self._remember(engine=spec, token=token)
        self.models.engine.update(spec=spec, token=token, status="opening", models=(), message="")
        self.engine.open(spec, token)
        self.save()

    def set_place_first(self, on: bool) -> None:
        """Place each finished job's first variant in the DAW by itself (``segue bridge``'s default), or only what
        the producer chooses (Place in DAW; the app's default)."""
        self._remember(place_first=on)
        self.service.place = "first" if on else "none"
        self.save()

    def set_provenance(self, region_name: bool, sign: bool) -> None:
        """What the next jobs' files say: the region's name or not, a C2PA signature or not (never without the
        "generated" mark)."""
        self._remember(provenance_region_name=region_name, provenance_sign=sign)
        self.service.provenance = self._provenance()

    def _provenance(self) -> ProvenanceSettings:
        """The provenance settings file (the signing key), with this app's two choices on top."""
        try:
            base = ProvenanceSettings.load()
        except BadInputError as e:
            self.say("warning", f"{e}; files are signed with Segue's local key")
            base = ProvenanceSettings()
        s = self.settings
        return dataclasses.replace(base, region_name=s.provenance_region_name, sign=s.provenance_sign)
